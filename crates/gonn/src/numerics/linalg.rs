//! Thin wrappers over faer's matrix multiply with the parallelism passed explicitly, plus the few dense
//! helpers (inner products, small symmetric spectra) that the rest of the crate shares.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};

/// Products with fewer multiply-adds than this run on one thread: waking workers costs more than it saves.
const PARALLEL_MIN_FLOPS: usize = 1 << 18;

/// Clears the upper halves of the vector registers (`vzeroupper`) after faer's AVX-512 kernels. Without it the
/// CPU keeps a dirty upper state, and every later legacy-SSE instruction (libm's `exp` and `ln`, for one) pays a
/// transition penalty: on the development machine the softmax loss after a product ran 17 times slower (3.4 ms
/// instead of 0.2 ms for 1797 x 10 entries, `examples/deep_speed.rs` history).
#[inline]
pub fn clear_upper_state() {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: AVX was detected at run time; `vzeroupper` only clears register state that no live value
            // uses across this call.
            unsafe { zeroupper() }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn zeroupper() {
    std::arch::x86_64::_mm256_zeroupper()
}

/// `A B`.
pub fn mul(a: MatRef<'_, f64>, b: MatRef<'_, f64>, par: Par) -> Mat<f64> {
    let mut out = Mat::zeros(a.nrows(), b.ncols());
    mul_into(out.as_mut(), a, b, par);
    out
}

/// `out = A B`, into an existing block (e.g. one subnetwork's columns of a wide matrix).
pub fn mul_into(out: MatMut<'_, f64>, a: MatRef<'_, f64>, b: MatRef<'_, f64>, par: Par) {
    let par = if a.nrows() * a.ncols() * b.ncols() < PARALLEL_MIN_FLOPS { Par::Seq } else { par };
    matmul(out, Accum::Replace, a, b, 1.0, par);
    clear_upper_state();
}

/// `A^T B`.
pub fn mul_tn(a: MatRef<'_, f64>, b: MatRef<'_, f64>, par: Par) -> Mat<f64> {
    mul(a.transpose(), b, par)
}

/// `A B^T`.
pub fn mul_nt(a: MatRef<'_, f64>, b: MatRef<'_, f64>, par: Par) -> Mat<f64> {
    mul(a, b.transpose(), par)
}

/// Frobenius inner product `<A, B> = sum_ij A_ij B_ij`.
pub fn dot(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    debug_assert_eq!((a.nrows(), a.ncols()), (b.nrows(), b.ncols()));
    let mut s = 0.0;
    for j in 0..a.ncols() {
        let (ca, cb) = (a.col(j), b.col(j));
        for i in 0..a.nrows() {
            s += ca[i] * cb[i];
        }
    }
    s
}

/// Largest eigenvalue of a small symmetric matrix (used for block Lipschitz constants `||V^T V||_2`).
pub fn sym_max_eigenvalue(a: MatRef<'_, f64>) -> f64 {
    if a.nrows() == 0 {
        return 0.0;
    }
    let ev = a.self_adjoint_eigenvalues(Side::Lower);
    clear_upper_state();
    match ev {
        Ok(ev) => ev.last().copied().unwrap_or(0.0).max(0.0),
        // Fall back to the trace, a valid upper bound for a positive semidefinite Gram matrix.
        Err(_) => (0..a.nrows()).map(|i| a[(i, i)]).sum(),
    }
}

/// Hadamard (entrywise) product of two matrices of equal shape.
pub fn hadamard(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)] * b[(i, j)])
}

/// Whether every entry is finite.
pub fn all_finite(a: MatRef<'_, f64>) -> bool {
    (0..a.ncols()).all(|j| a.col(j).iter().all(|x| x.is_finite()))
}

/// `[X, 1]` when `bias`, else `X`: the inputs with the constant column of a first-layer bias.
pub fn augment(x: faer::MatRef<'_, f64>, bias: bool) -> faer::Mat<f64> {
    let d = x.ncols();
    faer::Mat::from_fn(x.nrows(), d + usize::from(bias), |i, j| if j < d { x[(i, j)] } else { 1.0 })
}
