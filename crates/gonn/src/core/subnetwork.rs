//! Subnetwork families: the plug-in of the meta-algorithm (THEORY.md section 1).
//!
//! A family describes one positively homogeneous subnetwork `phi(W^1, ..., W^K)` of degree `K` (one per weight
//! layer), its regularizer `theta(w) = prod_k ||W^k||_(k)` and its polar solver. The `r` parallel copies are
//! stored layer by layer: layer `k` of all subnetworks is one matrix whose column `i` holds subnetwork `i`'s
//! (vectorized) weights, so that every forward and backward pass works on whole blocks.

use faer::{Mat, MatRef, Par};

use crate::core::norms::LayerNorm;
use crate::core::polar::{Polar, PolarOptions};
use crate::numerics::rng::Rng;

use super::theta::Regularizer;
use super::weights::Weights;

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
    /// quadratic plus the group penalty (solved by [`crate::core::descent`] without forming `Phi`).
    fn multilinear(&self) -> bool {
        false
    }

    /// The family's local descent from `w` (THEORY.md section 5): the shared block proximal gradient
    /// ([`crate::families::bcd`]) for multilinear families, the pattern-restricted convex program for ReLU units,
    /// the proximal descent of deep stacks. It never increases `f` and polls `opts.budget`.
    fn descend(
        &self,
        p: &crate::core::problem::Problem<'_>,
        w: &mut Weights,
        opts: &crate::core::descent::DescentOptions,
    ) -> crate::core::descent::DescentInfo;

    /// Whether an uncertified fit should try the cutting-plane dual point and fully corrective step of
    /// [`crate::meta::certificate::refined_dual_bound`]. Worth it where the polar reacts strongly to small residual errors
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
