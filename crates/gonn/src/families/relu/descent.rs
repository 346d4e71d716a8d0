//! Local descent for ReLU units (THEORY.md section 7): the convex program restricted to the activation patterns in
//! use. Plain gradient steps stall on the kinks of the ReLU, because optimal units sit exactly on them (a sample
//! with `x_j^T u = 0`). Freezing each unit's pattern `D_i = diag(1[X u_i >= 0])` makes the network linear,
//! `Phi = sum_i D_i X u_i v_i^T`, on the product of the cones `K_{D_i}`; on that set it equals the ReLU network.
//!
//! Each sweep solves two convex block problems by accelerated proximal gradient with backtracking:
//! - first layer, in the scaled variables `w_i = ||v_i|| u_i` with `v_i / ||v_i||` fixed:
//!   `min loss(sum_i D_i X w_i vhat_i^T) + lambda sum_i ||w_i||_2` over `w_i in K_{D_i}`. The prox of
//!   `mu ||.|| + indicator(K)` for a cone `K` is the projection onto `K` followed by group shrinkage. With one
//!   output this block *is* the Pilanci-Ergen convex program restricted to the current patterns;
//! - output layer (several outputs), in `vt_i = ||u_i|| v_i` with `u_i / ||u_i||` fixed: a group lasso.
//!
//! Patterns are refreshed between sweeps, and the polar over all patterns (the pricing problem of column
//! generation) supplies new ones.

use faer::Mat;

use crate::core::descent::{DescentInfo, DescentOptions};
use crate::core::norms::{LayerNorm, Norm};
use crate::core::problem::Problem;
use crate::core::{prune_zero, Subnetwork, Weights};
use crate::families::relu::{hidden, ReluNetwork};
use crate::numerics::cone::{project_screened, Rows, Screen};
use crate::numerics::fista::{fista, Block, FistaResult, FistaSettings};
use crate::numerics::linalg::{dot, mul, mul_nt, mul_tn};

/// The first-layer block on frozen patterns, in `w_i = ||v_i|| u_i`.
struct FirstLayer<'a> {
    p: &'a Problem<'a>,
    x: faer::MatRef<'a, f64>,
    rows: &'a Rows,
    gates: Vec<Vec<bool>>,
    /// `gates` as a 0/1 matrix (`n x r`).
    mask: Mat<f64>,
    /// `v_i / ||v_i||` (`C x r`).
    vhat: Mat<f64>,
    /// Per column, the constraints active at its last projection (warm starts).
    active_sets: std::cell::RefCell<Vec<Vec<usize>>>,
    /// Per column, when the inputs are 2-D (one feature plus the bias): the two constraints that define its cone
    /// exactly (see [`wedge`]); `None`: all `n`.
    wedges: Vec<Option<[[f64; 2]; 2]>>,
    /// Per column without a wedge: the constraints by distance from the block's starting point, so that the
    /// iterates (which stay near it) are checked and projected against the few that can be violated.
    screens: Vec<Option<Screen>>,
    /// Squared loss: the block's smooth part as an explicit quadratic in `vec(W)`.
    quadratic: Option<Quadratic>,
}

/// For the squared loss the first-layer block is a quadratic in `w = vec(W)` (`k r` numbers, `k = d + 1`):
/// `1/2 ||M ⊙ (sum_i D_i X w_i vhat_i^T - Y)||^2 = 1/2 w^T H w - b^T w + c` with, per output `c`,
/// `A_c = [vhat_1c D_1 X, ..., vhat_rc D_r X]` on the observed rows, `H = sum_c A_c^T A_c`,
/// `b = sum_c A_c^T y_c`. Formed once per sweep (`O(n (k r)^2)`), it makes each of the solver's iterations cost
/// `O((k r)^2)` instead of `O(n k r)`. For another entrywise loss the same form holds the loss's Newton model
/// (see [`prox_newton`]).
struct Quadratic {
    h: Mat<f64>,
    b: Mat<f64>,
    c: f64,
}

