//! The JSON report written by `fit` and `certify`.

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::meta::certificate::Certificate;
use crate::meta::{IterationRecord, Termination};

/// Everything a run reports, with the certificate's fields at the top level.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub command: String,
    pub model: String,
    pub norms: String,
    pub nonneg: String,
    pub loss_function: String,
    pub shape: Vec<usize>,
    /// Deep models: the subnetwork (`mlp:32,16`, `cnn:...`), its activation, its degree of homogeneity and the
    /// regularizer's form and degree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnetwork: Option<SubnetworkInfo>,
    pub tol: f64,
    #[serde(flatten)]
    pub certificate: Certificate,
    pub outer_iterations: usize,
    pub seconds: f64,
    /// Why the run ended (`certified`, `no_better_subnetwork`, `fixed_width_converged`, `max_outer`, `max_time`,
    /// `interrupted`); the certificate's `status` says what is proven.
    pub termination: Option<Termination>,
    /// The same as `termination` (the name of earlier releases).
    pub stop_reason: Option<Termination>,
    pub summary: String,
    pub model_file: Option<String>,
    pub plot_file: Option<String>,
    pub history: Vec<IterationRecord>,
    /// `--validation-fraction`: the error of this model on the held-out entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<crate::meta::path::Validation>,
    /// `--lambda-path`: every fit of the path (the model reported above is the kept one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda_path: Option<Vec<crate::meta::path::PathPoint>>,
}

/// What a deep model's report says about its subnetwork.
#[derive(Clone, Debug, Serialize)]
pub struct SubnetworkInfo {
    pub architecture: String,
    pub activation: String,
    pub degree: usize,
    pub regularizer: String,
    pub regularizer_degree: usize,
}

impl Report {
    /// Writes the report as pretty JSON, atomically.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("reports serialize");
        super::write_atomic(path, text.as_bytes())
    }
}
