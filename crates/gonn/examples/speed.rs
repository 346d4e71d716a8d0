//! Timing script: the certified fit of a 1000 x 1000 rank-10 noisy matrix against one dense SVD of it, and the
//! matrix-completion fit used against SoftImpute. Prints a table with ratios measured in the same run.
//!
//! `cargo run --release -p gonn --example speed [-- THREADS]`

use std::time::Instant;

use gonn::faer::Par;
use gonn::prelude::*;

fn best_of<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = None;
    for _ in 0..reps {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(v);
    }
    (best, out.unwrap())
}

fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let par = gonn::meta::parallelism(threads);
    gonn::faer::set_global_parallelism(par);
    let (m, n, rank) = (1000, 1000, 10);
    let data = gonn::datasets::low_rank(m, n, rank, 1.0, 1.0, 7);
    let y = data.y;
    let (t_svd, sv) = best_of(3, || y.singular_values().unwrap());
    let lambda = 0.5 * (sv[rank - 1] + sv[rank]);
    let net = MatrixFactorization::new(m, n, [LayerNorm::new(Norm::L2, false); 2]);
    let obs = Observations::new(y.clone(), None).unwrap();
    let params = FitParams::new(lambda).tol(1e-6).threads(threads).validate().unwrap();
    let (t_fit, model) = best_of(3, || params.fit(&net, &obs).unwrap());
    let optimum: f64 =
        sv.iter().map(|&s| if s > lambda { 0.5 * lambda * lambda + lambda * (s - lambda) } else { 0.5 * s * s }).sum();
    println!("threads: {threads} (0 = all), par = {par:?}");
    println!("dense SVD (singular values only) of 1000 x 1000: {t_svd:.3} s");
    println!(
        "certified fit (rank {}, status {}, rel. gap {:.1e}, |f - F*|/F* = {:.1e}, {} outer): {t_fit:.3} s",
        model.weights.width(),
        model.certificate.status,
        model.certificate.relative_gap.unwrap_or(f64::NAN),
        (model.certificate.objective - optimum).abs() / optimum,
        model.outer_iterations
    );
    println!("ratio fit / SVD: {:.2}", t_fit / t_svd);
    // One local-descent sweep at the optimum's width and its matrix-multiply rate.
    let p = gonn::core::problem::Problem { net: &net, loss: Loss::Squared, obs: &obs, lambda, par };
    let mut w = model.weights.clone();
    let opts = {
        let mut o = gonn::core::descent::DescentOptions::default();
        o.max_sweeps = 1;
        o.tol = 0.0;
        o
    };
    let (t_sweep, _) = best_of(5, || p.net.descend(&p, &mut w, &opts));
    // Fully observed squared loss: one sweep is one product Y V and one Y^T U, each 2 m n r flops.
    let flops = 2.0 * 2.0 * (m * n * rank) as f64;
    let a = gonn::numerics::rng::Rng::new(1).normal_mat(m, rank);
    let (t_mm, _) = best_of(5, || gonn::numerics::linalg::mul_nt(a.as_ref(), a.as_ref(), par));
    let mm_rate = 2.0 * (m * m * rank) as f64 / t_mm / 1e9;
    println!(
        "one descent sweep (r = {rank}): {:.4} s, {:.1} GFLOP/s in its products; plain {m}x{rank} * {rank}x{m} product: {mm_rate:.1} GFLOP/s",
        t_sweep,
        flops / t_sweep / 1e9
    );
    let _ = Par::Seq;
}
