//! Times a certified sparse completion fit on MovieLens-shaped synthetic ratings (Zipf-like popularity, ratings
//! 1..5 from a rank-10 model plus noise): `cargo run --release --example completion_scale -- M N NNZ LAMBDA
//! [BIASES] [THREADS]`.

use std::ops::ControlFlow;

use gonn::meta::completion::{fit_completion, Biases, CompletionParams};
use gonn::numerics::rng::Rng;
use gonn::numerics::sparse::SparseRatings;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: f64| a.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(d);
    let (m, n, nnz) = (num(0, 6040.0) as usize, num(1, 3706.0) as usize, num(2, 1e6) as usize);
    let lambda = num(3, 100.0);
    let biases: Biases = a.get(4).map_or("both", |s| s.as_str()).parse().unwrap();
    let threads = num(5, 2.0) as usize;
    let t0 = std::time::Instant::now();
    let mut rng = Rng::new(1);
    // Zipf-like popularity: weight 1 / (rank + 10)^0.8, sampled through the cumulative sums.
    let cum = |k: usize| {
        let mut c = Vec::with_capacity(k);
        let mut s = 0.0;
        for i in 0..k {
            s += 1.0 / ((i + 10) as f64).powf(0.8);
            c.push(s);
        }
        c
    };
    let (cu, ci) = (cum(m), cum(n));
    let pick =
        |c: &Vec<f64>, rng: &mut Rng| c.partition_point(|&x| x < rng.uniform() * c[c.len() - 1]).min(c.len() - 1);
    let rank = 10;
    let uf: Vec<f64> = (0..m * rank).map(|_| rng.normal() * 0.35).collect();
    let vf: Vec<f64> = (0..n * rank).map(|_| rng.normal() * 0.35).collect();
    let ub: Vec<f64> = (0..m).map(|_| 0.4 * rng.normal()).collect();
    let vb: Vec<f64> = (0..n).map(|_| 0.4 * rng.normal()).collect();
    let mut seen = std::collections::HashSet::new();
    let (mut rows, mut cols, mut vals) = (vec![], vec![], vec![]);
    while vals.len() < nnz {
        let (i, j) = (pick(&cu, &mut rng), pick(&ci, &mut rng));
        if !seen.insert((i as u64) << 32 | j as u64) {
            continue;
        }
        let z: f64 = (0..rank).map(|k| uf[i * rank + k] * vf[j * rank + k]).sum();
        let y = (3.5 + ub[i] + vb[j] + z + 0.8 * rng.normal()).round().clamp(1.0, 5.0);
        rows.push(i as u32);
        cols.push(j as u32);
        vals.push(y);
    }
    let data = SparseRatings::from_triplets(m, n, &rows, &cols, &vals).unwrap();
    eprintln!("generated {} x {} with {} ratings in {:.1} s", m, n, data.nnz(), t0.elapsed().as_secs_f64());
    let mut p = CompletionParams::new(lambda);
    p.biases = biases;
    p.threads = threads;
    p.max_seconds = num(6, 600.0);
    let t1 = std::time::Instant::now();
    let fit = fit_completion(&data, &p, None, &mut |r| {
        eprintln!("{}", r.table_row());
        ControlFlow::Continue(())
    })
    .unwrap();
    eprintln!(
        "{} rank {} objective {:.10e} rel gap {:?} in {:.2} s",
        fit.certificate.status,
        fit.rank(),
        fit.certificate.objective,
        fit.certificate.relative_gap,
        t1.elapsed().as_secs_f64()
    );
}
