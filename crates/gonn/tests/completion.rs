//! Sparse matrix completion (`gonn::meta::completion`) against independent references: the dense masked
//! factorization path, a dense accelerated proximal-gradient solver of the convex problem with its biases, and
//! the certificate's validity at points that are not optimal.

use std::ops::ControlFlow;

use faer::Mat;
use gonn::io::ratings::CompletionFile;
use gonn::meta::completion::{fit_completion, hold_out_entries, Biases, Completion, CompletionParams};
use gonn::numerics::sparse::SparseRatings;
use gonn::prelude::*;

/// A low-rank matrix plus noise with a random observation pattern (each row and column observed at least once).
fn problem(m: usize, n: usize, p: f64, seed: u64) -> (Mat<f64>, Mat<f64>, SparseRatings) {
    let mut rng = Rng::new(seed);
    let a = rng.normal_mat(m, 2);
    let b = rng.normal_mat(n, 2);
    let y = Mat::from_fn(m, n, |i, j| 3.0 + 0.3 * (i % 3) as f64 + (a[(i, 0)] * b[(j, 0)] + a[(i, 1)] * b[(j, 1)]));
    let mut mask = Mat::from_fn(m, n, |_, _| if rng.uniform() < p { 1.0 } else { 0.0 });
    for i in 0..m {
        mask[(i, i % n)] = 1.0;
    }
    for j in 0..n {
        mask[(j % m, j)] = 1.0;
    }
    let y = Mat::from_fn(m, n, |i, j| y[(i, j)] + 0.1 * rng.normal());
    let (mut rows, mut cols, mut vals) = (vec![], vec![], vec![]);
    for i in 0..m {
        for j in 0..n {
            if mask[(i, j)] != 0.0 {
                rows.push(i as u32);
                cols.push(j as u32);
                vals.push(y[(i, j)]);
            }
        }
    }
    let s = SparseRatings::from_triplets(m, n, &rows, &cols, &vals).unwrap();
    (y, mask, s)
}

fn fit(data: &SparseRatings, lambda: f64, biases: Biases, threads: usize) -> Completion {
    let mut p = CompletionParams::new(lambda);
    p.biases = biases;
    p.threads = threads;
    fit_completion(data, &p, None, &mut |_| ControlFlow::Continue(())).unwrap()
}

/// The convex problem `min 1/2 ||P(Y - Z - A beta)||^2 + lambda ||Z||_*` solved densely by FISTA on `(Z, beta)`
/// (singular-value soft-thresholding on `Z`, a plain step on the unregularized biases), to high accuracy.
fn dense_reference(y: &Mat<f64>, mask: &Mat<f64>, lambda: f64, biases: Biases) -> f64 {
    let (m, n) = (y.nrows(), y.ncols());
    let nb = match biases {
        Biases::None => 0,
        Biases::Global => 1,
        Biases::Both => m + n,
    };
    let bias_at = |beta: &[f64], i: usize, j: usize| match biases {
        Biases::None => 0.0,
        Biases::Global => beta[0],
        Biases::Both => beta[i] + beta[m + j],
    };
    // Lipschitz constant of the joint gradient: ||[I, A]||^2 <= 1 + max row sum of |A^T A| (Gershgorin).
    let obs = |i: usize, j: usize| mask[(i, j)] != 0.0;
    let row_deg: Vec<f64> = (0..m).map(|i| (0..n).filter(|&j| obs(i, j)).count() as f64).collect();
    let col_deg: Vec<f64> = (0..n).map(|j| (0..m).filter(|&i| obs(i, j)).count() as f64).collect();
    let lips = 1.0
        + match biases {
            Biases::None => 0.0,
            Biases::Global => mask.col_iter().map(|c| c.iter().sum::<f64>()).sum::<f64>(),
            Biases::Both => 2.0 * row_deg.iter().chain(&col_deg).fold(0.0f64, |a, &b| a.max(b)),
        };
    let step = 1.0 / lips;
    let objective = |z: &Mat<f64>, beta: &[f64]| {
        let mut loss = 0.0;
        for i in 0..m {
            for j in 0..n {
                if obs(i, j) {
                    loss += 0.5 * (y[(i, j)] - z[(i, j)] - bias_at(beta, i, j)).powi(2);
                }
            }
        }
        loss + lambda * z.singular_values().unwrap().iter().sum::<f64>()
    };
    let (mut z, mut beta) = (Mat::<f64>::zeros(m, n), vec![0.0; nb]);
    let (mut zp, mut bp) = (z.clone(), beta.clone());
    let mut t = 1.0f64;
    for _ in 0..40_000 {
        let t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
        let w = (t - 1.0) / t_next;
        let zx = Mat::from_fn(m, n, |i, j| z[(i, j)] + w * (z[(i, j)] - zp[(i, j)]));
        let bx: Vec<f64> = beta.iter().zip(&bp).map(|(a, b)| a + w * (a - b)).collect();
        // Gradient of the loss at the extrapolated point: G = -P(Y - Z - A beta).
        let g = Mat::from_fn(m, n, |i, j| if obs(i, j) { zx[(i, j)] + bias_at(&bx, i, j) - y[(i, j)] } else { 0.0 });
        let mut gb = vec![0.0; nb];
        for i in 0..m {
            for j in 0..n {
                match biases {
                    Biases::None => {}
                    Biases::Global => gb[0] += g[(i, j)],
                    Biases::Both => {
                        gb[i] += g[(i, j)];
                        gb[m + j] += g[(i, j)];
                    }
                }
            }
        }
        let target = Mat::from_fn(m, n, |i, j| zx[(i, j)] - step * g[(i, j)]);
        let svd = target.thin_svd().unwrap();
        let s: Vec<f64> = svd.S().column_vector().iter().map(|v| (v - step * lambda).max(0.0)).collect();
        let k = s.len();
        let z_new = Mat::from_fn(m, n, |i, j| (0..k).map(|c| svd.U()[(i, c)] * s[c] * svd.V()[(j, c)]).sum());
        zp = std::mem::replace(&mut z, z_new);
        bp = std::mem::replace(&mut beta, bx.iter().zip(&gb).map(|(b, g)| b - step * g).collect());
        t = t_next;
    }
    objective(&z, &beta)
}

