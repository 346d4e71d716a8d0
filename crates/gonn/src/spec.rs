//! A model described by name, as on the command line: `factor` with a norm pair and sign constraints, or `cp`.
//! It knows which data it needs and builds the matching [`Subnetwork`] family.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{GonnError, Result};
use crate::io::read_array_opt;
use crate::loss::Observations;
use crate::norms::{LayerNorm, Norm};
use crate::subnetwork::{CpTensor, MatrixFactorization, PolarMode, ReluNetwork, Subnetwork};

/// A model family with its regularizer.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSpec {
    /// `u v^T` with `theta = ||u||_a ||v||_b`.
    Factor { norms: [LayerNorm; 2] },
    /// `a ∘ b ∘ c` with the product of `l2` norms.
    Cp,
    /// One hidden ReLU unit `(X u)_+ v^T` with `theta = ||u||_2 ||v||_(output_norm)`.
    Relu { bias: bool, output_norm: Norm, polar: PolarMode },
}

impl ModelSpec {
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
            other => Err(GonnError::param("model", format!("unknown model `{other}` (expected factor, cp or relu)"))),
        }
    }

    /// Name stored in model files.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelSpec::Factor { .. } => "factor",
            ModelSpec::Cp => "cp",
            ModelSpec::Relu { .. } => "relu",
        }
    }

    /// The norms as written on the command line (`l2,l2`).
    pub fn norms_string(&self) -> String {
        match self {
            ModelSpec::Factor { norms } => format!("{},{}", norms[0].norm, norms[1].norm),
            ModelSpec::Cp => "l2,l2,l2".into(),
            ModelSpec::Relu { output_norm, .. } => format!("l2,{output_norm}"),
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
            ModelSpec::Cp | ModelSpec::Relu { .. } => "none",
        }
    }

    /// Reads `Y` (array `key`) and the optional mask (array `mask_key`, in an `.npz`) and returns the observations
    /// with the data's shape (`[m, n]` or `[m, n, k]`).
    pub fn load_data(&self, path: impl AsRef<Path>, key: &str, mask_key: &str) -> Result<(Observations, Vec<usize>)> {
        let path = path.as_ref();
        let y = read_array_opt(path, key)?
            .ok_or_else(|| GonnError::format(path, format!("the archive has no array named `{key}` (use --key)")))?;
        let mask = match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("npz") => read_array_opt(path, mask_key)?,
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
            ModelSpec::Relu { .. } => {
                return Err(GonnError::param("model", "the relu model reads inputs and targets: use load_supervised"))
            }
        };
        let mask = match mask {
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
    pub fn build(&self, dims: &[usize]) -> Result<Box<dyn Subnetwork>> {
        match (self, dims) {
            (ModelSpec::Factor { norms }, [m, n]) => Ok(Box::new(MatrixFactorization::new(*m, *n, *norms))),
            (ModelSpec::Cp, [m, n, k]) => Ok(Box::new(CpTensor::new(*m, *n, *k))),
            (ModelSpec::Relu { .. }, _) => {
                Err(GonnError::param("model", "the relu model is built from its inputs: use build_relu"))
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

    /// Metadata stored with the weights.
    pub fn metadata(&self, dims: &[usize]) -> HashMap<String, String> {
        let mut m = HashMap::new();
        if let ModelSpec::Relu { bias, output_norm, .. } = self {
            m.insert("bias".into(), bias.to_string());
            m.insert("output_norm".into(), output_norm.to_string());
        }
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
        assert!(ModelSpec::parse("relu", Some("l2,l2"), None).is_err());
        assert_eq!(ModelSpec::parse("relu", None, None).unwrap().kind(), "relu");
        assert_eq!(ModelSpec::parse("cp", None, None).unwrap().build(&[2, 3, 4]).unwrap().degree(), 3);
    }
}
