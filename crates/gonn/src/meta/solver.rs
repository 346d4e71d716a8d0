//! One outer iteration of the meta-algorithm (THEORY.md section 4): local descent, the polar at the result, its
//! certificate, and the move that follows (grow, refine or stop). The executor decides when to stop; this file
//! knows nothing of observers, files or signals.

use crate::core::descent::{DescentInfo, DescentOptions};
use crate::core::polar::{Polar, PolarOptions};
use crate::core::problem::{Evaluation, Problem};
use crate::core::{prune_zero, Weights};
use crate::meta::certificate::{certifying_polar, refined_dual_bound, Certificate, Status};
use crate::meta::growth::{grow, ray_step};
use crate::meta::pruning::prune_dependent;
use crate::numerics::budget::Budget;
use crate::numerics::rng::Rng;

use super::params::ValidFitParams;
use super::state::{Action, MetaState, MAX_PROOF_SCALE};

/// `Q = -G / lambda`, the argument of the polar.
pub(super) fn dual_direction(g: &faer::Mat<f64>, lambda: f64) -> faer::Mat<f64> {
    faer::Mat::from_fn(g.nrows(), g.ncols(), |i, j| -g[(i, j)] / lambda)
}

/// The fully corrective model of the dual refinement, better than the descended weights, with its own evaluation
/// and certificate when the refinement's lower bound certifies it.
pub(super) struct Corrected {
    pub weights: Weights,
    pub certified: Option<(Evaluation, Certificate)>,
}

/// Tightens an uncertified gap bound with the cutting-plane dual point of [`refined_dual_bound`], when the polar
/// has a proven upper bound from an exact solver, or (`searched`) from a search that stopped at its target
/// (otherwise only the cheap pricing rounds run, without a bound). Returns the fully corrective model over the
/// cuts, when it is better than `w`.
#[allow(clippy::too_many_arguments)]
pub(super) fn tighten(
    p: &Problem<'_>,
    w: &Weights,
    polar: &Polar,
    opts: &PolarOptions,
    rng: &mut Rng,
    cert: &mut Certificate,
    rounds: usize,
    searched: bool,
) -> Option<Corrected> {
    if cert.status == Status::Certified || !p.net.hints().refine_dual {
        return None;
    }
    // Without a proven polar (a priced iteration, or a family without an exact solver) the refinement only looks
    // for a better fully corrective model, with the cheap search.
    let proven = (polar.exact || searched) && polar.upper.is_some() && !polar.heuristic;
    let objective = cert.objective;
    // A lower bound within the tolerance certifies: further (costly) rounds would not change the status.
    let enough = objective - cert.tol * objective.abs();
    let refined = refined_dual_bound(p, w, &polar.atom, opts, rng, if proven { rounds } else { 0 }, enough, cert.tol);
    if let Some(dual) = refined.dual {
        cert.tighten(dual);
    }
    if refined.primal >= objective {
        return None;
    }
    let mut better = Weights::empty(&p.net.layer_dims());
    let kdeg = p.net.degree() as f64;
    for (atom, weight) in &refined.units {
        better.push(atom, &vec![weight.powf(1.0 / kdeg); p.net.degree()]);
    }
    // The better model may be certified where the descended one is not: the same lower bound, a lower objective.
    let certified = match (refined.dual, &refined.primal_polar) {
        (Some(dual), Some(pp)) if cert.status != Status::Certified => {
            let ev = p.evaluate(&better);
            let c = Certificate::refined(p, &ev, pp, better.width(), cert.tol, dual);
            (ev.objective < objective && c.status == Status::Certified).then_some((ev, c))
        }
        _ => None,
    };
    Some(Corrected { weights: better, certified })
}

/// What the polar and certificate said about the descended weights of one outer iteration.
pub(super) struct Checked {
    pub ev: Evaluation,
    pub polar: Polar,
    pub cert: Certificate,
    /// The polar is below `1 + grow_threshold`: no subnetwork improves `f` by a margin.
    pub near_optimal: bool,
    /// The fully corrective model of the dual refinement, when better than the descended weights.
    pub corrected: Option<Weights>,
    /// The fully corrective model when it is certified (then `ev` and `cert` are its own): the run's answer.
    pub certified_model: Option<Weights>,
    pub info: DescentInfo,
    /// The check was the run's last (its proof had the grace time of a last proof).
    pub last: bool,
}

