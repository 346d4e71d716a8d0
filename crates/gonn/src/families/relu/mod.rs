//! One-hidden-layer ReLU networks: each subnetwork is one hidden unit, `phi(u, v) = (X u)_+ v^T`, and
//! `Phi(U, V) = (X U)_+ V^T` is evaluated as one wide product. `theta(u, v) = ||u||_2 ||v||` with `||v||_2` (the
//! same optimum as weight decay on both layers) or `||v||_1` (THEORY.md sections 6 and 7). A first-layer bias is
//! a constant-1 input column, regularized with `u`.

pub mod descent;
pub mod polar;

use faer::{Mat, MatRef, Par, Side};

use crate::core::descent::{DescentInfo, DescentOptions};
use crate::core::norms::{LayerNorm, Norm};
use crate::core::polar::{Polar, PolarOptions};
use crate::core::problem::Problem;
use crate::core::{Family, Subnetwork, Weights};
use crate::error::{GonnError, Result};
use crate::families::relu::polar::bab::{bab_scalar_polar, BabOptions};
use crate::families::relu::polar::cover::{cover_polar, CoverReport};
use crate::families::relu::polar::l2::exact_l2_polar;
use crate::families::relu::polar::{
    exact_scalar_polar_pair_cached, heuristic_scalar_polar, Arrangement, ScalarPolar, RIDGE_MAX_DIM,
};
use crate::numerics::budget::Budget;
use crate::numerics::cone::Rows;
pub use crate::numerics::linalg::augment;
use crate::numerics::linalg::{hadamard, mul, mul_nt, mul_tn};
use crate::numerics::rng::Rng;
use std::cell::Cell;

/// How the polar is solved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolarMode {
    /// Enumerate the activation patterns (requires `rank(X) <= 4`).
    Exact,
    /// Pattern ascent from many starts: a lower bound, with a loose proven upper bound.
    Heuristic,
    /// Pattern ascent, then branch and bound over activation signs ([`polar::bab`]) for a proven upper bound
    /// that tightens with time (any rank; [`PolarOptions::time_limit`] per polar).
    Bab,
    /// Exact when `rank(X) <= 4` and the enumeration is affordable ([`AUTO_EXACT_MAX_SAMPLES_RANK3`],
    /// [`AUTO_EXACT_MAX_SAMPLES_RANK4`]), branch and bound otherwise.
    Auto,
}

impl PolarMode {
    /// Name as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            PolarMode::Exact => "exact",
            PolarMode::Heuristic => "heuristic",
            PolarMode::Bab => "bab",
            PolarMode::Auto => "auto",
        }
    }
}

impl std::str::FromStr for PolarMode {
    type Err = GonnError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "exact" => Ok(PolarMode::Exact),
            "heuristic" => Ok(PolarMode::Heuristic),
            "bab" | "branch-and-bound" => Ok(PolarMode::Bab),
            "auto" => Ok(PolarMode::Auto),
            other => Err(GonnError::param("polar", format!("`{other}` (expected exact, heuristic, bab or auto)"))),
        }
    }
}

/// Largest rank of the (augmented) input for which the polar is solved by enumeration.
pub const MAX_EXACT_RANK: usize = 4;

/// In `auto` mode, rank-3 inputs (2-D plus bias) use enumeration up to this many samples, where the arrangement's
/// sample order stays cached (`4 n^2` bytes, up to 512 MB): a later polar then costs about 0.6 s at `n = 3000` and
/// 7 s at `n = 10^4` on one core, against 48 s uncached at `2 10^4` (`examples/relu_polar_limits.rs`). Measured on
/// the 2-D data at `n = 10^4` (lambda 0.1, one thread, 300 s): enumeration certifies in 52-86 s (one or two
/// exact polars since the pricing's ridge ascent; about 290 s before it), the branch and bound ended `bounded` at a
/// relative gap of 0.93 (before the ridge ascent).
pub const AUTO_EXACT_MAX_SAMPLES_RANK3: usize = 11_000;

/// Starts of the pattern ascent when it prices in place of the enumeration ([`PolarOptions::pricing`]): on 3-D
/// inputs at n = 200, 64 starts instead of 8 took a certified fit from 73 s to 48 s (fewer exact polars). The
/// same with the branch and bound: a 4-feature fit at n = 500 certified in 79 s instead of 110 s, a 5-feature one
/// at n = 300 in 228 s instead of 262 s (one thread, one run each).
pub const PRICING_RESTARTS: usize = 64;

/// Pattern-ascent starts of every polar of a branch-and-bound fit on rows wider than the ridge ascent reaches
/// (8 to 15 input features plus bias); an eighth of them is ascended fully. On diabetes (10 features, lambda 5,
/// two threads, 120 s) the fit ended at 95.05 instead of 95.45 (PyTorch's Adam: 95.27); on 4-feature data the
/// extra ascents cost more than they find (a 500-sample fit took 212 s instead of 80 s), so narrower rows keep
/// [`PRICING_RESTARTS`], and so do rows wider than [`WIDE_PRICING_MAX_DIM`].
pub const WIDE_PRICING_RESTARTS: usize = 1024;

