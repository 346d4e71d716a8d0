//! What a new user meets first: result and progress on separate streams, `--report -`, choosing lambda with a
//! path and held-out entries, and messages that agree with each other.

mod common;

use common::{gonn, json, s, tmpdir};

use gonn::core::loss::Observations;
use gonn::io::{write_npz, Array};
use gonn::meta::path::{hold_out, HoldOut};
use gonn::numerics::rng::Rng;
use gonn::prelude::*;

fn completion_data(d: &std::path::Path) -> (std::path::PathBuf, Observations) {
    let data = gonn::datasets::low_rank(40, 30, 3, 0.1, 0.7, 5);
    let path = d.join("Y.npz");
    let mask = data.mask.clone().unwrap();
    write_npz(&path, &[("Y", &Array::from_mat(&data.y)), ("mask", &Array::from_mat(&mask))]).unwrap();
    (path, Observations::new(data.y, data.mask).unwrap())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn report_to_stdout_keeps_stdout_pure_json() {
    let d = tmpdir("report-stdout");
    let (data, _) = completion_data(&d);
    let out =
        gonn(&["fit", "--data", s(&data), "--lambda", "2", "--norms", "l2,l2", "--report", "-", "--threads", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("standard output is the JSON report");
    assert_eq!(report["status"], "certified");
    let err = text(&out.stderr);
    // The summary moved to standard error, and it agrees with the report.
    assert!(err.contains("status: certified") && err.contains("<= tol 1.0e-6"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn lambda_path_with_validation_keeps_the_best_lambda() {
    let d = tmpdir("lambda-path");
    let (data, obs) = completion_data(&d);
    let (report, model) = (d.join("path.json"), d.join("model.safetensors"));
    let args = [
        "fit",
        "--data",
        s(&data),
        "--lambda",
        "0.5",
        "--norms",
        "l2,l2",
        "--lambda-path",
        "5",
        "--validation-fraction",
        "0.25",
        "--seed",
        "4",
        "--threads",
        "1",
        "--report",
        s(&report),
        "--out",
        s(&model),
    ];
    let out = gonn(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("<- kept") && stdout.contains("val. RMSE"), "{stdout}");
    let r = json(&report);
    let path = r["lambda_path"].as_array().unwrap();
    assert_eq!(path.len(), 5);
    let lambdas: Vec<f64> = path.iter().map(|p| p["lambda"].as_f64().unwrap()).collect();
    assert!(lambdas.windows(2).all(|w| w[1] < w[0]) && lambdas[4] == 0.5, "{lambdas:?}");
    // The path starts at lambda_max: the zero model, certified.
    assert_eq!(path[0]["subnetworks"], 0);
    assert!(path.iter().all(|p| p["status"] == "certified"), "{path:?}");
    // Subnetworks grow along the path.
    assert!(path[4]["subnetworks"].as_u64().unwrap() > 0);
    // The kept model is the one with the smallest validation RMSE, and the report and model file are its.
    let rmse: Vec<f64> = path.iter().map(|p| p["validation"]["rmse"].as_f64().unwrap()).collect();
    let best = (0..5).min_by(|&a, &b| rmse[a].total_cmp(&rmse[b])).unwrap();
    assert_eq!(r["lambda"].as_f64().unwrap(), lambdas[best]);
    let fitted = FittedModel::load(&model).unwrap();
    assert_eq!(fitted.lambda, lambdas[best]);
    // The held-out RMSE, recomputed here from the saved factors on the same seeded split.
    let (train, val) = hold_out(&obs, 0.25, HoldOut::Entries, 4).unwrap();
    assert_eq!(val.n_observed() + train.n_observed(), obs.n_observed());
    assert_eq!(r["validation"]["count"].as_u64().unwrap() as usize, val.n_observed());
    let (u, v) = (&fitted.weights.layers[0], &fitted.weights.layers[1]);
    let mut se = 0.0;
    for j in 0..obs.ncols() {
        for i in 0..obs.nrows() {
            if val.is_observed(i, j) {
                let z: f64 = (0..u.ncols()).map(|k| u[(i, k)] * v[(j, k)]).sum();
                se += (z - obs.y()[(i, j)]).powi(2);
            }
        }
    }
    let want = (se / val.n_observed() as f64).sqrt();
    assert!((rmse[best] - want).abs() <= 1e-9 * want, "reported {} recomputed {want}", rmse[best]);
    // The training objective of the kept model: the fit saw the training entries only.
    let net = MatrixFactorization::new(obs.nrows(), obs.ncols(), [LayerNorm::new(Norm::L2, false); 2]);
    let cert = gonn::meta::certify(&net, &train, Loss::Squared, lambdas[best], &fitted.weights, 1e-6, 1).unwrap();
    let f = r["objective"].as_f64().unwrap();
    assert!((cert.objective - f).abs() <= 1e-9 * f, "{} vs {f}", cert.objective);
    // Bad path settings: one clear error each.
    for (flag, value) in [("--lambda-path", "1"), ("--validation-fraction", "1.5"), ("--lambda", "1e6")] {
        let mut bad: Vec<&str> = args.to_vec();
        let at = bad.iter().position(|a| *a == flag).unwrap();
        bad[at + 1] = value;
        let out = gonn(&bad);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {}", text(&out.stderr));
        assert!(text(&out.stderr).trim_end().lines().last().unwrap().starts_with("error: "), "{}", text(&out.stderr));
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn relu_validation_holds_out_whole_samples() {
    let d = tmpdir("relu-validation");
    let mut rng = Rng::new(2);
    let n = 80;
    let x: Vec<f64> = (0..n).map(|_| 2.0 * rng.uniform() - 1.0).collect();
    let y: Vec<f64> = x.iter().map(|t| (2.0 * t).sin() + 0.05 * rng.normal()).collect();
    let data = d.join("xy.npz");
    write_npz(&data, &[("X", &Array { shape: vec![n, 1], data: x }), ("Y", &Array { shape: vec![n, 1], data: y })])
        .unwrap();
    let report = d.join("r.json");
    let out = gonn(&[
        "fit",
        "--model",
        "relu",
        "--data",
        s(&data),
        "--lambda",
        "0.05",
        "--validation-fraction",
        "0.25",
        "--threads",
        "1",
        "--report",
        s(&report),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = json(&report);
    assert_eq!(r["status"], "certified");
    assert_eq!(r["validation"]["count"], 20);
    let rmse = r["validation"]["rmse"].as_f64().unwrap();
    assert!(rmse > 0.0 && rmse < 0.5, "{rmse}");
    assert!(text(&out.stdout).contains("validation on 20 held-out entries"), "{}", text(&out.stdout));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn summary_lines_agree_with_the_status() {
    let d = tmpdir("summary");
    let (data, _) = completion_data(&d);
    // Stopped after one outer iteration: not certified, and no line may say otherwise.
    let out = gonn(&["fit", "--data", s(&data), "--lambda", "0.5", "--norms", "l2,l2", "--max-outer", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("termination: max_outer"), "{stdout}");
    assert!(!stdout.contains("CERTIFIED") && !stdout.contains("<= tol"), "{stdout}");
    assert!(
        stdout.contains("not certified") || stdout.contains("> tol") || stdout.contains("no upper bound"),
        "{stdout}"
    );
    // NaN in Y: refused, with the way to mark missing entries.
    let mut y = Array { shape: vec![3, 3], data: vec![1.0; 9] };
    y.data[4] = f64::NAN;
    let bad = d.join("nan.npz");
    write_npz(&bad, &[("Y", &y)]).unwrap();
    let out = gonn(&["fit", "--data", s(&bad), "--lambda", "0.5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("mask"), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&d).ok();
}
