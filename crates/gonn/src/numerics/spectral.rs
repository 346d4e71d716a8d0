//! The largest singular value `sigma_max(Q)`: a lower bound with its singular pair by Golub-Kahan-Lanczos
//! bidiagonalization, and a proven upper bound from a Cholesky factorization of `c^2 I - Q^T Q`
//! (THEORY.md section 3, "Proving an upper bound on a largest singular value without a full SVD").

use faer::{Mat, MatRef, Par, Side};

use crate::numerics::linalg::{mul, mul_tn};

use crate::numerics::rng::Rng;

/// A singular triplet `(sigma, u, v)` with unit `u`, `v` and `sigma = u^T Q v` (so `sigma <= sigma_max(Q)`).
#[derive(Clone, Debug)]
pub struct Triplet {
    pub sigma: f64,
    pub u: Vec<f64>,
    pub v: Vec<f64>,
}

fn normalize(x: &mut [f64]) -> f64 {
    let n = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    if n > 0.0 {
        x.iter_mut().for_each(|v| *v /= n);
    }
    n
}

fn col(x: &[f64]) -> Mat<f64> {
    Mat::from_fn(x.len(), 1, |i, _| x[i])
}

/// Two passes of classical Gram-Schmidt of `x` against the first `k` columns of `basis`.
fn reorthogonalize(x: &mut [f64], basis: &Mat<f64>, k: usize) {
    for _ in 0..2 {
        for j in 0..k {
            let b = basis.col_as_slice(j);
            let d: f64 = b.iter().zip(x.iter()).map(|(a, c)| a * c).sum();
            x.iter_mut().zip(b).for_each(|(c, a)| *c -= d * a);
        }
    }
}

/// Top singular triplet of `q` by Golub-Kahan-Lanczos with full reorthogonalization, from `start` (or a random
/// vector), stopping when the residual `|beta_k x_k|` is below `tol * sigma`. The returned `sigma` is the
/// Rayleigh value `u^T Q v` of the returned unit vectors: a guaranteed lower bound.
pub fn top_singular_from(
    q: MatRef<'_, f64>,
    max_steps: usize,
    tol: f64,
    start: Option<&[f64]>,
    rng: &mut Rng,
    par: Par,
) -> Triplet {
    lanczos_triplets(q, max_steps, tol, start, 0, rng, par).swap_remove(0)
}

/// Step count, left and right Ritz coefficient matrices, Ritz values and residuals of a Lanczos run.
type RitzPairs = (usize, Mat<f64>, Mat<f64>, Vec<f64>, Vec<f64>);

/// Like [`top_singular_from`], followed by up to `extra` further Ritz triplets whose residual is below `1e-3`
/// of their value (each with its exact Rayleigh value `u^T Q v`), in decreasing order.
pub fn lanczos_triplets(
    q: MatRef<'_, f64>,
    max_steps: usize,
    tol: f64,
    start: Option<&[f64]>,
    extra: usize,
    rng: &mut Rng,
    par: Par,
) -> Vec<Triplet> {
    lanczos_operator(&Dense { q, par }, max_steps, tol, start, extra, rng, par)
}

/// A matrix `Q` seen only through its products `Q x` and `Q^T y` (a sparse residual, a dense block).
pub trait Operator: Sync {
    fn nrows(&self) -> usize;
    fn ncols(&self) -> usize;
    /// `Q x`, `x` of length `ncols`.
    fn apply(&self, x: &[f64]) -> Vec<f64>;
    /// `Q^T y`, `y` of length `nrows`.
    fn apply_t(&self, y: &[f64]) -> Vec<f64>;
}

struct Dense<'a> {
    q: MatRef<'a, f64>,
    par: Par,
}