impl Quadratic {
    /// `H = sum_c A_c^T diag(h_c) A_c` (`h = 1` when `curv` is `None`), `b = sum_c A_c^T t_c` on the observed rows,
    /// and the constant `c`.
    #[allow(clippy::too_many_arguments)]
    fn new(
        p: &Problem<'_>,
        x: faer::MatRef<'_, f64>,
        mask: &Mat<f64>,
        vhat: &Mat<f64>,
        curv: Option<&Mat<f64>>,
        target: faer::MatRef<'_, f64>,
        c: f64,
    ) -> Self {
        let (n, k, r) = (x.nrows(), x.ncols(), mask.ncols());
        let observed = p.obs.mask();
        let mut h = Mat::<f64>::zeros(k * r, k * r);
        let mut b = Mat::<f64>::zeros(k * r, 1);
        for out in 0..vhat.nrows() {
            let seen = |a: usize| observed.is_none_or(|m| m[(a, out)] != 0.0);
            let a_c = Mat::from_fn(n, k * r, |a, col| {
                let (i, f) = (col / k, col % k);
                if seen(a) {
                    mask[(a, i)] * vhat[(out, i)] * x[(a, f)]
                } else {
                    0.0
                }
            });
            match curv {
                None => h += mul_tn(a_c.as_ref(), a_c.as_ref(), p.par),
                Some(hc) => {
                    let s = Mat::from_fn(n, k * r, |a, col| a_c[(a, col)] * hc[(a, out)].sqrt());
                    h += mul_tn(s.as_ref(), s.as_ref(), p.par);
                }
            }
            b += mul_tn(a_c.as_ref(), target.col(out).as_mat(), p.par);
        }
        Self { h, b, c }
    }

    /// The squared loss's block: `b = sum_c A_c^T y_c`, `c = 1/2 ||M ⊙ Y||^2`.
    fn squared(p: &Problem<'_>, x: faer::MatRef<'_, f64>, mask: &Mat<f64>, vhat: &Mat<f64>) -> Self {
        let y = p.obs.y();
        let half_yy = 0.5
            * (0..y.ncols())
                .map(|c| {
                    (0..y.nrows()).filter(|&a| p.obs.is_observed(a, c)).map(|a| y[(a, c)] * y[(a, c)]).sum::<f64>()
                })
                .sum::<f64>();
        Self::new(p, x, mask, vhat, None, y.as_ref(), half_yy)
    }

    /// The loss's second-order model in `Z` at the block's outputs `z0` (loss `val`, gradient `g`):
    /// `H = sum_c A_c^T diag(h_c) A_c`, `b = sum_c A_c^T (h_c ⊙ z0_c - g_c)` with `h = loss''(z0)` on the observed
    /// entries, and `c` such that the model equals `val` at `z0`.
    fn newton(block: &FirstLayer<'_>, z0: &Mat<f64>, val: f64, g: &Mat<f64>) -> Self {
        let p = block.p;
        let curv = Mat::from_fn(z0.nrows(), z0.ncols(), |a, c| {
            if p.obs.is_observed(a, c) {
                p.loss.entry_curvature(z0[(a, c)]).unwrap_or(0.0)
            } else {
                0.0
            }
        });
        let target = Mat::from_fn(z0.nrows(), z0.ncols(), |a, c| curv[(a, c)] * z0[(a, c)] - g[(a, c)]);
        // `1/2 z0^T diag(h) z0 - (h ⊙ z0 - g)^T z0 + c = val`.
        let half_hzz = 0.5 * (dot(target.as_ref(), z0.as_ref()) + dot(g.as_ref(), z0.as_ref()));
        let c = val - dot(g.as_ref(), z0.as_ref()) + half_hzz;
        Self::new(p, block.x, &block.mask, &block.vhat, Some(&curv), target.as_ref(), c)
    }

