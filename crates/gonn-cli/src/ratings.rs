//! `gonn fit --model factor` on ratings (triplet files) and `gonn predict` of the models it writes: the sparse
//! completion path (`gonn::meta::completion`), whose memory grows with the ratings, never with `m * n`.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use gonn::io::ratings::{looks_like_ratings, read_ratings, Columns, CompletionFile, RatingsFile};
use gonn::io::report::Report;
use gonn::io::{check_writable, write_atomic};
use gonn::meta::completion::{completion_lambda_max, fit_completion, hold_out_entries, Completion, CompletionParams};
use gonn::meta::path::{lambda_grid, PathPoint, Validation};
use gonn::prelude::*;
use gonn::{GonnError, Result};

use crate::args::{FitArgs, PredictArgs, ProblemArgs};
use crate::load::{check_outputs, result, say};
use crate::progress::{JsonLog, Progress};

/// Whether a `fit` goes to the ratings path: `--model factor` with a triplet file or `--columns`.
pub fn is_ratings(p: &ProblemArgs) -> Result<bool> {
    Ok(p.model == "factor" && (p.columns.is_some() || looks_like_ratings(&p.data)?))
}

fn columns(p: &ProblemArgs) -> Result<Columns> {
    p.columns.as_deref().map_or(Ok(Columns::default()), str::parse)
}

/// The options the ratings path does not take, each with the reason.
fn refuse_unsupported(a: &FitArgs) -> Result<()> {
    let p = &a.problem;
    let bad = |name: &'static str, why: &str| Err(GonnError::param(name, why.to_string()));
    if p.norms.as_deref().is_some_and(|n| n.replace(' ', "") != "l2,l2") {
        return bad("norms", "ratings are fitted with the nuclear norm (l2,l2); other norms need a dense Y and mask");
    }
    if p.nonneg.is_some() {
        return bad("nonneg", "nonnegative factors need a dense Y and mask (the ratings path is the nuclear norm)");
    }
    if p.loss != "squared" {
        return bad("loss", "ratings are fitted with the squared loss");
    }
    if a.resume.is_some() || a.checkpoint.is_some() {
        return bad(
            "checkpoint",
            "checkpoints are not written for ratings fits yet (use --max-seconds and --init-weights-free reruns)",
        );
    }
    if a.init_weights.is_some() {
        return bad("init_weights", "warm starts from a file are not supported for ratings yet");
    }
    Ok(())
}

/// The validation RMSE of `model` on `val`.
fn validation(model: &Completion, val: &gonn::numerics::sparse::SparseRatings) -> Validation {
    let rmse = model.rmse(val);
    Validation { count: val.nnz(), mean_loss: 0.5 * rmse * rmse, rmse: Some(rmse), error_rate: None }
}

/// Held-out ratings from a second file, mapped to the training ids; ratings of unknown ids are dropped (counted).
fn read_validation(
    path: &Path,
    cols: &Columns,
    train: &RatingsFile,
) -> Result<(gonn::numerics::sparse::SparseRatings, usize)> {
    let v = read_ratings(path, cols)?;
    let map = |ids: &Option<Vec<String>>| -> HashMap<String, usize> {
        ids.as_ref().map(|ids| ids.iter().enumerate().map(|(i, s)| (s.clone(), i)).collect()).unwrap_or_default()
    };
    let (rmap, cmap) = (map(&train.row_ids), map(&train.col_ids));
    let (m, n) = (train.data.nrows(), train.data.ncols());
    let (mut rows, mut cols_, mut vals, mut dropped) = (vec![], vec![], vec![], 0usize);
    for (i, j, y) in v.data.triplets() {
        let (ri, cj) = match (&train.row_ids, &train.col_ids) {
            (Some(_), Some(_)) => (rmap.get(&v.row_id(i)).copied(), cmap.get(&v.col_id(j)).copied()),
            _ => ((i < m).then_some(i), (j < n).then_some(j)),
        };
        match (ri, cj) {
            (Some(a), Some(b)) => {
                rows.push(a as u32);
                cols_.push(b as u32);
                vals.push(y);
            }
            _ => dropped += 1,
        }
    }
    let data = gonn::numerics::sparse::SparseRatings::from_triplets(m, n, &rows, &cols_, &vals).map_err(|e| {
        GonnError::format(path, format!("{e} (no held-out rating has a user and an item seen in training)"))
    })?;
    Ok((data, dropped))
}

