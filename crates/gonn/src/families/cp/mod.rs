//! CP tensor factorization: `phi(a, b, c) = a ∘ b ∘ c`, `theta = ||a||_2 ||b||_2 ||c||_2` (degree 3).
//! Outputs are stored as mode-1 unfoldings `m x (n k)` with column `j k + l` (C-order reshape of `m x n x k`).

pub mod polar;

use faer::{Mat, MatRef, Par};

use crate::core::norms::{LayerNorm, Norm};
use crate::core::polar::{Polar, PolarOptions};
use crate::core::{Family, Subnetwork, Weights};
use crate::families::cp::polar::cp_polar;
use crate::numerics::linalg::{hadamard, mul, mul_nt, mul_tn};
use crate::numerics::rng::Rng;

/// The family of rank-one tensors `a ∘ b ∘ c` in `R^{m x n x k}`.
#[derive(Clone, Debug)]
pub struct CpTensor {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    norms: [LayerNorm; 3],
}

impl CpTensor {
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Self { m, n, k, norms: [LayerNorm::new(Norm::L2, false); 3] }
    }

    /// Khatri-Rao product of `C` and `B`: `(n k) x r`, row `j k + l` holding `B[j, :] * C[l, :]`.
    fn khatri_rao(&self, b: MatRef<'_, f64>, c: MatRef<'_, f64>) -> Mat<f64> {
        Mat::from_fn(self.n * self.k, b.ncols(), |jl, i| b[(jl / self.k, i)] * c[(jl % self.k, i)])
    }
}

impl Subnetwork for CpTensor {
    fn name(&self) -> &'static str {
        "cp"
    }
    fn layer_norms(&self) -> &[LayerNorm] {
        &self.norms
    }
    fn layer_dims(&self) -> Vec<usize> {
        vec![self.m, self.n, self.k]
    }
    fn output_shape(&self) -> (usize, usize) {
        (self.m, self.n * self.k)
    }
    fn forward(&self, w: &Weights, par: Par) -> Mat<f64> {
        let kr = self.khatri_rao(w.layers[1].as_ref(), w.layers[2].as_ref());
        mul_nt(w.layers[0].as_ref(), kr.as_ref(), par)
    }
    fn layer_gradient(&self, w: &Weights, layer: usize, g: MatRef<'_, f64>, par: Par) -> Mat<f64> {
        let (a, b, c) = (&w.layers[0], &w.layers[1], &w.layers[2]);
        if layer == 0 {
            let kr = self.khatri_rao(b.as_ref(), c.as_ref());
            return mul(g, kr.as_ref(), par);
        }
        // T = A^T G (r x nk) serves both remaining modes.
        let t = mul_tn(a.as_ref(), g, par);
        let r = a.ncols();
        if layer == 1 {
            Mat::from_fn(self.n, r, |j, i| (0..self.k).map(|l| t[(i, j * self.k + l)] * c[(l, i)]).sum())
        } else {
            Mat::from_fn(self.k, r, |l, i| (0..self.n).map(|j| t[(i, j * self.k + l)] * b[(j, i)]).sum())
        }
    }
    fn output_gram(&self, w: &Weights, par: Par) -> Mat<f64> {
        let g: Vec<Mat<f64>> = w.layers.iter().map(|l| mul_tn(l.as_ref(), l.as_ref(), par)).collect();
        hadamard(hadamard(g[0].as_ref(), g[1].as_ref()).as_ref(), g[2].as_ref())
    }
}

impl Family for CpTensor {
    fn polar(&self, q: MatRef<'_, f64>, opts: &PolarOptions, rng: &mut Rng) -> Polar {
        cp_polar(q, self.n, self.k, opts, rng)
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

impl crate::families::bcd::Multilinear for CpTensor {
    fn layer_curvature(&self, w: &Weights, layer: usize, par: Par) -> Mat<f64> {
        let grams: Vec<Mat<f64>> =
            (0..3).filter(|&k| k != layer).map(|k| mul_tn(w.layers[k].as_ref(), w.layers[k].as_ref(), par)).collect();
        hadamard(grams[0].as_ref(), grams[1].as_ref())
    }
}
