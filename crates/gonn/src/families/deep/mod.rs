//! Deep and convolutional subnetworks (THEORY.md sections 1 and 6): each subnetwork is a small stack of
//! positively homogeneous layers, `phi(W^1..W^K) = psi_K(... psi_1(X W^1) ...) W^K`, with weight layers (fully
//! connected or convolution), 1-homogeneous nonlinearities (ReLU, leaky ReLU, max-out) and pooling (max, mean).
//! The degree is the number of weight layers. A first-layer bias is a constant-1 input column (for a convolution,
//! a constant-1 entry in each patch); deeper layers have no bias, which would break homogeneity.
//!
//! The `r` parallel subnetworks are evaluated as batched work: the first layer of all of them is one wide
//! product `P [W^1_1 .. W^1_r]` (`P` is `X` or the im2col lowering of the images), deeper layers are
//! block-diagonal products (one per subnetwork, on contiguous column blocks), convolutions are im2col products,
//! and the output layer is one product `[H_1 .. H_r] [W^K_1; ..; W^K_r]`. Backward passes are hand written.
//!
//! Weight layout: column `i` of layer block `k` is subnetwork `i`'s `fan_in x fan_out` matrix in column-major
//! order, so that the layer computes `pre = input W` (rows are samples, or sample-pixels for a convolution). A
//! convolution's `fan_in` indexes the patch as `(dy * k + dx) * c_in + c`, images are stored row by row in
//! height-width-channel order (`x[s, (y * w + x) * c + ch]`), valid padding and stride 1. Max-out with `m` pieces
//! gives a weight layer `m` times as many outputs, unit `j` taking the largest of outputs `j m .. j m + m - 1`.

pub mod descent;
pub mod polar;

use std::fmt;

use faer::{Mat, MatMut, MatRef, Par};

use crate::core::descent::{DescentInfo, DescentOptions};
use crate::core::norms::{LayerNorm, Norm};
use crate::core::polar::{Polar, PolarOptions};
use crate::core::problem::Problem;
use crate::core::{Family, Regularizer, Subnetwork, Weights};
use crate::error::{GonnError, Result};
use crate::numerics::linalg::{mul, mul_into};
use crate::numerics::rng::Rng;
use crate::numerics::spectral::sigma_max_bound;

/// The 1-homogeneous nonlinearity after each hidden weight layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `max(z, 0)`.
    Relu,
    /// `max(z, alpha z)` with `0 <= alpha < 1`.
    Leaky(f64),
    /// The largest of `m` linear pieces.
    Maxout(usize),
}

impl Activation {
    /// Parses `relu`, `leaky:ALPHA` (default 0.1) or `maxout:M` (default 2).
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        let (name, arg) = s.split_once(':').map_or((s.as_str(), None), |(a, b)| (a, Some(b)));
        let bad = |why: &str| GonnError::param("activation", format!("`{s}`: {why}"));
        match name {
            "relu" if arg.is_none() => Ok(Activation::Relu),
            "leaky" | "leaky-relu" => {
                let a: f64 = arg.map_or(Ok(0.1), |a| a.parse().map_err(|_| bad("ALPHA must be a number")))?;
                if !(0.0..1.0).contains(&a) {
                    return Err(bad("ALPHA must be in [0, 1)"));
                }
                Ok(Activation::Leaky(a))
            }
            "maxout" => {
                let m: usize = arg.map_or(Ok(2), |a| a.parse().map_err(|_| bad("M must be a whole number")))?;
                if !(2..=16).contains(&m) {
                    return Err(bad("M must be between 2 and 16"));
                }
                Ok(Activation::Maxout(m))
            }
            _ => Err(bad("expected relu, leaky:ALPHA or maxout:M")),
        }
    }

    /// Linear pieces per unit (1 except for max-out).
    pub fn pieces(&self) -> usize {
        match self {
            Activation::Maxout(m) => *m,
            _ => 1,
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Relu => write!(f, "relu"),
            Activation::Leaky(a) => write!(f, "leaky:{a}"),
            Activation::Maxout(m) => write!(f, "maxout:{m}"),
        }
    }
}

/// Pooling kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Max,
    Mean,
}

/// One stage of the hidden stack (the output layer to `C` outputs is always appended).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stage {
    /// Fully connected layer with `width` units, then the activation.
    Dense { width: usize },
    /// `kernel x kernel` convolution (valid, stride 1) with `channels` output channels, then the activation.
    Conv { channels: usize, kernel: usize },
    /// Non-overlapping `size x size` pooling.
    Pool { kind: Pool, size: usize },
}

/// A subnetwork architecture: `mlp:32,16` or `cnn:c8k3,pool2,c16k3,pool2` (THEORY.md section 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    pub stages: Vec<Stage>,
    pub activation: Activation,
}

