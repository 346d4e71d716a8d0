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
mod lambda_path;
mod load;
mod predict;
mod progress;
mod ratings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The command line of gonn (see `about`).
#[derive(Parser)]
#[command(
    name = "gonn",
    about = "gonn fits factorizations and ReLU, deep and convolutional networks built from positively homogeneous\n\
             subnetworks, chooses how many to use, and proves how far the fit is from the global optimum.",
    version,
    long_about = None,
    propagate_version = true,
    after_help = "Examples (every command takes --help):
  gonn demo                                                   fit a demo matrix until certified
  gonn fit --model factor --data Y.npz --lambda 0.5 --out m.safetensors --report r.json --plot run.svg
  gonn fit --model relu --data xy.npz --lambda 0.1 --lambda-path 8 --validation-fraction 0.2
  gonn fit --model factor --data ratings.csv --lambda 50 --biases both --out recs.safetensors
  gonn certify --model relu --data xy.npz --lambda 0.1 --weights torch_state_dict.safetensors
  gonn predict --model-file m.safetensors --data X.npy --out pred.npy
  gonn predict --model-file recs.safetensors --data pairs.csv --out pred.csv   (user,item pairs by id)
  gonn evaluate --model-file m.safetensors --data test.npz
  gonn experiment growth --small --out results

Results go to standard output, progress to standard error; errors exit with code 2."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a noisy low-rank matrix with missing entries, fit it until certified, write report, model and plot.
    Demo(args::DemoArgs),
    /// Fit a model to data, growing and pruning subnetworks until the optimum is certified or a limit is hit.
    Fit(Box<args::FitArgs>),
    /// Compute the optimality certificate of given weights (from gonn or any other tool) without changing them.
    Certify(Box<args::CertifyArgs>),
    /// Apply a fitted network (relu, mlp or cnn) to new inputs, or a ratings model to (user, item) pairs.
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
        Command::Fit(a) => fit::fit(*a),
        Command::Certify(a) => done(certify::certify(*a)),
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
