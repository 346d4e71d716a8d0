//! The meta-algorithm for nuclear-norm matrix completion on sparse observations (THEORY.md sections 2-4 and 10):
//!
//! `min_{Z, beta} 1/2 sum_{(i,j) observed} (y_ij - [A beta]_ij - z_ij)^2 + lambda ||Z||_*`
//!
//! with `Z = U V^T` (the `l2, l2` factorization, whose induced regularizer is the nuclear norm) and optional
//! unregularized biases `A beta`: none, a global offset `o`, or row and column biases `b_i + c_j`. The descent is
//! exact alternating row and column solves on the observed entries, followed by the rotation of `(U, V)` to the
//! singular vectors of `U V^T` (so `theta = sum_k ||u_k|| ||v_k|| = ||Z||_*` exactly). The polar is
//! `sigma_max(R) / lambda` of the sparse residual `R`: Lanczos below, a Cholesky of `c^2 I - G` for the small-side
//! Gram `G` above. The certificate is weak duality with `D = t R` (THEORY.md section 10 for the bias term).

use std::ops::ControlFlow;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use faer::Mat;
use serde::{Deserialize, Serialize};

use crate::error::{GonnError, Result};
use crate::meta::certificate::{Certificate, Status};
use crate::meta::state::{Action, IterationRecord, Termination};
use crate::numerics::rng::Rng;
use crate::numerics::sparse::{
    balanced_ranges, run_ranges, solve_side, sparse_small_gram, worker_count, SparseOperator, SparseRatings, Start,
};
use crate::numerics::spectral::{lanczos_operator, sigma_max_upper_to, Triplet};

/// The unregularized part of the model, added to `U V^T`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Biases {
    /// `y_ij ~ u_i^T v_j`.
    #[default]
    None,
    /// `y_ij ~ o + u_i^T v_j`.
    Global,
    /// `y_ij ~ b_i + c_j + u_i^T v_j` (a global offset is part of either bias).
    Both,
}

impl FromStr for Biases {
    type Err = GonnError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Biases::None),
            "global" => Ok(Biases::Global),
            "both" | "row+col" | "user+item" => Ok(Biases::Both),
            other => Err(GonnError::param("biases", format!("unknown `{other}` (expected none, global or both)"))),
        }
    }
}

impl std::fmt::Display for Biases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Biases::None => "none",
            Biases::Global => "global",
            Biases::Both => "both",
        })
    }
}

/// The settings of a sparse completion fit.
#[derive(Clone, Debug)]
pub struct CompletionParams {
    pub lambda: f64,
    pub biases: Biases,
    /// Relative gap that counts as certified.
    pub tol: f64,
    pub max_outer: usize,
    pub max_seconds: f64,
    /// Worker threads (0: all cores).
    pub threads: usize,
    pub seed: u64,
    /// Random rank of the start when there is no warm start (0: start from `U V^T = 0`).
    pub init_rank: usize,
    /// Raised (e.g. by Ctrl-C): the run ends with the best point so far.
    pub stop: Option<Arc<AtomicBool>>,
}

impl CompletionParams {
    pub fn new(lambda: f64) -> Self {
        Self {
            lambda,
            biases: Biases::None,
            tol: 1e-6,
            max_outer: 200,
            max_seconds: 3600.0,
            threads: 0,
            seed: 0,
            init_rank: 0,
            stop: None,
        }
    }

    fn validate(&self) -> Result<()> {
        if !(self.lambda > 0.0 && self.lambda.is_finite()) {
            return Err(GonnError::param("lambda", format!("{} (must be positive and finite)", self.lambda)));
        }
        if !(self.tol > 0.0 && self.tol < 1.0) {
            return Err(GonnError::param("tol", format!("{} (must be in (0, 1))", self.tol)));
        }
        if self.max_seconds.is_nan() || self.max_seconds <= 0.0 {
            return Err(GonnError::param("max_seconds", format!("{} (must be positive)", self.max_seconds)));
        }
        Ok(())
    }
}

/// A fitted completion model: `y_ij ~ o + b_i + c_j + u_i^T v_j`, with its certificate and history.
#[derive(Clone, Debug)]
pub struct Completion {
    /// `m x r` and `n x r`; the columns are the singular directions of `Z = U V^T`, scaled by `sqrt(sigma_k)`.
    pub u: Mat<f64>,
    pub v: Mat<f64>,
    pub biases: Biases,
    pub offset: f64,
    pub row_bias: Vec<f64>,
    pub col_bias: Vec<f64>,
    pub certificate: Certificate,
    pub history: Vec<IterationRecord>,
    pub termination: Termination,
    pub outer_iterations: usize,
    pub seconds: f64,
}

