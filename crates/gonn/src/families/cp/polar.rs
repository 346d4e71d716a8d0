//! Polar of the CP tensor atom `a ∘ b ∘ c` with `theta = ||a||_2 ||b||_2 ||c||_2` (THEORY.md section 6): the
//! tensor spectral norm `sup Q(a, b, c)` over unit vectors, NP-hard. Lower bound: the higher-order power method
//! with restarts. Proven upper bound: `min_k sigma_max(unfolding_k(Q))` (each checked by Cholesky).
//!
//! `Q` is given as its mode-1 unfolding, `m x (n k)`, column `j k + l` holding `Q[:, j, l]` (the C-order reshape
//! of an `m x n x k` array).

use faer::{Mat, MatRef};

use crate::core::polar::{Polar, PolarOptions};
use crate::core::Weights;
use crate::numerics::linalg::mul;
use crate::numerics::rng::Rng;
use crate::numerics::spectral::{sigma_max_upper, small_gram, top_singular};

fn normalize(x: &mut [f64]) -> f64 {
    let n = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    if n > 0.0 {
        x.iter_mut().for_each(|v| *v /= n);
    }
    n
}

/// `Q(., b, c)`, `Q(a, ., c)`, `Q(a, b, .)` and `Q(a, b, c)` on the mode-1 unfolding.
pub(crate) struct Contractions<'a> {
    pub q: MatRef<'a, f64>,
    pub n: usize,
    pub k: usize,
}

impl Contractions<'_> {
    pub fn mode1(&self, b: &[f64], c: &[f64]) -> Vec<f64> {
        let bc = Mat::from_fn(self.n * self.k, 1, |jl, _| b[jl / self.k] * c[jl % self.k]);
        mul(self.q, bc.as_ref(), faer::Par::Seq).col_as_slice(0).to_vec()
    }
    /// `t = Q^T a` reshaped as `n x k`.
    fn qta(&self, a: &[f64]) -> Vec<f64> {
        let am = Mat::from_fn(a.len(), 1, |i, _| a[i]);
        mul(self.q.transpose(), am.as_ref(), faer::Par::Seq).col_as_slice(0).to_vec()
    }
    pub fn mode2(&self, a: &[f64], c: &[f64]) -> Vec<f64> {
        let t = self.qta(a);
        (0..self.n).map(|j| (0..self.k).map(|l| t[j * self.k + l] * c[l]).sum()).collect()
    }
    pub fn mode3(&self, a: &[f64], b: &[f64]) -> Vec<f64> {
        let t = self.qta(a);
        (0..self.k).map(|l| (0..self.n).map(|j| t[j * self.k + l] * b[j]).sum()).collect()
    }
}

/// Mode-2 (`n x (m k)`) and mode-3 (`k x (m n)`) unfoldings from the mode-1 unfolding.
pub fn unfoldings(q: MatRef<'_, f64>, n: usize, k: usize) -> (Mat<f64>, Mat<f64>) {
    let m = q.nrows();
    let u2 = Mat::from_fn(n, m * k, |j, il| q[(il / k, j * k + il % k)]);
    let u3 = Mat::from_fn(k, m * n, |l, ij| q[(ij / n, (ij % n) * k + l)]);
    (u2, u3)
}

