//! Losses `loss(Y, Z)`, summed over the observed entries (THEORY.md section 1), their gradients in `Z`, and the
//! Fenchel-dual lower bounds `-loss*(t G)` used by the certificate (THEORY.md section 3).

use std::fmt;
use std::str::FromStr;

use faer::{Mat, MatRef};

use crate::error::{GonnError, Result};

/// The observed `(row, column)` pairs of a mask, column by column, with their targets.
#[derive(Clone, Debug)]
pub struct ObservedEntries {
    pub index: Vec<(usize, usize)>,
    pub y: Vec<f64>,
}

/// The data a model is fitted to: targets `Y` and an optional 0/1 mask of observed entries.
#[derive(Clone, Debug)]
pub struct Observations {
    y: Mat<f64>,
    mask: Option<Mat<f64>>,
    /// With a mask: the observed `(row, column)` pairs, column by column, and their targets.
    observed: Option<ObservedEntries>,
}

impl Observations {
    /// Checks finiteness, the mask's shape and values; unobserved targets may hold anything finite.
    pub fn new(y: Mat<f64>, mask: Option<Mat<f64>>) -> Result<Self> {
        if y.nrows() == 0 || y.ncols() == 0 {
            return Err(GonnError::Shape(format!("Y is empty ({} x {})", y.nrows(), y.ncols())));
        }
        if let Some(m) = &mask {
            if (m.nrows(), m.ncols()) != (y.nrows(), y.ncols()) {
                return Err(GonnError::Shape(format!(
                    "mask is {} x {} but Y is {} x {}",
                    m.nrows(),
                    m.ncols(),
                    y.nrows(),
                    y.ncols()
                )));
            }
            for j in 0..m.ncols() {
                for i in 0..m.nrows() {
                    let v = m[(i, j)];
                    if v != 0.0 && v != 1.0 {
                        return Err(GonnError::Data(format!("mask entry ({i}, {j}) is {v}; a mask must be 0/1")));
                    }
                }
            }
        }
        for j in 0..y.ncols() {
            for i in 0..y.nrows() {
                let observed = mask.as_ref().is_none_or(|m| m[(i, j)] != 0.0);
                if observed && !y[(i, j)].is_finite() {
                    return Err(GonnError::Data(format!(
                        "Y has a non-finite entry {} at ({i}, {j}); to mark entries as missing (matrix completion), \
                         give them the value 0 in a 0/1 array `mask` next to `Y` in the .npz",
                        y[(i, j)]
                    )));
                }
            }
        }
        let ss: f64 = (0..y.ncols())
            .flat_map(|j| (0..y.nrows()).map(move |i| (i, j)))
            .filter(|&(i, j)| mask.as_ref().is_none_or(|m| m[(i, j)] != 0.0))
            .map(|ij| y[ij] * y[ij])
            .sum();
        if !ss.is_finite() {
            return Err(GonnError::Data(
                "Y is too large: the sum of its squared entries overflows (rescale Y, e.g. divide it by its largest \
                 absolute value)"
                    .into(),
            ));
        }
        let mut y = y;
        // Unobserved entries never enter the loss; make them zero so that they cannot leak NaNs.
        if let Some(m) = &mask {
            for j in 0..y.ncols() {
                for i in 0..y.nrows() {
                    if m[(i, j)] == 0.0 {
                        y[(i, j)] = 0.0;
                    }
                }
            }
        }
        let observed = mask.as_ref().map(|m| {
            let idx: Vec<(usize, usize)> = (0..m.ncols())
                .flat_map(|j| (0..m.nrows()).filter(move |&i| m[(i, j)] != 0.0).map(move |i| (i, j)))
                .collect();
            let vals = idx.iter().map(|&(i, j)| y[(i, j)]).collect();
            ObservedEntries { index: idx, y: vals }
        });
        Ok(Self { y, mask, observed })
    }

    /// The targets (unobserved entries are zero).
    pub fn y(&self) -> &Mat<f64> {
        &self.y
    }
    /// The 0/1 mask of observed entries (`None`: all observed).
    pub fn mask(&self) -> Option<&Mat<f64>> {
        self.mask.as_ref()
    }
    pub fn nrows(&self) -> usize {
        self.y.nrows()
    }
    pub fn ncols(&self) -> usize {
        self.y.ncols()
    }
    #[inline]
    pub fn is_observed(&self, i: usize, j: usize) -> bool {
        self.mask.as_ref().is_none_or(|m| m[(i, j)] != 0.0)
    }
    /// The observed `(row, column)` pairs and their targets, when there is a mask.
    pub fn observed(&self) -> Option<&ObservedEntries> {
        self.observed.as_ref()
    }