/// The widest rows (inputs plus bias) priced with [`WIDE_PRICING_RESTARTS`]: a full ascent's cone projections grow
/// quickly with the dimension, and on breast_cancer (31 columns) 128 ascents took more than 8 s of the first polar.
pub const WIDE_PRICING_MAX_DIM: usize = 16;

/// In `auto` mode, rank-4 inputs (3-D plus bias) use enumeration up to this many samples: its cost grows like
/// `n^3` (about 2 s per polar at `n = 300` on one core once the sweeps are cached, 22 s at `n = 600`; see
/// `examples/relu_polar_limits.rs`).
pub const AUTO_EXACT_MAX_SAMPLES_RANK4: usize = 400;

/// Several outputs with `||v||_2`: the polar is bounded by a cover of the output directions up to this many
/// outputs (`2^C` orthants to start); above, by the per-output polars alone.
pub const MAX_COVER_OUTPUTS: usize = 6;

/// Default time for one polar's branch and bound ([`PolarOptions::time_limit`]), shared by its scalar searches.
pub const DEFAULT_POLAR_SECONDS: f64 = 10.0;

/// The data-dependent family of hidden ReLU units on inputs `X` (`n x d`, plus a bias column if enabled).
#[derive(Clone, Debug)]
pub struct ReluNetwork {
    /// `n x d'` inputs, the last column all ones when `bias`.
    x: Mat<f64>,
    rows: Rows,
    outputs: usize,
    bias: bool,
    norms: [LayerNorm; 2],
    /// The polar is enumerated (at most 3 columns, or a numerical rank of at most 3, and the mode allows it): see
    /// [`Reduction`].
    reduced: Option<Reduction>,
    /// Proven upper bound on `||X||_2` (largest eigenvalue of the small Gram `X^T X`, plus a rounding margin).
    x_norm: f64,
    /// Polars that are not enumerated run the branch and bound after the pattern ascent.
    bab: bool,
    /// Units that earlier branch-and-bound searches attained (at most [`RECENT_MAXIMA`], newest last): further
    /// starts for the pattern ascent of later polars, whose dual direction moves little between outer iterations.
    recent: std::sync::Arc<std::sync::Mutex<Vec<Vec<f64>>>>,
}

/// How many units of earlier branch-and-bound searches seed later pattern ascents.
const RECENT_MAXIMA: usize = 32;

/// The time of one polar's proof search (`--polar-seconds`, default [`DEFAULT_POLAR_SECONDS`], times the fit's
/// [`PolarOptions::time_scale`]) within the run's budget.
fn proof_budget(opts: &PolarOptions) -> Budget {
    let limit = opts.time_limit.map_or(DEFAULT_POLAR_SECONDS, |t| t.as_secs_f64());
    // At most about 30 years: an `Instant` plus the limit stays representable.
    let scaled = (limit * opts.time_scale).clamp(0.0, 1e9);
    opts.budget.within(std::time::Duration::from_secs_f64(if scaled.is_nan() { 0.0 } else { scaled }))
}

/// The branch-and-bound searches of one polar call: their shared deadline, their target, and what they did.
struct BabRun {
    budget: Budget,
    /// Searches still to run (each gets an equal share of the time left).
    left: usize,
    /// Stop a search once its upper bound is below this (nothing is gained below).
    target: f64,
    nodes: usize,
    open: usize,
    /// Every search met its target or closed its bracket (`upper <= lower (1 + 1e-9)`).
    closed: bool,
    /// Stop (and skip the remaining searches) once a unit above this is found.
    enough: f64,
    /// The best value any search of this polar attained.
    best: f64,
    par: Par,
}

impl BabRun {
    fn new(opts: &PolarOptions, searches: usize, target: f64) -> Self {
        let budget = proof_budget(opts);
        Self {
            budget,
            left: searches,
            target,
            nodes: 0,
            open: 0,
            closed: true,
            enough: opts.enough,
            best: f64::NEG_INFINITY,
            par: opts.par,
        }
    }

    /// Improves the heuristic answer `p` for `c` by branch and bound.
    fn improve(&mut self, rows: &Rows, c: &[f64], p: &mut ScalarPolar) {
        self.best = self.best.max(p.value);
        if self.best > self.enough || self.budget.expired() {
            self.closed = false;
            self.left = self.left.saturating_sub(1);
            return;
        }
        let share = match self.budget.deadline() {
            Some(d) => d.saturating_duration_since(std::time::Instant::now()) / self.left.max(1) as u32,
            None => std::time::Duration::from_secs(3600),
        };
        self.left = self.left.saturating_sub(1);
        let opts = BabOptions {
            budget: self.budget.within(share),
            target: self.target,
            enough: self.enough,
            par: self.par,
            ..Default::default()
        };
        let (b, report) = bab_scalar_polar(rows, c, (p.value, p.u.clone()), &opts);
        self.nodes += report.nodes;
        self.open += report.open;
        self.closed &= report.closed;
        self.best = self.best.max(b.value);
        p.extra = b.extra;
        if b.value > p.value {
            p.value = b.value;
            p.u = b.u;
        }
        p.upper = p.upper.min(b.upper).max(p.value);
    }
}

