//! Subnetwork families: the plug-in of the meta-algorithm (THEORY.md section 1).
//!
//! A family describes one positively homogeneous subnetwork `phi(W^1, ..., W^K)` of degree `K` (one per weight
//! layer), its regularizer `theta(w) = prod_k ||W^k||_(k)` and its polar solver. The `r` parallel copies are
//! stored layer by layer: layer `k` of all subnetworks is one matrix whose column `i` holds subnetwork `i`'s
//! (vectorized) weights, so that every forward and backward pass works on whole blocks.

pub mod cp;
pub mod deep;
pub mod factor;
pub mod relu;

use faer::{Mat, MatRef, Par};

use crate::norms::LayerNorm;
use crate::polar::{Polar, PolarOptions};
use crate::rng::Rng;

pub use cp::CpTensor;
pub use deep::{Architecture, DeepNetwork};
pub use factor::MatrixFactorization;
pub use relu::{PolarMode, ReluNetwork};

/// The weights of `r` parallel subnetworks: `layers[k]` is `dim_k x r`, column `i` is subnetwork `i`'s layer `k`.
#[derive(Clone, Debug)]
pub struct Weights {
    pub layers: Vec<Mat<f64>>,
}

impl Weights {
    /// `r = 0` subnetworks with the given layer dimensions.
    pub fn empty(dims: &[usize]) -> Self {
        Self { layers: dims.iter().map(|&d| Mat::zeros(d, 0)).collect() }
    }

    /// Number of parallel subnetworks `r`.
    pub fn width(&self) -> usize {
        self.layers.first().map_or(0, |l| l.ncols())
    }

    /// Layer dimensions `dim_k`.
    pub fn dims(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.nrows()).collect()
    }

    /// Keeps the subnetworks `i` with `keep[i]`.
    pub fn retain(&mut self, keep: &[bool]) {
        for l in self.layers.iter_mut() {
            let cols: Vec<usize> = (0..l.ncols()).filter(|&i| keep[i]).collect();
            *l = Mat::from_fn(l.nrows(), cols.len(), |a, b| l[(a, cols[b])]);
        }
    }

    /// Appends the single subnetwork of `atom` (width 1), layer `k` scaled by `scales[k]`.
    pub fn push(&mut self, atom: &Weights, scales: &[f64]) {
        for (k, l) in self.layers.iter_mut().enumerate() {
            let r = l.ncols();
            let a = &atom.layers[k];
            let mut new = Mat::zeros(l.nrows(), r + 1);
            new.as_mut().subcols_mut(0, r).copy_from(l.as_ref());
            for i in 0..l.nrows() {
                new[(i, r)] = scales[k] * a[(i, 0)];
            }
            *l = new;
        }
    }

    /// Scales layer `k` of subnetwork `i` by `s`.
    pub fn scale_column(&mut self, k: usize, i: usize, s: f64) {
        self.layers[k].col_as_slice_mut(i).iter_mut().for_each(|v| *v *= s);
    }

    /// Scales every layer of every subnetwork by `s` (the whole network output by `s^K`).
    pub fn scale_all(&mut self, s: f64) {
        for l in self.layers.iter_mut() {
            for j in 0..l.ncols() {
                l.col_as_slice_mut(j).iter_mut().for_each(|v| *v *= s);
            }
        }
    }

    /// Whether every entry is finite.
    pub fn all_finite(&self) -> bool {
        self.layers.iter().all(|l| crate::linalg::all_finite(l.as_ref()))
    }
}

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

/// A family of positively homogeneous subnetworks with its regularizer and polar solver.
pub trait Subnetwork: Send + Sync {
    /// Short name (`factor`, `cp`, ...), stored in model files.
    fn name(&self) -> &'static str;

    /// The norm of each weight layer; `theta(w) = prod_k ||W^k||_(k)`. Its length is the degree `K`.
    fn layer_norms(&self) -> &[LayerNorm];

    /// Degree of positive homogeneity `p` of `phi` (and of `theta`): one per weight layer.
    fn degree(&self) -> usize {
        self.layer_norms().len()
    }

    /// How the layer norms combine into `theta` (the product unless the family offers a choice).
    fn theta_form(&self) -> Regularizer {
        Regularizer::Product
    }

