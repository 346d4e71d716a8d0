//! The polar of deep and convolutional subnetworks (THEORY.md section 6): no exact method is known. The lower
//! bound trains one subnetwork to maximize its correlation `<Q, phi(w)>` over unit layer norms (Riemannian
//! gradient ascent on the product of spheres, the output layer in closed form, several random restarts); the
//! proven upper bound is the loose `||Q||_2` times the Lipschitz constant of the stack. No certificate follows
//! unless that loose bound happens to close.

use faer::MatRef;

use crate::core::polar::{Polar, PolarOptions};
use crate::core::{Subnetwork, Weights};
use crate::families::deep::{polar_upper_bound, DeepNetwork};
use crate::numerics::rng::Rng;

/// Ascent iterations per restart, and for polishing the best start.
const RESTART_ITERS: usize = 40;
const POLISH_ITERS: usize = 300;

/// A random subnetwork with unit-norm layers.
fn random_unit(net: &DeepNetwork, rng: &mut Rng) -> Weights {
    let mut w = Weights { layers: net.layer_dims().iter().map(|&d| rng.normal_mat(d, 1)).collect() };
    for l in w.layers.iter_mut() {
        let n = l.norm_l2();
        l.col_as_slice_mut(0).iter_mut().for_each(|v| *v /= n);
    }
    w
}

/// Riemannian ascent from `w` for `iters` steps: each hidden layer moves along its gradient's component tangent
/// to its unit sphere and is renormalized; a step is kept only if the value grows (else the step halves).
fn ascend(net: &DeepNetwork, q: MatRef<'_, f64>, w: &mut Weights, iters: usize, par: faer::Par) -> f64 {
    let kdeg = w.layers.len();
    let (mut value, mut grads) = net.polar_eval(w, q, par);
    let mut eta = 0.5;
    for _ in 0..iters {
        if value <= 0.0 || eta < 1e-10 {
            break;
        }
        let mut cand = w.clone();
        for (k, grad) in grads.iter().enumerate().take(kdeg - 1) {
            let (x, g) = (w.layers[k].col_as_slice(0), grad.col_as_slice(0));
            let radial: f64 = x.iter().zip(g).map(|(a, b)| a * b).sum();
            let c = cand.layers[k].col_as_slice_mut(0);
            for ((ci, xi), gi) in c.iter_mut().zip(x).zip(g) {
                *ci = xi + eta * (gi - radial * xi) / value;
            }
            let n = c.iter().map(|v| v * v).sum::<f64>().sqrt();
            c.iter_mut().for_each(|v| *v /= n);
        }
        let (v2, g2) = net.polar_eval(&mut cand, q, par);
        if v2 > value {
            let gain = v2 - value;
            (*w, value, grads) = (cand, v2, g2);
            eta = (eta * 1.5).min(4.0);
            if gain <= 1e-12 * value {
                break;
            }
        } else {
            eta *= 0.5;
        }
    }
    value
}

/// The heuristic polar: best of `opts.restarts` random starts, polished.
pub fn heuristic_polar(net: &DeepNetwork, q: MatRef<'_, f64>, opts: &PolarOptions, rng: &mut Rng) -> Polar {
    let upper = polar_upper_bound(net, q);
    let mut best: Option<(f64, Weights)> = None;
    for start in 0..opts.restarts.max(1) {
        if start > 0 && opts.budget.expired() {
            break;
        }
        let mut w = random_unit(net, rng);
        let v = ascend(net, q, &mut w, RESTART_ITERS, opts.par);
        if best.as_ref().is_none_or(|(b, _)| v > *b) {
            best = Some((v, w));
        }
    }
    let (_, mut atom) = best.expect("at least one restart");
    let value = ascend(net, q, &mut atom, POLISH_ITERS, opts.par);
    Polar {
        lower: value,
        upper: Some(upper.max(value)),
        exact: false,
        atom,
        method: "gradient ascent on one subnetwork (heuristic)".into(),
        extra: Vec::new(),
        heuristic: true,
        open_search: false,
    }
}