    /// `(1/2 w^T H w - b^T w + c, H w - b)` with `w = vec(wt)`, the gradient shaped like `wt`.
    fn eval(&self, wt: &Mat<f64>, par: faer::Par) -> (f64, Mat<f64>) {
        let (k, r) = (wt.nrows(), wt.ncols());
        let w = Mat::from_fn(k * r, 1, |a, _| wt[(a % k, a / k)]);
        let hw = mul(self.h.as_ref(), w.as_ref(), par);
        let whw: f64 = (0..k * r).map(|a| w[(a, 0)] * hw[(a, 0)]).sum();
        let bw: f64 = (0..k * r).map(|a| self.b[(a, 0)] * w[(a, 0)]).sum();
        let g = Mat::from_fn(k, r, |f, i| hw[(f + k * i, 0)] - self.b[(f + k * i, 0)]);
        (0.5 * whw - bw + self.c, g)
    }
}

/// In place, the projection of `z` onto the wedge `{w : a^T w >= 0, b^T w >= 0}` in two dimensions: `z` itself,
/// else the nearer of its feasible projections onto the two boundary lines, else the apex `0`.
fn project_wedge(a: &[f64], b: &[f64], z: &mut [f64]) {
    let dot = |p: &[f64], q: &[f64]| p[0] * q[0] + p[1] * q[1];
    if dot(a, z) >= 0.0 && dot(b, z) >= 0.0 {
        return;
    }
    let onto = |c: &[f64]| {
        let t = dot(c, z) / dot(c, c);
        [z[0] - t * c[0], z[1] - t * c[1]]
    };
    let mut best: ([f64; 2], f64) = ([0.0, 0.0], dot(z, z));
    for (c, other) in [(a, b), (b, a)] {
        let p = onto(c);
        let dist = (p[0] - z[0]).powi(2) + (p[1] - z[1]).powi(2);
        if dot(other, &p) >= 0.0 && dot(c, z) < 0.0 && dist < best.1 {
            best = (p, dist);
        }
    }
    z.copy_from_slice(&best.0);
}

/// The cone `K_D = {u : a_j^T u >= 0}`, `a_j = s_j x_j`, of a unit `u` in two dimensions is a wedge: the dual of
/// `cone(a_1..a_n)`, which (when the `a_j` lie within less than a half-turn of each other) is generated by the two
/// `a_j` of extreme angle. Those two rows then define `K_D` exactly, and projections cost O(1) instead of O(n).
/// `None` when the angular spread reaches a half-turn (the cone is a ray or `{0}`): keep every row.
fn wedge(rows: &Rows, gate: &[bool], u: &[f64]) -> Option<[[f64; 2]; 2]> {
    if rows.d != 2 {
        return None;
    }
    // A pseudo-angle of `a` from `u`, increasing with the angle on (-pi, pi] (no trigonometry).
    let pseudo = |a: [f64; 2]| {
        let (c, d) = (u[0] * a[1] - u[1] * a[0], u[0] * a[0] + u[1] * a[1]);
        let t = c / (c.abs() + d.abs());
        if d >= 0.0 {
            t
        } else if c >= 0.0 {
            2.0 - t
        } else {
            -2.0 - t
        }
    };
    let (mut lo, mut hi) = ((f64::INFINITY, [0.0; 2]), (f64::NEG_INFINITY, [0.0; 2]));
    for (j, on) in gate.iter().enumerate() {
        if rows.norm(j) == 0.0 {
            continue;
        }
        let s = if *on { 1.0 } else { -1.0 };
        let a = [s * rows.row(j)[0], s * rows.row(j)[1]];
        let phi = pseudo(a);
        if phi < lo.0 {
            lo = (phi, a);
        }
        if phi > hi.0 {
            hi = (phi, a);
        }
    }
    if !lo.0.is_finite() {
        return None;
    }
    // Less than a half-turn from `lo` to `hi` (counterclockwise) exactly when their cross product is positive,
    // or when they point the same way.
    let (a, b) = (lo.1, hi.1);
    let (cross, dot) = (a[0] * b[1] - a[1] * b[0], a[0] * b[0] + a[1] * b[1]);
    let scale = a[0].hypot(a[1]) * b[0].hypot(b[1]);
    if !(cross > 1e-12 * scale || (cross.abs() <= 1e-12 * scale && dot > 0.0)) {
        return None;
    }
    Some([a, b])
}

