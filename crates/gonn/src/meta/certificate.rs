//! The certificate (THEORY.md section 3): the polar bracket, the weak-duality bound on the distance to the
//! global optimum `f(W) - F*`, valid at any weights, and the resulting status.

use std::fmt;

use serde::Serialize;

use crate::core::polar::Polar;
use crate::core::problem::{Evaluation, Problem};

/// The outcome of a fit or a check, in the spirit of a conic solver's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A proven gap bound at most `tol` (relative): globally optimal to that accuracy.
    Certified,
    /// A proven gap bound exists but is above `tol` (e.g. the polar's proven upper bound does not close).
    Bounded,
    /// No proven upper bound on the polar: no better subnetwork was found, but there is no proof.
    Heuristic,
    /// No optimality test was run or applies (the certificate's `note` says why): objective only.
    Untested,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Certified => "certified",
            Status::Bounded => "bounded",
            Status::Heuristic => "heuristic",
            Status::Untested => "untested",
        })
    }
}

/// What is known about the optimality of some weights.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Certificate {
    /// `f(W) = loss + lambda * regularizer`.
    pub objective: f64,
    pub loss: f64,
    pub regularizer: f64,
    pub lambda: f64,
    /// Number of nonzero subnetworks.
    pub subnetworks: usize,
    /// Lower bound on `rho = Omega°(-G / lambda)`; `rho <= 1` is the optimality condition (C1).
    pub polar_lower: f64,
    /// Proven upper bound on `rho`, if any.
    pub polar_upper: Option<f64>,
    pub polar_exact: bool,
    pub polar_method: String,
    /// Proven bound on `f(W) - F*`, if the polar has a proven upper bound.
    pub gap_bound: Option<f64>,
    /// `gap_bound / f(W)`.
    pub relative_gap: Option<f64>,
    /// Lower bound on the global optimum `F*` (weak duality).
    pub optimum_lower_bound: Option<f64>,
    pub status: Status,
    /// When the polar exceeds 1: the subnetwork that improves the model (each layer of unit norm, `theta = 1`,
    /// layer by layer; for a ReLU unit `[u (bias last), v]`). Adding it with a small positive weight decreases `f`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub improving_subnetwork: Option<Vec<Vec<f64>>>,
    /// Why no optimality test applies (e.g. a regularizer whose degree does not match the network's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The relative tolerance that separates `certified` from `bounded`.
    #[serde(skip)]
    pub tol: f64,
}

/// The gap bound `f(W) + loss*(t G)` with `t` optimal in `[0, 1 / rho_up]` (THEORY.md section 3). `None` without
/// a proven `rho_up`.
pub fn gap_bound(p: &Problem<'_>, ev: &Evaluation, polar_upper: Option<f64>) -> Option<(f64, f64)> {
    let rho_up = polar_upper?;
    let t_max = if rho_up > 0.0 { 1.0 / rho_up } else { f64::INFINITY };
    let dual = p.loss.dual_lower_bound(p.obs, ev.z.as_ref(), ev.g.as_ref(), t_max);
    let gap = ev.objective - dual;
    // An overflow or NaN proves nothing (NaN.max(0) would read as a zero gap).
    (gap.is_finite() && dual.is_finite()).then_some((gap.max(0.0), dual))
}

