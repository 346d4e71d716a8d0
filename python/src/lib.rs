//! Python bindings: `gonn._gonn`, the compiled core that the estimators of `python/gonn` call. Arrays arrive as
//! float64 numpy arrays, are copied once into column-major matrices, and every fit runs on a worker thread
//! without the GIL while the calling thread prints progress and polls for Ctrl-C.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use gonn::core::loss::{Loss, Observations};
use gonn::core::Weights;
use gonn::faer::Mat;
use gonn::meta::{FitParams, IterationRecord, MetaState, Observer};
use gonn::model::FittedModel;
use gonn::spec::ModelSpec;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// A gonn error as Python's `ValueError`, with the message the command line prints after `error: `.
fn value_error(e: gonn::GonnError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn mat(a: &PyReadonlyArray2<'_, f64>) -> Mat<f64> {
    let v = a.as_array();
    Mat::from_fn(v.nrows(), v.ncols(), |i, j| v[[i, j]])
}

fn to_numpy<'py>(py: Python<'py>, m: &Mat<f64>) -> Bound<'py, PyArray2<f64>> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)]).into_pyarray(py)
}

/// Sends one line per outer iteration to the calling thread (`verbose >= 1`).
struct Lines(Option<mpsc::Sender<String>>);

impl Observer for Lines {
    fn iter(&mut self, r: &IterationRecord, _: &MetaState) -> ControlFlow<()> {
        if let Some(tx) = &self.0 {
            let _ = tx.send(r.table_row());
        }
        ControlFlow::Continue(())
    }
}

/// Runs `work` on a worker thread without the GIL; meanwhile prints its progress lines to `sys.stderr` and
/// checks for signals every 50 ms. Ctrl-C raises the stop flag, waits for the worker (it stops within about a
/// second) and raises `KeyboardInterrupt`.
fn run_detached<T: Send>(
    py: Python<'_>,
    verbose: u8,
    stop: Arc<AtomicBool>,
    work: impl FnOnce(Lines) -> gonn::Result<T> + Send,
) -> PyResult<T> {
    let (tx, rx) = mpsc::channel::<String>();
    let rx = std::sync::Mutex::new(rx);
    let lines = Lines((verbose > 0).then_some(tx));
    let print = |py: Python<'_>, line: &str| -> PyResult<()> {
        py.import("sys")?.getattr("stderr")?.call_method1("write", (format!("{line}\n"),))?;
        Ok(())
    };
    if verbose > 0 {
        print(py, &IterationRecord::table_header())?;
    }
    std::thread::scope(|scope| {
        let handle = scope.spawn(move || work(lines));
        loop {
            let finished = handle.is_finished();
            let pending: Vec<String> = py.detach(|| {
                let rx = rx.lock().expect("only this thread reads the lines");
                let mut got = vec![];
                if let Ok(l) = rx.recv_timeout(Duration::from_millis(50)) {
                    got.push(l);
                }
                got.extend(rx.try_iter());
                got
            });
            for l in &pending {
                print(py, l)?;
            }
            if let Err(e) = py.check_signals() {
                stop.store(true, Ordering::SeqCst);
                let _ = py.detach(|| handle.join());
                return Err(e);
            }
            if finished && pending.is_empty() {
                break;
            }
        }
        let result = py.detach(|| handle.join()).map_err(|_| PyValueError::new_err("the fit panicked"))?;
        result.map_err(value_error)
    })
}

/// The spec and loss named by strings, checked.
fn problem(spec: &str, loss: &str) -> PyResult<(ModelSpec, Loss)> {
    Ok((ModelSpec::from_json(spec).map_err(value_error)?, loss.parse().map_err(value_error)?))
}

/// A fitted model: weights, certificate, history; what the estimators keep (pickled as its model-file bytes).
#[pyclass(module = "gonn._gonn", frozen)]
struct Model {
    inner: FittedModel,
    seconds: f64,
    outer_iterations: usize,
}

#[pymethods]
impl Model {
    /// The certificate as JSON (the report's fields).
    fn certificate_json(&self) -> String {
        serde_json::to_string(&self.inner.certificate).expect("serializable")
    }

    /// The per-outer-iteration records as JSON.
    fn history_json(&self) -> String {
        serde_json::to_string(&self.inner.history).expect("serializable")
    }

    /// `certified`, `no_better_subnetwork`, ... (`None` for a model read from bytes without it).
    fn termination(&self) -> Option<String> {
        self.inner.termination.map(|t| t.to_string())
    }

    fn summary(&self) -> String {
        self.inner.certificate.summary()
    }

    #[getter]
    fn seconds(&self) -> f64 {
        self.seconds
    }

    #[getter]
    fn outer_iterations(&self) -> usize {
        self.outer_iterations
    }

    #[getter]
    fn lam(&self) -> f64 {
        self.inner.lambda
    }

    #[getter]
    fn spec_json(&self) -> String {
        self.inner.spec.to_json()
    }

