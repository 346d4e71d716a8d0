//! Ratings the way recommender data comes: a CSV (or MovieLens `::` / tab separated) file of `(user, item,
//! rating)` triplets with ids of any kind, an `.npz` with `rows`, `cols`, `values` (and optionally `shape`), or a
//! `scipy.sparse.save_npz` file (COO, CSR or CSC). Ids are mapped to row and column indices in sorted order
//! (numerically when every id is an integer) and the mapping travels with the model.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::arrays::{npz_names, read_array, read_array_opt};
use crate::error::{GonnError, Result};
use crate::numerics::sparse::SparseRatings;

/// The largest row or column count accepted from a file (the index arrays are `O(m + n)`).
pub const MAX_DIMENSION: usize = 100_000_000;

/// Ratings read from a file, with the ids of its rows and columns (`None`: the ids are the indices).
#[derive(Clone, Debug)]
pub struct RatingsFile {
    pub data: SparseRatings,
    pub row_ids: Option<Vec<String>>,
    pub col_ids: Option<Vec<String>>,
}

impl RatingsFile {
    /// The id of row `i` (its index when the file had no ids).
    pub fn row_id(&self, i: usize) -> String {
        self.row_ids.as_ref().map_or_else(|| i.to_string(), |ids| ids[i].clone())
    }
    pub fn col_id(&self, j: usize) -> String {
        self.col_ids.as_ref().map_or_else(|| j.to_string(), |ids| ids[j].clone())
    }
}

/// Whether `path` holds ratings triplets rather than a dense matrix: an `.npz` with `rows`/`cols`/`values` or a
/// scipy.sparse layout, a `.dat` or `::`-separated file, or a text file whose header names a user, item, movie or
/// rating column.
pub fn looks_like_ratings(path: &Path) -> Result<bool> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "npz" => {
            let names = npz_names(path)?;
            let has = |k: &str| names.iter().any(|n| n == k);
            Ok((has("rows") && has("cols") && has("values")) || (has("data") && (has("indptr") || has("row"))))
        }
        "dat" => Ok(true),
        "csv" | "tsv" | "txt" => {
            let mut head = vec![0u8; 4096];
            let mut f = std::fs::File::open(path).map_err(|e| GonnError::io(path, e))?;
            let k = f.read(&mut head).map_err(|e| GonnError::io(path, e))?;
            let text = String::from_utf8_lossy(&head[..k]).to_ascii_lowercase();
            let first = text.lines().next().unwrap_or("");
            Ok(first.contains("::")
                || ["user", "item", "movie", "rating"].iter().any(|w| first.contains(w))
                    && first.parse::<f64>().is_err())
        }
        _ => Ok(false),
    }
}

/// Which fields of a text file hold the row id, the column id and the value: header names, or 1-based positions.
#[derive(Clone, Debug, Default)]
pub struct Columns(pub Option<[String; 3]>);

impl std::str::FromStr for Columns {
    type Err = GonnError;
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<String> = s.split(',').map(|p| p.trim().to_string()).collect();
        match <[String; 3]>::try_from(parts) {
            Ok(a) if a.iter().all(|p| !p.is_empty()) => Ok(Columns(Some(a))),
            _ => {
                Err(GonnError::param("columns", format!("`{s}` (expected three names or positions: USER,ITEM,RATING)")))
            }
        }
    }
}

/// Reads ratings from a text file, an `.npz` of triplets or a scipy.sparse `.npz`.
pub fn read_ratings(path: &Path, columns: &Columns) -> Result<RatingsFile> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if ext == "npz" {
        return read_npz(path);
    }
    read_text(path, columns)
}

/// An index read as a float from an array: a non-negative integer below `limit`.
fn index(v: f64, what: &str, k: usize, limit: usize, path: &Path) -> Result<u32> {
    if v >= 0.0 && v.fract() == 0.0 && v < limit as f64 && v < u32::MAX as f64 {
        Ok(v as u32)
    } else {
        Err(GonnError::format(path, format!("{what}[{k}] = {v} is not an index in 0..{limit}")))
    }
}

fn read_shape(path: &Path) -> Result<Option<(usize, usize)>> {
    let Some(s) = read_array_opt(path, "shape")? else { return Ok(None) };
    match s.data.as_slice() {
        [m, n] if *m >= 1.0 && *n >= 1.0 && m.fract() == 0.0 && n.fract() == 0.0 => {
            let (m, n) = (*m as usize, *n as usize);
            if m > MAX_DIMENSION || n > MAX_DIMENSION {
                return Err(GonnError::format(
                    path,
                    format!("`shape` is {m} x {n}, above the limit of {MAX_DIMENSION} rows or columns"),
                ));
            }
            Ok(Some((m, n)))
        }
        other => Err(GonnError::format(path, format!("`shape` is {other:?}; expected two positive integers"))),
    }
}

