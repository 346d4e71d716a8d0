//! The meta-algorithm (THEORY.md section 4): descend, check the polar, grow with a proper step, prune, until the
//! gap bound is certified or a limit is reached. Parameters are validated once (`FitParams::validate`), the
//! loop hands every outer iteration to an [`Observer`], and the result is a separate [`FittedModel`].

use std::time::{Duration, Instant};

use faer::Par;
use serde::Serialize;

use crate::certificate::{refined_dual_bound, Certificate, Status};
use crate::descent::{local_descent, DescentOptions};
use crate::error::{GonnError, Result};
use crate::growth::{grow, ray_step};
use crate::linalg::all_finite;
use crate::loss::{Loss, Observations};
use crate::objective::Problem;
use crate::polar::PolarOptions;
use crate::pruning::prune_dependent;
use crate::rng::Rng;
use crate::subnetwork::{balance, prune_zero, Subnetwork, Weights};

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
    pub max_seconds: f64,
    /// Number of random subnetworks to start from (0: start empty).
    pub init_width: usize,
    pub seed: u64,
    /// Worker threads for dense kernels (0: all cores).
    pub threads: usize,
    /// Random restarts of the heuristic polar solvers.
    pub polar_restarts: usize,
    /// Minibatch size of the local descent, for families that support it (`None`: full batch). The polar and the
    /// certificate always use a full pass.
    pub batch_size: Option<usize>,
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
            batch_size: None,
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
    pub fn batch_size(mut self, b: Option<usize>) -> Self {
        self.batch_size = b;
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
        if self.batch_size == Some(0) {
            return Err(GonnError::param("batch_size", "0 (must be at least 1)"));
        }
        Ok(ValidFitParams(self))
    }
}

/// Parameters that passed [`FitParams::validate`].
#[derive(Clone, Debug)]
pub struct ValidFitParams(FitParams);

impl std::ops::Deref for ValidFitParams {
    type Target = FitParams;
    fn deref(&self) -> &FitParams {
        &self.0
    }
}

/// One outer iteration, as seen by observers and stored in the history.
#[derive(Clone, Debug, Serialize)]
pub struct IterationRecord {
    pub outer: usize,
    pub subnetworks: usize,
    pub objective: f64,
    pub polar_lower: f64,
    pub polar_upper: Option<f64>,
    pub gap_bound: Option<f64>,
    pub descent_sweeps: usize,
    pub seconds: f64,
    /// What the iteration did next: `grow`, `refine`, `stop`.
    pub action: &'static str,
}

/// Receives every outer iteration (progress display, JSON logs...). The algorithm knows nothing about them.
pub trait Observer {
    fn observe(&mut self, record: &IterationRecord);
}

/// An observer that does nothing.
pub struct Silent;
impl Observer for Silent {
    fn observe(&mut self, _: &IterationRecord) {}
}

impl<F: FnMut(&IterationRecord)> Observer for F {
    fn observe(&mut self, record: &IterationRecord) {
        self(record)
    }
}

/// Why the outer loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The gap bound reached the tolerance.
    Certified,
    /// The polar found no better subnetwork and descent cannot be refined further.
    NoBetterSubnetwork,
    MaxOuter,
    MaxSeconds,
}

/// A fitted model: its weights, certificate and history.
#[derive(Clone, Debug)]
pub struct FittedModel {
    pub weights: Weights,
    pub certificate: Certificate,
    pub history: Vec<IterationRecord>,
    pub stop_reason: StopReason,
    pub outer_iterations: usize,
    pub seconds: f64,
}

/// The parallelism for `threads` (0: all cores).
pub fn parallelism(threads: usize) -> Par {
    if threads == 1 {
        Par::Seq
    } else {
        Par::rayon(threads)
    }
}