impl Architecture {
    /// Parses `mlp:W1,W2,..` (fully connected widths) or `cnn:TOKENS` with tokens `cCkK` (convolution), `poolS`,
    /// `maxpoolS`, `meanpoolS` / `avgpoolS` and `fcN` (fully connected).
    pub fn parse(spec: &str, activation: Activation) -> Result<Self> {
        let spec = spec.trim().to_ascii_lowercase();
        let bad = |why: String| GonnError::param("model", format!("`{spec}`: {why}"));
        let (kind, rest) =
            spec.split_once(':').ok_or_else(|| bad("expected mlp:W1,W2,.. or cnn:c8k3,pool2,..".into()))?;
        let num = |t: &str, what: &str| -> Result<usize> {
            match t.parse::<usize>() {
                Ok(v) if (1..=4096).contains(&v) => Ok(v),
                _ => Err(bad(format!("{what} `{t}` must be a whole number from 1 to 4096"))),
            }
        };
        let mut stages = Vec::new();
        for tok in rest.split(',').map(str::trim) {
            if tok.is_empty() {
                return Err(bad("empty layer".into()));
            }
            let stage = match kind {
                "mlp" => Stage::Dense { width: num(tok, "width")? },
                "cnn" => {
                    if let Some(t) = tok.strip_prefix("fc") {
                        Stage::Dense { width: num(t, "width")? }
                    } else if let Some(t) = tok.strip_prefix("maxpool").or_else(|| tok.strip_prefix("pool")) {
                        Stage::Pool { kind: Pool::Max, size: num(t, "pool size")? }
                    } else if let Some(t) = tok.strip_prefix("meanpool").or_else(|| tok.strip_prefix("avgpool")) {
                        Stage::Pool { kind: Pool::Mean, size: num(t, "pool size")? }
                    } else if let Some(t) = tok.strip_prefix('c') {
                        let (c, k) = t.split_once('k').ok_or_else(|| bad(format!("`{tok}`: expected cCkK")))?;
                        Stage::Conv { channels: num(c, "channels")?, kernel: num(k, "kernel")? }
                    } else {
                        return Err(bad(format!("unknown layer `{tok}` (expected cCkK, poolS, meanpoolS or fcN)")));
                    }
                }
                other => return Err(bad(format!("unknown architecture `{other}` (expected mlp or cnn)"))),
            };
            stages.push(stage);
        }
        if kind == "cnn" && !matches!(stages.first(), Some(Stage::Conv { .. })) {
            return Err(bad("a cnn starts with a convolution cCkK".into()));
        }
        Ok(Self { stages, activation })
    }

    /// `mlp` or `cnn`.
    pub fn kind(&self) -> &'static str {
        if self.stages.iter().any(|s| !matches!(s, Stage::Dense { .. })) {
            "cnn"
        } else {
            "mlp"
        }
    }

    /// Number of weight layers `K`, the output layer included: the degree of homogeneity of `phi`, computed from
    /// the stack (each weight layer adds 1, nonlinearities and pooling add 0).
    pub fn degree(&self) -> usize {
        self.stages.iter().map(|s| usize::from(!matches!(s, Stage::Pool { .. }))).sum::<usize>() + 1
    }
}

impl Architecture {
    /// `(fan_in, fan_out)` of each weight layer for inputs with `d` features (see [`DeepNetwork::new`]), without
    /// building the family.
    pub fn layer_shapes(
        &self,
        d: usize,
        image: Option<ImageShape>,
        bias: bool,
        outputs: usize,
    ) -> Result<Vec<(usize, usize)>> {
        Ok(weight_shapes(&lower(self, d, image, bias, outputs)?))
    }
}

/// `(fan_in, fan_out)` of the weight ops.
fn weight_shapes(ops: &[Op]) -> Vec<(usize, usize)> {
    ops.iter()
        .filter_map(|op| if let Op::Weight { fan_in, fan_out, .. } = op { Some((*fan_in, *fan_out)) } else { None })
        .collect()
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let toks: Vec<String> = self
            .stages
            .iter()
            .map(|s| match (self.kind(), s) {
                ("mlp", Stage::Dense { width }) => width.to_string(),
                (_, Stage::Dense { width }) => format!("fc{width}"),
                (_, Stage::Conv { channels, kernel }) => format!("c{channels}k{kernel}"),
                (_, Stage::Pool { kind: Pool::Max, size }) => format!("pool{size}"),
                (_, Stage::Pool { kind: Pool::Mean, size }) => format!("meanpool{size}"),
            })
            .collect();
        write!(f, "{}:{}", self.kind(), toks.join(","))
    }
}

/// The lowered form of the stack: what each step does to the activations. Activations are wide matrices with
/// one contiguous block of `channels` columns per subnetwork and `n * positions` rows (`positions = 1` for flat
/// features).
#[derive(Clone, Debug)]
enum Op {
    /// Weight layer: `fan_in x fan_out` per subnetwork; `conv` holds the input geometry `(h, w, c, k)`.
    Weight { fan_in: usize, fan_out: usize, conv: Option<(usize, usize, usize, usize)> },
    /// The activation on `units * pieces` channels, giving `units` channels.
    Act { units: usize },
    /// Pooling on an `h x w x c` input.
    Pool { kind: Pool, h: usize, w: usize, c: usize, s: usize },
    /// `positions x channels` per sample become `1 x (positions * channels)` (feature `p * channels + c`).
    Flatten { positions: usize, channels: usize },
}

