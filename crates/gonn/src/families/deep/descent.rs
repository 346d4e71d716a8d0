//! Local descent for deep and convolutional subnetworks (THEORY.md section 5): proximal gradient on all layers at
//! once, with one forward and one backward pass per step.
//!
//! For the product regularizer the step on layer `k` of subnetwork `i` is the group shrinkage
//! `prox(W^k_i - t grad)` with threshold `t lambda prod_{j != k} ||W^j_i||` (the per-layer scheme of section 5,
//! the other layers' norms taken at the current point). It gives exact zeros, so whole subnetworks leave the
//! model. The step `t` is found by backtracking on the true objective (a step is kept only if `f` decreases;
//! `t` starts small and doubles until the first cut, then grows by 1.25 per step). After each step the layers are balanced (`Phi` and the product unchanged; the sum of
//! powers, equal to the product at balanced points, can only decrease). Weight decay uses its own prox
//! `x / (1 + t lambda)`.
//!
//! Minibatch mode takes the same prox steps on sample batches (gradient rescaled to the full sum), with the step
//! of a full-batch backtracking search, halved whenever an epoch raises the full objective.
//!
//! Tried and not kept (on digits, `examples/deep_speed.rs`): FISTA extrapolation with restarts (extrapolated steps
//! were almost never accepted), a Gauss-Newton block metric (better on one architecture, worse on two), and a
//! per-entry RMS (Adam-like) metric (unstable).

use faer::Mat;

use crate::core::descent::{DescentInfo, DescentOptions};
use crate::core::problem::Problem;
use crate::core::{balance, prune_zero, regularizer, Regularizer, Weights};
use crate::families::deep::{backward_pass, batch_pass, forward_pass, DeepNetwork};
use crate::numerics::rng::Rng;

/// Steps per call: the meta-algorithm calls the descent again after each growth, so a bounded call keeps the
/// polar (which may find a better subnetwork to add) in the loop.
const MAX_STEPS: usize = 500;

/// The proximal step from `y` along `grads` with step `t`.
fn prox_step(reg: Regularizer, y: &Weights, grads: &[Mat<f64>], t: f64, lambda: f64) -> Weights {
    // The product of the other layers' norms, per layer and subnetwork (the group weight of THEORY.md section 5).
    let norms: Vec<Vec<f64>> =
        y.layers.iter().map(|l| (0..l.ncols()).map(|i| crate::core::norms::l2(l.col_as_slice(i))).collect()).collect();
    let others =
        |k: usize, i: usize| -> f64 { norms.iter().enumerate().filter(|(j, _)| *j != k).map(|(_, n)| n[i]).product() };
    let mut out = y.clone();
    for (k, (layer, grad)) in out.layers.iter_mut().zip(grads).enumerate() {
        for i in 0..layer.ncols() {
            let x = layer.col_as_slice_mut(i);
            for (xv, gv) in x.iter_mut().zip(grad.col_as_slice(i)) {
                *xv -= t * gv;
            }
            let s = match reg {
                Regularizer::WeightDecay => 1.0 / (1.0 + t * lambda),
                Regularizer::Product | Regularizer::Powers => {
                    let mu = t * lambda * others(k, i);
                    let nx = crate::core::norms::l2(x);
                    if nx > mu {
                        1.0 - mu / nx
                    } else {
                        0.0
                    }
                }
            };
            x.iter_mut().for_each(|v| *v *= s);
        }
    }
    out
}

/// Balances `w` and drops subnetworks that are exactly zero.
fn tidy(net: &DeepNetwork, w: &mut Weights) {
    balance(net, w);
    prune_zero(w);
}

/// `f(W)` with the loss gradient `G` and the forward pass (kept for the backward pass).
fn evaluate(net: &DeepNetwork, p: &Problem<'_>, w: &Weights) -> (f64, Mat<f64>, crate::families::deep::Cache) {
    let cache = forward_pass(net, w, p.par);
    let (loss, g) = p.loss.value_and_gradient(p.obs, cache.out.as_ref());
    (loss + p.lambda * regularizer(net, w), g, cache)
}

/// One backtracking step from `w` (objective `f`, layer gradients `grads`): the new weights, objective and layer
/// gradients with `f(new) < f`, or `None`. The accepted point's forward pass serves its gradient.
fn step_from(
    net: &DeepNetwork,
    p: &Problem<'_>,
    w: &Weights,
    f: f64,
    grads: &[Mat<f64>],
    t: &mut f64,
) -> Option<(Weights, f64, Vec<Mat<f64>>)> {
    for _ in 0..60 {
        let mut cand = prox_step(net.reg(), w, grads, *t, p.lambda);
        tidy(net, &mut cand);
        let (fc, g, cache) = evaluate(net, p, &cand);
        if fc < f {
            let grads = backward_pass(net, &cand, &cache, g.as_ref(), p.par);
            return Some((cand, fc, grads));
        }
        *t *= 0.5;
    }
    None
}