fn check_weights(net: &dyn Subnetwork, w: &Weights) -> Result<()> {
    let dims = net.layer_dims();
    if w.layers.len() != dims.len() {
        return Err(GonnError::Shape(format!("expected {} weight layers, got {}", dims.len(), w.layers.len())));
    }
    let r = w.width();
    for (k, (l, d)) in w.layers.iter().zip(&dims).enumerate() {
        if l.nrows() != *d || l.ncols() != r {
            return Err(GonnError::Shape(format!(
                "weight layer {k} is {} x {}, expected {d} x {r}",
                l.nrows(),
                l.ncols()
            )));
        }
        if !all_finite(l.as_ref()) {
            return Err(GonnError::Data(format!("weight layer {k} has non-finite entries")));
        }
    }
    for (k, n) in net.layer_norms().iter().enumerate() {
        if n.nonneg && (0..r).any(|i| w.layers[k].col_as_slice(i).iter().any(|v| *v < 0.0)) {
            return Err(GonnError::Data(format!("weight layer {k} must be nonnegative")));
        }
    }
    Ok(())
}

fn check_problem(net: &dyn Subnetwork, obs: &Observations, loss: Loss) -> Result<()> {
    let (m, n) = net.output_shape();
    if (obs.nrows(), obs.ncols()) != (m, n) {
        return Err(GonnError::Shape(format!(
            "the model outputs {m} x {n} but the data is {} x {}",
            obs.nrows(),
            obs.ncols()
        )));
    }
    loss.validate(obs)
}

/// Random start: `init_width` subnetworks with Gaussian layers, then the optimal scaling along the ray.
fn random_start(p: &Problem<'_>, width: usize, rng: &mut Rng) -> Weights {
    let mut w = Weights { layers: p.net.layer_dims().iter().map(|&d| rng.normal_mat(d, width)).collect() };
    for (k, n) in p.net.layer_norms().iter().enumerate() {
        if n.nonneg {
            let l = &mut w.layers[k];
            for j in 0..l.ncols() {
                l.col_as_slice_mut(j).iter_mut().for_each(|v| *v = v.abs());
            }
        }
    }
    balance(p.net, &mut w);
    // The optimal scale along the ray assumes theta and phi of the same degree.
    if degree_mismatch(p.net).is_none() {
        ray_step(p, &mut w);
    }
    prune_zero(&mut w);
    w
}

/// When `theta`'s degree differs from the network's, what that implies (THEORY.md, degree mismatch proposition).
pub fn degree_mismatch(net: &dyn Subnetwork) -> Option<String> {
    let p = net.degree();
    let q = net.theta_form().degree(p);
    match q.cmp(&p) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Less => Some(format!(
            "degree mismatch: the network is homogeneous of degree {p} but the {} regularizer has degree {q}. Near \
             zero the regularizer (~t^{q}) beats any loss decrease (~t^{p}), so the zero network is a local minimum \
             even when it is not optimal, and other non-global local minima can exist. gonn trains the given width \
             by local descent only: no growth, no polar test, no certificate. Use --reg product or --reg powers for \
             a certifiable problem.",
            net.theta_form().name()
        )),
        std::cmp::Ordering::Greater => Some(format!(
            "degree mismatch: the network is homogeneous of degree {p} but the {} regularizer has degree {q} > {p}: \
             splitting a subnetwork into many small copies drives the regularizer to zero, so it does not control \
             the network size. gonn trains the given width by local descent only, without a certificate.",
            net.theta_form().name()
        )),
    }
}

/// Tightens an uncertified gap bound with the cutting-plane dual point of [`refined_dual_bound`], when the polar
/// has a proven upper bound from an exact solver. Returns the fully corrective model over the cuts, when it is
/// better than `w`.
fn tighten(
    p: &Problem<'_>,
    w: &Weights,
    polar: &crate::polar::Polar,
    opts: &PolarOptions,
    rng: &mut Rng,
    cert: &mut Certificate,
    rounds: usize,
) -> Option<Weights> {
    if cert.status == Status::Certified
        || !p.net.refine_dual()
        || !polar.exact
        || polar.upper.is_none()
        || polar.heuristic
    {
        return None;
    }
    let objective = cert.objective;
    let refined = refined_dual_bound(p, w, &polar.atom, opts, rng, rounds);
    if let Some(dual) = refined.dual {
        cert.tighten(dual);
    }
    if refined.primal >= objective {
        return None;
    }
    let mut better = Weights::empty(&p.net.layer_dims());
    let kdeg = p.net.degree() as f64;
    for (atom, weight) in &refined.units {
        better.push(atom, &vec![weight.powf(1.0 / kdeg); p.net.degree()]);
    }
    Some(better)
}