impl Completion {
    pub fn rank(&self) -> usize {
        self.u.ncols()
    }
    /// The prediction `o + b_i + c_j + u_i^T v_j`.
    pub fn predict(&self, i: usize, j: usize) -> f64 {
        let z: f64 = (0..self.u.ncols()).map(|k| self.u[(i, k)] * self.v[(j, k)]).sum();
        z + self.offset + self.row_bias.get(i).copied().unwrap_or(0.0) + self.col_bias.get(j).copied().unwrap_or(0.0)
    }
    /// Root mean squared error on the entries of `data` (same indexing).
    pub fn rmse(&self, data: &SparseRatings) -> f64 {
        let ss: f64 = data.triplets().map(|(i, j, y)| (y - self.predict(i, j)).powi(2)).sum();
        (ss / data.nnz() as f64).sqrt()
    }
}

/// The iterate: `Ut` is `r x m` (column `i` is `u_i`), `Vt` is `r x n`, plus biases, residuals and objective.
struct Iterate {
    ut: Mat<f64>,
    vt: Mat<f64>,
    offset: f64,
    row_bias: Vec<f64>,
    col_bias: Vec<f64>,
    /// `y - prediction` on the observed entries (CSR order).
    residual: Vec<f64>,
    loss: f64,
    nuclear: f64,
}

impl Iterate {
    fn objective(&self, lambda: f64) -> f64 {
        self.loss + lambda * self.nuclear
    }
    fn rank(&self) -> usize {
        self.ut.nrows()
    }
}

/// Residuals `y - o - b_i - c_j - u_i^T v_j` and the loss `1/2 sum r^2`, by row blocks.
fn residuals(data: &SparseRatings, it: &mut Iterate, threads: usize) {
    let rc = data.row_counts();
    let t = if data.nnz() < 50_000 { 1 } else { worker_count(threads) };
    let ranges = balanced_ranges(data.nrows(), t, |i| rc[i] + 1);
    let (ut, vt) = (&it.ut, &it.vt);
    let (rb, cb, o) = (&it.row_bias, &it.col_bias, it.offset);
    let r = ut.nrows();
    let parts = run_ranges(&ranges, |rows| {
        let mut out = Vec::new();
        for i in rows {
            let (pos, cols) = data.row(i);
            let ui = ut.col(i);
            for (&y, &j) in data.values()[pos].iter().zip(cols) {
                let j = j as usize;
                let vj = vt.col(j);
                let mut z = 0.0;
                for k in 0..r {
                    z += ui[k] * vj[k];
                }
                out.push(y - o - rb.get(i).copied().unwrap_or(0.0) - cb.get(j).copied().unwrap_or(0.0) - z);
            }
        }
        out
    });
    it.residual = parts.concat();
    it.loss = 0.5 * it.residual.iter().map(|v| v * v).sum::<f64>();
}

/// Rotates `(U, V)` to the singular vectors of `Z = U V^T` (thin QRs and an `r x r` SVD): `U = Q_U A S^{1/2}`,
/// `V = Q_V B S^{1/2}` with `R_U R_V^T = A S B^T`, so `1/2 (||U||^2 + ||V||^2) = sum sigma_k = ||Z||_*` (the
/// minimum over all factorizations of `Z`). Directions with `sigma_k <= 1e-13 sigma_1` are dropped.
fn rebalance(it: &mut Iterate) {
    let r = it.rank();
    if r == 0 {
        it.nuclear = 0.0;
        return;
    }
    let u = it.ut.transpose().to_owned();
    let v = it.vt.transpose().to_owned();
    let (qu, ru) = {
        let qr = u.qr();
        (qr.compute_thin_Q(), qr.thin_R().to_owned())
    };
    let (qv, rv) = {
        let qr = v.qr();
        (qr.compute_thin_Q(), qr.thin_R().to_owned())
    };
    let k = &ru * rv.transpose();
    let Ok(svd) = k.svd() else {
        crate::numerics::linalg::clear_upper_state();
        return;
    };
    let s: Vec<f64> = svd.S().column_vector().iter().copied().collect();
    let smax = s.first().copied().unwrap_or(0.0);
    let keep: Vec<usize> = (0..s.len()).filter(|&c| s[c] > 1e-13 * smax && s[c] > 0.0).collect();
    let a = Mat::from_fn(k.nrows(), keep.len(), |i, c| svd.U()[(i, keep[c])] * s[keep[c]].sqrt());
    let b = Mat::from_fn(k.ncols(), keep.len(), |i, c| svd.V()[(i, keep[c])] * s[keep[c]].sqrt());
    it.ut = (&qu * &a).transpose().to_owned();
    it.vt = (&qv * &b).transpose().to_owned();
    it.nuclear = keep.iter().map(|&c| s[c]).sum();
    crate::numerics::linalg::clear_upper_state();
}

