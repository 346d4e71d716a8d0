//! The two traits of a family (THEORY.md section 1): [`Subnetwork`], the map `phi` with its regularizer
//! `theta`, which any algorithm may ask about; and [`Family`], what the meta-algorithm needs on top (the polar,
//! the local descent and a hint).
//!
//! A family describes one positively homogeneous subnetwork `phi(W^1, ..., W^K)` of degree `K` (one per weight
//! layer), its regularizer `theta(w) = prod_k ||W^k||_(k)` and its polar solver. The `r` parallel copies are
//! stored layer by layer: layer `k` of all subnetworks is one matrix whose column `i` holds subnetwork `i`'s
//! (vectorized) weights, so that every forward and backward pass works on whole blocks.

use faer::{Mat, MatRef, Par};

use crate::core::descent::{DescentInfo, DescentOptions};
use crate::core::norms::LayerNorm;
use crate::core::polar::{Polar, PolarOptions};
use crate::core::problem::Problem;
use crate::numerics::rng::Rng;

use super::theta::Regularizer;
use super::weights::Weights;

/// A positively homogeneous subnetwork `phi` of degree `K` with its regularizer `theta`, in `r` parallel copies.
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

    /// Gram matrix `<phi(w_i), phi(w_j)>` of the subnetwork outputs (used by the pruning move).
    fn output_gram(&self, w: &Weights, par: Par) -> Mat<f64>;
}

/// What a family tells the meta-algorithm about how to run it.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct FamilyHints {
    /// Whether an uncertified fit should try the cutting-plane dual point and fully corrective step of
    /// `meta::certificate::refined_dual_bound`. Worth it where the polar reacts strongly to small residual
    /// errors (ReLU units, whose kinks sit on data points); the factorizations certify without it and keep their
    /// smallest representation.
    pub refine_dual: bool,
}

/// A subnetwork family as the meta-algorithm (THEORY.md section 4) runs it: its polar and its local descent.
pub trait Family: Subnetwork {
    /// The polar `Omega°(Q) = sup { <Q, phi(w)> : theta(w) <= 1 }` (THEORY.md section 6), with a maximizing
    /// subnetwork whose layers each have unit norm. `opts.prove` asks for the tightest proven upper bound.
    fn polar(&self, q: MatRef<'_, f64>, opts: &PolarOptions, rng: &mut Rng) -> Polar;

    /// The family's local descent from `w` (THEORY.md section 5): the shared block proximal gradient
    /// (`families::bcd`) for multilinear families, the pattern-restricted convex program for ReLU units, the
    /// proximal descent of deep stacks. It never increases `f` and polls `opts.budget`.
    fn descend(&self, p: &Problem<'_>, w: &mut Weights, opts: &DescentOptions) -> DescentInfo;

    /// How to run the family (defaults: no dual refinement).
    fn hints(&self) -> FamilyHints {
        FamilyHints::default()
    }
}