/// `Q = -G / lambda`, the argument of the polar.
fn dual_direction(g: &faer::Mat<f64>, lambda: f64) -> faer::Mat<f64> {
    faer::Mat::from_fn(g.nrows(), g.ncols(), |i, j| -g[(i, j)] / lambda)
}

/// Computes the certificate of arbitrary weights (THEORY.md section 3), without changing them.
pub fn certify(
    net: &dyn Subnetwork,
    obs: &Observations,
    loss: Loss,
    lambda: f64,
    w: &Weights,
    tol: f64,
    threads: usize,
) -> Result<Certificate> {
    let params = FitParams::new(lambda).loss(loss).tol(tol).threads(threads).validate()?;
    check_problem(net, obs, loss)?;
    check_weights(net, w)?;
    let p = Problem { net, loss, obs, lambda, par: parallelism(threads) };
    let ev = p.evaluate(w);
    let q = dual_direction(&ev.g, lambda);
    let mut rng = Rng::new(params.seed);
    let mut opts = PolarOptions::new(true, p.par);
    opts.restarts = params.polar_restarts;
    let polar = net.polar(q.as_ref(), &opts, &mut rng);
    let nonzero = crate::subnetwork::zero_slices(w).iter().filter(|z| !**z).count();
    let mut cert = Certificate::new(&p, &ev, &polar, nonzero, tol);
    tighten(&p, w, &polar, &opts, &mut rng, &mut cert, 10);
    Ok(cert)
}

/// What every fit starts from: the problem, the checked (or random) initial weights without zero subnetworks,
/// the descent options with the run's deadline, the seeded generator and the start time.
struct Begun<'a> {
    p: Problem<'a>,
    w: Weights,
    descent: DescentOptions,
    rng: Rng,
    start: Instant,
    deadline: Instant,
}

impl ValidFitParams {
    /// Checks the problem and `init`, or draws the configured random start.
    fn begin<'a>(&self, net: &'a dyn Subnetwork, obs: &'a Observations, init: Option<Weights>) -> Result<Begun<'a>> {
        check_problem(net, obs, self.loss)?;
        let start = Instant::now();
        let p = Problem { net, loss: self.loss, obs, lambda: self.lambda, par: parallelism(self.threads) };
        let mut rng = Rng::new(self.seed);
        let mut w = match init {
            Some(w) => {
                check_weights(net, &w)?;
                w
            }
            None => random_start(&p, self.init_width, &mut rng),
        };
        prune_zero(&mut w);
        let deadline = start + Duration::from_secs_f64(self.max_seconds);
        let descent = DescentOptions {
            tol: 1e-6_f64.min(self.tol * 1e-1),
            deadline: Some(deadline),
            batch_size: self.batch_size,
            seed: self.seed,
            ..Default::default()
        };
        Ok(Begun { p, w, descent, rng, start, deadline })
    }

