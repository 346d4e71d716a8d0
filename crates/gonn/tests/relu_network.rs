//! One-hidden-layer ReLU networks against the exact optimum of the Pilanci-Ergen convex program over all
//! activation patterns (THEORY.md section 7), solved by the conic solver Clarabel.

use clarabel::algebra::CscMatrix;
use clarabel::solver::{DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT};
use faer::Mat;
use gonn::families::relu::augment;
use gonn::meta::certify;
use gonn::numerics::cone::Rows;
use gonn::prelude::*;

/// Every activation pattern `1[X u >= 0]` of the arrangement of the rows of `X` (`d <= 4`, generic data): the
/// regions next to every intersection ray, found by stepping off the ray in the four sign combinations.
fn all_patterns(x: &Mat<f64>) -> Vec<Vec<bool>> {
    all_patterns_step(x, 1e-6)
}

/// [`all_patterns`] stepping `step` off every vertex in 4-D (smaller for nearly degenerate rows).
fn all_patterns_step(x: &Mat<f64>, step: f64) -> Vec<Vec<bool>> {
    patterns_with_points(x, step).into_iter().map(|(p, _)| p).collect()
}

/// [`all_patterns_step`], each pattern with a point `u` strictly inside its region.
fn patterns_with_points(x: &Mat<f64>, step: f64) -> Vec<(Vec<bool>, Vec<f64>)> {
    let rows = Rows::new(x.as_ref());
    let (n, d) = (x.nrows(), x.ncols());
    let mut set = std::collections::BTreeMap::new();
    let strict = |u: &[f64]| -> Option<Vec<bool>> {
        let s: Vec<f64> = (0..n).map(|j| rows.dot(j, u)).collect();
        s.iter().all(|v| v.abs() > 1e-3 * step).then(|| s.iter().map(|v| *v > 0.0).collect())
    };
    let mut dirs: Vec<Vec<f64>> = Vec::new();
    match d {
        2 => {
            for j in 0..n {
                let r = rows.row(j);
                for s in [1.0, -1.0] {
                    let ray = [-r[1] * s, r[0] * s];
                    for e in [1e-6, -1e-6] {
                        dirs.push(vec![ray[0] + e * r[0], ray[1] + e * r[1]]);
                    }
                }
            }
        }
        3 => {
            for i in 0..n {
                for j in 0..i {
                    let (a, b) = (rows.row(i), rows.row(j));
                    let c = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
                    // Dual basis of span{a, b}: p_a . a = 1, p_a . b = 0 and vice versa.
                    let (aa, ab, bb) = (dot(a, a), dot(a, b), dot(b, b));
                    let det = aa * bb - ab * ab;
                    let pa: Vec<f64> = (0..3).map(|m| (bb * a[m] - ab * b[m]) / det).collect();
                    let pb: Vec<f64> = (0..3).map(|m| (aa * b[m] - ab * a[m]) / det).collect();
                    for s in [1.0, -1.0] {
                        for (sa, sb) in [(1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)] {
                            dirs.push((0..3).map(|m| s * c[m] + 1e-6 * (sa * pa[m] + sb * pb[m])).collect());
                        }
                    }
                }
            }
        }
        4 => {
            // Generic rows: next to every line where three hyperplanes meet, step off in the eight sign
            // combinations of the dual basis of the three rows.
            for a in 0..n {
                for b in 0..a {
                    for e in 0..b {
                        let g = [rows.row(a), rows.row(b), rows.row(e)];
                        let minor = |skip: usize| {
                            let cols: Vec<usize> = (0..4).filter(|&m| m != skip).collect();
                            det3([0, 1, 2].map(|r| [0, 1, 2].map(|q| g[r][cols[q]])))
                        };
                        let line: Vec<f64> = (0..4).map(|m| if m % 2 == 0 { minor(m) } else { -minor(m) }).collect();
                        let gram = [0, 1, 2].map(|r| [0, 1, 2].map(|q| dot(g[r], g[q])));
                        let dg = det3(gram);
                        let inv = [0, 1, 2].map(|r| {
                            [0, 1, 2].map(|q| {
                                let (r1, r2, q1, q2) = ((q + 1) % 3, (q + 2) % 3, (r + 1) % 3, (r + 2) % 3);
                                (gram[r1][q1] * gram[r2][q2] - gram[r1][q2] * gram[r2][q1]) / dg
                            })
                        });
                        let dual: Vec<Vec<f64>> = (0..3)
                            .map(|r| (0..4).map(|m| (0..3).map(|q| inv[r][q] * g[q][m]).sum()).collect())
                            .collect();
                        for s in [1.0, -1.0] {
                            for signs in 0..8 {
                                dirs.push(
                                    (0..4)
                                        .map(|m| {
                                            s * line[m]
                                                + step
                                                    * (0..3)
                                                        .map(
                                                            |r| {
                                                                if signs >> r & 1 == 1 {
                                                                    dual[r][m]
                                                                } else {
                                                                    -dual[r][m]
                                                                }
                                                            },
                                                        )
                                                        .sum::<f64>()
                                        })
                                        .collect(),
                                );
                            }
                        }
                    }
                }
            }
        }
        5 => {
            // 4-D inputs plus bias: next to every line where four hyperplanes meet (its direction from the 4x4
            // minors), step off in the 16 sign combinations: delta = G^T (G G^T)^{-1} sigma.
            let idx: Vec<[usize; 4]> = (0..n)
                .flat_map(|a| (0..a).flat_map(move |b| (0..b).flat_map(move |c| (0..c).map(move |e| [a, b, c, e]))))
                .collect();
            for q in idx {
                let g: Vec<&[f64]> = q.iter().map(|&j| rows.row(j)).collect();
                let line: Vec<f64> = (0..5)
                    .map(|m| {
                        let cols: Vec<usize> = (0..5).filter(|&c| c != m).collect();
                        let sub: Vec<Vec<f64>> = g.iter().map(|r| cols.iter().map(|&c| r[c]).collect()).collect();
                        if m % 2 == 0 {
                            det_small(sub)
                        } else {
                            -det_small(sub)
                        }
                    })
                    .collect();
                let gram: Vec<Vec<f64>> = g.iter().map(|a| g.iter().map(|b| dot(a, b)).collect()).collect();
                for s in [1.0, -1.0] {
                    for signs in 0..16 {
                        let sigma: Vec<f64> = (0..4).map(|r| if signs >> r & 1 == 1 { 1.0 } else { -1.0 }).collect();
                        let Some(coef) = solve_small(gram.clone(), sigma) else { continue };
                        dirs.push(
                            (0..5)
                                .map(|m| s * line[m] + step * (0..4).map(|r| coef[r] * g[r][m]).sum::<f64>())
                                .collect(),
                        );
                    }
                }
            }
        }
        _ => panic!("d must be 2, 3, 4 or 5"),
    }
    for u in dirs {
        if let Some(p) = strict(&u) {
            set.entry(p).or_insert(u);
        }
    }
    set.into_iter().filter(|(p, _)| p.iter().any(|a| *a)).collect()
}

