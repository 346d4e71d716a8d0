//! Model files: the weights of each layer as named tensors (`U`, `V` for a factorization, `A`, `B`, `C` for a CP
//! tensor, `W1`, `W2` for ReLU units), each `dim x r` in C order, plus metadata (model kind, norms, lambda, loss,
//! shape and the certificate as JSON) in the safetensors header. Weights made elsewhere can also come from an
//! `.npz` with the same names.
//!
//! Deep and convolutional models (`mlp`, `cnn`) store layer `k` as `Wk` (`W1`, `W2`, ...) with shape
//! `[r, fan_in, fan_out]`: `Wk[i]` is subnetwork `i`'s matrix, applied as `input @ Wk[i]` (the first layer's last
//! input row is the bias; a convolution's input index is `(dy * kernel + dx) * c_in + c`). The metadata key
//! `layer_shapes` (JSON `[[fan_in, fan_out], ...]`) selects this layout when writing.

use std::collections::HashMap;
use std::path::Path;

use faer::Mat;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::arrays::Array;
use crate::core::Weights;
use crate::error::{GonnError, Result};

/// Tensor names of each model kind's layers (`layers` is the count for deep models, `W1..WK`).
pub fn layer_names(kind: &str, layers: usize) -> Vec<String> {
    let fixed: &[&str] = match kind {
        "cp" => &["A", "B", "C"],
        "relu" => &["W1", "W2"],
        "mlp" | "cnn" => return (1..=layers).map(|k| format!("W{k}")).collect(),
        _ => &["U", "V"],
    };
    fixed.iter().map(|s| s.to_string()).collect()
}

/// The `[[fan_in, fan_out], ...]` of a deep model's metadata.
pub fn layer_shapes(meta: &HashMap<String, String>) -> Option<Vec<(usize, usize)>> {
    serde_json::from_str(meta.get("layer_shapes")?).ok()
}

/// A model as stored on disk.
#[derive(Clone, Debug)]
pub struct ModelFile {
    pub kind: String,
    pub weights: Weights,
    /// Free-form string metadata (norms, lambda, loss, certificate...).
    pub metadata: HashMap<String, String>,
}

fn layer_array(l: &Mat<f64>) -> Array {
    Array::from_mat(l)
}

/// Writes `model` as safetensors, atomically.
pub fn save_model(path: impl AsRef<Path>, model: &ModelFile) -> Result<()> {
    let path = path.as_ref();
    super::write_atomic(path, &model_bytes(model)?)
}

