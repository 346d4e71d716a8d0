//! Dense arrays from `.npy`, `.npz` (by key) and `.csv`, converted to `f64` in C (row-major) order.

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;

use faer::Mat;
use npyz::{DType, NpyFile, Order, TypeChar};

use crate::error::{GonnError, Result};

/// An n-dimensional `f64` array in C order.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Array {
    /// A 2-D array as a matrix (a 1-D array becomes a column).
    pub fn to_mat(&self, what: &str) -> Result<Mat<f64>> {
        match self.shape.as_slice() {
            [m, n] => Ok(Mat::from_fn(*m, *n, |i, j| self.data[i * n + j])),
            [m] => Ok(Mat::from_fn(*m, 1, |i, _| self.data[i])),
            s => Err(GonnError::Shape(format!("{what} must be a matrix, but has shape {s:?}"))),
        }
    }

    /// A 3-D array `m x n x k` as its mode-1 unfolding `m x (n k)` (column `j k + l`).
    pub fn to_unfolding(&self, what: &str) -> Result<(Mat<f64>, [usize; 3])> {
        match self.shape.as_slice() {
            [m, n, k] => Ok((Mat::from_fn(*m, n * k, |i, jl| self.data[i * n * k + jl]), [*m, *n, *k])),
            s => Err(GonnError::Shape(format!("{what} must be a 3-way tensor (m x n x k), but has shape {s:?}"))),
        }
    }

    /// The C-order array of a matrix.
    pub fn from_mat(m: &Mat<f64>) -> Self {
        let (r, c) = (m.nrows(), m.ncols());
        Self { shape: vec![r, c], data: (0..r * c).map(|t| m[(t / c, t % c)]).collect() }
    }
}

fn c_order_from_fortran(shape: &[usize], data: Vec<f64>) -> Vec<f64> {
    let n = data.len();
    let mut out = vec![0.0; n];
    // Fortran strides: first index fastest.
    let mut fstride = vec![1usize; shape.len()];
    for d in 1..shape.len() {
        fstride[d] = fstride[d - 1] * shape[d - 1];
    }
    let mut idx = vec![0usize; shape.len()];
    for (t, o) in out.iter_mut().enumerate() {
        let mut rem = t;
        for d in (0..shape.len()).rev() {
            idx[d] = rem % shape[d];
            rem /= shape[d];
        }
        *o = data[idx.iter().zip(&fstride).map(|(i, s)| i * s).sum::<usize>()];
    }
    out
}

pub use crate::numerics::MAX_ELEMENTS;

/// Checks a shape read from a file before its data is allocated: no dimension and not their product (which must
/// not overflow) may exceed [`MAX_ELEMENTS`] (a `0 x 10^12` array is refused too), and at `item` bytes per value
/// the data must fit in the `available` bytes the file holds.
pub fn check_shape(shape: &[usize], item: usize, available: u64) -> std::result::Result<usize, String> {
    if shape.iter().any(|&d| d > MAX_ELEMENTS) {
        return Err(format!("the header claims shape {shape:?}, a dimension above the limit of {MAX_ELEMENTS}"));
    }
    let count =
        shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).filter(|&c| c <= MAX_ELEMENTS).ok_or_else(
            || format!("the header claims shape {shape:?}, more than the limit of {MAX_ELEMENTS} values"),
        )?;
    let bytes = (count as u64).saturating_mul(item as u64);
    if bytes > available {
        return Err(format!(
            "the header claims shape {shape:?} ({bytes} bytes of data) but the file holds only {available} bytes \
             (truncated file?)"
        ));
    }
    Ok(count)
}

fn npy_to_array<R: Read>(npy: NpyFile<R>, available: u64) -> std::result::Result<Array, String> {
    let shape: Vec<usize> = npy.shape().iter().map(|&s| usize::try_from(s).unwrap_or(usize::MAX)).collect();
    let order = npy.order();
    let DType::Plain(ts) = npy.dtype() else {
        return Err("structured arrays are not supported".into());
    };
    let item = match ts.type_char() {
        TypeChar::Bool => 1,
        _ => usize::try_from(ts.size_field()).unwrap_or(usize::MAX).max(1),
    };
    check_shape(&shape, item, available)?;
    let e = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "the data is shorter than its header says (truncated file?)".to_string(),
        _ => e.to_string(),
    };
    let data: Vec<f64> = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 8) => npy.into_vec::<f64>().map_err(e)?,
        (TypeChar::Float, 4) => npy.into_vec::<f32>().map_err(e)?.into_iter().map(f64::from).collect(),
        (TypeChar::Int, 8) => npy.into_vec::<i64>().map_err(e)?.into_iter().map(|v| v as f64).collect(),
        (TypeChar::Int, 4) => npy.into_vec::<i32>().map_err(e)?.into_iter().map(f64::from).collect(),
        (TypeChar::Int, 2) => npy.into_vec::<i16>().map_err(e)?.into_iter().map(f64::from).collect(),
        (TypeChar::Int, 1) => npy.into_vec::<i8>().map_err(e)?.into_iter().map(f64::from).collect(),
        (TypeChar::Uint, 8) => npy.into_vec::<u64>().map_err(e)?.into_iter().map(|v| v as f64).collect(),
        (TypeChar::Uint, 4) => npy.into_vec::<u32>().map_err(e)?.into_iter().map(f64::from).collect(),
        (TypeChar::Uint, 2) => npy.into_vec::<u16>().map_err(e)?.into_iter().map(f64::from).collect(),
        (TypeChar::Uint, 1) => npy.into_vec::<u8>().map_err(e)?.into_iter().map(f64::from).collect(),
        (TypeChar::Bool, _) => npy.into_vec::<bool>().map_err(e)?.into_iter().map(|b| b as u8 as f64).collect(),
        _ => return Err(format!("unsupported dtype `{ts}` (use a float, integer or bool array)")),
    };
    if data.len() != shape.iter().product::<usize>() {
        return Err("the data is shorter than its header says (truncated file?)".into());
    }
    let data = if order == Order::Fortran && shape.len() > 1 { c_order_from_fortran(&shape, data) } else { data };
    Ok(Array { shape, data })
}

