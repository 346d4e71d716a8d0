//! The state of the meta-algorithm between outer iterations: everything the rest of a run depends on, so that a
//! run saved after iteration `k` and resumed continues exactly as the uninterrupted run would (same seed, same
//! thread count). The weights travel beside the JSON part (in the checkpoint's tensors).

use serde::{Deserialize, Serialize};

use crate::core::problem::Problem;
use crate::core::Weights;
use crate::numerics::rng::Rng;

/// What an outer iteration did next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Add the polar's subnetwork (THEORY.md section 4, step 3).
    Grow,
    /// No subnetwork improves `f` by a margin: polish the local descent before asking the polar again.
    Refine,
    /// The run ends (see [`Termination`]).
    Stop,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Grow => "grow",
            Action::Refine => "refine",
            Action::Stop => "stop",
        }
    }
}

/// Why a run ended. The certificate's `Status` says what is proven; this says only why the loop stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    /// The proven gap bound reached the tolerance.
    Certified,
    /// The polar found no better subnetwork and the local descent cannot be refined further.
    NoBetterSubnetwork,
    /// A fixed-width run (no growth) whose local descent converged.
    FixedWidthConverged,
    /// The outer-iteration limit.
    MaxOuter,
    /// The wall-clock limit.
    MaxTime,
    /// A stop flag (Ctrl-C, SIGTERM, an observer) ended the run; the model is the best point reached.
    Interrupted,
}

impl Termination {
    /// One phrase on what the termination means (it says why the loop stopped, not what is proven).
    pub fn explain(&self) -> &'static str {
        match self {
            Termination::Certified => "the proven gap reached the tolerance",
            Termination::NoBetterSubnetwork => {
                "descent and growth stopped making progress at this precision; the status says what is proven"
            }
            Termination::FixedWidthConverged => "the descent at a fixed width converged",
            Termination::MaxOuter => "the --max-outer limit",
            Termination::MaxTime => "the --max-seconds limit",
            Termination::Interrupted => "stopped by a signal; the model is the best point reached",
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Termination::Certified => "certified",
            Termination::NoBetterSubnetwork => "no_better_subnetwork",
            Termination::FixedWidthConverged => "fixed_width_converged",
            Termination::MaxOuter => "max_outer",
            Termination::MaxTime => "max_time",
            Termination::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One outer iteration, as seen by observers and stored in the history.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IterationRecord {
    pub outer: usize,
    pub subnetworks: usize,
    pub objective: f64,
    pub polar_lower: f64,
    pub polar_upper: Option<f64>,
    pub gap_bound: Option<f64>,
    pub descent_sweeps: usize,
    /// Seconds since the run started (resumed runs count the earlier part too).
    pub seconds: f64,
    pub action: Action,
}

impl IterationRecord {
    /// The header of the progress table whose rows are [`IterationRecord::table_row`].
    pub fn table_header() -> String {
        format!(
            "{:>5} {:>5} {:>15} {:>11} {:>11} {:>11} {:>9}  {}",
            "outer", "r", "objective", "polar lo", "polar up", "gap bound", "seconds", "next"
        )
    }

    /// This iteration as one row of the progress table (the CLI's and Python's `verbose` output).
    pub fn table_row(&self) -> String {
        format!(
            "{:>5} {:>5} {:>15.8e} {:>11.6} {:>11} {:>11} {:>9.2}  {}",
            self.outer,
            self.subnetworks,
            self.objective,
            self.polar_lower,
            self.polar_upper.map_or("-".into(), |u| format!("{u:.6}")),
            self.gap_bound.map_or("-".into(), |g| format!("{g:.3e}")),
            self.seconds,
            self.action.name()
        )
    }
}

/// The meta-loop's state after an outer iteration (THEORY.md section 4): the weights to continue from and the
/// schedule of the growth threshold and descent tolerance.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MetaState {
    /// Fingerprint of the problem (family, shapes, data, loss, lambda): a checkpoint resumes only the same problem.
    pub fingerprint: String,
    /// Completed outer iterations.
    pub outer: usize,
    /// A polar above `1 + grow_threshold` triggers growth; below it the descent is refined first.
    pub grow_threshold: f64,
    /// The local descent's relative-decrease tolerance.
    pub descent_tol: f64,
    /// The smallest gap bound seen near the optimum (`None`: none yet).
    pub best_gap: Option<f64>,
    /// Near-optimal iterations in a row whose gap did not shrink by 1 %.
    pub stalls: usize,
    /// Multiplies the proof search's time (`--polar-seconds`): doubled after each near-optimal iteration whose
    /// proof search stopped with its bound open, up to [`MAX_PROOF_SCALE`].
    #[serde(default = "unit_scale")]
    pub proof_scale: f64,
    /// The largest proven lower bound on the global optimum `F*` found so far (weak duality).
    pub lower_bound: Option<f64>,
    /// State of the seeded generator.
    pub rng: [u64; 4],
    /// Seconds spent so far (over all resumed parts).
    pub seconds: f64,
    pub history: Vec<IterationRecord>,
    /// The weights to continue from (stored as the checkpoint's tensors, not in its JSON).
    #[serde(skip, default = "no_weights")]
    pub weights: Weights,
}

/// The largest [`MetaState::proof_scale`].
pub const MAX_PROOF_SCALE: f64 = 16.0;

fn unit_scale() -> f64 {
    1.0
}

fn no_weights() -> Weights {
    Weights { layers: Vec::new() }
}

impl MetaState {
    /// Keeps the larger of the run's best lower bound on `F*` and a certificate's.
    pub(super) fn note_lower_bound(&mut self, cert: &crate::meta::certificate::Certificate) {
        if let Some(lb) = cert.optimum_lower_bound {
            self.lower_bound = Some(self.lower_bound.map_or(lb, |b| b.max(lb)));
        }
    }

