//! `gonn certify`: the certificate of weights made by gonn or any other tool.

use gonn::io::{load_relu_weights, load_weights};
use gonn::prelude::*;
use gonn::{GonnError, Result};

use crate::args::CertifyArgs;
use crate::load::{check_outputs, load, report, Loaded};

pub fn certify(a: CertifyArgs) -> Result<()> {
    let p = &a.problem;
    if let Some(r) = &p.report {
        let inputs: Vec<&std::path::Path> =
            [Some(&p.data), p.targets.as_ref(), Some(&a.weights)].into_iter().flatten().map(|p| p.as_path()).collect();
        check_outputs(&[r], &inputs)?;
    }
    let l = load(p)?;
    let weights = external_weights(&a.weights, &l)?;
    if let Some(w) = gonn::meta::degree_mismatch(l.net.as_ref()) {
        return Err(GonnError::param("reg", format!("no optimality test applies: {w}")));
    }
    let params = FitParams::new(p.lambda).loss(l.loss).tol(p.tol).threads(p.threads).polar_seconds(p.polar_seconds);
    let start = std::time::Instant::now();
    let cert = gonn::meta::certify_with(l.net.as_ref(), &l.obs, &weights, params)?;
    let mut rep = report(p, &l, "certify", cert.clone());
    // The certificate's own time (the polar and its dual refinement), not the loading.
    rep.seconds = start.elapsed().as_secs_f64();
    if let Some(path) = &p.report {
        rep.write(path)?;
    }
    let mut text = format!("status: {}\n{}", cert.status, cert.summary());
    if let Some(r) = p.report.as_deref().filter(|r| r.as_os_str() != "-") {
        text += &format!("\nreport written to {}", r.display());
    }
    crate::load::result(p.quiet, p.report.as_deref(), &text);
    Ok(())
}

/// Weights made by gonn or another tool for the model of `l`, in the layouts `certify` documents (relu: `W1`/`W2`,
/// `b1`, or a PyTorch `state_dict`; deep: `Wk` as `[r, fan_in, fan_out]`); the shapes are checked against the model.
pub fn external_weights(path: &std::path::Path, l: &Loaded) -> Result<Weights> {
    let model = match l.spec {
        ModelSpec::Relu { bias, .. } => load_relu_weights(path, l.dims[1], l.dims[2], bias)?,
        _ => load_weights(path, l.spec.kind())?,
    };
    if let Some(shapes) = l.spec.layer_shapes(&l.dims)? {
        check_deep_layers(&model.weights, &shapes)?;
    }
    Ok(model.weights)
}

/// Names the first deep layer whose size does not match the architecture, with the expected shape.
fn check_deep_layers(w: &Weights, shapes: &[(usize, usize)]) -> Result<()> {
    if w.layers.len() != shapes.len() {
        return Err(GonnError::Shape(format!(
            "the weights have {} layers (W1..W{}) but the architecture has {}",
            w.layers.len(),
            w.layers.len(),
            shapes.len()
        )));
    }
    for (k, (l, (fi, fo))) in w.layers.iter().zip(shapes).enumerate() {
        if l.nrows() != fi * fo {
            return Err(GonnError::Shape(format!(
                "W{} holds {} entries per subnetwork, but the architecture needs [r, {fi}, {fo}] (fan_in {fi}, \
                 fan_out {fo})",
                k + 1,
                l.nrows()
            )));
        }
    }
    Ok(())
}
