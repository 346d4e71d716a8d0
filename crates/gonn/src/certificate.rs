//! The certificate (THEORY.md section 3): the polar bracket, the weak-duality bound on the distance to the
//! global optimum `f(W) - F*`, valid at any weights, and the resulting status.

use std::fmt;

use serde::Serialize;

use crate::objective::{Evaluation, Problem};
use crate::polar::Polar;

/// The outcome of a fit or a check, in the spirit of a conic solver's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A proven gap bound at most `tol` (relative): globally optimal to that accuracy.
    Certified,
    /// A proven gap bound exists but is above `tol` (e.g. the polar's proven upper bound does not close).
    Bounded,
    /// No proven upper bound on the polar: no better subnetwork was found, but there is no proof.
    Heuristic,
    /// A limit (outer iterations, time) ended the run before the gap closed.
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Certified => "certified",
            Status::Bounded => "bounded",
            Status::Heuristic => "heuristic",
            Status::Stopped => "stopped",
        })
    }
}

/// What is known about the optimality of some weights.
#[derive(Clone, Debug, Serialize)]
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
}

/// The gap bound `f(W) + loss*(t G)` with `t` optimal in `[0, 1 / rho_up]` (THEORY.md section 3). `None` without
/// a proven `rho_up`.
pub fn gap_bound(p: &Problem<'_>, ev: &Evaluation, polar_upper: Option<f64>) -> Option<(f64, f64)> {
    let rho_up = polar_upper?;
    let t_max = if rho_up > 0.0 { 1.0 / rho_up } else { f64::INFINITY };
    let dual = p.loss.dual_lower_bound(p.obs, ev.z.as_ref(), ev.g.as_ref(), t_max);
    Some(((ev.objective - dual).max(0.0), dual))
}

impl Certificate {
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
        Self {
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
        }
    }

    /// A one-paragraph human reading of the certificate.
    pub fn summary(&self) -> String {
        let upper = self.polar_upper.map_or("none proven".to_string(), |u| format!("{u:.6}"));
        let head = format!(
            "objective {:.8e} with {} subnetworks; polar in [{:.6}, {}] (1 is the optimality threshold)",
            self.objective, self.subnetworks, self.polar_lower, upper
        );
        let tail = match (self.status, self.gap_bound) {
            (Status::Certified, Some(g)) => {
                format!("CERTIFIED: within {g:.3e} (relative {:.1e}) of the global optimum", self.relative_gap.unwrap_or(0.0))
            }
            (_, Some(g)) if self.polar_lower > 1.0 => format!(
                "not certified: the polar exceeds 1 (lower bound {:.8}), so adding a subnetwork still decreases f; proven gap bound {g:.3e} (relative {:.1e})",
                self.polar_lower,
                self.relative_gap.unwrap_or(0.0)
            ),
            (_, Some(g)) => format!(
                "no better subnetwork found, but the proven gap bound {g:.3e} (relative {:.1e}) does not certify optimality",
                self.relative_gap.unwrap_or(0.0)
            ),
            (_, None) => "no better subnetwork found; no upper bound on the polar is proven, so no certificate is possible".to_string(),
        };
        format!("{head}\n{tail}")
    }
}
