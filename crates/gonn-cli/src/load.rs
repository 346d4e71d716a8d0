//! The one mapping from command-line arguments to a model spec, its family bound to the data, the loss and the
//! report skeleton.

use gonn::io::report::Report;
use std::path::Path;

use gonn::io::{check_writable, load_supervised};
use gonn::prelude::*;
use gonn::preprocessing::Scaling;
use gonn::{GonnError, Result};

use crate::args::ProblemArgs;

pub struct Loaded {
    pub spec: ModelSpec,
    pub net: Box<dyn Family>,
    pub obs: Observations,
    pub dims: Vec<usize>,
    pub loss: Loss,
    /// relu: number of classes of a classifier.
    pub classes: Option<usize>,
    /// relu: per-feature mean and scale applied to the inputs (`--standardize`).
    pub scaling: Option<Scaling>,
}

fn parse_spec(p: &ProblemArgs) -> Result<ModelSpec> {
    let mut spec = ModelSpec::parse(&p.model, p.norms.as_deref(), p.nonneg.as_deref())?;
    let deep = matches!(spec, ModelSpec::Deep { .. });
    if !deep && (p.activation != "relu" || p.reg != "product" || p.image.is_some()) {
        return Err(GonnError::param("model", "--activation, --reg and --image apply to mlp:... and cnn:... models"));
    }
    if let ModelSpec::Deep { arch, image, bias, reg } = &mut spec {
        arch.activation = gonn::families::deep::Activation::parse(&p.activation)?;
        *reg = p.reg.parse()?;
        *bias = !p.no_bias;
        *image = p.image.as_deref().map(gonn::spec::parse_image).transpose()?;
        if p.output_norm != "l2" || p.polar != "auto" {
            return Err(GonnError::param("model", "--output-norm and --polar apply to --model relu only"));
        }
    } else if let ModelSpec::Relu { bias, output_norm, polar } = &mut spec {
        *bias = !p.no_bias;
        *output_norm = match p.output_norm.parse::<Norm>()? {
            n @ (Norm::L1 | Norm::L2) => n,
            other => return Err(GonnError::param("output_norm", format!("`{other}` (expected l2 or l1)"))),
        };
        *polar = p.polar.parse()?;
    } else if p.no_bias
        || p.targets.is_some()
        || p.output_norm != "l2"
        || p.polar != "auto"
        || p.standardize
        || p.polar_seconds.is_some()
    {
        return Err(GonnError::param(
            "model",
            "--no-bias, --targets, --output-norm, --polar, --polar-seconds and --standardize apply to --model relu \
             only",
        ));
    }
    Ok(spec)
}

pub fn load(p: &ProblemArgs) -> Result<Loaded> {
    let spec = parse_spec(p)?;
    let loss: Loss = p.loss.parse()?;
    if !(p.lambda.is_finite() && p.lambda > 0.0) {
        return Err(GonnError::InvalidParameter {
            name: "lambda",
            reason: format!("{} (must be positive and finite)", p.lambda),
        });
    }
    if let Some(r) = &p.report {
        check_writable(r)?;
    }
    if spec.supervised() {
        let mut spec = spec;
        let mut data = load_supervised(&p.data, p.targets.as_deref(), &p.x_key, &p.key, loss, None)?;
        let scaling = p.standardize.then(|| Scaling::fit(&data.x));
        if let Some(s) = &scaling {
            s.apply(&mut data.x)?;
        }
        // A cnn on square single-channel images needs no --image.
        if let ModelSpec::Deep { arch, image: image @ None, .. } = &mut spec {
            let d = data.x.ncols();
            let side = (d as f64).sqrt().round() as usize;
            if arch.kind() == "cnn" {
                if side * side != d {
                    return Err(GonnError::param(
                        "image",
                        format!("the rows of X have {d} features, not a square image: give --image HxW or HxWxC"),
                    ));
                }
                *image = Some((side, side, 1));
            }
        }
        let outputs = data.obs.ncols();
        let net = spec.build_supervised(data.x.as_ref(), outputs)?;
        let dims = vec![data.x.nrows(), data.x.ncols(), outputs];
        return Ok(Loaded { spec, net, obs: data.obs, dims, loss, classes: data.classes, scaling });
    }
    let (obs, dims) = spec.load_data(&p.data, &p.key, p.mask_key.as_deref())?;
    loss.validate(&obs)?;
    let net = spec.build(&dims)?;
    Ok(Loaded { spec, net, obs, dims, loss, classes: None, scaling: None })
}

/// Progress and notes: standard error.
pub fn say(quiet: bool, s: &str) {
    if !quiet {
        note!("{s}");
    }
}

/// The result of a command (status, objective, gap, files written): standard output, unless the command's file
/// output `file` goes there (`-`: the JSON report, or predictions), which then keeps standard output to itself.
pub fn result(quiet: bool, file: Option<&Path>, s: &str) {
    if quiet {
        return;
    }
    if file.is_some_and(|f| f.as_os_str() == "-") {
        note!("{s}");
    } else {
        out!("{s}");
    }
}

pub fn report(p: &ProblemArgs, l: &Loaded, command: &str, cert: Certificate) -> Report {
    Report {
        command: command.into(),
        model: l.spec.kind().into(),
        norms: l.spec.norms_string(),
        nonneg: l.spec.nonneg_string().into(),
        loss_function: l.loss.to_string(),
        shape: l.dims.clone(),
        subnetwork: match &l.spec {
            ModelSpec::Deep { arch, reg, .. } => Some(gonn::io::report::SubnetworkInfo {
                architecture: arch.to_string(),
                activation: arch.activation.to_string(),
                degree: arch.degree(),
                regularizer: reg.name().into(),
                regularizer_degree: reg.degree(arch.degree()),
            }),
            _ => None,
        },
        tol: p.tol,
        summary: cert.summary(),
        certificate: cert,
        outer_iterations: 0,
        seconds: 0.0,
        termination: None,
        stop_reason: None,
        model_file: None,
        plot_file: None,
        history: vec![],
        validation: None,
        lambda_path: None,
    }
}

/// Whether two paths name the same file (as written, or after resolving links and `..`).
pub fn same_file(a: &Path, b: &Path) -> bool {
    a == b || std::fs::canonicalize(a).ok().is_some_and(|c| std::fs::canonicalize(b).ok() == Some(c))
}

/// Output paths must differ from each other and from every input file (`-`, standard output, excepted).
pub fn check_outputs(outputs: &[&Path], inputs: &[&Path]) -> Result<()> {
    for (i, o) in outputs.iter().enumerate().filter(|(_, o)| o.as_os_str() != "-") {
        for other in &outputs[i + 1..] {
            if same_file(o, other) {
                return Err(GonnError::param("out", format!("{} is given as two different outputs", o.display())));
            }
        }
        for input in inputs {
            if same_file(o, input) {
                return Err(GonnError::param(
                    "out",
                    format!("{} is an input of this run; choose another output path", o.display()),
                ));
            }
        }
    }
    Ok(())
}
