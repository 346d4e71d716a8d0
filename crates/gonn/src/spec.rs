//! A model described by name, as on the command line: `factor` with a norm pair and sign constraints, `cp`,
//! `relu` (one hidden layer of units), or a deep/convolutional stack such as `mlp:32,16` or `cnn:c8k3,pool2`.
//! It knows which data it needs and builds the matching [`Family`](crate::core::Family).

use std::collections::HashMap;
use std::path::Path;

use crate::core::loss::Observations;
use crate::core::norms::{LayerNorm, Norm};
use crate::core::{Family, Regularizer};
use crate::error::{GonnError, Result};
use crate::families::deep::{Activation, Architecture, DeepNetwork, ImageShape};
use crate::families::{CpTensor, MatrixFactorization, PolarMode, ReluNetwork};
use crate::io::read_array_opt;

/// A model family with its regularizer: data-free, so that it can be stored with a model (as one JSON value,
/// see [`SpecRecord`]) and bound to new data ([`ModelSpec::bind_supervised`], [`ModelSpec::build`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(into = "SpecRecord", try_from = "SpecRecord")]
pub enum ModelSpec {
    /// `u v^T` with `theta = ||u||_a ||v||_b`.
    Factor { norms: [LayerNorm; 2] },
    /// `a ∘ b ∘ c` with the product of `l2` norms.
    Cp,
    /// One hidden ReLU unit `(X u)_+ v^T` with `theta = ||u||_2 ||v||_(output_norm)`.
    Relu { bias: bool, output_norm: Norm, polar: PolarMode },
    /// A stack of homogeneous layers per subnetwork, with `theta` built from the layers' Frobenius norms.
    Deep { arch: Architecture, image: Option<ImageShape>, bias: bool, reg: Regularizer },
}

/// Parses `HxW` or `HxWxC` (image height, width and channels).
pub fn parse_image(s: &str) -> Result<ImageShape> {
    let parts: Vec<&str> = s.trim().split(['x', 'X']).collect();
    let nums: Option<Vec<usize>> =
        parts.iter().map(|p| p.trim().parse().ok().filter(|v| *v > 0 && *v <= 1 << 20)).collect();
    match nums.as_deref() {
        Some(&[h, w]) => Ok((h, w, 1)),
        Some(&[h, w, c]) => Ok((h, w, c)),
        _ => Err(GonnError::param(
            "image",
            format!("`{s}` (expected HxW or HxWxC with each side between 1 and 2^20, e.g. 8x8)"),
        )),
    }
}

/// The JSON form of a [`ModelSpec`]: the model as on the command line and its options.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SpecRecord {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norms: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonneg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_norm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polar: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl From<ModelSpec> for SpecRecord {
    fn from(spec: ModelSpec) -> Self {
        let mut r = SpecRecord {
            model: spec.kind().into(),
            norms: None,
            nonneg: None,
            bias: None,
            output_norm: None,
            polar: None,
            activation: None,
            reg: None,
            image: None,
        };
        match &spec {
            ModelSpec::Factor { .. } => {
                r.norms = Some(spec.norms_string());
                r.nonneg = Some(spec.nonneg_string().into());
            }
            ModelSpec::Cp => {}
            ModelSpec::Relu { bias, output_norm, polar } => {
                r.bias = Some(*bias);
                r.output_norm = Some(output_norm.to_string());
                r.polar = Some(polar.name().into());
            }
            ModelSpec::Deep { arch, image, bias, reg } => {
                r.model = arch.to_string();
                r.activation = Some(arch.activation.to_string());
                r.bias = Some(*bias);
                r.reg = Some(reg.name().into());
                r.image = image.map(|(h, w, c)| format!("{h}x{w}x{c}"));
            }
        }
        r
    }
}

impl TryFrom<SpecRecord> for ModelSpec {
    type Error = GonnError;
    fn try_from(r: SpecRecord) -> Result<Self> {
        let mut spec = ModelSpec::parse(&r.model, r.norms.as_deref(), r.nonneg.as_deref())?;
        match &mut spec {
            ModelSpec::Relu { bias, output_norm, polar } => {
                *bias = r.bias.unwrap_or(true);
                if let Some(n) = &r.output_norm {
                    *output_norm = n.parse()?;
                }
                if let Some(p) = &r.polar {
                    *polar = p.parse()?;
                }
            }
            ModelSpec::Deep { arch, image, bias, reg } => {
                if let Some(a) = &r.activation {
                    arch.activation = Activation::parse(a)?;
                }
                *bias = r.bias.unwrap_or(true);
                if let Some(g) = &r.reg {
                    *reg = g.parse()?;
                }
                *image = r.image.as_deref().map(parse_image).transpose()?;
            }
            _ => {}
        }
        Ok(spec)
    }
}