/// Input geometry of images: height, width, channels.
pub type ImageShape = (usize, usize, usize);

/// A family of deep or convolutional subnetworks on fixed inputs `X` (THEORY.md section 1).
#[derive(Clone, Debug)]
pub struct DeepNetwork {
    arch: Architecture,
    ops: Vec<Op>,
    /// Rows of `P` per sample (output positions of a first-layer convolution, else 1).
    first_positions: usize,
    /// The first layer's operand `P`: `[X, 1]`, or the im2col lowering of the images with a constant column.
    p0: Mat<f64>,
    n: usize,
    outputs: usize,
    bias: bool,
    input_dim: usize,
    image: Option<ImageShape>,
    norms: Vec<LayerNorm>,
    dims: Vec<usize>,
    reg: Regularizer,
    /// Proven `||Q||_2`-free factor of the loose polar bound: `sigma_max(P)` times the Lipschitz constants of
    /// later convolutions (`k`) and mean pools (`1/s`).
    lipschitz: f64,
}

/// What a forward pass keeps for the backward pass: the output of every op but the last (ReLU and leaky ReLU
/// act in place: their output's sign is their pattern), and the winners of max-out and max pooling.
pub(crate) struct Cache {
    mats: Vec<Mat<f64>>,
    /// For each op, the index in `mats` of its output.
    slot: Vec<usize>,
    /// For max pooling and max-out ops: the input index that won, per output entry (column-major over the wide
    /// output).
    argmax: Vec<Option<Vec<u32>>>,
    /// Network output `Phi(W)` (`n x C`).
    pub(crate) out: Mat<f64>,
    /// Samples in this pass.
    n: usize,
}

impl Cache {
    /// The output of op `idx`.
    fn output(&self, idx: usize) -> &Mat<f64> {
        &self.mats[self.slot[idx]]
    }

    /// The input of the output layer (`[H_1 .. H_r]`).
    fn last_hidden(&self) -> &Mat<f64> {
        self.output(self.slot.len() - 1)
    }
}

/// Lowers a stack to ops for inputs with `d` features (images of shape `image` for a cnn), an optional
/// first-layer bias and `outputs` outputs; checks that every layer fits its input.
fn lower(arch: &Architecture, d: usize, image: Option<ImageShape>, bias: bool, outputs: usize) -> Result<Vec<Op>> {
    let pieces = arch.activation.pieces();
    let mut ops = Vec::new();
    // Current geometry: Some((h, w, c)) while spatial, else the flat feature count.
    let mut spatial: Option<(usize, usize, usize)> = None;
    let mut flat = d;
    if arch.kind() == "cnn" {
        let (h, w, c) = image
            .ok_or_else(|| GonnError::param("image", "a cnn needs the image shape HxW or HxWxC (e.g. --image 8x8)"))?;
        if h * w * c != d {
            return Err(GonnError::Shape(format!(
                "images of {h}x{w}x{c} need {} features, the data has {d}",
                h * w * c
            )));
        }
        spatial = Some((h, w, c));
    }
    for (idx, stage) in arch.stages.iter().enumerate() {
        let first = idx == 0;
        match *stage {
            Stage::Dense { width } => {
                if let Some((h, w, c)) = spatial.take() {
                    ops.push(Op::Flatten { positions: h * w, channels: c });
                    flat = h * w * c;
                }
                let fan_in = flat + usize::from(first && bias);
                ops.push(Op::Weight { fan_in, fan_out: width * pieces, conv: None });
                ops.push(Op::Act { units: width });
                flat = width;
            }
            Stage::Conv { channels, kernel } => {
                let (h, w, c) = spatial
                    .ok_or_else(|| GonnError::param("model", "a convolution cannot follow a fully connected layer"))?;
                if kernel > h || kernel > w {
                    return Err(GonnError::param(
                        "model",
                        format!("a {kernel}x{kernel} convolution does not fit a {h}x{w} input"),
                    ));
                }
                let fan_in = kernel * kernel * c + usize::from(first && bias);
                ops.push(Op::Weight { fan_in, fan_out: channels * pieces, conv: Some((h, w, c, kernel)) });
                ops.push(Op::Act { units: channels });
                spatial = Some((h + 1 - kernel, w + 1 - kernel, channels));
            }
            Stage::Pool { kind, size } => {
                let (h, w, c) =
                    spatial.ok_or_else(|| GonnError::param("model", "pooling needs a spatial (convolution) input"))?;
                if size > h || size > w {
                    return Err(GonnError::param(
                        "model",
                        format!("a {size}x{size} pool does not fit a {h}x{w} input"),
                    ));
                }
                ops.push(Op::Pool { kind, h, w, c, s: size });
                spatial = Some((h / size, w / size, c));
            }
        }
    }
    if let Some((h, w, c)) = spatial.take() {
        ops.push(Op::Flatten { positions: h * w, channels: c });
        flat = h * w * c;
    }
    ops.push(Op::Weight { fan_in: flat, fan_out: outputs, conv: None });
    Ok(ops)
}

