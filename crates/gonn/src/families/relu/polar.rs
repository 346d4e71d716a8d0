//! Polar of one hidden ReLU unit (THEORY.md sections 6 and 7): the scalar polar
//! `max_{||u|| <= 1} c^T (X u)_+`, exactly by enumerating the hyperplane arrangement of the rows of `X` when
//! `rank(X) <= 4`, or heuristically by ascent over activation patterns with cone projections.
//!
//! On the sphere, `h(u) = c^T (X u)_+` is linear on each pattern cone `K_D` with gradient `g_D = X^T D c`. Its
//! maximum is attained either inside a cone (then `u = g_D / ||g_D||`) or on a hyperplane `x_i^T u = 0`, where the
//! same problem appears one dimension lower. In `R^2` the sphere is a circle: sorting the `2n` angles where a
//! sample switches on or off and sweeping once gives the exact maximum. In `R^3` every hyperplane is such a circle
//! (`n` sweeps), and every region touches some hyperplane, so the sweeps also list every region's `g_D`; a
//! region's interior maximum counts only if `g_D / ||g_D||` lies in the region, which evaluating `h` there decides.
//! In `R^4` ([`rank4`]) the `R^3` sweep runs inside every hyperplane (`n^2` circle sweeps).

pub mod bab;
pub mod cover;
pub mod l2;
mod rank4;

pub use rank4::{Arrangement4, ARRANGEMENT4_CACHE_BYTES};

use std::f64::consts::PI;

use crate::numerics::budget::Budget;
use crate::numerics::cone::{project_warm, Rows};
use crate::numerics::rng::Rng;

const TAU: f64 = 2.0 * PI;

/// The maximum of `h` and where it is attained.
#[derive(Clone, Debug)]
pub struct ScalarPolar {
    /// `h(u)` at the returned `u`, evaluated directly: a valid lower bound.
    pub value: f64,
    /// A proven upper bound on `max h` (the enumerated maximum plus a rounding margin, or a norm bound).
    pub upper: f64,
    /// Unit-norm maximizer in the coordinates of the rows passed in.
    pub u: Vec<f64>,
    /// Further local maxima the enumeration evaluated, `(value, unit)` in decreasing order (at most
    /// [`EXTRA_MAXIMA`]; the rank-3 and rank-4 enumerations report them): more columns from one costly call.
    pub extra: Vec<(f64, Vec<f64>)>,
}

/// How many further local maxima an enumeration reports in [`ScalarPolar::extra`].
pub const EXTRA_MAXIMA: usize = 8;

/// The best [`EXTRA_MAXIMA`] of the evaluated interior maxima `(value, unit)` other than `best` (a region's maximum
/// is met once per arc it touches, so near-equal units count once), in decreasing order.
fn distinct_maxima(mut evaluated: Vec<(f64, Vec<f64>)>, best: &[f64]) -> Vec<(f64, Vec<f64>)> {
    evaluated.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut extra: Vec<(f64, Vec<f64>)> = Vec::new();
    for (v, w) in evaluated {
        if extra.len() == EXTRA_MAXIMA {
            break;
        }
        let close = |a: &[f64]| a.iter().zip(&w).all(|(p, q)| (p - q).abs() <= 1e-9);
        if !close(best) && !extra.iter().any(|(_, e)| close(e)) {
            extra.push((v, w));
        }
    }
    extra
}

/// Evaluates candidate critical points `(||g||, g)` (a face's or region's `g`, at `u = g / ||g||`) in decreasing
/// order of `||g||` until none can beat `best`, which is updated; each evaluated `(value, u)` with a positive value
/// goes to `evaluated`. Candidates left unevaluated have `||g||` at most the best attained value, so they cannot beat
/// it. `None` when `budget` expires.
fn evaluate_candidates<const D: usize>(
    rows: &Rows,
    c: &[f64],
    mut found: Vec<(f64, [f64; D])>,
    best: &mut (f64, Vec<f64>),
    evaluated: &mut Vec<(f64, Vec<f64>)>,
    budget: &Budget,
) -> Option<()> {
    found.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut last: Option<[f64; D]> = None;
    for (t, (gn, g)) in found.into_iter().enumerate() {
        if gn <= best.0 {
            break;
        }
        if t % 64 == 63 && budget.expired() {
            return None;
        }
        // A region's critical point is met once per arc it touches: consecutive duplicates are evaluated once.
        if last.is_some_and(|l| (0..D).all(|m| (l[m] - g[m]).abs() <= 1e-13 * gn)) {
            continue;
        }
        last = Some(g);
        let u: Vec<f64> = g.iter().map(|v| v / gn).collect();
        let v = rows.relu_value(c, &u);
        if v > 0.0 {
            evaluated.push((v, u.clone()));
        }
        if v > best.0 {
            *best = (v, u);
        }
    }
    Some(())
}

/// What a circle sweep reports, in order.
enum Step {
    /// Sample `j` switches on (`true`) or off.
    Toggle(usize, bool),
    /// The arc `[lo, hi]` between consecutive switching angles, with the samples active inside it switched on.
    Arc(f64, f64),
}

/// The switching events of a circle sweep, `(angle, sample, switches on)` sorted by angle, and the samples active
/// at angle 0: sample `j` is active on the open half-circle of angles `(alpha_j, alpha_j + pi)` (mod `2 pi`).
/// Samples with a non-finite angle are ignored.
fn switch_events(alpha: &[f64]) -> (Vec<(f64, usize, bool)>, Vec<usize>) {
    let mut events: Vec<(f64, usize, bool)> = Vec::with_capacity(2 * alpha.len());
    let mut start_active = Vec::new();
    for (j, &a) in alpha.iter().enumerate() {
        if !a.is_finite() {
            continue;
        }
        let mut b = a + PI;
        if b >= TAU {
            b -= TAU;
        }
        if b < a {
            start_active.push(j);
        }
        events.push((a, j, true));
        events.push((b, j, false));
    }
    events.sort_by(|x, y| x.0.total_cmp(&y.0));
    (events, start_active)
}

/// Sweeps the circle over `[0, 2 pi)` through the [`switch_events`] of `alpha`.
fn sweep(alpha: &[f64], visit: &mut dyn FnMut(Step)) {
    let (events, start_active) = switch_events(alpha);
    for j in start_active {
        visit(Step::Toggle(j, true));
    }
    let mut prev = 0.0;
    for (th, j, on) in events {
        if th > prev {
            visit(Step::Arc(prev, th));
            prev = th;
        }
        visit(Step::Toggle(j, on));
    }
    visit(Step::Arc(prev, TAU));
}

/// The angle in `[0, 2 pi)` where a sample with in-plane coordinates `a` switches on: `a . e(phi) > 0` exactly for
/// `phi` in `(alpha, alpha + pi)`.
fn switch_angle(a: [f64; 2], scale: f64) -> f64 {
    if a[0].hypot(a[1]) <= 1e-12 * scale {
        return f64::NAN;
    }
    let mut alpha = (a[1].atan2(a[0]) - 0.5 * PI).rem_euclid(TAU);
    if alpha >= TAU {
        alpha = 0.0;
    }
    alpha
}

/// `max_phi s sum_j c_j (a_j^T e(phi))_+` and its angle, for each sign `s` of `signs`: one angular sweep over the
/// switching angles of the points `a_j` (those below `1e-12 scale` are skipped), the maximum of `g^T e(phi)` on each
/// arc between them.
fn circle_max<const S: usize>(a: &[[f64; 2]], c: &[f64], scale: f64, signs: [f64; S]) -> [(f64, f64); S] {
    let alpha: Vec<f64> = a.iter().map(|&aj| switch_angle(aj, scale)).collect();
    let mut g = [0.0; 2];
    let mut best = [(f64::NEG_INFINITY, 0.0); S];
    sweep(&alpha, &mut |step| match step {
        Step::Toggle(j, on) => {
            let s = if on { c[j] } else { -c[j] };
            g[0] += s * a[j][0];
            g[1] += s * a[j][1];
        }
        Step::Arc(lo, hi) => {
            for (k, sg) in signs.into_iter().enumerate() {
                let (v, phi) = arc_max([sg * g[0], sg * g[1]], lo, hi);
                if v > best[k].0 {
                    best[k] = (v, phi);
                }
            }
        }
    });
    best
}

