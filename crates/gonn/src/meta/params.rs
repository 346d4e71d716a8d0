//! The parameters of a fit, validated once (the linfa flow: `FitParams -> validate -> ValidFitParams`).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::core::loss::Loss;
use crate::error::{GonnError, Result};

/// The most restarts a heuristic polar may be asked for (each is a full search).
pub const MAX_POLAR_RESTARTS: usize = 10_000;
/// The most random subnetworks a fit may start from (the start must also fit in memory: see
/// `ValidFitParams::initial_state`).
pub const MAX_INIT_WIDTH: usize = 1_000_000;

/// User-facing parameters of a fit.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FitParams {
    /// Regularization weight `lambda > 0`.
    pub lambda: f64,
    pub loss: Loss,
    /// Relative tolerance on the certified gap: stop when `gap_bound <= tol * f(W)`.
    pub tol: f64,
    pub max_outer: usize,
    /// Wall-clock limit of this call (a resumed run gets the full limit again).
    pub max_seconds: f64,
    /// Number of random subnetworks to start from (0: start empty).
    pub init_width: usize,
    pub seed: u64,
    /// Worker threads for dense kernels (0: all cores).
    pub threads: usize,
    /// Random restarts of the heuristic polar solvers.
    pub polar_restarts: usize,
    /// Seconds for one polar's costly proof search (the ReLU branch and bound; `None`: the family's default).
    pub polar_seconds: Option<f64>,
    /// Minibatch size of the local descent, for families that support it (`None`: full batch). The polar and the
    /// certificate always use a full pass.
    pub batch_size: Option<usize>,
    /// A flag that stops the run when raised (Ctrl-C, SIGTERM, Python's `KeyboardInterrupt`): the fit then ends
    /// with the best point reached and [`Termination::Interrupted`](super::Termination::Interrupted).
    pub stop: Option<Arc<AtomicBool>>,
}

impl FitParams {
    /// Defaults: squared loss, `tol = 1e-6`, at most 500 outer iterations and 600 s, empty start, seed 0.
    pub fn new(lambda: f64) -> Self {
        Self {
            lambda,
            loss: Loss::Squared,
            tol: 1e-6,
            max_outer: 500,
            max_seconds: 600.0,
            init_width: 0,
            seed: 0,
            threads: 0,
            polar_restarts: 8,
            polar_seconds: None,
            batch_size: None,
            stop: None,
        }
    }
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }
    pub fn max_outer(mut self, n: usize) -> Self {
        self.max_outer = n;
        self
    }
    pub fn max_seconds(mut self, s: f64) -> Self {
        self.max_seconds = s;
        self
    }
    pub fn init_width(mut self, r: usize) -> Self {
        self.init_width = r;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }
    pub fn polar_restarts(mut self, n: usize) -> Self {
        self.polar_restarts = n;
        self
    }
    pub fn polar_seconds(mut self, s: Option<f64>) -> Self {
        self.polar_seconds = s;
        self
    }
    pub fn batch_size(mut self, b: Option<usize>) -> Self {
        self.batch_size = b;
        self
    }
    pub fn stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    /// Checks every parameter once, naming the bad value.
    pub fn validate(self) -> Result<ValidFitParams> {
        if !(self.lambda.is_finite() && self.lambda > 0.0) {
            return Err(GonnError::param("lambda", format!("{} (must be positive and finite)", self.lambda)));
        }
        if !(self.tol.is_finite() && self.tol > 0.0 && self.tol < 1.0) {
            return Err(GonnError::param("tol", format!("{} (must be in (0, 1))", self.tol)));
        }
        if !(self.max_seconds.is_finite() && self.max_seconds > 0.0) {
            return Err(GonnError::param("max_seconds", format!("{} (must be positive)", self.max_seconds)));
        }
        if self.max_outer == 0 {
            return Err(GonnError::param("max_outer", "0 (must be at least 1)"));
        }
        if self.polar_restarts > MAX_POLAR_RESTARTS {
            return Err(GonnError::param(
                "polar_restarts",
                format!("{} (at most {MAX_POLAR_RESTARTS})", self.polar_restarts),
            ));
        }
        if let Some(s) = self.polar_seconds {
            if !(s.is_finite() && s > 0.0 && s <= 1e6) {
                return Err(GonnError::param("polar_seconds", format!("{s} (must be positive, at most 1e6)")));
            }
        }
        if self.init_width > MAX_INIT_WIDTH {
            return Err(GonnError::param("init_width", format!("{} (at most {MAX_INIT_WIDTH})", self.init_width)));
        }
        if self.batch_size == Some(0) {
            return Err(GonnError::param("batch_size", "0 (must be at least 1)"));
        }
        Ok(ValidFitParams(self))
    }
}

/// Parameters that passed [`FitParams::validate`].
#[derive(Clone, Debug)]
pub struct ValidFitParams(FitParams);

impl ValidFitParams {
    /// Polar options of this run: its restarts and polar time limit, with the given proof requirement.
    pub fn polar_options(&self, prove: bool, par: faer::Par) -> crate::core::polar::PolarOptions {
        let mut opts = crate::core::polar::PolarOptions::new(prove, par);
        opts.restarts = self.polar_restarts;
        opts.time_limit = self.polar_seconds.map(std::time::Duration::from_secs_f64);
        opts
    }
}

impl std::ops::Deref for ValidFitParams {
    type Target = FitParams;
    fn deref(&self) -> &FitParams {
        &self.0
    }
}