/// One field of a CSV line: surrounding spaces and quotes removed, a decimal comma read as a point.
fn csv_number(field: &str, decimal_comma: bool) -> Option<f64> {
    let f = field.trim().trim_matches('"').trim();
    let f = if decimal_comma { f.replace(',', ".") } else { f.to_string() };
    f.parse::<f64>().ok()
}

/// Reads a numeric CSV: `,`, `;`, tab or space separated (detected on the first line), an optional header line
/// (no field of it is a number), `#` comments, quoted numbers, trailing separators, a UTF-8 byte-order mark, and
/// decimal commas with `;` separators. Any other non-number is an error that names its line and field.
fn read_csv(path: &Path) -> Result<Array> {
    let bytes = std::fs::read(path).map_err(|e| GonnError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|_| GonnError::format(path, "not UTF-8 text"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let content: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let Some(&(_, first)) = content.first() else {
        return Err(GonnError::format(path, "no numeric rows (the file is empty)"));
    };
    let sep = ['\t', ';', ','].into_iter().find(|c| first.contains(*c));
    let decimal_comma = sep == Some(';') && content.iter().any(|(_, l)| l.contains(','));
    let split = |line: &str| -> Vec<String> {
        let mut fields: Vec<String> = match sep {
            Some(c) => line.split(c).map(|f| f.trim().to_string()).collect(),
            None => line.split_whitespace().map(str::to_string).collect(),
        };
        while fields.len() > 1 && fields.last().is_some_and(|f| f.is_empty()) {
            fields.pop();
        }
        fields
    };
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for (k, &(ln, line)) in content.iter().enumerate() {
        let fields = split(line);
        let parsed: Vec<Option<f64>> = fields.iter().map(|f| csv_number(f, decimal_comma)).collect();
        if k == 0 && parsed.iter().all(Option::is_none) {
            continue; // a header line
        }
        if let Some(j) = parsed.iter().position(Option::is_none) {
            return Err(GonnError::format(
                path,
                format!("line {ln}, field {}: `{}` is not a number", j + 1, fields[j]),
            ));
        }
        rows.push(parsed.into_iter().map(|v| v.expect("checked")).collect());
    }
    let ncols = rows.first().map_or(0, |r| r.len());
    if rows.is_empty() || ncols == 0 {
        return Err(GonnError::format(path, "no numeric rows (only a header)"));
    }
    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != ncols) {
        return Err(GonnError::format(path, format!("data row {} has {} fields, expected {ncols}", i + 1, r.len())));
    }
    Ok(Array { shape: vec![rows.len(), ncols], data: rows.into_iter().flatten().collect() })
}

/// Reads array `key` from an `.npz`, or the array in an `.npy` or `.csv` (which ignore `key`). `Ok(None)` when
/// an `.npz` has no such key. Sizes in headers are checked against the file before anything is allocated, and an
/// `.npz` entry's checksum is verified.
pub fn read_array_opt(path: impl AsRef<Path>, key: &str) -> Result<Option<Array>> {
    let path = path.as_ref();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "npy" => {
            let bytes = std::fs::read(path).map_err(|e| GonnError::io(path, e))?;
            let available = bytes.len() as u64;
            let npy = NpyFile::new(Cursor::new(bytes))
                .map_err(|e| GonnError::format(path, format!("not a valid .npy file ({e})")))?;
            npy_to_array(npy, available).map(Some).map_err(|e| GonnError::format(path, e))
        }
        "npz" => {
            let f = File::open(path).map_err(|e| GonnError::io(path, e))?;
            let mut npz = npyz::npz::NpzArchive::new(BufReader::new(f))
                .map_err(|e| GonnError::format(path, format!("not a valid .npz archive ({e})")))?;
            let zip = npz.zip_archive();
            let mut entry = match zip.by_name(&npyz::npz::file_name_from_array_name(key)) {
                Ok(entry) => entry,
                Err(npyz::zip::result::ZipError::FileNotFound) => return Ok(None),
                Err(e) => return Err(GonnError::format(path, format!("array `{key}`: {e}"))),
            };
            let size = entry.size();
            if size > (MAX_ELEMENTS as u64) * 8 + (1 << 20) {
                return Err(GonnError::format(
                    path,
                    format!("array `{key}` is larger than the limit of {MAX_ELEMENTS} values"),
                ));
            }
            // Reading the entry to its end verifies its checksum.
            let mut bytes = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| GonnError::format(path, format!("array `{key}` is damaged ({e})")))?;
            let available = bytes.len() as u64;
            let npy = NpyFile::new(Cursor::new(bytes))
                .map_err(|e| GonnError::format(path, format!("array `{key}` is not a valid .npy ({e})")))?;
            npy_to_array(npy, available).map(Some).map_err(|e| GonnError::format(path, format!("array `{key}`: {e}")))
        }
        "csv" | "txt" => read_csv(path).map(Some),
        _ => Err(GonnError::format(path, "unknown file type (expected .npz, .npy or .csv)")),
    }
}

