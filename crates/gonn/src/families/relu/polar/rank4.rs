//! The exact scalar polar `max_{||u|| = 1} c^T (X u)_+` for rows in `R^4` (3-D inputs plus the bias; THEORY.md
//! section 7).
//!
//! `h(u) = c^T (X u)_+` is linear on every region of the arrangement of the hyperplanes `H_i = {x_i^T u = 0}`.
//! Its maximum on the sphere `S^3` lies
//! - inside a region `D`: then `u = g_D / ||g_D||` with `g_D = X^T D c`, and the value is `||g_D||`;
//! - inside a 2-face on some `H_i`: then `u = P_i g / ||P_i g||` with `P_i` the projection onto `H_i`;
//! - on an edge or a vertex, which lie on the great circles `H_i ∩ H_k`.
//!
//! For every `i`, the rank-3 sweep runs inside `H_i`: one circle sweep per other hyperplane `H_k` gives the exact
//! maximum over that circle's arcs and lists, next to an arc, the two 2-faces of `H_i` on either side of `H_k`
//! and the two regions on either side of each of them. Every region has a facet on some `H_i` and every facet
//! touches an arc, so every region and 2-face is listed. Two rules (THEORY.md section 7) cut this without losing
//! a candidate:
//! - a 2-face on `H_i` holds no maximum where `h` has a convex kink across `H_i` (`kappa_i = sum c_j ||x_j|| > 0`
//!   over the rows parallel to `x_i`): along the normal geodesic `h(t) = h cos t + a sin t + kappa_i (sin t)_+`
//!   increases to first order on one side; nor does an edge or vertex where such a kink passes and at most one
//!   concave one, so arc maxima are computed only on circles whose two kinks are concave;
//! - faces and regions are listed only at arcs that are a local minimum of their edge graph (ordered by the sorted
//!   pair of hyperplanes an edge lies on), which their smallest edge is; every arc lists near non-simple vertices.
//!
//! Samples whose rows are (numerically) parallel to `x_i` are bundled with it, and within `H_i` those in the span
//! of `x_i, x_k` with `x_k` (collinear or repeated inputs): their sides are fixed by the face, so no pattern is lost. Candidates are rejected by necessary tests (the sides
//! of the samples that bound the arc and of a few probe samples) and the survivors are evaluated in decreasing
//! order of their critical value until none can beat the best value attained. Cost `O(n^3 log n)` for the first
//! call, then `O(n^3)` with the circle sweeps cached ([`Arrangement4`], about `4 n^3` bytes); memory `O(n)` plus the
//! surviving candidates without the cache.

use super::{
    arc_max_points, convex_kink, distinct_maxima, evaluate_candidates, margin, pseudo_angle, seed_ascent, ScalarPolar,
    ANGLE_GAP, PROBES,
};
use crate::numerics::budget::Budget;
use crate::numerics::cone::Rows;

type V4 = [f64; 4];

fn dot4(a: &V4, b: &[f64]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3]
}

fn axpy(y: &mut V4, s: f64, x: &[f64]) {
    for m in 0..4 {
        y[m] += s * x[m];
    }
}

fn norm4(a: &V4) -> f64 {
    dot4(a, a).sqrt()
}

/// An orthonormal basis of the orthogonal complement of the unit vector `v` ([`super::complement_basis`]) as arrays.
fn complement<const D: usize>(v: &[f64; D]) -> Vec<[f64; D]> {
    super::complement_basis(v).into_iter().map(|e| std::array::from_fn(|r| e[r])).collect()
}

/// How a sample behaves next to the arcs of one circle `H_i ∩ H_k`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Its side is tracked by the sweep.
    Tracked,
    /// In the span of `x_i` and `x_k`, not parallel to `x_i`: on the same side as `x_k` (`true`) or the other.
    WithK(bool),
    /// Parallel to `x_i`: on the same side as `x_i` (`true`) or the other; zero on `H_i`.
    WithI(bool),
    /// A zero row.
    Zero,
}

