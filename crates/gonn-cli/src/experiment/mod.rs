//! `gonn experiment NAME --out DIR`: the claims of the talk (THEORY.md sections 1, 2 and 4) as runnable
//! experiments. Each writes figures (SVG and PNG), `summary.md` and `results.json` into `DIR/NAME`, and says
//! whether its claim held on this run. `--small` is the quick mode that CI runs.

mod growth;
mod homogeneity;
mod lambda_path;
mod mismatch;
mod zero_subnetwork;

use growth::growth;
use homogeneity::homogeneity;
use lambda_path::lambda_path;
use mismatch::mismatch;
use zero_subnetwork::zero_subnetwork;

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use gonn::core::descent::DescentOptions;
use gonn::core::polar::PolarOptions;
use gonn::core::problem::Problem;
use gonn::core::{Regularizer, Weights};
use gonn::faer::{Mat, MatRef, Par};
use gonn::families::deep::{Activation, Architecture, DeepNetwork};
use gonn::io::load_supervised;
use gonn::plot::{Chart, Series};
use gonn::prelude::*;
use gonn::{GonnError, Result};

use gonn::preprocessing::Scaling;
use serde_json::{json, Value};

/// The experiments, in the order `all` runs them.
pub const NAMES: [&str; 5] = ["homogeneity", "growth", "zero-subnetwork", "mismatch", "lambda-path"];

#[derive(Args)]
pub struct ExperimentArgs {
    /// Which result to rerun: homogeneity, growth, zero-subnetwork, mismatch, lambda-path, or all.
    pub name: String,
    /// Folder for the figures, summary.md and results.json (one subfolder per experiment).
    #[arg(long)]
    pub out: PathBuf,
    /// Quick mode (smaller data and budgets; what CI runs).
    #[arg(long)]
    pub small: bool,
    /// Seed of the data and of every random choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the shipped digits images are.
    #[arg(long, default_value = "data/digits.npz")]
    pub digits: PathBuf,
}

/// What one experiment found.
struct Outcome {
    claim: String,
    holds: bool,
    /// Markdown body: what was run and the numbers.
    body: String,
    numbers: Value,
    figures: Vec<PathBuf>,
}

pub fn run(a: ExperimentArgs) -> Result<()> {
    let names: Vec<&str> = match a.name.as_str() {
        "all" => NAMES.to_vec(),
        n if NAMES.contains(&n) => vec![n],
        other => {
            return Err(GonnError::param(
                "name",
                format!("unknown experiment `{other}` (expected {} or all)", NAMES.join(", ")),
            ))
        }
    };
    if names.iter().any(|n| matches!(*n, "mismatch" | "lambda-path")) {
        // Check the digits data before anything is written.
        digits(&a, 1)?;
    }
    let mut failed = Vec::new();
    for name in names {
        let dir = a.out.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| GonnError::Io { path: dir.display().to_string(), source: e })?;
        note!("experiment {name} ({} mode) -> {}", if a.small { "small" } else { "full" }, dir.display());
        let start = Instant::now();
        let o = match name {
            "homogeneity" => homogeneity(&a, &dir)?,
            "growth" => growth(&a, &dir)?,
            "zero-subnetwork" => zero_subnetwork(&a, &dir)?,
            "mismatch" => mismatch(&a, &dir)?,
            _ => lambda_path(&a, &dir)?,
        };
        let seconds = start.elapsed().as_secs_f64();
        let verdict = if o.holds { "HOLDS" } else { "DOES NOT HOLD" };
        let figures: Vec<String> =
            o.figures.iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
        let md = format!(
            "# Experiment `{name}`\n\nClaim: {}\n\nOn this run the claim **{verdict}** ({} mode, seed {}, {seconds:.1} s).\n\n{}\n\nFigures: {}\n\nRerun: `gonn experiment {name} --out DIR{} --seed {}`\n",
            o.claim,
            if a.small { "small" } else { "full" },
            a.seed,
            o.body,
            figures.iter().map(|f| format!("[{f}]({f})")).collect::<Vec<_>>().join(", "),
            if a.small { " --small" } else { "" },
            a.seed
        );
        gonn::io::write_atomic(dir.join("summary.md"), md.as_bytes())?;
        let results = json!({
            "experiment": name,
            "claim": o.claim,
            "holds": o.holds,
            "small": a.small,
            "seed": a.seed,
            "seconds": seconds,
            "numbers": o.numbers,
            "figures": figures,
        });
        gonn::io::write_atomic(
            dir.join("results.json"),
            serde_json::to_string_pretty(&results).expect("json").as_bytes(),
        )?;
        note!("  {verdict}: {}", o.claim);
        if !o.holds {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        note!("the claim did not hold on this run for: {}", failed.join(", "));
    }
    Ok(())
}

