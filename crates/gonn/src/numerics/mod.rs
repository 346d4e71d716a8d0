//! Family-free numerical kernels: dense products (the one place that clears the upper vector state), spectral
//! norms (Lanczos below, Cholesky-proven above), Lawson-Hanson cone projections, and the seeded generator.

pub mod cone;
pub mod linalg;
pub mod rng;
pub mod spectral;
