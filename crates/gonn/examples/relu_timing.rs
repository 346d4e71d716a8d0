use gonn::io::load_supervised;
use gonn::polar::PolarOptions;
use gonn::prelude::*;
use std::time::Instant;
fn main() {
    let d =
        load_supervised(std::path::Path::new("data/breast_cancer.npz"), None, "X", "Y", Loss::Logistic, None).unwrap();
    let mut x = d.x.clone();
    for j in 0..x.ncols() {
        let m: f64 = x.col(j).iter().sum::<f64>() / x.nrows() as f64;
        let s = (x.col(j).iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.nrows() as f64).sqrt();
        for i in 0..x.nrows() {
            x[(i, j)] = (x[(i, j)] - m) / s;
        }
    }
    let net = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Auto).unwrap();
    let mut rng = Rng::new(1);
    let q = rng.normal_mat(x.nrows(), 1);
    let t = Instant::now();
    let p = net.polar(q.as_ref(), &PolarOptions::new(false, faer::Par::Seq), &mut rng);
    println!("polar {:.3}s value {}", t.elapsed().as_secs_f64(), p.lower);
    let mut calls = 0;
    let t = Instant::now();
    let params = FitParams::new(1.0).loss(Loss::Logistic).max_outer(8).validate().unwrap();
    let m = params
        .fit_from(&net, &d.obs, None, &mut |r: &IterationRecord| {
            calls += 1;
            eprintln!(
                "{} r={} f={} lo={} sweeps={} t={:.2}",
                r.outer, r.subnetworks, r.objective, r.polar_lower, r.descent_sweeps, r.seconds
            );
        })
        .unwrap();
    println!("fit {:.3}s f={}", t.elapsed().as_secs_f64(), m.certificate.objective);
}
