//! The executor of the meta-algorithm: runs the solver's steps from a start or a saved [`MetaState`], decides
//! the [`Termination`], hands every iteration to the observers, and on a stop flag ends with the best point
//! reached.

use std::time::{Duration, Instant};

use crate::core::loss::Observations;
use crate::core::problem::Problem;
use crate::core::{prune_zero, zero_slices, Family, Weights};
use crate::error::{GonnError, Result};
use crate::meta::certificate::{Certificate, Status};
use crate::numerics::budget::Budget;
use crate::numerics::rng::Rng;

use super::observer::{Observer, Silent};
use super::params::ValidFitParams;
use super::solver::{dual_direction, MetaSolver};
use super::state::{Action, IterationRecord, MetaState, Termination};
use super::{check_problem, check_weights, degree_mismatch, parallelism, random_start, FitResult};

impl ValidFitParams {
    pub(super) fn problem<'a>(&self, net: &'a dyn Family, obs: &'a Observations) -> Result<Problem<'a>> {
        check_problem(net, obs, self.loss)?;
        Ok(Problem { net, loss: self.loss, obs, lambda: self.lambda, par: parallelism(self.threads) })
    }

    /// The state before the first outer iteration: `init` (checked) or the configured random start.
    pub fn initial_state(&self, net: &dyn Family, obs: &Observations, init: Option<Weights>) -> Result<MetaState> {
        self.start(&self.problem(net, obs)?, init)
    }

    /// [`ValidFitParams::initial_state`] on a checked problem.
    fn start(&self, p: &Problem<'_>, init: Option<Weights>) -> Result<MetaState> {
        let net = p.net;
        let mut rng = Rng::new(self.seed);
        let mut w = match init {
            Some(w) => {
                check_weights(net, &w)?;
                w
            }
            None => {
                let per_unit: usize = net.layer_dims().iter().sum();
                if per_unit.saturating_mul(self.init_width) > crate::numerics::MAX_ELEMENTS / 4 {
                    return Err(GonnError::param(
                        "init_width",
                        format!(
                            "{} random subnetworks of {per_unit} weights each would not fit in memory",
                            self.init_width
                        ),
                    ));
                }
                random_start(p, self.init_width, &mut rng)
            }
        };
        prune_zero(&mut w);
        Ok(MetaState::start(p, self.tol, w, &rng))
    }

    fn solver<'a>(&'a self, p: Problem<'a>) -> MetaSolver<'a> {
        let deadline = Instant::now() + Duration::from_secs_f64(self.max_seconds);
        MetaSolver { p, params: self, budget: Budget::new(Some(deadline), self.stop.clone()) }
    }

    /// Runs the meta-algorithm from an empty or random start.
    pub fn fit(&self, net: &dyn Family, obs: &Observations) -> Result<FitResult> {
        self.fit_from(net, obs, None, &mut Silent)
    }

    /// Runs the meta-algorithm from `init` (or the configured start) and reports each outer iteration.
    pub fn fit_from(
        &self,
        net: &dyn Family,
        obs: &Observations,
        init: Option<Weights>,
        observer: &mut dyn Observer,
    ) -> Result<FitResult> {
        let p = self.problem(net, obs)?;
        let state = self.start(&p, init)?;
        self.continue_from(p, state, observer)
    }

    /// Continues a run from `state` (a checkpoint of the same problem, or [`ValidFitParams::initial_state`]).
    /// With the same seed and thread count it takes exactly the steps of the uninterrupted run.
    pub fn resume(
        &self,
        net: &dyn Family,
        obs: &Observations,
        state: MetaState,
        observer: &mut dyn Observer,
    ) -> Result<FitResult> {
        let p = self.problem(net, obs)?;
        if state.fingerprint != super::state::fingerprint(&p) {
            return Err(GonnError::Data(
                "the checkpoint belongs to another problem (other data, model, loss or lambda)".into(),
            ));
        }
        self.continue_from(p, state, observer)
    }

    /// Runs from a state of the checked problem `p`.
    fn continue_from(&self, p: Problem<'_>, state: MetaState, observer: &mut dyn Observer) -> Result<FitResult> {
        let net = p.net;
        check_weights(net, &state.weights)?;
        if let Some(note) = degree_mismatch(net) {
            if state.weights.width() == 0 {
                return Err(GonnError::param(
                    "init_width",
                    "0: with a mismatched regularizer gonn only trains a given width (use --init-width N)",
                ));
            }
            return Ok(fixed_width(&self.solver(p), state, Some(note), observer));
        }
        Ok(run(&self.solver(p), state, observer))
    }

    /// Trains `init` (or `init_width` random subnetworks) by local descent only, at that width: no polar-driven
    /// growth. The polar still checks the result (for comparisons with [`ValidFitParams::fit_from`]).
    pub fn fit_fixed_width(&self, net: &dyn Family, obs: &Observations, init: Option<Weights>) -> Result<FitResult> {
        let p = self.problem(net, obs)?;
        let state = self.start(&p, init)?;
        Ok(fixed_width(&self.solver(p), state, degree_mismatch(net), &mut Silent))
    }
}