/// The coordinates in which the polar is enumerated: an orthonormal basis `B` (`d' x k`, `k <= 4`) and the rows
/// of `X B`. With `d' <= 4` nothing is dropped: `B` is the full eigenbasis of `X^T X` (or the identity when `X` is
/// badly scaled or nearly rank-deficient, which keeps the enumeration in the inputs' own coordinates). Otherwise
/// `B` spans the leading eigenvectors
/// of `X^T X`, and for every unit `u`, `c^T (X u)_+ <= c^T (X B B^T u)_+ + ||c||_2 ||X (I - B B^T)||_2` (the ReLU is
/// 1-Lipschitz), so the enumerated maximum plus `||c||_2 * dropped` is a proven upper bound, `dropped` being a
/// rigorous bound on `||X (I - B B^T)||_F`.
#[derive(Clone, Debug)]
struct Reduction {
    basis: Mat<f64>,
    rows: Rows,
    dropped: f64,
    /// The enumeration's c-independent part (rank-3 circles, rank-4 circle sweeps), built by the first polars and
    /// reused (the inputs do not change).
    arrangement: std::sync::Arc<std::sync::OnceLock<Option<Arrangement>>>,
}

impl Reduction {
    fn new(basis: Mat<f64>, rows: Rows, dropped: f64) -> Self {
        Self { basis, rows, dropped, arrangement: Default::default() }
    }
}

/// `(X U)_+` for the augmented inputs `x` and first layer `u`.
pub fn hidden(x: MatRef<'_, f64>, u: MatRef<'_, f64>, par: Par) -> Mat<f64> {
    let mut h = mul(x, u, par);
    for j in 0..h.ncols() {
        h.col_as_slice_mut(j).iter_mut().for_each(|v| *v = v.max(0.0));
    }
    h
}

impl ReluNetwork {
    /// The family on inputs `x` (`n x d`, without the bias column) with `outputs` outputs.
    pub fn new(x: MatRef<'_, f64>, outputs: usize, bias: bool, output_norm: Norm, mode: PolarMode) -> Result<Self> {
        if x.nrows() == 0 || x.ncols() + usize::from(bias) == 0 {
            return Err(GonnError::Shape("the input X has no rows or no columns".into()));
        }
        if outputs == 0 {
            return Err(GonnError::Shape("the network needs at least one output".into()));
        }
        if !crate::numerics::linalg::all_finite(x) {
            return Err(GonnError::Data("X has non-finite entries".into()));
        }
        if !matches!(output_norm, Norm::L1 | Norm::L2) {
            return Err(GonnError::param("output_norm", format!("{output_norm} (expected l2 or l1)")));
        }
        let xa = augment(x, bias);
        let gram = mul_tn(xa.as_ref(), xa.as_ref(), Par::Seq);
        let d = xa.ncols();
        let fro2: f64 = (0..d).map(|i| gram[(i, i)]).sum();
        if !fro2.is_finite() {
            return Err(GonnError::Data(
                "X is too large: the sum of its squared entries overflows (rescale X, e.g. with --standardize)".into(),
            ));
        }
        let eig = gram.self_adjoint_eigen(Side::Lower);
        crate::numerics::linalg::clear_upper_state();
        let eig = eig.map_err(|_| GonnError::Data("the eigendecomposition of X^T X did not converge".into()))?;
        let s = eig.S().column_vector();
        let smax = s[d - 1].max(0.0);
        let x_norm = (smax + 1e-12 * fro2).sqrt() * (1.0 + 1e-12);
        // With at most 3 columns the polar is enumerated in X's own coordinates (nothing dropped); above, the
        // numerical rank decides whether a reduction to 4 directions can be tried.
        let numerical_rank = (0..d).filter(|&i| s[i] > 1e-10 * smax).count();
        let rank = if d <= MAX_EXACT_RANK { d } else { numerical_rank };
        let exact_ok = rank <= MAX_EXACT_RANK;
        let affordable = match rank {
            0..=2 => true,
            3 => xa.nrows() <= AUTO_EXACT_MAX_SAMPLES_RANK3,
            _ => xa.nrows() <= AUTO_EXACT_MAX_SAMPLES_RANK4,
        };
        if mode == PolarMode::Exact && !exact_ok {
            return Err(GonnError::param(
                "polar",
                format!(
                    "exact needs rank(X) <= {MAX_EXACT_RANK} including the bias column, but rank(X) = {rank}; \
                     use --polar heuristic or auto"
                ),
            ));
        }
        let enumerate = match mode {
            PolarMode::Exact => true,
            PolarMode::Heuristic | PolarMode::Bab => false,
            PolarMode::Auto => exact_ok && affordable,
        };
        let reduced = enumerate.then(|| {
            if d <= MAX_EXACT_RANK && numerical_rank == d {
                // Well conditioned: the full eigenbasis of X^T X (orthonormal, so nothing is dropped).
                let basis = eig.U().to_owned();
                let xr = mul(xa.as_ref(), basis.as_ref(), Par::Seq);
                return Reduction::new(basis, Rows::new(xr.as_ref()), 0.0);
            }
            if d <= MAX_EXACT_RANK {
                // Badly scaled or nearly rank-deficient: enumerate in the input coordinates themselves, so that
                // no direction is dropped (the eigenvalues of X^T X below eps * ||X||^2 are noise).
                return Reduction::new(Mat::identity(d, d), Rows::new(xa.as_ref()), 0.0);
            }
            let basis = Mat::from_fn(d, rank, |i, k| eig.U()[(i, d - rank + k)]);
            let xr = mul(xa.as_ref(), basis.as_ref(), Par::Seq);
            // ||X - X B B^T||_F, computed directly (not from the eigenvalues, whose absolute error is eps * ||X||^2),
            // plus its rounding error.
            let back = mul_nt(xr.as_ref(), basis.as_ref(), Par::Seq);
            let resid: f64 = (0..d)
                .map(|j| (0..xa.nrows()).map(|i| (xa[(i, j)] - back[(i, j)]).powi(2)).sum::<f64>())
                .sum::<f64>()
                .sqrt();
            let dropped = resid * (1.0 + 1e-12) + 4.0 * (d as f64 + 2.0) * f64::EPSILON * fro2.sqrt();
            Reduction::new(basis, Rows::new(xr.as_ref()), dropped)
        });
        let rows = Rows::new(xa.as_ref());
        let out_norm = LayerNorm::new(output_norm, false);
        let bab = reduced.is_none() && matches!(mode, PolarMode::Bab | PolarMode::Auto);
        Ok(Self {
            x: xa,
            rows,
            outputs,
            bias,
            norms: [LayerNorm::new(Norm::L2, false), out_norm],
            reduced,
            x_norm,
            bab,
            recent: Default::default(),
        })
    }

