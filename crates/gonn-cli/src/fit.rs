//! `gonn fit`: the meta-algorithm with progress, JSON log and checkpoint observers, Ctrl-C, resume, and the
//! model, report and plot of the result.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gonn::io::{check_writable, save_model, ModelFile};
use gonn::plot::write_plot;
use gonn::prelude::*;
use gonn::{GonnError, Result};

use crate::args::{FitArgs, ProblemArgs};
use crate::load::{check_outputs, load, report, result, same_file, say, Loaded};
use crate::progress::{JsonLog, Progress};
use gonn::meta::path::{hold_out, HoldOut, PathPoint, Validation};

/// "validation on N held-out entries: RMSE x (mean loss y)".
pub fn validation_line(v: &Validation) -> String {
    let what = match (v.rmse, v.error_rate) {
        (Some(r), _) => format!("RMSE {r:.6e}, "),
        (_, Some(e)) => format!("error rate {e:.4}, "),
        _ => String::new(),
    };
    format!("validation on {} held-out entries: {what}mean loss {:.6e}", v.count, v.mean_loss)
}

/// The metadata that identifies this run's problem (stored with the model and the checkpoint).
fn model_metadata(p: &ProblemArgs, l: &Loaded) -> Result<HashMap<String, String>> {
    gonn::model::problem_metadata(&l.spec, &l.dims, p.lambda, l.loss, l.classes, l.scaling.as_ref())
}

/// Writes the meta-loop's state after every outer iteration and at the end (atomically, as a model file whose
/// tensors are the weights to continue from and whose metadata holds the state).
struct Checkpoint {
    path: PathBuf,
    kind: String,
    metadata: HashMap<String, String>,
    error: Option<GonnError>,
    /// The outer iteration of the state last written (a stop hands the same state to `iter` and `finish`).
    written: Option<usize>,
}

