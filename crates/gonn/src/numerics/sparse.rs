//! Sparse kernels for matrix completion on the observed entries only (THEORY.md section 10): the ratings as a compressed
//! sparse matrix with both row and column access, the residual as a Lanczos [`Operator`], its small-side Gram
//! matrix for the Cholesky-proven `sigma_max`, and the exact alternating block solves of
//! `1/2 sum_{(i,j) observed} (y_ij - o - b_i - c_j - u_i^T v_j)^2 + lambda/2 (||U||_F^2 + ||V||_F^2)`.
//!
//! Memory is `O(nnz + (m + n) r)`: nothing of size `m x n` is ever formed (the Gram is `min(m, n)^2`, and only
//! for the proof).

use std::ops::Range;

use faer::linalg::matmul::triangular::{matmul, BlockStructure};
use faer::{Accum, Mat, MatMut, Par};

use crate::error::{GonnError, Result};
use crate::numerics::spectral::Operator;

/// Observed entries of an `m x n` matrix, stored by rows (CSR) with a column view (CSC) into the same entries.
#[derive(Clone, Debug)]
pub struct SparseRatings {
    m: usize,
    n: usize,
    row_ptr: Vec<usize>,
    col_idx: Vec<u32>,
    values: Vec<f64>,
    col_ptr: Vec<usize>,
    /// For column `j`'s entries (rows increasing): their row and their position in the CSR arrays.
    csc_row: Vec<u32>,
    csc_pos: Vec<u32>,
}

impl SparseRatings {
    /// Builds the matrix from `(row, column, value)` triplets in any order. Indices must be in range, values
    /// finite, and no entry may appear twice.
    pub fn from_triplets(m: usize, n: usize, rows: &[u32], cols: &[u32], values: &[f64]) -> Result<Self> {
        let nnz = values.len();
        if rows.len() != nnz || cols.len() != nnz {
            return Err(GonnError::Shape(format!(
                "{} rows, {} columns and {nnz} values: the triplet arrays must have the same length",
                rows.len(),
                cols.len()
            )));
        }
        if nnz == 0 {
            return Err(GonnError::Data("no observed entries".into()));
        }
        if m == 0 || n == 0 || m > u32::MAX as usize || n > u32::MAX as usize || nnz >= u32::MAX as usize {
            return Err(GonnError::Shape(format!(
                "a {m} x {n} matrix with {nnz} entries is outside the supported sizes"
            )));
        }
        let mut row_ptr = vec![0usize; m + 1];
        for (k, (&i, &j)) in rows.iter().zip(cols).enumerate() {
            if i as usize >= m || j as usize >= n {
                return Err(GonnError::Shape(format!("entry {k} is at ({i}, {j}), outside the {m} x {n} matrix")));
            }
            if !values[k].is_finite() {
                return Err(GonnError::Data(format!("entry {k} at ({i}, {j}) has the non-finite value {}", values[k])));
            }
            row_ptr[i as usize + 1] += 1;
        }
        for i in 0..m {
            row_ptr[i + 1] += row_ptr[i];
        }
        // Counting sort by row, then by column within each row.
        let mut next = row_ptr.clone();
        let mut order = vec![0u32; nnz];
        for (k, &i) in rows.iter().enumerate() {
            order[next[i as usize]] = k as u32;
            next[i as usize] += 1;
        }
        for i in 0..m {
            order[row_ptr[i]..row_ptr[i + 1]].sort_unstable_by_key(|&k| cols[k as usize]);
        }
        let col_idx: Vec<u32> = order.iter().map(|&k| cols[k as usize]).collect();
        let vals: Vec<f64> = order.iter().map(|&k| values[k as usize]).collect();
        drop(order);
        for i in 0..m {
            if let Some(w) = col_idx[row_ptr[i]..row_ptr[i + 1]].windows(2).find(|w| w[0] == w[1]) {
                return Err(GonnError::Data(format!(
                    "entry ({i}, {}) appears more than once; give each (row, column) one value",
                    w[0]
                )));
            }
        }
        let mut col_ptr = vec![0usize; n + 1];
        for &j in &col_idx {
            col_ptr[j as usize + 1] += 1;
        }
        for j in 0..n {
            col_ptr[j + 1] += col_ptr[j];
        }
        let mut next = col_ptr.clone();
        let (mut csc_row, mut csc_pos) = (vec![0u32; nnz], vec![0u32; nnz]);
        for i in 0..m {
            for (k, &j) in col_idx.iter().enumerate().take(row_ptr[i + 1]).skip(row_ptr[i]) {
                let j = j as usize;
                csc_row[next[j]] = i as u32;
                csc_pos[next[j]] = k as u32;
                next[j] += 1;
            }
        }
        Ok(Self { m, n, row_ptr, col_idx, values: vals, col_ptr, csc_row, csc_pos })
    }

