//! Synthetic data sets with known structure, for the demo, tests and benchmarks.

use faer::Mat;

use crate::numerics::linalg::mul_nt;
use crate::numerics::rng::Rng;

/// A noisy low-rank matrix `Y = A B^T + noise * N(0, 1)` with `A, B` Gaussian of width `rank`, scaled so that
/// entries of `A B^T` have unit variance, and a mask observing each entry with probability `observed`.
#[derive(Clone, Debug)]
pub struct LowRank {
    pub y: Mat<f64>,
    pub truth: Mat<f64>,
    pub mask: Option<Mat<f64>>,
}

/// See [`LowRank`]; `observed >= 1` gives no mask.
pub fn low_rank(m: usize, n: usize, rank: usize, noise: f64, observed: f64, seed: u64) -> LowRank {
    let mut rng = Rng::new(seed);
    let a = rng.normal_mat(m, rank);
    let b = rng.normal_mat(n, rank);
    let mut truth = mul_nt(a.as_ref(), b.as_ref(), faer::Par::Seq);
    let s = 1.0 / (rank.max(1) as f64).sqrt();
    for j in 0..n {
        truth.col_as_slice_mut(j).iter_mut().for_each(|v| *v *= s);
    }
    let y = Mat::from_fn(m, n, |i, j| truth[(i, j)] + noise * rng.normal());
    let mask = (observed < 1.0).then(|| Mat::from_fn(m, n, |_, _| (rng.uniform() < observed) as u8 as f64));
    LowRank { y, truth, mask }
}