/// The CP polar for a tensor of shape `m x n x k` given by its mode-1 unfolding `q`.
pub fn cp_polar(q: MatRef<'_, f64>, n: usize, k: usize, opts: &PolarOptions, rng: &mut Rng) -> Polar {
    let m = q.nrows();
    let ctr = Contractions { q, n, k };
    let mut starts: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
    // Start from the top singular pair of the mode-1 unfolding, its right vector folded to n x k.
    let t = top_singular(q, opts.lanczos_steps, rng, opts.par);
    let folded = Mat::from_fn(n, k, |j, l| t.v[j * k + l]);
    let t2 = top_singular(folded.as_ref(), opts.lanczos_steps, rng, opts.par);
    starts.push((t2.u, t2.v));
    for _ in 0..opts.restarts {
        starts.push(((0..n).map(|_| rng.normal()).collect(), (0..k).map(|_| rng.normal()).collect()));
    }
    let mut best = (f64::NEG_INFINITY, vec![0.0; m], vec![0.0; n], vec![0.0; k]);
    for (i, (mut b, mut c)) in starts.into_iter().enumerate() {
        // The first starts (data-driven) always run; random restarts stop when the budget ends.
        if i > 2 && opts.budget.expired() {
            break;
        }
        normalize(&mut b);
        normalize(&mut c);
        let mut a = vec![0.0; m];
        let mut val = f64::NEG_INFINITY;
        for _ in 0..300 {
            a = ctr.mode1(&b, &c);
            normalize(&mut a);
            b = ctr.mode2(&a, &c);
            normalize(&mut b);
            c = ctr.mode3(&a, &b);
            let new_val = normalize(&mut c);
            let done = new_val <= val + 1e-13 * new_val.abs();
            val = new_val;
            if done {
                break;
            }
        }
        let att: f64 = ctr.mode1(&b, &c).iter().zip(&a).map(|(x, y)| x * y).sum();
        if att > best.0 {
            best = (att, a, b, c);
        }
    }
    let lower = best.0.max(0.0);
    let upper = if opts.prove {
        let (u2, u3) = unfoldings(q, n, k);
        let b1 = sigma_max_upper(&small_gram(q, opts.par), m.max(n * k), t.sigma);
        let b2 = sigma_max_upper(&small_gram(u2.as_ref(), opts.par), n.max(m * k), 0.0);
        let b3 = sigma_max_upper(&small_gram(u3.as_ref(), opts.par), k.max(m * n), 0.0);
        Some(b1.min(b2).min(b3).max(lower))
    } else {
        None
    };
    let (_, a, b, c) = best;
    let col = |x: &[f64]| Mat::from_fn(x.len(), 1, |i, _| x[i]);
    Polar {
        lower,
        upper,
        exact: false,
        atom: Weights { layers: vec![col(&a), col(&b), col(&c)] },
        method: "higher-order power method (NP-hard; upper bound min_k sigma_max(unfolding_k))".into(),
        extra: vec![],
        heuristic: false,
        open_search: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(rng: &mut Rng, n: usize) -> Vec<f64> {
        let mut x: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        normalize(&mut x);
        x
    }

    /// For a rank-one tensor `s a∘b∘c` the polar is exactly `s`, and both bounds find it.
    #[test]
    fn rank_one_tensor_polar_is_closed() {
        let mut rng = Rng::new(8);
        let (m, n, k) = (5, 4, 3);
        let (a, b, c) = (unit(&mut rng, m), unit(&mut rng, n), unit(&mut rng, k));
        let q = Mat::from_fn(m, n * k, |i, jl| 2.5 * a[i] * b[jl / k] * c[jl % k]);
        let p = cp_polar(q.as_ref(), n, k, &PolarOptions::default(), &mut rng);
        assert!((p.lower - 2.5).abs() < 1e-9, "{}", p.lower);
        assert!((p.upper.unwrap() - 2.5).abs() < 1e-8);
    }

    /// On random tensors the bracket contains every sampled value `Q(a, b, c)`.
    #[test]
    fn bracket_contains_samples() {
        let mut rng = Rng::new(9);
        let (m, n, k) = (4, 3, 5);
        let q = rng.normal_mat(m, n * k);
        let p = cp_polar(q.as_ref(), n, k, &PolarOptions::default(), &mut rng);
        let ctr = Contractions { q: q.as_ref(), n, k };
        for _ in 0..3000 {
            let (a, b, c) = (unit(&mut rng, m), unit(&mut rng, n), unit(&mut rng, k));
            let v: f64 = ctr.mode1(&b, &c).iter().zip(&a).map(|(x, y)| x * y).sum();
            assert!(v <= p.lower + 1e-9, "sample {v} beats the power method {}", p.lower);
        }
        assert!(p.upper.unwrap() >= p.lower);
    }
}