/// Seconds of the whole run: the earlier parts of a resumed run plus this one.
fn elapsed(state_seconds: f64, start: Instant) -> f64 {
    state_seconds + start.elapsed().as_secs_f64()
}

fn nonzero(w: &Weights) -> usize {
    zero_slices(w).iter().filter(|z| !**z).count()
}

/// What a run reports when it ends, apart from the weights and certificate.
struct Ending {
    termination: Termination,
    history: Vec<IterationRecord>,
    outer: usize,
    /// The largest proven lower bound on `F*` of the whole run.
    lower_bound: Option<f64>,
    /// Seconds of the whole run.
    seconds: f64,
}

/// The final certificate: tightened by the best proven lower bound on `F*` of the whole run (weak duality holds
/// for any weights of the problem), and checked against every objective the run evaluated.
fn settle(mut cert: Certificate, e: &Ending) -> Certificate {
    if let Some(lb) = e.lower_bound {
        cert.tighten(lb);
    }
    let least = e.history.iter().map(|r| r.objective).fold(cert.objective, f64::min);
    cert.check_lower_bound(least);
    cert
}

/// Ends a run with `w` and `cert`; `state` is the point a resumed run would continue from.
fn finish(w: Weights, cert: Certificate, ending: Ending, state: &MetaState, observer: &mut dyn Observer) -> FitResult {
    let model = FitResult {
        weights: w,
        certificate: settle(cert, &ending),
        history: ending.history,
        termination: ending.termination,
        outer_iterations: ending.outer,
        seconds: ending.seconds,
    };
    observer.finish(&model, state);
    model
}

/// The meta-loop: descend, check the polar, stop or grow, until a termination applies. `state` is always the
/// last point to continue from (the end of a completed, non-final outer iteration), so that a checkpoint written
/// at any stop resumes exactly the steps of the uninterrupted run.
fn run(s: &MetaSolver<'_>, mut state: MetaState, observer: &mut dyn Observer) -> FitResult {
    let start = Instant::now();
    let before = state.seconds;
    let mut w = state.weights.clone();
    // The last checked point and its certificate (the answer if a stop flag comes inside a descent).
    let mut best: Option<(Weights, Certificate)> = None;
    observer.init(&state);
    loop {
        let mut next = state.successor();
        let mut rng = Rng::from_state(state.rng);
        let outer = state.outer + 1;
        let info = s.descend(&mut w, &next);
        if s.budget.interrupted() {
            return interrupted(s, w, best, &state, elapsed(before, start), observer);
        }
        let checked = s.check(&w, info, &next, outer >= s.params.max_outer, &mut rng);
        next.note_lower_bound(&checked.cert);
        s.note_gap(&mut next, &checked);
        let stop = if checked.cert.status == Status::Certified {
            Some(Termination::Certified)
        } else if outer >= s.params.max_outer {
            Some(Termination::MaxOuter)
        } else if s.budget.interrupted() {
            Some(Termination::Interrupted)
        } else if s.budget.timed_out() {
            Some(Termination::MaxTime)
        } else if checked.near_optimal && !s.can_refine(&next) {
            Some(Termination::NoBetterSubnetwork)
        } else {
            None
        };
        // The time ran out after a priced (unproven) check, or inside a search that the deadline cut short: one
        // proven check of the same weights, with the grace time of a run's last proof, so that the answer carries
        // a proven bound (not the loose one of a search that never started).
        let cut_short = checked.polar.open_search && !checked.last;
        let (checked, stop) = if stop == Some(Termination::MaxTime) && (checked.cert.polar_upper.is_none() || cut_short)
        {
            let proven = s.check(&w, checked.info.clone(), &next, true, &mut rng);
            next.note_lower_bound(&proven.cert);
            let stop =
                if proven.cert.status == Status::Certified { Termination::Certified } else { Termination::MaxTime };
            (proven, Some(stop))
        } else {
            (checked, stop)
        };
        // Converged with a proof search cut short: one longer proof at the same weights (the bound is anytime).
        let (checked, stop) = if stop == Some(Termination::NoBetterSubnetwork) && checked.polar.open_search {
            let closing = s.check_closing(&w, checked.info.clone(), &next, &mut rng);
            next.note_lower_bound(&closing.cert);
            let stop = if closing.cert.status == Status::Certified {
                Some(Termination::Certified)
            } else if s.budget.timed_out() {
                Some(Termination::MaxTime)
            } else if !closing.near_optimal {
                // The longer search found a subnetwork worth growing: the run goes on.
                None
            } else {
                Some(Termination::NoBetterSubnetwork)
            };
            (closing, stop)
        } else {
            (checked, stop)
        };
        let rec = IterationRecord {
            outer,
            subnetworks: checked.certified_model.as_ref().unwrap_or(&w).width(),
            objective: checked.ev.objective,
            // The certificate's polar: the descended weights', or the certified fully corrective model's.
            polar_lower: checked.cert.polar_lower,
            polar_upper: checked.cert.polar_upper,
            gap_bound: checked.cert.gap_bound,
            descent_sweeps: checked.info.sweeps,
            seconds: elapsed(before, start),
            action: match stop {
                Some(_) => Action::Stop,
                None if !checked.near_optimal => Action::Grow,
                None => Action::Refine,
            },
        };
        next.history.push(rec.clone());
        next.outer = outer;
        next.seconds = rec.seconds;
        if let Some(termination) = stop {
            let _ = observer.iter(&rec, &state);
            let ending = Ending {
                termination,
                history: next.history,
                outer,
                lower_bound: next.lower_bound,
                seconds: elapsed(before, start),
            };
            // A certified fully corrective model of the dual refinement is the answer in place of `w`.
            return finish(checked.certified_model.unwrap_or(w), checked.cert, ending, &state, observer);
        }
        let cert = checked.cert.clone();
        let checked_weights = w.clone();
        s.advance(&mut w, &mut next, checked);
        next.weights = w.clone();
        next.rng = rng.state();
        state = next;
        if observer.iter(&rec, &state).is_break() {
            let ending = Ending {
                termination: Termination::Interrupted,
                history: state.history.clone(),
                outer,
                lower_bound: state.lower_bound,
                seconds: elapsed(before, start),
            };
            return finish(checked_weights, cert, ending, &state, observer);
        }
        best = Some((checked_weights, cert));
    }
}

