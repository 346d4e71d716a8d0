//! Activation-pattern cones (THEORY.md section 7). Within the pattern `D = diag(1[X u >= 0])` a hidden ReLU unit
//! is linear, `(X u)_+ = D X u`, on the polyhedral cone `K_D = {u : (2D - I) X u >= 0}`. Projecting onto `K_D`
//! is what both the exact polar (`max_{u in K_D, ||u|| <= 1} g^T u = ||Proj_{K_D}(g)||`) and the
//! pattern-restricted convex program of local descent need.

use crate::numerics::nnls::{lawson_hanson, ActiveSetQp};

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
    let (mut l, mut y) = (Vec::new(), Vec::new());
    cholesky_solve_into(a, b, k, &mut l, &mut y).then_some(y)
}

/// [`cholesky_solve`] with caller-owned buffers: `l` is scratch (the factor), the solution goes to `y`; `false` when `a` is
/// not (numerically) positive definite.
pub(crate) fn cholesky_solve_into(a: &[f64], b: &[f64], k: usize, l: &mut Vec<f64>, y: &mut Vec<f64>) -> bool {
    // `l` holds the factor's strict lower part with the reciprocals of its diagonal on the diagonal (products
    // instead of divisions in the substitutions: the divisions dominate at the sizes of the cone projections).
    l.clear();
    l.resize(k * k, 0.0);
    let a = &a[..k * k];
    let scale = (0..k).map(|i| a[i * k + i]).fold(0.0, f64::max);
    for i in 0..k {
        let (done, rest) = l.split_at_mut(i * k);
        let li = &mut rest[..k];
        for j in 0..=i {
            let lj = if j < i { &done[j * k..j * k + j] } else { &li[..j] };
            let s = a[i * k + j] - li[..j].iter().zip(lj).map(|(p, q)| p * q).sum::<f64>();
            if j == i {
                if s <= 1e-12 * scale {
                    return false;
                }
                li[i] = 1.0 / s.sqrt();
            } else {
                li[j] = s * done[j * k + j];
            }
        }
    }
    y.clear();
    y.extend_from_slice(&b[..k]);
    for i in 0..k {
        let li = &l[i * k..i * k + i];
        y[i] = (y[i] - li.iter().zip(&y[..i]).map(|(p, q)| p * q).sum::<f64>()) * l[i * k + i];
    }
    for i in (0..k).rev() {
        y[i] = (y[i] - (i + 1..k).map(|m| l[m * k + i] * y[m]).sum::<f64>()) * l[i * k + i];
    }
    true
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
    project_screened(rows, active, z, set, None)
}

/// Safe screening for repeated projections onto one pattern cone near a point `c`: the constraints in increasing
/// order of their signed distance `dist_j = s_j x_j^T c / ||x_j||` from `c`. Since
/// `s_j x_j^T u >= ||x_j|| (dist_j - ||u - c||)`, a point `u` can violate only the constraints with
/// `dist_j < ||u - c||`, a prefix of the order; the others need no look.
#[derive(Clone, Debug)]
pub struct Screen {
    center: Vec<f64>,
    order: Vec<u32>,
    dist: Vec<f64>,
}

impl Screen {
    /// The screen of the cone of `active` around `center`.
    pub fn new(rows: &Rows, active: &[bool], center: &[f64]) -> Self {
        let mut keyed: Vec<(f64, u32)> = (0..rows.n)
            .filter(|&j| rows.norms[j] > 0.0)
            .map(|j| {
                let s = if active[j] { 1.0 } else { -1.0 };
                (s * rows.dot(j, center) / rows.norms[j], j as u32)
            })
            .collect();
        keyed.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let (dist, order) = keyed.into_iter().unzip();
        Self { center: center.to_vec(), order, dist }
    }

    /// The constraints that a point `u` may violate (a superset: the rounding of the distances is covered).
    pub fn candidates(&self, u: &[f64]) -> &[u32] {
        let r: f64 = u.iter().zip(&self.center).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
        let cn: f64 = self.center.iter().map(|v| v * v).sum::<f64>().sqrt();
        let reach = r * (1.0 + 1e-12) + 1e-12 * (cn + r);
        &self.order[..self.dist.partition_point(|&t| t < reach)]
    }
}

/// [`project_warm`] that looks for violated constraints only among those a [`Screen`] cannot rule out.
pub fn project_screened(
    rows: &Rows,
    active: &[bool],
    z: &[f64],
    set: &mut Vec<usize>,
    screen: Option<&Screen>,
) -> Option<Vec<f64>> {
    let d = rows.d;
    let zn = z.iter().map(|v| v * v).sum::<f64>().sqrt();
    set.retain(|&j| j < rows.n && rows.norms[j] > 0.0);
    set.truncate(d);
    let qp = PatternCone { rows, active, z, feas_tol: 1e-13 * zn, screen };
    let mut mu = vec![0.0; set.len()];
    let converged = lawson_hanson(&qp, set, &mut mu, true, 10 * d + 50);
    let u = qp.point(set, &mu);
    let ok = converged || (0..rows.n).all(|j| qp.sign(j) * rows.dot(j, &u) >= -1e-9 * rows.norms[j] * zn.max(1e-300));
    ok.then_some(u)
}

