//! The meta-algorithm (THEORY.md section 4): descend, check the polar, grow with a proper step, prune, until the
//! gap bound is certified or a limit is reached. Parameters are validated once ([`params`]), one outer iteration
//! is a step of the [`solver`], the [`executor`] runs the steps from a start or a saved [`MetaState`] and hands
//! each iteration to the [`Observer`]s (progress, logs, checkpoints, a stop flag), and the result is a separate
//! [`FitResult`] with the [`Termination`] that ended the run.

pub mod certificate;
pub mod completion;
pub mod executor;
pub mod growth;
pub mod observer;
pub mod params;
pub mod path;
pub mod pruning;
pub mod solver;
pub mod state;

use faer::Par;

use crate::core::loss::{Loss, Observations};
use crate::core::polar::PolarOptions;
use crate::core::problem::Problem;
use crate::core::{balance, prune_zero, Family, Weights};
use crate::error::{GonnError, Result};
use crate::meta::certificate::Certificate;
use crate::meta::growth::ray_step;
use crate::numerics::linalg::all_finite;
use crate::numerics::rng::Rng;

pub use observer::{Observer, Observers, Silent};
pub use params::{FitParams, ValidFitParams};
pub use state::{fingerprint, Action, IterationRecord, MetaState, Termination};

/// The result of a run of the meta-algorithm: weights, certificate, history and why the run ended (see
/// [`crate::model::FittedModel`] for a model that predicts, saves and loads).
#[derive(Clone, Debug)]
pub struct FitResult {
    pub weights: Weights,
    pub certificate: Certificate,
    pub history: Vec<IterationRecord>,
    pub termination: Termination,
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

pub(crate) fn check_weights(net: &dyn Family, w: &Weights) -> Result<()> {
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

pub(crate) fn check_problem(net: &dyn Family, obs: &Observations, loss: Loss) -> Result<()> {
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
pub(crate) fn random_start(p: &Problem<'_>, width: usize, rng: &mut Rng) -> Weights {
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
pub fn degree_mismatch(net: &dyn Family) -> Option<String> {
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

/// `lambda_max = Omega°(-G(0))`, the smallest lambda for which the zero model is optimal (THEORY.md section 3: at
/// `W = 0` the optimality condition is `Omega°(-G(0) / lambda) <= 1`), as the polar's bracket `(lower, proven
/// upper)`; exact families close it (unless `budget` cuts their enumeration short). Lambdas far below it grow many
/// subnetworks.
pub fn lambda_max(
    net: &dyn Family,
    obs: &Observations,
    loss: Loss,
    threads: usize,
    budget: crate::numerics::budget::Budget,
) -> Result<(f64, Option<f64>)> {
    check_problem(net, obs, loss)?;
    let p = Problem { net, loss, obs, lambda: 1.0, par: parallelism(threads) };
    let ev = p.evaluate(&Weights::empty(&net.layer_dims()));
    let q = solver::dual_direction(&ev.g, 1.0);
    let mut opts = PolarOptions::new(true, p.par);
    opts.budget = budget;
    // lambda_max is the polar's value itself: no target below which the search may stop.
    opts.target = 0.0;
    let polar = net.polar(q.as_ref(), &opts, &mut Rng::new(0));
    Ok((polar.lower.max(0.0), polar.upper))
}

/// Computes the certificate of arbitrary weights (THEORY.md section 3), without changing them.
pub fn certify(
    net: &dyn Family,
    obs: &Observations,
    loss: Loss,
    lambda: f64,
    w: &Weights,
    tol: f64,
    threads: usize,
) -> Result<Certificate> {
    certify_with(net, obs, w, FitParams::new(lambda).loss(loss).tol(tol).threads(threads))
}

/// [`certify`] with all of a fit's parameters (`lambda`, loss, tolerance, threads, polar restarts and time).
pub fn certify_with(net: &dyn Family, obs: &Observations, w: &Weights, params: FitParams) -> Result<Certificate> {
    let params = params.validate()?;
    let (lambda, tol) = (params.lambda, params.tol);
    let p = params.problem(net, obs)?;
    check_weights(net, w)?;
    let ev = p.evaluate(w);
    let q = solver::dual_direction(&ev.g, lambda);
    let mut rng = Rng::new(params.seed);
    let opts = params.polar_options(true, p.par);
    let polar = net.polar(q.as_ref(), &opts, &mut rng);
    let nonzero = crate::core::zero_slices(w).iter().filter(|z| !**z).count();
    let mut cert = Certificate::new(&p, &ev, &polar, nonzero, tol);
    // A search that proved the polar below its target (1) without closing its bracket still bounds it: the
    // refinement's proven rounds apply (a PyTorch network on 5 features: proven gap 18.6 times the true one
    // without them).
    solver::tighten(&p, w, &polar, &opts, &mut rng, &mut cert, 10, true);
    let objective = cert.objective;
    cert.check_lower_bound(objective);
    Ok(cert)
}