/// im2col: rows `s * ho * wo + y * wo + x`, columns `(dy * k + dx) * c + ch` of an `h x w x c` activation
/// stored as rows `s * h * w + pos` (and `bias`: one more, constant column).
fn im2col(a: MatRef<'_, f64>, n: usize, (h, w, c, k): (usize, usize, usize, usize), bias: bool) -> Mat<f64> {
    let (ho, wo) = (h + 1 - k, w + 1 - k);
    let cols = k * k * c + usize::from(bias);
    let mut p = Mat::zeros(n * ho * wo, cols);
    for dy in 0..k {
        for dx in 0..k {
            for ch in 0..c {
                let col = (dy * k + dx) * c + ch;
                let src = a.col(ch);
                let dst = p.col_as_slice_mut(col);
                for s in 0..n {
                    for y in 0..ho {
                        let (row0, src0) = (s * ho * wo + y * wo, s * h * w + (y + dy) * w + dx);
                        for x in 0..wo {
                            dst[row0 + x] = src[src0 + x];
                        }
                    }
                }
            }
        }
    }
    if bias {
        p.col_as_slice_mut(cols - 1).iter_mut().for_each(|v| *v = 1.0);
    }
    p
}

/// The adjoint of [`im2col`] (without bias): accumulates patch gradients back onto the activation.
fn col2im(dp: MatRef<'_, f64>, n: usize, (h, w, c, k): (usize, usize, usize, usize), mut out: MatMut<'_, f64>) {
    let (ho, wo) = (h + 1 - k, w + 1 - k);
    for dy in 0..k {
        for dx in 0..k {
            for ch in 0..c {
                let src = dp.col((dy * k + dx) * c + ch);
                let mut dst = out.as_mut().col_mut(ch);
                for s in 0..n {
                    for y in 0..ho {
                        let (row0, dst0) = (s * ho * wo + y * wo, s * h * w + (y + dy) * w + dx);
                        for x in 0..wo {
                            dst[dst0 + x] += src[row0 + x];
                        }
                    }
                }
            }
        }
    }
}

/// Subnetwork `i`'s layer as a `fan_in x fan_out` view of its column.
fn layer_view(l: &Mat<f64>, i: usize, fan_in: usize, fan_out: usize) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(l.col_as_slice(i), fan_in, fan_out)
}

impl DeepNetwork {
    /// The family on inputs `x` (`n x d`), with `outputs` outputs, images of shape `image` (needed by
    /// convolutions; `d = h * w * c`), an optional first-layer bias and the regularizer form.
    pub fn new(
        x: MatRef<'_, f64>,
        outputs: usize,
        arch: Architecture,
        image: Option<ImageShape>,
        bias: bool,
        reg: Regularizer,
    ) -> Result<Self> {
        let (n, d) = (x.nrows(), x.ncols());
        if n == 0 || d == 0 || outputs == 0 {
            return Err(GonnError::Shape(format!("need samples, features and outputs; got {n} x {d} -> {outputs}")));
        }
        let ops = lower(&arch, d, image, bias, outputs)?;
        let (p0, first_positions) = match &ops[0] {
            Op::Weight { conv: Some(geom), .. } => {
                let (h, w, c, _) = *geom;
                // Images as rows `s * h * w + pos`, channels as columns.
                let a = Mat::from_fn(n * h * w, c, |row, ch| x[(row / (h * w), (row % (h * w)) * c + ch)]);
                let p = im2col(a.as_ref(), n, *geom, bias);
                let pos = p.nrows() / n;
                (p, pos)
            }
            _ => (crate::numerics::linalg::augment(x, bias), 1),
        };
        let dims: Vec<usize> = weight_shapes(&ops).iter().map(|(fi, fo)| fi * fo).collect();
        let norms = vec![LayerNorm::new(Norm::L2, false); dims.len()];
        let mut lipschitz = sigma_max_bound(p0.as_ref(), Par::Seq);
        for op in ops.iter().skip(1) {
            match op {
                Op::Weight { conv: Some((_, _, _, k)), .. } => lipschitz *= *k as f64,
                Op::Pool { kind: Pool::Mean, s, .. } => lipschitz /= *s as f64,
                _ => {}
            }
        }
        Ok(Self { arch, ops, first_positions, p0, n, outputs, bias, input_dim: d, image, norms, dims, reg, lipschitz })
    }

    pub fn architecture(&self) -> &Architecture {
        &self.arch
    }

    /// Image shape of convolutional inputs.
    pub fn image(&self) -> Option<ImageShape> {
        self.image
    }

    /// The regularizer form.
    pub fn reg(&self) -> Regularizer {
        self.reg
    }