impl ModelSpec {
    /// The spec as one JSON value (stored in model files under `spec`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a spec serializes")
    }

    /// The spec from its JSON value.
    pub fn from_json(text: &str) -> Result<Self> {
        // Through the record, so that a bad option gives the same error as on the command line.
        let record: SpecRecord =
            serde_json::from_str(text).map_err(|e| GonnError::param("spec", format!("not a model spec: {e}")))?;
        ModelSpec::try_from(record)
    }

    /// The family of a supervised model bound to inputs `x` (`n x d`, without the bias column) with `outputs`
    /// outputs; the same as [`ModelSpec::build_supervised`].
    pub fn bind_supervised(&self, x: faer::MatRef<'_, f64>, outputs: usize) -> Result<Box<dyn Family>> {
        self.build_supervised(x, outputs)
    }

    /// Parses `--model`, `--norms A,B` (default `l2,l2`) and `--nonneg u|v|both`.
    pub fn parse(model: &str, norms: Option<&str>, nonneg: Option<&str>) -> Result<Self> {
        match model.trim().to_ascii_lowercase().as_str() {
            "factor" => {
                let parts: Vec<&str> = norms.unwrap_or("l2,l2").split(',').collect();
                if parts.len() != 2 {
                    return Err(GonnError::param(
                        "norms",
                        format!("`{}`: expected two norms A,B", norms.unwrap_or("")),
                    ));
                }
                let (a, b): (Norm, Norm) = (parts[0].parse()?, parts[1].parse()?);
                let (nu, nv) = match nonneg.map(|s| s.trim().to_ascii_lowercase()) {
                    None => (false, false),
                    Some(s) => match s.as_str() {
                        "u" => (true, false),
                        "v" => (false, true),
                        "both" => (true, true),
                        "none" => (false, false),
                        other => {
                            return Err(GonnError::param("nonneg", format!("`{other}` (expected u, v, both or none)")))
                        }
                    },
                };
                Ok(ModelSpec::Factor { norms: [LayerNorm::new(a, nu), LayerNorm::new(b, nv)] })
            }
            "cp" => {
                if let Some(n) = norms {
                    if n.split(',').any(|p| p.trim().parse::<Norm>().ok() != Some(Norm::L2)) {
                        return Err(GonnError::param("norms", format!("`{n}`: the cp model uses l2 norms only")));
                    }
                }
                if nonneg.is_some_and(|s| s != "none") {
                    return Err(GonnError::param("nonneg", "the cp model has no sign constraints"));
                }
                Ok(ModelSpec::Cp)
            }
            "relu" => {
                if norms.is_some() || nonneg.is_some_and(|s| s != "none") {
                    return Err(GonnError::param(
                        "norms",
                        "the relu model has theta = ||u||_2 ||v||; choose ||v|| with --output-norm",
                    ));
                }
                Ok(ModelSpec::Relu { bias: true, output_norm: Norm::L2, polar: PolarMode::Auto })
            }
            m if m.starts_with("mlp:") || m.starts_with("cnn:") => {
                if norms.is_some() || nonneg.is_some_and(|s| s != "none") {
                    return Err(GonnError::param(
                        "norms",
                        "deep models use the Frobenius norm of each layer; choose the form with --reg",
                    ));
                }
                Ok(ModelSpec::Deep {
                    arch: Architecture::parse(m, Activation::Relu)?,
                    image: None,
                    bias: true,
                    reg: Regularizer::Product,
                })
            }
            other => Err(GonnError::param(
                "model",
                format!("unknown model `{other}` (expected factor, cp, relu, mlp:W1,.. or cnn:c8k3,pool2,..)"),
            )),
        }
    }

    /// Name stored in model files.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelSpec::Factor { .. } => "factor",
            ModelSpec::Cp => "cp",
            ModelSpec::Relu { .. } => "relu",
            ModelSpec::Deep { arch, .. } => arch.kind(),
        }
    }

    /// Whether the model maps inputs `X` to targets `Y` (relu and deep models).
    pub fn supervised(&self) -> bool {
        matches!(self, ModelSpec::Relu { .. } | ModelSpec::Deep { .. })
    }

    /// The norms as written on the command line (`l2,l2`).
    pub fn norms_string(&self) -> String {
        match self {
            ModelSpec::Factor { norms } => format!("{},{}", norms[0].norm, norms[1].norm),
            ModelSpec::Cp => "l2,l2,l2".into(),
            ModelSpec::Relu { output_norm, .. } => format!("l2,{output_norm}"),
            ModelSpec::Deep { arch, .. } => vec!["l2"; arch.degree()].join(","),
        }
    }

    /// `none`, `u`, `v` or `both`.
    pub fn nonneg_string(&self) -> &'static str {
        match self {
            ModelSpec::Factor { norms } => match (norms[0].nonneg, norms[1].nonneg) {
                (false, false) => "none",
                (true, false) => "u",
                (false, true) => "v",
                (true, true) => "both",
            },
            ModelSpec::Cp | ModelSpec::Relu { .. } | ModelSpec::Deep { .. } => "none",
        }
    }

    /// Reads `Y` (array `key`) and the mask (array `mask_key`, which must then exist, or `mask` when present, in
    /// an `.npz`) and returns the observations
    /// with the data's shape (`[m, n]` or `[m, n, k]`).
    pub fn load_data(
        &self,
        path: impl AsRef<Path>,
        key: &str,
        mask_key: Option<&str>,
    ) -> Result<(Observations, Vec<usize>)> {
        let (mask_key, required) = (mask_key.unwrap_or("mask"), mask_key.is_some());
        let path = path.as_ref();
        let y = read_array_opt(path, key)?
            .ok_or_else(|| GonnError::format(path, format!("the archive has no array named `{key}` (use --key)")))?;
        let mask = match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("npz") => read_array_opt(path, mask_key)?,
            _ if required => {
                return Err(GonnError::format(path, format!("--mask-key `{mask_key}` needs an .npz that holds it")))
            }
            _ => None,
        };
        let (ym, dims) = match self {
            ModelSpec::Factor { .. } => {
                if y.shape.len() != 2 {
                    return Err(GonnError::Shape(format!(
                        "the factor model needs a matrix Y; got shape {:?}",
                        y.shape
                    )));
                }
                (y.to_mat(key)?, y.shape.clone())
            }
            ModelSpec::Cp => {
                let (u, d) = y.to_unfolding(key)?;
                (u, d.to_vec())
            }
            ModelSpec::Relu { .. } | ModelSpec::Deep { .. } => {
                return Err(GonnError::param("model", "this model reads inputs and targets: use io::load_supervised"))
            }
        };
        let mask = match mask {
            None if required => {
                return Err(GonnError::format(
                    path,
                    format!("the archive has no array named `{mask_key}` (the --mask-key given)"),
                ))
            }
            None => None,
            Some(m) if m.shape != dims => {
                return Err(GonnError::Shape(format!("mask has shape {:?} but Y has shape {:?}", m.shape, dims)))
            }
            Some(m) => Some(match self {
                ModelSpec::Cp => m.to_unfolding(mask_key)?.0,
                _ => m.to_mat(mask_key)?,
            }),
        };
        Ok((Observations::new(ym, mask)?, dims))
    }

    /// The subnetwork family for data of shape `dims`.
    pub fn build(&self, dims: &[usize]) -> Result<Box<dyn Family>> {
        match (self, dims) {
            (ModelSpec::Factor { norms }, [m, n]) => Ok(Box::new(MatrixFactorization::new(*m, *n, *norms))),
            (ModelSpec::Cp, [m, n, k]) => Ok(Box::new(CpTensor::new(*m, *n, *k))),
            (ModelSpec::Relu { .. } | ModelSpec::Deep { .. }, _) => {
                Err(GonnError::param("model", "this model is built from its inputs: use build_supervised"))
            }
            _ => Err(GonnError::Shape(format!("data of shape {dims:?} does not fit the {} model", self.kind()))),
        }
    }

    /// The ReLU family on inputs `x` (`n x d`, without the bias column) with `outputs` outputs.
    pub fn build_relu(&self, x: faer::MatRef<'_, f64>, outputs: usize) -> Result<ReluNetwork> {
        match self {
            ModelSpec::Relu { bias, output_norm, polar } => ReluNetwork::new(x, outputs, *bias, *output_norm, *polar),
            _ => Err(GonnError::param("model", format!("the {} model has no inputs", self.kind()))),
        }
    }

    /// The family of a supervised model (relu or deep) on inputs `x` (`n x d`, without the bias column) with
    /// `outputs` outputs.
    pub fn build_supervised(&self, x: faer::MatRef<'_, f64>, outputs: usize) -> Result<Box<dyn Family>> {
        match self {
            ModelSpec::Deep { .. } => Ok(Box::new(self.build_deep(x, outputs)?)),
            _ => Ok(Box::new(self.build_relu(x, outputs)?)),
        }
    }

    /// The deep family on inputs `x` with `outputs` outputs.
    pub fn build_deep(&self, x: faer::MatRef<'_, f64>, outputs: usize) -> Result<DeepNetwork> {
        match self {
            ModelSpec::Deep { arch, image, bias, reg } => {
                DeepNetwork::new(x, outputs, arch.clone(), *image, *bias, *reg)
            }
            _ => Err(GonnError::param("model", format!("the {} model is not a deep stack", self.kind()))),
        }
    }

    /// The deep model described by a model file's metadata (as written by [`ModelSpec::metadata`]).
    pub fn deep_from_metadata(meta: &HashMap<String, String>) -> Result<Self> {
        let get = |k: &str| {
            meta.get(k).ok_or_else(|| GonnError::param("model_file", format!("the model's metadata lacks `{k}`")))
        };
        let act = Activation::parse(get("activation")?)?;
        let arch = Architecture::parse(get("architecture")?, act)?;
        let image = meta.get("image").map(|s| parse_image(s)).transpose()?;
        let bias = get("bias")? != "false";
        let reg: Regularizer = get("reg")?.parse()?;
        Ok(ModelSpec::Deep { arch, image, bias, reg })
    }

    /// A deep model's `(fan_in, fan_out)` per layer for data of shape `[n, d, outputs]` (`None` for the other
    /// models).
    pub fn layer_shapes(&self, shape: &[usize]) -> Result<Option<Vec<(usize, usize)>>> {
        let ModelSpec::Deep { arch, image, bias, .. } = self else { return Ok(None) };
        let [_, d, outputs] = shape else {
            return Err(GonnError::Shape(format!("a deep model's data shape is [n, d, outputs], not {shape:?}")));
        };
        arch.layer_shapes(*d, *image, *bias, *outputs).map(Some)
    }

    /// Metadata stored with the weights.
    pub fn metadata(&self, dims: &[usize]) -> HashMap<String, String> {
        let mut m = HashMap::new();
        if let ModelSpec::Relu { bias, output_norm, .. } = self {
            m.insert("bias".into(), bias.to_string());
            m.insert("output_norm".into(), output_norm.to_string());
        }
        if let ModelSpec::Deep { arch, image, bias, reg } = self {
            m.insert("architecture".into(), arch.to_string());
            m.insert("activation".into(), arch.activation.to_string());
            m.insert("bias".into(), bias.to_string());
            m.insert("reg".into(), reg.name().into());
            m.insert("degree".into(), arch.degree().to_string());
            if let Some((h, w, c)) = image {
                m.insert("image".into(), format!("{h}x{w}x{c}"));
            }
        }
        m.insert("spec".into(), self.to_json());
        m.insert("norms".into(), self.norms_string());
        m.insert("nonneg".into(), self.nonneg_string().into());
        m.insert("shape".into(), format!("{dims:?}"));
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs_and_rejects_bad_ones() {
        let s = ModelSpec::parse("factor", Some("l1,l1l2:0.5"), Some("both")).unwrap();
        assert_eq!(s.norms_string(), "l1,l1l2:0.5");
        assert_eq!(s.nonneg_string(), "both");
        assert!(ModelSpec::parse("factor", Some("l2"), None).is_err());
        assert!(ModelSpec::parse("factor", Some("l2,l7"), None).is_err());
        assert!(ModelSpec::parse("factor", None, Some("w")).is_err());
        assert!(ModelSpec::parse("cp", Some("l1,l2,l2"), None).is_err());
        assert!(ModelSpec::parse("mlp", None, None).is_err());
        assert_eq!(ModelSpec::parse("mlp:8,4", None, None).unwrap().norms_string(), "l2,l2,l2");
        assert!(ModelSpec::parse("mlp:8", Some("l1,l1"), None).is_err());
        assert_eq!(parse_image("8x8").unwrap(), (8, 8, 1));
        assert_eq!(parse_image("4x5x3").unwrap(), (4, 5, 3));
        assert!(parse_image("8").is_err() && parse_image("0x3").is_err());
        assert!(ModelSpec::parse("relu", Some("l2,l2"), None).is_err());
        assert_eq!(ModelSpec::parse("relu", None, None).unwrap().kind(), "relu");
        assert_eq!(ModelSpec::parse("cp", None, None).unwrap().build(&[2, 3, 4]).unwrap().degree(), 3);
    }
}