    /// Number of observed entries.
    pub fn n_observed(&self) -> usize {
        match &self.mask {
            None => self.y.nrows() * self.y.ncols(),
            Some(m) => (0..m.ncols()).map(|j| m.col(j).iter().filter(|v| **v != 0.0).count()).sum(),
        }
    }
}

/// A convex loss, differentiable in its second argument and bounded below by 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// `1/2 sum (Y - Z)^2` over observed entries.
    Squared,
    /// Binary logistic `sum log(1 + e^Z) - Y Z`, `Y` in {0, 1}.
    Logistic,
    /// Softmax cross-entropy over rows: `sum_n logsumexp(Z_n) - <Y_n, Z_n>`, rows of `Y` in the simplex.
    Softmax,
}

impl FromStr for Loss {
    type Err = GonnError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "squared" => Ok(Loss::Squared),
            "logistic" => Ok(Loss::Logistic),
            "softmax" => Ok(Loss::Softmax),
            other => {
                Err(GonnError::param("loss", format!("unknown loss `{other}` (expected squared, logistic or softmax)")))
            }
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Loss::Squared => "squared",
            Loss::Logistic => "logistic",
            Loss::Softmax => "softmax",
        })
    }
}

/// `exp(x)` for `x <= 0`, flushed to 0 below `-50`, where it is under `2e-22` and so below the rounding of any
/// sum it enters with a term of order 1. This also keeps `exp` off its slow underflow path (hundreds of cycles
/// for results near the subnormal range), which large logits hit constantly.
fn exp_nonpositive(x: f64) -> f64 {
    if x < -50.0 {
        0.0
    } else {
        x.exp()
    }
}

fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + exp_nonpositive(-z).ln_1p()
    } else {
        exp_nonpositive(z).ln_1p()
    }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + exp_nonpositive(-z))
    } else {
        let e = exp_nonpositive(z);
        e / (1.0 + e)
    }
}

/// `log sum_j exp(z_ij)` of row `i`, shifted by the row maximum for stability.
fn row_log_sum_exp(z: MatRef<'_, f64>, i: usize) -> f64 {
    let mx = (0..z.ncols()).map(|j| z[(i, j)]).fold(f64::NEG_INFINITY, f64::max);
    mx + (0..z.ncols()).map(|j| exp_nonpositive(z[(i, j)] - mx)).sum::<f64>().ln()
}

/// For 0/1 targets, `a = |sigma(z) - y|` on the observed entries (`sigma(z)` where `y = 0`, `sigma(-z)` where
/// `y = 1`): the logistic conjugate at `t G` is then `-sum_i H(t a_i)` with `H` the binary entropy (THEORY.md
/// section 3: `t sigma(z) + (1 - t) y` is `t a` or `1 - t a`). `None` for other targets.
fn logistic_margins(obs: &Observations, z: MatRef<'_, f64>) -> Option<Vec<f64>> {
    let mut a = Vec::with_capacity(obs.nrows() * obs.ncols());
    for j in 0..obs.ncols() {
        for i in 0..obs.nrows() {
            if obs.is_observed(i, j) {
                a.push(match obs.y[(i, j)] {
                    0.0 => sigmoid(z[(i, j)]),
                    1.0 => sigmoid(-z[(i, j)]),
                    _ => return None,
                });
            }
        }
    }
    Some(a)
}

