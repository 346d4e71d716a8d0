//! Stopping and continuing runs through the real binary: checkpoints, resume, Ctrl-C and SIGTERM.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{files, gonn, json, s, tmpdir};

use gonn::io::{load_model, write_npz, Array};
use gonn::numerics::rng::Rng;

fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    err
}

/// 1-D regression with a few kinks: `n` points of `sin(2t) + noise`.
fn regression(n: usize, d: usize, seed: u64) -> (Array, Array) {
    let mut rng = Rng::new(seed);
    let x: Vec<f64> = (0..n * d).map(|_| 4.0 * rng.uniform() - 2.0).collect();
    let y: Vec<f64> = (0..n).map(|i| (2.0 * x[i * d]).sin() + 0.1 * rng.normal()).collect();
    (Array { shape: vec![n, d], data: x }, Array { shape: vec![n], data: y })
}

fn fit_args<'a>(data: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["fit", "--model", "relu", "--data", data, "--lambda", "0.02", "--threads", "1", "--tol", "1e-8"];
    v.extend_from_slice(extra);
    v
}

#[test]
fn resumed_run_reaches_the_uninterrupted_optimum() {
    let d = tmpdir("resume");
    let (x, y) = regression(200, 1, 3);
    let data = d.join("train.npz");
    write_npz(&data, &[("X", &x), ("Y", &y)]).unwrap();
    let (full, part, resumed, ckpt) =
        (d.join("full.json"), d.join("part.json"), d.join("res.json"), d.join("run.ckpt"));

    ok(&gonn(&fit_args(s(&data), &["--report", s(&full)])));
    let full = json(&full);
    assert_eq!(full["termination"], "certified");
    let total = full["outer_iterations"].as_u64().unwrap();
    assert!(total >= 4, "the test needs a run of several outer iterations, got {total}");

    // Stopped after two iterations: the report says why, and says only what is proven.
    ok(&gonn(&fit_args(s(&data), &["--report", s(&part), "--checkpoint", s(&ckpt), "--max-outer", "2"])));
    let part = json(&part);
    assert_eq!(part["termination"], "max_outer");
    assert_eq!(part["stop_reason"], "max_outer");
    assert_ne!(part["status"], "stopped");
    let saved = load_model(&ckpt).unwrap();
    assert!(saved.metadata.contains_key("checkpoint"));
    // A checkpoint is a model file: predict reads it (the weights to continue from).
    let pred = d.join("pred.npy");
    ok(&gonn(&["predict", "--model-file", s(&ckpt), "--data", s(&data), "--out", s(&pred)]));
    assert_eq!(gonn::io::read_array(&pred, "").unwrap().shape, vec![200, 1]);
    std::fs::remove_file(&pred).unwrap();

    // Resumed (same data and problem): the same steps as the uninterrupted run.
    let err =
        ok(&gonn(&fit_args(s(&data), &["--report", s(&resumed), "--resume", s(&ckpt), "--checkpoint", s(&ckpt)])));
    assert!(err.contains("resuming"), "{err}");
    let res = json(&resumed);
    assert_eq!(res["status"], "certified");
    let (a, b) = (full["objective"].as_f64().unwrap(), res["objective"].as_f64().unwrap());
    assert!((a - b).abs() <= 1e-9 * a.abs(), "uninterrupted {a}, resumed {b}");
    assert_eq!(res["outer_iterations"].as_u64().unwrap(), total);
    assert_eq!(res["history"].as_array().unwrap().len() as u64, total);
    assert_eq!(files(&d), ["full.json", "part.json", "res.json", "run.ckpt", "train.npz"]);

    // Another lambda, other data, or a file that is no checkpoint: refused with exit 2, nothing written.
    let other = d.join("other.npz");
    let (x2, y2) = regression(200, 1, 4);
    write_npz(&other, &[("X", &x2), ("Y", &y2)]).unwrap();
    let bad = |args: Vec<&str>, needle: &str| {
        let out = gonn(&args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "expected `{needle}` in: {err}");
        assert!(!err.contains("panicked"), "{err}");
    };
    let mut wrong_lambda = fit_args(s(&data), &["--resume", s(&ckpt)]);
    wrong_lambda[6] = "0.03";
    bad(wrong_lambda, "lambda");
    bad(fit_args(s(&other), &["--resume", s(&ckpt)]), "another problem");
    bad(fit_args(s(&data), &["--resume", s(&data)]), "");
    bad(fit_args(s(&data), &["--out", s(&data)]), "input");
    bad(fit_args(s(&data), &["--checkpoint", s(&d.join("x.ckpt")), "--out", s(&d.join("x.ckpt"))]), "two");
    assert_eq!(files(&d), ["full.json", "other.npz", "part.json", "res.json", "run.ckpt", "train.npz"]);
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// A long fit interrupted by `signal` ends within a couple of seconds with exit code 130, and writes the model,
/// report and checkpoint of the best point reached (nothing half-written).
fn interrupt_with(signal: i32, name: &str) {
    let d = tmpdir(name);
    let (x, y) = regression(3000, 6, 5);
    let data = d.join("train.npz");
    write_npz(&data, &[("X", &x), ("Y", &y)]).unwrap();
    let (model, report, ckpt) = (d.join("net.safetensors"), d.join("report.json"), d.join("run.ckpt"));
    let plot = d.join("run.svg");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gonn"))
        .args(["fit", "--model", "relu", "--data", s(&data), "--lambda", "0.001", "--max-seconds", "120"])
        .args(["--out", s(&model), "--report", s(&report), "--checkpoint", s(&ckpt), "--polar-restarts", "64"])
        .args(["--plot", s(&plot)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(child.try_wait().unwrap().is_none(), "the fit ended before the signal; make the problem harder");
    let sent = Instant::now();
    // SAFETY: sends a signal to our own child process.
    assert_eq!(unsafe { kill(child.id() as i32, signal) }, 0);
    let out = child.wait_with_output().unwrap();
    let waited = sent.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(waited < Duration::from_secs(5), "took {waited:?} to stop");
    assert!(err.contains("interrupted"), "{err}");
    let r = json(&report);
    assert_eq!(r["termination"], "interrupted");
    assert!(r["objective"].as_f64().unwrap().is_finite());
    let m = load_model(&model).unwrap();
    assert_eq!(m.kind, "relu");
    assert!(load_model(&ckpt).unwrap().metadata.contains_key("checkpoint"));
    assert!(std::fs::read_to_string(&plot).unwrap().contains("</svg>"));
    assert_eq!(files(&d), ["net.safetensors", "report.json", "run.ckpt", "run.svg", "train.npz"]);
}

#[test]
fn ctrl_c_writes_the_best_point_and_exits_130() {
    interrupt_with(2, "sigint");
}

#[test]
fn sigterm_writes_the_best_point_and_exits_130() {
    interrupt_with(15, "sigterm");
}

#[test]
fn init_weights_from_another_tool_continue_to_the_optimum() {
    let d = tmpdir("init-weights");
    let (x, y) = regression(60, 1, 3);
    let data = d.join("train.npz");
    write_npz(&data, &[("X", &x), ("Y", &y)]).unwrap();
    // A random network as another tool would save it: W1 (d+1 x r, bias row last) and W2 (1 x r).
    let mut rng = Rng::new(8);
    let w1 = Array { shape: vec![2, 5], data: (0..10).map(|_| rng.normal()).collect() };
    let w2 = Array { shape: vec![1, 5], data: (0..5).map(|_| 0.3 * rng.normal()).collect() };
    let init = d.join("init.npz");
    write_npz(&init, &[("W1", &w1), ("W2", &w2)]).unwrap();
    let (fresh, warm) = (d.join("fresh.json"), d.join("warm.json"));
    let err = ok(&gonn(&fit_args(s(&data), &["--report", s(&fresh)])));
    assert!(err.contains("lambda_max"), "{err}");
    ok(&gonn(&fit_args(s(&data), &["--report", s(&warm), "--init-weights", s(&init)])));
    // The same network as PyTorch's state_dict of Sequential(Linear(1, 5), ReLU(), Linear(5, 1, bias=False)).
    let torch = [
        ("0.weight", Array { shape: vec![5, 1], data: w1.data[..5].to_vec() }),
        ("0.bias", Array { shape: vec![5], data: w1.data[5..].to_vec() }),
        ("2.weight", w2.clone()),
    ];
    let named: Vec<(&str, &Array)> = torch.iter().map(|(n, a)| (*n, a)).collect();
    let torch_init = d.join("torch.npz");
    write_npz(&torch_init, &named).unwrap();
    let from_torch = d.join("torch.json");
    ok(&gonn(&fit_args(s(&data), &["--report", s(&from_torch), "--init-weights", s(&torch_init)])));
    let (a, b, c) = (json(&fresh), json(&warm), json(&from_torch));
    let fa = a["objective"].as_f64().unwrap();
    for r in [&b, &c] {
        assert_eq!(r["status"], "certified");
        let fb = r["objective"].as_f64().unwrap();
        assert!((fa - fb).abs() <= 1e-7 * fa, "fresh {fa}, from the given weights {fb}");
    }
    // Both layouts hold the same network, so the two warm starts take the same steps.
    let first = |r: &serde_json::Value| r["history"][0]["objective"].as_f64().unwrap();
    assert!((first(&b) - first(&c)).abs() <= 1e-12 * first(&b), "{} vs {}", first(&b), first(&c));
    // Weights of the wrong shape, or together with --init-rank: refused.
    let bad = d.join("bad.npz");
    write_npz(&bad, &[("W1", &Array { shape: vec![3, 5], data: vec![0.0; 15] }), ("W2", &w2)]).unwrap();
    for extra in [vec!["--init-weights", s(&bad)], vec!["--init-weights", s(&init), "--init-rank", "2"]] {
        let out = gonn(&fit_args(s(&data), &extra));
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::remove_dir_all(&d).ok();
}