/// Without biases, the sparse path reaches the dense masked factorization's certified optimum, and each run's
/// proven lower bound is below the other's objective.
#[test]
fn sparse_path_matches_the_dense_masked_factorization() {
    let (y, mask, data) = problem(30, 22, 0.35, 7);
    let lambda = 1.5;
    let sparse = fit(&data, lambda, Biases::None, 1);
    assert_eq!(sparse.certificate.status, Status::Certified, "{}", sparse.certificate.summary());
    let obs = Observations::new(y, Some(mask)).unwrap();
    let net = MatrixFactorization::new(30, 22, [LayerNorm::new(Norm::L2, false); 2]);
    let dense = FitParams::new(lambda).threads(1).validate().unwrap().fit(&net, &obs).unwrap();
    assert_eq!(dense.certificate.status, Status::Certified);
    let (fs, fd) = (sparse.certificate.objective, dense.certificate.objective);
    assert!((fs - fd).abs() <= 2e-6 * fd, "sparse {fs} vs dense {fd}");
    assert!(sparse.certificate.optimum_lower_bound.unwrap() <= fd * (1.0 + 1e-12));
    assert!(dense.certificate.optimum_lower_bound.unwrap() <= fs * (1.0 + 1e-12));
    // The fitted predictions are the dense model's U V^T on the observed entries.
    let z = gonn::numerics::linalg::mul_nt(
        dense.weights.layers[0].as_ref(),
        dense.weights.layers[1].as_ref(),
        faer::Par::Seq,
    );
    let worst = data.triplets().map(|(i, j, _)| (sparse.predict(i, j) - z[(i, j)]).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-2, "largest prediction difference {worst}");
}

/// With a global offset or row and column biases, the certified objective equals the dense proximal-gradient
/// optimum of the convex problem, and the proven lower bound is below it.
#[test]
fn biases_match_a_dense_proximal_gradient_reference() {
    let (y, mask, data) = problem(14, 10, 0.5, 11);
    for biases in [Biases::Global, Biases::Both] {
        let lambda = 0.8;
        let fitc = fit(&data, lambda, biases, 1);
        let c = &fitc.certificate;
        assert_eq!(c.status, Status::Certified, "{biases}: {}", c.summary());
        let reference = dense_reference(&y, &mask, lambda, biases);
        let f = c.objective;
        assert!((f - reference).abs() <= 1e-6 * reference, "{biases}: gonn {f} vs reference {reference}");
        assert!(c.optimum_lower_bound.unwrap() <= reference * (1.0 + 1e-9), "{biases}");
        // The biases are not regularized: with them, the objective is below the no-bias optimum.
        let plain = fit(&data, lambda, Biases::None, 1).certificate.objective;
        assert!(f < plain, "{biases}: {f} >= {plain}");
    }
}

