//! Fitting, saving, loading and predicting in the library alone: `ModelSpec` as one JSON value, `FittedModel`
//! round trips, model files of the earlier layout, and runs stopped and resumed through `MetaState`.

use std::collections::HashMap;
use std::ops::ControlFlow;

use gonn::faer::Mat;
use gonn::io::{save_model, ModelFile};
use gonn::meta::{IterationRecord, MetaState};
use gonn::model::FittedModel;
use gonn::prelude::*;

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gonn-fitted-{name}-{}.safetensors", std::process::id()))
}

/// 1-D regression `y = sin(2 (x - offset)) + noise`, `x` uniform on `offset + [-2, 2]`.
fn sine_at(n: usize, seed: u64, offset: f64) -> (Mat<f64>, Mat<f64>) {
    let mut rng = Rng::new(seed);
    let x = Mat::from_fn(n, 1, |_, _| offset + 4.0 * rng.uniform() - 2.0);
    let y = Mat::from_fn(n, 1, |i, _| (2.0 * (x[(i, 0)] - offset)).sin() + 0.05 * rng.normal());
    (x, y)
}

fn sine(n: usize, seed: u64) -> (Mat<f64>, Mat<f64>) {
    sine_at(n, seed, 0.0)
}

#[test]
fn specs_round_trip_as_json() {
    for (model, norms, nonneg) in [
        ("factor", Some("l1l2:0.5,l2"), Some("both")),
        ("factor", None, None),
        ("cp", None, None),
        ("relu", None, None),
        ("mlp:8,4", None, None),
        ("cnn:c4k3,pool2,fc5", None, None),
    ] {
        let mut spec = ModelSpec::parse(model, norms, nonneg).unwrap();
        if let ModelSpec::Relu { bias, output_norm, polar } = &mut spec {
            *bias = false;
            *output_norm = Norm::L1;
            *polar = PolarMode::Exact;
        }
        if let ModelSpec::Deep { image, reg, arch, .. } = &mut spec {
            *image = Some((6, 6, 2));
            *reg = gonn::core::Regularizer::Powers;
            arch.activation = gonn::families::deep::Activation::Leaky(0.1);
        }
        let text = spec.to_json();
        assert_eq!(ModelSpec::from_json(&text).unwrap(), spec, "{text}");
    }
    assert!(ModelSpec::from_json(r#"{"model": "relu", "output_norm": "l7"}"#).is_err());
    assert!(ModelSpec::from_json(r#"{"model": "nonsense"}"#).is_err());
}

#[test]
fn supervised_model_saves_loads_and_predicts() {
    // Inputs far from standardized: the model stores the scaling and predict applies it.
    let (x, y) = sine_at(80, 2, 12.0);
    let spec = ModelSpec::parse("relu", None, None).unwrap();
    let params = FitParams::new(0.05).threads(1).validate().unwrap();
    let model =
        FittedModel::fit_supervised(&spec, x.clone(), Observations::new(y.clone(), None).unwrap(), &params, true)
            .unwrap();
    assert_eq!(model.certificate.status, Status::Certified);
    assert_eq!(model.termination, Some(Termination::Certified));
    let path = tmp("relu");
    model.save(&path).unwrap();
    let back = FittedModel::load(&path).unwrap();
    assert_eq!(back.spec, spec);
    assert_eq!(back.scaling, model.scaling);
    assert_eq!(back.termination, Some(Termination::Certified));
    assert!(back.history.is_empty(), "the history (with its timings) is in the report, not the model file");
    assert_eq!(back.certificate.objective, model.certificate.objective);
    // The prediction on the training inputs reproduces the fitted loss: 1/2 ||y - f(x)||^2.
    let z = back.predict(x.as_ref(), 1).unwrap();
    let loss: f64 = (0..80).map(|i| 0.5 * (y[(i, 0)] - z[(i, 0)]).powi(2)).sum();
    assert!((loss - model.certificate.loss).abs() <= 1e-9 * loss.max(1.0), "{loss} vs {}", model.certificate.loss);
    assert!(back.predict(Mat::<f64>::zeros(3, 2).as_ref(), 1).is_err(), "two features for a 1-feature model");
    assert!(back.completed(1).is_err());
    std::fs::remove_file(&path).ok();
}

#[test]
fn factorization_saves_loads_and_completes() {
    let data = gonn::datasets::low_rank(30, 20, 3, 0.05, 0.6, 4);
    let obs = Observations::new(data.y.clone(), data.mask.clone()).unwrap();
    let spec = ModelSpec::parse("factor", None, None).unwrap();
    let params = FitParams::new(1.0).threads(1).validate().unwrap();
    let model = FittedModel::fit_matrix(&spec, &obs, &[30, 20], &params).unwrap();
    assert_eq!(model.certificate.status, Status::Certified);
    let path = tmp("factor");
    model.save(&path).unwrap();
    let back = FittedModel::load(&path).unwrap();
    let (a, b) = (model.completed(1).unwrap(), back.completed(1).unwrap());
    assert!((0..30).all(|i| (0..20).all(|j| a[(i, j)] == b[(i, j)])));
    assert!(back.predict(a.as_ref(), 1).is_err(), "a factorization has no inputs");
    std::fs::remove_file(&path).ok();
}

#[test]
fn model_files_of_the_earlier_layout_still_load() {
    // What `gonn fit --model relu --out` wrote before specs were stored: no `spec`, no termination, no history.
    let (x, y) = sine(40, 3);
    let net = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Auto).unwrap();
    let obs = Observations::new(y, None).unwrap();
    let fit = FitParams::new(0.05).threads(1).validate().unwrap().fit(&net, &obs).unwrap();
    let mut metadata = HashMap::new();
    for (k, v) in [("bias", "true"), ("output_norm", "l2"), ("norms", "l2,l2"), ("nonneg", "none")] {
        metadata.insert(k.to_string(), v.to_string());
    }
    metadata.insert("shape".into(), "[40, 1, 1]".into());
    metadata.insert("lambda".into(), "0.05".into());
    metadata.insert("loss".into(), "squared".into());
    metadata.insert("certificate".into(), serde_json::to_string(&fit.certificate).unwrap());
    let path = tmp("legacy");
    save_model(&path, &ModelFile { kind: "relu".into(), weights: fit.weights.clone(), metadata }).unwrap();
    let back = FittedModel::load(&path).unwrap();
    assert_eq!(back.spec, ModelSpec::parse("relu", None, None).unwrap());
    assert_eq!(back.termination, None);
    let z = back.predict(x.as_ref(), 1).unwrap();
    let want = net.forward(&fit.weights, gonn::faer::Par::Seq);
    assert!((0..40).all(|i| (z[(i, 0)] - want[(i, 0)]).abs() < 1e-12));
    std::fs::remove_file(&path).ok();
}

/// Stops the run after `after` outer iterations, keeping the state it was handed.
struct StopAfter {
    after: usize,
    state: Option<MetaState>,
}

impl Observer for StopAfter {
    fn iter(&mut self, record: &IterationRecord, state: &MetaState) -> ControlFlow<()> {
        self.state = Some(state.clone());
        if record.outer >= self.after {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

#[test]
fn a_stopped_run_resumes_to_the_same_optimum() {
    let (x, y) = sine(60, 5);
    let net = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Auto).unwrap();
    let obs = Observations::new(y, None).unwrap();
    let params = FitParams::new(0.02).tol(1e-8).threads(1).validate().unwrap();
    let full = params.fit(&net, &obs).unwrap();
    assert_eq!(full.termination, Termination::Certified);
    assert!(full.outer_iterations >= 4, "needs several iterations, got {}", full.outer_iterations);

    let mut stop = StopAfter { after: 2, state: None };
    let part = params.fit_from(&net, &obs, None, &mut stop).unwrap();
    assert_eq!(part.termination, Termination::Interrupted);
    assert_eq!(part.outer_iterations, 2);
    // What a stopped run reports is proven about its own weights: the lower bound is below its objective.
    if let Some(lb) = part.certificate.optimum_lower_bound {
        assert!(lb <= part.certificate.objective);
        assert!(lb <= full.certificate.objective * (1.0 + 1e-12));
    }
    // The state survives JSON (the weights travel beside it) and resumes the same steps.
    let state = stop.state.unwrap();
    let state = MetaState::from_json(&state.to_json(), state.weights.clone()).unwrap();
    let resumed = params.resume(&net, &obs, state, &mut gonn::meta::Silent).unwrap();
    assert_eq!(resumed.termination, Termination::Certified);
    assert_eq!(resumed.outer_iterations, full.outer_iterations);
    let (a, b) = (full.certificate.objective, resumed.certificate.objective);
    assert!((a - b).abs() <= 1e-12 * a, "uninterrupted {a}, resumed {b}");

    // Another problem's state is refused.
    let other = Observations::new(Mat::from_fn(60, 1, |i, _| i as f64), None).unwrap();
    let fresh = params.initial_state(&net, &obs, None).unwrap();
    assert!(params.resume(&net, &other, fresh, &mut gonn::meta::Silent).is_err());
}

#[test]
fn a_raised_stop_flag_ends_the_run_with_the_best_point() {
    let (x, y) = sine(60, 6);
    let net = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Auto).unwrap();
    let obs = Observations::new(y, None).unwrap();
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let params = FitParams::new(0.02).threads(1).init_width(3).stop_flag(flag).validate().unwrap();
    let fit = params.fit(&net, &obs).unwrap();
    assert_eq!(fit.termination, Termination::Interrupted);
    assert_eq!(fit.certificate.status, Status::Untested);
    // The descent stops at once, so the answer is the (finite) start.
    assert!(fit.certificate.objective.is_finite());
}