    /// Local descent at the width of `w` only (no growth). With a matched regularizer the result is checked by the
    /// polar as usual; with a mismatched one (`note`) no optimality test applies and the result says so.
    fn fixed_width(
        &self,
        p: &Problem<'_>,
        mut w: Weights,
        descent: &DescentOptions,
        note: Option<String>,
        start: Instant,
        observer: &mut dyn Observer,
    ) -> FittedModel {
        // Families with bounded descent calls (deep subnetworks) are called until they converge or time is up.
        let mut info = local_descent(p, &mut w, descent);
        let mut sweeps = info.sweeps;
        while !info.converged && w.width() > 0 && descent.deadline.is_none_or(|d| Instant::now() < d) {
            info = local_descent(p, &mut w, descent);
            sweeps += info.sweeps;
        }
        info.sweeps = sweeps;
        let ev = p.evaluate(&w);
        let nonzero = crate::subnetwork::zero_slices(&w).iter().filter(|z| !**z).count();
        let (certificate, polar_lower, polar_upper) = match note {
            Some(note) => (Certificate::untested(p, &ev, nonzero, self.tol, note), 0.0, None),
            None => {
                let mut opts = PolarOptions::new(true, p.par);
                opts.restarts = self.polar_restarts;
                let polar = p.net.polar(dual_direction(&ev.g, self.lambda).as_ref(), &opts, &mut Rng::new(self.seed));
                (Certificate::new(p, &ev, &polar, nonzero, self.tol), polar.lower, polar.upper)
            }
        };
        let rec = IterationRecord {
            outer: 1,
            subnetworks: w.width(),
            objective: ev.objective,
            polar_lower,
            polar_upper,
            gap_bound: certificate.gap_bound,
            descent_sweeps: info.sweeps,
            seconds: start.elapsed().as_secs_f64(),
            action: "stop",
        };
        observer.observe(&rec);
        FittedModel {
            weights: w,
            certificate,
            history: vec![rec],
            stop_reason: if info.converged { StopReason::NoBetterSubnetwork } else { StopReason::MaxSeconds },
            outer_iterations: 1,
            seconds: start.elapsed().as_secs_f64(),
        }
    }

    /// Trains `init` (or `init_width` random subnetworks) by local descent only, at that width: no polar-driven
    /// growth. The polar still checks the result (for comparisons with [`ValidFitParams::fit_from`]).
    pub fn fit_fixed_width(
        &self,
        net: &dyn Subnetwork,
        obs: &Observations,
        init: Option<Weights>,
    ) -> Result<FittedModel> {
        let Begun { p, w, descent, start, .. } = self.begin(net, obs, init)?;
        Ok(self.fixed_width(&p, w, &descent, degree_mismatch(net), start, &mut Silent))
    }

    /// Runs the meta-algorithm from an empty or random start.
    pub fn fit(&self, net: &dyn Subnetwork, obs: &Observations) -> Result<FittedModel> {
        self.fit_from(net, obs, None, &mut Silent)
    }

