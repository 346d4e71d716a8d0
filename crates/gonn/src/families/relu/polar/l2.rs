//! The output-`l2` polar of a network with several outputs, `max_{||u|| = 1} ||Q^T (X u)_+||`, exactly for rows
//! of dimension `d <= 3` (1-D and 2-D inputs plus bias) by enumerating the activation patterns (THEORY.md
//! section 12).
//!
//! On a pattern region `R` the objective is `||M_R^T u||` with `M_R = sum_{j in R} x_j q_j^T` (`d x C`), a quadratic
//! form on the sphere: its maximum over the region is either the top eigenvector of `M_R M_R^T`, when that lies in
//! the region, or on the region's boundary, which lies on the great circles `x_i^T u = 0`. Each circle is swept
//! once (as in the scalar enumeration, section 7) with `M` updated per switching sample; on every arc the maximum
//! of the `2 x 2` form is in closed form, and the regions on both sides of the arc give candidates `sqrt(lambda_1)`
//! that are evaluated directly in decreasing order until none can beat the best value (a candidate `u` outside its
//! region has `||Q^T (X u)_+|| < sqrt(lambda_1)`, which is how the evaluation tells; near-ties of the top two
//! eigenvalues, where the computed eigenvector need not be the one in the region, stay in the upper bound).

use faer::MatRef;

use super::{norm, sweep, switch_angle, Step};
use crate::numerics::budget::Budget;
use crate::numerics::cone::Rows;

/// The exact output-`l2` polar: the value attained at `u`, and a proven upper bound (value plus rounding margins).
#[derive(Clone, Debug)]
pub struct L2Polar {
    pub value: f64,
    pub upper: f64,
    pub u: Vec<f64>,
}

/// `||Q^T (X u)_+||` evaluated directly.
pub fn l2_value(rows: &Rows, q: &[Vec<f64>], u: &[f64]) -> f64 {
    let m = q.first().map_or(0, |r| r.len());
    let mut w = vec![0.0; m];
    for (j, qj) in q.iter().enumerate() {
        let t = rows.dot(j, u);
        if t > 0.0 {
            w.iter_mut().zip(qj).for_each(|(a, b)| *a += t * b);
        }
    }
    norm(&w)
}

/// `max_{t in [lo, hi]} (cos t, sin t) A (cos t, sin t)^T` for the symmetric `A = [[a11, a12], [a12, a22]]`, and
/// its angle: `(a11 + a22) / 2 + (a11 - a22) / 2 cos 2t + a12 sin 2t` peaks at `2t = atan2(a12, (a11 - a22) / 2)`.
fn arc_max_quadratic(a11: f64, a12: f64, a22: f64, lo: f64, hi: f64) -> (f64, f64) {
    let f = |t: f64| {
        let (s, c) = t.sin_cos();
        a11 * c * c + 2.0 * a12 * c * s + a22 * s * s
    };
    let (flo, fhi) = (f(lo), f(hi));
    let (mut best, mut at) = if flo >= fhi { (flo, lo) } else { (fhi, hi) };
    let crit = 0.5 * a12.atan2(0.5 * (a11 - a22));
    for k in -2..=4 {
        let t = crit + k as f64 * std::f64::consts::PI;
        if t > lo && t < hi && f(t) > best {
            (best, at) = (f(t), t);
        }
    }
    (best, at)
}

/// The two largest eigenvalues of a symmetric `3 x 3` matrix and a unit eigenvector of the largest (cyclic
/// Jacobi rotations).
fn top_eigen(mut a: [[f64; 3]; 3]) -> (f64, f64, [f64; 3]) {
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _ in 0..50 {
        let off = a[0][1].powi(2) + a[0][2].powi(2) + a[1][2].powi(2);
        let diag = a[0][0].powi(2) + a[1][1].powi(2) + a[2][2].powi(2);
        if off <= 1e-32 * diag || off == 0.0 {
            break;
        }
        for (p, r) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][r] == 0.0 {
                continue;
            }
            let theta = 0.5 * (a[r][r] - a[p][p]) / a[p][r];
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let t = if theta == 0.0 { 1.0 } else { t };
            let c = 1.0 / (t * t + 1.0).sqrt();
            let s = t * c;
            for row in a.iter_mut() {
                let (akp, akr) = (row[p], row[r]);
                row[p] = c * akp - s * akr;
                row[r] = s * akp + c * akr;
            }
            let (ap, ar) = (a[p], a[r]);
            a[p] = [0, 1, 2].map(|k| c * ap[k] - s * ar[k]);
            a[r] = [0, 1, 2].map(|k| s * ap[k] + c * ar[k]);
            for row in v.iter_mut() {
                let (vp, vr) = (row[p], row[r]);
                row[p] = c * vp - s * vr;
                row[r] = s * vp + c * vr;
            }
        }
    }
    let mut idx = [0, 1, 2];
    idx.sort_by(|&x, &y| a[y][y].total_cmp(&a[x][x]));
    let k = idx[0];
    (a[k][k], a[idx[1]][idx[1]], [v[0][k], v[1][k], v[2][k]])
}