/// A converged run whose proof search did not close gets one more proof with this many times the polar's time
/// (`--polar-seconds`), within `--max-seconds`.
pub const CLOSING_POLARS: f64 = 8.0;

/// Which check of an outer iteration.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Pricing first, then a proof when near optimal.
    Regular,
    /// A converged run's longer proof at the same weights (no pricing); it stops at a unit worth growing.
    Closing,
    /// The run's last check (the last outer iteration, or the budget ended): a proof, as tight as time allows.
    Last,
}

/// The meta-algorithm's moves on a problem, with the run's parameters and budget.
pub(super) struct MetaSolver<'a> {
    pub p: Problem<'a>,
    pub params: &'a ValidFitParams,
    pub budget: Budget,
}

impl MetaSolver<'_> {
    fn descent_options(&self, state: &MetaState) -> DescentOptions {
        DescentOptions {
            tol: state.descent_tol,
            budget: self.budget.clone(),
            batch_size: self.params.batch_size,
            seed: self.params.seed,
            ..Default::default()
        }
    }

    /// Local descent from `w` (THEORY.md section 5), then the optimal scale along the ray and the pruning moves.
    pub fn descend(&self, w: &mut Weights, state: &MetaState) -> DescentInfo {
        let info = self.p.net.descend(&self.p, w, &self.descent_options(state));
        ray_step(&self.p, w);
        prune_zero(w);
        prune_dependent(&self.p, w);
        info
    }

    /// Polar options with the run's restarts and budget.
    pub fn polar_options(&self, prove: bool) -> PolarOptions {
        let mut opts = self.params.polar_options(prove, self.p.par);
        opts.budget = self.budget.clone();
        opts
    }

    /// The polar at `w` with its certificate; the polar is proven when the run is near optimal or about to stop
    /// (`at_limit`: the last outer iteration, or the budget ended, possibly inside this polar).
    pub fn check(&self, w: &Weights, info: DescentInfo, state: &MetaState, at_limit: bool, rng: &mut Rng) -> Checked {
        let mode = if at_limit { Mode::Last } else { Mode::Regular };
        self.check_within(w, info, state, mode, state.proof_scale, rng)
    }

    /// The check of a converged run whose proof search stopped with its bound open: the same weights again, with
    /// [`CLOSING_POLARS`] times the polar's time (or the current schedule's factor, if larger) for the proof.
    pub fn check_closing(&self, w: &Weights, info: DescentInfo, state: &MetaState, rng: &mut Rng) -> Checked {
        self.check_within(w, info, state, Mode::Closing, CLOSING_POLARS.max(state.proof_scale), rng)
    }

    /// [`Self::check`], with the proof search's time multiplied by `time_scale`.
    fn check_within(
        &self,
        w: &Weights,
        info: DescentInfo,
        state: &MetaState,
        mode: Mode,
        time_scale: f64,
        rng: &mut Rng,
    ) -> Checked {
        let p = &self.p;
        let ev = p.evaluate(w);
        let q = dual_direction(&ev.g, p.lambda);
        let mut opts = self.polar_options(false);
        opts.time_scale = time_scale;
        opts.extra_atoms = 8;
        let last = mode == Mode::Last || self.budget.expired();
        // No pricing in a closing check (it found nothing at these weights), but its proof still stops at a unit
        // worth growing: the run goes on with it.
        let prove_only = last || mode == Mode::Closing;
        // Families that refine their dual price first with their cheap search: while it finds a subnetwork above
        // the growth threshold, the run grows without the costly proven polar (that iteration is not certified).
        let refine = p.net.hints().refine_dual;
        // A proof search may stop once its bound certifies these weights (section 3: the plain gap bound at this
        // residual); for a refining family a subnetwork below half of that margin is not worth growing before a
        // proof is tried (the search grows what it finds above it).
        let enough = ev.objective - self.params.tol * ev.objective.abs();
        // (Only the refining family's searches read a target: the others skip the bisection.)
        let certifying = if refine {
            certifying_polar(|t| p.loss.dual_lower_bound(p.obs, ev.z.as_ref(), ev.g.as_ref(), t), enough)
        } else {
            1.0
        };
        let grow_threshold =
            if refine { state.grow_threshold.max(0.5 * (certifying - 1.0)) } else { state.grow_threshold };
        // Before the last iteration a bound at or below the growth threshold is enough as well: it proves that no
        // subnetwork is worth growing, and the descent is refined next (a closed bracket would only tighten the
        // gap bound of weights that are about to change). The refinement's searches stop there too.
        opts.target = if last { 1.0 } else { 1.0 + grow_threshold };
        let proof_target = certifying.max(opts.target);
        // Crawling: the last iteration grew a unit at `rho_prev` and `f` moved by `delta` since; a growth step
        // decreases `f` by a term of second order in `rho - 1` (section 4), so a unit at `rho` is predicted to
        // gain `delta ((rho - 1) / (rho_prev - 1))^2`. Units that gain less than a tenth of the tolerance are not
        // worth growing before a proof is tried (the gap bound is of first order in `rho - 1`): below `worth` the
        // iteration is near optimal (the descent is refined, a proof runs, and a unit above the threshold is
        // still grown).
        let mut worth = 1.0 + grow_threshold;
        if let Some(h) = state.history.last().filter(|h| refine && h.action == Action::Grow && h.polar_lower > 1.0) {
            let delta = h.objective - ev.objective;
            let small = 0.1 * self.params.tol * ev.objective.abs();
            let crawl = if delta > 0.0 { 1.0 + (h.polar_lower - 1.0) * (small / delta).sqrt() } else { f64::INFINITY };
            worth = worth.max(crawl);
        }
        // Searches stop at a unit above the growth threshold (the iteration grows it, or, when crawling, refines
        // the descent at once); a closing check's longer proof only at a unit worth growing.
        let stop_at = if mode == Mode::Closing { worth } else { 1.0 + grow_threshold };
        let mut priced = None;
        if refine && !prove_only {
            let mut po = opts.clone();
            po.pricing = true;
            let pp = p.net.polar(q.as_ref(), &po, rng);
            if !pp.heuristic || pp.lower > worth {
                priced = Some(pp);
            }
        }
        // An exact polar prices and proves at once: growth does not crawl there (each step takes the best unit).
        if priced.as_ref().is_some_and(|pp| !pp.heuristic) {
            worth = 1.0 + grow_threshold;
        }
        let searched = priced.is_none();
        let mut polar = match priced {
            Some(pp) => pp,
            None => {
                // A proof search (the ReLU branch and bound) stops at a subnetwork worth growing; when it finds
                // none, its bound is the iteration's proof (not searched again below).
                let mut search = opts.clone();
                search.target = proof_target;
                if refine && !last {
                    search.enough = stop_at;
                }
                p.net.polar(q.as_ref(), &search, rng)
            }
        };
        let mut near_optimal = polar.lower <= worth;
        // An exact solver's answer is already proven: asking again would repeat the same enumeration; so is the
        // bound of a refining family's full search before the last iteration.
        let proven_already =
            (polar.exact || (refine && searched && !last)) && !polar.heuristic && polar.upper.is_some();
        if near_optimal || last {
            opts.prove = true;
        }
        if (near_optimal || last) && !proven_already {
            // A proof that may be the run's last gets at least 5% of the time limit (1 to 30 s), even past it,
            // so that the limit does not cut it short.
            let grace = (0.05 * self.params.max_seconds).clamp(1.0, 30.0);
            opts.budget = self.budget.at_least(std::time::Duration::from_secs_f64(grace));
            opts.lanczos_tol = 1e-10;
            opts.warm_start = polar.atom.layers.last().map(|l| l.col_as_slice(0).to_vec());
            opts.extra_atoms = 0;
            // Before the last iteration a search may stop at a subnetwork worth growing (not the refinement's).
            let mut first = opts.clone();
            first.target = proof_target;
            if !last {
                first.enough = stop_at;
            }
            let proven = p.net.polar(q.as_ref(), &first, rng);
            // A heuristic polar may find a better subnetwork on the second search: then keep growing.
            near_optimal = proven.lower <= worth;
            polar = proven;
        }
        let mut cert = Certificate::new(p, &ev, &polar, w.width(), self.params.tol);
        // Families that refine their dual also grow by the fully corrective step over several polar atoms.
        let corrected = tighten(p, w, &polar, &opts, rng, &mut cert, if opts.prove { 10 } else { 5 }, false);
        // A certified corrective model is the run's answer (the run stops): it replaces the evaluation and
        // certificate; otherwise it is the model to adopt when better.
        let (mut ev, mut certified_model) = (ev, None);
        let corrected = match corrected {
            Some(Corrected { weights, certified: Some((cev, ccert)) }) => {
                (ev, cert) = (cev, ccert);
                certified_model = Some(weights);
                None
            }
            c => c.map(|c| c.weights),
        };
        Checked { ev, polar, cert, near_optimal, corrected, certified_model, info, last }
    }

    /// Whether the descent and growth schedule can still be refined (else a near-optimal run has converged).
    pub fn can_refine(&self, state: &MetaState) -> bool {
        state.descent_tol > 1e-16 || state.grow_threshold > 0.5 * self.params.tol || state.stalls < 3
    }

    /// Records the gap of a near-optimal iteration (for the stall count), and doubles the proof search's time
    /// when its bound stopped open there.
    pub fn note_gap(&self, state: &mut MetaState, c: &Checked) {
        if c.near_optimal && c.polar.open_search {
            state.proof_scale = (2.0 * state.proof_scale).min(MAX_PROOF_SCALE);
        }
        if c.near_optimal {
            let gap = c.cert.gap_bound.unwrap_or(f64::INFINITY);
            let best = state.best_gap.unwrap_or(f64::INFINITY);
            state.stalls = if gap < 0.99 * best { 0 } else { state.stalls + 1 };
            state.best_gap = Some(best.min(gap)).filter(|g| g.is_finite());
        }
    }

    /// The move after a checked iteration that does not stop: grow along the polar (and its extra atoms), or
    /// refine the descent, then adopt the fully corrective model when it is better.
    pub fn advance(&self, w: &mut Weights, state: &mut MetaState, c: Checked) {
        let p = &self.p;
        let tol = self.params.tol;
        if c.near_optimal {
            // No subnetwork improves f by a margin: polish the local descent before asking again. Near the
            // optimum a sweep decreases f by about (rho - 1)^2 * f, so reaching rho - 1 ~ tol / 10 needs a
            // relative-decrease tolerance of about (tol / 10)^2.
            state.descent_tol = (state.descent_tol * 1e-2).min((0.1 * tol).powi(2)).max(1e-16);
            state.grow_threshold = (state.grow_threshold * 0.1).max(0.5 * tol);
            if c.polar.lower > 1.0 + state.grow_threshold {
                grow(p, w, &c.polar.atom, Some(&c.ev.z));
            }
        } else {
            grow(p, w, &c.polar.atom, Some(&c.ev.z));
            // Further candidates found at no cost (Ritz pairs): each corrective step can only decrease f.
            for (value, atom) in &c.polar.extra {
                if *value > 1.0 + state.grow_threshold {
                    grow(p, w, atom, None);
                }
            }
        }
        // Single subnetworks may no longer improve f measurably while several together do: take the fully
        // corrective model of the dual refinement when it is better, for descent to polish.
        if let Some(better) = c.corrected {
            if p.objective(&better) < p.objective(w) {
                *w = better;
            }
        }
    }

    /// Local descent at the width of `w` only, until it converges or the budget ends.
    pub fn descend_fixed(&self, w: &mut Weights, state: &MetaState) -> DescentInfo {
        let opts = self.descent_options(state);
        // Families with bounded descent calls (deep subnetworks) are called until they converge or time is up.
        let mut info = self.p.net.descend(&self.p, w, &opts);
        let mut sweeps = info.sweeps;
        while !info.converged && w.width() > 0 && !self.budget.expired() {
            info = self.p.net.descend(&self.p, w, &opts);
            sweeps += info.sweeps;
        }
        info.sweeps = sweeps;
        info
    }
}