    /// The state before the first outer iteration.
    pub(super) fn start(p: &Problem<'_>, tol: f64, weights: Weights, rng: &Rng) -> Self {
        Self {
            fingerprint: fingerprint(p),
            outer: 0,
            grow_threshold: 1e-2_f64.max(tol),
            descent_tol: 1e-6_f64.min(tol * 1e-1),
            best_gap: None,
            stalls: 0,
            proof_scale: 1.0,
            lower_bound: None,
            rng: rng.state(),
            seconds: 0.0,
            history: Vec::new(),
            weights,
        }
    }

    /// A copy to build the next outer iteration's state in: everything but the weights, which the iteration
    /// sets when it ends.
    pub(super) fn successor(&self) -> Self {
        Self { weights: no_weights(), history: self.history.clone(), fingerprint: self.fingerprint.clone(), ..*self }
    }

    /// The state as JSON (without the weights).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("the state serializes")
    }

    /// The state from JSON, with the weights that were stored beside it.
    pub fn from_json(text: &str, weights: Weights) -> crate::error::Result<Self> {
        let mut s: Self = serde_json::from_str(text)
            .map_err(|e| crate::error::GonnError::Data(format!("the checkpoint's state is not readable: {e}")))?;
        s.weights = weights;
        Ok(s)
    }
}

/// FNV-1a, 64 bits: a stable hash (the standard library's may change between releases).
struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= x as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    /// One 64-bit word per step (the targets can be millions of entries).
    fn f64(&mut self, v: f64) {
        self.0 ^= v.to_bits();
        self.0 = self.0.wrapping_mul(0x0000_0100_0000_01B3).rotate_left(29);
    }
    fn usize(&mut self, v: usize) {
        self.bytes(&(v as u64).to_le_bytes());
    }
}

/// A fingerprint of the problem `p` as posed: the family's name, layer and output shapes, the loss, `lambda`, the
/// observed targets and mask, and weighted sums of the family's output at two fixed pseudo-random subnetworks
/// (which depend on the inputs of supervised families).
pub fn fingerprint(p: &Problem<'_>) -> String {
    let mut h = Fnv(0xCBF2_9CE4_8422_2325);
    h.bytes(p.net.name().as_bytes());
    let dims = p.net.layer_dims();
    dims.iter().for_each(|d| h.usize(*d));
    let (m, n) = p.net.output_shape();
    h.usize(m);
    h.usize(n);
    h.bytes(p.loss.to_string().as_bytes());
    h.f64(p.lambda);
    for j in 0..n {
        for i in 0..m {
            let observed = p.obs.is_observed(i, j);
            h.bytes(&[observed as u8]);
            if observed {
                h.f64(p.obs.y()[(i, j)]);
            }
        }
    }
    let mut rng = Rng::new(0x5EED);
    let probe = Weights { layers: dims.iter().map(|&d| rng.normal_mat(d, 2)).collect() };
    let z = p.net.forward(&probe, faer::Par::Seq);
    // Four weighted sums of the probe's output, rounded to 9 significant digits: the same data gives the same
    // digits whatever the kernels' rounding, other inputs change them.
    let mut sums = [0.0f64; 4];
    for j in 0..z.ncols() {
        for i in 0..z.nrows() {
            let v = z[(i, j)];
            sums[0] += v;
            sums[1] += v * ((i % 7) as f64 + 1.0);
            sums[2] += v * ((j % 11) as f64 + 1.0);
            sums[3] += v * v;
        }
    }
    for v in sums {
        h.bytes(format!("{v:.9e}").as_bytes());
    }
    format!("{:016x}", h.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint written before the proof schedule existed resumes with the polar's own time.
    #[test]
    fn checkpoints_without_a_proof_scale_resume_at_scale_one() {
        let old = r#"{"fingerprint":"f","outer":3,"grow_threshold":0.01,"descent_tol":1e-7,"best_gap":null,
            "stalls":0,"lower_bound":null,"rng":[1,2,3,4],"seconds":1.5,"history":[]}"#;
        let s = MetaState::from_json(old, no_weights()).unwrap();
        assert_eq!((s.outer, s.proof_scale), (3, 1.0));
        let again = MetaState::from_json(&MetaState { proof_scale: 4.0, ..s }.to_json(), no_weights()).unwrap();
        assert_eq!(again.proof_scale, 4.0);
    }
}
