//! Criterion benchmarks of the hot paths: one local-descent sweep, each exact polar, and a whole certified fit of a
//! 1000 x 1000 rank-10 noisy matrix next to one dense SVD of the same matrix (the baseline, same run).
//!
//! `cargo bench -p gonn --bench factorization`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use gonn::core::descent::DescentOptions;
use gonn::core::polar::PolarOptions;
use gonn::core::problem::Problem;
use gonn::faer::{Mat, Par};
use gonn::families::factor::polar::factor_polar;
use gonn::numerics::spectral::{sigma_max_upper, small_gram};
use gonn::prelude::*;

const N: usize = 1000;
const RANK: usize = 10;

fn setup() -> (Mat<f64>, f64, Vec<f64>) {
    let y = gonn::datasets::low_rank(N, N, RANK, 1.0, 1.0, 7).y;
    let sv = y.singular_values().unwrap();
    let lambda = 0.5 * (sv[RANK - 1] + sv[RANK]);
    (y, lambda, sv)
}

fn benches(c: &mut Criterion) {
    let par = Par::rayon(0);
    gonn::faer::set_global_parallelism(par);
    let (y, lambda, _) = setup();
    let l2 = LayerNorm::new(Norm::L2, false);
    let net = MatrixFactorization::new(N, N, [l2, l2]);
    let obs = Observations::new(y.clone(), None).unwrap();
    let params = FitParams::new(lambda).tol(1e-6).validate().unwrap();

    let mut g = c.benchmark_group("certified_fit_1000x1000_rank10");
    g.sample_size(10);
    g.bench_function("dense_svd_singular_values (baseline)", |b| b.iter(|| black_box(y.singular_values().unwrap())));
    g.bench_function("gonn_certified_fit", |b| b.iter(|| black_box(params.fit(&net, &obs).unwrap())));
    g.finish();

    let model = params.fit(&net, &obs).unwrap();
    let p = Problem { net: &net, loss: Loss::Squared, obs: &obs, lambda, par };
    let mut one = DescentOptions::default();
    one.max_sweeps = 1;
    one.tol = 0.0;
    let mut g = c.benchmark_group("descent_sweep_1000x1000_r10");
    g.sample_size(20);
    g.bench_function("squared_full (exact block solves)", |b| {
        b.iter(|| {
            let mut w = model.weights.clone();
            black_box(p.net.descend(&p, &mut w, &one))
        })
    });
    let masked = gonn::datasets::low_rank(N, N, RANK, 1.0, 0.3, 7);
    let obs_m = Observations::new(masked.y, masked.mask).unwrap();
    let pm = Problem { net: &net, loss: Loss::Squared, obs: &obs_m, lambda, par };
    g.bench_function("squared_masked (accelerated prox-gradient)", |b| {
        b.iter(|| {
            let mut w = model.weights.clone();
            black_box(pm.net.descend(&pm, &mut w, &one))
        })
    });
    g.finish();

    // Polars on the residual direction Q = (Y - Z) / lambda at the fitted model.
    let z = net.forward(&model.weights, par);
    let q = Mat::from_fn(N, N, |i, j| (y[(i, j)] - z[(i, j)]) / lambda);
    let mut rng = Rng::new(1);
    let opts = PolarOptions::new(true, par);
    let mut g = c.benchmark_group("polar_1000x1000");
    g.sample_size(10);
    g.bench_function("l2_l2_lanczos_plus_cholesky_proof", |b| {
        b.iter(|| black_box(factor_polar(q.as_ref(), l2, l2, &opts, &mut rng)))
    });
    g.bench_function("l2_l2_gram_and_cholesky_only", |b| {
        b.iter(|| black_box(sigma_max_upper(&small_gram(q.as_ref(), par), N, 1.0)))
    });
    for (name, a, bn) in [
        ("l1_l1_entry_scan", Norm::L1, Norm::L1),
        ("l2_l1_column_scan", Norm::L2, Norm::L1),
        ("l1l2_l1_column_scan", Norm::L1L2 { gamma: 0.5 }, Norm::L1),
    ] {
        let (nu, nv) = (LayerNorm::new(a, false), LayerNorm::new(bn, false));
        g.bench_function(name, |b| b.iter(|| black_box(factor_polar(q.as_ref(), nu, nv, &opts, &mut rng))));
    }
    g.finish();
}

criterion_group!(factorization, benches);
criterion_main!(factorization);
