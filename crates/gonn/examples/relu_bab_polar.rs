//! One scalar ReLU polar `max_{||u|| <= 1} q^T ([X, 1] u)_+` by the pattern ascent and the branch and bound, both
//! signs, with a time limit and a target (the search stops once its proven bound is below it): the node count and
//! time of one proof, apart from the fit around it. `bench/relu_polar_probe.py` writes the `.npz` (`X`, the
//! standardized inputs without the bias column; `Q`, the `n x 1` dual direction at a fitted model).
//! Run: `cargo run --release -p gonn --example relu_bab_polar -- FILE.npz SECONDS TARGET [RESTARTS]` (pattern-ascent
//! starts; the fit's default otherwise)

use std::time::Instant;

use gonn::core::polar::PolarOptions;
use gonn::faer::{Mat, Par};
use gonn::prelude::*;

fn main() -> gonn::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (file, seconds, target, restarts) = match args.as_slice() {
        [f, s, t] => (f, s, t, None),
        [f, s, t, r] => (f, s, t, Some(r)),
        _ => {
            eprintln!("usage: relu_bab_polar FILE.npz SECONDS TARGET [RESTARTS]");
            std::process::exit(2);
        }
    };
    let Ok(restarts) = restarts.map_or(Ok(None), |r| r.parse::<usize>().map(Some)) else {
        eprintln!("RESTARTS is a count");
        std::process::exit(2);
    };
    let (seconds, target): (f64, f64) = match (seconds.parse(), target.parse()) {
        (Ok(s), Ok(t)) => (s, t),
        _ => {
            eprintln!("SECONDS and TARGET are numbers");
            std::process::exit(2);
        }
    };
    let xa = gonn::io::arrays::read_array(file, "X")?;
    let qa = gonn::io::arrays::read_array(file, "Q")?;
    let (n, d) = (xa.shape[0], xa.shape.get(1).copied().unwrap_or(1));
    if qa.data.len() != n {
        eprintln!("Q has {} entries, X has {n} rows", qa.data.len());
        std::process::exit(2);
    }
    let x = Mat::from_fn(n, d, |i, j| xa.data[i * d + j]);
    let q = Mat::from_fn(n, 1, |i, _| qa.data[i]);
    let net = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Bab)?;
    let mut opts = PolarOptions::new(true, Par::Seq);
    opts.time_limit = Some(std::time::Duration::from_secs_f64(seconds));
    opts.target = target;
    if let Some(r) = restarts {
        opts.restarts = r;
    }
    let t = Instant::now();
    let p = net.polar(q.as_ref(), &opts, &mut Rng::new(1));
    let upper = p.upper.map_or("none".to_string(), |u| format!("{u:.9}"));
    println!("polar in [{:.9}, {upper}]: {} ({:.2} s)", p.lower, p.method, t.elapsed().as_secs_f64());
    Ok(())
}