    /// Number of raw input features `d` (without the bias column).
    pub fn inputs(&self) -> usize {
        self.x.ncols() - usize::from(self.bias)
    }
    pub fn outputs(&self) -> usize {
        self.outputs
    }
    pub fn bias(&self) -> bool {
        self.bias
    }
    /// The augmented inputs `X` (`n x d'`).
    pub fn x(&self) -> MatRef<'_, f64> {
        self.x.as_ref()
    }
    pub(crate) fn rows(&self) -> &Rows {
        &self.rows
    }
    /// Whether the polar is solved exactly (enumeration of the activation patterns).
    pub fn polar_is_exact(&self) -> bool {
        self.reduced.is_some()
    }

    /// The scalar polar `max_{||u||=1} c^T (X u)_+` in input coordinates.
    fn scalar(&self, c: &[f64], restarts: usize, rng: &mut Rng, budget: &Budget, aborted: &Cell<bool>) -> ScalarPolar {
        let [plus, _] = self.scalar_pair(c, restarts, rng, false, budget, aborted, None);
        plus
    }

    /// The scalar polars of `c` and (if `both`) of `-c`; one enumeration serves both signs.
    /// The enumeration gives up when `budget` expires; then the heuristic answers and `aborted` is set (the
    /// polar is no longer exact). Without enumeration, `bab` (if given) improves the heuristic's answers.
    #[allow(clippy::too_many_arguments)]
    fn scalar_pair(
        &self,
        c: &[f64],
        restarts: usize,
        rng: &mut Rng,
        both: bool,
        budget: &Budget,
        aborted: &Cell<bool>,
        mut bab: Option<&mut BabRun>,
    ) -> [ScalarPolar; 2] {
        let enumerated = match &self.reduced {
            Some(r) if !aborted.get() => {
                let cache = r.arrangement.get_or_init(|| Arrangement::new(&r.rows)).as_ref();
                exact_scalar_polar_pair_cached(&r.rows, cache, c, budget).map(|p| (r, p))
            }
            _ => None,
        };
        if self.reduced.is_some() && enumerated.is_none() {
            aborted.set(true);
        }
        match enumerated {
            Some((Reduction { basis, dropped, .. }, mut pair)) => {
                let neg: Vec<f64> = c.iter().map(|v| -v).collect();
                let c_norm = c.iter().map(|v| v * v).sum::<f64>().sqrt();
                for (p, ck) in pair.iter_mut().zip([c, neg.as_slice()]) {
                    // Back to input coordinates, then re-evaluate on the full inputs so that `value` is attained
                    // exactly by the returned unit.
                    let back = |w: &[f64]| {
                        let mut u: Vec<f64> = (0..basis.nrows())
                            .map(|i| (0..basis.ncols()).map(|k| basis[(i, k)] * w[k]).sum())
                            .collect();
                        let nu = u.iter().map(|v| v * v).sum::<f64>().sqrt();
                        if nu > 0.0 {
                            u.iter_mut().for_each(|v| *v /= nu);
                        }
                        u
                    };
                    let u = back(&p.u);
                    p.value = self.rows.relu_value(ck, &u);
                    p.upper = p.upper.max(p.value) + c_norm * dropped;
                    p.u = u;
                    for (v, w) in p.extra.iter_mut() {
                        *w = back(w);
                        *v = self.rows.relu_value(ck, w);
                    }
                }
                pair
            }
            None => {
                let seeds = self.recent.lock().map(|r| r.clone()).unwrap_or_default();
                let mut plus = heuristic_scalar_polar(&self.rows, c, self.x_norm, restarts, &seeds, rng, budget);
                if let Some(run) = bab.as_deref_mut() {
                    run.improve(&self.rows, c, &mut plus);
                    self.remember(&plus);
                }
                let minus = if both {
                    let neg: Vec<f64> = c.iter().map(|v| -v).collect();
                    let mut minus =
                        heuristic_scalar_polar(&self.rows, &neg, self.x_norm, restarts, &seeds, rng, budget);
                    if let Some(run) = bab {
                        run.improve(&self.rows, &neg, &mut minus);
                        self.remember(&minus);
                    }
                    minus
                } else {
                    ScalarPolar { value: f64::NEG_INFINITY, upper: f64::INFINITY, u: Vec::new(), extra: Vec::new() }
                };
                [plus, minus]
            }
        }
    }

    /// Keeps the units a branch and bound attained (its best and its further maxima) as seeds for later ascents.
    fn remember(&self, p: &ScalarPolar) {
        let Ok(mut recent) = self.recent.lock() else { return };
        for u in std::iter::once(&p.u).chain(p.extra.iter().map(|(_, u)| u)) {
            if u.len() == self.rows.d && p.value > 0.0 && !recent.contains(u) {
                recent.push(u.clone());
            }
        }
        let excess = recent.len().saturating_sub(RECENT_MAXIMA);
        recent.drain(..excess);
    }

    /// `d/dU <G, (XU)_+ V^T> = X^T ((G V) ⊙ 1[XU > 0])`, from the pre-activations `pre = X U`.
    pub(crate) fn first_layer_gradient(
        &self,
        pre: &Mat<f64>,
        v: MatRef<'_, f64>,
        g: MatRef<'_, f64>,
        par: Par,
    ) -> Mat<f64> {
        let mut a = mul(g, v, par);
        for j in 0..a.ncols() {
            for (av, pv) in a.col_as_slice_mut(j).iter_mut().zip(pre.col_as_slice(j)) {
                if *pv <= 0.0 {
                    *av = 0.0;
                }
            }
        }
        mul_tn(self.x.as_ref(), a.as_ref(), par)
    }

    /// `Q^T (X u)_+` (the unit's output direction times its value) and its norm, the output-`l2` value of `u`.
    fn l2_output(&self, q: MatRef<'_, f64>, u: &[f64]) -> (Vec<f64>, f64) {
        let h: Vec<f64> = (0..self.rows.n).map(|j| self.rows.dot(j, u).max(0.0)).collect();
        let w: Vec<f64> = (0..q.ncols()).map(|k| (0..q.nrows()).map(|i| q[(i, k)] * h[i]).sum()).collect();
        let value = w.iter().map(|a| a * a).sum::<f64>().sqrt();
        (w, value)
    }

    /// The unit `(u, v)` as a width-1 [`Weights`].
    fn atom(u: Vec<f64>, v: Vec<f64>) -> Weights {
        Weights { layers: vec![Mat::from_fn(u.len(), 1, |i, _| u[i]), Mat::from_fn(v.len(), 1, |i, _| v[i])] }
    }

    /// The output-`l2` polar by enumeration ([`exact_l2_polar`]) when the enumerated rows have at most 3 columns
    /// (1-D and 2-D inputs plus bias), in input coordinates; with a reduction, `||Q||_F * dropped` is added to the
    /// proven bound (`||Q^T ((X u)_+ - (X B B^T u)_+)|| <= ||Q||_F ||X (I - B B^T)||_F`). `None` when the rows have
    /// more columns or the enumeration runs out of time.
    fn exact_l2(&self, q: MatRef<'_, f64>, opts: &PolarOptions) -> Option<Polar> {
        let Reduction { basis, rows, dropped, .. } = self.reduced.as_ref()?;
        if rows.d > 3 {
            return None;
        }
        let p = exact_l2_polar(rows, q, &opts.budget)?;
        let mut u: Vec<f64> = (0..basis.nrows())
            .map(|i| (0..basis.ncols()).map(|k| basis[(i, k)] * p.u.get(k).unwrap_or(&0.0)).sum())
            .collect();
        let nu = u.iter().map(|v| v * v).sum::<f64>().sqrt();
        if nu > 0.0 {
            u.iter_mut().for_each(|v| *v /= nu);
        } else {
            u = vec![0.0; self.rows.d];
            u[0] = 1.0;
        }
        // The unit's value on the full inputs, and its output direction.
        let (w, value) = self.l2_output(q, &u);
        let v: Vec<f64> = if value > 0.0 {
            w.iter().map(|a| a / value).collect()
        } else {
            (0..self.outputs).map(|k| if k == 0 { 1.0 } else { 0.0 }).collect()
        };
        let q_norm = (0..q.ncols()).map(|j| q.col(j).squared_norm_l2()).sum::<f64>().sqrt();
        let upper = p.upper.max(value) + q_norm * dropped;
        Some(Polar {
            lower: value,
            upper: Some(upper),
            exact: q_norm * dropped <= 1e-10 * upper.max(f64::MIN_POSITIVE),
            atom: Self::atom(u, v),
            method: "arrangement enumeration (output l2: a quadratic form per activation region)".into(),
            extra: Vec::new(),
            heuristic: false,
            open_search: false,
        })
    }

    /// Bounds the output-`l2` polar `max_{||v|| = 1} sigma(v)` by a cover of the output directions
    /// ([`cover_polar`], THEORY.md section 12), each new direction's `sigma(v)` by a scalar polar of `c = Q v`
    /// (enumerated, or by `bab`), plus the rounding of `c`: `|sigma(Q v) - sigma(fl(Q v))| <= ||Q v - fl(Q v)||
    /// ||X||_2`. Units found on the way improve `best` (an attained `||Q^T (X u)_+||`) and are kept in `found`.
    #[allow(clippy::too_many_arguments)]
    fn cover(
        &self,
        q: MatRef<'_, f64>,
        opts: &PolarOptions,
        rng: &mut Rng,
        aborted: &Cell<bool>,
        mut bab: Option<&mut BabRun>,
        signed: &[[f64; 2]],
        best: (&mut f64, &mut Weights),
        found: &mut Vec<(f64, Weights)>,
    ) -> CoverReport {
        let (best_val, best_atom) = best;
        let budget = match &bab {
            Some(run) => run.budget.clone(),
            None => proof_budget(opts),
        };
        let m = self.outputs;
        let gamma = 2.0 * (m as f64 + 1.0) * f64::EPSILON;
        let best = Cell::new(*best_val);
        let level = || opts.target.max(best.get() * (1.0 + 1e-8));
        let mut sigma = |v: &[f64]| -> Option<f64> {
            if best.get() > opts.enough || budget.expired() {
                return None;
            }
            let c: Vec<f64> = (0..q.nrows()).map(|i| (0..m).map(|k| q[(i, k)] * v[k]).sum()).collect();
            let err = (0..q.nrows())
                .map(|i| (0..m).map(|k| (q[(i, k)] * v[k]).abs()).sum::<f64>().powi(2))
                .sum::<f64>()
                .sqrt()
                * gamma
                * self.x_norm;
            let v_norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if let Some(run) = bab.as_deref_mut() {
                run.left = 8;
                run.best = f64::NEG_INFINITY;
                // Below the level with a margin is all a cone far from the maximum needs; near it, the bracket
                // closes (the cone bounds need `sigma` itself there).
                run.target = 0.9 * level() * v_norm;
                run.enough = opts.enough * v_norm;
            }
            let [p, _] = self.scalar_pair(&c, opts.restarts, rng, false, &budget, aborted, bab.as_deref_mut());
            if p.u.len() == self.rows.d {
                let (qth, value) = self.l2_output(q, &p.u);
                if value > 0.0 {
                    let atom = Self::atom(p.u, qth.iter().map(|a| a / value).collect());
                    if value > best.get() {
                        best.set(value);
                        *best_atom = atom.clone();
                    }
                    found.push((value, atom));
                }
            }
            Some(p.upper + err)
        };
        let report = cover_polar(m, signed, &mut sigma, &level, &budget);
        *best_val = best.get();
        report
    }

    /// Best signed scalar polar over the output columns: `max_c max_s max_u s q_c^T (X u)_+`, with per-column proven
    /// upper bounds.
    fn column_polars(
        &self,
        q: MatRef<'_, f64>,
        restarts: usize,
        rng: &mut Rng,
        budget: &Budget,
        aborted: &Cell<bool>,
        mut bab: Option<&mut BabRun>,
    ) -> ColumnPolars {
        let (mut best, mut best_atom) = (f64::NEG_INFINITY, None);
        let mut uppers = Vec::with_capacity(self.outputs);
        let mut signed = Vec::with_capacity(self.outputs);
        let mut lowers = Vec::with_capacity(self.outputs);
        let mut extra = Vec::new();
        for c in 0..self.outputs {
            let col: Vec<f64> = q.col(c).iter().copied().collect();
            let (mut lo, mut up) = (f64::NEG_INFINITY, 0.0f64);
            let pair = self.scalar_pair(&col, restarts, rng, true, budget, aborted, bab.as_deref_mut());
            signed.push([pair[0].upper, pair[1].upper]);
            for (s, p) in [1.0, -1.0].into_iter().zip(pair) {
                up = up.max(p.upper);
                lo = lo.max(p.value);
                let mut v = vec![0.0; self.outputs];
                v[c] = s;
                extra.extend(p.extra.into_iter().map(|(value, u)| (value, Self::atom(u, v.clone()))));
                if p.value > best {
                    if let Some(prev) = best_atom.replace(Self::atom(p.u, v)) {
                        extra.push((best, prev));
                    }
                    best = p.value;
                } else {
                    extra.push((p.value, Self::atom(p.u, v)));
                }
            }
            uppers.push(up);
            lowers.push(lo);
        }
        // Further maxima (the other sign's and other outputs' best among them) in decreasing order.
        extra.retain(|(v, _)| *v > 0.0);
        extra.sort_by(|a, b| b.0.total_cmp(&a.0));
        ColumnPolars { lowers, uppers, signed, atom: best_atom.expect("at least one output"), extra }
    }
}