/// The gap bound is a proof at any point: runs stopped after one or two outer iterations report a lower bound
/// below the certified optimum.
#[test]
fn gap_bound_is_valid_before_convergence() {
    let (_, _, data) = problem(25, 18, 0.4, 3);
    for biases in [Biases::None, Biases::Global, Biases::Both] {
        let optimum = fit(&data, 0.7, biases, 1).certificate.objective;
        for max_outer in [1, 2, 3] {
            let mut p = CompletionParams::new(0.7);
            p.biases = biases;
            p.max_outer = max_outer;
            let early = fit_completion(&data, &p, None, &mut |_| ControlFlow::Continue(())).unwrap();
            let c = &early.certificate;
            assert!(c.objective >= optimum * (1.0 - 1e-9));
            let lb = c.optimum_lower_bound.expect("the last iteration is proven");
            assert!(lb <= optimum * (1.0 + 1e-9), "{biases} max_outer {max_outer}: bound {lb} > optimum {optimum}");
            assert!(c.gap_bound.unwrap() >= c.objective - optimum - 1e-9 * optimum);
        }
    }
}

/// Same data, any thread count: the same fit, to the last bit (work is split by rows and columns, never by
/// reductions whose order depends on the threads).
#[test]
fn thread_count_does_not_change_the_result() {
    let (_, _, data) = problem(300, 200, 0.9, 5);
    let a = fit(&data, 8.0, Biases::Both, 1);
    let b = fit(&data, 8.0, Biases::Both, 3);
    assert_eq!(a.certificate.objective.to_bits(), b.certificate.objective.to_bits());
    assert_eq!(a.rank(), b.rank());
}

/// At a rank where the line solves run conjugate gradients (`CG_MIN_UNKNOWNS` unknowns or more), with biases and
/// missing entries: certified by the dual bound (which does not depend on how the lines were solved), with the
/// proven lower bound below the objective, and the same fit to the bit for any thread count.
#[test]
fn high_rank_with_biases_is_certified_and_thread_invariant() {
    let (m, n, rank) = (240, 180, 66);
    let mut rng = Rng::new(9);
    let a = rng.normal_mat(m, rank);
    let b = rng.normal_mat(n, rank);
    let (mut rows, mut cols, mut vals) = (vec![], vec![], vec![]);
    for i in 0..m {
        for j in 0..n {
            if rng.uniform() < 0.8 {
                let z: f64 = (0..rank).map(|k| a[(i, k)] * b[(j, k)]).sum();
                rows.push(i as u32);
                cols.push(j as u32);
                vals.push(3.0 + 0.01 * i as f64 - 0.02 * j as f64 + z + 0.1 * rng.normal());
            }
        }
    }
    let data = SparseRatings::from_triplets(m, n, &rows, &cols, &vals).unwrap();
    let first = fit(&data, 5.0, Biases::Both, 1);
    assert!(first.rank() >= gonn::numerics::sparse::CG_MIN_UNKNOWNS, "rank {}", first.rank());
    let c = &first.certificate;
    assert_eq!(c.status, Status::Certified, "{}", c.summary());
    assert!(c.optimum_lower_bound.unwrap() <= c.objective);
    let again = fit(&data, 5.0, Biases::Both, 3);
    assert_eq!(first.certificate.objective.to_bits(), again.certificate.objective.to_bits());
    assert_eq!(first.rank(), again.rank());
}

/// Held-out entries are a partition of the data; the RMSE is the one computed by hand; a saved model predicts
/// the same values after loading.
#[test]
fn hold_out_rmse_and_model_files() {
    let (_, _, data) = problem(40, 30, 0.5, 9);
    let (train, val) = hold_out_entries(&data, 0.2, 4).unwrap();
    assert_eq!(train.nnz() + val.nnz(), data.nnz());
    let mut all: Vec<_> = train.triplets().chain(val.triplets()).collect();
    all.sort_by_key(|a| (a.0, a.1));
    assert_eq!(all, data.triplets().collect::<Vec<_>>());
    let model = fit(&train, 1.0, Biases::Both, 1);
    let by_hand =
        (val.triplets().map(|(i, j, y)| (y - model.predict(i, j)).powi(2)).sum::<f64>() / val.nnz() as f64).sqrt();
    assert!((model.rmse(&val) - by_hand).abs() < 1e-12);
    let dir = std::env::temp_dir().join(format!("gonn-completion-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    let ids: Vec<String> = (0..40).map(|i| format!("u{i}")).collect();
    let file = CompletionFile { model: model.clone(), row_ids: Some(ids), col_ids: None, lambda: 1.0 };
    file.save(&path, Default::default()).unwrap();
    let back = CompletionFile::load(&path).unwrap();
    for (i, j, _) in val.triplets() {
        assert_eq!(back.model.predict(i, j).to_bits(), model.predict(i, j).to_bits());
    }
    assert_eq!(back.row_index()["u7"], 7);
    assert_eq!(back.model.certificate.objective, model.certificate.objective);
}