/// `max_{t in [0, t_max]} sum_i H(t a_i)` for `a_i in [0, 1]`, `t_max <= 1`, `H(s) = -s ln s - (1 - s) ln(1 - s)`.
/// Concave in `t` with `d/dt = -A ln t - sum_i a_i ln a_i + sum_i a_i ln(1 - t a_i)` (`A = sum_i a_i`), which is
/// `+inf` at `0+`: the maximizer is `t_max` when the derivative there is nonnegative, else the derivative's root,
/// found by Newton steps kept inside a shrinking bracket (one `ln_1p` per entry per step; the `ln a_i` once).
/// The value is evaluated at the `t` found, so any `t` gives a valid (possibly weaker) bound.
fn binary_entropy_max(a: &[f64], t_max: f64) -> f64 {
    let value = |t: f64| -> f64 {
        a.iter()
            .map(|&ai| {
                let s = t * ai;
                // `(1 - s) ln(1 - s)` through `ln_1p` (accurate for small `s`), `0` at `s = 1`.
                -xlogx(s) - if s < 1.0 { (1.0 - s) * (-s).ln_1p() } else { 0.0 }
            })
            .sum()
    };
    let total: f64 = a.iter().sum();
    if t_max <= 0.0 || total <= 0.0 {
        return value(t_max.max(0.0)).max(0.0);
    }
    let alog: f64 = a.iter().map(|&ai| xlogx(ai)).sum();
    let slope = |t: f64| -> (f64, f64) {
        let (mut d1, mut d2) = (-total * t.ln() - alog, -total / t);
        for &ai in a {
            d1 += ai * (-t * ai).ln_1p();
            d2 -= ai * ai / (1.0 - t * ai);
        }
        (d1, d2)
    };
    let (d_max, _) = slope(t_max);
    let t = if d_max >= 0.0 || d_max.is_nan() {
        t_max
    } else {
        let (mut lo, mut hi) = (0.0, t_max);
        let mut t = 0.5 * t_max;
        for _ in 0..60 {
            let (d1, d2) = slope(t);
            if d1 > 0.0 {
                lo = t;
            } else {
                hi = t;
            }
            let newton = t - d1 / d2;
            let next = if newton > lo && newton < hi && newton.is_finite() { newton } else { 0.5 * (lo + hi) };
            if (next - t).abs() <= 1e-13 * t || hi - lo <= 1e-15 * t_max {
                t = next;
                break;
            }
            t = next;
        }
        t
    };
    value(t).max(value(t_max)).max(0.0)
}

/// `x log x` with `0 log 0 = 0`.
fn xlogx(x: f64) -> f64 {
    if x <= 0.0 {
        0.0
    } else {
        x * x.ln()
    }
}

impl Loss {
    /// Checks that the targets lie in the loss's domain.
    pub fn validate(&self, obs: &Observations) -> Result<()> {
        match self {
            Loss::Squared => Ok(()),
            Loss::Logistic => {
                for j in 0..obs.ncols() {
                    for i in 0..obs.nrows() {
                        let v = obs.y[(i, j)];
                        if obs.is_observed(i, j) && v != 0.0 && v != 1.0 {
                            return Err(GonnError::Data(format!("logistic loss needs 0/1 targets; Y({i}, {j}) = {v}")));
                        }
                    }
                }
                Ok(())
            }
            Loss::Softmax => {
                if obs.mask.is_some() {
                    return Err(GonnError::param(
                        "loss",
                        "a mask is supported with the squared and logistic losses only",
                    ));
                }
                for i in 0..obs.nrows() {
                    let row = obs.y.row(i);
                    let s: f64 = row.iter().sum();
                    if row.iter().any(|v| *v < 0.0) || (s - 1.0).abs() > 1e-8 {
                        return Err(GonnError::Data(format!(
                            "softmax loss needs rows of Y that are class distributions; row {i} sums to {s}"
                        )));
                    }
                }
                Ok(())
            }
        }
    }

    /// Curvature bound `c`: the loss's Hessian in `Z` is at most `c I` (1, 1/4, 1/2; THEORY.md section 5).
    pub fn curvature(&self) -> f64 {
        match self {
            Loss::Squared => 1.0,
            Loss::Logistic => 0.25,
            Loss::Softmax => 0.5,
        }
    }

    /// Class probabilities predicted by scores `Z`: `sigma(Z)` (logistic, the probability of label 1) or the
    /// row-wise softmax; `None` for the squared loss, which has no classes.
    pub fn probabilities(&self, z: MatRef<'_, f64>) -> Option<Mat<f64>> {
        match self {
            Loss::Squared => None,
            Loss::Logistic => Some(Mat::from_fn(z.nrows(), z.ncols(), |i, j| sigmoid(z[(i, j)]))),
            Loss::Softmax => {
                let lse: Vec<f64> = (0..z.nrows()).map(|i| row_log_sum_exp(z, i)).collect();
                Some(Mat::from_fn(z.nrows(), z.ncols(), |i, j| (z[(i, j)] - lse[i]).exp()))
            }
        }
    }

    /// `loss(Y, Z)`.
    pub fn value(&self, obs: &Observations, z: MatRef<'_, f64>) -> f64 {
        self.eval(obs, z, false).0
    }

    /// `loss(Y, Z)` and its gradient `G = grad_Z loss` (zero at unobserved entries).
    pub fn value_and_gradient(&self, obs: &Observations, z: MatRef<'_, f64>) -> (f64, Mat<f64>) {
        let (v, g) = self.eval(obs, z, true);
        (v, g.expect("gradient requested"))
    }

