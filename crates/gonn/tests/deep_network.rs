//! Deep and convolutional subnetworks: hand-written backward passes against finite differences, Euler's identity
//! for homogeneous functions, the parallel (sum over subnetworks) structure, and the degree-mismatch proposition
//! (THEORY.md sections 1 and 2).

use faer::{Mat, MatRef, Par};
use gonn::core::Regularizer;
use gonn::families::deep::{Activation, Architecture, DeepNetwork};
use gonn::numerics::linalg::dot;
use gonn::prelude::*;

/// An architecture, its activation, the image shape (convolutions) and the input dimension.
type Case = (&'static str, Activation, Option<(usize, usize, usize)>, usize);

/// Architectures covering every layer type: dense, convolution, ReLU, leaky ReLU, max-out, max and mean pooling.
fn cases() -> Vec<Case> {
    vec![
        ("mlp:5", Activation::Relu, None, 4),
        ("mlp:4,3", Activation::Relu, None, 4),
        ("mlp:4,3", Activation::Leaky(0.2), None, 4),
        ("mlp:3,2", Activation::Maxout(3), None, 4),
        ("cnn:c3k3,pool2", Activation::Relu, Some((6, 6, 1)), 36),
        ("cnn:c2k2,meanpool2,c3k2", Activation::Leaky(0.1), Some((5, 5, 2)), 50),
        ("cnn:c2k3,pool2,fc4", Activation::Maxout(2), Some((7, 6, 1)), 42),
    ]
}

fn build(
    spec: &str,
    act: Activation,
    image: Option<(usize, usize, usize)>,
    d: usize,
    n: usize,
    c: usize,
    rng: &mut Rng,
) -> DeepNetwork {
    let x = rng.normal_mat(n, d);
    let arch = Architecture::parse(spec, act).unwrap();
    DeepNetwork::new(x.as_ref(), c, arch, image, true, Regularizer::Product).unwrap()
}

fn random_weights(net: &DeepNetwork, r: usize, rng: &mut Rng) -> Weights {
    Weights { layers: net.layer_dims().iter().map(|&d| rng.normal_mat(d, r)).collect() }
}

fn functional(net: &DeepNetwork, w: &Weights, g: MatRef<'_, f64>) -> f64 {
    dot(g, net.forward(w, Par::Seq).as_ref())
}

#[test]
fn gradients_match_finite_differences_for_every_layer_type() {
    let mut rng = Rng::new(7);
    for (spec, act, image, d) in cases() {
        let (n, c, r) = (6, 2, 3);
        let net = build(spec, act, image, d, n, c, &mut rng);
        let w = random_weights(&net, r, &mut rng);
        let g = rng.normal_mat(n, c);
        let grads = net.gradients(&w, g.as_ref(), Par::Seq);
        assert_eq!(grads.len(), net.degree());
        for (k, grad) in grads.iter().enumerate() {
            // Directional derivative along a random direction of layer k, by central differences. The network is
            // piecewise linear, so away from kinks the difference quotient is exact up to rounding.
            let dir = rng.normal_mat(w.layers[k].nrows(), r);
            let h = 1e-6;
            let (mut plus, mut minus) = (w.clone(), w.clone());
            for j in 0..r {
                for i in 0..dir.nrows() {
                    plus.layers[k][(i, j)] += h * dir[(i, j)];
                    minus.layers[k][(i, j)] -= h * dir[(i, j)];
                }
            }
            let fd = (functional(&net, &plus, g.as_ref()) - functional(&net, &minus, g.as_ref())) / (2.0 * h);
            let an = dot(grad.as_ref(), dir.as_ref());
            assert!((fd - an).abs() <= 1e-6 * (1.0 + an.abs()), "{spec} {act} layer {k}: fd {fd} vs {an}");
        }
    }
}

#[test]
fn euler_identity_and_homogeneity_hold_for_every_layer_type() {
    let mut rng = Rng::new(11);
    for (spec, act, image, d) in cases() {
        let (n, c, r) = (5, 3, 4);
        let net = build(spec, act, image, d, n, c, &mut rng);
        let kdeg = net.degree();
        let w = random_weights(&net, r, &mut rng);
        let g = rng.normal_mat(n, c);
        let f = functional(&net, &w, g.as_ref());
        let grads = net.gradients(&w, g.as_ref(), Par::Seq);
        // <grad_{W^k}, W^k> = f for each layer (degree 1 in each layer), hence <grad, W> = K f.
        let mut total = 0.0;
        for (k, (grad, layer)) in grads.iter().zip(&w.layers).enumerate() {
            let e = dot(grad.as_ref(), layer.as_ref());
            assert!((e - f).abs() <= 1e-9 * (1.0 + f.abs()), "{spec} {act} layer {k}: {e} vs {f}");
            total += e;
        }
        assert!((total - kdeg as f64 * f).abs() <= 1e-8 * (1.0 + f.abs()));
        // phi(a W) = a^K phi(W) for a > 0, and degree 1 in each layer separately.
        let a = 1.7;
        let mut scaled = w.clone();
        scaled.scale_all(a);
        let (z, za) = (net.forward(&w, Par::Seq), net.forward(&scaled, Par::Seq));
        let ak = a.powi(kdeg as i32);
        for j in 0..c {
            for i in 0..n {
                assert!((za[(i, j)] - ak * z[(i, j)]).abs() <= 1e-10 * (1.0 + z[(i, j)].abs() * ak));
            }
        }
        for k in 0..kdeg {
            let mut one = w.clone();
            for i in 0..r {
                one.scale_column(k, i, a);
            }
            let z1 = net.forward(&one, Par::Seq);
            assert!((dot(g.as_ref(), z1.as_ref()) - a * f).abs() <= 1e-9 * (1.0 + f.abs()));
        }
    }
}

#[test]
fn parallel_output_is_the_sum_of_the_subnetworks() {
    let mut rng = Rng::new(3);
    for (spec, act, image, d) in cases() {
        let net = build(spec, act, image, d, 4, 2, &mut rng);
        let w = random_weights(&net, 3, &mut rng);
        let z = net.forward(&w, Par::Seq);
        let mut sum = Mat::zeros(4, 2);
        for i in 0..3 {
            let one = Weights { layers: w.layers.iter().map(|l| l.subcols(i, 1).to_owned()).collect() };
            sum += net.forward(&one, Par::Seq);
        }
        assert!((&z - &sum).norm_max() <= 1e-10 * (1.0 + z.norm_max()), "{spec}");
    }
}

/// THEORY.md section 2, degree mismatch proposition: 3-layer subnetworks (degree 3) with weight decay (degree 2)
/// have a local minimum at zero although zero is not optimal; with the degree-matched product regularizer zero is
/// not a local minimum (the polar's subnetwork is a descent direction).
#[test]
fn degree_mismatch_makes_zero_a_local_minimum() {
    let mut rng = Rng::new(21);
    let (n, d, c) = (30, 4, 2);
    let x = rng.normal_mat(n, d);
    let arch = Architecture::parse("mlp:5,4", Activation::Relu).unwrap();
    // Targets from a planted network of the same architecture, plus noise.
    let teacher = DeepNetwork::new(x.as_ref(), c, arch.clone(), None, true, Regularizer::Product).unwrap();
    let planted = random_weights(&teacher, 2, &mut rng);
    let z = teacher.forward(&planted, Par::Seq);
    let y = Mat::from_fn(n, c, |i, j| z[(i, j)] + 0.1 * rng.normal());
    let obs = Observations::new(y, None).unwrap();
    let lambda = 0.5;
    let wd = DeepNetwork::new(x.as_ref(), c, arch.clone(), None, true, Regularizer::WeightDecay).unwrap();
    let matched = DeepNetwork::new(x.as_ref(), c, arch, None, true, Regularizer::Product).unwrap();
    assert_eq!(wd.degree(), 3);
    assert!(gonn::meta::degree_mismatch(&wd).is_some());
    assert!(gonn::meta::degree_mismatch(&matched).is_none());
    let p_wd = gonn::core::problem::Problem { net: &wd, loss: Loss::Squared, obs: &obs, lambda, par: Par::Seq };
    let p_m = gonn::core::problem::Problem { net: &matched, loss: Loss::Squared, obs: &obs, lambda, par: Par::Seq };
    let zero = Weights::empty(&wd.layer_dims());
    let f0 = p_wd.objective(&zero);
    let along = |p: &gonn::core::problem::Problem<'_>, dir: &Weights, t: f64| {
        let mut w = dir.clone();
        w.scale_all(t);
        p.objective(&w) - f0
    };
    // Weight decay: every sampled direction (two subnetworks, unit-norm layers) increases f near zero.
    for _ in 0..200 {
        let mut dir = Weights { layers: wd.layer_dims().iter().map(|&k| rng.normal_mat(k, 2)).collect() };
        for l in dir.layers.iter_mut() {
            *l = &*l * (1.0 / l.norm_l2());
        }
        for t in [1e-3, 1e-2] {
            assert!(along(&p_wd, &dir, t) > 0.0, "weight decay: f decreased along a direction at t = {t}");
        }
    }
    // ... yet zero is not optimal: training at a fixed width (the only thing gonn does here) gets below f(0).
    let fit = FitParams::new(lambda).init_width(3).seed(1).threads(1).validate().unwrap().fit(&wd, &obs).unwrap();
    assert!(fit.certificate.objective < f0 - 1e-3, "{} vs f(0) = {f0}", fit.certificate.objective);
    assert!(fit.certificate.note.is_some() && fit.certificate.gap_bound.is_none());
    // Matched regularizer: the polar at zero exceeds 1 and its subnetwork decreases f for small t.
    let ev = p_m.evaluate(&zero);
    let q = Mat::from_fn(n, c, |i, j| -ev.g[(i, j)] / lambda);
    let polar = matched.polar(q.as_ref(), &gonn::core::polar::PolarOptions::default(), &mut rng);
    assert!(polar.lower > 1.0, "polar at zero {}", polar.lower);
    // Near zero, f(t w) - f(0) is about lambda (t^3 (1 - rho)) for the product and lambda (3/2 t^2 - rho t^3) for
    // weight decay: with t = 0.1 / rho or 0.3 / rho the first decreases and the second increases.
    for t in [0.1, 0.3].map(|t| t / polar.lower) {
        assert!(along(&p_m, &polar.atom, t) < 0.0, "matched: the polar subnetwork must decrease f at t = {t}");
        // The same direction with weight decay still increases f: the mismatch, not the direction, decides.
        assert!(along(&p_wd, &polar.atom, t) > 0.0, "weight decay along the polar subnetwork at t = {t}");
    }
}

