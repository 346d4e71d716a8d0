//! One conformance suite run for every family (THEORY.md sections 1, 2 and 6): finite-difference layer gradients,
//! homogeneity of degree `K` and of degree 1 in each layer, Euler's identity, the polar bracket against sampled
//! unit-`theta` subnetworks with `lower` attained by the returned atom, the output Gram matrix against the
//! per-subnetwork outputs, and the weights' model-file round trip.

use faer::{Mat, Par};
use gonn::core::polar::PolarOptions;
use gonn::core::theta;
use gonn::families::deep::{Activation, Architecture, DeepNetwork};
use gonn::io::{load_model, save_model, ModelFile};
use gonn::numerics::linalg::dot;
use gonn::prelude::*;

/// Every family with its model-file kind (matched regularizers only: the suite checks `theta = 1` atoms).
/// A family, its name, its model-file kind and (deep stacks) its layers' `[fan_in, fan_out]`.
type Case = (&'static str, &'static str, Box<dyn Family>, Option<Vec<(usize, usize)>>);

fn families() -> Vec<Case> {
    let mut rng = Rng::new(11);
    let x2 = rng.normal_mat(30, 2);
    let x5 = rng.normal_mat(25, 5);
    let img = rng.normal_mat(12, 16);
    let l2 = LayerNorm::new(Norm::L2, false);
    let mlp = Architecture::parse("mlp:4,3", Activation::Relu).unwrap();
    let leaky = Architecture::parse("mlp:3", Activation::Leaky(0.2)).unwrap();
    let cnn = Architecture::parse("cnn:c2k3,pool2", Activation::Relu).unwrap();
    let powers = gonn::core::Regularizer::Powers;
    let shapes_mlp = mlp.layer_shapes(5, None, true, 2).unwrap();
    let shapes_leaky = leaky.layer_shapes(2, None, false, 1).unwrap();
    let shapes_cnn = cnn.layer_shapes(16, Some((4, 4, 1)), true, 2).unwrap();
    vec![
        ("factor l2,l2", "factor", Box::new(MatrixFactorization::new(7, 5, [l2; 2])) as Box<dyn Family>, None),
        (
            "factor l1,l2 nonneg",
            "factor",
            Box::new(MatrixFactorization::new(6, 4, [LayerNorm::new(Norm::L1, true), LayerNorm::new(Norm::L2, false)])),
            None,
        ),
        ("cp", "cp", Box::new(CpTensor::new(4, 3, 5)), None),
        (
            "relu 2-D + bias",
            "relu",
            Box::new(ReluNetwork::new(x2.as_ref(), 1, true, Norm::L2, PolarMode::Auto).unwrap()),
            None,
        ),
        (
            "relu 5-D, l1 outputs",
            "relu",
            Box::new(ReluNetwork::new(x5.as_ref(), 2, true, Norm::L1, PolarMode::Auto).unwrap()),
            None,
        ),
        (
            "mlp:4,3",
            "mlp",
            Box::new(DeepNetwork::new(x5.as_ref(), 2, mlp, None, true, gonn::core::Regularizer::Product).unwrap()),
            Some(shapes_mlp),
        ),
        (
            "mlp:3 leaky, powers",
            "mlp",
            Box::new(DeepNetwork::new(x2.as_ref(), 1, leaky, None, false, powers).unwrap()),
            Some(shapes_leaky),
        ),
        (
            "cnn:c2k3,pool2",
            "cnn",
            Box::new(
                DeepNetwork::new(img.as_ref(), 2, cnn, Some((4, 4, 1)), true, gonn::core::Regularizer::Product)
                    .unwrap(),
            ),
            Some(shapes_cnn),
        ),
    ]
}

/// `r` random subnetworks (nonnegative layers where the norm requires it).
fn random_weights(net: &dyn Family, r: usize, rng: &mut Rng) -> Weights {
    let mut w = Weights { layers: net.layer_dims().iter().map(|&d| rng.normal_mat(d, r)).collect() };
    for (l, n) in w.layers.iter_mut().zip(net.layer_norms()) {
        if n.nonneg {
            for j in 0..l.ncols() {
                l.col_as_slice_mut(j).iter_mut().for_each(|v| *v = v.abs());
            }
        }
    }
    w
}

/// Each layer of each subnetwork scaled to unit norm: `theta = 1` for the product and powers forms.
fn unit_theta(net: &dyn Family, w: &mut Weights) {
    for (l, n) in w.layers.iter_mut().zip(net.layer_norms()) {
        for j in 0..l.ncols() {
            let s = n.value(l.col_as_slice(j));
            l.col_as_slice_mut(j).iter_mut().for_each(|v| *v /= s);
        }
    }
}

fn scaled(w: &Weights, layer: Option<usize>, a: f64) -> Weights {
    let mut w = w.clone();
    for (k, l) in w.layers.iter_mut().enumerate() {
        if layer.is_none_or(|j| j == k) {
            for j in 0..l.ncols() {
                l.col_as_slice_mut(j).iter_mut().for_each(|v| *v *= a);
            }
        }
    }
    w
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-12)
}

fn close(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let d = a - b;
    dot(d.as_ref(), d.as_ref()).sqrt() / dot(a.as_ref(), a.as_ref()).sqrt().max(1e-12)
}