/// The rows of `(2 D - I) X u >= 0` that define the cone of a pattern with 3 columns (2-D inputs plus bias), given a
/// point `u0` strictly inside it: the rows `a_j = s_j x_j` scaled to `a_j / (a_j^T u0)` lie in the plane
/// `{p : p^T u0 = 1}`, and every row inside the convex hull of the others is a nonnegative combination of them (so
/// it is implied). The hull's vertices remain (monotone chain). Other widths keep every row.
fn cone_rows(x: &Mat<f64>, pattern: &[bool], u0: &[f64]) -> Vec<usize> {
    let (n, d) = (x.nrows(), x.ncols());
    if d == 4 {
        return cone_rows_4(x, pattern, u0);
    }
    if d != 3 {
        return (0..n).collect();
    }
    let a = |j: usize| -> [f64; 3] {
        let s = if pattern[j] { 1.0 } else { -1.0 };
        [s * x[(j, 0)], s * x[(j, 1)], s * x[(j, 2)]]
    };
    // An orthonormal basis (e1, e2) of the plane orthogonal to u0.
    let un = dot(u0, u0).sqrt();
    let w = [u0[0] / un, u0[1] / un, u0[2] / un];
    let pick = if w[0].abs() < 0.9 { [1.0, 0.0, 0.0] } else { [0.0, 1.0, 0.0] };
    let t = dot(&pick, &w);
    let mut e1 = [pick[0] - t * w[0], pick[1] - t * w[1], pick[2] - t * w[2]];
    let n1 = dot(&e1, &e1).sqrt();
    e1.iter_mut().for_each(|v| *v /= n1);
    let e2 = [w[1] * e1[2] - w[2] * e1[1], w[2] * e1[0] - w[0] * e1[2], w[0] * e1[1] - w[1] * e1[0]];
    let mut pts: Vec<(f64, f64, usize)> = (0..n)
        .map(|j| {
            let aj = a(j);
            let h = dot(&aj, u0);
            assert!(h > 0.0, "u0 is strictly inside the pattern's region");
            (dot(&aj, &e1) / h, dot(&aj, &e2) / h, j)
        })
        .collect();
    pts.sort_by(|p, q| p.0.total_cmp(&q.0).then(p.1.total_cmp(&q.1)));
    let cross = |o: &(f64, f64, usize), p: &(f64, f64, usize), q: &(f64, f64, usize)| {
        (p.0 - o.0) * (q.1 - o.1) - (p.1 - o.1) * (q.0 - o.0)
    };
    let mut hull: Vec<(f64, f64, usize)> = Vec::new();
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &(f64, f64, usize)>> =
            if pass == 0 { Box::new(pts.iter()) } else { Box::new(pts.iter().rev()) };
        for p in iter {
            while hull.len() >= start + 2 && cross(&hull[hull.len() - 2], &hull[hull.len() - 1], p) <= 0.0 {
                hull.pop();
            }
            hull.push(*p);
        }
    }
    let mut rows: Vec<usize> = hull.iter().map(|p| p.2).collect();
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// [`cone_rows`] for `d = 4`: the rows `a_j = s_j x_j` scaled to `a_j / (a_j^T u0)` lie in the 3-D affine plane
/// `u0^T a = 1`, and the cone's facets are the vertices of their convex hull (the extreme rays of the dual cone). A
/// row is kept when it is a corner of a hull facet: a triple whose plane has every other point on one side (`O(n^4)`,
/// for the small `n` of these references; coplanar ties keep every row of the face).
fn cone_rows_4(x: &Mat<f64>, pattern: &[bool], u0: &[f64]) -> Vec<usize> {
    let n = x.nrows();
    let p: Vec<[f64; 4]> = (0..n)
        .map(|j| {
            let s = if pattern[j] { 1.0 } else { -1.0 };
            let a = [s * x[(j, 0)], s * x[(j, 1)], s * x[(j, 2)], s * x[(j, 3)]];
            let h = dot(&a, u0);
            assert!(h > 0.0, "u0 is strictly inside the pattern's region");
            a.map(|v| v / h)
        })
        .collect();
    let sub = |a: &[f64; 4], b: &[f64; 4]| [a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3]];
    let mut keep = vec![false; n];
    for i in 0..n {
        for j in i + 1..n {
            for k in j + 1..n {
                // The plane through p_i, p_j, p_k within the affine 3-space: the normal w with w^T u0-direction
                // free is found as the 4-D generalized cross product of (p_j - p_i, p_k - p_i, u0).
                let (b, c) = (sub(&p[j], &p[i]), sub(&p[k], &p[i]));
                let m = [b, c, [u0[0], u0[1], u0[2], u0[3]]];
                let minor = |skip: usize| {
                    let cols: Vec<usize> = (0..4).filter(|&q| q != skip).collect();
                    det_small((0..3).map(|r| cols.iter().map(|&q| m[r][q]).collect()).collect())
                };
                let w = [minor(0), -minor(1), minor(2), -minor(3)];
                let wn = dot(&w, &w).sqrt();
                if wn <= 1e-12 * dot(&b, &b).sqrt() * dot(&c, &c).sqrt() * dot(u0, u0).sqrt() {
                    continue;
                }
                // Signed distances to the plane, with a tolerance relative to each point's offset.
                let side: Vec<(f64, f64)> = (0..n)
                    .map(|l| {
                        let e = sub(&p[l], &p[i]);
                        (dot(&w, &e) / wn, 1e-10 * dot(&e, &e).sqrt())
                    })
                    .collect();
                if side.iter().all(|(v, t)| *v <= *t) || side.iter().all(|(v, t)| *v >= -*t) {
                    for l in 0..n {
                        keep[l] |= side[l].0.abs() <= side[l].1;
                    }
                }
            }
        }
    }
    (0..n).filter(|&j| keep[j]).collect()
}

/// Determinant by Gaussian elimination with partial pivoting.
fn det_small(mut a: Vec<Vec<f64>>) -> f64 {
    let k = a.len();
    let mut det = 1.0;
    for c in 0..k {
        let p = (c..k).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs())).unwrap();
        if a[p][c] == 0.0 {
            return 0.0;
        }
        if p != c {
            a.swap(p, c);
            det = -det;
        }
        det *= a[c][c];
        for r in c + 1..k {
            let f = a[r][c] / a[c][c];
            let (top, bottom) = a.split_at_mut(r);
            bottom[0][c..].iter_mut().zip(&top[c][c..]).for_each(|(x, p)| *x -= f * p);
        }
    }
    det
}

/// Solves `A z = b` by Gaussian elimination with partial pivoting (`None` if singular).
fn solve_small(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let k = a.len();
    for c in 0..k {
        let p = (c..k).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs())).unwrap();
        if a[p][c].abs() < 1e-300 {
            return None;
        }
        a.swap(p, c);
        b.swap(p, c);
        for r in c + 1..k {
            let f = a[r][c] / a[c][c];
            let (top, bottom) = a.split_at_mut(r);
            bottom[0][c..].iter_mut().zip(&top[c][c..]).for_each(|(x, p)| *x -= f * p);
            b[r] -= f * b[c];
        }
    }
    let mut z = vec![0.0; k];
    for c in (0..k).rev() {
        z[c] = (b[c] - (c + 1..k).map(|m| a[c][m] * z[m]).sum::<f64>()) / a[c][c];
    }
    Some(z)
}