/// The names of the arrays in an `.npz` (without the `.npy` suffix).
pub fn npz_names(path: impl AsRef<Path>) -> Result<Vec<String>> {
    let path = path.as_ref();
    let f = File::open(path).map_err(|e| GonnError::io(path, e))?;
    let npz = npyz::npz::NpzArchive::new(BufReader::new(f))
        .map_err(|e| GonnError::format(path, format!("not a valid .npz archive ({e})")))?;
    Ok(npz.array_names().map(|s| s.to_string()).collect())
}

/// Like [`read_array_opt`], but a missing key is an error.
pub fn read_array(path: impl AsRef<Path>, key: &str) -> Result<Array> {
    let path = path.as_ref();
    read_array_opt(path, key)?.ok_or_else(|| GonnError::format(path, format!("the archive has no array named `{key}`")))
}

fn npy_bytes(a: &Array) -> Vec<u8> {
    let shape: Vec<String> = a.shape.iter().map(|s| s.to_string()).collect();
    let shape = if shape.len() == 1 { format!("({},)", shape[0]) } else { format!("({})", shape.join(", ")) };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in &a.data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes an `.npy` file (`<f8`, C order), atomically.
pub fn write_npy(path: impl AsRef<Path>, a: &Array) -> Result<()> {
    super::write_atomic(path, &npy_bytes(a))
}

/// Writes an `.npz` archive of named arrays, atomically.
pub fn write_npz(path: impl AsRef<Path>, arrays: &[(&str, &Array)]) -> Result<()> {
    let path = path.as_ref();
    let mut buf = Cursor::new(Vec::new());
    {
        let mut zip = npyz::zip::ZipWriter::new(&mut buf);
        let opts = npyz::zip::write::FileOptions::default().compression_method(npyz::zip::CompressionMethod::Stored);
        for (name, a) in arrays {
            let werr = |e: std::io::Error| GonnError::io(path, e);
            zip.start_file(format!("{name}.npy"), opts).map_err(|e| werr(e.into()))?;
            std::io::Write::write_all(&mut zip, &npy_bytes(a)).map_err(werr)?;
        }
        zip.finish().map_err(|e| GonnError::io(path, e.into()))?;
    }
    super::write_atomic(path, &buf.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npz_npy_csv_roundtrip_and_fortran_order() {
        let dir = std::env::temp_dir().join(format!("gonn-arrays-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = Array { shape: vec![2, 3], data: vec![1., 2., 3., 4., 5., 6.] };
        let t = Array { shape: vec![2, 2, 2], data: (0..8).map(f64::from).collect() };
        write_npz(dir.join("x.npz"), &[("Y", &a), ("T", &t)]).unwrap();
        assert_eq!(read_array(dir.join("x.npz"), "Y").unwrap(), a);
        assert_eq!(read_array(dir.join("x.npz"), "T").unwrap(), t);
        assert!(read_array_opt(dir.join("x.npz"), "mask").unwrap().is_none());
        write_npy(dir.join("x.npy"), &a).unwrap();
        assert_eq!(read_array(dir.join("x.npy"), "").unwrap(), a);
        std::fs::write(dir.join("x.csv"), "a,b,c\n1,2,3\n4,5,6\n").unwrap();
        assert_eq!(read_array(dir.join("x.csv"), "").unwrap(), a);
        let f = c_order_from_fortran(&[2, 3], vec![1., 4., 2., 5., 3., 6.]);
        assert_eq!(f, a.data);
        let m = a.to_mat("Y").unwrap();
        assert_eq!(m[(1, 0)], 4.0);
        let (u, dims) = t.to_unfolding("Y").unwrap();
        assert_eq!(dims, [2, 2, 2]);
        assert_eq!(u[(1, 3)], 7.0);
        // Truncated and corrupt files are errors, not panics.
        let bytes = std::fs::read(dir.join("x.npy")).unwrap();
        std::fs::write(dir.join("bad.npy"), &bytes[..bytes.len() - 5]).unwrap();
        assert!(read_array(dir.join("bad.npy"), "").is_err());
        std::fs::write(dir.join("bad.npz"), b"PK\x03\x04garbage").unwrap();
        assert!(read_array(dir.join("bad.npz"), "Y").is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