#[test]
fn every_family_conforms() {
    let dir = std::env::temp_dir().join(format!("gonn-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, kind, net, shapes) in families() {
        let net = net.as_ref();
        let mut rng = Rng::new(5);
        let r = 3;
        let w = random_weights(net, r, &mut rng);
        let (m, n) = net.output_shape();
        let g = rng.normal_mat(m, n);
        let phi = net.forward(&w, Par::Seq);
        assert_eq!((phi.nrows(), phi.ncols()), (m, n), "{name}: output shape");
        let gphi = dot(g.as_ref(), phi.as_ref());
        let kdeg = net.degree();
        assert_eq!(kdeg, w.layers.len(), "{name}: one degree per layer");

        // Homogeneity: Phi(a W) = a^K Phi(W), and degree 1 in each layer.
        let a = 1.7;
        let all = net.forward(&scaled(&w, None, a), Par::Seq);
        assert!(close(&(&phi * faer::Scale(a.powi(kdeg as i32))), &all) < 1e-10, "{name}: degree K");
        for k in 0..kdeg {
            let one = net.forward(&scaled(&w, Some(k), a), Par::Seq);
            assert!(close(&(&phi * faer::Scale(a)), &one) < 1e-10, "{name}: degree 1 in layer {k}");
        }

        // Finite differences of <G, Phi(W)> along random directions, and Euler's identity per layer.
        for k in 0..kdeg {
            let grad = net.layer_gradient(&w, k, g.as_ref(), Par::Seq);
            assert_eq!((grad.nrows(), grad.ncols()), (w.layers[k].nrows(), r), "{name}: gradient shape");
            assert!(rel(dot(grad.as_ref(), w.layers[k].as_ref()), gphi) < 1e-9, "{name}: Euler, layer {k}");
            let dir = rng.normal_mat(w.layers[k].nrows(), r);
            let h = 1e-6;
            let at = |t: f64| {
                let mut v = w.clone();
                v.layers[k] = &v.layers[k] + &dir * faer::Scale(t);
                dot(g.as_ref(), net.forward(&v, Par::Seq).as_ref())
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            let an = dot(grad.as_ref(), dir.as_ref());
            assert!((fd - an).abs() <= 1e-5 * (1.0 + an.abs()), "{name}: layer {k} gradient {an} vs differences {fd}");
        }

        // Output Gram = Gram of the per-subnetwork outputs.
        let gram = net.output_gram(&w, Par::Seq);
        let single = |i: usize| {
            let v = Weights { layers: w.layers.iter().map(|l| l.subcols(i, 1).to_owned()).collect() };
            net.forward(&v, Par::Seq)
        };
        let outs: Vec<Mat<f64>> = (0..r).map(single).collect();
        for i in 0..r {
            for j in 0..r {
                let want = dot(outs[i].as_ref(), outs[j].as_ref());
                assert!(rel(gram[(i, j)], want) < 1e-9, "{name}: Gram ({i}, {j}) {} vs {want}", gram[(i, j)]);
            }
        }
        let sum = outs.iter().fold(Mat::<f64>::zeros(m, n), |acc, o| acc + o);
        assert!(close(&phi, &sum) < 1e-10, "{name}: Phi is the sum of the subnetworks");

        // The polar bracket: lower is attained by the atom at theta = 1, and no sampled unit atom beats upper.
        let q = rng.normal_mat(m, n);
        let opts = PolarOptions::new(true, Par::Seq);
        let polar = net.polar(q.as_ref(), &opts, &mut Rng::new(3));
        let th = theta(net, &polar.atom);
        assert_eq!(polar.atom.width(), 1, "{name}: one atom");
        assert!((th[0] - 1.0).abs() < 1e-9, "{name}: atom theta {}", th[0]);
        let attained = dot(q.as_ref(), net.forward(&polar.atom, Par::Seq).as_ref());
        assert!(rel(attained, polar.lower) < 1e-9, "{name}: lower {} but the atom gives {attained}", polar.lower);
        let upper = polar.upper.expect("every family proves an upper bound when asked");
        assert!(polar.lower <= upper * (1.0 + 1e-12), "{name}: bracket [{}, {upper}]", polar.lower);
        let mut samples = random_weights(net, 200, &mut rng);
        unit_theta(net, &mut samples);
        for i in 0..200 {
            let v = Weights { layers: samples.layers.iter().map(|l| l.subcols(i, 1).to_owned()).collect() };
            let value = dot(q.as_ref(), net.forward(&v, Par::Seq).as_ref());
            assert!(
                value <= upper * (1.0 + 1e-9),
                "{name}: a sampled atom gives {value} above the upper bound {upper}"
            );
            if polar.exact {
                assert!(
                    value <= polar.lower * (1.0 + 1e-9) + 1e-12,
                    "{name}: exact polar {} beaten by {value}",
                    polar.lower
                );
            }
        }

        // Weights round-trip through a model file exactly.
        let path = dir.join(format!("{}.safetensors", name.replace([' ', ',', ':', '+'], "_")));
        let mut metadata = std::collections::HashMap::new();
        if let Some(shapes) = shapes {
            metadata.insert("layer_shapes".to_string(), serde_json::to_string(&shapes).unwrap());
        }
        save_model(&path, &ModelFile { kind: kind.into(), weights: w.clone(), metadata }).unwrap();
        let back = load_model(&path).unwrap();
        assert_eq!(back.kind, kind);
        for (a, b) in w.layers.iter().zip(&back.weights.layers) {
            assert_eq!((a.nrows(), a.ncols()), (b.nrows(), b.ncols()), "{name}: round-trip shape");
            assert!(
                a.col_iter().zip(b.col_iter()).all(|(x, y)| x.iter().zip(y.iter()).all(|(u, v)| u == v)),
                "{name}: round trip"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
