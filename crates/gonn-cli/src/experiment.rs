//! `gonn experiment NAME --out DIR`: the claims of the talk (THEORY.md sections 1, 2 and 4) as runnable
//! experiments. Each writes figures (SVG and PNG), `summary.md` and `results.json` into `DIR/NAME`, and says
//! whether its claim held on this run. `--small` is the quick mode that CI runs.

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

use crate::commands::Scaling;
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
    let mut failed = Vec::new();
    for name in names {
        let dir = a.out.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| GonnError::Io { path: dir.display().to_string(), source: e })?;
        eprintln!("experiment {name} ({} mode) -> {}", if a.small { "small" } else { "full" }, dir.display());
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
        eprintln!("  {verdict}: {}", o.claim);
        if !o.holds {
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        eprintln!("the claim did not hold on this run for: {}", failed.join(", "));
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
    let data = load_supervised(&a.digits, None, "X", "Y", Loss::Softmax, None)?;
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
    Scaling::fit(&rows(x.as_ref(), 0, fit_rows)).apply(x);
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

fn homogeneity(a: &ExperimentArgs, dir: &Path) -> Result<Outcome> {
    let (x, _) = digits(a, if a.small { 20 } else { 100 })?;
    let mut rng = Rng::new(a.seed);
    let image = Some((8, 8, 1));
    let stacks: Vec<(&str, &str, Activation)> = vec![
        ("linear + ReLU (one hidden layer)", "mlp:8", Activation::Relu),
        ("linear + leaky ReLU", "mlp:8", Activation::Leaky(0.1)),
        ("linear + max-out (3 pieces)", "mlp:8", Activation::Maxout(3)),
        ("two hidden ReLU layers", "mlp:8,6", Activation::Relu),
        ("convolution + ReLU", "cnn:c4k3", Activation::Relu),
        ("convolution + ReLU + max pooling", "cnn:c4k3,pool2", Activation::Relu),
        ("convolution + ReLU + mean pooling", "cnn:c4k3,meanpool2", Activation::Relu),
        ("conv, max pool, conv, fully connected", "cnn:c4k3,pool2,c4k2,fc6", Activation::Relu),
    ];
    let scales = [0.25, 0.5, 2.0, 4.0];
    let mut table = String::from(
        "| subnetwork | architecture | weight layers K | measured degree of phi | measured degree in each layer |\n|---|---|---|---|---|\n",
    );
    let (mut worst, mut rows_json, mut series) = (0.0f64, vec![], vec![]);
    for (label, spec, act) in &stacks {
        let arch = Architecture::parse(spec, *act)?;
        let net = DeepNetwork::new(x.as_ref(), 3, arch.clone(), image, true, Regularizer::Product)?;
        let w = Weights { layers: net.layer_dims().iter().map(|&d| rng.normal_mat(d, 2)).collect() };
        let norm_at = |s: f64, layer: Option<usize>| {
            let mut ws = w.clone();
            match layer {
                None => ws.scale_all(s),
                Some(k) => (0..ws.width()).for_each(|i| ws.scale_column(k, i, s)),
            }
            net.forward(&ws, Par::Seq).norm_l2()
        };
        let degs: Vec<f64> = scales.iter().map(|&s| measured_degree(|c| norm_at(c, None), s)).collect();
        let per_layer: Vec<f64> = (0..net.degree()).map(|k| measured_degree(|c| norm_at(c, Some(k)), 2.0)).collect();
        let k = net.degree() as f64;
        worst =
            degs.iter().map(|d| (d - k).abs()).chain(per_layer.iter().map(|d| (d - 1.0).abs())).fold(worst, f64::max);
        table += &format!(
            "| {label} | `{arch}` | {} | {} | {} |\n",
            net.degree(),
            degs.iter().map(|d| format!("{d:.6}")).collect::<Vec<_>>().join(", "),
            per_layer.iter().map(|d| format!("{d:.6}")).collect::<Vec<_>>().join(", ")
        );
        rows_json.push(json!({"subnetwork": label, "architecture": arch.to_string(), "degree": net.degree(), "measured": degs, "per_layer": per_layer}));
        series.push(Series {
            label: arch.to_string(),
            points: [0.25, 0.5, 1.0, 2.0, 4.0].iter().map(|&s| (s, norm_at(s, None) / norm_at(1.0, None))).collect(),
        });
    }
    // A counterexample: tanh is not positively homogeneous.
    let (w1, w2) = (rng.normal_mat(x.ncols(), 8), rng.normal_mat(8, 3));
    let tanh_norm = |s: f64| {
        let h = gonn::numerics::linalg::mul(x.as_ref(), (s * &w1).as_ref(), Par::Seq);
        let h = Mat::from_fn(h.nrows(), h.ncols(), |i, j| (h[(i, j)] / 64.0).tanh());
        gonn::numerics::linalg::mul(h.as_ref(), (s * &w2).as_ref(), Par::Seq).norm_l2()
    };
    let tanh_degs: Vec<f64> = scales.iter().map(|&s| measured_degree(tanh_norm, s)).collect();
    let tanh_spread = tanh_degs.iter().fold(0.0f64, |m, d| m.max((d - tanh_degs[0]).abs()));
    table += &format!(
        "| linear + tanh (not homogeneous) | - | 2 | {} | - |\n",
        tanh_degs.iter().map(|d| format!("{d:.4}")).collect::<Vec<_>>().join(", ")
    );
    let mut reg_table = String::from("| regularizer | formula | degree for K = 3 layers |\n|---|---|---|\n");
    for (r, f) in [
        (Regularizer::Product, "prod_k ||W^k||"),
        (Regularizer::Powers, "(1/K) sum_k ||W^k||^K"),
        (Regularizer::WeightDecay, "1/2 sum_k ||W^k||^2"),
    ] {
        reg_table += &format!("| {} | `{f}` | {} |\n", r.name(), r.degree(3));
    }
    let chart = Chart {
        title: "homogeneity: ||phi(a W)|| / ||phi(W)|| = a^K".into(),
        x_label: "scale a".into(),
        y_label: "output ratio".into(),
        log_x: true,
        log_y: true,
        series,
    };
    let figures = chart.write(dir, "homogeneity")?.to_vec();
    let holds = worst < 1e-9 && tanh_spread > 1e-2;
    Ok(Outcome {
        claim: "every stack of linear, convolution, ReLU, leaky ReLU, max-out, max and mean pooling layers is \
                positively homogeneous of degree K (the number of weight layers), and of degree 1 in each layer; \
                tanh is not homogeneous"
            .into(),
        holds,
        body: format!(
            "Measured degree `log2(||phi(a W)|| / ||phi(W)||) / log2(a)` at a = {scales:?}, on {} digits images, \
             random weights, r = 2 subnetworks, 3 outputs. Largest deviation from the computed degree: {worst:.2e}. \
             The tanh row's measured degree varies with a by {tanh_spread:.3}.\n\n{table}\nRegularizers (degree \
             computed from the formula):\n\n{reg_table}",
            x.nrows()
        ),
        numbers: json!({"stacks": rows_json, "worst_deviation": worst, "tanh_measured": tanh_degs, "tanh_spread": tanh_spread}),
        figures,
    })
}

/// Records of a fit: `(outer, objective, subnetworks, polar_lower)`.
fn history_of(m: &FitResult) -> Vec<(f64, f64, f64, f64)> {
    m.history.iter().map(|r| (r.outer as f64, r.objective, r.subnetworks as f64, r.polar_lower)).collect()
}

fn growth(a: &ExperimentArgs, dir: &Path) -> Result<Outcome> {
    let n = if a.small { 40 } else { 120 };
    let (x, obs) = sine_data(n, a.seed);
    let lambda = 0.01;
    let net = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Exact)?;
    let params =
        |init: usize| FitParams::new(lambda).tol(1e-7).init_width(init).seed(a.seed).threads(1).max_seconds(60.0);
    let inits = [0usize, 1, 20];
    let mut fits = Vec::new();
    for &init in &inits {
        fits.push((init, params(init).validate()?.fit(&net, &obs)?));
    }
    let best = fits.iter().map(|(_, m)| m.certificate.objective).fold(f64::INFINITY, f64::min);
    let spread = fits.iter().map(|(_, m)| (m.certificate.objective - best) / best).fold(0.0, f64::max);
    let certified = fits.iter().all(|(_, m)| m.certificate.status == Status::Certified);
    // Fixed-width training for comparison: local descent only, from random starts.
    let deep = units_as_deep_family(&x)?;
    let p_deep = Problem { net: &deep, loss: Loss::Squared, obs: &obs, lambda, par: Par::Seq };
    let p_relu = Problem { net: &net, loss: Loss::Squared, obs: &obs, lambda, par: Par::Seq };
    let mut rng = Rng::new(a.seed + 3);
    let mut fixed = Vec::new();
    for width in [1usize, 2, 4, 8] {
        let w = relu_local_minimum(&p_deep, &p_relu, width, &mut rng);
        let cert = gonn::meta::certify(&net, &obs, Loss::Squared, lambda, &w, 1e-7, 1)?;
        fixed.push((width, w.width(), cert));
    }
    let stuck = fixed.iter().filter(|(_, _, c)| (c.objective - best) / best > 1e-3).count();
    let lower = fits.iter().filter_map(|(_, m)| m.certificate.optimum_lower_bound).fold(f64::NEG_INFINITY, f64::max);
    let mut table = String::from(
        "| start | outer iterations | subnetworks at the first iteration | subnetworks at the end | objective | status | gap bound |\n|---|---|---|---|---|---|---|\n",
    );
    for (init, m) in &fits {
        table += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            match init {
                0 => "empty".to_string(),
                1 => "1 random subnetwork".to_string(),
                _ => format!("{init} random subnetworks"),
            },
            m.outer_iterations,
            m.history.first().map_or(0, |h| h.subnetworks),
            m.weights.width(),
            fmt(m.certificate.objective),
            m.certificate.status,
            m.certificate.gap_bound.map_or("-".into(), fmt)
        );
    }
    for (width, units, c) in &fixed {
        table += &format!(
            "| {width} random units, local descent only | - | {width} | {units} | {} (+{:.2} %) | {} (polar {:.3}) | {} |\n",
            fmt(c.objective),
            100.0 * (c.objective - best) / best,
            c.status,
            c.polar_lower,
            c.gap_bound.map_or("-".into(), fmt)
        );
    }
    let chart = |title: &str, y: &str, log_y: bool, pick: fn(&(f64, f64, f64, f64)) -> f64, shift: f64| Chart {
        title: title.into(),
        x_label: "outer iteration".into(),
        y_label: y.into(),
        log_x: false,
        log_y,
        series: fits
            .iter()
            .map(|(init, m)| Series {
                label: if *init == 0 { "empty start".into() } else { format!("{init} random") },
                points: history_of(m).iter().map(|h| (h.0, pick(h) - shift)).collect(),
            })
            .collect(),
    };
    let mut figures =
        chart("growth: objective above the best lower bound", "f(W) - F* lower bound", true, |h| h.1, lower)
            .write(dir, "growth_objective")?
            .to_vec();
    figures.extend(
        chart("growth: number of subnetworks", "subnetworks r", false, |h| h.2, 0.0).write(dir, "growth_width")?,
    );
    figures.extend(
        chart("growth: polar (optimal when <= 1)", "polar lower bound", true, |h| h.3, 0.0)
            .write(dir, "growth_polar")?,
    );
    Ok(Outcome {
        claim: "descend, check the polar, add a subnetwork: from every initialization (empty, one subnetwork, many \
                random ones) the meta-algorithm reaches the same certified objective, while fixed-width training \
                of small networks gets stuck higher"
            .into(),
        holds: certified && spread < 1e-5 && stuck >= 1,
        body: format!(
            "One-hidden-layer ReLU units (exact polar) on {n} samples of `sin(3x) + 0.1 noise`, lambda = {lambda}. \
             Largest relative difference of the final objectives: {spread:.2e}; all certified: {certified}; \
             fixed-width runs (1, 2, 4 and 8 random units, local descent without growth) above the optimum by more than 0.1 %: {stuck} of 4. The random starts are scaled along their ray first and the ReLU \
             family's descent prunes units that die, so the number of subnetworks at the first iteration is shown.\n\n{table}"
        ),
        numbers: json!({
            "objectives": fits.iter().map(|(i, m)| json!({"init": i, "objective": m.certificate.objective, "status": m.certificate.status, "subnetworks": m.weights.width()})).collect::<Vec<_>>(),
            "relative_spread": spread,
            "fixed_width": fixed.iter().map(|(w, u, c)| json!({"width": w, "units": u, "objective": c.objective, "excess": (c.objective - best) / best, "polar": c.polar_lower})).collect::<Vec<_>>(),
            "stuck": stuck,
        }),
        figures,
    })
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

