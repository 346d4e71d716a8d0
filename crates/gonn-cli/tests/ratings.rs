//! `gonn fit --model factor` on ratings files the way recommender data comes (MovieLens CSV and `::` files,
//! triplet `.npz`), held-out RMSE, the lambda path, `gonn predict` by id, and bad input.

mod common;

use std::fmt::Write as _;

use common::{gonn, json, s, tmpdir};
use gonn::io::{write_npz, Array};
use gonn::numerics::rng::Rng;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// A small ratings table with string-like ids (`1..=m` users, item ids `1000 + j`), as `(user, item, rating)`.
fn ratings(m: usize, n: usize, p: f64, seed: u64) -> Vec<(usize, usize, f64)> {
    let mut rng = Rng::new(seed);
    let a: Vec<f64> = (0..m).map(|_| rng.normal()).collect();
    let b: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let mut out = vec![];
    for (i, ai) in a.iter().enumerate() {
        for (j, bj) in b.iter().enumerate() {
            if rng.uniform() < p || j == i % n || i == j % m {
                let y = (3.0 + ai * bj + 0.3 * rng.normal()).clamp(1.0, 5.0);
                out.push((i + 1, 1000 + j, (y * 2.0).round() / 2.0));
            }
        }
    }
    out
}

fn write_csv(path: &std::path::Path, r: &[(usize, usize, f64)]) {
    let mut t = String::from("userId,movieId,rating,timestamp\n");
    for (k, (u, i, y)) in r.iter().enumerate() {
        writeln!(t, "{u},{i},{y},{}", 978300000 + k).unwrap();
    }
    std::fs::write(path, t).unwrap();
}

