//! Local descent (THEORY.md section 5): accelerated block-coordinate proximal gradient over the weight layers,
//! with extrapolation capped by `sqrt(L_old / L_new)`, monotone restarts, exact zeros from the group prox,
//! balancing, and removal of subnetworks that became exactly zero.
//!
//! Step sizes come from a majorizer of the layer's curvature matrix `M_k` (see
//! [`Subnetwork::layer_curvature`](crate::subnetwork::Subnetwork::layer_curvature)): either the scalar
//! `L = lambda_max(M_k)` of THEORY.md, or the diagonal of absolute row sums `d_i = sum_j |M_k[i, j]|`
//! (Gershgorin: `diag(d) - M_k` is diagonally dominant, hence `M_k <= diag(d)`). Near an optimum the subnetworks
//! are nearly orthogonal and `d_i ~ M_k[i, i]`, so each subnetwork gets its own step `1 / d_i`; this removes the
//! ill-conditioning between large and small subnetworks that slows a single global step.

use std::time::Instant;

use crate::linalg::sym_max_eigenvalue;
use crate::objective::Problem;
use crate::subnetwork::{balance, zero_slices, Weights};

/// Options for [`local_descent`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DescentOptions {
    /// Maximum number of sweeps over all layers.
    pub max_sweeps: usize,
    /// Stop when a sweep decreases `f` by less than `tol * f` (relative).
    pub tol: f64,
    /// Stop at this instant, if given.
    pub deadline: Option<Instant>,
}

impl Default for DescentOptions {
    fn default() -> Self {
        Self { max_sweeps: 5000, tol: 1e-7, deadline: None }
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

/// What a call of [`local_descent`] did.
#[derive(Clone, Debug, Default)]
pub struct DescentInfo {
    pub sweeps: usize,
    pub objective: f64,
    pub converged: bool,
    pub restarts: usize,
}

/// Runs block-coordinate proximal gradient on `w` until the relative decrease per sweep falls below `opts.tol`.
///
/// For layer `k`, with the other layers fixed, the loss is smooth with gradient Lipschitz constant
/// `L_k = curvature(loss) * layer_lipschitz(W, k)` and the regularizer is the weighted group penalty
/// `lambda * sum_i (prod_{j != k} ||W^j_i||) ||W^k_i||`; the step is `prox(W^k_hat - grad / L_k)` per column.
pub fn local_descent(p: &Problem<'_>, w: &mut Weights, opts: &DescentOptions) -> DescentInfo {
    let net = p.net;
    let norms = net.layer_norms();
    let kdeg = norms.len();
    let mut info = DescentInfo { objective: p.objective(w), ..Default::default() };
    if w.width() == 0 {
        info.converged = true;
        return info;
    }
    let mut prev = w.clone();
    let mut t = 1.0f64;
    let mut lprev: Vec<Vec<f64>> = vec![Vec::new(); kdeg];
    let mut f = info.objective;
    while info.sweeps < opts.max_sweeps {
        if opts.deadline.is_some_and(|d| Instant::now() >= d) {
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
            let z = net.forward(w, p.par);
            let (_, g) = p.loss.value_and_gradient(p.obs, z.as_ref());
            let grad = net.layer_gradient(w, k, g.as_ref(), p.par);
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
        let f_new = p.objective(w);
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