/// One sweep: the offset (exact given the rest), then every row `(u_i, b_i)` and every column `(v_j, c_j)` by
/// its exact block solve, the rotation to singular vectors, and the new residuals.
fn sweep(data: &SparseRatings, it: &mut Iterate, lambda: f64, biases: Biases, threads: usize) {
    if biases == Biases::Global {
        it.offset += it.residual.iter().sum::<f64>() / data.nnz() as f64;
    }
    let both = biases == Biases::Both;
    let vals = data.values();
    let row_line = |i: usize, idx: &mut Vec<usize>, y: &mut Vec<f64>| {
        let (pos, cols) = data.row(i);
        idx.clear();
        idx.extend(cols.iter().map(|&j| j as usize));
        y.clear();
        y.extend_from_slice(&vals[pos]);
    };
    let cb = both.then_some(it.col_bias.as_slice());
    let rc = data.row_counts();
    let start = Start { own: &it.ut, bias: &it.row_bias };
    let (ut, rb) = solve_side(data.nrows(), &row_line, &it.vt, cb, it.offset, both, lambda, threads, &rc, Some(start));
    it.ut = ut;
    if let Some(rb) = rb {
        it.row_bias = rb;
    }
    let col_line = |j: usize, idx: &mut Vec<usize>, y: &mut Vec<f64>| {
        let (rows, pos) = data.col(j);
        idx.clear();
        idx.extend(rows.iter().map(|&i| i as usize));
        y.clear();
        y.extend(pos.iter().map(|&k| vals[k as usize]));
    };
    let rb = both.then_some(it.row_bias.as_slice());
    let cc = data.col_counts();
    let start = Start { own: &it.vt, bias: &it.col_bias };
    let (vt, cbias) =
        solve_side(data.ncols(), &col_line, &it.ut, rb, it.offset, both, lambda, threads, &cc, Some(start));
    it.vt = vt;
    if let Some(cbias) = cbias {
        it.col_bias = cbias;
    }
    rebalance(it);
    residuals(data, it, threads);
}

/// `sum_{observed} (u_i v_j)^2` for one rank-one direction.
fn observed_norm2(data: &SparseRatings, u: &[f64], v: &[f64]) -> f64 {
    data.triplets().map(|(i, j, _)| (u[i] * v[j]).powi(2)).sum()
}

/// Adds the directions `sigma_k > lambda (1 + threshold)` of the polar, each with its optimal step
/// `t = (sigma - lambda) / ||P_Omega(u v^T)||^2` taken alone (THEORY.md section 4, step 3).
fn grow(data: &SparseRatings, it: &mut Iterate, triplets: &[Triplet], lambda: f64, threshold: f64) -> usize {
    let add: Vec<&Triplet> = triplets.iter().filter(|t| t.sigma > lambda * (1.0 + threshold)).collect();
    if add.is_empty() {
        return 0;
    }
    let r = it.rank();
    let (m, n) = (data.nrows(), data.ncols());
    let mut ut = Mat::<f64>::zeros(r + add.len(), m);
    let mut vt = Mat::<f64>::zeros(r + add.len(), n);
    ut.as_mut().subrows_mut(0, r).copy_from(&it.ut);
    vt.as_mut().subrows_mut(0, r).copy_from(&it.vt);
    for (k, t) in add.iter().enumerate() {
        let nn = observed_norm2(data, &t.u, &t.v);
        let step = if nn > 0.0 { ((t.sigma - lambda) / nn).max(0.0) } else { 0.0 };
        let s = step.sqrt();
        for i in 0..m {
            ut[(r + k, i)] = s * t.u[i];
        }
        for j in 0..n {
            vt[(r + k, j)] = s * t.v[j];
        }
    }
    it.ut = ut;
    it.vt = vt;
    add.len()
}