impl FirstLayer<'_> {
    fn masked(&self, mut a: Mat<f64>) -> Mat<f64> {
        for i in 0..a.ncols() {
            a.col_as_slice_mut(i).iter_mut().zip(self.mask.col_as_slice(i)).for_each(|(v, m)| *v *= m);
        }
        a
    }

    /// The block's outputs `Z = sum_i D_i X w_i vhat_i^T`.
    fn scores(&self, wt: &Mat<f64>) -> Mat<f64> {
        let a = self.masked(mul(self.x, wt.as_ref(), self.p.par));
        mul_nt(a.as_ref(), self.vhat.as_ref(), self.p.par)
    }

    /// The gradient in `W` of a loss whose gradient in `Z` is `g`: `X^T ((G Vhat) ⊙ D)`.
    fn pullback(&self, g: &Mat<f64>) -> Mat<f64> {
        let gv = self.masked(mul(g.as_ref(), self.vhat.as_ref(), self.p.par));
        mul_tn(self.x, gv.as_ref(), self.p.par)
    }
}

impl Block for FirstLayer<'_> {
    /// `loss(sum_i D_i X w_i vhat_i^T)` and its gradient `X^T ((G Vhat) ⊙ D)`, or the quadratic that stands for it.
    fn smooth(&self, wt: &Mat<f64>) -> (f64, Mat<f64>) {
        if let Some(q) = &self.quadratic {
            return q.eval(wt, self.p.par);
        }
        let (val, g) = self.p.loss.value_and_gradient(self.p.obs, self.scores(wt).as_ref());
        (val, self.pullback(&g))
    }
    fn penalty(&self, wt: &Mat<f64>) -> f64 {
        self.p.lambda * (0..wt.ncols()).map(|i| L2.value(wt.col_as_slice(i))).sum::<f64>()
    }
    /// Projection onto `K_{D_i}`, then group shrinkage. One product `X W` finds the columns already in their
    /// cones; only the others go through the projection.
    fn prox(&self, xn: &mut Mat<f64>, prev: &Mat<f64>, step: f64) {
        let mut sets = self.active_sets.borrow_mut();
        for (i, gate) in self.gates.iter().enumerate() {
            match (&self.wedges[i], &self.screens[i]) {
                (Some([a, b]), _) => project_wedge(a, b, xn.col_as_slice_mut(i)),
                (None, Some(screen)) => {
                    let col = xn.col_as_slice(i);
                    let inside = screen.candidates(col).iter().all(|&j| {
                        let v = self.rows.dot(j as usize, col);
                        (v >= 0.0) == gate[j as usize] || v == 0.0
                    });
                    if !inside {
                        let z = col.to_vec();
                        let proj = project_screened(self.rows, gate, &z, &mut sets[i], Some(screen))
                            .unwrap_or_else(|| prev.col_as_slice(i).to_vec());
                        xn.col_as_slice_mut(i).copy_from_slice(&proj);
                    }
                }
                (None, None) => unreachable!("every column without a wedge has a screen"),
            }
            L2.prox(xn.col_as_slice_mut(i), self.p.lambda * step);
        }
    }
}

/// Newton steps at most per block solve of [`prox_newton`].
const NEWTON_STEPS: usize = 30;

