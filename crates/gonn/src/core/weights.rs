//! The weights of `r` parallel subnetworks, stored layer by layer so that every pass works on whole blocks.

use faer::Mat;

/// The weights of `r` parallel subnetworks: `layers[k]` is `dim_k x r`, column `i` is subnetwork `i`'s layer `k`.
#[derive(Clone, Debug)]
pub struct Weights {
    pub layers: Vec<Mat<f64>>,
}

impl Weights {
    /// `r = 0` subnetworks with the given layer dimensions.
    pub fn empty(dims: &[usize]) -> Self {
        Self { layers: dims.iter().map(|&d| Mat::zeros(d, 0)).collect() }
    }

    /// Number of parallel subnetworks `r`.
    pub fn width(&self) -> usize {
        self.layers.first().map_or(0, |l| l.ncols())
    }

    /// Layer dimensions `dim_k`.
    pub fn dims(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.nrows()).collect()
    }

    /// Keeps the subnetworks `i` with `keep[i]`.
    pub fn retain(&mut self, keep: &[bool]) {
        for l in self.layers.iter_mut() {
            let cols: Vec<usize> = (0..l.ncols()).filter(|&i| keep[i]).collect();
            *l = Mat::from_fn(l.nrows(), cols.len(), |a, b| l[(a, cols[b])]);
        }
    }

    /// Appends the single subnetwork of `atom` (width 1), layer `k` scaled by `scales[k]`.
    pub fn push(&mut self, atom: &Weights, scales: &[f64]) {
        for (k, l) in self.layers.iter_mut().enumerate() {
            let r = l.ncols();
            let a = &atom.layers[k];
            let mut new = Mat::zeros(l.nrows(), r + 1);
            new.as_mut().subcols_mut(0, r).copy_from(l.as_ref());
            for i in 0..l.nrows() {
                new[(i, r)] = scales[k] * a[(i, 0)];
            }
            *l = new;
        }
    }

    /// Scales layer `k` of subnetwork `i` by `s`.
    pub fn scale_column(&mut self, k: usize, i: usize, s: f64) {
        self.layers[k].col_as_slice_mut(i).iter_mut().for_each(|v| *v *= s);
    }

    /// Scales every layer of every subnetwork by `s` (the whole network output by `s^K`).
    pub fn scale_all(&mut self, s: f64) {
        for l in self.layers.iter_mut() {
            for j in 0..l.ncols() {
                l.col_as_slice_mut(j).iter_mut().for_each(|v| *v *= s);
            }
        }
    }

    /// Whether every entry is finite.
    pub fn all_finite(&self) -> bool {
        self.layers.iter().all(|l| crate::numerics::linalg::all_finite(l.as_ref()))
    }
}