    /// The weight layers as arrays: layer `k` is `dims[k] x r`, column `i` holding subnetwork `i`.
    fn layers<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyArray2<f64>>> {
        self.inner.weights.layers.iter().map(|l| to_numpy(py, l)).collect()
    }

    /// The network outputs on raw inputs `x` (standardized first if the model was fitted that way).
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let x = mat(&x);
        let z = py.detach(|| self.inner.predict(x.as_ref(), threads)).map_err(value_error)?;
        Ok(to_numpy(py, &z))
    }

    /// The fitted matrix `U V^T` of a factorization (every entry, observed or not).
    fn completed<'py>(&self, py: Python<'py>, threads: usize) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let z = py.detach(|| self.inner.completed(threads)).map_err(value_error)?;
        Ok(to_numpy(py, &z))
    }

    /// The model file's bytes (the same as `gonn fit --out`), for pickling.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = self.inner.to_bytes().map_err(value_error)?;
        Ok(PyBytes::new(py, &b))
    }

    /// A model from [`Model::to_bytes`] or from a file written by `gonn fit --out`.
    #[staticmethod]
    fn from_bytes(bytes: Vec<u8>, seconds: f64, outer_iterations: usize) -> PyResult<Model> {
        Ok(Model { inner: FittedModel::from_bytes(bytes).map_err(value_error)?, seconds, outer_iterations })
    }

    /// Writes the model file (safetensors), readable by `gonn predict`.
    fn save(&self, path: std::path::PathBuf) -> PyResult<()> {
        self.inner.save(path).map_err(value_error)
    }
}

/// Fits a model. `spec` is the JSON of a model spec (`{"model": "relu", "bias": true, ...}`); supervised models
/// take `x` (`n x d`) and targets `y` (`n x C`, already encoded), factorizations `y` with an optional 0/1 `mask`.
#[pyfunction]
#[pyo3(signature = (spec, y, *, x=None, mask=None, loss, lam, tol, max_outer, max_seconds, init_width, seed,
    threads, polar_restarts, polar_seconds=None, batch_size=None, standardize=false, classes=None, init=None, verbose=0))]
#[allow(clippy::too_many_arguments)]
fn fit(
    py: Python<'_>,
    spec: &str,
    y: PyReadonlyArray2<'_, f64>,
    x: Option<PyReadonlyArray2<'_, f64>>,
    mask: Option<PyReadonlyArray2<'_, f64>>,
    loss: &str,
    lam: f64,
    tol: f64,
    max_outer: usize,
    max_seconds: f64,
    init_width: usize,
    seed: u64,
    threads: usize,
    polar_restarts: usize,
    polar_seconds: Option<f64>,
    batch_size: Option<usize>,
    standardize: bool,
    classes: Option<usize>,
    init: Option<Vec<PyReadonlyArray2<'_, f64>>>,
    verbose: u8,
) -> PyResult<Model> {
    let (spec, loss) = problem(spec, loss)?;
    let (y, mask, x) = (mat(&y), mask.as_ref().map(mat), x.as_ref().map(mat));
    let init = init.map(|layers| Weights { layers: layers.iter().map(mat).collect() });
    let stop = Arc::new(AtomicBool::new(false));
    let params = FitParams::new(lam)
        .loss(loss)
        .tol(tol)
        .max_outer(max_outer)
        .max_seconds(max_seconds)
        .init_width(init_width)
        .seed(seed)
        .threads(threads)
        .polar_restarts(polar_restarts)
        .polar_seconds(polar_seconds)
        .batch_size(batch_size)
        .stop_flag(stop.clone())
        .validate()
        .map_err(value_error)?;
    let model = run_detached(py, verbose, stop, move |mut lines| {
        let obs = Observations::new(y, mask)?;
        loss.validate(&obs)?;
        let mut m = match x {
            Some(x) => FittedModel::fit_supervised_from(&spec, x, obs, &params, standardize, init, &mut lines)?,
            None => {
                let dims = vec![obs.nrows(), obs.ncols()];
                FittedModel::fit_matrix_from(&spec, &obs, &dims, &params, init, &mut lines)?
            }
        };
        m.classes = classes;
        Ok(m)
    })?;
    let seconds = model.history.last().map_or(0.0, |r| r.seconds);
    let outer_iterations = model.history.len();
    Ok(Model { inner: model, seconds, outer_iterations })
}

/// The certificate (as JSON, with its summary lines) of given weights: `layers` in gonn's layout (for relu, `u` as `(d+1) x r` with
/// the bias row last, then `v` as `C x r`), on inputs `x` and encoded targets `y`.
#[pyfunction]
#[pyo3(signature = (spec, x, y, layers, *, loss, lam, tol, threads, polar_seconds=None))]
#[allow(clippy::too_many_arguments)]
fn certify(
    py: Python<'_>,
    spec: &str,
    x: PyReadonlyArray2<'_, f64>,
    y: PyReadonlyArray2<'_, f64>,
    layers: Vec<PyReadonlyArray2<'_, f64>>,
    loss: &str,
    lam: f64,
    tol: f64,
    threads: usize,
    polar_seconds: Option<f64>,
) -> PyResult<(String, String)> {
    let (spec, loss) = problem(spec, loss)?;
    let (x, y) = (mat(&x), mat(&y));
    let w = Weights { layers: layers.iter().map(mat).collect() };
    let stop = Arc::new(AtomicBool::new(false));
    run_detached(py, 0, stop, move |_| {
        let obs = Observations::new(y, None)?;
        let net = spec.bind_supervised(x.as_ref(), obs.ncols())?;
        let params = FitParams::new(lam).loss(loss).tol(tol).threads(threads).polar_seconds(polar_seconds);
        let cert = gonn::meta::certify_with(net.as_ref(), &obs, &w, params)?;
        Ok((serde_json::to_string(&cert).expect("serializable"), cert.summary()))
    })
}

