//! Runs the real `gonn` binary: the user-facing commands and every kind of bad input.

mod common;

use common::{files, gonn, json, s, tmpdir};

use gonn::faer::Mat;
use gonn::io::{write_npy, write_npz, Array};

fn matrix(m: usize, n: usize, seed: u64) -> Mat<f64> {
    gonn::datasets::low_rank(m, n, 2, 0.1, 1.0, seed).y
}

#[test]
fn fit_then_certify_roundtrip_with_mask() {
    let d = tmpdir("fit");
    let data = gonn::datasets::low_rank(30, 20, 2, 0.05, 0.6, 3);
    let mask = data.mask.unwrap();
    write_npz(d.join("Y.npz"), &[("Y", &Array::from_mat(&data.y)), ("mask", &Array::from_mat(&mask))]).unwrap();
    let (model, report, plot, png, log) =
        (d.join("model.safetensors"), d.join("report.json"), d.join("run.svg"), d.join("run.png"), d.join("log.jsonl"));
    let out = gonn(&[
        "fit",
        "--model",
        "factor",
        "--data",
        s(&d.join("Y.npz")),
        "--lambda",
        "1.0",
        "--norms",
        "l2,l2",
        "--out",
        s(&model),
        "--report",
        s(&report),
        "--plot",
        s(&plot),
        "--log-json",
        s(&log),
        "--threads",
        "1",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Streams: the result (status, certificate, files written) on standard output, the progress on standard
    // error.
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("status: certified") && stdout.contains("CERTIFIED"), "{stdout}");
    assert!(stdout.contains(&format!("report written to {}", report.display())), "{stdout}");
    assert!(stderr.contains("outer") && stderr.contains("lambda_max") && !stderr.contains("CERTIFIED"), "{stderr}");
    assert!(!stdout.contains("lambda_max") && !stdout.contains("polar lo"), "{stdout}");
    let r = json(&report);
    for key in [
        "objective",
        "loss",
        "regularizer",
        "lambda",
        "subnetworks",
        "polar_lower",
        "polar_upper",
        "polar_exact",
        "gap_bound",
        "status",
        "outer_iterations",
        "seconds",
    ] {
        assert!(r.get(key).is_some(), "report lacks {key}");
    }
    assert_eq!(r["status"], "certified");
    assert!(r["polar_upper"].as_f64().unwrap() <= 1.0 + 1e-6);
    assert!(std::fs::read_to_string(&plot).unwrap().starts_with("<svg"));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        r["outer_iterations"].as_u64().unwrap() as usize
    );
    // The saved model certifies as optimal on the same data.
    let report2 = d.join("check.json");
    let out = gonn(&[
        "certify",
        "--data",
        s(&d.join("Y.npz")),
        "--lambda",
        "1.0",
        "--weights",
        s(&model),
        "--report",
        s(&report2),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "--quiet prints nothing");
    let r2 = json(&report2);
    assert_eq!(r2["status"], "certified");
    assert!(
        (r2["objective"].as_f64().unwrap() - r["objective"].as_f64().unwrap()).abs()
            < 1e-9 * r["objective"].as_f64().unwrap()
    );
    // PNG plots too.
    let out = gonn(&["fit", "--data", s(&d.join("Y.npz")), "--lambda", "1.0", "--plot", s(&png), "--quiet"]);
    assert!(out.status.success());
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn certify_weights_from_another_tool() {
    let d = tmpdir("certify");
    let y = matrix(15, 12, 4);
    write_npy(d.join("Y.npy"), &Array::from_mat(&y)).unwrap();
    let mut rng = gonn::numerics::rng::Rng::new(1);
    let (u, v) = (rng.normal_mat(15, 3), rng.normal_mat(12, 3));
    write_npz(d.join("w.npz"), &[("U", &Array::from_mat(&u)), ("V", &Array::from_mat(&v))]).unwrap();
    let out = gonn(&[
        "certify",
        "--data",
        s(&d.join("Y.npy")),
        "--lambda",
        "0.5",
        "--weights",
        s(&d.join("w.npz")),
        "--report",
        s(&d.join("r.json")),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = json(&d.join("r.json"));
    assert_ne!(r["status"], "certified");
    assert!(r["gap_bound"].as_f64().unwrap() > 0.0);
    assert!(r["polar_lower"].as_f64().unwrap() > 1.0);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn cp_fit_from_npz_and_csv_input() {
    let d = tmpdir("cp");
    let mut rng = gonn::numerics::rng::Rng::new(2);
    let t = Array { shape: vec![4, 3, 3], data: (0..36).map(|_| rng.normal()).collect() };
    write_npz(d.join("T.npz"), &[("Y", &t)]).unwrap();
    let out = gonn(&[
        "fit",
        "--model",
        "cp",
        "--data",
        s(&d.join("T.npz")),
        "--lambda",
        "0.7",
        "--report",
        s(&d.join("r.json")),
        "--out",
        s(&d.join("m.safetensors")),
        "--quiet",
        "--max-seconds",
        "20",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = json(&d.join("r.json"));
    assert_eq!(r["polar_exact"], false);
    assert!(r["polar_upper"].as_f64().is_some());
    let out = gonn(&[
        "certify",
        "--model",
        "cp",
        "--data",
        s(&d.join("T.npz")),
        "--lambda",
        "0.7",
        "--weights",
        s(&d.join("m.safetensors")),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // CSV input for a matrix.
    std::fs::write(d.join("y.csv"), "a,b,c\n1,2,3\n4,5,6\n7,8,10\n").unwrap();
    let out = gonn(&["fit", "--data", s(&d.join("y.csv")), "--lambda", "0.5", "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn bad_input_gives_one_line_error_and_no_output() {
    let d = tmpdir("bad");
    let y = matrix(6, 5, 1);
    let good = d.join("good.npz");
    write_npz(&good, &[("Y", &Array::from_mat(&y))]).unwrap();
    let mut nan = Array::from_mat(&y);
    nan.data[3] = f64::NAN;
    write_npz(d.join("nan.npz"), &[("Y", &nan)]).unwrap();
    let mut inf = Array::from_mat(&y);
    inf.data[0] = f64::INFINITY;
    write_npy(d.join("inf.npy"), &inf).unwrap();
    write_npz(d.join("badmask.npz"), &[("Y", &Array::from_mat(&y)), ("mask", &Array::from_mat(&Mat::zeros(5, 5)))])
        .unwrap();
    let vector = Array { shape: vec![7], data: vec![1.0; 7] };
    write_npz(d.join("vec.npz"), &[("Y", &vector)]).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(d.join("trunc.npz"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(d.join("corrupt.npy"), b"\x93NUMPY garbage").unwrap();
    write_npz(
        d.join("wrongw.npz"),
        &[("U", &Array::from_mat(&Mat::zeros(4, 2))), ("V", &Array::from_mat(&Mat::zeros(5, 2)))],
    )
    .unwrap();
    write_npz(
        d.join("mismatch.npz"),
        &[("U", &Array::from_mat(&Mat::zeros(6, 2))), ("V", &Array::from_mat(&Mat::zeros(5, 3)))],
    )
    .unwrap();
    let logistic_bad = good.clone();
    let before = files(&d);
    let out_file = d.join("out.safetensors");
    let report = d.join("r.json");
    let g = s(&good);
    let p_badmask_npz = d.join("badmask.npz").to_str().unwrap().to_string();
    let p_corrupt_npy = d.join("corrupt.npy").to_str().unwrap().to_string();
    let p_inf_npy = d.join("inf.npy").to_str().unwrap().to_string();
    let p_mismatch_npz = d.join("mismatch.npz").to_str().unwrap().to_string();
    let p_missing_npz = d.join("missing.npz").to_str().unwrap().to_string();
    let p_nan_npz = d.join("nan.npz").to_str().unwrap().to_string();
    let p_trunc_npz = d.join("trunc.npz").to_str().unwrap().to_string();
    let p_vec_npz = d.join("vec.npz").to_str().unwrap().to_string();
    let p_wrongw_npz = d.join("wrongw.npz").to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["fit", "--data", &p_nan_npz, "--lambda", "1"], "non-finite"),
        (vec!["fit", "--data", &p_inf_npy, "--lambda", "1"], "non-finite"),
        (vec!["fit", "--data", g, "--lambda", "-1"], "lambda"),
        (vec!["fit", "--data", g, "--lambda", "0"], "lambda"),
        (vec!["fit", "--data", g, "--lambda", "nan"], "lambda"),
        (vec!["fit", "--data", &p_badmask_npz, "--lambda", "1"], "mask"),
        (vec!["fit", "--data", &p_vec_npz, "--lambda", "1"], "shape"),
        (vec!["fit", "--data", &p_trunc_npz, "--lambda", "1"], "cannot read"),
        (vec!["fit", "--data", &p_corrupt_npy, "--lambda", "1"], "cannot read"),
        (vec!["fit", "--data", &p_missing_npz, "--lambda", "1"], "missing.npz"),
        (vec!["fit", "--data", g, "--lambda", "1", "--norms", "l2,l7"], "unknown norm"),
        (vec!["fit", "--data", g, "--lambda", "1", "--norms", "l1l2:-2,l2"], "GAMMA"),
        (vec!["fit", "--data", g, "--lambda", "1", "--nonneg", "w"], "nonneg"),
        (vec!["fit", "--data", g, "--lambda", "1", "--loss", "hinge"], "unknown loss"),
        (vec!["fit", "--data", s(&logistic_bad), "--lambda", "1", "--loss", "logistic"], "0/1"),
        (vec!["fit", "--data", g, "--lambda", "1", "--key", "X"], "no array named `X`"),
        (vec!["fit", "--model", "cp", "--data", g, "--lambda", "1"], "3-way"),
        (vec!["fit", "--model", "mlp", "--data", g, "--lambda", "1"], "unknown model"),
        (vec!["fit", "--data", g, "--lambda", "1", "--tol", "0"], "tol"),
        (vec!["fit", "--data", g, "--lambda", "1", "--out", "/nonexistent-dir/m.safetensors"], "does not exist"),
        (vec!["certify", "--data", g, "--lambda", "1", "--weights", &p_wrongw_npz], "weight layer 0"),
        (vec!["certify", "--data", g, "--lambda", "1", "--weights", &p_mismatch_npz], "columns"),
        (vec!["certify", "--data", g, "--lambda", "1", "--weights", &p_corrupt_npy], "cannot read"),
        (vec!["certify", "--data", g, "--lambda", "1", "--weights", s(&good)], "no array named `U`"),
    ];
    for (mut args, expect) in cases {
        args.extend(["--report", s(&report)]);
        if args[0] == "fit" && !args.contains(&"--out") {
            args.extend(["--out", s(&out_file)]);
        }
        let out = gonn(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line expected, got {err}");
        assert!(err.starts_with("error: ") && err.contains(expect), "{args:?}: `{expect}` not in {err}");
        assert_eq!(files(&d), before, "{args:?} left files behind");
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn help_explains_every_subcommand() {
    let out = gonn(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["demo", "fit", "certify"] {
        assert!(text.contains(sub));
        let out = gonn(&[sub, "--help"]);
        assert!(out.status.success());
    }
    let fit_help = String::from_utf8_lossy(&gonn(&["fit", "--help"]).stdout).to_string();
    for opt in [
        "--lambda",
        "--norms",
        "--nonneg",
        "--loss",
        "--tol",
        "--max-outer",
        "--max-seconds",
        "--init-rank",
        "--seed",
        "--plot",
        "--quiet",
        "--log-json",
        "--out",
        "--report",
    ] {
        assert!(fit_help.contains(opt), "fit --help lacks {opt}");
    }
}

#[test]
fn demo_runs_and_certifies() {
    let d = tmpdir("demo");
    let out = gonn(&["demo", "--out-dir", s(&d)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = json(&d.join("report.json"));
    assert_eq!(r["status"], "certified");
    assert_eq!(r["subnetworks"], 8);
    for f in ["data.npz", "model.safetensors", "run.svg", "report.json"] {
        assert!(d.join(f).exists(), "demo did not write {f}");
    }
    std::fs::remove_dir_all(&d).ok();
}
