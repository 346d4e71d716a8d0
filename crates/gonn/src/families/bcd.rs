//! Local descent (THEORY.md section 5): accelerated block-coordinate proximal gradient over the weight layers,
//! with extrapolation capped by `sqrt(L_old / L_new)`, monotone restarts, exact zeros from the group prox,
//! balancing, and removal of subnetworks that became exactly zero.
//!
//! Step sizes come from a majorizer of the layer's curvature matrix `M_k` (see
//! [`Multilinear::layer_curvature`]): either the scalar
//! `L = lambda_max(M_k)` of THEORY.md, or the diagonal of absolute row sums `d_i = sum_j |M_k[i, j]|`
//! (Gershgorin: `diag(d) - M_k` is diagonally dominant, hence `M_k <= diag(d)`). Near an optimum the subnetworks
//! are nearly orthogonal and `d_i ~ M_k[i, i]`, so each subnetwork gets its own step `1 / d_i`; this removes the
//! ill-conditioning between large and small subnetworks that slows a single global step.

use crate::core::descent::{DescentInfo, DescentOptions};
use crate::core::loss::Loss;
use crate::core::problem::Problem;
use crate::core::{balance, prune_zero, zero_slices, Subnetwork, Weights};
use crate::numerics::linalg::sym_max_eigenvalue;
use crate::numerics::linalg::{dot, mul};

/// What the block proximal gradient needs beyond [`Subnetwork`]: families that are linear in each layer
/// (factorizations, CP tensors), so that `||Phi(W)||^2 = <W^k M_k, W^k>` with `M_k` the exact Gram matrix of the
/// other layers' combined features and, for the fully observed squared loss, each layer's subproblem is an exact
/// quadratic plus the group penalty (solved without forming `Phi`).
pub trait Multilinear: Subnetwork {
    /// The `r x r` positive semidefinite curvature matrix `M_k` of layer `k`: with the other layers fixed, the
    /// Hessian of `W^k -> 1/2 ||Phi(W)||^2` is `M_k ⊗ I` (e.g. `V^T V` for `U`). Masking only lowers it.
    fn layer_curvature(&self, w: &Weights, k: usize, par: faer::Par) -> faer::Mat<f64>;

    /// Whether [`Multilinear::forward_observed`] and [`Multilinear::layer_gradient_observed`] are implemented,
    /// so that masked data is descended on its observed entries only.
    fn observed_path(&self) -> bool {
        false
    }

    /// `Phi(W)` at the listed `(row, column)` entries only, for sparse descent on masked data (`None`: the family
    /// has no such path and the dense one is used).
    fn forward_observed(&self, _w: &Weights, _idx: &[(usize, usize)]) -> Option<Vec<f64>> {
        None
    }

    /// `d <G, Phi(W)> / d W^k` for a `G` that is zero outside the listed entries, whose values are `g`.
    fn layer_gradient_observed(
        &self,
        _w: &Weights,
        _k: usize,
        _idx: &[(usize, usize)],
        _g: &[f64],
    ) -> Option<faer::Mat<f64>> {
        None
    }
}

/// Per-column curvature steps `L_i` (the step is `1 / L_i`) from the curvature matrix `m` scaled by the loss
/// curvature `c`: the diagonal Gershgorin majorizer when its steps are larger on (geometric) average, else the
/// scalar `lambda_max(m)`. Both are valid majorizers of the block Hessian.
pub fn majorizer(m: &faer::Mat<f64>, c: f64) -> Vec<f64> {
    let r = m.nrows();
    if r == 0 {
        return vec![];
    }
    let d: Vec<f64> = (0..r).map(|i| c * (0..r).map(|j| m[(i, j)].abs()).sum::<f64>()).collect();
    let lmax = c * sym_max_eigenvalue(m.as_ref());
    let log_mean_d = d.iter().filter(|v| **v > 0.0).map(|v| v.ln()).sum::<f64>();
    let count = d.iter().filter(|v| **v > 0.0).count() as f64;
    if count > 0.0 && log_mean_d <= count * lmax.ln() {
        d
    } else {
        d.iter().map(|v| if *v > 0.0 { lmax } else { 0.0 }).collect()
    }
}

