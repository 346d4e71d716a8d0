//! The output-`l2` polar of a network with several outputs, `max_{||v|| = 1} sigma(v)` with
//! `sigma(v) = max_{||u|| <= 1} (Q v)^T (X u)_+`, bounded by a cover of the output directions with simplicial
//! cones (THEORY.md section 12).
//!
//! `sigma` is the support function of `W = {Q^T (X u)_+ : ||u|| <= 1}`, so it is sublinear: on the cone of
//! vertices `v_1..v_m` with proven `sigma(v_j) <= s_j`, every `v = sum_j a_j v_j` (`a >= 0`) has
//! `sigma(v) <= sum_j a_j s_j = v^T w` for the `w` with `v_j^T w = s_j`, so `sigma(v) <= ||w||` for `||v|| <= 1`
//! ([`cone_bound`]); and the points of `W` pointing into the cone have `||w|| <= s_j / (||v_j|| cos theta_j)`
//! ([`angle_bound`]), which closes the cones across ridges of `sigma`. The cover starts from the `2^m` orthants (vertices `±e_c`: the per-output scalar polars) and
//! splits the cone with the largest bound at the midpoint of its longest edge, best first, until every bound is
//! below the closing level. Vertices are dyadic (midpoints of `±e_c`), so every split is exact and the cones
//! always cover all directions. Where `W`'s farthest point is a corner the bound closes exactly; where it is
//! smooth the bound converges quadratically in the cones' size.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::numerics::budget::Budget;

/// What a cover did: its proven upper bound on `max_{||v|| = 1} sigma(v)`, and its work.
#[derive(Clone, Debug)]
pub struct CoverReport {
    /// The largest bound over the cones left (`+inf` when a vertex had none).
    pub upper: f64,
    /// Every cone's bound is below the closing level.
    pub closed: bool,
    /// Cones left in the cover.
    pub cones: usize,
    /// Vertices evaluated (scalar polars), including the given ones.
    pub evaluations: usize,
}

/// At most this many cones (the cover stops open beyond; memory stays small).
const MAX_CONES: usize = 1 << 16;

/// Solves `A z = b` for the `m x m` matrix `A` (rows `a`) by Gaussian elimination with partial pivoting; `None`
/// when a pivot vanishes.
fn solve(a: &[&[f64]], b: &[f64]) -> Option<Vec<f64>> {
    let m = a.len();
    let mut aug: Vec<Vec<f64>> = a.iter().zip(b).map(|(row, &bi)| row.iter().copied().chain([bi]).collect()).collect();
    for k in 0..m {
        let p = (k..m).max_by(|&i, &j| aug[i][k].abs().total_cmp(&aug[j][k].abs()))?;
        if aug[p][k] == 0.0 || !aug[p][k].is_finite() {
            return None;
        }
        aug.swap(k, p);
        let (top, rest) = aug.split_at_mut(k + 1);
        let pivot = &top[k];
        for row in rest.iter_mut() {
            let f = row[k] / pivot[k];
            row.iter_mut().zip(pivot.iter()).skip(k).for_each(|(a, p)| *a -= f * p);
        }
    }
    let mut z = vec![0.0; m];
    for k in (0..m).rev() {
        let s: f64 = (k + 1..m).map(|j| aug[k][j] * z[j]).sum();
        z[k] = (aug[k][m] - s) / aug[k][k];
    }
    z.iter().all(|v| v.is_finite()).then_some(z)
}

