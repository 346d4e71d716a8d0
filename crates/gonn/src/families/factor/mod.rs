//! Matrix factorization: `phi(u, v) = u v^T`, `Phi(U, V) = U V^T`, `theta = ||u||_a ||v||_b` (degree 2).
//! With `l2, l2` the induced regularizer is the nuclear norm (THEORY.md sections 1 and 2).

pub mod polar;

use faer::{Mat, MatRef, Par};

use crate::core::norms::LayerNorm;
use crate::core::polar::{Polar, PolarOptions};
use crate::core::{Family, Subnetwork, Weights};
use crate::families::factor::polar::factor_polar;
use crate::numerics::linalg::{hadamard, mul, mul_nt, mul_tn};
use crate::numerics::rng::Rng;

/// The family of rank-one matrices `u v^T` with `u` in `R^m`, `v` in `R^n`.
#[derive(Clone, Debug)]
pub struct MatrixFactorization {
    pub m: usize,
    pub n: usize,
    norms: [LayerNorm; 2],
}

impl MatrixFactorization {
    /// `theta(u, v) = ||u||_a ||v||_b` with `norms = [a, b]`.
    pub fn new(m: usize, n: usize, norms: [LayerNorm; 2]) -> Self {
        Self { m, n, norms }
    }
}

impl Subnetwork for MatrixFactorization {
    fn name(&self) -> &'static str {
        "factor"
    }
    fn layer_norms(&self) -> &[LayerNorm] {
        &self.norms
    }
    fn layer_dims(&self) -> Vec<usize> {
        vec![self.m, self.n]
    }
    fn output_shape(&self) -> (usize, usize) {
        (self.m, self.n)
    }
    fn forward(&self, w: &Weights, par: Par) -> Mat<f64> {
        mul_nt(w.layers[0].as_ref(), w.layers[1].as_ref(), par)
    }
    fn layer_gradient(&self, w: &Weights, k: usize, g: MatRef<'_, f64>, par: Par) -> Mat<f64> {
        match k {
            0 => mul(g, w.layers[1].as_ref(), par),
            _ => mul_tn(g, w.layers[0].as_ref(), par),
        }
    }
    fn output_gram(&self, w: &Weights, par: Par) -> Mat<f64> {
        let (u, v) = (w.layers[0].as_ref(), w.layers[1].as_ref());
        hadamard(mul_tn(u, u, par).as_ref(), mul_tn(v, v, par).as_ref())
    }
}

impl Family for MatrixFactorization {
    fn polar(&self, q: MatRef<'_, f64>, opts: &PolarOptions, rng: &mut Rng) -> Polar {
        factor_polar(q, self.norms[0], self.norms[1], opts, rng)
    }
    fn descend(
        &self,
        p: &crate::core::problem::Problem<'_>,
        w: &mut Weights,
        opts: &crate::core::descent::DescentOptions,
    ) -> crate::core::descent::DescentInfo {
        crate::families::bcd::local_descent(self, p, w, opts)
    }
}

impl crate::families::bcd::Multilinear for MatrixFactorization {
    fn layer_curvature(&self, w: &Weights, k: usize, par: Par) -> Mat<f64> {
        let other = w.layers[1 - k].as_ref();
        mul_tn(other, other, par)
    }
    fn observed_path(&self) -> bool {
        true
    }
    fn forward_observed(&self, w: &Weights, idx: &[(usize, usize)]) -> Option<Vec<f64>> {
        // Row-major copies so that each entry is a contiguous dot product of length r.
        let (ut, vt) = (w.layers[0].transpose().to_owned(), w.layers[1].transpose().to_owned());
        Some(
            idx.iter()
                .map(|&(i, j)| ut.col_as_slice(i).iter().zip(vt.col_as_slice(j)).map(|(a, b)| a * b).sum())
                .collect(),
        )
    }
    fn layer_gradient_observed(&self, w: &Weights, k: usize, idx: &[(usize, usize)], g: &[f64]) -> Option<Mat<f64>> {
        // grad_U = G V: row i of the gradient accumulates g_ij V[j, :] (and symmetrically for V).
        let other = w.layers[1 - k].transpose().to_owned();
        let rows = w.layers[k].nrows();
        let mut gt = Mat::<f64>::zeros(other.nrows(), rows);
        for (&(i, j), &gv) in idx.iter().zip(g) {
            let (a, b) = if k == 0 { (i, j) } else { (j, i) };
            let src = other.col_as_slice(b);
            for (d, s) in gt.col_as_slice_mut(a).iter_mut().zip(src) {
                *d += gv * s;
            }
        }
        Some(gt.transpose().to_owned())
    }
}