#[test]
fn movielens_csv_certifies_and_predicts_by_id() {
    let d = tmpdir("ratings-csv");
    let r = ratings(60, 40, 0.3, 1);
    let csv = d.join("ratings.csv");
    write_csv(&csv, &r);
    let (model, rep) = (d.join("m.safetensors"), d.join("rep.json"));
    let out = gonn(&[
        "fit",
        "--model",
        "factor",
        "--data",
        s(&csv),
        "--lambda",
        "3",
        "--biases",
        "both",
        "--out",
        s(&model),
        "--report",
        s(&rep),
        "--threads",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let so = text(&out.stdout);
    assert!(so.contains("status: certified") && so.contains("<= tol"), "{so}");
    let err = text(&out.stderr);
    assert!(err.contains(&format!("read {} ratings of 60 rows", r.len())) && err.contains("lambda_max"), "{err}");
    let report = json(&rep);
    assert_eq!(report["status"], "certified");
    assert_eq!(report["shape"], serde_json::json!([60, 40]));
    assert!(report["optimum_lower_bound"].as_f64().unwrap() <= report["objective"].as_f64().unwrap());
    // Predict the training pairs by id: their RMSE is the fit's, recomputed from the predictions.
    let pairs = d.join("pairs.csv");
    let mut t = String::from("userId,movieId\n");
    for (u, i, _) in &r {
        writeln!(t, "{u},{i}").unwrap();
    }
    std::fs::write(&pairs, t).unwrap();
    let pred = d.join("pred.csv");
    let out = gonn(&["predict", "--model-file", s(&model), "--data", s(&pairs), "--out", s(&pred)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = std::fs::read_to_string(&pred).unwrap().lines().map(str::to_string).collect();
    assert_eq!(lines[0], "user,item,prediction");
    assert_eq!(lines.len(), r.len() + 1);
    let mut loss = 0.0;
    for (line, (u, i, y)) in lines[1..].iter().zip(&r) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!((f[0], f[1]), (u.to_string().as_str(), i.to_string().as_str()));
        loss += 0.5 * (y - f[2].parse::<f64>().unwrap()).powi(2);
    }
    let reported = report["loss"].as_f64().unwrap();
    assert!((loss - reported).abs() <= 1e-8 * reported, "{loss} vs {reported}");
    // An id the model has never seen is an error (exit 2), not a guess.
    std::fs::write(&pairs, "1,999999\n").unwrap();
    let out = gonn(&["predict", "--model-file", s(&model), "--data", s(&pairs), "--out", s(&pred)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("item `999999` is not in the model"), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&d).ok();
}

/// The same ratings as a MovieLens `::` file and as a triplet `.npz` give the same certified objective.
#[test]
fn dat_and_npz_triplets_agree_with_the_csv() {
    let d = tmpdir("ratings-formats");
    let r = ratings(30, 25, 0.4, 2);
    let csv = d.join("r.csv");
    write_csv(&csv, &r);
    let dat = d.join("ratings.dat");
    std::fs::write(&dat, r.iter().map(|(u, i, y)| format!("{u}::{i}::{y}::0\n")).collect::<String>()).unwrap();
    // npz indices: users 0..m, items 0..n in sorted-id order (the CSV's ids map to exactly these).
    let npz = d.join("t.npz");
    let arr = |v: Vec<f64>| Array { shape: vec![v.len()], data: v };
    write_npz(
        &npz,
        &[
            ("rows", &arr(r.iter().map(|e| (e.0 - 1) as f64).collect())),
            ("cols", &arr(r.iter().map(|e| (e.1 - 1000) as f64).collect())),
            ("values", &arr(r.iter().map(|e| e.2).collect())),
        ],
    )
    .unwrap();
    let objective = |data: &std::path::Path| {
        let out = gonn(&["fit", "--model", "factor", "--data", s(data), "--lambda", "2", "--report", "-", "--quiet"]);
        assert!(out.status.success(), "{}: {}", data.display(), text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["status"], "certified");
        v["objective"].as_f64().unwrap()
    };
    let (a, b, c) = (objective(&csv), objective(&dat), objective(&npz));
    assert!((a - b).abs() <= 1e-9 * a && (a - c).abs() <= 1e-9 * a, "{a} {b} {c}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn validation_and_lambda_path_on_ratings() {
    let d = tmpdir("ratings-path");
    let csv = d.join("ratings.csv");
    write_csv(&csv, &ratings(80, 50, 0.3, 3));
    let rep = d.join("rep.json");
    let out = gonn(&[
        "fit",
        "--model",
        "factor",
        "--data",
        s(&csv),
        "--lambda",
        "1",
        "--biases",
        "global",
        "--lambda-path",
        "4",
        "--validation-fraction",
        "0.2",
        "--report",
        s(&rep),
        "--threads",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let so = text(&out.stdout);
    assert!(
        so.contains("kept lambda =")
            && so.contains("<- kept")
            && !so.contains("the path stopped")
            && so.contains("validation RMSE"),
        "{so}"
    );
    let report = json(&rep);
    let path = report["lambda_path"].as_array().unwrap();
    assert_eq!(path.len(), 4);
    let lambdas: Vec<f64> = path.iter().map(|p| p["lambda"].as_f64().unwrap()).collect();
    assert!(lambdas.windows(2).all(|w| w[0] > w[1]) && (lambdas[3] - 1.0).abs() < 1e-12);
    let best = path.iter().map(|p| p["validation"]["rmse"].as_f64().unwrap()).fold(f64::INFINITY, f64::min);
    assert_eq!(report["validation"]["rmse"].as_f64().unwrap(), best);
    for p in path {
        assert_eq!(p["status"], "certified");
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn bad_ratings_get_clear_errors() {
    let d = tmpdir("ratings-bad");
    let csv = d.join("ratings.csv");
    std::fs::write(&csv, "userId,movieId,rating\n1,2,4\n1,2,5\n").unwrap();
    let out = gonn(&["fit", "--model", "factor", "--data", s(&csv), "--lambda", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("more than once"), "{}", text(&out.stderr));
    std::fs::write(&csv, "userId,movieId,rating\n1,2,four\n").unwrap();
    let out = gonn(&["fit", "--model", "factor", "--data", s(&csv), "--lambda", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("line 2, field 3: `four` is not a number"), "{}", text(&out.stderr));
    std::fs::write(&csv, "userId,movieId,rating\n1,2,4\n").unwrap();
    let out = gonn(&["fit", "--model", "factor", "--data", s(&csv), "--lambda", "1", "--norms", "l1,l2"]);
    assert_eq!(out.status.code(), Some(2));
    let out = gonn(&["fit", "--model", "factor", "--data", s(&csv), "--lambda", "1", "--out", s(&csv)]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "userId,movieId,rating\n1,2,4\n");
    let npz = d.join("t.npz");
    let arr = |v: Vec<f64>| Array { shape: vec![v.len()], data: v };
    write_npz(
        &npz,
        &[("rows", &arr(vec![0.0, -1.0])), ("cols", &arr(vec![0.0, 1.0])), ("values", &arr(vec![1.0, 2.0]))],
    )
    .unwrap();
    let out = gonn(&["fit", "--model", "factor", "--data", s(&npz), "--lambda", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("rows[1] = -1 is not an index"), "{}", text(&out.stderr));
    write_npz(
        &npz,
        &[
            ("rows", &arr(vec![0.0])),
            ("cols", &arr(vec![0.0])),
            ("values", &arr(vec![1.0])),
            ("shape", &arr(vec![1e12, 2.0])),
        ],
    )
    .unwrap();
    let out = gonn(&["fit", "--model", "factor", "--data", s(&npz), "--lambda", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("above the limit"), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&d).ok();
}