    /// `(fan_in, fan_out)` of each weight layer: subnetwork `i`'s layer `k` is `W^k_i` with `pre = input W^k_i`.
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        weight_shapes(&self.ops)
    }

    /// Rows per sample of each weight layer's output: the output positions of a convolution, else 1.
    pub fn layer_positions(&self) -> Vec<usize> {
        self.ops
            .iter()
            .filter_map(|op| match op {
                Op::Weight { conv: Some((h, w, _, k)), .. } => Some((h + 1 - k) * (w + 1 - k)),
                Op::Weight { conv: None, .. } => Some(1),
                _ => None,
            })
            .collect()
    }

    /// The same family on other inputs (same architecture and regularizer), e.g. to predict.
    pub fn with_inputs(&self, x: MatRef<'_, f64>) -> Result<Self> {
        if x.ncols() != self.input_dim {
            return Err(GonnError::Shape(format!(
                "the model takes {} input features, the data has {}",
                self.input_dim,
                x.ncols()
            )));
        }
        Self::new(x, self.outputs, self.arch.clone(), self.image, self.bias, self.reg)
    }

    /// The first layer's operand restricted to the samples `rows`.
    fn operand(&self, rows: Option<&[usize]>) -> (std::borrow::Cow<'_, Mat<f64>>, usize) {
        match rows {
            None => (std::borrow::Cow::Borrowed(&self.p0), self.n),
            Some(rows) => {
                let pp = self.first_positions;
                let p = Mat::from_fn(rows.len() * pp, self.p0.ncols(), |i, j| self.p0[(rows[i / pp] * pp + i % pp, j)]);
                (std::borrow::Cow::Owned(p), rows.len())
            }
        }
    }

    /// The forward pass on all samples or on `rows`, keeping what the backward pass needs.
    fn run(&self, w: &Weights, rows: Option<&[usize]>, par: Par) -> Cache {
        let r = w.width();
        let (p0, n) = self.operand(rows);
        let mut cache = Cache { mats: vec![], slot: vec![], argmax: vec![], out: Mat::zeros(n, self.outputs), n };
        if r == 0 {
            return cache;
        }
        let mut k = 0;
        let last = self.ops.len() - 1;
        for (idx, op) in self.ops.iter().enumerate() {
            let mut arg = None;
            let next = match op {
                Op::Weight { fan_in, fan_out, conv } => {
                    let l = &w.layers[k];
                    k += 1;
                    if idx == 0 {
                        let wide =
                            Mat::from_fn(*fan_in, r * fan_out, |a, b| l[(a + (b % fan_out) * fan_in, b / fan_out)]);
                        mul(p0.as_ref().as_ref(), wide.as_ref(), par)
                    } else if idx == last {
                        let stack = Mat::from_fn(r * fan_in, *fan_out, |a, c| l[(a % fan_in + c * fan_in, a / fan_in)]);
                        cache.out = mul(cache.output(idx - 1).as_ref(), stack.as_ref(), par);
                        return cache;
                    } else {
                        let cur = cache.output(idx - 1);
                        let ch_in = cur.ncols() / r;
                        let rows_out = match conv {
                            Some((h, ww, _, kk)) => n * (h + 1 - kk) * (ww + 1 - kk),
                            None => cur.nrows(),
                        };
                        let mut next = Mat::zeros(rows_out, r * fan_out);
                        for i in 0..r {
                            let a = cur.as_ref().subcols(i * ch_in, ch_in);
                            let wi = layer_view(l, i, *fan_in, *fan_out);
                            let dst = next.as_mut().subcols_mut(i * fan_out, *fan_out);
                            match conv {
                                Some(geom) => mul_into(dst, im2col(a, n, *geom, false).as_ref(), wi, par),
                                None => mul_into(dst, a, wi, par),
                            }
                        }
                        next
                    }
                }
                Op::Act { units } => match self.arch.activation {
                    Activation::Relu | Activation::Leaky(_) => {
                        let alpha = if let Activation::Leaky(a) = self.arch.activation { a } else { 0.0 };
                        let at = cache.slot[idx - 1];
                        let m = &mut cache.mats[at];
                        for j in 0..m.ncols() {
                            m.col_as_slice_mut(j).iter_mut().for_each(|v| *v = v.max(alpha * *v));
                        }
                        cache.slot.push(at);
                        cache.argmax.push(None);
                        continue;
                    }
                    Activation::Maxout(m) => {
                        let (out, a) = maxout(cache.output(idx - 1), *units * r, m);
                        arg = Some(a);
                        out
                    }
                },
                Op::Pool { kind, h, w: ww, c, s } => {
                    let (out, a) = pool_forward(cache.output(idx - 1), n, r, *kind, (*h, *ww, *c, *s));
                    arg = a;
                    out
                }
                Op::Flatten { positions, channels } => {
                    flatten(cache.output(idx - 1), n, r, *positions, *channels, true)
                }
            };
            cache.mats.push(next);
            cache.slot.push(cache.mats.len() - 1);
            cache.argmax.push(arg);
        }
        unreachable!("the stack ends with the output layer")
    }

    /// `d <G, Phi> / d W^k` for every layer `k` from one backward pass on `cache` (`g` is `n x C`).
    fn backward(
        &self,
        w: &Weights,
        cache: &Cache,
        g: MatRef<'_, f64>,
        rows: Option<&[usize]>,
        par: Par,
    ) -> Vec<Mat<f64>> {
        let r = w.width();
        let kdeg = self.dims.len();
        let mut grads: Vec<Mat<f64>> = self.dims.iter().map(|&d| Mat::zeros(d, r)).collect();
        if r == 0 {
            return grads;
        }
        let n = cache.n;
        let mut k = kdeg;
        let mut delta = Mat::zeros(0, 0);
        for (idx, op) in self.ops.iter().enumerate().rev() {
            match op {
                Op::Weight { fan_in, fan_out, conv } => {
                    k -= 1;
                    let l = &w.layers[k];
                    if idx == self.ops.len() - 1 {
                        let hg = crate::numerics::linalg::mul_tn(cache.output(idx - 1).as_ref(), g, par);
                        let gk = &mut grads[k];
                        for i in 0..r {
                            let col = gk.col_as_slice_mut(i);
                            for c in 0..*fan_out {
                                let src = &hg.col_as_slice(c)[i * fan_in..(i + 1) * fan_in];
                                col[c * fan_in..(c + 1) * fan_in].copy_from_slice(src);
                            }
                        }
                        let stack_t =
                            Mat::from_fn(*fan_out, r * fan_in, |c, a| l[(a % fan_in + c * fan_in, a / fan_in)]);
                        delta = mul(g, stack_t.as_ref(), par);
                    } else if k == 0 {
                        let (p0, _) = self.operand(rows);
                        let gw = crate::numerics::linalg::mul_tn(p0.as_ref().as_ref(), delta.as_ref(), par);
                        let gk = &mut grads[0];
                        for i in 0..r {
                            let col = gk.col_as_slice_mut(i);
                            for b in 0..*fan_out {
                                col[b * fan_in..(b + 1) * fan_in].copy_from_slice(gw.col_as_slice(i * fan_out + b));
                            }
                        }
                    } else {
                        let a_wide = cache.output(idx - 1);
                        let ch_in = a_wide.ncols() / r;
                        let mut next = Mat::zeros(a_wide.nrows(), a_wide.ncols());
                        for i in 0..r {
                            let a = a_wide.as_ref().subcols(i * ch_in, ch_in);
                            let d = delta.as_ref().subcols(i * fan_out, *fan_out);
                            let wi = layer_view(l, i, *fan_in, *fan_out);
                            let gi =
                                MatMut::from_column_major_slice_mut(grads[k].col_as_slice_mut(i), *fan_in, *fan_out);
                            match conv {
                                Some(geom) => {
                                    let p = im2col(a, n, *geom, false);
                                    mul_into(gi, p.transpose(), d, par);
                                    let dp = mul(d, wi.transpose(), par);
                                    col2im(dp.as_ref(), n, *geom, next.as_mut().subcols_mut(i * ch_in, ch_in));
                                }
                                None => {
                                    mul_into(gi, a.transpose(), d, par);
                                    mul_into(next.as_mut().subcols_mut(i * ch_in, ch_in), d, wi.transpose(), par);
                                }
                            }
                        }
                        delta = next;
                    }
                }
                Op::Act { units } => match self.arch.activation {
                    Activation::Relu | Activation::Leaky(_) => {
                        // The output's sign is the pattern: post > 0 exactly when pre > 0.
                        let alpha = if let Activation::Leaky(a) = self.arch.activation { a } else { 0.0 };
                        let post = cache.output(idx);
                        for j in 0..delta.ncols() {
                            let p = post.col_as_slice(j);
                            for (dv, pv) in delta.col_as_slice_mut(j).iter_mut().zip(p) {
                                // A select, not a branch: the signs are unpredictable.
                                *dv *= if *pv > 0.0 { 1.0 } else { alpha };
                            }
                        }
                    }
                    Activation::Maxout(m) => {
                        let arg = cache.argmax[idx].as_ref().expect("max-out keeps its winners");
                        let rows_n = delta.nrows();
                        let mut d = Mat::zeros(rows_n, delta.ncols() * m);
                        for col in 0..units * r {
                            for (row, v) in delta.col_as_slice(col).iter().enumerate() {
                                d[(row, col * m + arg[col * rows_n + row] as usize)] = *v;
                            }
                        }
                        delta = d;
                    }
                },
                Op::Pool { kind, h, w: ww, c, s } => {
                    let arg = cache.argmax[idx].as_deref();
                    delta = pool_backward(&delta, n, r, *kind, (*h, *ww, *c, *s), arg);
                }
                Op::Flatten { positions, channels } => {
                    delta = flatten(&delta, n, r, *positions, *channels, false);
                }
            }
        }
        grads
    }

    /// Every layer's gradient `d <G, Phi(W)> / d W^k` (one backward pass).
    pub fn gradients(&self, w: &Weights, g: MatRef<'_, f64>, par: Par) -> Vec<Mat<f64>> {
        let cache = self.run(w, None, par);
        self.backward(w, &cache, g, None, par)
    }

    /// One step of the polar search on a single subnetwork `w` (THEORY.md section 6): with the hidden layers fixed,
    /// `<Q, H W^K>` over `||W^K|| <= 1` is maximized by `W^K = H^T Q / ||H^T Q||`, which is set; returns the value
    /// `||H^T Q||` and the gradients of `<Q, phi(w)>` (at that last layer) for every layer.
    pub(crate) fn polar_eval(&self, w: &mut Weights, q: MatRef<'_, f64>, par: Par) -> (f64, Vec<Mat<f64>>) {
        let cache = self.run(w, None, par);
        let h = cache.last_hidden();
        let hq = crate::numerics::linalg::mul_tn(h.as_ref(), q, par);
        let value = hq.norm_l2();
        let last = w.layers.last_mut().expect("at least one layer");
        let fan_in = hq.nrows();
        for c in 0..hq.ncols() {
            for a in 0..fan_in {
                last[(a + c * fan_in, 0)] = if value > 0.0 { hq[(a, c)] / value } else { 0.0 };
            }
        }
        let grads = self.backward(w, &cache, q, None, par);
        (value, grads)
    }

    /// `phi(w_i)` of each subnetwork, `n x C` each.
    fn outputs_each(&self, w: &Weights, par: Par) -> Vec<Mat<f64>> {
        (0..w.width())
            .map(|i| {
                let single = Weights { layers: w.layers.iter().map(|l| l.subcols(i, 1).to_owned()).collect() };
                self.run(&single, None, par).out
            })
            .collect()
    }
}

