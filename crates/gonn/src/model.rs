//! A fitted model that predicts, saves and loads, in the library alone: a data-free [`ModelSpec`] bound to
//! training data, the meta-algorithm's result, the input scaling, and the problem it is optimal for (lambda,
//! loss). The one file that names every model kind's rebuilding.
//!
//! ```
//! use gonn::faer::Mat;
//! use gonn::model::FittedModel;
//! use gonn::prelude::*;
//!
//! // y = |x| sampled on [-1, 1]: two ReLU units fit it.
//! let x = Mat::from_fn(40, 1, |i, _| -1.0 + 2.0 * i as f64 / 39.0);
//! let y = Mat::from_fn(40, 1, |i, _| x[(i, 0)].abs());
//! let spec = ModelSpec::parse("relu", None, None)?;
//! let params = FitParams::new(0.01).validate()?;
//! let model = FittedModel::fit_supervised(&spec, x.clone(), Observations::new(y, None)?, &params, false)?;
//! assert_eq!(model.certificate.status, Status::Certified);
//! let path = std::env::temp_dir().join(format!("gonn-doc-{}.safetensors", std::process::id()));
//! model.save(&path)?;
//! let again = FittedModel::load(&path)?;
//! let (a, b) = (model.predict(x.as_ref(), 1)?, again.predict(x.as_ref(), 1)?);
//! assert!((0..40).all(|i| a[(i, 0)] == b[(i, 0)]));
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), gonn::GonnError>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use faer::{Mat, MatRef};

use crate::core::loss::{Loss, Observations};
use crate::core::Family;
use crate::core::Weights;
use crate::error::{GonnError, Result};
use crate::io::{load_model, save_model, ModelFile};
use crate::meta::certificate::Certificate;
use crate::meta::{parallelism, FitResult, IterationRecord, Termination, ValidFitParams};
use crate::preprocessing::Scaling;
use crate::spec::ModelSpec;

/// A model with its certificate, ready to predict and to be saved.
#[derive(Clone, Debug)]
pub struct FittedModel {
    pub spec: ModelSpec,
    pub weights: Weights,
    pub certificate: Certificate,
    /// Why the run ended (`None` for files written before this field existed).
    pub termination: Option<Termination>,
    pub history: Vec<IterationRecord>,
    /// Input standardization applied before the network (supervised models).
    pub scaling: Option<Scaling>,
    pub lambda: f64,
    pub loss: Loss,
    /// Shape of the training data: `[n, d, outputs]` for networks, the matrix or tensor shape otherwise.
    pub shape: Vec<usize>,
    /// Number of classes of a classifier.
    pub classes: Option<usize>,
}

impl FittedModel {
    /// The model of a finished run of `params` on a problem of `spec` with data of shape `shape`.
    pub fn new(spec: ModelSpec, fit: FitResult, params: &ValidFitParams, shape: Vec<usize>) -> Self {
        Self {
            spec,
            weights: fit.weights,
            certificate: fit.certificate,
            termination: Some(fit.termination),
            history: fit.history,
            scaling: None,
            lambda: params.lambda,
            loss: params.loss,
            shape,
            classes: None,
        }
    }

    /// Fits a supervised model (relu, mlp, cnn) to inputs `x` (`n x d`) and targets `obs` (`n x outputs`), with
    /// inputs standardized first when `standardize`.
    pub fn fit_supervised(
        spec: &ModelSpec,
        x: Mat<f64>,
        obs: Observations,
        params: &ValidFitParams,
        standardize: bool,
    ) -> Result<Self> {
        Self::fit_supervised_from(spec, x, obs, params, standardize, None, &mut crate::meta::Silent)
    }

    /// [`FittedModel::fit_supervised`] from the weights `init` (on the standardized inputs when `standardize`),
    /// with an observer of every outer iteration.
    pub fn fit_supervised_from(
        spec: &ModelSpec,
        mut x: Mat<f64>,
        obs: Observations,
        params: &ValidFitParams,
        standardize: bool,
        init: Option<Weights>,
        observer: &mut dyn crate::meta::Observer,
    ) -> Result<Self> {
        if !spec.supervised() {
            return Err(GonnError::param("model", format!("the {} model has no inputs: use fit_matrix", spec.kind())));
        }
        let scaling = standardize.then(|| Scaling::fit(&x));
        if let Some(s) = &scaling {
            s.apply(&mut x)?;
        }
        let net = spec.bind_supervised(x.as_ref(), obs.ncols())?;
        let fit = params.fit_from(net.as_ref(), &obs, init, observer)?;
        let mut model = Self::new(spec.clone(), fit, params, vec![x.nrows(), x.ncols(), obs.ncols()]);
        model.scaling = scaling;
        Ok(model)
    }