/// Runs block-coordinate proximal gradient on `w` until the relative decrease per sweep falls below `opts.tol`.
///
/// For layer `k`, with the other layers fixed, the loss is smooth with gradient Lipschitz constant
/// `L_k = curvature(loss) * layer_lipschitz(W, k)` and the regularizer is the weighted group penalty
/// `lambda * sum_i (prod_{j != k} ||W^j_i||) ||W^k_i||`; the step is `prox(W^k_hat - grad / L_k)` per column.
pub fn local_descent<N: Multilinear>(net: &N, p: &Problem<'_>, w: &mut Weights, opts: &DescentOptions) -> DescentInfo {
    // Exact block minimization pays off for l2-type layers; with pure l1 layers (many equivalent factorizations)
    // it was observed to stall where the accelerated single-step scheme keeps moving, so those use the latter.
    let l1_layer = p.net.layer_norms().iter().any(|n| n.norm == crate::core::norms::Norm::L1);
    if p.loss == Loss::Squared && p.obs.mask().is_none() && !l1_layer {
        return quadratic_descent(net, p, w, opts);
    }
    let norms = net.layer_norms();
    let kdeg = norms.len();
    // Masked data on a family with an observed-entry path: work on the observed entries only.
    let sparse = p.obs.observed().map(|o| (o.index.as_slice(), o.y.as_slice())).filter(|_| net.observed_path());
    let objective = |w: &Weights| match sparse {
        Some((idx, y)) => {
            let z = net.forward_observed(w, idx).expect("checked above");
            p.loss.value_and_gradient_observed(y, &z).0 + p.lambda * crate::core::regularizer(net, w)
        }
        None => p.objective(w),
    };
    let layer_grad = |w: &Weights, k: usize| match sparse {
        Some((idx, y)) => {
            let z = net.forward_observed(w, idx).expect("checked above");
            let (_, g) = p.loss.value_and_gradient_observed(y, &z);
            net.layer_gradient_observed(w, k, idx, &g).expect("checked above")
        }
        None => {
            let z = net.forward(w, p.par);
            let (_, g) = p.loss.value_and_gradient(p.obs, z.as_ref());
            net.layer_gradient(w, k, g.as_ref(), p.par)
        }
    };
    let mut info = DescentInfo { objective: objective(w), ..Default::default() };
    if w.width() == 0 {
        info.converged = true;
        return info;
    }
    let mut prev = w.clone();
    let mut t = 1.0f64;
    let mut lprev: Vec<Vec<f64>> = vec![Vec::new(); kdeg];
    let mut f = info.objective;
    while info.sweeps < opts.max_sweeps {
        if opts.budget.expired() {
            break;
        }
        info.sweeps += 1;
        let before = w.clone();
        let t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
        let omega = (t - 1.0) / t_next;
        let mut extrapolated = false;
        for k in 0..kdeg {
            let steps = majorizer(&net.layer_curvature(w, k, p.par), p.loss.curvature());
            let old = w.layers[k].clone();
            let mut beta = vec![0.0; w.width()];
            if lprev[k].len() == steps.len() {
                for i in 0..w.width() {
                    if lprev[k][i] > 0.0 && steps[i] > 0.0 {
                        beta[i] = omega.min(0.9999 * (lprev[k][i] / steps[i]).sqrt());
                    }
                }
            }
            if beta.iter().any(|b| *b > 0.0) {
                extrapolated = true;
                let pk = &prev.layers[k];
                w.layers[k] = faer::Mat::from_fn(old.nrows(), old.ncols(), |a, i| {
                    old[(a, i)] + beta[i] * (old[(a, i)] - pk[(a, i)])
                });
            }
            let grad = layer_grad(w, k);
            for (i, &l) in steps.iter().enumerate() {
                if l <= 0.0 || !l.is_finite() {
                    continue; // the other layers of this subnetwork are zero: nothing to update
                }
                // Weight of column i in the group penalty: lambda * prod_{j != k} ||W^j_i||.
                let other: f64 =
                    (0..kdeg).filter(|&j| j != k).map(|j| norms[j].value(w.layers[j].col_as_slice(i))).product();
                let col = w.layers[k].col_as_slice_mut(i);
                for (x, gx) in col.iter_mut().zip(grad.col_as_slice(i)) {
                    *x -= gx / l;
                }
                norms[k].prox(col, p.lambda * other / l);
            }
            prev.layers[k] = old;
            lprev[k] = steps;
        }
        let f_new = objective(w);
        if f_new.is_nan() || f_new > f + 1e-13 * f.abs() {
            // Monotone restart: reject the sweep and drop the momentum.
            *w = before;
            prev = w.clone();
            t = 1.0;
            info.restarts += 1;
            if !extrapolated {
                info.converged = true;
                break;
            }
            continue;
        }
        t = t_next;
        let decrease = f - f_new;
        f = f_new;
        let scales = balance(net, w);
        for (k, sk) in scales.iter().enumerate() {
            for (i, s) in sk.iter().enumerate() {
                prev.scale_column(k, i, *s);
            }
        }
        let zero = zero_slices(w);
        if zero.iter().any(|z| *z) {
            let keep: Vec<bool> = zero.iter().map(|z| !z).collect();
            w.retain(&keep);
            prev.retain(&keep);
            for l in lprev.iter_mut() {
                let kept: Vec<f64> = l.iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| *v).collect();
                *l = kept;
            }
        }
        if w.width() == 0 || decrease <= opts.tol * f.abs().max(f64::MIN_POSITIVE) {
            info.converged = true;
            break;
        }
    }
    info.objective = f;
    info
}