/// The weak-duality bound's bias term: with `e = A^T R` (the residual's sums over the bias's entries), a bound
/// `E >= |<e, beta*>|` at any optimal `beta*` (THEORY.md section 10). Every optimal entry satisfies
/// `|y_ij - [A beta*]_ij - z*_ij| <= sqrt(2 F*)` and `|z*_ij| <= ||Z*||_* <= F* / lambda`, with `F* <= f`, so
/// `|[A beta*]_ij| <= |y_ij| + f / lambda + sqrt(2 f)`; along a breadth-first path from a root whose bias is fixed
/// at 0 (the gauge), `|beta*_v| <= dist(v) * M`. Each `|e_v|` carries its summation rounding `(deg + 1) eps
/// sum |r|`.
fn bias_term(data: &SparseRatings, it: &Iterate, biases: Biases, f: f64, lambda: f64) -> f64 {
    let eps = f64::EPSILON;
    let slack = f / lambda + (2.0 * f).sqrt();
    match biases {
        Biases::None => 0.0,
        Biases::Global => {
            let e: f64 = it.residual.iter().sum();
            let abs: f64 = it.residual.iter().map(|v| v.abs()).sum();
            let ymin = data.values().iter().map(|v| v.abs()).fold(f64::INFINITY, f64::min);
            (e.abs() + (data.nnz() as f64 + 1.0) * eps * abs) * (ymin + slack)
        }
        Biases::Both => {
            let (m, n) = (data.nrows(), data.ncols());
            let ymax = data.values().iter().map(|v| v.abs()).fold(0.0, f64::max);
            let big_m = ymax + slack;
            // Breadth-first distances on the bipartite graph (rows 0..m, columns m..m+n), one root per component.
            let mut dist = vec![usize::MAX; m + n];
            let mut queue = std::collections::VecDeque::new();
            let rc = data.row_counts();
            let mut order: Vec<usize> = (0..m).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(rc[i]));
            for &root in &order {
                if dist[root] != usize::MAX || rc[root] == 0 {
                    continue;
                }
                dist[root] = 0;
                queue.push_back(root);
                while let Some(v) = queue.pop_front() {
                    let next: Vec<usize> = if v < m {
                        data.row(v).1.iter().map(|&j| m + j as usize).collect()
                    } else {
                        data.col(v - m).0.iter().map(|&i| i as usize).collect()
                    };
                    for w in next {
                        if dist[w] == usize::MAX {
                            dist[w] = dist[v] + 1;
                            queue.push_back(w);
                        }
                    }
                }
            }
            let mut total = 0.0;
            for (i, &di) in dist[..m].iter().enumerate() {
                let (pos, _) = data.row(i);
                let rs = &it.residual[pos];
                let e: f64 = rs.iter().sum();
                let abs: f64 = rs.iter().map(|v| v.abs()).sum();
                if di != usize::MAX {
                    total += (e.abs() + (rs.len() as f64 + 1.0) * eps * abs) * di as f64 * big_m;
                }
            }
            for j in 0..n {
                let (_, pos) = data.col(j);
                let e: f64 = pos.iter().map(|&k| it.residual[k as usize]).sum();
                let abs: f64 = pos.iter().map(|&k| it.residual[k as usize].abs()).sum();
                if dist[m + j] != usize::MAX {
                    total += (e.abs() + (pos.len() as f64 + 1.0) * eps * abs) * dist[m + j] as f64 * big_m;
                }
            }
            total
        }
    }
}

/// Exact minimization over the biases alone (the offset, then row and column means of the residual, alternately),
/// `passes` times or until the residual's bias sums stop shrinking: a descent step that makes `A^T R` small before
/// a certificate, so that its bias term is negligible. The residuals are then recomputed from the model, so that
/// the objective the certificate reports is the model's own, not one carried through the updates.
fn polish_biases(data: &SparseRatings, it: &mut Iterate, biases: Biases, passes: usize, threads: usize) {
    let nnz = data.nnz() as f64;
    for _ in 0..passes {
        let mut moved = 0.0f64;
        match biases {
            Biases::None => return,
            Biases::Global => {
                let d = it.residual.iter().sum::<f64>() / nnz;
                it.offset += d;
                it.residual.iter_mut().for_each(|r| *r -= d);
                moved = d.abs();
            }
            Biases::Both => {
                for i in 0..data.nrows() {
                    let (pos, _) = data.row(i);
                    if pos.is_empty() {
                        continue;
                    }
                    let d = it.residual[pos.clone()].iter().sum::<f64>() / pos.len() as f64;
                    it.row_bias[i] += d;
                    it.residual[pos].iter_mut().for_each(|r| *r -= d);
                    moved = moved.max(d.abs());
                }
                for j in 0..data.ncols() {
                    let (_, pos) = data.col(j);
                    if pos.is_empty() {
                        continue;
                    }
                    let d = pos.iter().map(|&k| it.residual[k as usize]).sum::<f64>() / pos.len() as f64;
                    it.col_bias[j] += d;
                    pos.iter().for_each(|&k| it.residual[k as usize] -= d);
                    moved = moved.max(d.abs());
                }
            }
        }
        if moved <= 1e-15 {
            break;
        }
    }
    residuals(data, it, threads);
}

