//! Bad input through the real binary, one test per class found by the audit: each gives exit code 2, one line
//! `error: ...` that names the file or option and the problem, no panic, and leaves every file as it was.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{files, gonn, json, s, tmpdir};

use gonn::io::{load_model, save_model, write_npz, Array};
use gonn::numerics::rng::Rng;

/// Runs `args` and checks the clean refusal: exit 2, one error line with every `needle`, no file touched.
fn refused(dir: &Path, args: &[&str], needles: &[&str]) {
    let before: Vec<(String, Vec<u8>)> =
        files(dir).into_iter().map(|f| (f.clone(), std::fs::read(dir.join(&f)).unwrap_or_default())).collect();
    let out = gonn(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line expected: {err}");
    assert!(lines[0].starts_with("error:"), "{err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: expected `{n}` in: {err}");
    }
    let after: Vec<(String, Vec<u8>)> =
        files(dir).into_iter().map(|f| (f.clone(), std::fs::read(dir.join(&f)).unwrap_or_default())).collect();
    assert_eq!(before, after, "{args:?} changed the folder");
}

/// An `.npy` file whose header claims `shape` (with a little data after it).
fn npy_with_shape(path: &Path, shape: &str) {
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0u8; 64]);
    std::fs::write(path, bytes).unwrap();
}

/// A safetensors file with the given `(name, shape, data bytes)` entries.
fn safetensors_with(path: &Path, tensors: &[(&str, &str, usize)]) {
    let mut offset = 0;
    let entries: Vec<String> = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            let e = format!(
                "\"{name}\":{{\"dtype\":\"F64\",\"shape\":{shape},\"data_offsets\":[{offset},{}]}}",
                offset + bytes
            );
            offset += bytes;
            e
        })
        .collect();
    let mut header = format!("{{{}}}", entries.join(","));
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(0u8, offset));
    std::fs::write(path, out).unwrap();
}

fn matrix(m: usize, n: usize, seed: u64) -> Array {
    let mut rng = Rng::new(seed);
    Array { shape: vec![m, n], data: (0..m * n).map(|_| rng.normal()).collect() }
}

fn setup(name: &str) -> (PathBuf, String, String) {
    let d = tmpdir(name);
    let y = d.join("y.npz");
    write_npz(&y, &[("Y", &matrix(6, 5, 1))]).unwrap();
    let x = d.join("xy.npz");
    let xs = matrix(10, 2, 2);
    write_npz(&x, &[("X", &xs), ("Y", &Array { shape: vec![10], data: (0..10).map(|i| (i % 2) as f64).collect() })])
        .unwrap();
    let (y, x) = (s(&y).to_string(), s(&x).to_string());
    (d, y, x)
}