/// Between the spatial layout (rows `s * positions + p`, one column per channel and subnetwork) and the flat one
/// (one row per sample, feature `p * channels + c` per subnetwork): `to_flat` flattens, otherwise the adjoint
/// (here the inverse permutation) is applied.
fn flatten(m: &Mat<f64>, n: usize, r: usize, pp: usize, c: usize, to_flat: bool) -> Mat<f64> {
    let mut out = if to_flat { Mat::zeros(n, r * pp * c) } else { Mat::zeros(n * pp, r * c) };
    for i in 0..r {
        for ch in 0..c {
            for p in 0..pp {
                let flat_col = i * pp * c + p * c + ch;
                for s in 0..n {
                    if to_flat {
                        out[(s, flat_col)] = m[(s * pp + p, i * c + ch)];
                    } else {
                        out[(s * pp + p, i * c + ch)] = m[(s, flat_col)];
                    }
                }
            }
        }
    }
    out
}

/// Max-out over groups of `m` consecutive columns: `cols` outputs and the winning piece of each entry.
fn maxout(pre: &Mat<f64>, cols: usize, m: usize) -> (Mat<f64>, Vec<u32>) {
    let rows = pre.nrows();
    let mut arg = vec![0u32; rows * cols];
    let mut out = Mat::zeros(rows, cols);
    for col in 0..cols {
        let dst = out.col_as_slice_mut(col);
        dst.copy_from_slice(pre.col_as_slice(col * m));
        for piece in 1..m {
            for (row, v) in pre.col_as_slice(col * m + piece).iter().enumerate() {
                if *v > dst[row] {
                    dst[row] = *v;
                    arg[col * rows + row] = piece as u32;
                }
            }
        }
    }
    (out, arg)
}