/// `f(W + eps D) - f(W)` for random directions `D` of every subnetwork plus one appended all-zero subnetwork:
/// the smallest change over `count` directions (negative: `W + {0}` is not a local minimum).
fn perturbation_check(p: &Problem<'_>, w: &Weights, count: usize, rng: &mut Rng) -> f64 {
    let f = p.objective(w);
    let mut wz = w.clone();
    wz.push(&Weights { layers: p.net.layer_dims().iter().map(|&d| Mat::zeros(d, 1)).collect() }, &[1.0, 1.0]);
    let scale = wz.layers.iter().map(|l| l.norm_l2()).fold(0.0, f64::max).max(1e-3);
    let mut worst = f64::INFINITY;
    for _ in 0..count {
        let mut v = wz.clone();
        for l in v.layers.iter_mut() {
            let d = rng.normal_mat(l.nrows(), l.ncols());
            *l = &*l + &(&d * (1e-4 * scale / d.norm_l2()));
        }
        worst = worst.min(p.objective(&v) - f);
    }
    worst
}

fn zero_subnetwork(a: &ExperimentArgs, dir: &Path) -> Result<Outcome> {
    let n = if a.small { 30 } else { 80 };
    let (x, obs) = sine_data(n, a.seed + 1);
    let lambda = 0.05;
    let relu = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Exact)?;
    let deep = units_as_deep_family(&x)?;
    let p = Problem { net: &deep, loss: Loss::Squared, obs: &obs, lambda, par: Par::Seq };
    let p_relu = Problem { net: &relu, loss: Loss::Squared, obs: &obs, lambda, par: Par::Seq };
    let mut rng = Rng::new(a.seed + 5);
    // Local minima of two kinds: plain local descent from random starts (proximal gradient, then the exact convex
    // solve on the activation patterns; no growth), and the meta-algorithm's end points from several starts.
    let mut found: Vec<(String, Weights)> = Vec::new();
    let widths: &[usize] = if a.small { &[2, 8, 64] } else { &[1, 2, 4, 8, 16, 32, 64, 128] };
    for &r in widths {
        for _ in 0..(if a.small { 2 } else { 3 }) {
            let w = relu_local_minimum(&p, &p_relu, r, &mut rng);
            found.push((format!("local descent, {r} random units"), w));
        }
    }
    let mut lower = f64::NEG_INFINITY;
    for init in [0usize, 5, 20] {
        let m = FitParams::new(lambda)
            .tol(1e-9)
            .init_width(init)
            .seed(a.seed + init as u64)
            .threads(1)
            .validate()?
            .fit(&relu, &obs)?;
        lower = lower.max(m.certificate.optimum_lower_bound.unwrap_or(f64::NEG_INFINITY));
        found.push((format!("meta-algorithm, start with {init} units"), m.weights));
    }
    let tol = 1e-4;
    let mut runs = Vec::new();
    for (how, w) in &found {
        // W + {0}: growing the zero subnetwork along d changes f by eps^2 lambda (theta(d) - <Q, phi(d)>) + o(eps^2),
        // so it is a local minimum exactly when W is one and the polar of Q = -G / lambda is at most 1.
        let ev = p.evaluate(w);
        let q = Mat::from_fn(n, 1, |i, _| -ev.g[(i, 0)] / lambda);
        let polar = relu.polar(q.as_ref(), &PolarOptions::new(true, Par::Seq), &mut rng);
        let rho = polar.upper.unwrap_or(polar.lower);
        let eps = 1e-3;
        let mut grown = w.clone();
        grown.push(&polar.atom, &[eps, eps]);
        let step = p.objective(&grown) - ev.objective;
        runs.push(json!({
            "found_by": how,
            "units": w.width(),
            "objective": ev.objective,
            "polar": rho,
            "local_minimum_with_zero_subnetwork": rho <= 1.0 + tol,
            "random_perturbations_min_change": perturbation_check(&p, w, 100, &mut rng),
            "growing_the_zero_subnetwork_changes_f_by": step,
        }));
    }
    // The proven lower bound on the optimum (weak duality at the meta-algorithm's end points).
    for r in runs.iter_mut() {
        let f = r["objective"].as_f64().unwrap();
        r["relative_gap_to_lower_bound"] = json!((f - lower) / f);
    }
    let passing: Vec<&Value> = runs.iter().filter(|r| r["local_minimum_with_zero_subnetwork"] == true).collect();
    let failing: Vec<&Value> = runs.iter().filter(|r| r["local_minimum_with_zero_subnetwork"] == false).collect();
    let global = passing.iter().all(|r| r["relative_gap_to_lower_bound"].as_f64().unwrap() <= 1e-6);
    let stable = passing.iter().all(|r| r["random_perturbations_min_change"].as_f64().unwrap() >= -1e-12);
    let escapes = failing.iter().all(|r| r["growing_the_zero_subnetwork_changes_f_by"].as_f64().unwrap() < 0.0);
    let mut table = String::from(
        "| found by | units | objective | (f - F* lower bound) / f | exact polar | W + {0} a local minimum | smallest f change, 100 random perturbations | f change, zero subnetwork grown along the polar |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in &runs {
        table += &format!(
            "| {} | {} | {} | {:.2e} | {:.6} | {} | {:.2e} | {:.2e} |\n",
            r["found_by"].as_str().unwrap_or(""),
            r["units"],
            fmt(r["objective"].as_f64().unwrap()),
            r["relative_gap_to_lower_bound"].as_f64().unwrap(),
            r["polar"].as_f64().unwrap(),
            if r["local_minimum_with_zero_subnetwork"] == true { "yes" } else { "no" },
            r["random_perturbations_min_change"].as_f64().unwrap(),
            r["growing_the_zero_subnetwork_changes_f_by"].as_f64().unwrap()
        );
    }
    let pts = |rs: &[&Value]| -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = rs
            .iter()
            .map(|r| (r["polar"].as_f64().unwrap(), r["relative_gap_to_lower_bound"].as_f64().unwrap().max(1e-12)))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let chart = Chart {
        title: "Theorem 1: local minima with a zero subnetwork are global".into(),
        x_label: "exact polar".into(),
        y_label: "(f - F* lower bound) / f".into(),
        log_x: true,
        log_y: true,
        series: vec![
            Series { label: "W + {0} is a local minimum".into(), points: pts(&passing) },
            Series { label: "W + {0} is not".into(), points: pts(&failing) },
        ],
    };
    let figures = chart.write(dir, "zero_subnetwork")?.to_vec();
    Ok(Outcome {
        claim: "a local minimum in which one subnetwork is entirely zero is a global minimum (Theorem 1)".into(),
        holds: !passing.is_empty() && global && stable && escapes,
        body: format!(
            "One-hidden-layer ReLU units on {n} samples of `sin(3x) + 0.1 noise`, lambda = {lambda}. Each local \
             minimum W gets one appended all-zero subnetwork. W + {{0}} is a local minimum exactly when growing the \
             zero subnetwork in any direction cannot decrease f, i.e. when the exact polar (activation-pattern \
             enumeration) is at most 1 (here 1 + {tol}); 100 random perturbations of all subnetworks, the zero one \
             included, check it. Global optimality is measured against the proven lower bound F* >= {} (weak \
             duality, THEORY.md section 3).\n\nLocal minima with a zero subnetwork: {} (all from the \
             meta-algorithm, which stops exactly there); all within 1e-6 of the lower bound, hence global: {global}; \
             no random perturbation decreases f: {stable}. Local minima of plain local descent ({}) fail the test: \
             growing their zero subnetwork along the polar's subnetwork decreases f in every case ({escapes}), and \
             they are above the optimum.\n\n{table}",
            fmt(lower),
            passing.len(),
            failing.len()
        ),
        numbers: json!({"optimum_lower_bound": lower, "runs": runs, "local_minima_with_zero_subnetwork": passing.len(), "tolerance": tol}),
        figures,
    })
}