/// Rounding margin: `M` is accumulated with at most `4 n` signed updates per sweep, each term `||x_j|| ||q_j||`
/// touched a few times with relative error below `n eps`; bundled samples (in-plane part below `1e-12 ||x_j||`)
/// move by at most `1e-12 ||x_j|| ||q_j||`, and rows the sweep skips as zero contribute at most their norm.
fn margin(rows: &Rows, q: &[Vec<f64>], skipped: f64) -> f64 {
    let s: f64 = q.iter().enumerate().map(|(j, qj)| rows.norm(j) * norm(qj)).sum();
    (8.0 * (rows.n as f64 + 4.0) * f64::EPSILON + 1e-12) * s + skipped
}

/// The exact output-`l2` polar for rows of dimension `d <= 3`; `None` when `budget` expires first.
pub fn exact_l2_polar(rows: &Rows, q: MatRef<'_, f64>, budget: &Budget) -> Option<L2Polar> {
    let (n, d, m) = (rows.n, rows.d, q.ncols());
    assert!(d <= 3 && q.nrows() == n);
    let qr: Vec<Vec<f64>> = (0..n).map(|j| (0..m).map(|c| q[(j, c)]).collect()).collect();
    let norms: Vec<f64> = (0..n).map(|j| rows.norm(j)).collect();
    let scale = norms.iter().copied().fold(0.0, f64::max);
    let finish = |value: f64, u: Vec<f64>, formula: f64, skipped: f64| {
        let attained = l2_value(rows, &qr, &u);
        let upper = formula.max(attained).max(value).max(0.0) + margin(rows, &qr, skipped);
        L2Polar { value: attained, upper, u }
    };
    match d {
        0 => Some(L2Polar { value: 0.0, upper: 0.0, u: Vec::new() }),
        1 => {
            let (a, b) = (l2_value(rows, &qr, &[1.0]), l2_value(rows, &qr, &[-1.0]));
            Some(if a >= b { finish(a, vec![1.0], a, 0.0) } else { finish(b, vec![-1.0], b, 0.0) })
        }
        2 => {
            let alpha: Vec<f64> = (0..n).map(|j| switch_angle([rows.row(j)[0], rows.row(j)[1]], scale)).collect();
            let skipped: f64 = (0..n).filter(|&j| alpha[j].is_nan()).map(|j| norms[j] * norm(&qr[j])).sum();
            let mut mm = vec![[0.0; 2]; m];
            let mut best = (f64::NEG_INFINITY, 0.0);
            sweep(&alpha, &mut |step| match step {
                Step::Toggle(j, on) => {
                    let s = if on { 1.0 } else { -1.0 };
                    let x = rows.row(j);
                    for (row, qc) in mm.iter_mut().zip(&qr[j]) {
                        row[0] += s * qc * x[0];
                        row[1] += s * qc * x[1];
                    }
                }
                Step::Arc(lo, hi) => {
                    let a11: f64 = mm.iter().map(|r| r[0] * r[0]).sum();
                    let a22: f64 = mm.iter().map(|r| r[1] * r[1]).sum();
                    let a12: f64 = mm.iter().map(|r| r[0] * r[1]).sum();
                    let (v, t) = arc_max_quadratic(a11, a12, a22, lo, hi);
                    if v > best.0 {
                        best = (v, t);
                    }
                }
            });
            let v = best.0.max(0.0).sqrt();
            Some(finish(v, vec![best.1.cos(), best.1.sin()], v, skipped))
        }
        _ => exact_l2_3d(rows, &qr, &norms, budget),
    }
}