/// The answer of a run stopped inside a local descent: the descended weights when they improve on the last
/// checked point (with the gap bound from the run's best proven lower bound on `F*`), else that point.
fn interrupted(
    s: &MetaSolver<'_>,
    w: Weights,
    best: Option<(Weights, Certificate)>,
    state: &MetaState,
    seconds: f64,
    observer: &mut dyn Observer,
) -> FitResult {
    let ev = s.p.evaluate(&w);
    let (w, cert) = match best {
        Some((bw, bc)) if bc.objective <= ev.objective => (bw, bc),
        _ => {
            let note = if state.lower_bound.is_some() {
                "the run was interrupted inside its local descent, so the polar was not computed at these weights; \
                 the gap bound uses the best lower bound on the optimum proven earlier in the run"
            } else if state.outer == 0 {
                "the run was interrupted before its first polar: no optimality test was run"
            } else {
                "the run was interrupted inside its local descent, and no polar of the run so far had a proven \
                 upper bound: no gap bound"
            };
            let cert = Certificate::carried(&s.p, &ev, nonzero(&w), s.params.tol, state.lower_bound, note.into());
            (w, cert)
        }
    };
    let ending = Ending {
        termination: Termination::Interrupted,
        history: state.history.clone(),
        outer: state.outer,
        lower_bound: state.lower_bound,
        seconds,
    };
    finish(w, cert, ending, state, observer)
}

/// Local descent at the width of the state's weights only (no growth). With a matched regularizer the result is
/// checked by the proven polar; with a mismatched one (`note`) no optimality test applies and the result says so.
fn fixed_width(s: &MetaSolver<'_>, state: MetaState, note: Option<String>, observer: &mut dyn Observer) -> FitResult {
    let start = Instant::now();
    let before = state.seconds;
    let p = &s.p;
    let mut w = state.weights.clone();
    observer.init(&state);
    let info = s.descend_fixed(&mut w, &state);
    let termination = if s.budget.interrupted() {
        Termination::Interrupted
    } else if info.converged {
        Termination::FixedWidthConverged
    } else {
        Termination::MaxTime
    };
    let ev = p.evaluate(&w);
    let (certificate, polar_lower, polar_upper) = match note {
        Some(note) => (Certificate::untested(p, &ev, nonzero(&w), s.params.tol, note), 0.0, None),
        None => {
            let opts = s.polar_options(true);
            let polar = p.net.polar(dual_direction(&ev.g, p.lambda).as_ref(), &opts, &mut Rng::new(s.params.seed));
            (Certificate::new(p, &ev, &polar, nonzero(&w), s.params.tol), polar.lower, polar.upper)
        }
    };
    let rec = IterationRecord {
        outer: state.outer + 1,
        subnetworks: w.width(),
        objective: ev.objective,
        polar_lower,
        polar_upper,
        gap_bound: certificate.gap_bound,
        descent_sweeps: info.sweeps,
        seconds: elapsed(before, start),
        action: Action::Stop,
    };
    let _ = observer.iter(&rec, &state);
    let seconds = rec.seconds;
    let mut history = state.history.clone();
    history.push(rec);
    let ending =
        Ending { termination, history, outer: state.outer + 1, lower_bound: certificate.optimum_lower_bound, seconds };
    finish(w, certificate, ending, &state, observer)
}
