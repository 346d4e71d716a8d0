//! Fuzz-style tests of every reader on the stable toolchain: valid `.npy`, `.npz`, `.csv` and safetensors files
//! (model files too), mutated by `proptest` (flipped, overwritten, inserted and removed bytes, truncation, edited
//! header digits), must give `Ok` or a clean `Err`, never a panic; and the checked-in corpus of inputs that once
//! crashed or hung (`tests/corpus/`) must give errors.
//!
//! A short run (30,000 cases, about 15 s) is part of the test suite; a longer one: `GONN_FUZZ_CASES=1000000 cargo test --release -p gonn --test
//! fuzz_readers`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use faer::Mat;
use gonn::io::{
    load_model, load_relu_weights, load_weights, read_array_opt, save_model, write_npy, write_npz, Array, ModelFile,
};
use gonn::model::FittedModel;
use gonn::prelude::*;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("GONN_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(30_000)
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("gonn-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The valid seed files, as bytes, with their extension.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let d = dir();
    let a = Array { shape: vec![3, 4], data: (0..12).map(|v| v as f64 * 0.5 - 2.0).collect() };
    let mask = Array { shape: vec![3, 4], data: (0..12).map(|v| (v % 3 != 0) as u8 as f64).collect() };
    write_npy(d.join("s.npy"), &a).unwrap();
    write_npz(d.join("s.npz"), &[("Y", &a), ("mask", &mask)]).unwrap();
    std::fs::write(d.join("s.csv"), "a,b,c,d\n1,2,3,4\n5.5,6,7,8\n-1e3,0,0,1\n").unwrap();
    // A ReLU model file as `gonn fit` writes it (spec, certificate, scaling in the metadata).
    let x = Mat::from_fn(12, 1, |i, _| i as f64 / 11.0 - 0.5);
    let y = Mat::from_fn(12, 1, |i, _| x[(i, 0)].abs());
    let spec = ModelSpec::parse("relu", None, None).unwrap();
    let params = FitParams::new(0.05).threads(1).validate().unwrap();
    let model = FittedModel::fit_supervised(&spec, x, Observations::new(y, None).unwrap(), &params, true).unwrap();
    model.save(d.join("s.safetensors")).unwrap();
    let w = Weights {
        layers: vec![Mat::from_fn(3, 2, |i, j| (i + j) as f64), Mat::from_fn(4, 2, |i, j| i as f64 - j as f64)],
    };
    save_model(d.join("f.safetensors"), &ModelFile { kind: "factor".into(), weights: w, metadata: HashMap::new() })
        .unwrap();
    vec![
        ("npy", std::fs::read(d.join("s.npy")).unwrap()),
        ("npz", std::fs::read(d.join("s.npz")).unwrap()),
        ("csv", std::fs::read(d.join("s.csv")).unwrap()),
        ("safetensors", std::fs::read(d.join("s.safetensors")).unwrap()),
        ("safetensors", std::fs::read(d.join("f.safetensors")).unwrap()),
    ]
}

/// Every reader that takes this file: none may panic.
fn read_all(path: &Path) {
    let _ = read_array_opt(path, "Y");
    let _ = read_array_opt(path, "mask");
    let _ = load_model(path);
    let _ = FittedModel::load(path);
    let _ = load_weights(path, "factor");
    let _ = load_relu_weights(path, 1, 1, true);
    let _ = ModelSpec::parse("factor", None, None).unwrap().load_data(path, "Y", None);
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Truncate(usize),
    /// Replace the `k`-th run of ASCII digits (header sizes, shapes, offsets) by `digits`.
    Digits(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            0usize..40,
            prop_oneof![
                Just("0".to_string()),
                Just("4294967296".to_string()),
                Just("9223372036854775807".to_string()),
                Just("18446744073709551615".to_string()),
                Just("1000000000000".to_string()),
                "[0-9]{1,22}".prop_map(|s| s)
            ]
        )
            .prop_map(|(k, d)| Mutation::Digits(k, d)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len().max(1);
    match m {
        Mutation::Flip(i, b) => {
            let i = i % n;
            if i < bytes.len() {
                bytes[i] ^= b;
            }
        }
        Mutation::Set(i, b) => {
            let i = i % n;
            if i < bytes.len() {
                bytes[i] = *b;
            }
        }
        Mutation::Insert(i, v) => {
            let i = i % (bytes.len() + 1);
            bytes.splice(i..i, v.iter().copied());
        }
        Mutation::Remove(i, k) => {
            let i = i % n;
            let end = (i + k).min(bytes.len());
            if i < end {
                bytes.drain(i..end);
            }
        }
        Mutation::Truncate(i) => bytes.truncate(i % n),
        Mutation::Digits(k, digits) => {
            let mut runs = Vec::new();
            let mut start = None;
            for (i, b) in bytes.iter().enumerate() {
                match (b.is_ascii_digit(), start) {
                    (true, None) => start = Some(i),
                    (false, Some(s)) => {
                        runs.push((s, i));
                        start = None;
                    }
                    _ => {}
                }
            }
            if let Some(&(s, e)) = runs.get(k % runs.len().max(1)) {
                bytes.splice(s..e, digits.bytes());
            }
        }
    }
}

#[test]
fn mutated_files_never_panic_a_reader() {
    let seeds = seeds();
    let d = dir();
    let mut runner =
        proptest::test_runner::TestRunner::new(ProptestConfig { cases: cases(), ..ProptestConfig::default() });
    let strategy = (0..seeds.len(), proptest::collection::vec(mutation(), 1..4));
    runner
        .run(&strategy, |(which, muts)| {
            let (ext, bytes) = &seeds[which];
            let mut bytes = bytes.clone();
            for m in &muts {
                apply(&mut bytes, m);
            }
            let path = d.join(format!("case.{ext}"));
            std::fs::write(&path, &bytes).unwrap();
            read_all(&path);
            Ok(())
        })
        .unwrap();
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn the_corpus_of_past_crashes_gives_errors() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut seen = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        read_all(&path);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "npy" | "npz" | "csv" if name != "label-huge.csv" => {
                assert!(read_array_opt(&path, "Y").is_err(), "{name} must be refused");
            }
            "safetensors" => assert!(load_weights(&path, "factor").is_err(), "{name} must be refused"),
            _ => {}
        }
        seen += 1;
    }
    assert!(seen >= 10, "the corpus has {seen} files");
}