/// Non-overlapping pooling of an `h x w x c` activation (rows `s * h * w + pos`) for each of `r` blocks.
fn pool_forward(
    a: &Mat<f64>,
    n: usize,
    r: usize,
    kind: Pool,
    (h, w, c, s): (usize, usize, usize, usize),
) -> (Mat<f64>, Option<Vec<u32>>) {
    let (ho, wo) = (h / s, w / s);
    let mut out = Mat::zeros(n * ho * wo, r * c);
    let mut arg = (kind == Pool::Max).then(|| vec![0u32; n * ho * wo * r * c]);
    let inv = 1.0 / (s * s) as f64;
    for col in 0..r * c {
        let src = a.col_as_slice(col);
        for smp in 0..n {
            for y in 0..ho {
                for x in 0..wo {
                    let orow = smp * ho * wo + y * wo + x;
                    let (mut best, mut best_row, mut sum) = (f64::NEG_INFINITY, 0, 0.0);
                    for dy in 0..s {
                        for dx in 0..s {
                            let row = smp * h * w + (y * s + dy) * w + x * s + dx;
                            let v = src[row];
                            sum += v;
                            if v > best {
                                best = v;
                                best_row = row;
                            }
                        }
                    }
                    out[(orow, col)] = match kind {
                        Pool::Max => best,
                        Pool::Mean => sum * inv,
                    };
                    if let Some(arg) = arg.as_mut() {
                        arg[col * n * ho * wo + orow] = best_row as u32;
                    }
                }
            }
        }
    }
    (out, arg)
}