    /// Row count of each layer block.
    fn layer_dims(&self) -> Vec<usize>;

    /// Shape of the network output `Phi(W)` (a tensor is stored as its mode-1 unfolding).
    fn output_shape(&self) -> (usize, usize);

    /// `Phi(W) = sum_i phi(w_i)`.
    fn forward(&self, w: &Weights, par: Par) -> Mat<f64>;

    /// `d <G, Phi(W)> / d W^k` for the whole layer block `k` (same shape as `W^k`).
    fn layer_gradient(&self, w: &Weights, k: usize, g: MatRef<'_, f64>, par: Par) -> Mat<f64>;

    /// An `r x r` positive semidefinite curvature matrix `M_k` of layer `k`: with the other layers fixed, the
    /// Hessian of `W^k -> 1/2 ||Phi(W)||^2` is at most `M_k ⊗ I` (for multilinear families it is exactly the Gram
    /// matrix of the other layers' combined features, e.g. `V^T V` for `U`). Masking only lowers the Hessian.
    fn layer_curvature(&self, w: &Weights, k: usize, par: Par) -> Mat<f64>;

    /// `Phi(W)` at the listed `(row, column)` entries only, for sparse descent on masked data (`None`: the family
    /// has no such path and the dense one is used).
    fn forward_observed(&self, _w: &Weights, _idx: &[(usize, usize)]) -> Option<Vec<f64>> {
        None
    }

    /// `d <G, Phi(W)> / d W^k` for a `G` that is zero outside the listed entries, whose values are `g`.
    fn layer_gradient_observed(
        &self,
        _w: &Weights,
        _k: usize,
        _idx: &[(usize, usize)],
        _g: &[f64],
    ) -> Option<Mat<f64>> {
        None
    }

    /// Whether `Phi` is linear in each layer with `layer_curvature` its exact Gram matrix, so that
    /// `||Phi(W)||^2 = <W^k M_k, W^k>` and, for the fully observed squared loss, each layer's subproblem is an exact
    /// quadratic plus the group penalty (solved by [`crate::descent`] without forming `Phi`).
    fn multilinear(&self) -> bool {
        false
    }

    /// A local descent of the family's own (e.g. the pattern-restricted convex program of ReLU units); `None`
    /// uses the generic block proximal gradient of [`crate::descent`].
    fn local_descent(
        &self,
        _p: &crate::objective::Problem<'_>,
        _w: &mut Weights,
        _opts: &crate::descent::DescentOptions,
    ) -> Option<crate::descent::DescentInfo> {
        None
    }

    /// Whether an uncertified fit should try the cutting-plane dual point and fully corrective step of
    /// [`crate::certificate::refined_dual_bound`]. Worth it where the polar reacts strongly to small residual errors
    /// (ReLU units, whose kinks sit on data points); the factorizations certify without it and keep their
    /// smallest representation.
    fn refine_dual(&self) -> bool {
        false
    }

    /// Gram matrix `<phi(w_i), phi(w_j)>` of the subnetwork outputs (used by the pruning move).
    fn output_gram(&self, w: &Weights, par: Par) -> Mat<f64>;

    /// The polar `Omega°(Q) = sup { <Q, phi(w)> : theta(w) <= 1 }` (THEORY.md section 6), with a maximizing
    /// subnetwork whose layers each have unit norm. `opts.prove` asks for the tightest proven upper bound.
    fn polar(&self, q: MatRef<'_, f64>, opts: &PolarOptions, rng: &mut Rng) -> Polar;
}

/// `theta(w_i)` for each subnetwork `i`, by default `prod_k ||W^k_i||` (THEORY.md section 1).
pub fn theta(net: &dyn Subnetwork, w: &Weights) -> Vec<f64> {
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
pub fn regularizer(net: &dyn Subnetwork, w: &Weights) -> f64 {
    theta(net, w).iter().sum()
}

/// Balancing (THEORY.md section 5): rescales the layers of each subnetwork so that all layer norms are equal to
/// `theta_i^(1/K)`. `Phi` and `Theta` are unchanged; returns the per-layer, per-subnetwork scale factors so that
/// callers can rescale auxiliary copies (momentum) consistently.
pub fn balance(net: &dyn Subnetwork, w: &mut Weights) -> Vec<Vec<f64>> {
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