/// The per-output scalar polars: their values and proven upper bounds, the best unit, and further local maxima.
struct ColumnPolars {
    lowers: Vec<f64>,
    uppers: Vec<f64>,
    /// Proven upper bounds on the scalar polars of `q_c` and `-q_c`.
    signed: Vec<[f64; 2]>,
    atom: Weights,
    extra: Vec<(f64, Weights)>,
}

impl Subnetwork for ReluNetwork {
    fn name(&self) -> &'static str {
        "relu"
    }
    fn layer_norms(&self) -> &[LayerNorm] {
        &self.norms
    }
    fn layer_dims(&self) -> Vec<usize> {
        vec![self.x.ncols(), self.outputs]
    }
    fn output_shape(&self) -> (usize, usize) {
        (self.x.nrows(), self.outputs)
    }
    fn forward(&self, w: &Weights, par: Par) -> Mat<f64> {
        let h = hidden(self.x.as_ref(), w.layers[0].as_ref(), par);
        mul_nt(h.as_ref(), w.layers[1].as_ref(), par)
    }
    fn layer_gradient(&self, w: &Weights, k: usize, g: MatRef<'_, f64>, par: Par) -> Mat<f64> {
        match k {
            0 => {
                let pre = mul(self.x.as_ref(), w.layers[0].as_ref(), par);
                self.first_layer_gradient(&pre, w.layers[1].as_ref(), g, par)
            }
            _ => {
                let h = hidden(self.x.as_ref(), w.layers[0].as_ref(), par);
                mul_tn(g, h.as_ref(), par)
            }
        }
    }
    fn output_gram(&self, w: &Weights, par: Par) -> Mat<f64> {
        let h = hidden(self.x.as_ref(), w.layers[0].as_ref(), par);
        let hh = mul_tn(h.as_ref(), h.as_ref(), par);
        let vv = mul_tn(w.layers[1].as_ref(), w.layers[1].as_ref(), par);
        hadamard(hh.as_ref(), vv.as_ref())
    }
}