    /// Fits a factorization (`factor`: `dims = [m, n]`, `cp`: `[m, n, k]` with `obs` the mode-1 unfolding).
    pub fn fit_matrix(spec: &ModelSpec, obs: &Observations, dims: &[usize], params: &ValidFitParams) -> Result<Self> {
        Self::fit_matrix_from(spec, obs, dims, params, None, &mut crate::meta::Silent)
    }

    /// [`FittedModel::fit_matrix`] from the weights `init`, with an observer of every outer iteration.
    pub fn fit_matrix_from(
        spec: &ModelSpec,
        obs: &Observations,
        dims: &[usize],
        params: &ValidFitParams,
        init: Option<Weights>,
        observer: &mut dyn crate::meta::Observer,
    ) -> Result<Self> {
        let net = spec.build(dims)?;
        let fit = params.fit_from(net.as_ref(), obs, init, observer)?;
        Ok(Self::new(spec.clone(), fit, params, dims.to_vec()))
    }

    /// The network outputs `Phi(W)` on raw inputs `x` (`n x d`; standardized first if the model was fitted that
    /// way), for relu, mlp and cnn models.
    pub fn predict(&self, x: MatRef<'_, f64>, threads: usize) -> Result<Mat<f64>> {
        if !self.spec.supervised() {
            return Err(GonnError::param(
                "model",
                format!("the {} model has no inputs: use completed() for the fitted matrix", self.spec.kind()),
            ));
        }
        if !crate::numerics::linalg::all_finite(x) {
            return Err(GonnError::Data("X has non-finite entries (NaN or infinity)".into()));
        }
        let mut x = x.to_owned();
        if let Some(s) = &self.scaling {
            s.apply(&mut x)?;
        }
        let outputs = *self.shape.last().ok_or_else(|| GonnError::param("model_file", "no output count"))?;
        let net = self.spec.bind_supervised(x.as_ref(), outputs)?;
        self.check_layers(net.as_ref(), x.ncols())?;
        Ok(net.forward(&self.weights, parallelism(threads)))
    }

    /// The fitted matrix `Phi(W)` of a factorization (the mode-1 unfolding of a CP tensor): the completion of
    /// every entry, observed or not.
    pub fn completed(&self, threads: usize) -> Result<Mat<f64>> {
        if self.spec.supervised() {
            return Err(GonnError::param("model", "a network maps inputs: use predict(x)"));
        }
        let net = self.spec.build(&self.shape)?;
        self.check_layers(net.as_ref(), 0)?;
        Ok(net.forward(&self.weights, parallelism(threads)))
    }

    fn check_layers(&self, net: &dyn Family, features: usize) -> Result<()> {
        if net.layer_dims() != self.weights.dims() {
            return Err(GonnError::Shape(format!(
                "the model's layers {:?} do not fit the data (layers {:?} for {features} features)",
                self.weights.dims(),
                net.layer_dims()
            )));
        }
        Ok(())
    }

    /// The metadata written with the weights: [`problem_metadata`], then the certificate and the termination (the
    /// history, with its timings, goes to the report, so that the same fit writes the same file).
    pub fn metadata(&self) -> Result<HashMap<String, String>> {
        let mut m =
            problem_metadata(&self.spec, &self.shape, self.lambda, self.loss, self.classes, self.scaling.as_ref())?;
        m.insert("certificate".into(), serde_json::to_string(&self.certificate).expect("serializable"));
        if let Some(t) = self.termination {
            m.insert("termination".into(), t.to_string());
        }
        Ok(m)
    }