    /// Value and derivative of an entrywise loss (squared or logistic) at `z` with target `y`.
    #[inline]
    fn entry(&self, z: f64, y: f64) -> (f64, f64) {
        match self {
            Loss::Squared => (0.5 * (z - y) * (z - y), z - y),
            _ => (softplus(z) - y * z, sigmoid(z) - y),
        }
    }

    /// The second derivative of an entrywise loss in `z` (squared 1, logistic `sigma(z) (1 - sigma(z))`): the
    /// diagonal Hessian of the loss in `Z`, for Newton models. `None` for the softmax loss, whose Hessian couples
    /// the entries of a row.
    pub fn entry_curvature(&self, z: f64) -> Option<f64> {
        match self {
            Loss::Squared => Some(1.0),
            Loss::Logistic => {
                let s = sigmoid(z);
                Some(s * (1.0 - s))
            }
            Loss::Softmax => None,
        }
    }

    /// Value and gradient on the observed entries only (`z[t]`, `y[t]` for the `t`-th observed entry); for the
    /// entrywise losses (squared, logistic), used by sparse descent on masked data.
    pub fn value_and_gradient_observed(&self, y: &[f64], z: &[f64]) -> (f64, Vec<f64>) {
        debug_assert!(*self != Loss::Softmax);
        let mut total = 0.0;
        let g = z
            .iter()
            .zip(y)
            .map(|(&zi, &yi)| {
                let (v, d) = self.entry(zi, yi);
                total += v;
                d
            })
            .collect();
        (total, g)
    }

    fn eval(&self, obs: &Observations, z: MatRef<'_, f64>, want_grad: bool) -> (f64, Option<Mat<f64>>) {
        let (m, n) = (obs.nrows(), obs.ncols());
        let mut g = if want_grad { Some(Mat::<f64>::zeros(m, n)) } else { None };
        let mut total = 0.0;
        match self {
            Loss::Squared | Loss::Logistic => {
                for j in 0..n {
                    let (yc, zc) = (obs.y.col(j), z.col(j));
                    let mc = obs.mask.as_ref().map(|mk| mk.col(j));
                    let mut s = 0.0;
                    for i in 0..m {
                        if mc.is_some_and(|mc| mc[i] == 0.0) {
                            continue;
                        }
                        let (val, grad) = self.entry(zc[i], yc[i]);
                        s += val;
                        if let Some(g) = g.as_mut() {
                            g[(i, j)] = grad;
                        }
                    }
                    total += s;
                }
            }
            Loss::Softmax => {
                // One exponential per entry: e_j = exp(z_j - max), lse = max + ln sum e, p_j = e_j / sum e.
                let mut e = vec![0.0; n];
                for i in 0..m {
                    let mx = (0..n).map(|j| z[(i, j)]).fold(f64::NEG_INFINITY, f64::max);
                    let mut sum = 0.0;
                    for (j, ej) in e.iter_mut().enumerate() {
                        *ej = exp_nonpositive(z[(i, j)] - mx);
                        sum += *ej;
                        total -= obs.y[(i, j)] * z[(i, j)];
                    }
                    total += mx + sum.ln();
                    if let Some(g) = g.as_mut() {
                        for (j, ej) in e.iter().enumerate() {
                            g[(i, j)] = ej / sum - obs.y[(i, j)];
                        }
                    }
                }
            }
        }
        (total, g)
    }

    /// `-loss*(t G)`: the negated Fenchel conjugate (in `Z`) at `t G`, with `G` the gradient at `Z`
    /// (THEORY.md section 3): squared `t<R, y> - t^2/2 ||R||^2` with `R = -G`; logistic
    /// `sum H_b(t sigma(z) + (1-t) y)`; softmax `sum_n H(t P_n + (1-t) Y_n)`. Sums over observed entries.
    pub fn neg_conjugate(&self, obs: &Observations, z: MatRef<'_, f64>, g: MatRef<'_, f64>, t: f64) -> f64 {
        let (m, n) = (obs.nrows(), obs.ncols());
        let mut h = 0.0;
        for j in 0..n {
            for i in 0..m {
                if !obs.is_observed(i, j) {
                    continue;
                }
                let (y, gij) = (obs.y[(i, j)], g[(i, j)]);
                h += match self {
                    Loss::Squared => -t * gij * y - 0.5 * t * t * gij * gij,
                    Loss::Logistic => {
                        let p = t * sigmoid(z[(i, j)]) + (1.0 - t) * y;
                        -(xlogx(p) + xlogx(1.0 - p))
                    }
                    Loss::Softmax => -xlogx((y + t * gij).max(0.0)),
                };
            }
        }
        h
    }

