//! Deep and convolutional models (`mlp:...`, `cnn:...`) and `gonn experiment` through the real binary.

mod common;

use std::process::Output;

use common::{files, gonn, json, s, tmpdir};

use gonn::io::{read_array, write_npz, Array};
use gonn::numerics::rng::Rng;

fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    err
}

/// The first `n` shipped digits images (8 x 8, labels 0..9) as an .npz in `dir`.
fn digits_subset(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let path = format!("{}/../../data/digits.npz", env!("CARGO_MANIFEST_DIR"));
    let x = read_array(&path, "X").unwrap();
    let y = read_array(&path, "Y").unwrap();
    let out = dir.join("digits.npz");
    let xs = Array { shape: vec![n, 64], data: x.data[..n * 64].to_vec() };
    let ys = Array { shape: vec![n], data: y.data[..n].to_vec() };
    write_npz(&out, &[("X", &xs), ("Y", &ys)]).unwrap();
    out
}

#[test]
fn mlp_and_cnn_fit_predict_evaluate_on_digits() {
    let d = tmpdir("deep-fit");
    let data = digits_subset(&d, 240);
    for (model, extra) in
        [("mlp:16,8", vec![]), ("cnn:c4k3,pool2", vec!["--image", "8x8", "--activation", "leaky:0.1"])]
    {
        let (m, r) = (d.join("m.safetensors"), d.join("r.json"));
        let mut args = vec![
            "fit",
            "--model",
            model,
            "--data",
            s(&data),
            "--loss",
            "softmax",
            "--lambda",
            "2",
            "--standardize",
            "--max-seconds",
            "8",
            "--out",
            s(&m),
            "--report",
            s(&r),
            "--seed",
            "3",
        ];
        args.extend(extra);
        let err = ok(&gonn(&args));
        assert!(err.contains("degree of homogeneity"), "{err}");
        let rep = json(&r);
        let cert = &rep;
        assert_eq!(rep["subnetwork"]["degree"], if model.starts_with("mlp") { 3 } else { 2 });
        assert_eq!(rep["subnetwork"]["regularizer_degree"], rep["subnetwork"]["degree"]);
        // No exact polar for deep subnetworks: never certified, the loose upper bound reported.
        assert!(["heuristic", "stopped"].contains(&cert["status"].as_str().unwrap()), "{cert}");
        assert!(cert["polar_upper"].as_f64().unwrap() >= cert["polar_lower"].as_f64().unwrap());
        assert!(cert["polar_method"].as_str().unwrap().contains("heuristic"));
        let ev = d.join("ev.json");
        ok(&gonn(&["evaluate", "--model-file", s(&m), "--data", s(&data), "--report", s(&ev), "--quiet"]));
        let acc = json(&ev)["accuracy"].as_f64().unwrap();
        assert!(acc >= 0.85, "{model}: training accuracy {acc}");
        // The evaluated loss is the fit's loss (same standardization from the model file).
        let loss = json(&ev)["loss"].as_f64().unwrap();
        assert!((loss - cert["loss"].as_f64().unwrap()).abs() <= 1e-8 * loss.max(1.0), "{model}");
        let pred = d.join("labels.npy");
        ok(&gonn(&["predict", "--model-file", s(&m), "--data", s(&data), "--out", s(&pred)]));
        let labels = read_array(&pred, "labels").unwrap();
        let y = read_array(&data, "Y").unwrap();
        let hits = labels.data.iter().zip(&y.data).filter(|(a, b)| a == b).count();
        assert!((hits as f64 / 240.0 - acc).abs() < 1e-12, "{model}: predict and evaluate disagree");
        // Layers stored as [r, fan_in, fan_out].
        let header = std::fs::read(&m).unwrap();
        let n = u64::from_le_bytes(header[..8].try_into().unwrap()) as usize;
        let h: serde_json::Value = serde_json::from_slice(&header[8..8 + n]).unwrap();
        let shape = h["W1"]["shape"].as_array().unwrap().clone();
        let fan_in = if model.starts_with("mlp") { 65 } else { 10 };
        assert_eq!((shape.len(), shape[1].as_u64()), (3, Some(fan_in)), "{model}: {shape:?}");
        // The model file certifies again through `certify` (same numbers).
        let rc = d.join("rc.json");
        let mut cargs = vec![
            "certify",
            "--model",
            model,
            "--data",
            s(&data),
            "--loss",
            "softmax",
            "--lambda",
            "2",
            "--standardize",
            "--weights",
            s(&m),
            "--report",
            s(&rc),
            "--quiet",
        ];
        if model.starts_with("cnn") {
            cargs.extend(["--activation", "leaky:0.1"]);
        }
        ok(&gonn(&cargs));
        let c2 = &json(&rc);
        assert!(
            (c2["objective"].as_f64().unwrap() - cert["objective"].as_f64().unwrap()).abs() <= 1e-9 * loss.max(1.0)
        );
    }
}

