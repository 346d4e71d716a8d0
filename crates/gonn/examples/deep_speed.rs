//! Timing of the deep family's pieces on the shipped digits data: one forward+backward pass of `r` parallel
//! subnetworks, one heuristic polar, one local descent. `cargo run --release -p gonn --example deep_speed`.

use std::time::Instant;

use faer::{Mat, Par};
use gonn::io::load_supervised;
use gonn::loss::Loss;
use gonn::objective::Problem;
use gonn::polar::PolarOptions;
use gonn::rng::Rng;
use gonn::subnetwork::deep::{Activation, Architecture, DeepNetwork};
use gonn::subnetwork::{Regularizer, Subnetwork, Weights};

fn main() -> gonn::Result<()> {
    let data = load_supervised(std::path::Path::new("data/digits.npz"), None, "X", "Y", Loss::Softmax, None)?;
    // Standardized features (as `--standardize` does); constant pixels stay 0.
    let (n, d) = (data.x.nrows(), data.x.ncols());
    let mean: Vec<f64> = (0..d).map(|j| data.x.col(j).iter().sum::<f64>() / n as f64).collect();
    let sd: Vec<f64> = (0..d)
        .map(|j| (data.x.col(j).iter().map(|v| (v - mean[j]).powi(2)).sum::<f64>() / n as f64).sqrt().max(1e-12))
        .collect();
    let x = Mat::from_fn(n, d, |i, j| (data.x[(i, j)] - mean[j]) / sd[j]);
    let par = Par::Seq;
    for (spec, r) in [("mlp:16", 8), ("mlp:32,16", 8), ("cnn:c8k3,pool2", 4)] {
        let arch = Architecture::parse(spec, Activation::Relu)?;
        let net = DeepNetwork::new(x.as_ref(), 10, arch, Some((8, 8, 1)), true, Regularizer::Product)?;
        let mut rng = Rng::new(0);
        let w = Weights { layers: net.layer_dims().iter().map(|&d| rng.normal_mat(d, r)).collect() };
        let g = rng.normal_mat(x.nrows(), 10);
        let t = Instant::now();
        let reps = 10;
        for _ in 0..reps {
            std::hint::black_box(net.gradients(&w, g.as_ref(), par));
        }
        let fb = t.elapsed().as_secs_f64() / reps as f64;
        let t = Instant::now();
        let polar = net.polar(g.as_ref(), &PolarOptions::new(false, par), &mut rng);
        let tp = t.elapsed().as_secs_f64();
        let p = Problem { net: &net, loss: Loss::Softmax, obs: &data.obs, lambda: 5.0, par };
        // Start as the meta-algorithm would: r subnetworks added one by one from the polar.
        let mut w2 = Weights::empty(&net.layer_dims());
        for _ in 0..r {
            let ev = p.evaluate(&w2);
            let q = Mat::from_fn(ev.g.nrows(), ev.g.ncols(), |i, j| -ev.g[(i, j)] / p.lambda);
            let polar = net.polar(q.as_ref(), &PolarOptions::new(false, par), &mut rng);
            gonn::growth::grow(&p, &mut w2, &polar.atom, None);
        }
        let f0 = p.objective(&w2);
        let t = Instant::now();
        let mut opts = gonn::descent::DescentOptions::default();
        opts.max_sweeps = 200;
        let info = gonn::descent::local_descent(&p, &mut w2, &opts);
        let td = t.elapsed().as_secs_f64();
        println!(
            "{spec:>16} r={r}: forward+backward {:.2} ms, polar {:.2} s (value {:.3}), descent {:.2} s ({} sweeps, f {:.4} -> {:.4})",
            fb * 1e3,
            tp,
            polar.lower,
            td,
            info.sweeps,
            f0,
            info.objective
        );
    }
    Ok(())
}