/// Proximal Newton (Lee, Sun and Saunders 2014) on the first-layer block for an entrywise loss other than the
/// squared one (logistic). At `w` the loss's second-order model in `Z`,
/// `loss(z0) + g^T (z - z0) + 1/2 (z - z0)^T diag(h) (z - z0)` with `h = loss''(z0)`, is a [`Quadratic`] in `w`
/// (`H = sum_c A_c^T diag(h_c) A_c + mu I`, `b = sum_c A_c^T (h_c ⊙ z0_c - g_c) + mu w0`; the small `mu` keeps the
/// model bounded where `h` vanishes). FISTA minimizes the model plus the penalty on the cones at `O((k r)^2)` per
/// iteration, against `O(n k r)` and one exponential per sample for the loss itself; a backtracking line search
/// accepts `w + t d` when `F(w + t d) <= F(w) + t delta / 4`, `delta = grad^T d + pen(w + d) - pen(w) < 0`. The cones
/// are convex, so the segment stays in them. Stops when a step decreases `F` by at most `stop` (relative).
fn prox_newton(block: &mut FirstLayer<'_>, w0: Mat<f64>, set: &FistaSettings, stop: f64) -> FistaResult {
    let p = block.p;
    block.quadratic = None;
    let mut w = w0;
    let mut z = block.scores(&w);
    let (mut val, mut gz) = p.loss.value_and_gradient(p.obs, z.as_ref());
    let mut f = val + block.penalty(&w);
    let mut l = set.l0;
    for _ in 0..NEWTON_STEPS {
        if set.budget.expired() {
            break;
        }
        let grad = block.pullback(&gz);
        let mut q = Quadratic::newton(block, &z, val, &gz);
        let dim = q.h.nrows();
        let mu = 1e-9 * (0..dim).map(|a| q.h[(a, a)]).fold(0.0, f64::max) + f64::MIN_POSITIVE;
        let k = w.nrows();
        for a in 0..dim {
            q.h[(a, a)] += mu;
            q.b[(a, 0)] += mu * w[(a % k, a / k)];
        }
        q.c += 0.5 * mu * w.squared_norm_l2();
        block.quadratic = Some(q);
        let inner = fista(block, w.clone(), &FistaSettings { l0: l, budget: set.budget.clone(), ..*set });
        block.quadratic = None;
        l = inner.lipschitz;
        let d = &inner.x - &w;
        let delta = dot(grad.as_ref(), d.as_ref()) + block.penalty(&inner.x) - block.penalty(&w);
        if delta.is_nan() || delta >= 0.0 {
            break;
        }
        let mut t = 1.0;
        let mut accepted = None;
        while t >= 1e-6 {
            let wt = &w + &d * faer::Scale(t);
            let zt = block.scores(&wt);
            let (vt, gt) = p.loss.value_and_gradient(p.obs, zt.as_ref());
            let ft = vt + block.penalty(&wt);
            if ft <= f + 0.25 * t * delta {
                accepted = Some((wt, zt, vt, gt, ft));
                break;
            }
            t *= 0.5;
        }
        let Some((wt, zt, vt, gt, ft)) = accepted else { break };
        let decrease = f - ft;
        (w, z, val, gz, f) = (wt, zt, vt, gt, ft);
        if decrease <= stop * f.abs().max(f64::MIN_POSITIVE) {
            break;
        }
    }
    FistaResult { x: w, objective: f, lipschitz: l }
}

/// The output-layer block, in `vt_i = ||u_i|| v_i` with hidden features `H = (X uhat)_+`.
struct OutputLayer<'a> {
    p: &'a Problem<'a>,
    h: Mat<f64>,
    norm: LayerNorm,
}

