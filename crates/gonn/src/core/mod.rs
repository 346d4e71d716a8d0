//! The vocabulary every family and the meta-algorithm share (THEORY.md sections 1-3): weights, the regularizer
//! and its degree, layer norms, losses and observations, the problem `f`, the polar bracket, the descent options,
//! and the [`Subnetwork`] trait. It imports only [`crate::numerics`] and [`crate::error`].

pub mod descent;
pub mod loss;
pub mod norms;
pub mod polar;
pub mod problem;
pub mod subnetwork;
pub mod theta;
pub mod weights;

pub use subnetwork::{Family, FamilyHints, Subnetwork};
pub use theta::{balance, prune_zero, regularizer, theta, zero_slices, Regularizer};
pub use weights::Weights;