impl Operator for Dense<'_> {
    fn nrows(&self) -> usize {
        self.q.nrows()
    }
    fn ncols(&self) -> usize {
        self.q.ncols()
    }
    fn apply(&self, x: &[f64]) -> Vec<f64> {
        mul(self.q, col(x).as_ref(), self.par).col_as_slice(0).to_vec()
    }
    fn apply_t(&self, y: &[f64]) -> Vec<f64> {
        mul_tn(self.q, col(y).as_ref(), self.par).col_as_slice(0).to_vec()
    }
}

/// `Q^T` of an operator.
struct Transposed<'a>(&'a dyn Operator);

impl Operator for Transposed<'_> {
    fn nrows(&self) -> usize {
        self.0.ncols()
    }
    fn ncols(&self) -> usize {
        self.0.nrows()
    }
    fn apply(&self, x: &[f64]) -> Vec<f64> {
        self.0.apply_t(x)
    }
    fn apply_t(&self, y: &[f64]) -> Vec<f64> {
        self.0.apply(y)
    }
}

/// [`lanczos_triplets`] for any [`Operator`]: each step costs one `Q x` and one `Q^T y` plus the
/// reorthogonalization against the `k` basis vectors.
pub fn lanczos_operator(
    q: &dyn Operator,
    max_steps: usize,
    tol: f64,
    start: Option<&[f64]>,
    extra: usize,
    rng: &mut Rng,
    par: Par,
) -> Vec<Triplet> {
    let (m, n) = (q.nrows(), q.ncols());
    if m < n && m <= max_steps {
        // Started on the larger side, the bidiagonalization exhausts the smaller one after m steps with its last
        // coupling beta_m unused, so its Ritz values can fall well below sigma_max (a 1 x n matrix gives
        // |q . v0|). Started on the smaller side, the m steps span it and the Ritz values are exact.
        let start_t = start.filter(|s| s.len() == n).map(|s| q.apply(s));
        let mut t = lanczos_operator(&Transposed(q), max_steps, tol, start_t.as_deref(), extra, rng, par);
        for tr in t.iter_mut() {
            std::mem::swap(&mut tr.u, &mut tr.v);
        }
        return t;
    }
    let kmax = max_steps.min(m.min(n)).max(1);
    let mut vb = Mat::<f64>::zeros(n, kmax + 1);
    let mut ub = Mat::<f64>::zeros(m, kmax);
    let mut v0: Vec<f64> = match start {
        Some(s) if s.len() == n && s.iter().any(|x| *x != 0.0) => {
            // A little noise keeps the start from being orthogonal to the top singular vector.
            s.iter().map(|x| x + 1e-3 * rng.normal() / (n as f64).sqrt()).collect()
        }
        _ => (0..n).map(|_| rng.normal()).collect(),
    };
    normalize(&mut v0);
    vb.col_as_slice_mut(0).copy_from_slice(&v0);
    let (mut alphas, mut betas) = (Vec::new(), Vec::new());
    let mut best: Option<RitzPairs> = None;
    for j in 0..kmax {
        let mut u: Vec<f64> = q.apply(vb.col_as_slice(j));
        reorthogonalize(&mut u, &ub, j);
        let alpha = normalize(&mut u);
        if alpha <= 1e-300 {
            break;
        }
        ub.col_as_slice_mut(j).copy_from_slice(&u);
        let mut w: Vec<f64> = q.apply_t(&u);
        reorthogonalize(&mut w, &vb, j + 1);
        let beta = normalize(&mut w);
        alphas.push(alpha);
        betas.push(beta);
        let k = j + 1;
        let done = beta <= 1e-14 * alpha || k == kmax;
        if k % 4 == 0 || done {
            let b = Mat::from_fn(k, k, |r, c| {
                if r == c {
                    alphas[r]
                } else if c == r + 1 {
                    betas[r]
                } else {
                    0.0
                }
            });
            let svd = b.svd();
            crate::numerics::linalg::clear_upper_state();
            if let Ok(svd) = svd {
                let s: Vec<f64> = svd.S().column_vector().iter().copied().collect();
                let x = svd.U().to_owned();
                let y = svd.V().to_owned();
                let resid: Vec<f64> = (0..k).map(|i| (beta * x[(k - 1, i)]).abs()).collect();
                let converged = resid[0] <= tol * s[0];
                best = Some((k, x, y, s, resid));
                if converged || done {
                    break;
                }
            }
        }
        if beta > 1e-300 {
            vb.col_as_slice_mut(j + 1).copy_from_slice(&w);
        }
    }
    let Some((k, x, y, s, resid)) = best else {
        return vec![Triplet { sigma: 0.0, u: vec![0.0; m], v: v0 }];
    };
    let pick: Vec<usize> =
        (0..k).filter(|&i| i == 0 || (i <= extra && s[i] > 0.0 && resid[i] <= 1e-3 * s[i])).collect();
    let xs = Mat::from_fn(k, pick.len(), |a, b| x[(a, pick[b])]);
    let ys = Mat::from_fn(k, pick.len(), |a, b| y[(a, pick[b])]);
    let us = mul(ub.as_ref().subcols(0, k), xs.as_ref(), par);
    let vs = mul(vb.as_ref().subcols(0, k), ys.as_ref(), par);
    let mut out = Vec::with_capacity(pick.len());
    for t in 0..pick.len() {
        let mut u = us.col_as_slice(t).to_vec();
        let mut v = vs.col_as_slice(t).to_vec();
        normalize(&mut u);
        normalize(&mut v);
        let qv = q.apply(&v);
        let mut sigma: f64 = qv.iter().zip(&u).map(|(a, b)| a * b).sum();
        if sigma < 0.0 {
            u.iter_mut().for_each(|x| *x = -*x);
            sigma = -sigma;
        }
        out.push(Triplet { sigma, u, v });
    }
    out
}

