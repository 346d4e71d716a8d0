//! Forward + backward time of `r` parallel deep or convolutional subnetworks on the shipped digits images (one
//! thread, f64), as JSON lines for `bench/deep_benchmark.py`, which runs the same networks in PyTorch.
//!
//! `cargo run --release -p gonn --example deep_speed [-- REPEATS]`

use std::time::Instant;

use faer::{Mat, Par};
use gonn::core::loss::Loss;
use gonn::core::{Regularizer, Subnetwork, Weights};
use gonn::families::deep::{Activation, Architecture, DeepNetwork};
use gonn::io::load_supervised;
use gonn::numerics::rng::Rng;

/// The configurations timed: architecture and number of subnetworks.
pub const CONFIGS: [(&str, usize); 8] = [
    ("mlp:16", 4),
    ("mlp:16", 32),
    ("mlp:64", 8),
    ("mlp:32,16", 8),
    ("mlp:32,16", 32),
    ("cnn:c8k3,pool2", 4),
    ("cnn:c8k3,pool2", 16),
    ("cnn:c8k3,pool2,c16k2", 8),
];

fn main() -> gonn::Result<()> {
    let repeats: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let data = load_supervised(std::path::Path::new("data/digits.npz"), None, "X", "Y", Loss::Softmax, None)?;
    let x = Mat::from_fn(data.x.nrows(), data.x.ncols(), |i, j| data.x[(i, j)] / 16.0);
    let n = x.nrows();
    for (spec, r) in CONFIGS {
        let arch = Architecture::parse(spec, Activation::Relu)?;
        let net = DeepNetwork::new(x.as_ref(), 10, arch, Some((8, 8, 1)), true, Regularizer::Product)?;
        let mut rng = Rng::new(0);
        let w = Weights { layers: net.layer_dims().iter().map(|&d| rng.normal_mat(d, r)).collect() };
        let g = rng.normal_mat(n, 10);
        // Multiply-adds of the forward pass; the backward pass does about twice as many (once for the weights,
        // once for the layer input), except for the first layer, whose input needs no gradient.
        let flops: f64 = net
            .layer_shapes()
            .iter()
            .zip(net.layer_positions())
            .enumerate()
            .map(|(k, ((fi, fo), pos))| {
                let fwd = 2.0 * (n * pos * fi * fo * r) as f64;
                if k == 0 {
                    2.0 * fwd
                } else {
                    3.0 * fwd
                }
            })
            .sum();
        std::hint::black_box(net.gradients(&w, g.as_ref(), Par::Seq));
        let mut best = f64::INFINITY;
        for _ in 0..repeats {
            let t = Instant::now();
            std::hint::black_box(net.gradients(&w, g.as_ref(), Par::Seq));
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{{\"model\": \"{spec}\", \"r\": {r}, \"n\": {n}, \"ms\": {:.3}, \"gflops\": {:.3}}}",
            best * 1e3,
            flops / best * 1e-9
        );
    }
    Ok(())
}