/// The safetensors bytes that [`save_model`] writes.
pub fn model_bytes(model: &ModelFile) -> Result<Vec<u8>> {
    let path = Path::new("model");
    let names = layer_names(&model.kind, model.weights.layers.len());
    let shapes = layer_shapes(&model.metadata);
    let bufs: Vec<(String, Vec<usize>, Vec<u8>)> = model
        .weights
        .layers
        .iter()
        .zip(names)
        .enumerate()
        .map(|(k, (l, name))| match shapes.as_ref().and_then(|s| s.get(k)) {
            Some(&(fi, fo)) if fi * fo == l.nrows() => {
                let r = l.ncols();
                let data: Vec<u8> = (0..r)
                    .flat_map(|i| (0..fi).flat_map(move |a| (0..fo).map(move |b| (a + b * fi, i))))
                    .flat_map(|ij| l[ij].to_le_bytes())
                    .collect();
                (name, vec![r, fi, fo], data)
            }
            _ => {
                let a = layer_array(l);
                (name, a.shape.clone(), a.data.iter().flat_map(|v| v.to_le_bytes()).collect())
            }
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bufs
        .iter()
        .map(|(n, s, b)| {
            Ok((n.clone(), TensorView::new(Dtype::F64, s.clone(), b).map_err(|e| GonnError::format(path, e))?))
        })
        .collect::<Result<_>>()?;
    let mut meta = model.metadata.clone();
    meta.insert("gonn_model".into(), model.kind.clone());
    meta.insert("gonn_version".into(), env!("CARGO_PKG_VERSION").into());
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| GonnError::format(path, e))?;
    Ok(sorted_header(&bytes))
}

/// Reads a model written by gonn from safetensors bytes (`name` only labels errors).
pub fn model_from_bytes(bytes: Vec<u8>, name: &Path) -> Result<ModelFile> {
    SafeTensors::deserialize(&bytes)
        .map_err(|e| GonnError::format(name, format!("not a valid safetensors file ({e})")))?;
    gonn_model(WeightSource::Safetensors(name, bytes), name)
}

/// The same safetensors bytes with the header's keys (tensors and metadata) in sorted order, so that the same
/// model gives the same file (the library writes its metadata map in hash order).
fn sorted_header(bytes: &[u8]) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).expect("safetensors wrote JSON");
    let mut text = serde_json::to_string(&header).expect("JSON serializes");
    while (8 + text.len()) % 8 != 0 {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(bytes.len() + 8);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// A `[r, fan_in, fan_out]` C-order tensor as the `(fan_in * fan_out) x r` layer block (column-major matrices).
fn deep_layer(data: &[f64], r: usize, fi: usize, fo: usize) -> Mat<f64> {
    Mat::from_fn(fi * fo, r, |ab, i| data[i * fi * fo + (ab % fi) * fo + ab / fi])
}

fn view_to_mat(path: &Path, name: &str, v: &TensorView<'_>) -> Result<Mat<f64>> {
    let shape = v.shape();
    super::arrays::check_shape(shape, v.dtype().bitsize().div_ceil(8), v.data().len() as u64)
        .map_err(|e| GonnError::format(path, format!("tensor `{name}`: {e}")))?;
    let data: Vec<f64> = match v.dtype() {
        Dtype::F64 => v.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect(),
        Dtype::F32 => v.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
        d => return Err(GonnError::format(path, format!("tensor `{name}` has dtype {d:?}; expected F64 or F32"))),
    };
    let (rows, cols) = match shape {
        [r, c] => (*r, *c),
        [r] => (*r, 1),
        // A deep layer `[r, fan_in, fan_out]`: column i is subnetwork i's matrix in column-major order.
        [r, fi, fo] => {
            return Ok(deep_layer(&data, *r, *fi, *fo));
        }
        s => {
            return Err(GonnError::Shape(format!(
                "tensor `{name}` in {} has shape {s:?}; expected a matrix (or [r, fan_in, fan_out])",
                path.display()
            )))
        }
    };
    Ok(Mat::from_fn(rows, cols, |i, j| data[i * cols + j]))
}

/// A weights file opened once: an `.npz` (arrays read by name) or the bytes of a safetensors file.
enum WeightSource<'a> {
    Npz(&'a Path),
    Safetensors(&'a Path, Vec<u8>),
}

impl<'a> WeightSource<'a> {
    fn open(path: &'a Path) -> Result<Self> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        if ext == "npz" {
            return Ok(WeightSource::Npz(path));
        }
        let bytes = std::fs::read(path).map_err(|e| GonnError::io(path, e))?;
        SafeTensors::deserialize(&bytes)
            .map_err(|e| GonnError::format(path, format!("not a valid safetensors file ({e})")))?;
        Ok(WeightSource::Safetensors(path, bytes))
    }

    /// The tensor `name` as a matrix, if the file has it.
    fn tensor(&self, name: &str) -> Result<Option<Mat<f64>>> {
        match self {
            WeightSource::Npz(path) => super::arrays::read_array_opt(path, name)?
                .map(|a| match a.shape.as_slice() {
                    &[r, fi, fo] => Ok(deep_layer(&a.data, r, fi, fo)),
                    _ => a.to_mat(name),
                })
                .transpose(),
            WeightSource::Safetensors(path, bytes) => {
                let st = SafeTensors::deserialize(bytes).map_err(|e| GonnError::format(path, e))?;
                st.tensor(name).ok().map(|v| view_to_mat(path, name, &v)).transpose()
            }
        }
    }

    /// The names of the tensors (arrays) in the file.
    fn names(&self) -> Result<Vec<String>> {
        match self {
            WeightSource::Npz(path) => super::arrays::npz_names(path),
            WeightSource::Safetensors(path, bytes) => {
                let st = SafeTensors::deserialize(bytes).map_err(|e| GonnError::format(path, e))?;
                Ok(st.names().into_iter().map(|s| s.to_string()).collect())
            }
        }
    }

    /// A PyTorch `state_dict` of `Sequential(Linear(d, r), ReLU(), Linear(r, C, bias=False))` (keys `0.weight`,
    /// `0.bias`, `2.weight`, with any common prefix): `W1 = [first.weight^T; first.bias]`, `W2 = second.weight`.
    /// `None` when the file has no `*.weight` tensors; an error names a bias on the last layer (`2.bias`), which
    /// the model does not have.
    fn torch_relu(&self, path: &Path) -> Result<Option<ModelFile>> {
        let names = self.names()?;
        let mut weights: Vec<(usize, String)> = names
            .iter()
            .filter_map(|n| {
                let stem = n.strip_suffix(".weight")?;
                let index = stem.rsplit('.').next()?.parse::<usize>().ok()?;
                Some((index, stem.to_string()))
            })
            .collect();
        if weights.is_empty() {
            return Ok(None);
        }
        weights.sort();
        if weights.len() != 2 {
            return Err(GonnError::format(
                path,
                format!(
                    "a state_dict with {} Linear layers ({}); the relu model is Linear(d, r), ReLU(), Linear(r, C)",
                    weights.len(),
                    weights.iter().map(|(_, s)| format!("{s}.weight")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let (first, second) = (&weights[0].1, &weights[1].1);
        if names.iter().any(|n| n == &format!("{second}.bias")) {
            return Err(GonnError::format(
                path,
                format!(
                    "`{second}.bias` is a bias on the last Linear layer (b2), an output offset that the relu model \
                     does not have: train with Linear(r, C, bias=False), or fold the offset into the targets"
                ),
            ));
        }
        let get = |n: &str| self.tensor(n)?.ok_or_else(|| GonnError::format(path, format!("no tensor named `{n}`")));
        let w1t = get(&format!("{first}.weight"))?;
        let w2 = get(&format!("{second}.weight"))?;
        let (r, d) = (w1t.nrows(), w1t.ncols());
        let w1 = match self.tensor(&format!("{first}.bias"))? {
            Some(b) if b.nrows() * b.ncols() == r => {
                let b: Vec<f64> =
                    (0..b.nrows()).flat_map(|i| (0..b.ncols()).map(move |j| (i, j))).map(|ij| b[ij]).collect();
                Mat::from_fn(d + 1, r, |i, j| if i < d { w1t[(j, i)] } else { b[j] })
            }
            Some(b) => {
                return Err(GonnError::Shape(format!(
                    "`{first}.bias` has {} entries but `{first}.weight` has {r} rows (hidden units)",
                    b.nrows() * b.ncols()
                )))
            }
            None => w1t.transpose().to_owned(),
        };
        if w2.ncols() != r {
            return Err(GonnError::Shape(format!(
                "`{second}.weight` is {} x {} but `{first}.weight` has {r} rows: the layers do not chain",
                w2.nrows(),
                w2.ncols()
            )));
        }
        Ok(Some(ModelFile { kind: "relu".into(), weights: Weights { layers: vec![w1, w2] }, metadata: HashMap::new() }))
    }

    /// The string metadata of a safetensors header (none for an `.npz`).
    fn metadata(&self) -> Result<HashMap<String, String>> {
        match self {
            WeightSource::Npz(_) => Ok(HashMap::new()),
            WeightSource::Safetensors(path, bytes) => {
                let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| GonnError::format(path, e))?;
                Ok(meta.metadata().clone().unwrap_or_default())
            }
        }
    }

    /// The layers of a `kind` model, with the file's metadata.
    fn model(&self, path: &Path, kind: &str) -> Result<ModelFile> {
        let metadata = self.metadata()?;
        let names = match kind {
            // Deep models: W1, W2, ... as far as the file goes.
            "mlp" | "cnn" => {
                let mut k = 0;
                while self.tensor(&format!("W{}", k + 1))?.is_some() {
                    k += 1;
                }
                layer_names(kind, k.max(1))
            }
            _ => layer_names(kind, 0),
        };
        if let Some(k) = metadata.get("gonn_model") {
            if k != kind {
                return Err(GonnError::format(path, format!("holds a `{k}` model, not `{kind}`")));
            }
        }
        let missing = |n: &str| match self {
            WeightSource::Npz(_) => GonnError::format(path, format!("the archive has no array named `{n}`")),
            WeightSource::Safetensors(..) => GonnError::format(path, format!("no tensor named `{n}`")),
        };
        let layers = names.iter().map(|n| self.tensor(n)?.ok_or_else(|| missing(n))).collect::<Result<Vec<_>>>()?;
        let r = layers[0].ncols();
        if let Some((i, l)) = layers.iter().enumerate().find(|(_, l)| l.ncols() != r) {
            return Err(GonnError::Shape(format!(
                "`{}` has {} columns but `{}` has {r}: every layer needs one column per subnetwork",
                names[i],
                l.ncols(),
                names[0]
            )));
        }
        Ok(ModelFile { kind: kind.to_string(), weights: Weights { layers }, metadata })
    }
}

/// Reads the layers of a `kind` model from a safetensors file (written by gonn or another tool) or an `.npz`.
pub fn load_weights(path: impl AsRef<Path>, kind: &str) -> Result<ModelFile> {
    let path = path.as_ref();
    WeightSource::open(path)?.model(path, kind)
}

/// Reads a model written by gonn, whatever its kind (stored in the metadata).
pub fn load_model(path: impl AsRef<Path>) -> Result<ModelFile> {
    let path = path.as_ref();
    gonn_model(WeightSource::open(path)?, path)
}

fn gonn_model(source: WeightSource<'_>, path: &Path) -> Result<ModelFile> {
    let kind = source.metadata()?.get("gonn_model").cloned().ok_or_else(|| {
        GonnError::format(
            path,
            "not a model written by gonn (no gonn_model in its metadata); fit a relu model or an mlp:/cnn: \
                 model with `gonn fit ... --out FILE`",
        )
    })?;
    source.model(path, &kind)
}

/// The layers of a two-layer ReLU network for inputs with `inputs` features and `outputs` outputs, from `W1`/`W2`
/// (below) or from a PyTorch `state_dict` (`0.weight`, `0.bias`, `2.weight`; a last-layer bias is refused).
///
/// `W1` is `d x r` (no bias), or `(d + 1) x r` with the first-layer bias as its last row, or `d x r` plus a
/// separate `b1` (`r`); `W2` is `C x r`. For PyTorch's `nn.Sequential(nn.Linear(d, r), nn.ReLU(),
/// nn.Linear(r, C, bias=False))` this is `W1 = [l1.weight.T; l1.bias]` and `W2 = l2.weight`.
pub fn load_relu_weights(path: impl AsRef<Path>, inputs: usize, outputs: usize, bias: bool) -> Result<ModelFile> {
    let path = path.as_ref();
    let source = WeightSource::open(path)?;
    let mut model = match source.tensor("W1")? {
        Some(_) => source.model(path, "relu")?,
        None => match source.torch_relu(path)? {
            Some(m) => m,
            None => source.model(path, "relu")?,
        },
    };
    let w1 = &model.weights.layers[0];
    let (rows, r) = (w1.nrows(), w1.ncols());
    let hint = "W1 must be d x r or (d+1) x r with the bias row last (PyTorch: W1 = first.weight.T)";
    if rows == inputs && bias {
        match source.tensor("b1")? {
            Some(b) if b.nrows() * b.ncols() == r => {
                let b: Vec<f64> =
                    (0..b.nrows()).flat_map(|i| (0..b.ncols()).map(move |j| (i, j))).map(|ij| b[ij]).collect();
                model.weights.layers[0] =
                    Mat::from_fn(inputs + 1, r, |i, j| if i < inputs { w1[(i, j)] } else { b[j] });
            }
            Some(b) => {
                return Err(GonnError::Shape(format!(
                    "b1 has {} entries but W1 has {r} columns (hidden units)",
                    b.nrows() * b.ncols()
                )))
            }
            None => {
                return Err(GonnError::Shape(format!(
                    "W1 is {rows} x {r}: a network without first-layer bias for d = {inputs} features; pass \
                     --no-bias, or give the bias as the last row of W1 or as b1"
                )))
            }
        }
    } else if rows == inputs + 1 && !bias {
        return Err(GonnError::Shape(format!(
            "W1 is {rows} x {r}, with a bias row, but the model has no bias (--no-bias); {hint}"
        )));
    } else if rows != inputs + usize::from(bias) {
        return Err(GonnError::Shape(format!("W1 is {rows} x {r} but the data has d = {inputs} features; {hint}")));
    }
    let w2 = &model.weights.layers[1];
    if w2.nrows() != outputs {
        return Err(GonnError::Shape(format!(
            "W2 is {} x {} but the targets have {outputs} outputs; W2 must be C x r (PyTorch: second.weight)",
            w2.nrows(),
            w2.ncols()
        )));
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_roundtrip_keeps_weights_and_metadata() {
        let dir = std::env::temp_dir().join(format!("gonn-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let w = Weights {
            layers: vec![Mat::from_fn(4, 2, |i, j| (i * 2 + j) as f64), Mat::from_fn(3, 2, |i, j| i as f64 - j as f64)],
        };
        let mut metadata = HashMap::new();
        metadata.insert("lambda".to_string(), "0.5".to_string());
        let path = dir.join("m.safetensors");
        save_model(&path, &ModelFile { kind: "factor".into(), weights: w.clone(), metadata }).unwrap();
        let back = load_weights(&path, "factor").unwrap();
        assert_eq!(back.metadata["lambda"], "0.5");
        assert_eq!(back.weights.layers[0], w.layers[0]);
        assert_eq!(back.weights.layers[1], w.layers[1]);
        assert!(load_weights(&path, "cp").is_err());
        let empty = Weights::empty(&[4, 3]);
        save_model(&path, &ModelFile { kind: "factor".into(), weights: empty, metadata: HashMap::new() }).unwrap();
        assert_eq!(load_weights(&path, "factor").unwrap().weights.width(), 0);
        std::fs::remove_dir_all(&dir).ok();
    }
}