fn det3(m: [[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}

/// A conic program for Clarabel, built row by row: `min 1/2 x^T P x + q^T x + constant` subject to
/// `A x + s = b`, `s` in a product of cones (consecutive zero or nonnegative rows merged into one cone).
#[derive(Default)]
struct Conic {
    nvar: usize,
    rows: usize,
    ii: Vec<usize>,
    jj: Vec<usize>,
    vv: Vec<f64>,
    b: Vec<f64>,
    cones: Vec<SupportedConeT<f64>>,
    q: Vec<f64>,
    /// Diagonal entries of `P`.
    p: Vec<(usize, f64)>,
    constant: f64,
}

impl Conic {
    /// `k` new variables; the first one's index.
    fn vars(&mut self, k: usize) -> usize {
        self.nvar += k;
        self.q.resize(self.nvar, 0.0);
        self.nvar - k
    }

    /// One row `b - sum_j a_j x_j` of the slack, its cone given by the caller.
    fn push_row(&mut self, terms: &[(usize, f64)], rhs: f64) {
        for &(j, a) in terms {
            self.ii.push(self.rows);
            self.jj.push(j);
            self.vv.push(a);
        }
        self.b.push(rhs);
        self.rows += 1;
    }

    /// One row in the cone `cone` (a zero or nonnegative row joins the previous cone of its kind).
    fn row(&mut self, terms: &[(usize, f64)], rhs: f64, cone: SupportedConeT<f64>) {
        self.push_row(terms, rhs);
        match (self.cones.last_mut(), &cone) {
            (Some(SupportedConeT::ZeroConeT(k)), SupportedConeT::ZeroConeT(1))
            | (Some(SupportedConeT::NonnegativeConeT(k)), SupportedConeT::NonnegativeConeT(1)) => *k += 1,
            _ => self.cones.push(cone),
        }
    }

    /// Several rows that together lie in one cone (second-order, exponential).
    fn block(&mut self, rows: &[(Vec<(usize, f64)>, f64)], cone: SupportedConeT<f64>) {
        for (terms, rhs) in rows {
            self.push_row(terms, *rhs);
        }
        self.cones.push(cone);
    }

    /// `sum_j a_j x_j = rhs`.
    fn eq(&mut self, terms: &[(usize, f64)], rhs: f64) {
        self.row(terms, rhs, SupportedConeT::ZeroConeT(1));
    }

    /// `sum_j a_j x_j >= 0`.
    fn nonneg(&mut self, terms: &[(usize, f64)]) {
        let neg: Vec<(usize, f64)> = terms.iter().map(|&(j, a)| (j, -a)).collect();
        self.row(&neg, 0.0, SupportedConeT::NonnegativeConeT(1));
    }

    /// `||(x_{first+1}, ..., x_{first+k-1})|| <= x_first`.
    fn soc(&mut self, first: usize, k: usize) {
        let rows: Vec<_> = (0..k).map(|m| (vec![(first + m, -1.0)], 0.0)).collect();
        self.block(&rows, SupportedConeT::SecondOrderConeT(k));
    }

    /// `(a^T x + a0, 1, x_w)` in the exponential cone: `x_w >= exp(a^T x + a0)`.
    fn exp_above(&mut self, terms: &[(usize, f64)], a0: f64, w: usize) {
        let neg: Vec<(usize, f64)> = terms.iter().map(|&(j, a)| (j, -a)).collect();
        self.block(&[(neg, a0), (vec![], 1.0), (vec![(w, -1.0)], 0.0)], SupportedConeT::ExponentialConeT());
    }

    /// The loss `sum_a loss(z_a, y_a)` of the outputs `z` (variable indices) in the objective: squared
    /// `1/2 z^T z - y^T z + 1/2 y^T y`; logistic `sum_a t_a` with `t_a + y_a z_a >= log(1 + exp(z_a))`, i.e.
    /// `exp(-tau_a) + exp(z_a - tau_a) <= 1` for `tau_a = t_a + y_a z_a` (two exponential cones and a sum).
    fn loss(&mut self, z: &[usize], y: &[f64], loss: Loss) {
        for (&za, &ya) in z.iter().zip(y) {
            match loss {
                Loss::Squared => {
                    self.p.push((za, 1.0));
                    self.q[za] -= ya;
                    self.constant += 0.5 * ya * ya;
                }
                Loss::Logistic => {
                    let t = self.vars(3);
                    let (u, w) = (t + 1, t + 2);
                    self.q[t] = 1.0;
                    self.exp_above(&[(t, -1.0), (za, -ya)], 0.0, u);
                    self.exp_above(&[(za, 1.0 - ya), (t, -1.0)], 0.0, w);
                    self.nonneg(&[(u, -1.0), (w, -1.0)]);
                    let last = self.rows - 1;
                    self.b[last] = 1.0;
                }
                Loss::Softmax => unimplemented!("entrywise losses only"),
            }
        }
    }

    fn solve(self) -> f64 {
        let a = CscMatrix::new_from_triplets(self.rows, self.nvar, self.ii, self.jj, self.vv);
        let (pi, pv): (Vec<usize>, Vec<f64>) = self.p.into_iter().unzip();
        let pmat = CscMatrix::new_from_triplets(self.nvar, self.nvar, pi.clone(), pi, pv);
        // Exponential cones do not reach the tolerances of the quadratic and second-order ones.
        let exp = self.cones.iter().any(|k| matches!(k, SupportedConeT::ExponentialConeT()));
        let tol = if exp { 1e-9 } else { 1e-11 };
        let settings = DefaultSettingsBuilder::default()
            .verbose(std::env::var("CLARABEL_VERBOSE").is_ok())
            .tol_gap_abs(tol)
            .tol_gap_rel(tol)
            .tol_feas(tol)
            .max_iter(500)
            // Shorter steps keep the exponential cones' iterates well inside (3-D inputs at n = 20 stop with
            // InsufficientProgress at the default 0.99 and at 0.95).
            .max_step_fraction(if exp { 0.8 } else { 0.99 })
            .build()
            .unwrap();
        let mut solver = DefaultSolver::new(&pmat, &self.q, &a, &self.b, &self.cones, settings).unwrap();
        solver.solve();
        assert!(
            matches!(solver.solution.status, SolverStatus::Solved | SolverStatus::AlmostSolved),
            "{:?}",
            solver.solution.status
        );
        solver.solution.obj_val + self.constant
    }
}

/// `min 1/2 ||sum_i D_i X (v_i - w_i) - y||^2 + lambda sum_i (||v_i|| + ||w_i||)` subject to
/// `(2 D_i - I) X v_i >= 0`, `(2 D_i - I) X w_i >= 0`, over all patterns: the global optimum of the weight-decay
/// ReLU network (Pilanci and Ergen, 2020).
fn convex_optimum(x: &Mat<f64>, y: &[f64], lambda: f64) -> f64 {
    convex_optimum_loss(x, y, lambda, Loss::Squared)
}

/// [`convex_optimum`] for an entrywise loss (squared or logistic).
fn convex_optimum_loss(x: &Mat<f64>, y: &[f64], lambda: f64, loss: Loss) -> f64 {
    convex_optimum_with(x, y, lambda, loss, true)
}

/// [`convex_optimum_loss`], each pattern's cone given by its facets ([`cone_rows`]) or, without `reduce`, by every
/// sample's row.
fn convex_optimum_with(x: &Mat<f64>, y: &[f64], lambda: f64, loss: Loss, reduce: bool) -> f64 {
    let found = patterns_with_points(x, 1e-6);
    let pats: Vec<&Vec<bool>> = found.iter().map(|(p, _)| p).collect();
    let (n, d) = (x.nrows(), x.ncols());
    let mut c = Conic::default();
    let z = c.vars(n);
    // Per pattern and sign: (t, v) with ||v|| <= t, the cost lambda t, and the cone (2 D - I) X v >= 0.
    let blocks: Vec<[usize; 2]> = pats.iter().map(|_| [c.vars(d + 1), c.vars(d + 1)]).collect();
    for ((p, u0), blk) in found.iter().zip(&blocks) {
        let rows = if reduce { cone_rows(x, p, u0) } else { (0..n).collect() };
        for &v in blk {
            c.q[v] = lambda;
            c.soc(v, d + 1);
            for &a in &rows {
                let sg = if p[a] { 1.0 } else { -1.0 };
                c.nonneg(&(0..d).map(|m| (v + 1 + m, sg * x[(a, m)])).collect::<Vec<_>>());
            }
        }
    }
    // z = sum_i D_i X (v_i - w_i).
    for a in 0..n {
        let mut terms = vec![(z + a, 1.0)];
        for (p, blk) in pats.iter().zip(&blocks) {
            if p[a] {
                for (v, sign) in [(blk[0], -1.0), (blk[1], 1.0)] {
                    terms.extend((0..d).map(|m| (v + 1 + m, sign * x[(a, m)])));
                }
            }
        }
        c.eq(&terms, 0.0);
    }
    c.loss(&(z..z + n).collect::<Vec<_>>(), y, loss);
    c.solve()
}

/// The convex program of [`convex_optimum_loss`] for 1-D inputs plus bias at scale, for distinct sorted `t`: the
/// patterns are `R_k = {i >= k}` and `L_k = {i <= k}`; a pattern's cone `{(a, b) : a t_i + b >= 0 on it, <= 0 off it}`
/// is exactly four inequalities (a linear function is nonnegative on an interval of samples when it is at the
/// interval's ends), and the outputs `z_i = t_i (sum_{k <= i} a^R_k + sum_{k >= i} a^L_k) + (same for b)` are prefix
/// and suffix sums: `O(n)` nonzeros in all.
fn convex_optimum_1d(t: &[f64], y: &[f64], lambda: f64, loss: Loss) -> f64 {
    let n = t.len();
    assert!(t.windows(2).all(|w| w[0] < w[1]), "distinct sorted inputs");
    let mut c = Conic::default();
    let z = c.vars(n);
    // Per pattern (R_1..R_n, then L_1..L_{n-1}; L_n = R_1) and sign: (s, a, b) with ||(a, b)|| <= s.
    let right: Vec<[usize; 2]> = (0..n).map(|_| [c.vars(3), c.vars(3)]).collect();
    let left: Vec<[usize; 2]> = (0..n - 1).map(|_| [c.vars(3), c.vars(3)]).collect();
    // Active on samples lo..=hi, inactive on the others (an interval at the start or the end).
    let cone = |c: &mut Conic, v: usize, (lo, hi): (usize, usize)| {
        c.q[v] = lambda;
        c.soc(v, 3);
        for i in [lo, hi] {
            c.nonneg(&[(v + 1, t[i]), (v + 2, 1.0)]);
        }
        let off = if lo > 0 {
            Some((0, lo - 1))
        } else if hi + 1 < n {
            Some((hi + 1, n - 1))
        } else {
            None
        };
        if let Some((a, b)) = off {
            for i in [a, b] {
                c.nonneg(&[(v + 1, -t[i]), (v + 2, -1.0)]);
            }
        }
    };
    for (k, blk) in right.iter().enumerate() {
        for &v in blk {
            cone(&mut c, v, (k, n - 1));
        }
    }
    for (k, blk) in left.iter().enumerate() {
        for &v in blk {
            cone(&mut c, v, (0, k));
        }
    }
    // Prefix sums of the R coefficients, suffix sums of the L ones: (a, b) each.
    let (pre, suf) = (c.vars(2 * n), c.vars(2 * n));
    for i in 0..n {
        for m in 0..2 {
            // pre_i = pre_{i-1} + (v - w) of R_i (component m).
            let mut terms = vec![(pre + 2 * i + m, 1.0), (right[i][0] + 1 + m, -1.0), (right[i][1] + 1 + m, 1.0)];
            if i > 0 {
                terms.push((pre + 2 * (i - 1) + m, -1.0));
            }
            c.eq(&terms, 0.0);
            // suf_i = suf_{i+1} + (v - w) of L_i.
            let mut terms = vec![(suf + 2 * i + m, 1.0)];
            if i < n - 1 {
                terms.extend([(left[i][0] + 1 + m, -1.0), (left[i][1] + 1 + m, 1.0), (suf + 2 * (i + 1) + m, -1.0)]);
            }
            c.eq(&terms, 0.0);
        }
        c.eq(
            &[
                (z + i, 1.0),
                (pre + 2 * i, -t[i]),
                (suf + 2 * i, -t[i]),
                (pre + 2 * i + 1, -1.0),
                (suf + 2 * i + 1, -1.0),
            ],
            0.0,
        );
    }
    c.loss(&(z..z + n).collect::<Vec<_>>(), y, loss);
    c.solve()
}

/// 1-D inputs: `n` sorted points in `[-2, 2]`, `y = sin(2 t)` plus noise.
fn data_1d(n: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let mut t: Vec<f64> = (0..n).map(|_| 4.0 * rng.uniform() - 2.0).collect();
    t.sort_by(f64::total_cmp);
    let y = t.iter().map(|v| (2.0 * v).sin() + 0.1 * rng.normal()).collect();
    (Mat::from_fn(n, 1, |i, _| t[i]), y)
}

/// 2-D inputs: Gaussian points, `y` a sum of two ReLUs plus noise.
fn data_2d(n: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let x = rng.normal_mat(n, 2);
    let y = (0..n)
        .map(|i| (x[(i, 0)] - 0.5 * x[(i, 1)]).max(0.0) - (x[(i, 1)] + 0.3).max(0.0) + 0.1 * rng.normal())
        .collect();
    (x, y)
}

/// 3-D inputs: Gaussian points, `y` a sum of two ReLUs plus noise.
fn data_3d(n: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    data_nd(n, 3, seed)
}

/// `d >= 3` Gaussian inputs, `y = (x_0 - x_1 / 2 + 0.3 x_{d-1})_+ - (x_2 + 0.3)_+` plus noise.
fn data_nd(n: usize, d: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let x = rng.normal_mat(n, d);
    let y = (0..n)
        .map(|i| {
            (x[(i, 0)] - 0.5 * x[(i, 1)] + 0.3 * x[(i, d - 1)]).max(0.0) - (x[(i, 2)] + 0.3).max(0.0)
                + 0.1 * rng.normal()
        })
        .collect();
    (x, y)
}

fn problem(x: &Mat<f64>, y: &[f64]) -> (ReluNetwork, Observations) {
    let net = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Exact).unwrap();
    let obs = Observations::new(Mat::from_fn(y.len(), 1, |i, _| y[i]), None).unwrap();
    (net, obs)
}

/// The returned weights are the certified ones: their objective, recomputed here from the layers
/// (`1/2 ||(X_aug W1)_+ W2^T - y||^2 + lambda sum_j ||u_j|| |v_j|`), is the certificate's, and its lower bound on
/// the optimum is below it (a run may answer with the refinement's fully corrective model instead of its
/// descended weights).
fn assert_answer_is_evaluated(name: &str, xa: &Mat<f64>, y: &[f64], lambda: f64, w: &Weights, c: &Certificate) {
    assert_answer_is_evaluated_with(name, xa, y, lambda, Loss::Squared, w, c);
}

/// [`assert_answer_is_evaluated`] for the squared or the logistic loss (`log(1 + e^z) - y z`).
fn assert_answer_is_evaluated_with(
    name: &str,
    xa: &Mat<f64>,
    y: &[f64],
    lambda: f64,
    kind: Loss,
    w: &Weights,
    c: &Certificate,
) {
    let (w1, w2) = (&w.layers[0], &w.layers[1]);
    let mut loss = 0.0;
    for i in 0..xa.nrows() {
        let out: f64 = (0..w1.ncols())
            .map(|j| (0..xa.ncols()).map(|k| xa[(i, k)] * w1[(k, j)]).sum::<f64>().max(0.0) * w2[(0, j)])
            .sum();
        loss += match kind {
            Loss::Logistic => out.max(0.0) + (-out.abs()).exp().ln_1p() - y[i] * out,
            _ => 0.5 * (out - y[i]).powi(2),
        };
    }
    let reg: f64 = (0..w1.ncols()).map(|j| w1.col(j).norm_l2() * w2[(0, j)].abs()).sum();
    let f = loss + lambda * reg;
    assert!(
        (f - c.objective).abs() <= 1e-10 * f,
        "{name}: the answer's objective {f} is not the certificate's {}",
        c.objective
    );
    assert_eq!(c.subnetworks, (0..w1.ncols()).filter(|&j| w1.col(j).norm_l2() * w2[(0, j)].abs() > 0.0).count());
    if let Some(lb) = c.optimum_lower_bound {
        assert!(lb <= f, "{name}: lower bound {lb} above the answer's objective {f}");
    }
}

#[test]
fn fits_reach_the_convex_optimum_with_a_certificate() {
    let cases: Vec<(&str, Mat<f64>, Vec<f64>)> = vec![
        ("1d-12", data_1d(12, 1).0, data_1d(12, 1).1),
        ("1d-25", data_1d(25, 2).0, data_1d(25, 2).1),
        ("2d-10", data_2d(10, 3).0, data_2d(10, 3).1),
        ("2d-14", data_2d(14, 4).0, data_2d(14, 4).1),
    ];
    for (name, x, y) in &cases {
        let xa = augment(x.as_ref(), true);
        for lambda in [0.02, 0.2] {
            let fstar = convex_optimum(&xa, y, lambda);
            let (net, obs) = problem(x, y);
            for init in [0, 2, 8] {
                let model = FitParams::new(lambda).tol(1e-6).init_width(init).seed(5).validate().unwrap();
                let m = model.fit(&net, &obs).unwrap();
                let c = &m.certificate;
                let rel = (c.objective - fstar) / fstar;
                assert!(
                    rel.abs() <= 1e-6,
                    "{name} lambda={lambda} init={init}: f={} F*={fstar} rel={rel:e}",
                    c.objective
                );
                assert_eq!(c.status, Status::Certified, "{name} lambda={lambda} init={init}: {}", c.summary());
                assert!(c.polar_exact);
                assert_answer_is_evaluated(name, &xa, y, lambda, &m.weights, c);
                let gap = c.gap_bound.unwrap();
                assert!(gap >= c.objective - fstar - 1e-9 * fstar, "{name}: gap bound {gap} below true gap");
            }
        }
    }
}

/// Fits of the one-output network on inputs `x` (plus bias), from each initial width in `inits`, reach the convex
/// optimum `fstar` within 1e-6 relative, `certified`, with the answer's objective recomputed from its layers and the
/// lower bound on the optimum not above `fstar`.
#[allow(clippy::too_many_arguments)]
fn assert_fits_reach(
    name: &str,
    x: &Mat<f64>,
    target: &[f64],
    lambda: f64,
    kind: Loss,
    fstar: f64,
    inits: &[usize],
    seed: u64,
) {
    let xa = augment(x.as_ref(), true);
    let net = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Exact).unwrap();
    let obs = Observations::new(Mat::from_fn(target.len(), 1, |i, _| target[i]), None).unwrap();
    for &init in inits {
        let params = FitParams::new(lambda).loss(kind).tol(1e-6).init_width(init).seed(seed);
        let m = params.validate().unwrap().fit(&net, &obs).unwrap();
        let c = &m.certificate;
        let rel = (c.objective - fstar) / fstar;
        let at = format!("{name} {kind:?} lambda={lambda} init={init}");
        assert!(rel.abs() <= 1e-6, "{at}: f={} F*={fstar} rel={rel:e}", c.objective);
        assert_eq!(c.status, Status::Certified, "{at}: {}", c.summary());
        assert_answer_is_evaluated_with(&at, &xa, target, lambda, kind, &m.weights, c);
        assert!(c.optimum_lower_bound.unwrap() <= fstar * (1.0 + 1e-8), "{at}: lower bound above F*");
    }
}