/// The adjoint of [`pool_forward`].
fn pool_backward(
    d: &Mat<f64>,
    n: usize,
    r: usize,
    kind: Pool,
    (h, w, c, s): (usize, usize, usize, usize),
    arg: Option<&[u32]>,
) -> Mat<f64> {
    let (ho, wo) = (h / s, w / s);
    let mut out = Mat::zeros(n * h * w, r * c);
    let inv = 1.0 / (s * s) as f64;
    for col in 0..r * c {
        let src = d.col_as_slice(col);
        let dst = out.col_as_slice_mut(col);
        for smp in 0..n {
            for y in 0..ho {
                for x in 0..wo {
                    let orow = smp * ho * wo + y * wo + x;
                    match (kind, arg) {
                        (Pool::Max, Some(arg)) => dst[arg[col * n * ho * wo + orow] as usize] += src[orow],
                        _ => {
                            for dy in 0..s {
                                for dx in 0..s {
                                    dst[smp * h * w + (y * s + dy) * w + x * s + dx] += inv * src[orow];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

impl Subnetwork for DeepNetwork {
    fn name(&self) -> &'static str {
        self.arch.kind()
    }
    fn layer_norms(&self) -> &[LayerNorm] {
        &self.norms
    }
    fn theta_form(&self) -> Regularizer {
        self.reg
    }
    fn layer_dims(&self) -> Vec<usize> {
        self.dims.clone()
    }
    fn output_shape(&self) -> (usize, usize) {
        (self.n, self.outputs)
    }
    fn forward(&self, w: &Weights, par: Par) -> Mat<f64> {
        self.run(w, None, par).out
    }
    fn layer_gradient(&self, w: &Weights, k: usize, g: MatRef<'_, f64>, par: Par) -> Mat<f64> {
        self.gradients(w, g, par).swap_remove(k)
    }
    fn output_gram(&self, w: &Weights, par: Par) -> Mat<f64> {
        let outs = self.outputs_each(w, par);
        let r = outs.len();
        Mat::from_fn(r, r, |a, b| crate::numerics::linalg::dot(outs[a].as_ref(), outs[b].as_ref()))
    }
}

impl Family for DeepNetwork {
    fn polar(&self, q: MatRef<'_, f64>, opts: &PolarOptions, rng: &mut Rng) -> Polar {
        crate::families::deep::polar::heuristic_polar(self, q, opts, rng)
    }
    fn descend(&self, p: &Problem<'_>, w: &mut Weights, opts: &DescentOptions) -> DescentInfo {
        crate::families::deep::descent::prox_descent(self, p, w, opts)
    }
}

/// The loose proven bound of the polar (THEORY.md section 6): `||Q||_2` times the Lipschitz constant of the
/// stack with unit layer norms (`sigma_max(P)`, times `k` per later convolution and `1/s` per mean pool; ReLU,
/// leaky ReLU, max-out and max pooling are nonexpansive and map 0 to 0).
pub fn polar_upper_bound(net: &DeepNetwork, q: MatRef<'_, f64>) -> f64 {
    sigma_max_bound(q, Par::Seq) * net.lipschitz
}

/// The per-layer gradients of `<G, Phi>` on the samples `rows` only, with `G = grad_of(Phi(W) on rows)`
/// (minibatch descent).
pub(crate) fn batch_pass(
    net: &DeepNetwork,
    w: &Weights,
    rows: &[usize],
    grad_of: impl FnOnce(MatRef<'_, f64>) -> Mat<f64>,
    par: Par,
) -> Vec<Mat<f64>> {
    let cache = net.run(w, Some(rows), par);
    let g = grad_of(cache.out.as_ref());
    net.backward(w, &cache, g.as_ref(), Some(rows), par)
}

/// The forward pass on all samples, kept for [`backward_pass`].
pub(crate) fn forward_pass(net: &DeepNetwork, w: &Weights, par: Par) -> Cache {
    net.run(w, None, par)
}

/// The per-layer gradients of `<G, Phi>` from a kept forward pass on all samples.
pub(crate) fn backward_pass(
    net: &DeepNetwork,
    w: &Weights,
    cache: &Cache,
    g: MatRef<'_, f64>,
    par: Par,
) -> Vec<Mat<f64>> {
    net.backward(w, cache, g, None, par)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_architectures_and_counts_degrees() {
        let a = Architecture::parse("mlp:32,16", Activation::Relu).unwrap();
        assert_eq!(a.degree(), 3);
        assert_eq!(a.to_string(), "mlp:32,16");
        let c = Architecture::parse("cnn:c8k3,pool2,c16k3,meanpool2", Activation::Maxout(2)).unwrap();
        assert_eq!(c.degree(), 3);
        assert_eq!(c.to_string(), "cnn:c8k3,pool2,c16k3,meanpool2");
        for bad in ["mlp", "mlp:", "mlp:0", "mlp:a", "cnn:pool2", "cnn:c8", "rnn:3", "cnn:c8k3,x"] {
            assert!(Architecture::parse(bad, Activation::Relu).is_err(), "{bad}");
        }
        assert!(Activation::parse("leaky:1.5").is_err());
        assert_eq!(Activation::parse("maxout:3").unwrap(), Activation::Maxout(3));
        assert_eq!(Regularizer::Product.degree(3), 3);
        assert_eq!(Regularizer::Powers.degree(4), 4);
        assert_eq!(Regularizer::WeightDecay.degree(3), 2);
    }
}
