//! The options and the result of a family's local descent (THEORY.md section 5).

/// Options for a family's local descent.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DescentOptions {
    /// Maximum number of sweeps over all layers.
    pub max_sweeps: usize,
    /// Stop when a sweep decreases `f` by less than `tol * f` (relative).
    pub tol: f64,
    /// Stop when the deadline passes or the stop flag is raised.
    pub budget: crate::numerics::budget::Budget,
    /// Minibatch size for families with a stochastic descent (a sweep is then one epoch); `None`: full batch.
    pub batch_size: Option<usize>,
    /// Seed of the minibatch order.
    pub seed: u64,
}

impl Default for DescentOptions {
    fn default() -> Self {
        Self {
            max_sweeps: 5000,
            tol: 1e-7,
            budget: crate::numerics::budget::Budget::default(),
            batch_size: None,
            seed: 0,
        }
    }
}

/// What a call of a local descent did.
#[derive(Clone, Debug, Default)]
pub struct DescentInfo {
    pub sweeps: usize,
    pub objective: f64,
    pub converged: bool,
    pub restarts: usize,
}