/// The best values so far and the candidate faces and regions still to evaluate, for `c` (index 0) and `-c`.
struct Search<'a> {
    rows: &'a Rows,
    cs: [&'a [f64]; 2],
    norms: Vec<f64>,
    /// Arc maxima (exact maxima over edges and vertices), and where.
    formula: [f64; 2],
    formula_dir: [V4; 2],
    /// The best attained value and its unit.
    best: [(f64, Vec<f64>); 2],
    /// Critical values `||g||` and directions `g` of the faces and regions that passed the necessary tests.
    found: [Vec<(f64, V4)>; 2],
    probes: Vec<usize>,
    /// Evaluated interior maxima with a positive value (further columns for the caller).
    extra: [Vec<(f64, Vec<f64>)>; 2],
}

/// `x_l^T g` for the arc's `g`, computed when first asked for within an arc.
struct ArcDots {
    stamp: Vec<u32>,
    value: Vec<f64>,
    arc: u32,
}

impl ArcDots {
    fn next_arc(&mut self) {
        if self.arc == u32::MAX {
            self.stamp.fill(0);
            self.arc = 0;
        }
        self.arc += 1;
    }

    fn get(&mut self, l: usize, g: &V4, rows: &Rows) -> f64 {
        if self.stamp[l] != self.arc {
            self.stamp[l] = self.arc;
            self.value[l] = dot4(g, rows.row(l));
        }
        self.value[l]
    }
}

/// Flags of [`CircleSweep::order`] next to the sample index (below [`SAME`]).
const INDEX: u32 = (1 << 29) - 1;
/// The sample switches off in the first half-turn (it is active at angle 0).
const OFF: u32 = 1 << 31;
/// No other switching point within [`ANGLE_GAP`] (a vertex where exactly three hyperplanes meet) and no row parallel
/// to this sample's.
const SIMPLE: u32 = 1 << 30;
/// The same pseudo-angle as the previous switching point (for the first one: angle 0), so no arc in between.
const SAME: u32 = 1 << 29;

/// What the sweep of one circle `H_i ∩ H_k` needs that does not depend on `c`.
#[derive(Clone, Debug)]
struct CircleSweep {
    k: u32,
    /// No sample other than `k` and the rows parallel to it lies in the span of `x_i` and `x_k`.
    plain: bool,
    /// The samples whose hyperplanes contain the circle, and whether they lie on the side of `x_k`.
    with_k: Vec<(u32, bool)>,
    /// The other samples in the order of their switching points over the first half-turn, with the flags.
    order: Vec<u32>,
}

/// The orthonormal `e1, e2` of the circle `H_i ∩ H_k` (orthogonal to `x_i` and `x_k`), from the basis of `H_i`
/// and the coordinates `z_k` of `x_k` in it.
fn circle_frame(basis: &[V4], z_k: &[f64; 3], z_k_norm: f64) -> (V4, V4) {
    let zk = z_k.map(|v| v / z_k_norm);
    let f = complement(&zk);
    let lift = |fv: [f64; 3]| -> V4 {
        let mut e = [0.0; 4];
        for m in 0..3 {
            axpy(&mut e, fv[m], &basis[m]);
        }
        e
    };
    (lift(f[0]), lift(f[1]))
}