fn mismatch(a: &ExperimentArgs, dir: &Path) -> Result<Outcome> {
    let (mut x, y) = digits(a, if a.small { 150 } else { 600 })?;
    let all = x.nrows();
    standardize(&mut x, all);
    let obs = Observations::new(y, None)?;
    let lambda = 1.0;
    let arch = Architecture::parse("mlp:8,8", Activation::Relu)?;
    let wd = DeepNetwork::new(x.as_ref(), 10, arch.clone(), None, true, Regularizer::WeightDecay)?;
    let matched = DeepNetwork::new(x.as_ref(), 10, arch, None, true, Regularizer::Product)?;
    let p_wd = Problem { net: &wd, loss: Loss::Softmax, obs: &obs, lambda, par: Par::Seq };
    let p_m = Problem { net: &matched, loss: Loss::Softmax, obs: &obs, lambda, par: Par::Seq };
    let zero = Weights::empty(&wd.layer_dims());
    let f0 = p_wd.objective(&zero);
    let mut rng = Rng::new(a.seed);
    let directions = if a.small { 50 } else { 200 };
    let ts: Vec<f64> = (0..13).map(|i| 10f64.powf(-3.0 + 0.25 * i as f64)).collect();
    let unit = |w: &mut Weights| {
        for l in w.layers.iter_mut() {
            let nrm = l.norm_l2();
            *l = &*l * (1.0 / nrm);
        }
    };
    let delta = |p: &Problem<'_>, d: &Weights, t: f64| {
        let mut w = d.clone();
        w.scale_all(t);
        p.objective(&w) - f0
    };
    let (mut wd_min, mut m_neg) = (vec![f64::INFINITY; ts.len()], 0usize);
    for _ in 0..directions {
        let mut d = Weights { layers: wd.layer_dims().iter().map(|&k| rng.normal_mat(k, 1)).collect() };
        unit(&mut d);
        for (i, &t) in ts.iter().enumerate() {
            wd_min[i] = wd_min[i].min(delta(&p_wd, &d, t));
        }
        if ts.iter().take(4).any(|&t| delta(&p_m, &d, t) < 0.0) {
            m_neg += 1;
        }
    }
    // The matched regularizer's polar at zero: its subnetwork is a descent direction when the polar exceeds 1.
    let ev = p_m.evaluate(&zero);
    let q = Mat::from_fn(ev.g.nrows(), ev.g.ncols(), |i, j| -ev.g[(i, j)] / lambda);
    let mut opts = PolarOptions::new(true, Par::Seq);
    opts.restarts = 8;
    let polar = matched.polar(q.as_ref(), &opts, &mut rng);
    let polar_curve: Vec<f64> = ts.iter().map(|&t| delta(&p_m, &polar.atom, t)).collect();
    let polar_wd: Vec<f64> = ts.iter().map(|&t| delta(&p_wd, &polar.atom, t)).collect();
    // Zero is not optimal for weight decay either: a trained network does better.
    let trained = FitParams::new(lambda)
        .loss(Loss::Softmax)
        .init_width(4)
        .seed(a.seed)
        .threads(1)
        .max_seconds(if a.small { 5.0 } else { 30.0 })
        .validate()?
        .fit_from(&wd, &obs, None, &mut gonn::meta::Silent)?;
    let f_trained = trained.certificate.objective;
    let small_t = 2; // t = 10^-2.5
    let wd_local_min = wd_min[..=small_t].iter().all(|v| *v > 0.0);
    let matched_descends = polar.lower > 1.0 && polar_curve[..=small_t].iter().all(|v| *v < 0.0);
    let holds = wd_local_min && matched_descends && f_trained < f0 && polar_wd[..=small_t].iter().all(|v| *v > 0.0);
    let mut table = String::from(
        "| t | min over directions of f(tD) - f(0), weight decay | along the polar subnetwork, weight decay | along the polar subnetwork, product |\n|---|---|---|---|\n",
    );
    for i in 0..ts.len() {
        table += &format!("| {} | {} | {} | {} |\n", fmt(ts[i]), fmt(wd_min[i]), fmt(polar_wd[i]), fmt(polar_curve[i]));
    }
    let series = |label: &str, v: &[f64], sign: f64| Series {
        label: label.into(),
        points: ts.iter().zip(v).filter(|(_, d)| sign * **d > 0.0).map(|(t, d)| (*t, sign * d)).collect(),
    };
    let chart = Chart {
        title: "degree mismatch: f(tD) - f(0) near the zero network".into(),
        x_label: "t".into(),
        y_label: "|f(tD) - f(0)|".into(),
        log_x: true,
        log_y: true,
        series: vec![
            series("weight decay, worst direction (increase)", &wd_min, 1.0),
            series("weight decay, polar direction (increase)", &polar_wd, 1.0),
            series("product, polar direction (decrease)", &polar_curve, -1.0),
        ],
    };
    let figures = chart.write(dir, "mismatch")?.to_vec();
    Ok(Outcome {
        claim: "with weight decay (degree 2) on 3-layer subnetworks (degree 3) the zero network is a local minimum \
                although it is not optimal; with the degree-matched product regularizer it is not a local minimum"
            .into(),
        holds,
        body: format!(
            "Subnetworks `mlp:8,8` (3 weight layers) on {} standardized digits images, softmax loss, lambda = \
             {lambda}, f(0) = {}. Directions D: {directions} random single subnetworks with unit-norm layers, plus the \
             matched problem's heuristic polar subnetwork (polar lower bound {:.4}). With weight decay every sampled \
             direction increases f for t <= {} (zero is a local minimum: {wd_local_min}), yet a width-4 network \
             trained with weight decay reaches f = {} < f(0). With the product regularizer, f decreases along the \
             polar subnetwork ({matched_descends}); {m_neg} of the {directions} random directions also decrease it \
             for some t <= 10^-2.25.\n\n{table}",
            x.nrows(),
            fmt(f0),
            polar.lower,
            fmt(ts[small_t]),
            fmt(f_trained)
        ),
        numbers: json!({
            "f0": f0, "t": ts, "weight_decay_min_delta": wd_min, "weight_decay_polar_delta": polar_wd,
            "matched_polar_delta": polar_curve, "matched_polar": polar.lower, "matched_random_descending": m_neg,
            "weight_decay_trained": f_trained, "zero_is_local_min_wd": wd_local_min, "matched_descends": matched_descends,
        }),
        figures,
    })
}