    pub fn nrows(&self) -> usize {
        self.m
    }
    pub fn ncols(&self) -> usize {
        self.n
    }
    pub fn nnz(&self) -> usize {
        self.values.len()
    }
    /// Observed values in row-major (CSR) order.
    pub fn values(&self) -> &[f64] {
        &self.values
    }
    /// Row `i`'s entries: their positions in [`SparseRatings::values`] and their columns.
    pub fn row(&self, i: usize) -> (Range<usize>, &[u32]) {
        let r = self.row_ptr[i]..self.row_ptr[i + 1];
        (r.clone(), &self.col_idx[r])
    }
    /// Column `j`'s entries: their rows and their positions in [`SparseRatings::values`].
    pub fn col(&self, j: usize) -> (&[u32], &[u32]) {
        let r = self.col_ptr[j]..self.col_ptr[j + 1];
        (&self.csc_row[r.clone()], &self.csc_pos[r])
    }
    /// `(row, column, value)` triplets in row-major order.
    pub fn triplets(&self) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        (0..self.m).flat_map(move |i| {
            let (r, cols) = self.row(i);
            cols.iter().zip(&self.values[r]).map(move |(&j, &v)| (i, j as usize, v))
        })
    }
    /// The same pattern with other values (in CSR order).
    pub fn with_values(&self, values: Vec<f64>) -> Self {
        assert_eq!(values.len(), self.nnz());
        Self { values, ..self.clone() }
    }
    /// Entries per row.
    pub fn row_counts(&self) -> Vec<usize> {
        (0..self.m).map(|i| self.row_ptr[i + 1] - self.row_ptr[i]).collect()
    }
    /// Entries per column.
    pub fn col_counts(&self) -> Vec<usize> {
        (0..self.n).map(|j| self.col_ptr[j + 1] - self.col_ptr[j]).collect()
    }
}

/// The number of worker threads for `threads` (0: all cores).
pub fn worker_count(threads: usize) -> usize {
    if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    }
}

/// Splits `0..len` into at most `parts` consecutive ranges of about equal total `weight`.
pub fn balanced_ranges(len: usize, parts: usize, weight: impl Fn(usize) -> usize) -> Vec<Range<usize>> {
    let total: usize = (0..len).map(&weight).sum::<usize>().max(1);
    let parts = parts.clamp(1, len.max(1));
    let mut out = Vec::with_capacity(parts);
    let (mut start, mut acc) = (0, 0usize);
    for i in 0..len {
        acc += weight(i);
        if acc * parts >= total * (out.len() + 1) && out.len() + 1 < parts {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    out.push(start..len);
    out
}

/// Runs `f` on each range on its own scoped thread (one range: on this thread) and returns the results in order.
pub fn run_ranges<T: Send>(ranges: &[Range<usize>], f: impl Fn(Range<usize>) -> T + Sync) -> Vec<T> {
    if ranges.len() <= 1 {
        return ranges.iter().map(|r| f(r.clone())).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = ranges.iter().map(|r| s.spawn(|| f(r.clone()))).collect();
        handles.into_iter().map(|h| h.join().expect("a worker thread panicked")).collect()
    })
}

/// A matrix with the sparsity pattern of `ratings` and the values `values` (CSR order), as a Lanczos operator,
/// with its products split over `threads` workers.
pub struct SparseOperator<'a> {
    pub ratings: &'a SparseRatings,
    pub values: &'a [f64],
    /// The values in column-major (CSC) order, so that `Q^T y` streams through memory.
    csc_values: Vec<f64>,
    row_ranges: Vec<Range<usize>>,
    col_ranges: Vec<Range<usize>>,
}

