//! Activation-pattern cones (THEORY.md section 7). Within the pattern `D = diag(1[X u >= 0])` a hidden ReLU unit
//! is linear, `(X u)_+ = D X u`, on the polyhedral cone `K_D = {u : (2D - I) X u >= 0}`. Projecting onto `K_D`
//! is what both the exact polar (`max_{u in K_D, ||u|| <= 1} g^T u = ||Proj_{K_D}(g)||`) and the
//! pattern-restricted convex program of local descent need.

/// The rows `x_j` of a data matrix `X` (`n x d`), stored contiguously for per-sample dot products.
#[derive(Clone, Debug)]
pub struct Rows {
    pub n: usize,
    pub d: usize,
    data: Vec<f64>,
    /// `||x_j||_2`.
    norms: Vec<f64>,
}

impl Rows {
    /// Row-major copy of `x`.
    pub fn new(x: faer::MatRef<'_, f64>) -> Self {
        let (n, d) = (x.nrows(), x.ncols());
        let mut data = vec![0.0; n * d];
        for j in 0..d {
            for i in 0..n {
                data[i * d + j] = x[(i, j)];
            }
        }
        let norms = data.chunks(d.max(1)).map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt()).collect();
        Self { n, d, data, norms: if d == 0 { vec![0.0; n] } else { norms } }
    }

    /// `||x_j||_2`.
    pub fn norm(&self, j: usize) -> f64 {
        self.norms[j]
    }

    /// `x_j`.
    pub fn row(&self, j: usize) -> &[f64] {
        &self.data[j * self.d..(j + 1) * self.d]
    }

    /// `x_j^T u`.
    pub fn dot(&self, j: usize, u: &[f64]) -> f64 {
        self.row(j).iter().zip(u).map(|(a, b)| a * b).sum()
    }

    /// The pattern `1[X u >= 0]` of `u`.
    pub fn pattern(&self, u: &[f64]) -> Vec<bool> {
        (0..self.n).map(|j| self.dot(j, u) >= 0.0).collect()
    }

    /// `X^T (D c)`: the gradient of `u -> c^T D X u`, the linear piece of `c^T (X u)_+` on `K_D`.
    pub fn masked_gradient(&self, active: &[bool], c: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; self.d];
        for j in (0..self.n).filter(|&j| active[j]) {
            g.iter_mut().zip(self.row(j)).for_each(|(a, x)| *a += c[j] * x);
        }
        g
    }

    /// `c^T (X u)_+`.
    pub fn relu_value(&self, c: &[f64], u: &[f64]) -> f64 {
        (0..self.n).map(|j| c[j] * self.dot(j, u).max(0.0)).sum()
    }
}

/// Solves the small symmetric positive definite system `A x = b` (`A` row-major `k x k`) by Cholesky; `None` when
/// a pivot is not clearly positive (the constraints are numerically dependent).
pub(crate) fn cholesky_solve(a: &[f64], b: &[f64], k: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; k * k];
    let scale = (0..k).map(|i| a[i * k + i]).fold(0.0, f64::max);
    for i in 0..k {
        for j in 0..=i {
            let s: f64 = a[i * k + j] - (0..j).map(|m| l[i * k + m] * l[j * k + m]).sum::<f64>();
            if i == j {
                if s <= 1e-12 * scale {
                    return None;
                }
                l[i * k + i] = s.sqrt();
            } else {
                l[i * k + j] = s / l[j * k + j];
            }
        }
    }
    let mut y = b.to_vec();
    for i in 0..k {
        y[i] = (y[i] - (0..i).map(|m| l[i * k + m] * y[m]).sum::<f64>()) / l[i * k + i];
    }
    for i in (0..k).rev() {
        y[i] = (y[i] - (i + 1..k).map(|m| l[m * k + i] * y[m]).sum::<f64>()) / l[i * k + i];
    }
    Some(y)
}

/// `Proj_{K_D}(z)` for the pattern `active` (`D_jj = 1` for active samples).
///
/// The projection solves `min 1/2 ||u - z||^2` subject to `s_j x_j^T u >= 0` (`s_j = +1` on active samples,
/// `-1` otherwise). Its dual is the nonnegative least-squares problem `min_{mu >= 0} 1/2 ||z + A^T mu||^2` with
/// rows `a_j = s_j x_j`, solved by the Lawson-Hanson active-set method: at most `d` constraints are active at a
/// time, so each step is a `k x k` solve with `k <= d`. Returns `None` if it does not reach a feasible point
/// (degenerate geometry); callers then keep their previous iterate.
pub fn project(rows: &Rows, active: &[bool], z: &[f64]) -> Option<Vec<f64>> {
    project_warm(rows, active, z, &mut Vec::new())
}

