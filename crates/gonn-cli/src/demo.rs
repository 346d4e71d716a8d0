//! `gonn demo`: a noisy low-rank matrix with missing entries, fitted until certified.

use std::process::ExitCode;

use gonn::io::{write_npz, Array};
use gonn::{GonnError, Result};

use crate::args::{DemoArgs, FitArgs, ProblemArgs};
use crate::fit::fit;
use crate::load::say;

pub fn demo(a: DemoArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&a.out_dir)
        .map_err(|e| GonnError::Io { path: a.out_dir.display().to_string(), source: e })?;
    let (m, n, rank, noise, observed) = (400, 300, 8, 0.1, 0.5);
    let data = gonn::datasets::low_rank(m, n, rank, noise, observed, a.seed);
    let data_path = a.out_dir.join("data.npz");
    let mask = data.mask.as_ref().expect("demo data has missing entries");
    write_npz(&data_path, &[("Y", &Array::from_mat(&data.y)), ("mask", &Array::from_mat(mask))])?;
    let lambda = 4.0;
    say(a.quiet, &format!(
        "gonn demo: a {m} x {n} matrix of rank {rank} plus noise (sd {noise}), {:.0}% of entries observed, written to {}.\n\
         Matrix completion with the nuclear norm (theta = ||u||_2 ||v||_2), lambda = {lambda}, starting from zero subnetworks.\n",
        observed * 100.0,
        data_path.display()
    ));
    let problem = ProblemArgs {
        model: "factor".into(),
        activation: "relu".into(),
        reg: "product".into(),
        image: None,
        data: data_path.clone(),
        targets: None,
        x_key: "X".into(),
        no_bias: false,
        output_norm: "l2".into(),
        polar: "auto".into(),
        polar_seconds: None,
        standardize: false,
        lambda,
        norms: Some("l2,l2".into()),
        nonneg: None,
        loss: "squared".into(),
        key: "Y".into(),
        mask_key: None,
        tol: 1e-6,
        threads: 0,
        report: Some(a.out_dir.join("report.json")),
        quiet: a.quiet,
        biases: "none".into(),
        columns: None,
    };
    let fit_args = FitArgs {
        problem,
        out: Some(a.out_dir.join("model.safetensors")),
        init_rank: 0,
        seed: a.seed,
        max_outer: 200,
        max_seconds: 60.0,
        polar_restarts: 8,
        batch_size: None,
        plot: Some(a.out_dir.join("run.svg")),
        log_json: None,
        checkpoint: None,
        init_weights: None,
        resume: None,
        lambda_path: None,
        validation_fraction: None,
        validation_data: None,
    };
    let code = fit(fit_args)?;
    say(a.quiet, &format!(
        "\nThe same fit from the command line:\n  gonn fit --model factor --data {} --lambda {lambda} --norms l2,l2 --out model.safetensors --report report.json --plot run.svg",
        data_path.display()
    ));
    Ok(code)
}
