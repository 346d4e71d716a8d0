//! The subcommands: argument structs and what each does.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use gonn::io::report::Report;
use gonn::io::{
    check_writable, load_relu_weights, load_supervised, load_weights, save_model, write_npz, Array, ModelFile,
};
use gonn::plot::write_plot;
use gonn::prelude::*;
use gonn::{GonnError, Result};

use crate::progress::Progress;

/// Per-feature standardization `x <- (x - mean) / scale` (`--standardize`).
#[derive(Clone, Debug)]
pub struct Scaling {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

impl Scaling {
    /// Mean and standard deviation of each column (a constant column keeps scale 1).
    pub fn fit(x: &gonn::faer::Mat<f64>) -> Self {
        let n = x.nrows() as f64;
        let mean: Vec<f64> = (0..x.ncols()).map(|j| x.col(j).iter().sum::<f64>() / n).collect();
        let scale = (0..x.ncols())
            .map(|j| {
                let sd = (x.col(j).iter().map(|v| (v - mean[j]).powi(2)).sum::<f64>() / n).sqrt();
                if sd > 0.0 {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Self { mean, scale }
    }
    pub fn apply(&self, x: &mut gonn::faer::Mat<f64>) {
        for j in 0..x.ncols() {
            for i in 0..x.nrows() {
                x[(i, j)] = (x[(i, j)] - self.mean[j]) / self.scale[j];
            }
        }
    }
    pub fn store(&self, metadata: &mut std::collections::HashMap<String, String>) {
        metadata.insert("x_mean".into(), serde_json::to_string(&self.mean).expect("serializable"));
        metadata.insert("x_scale".into(), serde_json::to_string(&self.scale).expect("serializable"));
    }
    /// The scaling stored in a model's metadata, if any.
    pub fn load(metadata: &std::collections::HashMap<String, String>) -> Result<Option<Self>> {
        match (metadata.get("x_mean"), metadata.get("x_scale")) {
            (Some(m), Some(s)) => {
                let bad = |_| GonnError::InvalidParameter {
                    name: "model_file",
                    reason: "bad x_mean/x_scale metadata".into(),
                };
                Ok(Some(Self {
                    mean: serde_json::from_str(m).map_err(bad)?,
                    scale: serde_json::from_str(s).map_err(bad)?,
                }))
            }
            _ => Ok(None),
        }
    }
}

/// What defines the problem: model, data, loss and lambda.
#[derive(Args, Clone)]
pub struct ProblemArgs {
    /// Model family: `factor` (matrix, Y is m x n), `cp` (3-way tensor, Y is m x n x k), `relu` (one hidden
    /// layer of ReLU units fitted to inputs X and targets Y), or parallel deep subnetworks fitted to X and Y:
    /// `mlp:W1,W2,..` (fully connected widths) or `cnn:TOKENS` with cCkK (C channels, KxK convolution), poolS,
    /// meanpoolS, fcN (e.g. cnn:c8k3,pool2,c16k3,pool2); a final linear layer to the outputs is always added.
    #[arg(long, default_value = "factor")]
    pub model: String,
    /// mlp/cnn: nonlinearity after each hidden weight layer: relu, leaky:ALPHA (0 <= ALPHA < 1) or maxout:M.
    #[arg(long, default_value = "relu")]
    pub activation: String,
    /// mlp/cnn: regularizer from the layers' Frobenius norms: product (prod_k ||W^k||), powers
    /// ((1/K) sum_k ||W^k||^K), both of the network's degree K, or weight-decay (1/2 sum_k ||W^k||^2, degree 2:
    /// mismatched unless K = 2, trained at a fixed width without certificate).
    #[arg(long, default_value = "product")]
    pub reg: String,
    /// cnn: image shape HxW or HxWxC of each row of X (stored height, width, channel; default: square, 1 channel).
    #[arg(long)]
    pub image: Option<String>,
    /// Data file: `.npz` (array named by --key, optional 0/1 array --mask-key; for relu also --x-key), `.npy` or
    /// `.csv` (for relu: the inputs X, with the targets in --targets).
    #[arg(long)]
    pub data: PathBuf,
    /// relu: the targets Y as a separate `.npy`/`.csv` file (n x C, or a vector of labels).
    #[arg(long)]
    pub targets: Option<PathBuf>,
    /// relu: name of the input array X (n x d) in an .npz.
    #[arg(long, default_value = "X")]
    pub x_key: String,
    /// relu: no first-layer bias (by default a constant-1 input column, regularized with u, is added).
    #[arg(long)]
    pub no_bias: bool,
    /// relu: output-layer norm in theta = ||u||_2 ||v||: l2 (weight decay) or l1 (several outputs become
    /// separate scalar problems, so the polar stays exact).
    #[arg(long, default_value = "l2")]
    pub output_norm: String,
    /// relu: standardize each input feature (subtract its mean, divide by its standard deviation, both from this
    /// data); stored in the model file and applied again by predict and evaluate.
    #[arg(long)]
    pub standardize: bool,
    /// relu: polar solver: exact (enumerate activation patterns; needs rank of [X, 1] <= 3), heuristic, or auto.
    #[arg(long, default_value = "auto")]
    pub polar: String,
    /// Regularization weight lambda > 0 in  loss + lambda * sum_i theta(w_i).
    #[arg(long, allow_negative_numbers = true)]
    pub lambda: f64,
    /// Norm pair A,B for theta(u, v) = ||u||_A ||v||_B, each l1, l2 or l1l2:GAMMA (GAMMA*l1 + l2).
    #[arg(long)]
    pub norms: Option<String>,
    /// Nonnegative factors: u, v or both.
    #[arg(long)]
    pub nonneg: Option<String>,
    /// Loss summed over (observed) entries: squared, logistic (0/1 entries) or softmax (rows are distributions).
    #[arg(long, default_value = "squared")]
    pub loss: String,
    /// Name of the target array in an .npz.
    #[arg(long, default_value = "Y")]
    pub key: String,
    /// Name of the optional 0/1 mask of observed entries in an .npz (matrix completion).
    #[arg(long, default_value = "mask")]
    pub mask_key: String,
    /// Relative tolerance on the certified gap: certified when gap_bound <= tol * objective.
    #[arg(long, default_value_t = 1e-6, allow_negative_numbers = true)]
    pub tol: f64,
    /// Worker threads for the dense kernels (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Write the JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct FitArgs {
    #[command(flatten)]
    pub problem: ProblemArgs,
    /// Write the fitted model (safetensors: weights U, V or A, B, C plus metadata and certificate) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start from this many random subnetworks (hidden units for relu; default: start empty).
    #[arg(long, default_value_t = 0, alias = "init-width")]
    pub init_rank: usize,
    /// Seed of every random choice (same seed and thread count, same result).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Maximum outer iterations (descent + polar + growth).
    #[arg(long, default_value_t = 500)]
    pub max_outer: usize,
    /// Wall-clock limit in seconds.
    #[arg(long, default_value_t = 600.0)]
    pub max_seconds: f64,
    /// Restarts of the heuristic polar searches (NP-hard factor polars, ReLU units in more than 2-D, deep
    /// subnetworks).
    #[arg(long, default_value_t = 8)]
    pub polar_restarts: usize,
    /// mlp/cnn: minibatch size of the local descent (default: full batch). The polar and the report always use
    /// a full pass over the data.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Draw objective, gap bound and number of subnetworks per iteration (.svg or .png).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Log every outer iteration as a JSON line to this file.
    #[arg(long)]
    pub log_json: Option<PathBuf>,
    /// Save the run's state here (atomically) after every outer iteration and on Ctrl-C, to continue it later
    /// with --resume.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Continue the run saved in this checkpoint (same data, model, loss and lambda; the same seed and --threads
    /// give the same result as an uninterrupted run). --max-seconds counts from the resume.
    #[arg(long)]
    pub resume: Option<PathBuf>,
}

#[derive(Args)]
pub struct CertifyArgs {
    #[command(flatten)]
    pub problem: ProblemArgs,
    /// Weights to check: a gonn safetensors file, or an .npz/.safetensors with U (m x r) and V (n x r), A, B, C
    /// for cp, or W1 (d x r, or (d+1) x r with the bias row last; optional b1) and W2 (C x r) for relu.
    #[arg(long)]
    pub weights: PathBuf,
}

#[derive(Args)]
pub struct PredictArgs {
    /// A relu model written by `gonn fit --model relu --out`.
    #[arg(long)]
    pub model_file: PathBuf,
    /// Inputs X: an .npz (array --x-key), .npy or .csv.
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long, default_value = "X")]
    pub x_key: String,
    /// Write the predictions here (.npy, or .csv).
    #[arg(long)]
    pub out: PathBuf,
    /// What to write: scores (network outputs), proba (class probabilities) or labels. Default: labels for
    /// classifiers, scores otherwise.
    #[arg(long)]
    pub output: Option<String>,
    /// Worker threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

#[derive(Args)]
pub struct EvaluateArgs {
    /// A relu model written by `gonn fit --model relu --out`.
    #[arg(long)]
    pub model_file: PathBuf,
    /// Held-out data: an .npz with X and Y (see --x-key, --key), or X as .npy/.csv with --targets.
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long)]
    pub targets: Option<PathBuf>,
    #[arg(long, default_value = "X")]
    pub x_key: String,
    #[arg(long, default_value = "Y")]
    pub key: String,
    /// Write the metrics as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Worker threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Folder for the demo's data, report, model and plot.
    #[arg(long, default_value = "gonn-demo")]
    pub out_dir: PathBuf,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

struct Loaded {
    spec: ModelSpec,
    net: Box<dyn Family>,
    obs: Observations,
    dims: Vec<usize>,
    loss: Loss,
    /// relu: number of classes of a classifier.
    classes: Option<usize>,
    /// relu: per-feature mean and scale applied to the inputs (`--standardize`).
    scaling: Option<Scaling>,
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
    } else if p.no_bias || p.targets.is_some() || p.output_norm != "l2" || p.polar != "auto" || p.standardize {
        return Err(GonnError::param(
            "model",
            "--no-bias, --targets, --output-norm, --polar and --standardize apply to --model relu only",
        ));
    }
    Ok(spec)
}

fn load(p: &ProblemArgs) -> Result<Loaded> {
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
            s.apply(&mut data.x);
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
    let (obs, dims) = spec.load_data(&p.data, &p.key, &p.mask_key)?;
    loss.validate(&obs)?;
    let net = spec.build(&dims)?;
    Ok(Loaded { spec, net, obs, dims, loss, classes: None, scaling: None })
}

fn say(quiet: bool, s: &str) {
    if !quiet {
        eprintln!("{s}");
    }
}

fn report(p: &ProblemArgs, l: &Loaded, command: &str, cert: Certificate) -> Report {
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
    }
}

