//! Polar solvers (THEORY.md section 6): `Omega°(Q) = sup { <Q, phi(w)> : theta(w) <= 1 }` with `Q = -G / lambda`.
//!
//! Every solver returns a bracket: `lower` is always attained by the returned subnetwork (so it is a valid lower
//! bound), `upper` is present only when it is proven. `exact` says that the solver is exact for this case (the
//! bracket is closed up to rounding).

use faer::Par;

use crate::core::Weights;

/// The result of a polar computation.
#[derive(Clone, Debug)]
pub struct Polar {
    /// `<Q, phi(w*)>` for the returned subnetwork `w*`: a lower bound on the polar.
    pub lower: f64,
    /// A proven upper bound on the polar, when one is known.
    pub upper: Option<f64>,
    /// Whether the polar is computed exactly (bracket closed up to rounding).
    pub exact: bool,
    /// The maximizing subnetwork `w*` (width 1), each layer of unit norm, so `theta(w*) = 1`.
    pub atom: Weights,
    /// How the value was obtained, for reports.
    pub method: std::borrow::Cow<'static, str>,
    /// Further unit-`theta` subnetworks with their values `<Q, phi(w)>`, found at no extra cost (e.g. further
    /// Ritz pairs), in decreasing order: candidates for growing several subnetworks in one outer iteration.
    pub extra: Vec<(f64, Weights)>,
    /// The lower bound comes from a heuristic search and the proven upper bound is a loose norm bound: unless
    /// that bound certifies, the status is `heuristic` (no better subnetwork found), not `bounded`.
    pub heuristic: bool,
    /// An anytime proof search (the ReLU branch and bound) stopped before its bound closed: more time can tighten
    /// `upper`.
    pub open_search: bool,
}

/// Options for polar solvers.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PolarOptions {
    /// Compute a proven upper bound (a Gram matrix plus Cholesky factorizations for the spectral cases). Without
    /// it, solvers that need that work return `upper: None`; exact closed forms always return their value.
    pub prove: bool,
    /// Random restarts of the alternating (power-method) heuristics for the NP-hard polars.
    pub restarts: usize,
    /// Maximum Lanczos steps for largest singular values.
    pub lanczos_steps: usize,
    /// Lanczos stops when its residual is below this fraction of the singular value (tight when proving: the
    /// Cholesky test starts just above the Lanczos value; looser while growing, where only a good direction is
    /// needed).
    pub lanczos_tol: f64,
    /// How many further candidate subnetworks to return in [`Polar::extra`] (0: none).
    pub extra_atoms: usize,
    /// Start vector for Lanczos (the right singular vector of a previous call on the same `Q`), if any.
    pub warm_start: Option<Vec<f64>>,
    /// Parallelism of the dense kernels.
    pub par: Par,
    /// Only a good subnetwork is needed (the pricing step of column generation), no bound: families whose exact
    /// solver is costly may answer with their heuristic search (then `exact` is false).
    pub pricing: bool,
    /// Time for one polar's costly proof search (the ReLU branch and bound), within `budget`; `None`: the
    /// family's default.
    pub time_limit: Option<std::time::Duration>,
    /// Multiplies that time (the fit's schedule: longer proofs once shorter ones stopped open).
    pub time_scale: f64,
    /// Searches with an anytime proven bound may stop once it is below this value (1: the optimality test of
    /// `Q = -G / lambda`; 0: bracket the polar as tightly as the time allows).
    pub target: f64,
    /// Searches may also stop once they found a subnetwork whose value exceeds this (the run will grow it; no
    /// certificate is possible at these weights).
    pub enough: f64,
    /// Heuristic searches stop their restarts when it expires (the bracket stays valid: the lower bound is
    /// attained, the upper bound does not depend on the search).
    pub budget: crate::numerics::budget::Budget,
}

impl Default for PolarOptions {
    fn default() -> Self {
        Self {
            prove: true,
            restarts: 8,
            lanczos_steps: 80,
            lanczos_tol: 1e-10,
            extra_atoms: 0,
            warm_start: None,
            par: Par::Seq,
            pricing: false,
            time_limit: None,
            time_scale: 1.0,
            target: 1.0,
            enough: f64::INFINITY,
            budget: crate::numerics::budget::Budget::default(),
        }
    }
}

impl PolarOptions {
    /// Default options with the given parallelism and proof requirement.
    pub fn new(prove: bool, par: Par) -> Self {
        Self { prove, par, lanczos_tol: if prove { 1e-10 } else { 1e-4 }, ..Self::default() }
    }
}