/// `n` points of `y = sin(3x) + noise` on `[-1, 1]` (1-D regression).
fn sine_data(n: usize, seed: u64) -> (Mat<f64>, Observations) {
    let mut rng = Rng::new(seed);
    let x = Mat::from_fn(n, 1, |_, _| 2.0 * rng.uniform() - 1.0);
    let y = Mat::from_fn(n, 1, |i, _| (3.0 * x[(i, 0)]).sin() + 0.1 * rng.normal());
    (x, Observations::new(y, None).expect("finite targets"))
}

/// The digits images, standardized with the statistics of the first `train` rows; `(x, labels one-hot)`.
fn digits(a: &ExperimentArgs, rows: usize) -> Result<(Mat<f64>, Mat<f64>)> {
    let data = load_supervised(&a.digits, None, "X", "Y", Loss::Softmax, None).map_err(|e| {
        GonnError::param(
            "digits",
            format!(
                "{e}\n(the digits images ship in the repository as data/digits.npz: run from the repository's root, \
                 or give --digits PATH)"
            ),
        )
    })?;
    // The experiments use 8 x 8 images of 10 classes, and need enough of them to split.
    if data.x.ncols() != 64 || data.obs.ncols() != 10 || data.x.nrows() < 100 {
        return Err(GonnError::format(
            &a.digits,
            format!(
                "expected the digits data (8 x 8 images, 64 features, labels 0..9, at least 100 samples); got {} \
                 samples of {} features with {} classes",
                data.x.nrows(),
                data.x.ncols(),
                data.obs.ncols()
            ),
        ));
    }
    let rows = rows.min(data.x.nrows());
    // A seeded shuffle, so that small subsets contain every class.
    let mut order: Vec<usize> = (0..data.x.nrows()).collect();
    let mut rng = Rng::new(a.seed + 17);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let d = data.x.ncols();
    let x = Mat::from_fn(rows, d, |i, j| data.x[(order[i], j)]);
    let y = Mat::from_fn(rows, data.obs.ncols(), |i, j| data.obs.y()[(order[i], j)]);
    Ok((x, y))
}

/// Standardizes the columns of `x` with the mean and deviation of its first `fit_rows` rows (as `--standardize`).
fn standardize(x: &mut Mat<f64>, fit_rows: usize) {
    Scaling::fit(&rows(x.as_ref(), 0, fit_rows)).apply(x).expect("the same columns");
}

fn rows(m: MatRef<'_, f64>, r0: usize, r1: usize) -> Mat<f64> {
    m.subrows(r0, r1 - r0).to_owned()
}

fn fmt(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

/// `||phi(a W)|| / ||phi(W)||` on a log2 scale: the measured degree at `a`.
fn measured_degree(f: impl Fn(f64) -> f64, a: f64) -> f64 {
    (f(a) / f(1.0)).log2() / a.log2()
}

/// One-hidden-layer ReLU units (`mlp:1`, bias on, product regularizer) as a deep family, whose descent is plain
/// proximal gradient in the weights (no pattern-restricted convex solve, no growth).
fn units_as_deep_family(x: &Mat<f64>) -> Result<DeepNetwork> {
    DeepNetwork::new(x.as_ref(), 1, Architecture::parse("mlp:1", Activation::Relu)?, None, true, Regularizer::Product)
}

/// Runs the deep family's descent until it stops improving (several bounded calls).
fn descend(p: &Problem<'_>, w: &mut Weights, tol: f64, calls: usize) {
    let mut opts = DescentOptions::default();
    opts.tol = tol;
    for _ in 0..calls {
        let info = p.net.descend(p, w, &opts);
        if info.converged || w.width() == 0 {
            break;
        }
    }
}

/// A local minimum of one-hidden-layer ReLU units from `r` random units: proximal gradient on the units as a deep
/// family (`mlp:1`), alternating with the exact convex solve on their activation patterns; no growth.
fn relu_local_minimum(p_deep: &Problem<'_>, p_relu: &Problem<'_>, r: usize, rng: &mut Rng) -> Weights {
    let mut w = Weights { layers: p_deep.net.layer_dims().iter().map(|&d| rng.normal_mat(d, r)).collect() };
    w.scale_all(0.3);
    for _ in 0..4 {
        descend(p_deep, &mut w, 1e-12, 4);
        if w.width() > 0 {
            p_relu.net.descend(p_relu, &mut w, &DescentOptions::default());
        }
    }
    w
}