fn lambda_path(a: &ExperimentArgs, dir: &Path) -> Result<Outcome> {
    let total = if a.small { 450 } else { 1797 };
    let (mut x, y) = digits(a, total)?;
    let train = total * 2 / 3;
    standardize(&mut x, train);
    let (xtr, xte) = (rows(x.as_ref(), 0, train), rows(x.as_ref(), train, x.nrows()));
    let (ytr, yte) = (rows(y.as_ref(), 0, train), rows(y.as_ref(), train, y.nrows()));
    let obs = Observations::new(ytr.clone(), None)?;
    let arch = Architecture::parse("mlp:8", Activation::Relu)?;
    let net = DeepNetwork::new(xtr.as_ref(), 10, arch, None, true, Regularizer::Product)?;
    let lambdas: Vec<f64> = if a.small { vec![30.0, 10.0, 3.0, 1.0] } else { vec![100.0, 30.0, 10.0, 3.0, 1.0, 0.3] };
    let budget = if a.small { 2.0 } else { 30.0 };
    let error = |net: &DeepNetwork, w: &Weights, y: &Mat<f64>| {
        let z = net.forward(w, Par::Seq);
        let wrong = (0..z.nrows())
            .filter(|&i| {
                let pred = (0..z.ncols()).max_by(|&p, &q| z[(i, p)].total_cmp(&z[(i, q)])).unwrap_or(0);
                y[(i, pred)] < 0.5
            })
            .count();
        wrong as f64 / z.nrows() as f64
    };
    let test_net = net.with_inputs(xte.as_ref())?;
    let mut w: Option<Weights> = None;
    let mut path = Vec::new();
    for &lambda in &lambdas {
        let m = FitParams::new(lambda)
            .loss(Loss::Softmax)
            .seed(a.seed)
            .threads(1)
            .max_seconds(budget)
            .validate()?
            .fit_from(&net, &obs, w.clone(), &mut gonn::meta::Silent)?;
        let (tr, te) = (error(&net, &m.weights, &ytr), error(&test_net, &m.weights, &yte));
        path.push(json!({
            "lambda": lambda, "subnetworks": m.weights.width(), "objective": m.certificate.objective,
            "train_error": tr, "test_error": te, "polar_lower": m.certificate.polar_lower, "status": m.certificate.status,
        }));
        w = Some(m.weights);
    }
    let get = |i: usize, k: &str| path[i][k].as_f64().unwrap_or(0.0);
    let last = path.len() - 1;
    let holds = get(0, "subnetworks") < get(last, "subnetworks") && get(0, "train_error") >= get(last, "train_error");
    let mut table = String::from("| lambda | subnetworks | objective | train error | test error | polar (lower) | status |\n|---|---|---|---|---|---|---|\n");
    for r in &path {
        table += &format!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.4} | {} |\n",
            r["lambda"],
            r["subnetworks"],
            fmt(r["objective"].as_f64().unwrap()),
            r["train_error"].as_f64().unwrap(),
            r["test_error"].as_f64().unwrap(),
            r["polar_lower"].as_f64().unwrap(),
            r["status"].as_str().unwrap_or("")
        );
    }
    let line = |k: &str| -> Vec<(f64, f64)> { (0..path.len()).map(|i| (get(i, "lambda"), get(i, k))).collect() };
    let mut figures = Chart {
        title: "lambda path: network size chosen by the regularizer".into(),
        x_label: "lambda".into(),
        y_label: "subnetworks r".into(),
        log_x: true,
        log_y: false,
        series: vec![Series { label: "subnetworks".into(), points: line("subnetworks") }],
    }
    .write(dir, "lambda_path_size")?
    .to_vec();
    figures.extend(
        Chart {
            title: "lambda path: classification error".into(),
            x_label: "lambda".into(),
            y_label: "error".into(),
            log_x: true,
            log_y: false,
            series: vec![
                Series { label: "train".into(), points: line("train_error") },
                Series { label: "test".into(), points: line("test_error") },
            ],
        }
        .write(dir, "lambda_path_error")?,
    );
    Ok(Outcome {
        claim: "along a decreasing path of lambda values (warm starts) the regularizer picks the network size: \
                fewer subnetworks and higher training error for large lambda, more subnetworks and lower training \
                error for small lambda"
            .into(),
        holds,
        body: format!(
            "Subnetworks `mlp:8` on the digits images ({train} training, {} test samples, standardized), softmax \
             loss, {budget} s per lambda, each fit starting from the previous one. The polar is heuristic here (no \
             certificate is possible for this family).\n\n{table}",
            x.nrows() - train
        ),
        numbers: json!({"path": path}),
        figures,
    })
}