impl<'a> SparseOperator<'a> {
    pub fn new(ratings: &'a SparseRatings, values: &'a [f64], threads: usize) -> Self {
        let t = worker_count(threads);
        // Few entries: one thread (spawning costs more than the product).
        let t = if ratings.nnz() < 50_000 { 1 } else { t };
        let rc = ratings.row_counts();
        let cc = ratings.col_counts();
        let row_ranges = balanced_ranges(ratings.m, t, |i| rc[i] + 1);
        let col_ranges = balanced_ranges(ratings.n, t, |j| cc[j] + 1);
        let csc_values = ratings.csc_pos.iter().map(|&k| values[k as usize]).collect();
        Self { ratings, values, csc_values, row_ranges, col_ranges }
    }
}

impl Operator for SparseOperator<'_> {
    fn nrows(&self) -> usize {
        self.ratings.m
    }
    fn ncols(&self) -> usize {
        self.ratings.n
    }
    fn apply(&self, x: &[f64]) -> Vec<f64> {
        run_ranges(&self.row_ranges, |rows| {
            rows.map(|i| {
                let (r, cols) = self.ratings.row(i);
                self.values[r].iter().zip(cols).map(|(v, &j)| v * x[j as usize]).sum::<f64>()
            })
            .collect::<Vec<f64>>()
        })
        .concat()
    }
    fn apply_t(&self, y: &[f64]) -> Vec<f64> {
        run_ranges(&self.col_ranges, |cols| {
            cols.map(|j| {
                let r = self.ratings.col_ptr[j]..self.ratings.col_ptr[j + 1];
                let rows = &self.ratings.csc_row[r.clone()];
                rows.iter().zip(&self.csc_values[r]).map(|(&i, &v)| v * y[i as usize]).sum::<f64>()
            })
            .collect::<Vec<f64>>()
        })
        .concat()
    }
}

/// The lower triangle of the Gram matrix of the sparse matrix on its smaller side (`Q^T Q` when `n <= m`, else
/// `Q Q^T`), accumulated entry pair by entry pair: `sum_rows (deg^2 / 2)` multiply-adds and `min(m, n)^2` memory.
/// Workers own disjoint column blocks of the result.
pub fn sparse_small_gram(q: &SparseOperator<'_>, threads: usize) -> Mat<f64> {
    let s = q.ratings;
    // Outer "lines" are the larger side; each line's inner indices (increasing) index the Gram.
    let by_rows = s.n <= s.m;
    let (outer, dim) = if by_rows { (s.m, s.n) } else { (s.n, s.m) };
    let line = |o: usize| -> (Vec<usize>, Vec<f64>) {
        if by_rows {
            let (r, cols) = s.row(o);
            (cols.iter().map(|&j| j as usize).collect(), q.values[r].to_vec())
        } else {
            let (rows, pos) = s.col(o);
            (rows.iter().map(|&i| i as usize).collect(), pos.iter().map(|&k| q.values[k as usize]).collect())
        }
    };
    // Work of Gram column c: the entries at or after c in each line that holds c.
    let mut work = vec![0usize; dim];
    for o in 0..outer {
        let (idx, _) = line(o);
        let d = idx.len();
        for (p, &c) in idx.iter().enumerate() {
            work[c] += d - p;
        }
    }
    let t = if s.nnz() < 50_000 { 1 } else { worker_count(threads) };
    let ranges = balanced_ranges(dim, t, |c| work[c] + 1);
    let mut g = Mat::<f64>::zeros(dim, dim);
    let mut blocks: Vec<(Range<usize>, MatMut<'_, f64>)> = Vec::new();
    let mut rest = g.as_mut();
    let mut done = 0;
    for r in &ranges {
        let (block, tail) = rest.split_at_col_mut(r.end - done);
        blocks.push((r.clone(), block));
        rest = tail;
        done = r.end;
    }
    let fill = |cols: Range<usize>, mut block: MatMut<'_, f64>| {
        for o in 0..outer {
            let (idx, val) = line(o);
            let first = idx.partition_point(|&c| c < cols.start);
            for p in first..idx.len() {
                let a = idx[p];
                if a >= cols.end {
                    break;
                }
                let va = val[p];
                let col = block.as_mut().col_mut(a - cols.start).try_as_col_major_mut().expect("contiguous column");
                let col = col.as_slice_mut();
                for (&b, &vb) in idx[p..].iter().zip(&val[p..]) {
                    col[b] += va * vb;
                }
            }
        }
    };
    if blocks.len() <= 1 {
        for (r, b) in blocks {
            fill(r, b);
        }
    } else {
        std::thread::scope(|sc| {
            for (r, b) in blocks {
                let fill = &fill;
                sc.spawn(move || fill(r, b));
            }
        });
    }
    g
}

