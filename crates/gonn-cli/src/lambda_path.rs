//! `gonn fit --lambda-path K`: decreasing lambdas from lambda_max with warm starts, a table of the path, and the
//! model with the smallest validation error (or the last one).

use std::process::ExitCode;

use gonn::core::loss::Observations;
use gonn::meta::path::{fit_path, lambda_grid, PathPoint};
use gonn::meta::{Silent, Termination, ValidFitParams};
use gonn::Result;

use crate::args::FitArgs;
use crate::fit::{finish_fit, Extra};
use crate::load::{say, Loaded};

/// One row of the lambda path table (the dense and the ratings paths print the same table).
pub fn row(p: &PathPoint) -> String {
    let val = p.validation.as_ref().map_or("-".to_string(), |v| format!("{:.6e}", v.score()));
    format!(
        "{:>12.6e} {:>16.8e} {:>5} {:>10} {:>10} {:>14} {:>8.2}",
        p.lambda,
        p.objective,
        p.subnetworks,
        p.status.to_string(),
        p.relative_gap.map_or("-".into(), |g| format!("{g:.2e}")),
        val,
        p.seconds
    )
}

/// The header of the lambda path table, with the validation metric's name.
pub fn header(metric: &str) -> String {
    format!(
        "{:>12} {:>16} {:>5} {:>10} {:>10} {:>14} {:>8}",
        "lambda", "objective", "r", "status", "rel. gap", metric, "seconds"
    )
}

/// The table of a fitted path: every point, the kept one marked, and whether the path stopped early.
pub fn table(header: &str, points: &[PathPoint], best: usize, validated: bool, planned: usize) -> Vec<String> {
    let why = if validated { "the smallest validation error" } else { "the last lambda fitted" };
    let mut table = vec![header.to_string()];
    table.extend(points.iter().enumerate().map(|(i, pt)| row(pt) + if i == best { "  <- kept" } else { "" }));
    table.push(format!("kept lambda = {:.6e} ({why})", points[best].lambda));
    if points.len() < planned {
        table.push(format!("the path stopped after {} of {planned} lambdas (time limit or interrupt)", points.len()));
    }
    table
}

pub fn run(
    a: &FitArgs,
    l: &Loaded,
    params: &ValidFitParams,
    validation: Option<&Observations>,
    lambda_max: f64,
    k: usize,
) -> Result<ExitCode> {
    let p = &a.problem;
    let lambdas = lambda_grid(lambda_max, p.lambda, k)?;
    let metric = match (validation, l.loss) {
        (None, _) => "validation",
        (Some(_), gonn::core::loss::Loss::Squared) => "val. RMSE",
        (Some(_), _) => "val. error",
    };
    let header = header(metric);
    say(p.quiet, &format!("lambda path: {k} lambdas from lambda_max = {lambda_max:.6e} down to {}", p.lambda));
    say(p.quiet, &header);
    let quiet = p.quiet;
    let path = fit_path(params, l.net.as_ref(), &l.obs, validation, &lambdas, &mut |_| Box::new(Silent), &mut |pt| {
        say(quiet, &row(pt))
    })?;
    let best = &path.points[path.best];
    let table = table(&header, &path.points, path.best, validation.is_some(), lambdas.len());
    let mut kept = (**params).clone();
    kept.lambda = best.lambda;
    let kept = kept.validate()?;
    let fitted = &path.fits[path.best];
    let extra = Extra { validation: best.validation.clone(), path: Some((path.points.clone(), table.join("\n"))) };
    finish_fit(p, l, &kept, fitted, a.out.as_deref(), a.plot.as_deref(), extra)?;
    if path.fits.last().is_some_and(|f| f.termination == Termination::Interrupted) {
        say(p.quiet, "interrupted: wrote the best model of the path so far");
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}