/// The weak-duality bound `t (<R, y> - E) - t^2/2 ||R||^2` at its best `t` in `[0, lambda / sigma]`.
fn dual_bound(data: &SparseRatings, it: &Iterate, biases: Biases, lambda: f64, sigma: f64) -> f64 {
    let f = it.objective(lambda);
    let ry: f64 = it.residual.iter().zip(data.values()).map(|(r, y)| r * y).sum();
    let rr: f64 = it.residual.iter().map(|r| r * r).sum();
    let e = bias_term(data, it, biases, f, lambda);
    let t_max = if sigma > 0.0 { lambda / sigma } else { f64::INFINITY };
    let t = if rr > 0.0 { ((ry - e) / rr).clamp(0.0, t_max) } else { 0.0 };
    t * (ry - e) - 0.5 * t * t * rr
}

/// The certificate of the iterate: `polar = sigma_max(R) / lambda` bracketed by `sigma_lower` and the
/// Cholesky-proven upper bound; then `F* >= t (<R, y> - E) - t^2/2 ||R||^2` for `t` in `[0, lambda /
/// sigma_upper]` (THEORY.md sections 3 and 10). The proof (a `min(m, n)^2` Gram and its Cholesky factorizations)
/// is skipped unless `force`, when even `sigma_upper = sigma_lower` could not certify. Also returns that
/// optimistic relative gap.
fn certificate(
    data: &SparseRatings,
    it: &Iterate,
    params: &CompletionParams,
    sigma_lower: f64,
    force: bool,
    top: Option<&Triplet>,
) -> (Certificate, f64) {
    let lambda = params.lambda;
    let f = it.objective(lambda);
    let mut cert = Certificate::absent(lambda, it.rank(), String::new());
    cert.note = None;
    cert.objective = f;
    cert.loss = it.loss;
    cert.regularizer = it.nuclear;
    cert.tol = params.tol;
    cert.polar_lower = sigma_lower / lambda;
    cert.polar_method = "Lanczos on the sparse residual (no proof attempted)".into();
    cert.status = Status::Heuristic;
    let optimistic = (f - dual_bound(data, it, params.biases, lambda, sigma_lower)) / f.abs().max(f64::MIN_POSITIVE);
    if force || optimistic <= params.tol {
        let op = SparseOperator::new(data, &it.residual, params.threads);
        let gram = sparse_small_gram(&op, params.threads);
        // The bound loses about `(sigma_upper / sigma_lower - 1) f`: a tenth of the tolerance is tight enough.
        let precision = (0.1 * params.tol).clamp(1e-9, 1e-3);
        let upper = sigma_max_upper_to(&gram, data.nrows().max(data.ncols()), sigma_lower, precision).max(sigma_lower);
        drop(gram);
        cert.polar_upper = Some(upper / lambda);
        cert.polar_exact = upper <= sigma_lower * (1.0 + 1e-6);
        cert.polar_method = "exact (sparse Lanczos + Cholesky of the small-side Gram)".into();
        let dual = dual_bound(data, it, params.biases, lambda, upper);
        if dual.is_finite() {
            let gap = (f - dual).max(0.0);
            cert.gap_bound = Some(gap);
            cert.optimum_lower_bound = Some(dual);
            let rel = gap / f.abs().max(f64::MIN_POSITIVE);
            cert.relative_gap = Some(rel);
            cert.status = if rel <= params.tol { Status::Certified } else { Status::Bounded };
        }
    }
    if let Some(t) = top.filter(|t| t.sigma > lambda) {
        // The direction that improves the model: a small step along `u v^T` decreases f (polar > 1).
        cert.improving_subnetwork = Some(vec![t.u.clone(), t.v.clone()]);
    }
    cert.check_lower_bound(f);
    (cert, optimistic)
}