/// Cholesky solve of the small symmetric positive definite system `A x = b` in place (`a` is `k x k` column-major,
/// lower triangle used; overwritten by the factor). Returns `false` when `A` is not numerically positive definite.
pub fn spd_solve(a: &mut [f64], k: usize, b: &mut [f64]) -> bool {
    for j in 0..k {
        let mut d = a[j * k + j];
        for p in 0..j {
            d -= a[p * k + j] * a[p * k + j];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in j + 1..k {
            let mut s = a[j * k + i];
            for p in 0..j {
                s -= a[p * k + i] * a[p * k + j];
            }
            a[j * k + i] = s / d;
        }
    }
    for i in 0..k {
        let mut s = b[i];
        for p in 0..i {
            s -= a[p * k + i] * b[p];
        }
        b[i] = s / a[i * k + i];
    }
    for i in (0..k).rev() {
        let mut s = b[i];
        for p in i + 1..k {
            s -= a[i * k + p] * b[p];
        }
        b[i] = s / a[i * k + i];
    }
    true
}

/// The entries of one line (a row or a column) of the ratings: written into `idx` (the other side's indices) and
/// `y` (the observed values), both cleared first.
pub type LineFn<'a> = dyn Fn(usize, &mut Vec<usize>, &mut Vec<f64>) + Sync + 'a;

/// From this many unknowns per line (`r`, plus one with a bias) the line solves of [`solve_side`] run conjugate
/// gradients from the current values instead of a Cholesky of their Gram matrix: a line with `d` ratings then costs
/// about `2 d k` per iteration instead of `d k^2 + k^3 / 3`.
pub const CG_MIN_UNKNOWNS: usize = 64;

/// The most conjugate-gradient iterations per line and sweep (each decreases the line's objective; fewer when the
/// residual falls below `1e-10` of the right-hand side first). Alternating sweeps converge linearly whatever the
/// line solver, so cheap inexact lines win: on the MovieLens-1M shape at lambda 25 (rank about 180, `--threads 2`)
/// the fit was certified in 190 s with 12 iterations, 173 s with 6, 147 s with 3 and 139 s with 2.
pub const CG_ITERATIONS: usize = 3;

/// Conjugate gradients on `(B B^T + Lambda) x = B t` from `x`, in place: `bt` is `[B; t^T]` (`k + 1` rows, one
/// column per rating of the line), `Lambda = lambda` on the first `r` unknowns and `0` on the rest (the bias).
/// Every iterate decreases `1/2 x^T A x - x^T B t`, so the line's objective never increases.
fn cg_line(bt: faer::MatRef<'_, f64>, r: usize, lambda: f64, x: &mut [f64]) {
    use faer::linalg::matmul::matmul as gemm;
    let (k, d) = (bt.nrows() - 1, bt.ncols());
    let b = bt.subrows(0, k);
    // A p = B (B^T p) + Lambda p, as two matrix-vector products.
    let mut w = Mat::<f64>::zeros(d, 1);
    let mut apply = |p: &Mat<f64>, out: &mut Mat<f64>| {
        gemm(w.as_mut(), Accum::Replace, b.transpose(), p.as_ref(), 1.0, Par::Seq);
        gemm(out.as_mut(), Accum::Replace, b, w.as_ref(), 1.0, Par::Seq);
        for m in 0..r {
            out[(m, 0)] += lambda * p[(m, 0)];
        }
    };
    let mut rhs = Mat::<f64>::zeros(k, 1);
    gemm(rhs.as_mut(), Accum::Replace, b, bt.subrows(k, 1).transpose(), 1.0, Par::Seq);
    let dot = |a: &Mat<f64>, c: &Mat<f64>| crate::numerics::linalg::dot(a.as_ref(), c.as_ref());
    let stop = 1e-20 * dot(&rhs, &rhs);
    let mut xm = Mat::from_fn(k, 1, |m, _| x[m]);
    let mut ap = Mat::<f64>::zeros(k, 1);
    apply(&xm, &mut ap);
    let mut res = &rhs - &ap;
    let mut p = res.clone();
    let mut rs = dot(&res, &res);
    for _ in 0..CG_ITERATIONS {
        if rs <= stop || !rs.is_finite() {
            break;
        }
        apply(&p, &mut ap);
        let pap = dot(&p, &ap);
        if pap <= 0.0 || !pap.is_finite() {
            break;
        }
        let alpha = rs / pap;
        xm += &p * faer::Scale(alpha);
        res -= &ap * faer::Scale(alpha);
        let rs_new = dot(&res, &res);
        let beta = rs_new / rs;
        p = &res + &p * faer::Scale(beta);
        rs = rs_new;
    }
    for (m, v) in x.iter_mut().enumerate() {
        *v = xm[(m, 0)];
    }
}

/// The current values of one side, from which [`solve_side`] starts its conjugate-gradient line solves.
pub struct Start<'a> {
    /// `r x len`, column `i` is `u_i`.
    pub own: &'a Mat<f64>,
    /// The line biases (empty without them).
    pub bias: &'a [f64],
}

