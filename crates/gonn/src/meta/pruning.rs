//! The pruning move of Theorem 2 (THEORY.md section 2): when the subnetwork outputs are linearly dependent,
//! `sum beta_i phi(w_i) = 0` with `sum beta_i theta(w_i) <= 0`, scaling `w_i <- (1 + t beta_i)^(1/p) w_i` keeps
//! `Phi` fixed, does not increase `Theta`, and drives one subnetwork exactly to zero at
//! `t = min_{beta_i < 0} -1 / beta_i`. This keeps the number of subnetworks bounded.

use faer::Side;

use crate::core::problem::Problem;
use crate::core::{prune_zero, theta, Weights};

/// Relative size of the smallest Gram eigenvalue below which outputs count as linearly dependent.
const DEPENDENCE_TOL: f64 = 1e-12;

/// Applies the pruning move while the outputs are (numerically) dependent and it does not increase `f`.
/// Returns the number of subnetworks removed.
pub fn prune_dependent(p: &Problem<'_>, w: &mut Weights) -> usize {
    let mut removed = 0;
    while w.width() >= 2 {
        let gram = p.net.output_gram(w, p.par);
        let eig = gram.self_adjoint_eigen(Side::Lower);
        crate::numerics::linalg::clear_upper_state();
        let Ok(eig) = eig else { break };
        let s = eig.S().column_vector();
        let smax = s[s.nrows() - 1];
        if s[0].is_nan() || s[0] > DEPENDENCE_TOL * smax {
            break;
        }
        let mut beta: Vec<f64> = eig.U().col(0).iter().copied().collect();
        let th = theta(p.net, w);
        if beta.iter().zip(&th).map(|(b, t)| b * t).sum::<f64>() > 0.0 {
            beta.iter_mut().for_each(|b| *b = -*b);
        }
        let Some((imin, tstep)) = beta
            .iter()
            .enumerate()
            .filter(|(_, b)| **b < 0.0)
            .map(|(i, b)| (i, -1.0 / b))
            .min_by(|a, b| a.1.total_cmp(&b.1))
        else {
            break;
        };
        let before = p.objective(w);
        let mut trial = w.clone();
        for (i, b) in beta.iter().enumerate() {
            // Scaling the first layer by (1 + t beta_i) scales phi(w_i) and theta(w_i) by the same factor.
            let f = if i == imin { 0.0 } else { (1.0 + tstep * b).max(0.0) };
            trial.scale_column(0, i, f);
        }
        prune_zero(&mut trial);
        if p.objective(&trial) <= before * (1.0 + 1e-12) {
            *w = trial;
            removed += 1;
        } else {
            break;
        }
    }
    removed
}
