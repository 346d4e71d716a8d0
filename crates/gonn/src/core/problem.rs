//! The training objective `f(W) = loss(Y, Phi(W)) + lambda * Theta(W)` (THEORY.md section 1).

use faer::{Mat, Par};

use crate::core::loss::{Loss, Observations};
use crate::core::{regularizer, Family, Weights};
use crate::numerics::linalg::{dot, mul, mul_tn};

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

/// Newton steps at most per [`Problem::nonneg_combination`].
const COMBINATION_NEWTON_STEPS: usize = 50;

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

    /// `min_{c >= 0} loss(sum_k c_k Z_k) + lambda sum_k cost_k c_k` for an entrywise loss (squared, logistic), from
    /// `c` (nonnegative; overwritten with the result): Newton steps on the loss's second-order model in `Z` (each the
    /// nonnegative QP with Gram matrix `<Z_k, diag(h) Z_l>`, `h = loss''(z)`, plus a tiny ridge) with a backtracking
    /// line search on the objective (`c` stays nonnegative on the segment). The fully corrective step of the dual
    /// refinement (THEORY.md section 3) and the growth step's 2-D corrective problem. Returns `Z = sum_k c_k Z_k`, the
    /// loss there and its gradient.
    pub fn nonneg_combination(&self, outputs: &[&Mat<f64>], costs: &[f64], c: &mut [f64]) -> (Mat<f64>, f64, Mat<f64>) {
        let p = self;
        let (m, n) = p.net.output_shape();
        let k = outputs.len();
        // The atoms' outputs as the columns of one `(m n) x k` matrix: the products below are single wide products.
        let flat_into = |a: &Mat<f64>, dst: &mut [f64]| {
            for j in 0..n {
                dst[j * m..(j + 1) * m].copy_from_slice(a.col_as_slice(j));
            }
        };
        let flat = |a: &Mat<f64>| {
            let mut v = Mat::<f64>::zeros(m * n, 1);
            flat_into(a, v.col_as_slice_mut(0));
            v
        };
        let mut atoms = Mat::<f64>::zeros(m * n, k);
        for (a, o) in outputs.iter().enumerate() {
            flat_into(o, atoms.col_as_slice_mut(a));
        }
        let combine = |c: &[f64]| {
            let zc = mul(atoms.as_ref(), Mat::from_fn(k, 1, |a, _| c[a]).as_ref(), p.par);
            Mat::from_fn(m, n, |i, j| zc[(i + m * j, 0)])
        };
        let mut z = combine(c);
        let (mut loss, mut g) = p.loss.value_and_gradient(p.obs, z.as_ref());
        let mut f = loss + p.lambda * c.iter().zip(costs).map(|(ck, wk)| ck * wk).sum::<f64>();
        for _ in 0..COMBINATION_NEWTON_STEPS {
            let root_curv: Vec<f64> = (0..m * n)
                .map(|r| {
                    let (i, j) = (r % m, r / m);
                    if p.obs.is_observed(i, j) {
                        p.loss.entry_curvature(z[(i, j)]).unwrap_or(0.0).sqrt()
                    } else {
                        0.0
                    }
                })
                .collect();
            let mut scaled = atoms.clone();
            for a in 0..k {
                scaled.col_as_slice_mut(a).iter_mut().zip(&root_curv).for_each(|(v, h)| *v *= h);
            }
            let gram_mat = mul_tn(scaled.as_ref(), scaled.as_ref(), p.par);
            let grads = mul_tn(atoms.as_ref(), flat(&g).as_ref(), p.par);
            let mut gram: Vec<f64> = (0..k * k).map(|e| gram_mat[(e / k, e % k)]).collect();
            // A small ridge keeps the model bounded where `h` vanishes (above the Cholesky pivot threshold of the
            // active-set solver, 1e-12 of the diagonal, so that an atom with no output keeps its coefficient).
            let ridge = 1e-10 * (0..k).map(|a| gram[a * k + a]).fold(0.0, f64::max) + f64::MIN_POSITIVE;
            let mut lin = vec![0.0; k];
            for a in 0..k {
                gram[a * k + a] += ridge;
                // `<Z_a, h z - g> - lambda cost_a`, with `h z` as `sum_b gram_ab c_b`.
                lin[a] = (0..k).map(|b| gram[a * k + b] * c[b]).sum::<f64>() - grads[(a, 0)] - p.lambda * costs[a];
            }
            let mut next = c.to_vec();
            crate::numerics::nnls::nonneg_qp(&gram, &lin, &mut next);
            let d: Vec<f64> = next.iter().zip(c.iter()).map(|(a, b)| a - b).collect();
            let delta: f64 = d.iter().enumerate().map(|(a, dk)| dk * (grads[(a, 0)] + p.lambda * costs[a])).sum();
            // No descent direction, or a Newton decrement below what any caller can resolve.
            if delta.is_nan() || delta >= -1e-13 * f.abs() {
                break;
            }
            let dz = combine(&d);
            let mut t = 1.0;
            let mut accepted = None;
            while t >= 1e-8 {
                let zt = &z + &dz * faer::Scale(t);
                let (lt, gt) = p.loss.value_and_gradient(p.obs, zt.as_ref());
                let ft =
                    lt + p.lambda * c.iter().zip(&d).zip(costs).map(|((ck, dk), wk)| (ck + t * dk) * wk).sum::<f64>();
                if ft <= f + 0.25 * t * delta {
                    accepted = Some((zt, lt, gt, ft));
                    break;
                }
                t *= 0.5;
            }
            let Some((zt, lt, gt, ft)) = accepted else { break };
            for (ck, dk) in c.iter_mut().zip(&d) {
                *ck = (*ck + t * dk).max(0.0);
            }
            let decrease = f - ft;
            (z, loss, g, f) = (zt, lt, gt, ft);
            if decrease <= 1e-15 * f.abs() {
                break;
            }
        }
        (z, loss, g)
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
        if self.loss.entry_curvature(0.0).is_some() {
            let mut c = [1.0];
            self.nonneg_combination(&[z], &[theta_sum], &mut c);
            return c[0];
        }
        Self::minimize_ray(|c| {
            let zc = Mat::from_fn(z.nrows(), z.ncols(), |i, j| c * z[(i, j)]);
            let (_, g) = self.loss.value_and_gradient(self.obs, zc.as_ref());
            dot(g.as_ref(), z.as_ref()) + lam_theta
        })
    }
}
