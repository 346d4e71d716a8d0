//! Family-free numerical kernels: dense products (the one place that clears the upper vector state), spectral
//! norms (Lanczos below, Cholesky-proven above), Lawson-Hanson cone projections, the one accelerated proximal gradient, the seeded generator, and the run's budget (deadline and stop flag).

pub mod budget;
pub mod cone;
pub mod fista;
pub mod linalg;
pub mod nnls;
pub mod rng;
pub mod spectral;