/// The local descent of [`DeepNetwork`] (full batch, or minibatch when `opts.batch_size` is smaller than `n`).
pub fn prox_descent(net: &DeepNetwork, p: &Problem<'_>, w: &mut Weights, opts: &DescentOptions) -> DescentInfo {
    tidy(net, w);
    let (mut f, g, cache) = evaluate(net, p, w);
    let mut info = DescentInfo { objective: f, ..Default::default() };
    if w.width() == 0 {
        info.converged = true;
        return info;
    }
    let mut grads = backward_pass(net, w, &cache, g.as_ref(), p.par);
    drop(cache);
    let n = p.obs.nrows();
    // Start with a small step and let it grow: a long first step may jump to a worse basin (e.g. next to zero).
    let mut t = 1e-4 / p.loss.curvature();
    let mut growth = 2.0;
    if let Some(b) = opts.batch_size.filter(|&b| b > 0 && b < n) {
        // One full-batch backtracking step sets the minibatch step size.
        let Some((cand, fc, _)) = step_from(net, p, w, f, &grads, &mut t) else {
            info.converged = true;
            return info;
        };
        *w = cand;
        return minibatch(net, p, w, opts, b, fc, t);
    }
    let mut small = 0;
    while info.sweeps < opts.max_sweeps.min(MAX_STEPS) {
        if opts.budget.expired() {
            break;
        }
        info.sweeps += 1;
        let t_tried = t;
        let Some((cand, fc, gc)) = step_from(net, p, w, f, &grads, &mut t) else {
            info.converged = true;
            break;
        };
        if t < t_tried {
            growth = 1.25;
        }
        let decrease = f - fc;
        *w = cand;
        grads = gc;
        f = fc;
        t *= growth;
        if w.width() == 0 {
            info.converged = true;
            break;
        }
        // Stop after a few consecutive small decreases (one may follow a step-size cut).
        small = if decrease <= opts.tol * f.abs() { small + 1 } else { 0 };
        if small >= 3 {
            info.converged = true;
            break;
        }
    }
    info.objective = f;
    info
}

/// Minibatch proximal gradient with step `t`: epochs over a seeded random order of the samples, from `w` with
/// objective `f`.
fn minibatch(
    net: &DeepNetwork,
    p: &Problem<'_>,
    w: &mut Weights,
    opts: &DescentOptions,
    batch: usize,
    mut f: f64,
    mut t: f64,
) -> DescentInfo {
    let mut info = DescentInfo { objective: f, ..Default::default() };
    let (n, c) = (p.obs.nrows(), p.obs.ncols());
    let mut rng = Rng::new(opts.seed);
    // Rows without an observed entry (held out for validation) never enter a minibatch.
    let mut order: Vec<usize> = (0..n).filter(|&i| (0..c).any(|j| p.obs.is_observed(i, j))).collect();
    let n = order.len();
    while info.sweeps < opts.max_sweeps && w.width() > 0 {
        if opts.budget.expired() {
            break;
        }
        info.sweeps += 1;
        for i in (1..n).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let before = w.clone();
        for rows in order.chunks(batch) {
            let m = rows.len();
            let scale = n as f64 / m as f64;
            let grads = batch_pass(
                net,
                w,
                rows,
                |z| {
                    let y: Vec<f64> = (0..c).flat_map(|j| rows.iter().map(move |&i| p.obs.y()[(i, j)])).collect();
                    let zs: Vec<f64> = (0..c).flat_map(|j| (0..m).map(move |i| z[(i, j)])).collect();
                    let (_, g) = p.loss.value_and_gradient_observed(&y, &zs);
                    Mat::from_fn(m, c, |i, j| if p.obs.is_observed(rows[i], j) { scale * g[j * m + i] } else { 0.0 })
                },
                p.par,
            );
            *w = prox_step(net.reg(), w, &grads, t, p.lambda);
            tidy(net, w);
            if w.width() == 0 {
                break;
            }
        }
        let fc = p.objective(w);
        if fc.partial_cmp(&f) != Some(std::cmp::Ordering::Less) {
            // The epoch raised the full objective: undo it and halve the step.
            *w = before;
            t *= 0.5;
            if t < 1e-14 {
                info.converged = true;
                break;
            }
            continue;
        }
        let decrease = f - fc;
        f = fc;
        if decrease <= opts.tol.max(1e-6) * f.abs() {
            info.converged = true;
            break;
        }
    }
    info.objective = f;
    info
}