impl Block for OutputLayer<'_> {
    fn smooth(&self, vt: &Mat<f64>) -> (f64, Mat<f64>) {
        let z = mul_nt(self.h.as_ref(), vt.as_ref(), self.p.par);
        let (val, g) = self.p.loss.value_and_gradient(self.p.obs, z.as_ref());
        (val, mul_tn(g.as_ref(), self.h.as_ref(), self.p.par))
    }
    fn penalty(&self, vt: &Mat<f64>) -> f64 {
        self.p.lambda * (0..vt.ncols()).map(|i| self.norm.value(vt.col_as_slice(i))).sum::<f64>()
    }
    fn prox(&self, xn: &mut Mat<f64>, _: &Mat<f64>, step: f64) {
        for i in 0..xn.ncols() {
            self.norm.prox(xn.col_as_slice_mut(i), self.p.lambda * step);
        }
    }
}

const L2: LayerNorm = LayerNorm { norm: Norm::L2, nonneg: false };

/// The activation pattern of each unit for the next restricted solve: `1[x_j^T u_i > 0]`, except for samples on
/// the unit's kink (`x_j^T u_i = 0` up to rounding), which go to the side that the negative gradient points to.
/// Optimal units sit on such kinks; a fixed tie-break (say, "active") would let a unit switch samples on but
/// never off, and its kink could then move across the data in one direction only.
fn choose_gates(p: &Problem<'_>, net: &ReluNetwork, w: &Weights) -> Vec<Vec<bool>> {
    let rows = net.rows();
    // One product X U serves the output, the loss gradient and the first-layer gradient.
    let pre = mul(net.x(), w.layers[0].as_ref(), p.par);
    let mut h = pre.clone();
    for j in 0..h.ncols() {
        h.col_as_slice_mut(j).iter_mut().for_each(|v| *v = v.max(0.0));
    }
    let z = mul_nt(h.as_ref(), w.layers[1].as_ref(), p.par);
    let (_, g) = p.loss.value_and_gradient(p.obs, z.as_ref());
    // Gradient with every kink sample counted as inactive.
    let grad = net.first_layer_gradient(&pre, w.layers[1].as_ref(), g.as_ref(), p.par);
    (0..w.width())
        .map(|i| {
            let unorm = w.layers[0].col(i).norm_l2();
            pre.col_as_slice(i)
                .iter()
                .enumerate()
                .map(|(j, v)| {
                    if v.abs() <= 1e-10 * rows.norm(j) * unorm {
                        rows.dot(j, grad.col_as_slice(i)) < 0.0
                    } else {
                        *v > 0.0
                    }
                })
                .collect()
        })
        .collect()
}

/// Stores unit `i` from a block solve in scaled variables: layer `solved` was found as `scaled` (whose norm `t` is
/// the unit's `theta`), the other layer keeps the unit-norm direction `dir`. Both layers get norm `sqrt(t)`
/// (balanced); `t = 0` zeroes the unit.
fn store_balanced(w: &mut Weights, i: usize, solved: usize, scaled: &[f64], t: f64, dir: &[f64]) {
    let s = t.sqrt();
    let (solved_col, other_col): (Vec<f64>, Vec<f64>) = if t > 0.0 {
        (scaled.iter().map(|v| v / s).collect(), dir.iter().map(|v| v * s).collect())
    } else {
        (vec![0.0; scaled.len()], vec![0.0; dir.len()])
    };
    w.layers[solved].col_as_slice_mut(i).copy_from_slice(&solved_col);
    w.layers[1 - solved].col_as_slice_mut(i).copy_from_slice(&other_col);
}