    /// Writes the model as safetensors (atomically).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        save_model(path, &self.file()?)
    }

    /// The weights and metadata as a model file.
    fn file(&self) -> Result<ModelFile> {
        Ok(ModelFile { kind: self.spec.kind().into(), weights: self.weights.clone(), metadata: self.metadata()? })
    }

    /// Reads a model written by [`FittedModel::save`] or by `gonn fit --out` (of this or an earlier release).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_file(load_model(path)?, path)
    }

    /// The bytes of the model file that [`FittedModel::save`] writes (for pickling).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        crate::io::model::model_bytes(&self.file()?)
    }

    /// A model from the bytes of [`FittedModel::to_bytes`] (or of a model file).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        let name = Path::new("model bytes");
        Self::from_file(crate::io::model::model_from_bytes(bytes, name)?, name)
    }

    fn from_file(file: ModelFile, path: &Path) -> Result<Self> {
        let meta = &file.metadata;
        if !file.weights.all_finite() {
            return Err(GonnError::format(path, "the model's weights have non-finite entries (NaN or infinity)"));
        }
        let bad = |what: &str| GonnError::format(path, format!("the model's metadata has no valid `{what}`"));
        let spec = match meta.get("spec") {
            Some(text) => ModelSpec::from_json(text)?,
            None => legacy_spec(&file.kind, meta)?,
        };
        if spec.kind() != file.kind {
            return Err(GonnError::format(
                path,
                format!("holds a {} model but its spec says {}", file.kind, spec.kind()),
            ));
        }
        let shape: Vec<usize> =
            meta.get("shape").and_then(|s| serde_json::from_str(s).ok()).ok_or_else(|| bad("shape"))?;
        let expected = if spec.supervised() { 3 } else { spec.build(&shape).map(|_| shape.len()).unwrap_or(0) };
        if shape.len() != expected || shape.contains(&0) {
            return Err(bad("shape"));
        }
        let lambda: f64 = meta.get("lambda").and_then(|l| l.parse().ok()).ok_or_else(|| bad("lambda"))?;
        let certificate = match meta.get("certificate") {
            Some(c) => serde_json::from_str::<Certificate>(c).map_err(|_| bad("certificate"))?,
            // A checkpoint (`gonn fit --checkpoint`): weights between two outer iterations, not yet checked.
            None if meta.contains_key("checkpoint") => Certificate::absent(
                lambda,
                file.weights.width(),
                "a checkpoint: the run's state between two outer iterations, without a certificate".into(),
            ),
            None => return Err(bad("certificate")),
        };
        Ok(Self {
            spec,
            weights: file.weights.clone(),
            certificate,
            termination: meta.get("termination").and_then(|t| serde_json::from_value(t.as_str().into()).ok()),
            history: meta.get("history").and_then(|h| serde_json::from_str(h).ok()).unwrap_or_default(),
            scaling: Scaling::load(meta)?,
            lambda,
            loss: meta.get("loss").map_or(Ok(Loss::Squared), |s| s.parse())?,
            shape,
            classes: meta.get("classes").and_then(|c| c.parse().ok()),
        })
    }
}

/// The metadata that identifies a problem: the spec as one JSON value (`spec`) with the keys of earlier releases
/// (`norms`, `bias`, `architecture`, ...), the data's `shape`, `lambda`, `loss`, `classes`, the input scaling and,
/// for deep stacks, the `[fan_in, fan_out]` of each layer (`layer_shapes`). Checkpoints carry it too, so that a
/// run resumes only the same problem.
pub fn problem_metadata(
    spec: &ModelSpec,
    shape: &[usize],
    lambda: f64,
    loss: Loss,
    classes: Option<usize>,
    scaling: Option<&Scaling>,
) -> Result<HashMap<String, String>> {
    let mut m = spec.metadata(shape);
    m.insert("lambda".into(), lambda.to_string());
    m.insert("loss".into(), loss.to_string());
    if let Some(c) = classes {
        m.insert("classes".into(), c.to_string());
    }
    if let Some(s) = scaling {
        s.store(&mut m);
    }
    if let Some(shapes) = spec.layer_shapes(shape)? {
        m.insert("layer_shapes".into(), serde_json::to_string(&shapes).expect("serializable"));
    }
    Ok(m)
}

/// The spec of a model file written before specs were stored (`bias`, `output_norm`, `architecture`, ... keys).
fn legacy_spec(kind: &str, meta: &HashMap<String, String>) -> Result<ModelSpec> {
    match kind {
        "mlp" | "cnn" => ModelSpec::deep_from_metadata(meta),
        "relu" => {
            let mut spec = ModelSpec::parse("relu", None, None)?;
            if let ModelSpec::Relu { bias, output_norm, .. } = &mut spec {
                *bias = meta.get("bias").map(String::as_str) != Some("false");
                if let Some(n) = meta.get("output_norm") {
                    *output_norm = n.parse()?;
                }
            }
            Ok(spec)
        }
        other => ModelSpec::parse(other, meta.get("norms").map(String::as_str), meta.get("nonneg").map(String::as_str)),
    }
}
