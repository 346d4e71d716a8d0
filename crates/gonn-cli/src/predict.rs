//! `predict` and `evaluate` for networks written by `gonn fit` (`--model relu`, `mlp:...` or `cnn:...`).

use std::path::Path;

use gonn::faer::Mat;
use gonn::io::supervised::{encode_targets, read_xy};
use gonn::io::{check_writable, read_array, write_npy, Array};
use gonn::prelude::*;
use gonn::{GonnError, Result};
use serde::Serialize;

use crate::args::{EvaluateArgs, PredictArgs};
use crate::load::check_outputs;

/// A network written by `gonn fit` (relu, mlp or cnn).
fn load_network(path: &Path) -> Result<FittedModel> {
    let model = FittedModel::load(path)?;
    if !model.spec.supervised() {
        return Err(GonnError::format(
            path,
            format!("holds a `{}` model; predict and evaluate take networks (relu, mlp, cnn)", model.spec.kind()),
        ));
    }
    Ok(model)
}

/// Predicted class of each row.
fn labels(net: &FittedModel, z: &Mat<f64>) -> Vec<usize> {
    (0..z.nrows())
        .map(|i| match net.loss {
            Loss::Logistic => usize::from(z[(i, 0)] > 0.0),
            _ => (0..z.ncols()).max_by(|&a, &b| z[(i, a)].total_cmp(&z[(i, b)])).unwrap_or(0),
        })
        .collect()
}

pub fn predict(a: PredictArgs) -> Result<()> {
    if crate::ratings::is_ratings_model(&a.model_file) {
        return crate::ratings::predict(a);
    }
    check_outputs(&[&a.out], &[&a.model_file, &a.data])?;
    check_writable(&a.out)?;
    let net = load_network(&a.model_file)?;
    let x = read_array(&a.data, &a.x_key)?.to_mat("X")?;
    let z = net.predict(x.as_ref(), a.threads)?;
    let classifier = net.loss != Loss::Squared;
    let what = a.output.as_deref().unwrap_or(if classifier { "labels" } else { "scores" });
    let out = match (what, net.loss) {
        ("scores", _) => Array::from_mat(&z),
        ("labels", Loss::Logistic | Loss::Softmax) => {
            let l = labels(&net, &z);
            Array { shape: vec![l.len()], data: l.iter().map(|v| *v as f64).collect() }
        }
        ("proba", Loss::Logistic | Loss::Softmax) => {
            Array::from_mat(&net.loss.probabilities(z.as_ref()).expect("a classifier's loss"))
        }
        ("labels" | "proba", Loss::Squared) => {
            return Err(GonnError::param("output", format!("`{what}` needs a classifier; this model is a regressor")))
        }
        (other, _) => return Err(GonnError::param("output", format!("`{other}` (expected scores, proba or labels)"))),
    };
    let ext = a.out.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if ext == "csv" {
        let cols = out.shape.get(1).copied().unwrap_or(1);
        let text: String = out
            .data
            .chunks(cols)
            .map(|r| r.iter().map(|v| format!("{v}")).collect::<Vec<_>>().join(",") + "\n")
            .collect();
        gonn::io::write_atomic(&a.out, text.as_bytes())?;
    } else {
        write_npy(&a.out, &out)?;
    }
    let text = format!("{what} for {} samples written to {}", z.nrows(), a.out.display());
    crate::load::result(false, Some(&a.out), &text);
    Ok(())
}

/// Metrics of a model on held-out data.
#[derive(Serialize)]
struct Evaluation {
    model_file: String,
    data: String,
    samples: usize,
    loss_function: String,
    /// The training loss summed over the samples (as in the objective).
    loss: f64,
    /// `loss / samples`.
    mean_loss: f64,
    /// Fraction of correctly classified samples (classifiers only).
    accuracy: Option<f64>,
    /// Mean squared error per output entry (regression only).
    mse: Option<f64>,
}

pub fn evaluate(a: EvaluateArgs) -> Result<()> {
    if let Some(r) = &a.report {
        let inputs: Vec<&Path> = [Some(&a.model_file), Some(&a.data), a.targets.as_ref()]
            .into_iter()
            .flatten()
            .map(|p| p.as_path())
            .collect();
        check_outputs(&[r], &inputs)?;
        check_writable(r)?;
    }
    let net = load_network(&a.model_file)?;
    let (x, y) = read_xy(&a.data, a.targets.as_deref(), &a.x_key, &a.key)?;
    let (ym, _) = encode_targets(&y, net.loss, net.classes)?;
    let z = net.predict(x.as_ref(), a.threads)?;
    if ym.ncols() != z.ncols() {
        return Err(GonnError::Shape(format!("the model has {} outputs but Y has {} columns", z.ncols(), ym.ncols())));
    }
    let obs = Observations::new(ym.clone(), None)?;
    net.loss.validate(&obs)?;
    let loss = net.loss.value(&obs, z.as_ref());
    let n = z.nrows();
    let (accuracy, mse) = match net.loss {
        Loss::Squared => {
            let se: f64 =
                (0..z.ncols()).flat_map(|c| (0..n).map(move |i| (i, c))).map(|ic| (z[ic] - ym[ic]).powi(2)).sum();
            (None, Some(se / (n * z.ncols()) as f64))
        }
        _ => {
            let pred = labels(&net, &z);
            let truth: Vec<usize> = (0..n)
                .map(|i| match net.loss {
                    Loss::Logistic => usize::from(ym[(i, 0)] > 0.5),
                    _ => (0..ym.ncols()).max_by(|&p, &q| ym[(i, p)].total_cmp(&ym[(i, q)])).unwrap_or(0),
                })
                .collect();
            let correct = pred.iter().zip(&truth).filter(|(p, t)| p == t).count();
            (Some(correct as f64 / n as f64), None)
        }
    };
    let ev = Evaluation {
        model_file: a.model_file.display().to_string(),
        data: a.data.display().to_string(),
        samples: n,
        loss_function: net.loss.to_string(),
        loss,
        mean_loss: loss / n as f64,
        accuracy,
        mse,
    };
    let mut text = format!("{n} samples, {} loss {:.6e} (mean {:.6e})", ev.loss_function, ev.loss, ev.mean_loss);
    if let Some(acc) = accuracy {
        text += &format!("\naccuracy {acc:.4}");
    }
    if let Some(m) = mse {
        text += &format!("\nmean squared error {m:.6e}");
    }
    if let Some(r) = &a.report {
        let json = serde_json::to_string_pretty(&ev).expect("serializable");
        gonn::io::write_atomic(r, json.as_bytes())?;
        if r.as_os_str() != "-" {
            text += &format!("\nreport written to {}", r.display());
        }
    }
    crate::load::result(a.quiet, a.report.as_deref(), &text);
    Ok(())
}