/// The scipy.sparse format string (`csr`, `csc`, `coo`) stored as a byte-string array `format`.
fn scipy_format(path: &Path) -> Result<Option<String>> {
    let f = std::fs::File::open(path).map_err(|e| GonnError::io(path, e))?;
    let mut npz = npyz::npz::NpzArchive::new(std::io::BufReader::new(f))
        .map_err(|e| GonnError::format(path, format!("not a valid .npz archive ({e})")))?;
    let zip = npz.zip_archive();
    let Ok(mut entry) = zip.by_name("format.npy") else { return Ok(None) };
    if entry.size() > 4096 {
        return Err(GonnError::format(path, "the `format` entry is too large for a format name"));
    }
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).map_err(|e| GonnError::format(path, format!("`format` is damaged ({e})")))?;
    let tail: Vec<u8> = bytes.iter().rev().skip_while(|b| **b == 0).take(3).copied().collect();
    let name: String = tail.iter().rev().map(|&b| b as char).collect();
    Ok(Some(name))
}

fn read_npz(path: &Path) -> Result<RatingsFile> {
    let names = npz_names(path)?;
    let has = |k: &str| names.iter().any(|n| n == k);
    let shape = read_shape(path)?;
    let (rows, cols, values, m, n) = if has("rows") && has("cols") && has("values") || has("row") && has("col") {
        let (rk, ck, vk) = if has("rows") { ("rows", "cols", "values") } else { ("row", "col", "data") };
        let (r, c, v) = (read_array(path, rk)?, read_array(path, ck)?, read_array(path, vk)?);
        if r.data.len() != v.data.len() || c.data.len() != v.data.len() {
            return Err(GonnError::format(
                path,
                format!(
                    "`{rk}`, `{ck}` and `{vk}` have {}, {} and {} entries",
                    r.data.len(),
                    c.data.len(),
                    v.data.len()
                ),
            ));
        }
        let (mlim, nlim) = shape.unwrap_or((MAX_DIMENSION, MAX_DIMENSION));
        let rows: Vec<u32> =
            r.data.iter().enumerate().map(|(k, &x)| index(x, rk, k, mlim, path)).collect::<Result<_>>()?;
        let cols: Vec<u32> =
            c.data.iter().enumerate().map(|(k, &x)| index(x, ck, k, nlim, path)).collect::<Result<_>>()?;
        let m = shape.map_or_else(|| rows.iter().max().map_or(0, |&x| x as usize + 1), |s| s.0);
        let n = shape.map_or_else(|| cols.iter().max().map_or(0, |&x| x as usize + 1), |s| s.1);
        (rows, cols, v.data, m, n)
    } else if has("indptr") && has("indices") && has("data") {
        let format = scipy_format(path)?.unwrap_or_default();
        let Some((m, n)) = shape else {
            return Err(GonnError::format(path, "a scipy.sparse archive needs its `shape`"));
        };
        let by_rows = match format.as_str() {
            "csr" => true,
            "csc" => false,
            other => {
                return Err(GonnError::format(
                    path,
                    format!("scipy.sparse format `{other}` (expected csr, csc or coo)"),
                ))
            }
        };
        let (ptr, idx, v) = (read_array(path, "indptr")?, read_array(path, "indices")?, read_array(path, "data")?);
        let (outer, inner) = if by_rows { (m, n) } else { (n, m) };
        if ptr.data.len() != outer + 1 || idx.data.len() != v.data.len() {
            return Err(GonnError::format(
                path,
                format!(
                    "`indptr` has {} entries for {outer} {} and `indices` {} for {} values",
                    ptr.data.len(),
                    if by_rows { "rows" } else { "columns" },
                    idx.data.len(),
                    v.data.len()
                ),
            ));
        }
        let nnz = v.data.len();
        let mut major = Vec::with_capacity(nnz);
        for o in 0..outer {
            let (a, b) = (ptr.data[o], ptr.data[o + 1]);
            if !(a >= 0.0 && b >= a && b <= nnz as f64 && a.fract() == 0.0 && b.fract() == 0.0) {
                return Err(GonnError::format(path, format!("`indptr` is not a valid pointer array at {o}")));
            }
            major.extend(std::iter::repeat_n(o as u32, (b - a) as usize));
        }
        if major.len() != nnz {
            return Err(GonnError::format(path, "`indptr` does not end at the number of values"));
        }
        let minor: Vec<u32> =
            idx.data.iter().enumerate().map(|(k, &x)| index(x, "indices", k, inner, path)).collect::<Result<_>>()?;
        if by_rows {
            (major, minor, v.data, m, n)
        } else {
            (minor, major, v.data, m, n)
        }
    } else {
        return Err(GonnError::format(
            path,
            "no ratings in this archive: expected `rows`, `cols`, `values` (and optionally `shape`), or a \
             scipy.sparse.save_npz file",
        ));
    };
    let data = SparseRatings::from_triplets(m, n, &rows, &cols, &values).map_err(|e| GonnError::format(path, e))?;
    Ok(RatingsFile { data, row_ids: None, col_ids: None })
}

