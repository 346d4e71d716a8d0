//! Local descent for deep and convolutional subnetworks (THEORY.md section 5): proximal gradient on all layers at
//! once, with one forward and one backward pass per step.
//!
//! For the product regularizer the step on layer `k` of subnetwork `i` is the group shrinkage
//! `prox(W^k_i - t grad) ` with weight `t lambda prod_{j != k} ||W^j_i||` (the per-layer scheme of section 5, with
//! the other layers' norms taken at the current point for every layer simultaneously). It gives exact zeros, so
//! whole subnetworks leave the model. The step `t` is found by backtracking on the true objective (a step is
//! kept only if `f` decreases), then the layers are balanced (`Phi` and the product unchanged; for the sum of
//! powers, which equals the product at balanced points, it can only decrease). Weight decay uses its own prox
//! `x / (1 + t lambda)`. Minibatch mode takes prox steps on sample batches (gradient rescaled to the full sum),
//! with the step from a full-batch backtracking search, halved whenever an epoch raises the full objective.

use std::time::Instant;

use faer::{Mat, MatRef};

use super::{DescentInfo, DescentOptions};
use crate::objective::Problem;
use crate::rng::Rng;
use crate::subnetwork::deep::{batch_pass, full_pass, DeepNetwork};
use crate::subnetwork::{balance, prune_zero, Regularizer, Weights};

/// The proximal step from `w` along `grads` with step `t`.
fn prox_step(net: &DeepNetwork, w: &Weights, grads: &[Mat<f64>], t: f64, lambda: f64) -> Weights {
    let kdeg = w.layers.len();
    let r = w.width();
    let norms: Vec<Vec<f64>> =
        (0..kdeg).map(|k| (0..r).map(|i| crate::norms::l2(w.layers[k].col_as_slice(i))).collect()).collect();
    let mut out = w.clone();
    for k in 0..kdeg {
        for i in 0..r {
            let x = out.layers[k].col_as_slice_mut(i);
            for (xv, gv) in x.iter_mut().zip(grads[k].col_as_slice(i)) {
                *xv -= t * gv;
            }
            match net.reg() {
                Regularizer::WeightDecay => {
                    let s = 1.0 / (1.0 + t * lambda);
                    x.iter_mut().for_each(|v| *v *= s);
                }
                Regularizer::Product | Regularizer::Powers => {
                    let weight: f64 = (0..kdeg).filter(|&j| j != k).map(|j| norms[j][i]).product();
                    let mu = t * lambda * weight;
                    let nx = crate::norms::l2(x);
                    let s = if nx > mu { 1.0 - mu / nx } else { 0.0 };
                    x.iter_mut().for_each(|v| *v *= s);
                }
            }
        }
    }
    out
}

/// Balances (matched regularizers only: weight decay is minimized by balancing too, but we keep its raw form).
fn tidy(net: &DeepNetwork, w: &mut Weights) {
    balance(net, w);
    prune_zero(w);
}

/// `(loss, gradient)` of the squared/logistic/softmax loss on all observations.
fn loss_gradient(p: &Problem<'_>, z: MatRef<'_, f64>) -> Mat<f64> {
    p.loss.value_and_gradient(p.obs, z).1
}

/// One full-batch backtracking step from `w` (objective `f`): the new weights and objective, or `None` when no
/// step size decreases `f`.
fn full_step(net: &DeepNetwork, p: &Problem<'_>, w: &Weights, f: f64, t: &mut f64) -> Option<(Weights, f64)> {
    let (_, _, grads) = full_pass(net, w, |z| loss_gradient(p, z), p.par);
    for _ in 0..60 {
        let mut cand = prox_step(net, w, &grads, *t, p.lambda);
        tidy(net, &mut cand);
        let fc = p.objective(&cand);
        if fc < f {
            return Some((cand, fc));
        }
        *t *= 0.5;
    }
    None
}

/// The local descent of [`DeepNetwork`] (full batch, or minibatch when `opts.batch_size` is smaller than `n`).
pub fn prox_descent(net: &DeepNetwork, p: &Problem<'_>, w: &mut Weights, opts: &DescentOptions) -> DescentInfo {
    tidy(net, w);
    let mut f = p.objective(w);
    let mut info = DescentInfo { objective: f, ..Default::default() };
    if w.width() == 0 {
        info.converged = true;
        return info;
    }
    let n = p.obs.nrows();
    let mut t = 1.0 / (p.loss.curvature() * n as f64).max(1.0);
    if let Some(b) = opts.batch_size.filter(|&b| b > 0 && b < n) {
        return minibatch(net, p, w, opts, b, f, t);
    }
    while info.sweeps < opts.max_sweeps {
        if opts.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        info.sweeps += 1;
        let Some((cand, fc)) = full_step(net, p, w, f, &mut t) else {
            info.converged = true;
            break;
        };
        let decrease = f - fc;
        *w = cand;
        f = fc;
        t *= 2.0;
        if w.width() == 0 || decrease <= opts.tol * f.abs() {
            info.converged = true;
            break;
        }
    }
    info.objective = f;
    info
}

/// Minibatch proximal gradient: epochs over a seeded random order of the samples.
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
    // The step of a full-batch backtracking search.
    match full_step(net, p, w, f, &mut t) {
        Some((cand, fc)) => {
            *w = cand;
            f = fc;
        }
        None => {
            info.converged = true;
            return info;
        }
    }
    let n = p.obs.nrows();
    let c = p.obs.ncols();
    let mut rng = Rng::new(opts.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let scale = |m: usize| n as f64 / m as f64;
    while info.sweeps < opts.max_sweeps && w.width() > 0 {
        if opts.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        info.sweeps += 1;
        for i in (1..n).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let before = w.clone();
        for rows in order.chunks(batch) {
            let grads = batch_pass(
                net,
                w,
                rows,
                |z| {
                    let y: Vec<f64> =
                        (0..c).flat_map(|j| rows.iter().map(move |&i| (i, j))).map(|ij| p.obs.y[ij]).collect();
                    let zs: Vec<f64> = (0..c).flat_map(|j| (0..rows.len()).map(move |i| z[(i, j)])).collect();
                    let (_, g) = p.loss.value_and_gradient_observed(&y, &zs);
                    let s = scale(rows.len());
                    Mat::from_fn(rows.len(), c, |i, j| s * g[j * rows.len() + i])
                },
                p.par,
            );
            let mut cand = prox_step(net, w, &grads, t, p.lambda);
            tidy(net, &mut cand);
            *w = cand;
            if w.width() == 0 {
                break;
            }
        }
        let fc = p.objective(w);
        if !(fc < f) {
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