/// Exact block minimization for the fully observed squared loss on a multilinear family: with the other layers
/// fixed, `f` in layer `k` is `1/2 ||Y||^2 - <X, B_k> + 1/2 <X M_k, X> + sum_i c_i ||x_i||` with
/// `B_k = d<Y, Phi>/dW^k` (one large product per layer and sweep), `M_k` the layer's Gram matrix and
/// `c_i = lambda prod_{j != k} ||W^j_i||`. The small block problem is solved by accelerated proximal gradient on
/// `dim_k x r` matrices, so a sweep costs two large products instead of several passes over `Y`.
fn quadratic_descent<N: Multilinear>(net: &N, p: &Problem<'_>, w: &mut Weights, opts: &DescentOptions) -> DescentInfo {
    let norms = net.layer_norms();
    let kdeg = norms.len();
    let half_y2 = 0.5 * p.obs.y().squared_norm_l2();
    let mut info = DescentInfo { objective: half_y2, ..Default::default() };
    if w.width() == 0 {
        info.converged = true;
        return info;
    }
    let mut f = f64::INFINITY;
    while info.sweeps < opts.max_sweeps {
        if opts.budget.expired() {
            break;
        }
        info.sweeps += 1;
        let mut f_new = f;
        for k in 0..kdeg {
            let b = net.layer_gradient(w, k, p.obs.y().as_ref(), p.par);
            let m = net.layer_curvature(w, k, p.par);
            let c: Vec<f64> = (0..w.width())
                .map(|i| {
                    p.lambda
                        * (0..kdeg)
                            .filter(|&j| j != k)
                            .map(|j| norms[j].value(w.layers[j].col_as_slice(i)))
                            .product::<f64>()
                })
                .collect();
            let block_f = |x: &faer::Mat<f64>| {
                let xm = mul(x.as_ref(), m.as_ref(), p.par);
                let pen: f64 = (0..x.ncols()).map(|i| c[i] * norms[k].value(x.col_as_slice(i))).sum();
                half_y2 - dot(x.as_ref(), b.as_ref()) + 0.5 * dot(xm.as_ref(), x.as_ref()) + pen
            };
            if info.sweeps == 1 && k == 0 {
                f = block_f(&w.layers[0]);
            }
            let x = solve_block(&m, &b, &c, &w.layers[k], &norms[k], p.par);
            f_new = block_f(&x);
            w.layers[k] = x;
        }
        let decrease = f - f_new;
        f = f_new;
        balance(net, w);
        prune_zero(w);
        if w.width() == 0 || decrease <= opts.tol * f.abs().max(f64::MIN_POSITIVE) {
            info.converged = true;
            break;
        }
    }
    // The value from the block formula (callers re-evaluate f directly where they need it exactly).
    info.objective = if w.width() == 0 { half_y2 } else { f };
    info
}

/// `argmin_X 1/2 <X M, X> - <X, B> + sum_i c_i ||x_i||` (with the layer's sign constraint) by accelerated proximal
/// gradient with monotone restarts, warm-started at `x0`.
fn solve_block(
    m: &faer::Mat<f64>,
    b: &faer::Mat<f64>,
    c: &[f64],
    x0: &faer::Mat<f64>,
    norm: &crate::core::norms::LayerNorm,
    par: faer::Par,
) -> faer::Mat<f64> {
    let steps = majorizer(m, 1.0);
    let r = x0.ncols();
    let obj = |x: &faer::Mat<f64>| {
        let xm = mul(x.as_ref(), m.as_ref(), par);
        0.5 * dot(xm.as_ref(), x.as_ref()) - dot(x.as_ref(), b.as_ref())
            + (0..r).map(|i| c[i] * norm.value(x.col_as_slice(i))).sum::<f64>()
    };
    let prox_step = |y: &faer::Mat<f64>| {
        let ym = mul(y.as_ref(), m.as_ref(), par);
        let mut x = y.clone();
        for (i, &l) in steps.iter().enumerate() {
            if l <= 0.0 {
                continue;
            }
            let col = x.col_as_slice_mut(i);
            for (a, v) in col.iter_mut().enumerate() {
                *v -= (ym[(a, i)] - b[(a, i)]) / l;
            }
            norm.prox(col, c[i] / l);
        }
        x
    };
    let mut x = x0.clone();
    let mut fx = obj(&x);
    let mut y = x.clone();
    let mut t = 1.0f64;
    for _ in 0..1000 {
        let x_new = prox_step(&y);
        let f_new = obj(&x_new);
        if f_new > fx {
            // Restart from x without momentum.
            y = x.clone();
            t = 1.0;
            let x_plain = prox_step(&x);
            let f_plain = obj(&x_plain);
            if f_plain >= fx {
                break;
            }
            let change = (&x_plain - &x).norm_l2();
            x = x_plain;
            fx = f_plain;
            if change <= 1e-14 * x.norm_l2() {
                break;
            }
            continue;
        }
        let t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
        let beta = (t - 1.0) / t_next;
        let change = (&x_new - &x).norm_l2();
        y = &x_new + (&x_new - &x) * faer::Scale(beta);
        x = x_new;
        let done = change <= 1e-14 * x.norm_l2() || fx - f_new <= 1e-16 * fx.abs();
        fx = f_new;
        t = t_next;
        if done {
            break;
        }
    }
    x
}
