//! `gonn`: fit positively homogeneous models to a certified global optimum, or certify weights made elsewhere.

/// `eprintln!` that never panics: a closed standard error (`gonn fit ... 2>&1 | head`) must not lose the run.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that never panics on a closed standard output.
#[allow(unused_macros)]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod args;
mod certify;
mod demo;
mod experiment;
mod fit;
mod interrupt;
mod load;
mod predict;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Certified global optimality for matrix/tensor factorizations and homogeneous neural networks.
///
/// gonn minimizes loss(Y, sum_i phi(w_i)) + lambda * sum_i theta(w_i) over any number of subnetworks phi(w_i)
/// (rank-one matrices u v^T, tensors a∘b∘c, hidden ReLU units (X u)_+ v^T, or deep and convolutional stacks),
/// grows and prunes them with the polar problem, and ends with a certificate: a proven bound on the distance to
/// the global optimum, or an honest statement that none exists.
#[derive(Parser)]
#[command(name = "gonn", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a noisy low-rank matrix with missing entries, fit it until certified, write report, model and plot.
    Demo(args::DemoArgs),
    /// Fit a model to data, growing and pruning subnetworks until the optimum is certified or a limit is hit.
    Fit(args::FitArgs),
    /// Compute the optimality certificate of given weights (from gonn or any other tool) without changing them.
    Certify(args::CertifyArgs),
    /// Apply a fitted network (relu, mlp or cnn) to new inputs and write its predictions.
    Predict(args::PredictArgs),
    /// Loss and accuracy (or mean squared error) of a fitted network on held-out data.
    Evaluate(args::EvaluateArgs),
    /// Rerun a result of the talk (homogeneity, growth, zero-subnetwork, mismatch, lambda-path, or all) with
    /// figures and a markdown summary.
    Experiment(experiment::ExperimentArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = |r: gonn::Result<()>| r.map(|()| ExitCode::SUCCESS);
    let result = match cli.command {
        Command::Demo(a) => demo::demo(a),
        Command::Fit(a) => fit::fit(a),
        Command::Certify(a) => done(certify::certify(a)),
        Command::Predict(a) => done(predict::predict(a)),
        Command::Evaluate(a) => done(predict::evaluate(a)),
        Command::Experiment(a) => done(experiment::run(a)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            note!("error: {e}");
            ExitCode::from(2)
        }
    }
}