    /// Weak-duality lower bound on the convex optimum `F*` (THEORY.md section 3): the best `-loss*(t G)` over
    /// `t in [0, t_max]`, where `t_max = 1 / rho_up` (capped at 1 for the logistic and softmax losses, whose
    /// conjugates are finite only there). Valid at any `Z`.
    pub fn dual_lower_bound(&self, obs: &Observations, z: MatRef<'_, f64>, g: MatRef<'_, f64>, t_max: f64) -> f64 {
        if *self == Loss::Squared {
            // Quadratic in t: maximized at clip(<R, y> / ||R||^2, 0, t_max).
            let (mut ry, mut rr) = (0.0, 0.0);
            for j in 0..obs.ncols() {
                for i in 0..obs.nrows() {
                    if obs.is_observed(i, j) {
                        ry -= g[(i, j)] * obs.y[(i, j)];
                        rr += g[(i, j)] * g[(i, j)];
                    }
                }
            }
            return squared_dual_bound(ry, rr, t_max);
        }
        let t_max = t_max.clamp(0.0, 1.0);
        if *self == Loss::Logistic {
            if let Some(a) = logistic_margins(obs, z) {
                return binary_entropy_max(&a, t_max);
            }
        }
        let dual = |t: f64| self.neg_conjugate(obs, z, g, t);
        // Concave in t: golden-section search on [0, t_max].
        let phi = 0.5 * (5f64.sqrt() - 1.0);
        let (mut a, mut b) = (0.0, t_max);
        let (mut c, mut d) = (b - phi * (b - a), a + phi * (b - a));
        let (mut fc, mut fd) = (dual(c), dual(d));
        for _ in 0..60 {
            if fc > fd {
                b = d;
                d = c;
                fd = fc;
                c = b - phi * (b - a);
                fc = dual(c);
            } else {
                a = c;
                c = d;
                fc = fd;
                d = a + phi * (b - a);
                fd = dual(d);
            }
        }
        dual(0.0).max(dual(t_max)).max(fc).max(fd)
    }
}