/// An alternating ascent from `start` (`v <- Q^T h / ||.||`, then one pattern step on `c = Q v`): a better attained
/// value raises the floor below which the enumeration drops its candidates.
fn ascend(rows: &Rows, q: &[Vec<f64>], start: (f64, Vec<f64>)) -> (f64, Vec<f64>) {
    let mut best = start.clone();
    let mut u = start.1;
    for _ in 0..20 {
        let m = q.first().map_or(0, |r| r.len());
        let mut w = vec![0.0; m];
        let pattern = rows.pattern(&u);
        for (j, qj) in q.iter().enumerate() {
            if pattern[j] {
                let t = rows.dot(j, &u);
                w.iter_mut().zip(qj).for_each(|(a, b)| *a += t * b);
            }
        }
        let nw = norm(&w);
        if nw == 0.0 {
            break;
        }
        let c: Vec<f64> = q.iter().map(|qj| qj.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() / nw).collect();
        let g = rows.masked_gradient(&pattern, &c);
        let ng = norm(&g);
        if ng == 0.0 {
            break;
        }
        u = g.iter().map(|a| a / ng).collect();
        let v = l2_value(rows, q, &u);
        if v <= best.0 * (1.0 + 1e-12) {
            if v > best.0 {
                best = (v, u);
            }
            break;
        }
        best = (v, u.clone());
    }
    best
}

/// How many probe samples a region's candidate is tested against before it is kept.
const PROBES: usize = 24;

/// A region's interior candidate: `sqrt(lambda_1)`, the top eigenvector on the region's side, and whether the top
/// two eigenvalues nearly tie.
struct Candidate {
    value: f64,
    u: [f64; 3],
    tie: bool,
}

