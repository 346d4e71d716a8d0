//! Accelerated proximal gradient (FISTA, Beck and Teboulle) with backtracking on the step constant and monotone
//! restarts, for any convex block problem `min_x smooth(x) + penalty(x)` with a prox: the one implementation the
//! restricted solvers share.

use faer::Mat;

use crate::numerics::budget::Budget;
use crate::numerics::linalg::dot;

/// A convex block problem `min_x smooth(x) + penalty(x)` for [`fista`].
pub trait Block {
    /// The smooth part and its gradient.
    fn smooth(&self, x: &Mat<f64>) -> (f64, Mat<f64>);
    fn penalty(&self, x: &Mat<f64>) -> f64;
    /// In place, column by column: the prox of `step * penalty` (plus constraints); `prev` is the current
    /// iterate, a feasible fallback.
    fn prox(&self, x: &mut Mat<f64>, prev: &Mat<f64>, step: f64);
}

/// Settings of one [`fista`] run.
pub struct FistaSettings {
    /// First step constant.
    pub l0: f64,
    /// Stop when the gradient mapping `L ||x+ - y||` (largest column) falls below `gtol`: the block's optimality
    /// residual, in the units of `lambda`.
    pub gtol: f64,
    pub max_iter: usize,
    pub budget: Budget,
}

/// The result of [`fista`]: the minimizer estimate, its objective and the last step constant.
pub struct FistaResult {
    pub x: Mat<f64>,
    pub objective: f64,
    pub lipschitz: f64,
}

/// Accelerated proximal gradient with backtracking on `L` and monotone restarts.
pub fn fista(block: &dyn Block, x0: Mat<f64>, set: &FistaSettings) -> FistaResult {
    let mut x = x0;
    let mut fx = block.smooth(&x).0 + block.penalty(&x);
    let mut y = x.clone();
    let mut t = 1.0f64;
    let mut l = set.l0.max(1e-300);
    let mut small = 0;
    let mut momentum = false;
    let mut retries = 0;
    for _ in 0..set.max_iter {
        if set.budget.expired() {
            break;
        }
        let (fy, gy) = block.smooth(&y);
        let (xn, fxn_smooth) = loop {
            let mut xn = &y - &gy * faer::Scale(1.0 / l);
            block.prox(&mut xn, &x, 1.0 / l);
            let (fs, _) = block.smooth(&xn);
            let d = &xn - &y;
            let model = fy + dot(gy.as_ref(), d.as_ref()) + 0.5 * l * d.squared_norm_l2();
            if fs <= model + 1e-13 * fy.abs() || l > 1e300 {
                break (xn, fs);
            }
            l *= 2.0;
        };
        let d = &xn - &y;
        let mapping = l * (0..d.ncols()).map(|i| d.col(i).norm_l2()).fold(0.0, f64::max);
        let fxn = fxn_smooth + block.penalty(&xn);
        if fxn.is_nan() || fxn > fx {
            if !momentum {
                // The sufficient-decrease test passed within rounding but f rose: take shorter steps.
                retries += 1;
                if retries > 8 {
                    break;
                }
                l *= 4.0;
                continue;
            }
            y = x.clone();
            t = 1.0;
            momentum = false;
            continue;
        }
        retries = 0;
        let rel = (fx - fxn) / fxn.abs().max(f64::MIN_POSITIVE);
        let t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
        y = &xn + (&xn - &x) * faer::Scale((t - 1.0) / t_next);
        momentum = true;
        t = t_next;
        x = xn;
        fx = fxn;
        small = if rel <= 1e-16 { small + 1 } else { 0 };
        if small >= 10 || mapping <= set.gtol {
            break;
        }
        l *= 0.98;
    }
    FistaResult { x, objective: fx, lipschitz: l }
}