/// The dual of the projection onto the pattern cone, `min_{mu >= 0} 1/2 ||z + A^T mu||^2` with rows
/// `a_j = s_j x_j`: `M = A A^T` and `b = -A z`, never formed beyond the active rows.
struct PatternCone<'a> {
    rows: &'a Rows,
    active: &'a [bool],
    z: &'a [f64],
    /// Violations smaller than this distance are rounding.
    feas_tol: f64,
    screen: Option<&'a Screen>,
}

impl PatternCone<'_> {
    fn sign(&self, j: usize) -> f64 {
        if self.active[j] {
            1.0
        } else {
            -1.0
        }
    }

    /// [`ActiveSetQp::entering`] over every sample, for rows of length `D`: the same test in the same order, with
    /// the rare exclusions checked only for a new worst constraint.
    fn scan<const D: usize>(&self, u: &[f64], set: &[usize], skip: &[bool]) -> Option<usize> {
        let u: [f64; D] = u.try_into().expect("row length");
        let mut worst = (None, -self.feas_tol);
        let rows = self.rows.data.chunks_exact(D).zip(&self.rows.norms).zip(self.active);
        for (j, ((x, &nj), &on)) in rows.enumerate() {
            let dot: f64 = (0..D).map(|m| x[m] * u[m]).sum();
            let c = if on { dot } else { -dot };
            if c < worst.1 * nj && !skip[j] && nj != 0.0 && !set.contains(&j) {
                worst = (Some(j), c / nj);
            }
        }
        worst.0
    }

    /// The primal point `u = z + A^T mu` for the multipliers `mu` on `set`.
    fn point(&self, set: &[usize], mu: &[f64]) -> Vec<f64> {
        let mut u = self.z.to_vec();
        for (&j, &m) in set.iter().zip(mu) {
            let s = self.sign(j) * m;
            u.iter_mut().zip(self.rows.row(j)).for_each(|(a, x)| *a += s * x);
        }
        u
    }
}

impl ActiveSetQp for PatternCone<'_> {
    fn restricted(&self, set: &[usize], gram: &mut Vec<f64>, rhs: &mut Vec<f64>) {
        let k = set.len();
        gram.clear();
        gram.resize(k * k, 0.0);
        rhs.clear();
        rhs.resize(k, 0.0);
        for a in 0..k {
            let ra = self.rows.row(set[a]);
            for b in 0..=a {
                let v = self.sign(set[a])
                    * self.sign(set[b])
                    * ra.iter().zip(self.rows.row(set[b])).map(|(p, q)| p * q).sum::<f64>();
                gram[a * k + b] = v;
                gram[b * k + a] = v;
            }
            rhs[a] = -self.sign(set[a]) * ra.iter().zip(self.z).map(|(p, q)| p * q).sum::<f64>();
        }
    }

    /// The most violated constraint at `u = z + A^T mu`, measured as a distance.
    fn entering(&self, set: &[usize], mu: &[f64], skip: &[bool]) -> Option<usize> {
        let u = self.point(set, mu);
        let mut worst = (None, -self.feas_tol);
        let mut check = |j: usize| {
            if skip[j] || self.rows.norms[j] == 0.0 || set.contains(&j) {
                return;
            }
            let c = self.sign(j) * self.rows.dot(j, &u);
            if c < worst.1 * self.rows.norms[j] {
                worst = (Some(j), c / self.rows.norms[j]);
            }
        };
        match self.screen {
            Some(screen) => screen.candidates(&u).iter().for_each(|&j| check(j as usize)),
            // The full scan, with the row length known to the compiler for the low-rank rows of the exact polars.
            None => match self.rows.d {
                2 => return self.scan::<2>(&u, set, skip),
                3 => return self.scan::<3>(&u, set, skip),
                4 => return self.scan::<4>(&u, set, skip),
                _ => (0..self.rows.n).for_each(check),
            },
        }
        worst.0
    }

    fn variables(&self) -> usize {
        self.rows.n
    }
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

    /// Every constraint a point violates is among the screen's candidates, and the screened projection is the
    /// projection.
    #[test]
    fn screen_keeps_every_violated_constraint() {
        let mut rng = Rng::new(9);
        for d in [3, 4] {
            let x = rng.normal_mat(200, d);
            let rows = Rows::new(x.as_ref());
            let center: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
            let active = rows.pattern(&center);
            let screen = Screen::new(&rows, &active, &center);
            for scale in [1e-3, 1e-1, 1.0, 10.0] {
                for _ in 0..20 {
                    let u: Vec<f64> = center.iter().map(|c| c + scale * rng.normal()).collect();
                    let cands: Vec<usize> = screen.candidates(&u).iter().map(|&j| j as usize).collect();
                    for (j, on) in active.iter().enumerate() {
                        let s = if *on { 1.0 } else { -1.0 };
                        if s * rows.dot(j, &u) < 0.0 {
                            assert!(cands.contains(&j), "d={d} scale={scale}: violated {j} not a candidate");
                        }
                    }
                    let plain = project(&rows, &active, &u).unwrap();
                    let screened = project_screened(&rows, &active, &u, &mut Vec::new(), Some(&screen)).unwrap();
                    for (a, b) in plain.iter().zip(&screened) {
                        assert!((a - b).abs() <= 1e-10 * (1.0 + a.abs()), "d={d} scale={scale}");
                    }
                }
            }
        }
    }
}
