//! The command-line arguments of each subcommand (clap).

use std::path::PathBuf;

use clap::Args;

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
    /// relu: polar solver: exact (enumerate activation patterns; needs rank of [X, 1] <= 4), heuristic (pattern
    /// ascent, loose bound), bab (ascent plus branch and bound: a proven bound that tightens with
    /// --polar-seconds), or auto (exact where affordable, bab otherwise).
    #[arg(long, default_value = "auto")]
    pub polar: String,
    /// relu: seconds for one polar's branch and bound (default 10); each proven polar of a fit gets this much.
    #[arg(long, allow_negative_numbers = true)]
    pub polar_seconds: Option<f64>,
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
    /// (default `mask`, used when present; a name given here must exist).
    #[arg(long)]
    pub mask_key: Option<String>,
    /// Relative tolerance on the certified gap: certified when gap_bound <= tol * objective.
    #[arg(long, default_value_t = 1e-6, allow_negative_numbers = true)]
    pub tol: f64,
    /// Worker threads for the dense kernels (0: all cores).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub threads: usize,
    /// Write the JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
    /// Ratings (`--model factor` on triplets): unregularized biases added to `U V^T`: none, global (one offset)
    /// or both (a bias per row and per column).
    #[arg(long, default_value = "none")]
    pub biases: String,
    /// Ratings in a text file: the user, item and rating columns, as header names or 1-based positions
    /// (default: userId/movieId/rating or similar names, else the first three fields).
    #[arg(long, value_name = "USER,ITEM,RATING")]
    pub columns: Option<String>,
}

#[derive(Args)]
pub struct FitArgs {
    #[command(flatten)]
    pub problem: ProblemArgs,
    /// Write the fitted model (safetensors: weights U, V or A, B, C plus metadata and certificate) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start from this many random subnetworks (hidden units for relu; default: start empty).
    #[arg(long, default_value_t = 0, alias = "init-width", allow_negative_numbers = true)]
    pub init_rank: usize,
    /// Seed of every random choice (same seed and thread count, same result).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub seed: u64,
    /// Maximum outer iterations (descent + polar + growth).
    #[arg(long, default_value_t = 500, allow_negative_numbers = true)]
    pub max_outer: usize,
    /// Wall-clock limit in seconds.
    #[arg(long, default_value_t = 600.0, allow_negative_numbers = true)]
    pub max_seconds: f64,
    /// Restarts of the heuristic polar searches (NP-hard factor polars, ReLU units in more than 2-D, deep
    /// subnetworks).
    #[arg(long, default_value_t = 8, allow_negative_numbers = true)]
    pub polar_restarts: usize,
    /// mlp/cnn: minibatch size of the local descent (default: full batch). The polar and the report always use
    /// a full pass over the data.
    #[arg(long, allow_negative_numbers = true)]
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
    /// Start from these weights (a gonn model, or weights made elsewhere in the layouts `certify` reads: U/V, A/B/C,
    /// W1/W2 or a PyTorch state_dict, Wk) and continue to a certified optimum.
    #[arg(long, conflicts_with = "resume")]
    pub init_weights: Option<PathBuf>,
    /// Fit a decreasing path of K lambdas, from lambda_max (where the zero model is optimal) down to --lambda,
    /// each warm-started from the previous optimum; prints a table (objective, subnetworks, certificate,
    /// validation error) and keeps the model with the smallest validation error (with --validation-fraction), or
    /// the last one. --max-seconds bounds the whole path.
    #[arg(long, value_name = "K", conflicts_with_all = ["resume", "init_weights", "checkpoint"])]
    pub lambda_path: Option<usize>,
    /// Hold out this fraction of the observed entries (factor, cp) or of the samples (relu, mlp, cnn), chosen
    /// with --seed, fit on the rest and report the held-out error (RMSE, or error rate for logistic and softmax).
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    pub validation_fraction: Option<f64>,
    /// Ratings: held-out ratings in a separate file (same format and ids as --data) for the validation RMSE.
    #[arg(long, value_name = "PATH", conflicts_with = "validation_fraction")]
    pub validation_data: Option<PathBuf>,
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
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
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
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
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
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub seed: u64,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}