/// Output paths must differ from each other and from every input file.
fn check_outputs(outputs: &[&Path], inputs: &[&Path]) -> Result<()> {
    let id = |p: &Path| std::fs::canonicalize(p).ok();
    for (i, o) in outputs.iter().enumerate() {
        for other in &outputs[i + 1..] {
            if o == other || id(o).is_some_and(|a| id(other) == Some(a)) {
                return Err(GonnError::param("out", format!("{} is given as two different outputs", o.display())));
            }
        }
        for input in inputs {
            if id(o).is_some() && id(o) == id(input) {
                return Err(GonnError::param(
                    "out",
                    format!("{} is an input of this run; choose another output path", o.display()),
                ));
            }
        }
    }
    Ok(())
}

/// The metadata stored with a model (and a checkpoint): the model, its regularizer, lambda, loss, scaling.
fn model_metadata(p: &ProblemArgs, l: &Loaded) -> Result<std::collections::HashMap<String, String>> {
    let mut metadata = l.spec.metadata(&l.dims);
    metadata.insert("lambda".into(), p.lambda.to_string());
    metadata.insert("loss".into(), l.loss.to_string());
    if let Some(c) = l.classes {
        metadata.insert("classes".into(), c.to_string());
    }
    if let Some(s) = &l.scaling {
        s.store(&mut metadata);
    }
    if let Some(shapes) = deep_shapes(l)? {
        metadata.insert("layer_shapes".into(), serde_json::to_string(&shapes).expect("serializable"));
    }
    Ok(metadata)
}