/// `max_{phi in [lo, hi]} g . e(phi)` and its angle.
fn arc_max(g: [f64; 2], lo: f64, hi: f64) -> (f64, f64) {
    let n = g[0].hypot(g[1]);
    if n > 0.0 {
        let phi = g[1].atan2(g[0]).rem_euclid(TAU);
        if phi >= lo && phi <= hi {
            return (n, phi);
        }
    }
    let (vl, vh) = (g[0] * lo.cos() + g[1] * lo.sin(), g[0] * hi.cos() + g[1] * hi.sin());
    if vl >= vh {
        (vl, lo)
    } else {
        (vh, hi)
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// Rounding margin for the enumerated maximum: the incremental sums touch every term `|c_j| ||x_j||` a few
/// times, each with relative error below `n * eps`; samples whose in-plane part is below `1e-12 ||x_j||` are
/// bundled with the hyperplane they nearly lie on (3-D), an error of at most `1e-12 |c_j| ||x_j||` each; and the
/// samples the 2-D sweep skips as zero rows (`||x_j|| <= 1e-12 max_k ||x_k||`) contribute at most `|c_j| ||x_j||`.
fn margin(rows: &Rows, c: &[f64]) -> f64 {
    let norms: Vec<f64> = (0..rows.n).map(|j| norm(rows.row(j))).collect();
    let s: f64 = (0..rows.n).map(|j| c[j].abs() * norms[j]).sum();
    let scale = norms.iter().copied().fold(0.0, f64::max);
    let skipped: f64 = (0..rows.n).filter(|&j| norms[j] <= 1e-12 * scale).map(|j| c[j].abs() * norms[j]).sum();
    (8.0 * (rows.n as f64 + 4.0) * f64::EPSILON + 1e-12) * s + skipped
}

/// Exact `max_{||u|| = 1} c^T (X u)_+` for rows of dimension `d <= 4` (the rows of a rank-reduced `X`).
pub fn exact_scalar_polar(rows: &Rows, c: &[f64]) -> ScalarPolar {
    let [plus, _] = exact_scalar_polar_pair(rows, c);
    plus
}

/// The exact scalar polars of `c` and of `-c` from one enumeration (the sweeps visit the same patterns; the
/// gradients of `-c` are the negated ones of `c`).
pub fn exact_scalar_polar_pair(rows: &Rows, c: &[f64]) -> [ScalarPolar; 2] {
    exact_scalar_polar_pair_within(rows, c, &Budget::default()).expect("no budget to expire")
}

/// [`exact_scalar_polar_pair`] that gives up (`None`) when `budget` expires: the 3-D enumeration polls it once per
/// hyperplane, so a long enumeration honours `--max-seconds` and Ctrl-C.
pub fn exact_scalar_polar_pair_within(rows: &Rows, c: &[f64], budget: &Budget) -> Option<[ScalarPolar; 2]> {
    exact_scalar_polar_pair_cached(rows, None, c, budget)
}

/// [`exact_scalar_polar_pair_within`] with the `c`-independent part of the enumeration kept across calls
/// ([`Arrangement`]).
pub fn exact_scalar_polar_pair_cached(
    rows: &Rows,
    cache: Option<&Arrangement>,
    c: &[f64],
    budget: &Budget,
) -> Option<[ScalarPolar; 2]> {
    let d = rows.d;
    assert!(d <= 4, "exact enumeration needs d <= 4");
    let neg: Vec<f64> = c.iter().map(|v| -v).collect();
    let cs = [c, neg.as_slice()];
    match d {
        0 | 1 => {
            let cands: Vec<Vec<f64>> = if d == 1 { vec![vec![1.0], vec![-1.0]] } else { vec![] };
            Some([finish(rows, cs[0], cands.clone(), 0.0), finish(rows, cs[1], cands, 0.0)])
        }
        2 => {
            let scale = (0..rows.n).map(|j| rows.norm(j)).fold(0.0, f64::max);
            let a: Vec<[f64; 2]> = (0..rows.n).map(|j| [rows.row(j)[0], rows.row(j)[1]]).collect();
            let best = circle_max(&a, c, scale, [1.0, -1.0]);
            let one = |k: usize| finish(rows, cs[k], vec![vec![best[k].1.cos(), best[k].1.sin()]], best[k].0);
            Some([one(0), one(1)])
        }
        3 => exact_3d(rows, c, cache.and_then(Arrangement::rank3), budget),
        _ => rank4::exact_4d(rows, c, cache.and_then(Arrangement::rank4), budget),
    }
}

/// Evaluates the candidate directions directly and assembles the result.
fn finish(rows: &Rows, c: &[f64], cands: Vec<Vec<f64>>, best_formula: f64) -> ScalarPolar {
    let mut best = (0.0, vec![0.0; rows.d]);
    if rows.d > 0 {
        best.1[0] = 1.0;
        best.0 = rows.relu_value(c, &best.1);
    }
    for u in cands {
        let v = rows.relu_value(c, &u);
        if v > best.0 {
            best = (v, u);
        }
    }
    let upper = best_formula.max(best.0).max(0.0) + margin(rows, c);
    ScalarPolar { value: best.0, upper, u: best.1, extra: Vec::new() }
}

fn cross(a: &[f64], b: &[f64]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}

/// The great circle `x_i^T u = 0` of the arrangement in `R^3`: an orthonormal basis `(e1, e2)` of its plane, the
/// samples that switch on or off along it in angular order, and the samples lying on it (parallel to `x_i`;
/// `true`: on the side where `x_i^T u > 0`). Sample `j` is active on the half-circle that starts at the point
/// perpendicular to its in-plane part `a_j`, and its two switching points are antipodal, so one order serves both
/// half-turns: `order` lists every switching sample by its switching point in the first half-turn, with the high bit
/// set when it switches off there (it is active at angle 0); the second half-turn repeats the order with the opposite
/// switches. Points are recomputed from the rows (4 bytes per sample and circle). It depends on the inputs only, so
/// it is built once and reused for every `c`.
#[derive(Clone, Debug)]
pub struct Circle {
    e: [[f64; 3]; 2],
    order: Vec<u32>,
    /// The first half-turn's `(pseudo-angle, point)` in `order`'s order, when kept (else recomputed per call).
    points: Vec<(f64, [f64; 2])>,
    bundled: Vec<(u32, bool)>,
}

/// The flag of [`Circle::order`] for a sample that switches off in the first half-turn.
const OFF: u32 = 1 << 31;

/// A pseudo-angle of the unit vector `p` in `[0, 4)`, increasing with its angle in `[0, 2 pi)` (no trigonometry);
/// antipodal points differ by 2.
fn pseudo_angle(p: [f64; 2]) -> f64 {
    let (x, y) = (p[0], p[1]);
    if y >= 0.0 {
        if x >= 0.0 {
            y / (x + y)
        } else {
            1.0 - x / (y - x)
        }
    } else if x < 0.0 {
        2.0 + y / (x + y)
    } else {
        3.0 + x / (x - y)
    }
}

/// An orthonormal basis `(e1, e2)` of the plane `x^T u = 0` for a unit `x` in `R^3` (`e1` from the axis least
/// aligned with `x`).
fn circle_basis(xi: &[f64]) -> [[f64; 3]; 2] {
    let axis = (0..3).min_by(|&a, &b| xi[a].abs().total_cmp(&xi[b].abs())).expect("3 axes");
    let mut k = [0.0; 3];
    k[axis] = 1.0;
    let e1 = cross(xi, &k);
    let n1 = norm(&e1);
    let e1 = [e1[0] / n1, e1[1] / n1, e1[2] / n1];
    [e1, cross(xi, &e1)]
}

impl Circle {
    /// The circle of sample `i`; `keep_points`: store the switching points (24 more bytes per sample).
    fn new(rows: &Rows, norms: &[f64], i: usize, keep_points: bool) -> Self {
        assert!(rows.n < OFF as usize, "sample indices fit in 31 bits");
        let xi: Vec<f64> = rows.row(i).iter().map(|v| v / norms[i]).collect();
        let mut circle = Self { e: circle_basis(&xi), order: Vec::new(), points: Vec::new(), bundled: Vec::new() };
        let mut keyed: Vec<(f64, u32, [f64; 2])> = Vec::with_capacity(rows.n);
        for (j, &nj) in norms.iter().enumerate() {
            match circle.on_point(rows, j, nj.max(f64::MIN_POSITIVE)) {
                Some(p) => {
                    let (t_on, t_off) = (pseudo_angle(p), pseudo_angle([-p[0], -p[1]]));
                    keyed.push(if t_on > t_off {
                        (t_off, j as u32 | OFF, [-p[0], -p[1]])
                    } else {
                        (t_on, j as u32, p)
                    });
                }
                None if nj > 0.0 => circle.bundled.push((j as u32, dot(&xi, rows.row(j)) > 0.0)),
                None => {}
            }
        }
        keyed.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        circle.order = keyed.iter().map(|k| k.1).collect();
        if keep_points {
            circle.points = keyed.into_iter().map(|(t, _, p)| (t, p)).collect();
        }
        circle
    }

    /// Where sample `j` switches on along the circle: `e(phi)` with `a_j . e(phi) > 0` just after it; `None` when
    /// its in-plane part is below `1e-12 ||x_j||` (it lies on the circle's hyperplane).
    fn on_point(&self, rows: &Rows, j: usize, nj: f64) -> Option<[f64; 2]> {
        let xj = rows.row(j);
        let a = [dot(&self.e[0], xj), dot(&self.e[1], xj)];
        let an = (a[0] * a[0] + a[1] * a[1]).sqrt();
        (an > 1e-12 * nj).then(|| [a[1] / an, -a[0] / an])
    }

    /// The switching events of the first half-turn, `(sample, switches on, pseudo-angle, point)` in angular order,
    /// into `out`; the second half-turn repeats them with the opposite switches at the antipodal points (pseudo-angle
    /// plus 2).
    fn first_half(&self, rows: &Rows, out: &mut Vec<(usize, bool, f64, [f64; 2])>) {
        out.clear();
        out.extend(self.order.iter().enumerate().map(|(t, &o)| {
            let j = (o & !OFF) as usize;
            let first_on = o & OFF == 0;
            // The first half-turn's point: the on-point, or its antipode where the sample switches off.
            let (angle, p) = match self.points.get(t) {
                Some(&kept) => kept,
                None => {
                    let p = self.on_point(rows, j, 0.0).unwrap_or([1.0, 0.0]);
                    let p = if first_on { p } else { [-p[0], -p[1]] };
                    (pseudo_angle(p).min(2.0), p)
                }
            };
            (j, first_on, angle, p)
        }));
    }

    /// The samples active at angle 0.
    fn start_active(&self) -> impl Iterator<Item = usize> + '_ {
        self.order.iter().filter(|&&o| o & OFF != 0).map(|&o| (o & !OFF) as usize)
    }

    /// Bytes held per circle of `n` samples (for the cache limit), with or without the points.
    fn bytes(n: usize, keep_points: bool) -> usize {
        if keep_points {
            28 * n + 120
        } else {
            4 * n + 120
        }
    }
}

/// The circles of every sample's hyperplane, kept across polar calls on the same inputs when they fit in
/// [`ARRANGEMENT_CACHE_BYTES`].
#[derive(Clone, Debug)]
pub struct Arrangement3 {
    circles: Vec<Option<Circle>>,
}

/// The `c`-independent part of the exact polar's enumeration of `rows`, kept across polar calls on the same inputs
/// when it fits in memory: the rank-3 circles ([`Arrangement3`]) or the rank-4 circle sweeps
/// ([`Arrangement4`]).
#[derive(Clone, Debug)]
pub enum Arrangement {
    Rank3(Arrangement3),
    Rank4(Arrangement4),
}

impl Arrangement {
    /// The cache for `rows` (`d = 3` or `4`), or `None` when it does not fit or is not needed.
    pub fn new(rows: &Rows) -> Option<Self> {
        match rows.d {
            3 => Arrangement3::new(rows).map(Self::Rank3),
            4 => Arrangement4::new(rows).map(Self::Rank4),
            _ => None,
        }
    }

    fn rank3(&self) -> Option<&Arrangement3> {
        match self {
            Self::Rank3(a) => Some(a),
            Self::Rank4(_) => None,
        }
    }

    fn rank4(&self) -> Option<&Arrangement4> {
        match self {
            Self::Rank4(a) => Some(a),
            Self::Rank3(_) => None,
        }
    }
}

/// Memory limit for a cached rank-3 arrangement: the sample order alone, about `4 n^2` bytes (`n = 11,500` at this
/// limit); the switching points are recomputed per call.
pub const ARRANGEMENT_CACHE_BYTES: usize = 512 << 20;

/// Up to this many bytes the cache also keeps the switching points (about `28 n^2` bytes: `n = 3000`), which makes
/// each sweep about twice as fast.
pub const ARRANGEMENT_POINTS_BYTES: usize = 256 << 20;

impl Arrangement3 {
    /// The circles of `rows` (`d = 3`), or `None` when they do not fit in [`ARRANGEMENT_CACHE_BYTES`].
    pub fn new(rows: &Rows) -> Option<Self> {
        let fits = |keep| Circle::bytes(rows.n, keep).saturating_mul(rows.n) <= ARRANGEMENT_POINTS_BYTES;
        let keep_points = fits(true);
        if rows.d != 3 || Circle::bytes(rows.n, false).saturating_mul(rows.n) > ARRANGEMENT_CACHE_BYTES {
            return None;
        }
        let norms: Vec<f64> = (0..rows.n).map(|j| rows.norm(j)).collect();
        let circles =
            (0..rows.n).map(|i| (norms[i] > 0.0).then(|| Circle::new(rows, &norms, i, keep_points))).collect();
        Some(Self { circles })
    }
}

/// `max` of `g . p` over the arc from `pa` to `pb` (counterclockwise, at most `pi` long) and its point.
fn arc_max_points(g: [f64; 2], pa: [f64; 2], pb: [f64; 2]) -> (f64, [f64; 2]) {
    let n = (g[0] * g[0] + g[1] * g[1]).sqrt();
    if n > 0.0 && pa[0] * g[1] - pa[1] * g[0] >= 0.0 && g[0] * pb[1] - g[1] * pb[0] >= 0.0 {
        return (n, [g[0] / n, g[1] / n]);
    }
    let (vl, vh) = (g[0] * pa[0] + g[1] * pa[1], g[0] * pb[0] + g[1] * pb[1]);
    if vl >= vh {
        (vl, pa)
    } else {
        (vh, pb)
    }
}

/// `max` of `g . p` and of `-g . p` over the arc from `pa` to `pb` (counterclockwise, at most `pi` long) and its
/// point, for each sign `k` with `need[k]` whose maximum exceeds `floor[k]` (else `None`). The norm is computed
/// only where the maximum is interior.
fn arc_max_pair(
    g: [f64; 2],
    pa: [f64; 2],
    pb: [f64; 2],
    need: [bool; 2],
    floor: [f64; 2],
) -> [Option<(f64, [f64; 2])>; 2] {
    let (from_a, to_b) = (pa[0] * g[1] - pa[1] * g[0], g[0] * pb[1] - g[1] * pb[0]);
    let (vl, vh) = (g[0] * pa[0] + g[1] * pa[1], g[0] * pb[0] + g[1] * pb[1]);
    let one = |k: usize, sg: f64| {
        if !need[k] {
            return None;
        }
        // -g's angle is inside where both cross products are nonpositive.
        if sg * from_a >= 0.0 && sg * to_b >= 0.0 {
            let n = (g[0] * g[0] + g[1] * g[1]).sqrt();
            if n > 0.0 {
                return (n > floor[k]).then(|| (n, [sg * g[0] / n, sg * g[1] / n]));
            }
        }
        let (a, b) = (sg * vl, sg * vh);
        let (v, p) = if a >= b { (a, pa) } else { (b, pb) };
        (v > floor[k]).then_some((v, p))
    };
    [one(0, 1.0), one(1, -1.0)]
}

/// The `R^3` case, for `c` and `-c` at once: one circle sweep per hyperplane (boundary maxima, exact), plus the
/// interior critical points of the regions next to each arc, evaluated in decreasing order of `||g_D||` until
/// none can beat the best value. The circles come from `cache` when given.
fn exact_3d(rows: &Rows, c: &[f64], cache: Option<&Arrangement3>, budget: &Budget) -> Option<[ScalarPolar; 2]> {
    const SIGNS: [f64; 2] = [1.0, -1.0];
    let n = rows.n;
    let norms: Vec<f64> = (0..n).map(|j| rows.norm(j)).collect();
    let mut best_formula = [f64::NEG_INFINITY; 2];
    let mut best_dir = [vec![1.0, 0.0, 0.0], vec![1.0, 0.0, 0.0]];
    let mut regions: [Vec<(f64, [f64; 3])>; 2] = [Vec::new(), Vec::new()];
    // Attained values from a few pattern ascents: candidates whose `||g_D||` is below them cannot win.
    let neg: Vec<f64> = c.iter().map(|v| -v).collect();
    let seeds: [(f64, Vec<f64>); 2] = [seed_ascent(rows, c), seed_ascent(rows, &neg)];
    let side_ok = |j: usize, active: bool, g: &[f64; 3], gn: f64| {
        let xg = dot(rows.row(j), g);
        let tol = 1e-12 * gn * norms[j];
        if active {
            xg >= -tol
        } else {
            xg <= tol
        }
    };
    // Probe samples: a region's critical point must lie on the region's side of every sample's hyperplane; testing
    // a few spread samples rejects most candidates without an `O(n)` evaluation (a violated side is a proof that
    // the critical point lies outside the region). The probe that rejected last moves to the front.
    let nonzero: Vec<usize> = (0..n).filter(|&j| norms[j] > 0.0).collect();
    let np = PROBES.min(nonzero.len());
    let mut probes: Vec<usize> = (0..np).map(|t| nonzero[t * nonzero.len() / np]).collect();
    let mut active = vec![false; n];
    // Bundled samples (on the sweep's hyperplane): 1 on the plus side, -1 on the minus side, 0 otherwise.
    let mut bundle = vec![0i8; n];
    let mut built = None;
    let mut half: Vec<(usize, bool, f64, [f64; 2])> = Vec::with_capacity(n);
    for i in 0..n {
        if budget.expired() {
            return None;
        }
        if norms[i] == 0.0 {
            continue;
        }
        let circle = match cache.and_then(|a| a.circles[i].as_ref()) {
            Some(cc) => cc,
            None => built.insert(Circle::new(rows, &norms, i, true)),
        };
        let [e1, e2] = circle.e;
        active.iter_mut().for_each(|a| *a = false);
        bundle.iter_mut().for_each(|b| *b = 0);
        // Samples on the same hyperplane as x_i switch with it: bundle them by side.
        let mut plus = [0.0; 3];
        let mut minus = [0.0; 3];
        for &(j, on_plus) in &circle.bundled {
            let j = j as usize;
            bundle[j] = if on_plus { 1 } else { -1 };
            let side = if on_plus { &mut plus } else { &mut minus };
            side.iter_mut().zip(rows.row(j)).for_each(|(s, x)| *s += c[j] * x);
        }
        // The kink of h across H_i, kappa = sum_j c_j ||x_j|| over the samples on it: where it is convex for a sign
        // (kappa > 0), no point of an arc is a maximum (h increases to first order off H_i; at a vertex, along the
        // other circle, unless another concave kink passes there, whose circle then covers it; THEORY.md
        // section 7), so the arc maxima are skipped for that sign.
        let need_max = convex_kink(c, &norms, circle.bundled.iter().map(|&(j, _)| j as usize)).map(|convex| !convex);
        circle.first_half(rows, &mut half);
        let len = 2 * half.len();
        // Event `e` of the whole turn: the second half-turn repeats the first with the opposite switches at the
        // antipodal points.
        let event = |e: usize| {
            let h = half.len();
            if e < h {
                half[e]
            } else {
                let (j, on, angle, p) = half[e - h];
                (j, !on, angle + 2.0, [-p[0], -p[1]])
            }
        };
        // Regions are listed only from the arcs that are a local minimum of their edges' circles: the edges next to
        // an arc of circle i at its ends lie on the circles of the samples switching there, so the arc is a local
        // minimum when both exceed i. Each region's edge on the smallest circle is one, so every region is still
        // listed; near non-simple vertices (another switching point within ANGLE_GAP, which also catches repeated
        // hyperplanes) or on a circle shared by several samples, every arc lists its regions.
        let simple = |e: usize| {
            let prev = if e == 0 { event(len - 1).2 - 4.0 } else { event(e - 1).2 };
            let next = if e + 1 == len { event(0).2 + 4.0 } else { event(e + 1).2 };
            let angle = event(e).2;
            angle - prev > ANGLE_GAP && next - angle > ANGLE_GAP
        };
        let alone = circle.bundled.len() == 1;
        let listed = |start: usize, end: usize| {
            !(alone && simple(start) && simple(end)) || (event(start).0 > i && event(end).0 > i)
        };
        let mut g3 = [0.0; 3];
        let toggle = |j: usize, on: bool, g3: &mut [f64; 3], active: &mut [bool]| {
            active[j] = on;
            let s = if on { c[j] } else { -c[j] };
            rows.row(j).iter().zip(g3.iter_mut()).for_each(|(x, g)| *g += s * x);
        };
        for j in circle.start_active() {
            toggle(j, true, &mut g3, &mut active);
        }
        // Necessary tests for a region's critical point g / ||g|| to lie inside it, from the hyperplanes that bound
        // the arc: the sample switched just before it (`last`) and the first one switched after it (checked on the
        // candidates left `pending`), then the probes. Only survivors are evaluated.
        let mut last: Option<(usize, bool)> = None;
        let mut pending: [Vec<(f64, [f64; 3])>; 2] = [Vec::new(), Vec::new()];
        let (mut prev_angle, mut prev_point) = (0.0, [1.0, 0.0]);
        // x_i^T of the bundles, and the norms that bound the rounding of `x_i^T (g3 + bundle)` assembled from parts.
        let row_i = rows.row(i);
        let bundles = [(plus, true, dot(row_i, &plus), norm(&plus)), (minus, false, dot(row_i, &minus), norm(&minus))];
        let mut visit_arc = |pa: [f64; 2],
                             pb: [f64; 2],
                             g3: &[f64; 3],
                             last: Option<(usize, bool)>,
                             active: &[bool],
                             list: bool,
                             pending: &mut [Vec<(f64, [f64; 3])>; 2]| {
            let g2 = [dot(&e1, g3), dot(&e2, g3)];
            for (k, found) in arc_max_pair(g2, pa, pb, need_max, best_formula).into_iter().enumerate() {
                if let Some((v, p)) = found {
                    best_formula[k] = v;
                    best_dir[k] = (0..3).map(|m| p[0] * e1[m] + p[1] * e2[m]).collect();
                }
            }
            if !list {
                return;
            }
            // The region on the side where x_i is active (plus) has its critical point inside only if
            // x_i^T g > 0, the other only if x_i^T g < 0: for each side one sign at most passes (both only near 0).
            // x_i^T (g3 + bundle) is assembled from x_i^T g3; the tolerance covers its rounding.
            let (xg_i, g3_norm) = (dot(row_i, g3), norm(g3));
            for &(side, on_plus, x_side, side_norm) in &bundles {
                let gs = [g3[0] + side[0], g3[1] + side[1], g3[2] + side[2]];
                let gn = norm(&gs);
                let v_i = xg_i + x_side;
                let tol_i = (1e-12 * gn + 8.0 * f64::EPSILON * (g3_norm + side_norm)) * norms[i];
                for (k, sg) in SIGNS.into_iter().enumerate() {
                    let sv = sg * v_i;
                    let inside_i = if on_plus { sv >= -tol_i } else { sv <= tol_i };
                    if !inside_i || gn <= best_formula[k].max(seeds[k].0) {
                        continue;
                    }
                    let g = gs.map(|v| sg * v);
                    if last.is_some_and(|(j, on)| !side_ok(j, on, &g, gn)) {
                        continue;
                    }
                    // The region's side of probe l: tracked by the sweep, or that of its bundle (a probe has a
                    // nonzero row, so it either switches along this circle or lies on it).
                    let rejected = probes.iter().position(|&l| {
                        let on = match bundle[l] {
                            0 => active[l],
                            b => (b > 0) == on_plus,
                        };
                        l != i && !side_ok(l, on, &g, gn)
                    });
                    match rejected {
                        Some(t) => probes[..=t].rotate_right(1),
                        None => pending[k].push((gn, g)),
                    }
                }
            }
        };
        for e in 0..len {
            let (j, on, angle, point) = event(e);
            if angle > prev_angle {
                // The arc from the previous switching point (the last one, wrapped, for the first piece).
                let list = listed(if e == 0 { len - 1 } else { e - 1 }, e);
                if list || need_max[0] || need_max[1] {
                    visit_arc(prev_point, point, &g3, last, &active, list, &mut pending);
                }
                (prev_angle, prev_point) = (angle, point);
            }
            // j switches on at the end of the previous arc: it was inactive inside it (and vice versa).
            for (pend, reg) in pending.iter_mut().zip(regions.iter_mut()) {
                for (gn, g) in pend.drain(..) {
                    if side_ok(j, !on, &g, gn) {
                        reg.push((gn, g));
                    }
                }
            }
            last = Some((j, on));
            toggle(j, on, &mut g3, &mut active);
        }
        if circle.order.is_empty() {
            // No sample switches along this circle: one region on each side, the whole circle its boundary.
            visit_arc([1.0, 0.0], [-1.0, 0.0], &g3, None, &active, true, &mut pending);
            visit_arc([-1.0, 0.0], [1.0, 0.0], &g3, None, &active, true, &mut pending);
        } else {
            let list = listed(len - 1, 0);
            if list || need_max[0] || need_max[1] {
                visit_arc(prev_point, [1.0, 0.0], &g3, last, &active, list, &mut pending);
            }
        }
        for (pend, reg) in pending.iter_mut().zip(regions.iter_mut()) {
            reg.append(pend);
        }
    }
    let cs = [c, neg.as_slice()];
    let mut out = Vec::with_capacity(2);
    for (k, (reg, seed)) in regions.into_iter().zip(seeds).enumerate() {
        let ck = cs[k];
        let dir = std::mem::take(&mut best_dir[k]);
        let mut best = (rows.relu_value(ck, &dir), dir);
        if seed.0 > best.0 {
            best = seed;
        }
        let formula = best_formula[k].max(best.0);
        let mut evaluated = Vec::new();
        evaluate_candidates(rows, ck, reg, &mut best, &mut evaluated, budget)?;
        // Every interior candidate that was not evaluated has ||g_D|| <= best value, so it cannot beat it.
        let upper = formula.max(best.0).max(0.0) + margin(rows, ck);
        let extra = distinct_maxima(evaluated, &best.1);
        out.push(ScalarPolar { value: best.0, upper, u: best.1, extra });
    }
    let minus = out.pop().expect("two signs");
    let plus = out.pop().expect("two signs");
    Some([plus, minus])
}

/// Switching points of a circle closer than this (in pseudo-angle) are treated as one non-simple vertex.
const ANGLE_GAP: f64 = 1e-9;

/// Whether `h = c^T (X u)_+` has a convex kink, for `c` and for `-c`, across the hyperplane that the samples `on`
/// share: `kappa = sum_j c_j ||x_j||` (every `(t)_+` bends the same way across it) beyond its rounding (THEORY.md
/// section 7: no face, edge or vertex point on such a hyperplane is a maximum unless a concave kink covers it).
fn convex_kink(c: &[f64], norms: &[f64], on: impl Iterator<Item = usize> + Clone) -> [bool; 2] {
    let kappa: f64 = on.clone().map(|j| c[j] * norms[j]).sum();
    let tol = 1e-9 * on.map(|j| (c[j] * norms[j]).abs()).sum::<f64>();
    [kappa > tol, -kappa > tol]
}

/// How many probe samples [`exact_3d`] tests each candidate region against before evaluating it.
const PROBES: usize = 24;

/// The best of pattern ascents from the rows with the largest `c_j ||x_j||` and from the all-active gradient: an
/// attained value and its unit (the zero value when `c` has no positive part).
fn seed_ascent(rows: &Rows, c: &[f64]) -> (f64, Vec<f64>) {
    let mut e = vec![0.0; rows.d];
    e[0] = 1.0;
    let mut best = (rows.relu_value(c, &e), e);
    let mut order: Vec<usize> = (0..rows.n).filter(|&j| c[j] > 0.0 && rows.norm(j) > 0.0).collect();
    order.sort_by(|&a, &b| (c[b] * rows.norm(b)).total_cmp(&(c[a] * rows.norm(a))));
    let mut starts: Vec<Vec<f64>> =
        order.iter().take(2).map(|&j| rows.row(j).iter().map(|v| v / rows.norm(j)).collect()).collect();
    let g = rows.masked_gradient(&vec![true; rows.n], c);
    let gn = norm(&g);
    if gn > 0.0 {
        starts.push(g.iter().map(|v| v / gn).collect());
    }
    for u in starts {
        let (v, u) = pattern_ascent(rows, c, u);
        if v > best.0 {
            best = (v, u);
        }
    }
    best
}

/// Ascent over activation patterns from `u0`: `u <- Proj_{K_D}(g_D) / ||.||` with `D` the pattern of `u`. Each
/// step maximizes `h` over the current cone, so `h` never decreases. Where it stalls on the boundary of its cone,
/// the cones across the boundary's hyperplanes (the samples tight at `u`, one at a time) are tried: a maximum on a
/// ridge (a concave kink, `c_j < 0`) is then followed along it instead of stopping where the ridge leaves the cone.
pub fn pattern_ascent(rows: &Rows, c: &[f64], u0: Vec<f64>) -> (f64, Vec<f64>) {
    let mut u = u0;
    let mut val = rows.relu_value(c, &u);
    let mut active = rows.pattern(&u);
    let mut g = rows.masked_gradient(&active, c);
    let mut set = Vec::new();
    // The best of `Proj_{K_D}(g_D) / ||.||` over the cone `D` (gradient `g_D`), when it improves on `val`.
    let step = |active: &[bool], g: &[f64], set: &mut Vec<usize>, val: f64| {
        let p = project_warm(rows, active, g, set)?;
        let pn = norm(&p);
        if pn <= val * (1.0 + 1e-12) || pn == 0.0 {
            return None;
        }
        let cand: Vec<f64> = p.iter().map(|v| v / pn).collect();
        let cv = rows.relu_value(c, &cand);
        (cv > val).then_some((cv, cand))
    };
    for _ in 0..100 {
        if let Some((cv, cand)) = step(&active, &g, &mut set, val) {
            (val, u) = (cv, cand);
            active = rows.pattern(&u);
            g = rows.masked_gradient(&active, c);
            continue;
        }
        // Stalled: the samples tight at u are among the constraints active in the last projection.
        let tight: Vec<usize> = set.iter().copied().filter(|&j| rows.dot(j, &u).abs() <= 1e-9 * rows.norm(j)).collect();
        let mut moved = false;
        for j in tight {
            active[j] = !active[j];
            let s = if active[j] { c[j] } else { -c[j] };
            let gj: Vec<f64> = g.iter().zip(rows.row(j)).map(|(a, x)| a + s * x).collect();
            let mut fset = set.clone();
            if let Some((cv, cand)) = step(&active, &gj, &mut fset, val) {
                (val, u, g, set) = (cv, cand, gj, fset);
                moved = true;
                break;
            }
            active[j] = !active[j];
        }
        if !moved {
            break;
        }
    }
    (val, u)
}

/// Exact `max` of `h(u) = c^T (X u)_+` over the great circle `x_i^T u = 0` of unit vectors (`d = 3`): the sweep of
/// the samples' in-plane parts `a_j = (e1^T x_j, e2^T x_j)`, where `h(e(phi)) = sum_j c_j (a_j^T e(phi))_+`. Returns
/// the attained value (re-evaluated on the rows) and its unit; `None` for a zero row or `d != 3`.
fn ridge_max(rows: &Rows, c: &[f64], i: usize) -> Option<(f64, Vec<f64>)> {
    let ni = rows.norm(i);
    if ni == 0.0 || rows.d != 3 {
        return None;
    }
    let xi: Vec<f64> = rows.row(i).iter().map(|v| v / ni).collect();
    let [e1, e2] = circle_basis(&xi);
    let a: Vec<[f64; 2]> = (0..rows.n).map(|j| [dot(&e1, rows.row(j)), dot(&e2, rows.row(j))]).collect();
    let scale = (0..rows.n).map(|j| rows.norm(j)).fold(0.0, f64::max);
    let [(_, phi)] = circle_max(&a, c, scale, [1.0]);
    let (cs, sn) = (phi.cos(), phi.sin());
    let u: Vec<f64> = (0..3).map(|m| cs * e1[m] + sn * e2[m]).collect();
    Some((rows.relu_value(c, &u), u))
}

/// An orthonormal basis of the orthogonal complement of the unit vector `v`: the columns other than `m` of the
/// Householder reflection `I - 2 w w^T / (w^T w)`, `w = v + sign(v_m) e_m`, `m` the largest entry of `v`.
pub(super) fn complement_basis(v: &[f64]) -> Vec<Vec<f64>> {
    let d = v.len();
    let m = (0..d).max_by(|&a, &b| v[a].abs().total_cmp(&v[b].abs())).expect("d > 0");
    let mut w = v.to_vec();
    w[m] += if v[m] >= 0.0 { 1.0 } else { -1.0 };
    let ww: f64 = w.iter().map(|a| a * a).sum();
    (0..d)
        .filter(|&col| col != m)
        .map(|col| (0..d).map(|r| f64::from(u8::from(r == col)) - 2.0 * w[r] * w[col] / ww).collect())
        .collect()
}

/// A maximum of `h` along the ridge `x_i^T u = 0` near `from`: exact for `d = 3` ([`ridge_max`]); for `d > 3` the
/// ridge is a `(d - 2)`-sphere, searched by the ridge ascent one dimension down, on the rows projected onto an
/// orthonormal basis of `x_i^perp`, from `from`'s projection. The value is attained (re-evaluated on the rows).
/// Each call spends one unit of `work` (`None` once it is spent: the recursion stays bounded).
fn ridge_search(rows: &Rows, c: &[f64], i: usize, from: &[f64], work: &mut usize) -> Option<(f64, Vec<f64>)> {
    *work = work.checked_sub(1)?;
    if rows.d == 3 {
        return ridge_max(rows, c, i);
    }
    let ni = rows.norm(i);
    if rows.d < 3 || ni == 0.0 {
        return None;
    }
    let d = rows.d;
    let xi: Vec<f64> = rows.row(i).iter().map(|v| v / ni).collect();
    let basis = complement_basis(&xi);
    let proj = faer::Mat::from_fn(rows.n, d - 1, |j, k| dot(&basis[k], rows.row(j)));
    let ridge = Rows::new(proj.as_ref());
    let start: Vec<f64> = basis.iter().map(|e| dot(e, from)).collect();
    let sn = norm(&start);
    if sn == 0.0 {
        return None;
    }
    let start = start.iter().map(|v| v / sn).collect();
    let (_, w) = ridge_ascent(&ridge, c, pattern_ascent(&ridge, c, start), work);
    let u: Vec<f64> = (0..d).map(|m| (0..d - 1).map(|k| w[k] * basis[k][m]).sum()).collect();
    let un = norm(&u);
    let u: Vec<f64> = u.iter().map(|v| v / un).collect();
    Some((rows.relu_value(c, &u), u))
}

/// Alternates the pattern ascent with maxima along the ridges through the point reached (the hyperplanes of the
/// samples tight there with a concave kink, `c_j < 0`; [`ridge_search`]), while either improves `h` (`d >= 3`).
fn ridge_ascent(rows: &Rows, c: &[f64], start: (f64, Vec<f64>), work: &mut usize) -> (f64, Vec<f64>) {
    let mut best = start;
    for _ in 0..RIDGE_ROUNDS {
        let tight: Vec<usize> =
            (0..rows.n).filter(|&j| c[j] < 0.0 && rows.dot(j, &best.1).abs() <= 1e-9 * rows.norm(j)).take(4).collect();
        let mut moved = false;
        for i in tight {
            if let Some((v, u)) = ridge_search(rows, c, i, &best.1, work) {
                if v > best.0 * (1.0 + 1e-12) + 1e-300 {
                    best = pattern_ascent(rows, c, u);
                    moved = true;
                    break;
                }
            }
        }
        if !moved {
            break;
        }
    }
    best
}

/// Rounds of [`ridge_ascent`].
const RIDGE_ROUNDS: usize = 8;

/// Ridge searches per ascent, at all levels together (each costs `O(n log n)` or a projection `O(n d)`).
const RIDGE_WORK: usize = 64;

/// The ridge ascent follows the best this many points the pattern ascents reached.
const RIDGE_POINTS: usize = 8;

/// At most this many full pattern ascents per heuristic polar (an eighth of the starts, at least 8 of them).
const MAX_ASCENTS: usize = 128;

/// The ridge ascent runs up to this many dimensions (inputs plus bias): each level down searches the ridges of the
/// level above.
pub(crate) const RIDGE_MAX_DIM: usize = 8;

/// Heuristic `max_{||u|| = 1} c^T (X u)_+`: pattern ascent from `seeds` (units of earlier searches), data-driven
/// starts (the samples with the largest
/// `|c_j| ||x_j||`, the gradients of the all-active and positive-part patterns) and `restarts` random ones (the
/// best eighth of them after a few fixed-point steps ascended fully: at least `min(restarts, 8)`, at most
/// `MAX_ASCENTS`), the best `RIDGE_POINTS` reached points then followed along their ridges (`ridge_ascent`, rows of
/// 3 to `RIDGE_MAX_DIM` entries). The
/// proven upper bound is `||c_+||_2 ||X||_2` (from `c^T (Xu)_+ <= c_+^T (Xu)_+ <= ||c_+|| ||Xu||`).
pub fn heuristic_scalar_polar(
    rows: &Rows,
    c: &[f64],
    x_norm: f64,
    restarts: usize,
    seeds: &[Vec<f64>],
    rng: &mut Rng,
    budget: &Budget,
) -> ScalarPolar {
    let d = rows.d;
    let mut starts: Vec<Vec<f64>> = seeds.iter().filter(|u| u.len() == d).cloned().collect();
    let unit = |v: Vec<f64>| {
        let n = norm(&v);
        (n > 0.0).then(|| v.iter().map(|a| a / n).collect::<Vec<f64>>())
    };
    let mut order: Vec<usize> = (0..rows.n).collect();
    order.sort_by(|&a, &b| (c[b].abs() * norm(rows.row(b))).total_cmp(&(c[a].abs() * norm(rows.row(a)))));
    for &j in order.iter().filter(|&&j| c[j] > 0.0).take(restarts.max(1)) {
        starts.extend(unit(rows.row(j).to_vec()));
    }
    let all = vec![true; rows.n];
    starts.extend(unit(rows.masked_gradient(&all, c)));
    let cp: Vec<f64> = c.iter().map(|v| v.max(0.0)).collect();
    starts.extend(unit(rows.masked_gradient(&all, &cp)));
    for _ in 0..restarts {
        starts.extend(unit((0..d).map(|_| rng.normal()).collect()));
    }
    let mut best = (0.0, {
        let mut e = vec![0.0; d];
        if d > 0 {
            e[0] = 1.0;
        }
        e
    });
    best.0 = rows.relu_value(c, &best.1);
    // Cheap phase: a few unprojected fixed-point steps u <- g_D(u) / ||g_D(u)|| from every start, keeping the
    // best point each visits; then the monotone projected ascent from the most promising ones.
    // The data-driven starts always run; the random ones stop when the budget ends.
    let keep = starts.len().saturating_sub(restarts).max(1);
    let mut scored: Vec<(f64, Vec<f64>)> = starts
        .into_iter()
        .enumerate()
        .take_while(|(i, _)| *i < keep || !budget.expired())
        .map(|(_, mut u)| {
            let mut top = (rows.relu_value(c, &u), u.clone());
            for _ in 0..5 {
                let Some(next) = unit(rows.masked_gradient(&rows.pattern(&u), c)) else { break };
                u = next;
                let v = rows.relu_value(c, &u);
                if v > top.0 {
                    top = (v, u.clone());
                }
            }
            top
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut reached: Vec<(f64, Vec<f64>)> = Vec::new();
    // The cheap phase ranks poorly where basins are small (11-D inputs): many starts also get many full ascents.
    let ascents = (restarts / 8).max(restarts.clamp(1, 8)).min(MAX_ASCENTS);
    for (t, (_, s)) in scored.into_iter().take(ascents).enumerate() {
        if t > 0 && budget.expired() {
            break;
        }
        reached.push(pattern_ascent(rows, c, s));
    }
    // Rows of 3 to RIDGE_MAX_DIM entries: maxima often lie on ridges (the hyperplane of a sample with a concave
    // kink), where the ascent stalls; the maximum along each ridge through a reached point may lead on. The
    // points where the ascents stalled stay candidates for the further columns (ranked after the ridge maxima).
    // Only the best `RIDGE_POINTS` are followed (each costs up to `RIDGE_WORK` evaluations).
    if (3..=RIDGE_MAX_DIM).contains(&d) {
        reached.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut ridged = Vec::new();
        for r in reached.iter().take(RIDGE_POINTS) {
            if budget.expired() {
                break;
            }
            let mut work = RIDGE_WORK;
            ridged.push(ridge_ascent(rows, c, r.clone(), &mut work));
        }
        reached.extend(ridged);
    }
    // The best maximum, then the other distinct ones (more columns from one search).
    reached.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut extra: Vec<(f64, Vec<f64>)> = Vec::new();
    for (v, u) in reached {
        if v > best.0 {
            best = (v, u);
            continue;
        }
        let distinct = |w: &Vec<f64>| dot(w, &u) < 1.0 - 1e-9;
        if v > 0.0 && distinct(&best.1) && extra.iter().all(|(_, w)| distinct(w)) && extra.len() < EXTRA_MAXIMA {
            extra.push((v, u));
        }
    }
    let upper = norm(&cp) * x_norm;
    ScalarPolar { value: best.0, upper: upper.max(best.0), u: best.1, extra }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    /// Brute force over a fine grid of the sphere (d = 2, 3): the exact polar is at least every grid value and
    /// at most the grid maximum plus the grid's Lipschitz slack.
    #[test]
    fn exact_polar_matches_dense_grid() {
        let mut rng = Rng::new(11);
        for d in [1usize, 2, 3] {
            for trial in 0..6 {
                let n = 7 + trial;
                let x = Mat::from_fn(n, d, |_, j| if j + 1 == d && d > 1 { 1.0 } else { rng.normal() });
                let rows = Rows::new(x.as_ref());
                let c: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
                let p = exact_scalar_polar(&rows, &c);
                assert!((norm(&p.u) - 1.0).abs() < 1e-12);
                assert!((rows.relu_value(&c, &p.u) - p.value).abs() < 1e-12);
                assert!(p.upper >= p.value && p.upper <= p.value.max(0.0) + 1e-10, "d={d} {} {}", p.upper, p.value);
                let lip: f64 = (0..n).map(|j| c[j].abs() * norm(rows.row(j))).sum();
                let (grid, step) = sphere_grid(d);
                let mut gmax = f64::NEG_INFINITY;
                for u in &grid {
                    let v = rows.relu_value(&c, u);
                    assert!(v <= p.upper + 1e-12, "d={d}: grid {v} > exact {}", p.upper);
                    gmax = gmax.max(v);
                }
                assert!(p.value <= gmax + lip * step, "d={d}: exact {} far above grid {gmax}", p.value);
                // The heuristic never exceeds the exact value.
                let h = heuristic_scalar_polar(&rows, &c, 1e9, 4, &[], &mut rng, &Budget::default());
                assert!(h.value <= p.upper + 1e-12);
            }
        }
    }

    /// The pattern ascent without the ridge step: `u <- Proj_{K_D}(g_D) / ||.||` until it stalls.
    fn ascent_without_flips(rows: &Rows, c: &[f64], mut u: Vec<f64>) -> f64 {
        let mut val = rows.relu_value(c, &u);
        for _ in 0..100 {
            let active = rows.pattern(&u);
            let Some(p) = crate::numerics::cone::project(rows, &active, &rows.masked_gradient(&active, c)) else {
                break;
            };
            let pn = norm(&p);
            let cand: Vec<f64> = p.iter().map(|v| v / pn).collect();
            let cv = rows.relu_value(c, &cand);
            if pn == 0.0 || cv <= val {
                break;
            }
            (u, val) = (cand, cv);
        }
        val
    }

    /// From starts near the exact maximizer (2-D and 3-D inputs plus bias, both signs of `c`, so that many maxima
    /// sit on ridges of samples with `c_j < 0`), the ascent never decreases, never passes the exact upper bound,
    /// and, following ridges across the cones' boundaries, reaches the maximum far more often than the ascent
    /// that stops where its cone ends.
    #[test]
    fn pattern_ascent_follows_ridges_to_the_maximum() {
        let mut rng = Rng::new(17);
        let (mut hits, mut hits_without, mut trials) = (0, 0, 0);
        for d in [3usize, 4] {
            for _ in 0..60 {
                let n = 60;
                let x = Mat::from_fn(n, d, |_, j| if j + 1 == d { 1.0 } else { rng.normal() });
                let rows = Rows::new(x.as_ref());
                let c: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
                let p = exact_scalar_polar(&rows, &c);
                let start: Vec<f64> = p.u.iter().map(|v| v + 0.05 * rng.normal()).collect();
                let start: Vec<f64> = start.iter().map(|v| v / norm(&start)).collect();
                let (v, u) = pattern_ascent(&rows, &c, start.clone());
                assert!(v >= rows.relu_value(&c, &start) && v <= p.upper + 1e-12, "d={d}: {v} vs {}", p.upper);
                assert!((rows.relu_value(&c, &u) - v).abs() <= 1e-12 * v.abs().max(1.0));
                let scale: f64 = (0..n).map(|j| c[j].abs() * rows.norm(j)).sum();
                hits += usize::from(v >= p.value - 1e-9 * scale);
                hits_without += usize::from(ascent_without_flips(&rows, &c, start) >= p.value - 1e-9 * scale);
                trials += 1;
            }
        }
        eprintln!("ascent reached the maximum {hits} / {trials} times, {hits_without} without the ridge step");
        // Measured: 111 of 120 against 75 without the ridge step.
        assert!(
            hits >= hits_without + trials / 5 && 20 * hits >= 17 * trials,
            "{hits} ({hits_without} without) of {trials}"
        );
    }

    /// The search's further maxima are attained values below its best (and below the exact polar), distinct from the
    /// best and from each other, in decreasing order; the searches return some on random 2-D and 3-D problems.
    #[test]
    fn heuristic_extra_maxima_are_attained_and_distinct() {
        let mut rng = Rng::new(23);
        let mut with_extra = [0, 0];
        for d in [3usize, 4] {
            for _ in 0..10 {
                let n = 80;
                let x = Mat::from_fn(n, d, |_, j| if j + 1 == d { 1.0 } else { rng.normal() });
                let rows = Rows::new(x.as_ref());
                let c: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
                let exact = exact_scalar_polar(&rows, &c);
                let h = heuristic_scalar_polar(&rows, &c, 1e9, 16, &[], &mut rng, &Budget::default());
                with_extra[d - 3] += usize::from(!h.extra.is_empty());
                let mut prev = h.value;
                for (k, (v, u)) in h.extra.iter().enumerate() {
                    assert!((rows.relu_value(&c, u) - v).abs() <= 1e-12 * v.abs().max(1.0), "not attained");
                    assert!(*v <= prev && *v <= exact.upper + 1e-12 && *v > 0.0);
                    assert!(dot(u, &h.u) < 1.0 - 1e-9, "extra {k} repeats the best");
                    for (_, w) in &h.extra[..k] {
                        assert!(dot(u, w) < 1.0 - 1e-9, "extra {k} repeats another");
                    }
                    prev = *v;
                }
            }
        }
        assert!(with_extra[0] >= 5 && with_extra[1] >= 5, "searches with further maxima, of 10 each: {with_extra:?}");
    }

    /// The maximum along a sample's circle equals a dense grid of that circle (within the grid's Lipschitz
    /// slack), lies on the circle and is attained; a ridge ascent never decreases `h` and never exceeds the exact
    /// polar (2-D and 3-D inputs plus bias).
    #[test]
    fn ridge_maximum_matches_a_grid_of_its_circle() {
        let mut rng = Rng::new(31);
        for trial in 0..8 {
            let n = 30 + 10 * trial;
            // Repeated rows (trial 1 on) put several samples on one circle.
            let mut x = Mat::from_fn(n, 3, |_, j| if j == 2 { 1.0 } else { rng.normal() });
            if trial > 0 {
                for m in 0..3 {
                    x[(1, m)] = 2.0 * x[(0, m)];
                }
            }
            let rows = Rows::new(x.as_ref());
            let c: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            let i = trial % n;
            let (v, u) = ridge_max(&rows, &c, i).expect("a nonzero row");
            assert!((norm(&u) - 1.0).abs() < 1e-12 && rows.dot(i, &u).abs() < 1e-12 * rows.norm(i));
            assert!((rows.relu_value(&c, &u) - v).abs() < 1e-12 * v.abs().max(1.0));
            let xi: Vec<f64> = rows.row(i).iter().map(|a| a / rows.norm(i)).collect();
            let [e1, e2] = circle_basis(&xi);
            let steps = 200_000;
            let mut gmax = f64::NEG_INFINITY;
            for t in 0..steps {
                let phi = TAU * t as f64 / steps as f64;
                let w: Vec<f64> = (0..3).map(|m| phi.cos() * e1[m] + phi.sin() * e2[m]).collect();
                gmax = gmax.max(rows.relu_value(&c, &w));
            }
            let lip: f64 = (0..n).map(|j| c[j].abs() * rows.norm(j)).sum();
            assert!(v >= gmax - 1e-12 && v <= gmax + lip * TAU / steps as f64, "ridge {v} grid {gmax}");
            let exact = exact_scalar_polar(&rows, &c);
            let start = pattern_ascent(&rows, &c, u.clone());
            let (va, ua) = ridge_ascent(&rows, &c, start.clone(), &mut { RIDGE_WORK });
            assert!(va >= start.0 && va <= exact.upper + 1e-12);
            assert!((rows.relu_value(&c, &ua) - va).abs() < 1e-12 * va.abs().max(1.0));
        }
        // 3-D inputs plus bias: the ridge is a 2-sphere, searched from a point; the result lies on the ridge, is
        // attained, and the ascent stays between its start and the exact polar.
        for trial in 0..6 {
            let n = 40;
            let x = Mat::from_fn(n, 4, |_, j| if j == 3 { 1.0 } else { rng.normal() });
            let rows = Rows::new(x.as_ref());
            let c: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            let i = trial;
            let from: Vec<f64> = (0..4).map(|_| rng.normal()).collect();
            let from: Vec<f64> = from.iter().map(|v| v / norm(&from)).collect();
            let (v, u) = ridge_search(&rows, &c, i, &from, &mut { RIDGE_WORK }).expect("a nonzero row");
            assert!((norm(&u) - 1.0).abs() < 1e-12 && rows.dot(i, &u).abs() < 1e-12 * rows.norm(i));
            assert!((rows.relu_value(&c, &u) - v).abs() < 1e-12 * v.abs().max(1.0));
            let exact = exact_scalar_polar(&rows, &c);
            assert!(v <= exact.upper + 1e-12);
            let start = pattern_ascent(&rows, &c, from);
            let (va, _) = ridge_ascent(&rows, &c, start.clone(), &mut { RIDGE_WORK });
            assert!(
                va >= start.0 && va <= exact.upper + 1e-12,
                "trial {trial}: start {} ridge {va} exact {} {}",
                start.0,
                exact.value,
                exact.upper
            );
        }
    }

    /// The cached circles give the same polar as circles built per call, on data with repeated, parallel and
    /// zero rows (bundled samples), and both stay above a dense grid.
    #[test]
    fn cached_arrangement_matches_per_call_circles() {
        let mut rng = Rng::new(5);
        let n = 40;
        let mut x = Mat::from_fn(n, 3, |_, j| if j == 2 { 1.0 } else { rng.normal() });
        for i in 0..6 {
            for j in 0..3 {
                x[(i + 6, j)] = x[(i, j)] * if i % 2 == 0 { 1.0 } else { -2.0 };
            }
        }
        for j in 0..3 {
            x[(20, j)] = 0.0;
        }
        let rows = Rows::new(x.as_ref());
        let arr = Arrangement::new(&rows).expect("small arrangement fits");
        let (grid, _) = sphere_grid(3);
        for _ in 0..4 {
            let c: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            let a = exact_scalar_polar_pair_cached(&rows, Some(&arr), &c, &Budget::default()).unwrap();
            let b = exact_scalar_polar_pair_cached(&rows, None, &c, &Budget::default()).unwrap();
            for (p, q) in a.iter().zip(&b) {
                assert_eq!(p.value, q.value);
                assert_eq!(p.upper, q.upper);
            }
            let neg: Vec<f64> = c.iter().map(|v| -v).collect();
            for u in grid.iter().step_by(7) {
                assert!(rows.relu_value(&c, u) <= a[0].upper + 1e-12);
                assert!(rows.relu_value(&neg, u) <= a[1].upper + 1e-12);
            }
        }
    }

    fn sphere_grid(d: usize) -> (Vec<Vec<f64>>, f64) {
        match d {
            1 => (vec![vec![1.0], vec![-1.0]], 0.0),
            2 => {
                let k = 20000;
                ((0..k).map(|i| TAU * i as f64 / k as f64).map(|t| vec![t.cos(), t.sin()]).collect(), TAU / k as f64)
            }
            _ => {
                let (k1, k2) = (400, 800);
                let mut g = Vec::new();
                for a in 0..=k1 {
                    let th = PI * a as f64 / k1 as f64;
                    for b in 0..k2 {
                        let ph = TAU * b as f64 / k2 as f64;
                        g.push(vec![th.sin() * ph.cos(), th.sin() * ph.sin(), th.cos()]);
                    }
                }
                (g, PI / k1 as f64)
            }
        }
    }
}