/// [`project`] warm-started from the constraints that were active in a previous, nearby projection (`set`, which
/// is replaced by the constraints active at the result). Successive projections of slowly moving points (the
/// iterates of a descent) then take one or two steps instead of one per active constraint.
pub fn project_warm(rows: &Rows, active: &[bool], z: &[f64], set: &mut Vec<usize>) -> Option<Vec<f64>> {
    let d = rows.d;
    let sign = |j: usize| if active[j] { 1.0 } else { -1.0 };
    let row_norm = &rows.norms;
    let zn = z.iter().map(|v| v * v).sum::<f64>().sqrt();
    let feas_tol = 1e-13 * zn;
    set.retain(|&j| j < rows.n && row_norm[j] > 0.0);
    set.truncate(d);
    let mut mu: Vec<f64> = vec![0.0; set.len()];
    let mut u = z.to_vec();
    let mut skip = vec![false; rows.n];
    let mut warm = !set.is_empty();
    let compute_u = |set: &[usize], mu: &[f64]| {
        let mut u = z.to_vec();
        for (&j, &m) in set.iter().zip(mu) {
            let s = sign(j) * m;
            u.iter_mut().zip(rows.row(j)).for_each(|(a, x)| *a += s * x);
        }
        u
    };
    let mut in_set = vec![false; rows.n];
    for _ in 0..(10 * d + 50) {
        let newest = if warm {
            // First pass of a warm start: the least-squares step on the previous active set.
            warm = false;
            None
        } else {
            // The most violated constraint, measured as a distance.
            in_set.iter_mut().for_each(|v| *v = false);
            set.iter().for_each(|&j| in_set[j] = true);
            let mut worst = (usize::MAX, -feas_tol);
            for j in 0..rows.n {
                if skip[j] || row_norm[j] == 0.0 || in_set[j] {
                    continue;
                }
                let c = sign(j) * rows.dot(j, &u) / row_norm[j];
                if c < worst.1 {
                    worst = (j, c);
                }
            }
            if worst.0 == usize::MAX {
                return Some(u);
            }
            set.push(worst.0);
            mu.push(0.0);
            Some(worst.0)
        };
        // Inner loop: least squares on the active set, stepping back to keep mu >= 0.
        loop {
            let k = set.len();
            let mut gram = vec![0.0; k * k];
            let mut rhs = vec![0.0; k];
            for a in 0..k {
                let ra = rows.row(set[a]);
                for b in 0..=a {
                    let v =
                        sign(set[a]) * sign(set[b]) * ra.iter().zip(rows.row(set[b])).map(|(p, q)| p * q).sum::<f64>();
                    gram[a * k + b] = v;
                    gram[b * k + a] = v;
                }
                rhs[a] = -sign(set[a]) * ra.iter().zip(z).map(|(p, q)| p * q).sum::<f64>();
            }
            let Some(zeta) = cholesky_solve(&gram, &rhs, k) else {
                match newest {
                    // The new constraint is (numerically) spanned by the others: drop it and do not pick it again.
                    Some(_) => {
                        let j = set.pop().expect("nonempty");
                        mu.pop();
                        skip[j] = true;
                    }
                    // A dependent warm start: start cold.
                    None => {
                        set.clear();
                        mu.clear();
                    }
                }
                break;
            };
            if zeta.iter().all(|v| *v > 0.0) {
                mu = zeta;
                break;
            }
            let mut alpha = 1.0f64;
            for (m, zt) in mu.iter().zip(&zeta) {
                if *zt <= 0.0 {
                    alpha = alpha.min(m / (m - zt));
                }
            }
            let mut keep_set = Vec::with_capacity(k);
            let mut keep_mu = Vec::with_capacity(k);
            for ((&j, m), zt) in set.iter().zip(&mu).zip(&zeta) {
                let v = m + alpha * (zt - m);
                if v > 1e-300 {
                    keep_set.push(j);
                    keep_mu.push(v);
                } else if newest == Some(j) {
                    // The constraint just added left at once: degenerate, do not pick it again.
                    skip[j] = true;
                }
            }
            *set = keep_set;
            mu = keep_mu;
            if set.is_empty() {
                break;
            }
        }
        u = compute_u(set, &mu);
    }
    let ok = (0..rows.n).all(|j| sign(j) * rows.dot(j, &u) >= -1e-9 * row_norm[j] * zn.max(1e-300));
    ok.then_some(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::rng::Rng;

    /// The projection is feasible and no random feasible point is closer to `z`.
    #[test]
    fn projection_is_nearest_feasible_point() {
        let mut rng = Rng::new(3);
        for d in [2, 3, 5] {
            let x = rng.normal_mat(25, d);
            let rows = Rows::new(x.as_ref());
            for _ in 0..20 {
                let anchor: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
                let active = rows.pattern(&anchor);
                let z: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
                let p = project(&rows, &active, &z).expect("projection");
                let dist = |u: &[f64]| u.iter().zip(&z).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
                for (j, on) in active.iter().enumerate() {
                    let s = if *on { 1.0 } else { -1.0 };
                    assert!(s * rows.dot(j, &p) >= -1e-10);
                }
                let dp = dist(&p);
                // Points on the segment between p and the (feasible) anchor, and scaled copies of p.
                for t in [0.0, 0.1, 0.5, 1.0] {
                    for c in [0.5, 0.9, 1.1, 2.0] {
                        let q: Vec<f64> = p.iter().zip(&anchor).map(|(a, b)| c * ((1.0 - t) * a + t * b)).collect();
                        assert!(dist(&q) >= dp - 1e-10, "d={d} t={t} c={c}");
                    }
                }
            }
        }
    }
}