/// Writes the meta-loop's state after every outer iteration and at the end (atomically, as a model file whose
/// tensors are the weights to continue from and whose metadata holds the state).
struct Checkpoint {
    path: PathBuf,
    kind: String,
    metadata: std::collections::HashMap<String, String>,
    error: Option<GonnError>,
}

impl Checkpoint {
    fn write(&mut self, state: &MetaState) {
        let mut metadata = self.metadata.clone();
        metadata.insert("checkpoint".into(), state.to_json());
        let file = ModelFile { kind: self.kind.clone(), weights: state.weights.clone(), metadata };
        if let Err(e) = save_model(&self.path, &file) {
            self.error.get_or_insert(e);
        }
    }
}

impl Observer for Checkpoint {
    fn iter(&mut self, _: &IterationRecord, state: &MetaState) -> std::ops::ControlFlow<()> {
        self.write(state);
        match self.error {
            Some(_) => std::ops::ControlFlow::Break(()),
            None => std::ops::ControlFlow::Continue(()),
        }
    }
    fn finish(&mut self, _: &FitResult, state: &MetaState) {
        self.write(state);
    }
}

/// The state saved in a checkpoint, checked against the problem of this run.
fn read_checkpoint(path: &Path, expected: &std::collections::HashMap<String, String>, kind: &str) -> Result<MetaState> {
    let file = gonn::io::load_model(path)?;
    let state = file
        .metadata
        .get("checkpoint")
        .ok_or_else(|| GonnError::format(path, "not a checkpoint (written by `gonn fit --checkpoint FILE`)"))?;
    if file.kind != kind {
        return Err(GonnError::format(path, format!("the checkpoint is of a {} model, not {kind}", file.kind)));
    }
    for (key, value) in expected {
        if file.metadata.get(key) != Some(value) {
            return Err(GonnError::format(
                path,
                format!(
                    "the checkpoint was written for another problem: its {key} is {}, this run's is {value}",
                    file.metadata.get(key).map_or("missing", |v| v.as_str())
                ),
            ));
        }
    }
    MetaState::from_json(state, file.weights)
}