#[test]
fn minibatch_descent_and_external_weights() {
    let d = tmpdir("deep-mb");
    let data = digits_subset(&d, 200);
    let r = d.join("r.json");
    ok(&gonn(&[
        "fit",
        "--model",
        "mlp:8",
        "--data",
        s(&data),
        "--loss",
        "softmax",
        "--lambda",
        "2",
        "--standardize",
        "--batch-size",
        "32",
        "--max-seconds",
        "4",
        "--report",
        s(&r),
        "--quiet",
    ]));
    let hist = json(&r)["history"].as_array().unwrap().clone();
    let objs: Vec<f64> = hist.iter().map(|h| h["objective"].as_f64().unwrap()).collect();
    assert!(objs.len() >= 2 && objs.last().unwrap() < &objs[0], "{objs:?}");
    // Weights made elsewhere: W1 [r, 65, 8], W2 [r, 8, 10] in an .npz.
    let mut rng = Rng::new(1);
    let mut arr = |shape: Vec<usize>| {
        let n = shape.iter().product();
        Array { shape, data: (0..n).map(|_| 0.1 * rng.normal()).collect() }
    };
    let (w1, w2) = (arr(vec![3, 65, 8]), arr(vec![3, 8, 10]));
    let wf = d.join("w.npz");
    write_npz(&wf, &[("W1", &w1), ("W2", &w2)]).unwrap();
    let rc = d.join("rc.json");
    ok(&gonn(&[
        "certify",
        "--model",
        "mlp:8",
        "--data",
        s(&data),
        "--loss",
        "softmax",
        "--lambda",
        "2",
        "--standardize",
        "--weights",
        s(&wf),
        "--report",
        s(&rc),
        "--quiet",
    ]));
    let c = &json(&rc);
    assert!(c["polar_lower"].as_f64().unwrap() > 1.0, "random weights must be improvable: {c}");
    assert!(c["gap_bound"].as_f64().unwrap() > 0.0);
    assert_ne!(c["status"], "certified");
}