/// The circle sweeps of `H_i` (basis `basis`, every row's coordinates `z` in it), one per sample of `in_plane`.
fn circle_sweeps(
    rows: &Rows,
    norms: &[f64],
    parallel: &[Vec<u32>],
    basis: &[V4],
    z: &[[f64; 3]],
    in_plane: &[(usize, f64)],
) -> Vec<CircleSweep> {
    assert!(rows.n <= INDEX as usize, "sample indices fit in 29 bits");
    let mut events: Vec<(u64, u32, u32)> = Vec::with_capacity(in_plane.len());
    in_plane
        .iter()
        .map(|&(k, zkn)| {
            let zk = z[k].map(|v| v / zkn);
            let (e1, e2) = circle_frame(basis, &z[k], zkn);
            let mut with_k = Vec::new();
            let mut plain = true;
            events.clear();
            for (pos, &(j, _)) in in_plane.iter().enumerate() {
                let xj = rows.row(j);
                let a = [dot4(&e1, xj), dot4(&e2, xj)];
                let an = (a[0] * a[0] + a[1] * a[1]).sqrt();
                if j == k || an <= 1e-12 * norms[j] {
                    let same = zk[0] * z[j][0] + zk[1] * z[j][1] + zk[2] * z[j][2] > 0.0;
                    with_k.push((j as u32, same));
                    plain &= j == k || parallel[k].contains(&(j as u32));
                    continue;
                }
                let on = [a[1] / an, -a[0] / an];
                let (t_on, t_off) = (pseudo_angle(on), pseudo_angle([-on[0], -on[1]]));
                // The two switching points are antipodal: only the one in the first half-turn is kept, and the
                // second half-turn repeats the order with the opposite switches. Pseudo-angles are nonnegative:
                // their bits order like their values.
                let (t, flag) = if t_on > t_off { (t_off, OFF) } else { (t_on, 0) };
                events.push(((t + 0.0).to_bits(), pos as u32, j as u32 | flag));
            }
            events.sort_unstable();
            let len = events.len();
            let angle = |e: usize| f64::from_bits(events[e].0);
            let order = (0..len)
                .map(|e| {
                    let prev = if e == 0 { angle(len - 1) - 2.0 } else { angle(e - 1) };
                    let next = if e + 1 == len { angle(0) + 2.0 } else { angle(e + 1) };
                    let j = (events[e].2 & INDEX) as usize;
                    let simple = angle(e) - prev > ANGLE_GAP && next - angle(e) > ANGLE_GAP && parallel[j].len() == 1;
                    let same = if e == 0 { angle(0) <= 0.0 } else { angle(e) <= angle(e - 1) };
                    events[e].2 | if simple { SIMPLE } else { 0 } | if same { SAME } else { 0 }
                })
                .collect();
            CircleSweep { k: k as u32, plain, with_k, order }
        })
        .collect()
}

/// The circle sweeps of every hyperplane, built by the first polar that sweeps it and kept for the next ones
/// (the inputs do not change within a fit): about `4 n^3` bytes.
#[derive(Clone, Debug)]
pub struct Arrangement4 {
    hyperplanes: Vec<std::sync::OnceLock<Vec<CircleSweep>>>,
}

/// Memory limit for a cached rank-4 arrangement (`n` about 500 at this limit).
pub const ARRANGEMENT4_CACHE_BYTES: usize = 512 << 20;

impl Arrangement4 {
    /// An empty cache for `rows` (`d = 4`), or `None` when the full arrangement would not fit in
    /// [`ARRANGEMENT4_CACHE_BYTES`].
    pub fn new(rows: &Rows) -> Option<Self> {
        let n = rows.n;
        let bytes = n.saturating_mul(n).saturating_mul(n.saturating_mul(4).saturating_add(64));
        (rows.d == 4 && n < INDEX as usize && bytes <= ARRANGEMENT4_CACHE_BYTES)
            .then(|| Self { hyperplanes: (0..n).map(|_| std::sync::OnceLock::new()).collect() })
    }
}

/// The number of surviving candidates above which they are evaluated at once (memory stays bounded).
const SETTLE_AT: usize = 1 << 18;

impl Search<'_> {
    /// Candidates below this cannot beat a value already proven or attained.
    fn floor(&self, k: usize) -> f64 {
        self.formula[k].max(self.best[k].0)
    }

    /// Whether `x_j^T g` has the sign `on` (up to rounding relative to `||g|| ||x_j||`).
    fn side_ok(&self, j: usize, on: bool, g: &V4, gn: f64) -> bool {
        let xg = dot4(g, self.rows.row(j));
        let tol = 1e-12 * gn * self.norms[j];
        if on {
            xg >= -tol
        } else {
            xg <= tol
        }
    }

    /// Evaluates the candidates in decreasing order of `||g||` until none can beat the best value, then drops them
    /// all (those left have `||g||` at most the best attained value).
    fn settle(&mut self, k: usize, budget: &Budget) -> Option<()> {
        let found = std::mem::take(&mut self.found[k]);
        evaluate_candidates(self.rows, self.cs[k], found, &mut self.best[k], &mut self.extra[k], budget)
    }
}