/// The logistic loss: fits reach the convex program's optimum over all activation patterns (Clarabel, with
/// exponential cones), certified, from several initial widths, in 2-D and 3-D inputs plus bias.
#[test]
fn logistic_fits_reach_the_convex_optimum_with_a_certificate() {
    for (name, (x, y)) in [("2d-14", data_2d(14, 4)), ("3d-20", data_3d(20, 7))] {
        let xa = augment(x.as_ref(), true);
        let labels: Vec<f64> = y.iter().map(|v| if *v > 0.0 { 1.0 } else { 0.0 }).collect();
        for lambda in [0.05, 0.5] {
            let fstar = convex_optimum_loss(&xa, &labels, lambda, Loss::Logistic);
            assert_fits_reach(name, &x, &labels, lambda, Loss::Logistic, fstar, &[0, 3, 8], 2);
        }
    }
}

/// The cones reduced to their facets (2-D and 3-D inputs plus bias) give the same convex optimum as every row.
#[test]
fn facet_reduced_cones_give_the_same_optimum() {
    // (3-D, n = 16, seed 21: a first version that judged planes by an absolute tolerance dropped facets there.)
    for (x, y) in [data_2d(12, 41), data_3d(12, 42), data_3d(16, 21)] {
        let xa = augment(x.as_ref(), true);
        let (reduced, full) = (
            convex_optimum_with(&xa, &y, 0.05, Loss::Squared, true),
            convex_optimum_with(&xa, &y, 0.05, Loss::Squared, false),
        );
        assert!((reduced - full).abs() <= 1e-8 * full, "reduced {reduced} against every row {full}");
    }
}

/// 1-D inputs at the scale (n = 2000): the fit reaches the optimum over all 4000 activation patterns, from
/// the sparse formulation of [`convex_optimum_1d`], for the squared and the logistic loss.
#[test]
fn fits_at_2000_samples_reach_the_convex_optimum_in_1d() {
    // The sparse formulation is the dense one (every pattern, every cone row) on a small problem.
    let (xs, ys) = data_1d(12, 3);
    let ts: Vec<f64> = (0..12).map(|i| xs[(i, 0)]).collect();
    let ls: Vec<f64> = ys.iter().map(|v| if *v > 0.0 { 1.0 } else { 0.0 }).collect();
    for (kind, target) in [(Loss::Squared, &ys), (Loss::Logistic, &ls)] {
        let (sparse, dense) = (
            convex_optimum_1d(&ts, target, 0.1, kind),
            convex_optimum_loss(&augment(xs.as_ref(), true), target, 0.1, kind),
        );
        assert!((sparse - dense).abs() <= 1e-7 * dense, "{kind:?}: sparse {sparse} against dense {dense}");
    }
    let (x, y) = data_1d(2000, 11);
    let t: Vec<f64> = (0..x.nrows()).map(|i| x[(i, 0)]).collect();
    let labels: Vec<f64> = y.iter().map(|v| if *v > 0.0 { 1.0 } else { 0.0 }).collect();
    for (kind, target, lambda) in [(Loss::Squared, &y, 1.0), (Loss::Logistic, &labels, 1.0)] {
        let fstar = convex_optimum_1d(&t, target, lambda, kind);
        assert_fits_reach("1d-2000", &x, target, lambda, kind, fstar, &[0, 5, 20], 4);
    }
}