/// The polar's top singular triplets of the residual (Lanczos, warm-started from `start`).
fn polar_triplets(
    data: &SparseRatings,
    it: &Iterate,
    threads: usize,
    tol: f64,
    extra: usize,
    start: Option<&[f64]>,
    rng: &mut Rng,
) -> Vec<Triplet> {
    let op = SparseOperator::new(data, &it.residual, threads);
    lanczos_operator(&op, 120, tol, start, extra, rng, faer::Par::Seq)
}

/// `lambda_max = sigma_max(R_0)`, with `R_0` the residual of the best biases alone (so `Z = 0` is optimal for
/// every `lambda >= lambda_max`): `(Lanczos lower bound, Cholesky-proven upper bound)`.
pub fn completion_lambda_max(data: &SparseRatings, biases: Biases, threads: usize) -> (f64, f64) {
    let mut it = start_iterate(data, &CompletionParams { biases, threads, ..CompletionParams::new(1.0) });
    fit_biases(data, &mut it, biases, threads);
    let mut rng = Rng::new(0);
    let t = polar_triplets(data, &it, threads, 1e-10, 0, None, &mut rng).swap_remove(0);
    let op = SparseOperator::new(data, &it.residual, threads);
    let gram = sparse_small_gram(&op, threads);
    let up = sigma_max_upper_to(&gram, data.nrows().max(data.ncols()), t.sigma, 1e-7).max(t.sigma);
    (t.sigma, up)
}

/// The best biases for `Z = 0`: the offset is the mean; row and column biases by alternating exact means
/// (Gauss-Seidel on the bias least squares) until they stop moving.
fn fit_biases(data: &SparseRatings, it: &mut Iterate, biases: Biases, threads: usize) {
    residuals(data, it, threads);
    polish_biases(data, it, biases, 2000, threads);
}

fn start_iterate(data: &SparseRatings, params: &CompletionParams) -> Iterate {
    let (m, n) = (data.nrows(), data.ncols());
    let both = params.biases == Biases::Both;
    let mut it = Iterate {
        ut: Mat::zeros(0, m),
        vt: Mat::zeros(0, n),
        offset: 0.0,
        row_bias: if both { vec![0.0; m] } else { vec![] },
        col_bias: if both { vec![0.0; n] } else { vec![] },
        residual: vec![],
        loss: f64::INFINITY,
        nuclear: 0.0,
    };
    residuals(data, &mut it, params.threads);
    it
}

