//! Deep and convolutional subnetworks: hand-written backward passes against finite differences, Euler's identity
//! for homogeneous functions, the parallel (sum over subnetworks) structure, and the degree-mismatch proposition
//! (THEORY.md sections 1 and 2).

use faer::{Mat, MatRef, Par};
use gonn::linalg::dot;
use gonn::prelude::*;
use gonn::subnetwork::deep::{Activation, Architecture, DeepNetwork};
use gonn::subnetwork::Regularizer;

/// Architectures covering every layer type: dense, convolution, ReLU, leaky ReLU, max-out, max and mean pooling.
fn cases() -> Vec<(&'static str, Activation, Option<(usize, usize, usize)>, usize)> {
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
        for k in 0..net.degree() {
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
            let an = dot(grads[k].as_ref(), dir.as_ref());
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
        for k in 0..kdeg {
            let e = dot(grads[k].as_ref(), w.layers[k].as_ref());
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