/// One side of the alternating solves: `own` (`r x len`, column `i` is `u_i`) and `own_bias` are replaced by the
/// minimizers of `1/2 sum_j (t_ij - b_i - u_i^T v_j)^2 + lambda/2 ||u_i||^2` for each line `i`, where the
/// targets `t_ij = y_ij - o - c_j` and the features `v_j` (columns of `other`) are fixed. The bias, when present,
/// is unregularized. Each line is one Gram product of its gathered features with the targets appended as a last
/// row, `[B; t^T] [B; t^T]^T`, which holds both `B B^T` and `B t` (one wide product per line), and a Cholesky
/// solve: exact. With a `start` and at least [`CG_MIN_UNKNOWNS`] unknowns per line, conjugate gradients from the
/// start replace it ([`CG_ITERATIONS`] at most): each line's objective still decreases, at `O(d r)` per iteration.
#[allow(clippy::too_many_arguments)]
pub fn solve_side(
    lines: usize,
    line: &LineFn<'_>,
    other: &Mat<f64>,
    other_bias: Option<&[f64]>,
    offset: f64,
    own_bias: bool,
    lambda: f64,
    threads: usize,
    weights: &[usize],
    start: Option<Start<'_>>,
) -> (Mat<f64>, Option<Vec<f64>>) {
    let r = other.nrows();
    let kdim = r + usize::from(own_bias);
    let nnz: usize = weights.iter().sum();
    let t = if nnz < 50_000 { 1 } else { worker_count(threads) };
    let ranges = balanced_ranges(lines, t, |i| weights[i] + 1);
    let cg_start =
        start.as_ref().filter(|st| kdim >= CG_MIN_UNKNOWNS && st.own.ncols() == lines && st.own.nrows() == r);
    let parts = run_ranges(&ranges, |range| {
        let mut out = Mat::<f64>::zeros(r, range.len());
        let mut bias = vec![0.0; range.len()];
        let mut gram = Mat::<f64>::zeros(kdim + 1, kdim + 1);
        let (mut idx, mut y) = (Vec::new(), Vec::new());
        let mut gather = Mat::<f64>::zeros(kdim + 1, 0);
        let mut a = vec![0.0; kdim * kdim];
        let mut rhs = vec![0.0; kdim];
        for (li, i) in range.enumerate() {
            line(i, &mut idx, &mut y);
            let d = idx.len();
            if d == 0 {
                continue;
            }
            if gather.ncols() < d {
                gather = Mat::zeros(kdim + 1, d.next_power_of_two());
            }
            for (e, (&j, &v)) in idx.iter().zip(&y).enumerate() {
                let col = gather.col_mut(e).try_as_col_major_mut().expect("contiguous column").as_slice_mut();
                col[..r].copy_from_slice(other.col(j).try_as_col_major().expect("contiguous column").as_slice());
                if own_bias {
                    col[r] = 1.0;
                }
                col[kdim] = v - offset - other_bias.map_or(0.0, |c| c[j]);
            }
            if let Some(st) = cg_start {
                let mut x: Vec<f64> = (0..kdim)
                    .map(|c| if c < r { st.own[(c, i)] } else { st.bias.get(i).copied().unwrap_or(0.0) })
                    .collect();
                cg_line(gather.as_ref().subcols(0, d), r, lambda, &mut x);
                for c in 0..r {
                    out[(c, li)] = x[c];
                }
                if own_bias {
                    bias[li] = x[r];
                }
                continue;
            }
            let b = gather.as_ref().subcols(0, d);
            matmul(
                gram.as_mut(),
                BlockStructure::TriangularLower,
                Accum::Replace,
                b,
                BlockStructure::Rectangular,
                b.transpose(),
                BlockStructure::Rectangular,
                1.0,
                Par::Seq,
            );
            for c in 0..kdim {
                for rr in c..kdim {
                    a[c * kdim + rr] = gram[(rr, c)] + if rr == c && rr < r { lambda } else { 0.0 };
                }
                rhs[c] = gram[(kdim, c)];
            }
            if spd_solve(&mut a, kdim, &mut rhs) {
                for c in 0..r {
                    out[(c, li)] = rhs[c];
                }
                if own_bias {
                    bias[li] = rhs[r];
                }
            }
        }
        crate::numerics::linalg::clear_upper_state();
        (out, bias)
    });
    let mut own = Mat::<f64>::zeros(r, lines);
    let mut own_b = vec![0.0; lines];
    let mut at = 0;
    for (m, b) in parts {
        own.as_mut().subcols_mut(at, m.ncols()).copy_from(&m);
        own_b[at..at + m.ncols()].copy_from_slice(&b[..m.ncols()]);
        at += m.ncols();
    }
    (own, own_bias.then_some(own_b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::rng::Rng;
    use crate::numerics::spectral::small_gram;

    fn random(m: usize, n: usize, p: f64, rng: &mut Rng) -> (SparseRatings, Mat<f64>) {
        let (mut rows, mut cols, mut vals) = (vec![], vec![], vec![]);
        let mut dense = Mat::<f64>::zeros(m, n);
        for j in 0..n {
            for i in 0..m {
                if rng.uniform() < p {
                    let v = rng.normal();
                    rows.push(i as u32);
                    cols.push(j as u32);
                    vals.push(v);
                    dense[(i, j)] = v;
                }
            }
        }
        (SparseRatings::from_triplets(m, n, &rows, &cols, &vals).unwrap(), dense)
    }

    #[test]
    fn products_and_gram_match_the_dense_matrix() {
        let mut rng = Rng::new(1);
        for &(m, n) in &[(30, 20), (12, 40)] {
            let (s, dense) = random(m, n, 0.3, &mut rng);
            for threads in [1, 3] {
                let mut op = SparseOperator::new(&s, s.values(), threads);
                // Force several workers even on a small matrix.
                op.row_ranges = balanced_ranges(m, threads, |_| 1);
                op.col_ranges = balanced_ranges(n, threads, |_| 1);
                let x: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
                let y: Vec<f64> = (0..m).map(|_| rng.normal()).collect();
                let ax = op.apply(&x);
                let aty = op.apply_t(&y);
                for i in 0..m {
                    let e: f64 = (0..n).map(|j| dense[(i, j)] * x[j]).sum();
                    assert!((ax[i] - e).abs() < 1e-12);
                }
                for j in 0..n {
                    let e: f64 = (0..m).map(|i| dense[(i, j)] * y[i]).sum();
                    assert!((aty[j] - e).abs() < 1e-12);
                }
                let g = sparse_small_gram(&op, threads);
                let gd = small_gram(dense.as_ref(), Par::Seq);
                for c in 0..g.ncols() {
                    for r in c..g.nrows() {
                        assert!((g[(r, c)] - gd[(r, c)]).abs() < 1e-12, "({r}, {c})");
                    }
                }
            }
        }
    }

    /// `1/2 x^T (B B^T + Lambda) x - x^T B t` and the exact minimizer (Cholesky), for `bt = [B; t^T]`.
    fn line_problem(bt: &Mat<f64>, r: usize, lambda: f64) -> (impl Fn(&[f64]) -> f64 + '_, Vec<f64>) {
        let k = bt.nrows() - 1;
        let b = bt.subrows(0, k);
        let mut a = b * b.transpose();
        for m in 0..r {
            a[(m, m)] += lambda;
        }
        let rhs = b * bt.subrows(k, 1).transpose();
        let mut flat: Vec<f64> = (0..k * k).map(|e| a[(e % k, e / k)]).collect();
        let mut x: Vec<f64> = (0..k).map(|m| rhs[(m, 0)]).collect();
        assert!(spd_solve(&mut flat, k, &mut x));
        let f = move |x: &[f64]| {
            let xm = Mat::from_fn(k, 1, |m, _| x[m]);
            let q = xm.transpose() * &a * &xm;
            0.5 * q[(0, 0)] - (0..k).map(|m| x[m] * rhs[(m, 0)]).sum::<f64>()
        };
        (f, x)
    }

    #[test]
    fn cg_line_never_increases_the_objective_and_converges_to_the_exact_solve() {
        let mut rng = Rng::new(7);
        // With an unregularized bias (a row of ones) and without; more unknowns than iterations per call.
        for (k, d, bias) in [(9, 30, true), (60, 80, false), (70, 50, true)] {
            let r = if bias { k - 1 } else { k };
            let bt = Mat::from_fn(k + 1, d, |m, _| if bias && m == k - 1 { 1.0 } else { rng.normal() });
            let (f, exact) = line_problem(&bt, r, 0.3);
            let mut x: Vec<f64> = (0..k).map(|_| rng.normal()).collect();
            let mut prev = f(&x);
            // Restarted every CG_ITERATIONS steps, conjugate gradients converge at least like steepest descent.
            for _ in 0..20_000 {
                cg_line(bt.as_ref(), r, 0.3, &mut x);
                let now = f(&x);
                assert!(now <= prev + 1e-12 * prev.abs(), "{now} > {prev}");
                prev = now;
            }
            for m in 0..k {
                assert!((x[m] - exact[m]).abs() <= 1e-7 * (1.0 + exact[m].abs()), "{m}: {} vs {}", x[m], exact[m]);
            }
        }
    }

    #[test]
    fn rejects_bad_triplets() {
        assert!(SparseRatings::from_triplets(2, 2, &[0, 2], &[0, 0], &[1.0, 2.0]).is_err());
        assert!(SparseRatings::from_triplets(2, 2, &[0, 0], &[1, 1], &[1.0, 2.0]).is_err());
        assert!(SparseRatings::from_triplets(2, 2, &[0], &[1], &[f64::NAN]).is_err());
        assert!(SparseRatings::from_triplets(2, 2, &[], &[], &[]).is_err());
        let s = SparseRatings::from_triplets(2, 3, &[1, 0, 1], &[2, 1, 0], &[3.0, 1.0, 2.0]).unwrap();
        let t: Vec<_> = s.triplets().collect();
        assert_eq!(t, vec![(0, 1, 1.0), (1, 0, 2.0), (1, 2, 3.0)]);
    }

    #[test]
    fn balanced_ranges_cover_everything_once() {
        for len in [0, 1, 7, 100] {
            for parts in [1, 2, 5] {
                let r = balanced_ranges(len, parts, |i| i % 7 + 1);
                assert_eq!(r.first().unwrap().start, 0);
                assert_eq!(r.last().unwrap().end, len);
                assert!(r.windows(2).all(|w| w[0].end == w[1].start));
            }
        }
    }
}
