//! Model files: the weights of each layer as named tensors (`U`, `V` for a factorization, `A`, `B`, `C` for a CP
//! tensor), each `dim x r` in C order, plus metadata (model kind, norms, lambda, loss, shape and the certificate
//! as JSON) in the safetensors header. Weights made elsewhere can also come from an `.npz` with the same names.

use std::collections::HashMap;
use std::path::Path;

use faer::Mat;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::arrays::{read_array, Array};
use crate::error::{GonnError, Result};
use crate::subnetwork::Weights;

/// Tensor names of each model kind's layers.
pub fn layer_names(kind: &str) -> &'static [&'static str] {
    match kind {
        "cp" => &["A", "B", "C"],
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

/// Reads the layers of a `kind` model from a safetensors file (written by gonn or another tool) or an `.npz`.
pub fn load_weights(path: impl AsRef<Path>, kind: &str) -> Result<ModelFile> {
    let path = path.as_ref();
    let names = layer_names(kind);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let (layers, metadata) = if ext == "npz" {
        let layers = names.iter().map(|n| read_array(path, n)?.to_mat(n)).collect::<Result<Vec<_>>>()?;
        (layers, HashMap::new())
    } else {
        let bytes = std::fs::read(path).map_err(|e| GonnError::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| GonnError::format(path, format!("not a valid safetensors file ({e})")))?;
        let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| GonnError::format(path, e))?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        if let Some(k) = metadata.get("gonn_model") {
            if k != kind {
                return Err(GonnError::format(path, format!("holds a `{k}` model, not `{kind}`")));
            }
        }
        let layers = names
            .iter()
            .map(|n| {
                let v = st.tensor(n).map_err(|_| GonnError::format(path, format!("no tensor named `{n}`")))?;
                view_to_mat(path, n, &v)
            })
            .collect::<Result<Vec<_>>>()?;
        (layers, metadata)
    };
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