/// 2-D inputs plus bias at the scale (n = 60, 3541 activation patterns): the fit reaches the convex
/// program's optimum over all of them (Clarabel), certified, for the squared and the logistic loss.
#[test]
fn fits_at_60_samples_reach_the_convex_optimum_in_2d() {
    let (x, y) = data_2d(60, 21);
    let xa = augment(x.as_ref(), true);
    let labels: Vec<f64> = y.iter().map(|v| if *v > 0.0 { 1.0 } else { 0.0 }).collect();
    for (kind, target, lambda) in [(Loss::Squared, &y, 0.1), (Loss::Logistic, &labels, 0.2)] {
        let fstar = convex_optimum_loss(&xa, target, lambda, kind);
        assert_fits_reach("2d-60", &x, target, lambda, kind, fstar, &[0, 6], 8);
    }
}

/// 3-D inputs plus bias (rank 4, the enumeration inside every hyperplane): the fit reaches the convex program's
/// optimum over all activation patterns, certified, from several initial widths, for the squared loss.
#[test]
fn rank4_fits_reach_the_convex_optimum_with_a_certificate() {
    let (x, y) = data_3d(20, 12);
    let xa = augment(x.as_ref(), true);
    for lambda in [0.05, 0.3] {
        let fstar = convex_optimum(&xa, &y, lambda);
        let (net, obs) = problem(&x, &y);
        assert!(net.polar_is_exact());
        for init in [0, 3, 10] {
            let m =
                FitParams::new(lambda).tol(1e-6).init_width(init).seed(3).validate().unwrap().fit(&net, &obs).unwrap();
            let c = &m.certificate;
            let rel = (c.objective - fstar) / fstar;
            assert!(rel.abs() <= 1e-6, "lambda={lambda} init={init}: f={} F*={fstar} rel={rel:e}", c.objective);
            assert_eq!(c.status, Status::Certified, "lambda={lambda} init={init}: {}", c.summary());
            assert!(c.polar_exact);
            assert_answer_is_evaluated("3d-20", &xa, &y, lambda, &m.weights, c);
            assert!(c.gap_bound.unwrap() >= c.objective - fstar - 1e-9 * fstar);
            assert!(c.optimum_lower_bound.unwrap() <= fstar * (1.0 + 1e-9));
        }
    }
}

/// The branch-and-bound polar (`--polar bab`) on 3-D and 4-D inputs plus bias, where no enumeration runs: fits
/// reach the convex program's optimum over all activation patterns, certified only through closed bounds.
#[test]
fn bab_fits_reach_the_convex_optimum_with_a_certificate() {
    let cases = [("3d-16", data_3d(16, 21)), ("4d-13", data_nd(13, 4, 22))];
    for (name, (x, y)) in &cases {
        let xa = augment(x.as_ref(), true);
        let net = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Bab).unwrap();
        assert!(!net.polar_is_exact());
        let obs = Observations::new(Mat::from_fn(y.len(), 1, |i, _| y[i]), None).unwrap();
        for lambda in [0.05, 0.3] {
            let fstar = convex_optimum(&xa, y, lambda);
            for init in [0, 4] {
                let m = FitParams::new(lambda)
                    .tol(1e-6)
                    .init_width(init)
                    .seed(3)
                    .polar_seconds(Some(30.0))
                    .validate()
                    .unwrap()
                    .fit(&net, &obs)
                    .unwrap();
                let c = &m.certificate;
                let rel = (c.objective - fstar) / fstar;
                assert!(
                    rel.abs() <= 1e-6,
                    "{name} lambda={lambda} init={init}: f={} F*={fstar} rel={rel:e}",
                    c.objective
                );
                assert_eq!(c.status, Status::Certified, "{name} lambda={lambda} init={init}: {}", c.summary());
                assert!(c.polar_method.contains("branch and bound"), "{}", c.polar_method);
                assert!(c.polar_upper.unwrap() >= c.polar_lower);
                assert_answer_is_evaluated(name, &xa, y, lambda, &m.weights, c);
                assert!(c.gap_bound.unwrap() >= c.objective - fstar - 1e-9 * fstar);
                assert!(c.optimum_lower_bound.unwrap() <= fstar * (1.0 + 1e-9));
            }
        }
    }
}

/// A proof budget far too short for the branch and bound (the schedule doubles it, a converged run gets a closing
/// proof): the run still ends within its limit with a valid bracket, and a certificate only with a closed bound.
#[test]
fn bab_fits_with_a_tiny_proof_budget_end_with_a_valid_bracket() {
    let (x, y) = data_nd(14, 4, 31);
    let xa = augment(x.as_ref(), true);
    let net = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Bab).unwrap();
    let obs = Observations::new(Mat::from_fn(y.len(), 1, |i, _| y[i]), None).unwrap();
    let lambda = 0.3;
    let fstar = convex_optimum(&xa, &y, lambda);
    let m = FitParams::new(lambda)
        .tol(1e-6)
        .seed(5)
        .polar_seconds(Some(1e-6))
        .max_seconds(30.0)
        .validate()
        .unwrap()
        .fit(&net, &obs)
        .unwrap();
    let c = &m.certificate;
    assert!(m.seconds < 45.0, "{} s", m.seconds);
    assert!(c.polar_upper.unwrap() >= c.polar_lower, "{}", c.summary());
    assert!(c.optimum_lower_bound.unwrap() <= fstar * (1.0 + 1e-9) && c.objective >= fstar * (1.0 - 1e-9));
    if c.status == Status::Certified {
        assert!((c.objective - fstar) / fstar <= 1e-6, "{}", c.summary());
    } else {
        assert!(c.gap_bound.unwrap() >= c.objective - fstar - 1e-9 * fstar, "{}", c.summary());
    }
}

#[test]
fn certify_bounds_the_gap_of_suboptimal_networks() {
    let (x, y) = data_2d(12, 7);
    let xa = augment(x.as_ref(), true);
    let lambda = 0.1;
    let fstar = convex_optimum(&xa, &y, lambda);
    let (net, obs) = problem(&x, &y);
    let mut rng = Rng::new(9);
    // Random networks, and a truncated optimum (its largest unit removed).
    let opt = FitParams::new(lambda).tol(1e-6).validate().unwrap().fit(&net, &obs).unwrap();
    let mut truncated = opt.weights.clone();
    let keep: Vec<bool> = (0..truncated.width()).map(|i| i != 0).collect();
    truncated.retain(&keep);
    let mut cases = vec![truncated];
    for r in [1, 3, 10] {
        cases.push(Weights { layers: vec![rng.normal_mat(3, r), rng.normal_mat(1, r)] });
    }
    for w in cases {
        let c = certify(&net, &obs, Loss::Squared, lambda, &w, 1e-6, 1).unwrap();
        let true_gap = c.objective - fstar;
        assert!(true_gap > 1e-4, "test case is not suboptimal");
        let gap = c.gap_bound.expect("exact polar gives a gap bound");
        assert!(gap >= true_gap * (1.0 - 1e-9), "gap bound {gap} < true gap {true_gap}");
        assert_ne!(c.status, Status::Certified);
        assert!(c.polar_lower > 1.0, "a better unit exists and must be found: {}", c.polar_lower);
    }
}

/// `d <G, Phi> / dW` against central finite differences, away from the kinks.
#[test]
fn layer_gradients_match_finite_differences() {
    let mut rng = Rng::new(4);
    let x = rng.normal_mat(15, 3);
    for outputs in [1, 3] {
        let net = ReluNetwork::new(x.as_ref(), outputs, true, Norm::L2, PolarMode::Auto).unwrap();
        let w = Weights { layers: vec![rng.normal_mat(4, 5), rng.normal_mat(outputs, 5)] };
        let g = rng.normal_mat(15, outputs);
        let par = faer::Par::Seq;
        let f = |w: &Weights| {
            let z = net.forward(w, par);
            (0..outputs).map(|c| (0..15).map(|i| g[(i, c)] * z[(i, c)]).sum::<f64>()).sum::<f64>()
        };
        for k in 0..2 {
            let grad = net.layer_gradient(&w, k, g.as_ref(), par);
            for a in 0..w.layers[k].nrows() {
                for i in 0..5 {
                    let h = 1e-6;
                    let mut wp = w.clone();
                    wp.layers[k][(a, i)] += h;
                    let mut wm = w.clone();
                    wm.layers[k][(a, i)] -= h;
                    let fd = (f(&wp) - f(&wm)) / (2.0 * h);
                    assert!((fd - grad[(a, i)]).abs() < 1e-6 * (1.0 + fd.abs()), "k={k}: {fd} vs {}", grad[(a, i)]);
                }
            }
        }
        // Positive homogeneity of degree 2 (Euler): <G, Phi(W)> = 1/2 sum_k <W^k, d<G,Phi>/dW^k>.
        let euler: f64 = (0..2)
            .map(|k| {
                let gr = net.layer_gradient(&w, k, g.as_ref(), par);
                (0..gr.ncols()).map(|i| dot(gr.col_as_slice(i), w.layers[k].col_as_slice(i))).sum::<f64>()
            })
            .sum();
        assert!((0.5 * euler - f(&w)).abs() < 1e-9 * f(&w).abs().max(1.0));
    }
}

