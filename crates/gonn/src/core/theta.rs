//! The regularizer `Theta(W) = sum_i theta(w_i)` (THEORY.md section 1), its degree, and balancing (section 5).

use super::subnetwork::Subnetwork;
use super::weights::Weights;

/// How the layer norms `n_k = ||W^k_i||` of one subnetwork combine into `theta(w_i)` (THEORY.md section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regularizer {
    /// `prod_k n_k`: degree `K`, matched to a network with `K` weight layers.
    Product,
    /// `(1/K) sum_k n_k^K`: degree `K`. By AM-GM it is at least the product, with equality when the layers are
    /// balanced, so both induce the same convex problem.
    Powers,
    /// `1/2 sum_k n_k^2` (weight decay): degree 2, so it is matched only when `K = 2`.
    WeightDecay,
}

impl Regularizer {
    /// `theta` from the layer norms.
    pub fn combine(&self, norms: &[f64]) -> f64 {
        let k = norms.len() as i32;
        match self {
            Regularizer::Product => norms.iter().product(),
            Regularizer::Powers => norms.iter().map(|n| n.powi(k)).sum::<f64>() / k as f64,
            Regularizer::WeightDecay => 0.5 * norms.iter().map(|n| n * n).sum::<f64>(),
        }
    }

    /// Degree of positive homogeneity of `theta` for `layers` weight layers, computed from the formula: the
    /// exponent `p` with `theta(a w) = a^p theta(w)`, read off at `a = 2` on unit layer norms.
    pub fn degree(&self, layers: usize) -> usize {
        let ones = vec![1.0; layers];
        let twos = vec![2.0; layers];
        (self.combine(&twos) / self.combine(&ones)).log2().round() as usize
    }

    /// Name as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Regularizer::Product => "product",
            Regularizer::Powers => "powers",
            Regularizer::WeightDecay => "weight-decay",
        }
    }
}

impl std::str::FromStr for Regularizer {
    type Err = crate::error::GonnError;
    fn from_str(s: &str) -> crate::error::Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "product" => Ok(Regularizer::Product),
            "powers" => Ok(Regularizer::Powers),
            "weight-decay" | "weight_decay" | "wd" => Ok(Regularizer::WeightDecay),
            other => Err(crate::error::GonnError::param(
                "reg",
                format!("`{other}` (expected product, powers or weight-decay)"),
            )),
        }
    }
}

/// `theta(w_i)` for each subnetwork `i`, by default `prod_k ||W^k_i||` (THEORY.md section 1).
pub fn theta<S: Subnetwork + ?Sized>(net: &S, w: &Weights) -> Vec<f64> {
    let norms = net.layer_norms();
    let form = net.theta_form();
    (0..w.width())
        .map(|i| {
            let ns: Vec<f64> = w.layers.iter().zip(norms).map(|(l, n)| n.value(l.col_as_slice(i))).collect();
            form.combine(&ns)
        })
        .collect()
}

/// `Theta(W) = sum_i theta(w_i)`.
pub fn regularizer<S: Subnetwork + ?Sized>(net: &S, w: &Weights) -> f64 {
    theta(net, w).iter().sum()
}

/// Balancing (THEORY.md section 5): rescales the layers of each subnetwork so that all layer norms are equal to
/// `theta_i^(1/K)`. `Phi` and `Theta` are unchanged; returns the per-layer, per-subnetwork scale factors so that
/// callers can rescale auxiliary copies (momentum) consistently.
pub fn balance<S: Subnetwork + ?Sized>(net: &S, w: &mut Weights) -> Vec<Vec<f64>> {
    let norms = net.layer_norms();
    let kdeg = norms.len();
    let mut scales = vec![vec![1.0; w.width()]; kdeg];
    for i in 0..w.width() {
        let ns: Vec<f64> = w.layers.iter().zip(norms).map(|(l, n)| n.value(l.col_as_slice(i))).collect();
        if ns.contains(&0.0) {
            continue;
        }
        let target = ns.iter().map(|v| v.ln()).sum::<f64>() / kdeg as f64;
        for (k, (sk, nk)) in scales.iter_mut().zip(&ns).enumerate() {
            let s = (target - nk.ln()).exp();
            sk[i] = s;
            w.scale_column(k, i, s);
        }
    }
    scales
}

/// Indices of subnetworks with an exactly zero layer (so `phi(w_i) = 0` and `theta(w_i) = 0`).
pub fn zero_slices(w: &Weights) -> Vec<bool> {
    (0..w.width()).map(|i| w.layers.iter().any(|l| l.col_as_slice(i).iter().all(|v| *v == 0.0))).collect()
}

/// Removes subnetworks that are exactly zero; returns how many were removed.
pub fn prune_zero(w: &mut Weights) -> usize {
    let zero = zero_slices(w);
    let removed = zero.iter().filter(|z| **z).count();
    if removed > 0 {
        let keep: Vec<bool> = zero.iter().map(|z| !z).collect();
        w.retain(&keep);
    }
    removed
}