fn report(a: &FitArgs, m: usize, n: usize, fit: &Completion) -> Report {
    Report {
        command: "fit".into(),
        model: "factor".into(),
        norms: "l2,l2".into(),
        nonneg: "none".into(),
        loss_function: "squared".into(),
        shape: vec![m, n],
        subnetwork: None,
        tol: a.problem.tol,
        summary: fit.certificate.summary(),
        certificate: fit.certificate.clone(),
        outer_iterations: fit.outer_iterations,
        seconds: fit.seconds,
        termination: Some(fit.termination),
        stop_reason: Some(fit.termination),
        model_file: None,
        plot_file: None,
        history: fit.history.clone(),
        validation: None,
        lambda_path: None,
    }
}

pub fn fit(a: FitArgs) -> Result<ExitCode> {
    let p = &a.problem;
    refuse_unsupported(&a)?;
    let outputs: Vec<&Path> =
        [&a.out, &a.plot, &p.report, &a.log_json].into_iter().flatten().map(|p| p.as_path()).collect();
    let inputs: Vec<&Path> =
        [Some(&p.data), a.validation_data.as_ref()].into_iter().flatten().map(|p| p.as_path()).collect();
    check_outputs(&outputs, &inputs)?;
    for out in [&a.out, &a.plot, &a.log_json].into_iter().flatten() {
        check_writable(out)?;
    }
    if let Some(plot) = &a.plot {
        gonn::plot::plot_format(plot)?;
    }
    let stop = crate::interrupt::stop_flag();
    let cols = columns(p)?;
    let t0 = std::time::Instant::now();
    let file = read_ratings(&p.data, &cols)?;
    let (m, n) = (file.data.nrows(), file.data.ncols());
    say(
        p.quiet,
        &format!(
            "read {} ratings of {m} rows (users) x {n} columns (items) from {} in {:.2} s ({:.3}% observed)",
            file.data.nnz(),
            p.data.display(),
            t0.elapsed().as_secs_f64(),
            100.0 * file.data.nnz() as f64 / (m as f64 * n as f64)
        ),
    );
    let mut params = CompletionParams::new(p.lambda);
    params.biases = p.biases.parse()?;
    params.tol = p.tol;
    params.max_outer = a.max_outer;
    params.max_seconds = a.max_seconds;
    params.threads = p.threads;
    params.seed = a.seed;
    params.init_rank = a.init_rank;
    params.stop = Some(stop.clone());
    let (train, val) = match (a.validation_fraction, &a.validation_data) {
        (Some(f), _) => {
            let (t, v) = hold_out_entries(&file.data, f, a.seed)?;
            say(
                p.quiet,
                &format!(
                    "validation: {} of {} ratings held out (chosen with --seed {}); fitting on the other {}",
                    v.nnz(),
                    file.data.nnz(),
                    a.seed,
                    t.nnz()
                ),
            );
            (t, Some(v))
        }
        (None, Some(path)) => {
            let (v, dropped) = read_validation(path, &cols, &file)?;
            say(
                p.quiet,
                &format!(
                    "validation: {} held-out ratings from {}{}",
                    v.nnz(),
                    path.display(),
                    if dropped > 0 {
                        format!(" ({dropped} with a user or item unseen in training left out)")
                    } else {
                        String::new()
                    }
                ),
            );
            (file.data.clone(), Some(v))
        }
        _ => (file.data.clone(), None),
    };
    say(
        p.quiet,
        &format!(
            "fitting nuclear-norm completion (biases: {}, lambda = {}) on the observed entries only",
            params.biases, p.lambda
        ),
    );
    let (lo, up) = completion_lambda_max(&train, params.biases, p.threads);
    say(p.quiet, &format!("lambda_max = {lo:.6e} (proven <= {up:.6e}): U V^T = 0 is optimal for lambda >= lambda_max"));
    if p.lambda >= up {
        say(p.quiet, "note: lambda >= lambda_max, so the optimum has U V^T = 0");
    } else {
        say(p.quiet, &format!("lambda / lambda_max = {:.1e} (smaller ratios give higher ranks)", p.lambda / lo));
    }
    let mut progress = Progress::new(p.quiet);
    let mut log = a.log_json.clone().map(JsonLog::new);
    let mut observe = |r: &IterationRecord| {
        progress.row(r);
        log.as_mut().map_or(ControlFlow::Continue(()), |l| l.record(r))
    };
    let mut path_rows: Option<(Vec<PathPoint>, String)> = None;
    let fitted = match a.lambda_path {
        Some(k) => {
            let lambdas = lambda_grid(up, p.lambda, k)?;
            say(p.quiet, &format!("lambda path: {k} lambdas from lambda_max = {up:.6e} down to {}", p.lambda));
            let mut warm: Option<Completion> = None;
            let (mut points, mut fits) = (vec![], vec![]);
            let start = std::time::Instant::now();
            for &lambda in &lambdas {
                let left = a.max_seconds - start.elapsed().as_secs_f64();
                if left <= 0.0 || stop.load(Ordering::SeqCst) {
                    break;
                }
                let mut q = params.clone();
                q.lambda = lambda;
                q.max_seconds = left;
                let fit = fit_completion(&train, &q, warm.as_ref(), &mut observe)?;
                let v = val.as_ref().map(|v| validation(&fit, v));
                points.push(PathPoint {
                    lambda,
                    objective: fit.certificate.objective,
                    subnetworks: fit.rank(),
                    status: fit.certificate.status,
                    relative_gap: fit.certificate.relative_gap,
                    termination: fit.termination,
                    outer_iterations: fit.outer_iterations,
                    seconds: fit.seconds,
                    validation: v,
                });
                let interrupted = fit.termination == Termination::Interrupted;
                warm = Some(fit.clone());
                fits.push(fit);
                if interrupted {
                    break;
                }
            }
            if fits.is_empty() {
                return Err(GonnError::param("max_seconds", "no time left to fit the first lambda of the path"));
            }
            let best = match &val {
                Some(_) => (0..points.len())
                    .min_by(|&x, &y| {
                        let s = |i: usize| points[i].validation.as_ref().and_then(|v| v.rmse).unwrap_or(f64::INFINITY);
                        s(x).total_cmp(&s(y))
                    })
                    .unwrap_or(0),
                None => points.len() - 1,
            };
            let header = crate::lambda_path::header(if val.is_some() { "val. RMSE" } else { "validation" });
            let table = crate::lambda_path::table(&header, &points, best, val.is_some(), lambdas.len()).join("\n");
            path_rows = Some((points, table));
            params.lambda = lambdas[best];
            fits.swap_remove(best)
        }
        None => fit_completion(&train, &params, None, &mut observe)?,
    };
    progress.finish();
    let mut rep = report(&a, m, n, &fitted);
    rep.validation = val.as_ref().map(|v| validation(&fitted, v));
    let (points, table) = path_rows.unzip();
    rep.lambda_path = points;
    if let Some(path) = &a.out {
        let mut extra = HashMap::new();
        extra.insert("data".to_string(), p.data.display().to_string());
        let cf = CompletionFile {
            model: fitted.clone(),
            row_ids: file.row_ids.clone(),
            col_ids: file.col_ids.clone(),
            lambda: params.lambda,
        };
        cf.save(path, extra)?;
        rep.model_file = Some(path.display().to_string());
    }
    if let Some(path) = &a.plot {
        gonn::plot::write_plot(path, &fitted.history, Some(p.tol))?;
        rep.plot_file = Some(path.display().to_string());
    }
    if let Some(path) = &p.report {
        rep.write(path)?;
    }
    let mut lines: Vec<String> = table.into_iter().collect();
    lines.push(format!(
        "status: {} (rank {}, {} outer iterations, {:.2} s; termination: {}, {})",
        fitted.certificate.status,
        fitted.rank(),
        fitted.outer_iterations,
        fitted.seconds,
        fitted.termination,
        fitted.termination.explain()
    ));
    lines.push(fitted.certificate.summary());
    if let Some(v) = &rep.validation {
        lines.push(format!("validation RMSE {:.6} on {} held-out ratings", v.rmse.unwrap_or(f64::NAN), v.count));
    }
    for (what, f) in [("model", &rep.model_file), ("plot", &rep.plot_file)] {
        if let Some(f) = f {
            lines.push(format!("{what} written to {f}"));
        }
    }
    if let Some(r) = p.report.as_deref().filter(|r| r.as_os_str() != "-") {
        lines.push(format!("report written to {}", r.display()));
    }
    say(p.quiet, "");
    result(p.quiet, p.report.as_deref(), &lines.join("\n"));
    if fitted.termination == Termination::Interrupted && stop.load(Ordering::SeqCst) {
        say(p.quiet, "interrupted: wrote the best point reached so far");
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether a model file was fitted to ratings.
pub fn is_ratings_model(path: &Path) -> bool {
    gonn::io::load_model(path).is_ok_and(|f| f.metadata.get(CompletionFile::MARK).is_some_and(|v| v == "true"))
}

/// `gonn predict` for a ratings model: one prediction per `(user, item)` line of `--data` (ids as in training;
/// extra columns such as a rating are ignored), written as CSV `user,item,prediction`.
pub fn predict(a: PredictArgs) -> Result<()> {
    check_outputs(&[&a.out], &[&a.model_file, &a.data])?;
    check_writable(&a.out)?;
    let cf = CompletionFile::load(&a.model_file)?;
    let bytes = std::fs::read(&a.data).map_err(|e| GonnError::io(&a.data, e))?;
    let text = String::from_utf8(bytes).map_err(|_| GonnError::format(&a.data, "not UTF-8 text"))?;
    let (rmap, cmap) = (cf.row_index(), cf.col_index());
    let (m, n) = (cf.model.u.nrows(), cf.model.v.nrows());
    let mut out = String::from("user,item,prediction\n");
    let mut count = 0;
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = if line.contains("::") {
            line.split("::").collect()
        } else if line.contains('\t') {
            line.split('\t').collect()
        } else if line.contains(',') {
            line.split(',').collect()
        } else {
            line.split_whitespace().collect()
        };
        let fields: Vec<&str> = fields.iter().map(|f| f.trim().trim_matches('"')).collect();
        if fields.len() < 2 {
            return Err(GonnError::format(&a.data, format!("line {}: expected `user,item`", ln + 1)));
        }
        let lookup = |map: &HashMap<&str, usize>, id: &str, limit: usize| -> Option<usize> {
            if map.is_empty() {
                id.parse::<usize>().ok().filter(|&i| i < limit)
            } else {
                map.get(id).copied()
            }
        };
        let (i, j) = (lookup(&rmap, fields[0], m), lookup(&cmap, fields[1], n));
        let (Some(i), Some(j)) = (i, j) else {
            if ln == 0 && i.is_none() && j.is_none() {
                continue; // a header line (neither field is an id of the model)
            }
            let which = if i.is_none() { format!("user `{}`", fields[0]) } else { format!("item `{}`", fields[1]) };
            return Err(GonnError::format(&a.data, format!("line {}: {which} is not in the model", ln + 1)));
        };
        out.push_str(&format!("{},{},{}\n", fields[0], fields[1], cf.model.predict(i, j)));
        count += 1;
    }
    write_atomic(&a.out, out.as_bytes())?;
    result(false, Some(&a.out), &format!("predictions for {count} (user, item) pairs written to {}", a.out.display()));
    Ok(())
}