/// Fits the completion model to `data` from `warm` (a previous fit on the same matrix) or from zero / a random
/// start, until the relative gap bound is at most `tol`, or a limit. `observer` sees every outer iteration and may
/// stop the run.
pub fn fit_completion(
    data: &SparseRatings,
    params: &CompletionParams,
    warm: Option<&Completion>,
    observer: &mut dyn FnMut(&IterationRecord) -> ControlFlow<()>,
) -> Result<Completion> {
    params.validate()?;
    let start = Instant::now();
    let deadline = start + std::time::Duration::from_secs_f64(params.max_seconds.min(1e9));
    let stopped = || params.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
    let expired = || Instant::now() >= deadline || stopped();
    let lambda = params.lambda;
    // Sweeps per outer iteration: the alternating solves converge linearly, and a polar check (a warm-started
    // Lanczos, about one sweep's cost) every few sweeps steers better than running them to a tiny decrease
    // (measured on the MovieLens-1M-shaped benchmark: 1 sweep 11-94 s, 10-20 sweeps 5.5-14 s, 40 sweeps 10-16 s).
    // While the polar is far above 1 the rank is still growing, and sweeps at a rank about to change are spent for
    // little: 3 then; 15 once the run is near optimal.
    let mut max_sweeps = 3usize;
    let mut rng = Rng::new(params.seed);
    let mut it = start_iterate(data, params);
    match warm {
        Some(w) => {
            if (w.u.nrows(), w.v.nrows()) != (data.nrows(), data.ncols()) {
                return Err(GonnError::Shape(format!(
                    "the warm start is {} x {} but the data is {} x {}",
                    w.u.nrows(),
                    w.v.nrows(),
                    data.nrows(),
                    data.ncols()
                )));
            }
            it.ut = w.u.transpose().to_owned();
            it.vt = w.v.transpose().to_owned();
            if w.biases == params.biases {
                it.offset = w.offset;
                it.row_bias.clone_from(&w.row_bias);
                it.col_bias.clone_from(&w.col_bias);
            }
        }
        None if params.init_rank > 0 => {
            let s = 1e-2 / (params.init_rank as f64).sqrt();
            it.ut = Mat::from_fn(params.init_rank, data.nrows(), |_, _| s * rng.normal());
            it.vt = Mat::from_fn(params.init_rank, data.ncols(), |_, _| s * rng.normal());
        }
        None => {}
    }
    if params.biases != Biases::None && it.rank() == 0 && warm.is_none() {
        fit_biases(data, &mut it, params.biases, params.threads);
    }
    rebalance(&mut it);
    residuals(data, &mut it, params.threads);
    let mut history = Vec::new();
    let (mut dtol, mut threshold) = (1e-4f64, 0.1f64);
    let mut stalls = 0usize;
    let mut best_gap = f64::INFINITY;
    let mut start_vec: Option<Vec<f64>> = None;
    let mut outer = 0;
    let mut cert;
    loop {
        outer += 1;
        let termination;
        // Local descent at this rank.
        let mut sweeps = 0;
        let mut f = it.objective(lambda);
        if it.rank() > 0 || params.biases != Biases::None {
            while sweeps < max_sweeps && !expired() {
                sweeps += 1;
                sweep(data, &mut it, lambda, params.biases, params.threads);
                let f_new = it.objective(lambda);
                let done = f - f_new <= dtol * f_new.abs();
                f = f_new;
                if done {
                    break;
                }
            }
        }
        let at_limit = outer >= params.max_outer || expired();
        let ts = polar_triplets(data, &it, params.threads, 1e-5, 8, start_vec.as_deref(), &mut rng);
        start_vec = Some(ts[0].v.clone());
        let rho = ts[0].sigma / lambda;
        let near = rho <= 1.0 + threshold;
        if rho <= 1.01 {
            max_sweeps = 15;
        }
        let action;
        let mut to_add: Vec<Triplet> = Vec::new();
        if near || at_limit {
            polish_biases(data, &mut it, params.biases, 50, params.threads);
            // A tight lower bound lets the first Cholesky trial of the proof succeed.
            let tight = polar_triplets(data, &it, params.threads, 1e-11, 0, start_vec.as_deref(), &mut rng);
            let optimistic;
            (cert, optimistic) = certificate(data, &it, params, tight[0].sigma, at_limit, tight.first());
            let gap = cert.relative_gap.unwrap_or(optimistic);
            stalls = if gap < 0.99 * best_gap { 0 } else { stalls + 1 };
            best_gap = best_gap.min(gap);
            if cert.status == Status::Certified {
                termination = Some(Termination::Certified);
                action = Action::Stop;
            } else if at_limit {
                termination = Some(if stopped() {
                    Termination::Interrupted
                } else if outer >= params.max_outer {
                    Termination::MaxOuter
                } else {
                    Termination::MaxTime
                });
                action = Action::Stop;
            } else if dtol <= 1e-16 && threshold <= 0.5 * params.tol && stalls >= 3 {
                termination = Some(Termination::NoBetterSubnetwork);
                action = Action::Stop;
            } else {
                termination = None;
                dtol = (dtol * 1e-2).min((0.1 * params.tol).powi(2)).max(1e-16);
                threshold = (threshold * 0.1).max(0.5 * params.tol);
                // The tight top direction, then the other Ritz directions of the first Lanczos run.
                to_add = tight.into_iter().chain(ts.into_iter().skip(1)).collect();
                to_add.retain(|t| t.sigma > lambda * (1.0 + threshold));
                action = if to_add.is_empty() { Action::Refine } else { Action::Grow };
            }
        } else {
            (cert, _) = certificate(data, &it, params, ts[0].sigma, false, ts.first());
            termination = None;
            to_add = ts;
            action = Action::Grow;
        }
        let record = IterationRecord {
            outer,
            subnetworks: cert.subnetworks,
            objective: cert.objective,
            polar_lower: cert.polar_lower,
            polar_upper: cert.polar_upper,
            gap_bound: cert.gap_bound,
            descent_sweeps: sweeps,
            seconds: start.elapsed().as_secs_f64(),
            action,
        };
        history.push(record.clone());
        let flow = observer(&record);
        if let Some(t) = termination {
            return Ok(finish(it, cert, history, t, outer, start, params.biases));
        }
        if flow.is_break() {
            // Stopped before the growth step: the certificate describes the returned iterate.
            return Ok(finish(it, cert, history, Termination::Interrupted, outer, start, params.biases));
        }
        grow(data, &mut it, &to_add, lambda, threshold);
        // The new directions enter the nuclear norm (and the next descent's starting objective) exactly.
        rebalance(&mut it);
        residuals(data, &mut it, params.threads);
    }
}

