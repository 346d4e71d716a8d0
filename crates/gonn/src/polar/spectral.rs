//! The largest singular value `sigma_max(Q)`: a lower bound with its singular pair by Golub-Kahan-Lanczos
//! bidiagonalization, and a proven upper bound from a Cholesky factorization of `c^2 I - Q^T Q`
//! (THEORY.md section 3, "Proving an upper bound on a largest singular value without a full SVD").

use faer::{Mat, MatRef, Par, Side};

use crate::linalg::{mul, mul_tn};
use crate::rng::Rng;

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

/// Top singular triplet of `q` by Golub-Kahan-Lanczos with full reorthogonalization, from a random start.
/// The returned `sigma` is the Rayleigh value `u^T Q v` of the returned unit vectors: a guaranteed lower bound.
pub fn top_singular(q: MatRef<'_, f64>, max_steps: usize, rng: &mut Rng, par: Par) -> Triplet {
    let (m, n) = (q.nrows(), q.ncols());
    let kmax = max_steps.min(m.min(n)).max(1);
    let mut vb = Mat::<f64>::zeros(n, kmax + 1);
    let mut ub = Mat::<f64>::zeros(m, kmax);
    let mut v0: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    normalize(&mut v0);
    vb.col_as_slice_mut(0).copy_from_slice(&v0);
    let (mut alphas, mut betas) = (Vec::new(), Vec::new());
    let mut best: Option<(usize, Mat<f64>, Mat<f64>, f64)> = None;
    for j in 0..kmax {
        let mut u: Vec<f64> = mul(q, vb.as_ref().subcols(j, 1), par).col_as_slice(0).to_vec();
        reorthogonalize(&mut u, &ub, j);
        let alpha = normalize(&mut u);
        if alpha <= 1e-300 {
            break;
        }
        ub.col_as_slice_mut(j).copy_from_slice(&u);
        let mut w: Vec<f64> = mul_tn(q, col(&u).as_ref(), par).col_as_slice(0).to_vec();
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
            if let Ok(svd) = b.svd() {
                let s = svd.S().column_vector()[0];
                let x = svd.U().col(0).to_owned();
                let y = svd.V().col(0).to_owned();
                let resid = (beta * x[k - 1]).abs();
                let converged = resid <= 1e-10 * s;
                best = Some((k, Mat::from_fn(k, 1, |i, _| x[i]), Mat::from_fn(k, 1, |i, _| y[i]), s));
                if converged || done {
                    break;
                }
            }
        }
        if beta > 1e-300 {
            vb.col_as_slice_mut(j + 1).copy_from_slice(&w);
        }
    }
    let (mut u, mut v) = match best {
        Some((k, x, y, _)) => (
            mul(ub.as_ref().subcols(0, k), x.as_ref(), par).col_as_slice(0).to_vec(),
            mul(vb.as_ref().subcols(0, k), y.as_ref(), par).col_as_slice(0).to_vec(),
        ),
        None => (vec![0.0; m], v0),
    };
    normalize(&mut u);
    normalize(&mut v);
    let qv = mul(q, col(&v).as_ref(), par);
    let mut sigma: f64 = qv.col_as_slice(0).iter().zip(&u).map(|(a, b)| a * b).sum();
    if sigma < 0.0 {
        u.iter_mut().for_each(|x| *x = -*x);
        sigma = -sigma;
    }
    Triplet { sigma, u, v }
}

/// The Gram matrix of `q` on its smaller side (`Q^T Q` or `Q Q^T`); both have eigenvalues `sigma_i(Q)^2`.
pub fn small_gram(q: MatRef<'_, f64>, par: Par) -> Mat<f64> {
    if q.ncols() <= q.nrows() {
        mul_tn(q, q, par)
    } else {
        mul(q, q.transpose(), par)
    }
}

/// Whether `c2 I - gram` is positive definite, decided by a Cholesky factorization.
fn cholesky_succeeds(gram: &Mat<f64>, c2: f64) -> bool {
    let n = gram.nrows();
    let a = Mat::from_fn(n, n, |i, j| if i == j { c2 - gram[(i, j)] } else { -gram[(i, j)] });
    a.llt(Side::Lower).is_ok()
}

/// A proven upper bound on `sigma_max(Q)` from the Gram matrix `gram` of `Q` (`m` is the other dimension of `Q`),
/// given a lower bound `lower`. `c` is accepted when the Cholesky factorization of `c^2 I - G` succeeds; the bound
/// then adds the rounding margin `4 (n + m + 2) eps c^2` of the normwise backward-error bounds for the Gram
/// product and the factorization. When `c` slightly above `lower` fails, the bound is found by bisection between
/// `lower` and the Frobenius norm (itself a proven bound).
pub fn sigma_max_upper(gram: &Mat<f64>, m: usize, lower: f64) -> f64 {
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
    let mut lo2 = (lower * lower).min(fro2);
    let first = (lo2 * (1.0 + 1e-10)).max(fro2 * 1e-300);
    if cholesky_succeeds(gram, first) {
        return accept(first).sqrt();
    }
    // Bisection on c^2 between the (possibly missed) lower bound and ||Q||_F^2.
    let mut hi2 = fro2 * (1.0 + 1e-12);
    for _ in 0..40 {
        if hi2 <= lo2 * (1.0 + 1e-9) {
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
