//! Growth: adding the polar's subnetwork with a proper step (THEORY.md section 4). The 2-D corrective step
//! `min_{a,b >= 0} loss(a Phi(W) + b phi(w*)) + lambda (a Theta(W) + b)` scales the old subnetworks by `a^(1/p)` and
//! adds `b^(1/p) w*`. For the squared loss it is a 2 x 2 nonnegative least-squares problem, solved exactly; for
//! the logistic loss by Newton steps ([`Problem::nonneg_combination`]); for the softmax loss by alternating exact
//! line searches.

use faer::Mat;

use crate::core::loss::Loss;
use crate::core::problem::Problem;
use crate::core::{regularizer, Weights};
use crate::numerics::linalg::dot;

/// One pass over the observed entries: `[<z1,z1>, <z1,z2>, <z2,z2>, <y,z1>, <y,z2>]` (`z2` may be absent).
fn squared_stats(p: &Problem<'_>, z1: &Mat<f64>, z2: Option<&Mat<f64>>) -> [f64; 5] {
    let mut h = [0.0; 5];
    for j in 0..z1.ncols() {
        let (a, y) = (z1.col_as_slice(j), p.obs.y().col_as_slice(j));
        let mask = p.obs.mask().map(|m| m.col_as_slice(j));
        let b = z2.map(|z| z.col_as_slice(j));
        for i in 0..a.len() {
            if mask.is_some_and(|m| m[i] == 0.0) {
                continue;
            }
            let bi = b.map_or(0.0, |b| b[i]);
            h[0] += a[i] * a[i];
            h[1] += a[i] * bi;
            h[2] += bi * bi;
            h[3] += y[i] * a[i];
            h[4] += y[i] * bi;
        }
    }
    h
}

/// The optimal `(a, b)` of the corrective step for `Z1 = Phi(W)`, `theta1 = Theta(W)`, `Z2 = phi(w*)`
/// (`theta(w*) = 1`).
pub fn corrective_step(p: &Problem<'_>, z1: &Mat<f64>, theta1: f64, z2: &Mat<f64>) -> (f64, f64) {
    let lam = p.lambda;
    if p.loss == Loss::Squared {
        let st = squared_stats(p, z1, Some(z2));
        let h = [st[0], st[1], st[2]];
        let c = [lam * theta1 - st[3], lam - st[4]];
        let val = |a: f64, b: f64| 0.5 * (h[0] * a * a + 2.0 * h[1] * a * b + h[2] * b * b) + c[0] * a + c[1] * b;
        let mut cands = vec![(0.0, 0.0)];
        if h[0] > 0.0 {
            cands.push(((-c[0] / h[0]).max(0.0), 0.0));
        }
        if h[2] > 0.0 {
            cands.push((0.0, (-c[1] / h[2]).max(0.0)));
        }
        let det = h[0] * h[2] - h[1] * h[1];
        if det > 1e-14 * h[0] * h[2] {
            let a = (-c[0] * h[2] + c[1] * h[1]) / det;
            let b = (-c[1] * h[0] + c[0] * h[1]) / det;
            if a >= 0.0 && b >= 0.0 {
                cands.push((a, b));
            }
        }
        return cands.into_iter().min_by(|x, y| val(x.0, x.1).total_cmp(&val(y.0, y.1))).unwrap();
    }
    if p.loss.entry_curvature(0.0).is_some() {
        // Entrywise losses (logistic): Newton steps on the two weights, from a = 1.
        let mut c = [1.0, 0.0];
        p.nonneg_combination(&[z1, z2], &[theta1, 1.0], &mut c);
        return (c[0], c[1]);
    }
    // Alternating exact line searches on the convex function of (a, b), starting from a = 1.
    let (mut a, mut b) = (1.0, 0.0);
    let grad_dot = |a: f64, b: f64, dir: &Mat<f64>| {
        let z = Mat::from_fn(z1.nrows(), z1.ncols(), |i, j| a * z1[(i, j)] + b * z2[(i, j)]);
        let (_, g) = p.loss.value_and_gradient(p.obs, z.as_ref());
        dot(g.as_ref(), dir.as_ref())
    };
    for _ in 0..4 {
        b = Problem::minimize_ray(|bb| grad_dot(a, bb, z2) + lam);
        if theta1 > 0.0 {
            a = Problem::minimize_ray(|aa| grad_dot(aa, b, z1) + lam * theta1);
        }
    }
    (a, b)
}

/// Applies the growth step to `w` with the unit-`theta` polar subnetwork `atom`; returns `b`, the weight given to
/// the new subnetwork (0 when adding it cannot decrease `f`). `z1`, if given, is `Phi(W)`.
pub fn grow(p: &Problem<'_>, w: &mut Weights, atom: &Weights, z1: Option<&Mat<f64>>) -> f64 {
    let kdeg = p.net.degree() as f64;
    let owned;
    let z1 = match z1 {
        Some(z) => z,
        None => {
            owned = p.net.forward(w, p.par);
            &owned
        }
    };
    let z2 = p.net.forward(atom, p.par);
    let theta1 = regularizer(p.net, w);
    let (a, b) = corrective_step(p, z1, theta1, &z2);
    if w.width() > 0 {
        w.scale_all(a.powf(1.0 / kdeg));
    }
    if b > 0.0 {
        let s = b.powf(1.0 / kdeg);
        w.push(atom, &vec![s; p.net.degree()]);
    }
    b
}

/// The ray pre-step that enforces (C2): `W <- c^(1/p) W` with `c = argmin f(c^(1/p) W)`. Never increases `f`.
pub fn ray_step(p: &Problem<'_>, w: &mut Weights) {
    if w.width() == 0 {
        return;
    }
    let z = p.net.forward(w, p.par);
    let theta = regularizer(p.net, w);
    let power = 1.0 / p.net.degree() as f64;
    if p.loss == Loss::Squared {
        // f(c) - f(1) = (1 - c)(<y, z> - lambda Theta) + (c^2 - 1)/2 ||z||^2 on observed entries: closed form.
        let st = squared_stats(p, &z, None);
        let c = if st[0] > 0.0 { ((st[3] - p.lambda * theta) / st[0]).max(0.0) } else { 1.0 };
        w.scale_all(c.powf(power));
        return;
    }
    let c = p.ray_scale(&z, theta);
    let before = p.objective(w);
    let mut scaled = w.clone();
    scaled.scale_all(c.powf(power));
    if p.objective(&scaled) <= before {
        *w = scaled;
    }
}
