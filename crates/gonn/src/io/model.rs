//! Model files: the weights of each layer as named tensors (`U`, `V` for a factorization, `A`, `B`, `C` for a CP
//! tensor), each `dim x r` in C order, plus metadata (model kind, norms, lambda, loss, shape and the certificate
//! as JSON) in the safetensors header. Weights made elsewhere can also come from an `.npz` with the same names.

use std::collections::HashMap;
use std::path::Path;

use faer::Mat;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::arrays::Array;
use crate::error::{GonnError, Result};
use crate::subnetwork::Weights;

/// Tensor names of each model kind's layers.
pub fn layer_names(kind: &str) -> &'static [&'static str] {
    match kind {
        "cp" => &["A", "B", "C"],
        "relu" => &["W1", "W2"],
        _ => &["U", "V"],
    }
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
    let names = layer_names(&model.kind);
    let bufs: Vec<(String, Vec<usize>, Vec<u8>)> = model
        .weights
        .layers
        .iter()
        .zip(names)
        .map(|(l, name)| {
            let a = layer_array(l);
            (name.to_string(), a.shape.clone(), a.data.iter().flat_map(|v| v.to_le_bytes()).collect())
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
    super::write_atomic(path, &bytes)
}

fn view_to_mat(path: &Path, name: &str, v: &TensorView<'_>) -> Result<Mat<f64>> {
    let shape = v.shape();
    let (rows, cols) = match shape {
        [r, c] => (*r, *c),
        [r] => (*r, 1),
        s => {
            return Err(GonnError::Shape(format!(
                "tensor `{name}` in {} has shape {s:?}; expected a matrix",
                path.display()
            )))
        }
    };
    let data: Vec<f64> = match v.dtype() {
        Dtype::F64 => v.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect(),
        Dtype::F32 => v.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect(),
        d => return Err(GonnError::format(path, format!("tensor `{name}` has dtype {d:?}; expected F64 or F32"))),
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
            WeightSource::Npz(path) => super::arrays::read_array_opt(path, name)?.map(|a| a.to_mat(name)).transpose(),
            WeightSource::Safetensors(path, bytes) => {
                let st = SafeTensors::deserialize(bytes).map_err(|e| GonnError::format(path, e))?;
                st.tensor(name).ok().map(|v| view_to_mat(path, name, &v)).transpose()
            }
        }
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
        let names = layer_names(kind);
        let metadata = self.metadata()?;
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

/// The layers of a two-layer ReLU network for inputs with `inputs` features and `outputs` outputs.
///
/// `W1` is `d x r` (no bias), or `(d + 1) x r` with the first-layer bias as its last row, or `d x r` plus a
/// separate `b1` (`r`); `W2` is `C x r`. For PyTorch's `nn.Sequential(nn.Linear(d, r), nn.ReLU(),
/// nn.Linear(r, C, bias=False))` this is `W1 = [l1.weight.T; l1.bias]` and `W2 = l2.weight`.
pub fn load_relu_weights(path: impl AsRef<Path>, inputs: usize, outputs: usize, bias: bool) -> Result<ModelFile> {
    let path = path.as_ref();
    let source = WeightSource::open(path)?;
    let mut model = source.model(path, "relu")?;
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
