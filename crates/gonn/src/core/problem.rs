//! The training objective `f(W) = loss(Y, Phi(W)) + lambda * Theta(W)` (THEORY.md section 1).

use faer::{Mat, Par};

use crate::core::loss::{Loss, Observations};
use crate::core::{regularizer, Family, Weights};
use crate::numerics::linalg::dot;

/// A subnetwork family, a loss, the observations and `lambda`: everything that defines `f`.
#[derive(Clone, Copy)]
pub struct Problem<'a> {
    pub net: &'a dyn Family,
    pub loss: Loss,
    pub obs: &'a Observations,
    pub lambda: f64,
    pub par: Par,
}

/// `f(W)` split into its parts, with the network output `Z = Phi(W)` and the loss gradient `G` at `Z`.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub objective: f64,
    pub loss: f64,
    pub regularizer: f64,
    pub z: Mat<f64>,
    pub g: Mat<f64>,
}

impl Problem<'_> {
    /// `f(W)`.
    pub fn objective(&self, w: &Weights) -> f64 {
        let z = self.net.forward(w, self.par);
        self.loss.value(self.obs, z.as_ref()) + self.lambda * regularizer(self.net, w)
    }

    /// `f(W)`, its parts, `Z` and `G`.
    pub fn evaluate(&self, w: &Weights) -> Evaluation {
        let z = self.net.forward(w, self.par);
        let (loss, g) = self.loss.value_and_gradient(self.obs, z.as_ref());
        let reg = regularizer(self.net, w);
        Evaluation { objective: loss + self.lambda * reg, loss, regularizer: reg, z, g }
    }

    /// Minimizes a convex scalar function on `[0, inf)` given its nondecreasing derivative `dh`, by bracketing and
    /// bisection.
    pub(crate) fn minimize_ray(dh: impl Fn(f64) -> f64) -> f64 {
        if dh(0.0) >= 0.0 {
            return 0.0;
        }
        let mut hi = 1.0;
        let mut guard = 0;
        while dh(hi) < 0.0 && guard < 200 {
            hi *= 2.0;
            guard += 1;
        }
        let mut lo = 0.0;
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if dh(mid) < 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
            if hi - lo <= 1e-15 * hi {
                break;
            }
        }
        0.5 * (lo + hi)
    }

    /// `argmin_{c >= 0} loss(c Z) + lambda c Theta`: the optimal scaling of the whole network along its ray
    /// (THEORY.md section 3, the pre-step that enforces (C2)). Closed form for the squared loss.
    pub fn ray_scale(&self, z: &Mat<f64>, theta_sum: f64) -> f64 {
        let lam_theta = self.lambda * theta_sum;
        if self.loss == Loss::Squared {
            let (mut yz, mut zz) = (0.0, 0.0);
            for j in 0..z.ncols() {
                for i in 0..z.nrows() {
                    if self.obs.mask().is_none_or(|m| m[(i, j)] != 0.0) {
                        yz += self.obs.y()[(i, j)] * z[(i, j)];
                        zz += z[(i, j)] * z[(i, j)];
                    }
                }
            }
            return if zz == 0.0 { 1.0 } else { ((yz - lam_theta) / zz).max(0.0) };
        }
        Self::minimize_ray(|c| {
            let zc = Mat::from_fn(z.nrows(), z.ncols(), |i, j| c * z[(i, j)]);
            let (_, g) = self.loss.value_and_gradient(self.obs, zc.as_ref());
            dot(g.as_ref(), z.as_ref()) + lam_theta
        })
    }
}
