//! Choosing lambda: held-out validation entries and a decreasing path of lambdas with warm starts, for every
//! family (THEORY.md section 3: the path starts at `lambda_max`, where the zero model is optimal).

use serde::{Deserialize, Serialize};

use crate::core::loss::{Loss, Observations};
use crate::core::subnetwork::Family;
use crate::core::weights::Weights;
use crate::error::{GonnError, Result};
use crate::meta::certificate::Status;
use crate::meta::{FitResult, Observer, Termination, ValidFitParams};
use crate::numerics::rng::Rng;

/// What is held out: single observed entries (matrix and tensor completion) or whole rows (the samples of a
/// supervised model).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldOut {
    Entries,
    Rows,
}

/// Splits the observed entries into training and validation observations: a seeded random `fraction` of the
/// observed entries (or of the rows with an observed entry), at least one, and never all of them.
pub fn hold_out(obs: &Observations, fraction: f64, unit: HoldOut, seed: u64) -> Result<(Observations, Observations)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(GonnError::param("validation_fraction", format!("{fraction} (must be in (0, 1))")));
    }
    let (m, n) = (obs.nrows(), obs.ncols());
    let units: Vec<(usize, usize)> = match unit {
        HoldOut::Entries => {
            (0..n).flat_map(|j| (0..m).map(move |i| (i, j))).filter(|&(i, j)| obs.is_observed(i, j)).collect()
        }
        HoldOut::Rows => (0..m).filter(|&i| (0..n).any(|j| obs.is_observed(i, j))).map(|i| (i, 0)).collect(),
    };
    let k = ((fraction * units.len() as f64).round() as usize).max(1);
    if units.len() < 2 || k >= units.len() {
        return Err(GonnError::Data(format!(
            "holding out {fraction} of {} observed {} leaves nothing to train on",
            units.len(),
            if unit == HoldOut::Rows { "samples" } else { "entries" }
        )));
    }
    let mut order: Vec<usize> = (0..units.len()).collect();
    let mut rng = Rng::new(seed ^ 0x5a17_da7a);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut held = faer::Mat::<f64>::zeros(m, n);
    for &u in &order[..k] {
        let (i, j) = units[u];
        match unit {
            HoldOut::Entries => held[(i, j)] = 1.0,
            HoldOut::Rows => (0..n).filter(|&c| obs.is_observed(i, c)).for_each(|c| held[(i, c)] = 1.0),
        }
    }
    let train_mask =
        faer::Mat::from_fn(m, n, |i, j| if obs.is_observed(i, j) && held[(i, j)] == 0.0 { 1.0 } else { 0.0 });
    Ok((Observations::new(obs.y().clone(), Some(train_mask))?, Observations::new(obs.y().clone(), Some(held))?))
}

/// The error of a model's outputs `z` on validation observations.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Validation {
    /// Held-out entries (or samples, for a softmax model: rows).
    pub count: usize,
    /// The loss per held-out entry (per row for softmax).
    pub mean_loss: f64,
    /// Squared loss: root mean squared error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    /// Logistic: fraction of entries on the wrong side of 1/2; softmax: rows whose largest output is not the
    /// largest target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
}

impl Validation {
    /// Scores `z` (the model's outputs on the whole grid) on the observed entries of `val`.
    pub fn of(loss: Loss, val: &Observations, z: faer::MatRef<'_, f64>) -> Self {
        let (m, n) = (val.nrows(), val.ncols());
        let total = loss.value(val, z);
        match loss {
            Loss::Softmax => {
                let rows: Vec<usize> = (0..m).filter(|&i| (0..n).any(|j| val.is_observed(i, j))).collect();
                let argmax = |f: &dyn Fn(usize) -> f64| (0..n).max_by(|&p, &q| f(p).total_cmp(&f(q))).unwrap_or(0);
                let wrong = rows.iter().filter(|&&i| argmax(&|j| z[(i, j)]) != argmax(&|j| val.y()[(i, j)])).count();
                let count = rows.len().max(1);
                Validation {
                    count: rows.len(),
                    mean_loss: total / count as f64,
                    rmse: None,
                    error_rate: Some(wrong as f64 / count as f64),
                }
            }
            _ => {
                let entries: Vec<(usize, usize)> =
                    (0..n).flat_map(|j| (0..m).map(move |i| (i, j))).filter(|&(i, j)| val.is_observed(i, j)).collect();
                let count = entries.len().max(1) as f64;
                let (rmse, error_rate) = match loss {
                    Loss::Squared => {
                        let se: f64 = entries.iter().map(|&ij| (z[ij] - val.y()[ij]).powi(2)).sum();
                        (Some((se / count).sqrt()), None)
                    }
                    _ => {
                        let wrong = entries.iter().filter(|&&ij| (z[ij] > 0.0) != (val.y()[ij] > 0.5)).count();
                        (None, Some(wrong as f64 / count))
                    }
                };
                Validation { count: entries.len(), mean_loss: total / count, rmse, error_rate }
            }
        }
    }