/// Several outputs with `||v||_1`: C scalar problems, so the polar is exact and the fit is certified; the optimum
/// is the sum of the per-output optima (the regularizer separates over outputs).
#[test]
fn l1_output_norm_separates_over_outputs() {
    let (x, y1) = data_1d(14, 21);
    let y2: Vec<f64> = (0..14).map(|i| x[(i, 0)].abs() - 0.5).collect();
    let lambda = 0.05;
    let xa = augment(x.as_ref(), true);
    let fstar = convex_optimum(&xa, &y1, lambda) + convex_optimum(&xa, &y2, lambda);
    let net = ReluNetwork::new(x.as_ref(), 2, true, Norm::L1, PolarMode::Exact).unwrap();
    let obs = Observations::new(Mat::from_fn(14, 2, |i, c| if c == 0 { y1[i] } else { y2[i] }), None).unwrap();
    let m = FitParams::new(lambda).tol(1e-6).validate().unwrap().fit(&net, &obs).unwrap();
    let c = &m.certificate;
    assert_eq!(c.status, Status::Certified, "{}", c.summary());
    assert!(((c.objective - fstar) / fstar).abs() <= 1e-6, "{} vs {fstar}", c.objective);
}

/// `max_{||u|| = 1} ||Q^T (X u)_+||` for 2-column `X` (1-D inputs plus bias), exactly: on each arc between
/// switching angles the pattern `S` is fixed and `||Q_S^T X_S u||^2 = a + b cos 2t + c sin 2t`, whose maximum over
/// the arc is at its critical angle or an end.
fn l2_polar_1d_reference(xa: &Mat<f64>, q: &Mat<f64>) -> f64 {
    use std::f64::consts::PI;
    let (n, m) = (xa.nrows(), q.ncols());
    let mut cuts: Vec<f64> = vec![0.0, 2.0 * PI];
    for i in 0..n {
        let t = (-xa[(i, 0)]).atan2(xa[(i, 1)]).rem_euclid(PI);
        cuts.extend([t, t + PI]);
    }
    cuts.sort_by(f64::total_cmp);
    let mut best = 0.0f64;
    for w in cuts.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        if hi <= lo {
            continue;
        }
        let mid = 0.5 * (lo + hi);
        // M = Q_S^T X_S (m x 2), A = M^T M.
        let mut mm = vec![[0.0; 2]; m];
        for i in (0..n).filter(|&i| xa[(i, 0)] * mid.cos() + xa[(i, 1)] * mid.sin() > 0.0) {
            for (c, row) in mm.iter_mut().enumerate() {
                row[0] += q[(i, c)] * xa[(i, 0)];
                row[1] += q[(i, c)] * xa[(i, 1)];
            }
        }
        let a11: f64 = mm.iter().map(|r| r[0] * r[0]).sum();
        let a22: f64 = mm.iter().map(|r| r[1] * r[1]).sum();
        let a12: f64 = mm.iter().map(|r| r[0] * r[1]).sum();
        let f = |t: f64| a11 * t.cos().powi(2) + 2.0 * a12 * t.cos() * t.sin() + a22 * t.sin().powi(2);
        let crit = 0.5 * a12.atan2(0.5 * (a11 - a22));
        let mut v = f(lo).max(f(hi));
        for k in -2..=4 {
            let t = crit + k as f64 * PI;
            if t > lo && t < hi {
                v = v.max(f(t));
            }
        }
        best = best.max(v.max(0.0).sqrt());
    }
    best
}

/// Several outputs with `||v||_2` (weight decay): the cover of the output directions closes the bracket on the
/// exact polar (1-D inputs plus bias, where it has a closed form per arc), with enumerated scalar polars and with
/// branch-and-bound ones, at the default target 1 (far below these polars) and at target 0.
#[test]
fn l2_output_polar_closes_on_the_exact_polar() {
    let mut rng = Rng::new(17);
    let (x, _) = data_1d(20, 8);
    let exact = ReluNetwork::new(x.as_ref(), 3, true, Norm::L2, PolarMode::Exact).unwrap();
    let bab = ReluNetwork::new(x.as_ref(), 3, true, Norm::L2, PolarMode::Bab).unwrap();
    let xa = augment(x.as_ref(), true);
    for outputs in [2, 3] {
        let exact2 = ReluNetwork::new(x.as_ref(), outputs, true, Norm::L2, PolarMode::Exact).unwrap();
        let bab2 = ReluNetwork::new(x.as_ref(), outputs, true, Norm::L2, PolarMode::Bab).unwrap();
        let nets = if outputs == 3 { [&exact, &bab] } else { [&exact2, &bab2] };
        for (trial, net) in (0..10).zip(nets.into_iter().cycle()) {
            let q = rng.normal_mat(20, outputs);
            let reference = l2_polar_1d_reference(&xa, &q);
            let mut opts = gonn::core::polar::PolarOptions::default();
            if trial % 4 >= 2 {
                opts.target = 0.0;
            }
            let polar = net.polar(q.as_ref(), &opts, &mut rng);
            let upper = polar.upper.unwrap();
            assert!(
                polar.exact && (polar.method.contains("closed") || polar.method.contains("enumeration")),
                "{}",
                polar.method
            );
            assert!(upper >= reference * (1.0 - 1e-12), "upper {upper} below the polar {reference}");
            assert!(upper <= reference * (1.0 + 1e-7), "upper {upper} above the polar {reference}");
            assert!(polar.lower <= reference * (1.0 + 1e-12), "lower {} above the polar {reference}", polar.lower);
            assert!(polar.lower >= reference * (1.0 - 1e-7), "lower {} below the polar {reference}", polar.lower);
            // The atom attains the lower bound.
            let (u, v) = (polar.atom.layers[0].col_as_slice(0), polar.atom.layers[1].col_as_slice(0));
            let h: Vec<f64> = (0..20).map(|i| (xa[(i, 0)] * u[0] + xa[(i, 1)] * u[1]).max(0.0)).collect();
            let attained: f64 = (0..outputs).map(|c| v[c] * (0..20).map(|i| q[(i, c)] * h[i]).sum::<f64>()).sum();
            assert!((attained - polar.lower).abs() <= 1e-9 * reference, "{attained} vs {}", polar.lower);
        }
    }
}

/// Several outputs with `||v||_2` and a rank-one target `Y = y a^T` (`||a|| = 1`): projecting the outputs on `a`
/// never increases the loss (`||R||_F >= ||R a||`) nor the regularizer (`||v_i|| >= |a^T v_i|`), and `V = beta a^T`
/// attains the scalar objective, so the optimum is the scalar problem's on `y`: the convex program over all
/// patterns (Clarabel). The fit must reach it with a certificate (1-D and 2-D inputs; enumerated and
/// branch-and-bound scalar polars under the cover of the output directions).
#[test]
fn l2_output_norm_with_a_rank_one_target_reaches_the_scalar_optimum() {
    let cases = [
        (data_1d(14, 21), vec![0.6, 0.8], PolarMode::Exact),
        (data_1d(12, 5), vec![-0.8, 0.6], PolarMode::Bab),
        (data_2d(14, 9), vec![2.0 / 3.0, -1.0 / 3.0, 2.0 / 3.0], PolarMode::Exact),
    ];
    let lambda = 0.05;
    for ((x, y), a, mode) in cases {
        let n = x.nrows();
        let xa = augment(x.as_ref(), true);
        let fstar = convex_optimum(&xa, &y, lambda);
        let net = ReluNetwork::new(x.as_ref(), a.len(), true, Norm::L2, mode).unwrap();
        let obs = Observations::new(Mat::from_fn(n, a.len(), |i, c| y[i] * a[c]), None).unwrap();
        let m = FitParams::new(lambda).tol(1e-6).validate().unwrap().fit(&net, &obs).unwrap();
        let c = &m.certificate;
        assert_eq!(c.status, Status::Certified, "{mode:?} {}: {}", a.len(), c.summary());
        assert!(((c.objective - fstar) / fstar).abs() <= 1e-6, "{} vs {fstar}", c.objective);
        assert!(
            c.optimum_lower_bound.unwrap() <= fstar * (1.0 + 1e-9),
            "lower bound {:?} above F*",
            c.optimum_lower_bound
        );
    }
}

/// Several outputs with `||v||_2` on generic targets (no closed form): fits from different starts are certified
/// and agree on the optimum within their proven gaps, and each one's proven lower bound stays below the other's
/// objective.
#[test]
fn l2_output_fits_from_different_starts_agree() {
    let (x, y) = data_2d(16, 13);
    let targets = Mat::from_fn(16, 3, |i, c| match c {
        0 => y[i],
        1 => (x[(i, 0)] - x[(i, 1)]).max(0.0) - 0.3,
        _ => x[(i, 0)] * x[(i, 1)],
    });
    let obs = Observations::new(targets, None).unwrap();
    let net = ReluNetwork::new(x.as_ref(), 3, true, Norm::L2, PolarMode::Exact).unwrap();
    let fits: Vec<_> = [(0, 1), (6, 2), (20, 3)]
        .into_iter()
        .map(|(width, seed)| {
            let m = FitParams::new(0.05).tol(1e-6).init_width(width).seed(seed).validate().unwrap().fit(&net, &obs);
            m.unwrap().certificate
        })
        .collect();
    for a in &fits {
        assert_eq!(a.status, Status::Certified, "{}", a.summary());
        for b in &fits {
            assert!(
                a.optimum_lower_bound.unwrap() <= b.objective * (1.0 + 1e-12),
                "{:?} > {}",
                a.optimum_lower_bound,
                b.objective
            );
        }
    }
}