/// The largest proven polar bound that still certifies: the `rho >= 1` with `dual(1 / rho) >= enough`, where
/// `dual(t_max)`, nondecreasing in `t_max`, is the weak-duality bound of section 3 at some dual direction and
/// `enough` the lower bound on `F*` that certifies (`f - tol |f|`). A search with an anytime proven bound (the ReLU
/// branch and bound) may stop once its bound is below this: its `rho_up` then gives `t_max >= 1 / rho` and the
/// bound at least `enough`. Returns 1 when even `rho = 1` falls short (then only a bracket closed at or below 1
/// helps), at most `1e6`. Bisection on `t`, with a margin of 0.1 % of `rho - 1`; the certificate itself is always
/// evaluated from the bound that was proven, so this value decides only when a search stops.
pub fn certifying_polar(dual: impl Fn(f64) -> f64, enough: f64) -> f64 {
    let reaches = |t: f64| dual(t) >= enough;
    if !reaches(1.0) {
        return 1.0;
    }
    let (mut lo, mut hi) = (1e-6, 1.0);
    if reaches(lo) {
        return 1e6;
    }
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if reaches(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    1.0 + (1.0 / hi - 1.0) * (1.0 - 1e-3)
}

/// What [`refined_dual_bound`] found.
#[derive(Clone, Debug, Default)]
pub struct Refinement {
    /// A proven lower bound on `F*`, when the polar's upper bound is proven.
    pub dual: Option<f64>,
    /// The best fully corrective model: subnetworks (at `theta = 1`) with their weights.
    pub units: Vec<(crate::core::Weights, f64)>,
    /// Its objective (`+inf` when none was computed).
    pub primal: f64,
    /// The proven polar at its residual, when the round that found it computed one.
    pub primal_polar: Option<crate::core::polar::Polar>,
}

/// The (masked) outputs `M phi_k` of the atoms of [`refined_dual_bound`], their Gram matrix (by rows) and the
/// linear terms `<M phi_k, y> - lambda`, grown one atom at a time.
#[derive(Default)]
struct Cuts {
    outputs: Vec<faer::Mat<f64>>,
    gram_rows: Vec<Vec<f64>>,
    lin: Vec<f64>,
}

impl Cuts {
    fn add(&mut self, o: faer::Mat<f64>, y: &faer::Mat<f64>, lambda: f64) {
        let dotm = |a: &faer::Mat<f64>, b: &faer::Mat<f64>| crate::numerics::linalg::dot(a.as_ref(), b.as_ref());
        let mut row: Vec<f64> = self.outputs.iter().map(|prev| dotm(prev, &o)).collect();
        for (prev_row, v) in self.gram_rows.iter_mut().zip(&row) {
            prev_row.push(*v);
        }
        row.push(dotm(&o, &o));
        self.gram_rows.push(row);
        self.lin.push(dotm(&o, y) - lambda);
        self.outputs.push(o);
    }
}

/// A tighter dual point for the squared loss (THEORY.md section 3, "tighter dual points"), with the matching
/// primal step.
///
/// Scaling the residual by `1 / rho` is loose when `rho` is slightly above 1: that bound is first order in
/// `rho - 1`. Instead, take as atoms the current subnetworks (each scaled to `theta = 1`) plus the polar's, solve the
/// fully corrective problem over their weights, `P = min_{c >= 0} 1/2 ||y - M(sum_k c_k phi_k)||^2 + lambda sum_k
/// c_k` (exact, active set), whose residual `Gamma` is the dual optimum over the cuts `<Gamma, M phi_k> <= lambda`;
/// then compute the polar of `Gamma / lambda`, scale `Gamma` into the dual feasible set and evaluate the dual
/// `<Gamma, y> - 1/2 ||Gamma||^2`, a proven lower bound on `F*` when the polar's upper bound is proven. The new polar
/// subnetwork becomes the next atom (column generation). Returns the best lower bound, and the best restricted
/// solution as `(subnetwork, weight)` pairs with its objective `P` (a model at least as good as the current one).
/// Stops early once a lower bound reaches `enough` (the caller's certificate then needs no more), or certifies the
/// best restricted solution at the relative tolerance `tol`; a round's proof search stops once its bound would
/// ([`certifying_polar`]).
#[allow(clippy::too_many_arguments)]
pub fn refined_dual_bound(
    p: &Problem<'_>,
    w: &crate::core::Weights,
    first_atom: &crate::core::Weights,
    opts: &crate::core::polar::PolarOptions,
    rng: &mut crate::numerics::rng::Rng,
    rounds: usize,
    enough: f64,
    tol: f64,
) -> Refinement {
    let mut out = Refinement { primal: f64::INFINITY, ..Default::default() };
    let squared = p.loss == crate::core::loss::Loss::Squared;
    if !squared && p.loss.entry_curvature(0.0).is_none() {
        return out;
    }
    let (m, n) = p.net.output_shape();
    let masked =
        |a: &faer::Mat<f64>| faer::Mat::from_fn(m, n, |i, j| if p.obs.is_observed(i, j) { a[(i, j)] } else { 0.0 });
    let dotm = |a: &faer::Mat<f64>, b: &faer::Mat<f64>| crate::numerics::linalg::dot(a.as_ref(), b.as_ref());
    let y = masked(p.obs.y());
    // Atoms: the current subnetworks at theta = 1 (their weights c = theta_i), then the polar's.
    let kdeg = p.net.degree() as f64;
    let thetas = crate::core::theta(p.net, w);
    let mut atoms: Vec<crate::core::Weights> = Vec::new();
    let mut c: Vec<f64> = Vec::new();
    for (i, th) in thetas.iter().enumerate() {
        if *th <= 0.0 {
            continue;
        }
        let s = th.powf(-1.0 / kdeg);
        let layers = w.layers.iter().map(|l| faer::Mat::from_fn(l.nrows(), 1, |a, _| s * l[(a, i)])).collect();
        atoms.push(crate::core::Weights { layers });
        c.push(*th);
    }
    atoms.push(first_atom.clone());
    c.push(0.0);
    let mut cuts = Cuts::default();
    for a in &atoms {
        cuts.add(masked(&p.net.forward(a, p.par)), &y, p.lambda);
    }
    let mut pricing = opts.clone();
    pricing.pricing = true;
    let mut extra_opts = opts.clone();
    extra_opts.extra_atoms = 8;
    // A search with an anytime bound may stop at a column worth 0.1 % or more: the dual of such a round is weak
    // anyway, and the rounds whose polar is within 0.1 % of 1 run to the end.
    extra_opts.enough = 1.0 + 1e-3;
    let opts = &extra_opts;
    // A polar's unit and its further maxima above 1 become columns.
    let add_columns = |first: crate::core::Weights,
                       extra: Vec<(f64, crate::core::Weights)>,
                       cuts: &mut Cuts,
                       atoms: &mut Vec<crate::core::Weights>,
                       c: &mut Vec<f64>| {
        let above = extra.into_iter().filter(|(value, _)| *value > 1.0 + 1e-9).map(|(_, a)| a);
        for atom in std::iter::once(first).chain(above) {
            cuts.add(masked(&p.net.forward(&atom, p.par)), &y, p.lambda);
            atoms.push(atom);
            c.push(0.0);
        }
    };
    let (mut cheap, mut proven) = (0, 0);
    let mut last_proven: Option<faer::Mat<f64>> = None;
    let cheap_limit = 4 * rounds.max(2);
    while proven < rounds || (rounds == 0 && cheap < cheap_limit) {
        if (cheap > 0 || proven > 0) && opts.budget.expired() {
            break;
        }
        // The fully corrective step and its dual residual `Gamma = -grad loss(Z)`.
        let (gamma, primal, fit) = if squared {
            crate::numerics::nnls::nonneg_qp(&cuts.gram_rows.concat(), &cuts.lin, &mut c);
            let mut gamma = y.clone();
            for (o, ck) in cuts.outputs.iter().zip(&c) {
                if *ck > 0.0 {
                    gamma -= o * faer::Scale(*ck);
                }
            }
            let primal = 0.5 * dotm(&gamma, &gamma) + p.lambda * c.iter().sum::<f64>();
            (gamma, primal, None)
        } else {
            let (z, loss, g) =
                p.nonneg_combination(&cuts.outputs.iter().collect::<Vec<_>>(), &vec![1.0; c.len()], &mut c);
            let gamma = faer::Mat::from_fn(m, n, |i, j| -g[(i, j)]);
            (gamma, loss + p.lambda * c.iter().sum::<f64>(), Some((z, g)))
        };
        let improved = primal < out.primal;
        if improved {
            out.units = atoms.iter().zip(&c).filter(|(_, ck)| **ck > 0.0).map(|(a, ck)| (a.clone(), *ck)).collect();
            out.primal = primal;
            out.primal_polar = None;
        }
        let q = faer::Mat::from_fn(m, n, |i, j| gamma[(i, j)] / p.lambda);
        // The fully corrective step did not move (the new columns are worth less than its tolerance): the next
        // polar would repeat the last one.
        if last_proven.as_ref() == Some(&q) {
            break;
        }
        // The weak-duality bound of this round's residual for a proven polar of at most `1 / t_max`.
        let (gy, gg) = if fit.is_none() { (dotm(&gamma, &y), dotm(&gamma, &gamma)) } else { (0.0, 0.0) };
        let round_dual = |t_max: f64| match &fit {
            None => crate::core::loss::squared_dual_bound(gy, gg, t_max),
            Some((z, g)) => p.loss.dual_lower_bound(p.obs, z.as_ref(), g.as_ref(), t_max),
        };
        // A lower bound that certifies the caller's weights, or the best restricted solution when it will have a
        // proven polar at its residual (this round's, or an earlier one's; its objective is evaluated again from
        // its layers: a margin for that rounding).
        let goal = if improved || out.primal_polar.is_some() {
            enough.min(out.primal - tol * out.primal.abs() - 1e-12 * out.primal.abs())
        } else {
            enough
        };
        // A proof search may stop once its bound certifies, or is below the caller's target.
        let mut proof = opts.clone();
        proof.target = certifying_polar(round_dual, goal).max(opts.target);
        // Column generation prices with the family's cheap search while it finds a subnetwork above 1; the
        // (possibly costly) proven polar runs when it does not, and gives the round's dual bound.
        let polar = if cheap < cheap_limit {
            cheap += 1;
            let priced = p.net.polar(q.as_ref(), &pricing, rng);
            if !priced.heuristic && rounds > 0 {
                priced
            } else if priced.lower > 1.0 + 1e-9 {
                // The search's other local maxima above 1 are columns too.
                add_columns(priced.atom, priced.extra, &mut cuts, &mut atoms, &mut c);
                continue;
            } else if rounds == 0 {
                break;
            } else {
                p.net.polar(q.as_ref(), &proof, rng)
            }
        } else {
            p.net.polar(q.as_ref(), &proof, rng)
        };
        proven += 1;
        last_proven = Some(q);
        if improved && polar.upper.is_some() {
            out.primal_polar = Some(polar.clone());
        }
        let Some(rho_up) = polar.upper else { break };
        let t_max = if rho_up > 0.0 { 1.0 / rho_up } else { f64::INFINITY };
        let dual = round_dual(t_max);
        if !dual.is_finite() {
            break;
        }
        out.dual = Some(out.dual.map_or(dual, |b: f64| b.max(dual)));
        if rho_up <= 1.0 + 1e-14 || dual >= goal {
            break;
        }
        // Further maxima of the same (costly) polar above 1 are columns too.
        add_columns(polar.atom, polar.extra, &mut cuts, &mut atoms, &mut c);
    }
    out
}

impl Certificate {
    /// A proven lower bound on `F*` can never exceed an objective the same run evaluated (`least`, at most this
    /// certificate's own objective): if it does, rounding broke the proof, and the certificate is withdrawn
    /// (status `heuristic`, no gap bound, a note that says why). Any non-finite number on the way does the same.
    pub fn check_lower_bound(&mut self, least: f64) {
        let least = least.min(self.objective);
        let broken = match self.optimum_lower_bound {
            Some(lb) => !lb.is_finite() || !least.is_finite() || lb > least + 1e-12 * least.abs().max(1.0),
            None => false,
        };
        let non_finite = !self.objective.is_finite()
            || self.gap_bound.is_some_and(|g| !g.is_finite())
            || self.polar_upper.is_some_and(|u| !u.is_finite())
            || !self.polar_lower.is_finite();
        if broken || non_finite {
            self.note = Some(if broken {
                format!(
                    "internal check failed: the proven lower bound {:.12e} exceeds an evaluated objective {least:.12e}; \
                     the certificate is withdrawn",
                    self.optimum_lower_bound.unwrap_or(f64::NAN)
                )
            } else {
                "a number on the way to the certificate is not finite (overflow or NaN): not certified".into()
            });
            self.status = if self.status == Status::Untested { Status::Untested } else { Status::Heuristic };
            self.gap_bound = None;
            self.relative_gap = None;
            self.optimum_lower_bound = None;
        }
    }

    /// Replaces the gap bound by `f - dual` when `dual` (a proven lower bound on `F*`) is tighter.
    pub fn tighten(&mut self, dual: f64) {
        let tol = self.tol;
        if !(dual.is_finite() && self.objective.is_finite()) {
            return;
        }
        let gap = (self.objective - dual).max(0.0);
        if self.gap_bound.is_some_and(|g| gap < g) {
            self.gap_bound = Some(gap);
            self.optimum_lower_bound = Some(dual);
            let rel = gap / self.objective.abs().max(f64::MIN_POSITIVE);
            self.relative_gap = Some(rel);
            if rel <= tol {
                self.status = Status::Certified;
            }
        }
    }

    /// Assembles the certificate of weights evaluated as `ev`, given their polar, subnetwork count and the
    /// relative tolerance that separates `certified` from `bounded`.
    pub fn new(p: &Problem<'_>, ev: &Evaluation, polar: &Polar, subnetworks: usize, tol: f64) -> Self {
        let gb = gap_bound(p, ev, polar.upper);
        let rel = gb.map(|(g, _)| g / ev.objective.abs().max(f64::MIN_POSITIVE));
        let status = match rel {
            Some(r) if r <= tol => Status::Certified,
            Some(_) if polar.heuristic => Status::Heuristic,
            Some(_) => Status::Bounded,
            None => Status::Heuristic,
        };
        let mut cert = Self {
            objective: ev.objective,
            loss: ev.loss,
            regularizer: ev.regularizer,
            lambda: p.lambda,
            subnetworks,
            polar_lower: polar.lower,
            polar_upper: polar.upper,
            polar_exact: polar.exact,
            polar_method: polar.method.to_string(),
            gap_bound: gb.map(|(g, _)| g),
            relative_gap: rel,
            optimum_lower_bound: gb.map(|(_, d)| d),
            status,
            improving_subnetwork: (polar.lower > 1.0)
                .then(|| polar.atom.layers.iter().map(|l| l.col_as_slice(0).to_vec()).collect()),
            note: None,
            tol,
        };
        cert.check_lower_bound(ev.objective);
        cert
    }

    /// The certificate of the fully corrective model of the dual refinement (THEORY.md section 3), evaluated as
    /// `ev`: its gap is bounded by the refinement's proven lower bound `dual` on `F*` (weak duality holds for any
    /// weights); `polar` is the proven polar computed at its residual, reported but not used for the gap (it was
    /// computed from the refinement's residual, which equals `ev`'s only up to rounding).
    pub fn refined(p: &Problem<'_>, ev: &Evaluation, polar: &Polar, subnetworks: usize, tol: f64, dual: f64) -> Self {
        let mut cert = Self::new(p, ev, &Polar { upper: None, ..polar.clone() }, subnetworks, tol);
        cert.polar_upper = polar.upper;
        let gap = ev.objective - dual;
        if gap.is_finite() && dual.is_finite() {
            let rel = gap.max(0.0) / ev.objective.abs().max(f64::MIN_POSITIVE);
            cert.gap_bound = Some(gap.max(0.0));
            cert.relative_gap = Some(rel);
            cert.optimum_lower_bound = Some(dual);
            cert.status = if rel <= tol { Status::Certified } else { Status::Bounded };
        }
        cert.check_lower_bound(ev.objective);
        cert
    }

    /// The record of weights for which no optimality test applies (`note` says why): objective only.
    pub fn untested(p: &Problem<'_>, ev: &Evaluation, subnetworks: usize, tol: f64, note: String) -> Self {
        Self {
            objective: ev.objective,
            loss: ev.loss,
            regularizer: ev.regularizer,
            lambda: p.lambda,
            subnetworks,
            polar_lower: 0.0,
            polar_upper: None,
            polar_exact: false,
            polar_method: "none (no optimality test applies)".into(),
            gap_bound: None,
            relative_gap: None,
            optimum_lower_bound: None,
            status: Status::Untested,
            improving_subnetwork: None,
            note: Some(note),
            tol,
        }
    }

    /// No certificate at all (a checkpoint's weights, which are a point between two outer iterations): status
    /// `untested`, the objective unknown (NaN), and `note` saying why.
    pub fn absent(lambda: f64, subnetworks: usize, note: String) -> Self {
        Self {
            objective: f64::NAN,
            loss: f64::NAN,
            regularizer: f64::NAN,
            lambda,
            subnetworks,
            polar_lower: f64::NAN,
            polar_upper: None,
            polar_exact: false,
            polar_method: "none".into(),
            gap_bound: None,
            relative_gap: None,
            optimum_lower_bound: None,
            status: Status::Untested,
            improving_subnetwork: None,
            note: Some(note),
            tol: 0.0,
        }
    }

    /// The certificate of weights whose polar was not computed (a run interrupted inside its local descent). Weak
    /// duality bounds `F*` from below for every weights of the same problem, so the best proven lower bound that
    /// the run found earlier, `lower_bound`, still bounds the gap of these weights: `f(W) - lower_bound`.
    pub fn carried(
        p: &Problem<'_>,
        ev: &Evaluation,
        subnetworks: usize,
        tol: f64,
        lower_bound: Option<f64>,
        note: String,
    ) -> Self {
        let mut c = Self::untested(p, ev, subnetworks, tol, note);
        c.polar_method = "none (not computed at these weights)".into();
        if let Some(lb) = lower_bound.filter(|lb| lb.is_finite()) {
            let gap = (ev.objective - lb).max(0.0);
            let rel = gap / ev.objective.abs().max(f64::MIN_POSITIVE);
            c.gap_bound = Some(gap);
            c.relative_gap = Some(rel);
            c.optimum_lower_bound = Some(lb.min(ev.objective));
            c.status = if rel <= tol { Status::Certified } else { Status::Bounded };
        }
        c
    }

    /// A one-paragraph human reading of the certificate.
    pub fn summary(&self) -> String {
        if let Some(note) = &self.note {
            let gap = self.gap_bound.map_or(String::new(), |g| format!("\n{}", self.gap_sentence(g)));
            return format!("objective {:.8e} with {} subnetworks\n{note}{gap}", self.objective, self.subnetworks);
        }
        let upper = self.polar_upper.map_or("none proven".to_string(), |u| format!("{u:.6}"));
        let head = format!(
            "objective {:.8e} with {} subnetworks; polar in [{:.6}, {}] (a polar <= 1 proves global optimality)",
            self.objective, self.subnetworks, self.polar_lower, upper
        );
        let tail = match (self.status, self.gap_bound) {
            (Status::Certified, Some(g)) => {
                let slack = match self.polar_upper {
                    Some(u) if u > 1.0 => format!(
                        "; the proven upper bound on the polar exceeds 1 by {:.1e}, which the gap bound accounts for",
                        u - 1.0
                    ),
                    _ => String::new(),
                };
                format!("CERTIFIED: {}{slack}", self.gap_sentence(g))
            }
            (_, Some(g)) if self.polar_lower > 1.0 => format!(
                "not certified: the polar exceeds 1 (lower bound {:.8}), so a small step along the report's \
                 improving_subnetwork decreases f, by at most the gap: {}",
                self.polar_lower,
                self.gap_sentence(g)
            ),
            (Status::Heuristic, Some(g)) => format!(
                "no better subnetwork found by the heuristic polar search; for this family no exact polar is known \
                 and the only proven bound on it is loose, so no certificate is possible: {}",
                self.gap_sentence(g)
            ),
            (_, Some(g)) => format!(
                "no better subnetwork found, but the proven upper bound on the polar does not close: {}",
                self.gap_sentence(g)
            ),
            (_, None) => "no better subnetwork found; no upper bound on the polar is proven, so no certificate is \
                          possible"
                .to_string(),
        };
        format!("{head}\n{tail}")
    }

    /// "within g (relative r <= tol) of the global optimum", with the comparison to the tolerance spelled out.
    fn gap_sentence(&self, g: f64) -> String {
        let rel = self.relative_gap.unwrap_or(f64::INFINITY);
        let versus = match (self.tol > 0.0, rel <= self.tol) {
            (false, _) => String::new(),
            (true, true) => format!(" <= tol {:.1e}", self.tol),
            (true, false) => format!(" > tol {:.1e}", self.tol),
        };
        format!("the objective is within {g:.3e} (relative {rel:.3e}{versus}) of the global optimum, proven")
    }
}

#[cfg(test)]
mod tests {
    use super::certifying_polar;
    use crate::numerics::rng::Rng;

    /// Squared loss: `dual(t_max) = t gy - t^2 gg / 2` at `t = clip(gy / gg, 0, t_max)`. The returned bound
    /// certifies (`dual(1 / rho) >= enough`), a bound 1 % further from 1 does not, and the closed form agrees:
    /// the smallest `t` with `t gy - t^2 gg / 2 = enough` is `(gy - sqrt(gy^2 - 2 gg enough)) / gg`.
    #[test]
    fn certifying_polar_is_the_largest_bound_that_certifies() {
        let mut rng = Rng::new(5);
        for _ in 0..200 {
            let gg = 0.1 + 10.0 * rng.uniform();
            let gy = gg * (0.5 + rng.uniform());
            let dual = |t_max: f64| {
                let t = (gy / gg).clamp(0.0, t_max);
                t * gy - 0.5 * t * t * gg
            };
            let enough = dual(1.0) * (1.0 - 0.3 * rng.uniform());
            let rho = certifying_polar(dual, enough);
            assert!(rho >= 1.0 && dual(1.0 / rho) >= enough, "rho {rho} does not certify");
            if rho > 1.0 + 1e-9 {
                assert!(dual(1.0 / (1.0 + 1.01 * (rho - 1.0))) < enough);
                let t = (gy - (gy * gy - 2.0 * gg * enough).sqrt()) / gg;
                assert!(((rho - 1.0) - (1.0 / t - 1.0)).abs() <= 2e-3 * (1.0 / t - 1.0) + 1e-12);
            }
            // A bound that even `rho = 1` cannot reach leaves the target at 1.
            assert_eq!(certifying_polar(dual, dual(1.0) * 1.01 + 1e-9), 1.0);
        }
    }
}
