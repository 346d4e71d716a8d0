//! Family-free numerical kernels: dense products (the one place that clears the upper vector state), spectral
//! norms (Lanczos below, Cholesky-proven above), Lawson-Hanson cone projections, the one accelerated proximal gradient, the seeded generator, and the run's budget (deadline and stop flag).

pub mod budget;
pub mod cone;
pub mod fista;
pub mod linalg;
pub mod nnls;
pub mod rng;
pub mod sparse;
pub mod spectral;

/// The most values one array may hold (2^30, 8 GiB as `f64`): a file header that claims more, or a start that
/// would need more, is refused before anything is allocated.
pub const MAX_ELEMENTS: usize = 1 << 30;
