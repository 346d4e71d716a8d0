//! The `relu` model through the real binary: fit, certify, predict, evaluate, and bad input.

mod common;

use std::process::{Command, Output};

use common::{files, gonn, json, s, tmpdir};

use gonn::faer::Mat;
use gonn::io::{read_array, write_npy, write_npz, Array};
use gonn::numerics::rng::Rng;

fn shipped(name: &str) -> String {
    format!("{}/../../data/{name}.npz", env!("CARGO_MANIFEST_DIR"))
}

/// Standard error followed by standard output, of a run that succeeded.
fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{err}");
    err
}

/// 1-D regression: `n` points, `y = |t| - 0.5 + noise`.
fn regression(n: usize, seed: u64) -> (Array, Array) {
    let mut rng = Rng::new(seed);
    let t: Vec<f64> = (0..n).map(|_| 4.0 * rng.uniform() - 2.0).collect();
    let y: Vec<f64> = t.iter().map(|v| v.abs() - 0.5 + 0.05 * rng.normal()).collect();
    (Array { shape: vec![n, 1], data: t }, Array { shape: vec![n], data: y })
}

#[test]
fn regression_fit_is_certified_and_predicts() {
    let d = tmpdir("relu-reg");
    let (x, y) = regression(40, 1);
    write_npz(d.join("train.npz"), &[("X", &x), ("Y", &y)]).unwrap();
    let (model, report, plot) = (d.join("net.safetensors"), d.join("report.json"), d.join("run.png"));
    let err = ok(&gonn(&[
        "fit",
        "--model",
        "relu",
        "--data",
        s(&d.join("train.npz")),
        "--lambda",
        "0.05",
        "--out",
        s(&model),
        "--report",
        s(&report),
        "--plot",
        s(&plot),
        "--init-width",
        "3",
    ]));
    assert!(err.contains("CERTIFIED"), "{err}");
    let r = json(&report);
    assert_eq!(r["status"], "certified");
    assert_eq!(r["model"], "relu");
    assert_eq!(r["polar_exact"], true);
    assert!(r["subnetworks"].as_u64().unwrap() >= 2);
    assert!(plot.exists());
    // The same data as .csv inputs plus .npy targets gives the same optimum.
    let csv: String = x.data.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(d.join("x.csv"), format!("t\n{csv}")).unwrap();
    write_npy(d.join("y.npy"), &y).unwrap();
    let report2 = d.join("report2.json");
    ok(&gonn(&[
        "fit",
        "--model",
        "relu",
        "--data",
        s(&d.join("x.csv")),
        "--targets",
        s(&d.join("y.npy")),
        "--lambda",
        "0.05",
        "--report",
        s(&report2),
        "--quiet",
    ]));
    let (f1, f2) = (r["objective"].as_f64().unwrap(), json(&report2)["objective"].as_f64().unwrap());
    assert!((f1 - f2).abs() <= 2e-6 * f1, "{f1} vs {f2}");
    // Certifying the saved model reproduces the certificate.
    let cert = d.join("cert.json");
    ok(&gonn(&[
        "certify",
        "--model",
        "relu",
        "--data",
        s(&d.join("train.npz")),
        "--lambda",
        "0.05",
        "--weights",
        s(&model),
        "--report",
        s(&cert),
    ]));
    assert_eq!(json(&cert)["status"], "certified");
    // Predictions are the network outputs: their squared error is the reported loss.
    let pred = d.join("pred.npy");
    ok(&gonn(&["predict", "--model-file", s(&model), "--data", s(&d.join("train.npz")), "--out", s(&pred)]));
    let p = read_array(&pred, "").unwrap();
    assert_eq!(p.shape, vec![40, 1]);
    let loss: f64 = 0.5 * p.data.iter().zip(&y.data).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
    assert!((loss - r["loss"].as_f64().unwrap()).abs() <= 1e-9 * loss.max(1.0), "{loss} vs {}", r["loss"]);
    let ev = d.join("eval.json");
    ok(&gonn(&["evaluate", "--model-file", s(&model), "--data", s(&d.join("train.npz")), "--report", s(&ev)]));
    let e = json(&ev);
    assert!((e["mse"].as_f64().unwrap() - 2.0 * loss / 40.0).abs() < 1e-9);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn classification_on_shipped_data_sets() {
    let d = tmpdir("relu-cls");
    for (name, loss, lambda, min_acc, classes) in
        [("breast_cancer", "logistic", "1", 0.95, 2usize), ("iris", "softmax", "1", 0.95, 3)]
    {
        let (model, report) = (d.join(format!("{name}.safetensors")), d.join(format!("{name}.json")));
        let data = shipped(name);
        ok(&gonn(&[
            "fit",
            "--model",
            "relu",
            "--data",
            &data,
            "--loss",
            loss,
            "--lambda",
            lambda,
            "--standardize",
            "--max-seconds",
            "8",
            "--out",
            s(&model),
            "--report",
            s(&report),
            "--quiet",
        ]));
        let r = json(&report);
        if classes == 2 {
            // Rank of [X, 1] is 31: the branch and bound does not close within the limit.
            assert_eq!(r["polar_exact"], false, "{name}");
            assert_ne!(r["status"], "certified", "{name}");
        } else {
            // Three classes on 4 features (5-D with the bias): the cover of the output directions over
            // branch-and-bound scalar polars certifies (about a second on one core); its searches stop once the
            // bound certifies, so the bracket need not close (`polar_exact` may be false).
            assert_eq!(r["status"], "certified", "{name}: {}", r["summary"]);
            assert!(r["relative_gap"].as_f64().unwrap() <= 1e-6, "{name}: {}", r["summary"]);
            assert!(r["polar_method"].as_str().unwrap().contains("cover of the output directions"));
        }
        assert!(r["polar_upper"].as_f64().unwrap() >= r["polar_lower"].as_f64().unwrap());
        let ev = d.join(format!("{name}-eval.json"));
        ok(&gonn(&["evaluate", "--model-file", s(&model), "--data", &data, "--report", s(&ev), "--quiet"]));
        let acc = json(&ev)["accuracy"].as_f64().unwrap();
        assert!(acc >= min_acc, "{name}: training accuracy {acc}");
        let pred = d.join(format!("{name}-labels.npy"));
        ok(&gonn(&["predict", "--model-file", s(&model), "--data", &data, "--out", s(&pred)]));
        let labels = read_array(&pred, "").unwrap();
        let truth = read_array(&data, "Y").unwrap();
        assert_eq!(labels.shape, truth.shape);
        assert!(labels.data.iter().all(|l| l.fract() == 0.0 && *l >= 0.0 && (*l as usize) < classes));
        let agree =
            labels.data.iter().zip(&truth.data).filter(|(a, b)| a == b).count() as f64 / truth.data.len() as f64;
        assert!((agree - acc).abs() < 1e-12, "predict and evaluate disagree");
    }
    std::fs::remove_dir_all(&d).ok();
}

/// Weights laid out as PyTorch stores `Sequential(Linear(d, r), ReLU(), Linear(r, C, bias=False))`:
/// `W1 = l1.weight.T` with `b1 = l1.bias` (or the bias as the last row of W1), `W2 = l2.weight`.
#[test]
fn certify_weights_trained_elsewhere() {
    let d = tmpdir("relu-ext");
    let (x, y) = regression(30, 2);
    let train = d.join("train.npz");
    write_npz(&train, &[("X", &x), ("Y", &y)]).unwrap();
    let mut rng = Rng::new(3);
    let (w1, b1, w2) = (rng.normal_mat(1, 6), rng.normal_mat(6, 1), rng.normal_mat(1, 6));
    write_npz(
        d.join("sep.npz"),
        &[("W1", &Array::from_mat(&w1)), ("b1", &Array::from_mat(&b1)), ("W2", &Array::from_mat(&w2))],
    )
    .unwrap();
    let stacked = Mat::from_fn(2, 6, |i, j| if i == 0 { w1[(0, j)] } else { b1[(j, 0)] });
    write_npz(d.join("stacked.npz"), &[("W1", &Array::from_mat(&stacked)), ("W2", &Array::from_mat(&w2))]).unwrap();
    // PyTorch's state_dict of Sequential(Linear(1, 6), ReLU(), Linear(6, 1, bias=False)): weights are (out, in).
    let torch = [
        ("net.0.weight", Array::from_mat(&w1.transpose().to_owned())),
        ("net.0.bias", Array { shape: vec![6], data: (0..6).map(|j| b1[(j, 0)]).collect() }),
        ("net.2.weight", Array::from_mat(&w2)),
    ];
    let named: Vec<(&str, &Array)> = torch.iter().map(|(n, a)| (*n, a)).collect();
    write_npz(d.join("torch.npz"), &named).unwrap();
    let mut objectives = Vec::new();
    for f in ["sep.npz", "stacked.npz", "torch.npz"] {
        let rep = d.join(format!("{f}.json"));
        ok(&gonn(&[
            "certify",
            "--model",
            "relu",
            "--data",
            s(&train),
            "--lambda",
            "0.05",
            "--weights",
            s(&d.join(f)),
            "--report",
            s(&rep),
        ]));
        let r = json(&rep);
        assert_ne!(r["status"], "certified");
        assert!(r["polar_lower"].as_f64().unwrap() > 1.0);
        assert!(r["gap_bound"].as_f64().unwrap() > 0.0);
        // The certificate's own time is reported (a polar and its refinement: more than nothing).
        assert!(r["seconds"].as_f64().unwrap() > 0.0);
        // The unit that would improve the network: u (input plus bias) and v, each of unit norm.
        let unit = r["improving_subnetwork"].as_array().unwrap();
        assert_eq!(unit[0].as_array().unwrap().len(), 2);
        let un: f64 = unit[0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap().powi(2)).sum();
        assert!((un - 1.0).abs() < 1e-9);
        objectives.push(r["objective"].as_f64().unwrap());
    }
    assert!(objectives.iter().all(|o| (o - objectives[0]).abs() <= 1e-12 * objectives[0]), "{objectives:?}");
    // A bias on the last Linear (PyTorch's default) is an output offset the model does not have: refused by name.
    let mut with_b2: Vec<(&str, &Array)> = named.clone();
    let b2 = Array { shape: vec![1], data: vec![0.3] };
    with_b2.push(("net.2.bias", &b2));
    write_npz(d.join("b2.npz"), &with_b2).unwrap();
    let out = gonn(&[
        "certify",
        "--model",
        "relu",
        "--data",
        s(&train),
        "--lambda",
        "0.05",
        "--weights",
        s(&d.join("b2.npz")),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("net.2.bias") && err.contains("b2"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn relu_bad_input_gives_one_line_error() {
    let d = tmpdir("relu-bad");
    let (x, y) = regression(10, 4);
    let good = d.join("good.npz");
    write_npz(&good, &[("X", &x), ("Y", &y)]).unwrap();
    let short_y = Array { shape: vec![9], data: y.data[..9].to_vec() };
    write_npz(d.join("rows.npz"), &[("X", &x), ("Y", &short_y)]).unwrap();
    let labels = |v: Vec<f64>| Array { shape: vec![v.len()], data: v };
    let mut neg = vec![0.0; 10];
    neg[3] = -1.0;
    write_npz(d.join("neg.npz"), &[("X", &x), ("Y", &labels(neg))]).unwrap();
    let mut frac = vec![1.0; 10];
    frac[0] = 0.5;
    write_npz(d.join("frac.npz"), &[("X", &x), ("Y", &labels(frac))]).unwrap();
    let mut two = vec![0.0; 10];
    two[1] = 2.0;
    write_npz(d.join("two.npz"), &[("X", &x), ("Y", &labels(two))]).unwrap();
    let mut rng = Rng::new(5);
    let wide = Array { shape: vec![10, 5], data: (0..50).map(|_| rng.normal()).collect() };
    write_npz(d.join("wide.npz"), &[("X", &wide), ("Y", &y)]).unwrap();
    let w = |name: &str, w1: (usize, usize), w2: (usize, usize)| {
        write_npz(
            d.join(name),
            &[("W1", &Array::from_mat(&Mat::zeros(w1.0, w1.1))), ("W2", &Array::from_mat(&Mat::zeros(w2.0, w2.1)))],
        )
        .unwrap();
    };
    w("w1rows.npz", (4, 3), (1, 3));
    w("w2rows.npz", (2, 3), (2, 3));
    w("nobias.npz", (1, 3), (1, 3));
    w("cols.npz", (2, 3), (1, 4));
    let before = files(&d);
    let p = |f: &str| d.join(f).to_str().unwrap().to_string();
    let (g, rows, neg, frac, two, widep) =
        (p("good.npz"), p("rows.npz"), p("neg.npz"), p("frac.npz"), p("two.npz"), p("wide.npz"));
    let (w1rows, w2rows, nobias, cols) = (p("w1rows.npz"), p("w2rows.npz"), p("nobias.npz"), p("cols.npz"));
    let relu = |v: &[&str]| {
        let mut a = vec!["fit", "--model", "relu", "--lambda", "0.1"];
        a.extend_from_slice(v);
        a.iter().map(|s| s.to_string()).collect::<Vec<String>>()
    };
    let cert = |data: &str, weights: &str| {
        ["certify", "--model", "relu", "--lambda", "0.1", "--data", data, "--weights", weights]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<String>>()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (relu(&["--data", &rows]), "same number of rows"),
        (relu(&["--data", &neg, "--loss", "softmax"]), "label out of range"),
        (relu(&["--data", &frac, "--loss", "softmax"]), "label out of range"),
        (relu(&["--data", &two, "--loss", "logistic"]), "label out of range"),
        (relu(&["--data", &widep, "--polar", "exact"]), "rank"),
        (relu(&["--data", &g, "--output-norm", "l3"]), "norm"),
        (relu(&["--data", &g, "--polar", "fast"]), "polar"),
        (relu(&["--data", &g, "--x-key", "Z"]), "no array named `Z`"),
        (relu(&["--data", &p("x.csv")]), "x.csv"),
        (
            vec!["fit".into(), "--data".into(), g.clone(), "--lambda".into(), "1".into(), "--no-bias".into()],
            "relu only",
        ),
        (cert(&g, &w1rows), "W1 is 4 x 3"),
        (cert(&g, &w2rows), "W2 is 2 x 3"),
        (cert(&g, &nobias), "--no-bias"),
        (cert(&g, &cols), "columns"),
        (
            vec![
                "predict".into(),
                "--model-file".into(),
                w1rows.clone(),
                "--data".into(),
                g.clone(),
                "--out".into(),
                p("o.npy"),
            ],
            "relu model",
        ),
    ];
    for (mut args, expect) in cases {
        args.extend(["--report".to_string(), p("r.json")]);
        if args[0] == "predict" {
            args.truncate(args.len() - 2);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_gonn")).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line expected, got {err}");
        assert!(err.starts_with("error: ") && err.contains(expect), "{args:?}: `{expect}` not in {err}");
        assert_eq!(files(&d), before, "{args:?} left files behind");
    }
    // A model trained on 1 feature applied to 5 features is an error too.
    let model = p("m.safetensors");
    ok(&gonn(&["fit", "--model", "relu", "--data", &g, "--lambda", "0.1", "--out", &model, "--quiet"]));
    let out = gonn(&["evaluate", "--model-file", &model, "--data", &widep]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("features"));
    std::fs::remove_dir_all(&d).ok();
}

/// Four input features (no enumeration): `--polar auto` runs the branch and bound, the report names it with its
/// node counts, the fit is certified, and `gonn certify --polar-seconds` of half its units proves a gap that covers
/// the true excess.
#[test]
fn branch_and_bound_certifies_four_features() {
    let d = tmpdir("relu-bab");
    let mut rng = Rng::new(9);
    let n = 40;
    let xs: Vec<f64> = (0..n * 4).map(|_| rng.normal()).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| {
            let r = &xs[4 * i..4 * i + 4];
            (r[0] - 0.5 * r[1] + 0.3 * r[3]).max(0.0) - (r[2] + 0.3).max(0.0) + 0.1 * rng.normal()
        })
        .collect();
    let data = d.join("train.npz");
    write_npz(&data, &[("X", &Array { shape: vec![n, 4], data: xs }), ("Y", &Array { shape: vec![n], data: y })])
        .unwrap();
    let (model, report) = (d.join("net.safetensors"), d.join("report.json"));
    ok(&gonn(&[
        "fit",
        "--model",
        "relu",
        "--data",
        s(&data),
        "--lambda",
        "0.3",
        "--threads",
        "2",
        "--polar-seconds",
        "20",
        "--out",
        s(&model),
        "--report",
        s(&report),
        "--quiet",
    ]));
    let r = json(&report);
    assert_eq!(r["status"], "certified", "{r}");
    let method = r["polar_method"].as_str().unwrap();
    assert!(method.contains("branch and bound") && method.contains("nodes explored"), "{method}");
    let best = r["objective"].as_f64().unwrap();
    // Half of the units (rows of W1 are inputs + bias, W2 is 1 x r) as an outside model.
    let w = gonn::io::load_weights(&model, "relu").unwrap().weights;
    let (w1, w2) = (&w.layers[0], &w.layers[1]);
    let (rows, keep) = (w1.nrows(), (w1.ncols() / 2).max(1));
    let half1: Vec<f64> = (0..rows * keep).map(|t| w1[(t / keep, t % keep)]).collect();
    let half2: Vec<f64> = (0..keep).map(|j| w2[(0, j)]).collect();
    let weights = d.join("half.npz");
    write_npz(
        &weights,
        &[
            ("W1", &Array { shape: vec![rows, keep], data: half1 }),
            ("W2", &Array { shape: vec![1, keep], data: half2 }),
        ],
    )
    .unwrap();
    let creport = d.join("certify.json");
    ok(&gonn(&[
        "certify",
        "--model",
        "relu",
        "--data",
        s(&data),
        "--lambda",
        "0.3",
        "--weights",
        s(&weights),
        "--polar-seconds",
        "5",
        "--report",
        s(&creport),
        "--quiet",
    ]));
    let c = json(&creport);
    assert!(c["polar_method"].as_str().unwrap().contains("branch and bound"));
    let gap = c["gap_bound"].as_f64().unwrap();
    assert!(gap >= c["objective"].as_f64().unwrap() - best - 1e-9 * best, "{c}");
    assert!(c["optimum_lower_bound"].as_f64().unwrap() <= best * (1.0 + 1e-9));
}