#[test]
fn weight_decay_is_trained_at_fixed_width_with_a_warning() {
    let d = tmpdir("deep-wd");
    let data = digits_subset(&d, 120);
    let base = ["fit", "--model", "mlp:6,6", "--data", s(&data), "--loss", "softmax", "--lambda", "1", "--standardize"];
    let out = gonn(&[&base[..], &["--reg", "weight-decay"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--init-width"));
    let r = d.join("r.json");
    let err = ok(&gonn(
        &[&base[..], &["--reg", "weight-decay", "--init-width", "3", "--max-seconds", "3", "--report", s(&r)]].concat(),
    ));
    assert!(err.contains("warning: degree mismatch") && err.contains("degree 3") && err.contains("degree 2"), "{err}");
    let c = &json(&r);
    assert!(c["note"].as_str().unwrap().contains("local minimum"));
    assert!(c["gap_bound"].is_null());
    // `powers` is matched: no warning.
    let err = ok(&gonn(&[&base[..], &["--reg", "powers", "--max-seconds", "2"]].concat()));
    assert!(!err.contains("warning") && err.contains("powers regularizer of degree 3"), "{err}");
}

#[test]
fn deep_bad_input_gives_one_line_error() {
    let d = tmpdir("deep-bad");
    let data = digits_subset(&d, 30);
    let wf = d.join("w.npz");
    let z = |shape: Vec<usize>| Array { data: vec![0.0; shape.iter().product()], shape };
    write_npz(&wf, &[("W1", &z(vec![2, 65, 8])), ("W2", &z(vec![2, 7, 10]))]).unwrap();
    let before = files(&d);
    let out_model = d.join("never.safetensors");
    let cases: Vec<Vec<&str>> = vec![
        vec!["fit", "--model", "mlp:0", "--lambda", "1"],
        vec!["fit", "--model", "mlp:8,x", "--lambda", "1"],
        vec!["fit", "--model", "cnn:pool2", "--lambda", "1"],
        vec!["fit", "--model", "cnn:c4k3", "--image", "7x7", "--lambda", "1"],
        vec!["fit", "--model", "cnn:c4k9", "--lambda", "1"],
        vec!["fit", "--model", "mlp:8", "--activation", "leaky:2", "--lambda", "1"],
        vec!["fit", "--model", "mlp:8", "--activation", "tanh", "--lambda", "1"],
        vec!["fit", "--model", "mlp:8", "--reg", "l3", "--lambda", "1"],
        vec!["fit", "--model", "mlp:8", "--batch-size", "0", "--lambda", "1"],
        vec!["fit", "--model", "mlp:8", "--norms", "l1,l1", "--lambda", "1"],
        vec!["fit", "--model", "factor", "--reg", "powers", "--lambda", "1"],
        vec!["certify", "--model", "mlp:8", "--weights", s(&wf), "--lambda", "1"],
        vec!["certify", "--model", "mlp:8", "--reg", "weight-decay", "--weights", s(&wf), "--lambda", "1"],
    ];
    for args in cases {
        let mut full = args.clone();
        full.extend(["--data", s(&data), "--loss", "softmax"]);
        if full[0] == "fit" {
            full.extend(["--out", s(&out_model), "--max-seconds", "2"]);
        }
        let out = gonn(&full);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: ") && err.trim().lines().count() == 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"));
        assert_eq!(files(&d), before, "{args:?} left files behind");
    }
}

#[test]
fn experiments_run_in_small_mode_and_their_claims_hold() {
    let d = tmpdir("experiments");
    let digits = format!("{}/../../data/digits.npz", env!("CARGO_MANIFEST_DIR"));
    ok(&gonn(&["experiment", "all", "--small", "--out", s(&d), "--digits", &digits]));
    for name in ["homogeneity", "growth", "zero-subnetwork", "mismatch", "lambda-path"] {
        let dir = d.join(name);
        let res = json(&dir.join("results.json"));
        assert_eq!(res["holds"], true, "{name}: {res}");
        let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
        assert!(summary.contains("**HOLDS**"), "{name}");
        for f in res["figures"].as_array().unwrap() {
            let bytes = std::fs::read(dir.join(f.as_str().unwrap())).unwrap();
            assert!(bytes.starts_with(b"\x89PNG") || bytes.starts_with(b"<svg"), "{name}: {f}");
        }
        let n = &res["numbers"];
        match name {
            "homogeneity" => {
                assert!(n["worst_deviation"].as_f64().unwrap() < 1e-9 && n["tanh_spread"].as_f64().unwrap() > 0.01)
            }
            "growth" => {
                assert!(n["relative_spread"].as_f64().unwrap() < 1e-5);
                assert!(n["fixed_width"].as_array().unwrap().iter().any(|f| f["excess"].as_f64().unwrap() > 1e-3));
            }
            "zero-subnetwork" => {
                for run in n["runs"].as_array().unwrap() {
                    if run["local_minimum_with_zero_subnetwork"] == true {
                        assert!(run["relative_gap_to_lower_bound"].as_f64().unwrap() <= 1e-6, "{run}");
                    } else {
                        assert!(run["growing_the_zero_subnetwork_changes_f_by"].as_f64().unwrap() < 0.0, "{run}");
                    }
                }
            }
            "mismatch" => {
                assert_eq!(n["zero_is_local_min_wd"], true);
                assert_eq!(n["matched_descends"], true);
                assert!(n["weight_decay_trained"].as_f64().unwrap() < n["f0"].as_f64().unwrap());
            }
            _ => {
                let path = n["path"].as_array().unwrap();
                let r = |i: usize| path[i]["subnetworks"].as_u64().unwrap();
                assert!(r(0) < r(path.len() - 1), "sizes along the path: {path:?}");
            }
        }
    }
    let bad = gonn(&["experiment", "nonsense", "--out", s(&d)]);
    assert_eq!(bad.status.code(), Some(2));
}