/// [`top_singular_from`] a random start with a tight tolerance.
pub fn top_singular(q: MatRef<'_, f64>, max_steps: usize, rng: &mut Rng, par: Par) -> Triplet {
    top_singular_from(q, max_steps, 1e-10, None, rng, par)
}

/// The lower triangle (with diagonal) of the Gram matrix of `q` on its smaller side (`Q^T Q` or `Q Q^T`; both
/// have eigenvalues `sigma_i(Q)^2`). Only half of the product is computed.
pub fn small_gram(q: MatRef<'_, f64>, par: Par) -> Mat<f64> {
    use faer::linalg::matmul::triangular::{matmul, BlockStructure};
    let a = if q.ncols() <= q.nrows() { q.transpose() } else { q };
    let mut g = Mat::zeros(a.nrows(), a.nrows());
    matmul(
        g.as_mut(),
        BlockStructure::TriangularLower,
        faer::Accum::Replace,
        a,
        BlockStructure::Rectangular,
        a.transpose(),
        BlockStructure::Rectangular,
        1.0,
        par,
    );
    crate::numerics::linalg::clear_upper_state();
    g
}

/// A proven upper bound on `sigma_max(Q)` without a Lanczos run: [`sigma_max_upper`] on the Gram matrix of `Q`,
/// bisecting up from the lower bound `||Q||_F / sqrt(rank bound)` / 2.
pub fn sigma_max_bound(q: MatRef<'_, f64>, par: Par) -> f64 {
    let gram = small_gram(q, par);
    let fro = (0..gram.nrows()).map(|i| gram[(i, i)]).sum::<f64>().sqrt();
    sigma_max_upper(&gram, q.nrows().max(q.ncols()), 0.5 * fro / (gram.nrows().max(1) as f64).sqrt())
}

/// Whether `c2 I - gram` is positive definite, decided by a Cholesky factorization (lower triangle only).
fn cholesky_succeeds(gram: &Mat<f64>, c2: f64) -> bool {
    let n = gram.nrows();
    let a = Mat::from_fn(n, n, |i, j| match i.cmp(&j) {
        std::cmp::Ordering::Equal => c2 - gram[(i, j)],
        std::cmp::Ordering::Greater => -gram[(i, j)],
        std::cmp::Ordering::Less => 0.0,
    });
    let ok = a.llt(Side::Lower).is_ok();
    crate::numerics::linalg::clear_upper_state();
    ok
}