#[test]
fn headers_that_claim_too_much_are_refused_before_allocating() {
    let (d, _, _) = setup("hard-headers");
    for (name, shape) in [
        ("huge.npy", "(4294967296, 4294967296)"),
        ("overflow.npy", "(9223372036854775808, 2)"),
        ("short.npy", "(100, 100)"),
    ] {
        npy_with_shape(&d.join(name), shape);
        refused(&d, &["fit", "--data", s(&d.join(name)), "--lambda", "1"], &[name, "shape"]);
    }
    // A safetensors tensor of shape [0, 10^12] (no data at all) once hung the loader.
    safetensors_with(&d.join("wide.safetensors"), &[("U", "[0,1000000000000]", 0), ("V", "[5,1]", 40)]);
    refused(
        &d,
        &["certify", "--data", s(&d.join("y.npz")), "--lambda", "1", "--weights", s(&d.join("wide.safetensors"))],
        &["wide.safetensors", "U"],
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn numbers_that_size_the_run_are_bounded() {
    let (d, y, x) = setup("hard-sizes");
    refused(&d, &["fit", "--data", &y, "--lambda", "1", "--init-rank", "1000000000000"], &["init_width"]);
    refused(&d, &["fit", "--data", &y, "--lambda", "1", "--init-rank", "10000000"], &["init_width"]);
    refused(&d, &["fit", "--data", &y, "--lambda", "1", "--polar-restarts", "1000000000"], &["polar_restarts"]);
    for bad in ["-1", "0", "nan", "1e9"] {
        refused(&d, &["fit", "--model", "relu", "--data", &x, "--lambda", "1", "--polar-seconds", bad], &["polar"]);
    }
    refused(&d, &["fit", "--data", &y, "--lambda", "1", "--polar-seconds", "5"], &["--polar-seconds"]);
    refused(&d, &["fit", "--model", "relu", "--data", &x, "--lambda", "1", "--polar", "bb"], &["bab"]);
    refused(
        &d,
        &["fit", "--model", "cnn:c2k3", "--data", &x, "--lambda", "1", "--image", "9223372036854775816x8"],
        &["image"],
    );
    for label in [9007199254740994.0, 1e6] {
        let bad = d.join("labels.npz");
        let mut v: Vec<f64> = (0..10).map(|i| (i % 2) as f64).collect();
        v[3] = label;
        write_npz(&bad, &[("X", &matrix(10, 2, 2)), ("Y", &Array { shape: vec![10], data: v })]).unwrap();
        refused(&d, &["fit", "--model", "relu", "--loss", "softmax", "--data", s(&bad), "--lambda", "1"], &["label"]);
        std::fs::remove_file(&bad).unwrap();
    }
    for (flag, value) in [("--max-seconds", "-1"), ("--lambda", "-1"), ("--tol", "-1")] {
        let mut args = vec!["fit", "--data", y.as_str(), "--lambda", "1"];
        if flag == "--lambda" {
            args[4] = value;
        } else {
            args.extend([flag, value]);
        }
        refused(&d, &args, &[flag.trim_start_matches("--").replace('-', "_").as_str()]);
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn outputs_never_overwrite_inputs_and_follow_links() {
    let (d, y, x) = setup("hard-outputs");
    refused(&d, &["fit", "--data", &y, "--lambda", "1", "--out", &y], &["input"]);
    refused(&d, &["fit", "--data", &y, "--lambda", "1", "--report", &y], &["input"]);
    let model = d.join("net.safetensors");
    let ok = gonn(&["fit", "--model", "relu", "--data", &x, "--lambda", "0.5", "--out", s(&model), "--quiet"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    refused(&d, &["predict", "--model-file", s(&model), "--data", &x, "--out", s(&model)], &["input"]);
    refused(&d, &["predict", "--model-file", s(&model), "--data", &x, "--out", &x], &["input"]);
    refused(&d, &["fit", "--data", &y, "--lambda", "1", "--plot", s(&d.join("run.pdf"))], &["svg"]);
    // A report through a symbolic link replaces the link's target, not the link.
    std::os::unix::fs::symlink("target.json", d.join("link.json")).unwrap();
    let out = gonn(&["fit", "--data", &y, "--lambda", "1", "--report", s(&d.join("link.json")), "--quiet"]);
    assert!(out.status.success());
    assert!(std::fs::symlink_metadata(d.join("link.json")).unwrap().file_type().is_symlink());
    assert_eq!(json(&d.join("target.json"))["command"], "fit");
    // `-` is standard output.
    let out = gonn(&["fit", "--data", &y, "--lambda", "1", "--report", "-", "--quiet"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["command"], "fit");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn data_is_never_read_wrongly_without_a_word() {
    let (d, y, _) = setup("hard-read");
    let csv = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // Read right: a byte-order mark and header, European decimal commas, quotes, spaces, trailing separators.
    for (name, text) in [
        ("bom.csv", "\u{feff}a,b\n1,2\n3,4\n"),
        ("euro.csv", "1,0;2,0\n3,0;4,0\n"),
        ("quoted.csv", "\"1\",\"2\"\n\"3\",\"4\"\n"),
        ("spaces.csv", "1 2\n3 4\n"),
        ("trailing.csv", "1,2,\n3,4,\n"),
    ] {
        let p = csv(name, text);
        let r = d.join("r.json");
        let out = gonn(&["fit", "--data", s(&p), "--lambda", "0.1", "--report", s(&r), "--quiet"]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(json(&r)["shape"], serde_json::json!([2, 2]), "{name}");
        std::fs::remove_file(&p).unwrap();
        std::fs::remove_file(&r).unwrap();
    }
    // Refused with the line and field: a typo in the first row, a stray word.
    let typo = csv("typo.csv", "1,2,3x\n4,5,6\n");
    refused(&d, &["fit", "--data", s(&typo), "--lambda", "1"], &["typo.csv", "line 1", "3x"]);
    let word = csv("word.csv", "1,2,3\n1,2,x\n");
    refused(&d, &["fit", "--data", s(&word), "--lambda", "1"], &["word.csv", "line 2", "field 3"]);
    // A misspelled --mask-key is an error, not a silently dense fit.
    refused(&d, &["fit", "--data", &y, "--lambda", "1", "--mask-key", "maks"], &["maks"]);
    // A damaged .npz (one flipped byte in its data) fails its checksum.
    let mut bytes = std::fs::read(&y).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    let broken = d.join("broken.npz");
    std::fs::write(&broken, bytes).unwrap();
    refused(&d, &["fit", "--data", s(&broken), "--lambda", "1"], &["broken.npz"]);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn non_finite_inputs_and_weights_are_refused() {
    let (d, _, x) = setup("hard-nan");
    let model = d.join("net.safetensors");
    let ok = gonn(&[
        "fit",
        "--model",
        "relu",
        "--data",
        &x,
        "--lambda",
        "0.5",
        "--out",
        s(&model),
        "--standardize",
        "--quiet",
    ]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let mut xs = matrix(4, 2, 3);
    xs.data[1] = f64::NAN;
    let nan = d.join("nan.npz");
    write_npz(&nan, &[("X", &xs)]).unwrap();
    refused(
        &d,
        &["predict", "--model-file", s(&model), "--data", s(&nan), "--out", s(&d.join("p.npy"))],
        &["non-finite"],
    );
    // A stored scaling shorter than the inputs, or with a zero scale, and NaN weights.
    let mut file = load_model(&model).unwrap();
    file.metadata.insert("x_scale".into(), "[1.0]".into());
    let short = d.join("short.safetensors");
    save_model(&short, &file).unwrap();
    refused(
        &d,
        &["predict", "--model-file", s(&short), "--data", &x, "--out", s(&d.join("p.npy"))],
        &["x_mean/x_scale"],
    );
    let mut file = load_model(&model).unwrap();
    file.weights.layers[0][(0, 0)] = f64::NAN;
    let nanw = d.join("nanw.safetensors");
    save_model(&nanw, &file).unwrap();
    refused(&d, &["predict", "--model-file", s(&nanw), "--data", &x, "--out", s(&d.join("p.npy"))], &["non-finite"]);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_closed_output_stream_does_not_lose_the_run() {
    let (d, y, _) = setup("hard-pipe");
    let report = d.join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gonn"))
        .args(["fit", "--data", &y, "--lambda", "1", "--report", s(&report)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `gonn fit ... 2>&1 | head -0`: both streams closed before the first line.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(json(&report)["command"], "fit");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn max_seconds_bounds_long_exact_polars() {
    // An exact 2-D polar at n = 2500 takes several seconds per call; --max-seconds must still end the run within
    // its limit plus the final certificate's grace (5%, at least 1 s).
    let d = tmpdir("hard-time");
    let mut rng = Rng::new(9);
    let n = 2500;
    let x = Array { shape: vec![n, 2], data: (0..2 * n).map(|_| rng.normal()).collect() };
    let y = Array { shape: vec![n], data: (0..n).map(|i| x.data[2 * i].max(0.0) + 0.1 * rng.normal()).collect() };
    let data = d.join("big.npz");
    write_npz(&data, &[("X", &x), ("Y", &y)]).unwrap();
    let report = d.join("r.json");
    let t = std::time::Instant::now();
    let out = gonn(&[
        "fit",
        "--model",
        "relu",
        "--polar",
        "exact",
        "--data",
        s(&data),
        "--lambda",
        "0.1",
        "--max-seconds",
        "3",
        "--threads",
        "1",
        "--report",
        s(&report),
        "--quiet",
    ]);
    let took = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(took < 3.0 + 1.0 + 2.0, "took {took:.1} s for --max-seconds 3");
    let r = json(&report);
    assert!(r["termination"] == "max_time" || r["termination"] == "certified", "{}", r["termination"]);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn experiments_refuse_data_of_the_wrong_shape() {
    let (d, _, x) = setup("hard-exp");
    for name in ["mismatch", "lambda-path"] {
        refused(
            &d,
            &["experiment", name, "--out", s(&d.join("out")), "--digits", &x, "--small"],
            &["xy.npz", "64 features"],
        );
    }
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn the_same_fit_writes_the_same_model_bytes() {
    let (d, y, _) = setup("hard-bytes");
    let files: Vec<Vec<u8>> = (0..2)
        .map(|i| {
            let out = d.join(format!("m{i}.safetensors"));
            let o = gonn(&["fit", "--data", &y, "--lambda", "0.5", "--threads", "1", "--out", s(&out), "--quiet"]);
            assert!(o.status.success());
            std::fs::read(&out).unwrap()
        })
        .collect();
    assert!(files[0] == files[1], "two identical runs wrote different model files");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn temporaries_of_killed_runs_are_cleaned_up() {
    let (d, y, _) = setup("hard-stale");
    // What `kill -9` between a write and its rename leaves behind (a process id that cannot exist).
    std::fs::write(d.join(".r.json.tmp-4294967"), b"half a report").unwrap();
    let o = gonn(&["fit", "--data", &y, "--lambda", "1", "--report", s(&d.join("r.json")), "--quiet"]);
    assert!(o.status.success());
    assert_eq!(files(&d), ["r.json", "xy.npz", "y.npz"]);
    std::fs::remove_dir_all(&d).ok();
}