/// A proven bound on `max { sigma(v) : v in cone(v_1..v_m), ||v|| <= 1 }` from `sigma(v_j) <= s_j`, for a
/// sublinear `sigma`: `||w||` for `V^T w = s`, computed in floating point and then made feasible with rounding
/// margins. With `y` solving `V^T y = 1` (so `v_j^T y >= e > 0`), `w' = w + t y` with `t = max_j deficit_j / e`
/// satisfies `v_j^T w' >= s_j` for every vertex, whatever the solve's error; the bound is `||w|| + t ||y||`.
/// `+inf` when the vertices are (numerically) dependent.
pub fn cone_bound(vertices: &[&[f64]], s: &[f64]) -> f64 {
    let m = vertices.len();
    let ones = vec![1.0; m];
    let (Some(w), Some(y)) = (solve(vertices, s), solve(vertices, &ones)) else { return f64::INFINITY };
    // |fl(v^T z) - v^T z| <= gamma |v|^T |z| with gamma = m eps / (1 - m eps); doubled for safety.
    let gamma = 2.0 * (m as f64 + 1.0) * f64::EPSILON;
    let dot = |a: &[f64], b: &[f64]| -> (f64, f64) {
        (a.iter().zip(b).map(|(x, z)| x * z).sum(), a.iter().zip(b).map(|(x, z)| (x * z).abs()).sum())
    };
    let mut deficit = 0.0f64;
    let mut e = f64::INFINITY;
    for (v, &sj) in vertices.iter().zip(s) {
        let (vw, vw_abs) = dot(v, &w);
        // Upward: s_j - v_j^T w, each rounding covered by gamma (|s_j| for the subtraction).
        deficit = deficit.max((sj - vw) + gamma * (vw_abs + sj.abs()));
        let (vy, vy_abs) = dot(v, &y);
        e = e.min(vy - gamma * vy_abs);
    }
    if e.is_nan() || e < 0.5 || !deficit.is_finite() {
        return f64::INFINITY;
    }
    let norm = |z: &[f64]| z.iter().map(|a| a * a).sum::<f64>().sqrt();
    let t = deficit.max(0.0) / e;
    (norm(&w) + t * norm(&y)) * (1.0 + gamma) + f64::MIN_POSITIVE
}

/// A bound on `||w||` for the points `w` of `W` whose direction lies in the cone, which closes the cones across a
/// ridge of `sigma` (where the vertices' maximizers differ and [`cone_bound`] need not converge): for any vertex
/// `v_j`, `||v_j|| ||w|| cos(theta_j) <= v_j^T w <= sigma(v_j) <= s_j`, where `theta_j < pi / 2` is the largest
/// angle from `v_j` to another vertex (the cap around `v_j` is convex below a right angle). It is not a bound on
/// `sigma` over the cone, but the polar's maximizer `v* = w* / ||w*||` is both, so the largest of
/// `min(cone_bound, angle_bound)` over a cover bounds the polar.
pub fn angle_bound(vertices: &[&[f64]], s: &[f64]) -> f64 {
    let norm = |z: &[f64]| z.iter().map(|a| a * a).sum::<f64>().sqrt();
    let mut best = f64::INFINITY;
    for (j, vj) in vertices.iter().enumerate() {
        let nj = norm(vj);
        let mut cos = 1.0f64;
        for (k, vk) in vertices.iter().enumerate() {
            if k != j {
                let dot: f64 = vk.iter().zip(vj.iter()).map(|(a, b)| a * b).sum();
                cos = cos.min(dot / (nj * norm(vk)));
            }
        }
        // cos carries a relative rounding error of a few eps; 1e-12 covers it.
        let cos = cos - 1e-12;
        if cos > 0.0 {
            best = best.min(s[j].max(0.0) / (nj * cos) * (1.0 + 1e-12));
        }
    }
    best
}

/// A cone of the cover: its vertices (indices) and its proven bound.
struct Cone {
    bound: f64,
    vertices: Vec<usize>,
}