/// A proven upper bound on `sigma_max(Q)` from the Gram matrix `gram` of `Q` (`m` is the other dimension of `Q`),
/// given a lower bound `lower`. `c` is accepted when the Cholesky factorization of `c^2 I - G` succeeds; the bound
/// then adds the rounding margin `4 (n + m + 2) eps c^2` of the normwise backward-error bounds for the Gram
/// product and the factorization. Trial values `c^2 = lower^2 (1 + d)` grow geometrically in `d` (usually the first
/// succeeds), then bisection tightens the bracket to a relative 1e-9 (the Frobenius norm is the fallback bound).
pub fn sigma_max_upper(gram: &Mat<f64>, m: usize, lower: f64) -> f64 {
    sigma_max_upper_to(gram, m, lower, 1e-9)
}

/// [`sigma_max_upper`] with the bisection stopped at a relative width `precision` of the bracket on `c^2` (each
/// step is one Cholesky factorization, so a certificate that needs only `1e-7` saves most of them).
pub fn sigma_max_upper_to(gram: &Mat<f64>, m: usize, lower: f64, precision: f64) -> f64 {
    let n = gram.nrows();
    if n == 0 {
        return 0.0;
    }
    let fro2: f64 = (0..n).map(|i| gram[(i, i)]).sum::<f64>().max(0.0);
    let margin = 4.0 * (n + m + 2) as f64 * f64::EPSILON;
    let accept = |c2: f64| c2 * (1.0 + margin);
    if fro2 == 0.0 {
        return 0.0;
    }
    // Try c^2 = lower^2 (1 + d) for growing d; then a few bisection steps between the last failure and success.
    let lo_base = (lower * lower).min(fro2);
    let mut lo2 = lo_base;
    let mut hi2 = fro2 * (1.0 + 1e-12);
    if lo_base > 0.0 {
        for d in [1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 1e-1, 1.0] {
            let c2 = lo_base * (1.0 + d);
            if c2 >= hi2 {
                break;
            }
            if cholesky_succeeds(gram, c2) {
                hi2 = c2;
                break;
            }
            lo2 = c2;
        }
    }
    for _ in 0..40 {
        if hi2 <= lo2 * (1.0 + precision) {
            break;
        }
        let mid = if lo2 > 0.0 { (lo2 * hi2).sqrt() } else { 0.5 * hi2 };
        if cholesky_succeeds(gram, mid) {
            hi2 = mid;
        } else {
            lo2 = mid;
        }
    }
    accept(hi2).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanczos_and_cholesky_bracket_the_dense_svd() {
        let mut rng = Rng::new(11);
        for &(m, n) in &[(30, 20), (15, 40), (64, 64), (3, 1)] {
            let q = rng.normal_mat(m, n);
            let exact = q.singular_values().unwrap()[0];
            let t = top_singular(q.as_ref(), 60, &mut rng, Par::Seq);
            assert!(t.sigma <= exact * (1.0 + 1e-12));
            assert!(t.sigma >= exact * (1.0 - 1e-8), "{} vs {exact}", t.sigma);
            let up = sigma_max_upper(&small_gram(q.as_ref(), Par::Seq), m.max(n), t.sigma);
            assert!(up >= exact && up <= exact * (1.0 + 1e-8), "{up} vs {exact}");
            // A lower bound that misses the top singular value still gives a valid upper bound.
            let up2 = sigma_max_upper(&small_gram(q.as_ref(), Par::Seq), m.max(n), 0.3 * exact);
            assert!(up2 >= exact && up2 <= exact * (1.0 + 1e-6), "{up2} vs {exact}");
        }
    }
}