/// The heuristic polar's bracket: the lower bound is attained by its subnetwork (unit layer norms) and no random
/// subnetwork beats the proven upper bound `||Q||_2` times the stack's Lipschitz constant.
#[test]
fn heuristic_polar_bracket_is_consistent() {
    let mut rng = Rng::new(5);
    for (spec, act, image, d) in cases() {
        let (n, c) = (12, 2);
        let net = build(spec, act, image, d, n, c, &mut rng);
        let q = rng.normal_mat(n, c);
        let polar = net.polar(q.as_ref(), &gonn::core::polar::PolarOptions::default(), &mut rng);
        assert!(polar.heuristic && !polar.exact);
        let upper = polar.upper.unwrap();
        assert!(polar.lower <= upper * (1.0 + 1e-12), "{spec}: {} > {upper}", polar.lower);
        for l in &polar.atom.layers {
            assert!((l.norm_l2() - 1.0).abs() < 1e-9, "{spec}: atom layers must have unit norm");
        }
        let attained = functional(&net, &polar.atom, q.as_ref());
        assert!(
            (attained - polar.lower).abs() <= 1e-8 * (1.0 + polar.lower.abs()),
            "{spec}: {attained} vs {}",
            polar.lower
        );
        for _ in 0..50 {
            let mut w = random_weights(&net, 1, &mut rng);
            for l in w.layers.iter_mut() {
                *l = &*l * (1.0 / l.norm_l2());
            }
            let v = functional(&net, &w, q.as_ref());
            assert!(v <= upper, "{spec}: a random subnetwork reaches {v} > proven upper {upper}");
        }
    }
}

