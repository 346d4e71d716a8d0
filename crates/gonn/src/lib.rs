//! # gonn: certified global optimality for positively homogeneous networks and factorizations
//!
//! gonn trains a model that is a sum of `r` parallel positively homogeneous subnetworks,
//! `Phi(W) = sum_i phi(w_i)`, with a regularizer of the same degree, `Theta(W) = sum_i theta(w_i)`, by minimizing
//! `f(W) = loss(Y, Phi(W)) + lambda * Theta(W)`. Following Haeffele and Vidal, the polar
//! `rho = Omega°(-G / lambda)` of the loss gradient `G` decides global optimality (`rho <= 1`), supplies the
//! subnetwork to add when it fails, and bounds the distance to the global optimum at any weights. The
//! meta-algorithm (local descent, polar, growth, pruning) therefore picks the number of subnetworks itself and
//! ends with a certificate — or says honestly that it has none.
//!
//! ```
//! use gonn::prelude::*;
//! use faer::Mat;
//!
//! // A 30 x 20 matrix of rank 3 plus a little noise.
//! let mut rng = Rng::new(1);
//! let (a, b) = (rng.normal_mat(30, 3), rng.normal_mat(20, 3));
//! let y = Mat::from_fn(30, 20, |i, j| (0..3).map(|k| a[(i, k)] * b[(j, k)]).sum::<f64>() + 0.01 * rng.normal());
//!
//! // theta(u, v) = ||u||_2 ||v||_2: the nuclear-norm regularized problem.
//! let net = MatrixFactorization::new(30, 20, [LayerNorm::new(Norm::L2, false); 2]);
//! let obs = Observations::new(y, None)?;
//! let model = FitParams::new(1.0).tol(1e-8).validate()?.fit(&net, &obs)?;
//!
//! assert_eq!(model.certificate.status, Status::Certified);
//! assert_eq!(model.weights.width(), 3);
//! println!("{}", model.certificate.summary());
//! # Ok::<(), gonn::GonnError>(())
//! ```
//!
//! The modules follow `THEORY.md`: [`core`] (the vocabulary: weights, `theta`, norms, losses, the problem, the
//! polar bracket, and the traits [`core::Subnetwork`] and [`core::Family`]), [`numerics`] (family-free kernels),
//! [`families`] (one folder per family: its map, polar and local descent), [`meta`] (the loop, its state,
//! observers, the certificate, growth and pruning), [`spec`] and [`model`] (a data-free model description and
//! a fitted model that predicts, saves and loads), [`io`] (files) and [`plot`] (run plots and experiment charts).

pub mod core;
pub mod datasets;
pub mod error;
pub mod families;
pub mod io;
pub mod meta;
pub mod model;
pub mod numerics;
pub mod plot;
pub mod preprocessing;
pub mod spec;

pub use error::{GonnError, Result};
/// The linear-algebra crate whose `Mat` the API uses.
pub use faer;

/// The names most programs need.
pub mod prelude {
    pub use crate::core::loss::{Loss, Observations};
    pub use crate::core::norms::{LayerNorm, Norm};
    pub use crate::core::{Family, Subnetwork, Weights};
    pub use crate::families::{CpTensor, MatrixFactorization, PolarMode, ReluNetwork};
    pub use crate::meta::certificate::{Certificate, Status};
    pub use crate::meta::{certify, FitParams, FitResult, IterationRecord, MetaState, Observer, Termination};
    pub use crate::model::FittedModel;
    pub use crate::numerics::rng::Rng;
    pub use crate::spec::ModelSpec;
}