impl Family for ReluNetwork {
    /// Output `l1` (or one output): `max_c` of the signed scalar polars, exact by enumeration when
    /// `rank(X) <= 4`. Output `l2`: `max_{||u|| <= 1} ||Q^T (X u)_+||_2` (copositive, hard): lower bound by
    /// alternating between `v` and the scalar polar of `Q v`; proven upper bound
    /// `sqrt(sum_c rho_c^2)` from the per-column polars `rho_c`.
    fn polar(&self, q: MatRef<'_, f64>, opts: &PolarOptions, rng: &mut Rng) -> Polar {
        // Pricing only: the pattern ascent answers where the enumeration costs more (rank 3 and 4).
        let aborted = Cell::new(opts.pricing && self.reduced.as_ref().is_some_and(|r| r.rows.d >= 3));
        let dropped = self.reduced.as_ref().map_or(0.0, |r| r.dropped);
        // Pricing replaces a costly enumeration or search: many more starts are still cheap (milliseconds at
        // n = 10^4).
        // Wider than the ridge ascent reaches, the ascent from many starts is the fit's only cheap way to find
        // units: in 11 dimensions 64 starts missed units 10-25 % above the ones they found (diabetes).
        let wide = self.bab && (RIDGE_MAX_DIM + 1..=WIDE_PRICING_MAX_DIM).contains(&self.rows.d);
        let restarts = if wide {
            opts.restarts.max(WIDE_PRICING_RESTARTS)
        } else if aborted.get() || self.bab {
            opts.restarts.max(PRICING_RESTARTS)
        } else {
            opts.restarts
        };
        let single = self.outputs == 1 || self.norms[1].norm == Norm::L1;
        if !single && !aborted.get() {
            if let Some(p) = self.exact_l2(q, opts) {
                return p;
            }
        }
        // Branch and bound proves what the enumeration cannot (not while pricing: only a unit is needed then).
        // The cover of output directions (output l2) bounds the polar from the scalar polars of `Q v`.
        let cover = !single && !opts.pricing && self.outputs <= MAX_COVER_OUTPUTS;
        let mut bab = (self.bab && !opts.pricing).then(|| {
            let target = if single { opts.target } else { opts.target / (self.outputs as f64).sqrt() };
            // With a cover to follow, the per-output searches take about half of the time.
            BabRun::new(opts, if cover { 4 } else { 2 } * self.outputs, target)
        });
        let ColumnPolars { lowers, uppers, signed, atom, mut extra } =
            self.column_polars(q, restarts, rng, &opts.budget, &aborted, bab.as_mut());
        extra.truncate(opts.extra_atoms);
        // An enumeration cut short by the budget left the heuristic's answer (and its loose proven bound).
        let exact_enum = self.polar_is_exact() && !aborted.get();
        let method_scalar: std::borrow::Cow<'static, str> = match (&bab, exact_enum, dropped > 0.0) {
            (Some(b), _, _) => format!(
                "pattern ascent + branch and bound ({} nodes explored, {} open{})",
                b.nodes,
                b.open,
                if b.closed { ", closed" } else { "" }
            )
            .into(),
            (None, true, false) => "arrangement enumeration".into(),
            (None, true, true) => {
                "arrangement enumeration on the leading directions plus a proven bound for the rest".into()
            }
            (None, false, _) => "pattern ascent (heuristic)".into(),
        };
        // Exact only when the directions left out of the enumeration provably cannot matter.
        let q_norm = (0..q.ncols()).map(|j| q.col(j).squared_norm_l2()).sum::<f64>().sqrt();
        let negligible = |upper: f64| q_norm * dropped <= 1e-10 * upper.abs().max(f64::MIN_POSITIVE);
        if single {
            let value = lowers.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let upper = uppers.iter().copied().fold(0.0, f64::max);
            // The heuristic's upper bound ||c_+|| ||X||_2 is proven; it is reported whenever asked for.
            return Polar {
                lower: value,
                upper: (exact_enum || bab.is_some() || opts.prove).then_some(upper.max(value)),
                exact: (exact_enum && negligible(upper)) || (bab.is_some() && upper <= value + 1e-8 * value.abs()),
                atom,
                method: method_scalar,
                extra,
                heuristic: !exact_enum && bab.is_none(),
                open_search: bab.as_ref().is_some_and(|b| !b.closed),
            };
        }
        // Output l2: alternate v <- Q^T h / ||.||, u <- scalar polar of Q v.
        let mut best_val = f64::NEG_INFINITY;
        let mut best_atom = atom;
        let mut starts: Vec<Vec<f64>> = Vec::new();
        let mut order: Vec<usize> = (0..self.outputs).collect();
        order.sort_by(|&a, &b| lowers[b].total_cmp(&lowers[a]));
        for &c in order.iter().take(3) {
            let mut v = vec![0.0; self.outputs];
            v[c] = 1.0;
            starts.push(v.clone());
            v[c] = -1.0;
            starts.push(v);
        }
        for _ in 0..opts.restarts.min(4) {
            starts.push((0..self.outputs).map(|_| rng.normal()).collect());
        }
        for mut v in starts {
            let mut val = f64::NEG_INFINITY;
            for _ in 0..30 {
                let nv = v.iter().map(|a| a * a).sum::<f64>().sqrt();
                if nv == 0.0 {
                    break;
                }
                v.iter_mut().for_each(|a| *a /= nv);
                let qv: Vec<f64> = (0..q.nrows()).map(|i| (0..self.outputs).map(|c| q[(i, c)] * v[c]).sum()).collect();
                let sp = self.scalar(&qv, opts.restarts, rng, &opts.budget, &aborted);
                let (qth, new_val) = self.l2_output(q, &sp.u);
                if new_val > best_val && new_val > 0.0 {
                    best_val = new_val;
                    best_atom = Self::atom(sp.u.clone(), qth.iter().map(|a| a / new_val).collect());
                }
                if new_val <= val * (1.0 + 1e-10) {
                    break;
                }
                val = new_val;
                v = qth;
            }
        }
        let mut upper = uppers.iter().map(|u| u * u).sum::<f64>().sqrt();
        let mut found: Vec<(f64, Weights)> = Vec::new();
        let mut covered = None;
        if cover && (exact_enum || bab.is_some()) {
            let report =
                self.cover(q, opts, rng, &aborted, bab.as_mut(), &signed, (&mut best_val, &mut best_atom), &mut found);
            upper = upper.min(report.upper);
            covered = Some(report);
        }
        // Further units (the best one is the atom).
        found.retain(|(v, _)| *v < best_val);
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        found.truncate(opts.extra_atoms);
        let upper = upper.max(best_val);
        let closed = covered.as_ref().is_some_and(|r| r.closed);
        let scalar = match &bab {
            Some(b) => format!("branch and bound ({} nodes explored, {} open)", b.nodes, b.open),
            None if exact_enum => "exact".to_string(),
            None => "heuristic".to_string(),
        };
        Polar {
            lower: best_val,
            upper: (exact_enum || bab.is_some() || opts.prove).then_some(upper),
            exact: closed && upper <= best_val + 1e-8 * best_val.abs(),
            atom: best_atom,
            method: match &covered {
                Some(r) => format!(
                    "alternating over patterns; upper from a cover of the output directions ({} cones, {} {} scalar \
                     polars{})",
                    r.cones,
                    r.evaluations,
                    scalar,
                    if r.closed { ", closed" } else { "" }
                )
                .into(),
                None if exact_enum || bab.is_some() => {
                    format!("alternating over patterns; upper from {scalar} per-output polars").into()
                }
                None => "alternating over patterns (heuristic)".into(),
            },
            extra: found,
            heuristic: !exact_enum && bab.is_none(),
            open_search: covered.as_ref().map_or(bab.as_ref().is_some_and(|b| !b.closed), |r| !r.closed),
        }
    }
    fn descend(&self, p: &Problem<'_>, w: &mut Weights, opts: &DescentOptions) -> DescentInfo {
        crate::families::relu::descent::pattern_descent(p, self, w, opts)
    }
    fn hints(&self) -> crate::core::FamilyHints {
        crate::core::FamilyHints { refine_dual: true }
    }
}

/// The outputs `([X, 1] W1)_+ W2^T` of a trained network on new inputs `x` (`n x d`).
pub fn predict(x: MatRef<'_, f64>, w: &Weights, bias: bool, par: Par) -> Result<Mat<f64>> {
    let d = w.layers[0].nrows() - usize::from(bias);
    if x.ncols() != d {
        return Err(GonnError::Shape(format!("the model expects {d} input features but X has {} columns", x.ncols())));
    }
    let xa = augment(x, bias);
    let h = hidden(xa.as_ref(), w.layers[0].as_ref(), par);
    Ok(mul_nt(h.as_ref(), w.layers[1].as_ref(), par))
}