fn finish(
    it: Iterate,
    certificate: Certificate,
    history: Vec<IterationRecord>,
    termination: Termination,
    outer: usize,
    start: Instant,
    biases: Biases,
) -> Completion {
    Completion {
        u: it.ut.transpose().to_owned(),
        v: it.vt.transpose().to_owned(),
        biases,
        offset: it.offset,
        row_bias: it.row_bias,
        col_bias: it.col_bias,
        certificate,
        history,
        termination,
        outer_iterations: outer,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// Splits the observed entries into a training and a held-out set: each entry is held out with probability
/// `fraction` (seeded); rows and columns keep their indices.
pub fn hold_out_entries(data: &SparseRatings, fraction: f64, seed: u64) -> Result<(SparseRatings, SparseRatings)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(GonnError::param("validation_fraction", format!("{fraction} (must be in (0, 1))")));
    }
    let mut rng = Rng::new(seed ^ 0x005e_ed0f_7e57);
    type Triplets = Vec<(u32, u32, f64)>;
    let (mut a, mut b): (Triplets, Triplets) = (vec![], vec![]);
    for (i, j, y) in data.triplets() {
        if rng.uniform() < fraction {
            b.push((i as u32, j as u32, y));
        } else {
            a.push((i as u32, j as u32, y));
        }
    }
    if a.is_empty() || b.is_empty() {
        return Err(GonnError::param(
            "validation_fraction",
            format!("{fraction} leaves {} training and {} held-out entries", a.len(), b.len()),
        ));
    }
    let build = |t: &[(u32, u32, f64)]| {
        let rows: Vec<u32> = t.iter().map(|e| e.0).collect();
        let cols: Vec<u32> = t.iter().map(|e| e.1).collect();
        let vals: Vec<f64> = t.iter().map(|e| e.2).collect();
        SparseRatings::from_triplets(data.nrows(), data.ncols(), &rows, &cols, &vals)
    };
    Ok((build(&a)?, build(&b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fully observed, the optimum is singular-value soft-thresholding of `Y` (closed form): the fit at `lambda`
    /// is certified, within 1e-6 of it, with its proven bound below it and rank the number of `sigma_k > lambda`.
    fn check_thresholding(y: &Mat<f64>, lambda: f64) -> Completion {
        let (m, n) = (y.nrows(), y.ncols());
        let (mut rows, mut cols, mut vals) = (vec![], vec![], vec![]);
        for i in 0..m {
            for j in 0..n {
                rows.push(i as u32);
                cols.push(j as u32);
                vals.push(y[(i, j)]);
            }
        }
        let data = SparseRatings::from_triplets(m, n, &rows, &cols, &vals).unwrap();
        let s: Vec<f64> = y.singular_values().unwrap();
        let exact: f64 =
            s.iter().map(|&x| if x > lambda { lambda * x - 0.5 * lambda * lambda } else { 0.5 * x * x }).sum();
        let fit =
            fit_completion(&data, &CompletionParams::new(lambda), None, &mut |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(fit.certificate.status, Status::Certified);
        let f = fit.certificate.objective;
        assert!((f - exact).abs() <= 1e-6 * exact, "{f} vs {exact}");
        assert!(fit.certificate.optimum_lower_bound.unwrap() <= exact * (1.0 + 1e-12));
        assert_eq!(fit.rank(), s.iter().filter(|&&x| x > lambda).count());
        fit
    }

    #[test]
    fn fully_observed_matches_singular_value_thresholding() {
        let mut rng = Rng::new(3);
        let (m, n) = (25, 18);
        let a = rng.normal_mat(m, 3);
        let b = rng.normal_mat(n, 3);
        let y =
            Mat::from_fn(m, n, |i, j| (0..3).map(|k| 2.0 * a[(i, k)] * b[(j, k)]).sum::<f64>() + 0.1 * rng.normal());
        let s: Vec<f64> = y.singular_values().unwrap();
        check_thresholding(&y, 0.5 * s[2]);
    }

    /// The same closed form at a rank where the line solves run conjugate gradients (more than
    /// `CG_MIN_UNKNOWNS` unknowns per line).
    #[test]
    fn high_rank_matches_singular_value_thresholding() {
        let y = Rng::new(5).normal_mat(150, 110);
        let s: Vec<f64> = y.singular_values().unwrap();
        let fit = check_thresholding(&y, s[80]);
        assert!(fit.rank() > crate::numerics::sparse::CG_MIN_UNKNOWNS, "rank {}", fit.rank());
    }
}
