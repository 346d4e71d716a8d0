//! Per-feature standardization of network inputs, `x <- (x - mean) / scale` (`--standardize`), stored with the
//! model so that predictions apply the same map.

use std::collections::HashMap;

use faer::Mat;
use serde::{Deserialize, Serialize};

use crate::error::{GonnError, Result};

/// The mean and scale of each input feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

impl Scaling {
    /// Mean and standard deviation of each column (a constant column keeps scale 1).
    pub fn fit(x: &Mat<f64>) -> Self {
        let n = x.nrows() as f64;
        let mean: Vec<f64> = (0..x.ncols()).map(|j| x.col(j).iter().sum::<f64>() / n).collect();
        let scale = (0..x.ncols())
            .map(|j| {
                let sd = (x.col(j).iter().map(|v| (v - mean[j]).powi(2)).sum::<f64>() / n).sqrt();
                if sd > 0.0 {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Self { mean, scale }
    }

    /// Standardizes `x` in place; its columns must be the fitted features.
    pub fn apply(&self, x: &mut Mat<f64>) -> Result<()> {
        if x.ncols() != self.mean.len() {
            return Err(GonnError::Shape(format!(
                "the model expects {} input features but X has {} columns",
                self.mean.len(),
                x.ncols()
            )));
        }
        for j in 0..x.ncols() {
            for i in 0..x.nrows() {
                x[(i, j)] = (x[(i, j)] - self.mean[j]) / self.scale[j];
            }
        }
        Ok(())
    }

    /// Stores the scaling in a model's metadata (`x_mean`, `x_scale`).
    pub fn store(&self, metadata: &mut HashMap<String, String>) {
        metadata.insert("x_mean".into(), serde_json::to_string(&self.mean).expect("serializable"));
        metadata.insert("x_scale".into(), serde_json::to_string(&self.scale).expect("serializable"));
    }

    /// The scaling stored in a model's metadata, if any.
    pub fn load(metadata: &HashMap<String, String>) -> Result<Option<Self>> {
        match (metadata.get("x_mean"), metadata.get("x_scale")) {
            (Some(m), Some(s)) => {
                let bad = |_| GonnError::param("model_file", "bad x_mean/x_scale metadata");
                let s =
                    Self { mean: serde_json::from_str(m).map_err(bad)?, scale: serde_json::from_str(s).map_err(bad)? };
                if s.mean.len() != s.scale.len() || s.scale.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
                    return Err(GonnError::param("model_file", "bad x_mean/x_scale metadata"));
                }
                Ok(Some(s))
            }
            _ => Ok(None),
        }
    }
}