/// Minibatch descent decreases the full objective, and full-batch descent reaches exact zeros (whole subnetworks
/// pruned) when lambda is large.
#[test]
fn descent_decreases_and_prunes() {
    let mut rng = Rng::new(8);
    let (n, d, c) = (60, 5, 2);
    let x = rng.normal_mat(n, d);
    let y = rng.normal_mat(n, c);
    let obs = Observations::new(y, None).unwrap();
    let net = DeepNetwork::new(
        x.as_ref(),
        c,
        Architecture::parse("mlp:4", Activation::Relu).unwrap(),
        None,
        true,
        Regularizer::Powers,
    )
    .unwrap();
    for (lambda, batch) in [(0.5, None), (0.5, Some(16)), (40.0, None)] {
        let p = gonn::core::problem::Problem { net: &net, loss: Loss::Squared, obs: &obs, lambda, par: Par::Seq };
        let mut w = random_weights(&net, 6, &mut rng);
        w.scale_all(0.2);
        let f0 = p.objective(&w);
        let mut opts = gonn::core::descent::DescentOptions::default();
        opts.batch_size = batch;
        opts.max_sweeps = 200;
        let info = p.net.descend(&p, &mut w, &opts);
        assert!(info.objective < f0 && (p.objective(&w) - info.objective).abs() <= 1e-9 * f0.abs());
        if lambda > 10.0 {
            assert!(w.width() < 6, "a large lambda must zero out whole subnetworks");
        }
        // Balanced at the end: for the sum of powers, equal layer norms in each subnetwork.
        for i in 0..w.width() {
            let ns: Vec<f64> = w.layers.iter().map(|l| gonn::core::norms::l2(l.col_as_slice(i))).collect();
            assert!(ns.iter().all(|v| (v - ns[0]).abs() <= 1e-9 * ns[0]), "{ns:?}");
        }
    }
}