    /// Runs the meta-algorithm from `init` (or the configured start) and reports each outer iteration.
    pub fn fit_from(
        &self,
        net: &dyn Subnetwork,
        obs: &Observations,
        init: Option<Weights>,
        observer: &mut dyn Observer,
    ) -> Result<FittedModel> {
        let Begun { p, mut w, mut descent, mut rng, start, deadline } = self.begin(net, obs, init)?;
        let par = p.par;
        if let Some(note) = degree_mismatch(net) {
            if w.width() == 0 {
                return Err(GonnError::param(
                    "init_width",
                    "0: with a mismatched regularizer gonn only trains a given width (use --init-width N)",
                ));
            }
            return Ok(self.fixed_width(&p, w, &descent, Some(note), start, observer));
        }
        // A polar value above 1 + grow_threshold triggers growth; below it, descent is refined first. Once the
        // threshold reaches tol / 2, a polar below it means the gap is already about tol * lambda * Theta <= tol * f
        // up to the descent error, so refining descent (not growing) is what closes the certificate.
        let mut grow_threshold = 1e-2_f64.max(self.tol);
        let floor = 0.5 * self.tol;
        let (mut best_gap, mut stalls) = (f64::INFINITY, 0);
        let mut history = Vec::new();
        let mut outer = 0;
        loop {
            outer += 1;
            let info = local_descent(&p, &mut w, &descent);
            ray_step(&p, &mut w);
            prune_zero(&mut w);
            prune_dependent(&p, &mut w);
            let ev = p.evaluate(&w);
            let q = dual_direction(&ev.g, self.lambda);
            let mut opts = PolarOptions::new(false, par);
            opts.restarts = self.polar_restarts;
            opts.extra_atoms = 8;
            let mut polar = net.polar(q.as_ref(), &opts, &mut rng);
            let mut near_optimal = polar.lower <= 1.0 + grow_threshold;
            let out_of_time = Instant::now() >= deadline || outer >= self.max_outer;
            if near_optimal || out_of_time {
                opts.prove = true;
                opts.lanczos_tol = 1e-10;
                opts.warm_start = polar.atom.layers.last().map(|l| l.col_as_slice(0).to_vec());
                opts.extra_atoms = 0;
                let proven = net.polar(q.as_ref(), &opts, &mut rng);
                // A heuristic polar may find a better subnetwork on the second search: then keep growing.
                near_optimal = proven.lower <= 1.0 + grow_threshold;
                polar = proven;
            }
            let mut cert = Certificate::new(&p, &ev, &polar, w.width(), self.tol);
            // Families that refine their dual also grow by the fully corrective step over several polar atoms.
            let corrected = tighten(&p, &w, &polar, &opts, &mut rng, &mut cert, if opts.prove { 10 } else { 5 });
            let certified = cert.status == Status::Certified;
            if near_optimal {
                let gap = cert.gap_bound.unwrap_or(f64::INFINITY);
                stalls = if gap < 0.99 * best_gap { 0 } else { stalls + 1 };
                best_gap = best_gap.min(gap);
            }
            let can_refine = descent.tol > 1e-16 || grow_threshold > floor || stalls < 3;
            let stop = if certified {
                Some(StopReason::Certified)
            } else if outer >= self.max_outer {
                Some(StopReason::MaxOuter)
            } else if Instant::now() >= deadline {
                Some(StopReason::MaxSeconds)
            } else if near_optimal && !can_refine {
                Some(StopReason::NoBetterSubnetwork)
            } else {
                None
            };
            let action = match stop {
                Some(_) => "stop",
                None if !near_optimal => "grow",
                None => "refine",
            };
            let rec = IterationRecord {
                outer,
                subnetworks: w.width(),
                objective: ev.objective,
                polar_lower: polar.lower,
                polar_upper: polar.upper,
                gap_bound: cert.gap_bound,
                descent_sweeps: info.sweeps,
                seconds: start.elapsed().as_secs_f64(),
                action,
            };
            observer.observe(&rec);
            history.push(rec);
            if let Some(reason) = stop {
                let mut certificate = cert;
                if matches!(reason, StopReason::MaxOuter | StopReason::MaxSeconds) {
                    certificate.status = Status::Stopped;
                }
                return Ok(FittedModel {
                    weights: w,
                    certificate,
                    history,
                    stop_reason: reason,
                    outer_iterations: outer,
                    seconds: start.elapsed().as_secs_f64(),
                });
            }
            if near_optimal {
                // No subnetwork improves f by a margin: polish the local descent before asking again. Near the
                // optimum a sweep decreases f by about (rho - 1)^2 * f, so reaching rho - 1 ~ tol / 10 needs a
                // relative-decrease tolerance of about (tol / 10)^2.
                descent.tol = (descent.tol * 1e-2).min((0.1 * self.tol).powi(2)).max(1e-16);
                grow_threshold = (grow_threshold * 0.1).max(floor);
                if polar.lower > 1.0 + grow_threshold {
                    grow(&p, &mut w, &polar.atom, Some(&ev.z));
                }
            } else {
                grow(&p, &mut w, &polar.atom, Some(&ev.z));
                // Further candidates found at no cost (Ritz pairs): each corrective step can only decrease f.
                for (value, atom) in &polar.extra {
                    if *value > 1.0 + grow_threshold {
                        grow(&p, &mut w, atom, None);
                    }
                }
            }
            // Single subnetworks may no longer improve f measurably while several together do: take the fully
            // corrective model of the dual refinement when it is better, for descent to polish.
            if let Some(better) = corrected {
                if p.objective(&better) < p.objective(&w) {
                    w = better;
                }
            }
        }
    }
}
