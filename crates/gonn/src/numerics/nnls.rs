//! The Lawson-Hanson active-set method for nonnegative quadratic programs `min_{c >= 0} 1/2 c^T M c - b^T c`,
//! the one implementation behind the cone projections of ReLU patterns (whose `M` is implicit, one row per
//! sample) and the fully corrective step of the dual refinement (a small dense `M`).

use crate::numerics::cone::cholesky_solve_into;

/// A nonnegative quadratic program as the active-set method sees it.
pub trait ActiveSetQp {
    /// `M[set, set]` (row-major `k x k`) into `m` and `b[set]` into `b` (both resized to fit).
    fn restricted(&self, set: &[usize], m: &mut Vec<f64>, b: &mut Vec<f64>);
    /// With `c` the solution on `set` (zero elsewhere), the variable to free next: one outside `set`, not
    /// `skip`ped, whose gradient `b_j - (M c)_j` is clearly positive (the largest, in the problem's own scaling);
    /// `None` at a KKT point.
    fn entering(&self, set: &[usize], c: &[f64], skip: &[bool]) -> Option<usize>;
    /// Number of variables.
    fn variables(&self) -> usize;
}

/// Buffers of [`lawson_hanson_in`], reused across calls.
#[derive(Default)]
pub struct Workspace {
    skip: Vec<bool>,
    m: Vec<f64>,
    rhs: Vec<f64>,
    chol: Vec<f64>,
    z: Vec<f64>,
}

/// Runs at most `max_outer` outer steps of Lawson-Hanson from the passive `set` with values `c` (parallel to
/// `set`, positive), solving first on that set when `warm`. On return `set` and `c` hold the solution's support
/// and values; the result says whether a KKT point was reached. Variables that make the restricted system
/// singular, or leave the set as soon as they enter, are not tried again (degenerate geometry).
pub fn lawson_hanson(
    qp: &impl ActiveSetQp,
    set: &mut Vec<usize>,
    c: &mut Vec<f64>,
    warm: bool,
    max_outer: usize,
) -> bool {
    lawson_hanson_in(qp, set, c, warm, max_outer, &mut Workspace::default())
}

/// [`lawson_hanson`] with its buffers in `ws` (no allocation once they have grown).
pub fn lawson_hanson_in(
    qp: &impl ActiveSetQp,
    set: &mut Vec<usize>,
    c: &mut Vec<f64>,
    warm: bool,
    max_outer: usize,
    ws: &mut Workspace,
) -> bool {
    let Workspace { skip, m, rhs, chol, z } = ws;
    skip.clear();
    skip.resize(qp.variables(), false);
    let mut warm = warm && !set.is_empty();
    for _ in 0..max_outer {
        let newest = if warm {
            warm = false;
            None
        } else {
            let Some(j) = qp.entering(set, c, skip) else { return true };
            set.push(j);
            c.push(0.0);
            Some(j)
        };
        // Least squares on the passive set, stepping back to keep c >= 0.
        loop {
            qp.restricted(set, m, rhs);
            if !cholesky_solve_into(m, rhs, set.len(), chol, z) {
                match newest {
                    // The new variable is (numerically) dependent on the others: drop it, do not pick it again.
                    Some(_) => {
                        let j = set.pop().expect("nonempty");
                        c.pop();
                        skip[j] = true;
                    }
                    // A dependent warm start: start cold.
                    None => {
                        set.clear();
                        c.clear();
                    }
                }
                break;
            }
            if z.iter().all(|v| *v > 0.0) {
                c.clone_from(z);
                break;
            }
            let mut alpha = 1.0f64;
            for (ci, zi) in c.iter().zip(z.iter()) {
                if *zi <= 0.0 {
                    alpha = alpha.min(ci / (ci - zi));
                }
            }
            // Step to the boundary in place, dropping the variables that reach zero.
            let mut kept = 0;
            for t in 0..set.len() {
                let (j, ci) = (set[t], c[t]);
                let v = ci + alpha * (z[t] - ci);
                if v > 1e-300 {
                    set[kept] = j;
                    c[kept] = v;
                    kept += 1;
                } else if newest == Some(j) {
                    skip[j] = true;
                }
            }
            set.truncate(kept);
            c.truncate(kept);
            if set.is_empty() {
                break;
            }
        }
    }
    false
}

/// A small dense program (`m` row-major `k x k`).
struct Dense<'a> {
    m: &'a [f64],
    b: &'a [f64],
    /// Gradients below this are zero (rounding).
    tol: f64,
}

impl ActiveSetQp for Dense<'_> {
    fn restricted(&self, set: &[usize], m: &mut Vec<f64>, b: &mut Vec<f64>) {
        let (k, p) = (self.b.len(), set.len());
        m.clear();
        m.extend((0..p * p).map(|t| self.m[set[t / p] * k + set[t % p]]));
        b.clear();
        b.extend(set.iter().map(|&i| self.b[i]));
    }
    fn entering(&self, set: &[usize], c: &[f64], skip: &[bool]) -> Option<usize> {
        let k = self.b.len();
        let grad = |i: usize| self.b[i] - set.iter().zip(c).map(|(&j, cj)| self.m[i * k + j] * cj).sum::<f64>();
        (0..k)
            .filter(|i| !set.contains(i) && !skip[*i])
            .map(|i| (i, grad(i)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|(_, g)| *g > self.tol)
            .map(|(i, _)| i)
    }
    fn variables(&self) -> usize {
        self.b.len()
    }
}

/// `min_{c >= 0} 1/2 c^T M c - b^T c` for a small positive semidefinite `M` (row-major `k x k`), warm-started at
/// `c` (nonnegative), which is overwritten with the solution.
pub fn nonneg_qp(m: &[f64], b: &[f64], c: &mut [f64]) {
    let k = b.len();
    let scale = (0..k).map(|i| m[i * k + i]).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let tol = 1e-14 * scale.sqrt() * b.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(1e-300);
    let mut set: Vec<usize> = (0..k).filter(|&i| c[i] > 0.0).collect();
    let mut vals: Vec<f64> = set.iter().map(|&i| c[i]).collect();
    lawson_hanson(&Dense { m, b, tol }, &mut set, &mut vals, true, 4 * k + 20);
    c.iter_mut().for_each(|v| *v = 0.0);
    for (&i, v) in set.iter().zip(&vals) {
        c[i] = *v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::rng::Rng;

    /// The KKT conditions of `min_{c >= 0} 1/2 c^T M c - b^T c`: `c >= 0`, gradient `<= 0` where `c = 0` and `= 0`
    /// where `c > 0`.
    #[test]
    fn dense_solution_satisfies_kkt() {
        let mut rng = Rng::new(4);
        for k in [1, 3, 8] {
            let a = rng.normal_mat(k + 2, k);
            let m: Vec<f64> =
                (0..k * k).map(|t| (0..k + 2).map(|r| a[(r, t / k)] * a[(r, t % k)]).sum::<f64>()).collect();
            let b: Vec<f64> = (0..k).map(|_| rng.normal()).collect();
            let mut c = vec![0.0; k];
            nonneg_qp(&m, &b, &mut c);
            for i in 0..k {
                let g = b[i] - (0..k).map(|j| m[i * k + j] * c[j]).sum::<f64>();
                assert!(c[i] >= 0.0);
                if c[i] > 0.0 {
                    assert!(g.abs() < 1e-9, "k {k}: free variable {i} has gradient {g}");
                } else {
                    assert!(g < 1e-9, "k {k}: bound variable {i} has gradient {g}");
                }
            }
        }
    }
}