impl PartialEq for Cone {
    fn eq(&self, o: &Self) -> bool {
        self.bound.total_cmp(&o.bound) == Ordering::Equal
    }
}
impl Eq for Cone {}
impl PartialOrd for Cone {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Cone {
    fn cmp(&self, o: &Self) -> Ordering {
        self.bound.total_cmp(&o.bound)
    }
}

/// `a + b` when it is exact (two-sum error zero), so that a midpoint `(a + b) / 2` lies on its edge.
fn exact_sum(a: f64, b: f64) -> Option<f64> {
    let s = a + b;
    let bb = s - a;
    let err = (a - (s - bb)) + (b - bb);
    (err == 0.0 && s.is_finite()).then_some(s)
}

/// Bounds `max_{||v|| = 1} sigma(v)` for `v` in `R^m` by a cover of simplicial cones, best first.
///
/// `sigma(v)` returns a proven upper bound on `sigma(v)` at a vertex (any positive multiple of a direction), or
/// `None` to stop the cover (a subnetwork worth growing was found, or time is up). `known` gives bounds already
/// proven at the vertices `±e_c` (`known[c] = [sigma(e_c), sigma(-e_c)]`). The cover stops once every cone's bound is
/// at most `level()` (which may rise as `sigma` finds better units), when `budget` expires, or at [`MAX_CONES`].
pub fn cover_polar(
    m: usize,
    known: &[[f64; 2]],
    sigma: &mut dyn FnMut(&[f64]) -> Option<f64>,
    level: &dyn Fn() -> f64,
    budget: &Budget,
) -> CoverReport {
    assert!(m >= 1 && known.len() == m);
    let mut points: Vec<(Vec<f64>, f64)> = Vec::with_capacity(2 * m);
    let mut index: HashMap<Vec<u64>, usize> = HashMap::new();
    for (c, s) in known.iter().enumerate() {
        for (sign, &sv) in [1.0, -1.0].iter().zip(s) {
            let mut v = vec![0.0f64; m];
            v[c] = *sign;
            index.insert(v.iter().map(|a| a.to_bits()).collect(), points.len());
            points.push((v, sv));
        }
    }
    let bound_of = |points: &[(Vec<f64>, f64)], vs: &[usize]| {
        let rows: Vec<&[f64]> = vs.iter().map(|&i| points[i].0.as_slice()).collect();
        let s: Vec<f64> = vs.iter().map(|&i| points[i].1).collect();
        cone_bound(&rows, &s).min(angle_bound(&rows, &s))
    };
    let mut heap = BinaryHeap::new();
    for orthant in 0..1usize << m {
        let vertices: Vec<usize> = (0..m).map(|c| 2 * c + ((orthant >> c) & 1)).collect();
        heap.push(Cone { bound: bound_of(&points, &vertices), vertices });
    }
    // Cones whose longest edge cannot be halved exactly any more keep their bound.
    let mut frozen = 0.0f64;
    let mut closed = false;
    while let Some(cone) = heap.peek() {
        if cone.bound.max(frozen) <= level() {
            closed = true;
            break;
        }
        if cone.bound <= level() || budget.expired() || heap.len() >= MAX_CONES {
            break;
        }
        let cone = heap.pop().expect("peeked");
        // The longest edge, measured between the normalized directions.
        let unit = |i: usize| {
            let v = &points[i].0;
            let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            v.iter().map(|a| a / n).collect::<Vec<f64>>()
        };
        let (mut ea, mut eb, mut longest) = (0, 0, -1.0);
        for a in 0..m {
            for b in a + 1..m {
                let (ua, ub) = (unit(cone.vertices[a]), unit(cone.vertices[b]));
                let dist: f64 = ua.iter().zip(&ub).map(|(x, y)| (x - y).powi(2)).sum();
                if dist > longest {
                    (ea, eb, longest) = (a, b, dist);
                }
            }
        }
        let (va, vb) = (&points[cone.vertices[ea]].0, &points[cone.vertices[eb]].0);
        let mid: Option<Vec<f64>> = va.iter().zip(vb).map(|(&a, &b)| exact_sum(a, b).map(|s| 0.5 * s)).collect();
        let Some(mid) = mid.filter(|v| v.iter().all(|a| *a == 0.0 || a.abs() >= f64::MIN_POSITIVE)) else {
            frozen = frozen.max(cone.bound);
            continue;
        };
        let key: Vec<u64> = mid.iter().map(|a| a.to_bits()).collect();
        let k = match index.get(&key) {
            Some(&k) => k,
            None => {
                let Some(s) = sigma(&mid) else {
                    heap.push(cone);
                    break;
                };
                index.insert(key, points.len());
                points.push((mid, s));
                points.len() - 1
            }
        };
        for replaced in [ea, eb] {
            let mut vertices = cone.vertices.clone();
            vertices[replaced] = k;
            heap.push(Cone { bound: bound_of(&points, &vertices), vertices });
        }
    }
    let upper = heap.peek().map_or(0.0, |c| c.bound).max(frozen);
    CoverReport { upper, closed, cones: heap.len(), evaluations: points.len() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::rng::Rng;

    /// `sigma(v) = max_k v^T w_k` for a finite set `W` (sublinear; its polar is `max_k ||w_k||`).
    fn support(points: &[Vec<f64>], v: &[f64]) -> f64 {
        points.iter().map(|w| w.iter().zip(v).map(|(a, b)| a * b).sum::<f64>()).fold(0.0, f64::max)
    }

    /// `cone_bound` bounds `sigma` at every direction of the cone; `angle_bound` bounds the norm of every point of
    /// `W` whose direction lies in the cone.
    #[test]
    fn cone_bounds_are_proven_on_sampled_directions() {
        let mut rng = Rng::new(3);
        for m in 2..=4 {
            for _ in 0..200 {
                let verts: Vec<Vec<f64>> =
                    (0..m).map(|_| (0..m).map(|_| rng.normal().abs() + 0.01 * rng.normal()).collect()).collect();
                let inside = |rng: &mut Rng| -> Vec<f64> {
                    let a: Vec<f64> = (0..m).map(|_| rng.uniform()).collect();
                    (0..m).map(|k| (0..m).map(|j| a[j] * verts[j][k]).sum()).collect()
                };
                let mut w: Vec<Vec<f64>> = (0..3).map(|_| (0..m).map(|_| rng.normal()).collect()).collect();
                w.extend((0..3).map(|_| inside(&mut rng)));
                let rows: Vec<&[f64]> = verts.iter().map(|v| v.as_slice()).collect();
                let s: Vec<f64> = verts.iter().map(|v| support(&w, v)).collect();
                let (b, l) = (cone_bound(&rows, &s), angle_bound(&rows, &s));
                for _ in 0..50 {
                    let v = inside(&mut rng);
                    let value = support(&w, &v) / v.iter().map(|x| x * x).sum::<f64>().sqrt();
                    assert!(value <= b * (1.0 + 1e-12), "{value} > {b}");
                }
                for p in &w[3..] {
                    let pn = p.iter().map(|x| x * x).sum::<f64>().sqrt();
                    assert!(pn <= l * (1.0 + 1e-12), "{pn} > {l}");
                }
            }
        }
    }

    /// On a finite `W` the farthest point is a corner: the cover closes on `max_k ||w_k||` exactly.
    #[test]
    fn cover_closes_on_the_farthest_point() {
        let mut rng = Rng::new(5);
        for m in 1..=4 {
            for trial in 0..20 {
                let w: Vec<Vec<f64>> = (0..6 + trial).map(|_| (0..m).map(|_| rng.normal()).collect()).collect();
                let exact = w.iter().map(|p| p.iter().map(|a| a * a).sum::<f64>().sqrt()).fold(0.0, f64::max);
                let known: Vec<[f64; 2]> = (0..m)
                    .map(|c| {
                        let e = |s: f64| (0..m).map(|k| if k == c { s } else { 0.0 }).collect::<Vec<f64>>();
                        [support(&w, &e(1.0)), support(&w, &e(-1.0))]
                    })
                    .collect();
                let level = exact * (1.0 + 1e-9);
                let r = cover_polar(m, &known, &mut |v| Some(support(&w, v)), &|| level, &Budget::default());
                assert!(r.evaluations < 5000, "m {m}: {} evaluations", r.evaluations);
                assert!(
                    r.closed,
                    "m {m}: open at {} vs {exact} ({} cones, {} evaluations)",
                    r.upper, r.cones, r.evaluations
                );
                assert!(r.upper >= exact * (1.0 - 1e-12) && r.upper <= level, "{} vs {exact}", r.upper);
            }
        }
    }

    /// A smooth farthest point (an ellipse): the bound still converges to the polar, never below it.
    #[test]
    fn cover_converges_on_an_ellipse() {
        // W = {(cos t, 0.9 sin t)}: sigma(v) = sqrt(v1^2 + 0.81 v2^2), polar 1.
        let sigma = |v: &[f64]| (v[0] * v[0] + 0.81 * v[1] * v[1]).sqrt();
        let known = [[1.0, 1.0], [0.9, 0.9]];
        for tol in [1e-3, 1e-6, 1e-9] {
            let r = cover_polar(2, &known, &mut |v| Some(sigma(v)), &|| 1.0 + tol, &Budget::default());
            assert!(r.closed && r.upper >= 1.0 && r.upper <= 1.0 + tol, "tol {tol}: {}", r.upper);
            assert!(r.evaluations < 200, "{} evaluations", r.evaluations);
        }
    }
}