/// The pattern-restricted descent; see the module documentation.
pub fn pattern_descent(p: &Problem<'_>, net: &ReluNetwork, w: &mut Weights, opts: &DescentOptions) -> DescentInfo {
    prune_zero(w);
    let mut f = p.objective(w);
    let mut info = DescentInfo { objective: f, ..Default::default() };
    let x = net.x();
    let rows = net.rows();
    let out_norm = net.layer_norms()[1];
    let (n, outputs) = (x.nrows(), net.outputs());
    let mut lu = 1.0;
    let mut lv = 1.0;
    // Inner tolerance on the optimality residual, in units of lambda: near an optimum a relative decrease `tol`
    // per sweep corresponds to a residual of about `sqrt(tol) * lambda`. It is floored at `1e-5 lambda`: the last
    // digits of a certified fit come from the exact fully corrective step of the certificate refinement
    // (`certificate::refined_dual_bound`), not from FISTA, whose progress on ill-conditioned pattern sets is slow.
    let gtol = p.lambda * (0.1 * opts.tol.sqrt()).max(1e-5);
    let max_iter = 4000;
    // Entrywise losses other than the squared one (logistic) take proximal Newton steps on the first layer.
    let newton = p.loss != crate::core::loss::Loss::Squared && p.loss.entry_curvature(0.0).is_some();
    while info.sweeps < opts.max_sweeps && w.width() > 0 {
        if opts.budget.expired() {
            break;
        }
        info.sweeps += 1;
        let r = w.width();
        // First layer: w_i = ||v_i|| u_i on the frozen patterns.
        let gates = choose_gates(p, net, w);
        let mask = Mat::from_fn(n, r, |a, i| if gates[i][a] { 1.0 } else { 0.0 });
        let vnorm: Vec<f64> = (0..r).map(|i| out_norm.value(w.layers[1].col_as_slice(i))).collect();
        let vhat = Mat::from_fn(outputs, r, |c, i| w.layers[1][(c, i)] / vnorm[i]);
        let w0 = Mat::from_fn(x.ncols(), r, |a, i| w.layers[0][(a, i)] * vnorm[i]);
        let active_sets = std::cell::RefCell::new(vec![Vec::new(); r]);
        let wedges: Vec<_> = (0..r).map(|i| wedge(rows, &gates[i], w.layers[0].col_as_slice(i))).collect();
        let screens =
            (0..r).map(|i| wedges[i].is_none().then(|| Screen::new(rows, &gates[i], w0.col_as_slice(i)))).collect();
        let quadratic = (p.loss == crate::core::loss::Loss::Squared && n * x.ncols() * r > 0)
            .then(|| Quadratic::squared(p, x, &mask, &vhat));
        let mut block = FirstLayer { p, x, rows, gates, mask, vhat, active_sets, wedges, screens, quadratic };
        let settings = FistaSettings { l0: lu, gtol, max_iter, budget: opts.budget.clone() };
        let res =
            if newton { prox_newton(&mut block, w0, &settings, 1e-3 * opts.tol) } else { fista(&block, w0, &settings) };
        let vhat = block.vhat;
        lu = res.lipschitz;
        for i in 0..r {
            store_balanced(w, i, 0, res.x.col_as_slice(i), L2.value(res.x.col_as_slice(i)), vhat.col_as_slice(i));
        }
        prune_zero(w);
        let mut f_new = res.objective;
        // Output layer: vt_i = ||u_i|| v_i with u_i / ||u_i|| fixed (a group lasso).
        if outputs > 1 && w.width() > 0 {
            let r = w.width();
            let unorm: Vec<f64> = (0..r).map(|i| L2.value(w.layers[0].col_as_slice(i))).collect();
            let uhat = Mat::from_fn(x.ncols(), r, |a, i| w.layers[0][(a, i)] / unorm[i]);
            let h = hidden(x, uhat.as_ref(), p.par);
            let v0 = Mat::from_fn(outputs, r, |c, i| w.layers[1][(c, i)] * unorm[i]);
            let block = OutputLayer { p, h, norm: out_norm };
            let res = fista(&block, v0, &FistaSettings { l0: lv, gtol, max_iter, budget: opts.budget.clone() });
            lv = res.lipschitz;
            for i in 0..r {
                let t = out_norm.value(res.x.col_as_slice(i));
                store_balanced(w, i, 1, res.x.col_as_slice(i), t, uhat.col_as_slice(i));
            }
            prune_zero(w);
            f_new = res.objective;
        }
        // The restricted model equals the network on the cones; evaluate the network itself.
        let f_net = p.objective(w);
        f_new = f_new.max(f_net);
        let decrease = f - f_new;
        f = f_new;
        if w.width() == 0 || decrease <= opts.tol * f.abs().max(f64::MIN_POSITIVE) {
            info.converged = true;
            break;
        }
    }
    info.objective = f;
    info
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::loss::{Loss, Observations};
    use crate::core::norms::Norm;
    use crate::families::relu::PolarMode;
    use crate::numerics::rng::Rng;

    /// The Newton model of [`prox_newton`] is the loss's second-order Taylor expansion in `w`: at `w0` it has the
    /// loss's value and gradient (the block's [`FirstLayer::pullback`]), and along any step its error shrinks like the
    /// cube of the step; for the squared loss it is [`Quadratic::squared`] exactly.
    #[test]
    fn newton_model_is_the_second_order_expansion() {
        let mut rng = Rng::new(3);
        let (n, d, r, outputs) = (40, 2, 3, 2);
        let x = rng.normal_mat(n, d);
        let net = ReluNetwork::new(x.as_ref(), outputs, true, Norm::L2, PolarMode::Exact).unwrap();
        let labels = Mat::from_fn(n, outputs, |_, _| if rng.uniform() < 0.5 { 0.0 } else { 1.0 });
        let mask = Mat::from_fn(n, outputs, |_, _| if rng.uniform() < 0.8 { 1.0 } else { 0.0 });
        let obs = Observations::new(labels, Some(mask)).unwrap();
        let k = d + 1;
        let gates = Mat::from_fn(n, r, |_, _| if rng.uniform() < 0.6 { 1.0 } else { 0.0 });
        let vhat = rng.normal_mat(outputs, r);
        let w0 = rng.normal_mat(k, r);
        for loss in [Loss::Logistic, Loss::Squared] {
            let p = Problem { net: &net, loss, obs: &obs, lambda: 0.1, par: faer::Par::Seq };
            let xa = net.x();
            let block = FirstLayer {
                p: &p,
                x: xa,
                rows: net.rows(),
                gates: vec![vec![true; n]; r],
                mask: gates.clone(),
                vhat: vhat.clone(),
                active_sets: std::cell::RefCell::new(vec![Vec::new(); r]),
                wedges: vec![None; r],
                screens: vec![None; r],
                quadratic: None,
            };
            let z = block.scores(&w0);
            let (val, gz) = loss.value_and_gradient(&obs, z.as_ref());
            let q = Quadratic::newton(&block, &z, val, &gz);
            let (mv, mg) = q.eval(&w0, p.par);
            let grad = block.pullback(&gz);
            assert!((mv - val).abs() <= 1e-10 * val.abs(), "{loss:?}: model {mv} loss {val}");
            assert!((&mg - &grad).norm_l2() <= 1e-10 * grad.norm_l2(), "{loss:?}: gradients differ");
            let dir = rng.normal_mat(k, r);
            let err = |h: f64| {
                let w = &w0 + &dir * faer::Scale(h);
                (q.eval(&w, p.par).0 - loss.value(&obs, block.scores(&w).as_ref())).abs()
            };
            if loss == Loss::Squared {
                let sq = Quadratic::squared(&p, xa, &block.mask, &block.vhat);
                let w = &w0 + &dir;
                assert!((sq.eval(&w, p.par).0 - q.eval(&w, p.par).0).abs() <= 1e-9 * val.abs());
                assert!(err(1.0) <= 1e-9 * val.abs(), "the squared loss's model is exact");
            } else {
                let (e1, e2) = (err(1e-2), err(5e-3));
                assert!(e1 > 0.0 && e2 <= e1 / 6.0, "{loss:?}: errors {e1} {e2} do not shrink like h^3");
            }
        }
    }
}
