//! How long the exact ReLU polar (arrangement enumeration) takes as the number of samples grows, for 1-D, 2-D and 3-D
//! inputs plus bias, next to the heuristic polar. The first call on a network builds the `c`-independent part of the
//! enumeration (kept while it fits in memory); a second call with another `q` shows the cost of each later polar of
//! a fit. Run: `cargo run --release -p gonn --example relu_polar_limits [-- D N1 N2 ...]` (the default table, or one
//! input dimension `D` at the sizes given).

use std::time::Instant;

use gonn::core::polar::PolarOptions;
use gonn::faer::Par;
use gonn::prelude::*;

fn main() {
    println!("| inputs | n | exact polar, first call (s) | exact polar, next call (s) | heuristic polar (s) | heuristic / exact value |");
    println!("|---|---|---|---|---|---|");
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("D N1 N2 ...: integers")).collect();
    let (dims, sizes, all) = match args.split_first() {
        Some((d, ns)) if !ns.is_empty() => (vec![*d], ns.to_vec(), false),
        _ => (vec![1, 2, 3], vec![100, 200, 300, 600, 1000, 3000], true),
    };
    for d in dims {
        for &n in &sizes {
            if all && ((d == 2 && n > 1000) || (d == 3 && n > 600)) {
                continue;
            }
            let mut rng = Rng::new(n as u64);
            let x = rng.normal_mat(n, d);
            let q = rng.normal_mat(n, 1);
            let mut opts = PolarOptions::new(true, Par::Seq);
            opts.restarts = 8;
            let exact = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Exact).unwrap();
            let heur = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Heuristic).unwrap();
            let t = Instant::now();
            let pe = exact.polar(q.as_ref(), &opts, &mut rng);
            let te = t.elapsed().as_secs_f64();
            let q2 = rng.normal_mat(n, 1);
            let t = Instant::now();
            let _ = exact.polar(q2.as_ref(), &opts, &mut rng);
            let te2 = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let ph = heur.polar(q.as_ref(), &opts, &mut rng);
            let th = t.elapsed().as_secs_f64();
            println!("| {d}-D + bias | {n} | {te:.4} | {te2:.4} | {th:.4} | {:.6} |", ph.lower / pe.lower);
        }
    }
}