/// The logistic loss with exact polars: the gap bound is a valid bound at every iterate.
#[test]
fn logistic_gap_bound_is_valid() {
    for (x, y) in [data_2d(16, 12), data_3d(30, 4)] {
        let n = x.nrows();
        let labels = Mat::from_fn(n, 1, |i, _| if y[i] > 0.0 { 1.0 } else { 0.0 });
        let net = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Exact).unwrap();
        let obs = Observations::new(labels, None).unwrap();
        let lambda = 0.5;
        let m = FitParams::new(lambda).loss(Loss::Logistic).tol(1e-6).validate().unwrap().fit(&net, &obs).unwrap();
        let best = m.certificate.objective;
        let lower = m.certificate.optimum_lower_bound.unwrap();
        assert!(lower <= best);
        assert_eq!(m.certificate.status, Status::Certified, "{}-D: {}", x.ncols(), m.certificate.summary());
        // Every recorded gap bound is at least the distance to the best objective found.
        for r in &m.history {
            if let Some(g) = r.gap_bound {
                assert!(g >= r.objective - best - 1e-9, "gap bound {g} below {}", r.objective - best);
            }
        }
    }
}

/// Theorem 1 with the exact polar: appending an all-zero unit to a local minimum W gives a local minimum exactly
/// when the exact polar is at most 1, and every such local minimum has the optimal value of the convex program
/// (Clarabel). Local minima of plain descent (no growth) fail the test, and growing their zero unit along the
/// polar's unit decreases f.
#[test]
fn theorem_1_local_minima_with_a_zero_unit_are_global() {
    use gonn::core::descent::DescentOptions;
    use gonn::core::problem::Problem;
    use gonn::core::Regularizer;
    use gonn::families::deep::{Activation, Architecture, DeepNetwork};
    let (x, y) = data_1d(20, 11);
    let lambda = 0.05;
    let fstar = convex_optimum(&augment(x.as_ref(), true), &y, lambda);
    let (net, obs) = problem(&x, &y);
    let p = Problem { net: &net, loss: Loss::Squared, obs: &obs, lambda, par: faer::Par::Seq };
    // The same units as a deep family, for plain proximal-gradient descent from random starts.
    let deep = DeepNetwork::new(
        x.as_ref(),
        1,
        Architecture::parse("mlp:1", Activation::Relu).unwrap(),
        None,
        true,
        Regularizer::Product,
    )
    .unwrap();
    let pd = Problem { net: &deep, ..p };
    let mut rng = Rng::new(3);
    let mut minima = Vec::new();
    for r in [1, 2, 3] {
        let mut w = Weights { layers: vec![rng.normal_mat(2, r), rng.normal_mat(1, r)] };
        w.scale_all(0.3);
        for _ in 0..4 {
            pd.net.descend(&pd, &mut w, &DescentOptions::default());
            if w.width() > 0 {
                p.net.descend(&p, &mut w, &DescentOptions::default());
            }
        }
        minima.push(w);
    }
    for init in [0, 4] {
        minima.push(
            FitParams::new(lambda).tol(1e-9).init_width(init).validate().unwrap().fit(&net, &obs).unwrap().weights,
        );
    }
    let (mut passed, mut failed) = (0, 0);
    for w in &minima {
        let ev = p.evaluate(w);
        let q = Mat::from_fn(y.len(), 1, |i, _| -ev.g[(i, 0)] / lambda);
        let polar = net.polar(q.as_ref(), &gonn::core::polar::PolarOptions::default(), &mut rng);
        assert!(polar.exact);
        let rho = polar.upper.unwrap();
        // Near an optimum the polar exceeds 1 by about the descent's error; a local minimum that is not global
        // has a polar clearly above 1.
        if rho <= 1.0 + 1e-4 {
            passed += 1;
            let rel = (ev.objective - fstar) / fstar;
            assert!(rel.abs() <= 1e-6, "a local minimum with a zero unit is {rel:e} above the optimum");
        } else if rho > 1.0 + 1e-3 {
            failed += 1;
            assert!(ev.objective > fstar * (1.0 + 1e-6));
            let mut grown = w.clone();
            grown.push(&polar.atom, &[1e-3, 1e-3]);
            assert!(p.objective(&grown) < ev.objective, "the zero unit must be able to grow");
        }
    }
    assert!(passed >= 2 && failed >= 1, "both kinds of local minima must occur: {passed} passed, {failed} failed");
}

/// Raw inputs on large or very different scales (years, `x ~ 1e5`, a feature of 1e5 next to one in [-0.5, 0.5],
/// nearly collinear points): the problem as posed (the bias is regularized, so scaling the inputs changes it) must
/// be certified as posed. Against the convex program: a proven gap bound is never below the true gap, and
/// `certified` means the objective is within the tolerance of the optimum.
#[test]
fn badly_scaled_inputs_get_honest_certificates() {
    let mut rng = Rng::new(21);
    let mut cases: Vec<(&str, Mat<f64>, Vec<f64>, f64)> = Vec::new();
    let t: Vec<f64> = (0..12).map(|_| 4.0 * rng.uniform() - 2.0).collect();
    let y1: Vec<f64> = t.iter().map(|v| (2.0 * v).sin() + 0.1 * rng.normal()).collect();
    for (name, offset, spread) in [("years", 2005.0, 7.5), ("1e4", 1e4, 1.0), ("1e5", 1e5, 1.0)] {
        cases.push((name, Mat::from_fn(12, 1, |i, _| offset + spread * t[i] / 2.0), y1.clone(), 0.02));
    }
    let x2 = rng.normal_mat(12, 2);
    let y2: Vec<f64> = (0..12).map(|i| (x2[(i, 0)] - x2[(i, 1)]).max(0.0) + 0.1 * rng.normal()).collect();
    cases.push((
        "1e5 next to 0.5",
        Mat::from_fn(12, 2, |i, j| if j == 0 { 1e5 + x2[(i, 0)] } else { 0.5 * x2[(i, 1)] }),
        y2.clone(),
        0.02,
    ));
    cases.push((
        "nearly collinear",
        Mat::from_fn(12, 2, |i, j| x2[(i, 0)] + if j == 1 { 1e-7 * x2[(i, 1)] } else { 0.0 }),
        y2,
        0.02,
    ));
    for (name, x, y, lambda) in &cases {
        let xa = augment(x.as_ref(), true);
        let fstar = convex_optimum(&xa, y, *lambda);
        let net = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Auto).unwrap();
        let obs = Observations::new(Mat::from_fn(y.len(), 1, |i, _| y[i]), None).unwrap();
        let m = FitParams::new(*lambda).tol(1e-6).max_seconds(20.0).validate().unwrap().fit(&net, &obs).unwrap();
        let c = &m.certificate;
        let true_gap = c.objective - fstar;
        eprintln!(
            "{name}: f {} F* {fstar} status {} gap bound {:?} exact {}",
            c.objective, c.status, c.gap_bound, c.polar_exact
        );
        if let Some(g) = c.gap_bound {
            assert!(g >= true_gap - 1e-7 * fstar, "{name}: gap bound {g} below the true gap {true_gap}");
        }
        if let Some(lb) = c.optimum_lower_bound {
            assert!(lb <= fstar * (1.0 + 1e-7) + 1e-9, "{name}: lower bound {lb} above the optimum {fstar}");
        }
        if c.status == Status::Certified {
            assert!(true_gap <= 2e-6 * c.objective, "{name}: certified at f {} but F* = {fstar}", c.objective);
        }
    }
}

/// `--polar auto` enumerates 2-D inputs (rank 3 with the bias) while the arrangement's sample order fits its cache
/// (`(4 n + 120) n` bytes), and 1-D inputs at any size.
#[test]
fn auto_polar_limits_for_2d_inputs() {
    use gonn::families::relu::polar::ARRANGEMENT_CACHE_BYTES;
    use gonn::families::relu::AUTO_EXACT_MAX_SAMPLES_RANK3 as LIMIT;
    const { assert!((4 * LIMIT + 120) * LIMIT <= ARRANGEMENT_CACHE_BYTES, "the limit's sample order is not cached") };
    let mut rng = Rng::new(3);
    let net = |x: &Mat<f64>| ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Auto).unwrap();
    assert!(net(&rng.normal_mat(LIMIT, 2)).polar_is_exact());
    assert!(!net(&rng.normal_mat(LIMIT + 1, 2)).polar_is_exact());
    assert!(net(&rng.normal_mat(3 * LIMIT, 1)).polar_is_exact());
}

/// `--polar auto` enumerates 3-D inputs (rank 4 with the bias) up to its measured sample limit, then falls back to
/// the heuristic; `exact` enumerates at any size, and more features are refused by `exact`.
#[test]
fn auto_polar_limits_for_3d_inputs() {
    use gonn::families::relu::AUTO_EXACT_MAX_SAMPLES_RANK4 as LIMIT;
    let mut rng = Rng::new(2);
    let small = rng.normal_mat(LIMIT, 3);
    let large = rng.normal_mat(LIMIT + 1, 3);
    let net = |x: &Mat<f64>, mode| ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, mode);
    assert!(net(&small, PolarMode::Auto).unwrap().polar_is_exact());
    assert!(!net(&large, PolarMode::Auto).unwrap().polar_is_exact());
    assert!(net(&large, PolarMode::Exact).unwrap().polar_is_exact());
    assert!(net(&rng.normal_mat(20, 4), PolarMode::Exact).is_err());
}