fn exact_l2_3d(rows: &Rows, qr: &[Vec<f64>], norms: &[f64], budget: &Budget) -> Option<L2Polar> {
    let (n, m) = (rows.n, qr.first().map_or(0, |r| r.len()));
    let dot3 = |a: &[f64], b: &[f64]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    let mut best_arc = (f64::NEG_INFINITY, [1.0, 0.0, 0.0]);
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut mm = vec![[0.0f64; 3]; m];
    let mut side = [vec![[0.0f64; 3]; m], vec![[0.0f64; 3]; m]];
    let mut active = vec![false; n];
    let mut total = vec![[0.0f64; 3]; m];
    // Probe samples: a candidate on the wrong side of one of them lies outside its region (most do: the
    // unconstrained top eigenvalue often exceeds the region's maximum); the probe that rejected last moves to the
    // front. A start value from the samples' own directions raises the floor below which candidates are dropped.
    let nonzero: Vec<usize> = (0..n).filter(|&j| norms[j] > 0.0).collect();
    let np = PROBES.min(nonzero.len());
    let mut probes: Vec<usize> = (0..np).map(|t| nonzero[t * nonzero.len() / np]).collect();
    let mut start = (f64::NEG_INFINITY, vec![1.0, 0.0, 0.0]);
    for &j in nonzero.iter().step_by((nonzero.len() / 64).max(1)) {
        let u: Vec<f64> = rows.row(j).iter().map(|v| v / norms[j]).collect();
        for u in [u.clone(), u.iter().map(|v| -v).collect()] {
            let v = l2_value(rows, qr, &u);
            if v > start.0 {
                start = (v, u);
            }
        }
    }
    start = ascend(rows, qr, start);
    for i in 0..n {
        if budget.expired() {
            return None;
        }
        if norms[i] == 0.0 {
            continue;
        }
        let xi: Vec<f64> = rows.row(i).iter().map(|v| v / norms[i]).collect();
        let [e1, e2] = super::circle_basis(&xi);
        // In-plane coordinates; samples (nearly) on the circle's hyperplane are bundled by side.
        let alpha: Vec<f64> = (0..n)
            .map(|j| {
                let x = rows.row(j);
                switch_angle([dot3(&e1, x), dot3(&e2, x)], norms[j])
            })
            .collect();
        for s in side.iter_mut() {
            s.iter_mut().for_each(|r| *r = [0.0; 3]);
        }
        for j in (0..n).filter(|&j| alpha[j].is_nan() && norms[j] > 0.0) {
            let s = &mut side[usize::from(dot3(&xi, rows.row(j)) < 0.0)];
            for (row, qc) in s.iter_mut().zip(&qr[j]) {
                row.iter_mut().zip(rows.row(j)).for_each(|(a, x)| *a += qc * x);
            }
        }
        mm.iter_mut().for_each(|r| *r = [0.0; 3]);
        active.iter_mut().for_each(|a| *a = false);
        let mut last: Option<(usize, bool)> = None;
        sweep(&alpha, &mut |step| match step {
            Step::Toggle(j, on) => {
                active[j] = on;
                last = Some((j, on));
                let s = if on { 1.0 } else { -1.0 };
                let x = rows.row(j);
                for (row, qc) in mm.iter_mut().zip(&qr[j]) {
                    row.iter_mut().zip(x).for_each(|(a, xv)| *a += s * qc * xv);
                }
            }
            Step::Arc(lo, hi) => {
                // On the arc x_i^T u = 0: the 2 x 2 form of P = [e1 e2]^T M.
                let (mut a11, mut a12, mut a22) = (0.0, 0.0, 0.0);
                for row in mm.iter() {
                    let (p1, p2) = (dot3(&e1, row), dot3(&e2, row));
                    a11 += p1 * p1;
                    a12 += p1 * p2;
                    a22 += p2 * p2;
                }
                let floor = best_arc.0.max(start.0 * start.0).max(0.0);
                // The form's largest eigenvalue bounds the arc (no trigonometry): most arcs stop here. Arcs below
                // the start value cannot raise the bound, which is at least that attained value.
                let half = 0.5 * (a11 - a22);
                if 0.5 * (a11 + a22) + (half * half + a12 * a12).sqrt() > floor {
                    let (v, t) = arc_max_quadratic(a11, a12, a22, lo, hi);
                    if v > best_arc.0 {
                        let (s, c) = t.sin_cos();
                        best_arc = (v, [c * e1[0] + s * e2[0], c * e1[1] + s * e2[1], c * e1[2] + s * e2[2]]);
                    }
                }
                let floor = best_arc.0.max(floor);
                // The regions on both sides: x_i (and the samples bundled with it) active or not.
                for (k, extra) in side.iter().enumerate() {
                    total.iter_mut().zip(mm.iter().zip(extra)).for_each(|(t, (a, b))| {
                        *t = [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
                    });
                    let fro: f64 = total.iter().map(|r| dot3(r, r)).sum();
                    if fro <= floor {
                        continue;
                    }
                    let mut a = [[0.0; 3]; 3];
                    for r in total.iter() {
                        for p in 0..3 {
                            for s in 0..3 {
                                a[p][s] += r[p] * r[s];
                            }
                        }
                    }
                    let (l1, l2, mut e) = top_eigen(a);
                    if l1 <= floor {
                        continue;
                    }
                    // The candidate on the region's side of x_i; the last switched sample's side must hold too.
                    if (dot3(&xi, &e) < 0.0) == (k == 0) {
                        e = [-e[0], -e[1], -e[2]];
                    }
                    let tie = l1 - l2.max(0.0) <= 1e-5 * l1;
                    let tol = 1e-9;
                    let outside = last.is_some_and(|(j, on)| {
                        let t = dot3(rows.row(j), &e) / norms[j];
                        if on {
                            t < -tol
                        } else {
                            t > tol
                        }
                    });
                    if tie {
                        candidates.push(Candidate { value: l1.sqrt(), u: e, tie });
                        continue;
                    }
                    if outside {
                        continue;
                    }
                    let rejected = probes.iter().position(|&l| {
                        let on = if alpha[l].is_nan() { (dot3(&xi, rows.row(l)) > 0.0) == (k == 0) } else { active[l] };
                        let t = dot3(rows.row(l), &e) / norms[l];
                        l != i && if on { t < -tol } else { t > tol }
                    });
                    match rejected {
                        Some(t) => probes[..=t].rotate_right(1),
                        None => candidates.push(Candidate { value: l1.sqrt(), u: e, tie }),
                    }
                }
            }
        });
    }
    // Candidates in decreasing order, evaluated until none can beat the best value.
    let mut best = (l2_value(rows, qr, &best_arc.1), best_arc.1.to_vec());
    if start.0 > best.0 {
        best = start;
    }
    let mut formula = best_arc.0.max(0.0).sqrt();
    candidates.sort_by(|a, b| b.value.total_cmp(&a.value));
    let mut previous: Option<[f64; 3]> = None;
    for c in candidates {
        if c.value <= best.0 && !c.tie {
            break;
        }
        if c.tie {
            // The computed eigenvector need not be the region's: its value stays in the bound.
            formula = formula.max(c.value);
        }
        if previous.is_some_and(|p| (0..3).all(|k| (p[k] - c.u[k]).abs() <= 1e-12)) {
            continue;
        }
        previous = Some(c.u);
        if budget.expired() {
            return None;
        }
        let v = l2_value(rows, qr, &c.u);
        // Inside its region the candidate attains sqrt(lambda_1) (up to rounding); below, it lies outside and the
        // region's maximum is on its boundary (the arcs).
        if v >= c.value * (1.0 - 1e-10) {
            formula = formula.max(c.value);
        }
        if v > best.0 {
            best = (v, c.u.to_vec());
        }
    }
    let upper = formula.max(best.0).max(0.0) + margin(rows, qr, 0.0);
    Some(L2Polar { value: best.0, upper, u: best.1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::rng::Rng;

    /// The Jacobi rotations' top eigenpair satisfies `A e = l e`, and no unit vector's form exceeds `l`.
    #[test]
    fn eigenvalues_of_3x3_agree() {
        let mut rng = Rng::new(4);
        for rank in 1..=3 {
            for _ in 0..200 {
                let r: Vec<[f64; 3]> = (0..rank).map(|_| [rng.normal(), rng.normal(), rng.normal()]).collect();
                let mut a = [[0.0; 3]; 3];
                for v in &r {
                    for p in 0..3 {
                        for q in 0..3 {
                            a[p][q] += v[p] * v[q];
                        }
                    }
                }
                let (l1, l2, e) = top_eigen(a);
                // The largest eigenvalue is the maximum of the form on the sphere: no sampled unit exceeds it.
                for _ in 0..20 {
                    let u = [rng.normal(), rng.normal(), rng.normal()];
                    let nu = norm(&u);
                    let form: f64 = (0..3).map(|p| (0..3).map(|q| u[p] * a[p][q] * u[q]).sum::<f64>()).sum::<f64>();
                    assert!(form / (nu * nu) <= l1 * (1.0 + 1e-12));
                }
                assert!(l2 <= l1 * (1.0 + 1e-12));
                for (p, row) in a.iter().enumerate() {
                    let ae: f64 = (0..3).map(|q| row[q] * e[q]).sum();
                    assert!((ae - l1 * e[p]).abs() <= 1e-10 * l1);
                }
            }
        }
    }

    /// The enumeration is never below any sampled unit and is attained by its own unit.
    #[test]
    fn exact_l2_polar_dominates_sampled_units_and_is_attained() {
        let mut rng = Rng::new(11);
        for d in 1..=3 {
            for m in [2, 3] {
                for _ in 0..10 {
                    let n = 12;
                    let x = rng.normal_mat(n, d);
                    let rows = Rows::new(x.as_ref());
                    let q = rng.normal_mat(n, m);
                    let p = exact_l2_polar(&rows, q.as_ref(), &Budget::default()).unwrap();
                    let qr: Vec<Vec<f64>> = (0..n).map(|j| (0..m).map(|c| q[(j, c)]).collect()).collect();
                    assert!((l2_value(&rows, &qr, &p.u) - p.value).abs() <= 1e-12 * p.value.max(1.0));
                    assert!((norm(&p.u) - 1.0).abs() < 1e-12);
                    for _ in 0..3000 {
                        let mut u: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
                        let nu = norm(&u);
                        u.iter_mut().for_each(|a| *a /= nu);
                        let v = l2_value(&rows, &qr, &u);
                        assert!(v <= p.upper, "d {d} m {m}: sampled {v} above the upper bound {}", p.upper);
                    }
                    assert!(p.upper <= p.value * (1.0 + 1e-9) + 1e-12, "{} vs {}", p.upper, p.value);
                    // Independently, the cover of the output directions over exact scalar polars proves the polar
                    // at most the enumerated value (within its closing tolerance): nothing better was missed.
                    let known: Vec<[f64; 2]> = (0..m)
                        .map(|c| {
                            let col: Vec<f64> = (0..n).map(|j| q[(j, c)]).collect();
                            let [plus, minus] = super::super::exact_scalar_polar_pair(&rows, &col);
                            [plus.upper, minus.upper]
                        })
                        .collect();
                    let mut sigma = |v: &[f64]| {
                        let c: Vec<f64> = (0..n).map(|j| (0..m).map(|k| q[(j, k)] * v[k]).sum()).collect();
                        Some(super::super::exact_scalar_polar(&rows, &c).upper * (1.0 + 1e-12))
                    };
                    let level = p.value * (1.0 + 1e-8);
                    let r = super::super::cover::cover_polar(m, &known, &mut sigma, &|| level, &Budget::default());
                    assert!(r.closed, "d {d} m {m}: the cover stays at {} above {}", r.upper, p.value);
                }
            }
        }
    }
}