/// `lambda_max` of a problem: the smallest lambda whose optimum is the zero model, as `(lower, proven upper)`.
#[pyfunction]
#[pyo3(signature = (spec, y, *, x=None, mask=None, loss, threads))]
fn lambda_max(
    py: Python<'_>,
    spec: &str,
    y: PyReadonlyArray2<'_, f64>,
    x: Option<PyReadonlyArray2<'_, f64>>,
    mask: Option<PyReadonlyArray2<'_, f64>>,
    loss: &str,
    threads: usize,
) -> PyResult<(f64, Option<f64>)> {
    let (spec, loss) = problem(spec, loss)?;
    let (y, mask, x) = (mat(&y), mask.as_ref().map(mat), x.as_ref().map(mat));
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    run_detached(py, 0, stop, move |_| {
        let obs = Observations::new(y, mask)?;
        let net = match &x {
            Some(x) => spec.bind_supervised(x.as_ref(), obs.ncols())?,
            None => spec.build(&[obs.nrows(), obs.ncols()])?,
        };
        let budget = gonn::numerics::budget::Budget::new(None, Some(flag));
        gonn::meta::lambda_max(net.as_ref(), &obs, loss, threads, budget)
    })
}

/// What a ratings fit returns: `(U, V, offset, row_bias, col_bias, certificate JSON, summary, history JSON,
/// termination, seconds)`.
type RatingsFit<'py> = (
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray2<f64>>,
    f64,
    Vec<f64>,
    Vec<f64>,
    String,
    String,
    String,
    String,
    f64,
);

/// Nuclear-norm completion of sparse ratings (`gonn::meta::completion`): `rows`, `cols` (indices below `m`, `n`)
/// and `values` are the observed entries; memory grows with them, never with `m * n`.
#[pyfunction]
#[pyo3(signature = (m, n, rows, cols, values, *, lam, biases, tol, max_outer, max_seconds, seed, threads, verbose=0))]
#[allow(clippy::too_many_arguments)]
fn fit_ratings<'py>(
    py: Python<'py>,
    m: usize,
    n: usize,
    rows: Vec<i64>,
    cols: Vec<i64>,
    values: Vec<f64>,
    lam: f64,
    biases: &str,
    tol: f64,
    max_outer: usize,
    max_seconds: f64,
    seed: u64,
    threads: usize,
    verbose: u8,
) -> PyResult<RatingsFit<'py>> {
    use gonn::meta::completion::{fit_completion, CompletionParams};
    let index = |v: &[i64], limit: usize, what: &str| -> PyResult<Vec<u32>> {
        v.iter()
            .enumerate()
            .map(|(k, &x)| {
                u32::try_from(x)
                    .ok()
                    .filter(|&u| (u as usize) < limit)
                    .ok_or_else(|| PyValueError::new_err(format!("{what}[{k}] = {x} is not an index in 0..{limit}")))
            })
            .collect()
    };
    let (r, c) = (index(&rows, m, "rows")?, index(&cols, n, "cols")?);
    let data = gonn::numerics::sparse::SparseRatings::from_triplets(m, n, &r, &c, &values).map_err(value_error)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut params = CompletionParams::new(lam);
    params.biases = biases.parse().map_err(value_error)?;
    params.tol = tol;
    params.max_outer = max_outer;
    params.max_seconds = max_seconds;
    params.seed = seed;
    params.threads = threads;
    params.stop = Some(stop.clone());
    let fit = run_detached(py, verbose, stop, move |lines| {
        fit_completion(&data, &params, None, &mut |rec| {
            if let Some(tx) = &lines.0 {
                let _ = tx.send(rec.table_row());
            }
            ControlFlow::Continue(())
        })
    })?;
    Ok((
        to_numpy(py, &fit.u),
        to_numpy(py, &fit.v),
        fit.offset,
        fit.row_bias.clone(),
        fit.col_bias.clone(),
        serde_json::to_string(&fit.certificate).expect("serializable"),
        fit.certificate.summary(),
        serde_json::to_string(&fit.history).expect("serializable"),
        fit.termination.name().to_string(),
        fit.seconds,
    ))
}

#[pymodule]
fn _gonn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fit_ratings, m)?)?;
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(certify, m)?)?;
    m.add_function(wrap_pyfunction!(lambda_max, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