/// The exact polar of 2-D inputs plus bias (rank 3) equals `max_D ||Proj_{K_D}(X^T D c)||` over every region of
/// the arrangement, for both signs, on generic inputs and on inputs from a small integer grid (many repeated rows and
/// vertices where several lines meet: there every arc lists its regions), compared with a tiny generic perturbation.
#[test]
fn rank3_polar_matches_region_enumeration() {
    use gonn::families::relu::polar::exact_scalar_polar_pair;
    use gonn::numerics::cone::project;
    let mut rng = Rng::new(23);
    let by_regions = |x: &Mat<f64>, c: &[f64]| {
        let rows = Rows::new(x.as_ref());
        all_patterns(x)
            .into_iter()
            .map(|p| {
                project(&rows, &p, &rows.masked_gradient(&p, c)).unwrap().iter().map(|v| v * v).sum::<f64>().sqrt()
            })
            .fold(0.0, f64::max)
    };
    for case in 0..24 {
        let n = [10usize, 25, 60][case % 3];
        let grid = case >= 12;
        let x = augment(
            Mat::from_fn(n, 2, |_, _| if grid { (rng.uniform() * 5.0).floor() - 2.0 } else { rng.normal() }).as_ref(),
            true,
        );
        let c: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let neg: Vec<f64> = c.iter().map(|v| -v).collect();
        let xp = Mat::from_fn(n, 3, |i, j| x[(i, j)] + if grid { 1e-7 * rng.normal() } else { 0.0 });
        let moved: f64 =
            (0..n).map(|i| c[i].abs() * (0..3).map(|j| (xp[(i, j)] - x[(i, j)]).powi(2)).sum::<f64>().sqrt()).sum();
        for (p, ck) in exact_scalar_polar_pair(&Rows::new(x.as_ref()), &c).iter().zip([&c, &neg]) {
            let r = by_regions(&xp, ck);
            assert!((p.value - r).abs() <= moved + 1e-9 * (1.0 + r), "case {case}: exact {} vs regions {r}", p.value);
            assert!(p.upper >= r - moved - 1e-12, "case {case}: upper {} vs regions {r}", p.upper);
        }
    }
}

/// The exact polar of 3-D inputs plus bias (rank 4) equals `max_D ||Proj_{K_D}(X^T D c)||` over every region of the
/// arrangement (an independent exact method), for both signs; its upper bound closes on it.
#[test]
fn rank4_polar_matches_region_enumeration() {
    use gonn::families::relu::polar::exact_scalar_polar_pair;
    use gonn::numerics::cone::project;
    let mut rng = Rng::new(21);
    let by_regions = |x: &Mat<f64>, c: &[f64], step: f64| {
        let rows = Rows::new(x.as_ref());
        all_patterns_step(x, step)
            .into_iter()
            .map(|p| {
                project(&rows, &p, &rows.masked_gradient(&p, c)).unwrap().iter().map(|v| v * v).sum::<f64>().sqrt()
            })
            .fold(0.0, f64::max)
    };
    for n in [5usize, 8, 11, 14, 20, 40] {
        for _ in 0..3 {
            let x = augment(rng.normal_mat(n, 3).as_ref(), true);
            let rows = Rows::new(x.as_ref());
            let c: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            let neg: Vec<f64> = c.iter().map(|v| -v).collect();
            for (p, ck) in exact_scalar_polar_pair(&rows, &c).iter().zip([&c, &neg]) {
                let r = by_regions(&x, ck, 1e-6);
                assert!((p.value - r).abs() <= 1e-9 * (1.0 + r), "n={n}: exact {} vs regions {r}", p.value);
                assert!(p.upper >= r && p.upper <= p.value + 1e-9, "n={n}: upper {} value {}", p.upper, p.value);
                assert!((rows.relu_value(ck, &p.u) - p.value).abs() < 1e-12);
            }
        }
    }
    // Repeated inputs, inputs on one line and on one plane (hyperplanes sharing a plane or a line): no pattern may
    // be lost. The reference enumerates a tiny generic perturbation, whose polar differs by at most
    // `sum_j |c_j| ||delta_j||`.
    for case in 0..6 {
        let n = 12;
        let mut x = augment(rng.normal_mat(n, 3).as_ref(), true);
        let (p0, d1, d2) = ([0.3, -0.2, 0.5], [1.0, 0.5, -0.7], [-0.4, 0.9, 0.2]);
        for i in 0..5 {
            let (t, v) = (rng.normal(), rng.normal());
            for m in 0..3 {
                x[(i, m)] = match case % 3 {
                    0 => x[(i + 5, m)],
                    1 => p0[m] + t * d1[m],
                    _ => p0[m] + t * d1[m] + v * d2[m],
                };
            }
        }
        let c: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let [plus, _] = exact_scalar_polar_pair(&Rows::new(x.as_ref()), &c);
        let xp = Mat::from_fn(n, 4, |i, j| x[(i, j)] + 1e-7 * rng.normal());
        let moved: f64 =
            (0..n).map(|i| c[i].abs() * (0..4).map(|j| (xp[(i, j)] - x[(i, j)]).powi(2)).sum::<f64>().sqrt()).sum();
        let r = by_regions(&xp, &c, 1e-9);
        assert!((plus.value - r).abs() <= moved + 1e-9, "case {case}: exact {} vs perturbed regions {r}", plus.value);
        assert!(plus.upper >= r - moved - 1e-12);
    }
    // Maxima on an edge: two samples with large negative weights (concave kinks) and a positive sample
    // x_2 = x_0 + x_1 + v (v orthogonal to both, x_0^T x_1 > 0): h <= ||v|| (up to the small weights) everywhere,
    // attained where both kinks meet, at v / ||v||.
    for case in 0..4 {
        let n = 12;
        let mut x = augment(rng.normal_mat(n, 3).as_ref(), true);
        let mut c: Vec<f64> = (0..n).map(|_| 0.01 * rng.normal()).collect();
        let (x0, mut x1): (Vec<f64>, Vec<f64>) =
            ((0..4).map(|j| x[(0, j)]).collect(), (0..4).map(|j| x[(1, j)]).collect());
        let d01: f64 = x0.iter().zip(&x1).map(|(a, b)| a * b).sum();
        if d01 < 0.0 {
            x1.iter_mut().for_each(|v| *v = -*v);
        }
        let b = Mat::from_fn(4, 3, |j, t| match t {
            0 => x0[j],
            1 => x1[j],
            _ => rng.normal(),
        });
        let q = b.qr().compute_thin_Q();
        for j in 0..4 {
            x[(1, j)] = x1[j];
            x[(2, j)] = x0[j] + x1[j] + q[(j, 2)];
        }
        (c[0], c[1], c[2]) = (-10.0, -10.0, 1.0);
        let [plus, _] = exact_scalar_polar_pair(&Rows::new(x.as_ref()), &c);
        let rows = Rows::new(x.as_ref());
        let on_edge = rows.dot(0, &plus.u).abs().max(rows.dot(1, &plus.u).abs());
        let r = by_regions(&x, &c, 1e-6);
        assert!((plus.value - r).abs() <= 1e-9 * (1.0 + r), "edge case {case}: exact {} vs regions {r}", plus.value);
        assert!(plus.upper >= r, "edge case {case}: upper {} vs regions {r}", plus.upper);
        assert!(on_edge < 1e-6, "edge case {case}: the maximum should lie on the edge ({on_edge})");
    }
    // Inputs on a small integer grid: many vertices where four or more hyperplanes meet, and many circles that
    // other hyperplanes contain (the listing of faces and regions falls back to every arc there).
    for case in 0..8 {
        let n = 16;
        let x = augment(Mat::from_fn(n, 3, |_, _| (rng.uniform() * 3.0).floor() - 1.0).as_ref(), true);
        let c: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let neg: Vec<f64> = c.iter().map(|v| -v).collect();
        let xp = Mat::from_fn(n, 4, |i, j| x[(i, j)] + 1e-7 * rng.normal());
        let moved: f64 =
            (0..n).map(|i| c[i].abs() * (0..4).map(|j| (xp[(i, j)] - x[(i, j)]).powi(2)).sum::<f64>().sqrt()).sum();
        for (p, ck) in exact_scalar_polar_pair(&Rows::new(x.as_ref()), &c).iter().zip([&c, &neg]) {
            let r = by_regions(&xp, ck, 1e-9);
            assert!(
                (p.value - r).abs() <= moved + 1e-9,
                "grid case {case}: exact {} vs perturbed regions {r}",
                p.value
            );
            assert!(p.upper >= r - moved - 1e-12);
        }
    }
}

/// A time limit that ends while an iteration is priced (the cheap search, no proof): the run still answers with a
/// proven bound on the polar (a last proven check of the same weights), never without one.
#[test]
fn time_limits_end_with_a_proven_polar_bound() {
    let (x, y) = data_nd(150, 6, 31);
    let net = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Bab).unwrap();
    let obs = Observations::new(Mat::from_fn(y.len(), 1, |i, _| y[i]), None).unwrap();
    let mut limited = 0;
    for limit in [0.05, 0.1, 0.2, 0.3, 0.5, 0.8] {
        let m = FitParams::new(0.05)
            .max_seconds(limit)
            .polar_seconds(Some(0.2))
            .seed(1)
            .validate()
            .unwrap()
            .fit(&net, &obs)
            .unwrap();
        let c = &m.certificate;
        let upper = c.polar_upper.unwrap_or_else(|| panic!("limit {limit}: no proven polar bound: {}", c.summary()));
        assert!(upper >= c.polar_lower, "limit {limit}");
        assert!(c.gap_bound.is_some() && c.optimum_lower_bound.unwrap() <= c.objective, "limit {limit}");
        limited += usize::from(m.termination == Termination::MaxTime);
    }
    assert!(limited >= 3, "only {limited} runs reached their time limit");
}
