//! Forward + backward time of `r` parallel deep or convolutional subnetworks on the shipped digits images (one
//! thread, f64), as JSON lines for `bench/deep_benchmark.py`, which runs the same networks in PyTorch.
//!
//! `cargo run --release -p gonn --example deep_speed [-- REPEATS]`

use std::time::Instant;

use faer::{Mat, Par};
use gonn::io::load_supervised;
use gonn::loss::Loss;
use gonn::rng::Rng;
use gonn::subnetwork::deep::{Activation, Architecture, DeepNetwork};
use gonn::subnetwork::{Regularizer, Subnetwork, Weights};

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
        let (mut flops, mut rows, mut first) = (0.0, n as f64, true);
        for (k, (fi, fo)) in net.layer_shapes().iter().enumerate() {
            if let Some((h, wd, _, kk)) = conv_geometry(&net, k) {
                rows = (n * (h + 1 - kk) * (wd + 1 - kk)) as f64;
            } else if k > 0 {
                rows = n as f64;
            }
            let fwd = 2.0 * rows * (*fi * *fo * r) as f64;
            flops += if first { 2.0 * fwd } else { 3.0 * fwd };
            first = false;
        }
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

/// `(h, w, c, k)` of weight layer `k` when it is a convolution on an `h x w x c` input.
fn conv_geometry(net: &DeepNetwork, k: usize) -> Option<(usize, usize, usize, usize)> {
    let mut geom = net.image()?;
    let mut layer = 0;
    for st in &net.architecture().stages {
        match *st {
            gonn::subnetwork::deep::Stage::Conv { channels, kernel } => {
                if layer == k {
                    return Some((geom.0, geom.1, geom.2, kernel));
                }
                geom = (geom.0 + 1 - kernel, geom.1 + 1 - kernel, channels);
                layer += 1;
            }
            gonn::subnetwork::deep::Stage::Pool { size, .. } => geom = (geom.0 / size, geom.1 / size, geom.2),
            gonn::subnetwork::deep::Stage::Dense { .. } => return None,
        }
    }
    None
}