    /// Scores the outputs of the network `net` with weights `w` on `val`.
    pub fn of_weights(loss: Loss, val: &Observations, net: &dyn Family, w: &Weights, threads: usize) -> Self {
        Self::of(loss, val, net.forward(w, super::parallelism(threads)).as_ref())
    }

    /// The number to minimize when choosing lambda: the RMSE or error rate, else the mean loss.
    pub fn score(&self) -> f64 {
        self.rmse.or(self.error_rate).unwrap_or(self.mean_loss)
    }
}

/// `k` lambdas decreasing geometrically from `lambda_max` to `lambda_min` (both included).
pub fn lambda_grid(lambda_max: f64, lambda_min: f64, k: usize) -> Result<Vec<f64>> {
    if k < 2 {
        return Err(GonnError::param("lambda_path", format!("{k} (at least 2 lambdas)")));
    }
    if !(lambda_min > 0.0 && lambda_max.is_finite() && lambda_min < lambda_max) {
        return Err(GonnError::param(
            "lambda",
            format!(
                "{lambda_min} is not below lambda_max = {lambda_max:.6e}, where the path starts: give a smaller \
                 --lambda as the end of the path"
            ),
        ));
    }
    let ratio = lambda_min / lambda_max;
    Ok((0..k)
        .map(|i| if i + 1 == k { lambda_min } else { lambda_max * ratio.powf(i as f64 / (k - 1) as f64) })
        .collect())
}

/// One fit of a lambda path.
#[derive(Clone, Debug, Serialize)]
pub struct PathPoint {
    pub lambda: f64,
    pub objective: f64,
    pub subnetworks: usize,
    pub status: Status,
    pub relative_gap: Option<f64>,
    pub termination: Termination,
    pub outer_iterations: usize,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
}

/// A fitted lambda path: every point, every fit, and the index of the kept one.
pub struct LambdaPath {
    pub points: Vec<PathPoint>,
    pub fits: Vec<FitResult>,
    /// The point with the smallest validation score; without validation data, the last (smallest) lambda fitted.
    pub best: usize,
}

/// Fits `lambdas` in order (decreasing), each warm-started from the previous optimum, on `train`, scoring each
/// on `validation`. `params.max_seconds` bounds the whole path: each fit gets what is left, and the path stops
/// early when time is up or the stop flag is raised. `on_point` sees each point as it is fitted, and
/// `observer(i)` watches fit `i`'s outer iterations.
pub fn fit_path(
    params: &ValidFitParams,
    net: &dyn Family,
    train: &Observations,
    validation: Option<&Observations>,
    lambdas: &[f64],
    observer: &mut dyn FnMut(usize) -> Box<dyn Observer>,
    on_point: &mut dyn FnMut(&PathPoint),
) -> Result<LambdaPath> {
    let start = std::time::Instant::now();
    let (mut points, mut fits) = (vec![], vec![]);
    let mut warm: Option<Weights> = None;
    for (i, &lambda) in lambdas.iter().enumerate() {
        let left = params.max_seconds - start.elapsed().as_secs_f64();
        if left <= 0.0 || params.stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst)) {
            break;
        }
        let mut p = (**params).clone();
        p.lambda = lambda;
        p.max_seconds = left;
        if warm.is_some() {
            p.init_width = 0;
        }
        let p = p.validate()?;
        let mut watch = observer(i);
        let fit = p.fit_from(net, train, warm.clone(), watch.as_mut())?;
        let validation = validation.map(|v| Validation::of_weights(p.loss, v, net, &fit.weights, p.threads));
        let point = PathPoint {
            lambda,
            objective: fit.certificate.objective,
            subnetworks: fit.weights.width(),
            status: fit.certificate.status,
            relative_gap: fit.certificate.relative_gap,
            termination: fit.termination,
            outer_iterations: fit.outer_iterations,
            seconds: fit.seconds,
            validation,
        };
        on_point(&point);
        let interrupted = fit.termination == Termination::Interrupted;
        warm = Some(fit.weights.clone());
        points.push(point);
        fits.push(fit);
        if interrupted {
            break;
        }
    }
    if points.is_empty() {
        return Err(GonnError::param("max_seconds", "no time left to fit the first lambda of the path"));
    }
    let best = match validation {
        Some(_) => (0..points.len())
            .min_by(|&a, &b| {
                let s = |i: usize| points[i].validation.as_ref().map_or(f64::INFINITY, |v| v.score());
                s(a).total_cmp(&s(b))
            })
            .unwrap_or(0),
        None => points.len() - 1,
    };
    Ok(LambdaPath { points, fits, best })
}