/// Exact `max_{||u|| = 1} c^T (X u)_+` and the same for `-c`, for rows of dimension 4; `None` when `budget`
/// expires (polled once per hyperplane).
pub(super) fn exact_4d(
    rows: &Rows,
    c: &[f64],
    cache: Option<&Arrangement4>,
    budget: &Budget,
) -> Option<[ScalarPolar; 2]> {
    const SIGNS: [f64; 2] = [1.0, -1.0];
    assert_eq!(rows.d, 4);
    let n = rows.n;
    let norms: Vec<f64> = (0..n).map(|j| rows.norm(j)).collect();
    let neg: Vec<f64> = c.iter().map(|v| -v).collect();
    let nonzero: Vec<usize> = (0..n).filter(|&j| norms[j] > 0.0).collect();
    let np = PROBES.min(nonzero.len());
    let mut s = Search {
        rows,
        cs: [c, &neg],
        best: [seed_ascent(rows, c), seed_ascent(rows, &neg)],
        formula: [f64::NEG_INFINITY; 2],
        formula_dir: [[1.0, 0.0, 0.0, 0.0]; 2],
        found: [Vec::new(), Vec::new()],
        extra: [Vec::new(), Vec::new()],
        probes: (0..np).map(|t| nonzero[t * nonzero.len() / np]).collect(),
        norms,
    };
    let row = |j: usize| rows.row(j);
    let mut kinds = vec![Kind::Zero; n];
    let mut active = vec![false; n];
    let mut pending: [Vec<(f64, V4)>; 2] = [Vec::new(), Vec::new()];
    let (mut dots_xhat, mut dots_i, mut dots_k) = (vec![0.0; n], vec![[0.0; 2]; n], vec![[0.0; 2]; n]);
    let mut arc_dots = ArcDots { stamp: vec![0; n], value: vec![0.0; n], arc: 0 };
    // The frame of H_i: x_i / ||x_i||, an orthonormal basis of H_i, every row's coordinates in it and their norms.
    let frame = |i: usize| {
        let xi = row(i);
        let xhat = [xi[0], xi[1], xi[2], xi[3]].map(|v| v / rows.norm(i));
        let basis = complement(&xhat);
        let z: Vec<[f64; 3]> = (0..n).map(|j| [0, 1, 2].map(|m| dot4(&basis[m], row(j)))).collect();
        let zn: Vec<f64> = z.iter().map(|v| (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()).collect();
        (xhat, basis, z, zn)
    };
    // Rows (numerically) parallel to x_i, by the test the sweep of H_i uses: computed once, so that every circle
    // agrees on them.
    let parallel: Vec<Vec<u32>> = (0..n)
        .map(|i| {
            if rows.norm(i) == 0.0 {
                return Vec::new();
            }
            let zn = frame(i).3;
            nonzero.iter().filter(|&&j| zn[j] <= 1e-12 * rows.norm(j)).map(|&j| j as u32).collect()
        })
        .collect();
    for &i in &nonzero {
        if budget.expired() {
            return None;
        }
        // Coordinates in H_i; rows parallel to x_i are bundled with it, by side.
        let (xhat, basis, z, zn) = frame(i);
        let mut with_i = [[0.0; 4]; 2];
        let mut in_plane = Vec::with_capacity(n);
        for &j in &nonzero {
            let zn = zn[j];
            if parallel[i].contains(&(j as u32)) {
                let same = dot4(&xhat, row(j)) > 0.0;
                kinds[j] = Kind::WithI(same);
                axpy(&mut with_i[usize::from(!same)], c[j], row(j));
            } else {
                in_plane.push((j, zn));
            }
        }
        // Per hyperplane: x_l^T xhat and x_l^T w_i[t] for every row; whether h has a convex kink across H_i.
        for &l in &nonzero {
            dots_xhat[l] = dot4(&xhat, row(l));
            dots_i[l] = [dot4(&with_i[0], row(l)), dot4(&with_i[1], row(l))];
        }
        let with_i_norms = [norm4(&with_i[0]), norm4(&with_i[1])];
        let convex_i = convex_kink(c, &s.norms, parallel[i].iter().map(|&j| j as usize));
        if in_plane.is_empty() {
            // Every row is parallel to x_i: the regions are the two half-spheres, h = 0 on H_i.
            for (side, g) in with_i.iter().enumerate() {
                let gn = norm4(g);
                for (k, sg) in SIGNS.into_iter().enumerate() {
                    let gg = g.map(|v| sg * v);
                    if gn > 0.0 && s.side_ok(i, side == 0, &gg, gn) {
                        s.found[k].push((gn, gg));
                    }
                    if 0.0 > s.formula[k] {
                        s.formula[k] = 0.0;
                        s.formula_dir[k] = basis[0];
                    }
                }
            }
            continue;
        }
        let built;
        let sweeps: &[CircleSweep] = match cache {
            Some(a) => a.hyperplanes[i].get_or_init(|| circle_sweeps(rows, &s.norms, &parallel, &basis, &z, &in_plane)),
            None => {
                built = circle_sweeps(rows, &s.norms, &parallel, &basis, &z, &in_plane);
                &built
            }
        };
        let with_i_norm = with_i_norms[0].max(with_i_norms[1]);
        for sweep in sweeps {
            let k = sweep.k as usize;
            let (e1, e2) = circle_frame(&basis, &z[k], zn[k]);
            let mut with_k = [[0.0; 4]; 2];
            for &(j, same) in &sweep.with_k {
                let j = j as usize;
                kinds[j] = Kind::WithK(same);
                axpy(&mut with_k[usize::from(!same)], c[j], row(j));
            }
            // The samples active at angle 0: those switching off in the first half-turn.
            let mut g = [0.0; 4];
            for &ev in &sweep.order {
                let j = (ev & INDEX) as usize;
                kinds[j] = Kind::Tracked;
                active[j] = ev & OFF != 0;
                if active[j] {
                    axpy(&mut g, c[j], row(j));
                }
            }
            let plain = sweep.plain;
            let order = &sweep.order;
            let len = order.len();
            // x_j^T e(phi) > 0 on the half-circle that starts at the point perpendicular to (e1, e2)^T x_j
            // (clockwise): the switching point of sample `j` in the direction `on`.
            let point = |j: usize, on: bool| {
                let xj = row(j);
                let a = [dot4(&e1, xj), dot4(&e2, xj)];
                let an = (a[0] * a[0] + a[1] * a[1]).sqrt();
                let p = [a[1] / an, -a[0] / an];
                if on {
                    p
                } else {
                    [-p[0], -p[1]]
                }
            };
            let wk_norms = [norm4(&with_k[0]), norm4(&with_k[1])];
            let with_k_norm = wk_norms[0].max(wk_norms[1]);
            let mirrored = plain && i > k;
            // No other hyperplane contains this circle, and H_i and H_k are single samples'.
            let simple_circle = plain && parallel[i].len() == 1 && parallel[k].len() == 1;
            // Edge maxima: a point inside an arc (or a vertex on it) is no maximum where h has a convex kink across
            // H_i or H_k (for the sign): it increases to first order moving off that hyperplane within the other
            // (at a vertex, along a circle through it that crosses a convex kink).
            let convex_k = convex_kink(c, &s.norms, parallel[k].iter().map(|&j| j as usize));
            let need_max = [0, 1].map(|kk| !mirrored && (!simple_circle || !(convex_i[kk] || convex_k[kk])));
            // Faces and regions are listed only from the arcs that are a local minimum of the edges around them
            // (sorted pairs of hyperplanes: the edges next to this arc at its end points lie on the circles of
            // (i, j) and (k, j) for the sample j switching there, so the arc is a local minimum when both end
            // samples exceed k; for a region, i < k). A face's or region's edges form a connected graph, and the
            // edge of smallest pair is a local minimum, so each is still listed; arcs whose ends are not simple
            // vertices list everything.
            let listed = |start: usize, end: usize| {
                let (start, end) =
                    (if start >= len { start - len } else { start }, if end >= len { end - len } else { end });
                let (j1, j2) = ((order[start] & INDEX) as usize, (order[end] & INDEX) as usize);
                let canonical = simple_circle && order[start] & order[end] & SIMPLE != 0;
                !canonical || (j1 > k && j2 > k)
            };
            // Every candidate is `g + w_k[s]` (+ `w_i[t]` for a region, or projected onto H_i for a face), so
            // `x_l^T (candidate)` is assembled from `x_l^T g` (once per arc) and per-circle constants: the tests
            // below cost a few scalar operations per candidate instead of a dot product each.
            for l in s.probes.iter().copied().chain([i, k]) {
                dots_k[l] = [dot4(&with_k[0], row(l)), dot4(&with_k[1], row(l))];
            }
            let visit = |s: &mut Search<'_>,
                         pa: [f64; 2],
                         pb: [f64; 2],
                         g: &V4,
                         last: Option<(usize, bool)>,
                         active: &[bool],
                         dots_k: &mut [[f64; 2]],
                         arc_dots: &mut ArcDots,
                         list: bool,
                         pending: &mut [Vec<(f64, V4)>; 2]| {
                // The arc: exact maximum over it (edges and vertices).
                let g2 = [dot4(&e1, g), dot4(&e2, g)];
                for (kk, sg) in SIGNS.into_iter().enumerate().filter(|&(kk, _)| need_max[kk]) {
                    let (v, p) = arc_max_points([sg * g2[0], sg * g2[1]], pa, pb);
                    if v > s.formula[kk] {
                        s.formula[kk] = v;
                        s.formula_dir[kk] = [0, 1, 2, 3].map(|m| p[0] * e1[m] + p[1] * e2[m]);
                    }
                }
                if !list {
                    return;
                }
                // Every candidate's critical value is at most ||g|| + ||with_k|| + ||with_i||.
                let g_norm = norm4(g);
                if g_norm + with_k_norm + with_i_norm <= s.floor(0).min(s.floor(1)) {
                    return;
                }
                arc_dots.next_arc();
                let xg_i = dot4(g, row(i));
                let xg_k = dot4(g, row(k));
                let last_dots = last.map(|(j, on)| {
                    dots_k[j] = [dot4(&with_k[0], row(j)), dot4(&with_k[1], row(j))];
                    (j, on, dot4(g, row(j)))
                });
                let xhat_g = xg_i / s.norms[i];
                for (sk, side_k) in [(0, true), (1, false)] {
                    // x_i^T (g + w_k) / ||x_i||: the face candidate is g + w_k minus this times xhat.
                    let xhat_gf = xhat_g + dots_k[i][sk] / s.norms[i];
                    // The 2-face of H_i on this side of H_k (critical point P_i (g + w_k), normalized), then the
                    // regions on either side of it (g + w_k + w_i[t]); regions only once per pair of hyperplanes.
                    for ti in [None, Some(0), Some(1)] {
                        if mirrored && ti.is_some() {
                            continue;
                        }
                        // x_l^T (candidate) from x_l^T g; its rounding (relative to the summands' norms) and the
                        // candidate's norm (at most the summands' norms) enter the tolerance of the side tests.
                        let (wi_norm, face) = match ti {
                            Some(t) => (with_i_norms[t], 0.0),
                            None => (0.0, xhat_gf.abs()),
                        };
                        let size = g_norm + wk_norms[sk] + wi_norm + face;
                        let shift = |l: usize, dk: &[[f64; 2]]| match ti {
                            Some(t) => dk[l][sk] + dots_i[l][t],
                            None => dk[l][sk] - xhat_gf * dots_xhat[l],
                        };
                        for (kk, sg) in SIGNS.into_iter().enumerate() {
                            if size <= s.floor(kk) {
                                continue;
                            }
                            // A face on H_i where h has a convex kink for this sign holds no maximum:
                            // h increases to first order on one side of it.
                            if ti.is_none() && convex_i[kk] {
                                continue;
                            }
                            let norms = &s.norms;
                            let side = |l: usize, on: bool, xg: f64| {
                                let v = sg * xg;
                                let tol = (1e-12 + 1e-15) * size * norms[l];
                                if on {
                                    v >= -tol
                                } else {
                                    v <= tol
                                }
                            };
                            let ok = ti.is_none_or(|t| side(i, t == 0, xg_i + shift(i, dots_k)))
                                && side(k, side_k, xg_k + shift(k, dots_k))
                                && last_dots.is_none_or(|(j, on, xg_j)| side(j, on, xg_j + shift(j, dots_k)));
                            if !ok {
                                continue;
                            }
                            // The probe samples' sides; the probe that rejected moves to the front.
                            let rejected = s.probes.iter().position(|&l| {
                                let on = match (kinds[l], ti) {
                                    (Kind::Tracked, _) => active[l],
                                    (Kind::WithK(same), _) => same == side_k,
                                    (Kind::WithI(same), Some(t)) => same == (t == 0),
                                    (Kind::WithI(_), None) | (Kind::Zero, _) => return false,
                                };
                                !side(l, on, arc_dots.get(l, g, rows) + shift(l, dots_k))
                            });
                            if let Some(t) = rejected {
                                s.probes[..=t].rotate_right(1);
                                continue;
                            }
                            let mut gc = *g;
                            axpy(&mut gc, 1.0, &with_k[sk]);
                            match ti {
                                Some(t) => axpy(&mut gc, 1.0, &with_i[t]),
                                None => {
                                    let a = dot4(&xhat, &gc);
                                    axpy(&mut gc, -a, &xhat);
                                }
                            }
                            let gn = norm4(&gc);
                            if gn > s.floor(kk) {
                                pending[kk].push((gn, gc.map(|v| sg * v)));
                            }
                        }
                    }
                }
            };
            let mut last: Option<(usize, bool)> = None;
            // The switching point where the current arc starts (`None`: angle 0, the point (1, 0)), and the point
            // itself once computed.
            let mut start: Option<(usize, bool)> = None;
            let mut start_point: Option<[f64; 2]> = Some([1.0, 0.0]);
            for e in 0..2 * len {
                let second = e >= len;
                let ev = order[if second { e - len } else { e }];
                let j = (ev & INDEX) as usize;
                // Second half-turn: the opposite switches at the antipodal points, in the same order.
                let on = (ev & OFF == 0) != second;
                if ev & SAME == 0 || e == len {
                    // The arc from the previous switching point (the last one, wrapped, for the first piece).
                    let list = listed(if e == 0 { 2 * len - 1 } else { e - 1 }, e);
                    start_point = if list || need_max[0] || need_max[1] {
                        let pa = start_point.unwrap_or_else(|| start.map_or([1.0, 0.0], |(sj, son)| point(sj, son)));
                        let (a, pb) = (&mut arc_dots, point(j, on));
                        visit(&mut s, pa, pb, &g, last, &active, &mut dots_k, a, list, &mut pending);
                        Some(pb)
                    } else {
                        None
                    };
                    start = Some((j, on));
                }
                // j switches on at the end of the previous arc: it was inactive inside it (and vice versa).
                let pending_any = !pending[0].is_empty() || !pending[1].is_empty();
                for (pend, found) in pending.iter_mut().zip(s.found.iter_mut()).filter(|_| pending_any) {
                    for (gn, gg) in pend.drain(..) {
                        let xg = dot4(&gg, row(j));
                        let tol = 1e-12 * gn * s.norms[j];
                        if (on && xg <= tol) || (!on && xg >= -tol) {
                            found.push((gn, gg));
                        }
                    }
                }
                last = Some((j, on));
                active[j] = on;
                axpy(&mut g, if on { c[j] } else { -c[j] }, row(j));
            }
            if len == 0 {
                // Nothing switches along this circle: two half-circles bound the faces on either side.
                let a = &mut arc_dots;
                visit(&mut s, [1.0, 0.0], [-1.0, 0.0], &g, None, &active, &mut dots_k, a, true, &mut pending);
                let a = &mut arc_dots;
                visit(&mut s, [-1.0, 0.0], [1.0, 0.0], &g, None, &active, &mut dots_k, a, true, &mut pending);
            } else {
                // The last piece of the arc that wraps past angle 0.
                let list = listed(2 * len - 1, 0);
                if list || need_max[0] || need_max[1] {
                    let pa = start_point.unwrap_or_else(|| start.map_or([1.0, 0.0], |(sj, son)| point(sj, son)));
                    let a = &mut arc_dots;
                    visit(&mut s, pa, [1.0, 0.0], &g, last, &active, &mut dots_k, a, list, &mut pending);
                }
            }
            for (pend, found) in pending.iter_mut().zip(s.found.iter_mut()) {
                found.append(pend);
            }
            for kk in 0..2 {
                if s.found[kk].len() > SETTLE_AT {
                    s.settle(kk, budget)?;
                }
            }
        }
    }
    let mut out = Vec::with_capacity(2);
    for k in 0..2 {
        let dir = s.formula_dir[k].to_vec();
        let v = rows.relu_value(s.cs[k], &dir);
        if v > s.best[k].0 {
            s.best[k] = (v, dir);
        }
        s.settle(k, budget)?;
        // Every face or region not evaluated has a critical value at most the best attained value; edges and
        // vertices are covered by the arc maxima. Bundling a row within 1e-12 ||x_j|| of a hyperplane moves `h`
        // by at most 1e-12 |c_j| ||x_j|| (twice: in H_i and on a circle), and the candidate values by as much.
        let sum: f64 = (0..n).map(|j| s.cs[k][j].abs() * s.norms[j]).sum();
        let upper = s.formula[k].max(s.best[k].0).max(0.0) + margin(rows, s.cs[k]) + 3e-12 * sum;
        let (value, u) = std::mem::take(&mut s.best[k]);
        let extra = distinct_maxima(std::mem::take(&mut s.extra[k]), &u);
        out.push(ScalarPolar { value, upper, u, extra });
    }
    let minus = out.pop().expect("two signs");
    let plus = out.pop().expect("two signs");
    Some([plus, minus])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::rng::Rng;
    use faer::Mat;

    // Exactness against an independent enumeration of the regions, and degenerate inputs: tests/relu_network.rs.

    /// The cached circle sweeps give the same polar as sweeps built per call, on data with repeated, parallel,
    /// coplanar and zero rows, for several `c` (the cache fills during the first call).
    #[test]
    fn cached_sweeps_match_per_call_sweeps() {
        let mut rng = Rng::new(8);
        let n = 30;
        let mut x = Mat::from_fn(n, 4, |_, j| if j == 3 { 1.0 } else { (rng.uniform() * 3.0).floor() - 1.0 });
        for i in 0..5 {
            for j in 0..4 {
                x[(i + 10, j)] = x[(i, j)] * if i % 2 == 0 { 1.0 } else { -2.0 };
                x[(i + 20, j)] = rng.normal();
            }
        }
        for j in 0..4 {
            x[(29, j)] = 0.0;
        }
        let rows = Rows::new(x.as_ref());
        let cache = Arrangement4::new(&rows).expect("small arrangement fits");
        for _ in 0..4 {
            let c: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            let a = exact_4d(&rows, &c, Some(&cache), &Budget::default()).unwrap();
            let b = exact_4d(&rows, &c, None, &Budget::default()).unwrap();
            for (p, q) in a.iter().zip(&b) {
                assert_eq!(p.value, q.value);
                assert_eq!(p.upper, q.upper);
                assert_eq!(p.u, q.u);
            }
        }
        assert!(cache.hyperplanes.iter().filter(|h| h.get().is_some()).count() >= n - 1);
    }

    /// Inputs all on one plane or one line: the rows span only 3 or 2 dimensions, every hyperplane contains the
    /// null directions, and the polar (over the ball) equals the rank-3 or rank-2 enumeration in a basis of the row
    /// space.
    #[test]
    fn rank4_polar_on_rank_deficient_rows_equals_lower_rank_enumeration() {
        let mut rng = Rng::new(31);
        for rank in [2usize, 3] {
            for _ in 0..3 {
                let n = 15;
                // Rows = coefficients (n x rank) times an orthonormal basis of a random rank-dimensional subspace.
                let coef = Mat::from_fn(n, rank, |_, _| rng.normal());
                let raw = Mat::from_fn(4, rank, |_, _| rng.normal());
                let q = raw.qr().compute_thin_Q();
                let x = Mat::from_fn(n, 4, |i, m| (0..rank).map(|t| coef[(i, t)] * q[(m, t)]).sum());
                let c: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
                let full = exact_4d(&Rows::new(x.as_ref()), &c, None, &Budget::default()).unwrap();
                let low = super::super::exact_scalar_polar_pair(&Rows::new(coef.as_ref()), &c);
                // In R^4 the null directions of the rows give h = 0, so only the positive parts agree.
                for (a, b) in full.iter().zip(&low) {
                    let (va, vb) = (a.value.max(0.0), b.value.max(0.0));
                    assert!((va - vb).abs() <= 1e-9 * (1.0 + vb), "rank {rank}: {} vs {}", a.value, b.value);
                    assert!(a.upper >= vb - 1e-12);
                }
            }
        }
    }
}