impl Checkpoint {
    fn write(&mut self, state: &MetaState) {
        if self.written == Some(state.outer) {
            return;
        }
        self.written = Some(state.outer);
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
fn read_checkpoint(path: &Path, expected: &HashMap<String, String>, kind: &str) -> Result<MetaState> {
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
    if crate::ratings::is_ratings(&a.problem)? {
        return crate::ratings::fit(a);
    }
    if a.validation_data.is_some() {
        return Err(GonnError::param(
            "validation_data",
            "applies to ratings (triplet files); use --validation-fraction",
        ));
    }
    let p = &a.problem;
    let mut l = load(p)?;
    let outputs: Vec<&Path> =
        [&a.out, &a.plot, &p.report, &a.log_json, &a.checkpoint].into_iter().flatten().map(|p| p.as_path()).collect();
    let inputs: Vec<&Path> = [Some(&p.data), p.targets.as_ref(), a.init_weights.as_ref(), a.resume.as_ref()]
        .into_iter()
        .flatten()
        .map(|p| p.as_path())
        // Resuming from the checkpoint that the run keeps writing is the point of a checkpoint.
        .filter(|p| !(a.resume.as_deref() == Some(*p) && a.checkpoint.as_deref().is_some_and(|c| same_file(c, p))))
        .collect();
    check_outputs(&outputs, &inputs)?;
    for out in [&a.out, &a.plot, &a.checkpoint, &a.log_json].into_iter().flatten() {
        check_writable(out)?;
    }
    if let Some(plot) = &a.plot {
        gonn::plot::plot_format(plot)?;
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
        .polar_seconds(p.polar_seconds)
        .batch_size(a.batch_size)
        .stop_flag(stop.clone())
        .validate()?;
    let validation = match a.validation_fraction {
        Some(f) => {
            let unit = if l.spec.supervised() { HoldOut::Rows } else { HoldOut::Entries };
            let before = l.obs.n_observed();
            let (train, val) = hold_out(&l.obs, f, unit, a.seed)?;
            l.obs = train;
            say(
                p.quiet,
                &format!(
                    "validation: {} of {before} observed entries held out ({} chosen with --seed {}); fitting on the \
                     other {}",
                    val.n_observed(),
                    if unit == HoldOut::Rows { "whole samples" } else { "single entries" },
                    a.seed,
                    l.obs.n_observed()
                ),
            );
            Some(val)
        }
        None => None,
    };
    let metadata = model_metadata(p, &l)?;
    let state = match &a.resume {
        Some(path) => Some(read_checkpoint(path, &metadata, l.spec.kind())?),
        None => None,
    };
    if a.init_weights.is_some() && a.init_rank > 0 {
        return Err(GonnError::param("init_width", "give either --init-weights or --init-rank, not both"));
    }
    let init = a.init_weights.as_deref().map(|w| crate::certify::external_weights(w, &l)).transpose()?;
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
    let mut lambda_max = None;
    if gonn::meta::degree_mismatch(l.net.as_ref()).is_none() && a.resume.is_none() {
        // At most 10% of the time limit (and 2 s): an exact enumeration cut short gives a bracket instead.
        let grace = std::time::Duration::from_secs_f64((0.1 * a.max_seconds).clamp(0.0, 2.0));
        let budget = gonn::numerics::budget::Budget::new(Some(std::time::Instant::now() + grace), Some(stop.clone()));
        let (lo, up) = gonn::meta::lambda_max(l.net.as_ref(), &l.obs, l.loss, p.threads, budget)?;
        lambda_max = Some(up.unwrap_or(lo));
        let bracket = match up {
            Some(u) if u <= lo * (1.0 + 1e-9) => format!("{lo:.6e}"),
            Some(u) => format!("between {lo:.6e} and {u:.6e} (proven)"),
            None => format!("at least {lo:.6e}"),
        };
        say(p.quiet, &format!("lambda_max = {bracket}: the zero model is optimal for lambda >= lambda_max"));
        if up.is_some_and(|u| p.lambda >= u) {
            say(p.quiet, "note: lambda >= lambda_max, so the optimum is the zero model");
        } else {
            say(
                p.quiet,
                &format!("lambda / lambda_max = {:.1e} (smaller ratios grow more subnetworks)", p.lambda / lo),
            );
        }
    }
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
            note!("warning: {w}");
        }
    }
    if let (Some(path), Some(s)) = (&a.resume, &state) {
        say(
            p.quiet,
            &format!("resuming {} after outer iteration {} ({:.2} s so far)", path.display(), s.outer, s.seconds),
        );
    }
    if let Some(k) = a.lambda_path {
        let lambda_max = lambda_max.ok_or_else(|| {
            GonnError::param("lambda_path", "needs lambda_max, which a mismatched regularizer degree does not have")
        })?;
        return crate::lambda_path::run(&a, &l, &params, validation.as_ref(), lambda_max, k);
    }
    let mut progress = Progress::new(p.quiet);
    let mut log = a.log_json.clone().map(JsonLog::new);
    let mut checkpoint = a.checkpoint.as_ref().map(|path| Checkpoint {
        path: path.clone(),
        kind: l.spec.kind().into(),
        metadata: metadata.clone(),
        error: None,
        written: None,
    });
    let mut observers: Vec<&mut dyn Observer> = vec![&mut progress];
    if let Some(l) = log.as_mut() {
        observers.push(l);
    }
    if let Some(c) = checkpoint.as_mut() {
        observers.push(c);
    }
    let mut observers = gonn::meta::Observers(observers);
    let fitted = match state {
        Some(s) => params.resume(l.net.as_ref(), &l.obs, s, &mut observers)?,
        None => params.fit_from(l.net.as_ref(), &l.obs, init, &mut observers)?,
    };
    progress.finish();
    if let Some(e) = checkpoint.and_then(|c| c.error) {
        note!("error: the checkpoint could not be written: {e}");
    }
    let validation =
        validation.map(|v| Validation::of_weights(l.loss, &v, l.net.as_ref(), &fitted.weights, params.threads));
    finish_fit(p, &l, &params, &fitted, a.out.as_deref(), a.plot.as_deref(), Extra { validation, path: None })?;
    if let Some(c) = &a.checkpoint {
        say(p.quiet, &format!("checkpoint written to {}", c.display()));
    }
    if fitted.termination == Termination::Interrupted && stop.load(std::sync::atomic::Ordering::SeqCst) {
        say(p.quiet, "interrupted: wrote the best point reached so far");
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

/// What a run adds to its report besides the fit: validation error, lambda path.
pub struct Extra {
    pub validation: Option<Validation>,
    pub path: Option<(Vec<PathPoint>, String)>,
}

/// Writes the model, plot and report of `fitted` and prints the summary (on standard output).
pub fn finish_fit(
    p: &ProblemArgs,
    l: &Loaded,
    params: &gonn::meta::ValidFitParams,
    fitted: &FitResult,
    out: Option<&Path>,
    plot: Option<&Path>,
    extra: Extra,
) -> Result<()> {
    let mut rep = report(p, l, "fit", fitted.certificate.clone());
    rep.validation = extra.validation.clone();
    let (path_points, path_table) = extra.path.unzip();
    rep.lambda_path = path_points;
    rep.outer_iterations = fitted.outer_iterations;
    rep.seconds = fitted.seconds;
    rep.termination = Some(fitted.termination);
    rep.stop_reason = Some(fitted.termination);
    rep.history = fitted.history.clone();
    if let Some(path) = out {
        let model = FittedModel {
            scaling: l.scaling.clone(),
            classes: l.classes,
            ..FittedModel::new(l.spec.clone(), fitted.clone(), params, l.dims.clone())
        };
        model.save(path)?;
        rep.model_file = Some(path.display().to_string());
    }
    if let Some(path) = plot {
        write_plot(path, &fitted.history, Some(p.tol))?;
        rep.plot_file = Some(path.display().to_string());
    }
    if let Some(path) = &p.report {
        rep.write(path)?;
    }
    let report_path = p.report.as_deref();
    let mut lines: Vec<String> = path_table.into_iter().collect();
    lines.extend([
        format!(
            "status: {} ({} outer iterations, {:.2} s; termination: {}, {})",
            fitted.certificate.status,
            fitted.outer_iterations,
            fitted.seconds,
            fitted.termination,
            fitted.termination.explain()
        ),
        fitted.certificate.summary(),
    ]);
    if let Some(v) = &extra.validation {
        lines.push(validation_line(v));
    }
    for (what, f) in [("model", &rep.model_file), ("plot", &rep.plot_file)] {
        if let Some(f) = f {
            lines.push(format!("{what} written to {f}"));
        }
    }
    if let Some(r) = report_path.filter(|r| r.as_os_str() != "-") {
        lines.push(format!("report written to {}", r.display()));
    }
    say(p.quiet, "");
    result(p.quiet, report_path, &lines.join("\n"));
    Ok(())
}