/// `gonn fit`; exits with 130 when a signal interrupted the run (after writing the best point reached).
pub fn fit(a: FitArgs) -> Result<ExitCode> {
    let p = &a.problem;
    let l = load(p)?;
    let outputs: Vec<&Path> =
        [&a.out, &a.plot, &p.report, &a.log_json, &a.checkpoint].into_iter().flatten().map(|p| p.as_path()).collect();
    let inputs: Vec<&Path> = [Some(&p.data), p.targets.as_ref()].into_iter().flatten().map(|p| p.as_path()).collect();
    check_outputs(&outputs, &inputs)?;
    for out in [&a.out, &a.plot, &a.checkpoint].into_iter().flatten() {
        check_writable(out)?;
    }
    let stop = crate::interrupt::stop_flag();
    let params = FitParams::new(p.lambda)
        .loss(l.loss)
        .tol(p.tol)
        .max_outer(a.max_outer)
        .max_seconds(a.max_seconds)
        .init_width(a.init_rank)
        .seed(a.seed)
        .threads(p.threads)
        .polar_restarts(a.polar_restarts)
        .batch_size(a.batch_size)
        .stop_flag(stop.clone())
        .validate()?;
    let metadata = model_metadata(p, &l)?;
    let state = match &a.resume {
        Some(path) => Some(read_checkpoint(path, &metadata, l.spec.kind())?),
        None => None,
    };
    let log = match &a.log_json {
        Some(path) => {
            Some(File::create(path).map_err(|e| GonnError::Io { path: path.display().to_string(), source: e })?)
        }
        None => None,
    };
    say(
        p.quiet,
        &format!(
            "fitting {} model ({} norms, {} loss, lambda = {}) to data of shape {:?}",
            l.spec.kind(),
            l.spec.norms_string(),
            l.loss,
            p.lambda,
            l.dims
        ),
    );
    if let ModelSpec::Deep { arch, reg, .. } = &l.spec {
        let k = l.net.degree();
        say(
            p.quiet,
            &format!(
                "subnetwork {arch} ({} activation): {k} weight layers, degree of homogeneity {k}; {} regularizer of \
                 degree {}",
                arch.activation,
                reg.name(),
                reg.degree(k)
            ),
        );
        if let Some(w) = gonn::meta::degree_mismatch(l.net.as_ref()) {
            eprintln!("warning: {w}");
        }
    }
    if let (Some(path), Some(s)) = (&a.resume, &state) {
        say(
            p.quiet,
            &format!("resuming {} after outer iteration {} ({:.2} s so far)", path.display(), s.outer, s.seconds),
        );
    }
    let mut progress = Progress::new(p.quiet, log);
    let mut checkpoint = a.checkpoint.as_ref().map(|path| Checkpoint {
        path: path.clone(),
        kind: l.spec.kind().into(),
        metadata: metadata.clone(),
        error: None,
    });
    let mut observers: Vec<&mut dyn Observer> = vec![&mut progress];
    if let Some(c) = checkpoint.as_mut() {
        observers.push(c);
    }
    let mut observers = gonn::meta::Observers(observers);
    let state = match state {
        Some(s) => s,
        None => params.initial_state(l.net.as_ref(), &l.obs, None)?,
    };
    let fitted = params.resume(l.net.as_ref(), &l.obs, state, &mut observers)?;
    progress.finish();
    if let Some(e) = checkpoint.and_then(|c| c.error) {
        eprintln!("error: the checkpoint could not be written: {e}");
    }
    finish_fit(p, &l, &fitted, metadata, a.out.as_deref(), a.plot.as_deref())?;
    if let Some(c) = &a.checkpoint {
        say(p.quiet, &format!("checkpoint written to {}", c.display()));
    }
    if fitted.termination == Termination::Interrupted && stop.load(std::sync::atomic::Ordering::SeqCst) {
        say(p.quiet, "interrupted: wrote the best point reached so far");
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

fn finish_fit(
    p: &ProblemArgs,
    l: &Loaded,
    fitted: &FitResult,
    mut metadata: std::collections::HashMap<String, String>,
    out: Option<&Path>,
    plot: Option<&Path>,
) -> Result<()> {
    let mut rep = report(p, l, "fit", fitted.certificate.clone());
    rep.outer_iterations = fitted.outer_iterations;
    rep.seconds = fitted.seconds;
    rep.termination = Some(fitted.termination);
    rep.stop_reason = Some(fitted.termination);
    rep.history = fitted.history.clone();
    if let Some(path) = out {
        metadata.insert("certificate".into(), serde_json::to_string(&fitted.certificate).expect("serializable"));
        metadata.insert("termination".into(), fitted.termination.to_string());
        save_model(path, &ModelFile { kind: l.spec.kind().into(), weights: fitted.weights.clone(), metadata })?;
        rep.model_file = Some(path.display().to_string());
    }
    if let Some(path) = plot {
        write_plot(path, &fitted.history)?;
        rep.plot_file = Some(path.display().to_string());
    }
    if let Some(path) = &p.report {
        rep.write(path)?;
    }
    say(
        p.quiet,
        &format!(
            "\nstatus: {} ({} outer iterations, {:.2} s, termination: {})",
            fitted.certificate.status, fitted.outer_iterations, fitted.seconds, fitted.termination
        ),
    );
    say(p.quiet, &fitted.certificate.summary());
    for (what, f) in [("model", &rep.model_file), ("plot", &rep.plot_file)] {
        if let Some(f) = f {
            say(p.quiet, &format!("{what} written to {f}"));
        }
    }
    if let Some(r) = &p.report {
        say(p.quiet, &format!("report written to {}", r.display()));
    }
    Ok(())
}

/// `(fan_in, fan_out)` of a deep model's layers (`None` for the other models).
fn deep_shapes(l: &Loaded) -> Result<Option<Vec<(usize, usize)>>> {
    match &l.spec {
        ModelSpec::Deep { arch, image, bias, .. } => Ok(Some(arch.layer_shapes(l.dims[1], *image, *bias, l.dims[2])?)),
        _ => Ok(None),
    }
}

pub fn certify(a: CertifyArgs) -> Result<()> {
    let p = &a.problem;
    let l = load(p)?;
    let model = match l.spec {
        ModelSpec::Relu { bias, .. } => load_relu_weights(&a.weights, l.dims[1], l.dims[2], bias)?,
        _ => load_weights(&a.weights, l.spec.kind())?,
    };
    if let Some(shapes) = deep_shapes(&l)? {
        check_deep_layers(&model.weights, &shapes)?;
    }
    if let Some(w) = gonn::meta::degree_mismatch(l.net.as_ref()) {
        return Err(GonnError::param("reg", format!("no optimality test applies: {w}")));
    }
    let cert = gonn::meta::certify(l.net.as_ref(), &l.obs, l.loss, p.lambda, &model.weights, p.tol, p.threads)?;
    let rep = report(p, &l, "certify", cert.clone());
    if let Some(path) = &p.report {
        rep.write(path)?;
    }
    say(p.quiet, &format!("status: {}", cert.status));
    say(p.quiet, &cert.summary());
    if let Some(r) = &p.report {
        say(p.quiet, &format!("report written to {}", r.display()));
    }
    Ok(())
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

pub fn demo(a: DemoArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&a.out_dir)
        .map_err(|e| GonnError::Io { path: a.out_dir.display().to_string(), source: e })?;
    let (m, n, rank, noise, observed) = (400, 300, 8, 0.1, 0.5);
    let data = gonn::datasets::low_rank(m, n, rank, noise, observed, a.seed);
    let data_path = a.out_dir.join("data.npz");
    let mask = data.mask.as_ref().expect("demo data has missing entries");
    write_npz(&data_path, &[("Y", &Array::from_mat(&data.y)), ("mask", &Array::from_mat(mask))])?;
    let lambda = 4.0;
    say(a.quiet, &format!(
        "gonn demo: a {m} x {n} matrix of rank {rank} plus noise (sd {noise}), {:.0}% of entries observed, written to {}.\n\
         Matrix completion with the nuclear norm (theta = ||u||_2 ||v||_2), lambda = {lambda}, starting from zero subnetworks.\n",
        observed * 100.0,
        data_path.display()
    ));
    let problem = ProblemArgs {
        model: "factor".into(),
        activation: "relu".into(),
        reg: "product".into(),
        image: None,
        data: data_path.clone(),
        targets: None,
        x_key: "X".into(),
        no_bias: false,
        output_norm: "l2".into(),
        polar: "auto".into(),
        standardize: false,
        lambda,
        norms: Some("l2,l2".into()),
        nonneg: None,
        loss: "squared".into(),
        key: "Y".into(),
        mask_key: "mask".into(),
        tol: 1e-6,
        threads: 0,
        report: Some(a.out_dir.join("report.json")),
        quiet: a.quiet,
    };
    let fit_args = FitArgs {
        problem,
        out: Some(a.out_dir.join("model.safetensors")),
        init_rank: 0,
        seed: a.seed,
        max_outer: 200,
        max_seconds: 60.0,
        polar_restarts: 8,
        batch_size: None,
        plot: Some(a.out_dir.join("run.svg")),
        log_json: None,
        checkpoint: None,
        resume: None,
    };
    let code = fit(fit_args)?;
    say(a.quiet, &format!(
        "\nThe same fit from the command line:\n  gonn fit --model factor --data {} --lambda {lambda} --norms l2,l2 --out model.safetensors --report report.json --plot run.svg",
        data_path.display()
    ));
    Ok(code)
}