/// Maps ids (first-seen order) to indices in sorted order: numeric when every id is an integer.
fn sorted_ids(ids: Vec<String>) -> (Vec<String>, Vec<u32>) {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    let ints: Option<Vec<i64>> = ids.iter().map(|s| s.parse::<i64>().ok()).collect();
    match &ints {
        Some(v) => order.sort_by_key(|&k| v[k]),
        None => order.sort_by(|&a, &b| ids[a].cmp(&ids[b])),
    }
    let mut remap = vec![0u32; ids.len()];
    for (new, &old) in order.iter().enumerate() {
        remap[old] = new as u32;
    }
    let mut ids = ids;
    let sorted = order.iter().map(|&k| std::mem::take(&mut ids[k])).collect();
    (sorted, remap)
}

fn read_text(path: &Path, columns: &Columns) -> Result<RatingsFile> {
    let bytes = std::fs::read(path).map_err(|e| GonnError::io(path, e))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| GonnError::format(path, "not UTF-8 text"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let Some((_, first)) = lines.clone().next() else {
        return Err(GonnError::format(path, "no ratings (the file is empty)"));
    };
    let sep: &str = if first.contains("::") {
        "::"
    } else if first.contains('\t') {
        "\t"
    } else if first.contains(',') {
        ","
    } else if first.contains(';') {
        ";"
    } else {
        " "
    };
    let split = |l: &str| -> Vec<String> {
        if sep == " " {
            l.split_whitespace().map(|f| f.trim_matches('"').to_string()).collect()
        } else {
            l.split(sep).map(|f| f.trim().trim_matches('"').to_string()).collect()
        }
    };
    let head = split(first);
    let header = head.iter().any(|f| f.parse::<f64>().is_err());
    let lower: Vec<String> = head.iter().map(|h| h.to_ascii_lowercase()).collect();
    let find = |cands: &[&str]| lower.iter().position(|h| cands.iter().any(|c| h == c));
    let pick = |spec: &str| -> Result<usize> {
        if header {
            if let Some(k) = lower.iter().position(|h| *h == spec.to_ascii_lowercase()) {
                return Ok(k);
            }
        }
        match spec.parse::<usize>() {
            Ok(k) if k >= 1 && k <= head.len() => Ok(k - 1),
            _ => Err(GonnError::param(
                "columns",
                format!("`{spec}` is neither a column of the header {head:?} nor a position in 1..={}", head.len()),
            )),
        }
    };
    let (cu, ci, cr) = match &columns.0 {
        Some([a, b, c]) => (pick(a)?, pick(b)?, pick(c)?),
        None if header => (
            find(&["userid", "user_id", "user", "row", "uid"]).unwrap_or(0),
            find(&["movieid", "movie_id", "itemid", "item_id", "item", "movie", "col", "column", "iid"]).unwrap_or(1),
            find(&["rating", "ratings", "value", "score", "stars"]).unwrap_or(2),
        ),
        None => (0, 1, 2),
    };
    if head.len() < 3 && columns.0.is_none() {
        return Err(GonnError::format(
            path,
            format!("line 1 has {} fields; ratings need user, item and rating columns", head.len()),
        ));
    }
    if header {
        lines.next();
    }
    let need = cu.max(ci).max(cr);
    let (mut row_map, mut col_map): (HashMap<&str, u32>, HashMap<&str, u32>) = (HashMap::new(), HashMap::new());
    let (mut row_ids, mut col_ids) = (Vec::new(), Vec::new());
    let (mut rows, mut cols, mut vals) = (Vec::new(), Vec::new(), Vec::new());
    for (ln, line) in lines {
        let fields: Vec<&str> = if sep == " " {
            line.split_whitespace().collect()
        } else {
            line.split(sep).map(|f| f.trim().trim_matches('"')).collect()
        };
        if fields.len() <= need {
            return Err(GonnError::format(
                path,
                format!("line {}: {} fields, but column {} is needed", ln + 1, fields.len(), need + 1),
            ));
        }
        let v: f64 = fields[cr].parse().map_err(|_| {
            GonnError::format(path, format!("line {}, field {}: `{}` is not a number", ln + 1, cr + 1, fields[cr]))
        })?;
        rows.push(id(&mut row_map, &mut row_ids, fields[cu]));
        cols.push(id(&mut col_map, &mut col_ids, fields[ci]));
        vals.push(v);
    }
    drop((row_map, col_map));
    fn id<'t>(map: &mut HashMap<&'t str, u32>, ids: &mut Vec<String>, key: &'t str) -> u32 {
        let next = ids.len() as u32;
        *map.entry(key).or_insert_with(|| {
            ids.push(key.to_string());
            next
        })
    }
    let (row_ids, rmap) = sorted_ids(row_ids);
    let (col_ids, cmap) = sorted_ids(col_ids);
    rows.iter_mut().for_each(|r| *r = rmap[*r as usize]);
    cols.iter_mut().for_each(|c| *c = cmap[*c as usize]);
    let data = SparseRatings::from_triplets(row_ids.len(), col_ids.len(), &rows, &cols, &vals).map_err(|e| {
        // Name the ids, not the indices, in a duplicate or value error.
        GonnError::format(path, e)
    })?;
    Ok(RatingsFile { data, row_ids: Some(row_ids), col_ids: Some(col_ids) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gonn-ratings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_movielens_csv_and_dat_with_ids_in_numeric_order() {
        let csv = tmp("ratings.csv", "userId,movieId,rating,timestamp\n10,200,4.0,1\n2,200,3.5,2\n10,31,5,3\n");
        let dat = tmp("ratings.dat", "10::200::4::1\n2::200::3.5::2\n10::31::5::3\n");
        for p in [csv, dat] {
            assert!(looks_like_ratings(&p).unwrap());
            let r = read_ratings(&p, &Columns::default()).unwrap();
            assert_eq!(r.row_ids.as_deref().unwrap(), ["2", "10"]);
            assert_eq!(r.col_ids.as_deref().unwrap(), ["31", "200"]);
            let t: Vec<_> = r.data.triplets().collect();
            assert_eq!(t, vec![(0, 1, 3.5), (1, 0, 5.0), (1, 1, 4.0)]);
        }
        let sel = tmp("sel.csv", "stamp,item,who,stars\n1,a,x,2\n2,b,y,3\n");
        let r = read_ratings(&sel, &"who,item,stars".parse().unwrap()).unwrap();
        assert_eq!(r.data.triplets().collect::<Vec<_>>(), vec![(0, 0, 2.0), (1, 1, 3.0)]);
        let r = read_ratings(&sel, &"3,2,4".parse().unwrap()).unwrap();
        assert_eq!(r.data.nnz(), 2);
    }

    #[test]
    fn bad_text_gets_a_clear_error() {
        let dup = tmp("dup.csv", "user,item,rating\n1,2,3\n1,2,4\n");
        let e = read_ratings(&dup, &Columns::default()).unwrap_err().to_string();
        assert!(e.contains("more than once"), "{e}");
        let bad = tmp("bad.csv", "user,item,rating\n1,2,x\n");
        let e = read_ratings(&bad, &Columns::default()).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("not a number"), "{e}");
        let short = tmp("short.csv", "user,item,rating\n1,2\n");
        assert!(read_ratings(&short, &Columns::default()).is_err());
        assert!(read_ratings(&dup, &"a,b,c".parse().unwrap()).is_err());
    }
}

/// A completion model as written by `gonn fit` on ratings: the factors `U`, `V` as tensors, and in the metadata
/// the biases, the id maps, lambda and the certificate.
pub struct CompletionFile {
    pub model: crate::meta::completion::Completion,
    pub row_ids: Option<Vec<String>>,
    pub col_ids: Option<Vec<String>>,
    pub lambda: f64,
}

impl CompletionFile {
    /// The metadata key that marks a model file as a sparse completion model.
    pub const MARK: &'static str = "ratings";

    pub fn save(&self, path: &Path, extra: HashMap<String, String>) -> Result<()> {
        let c = &self.model;
        let json = |v: &dyn erased::Json| v.to_json();
        let mut meta = extra;
        meta.insert(Self::MARK.into(), "true".into());
        meta.insert("kind".into(), "factor".into());
        meta.insert("norms".into(), "l2,l2".into());
        meta.insert("loss".into(), "squared".into());
        meta.insert("lambda".into(), format!("{:e}", self.lambda));
        meta.insert("shape".into(), format!("[{},{}]", c.u.nrows(), c.v.nrows()));
        meta.insert("biases".into(), c.biases.to_string());
        meta.insert("offset".into(), json(&c.offset));
        meta.insert("row_bias".into(), json(&c.row_bias));
        meta.insert("col_bias".into(), json(&c.col_bias));
        meta.insert("row_ids".into(), json(&self.row_ids));
        meta.insert("col_ids".into(), json(&self.col_ids));
        meta.insert("termination".into(), c.termination.name().into());
        meta.insert("certificate".into(), json(&c.certificate));
        let file = super::ModelFile {
            kind: "factor".into(),
            weights: crate::core::Weights { layers: vec![c.u.clone(), c.v.clone()] },
            metadata: meta,
        };
        super::save_model(path, &file)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let f = super::load_model(path)?;
        if f.metadata.get(Self::MARK).map(String::as_str) != Some("true") {
            return Err(GonnError::format(path, "not a model fitted to ratings (no `ratings` mark in its metadata)"));
        }
        let get = |k: &str| -> Result<&String> {
            f.metadata.get(k).ok_or_else(|| GonnError::format(path, format!("the metadata has no `{k}`")))
        };
        fn parse<T: serde::de::DeserializeOwned>(path: &Path, k: &str, s: &str) -> Result<T> {
            serde_json::from_str(s).map_err(|e| GonnError::format(path, format!("metadata `{k}`: {e}")))
        }
        let u = f.weights.layers[0].clone();
        let v = f.weights.layers[1].clone();
        let row_bias: Vec<f64> = parse(path, "row_bias", get("row_bias")?)?;
        let col_bias: Vec<f64> = parse(path, "col_bias", get("col_bias")?)?;
        let row_ids: Option<Vec<String>> = parse(path, "row_ids", get("row_ids")?)?;
        let col_ids: Option<Vec<String>> = parse(path, "col_ids", get("col_ids")?)?;
        let (m, n) = (u.nrows(), v.nrows());
        let bad = |what: &str, len: usize, want: usize| {
            GonnError::format(
                path,
                format!(
                    "`{what}` has {len} entries for {want} {}",
                    if what.starts_with("row") { "rows" } else { "columns" }
                ),
            )
        };
        if !row_bias.is_empty() && row_bias.len() != m {
            return Err(bad("row_bias", row_bias.len(), m));
        }
        if !col_bias.is_empty() && col_bias.len() != n {
            return Err(bad("col_bias", col_bias.len(), n));
        }
        if let Some(ids) = &row_ids {
            if ids.len() != m {
                return Err(bad("row_ids", ids.len(), m));
            }
        }
        if let Some(ids) = &col_ids {
            if ids.len() != n {
                return Err(bad("col_ids", ids.len(), n));
            }
        }
        let model = crate::meta::completion::Completion {
            u,
            v,
            biases: get("biases")?.parse()?,
            offset: parse(path, "offset", get("offset")?)?,
            row_bias,
            col_bias,
            certificate: parse(path, "certificate", get("certificate")?)?,
            history: vec![],
            termination: parse(path, "termination", &format!("\"{}\"", get("termination")?))?,
            outer_iterations: 0,
            seconds: 0.0,
        };
        let lambda: f64 =
            get("lambda")?.parse().map_err(|_| GonnError::format(path, "metadata `lambda` is not a number"))?;
        Ok(Self { model, row_ids, col_ids, lambda })
    }

    /// Row index of a user id (the id is the index when the model has no id map).
    pub fn row_index(&self) -> HashMap<&str, usize> {
        self.row_ids
            .as_ref()
            .map(|ids| ids.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect())
            .unwrap_or_default()
    }
    pub fn col_index(&self) -> HashMap<&str, usize> {
        self.col_ids
            .as_ref()
            .map(|ids| ids.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect())
            .unwrap_or_default()
    }
}

mod erased {
    /// Serialization to a JSON string for the metadata (numbers round-trip exactly).
    pub trait Json {
        fn to_json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).expect("plain data serializes")
        }
    }
}