/// The squared loss's weak-duality bound from `ry = <R, y>` and `rr = ||R||^2` (`R = -G`, observed entries):
/// `t ry - t^2 rr / 2`, maximized over `t in [0, t_max]` at `clip(ry / rr, 0, t_max)` (THEORY.md section 3).
pub(crate) fn squared_dual_bound(ry: f64, rr: f64, t_max: f64) -> f64 {
    let t = if rr == 0.0 { 0.0 } else { (ry / rr).clamp(0.0, t_max) };
    t * ry - 0.5 * t * t * rr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::rng::Rng;

    /// The logistic dual's maximization over `t` (entropy form, Newton in `t`) reaches the best value of a fine grid
    /// of `neg_conjugate` (the conjugate's own formula) and never exceeds it by more than the grid's curvature
    /// slack, for confident, unconfident and saturated scores (`sigma(z) = 1` in floating point), masks, and `t_max`
    /// inside and at the end of `[0, 1]`.
    #[test]
    fn logistic_dual_maximum_matches_a_grid() {
        let mut rng = Rng::new(9);
        for trial in 0..24 {
            let (m, n) = (50, 2);
            let scale = [0.1, 1.0, 10.0, 40.0, 1000.0][trial % 5];
            let z = Mat::from_fn(m, n, |_, _| scale * rng.normal());
            let y = Mat::from_fn(m, n, |_, _| if rng.uniform() < 0.5 { 0.0 } else { 1.0 });
            let mask = (trial % 3 == 0).then(|| Mat::from_fn(m, n, |_, _| if rng.uniform() < 0.7 { 1.0 } else { 0.0 }));
            let obs = Observations::new(y, mask).unwrap();
            let (_, g) = Loss::Logistic.value_and_gradient(&obs, z.as_ref());
            let t_max = [1.0, 0.3, 0.95][trial % 3];
            let got = Loss::Logistic.dual_lower_bound(&obs, z.as_ref(), g.as_ref(), t_max);
            let steps = 20000;
            let grid = (0..=steps)
                .map(|k| Loss::Logistic.neg_conjugate(&obs, z.as_ref(), g.as_ref(), t_max * k as f64 / steps as f64))
                .fold(f64::NEG_INFINITY, f64::max);
            assert!(got >= grid - 1e-9 * grid.abs().max(1.0), "trial {trial}: {got} below the grid's {grid}");
            assert!(got <= grid + 1e-6 * grid.abs().max(1.0), "trial {trial}: {got} above the grid's {grid}");
        }
    }

    fn data(loss: Loss, rng: &mut Rng) -> (Observations, Mat<f64>) {
        let (m, n) = (5, 4);
        let z = rng.normal_mat(m, n);
        let y = match loss {
            Loss::Squared => rng.normal_mat(m, n),
            Loss::Logistic => Mat::from_fn(m, n, |_, _| if rng.uniform() < 0.5 { 0.0 } else { 1.0 }),
            Loss::Softmax => {
                let mut y = Mat::from_fn(m, n, |_, _| rng.uniform());
                for i in 0..m {
                    let s: f64 = y.row(i).iter().sum();
                    for j in 0..n {
                        y[(i, j)] /= s;
                    }
                }
                y
            }
        };
        let mask = (loss != Loss::Softmax).then(|| Mat::from_fn(m, n, |i, j| ((i + j) % 3 != 0) as u8 as f64));
        (Observations::new(y, mask).unwrap(), z)
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(3);
        for loss in [Loss::Squared, Loss::Logistic, Loss::Softmax] {
            let (obs, z) = data(loss, &mut rng);
            let (_, g) = loss.value_and_gradient(&obs, z.as_ref());
            let h = 1e-6;
            for j in 0..z.ncols() {
                for i in 0..z.nrows() {
                    let (mut zp, mut zm) = (z.clone(), z.clone());
                    zp[(i, j)] += h;
                    zm[(i, j)] -= h;
                    let fd = (loss.value(&obs, zp.as_ref()) - loss.value(&obs, zm.as_ref())) / (2.0 * h);
                    assert!((fd - g[(i, j)]).abs() < 1e-7, "{loss} ({i},{j}): fd {fd} vs {}", g[(i, j)]);
                }
            }
        }
    }

    /// Fenchel-Young: `-loss*(t G) <= loss(Z') - t <G, Z'>` for every `Z'`, with equality at `Z' = Z`, `t = 1`.
    #[test]
    fn conjugate_satisfies_fenchel_young() {
        let mut rng = Rng::new(4);
        for loss in [Loss::Squared, Loss::Logistic, Loss::Softmax] {
            let (obs, z) = data(loss, &mut rng);
            let (f, g) = loss.value_and_gradient(&obs, z.as_ref());
            let tight = loss.neg_conjugate(&obs, z.as_ref(), g.as_ref(), 1.0);
            let gz = crate::numerics::linalg::dot(g.as_ref(), z.as_ref());
            assert!((tight - (f - gz)).abs() < 1e-10, "{loss}: {tight} vs {}", f - gz);
            for k in 0..=10 {
                let t = k as f64 / 10.0;
                let nc = loss.neg_conjugate(&obs, z.as_ref(), g.as_ref(), t);
                for _ in 0..30 {
                    let z2 = Mat::from_fn(z.nrows(), z.ncols(), |_, _| 3.0 * rng.normal());
                    let rhs = loss.value(&obs, z2.as_ref()) - t * crate::numerics::linalg::dot(g.as_ref(), z2.as_ref());
                    assert!(nc <= rhs + 1e-10, "{loss} t={t}: {nc} > {rhs}");
                }
            }
            let b = loss.dual_lower_bound(&obs, z.as_ref(), g.as_ref(), 0.7);
            assert!(b >= loss.neg_conjugate(&obs, z.as_ref(), g.as_ref(), 0.35) - 1e-12);
        }
    }

    #[test]
    fn rejects_bad_targets() {
        let y = Mat::from_fn(2, 2, |i, j| (i + j) as f64);
        assert!(Loss::Logistic.validate(&Observations::new(y.clone(), None).unwrap()).is_err());
        assert!(Loss::Softmax.validate(&Observations::new(y.clone(), None).unwrap()).is_err());
        let mut bad = y.clone();
        bad[(0, 1)] = f64::NAN;
        assert!(Observations::new(bad, None).is_err());
        assert!(Observations::new(y.clone(), Some(Mat::zeros(3, 2))).is_err());
        assert!(Observations::new(y, Some(Mat::from_fn(2, 2, |_, _| 0.5))).is_err());
    }
}
