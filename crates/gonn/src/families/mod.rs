//! Subnetwork families, one folder each: the map `phi` with `theta` (`mod.rs`), the polar solver (`polar.rs`),
//! the local descent (`descent.rs`, or the shared [`bcd`]). No family imports another family or the meta-loop.
//!
//! | THEORY.md section 6 row | `phi(w)` | `theta(w)` | polar | descent |
//! |---|---|---|---|---|
//! | matrix factorization | `u v^T` | `||u||_a ||v||_b` | [`factor::polar`] (SVD for l2/l2, closed forms, bounded heuristics) | [`bcd`] |
//! | CP tensor | `a ∘ b ∘ c` | `||a|| ||b|| ||c||` | [`cp::polar`] (alternating, Cholesky-proven unfolding bound) | [`bcd`] |
//! | ReLU unit | `(X u)_+ v^T` | `||u||_2 ||v||` | [`relu::polar`] (arrangement enumeration for rank <= 4, heuristic above) | [`relu::descent`] |
//! | deep / convolutional stack | `W^K s(... s(X W^1))` | product, powers or weight decay of `||W^k||_F` | [`deep::polar`] (heuristic, proven norm bound) | [`deep::descent`] |

pub mod bcd;
pub mod cp;
pub mod deep;
pub mod factor;
pub mod relu;

pub use cp::CpTensor;
pub use deep::{Architecture, DeepNetwork};
pub use factor::MatrixFactorization;
pub use relu::{PolarMode, ReluNetwork};
