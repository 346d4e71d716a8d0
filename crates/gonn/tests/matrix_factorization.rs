//! Matrix factorization against closed-form optima (THEORY.md section 8), gap-bound validity, completion,
//! gradients and homogeneity identities.

use faer::{Mat, Par};
use gonn::core::problem::Problem;
use gonn::core::regularizer;
use gonn::meta::certify;
use gonn::prelude::*;

fn noisy_low_rank(m: usize, n: usize, rank: usize, noise: f64, seed: u64) -> Mat<f64> {
    gonn::datasets::low_rank(m, n, rank, noise, 1.0, seed).y
}

fn l(norm: Norm) -> LayerNorm {
    LayerNorm::new(norm, false)
}

/// Optimal value of `min_z 1/2 (y - z)^2 + lam |z|` for a scalar or a group of norm `s`.
fn shrink_value(s: f64, lam: f64) -> f64 {
    if s > lam {
        0.5 * lam * lam + lam * (s - lam)
    } else {
        0.5 * s * s
    }
}

fn fit(net: &dyn Family, y: &Mat<f64>, lambda: f64, init: usize, tol: f64) -> FitResult {
    let obs = Observations::new(y.clone(), None).unwrap();
    FitParams::new(lambda)
        .tol(tol)
        .init_width(init)
        .seed(init as u64)
        .threads(1)
        .validate()
        .unwrap()
        .fit(net, &obs)
        .unwrap()
}

/// `l2, l2` with squared loss is singular-value soft-thresholding: same objective, same rank, certified, from
/// several starting sizes.
#[test]
fn nuclear_norm_equals_singular_value_thresholding() {
    let (m, n) = (40, 30);
    let y = noisy_low_rank(m, n, 4, 0.1, 21);
    let sv = y.singular_values().unwrap();
    // lambda halfway between the 4th and 5th singular values.
    let lambda = 0.5 * (sv[3] + sv[4]);
    let optimum: f64 = sv.iter().map(|&s| shrink_value(s, lambda)).sum();
    let rank = sv.iter().filter(|&&s| s > lambda).count();
    assert_eq!(rank, 4);
    let net = MatrixFactorization::new(m, n, [l(Norm::L2); 2]);
    for init in [0, 1, 4, 12, 45] {
        let model = fit(&net, &y, lambda, init, 1e-9);
        let c = &model.certificate;
        assert_eq!(c.status, Status::Certified, "init {init}: {}", c.summary());
        assert!((c.objective - optimum).abs() <= 1e-8 * optimum, "init {init}: {} vs {optimum}", c.objective);
        assert_eq!(model.weights.width(), rank, "init {init}");
        assert!(c.gap_bound.unwrap() >= c.objective - optimum - 1e-9 * optimum);
    }
}

/// A lambda below several singular values with a cluster near it still certifies.
#[test]
fn nuclear_norm_with_small_lambda() {
    let (m, n) = (25, 20);
    let y = noisy_low_rank(m, n, 3, 0.5, 5);
    let sv = y.singular_values().unwrap();
    let lambda = 0.5 * (sv[6] + sv[7]);
    let optimum: f64 = sv.iter().map(|&s| shrink_value(s, lambda)).sum();
    let net = MatrixFactorization::new(m, n, [l(Norm::L2); 2]);
    let model = fit(&net, &y, lambda, 0, 1e-9);
    assert_eq!(model.certificate.status, Status::Certified);
    assert!((model.certificate.objective - optimum).abs() <= 1e-8 * optimum);
    assert_eq!(model.weights.width(), 7);
}

/// `l1, l1` is entrywise soft-thresholding, `l2, l1` column shrinkage, `l1, l2` row shrinkage. (The `l1` forms
/// have many optimal factorizations and flat directions; descent converges more slowly there, so the tolerance
/// is 1e-6, and the certificate itself guarantees the 1e-6 agreement checked against the closed form.)
#[test]
fn l1_and_group_norms_equal_shrinkage() {
    let (m, n) = (12, 9);
    let y = noisy_low_rank(m, n, 2, 0.3, 8);
    let lam = 0.6;
    let entry: f64 =
        (0..m).flat_map(|i| (0..n).map(move |j| (i, j))).map(|(i, j)| shrink_value(y[(i, j)].abs(), lam)).sum();
    let cols: f64 = (0..n).map(|j| shrink_value(y.col(j).norm_l2(), 2.0 * lam)).sum();
    let rows: f64 = (0..m).map(|i| shrink_value(y.row(i).norm_l2(), 2.0 * lam)).sum();
    let cases = [
        ([Norm::L1, Norm::L1], lam, entry),
        ([Norm::L2, Norm::L1], 2.0 * lam, cols),
        ([Norm::L1, Norm::L2], 2.0 * lam, rows),
    ];
    for (norms, lambda, optimum) in cases {
        let net = MatrixFactorization::new(m, n, [l(norms[0]), l(norms[1])]);
        for init in [0, 3] {
            let model = fit(&net, &y, lambda, init, 1e-6);
            let c = &model.certificate;
            assert_eq!(c.status, Status::Certified, "{norms:?}: {}", c.summary());
            assert!(c.polar_exact);
            assert!(
                (c.objective - optimum).abs() <= 1e-6 * optimum,
                "{norms:?} init {init}: {} vs {optimum}",
                c.objective
            );
        }
    }
}

/// Nonnegative `l1, l1` factors: `Z = (Y - lambda)_+` entrywise.
#[test]
fn nonnegative_l1_equals_one_sided_shrinkage() {
    let (m, n) = (10, 8);
    let y = noisy_low_rank(m, n, 2, 0.3, 4);
    let lam = 0.4;
    let optimum: f64 = (0..m)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| {
            let v = y[(i, j)];
            if v > lam {
                0.5 * lam * lam + lam * (v - lam)
            } else {
                0.5 * v * v
            }
        })
        .sum();
    let net = MatrixFactorization::new(m, n, [LayerNorm::new(Norm::L1, true), LayerNorm::new(Norm::L1, true)]);
    let model = fit(&net, &y, lam, 2, 1e-6);
    assert_eq!(model.certificate.status, Status::Certified);
    assert!((model.certificate.objective - optimum).abs() <= 1e-6 * optimum);
    assert!(model.weights.layers.iter().all(|w| (0..w.ncols()).all(|j| w.col_as_slice(j).iter().all(|v| *v >= 0.0))));
}

/// The gap bound is never below the true gap `f(W) - F*` at perturbed, truncated and random weights.
#[test]
fn gap_bound_is_valid_at_any_weights() {
    let (m, n) = (20, 15);
    let y = noisy_low_rank(m, n, 3, 0.2, 13);
    let sv = y.singular_values().unwrap();
    let lambda = 0.5 * (sv[2] + sv[3]);
    let optimum: f64 = sv.iter().map(|&s| shrink_value(s, lambda)).sum();
    let net = MatrixFactorization::new(m, n, [l(Norm::L2); 2]);
    let obs = Observations::new(y.clone(), None).unwrap();
    let best = fit(&net, &y, lambda, 0, 1e-9).weights;
    let mut rng = Rng::new(99);
    let mut candidates = Vec::new();
    for eps in [1e-6, 1e-3, 1e-1] {
        let mut w = best.clone();
        for layer in w.layers.iter_mut() {
            for j in 0..layer.ncols() {
                layer.col_as_slice_mut(j).iter_mut().for_each(|v| *v += eps * rng.normal());
            }
        }
        candidates.push(w);
    }
    let mut truncated = best.clone();
    truncated.retain(&[true, true, false]);
    candidates.push(truncated);
    candidates.push(Weights { layers: vec![rng.normal_mat(m, 5), rng.normal_mat(n, 5)] });
    candidates.push(Weights::empty(&[m, n]));
    for w in candidates {
        let c = certify(&net, &obs, Loss::Squared, lambda, &w, 1e-6, 1).unwrap();
        let true_gap = c.objective - optimum;
        let bound = c.gap_bound.unwrap();
        assert!(bound >= true_gap - 1e-9 * optimum, "bound {bound} < true gap {true_gap}");
        assert!(true_gap >= -1e-9 * optimum);
    }
}

/// Logistic and softmax: the gap bound at arbitrary weights is at least `f(W) - f(W_fit)` (since `F* <= f(W_fit)`),
/// and the fit itself certifies.
#[test]
fn gap_bound_valid_for_logistic_and_softmax() {
    let (m, n) = (15, 6);
    let base = noisy_low_rank(m, n, 2, 0.5, 17);
    let binary = Mat::from_fn(m, n, |i, j| (base[(i, j)] > 0.0) as u8 as f64);
    let soft = {
        let mut p = Mat::from_fn(m, n, |i, j| (2.0 * base[(i, j)]).exp());
        for i in 0..m {
            let s: f64 = p.row(i).iter().sum();
            for j in 0..n {
                p[(i, j)] /= s;
            }
        }
        p
    };
    let net = MatrixFactorization::new(m, n, [l(Norm::L2); 2]);
    let mut rng = Rng::new(3);
    for (loss, y, lambda) in [(Loss::Logistic, binary, 1.0), (Loss::Softmax, soft, 0.3)] {
        let obs = Observations::new(y, None).unwrap();
        let model = FitParams::new(lambda).loss(loss).tol(1e-7).threads(1).validate().unwrap().fit(&net, &obs).unwrap();
        assert_eq!(model.certificate.status, Status::Certified, "{loss}: {}", model.certificate.summary());
        let fit_obj = model.certificate.objective;
        for scale in [0.1, 1.0, 3.0] {
            let w = Weights { layers: vec![rng.normal_mat(m, 3) * faer::Scale(scale), rng.normal_mat(n, 3)] };
            let c = certify(&net, &obs, loss, lambda, &w, 1e-6, 1).unwrap();
            assert!(
                c.gap_bound.unwrap() >= c.objective - fit_obj - 1e-9,
                "{loss}: {} < {}",
                c.gap_bound.unwrap(),
                c.objective - fit_obj
            );
            assert_ne!(c.status, Status::Certified);
        }
    }
}

/// Matrix completion: the fit ends with a proven polar upper bound within the tolerance of 1.
#[test]
fn matrix_completion_certifies() {
    let data = gonn::datasets::low_rank(60, 50, 3, 0.05, 0.4, 31);
    let obs = Observations::new(data.y.clone(), data.mask.clone()).unwrap();
    let net = MatrixFactorization::new(60, 50, [l(Norm::L2); 2]);
    let tol = 1e-6;
    let model = FitParams::new(2.0).tol(tol).threads(1).validate().unwrap().fit(&net, &obs).unwrap();
    let c = &model.certificate;
    assert_eq!(c.status, Status::Certified, "{}", c.summary());
    assert!(c.polar_upper.unwrap() <= 1.0 + tol);
    // Unobserved entries do not matter: changing them leaves the fit unchanged.
    let mut y2 = data.y.clone();
    let mask = data.mask.as_ref().unwrap();
    for j in 0..50 {
        for i in 0..60 {
            if mask[(i, j)] == 0.0 {
                y2[(i, j)] = 1e6;
            }
        }
    }
    let obs2 = Observations::new(y2, data.mask.clone()).unwrap();
    let model2 = FitParams::new(2.0).tol(tol).threads(1).validate().unwrap().fit(&net, &obs2).unwrap();
    assert!((model2.certificate.objective - c.objective).abs() <= 1e-6 * c.objective);
}

/// Finite differences of `d <G, Phi(W)> / d W^k` and homogeneity identities for factor and CP families.
#[test]
fn layer_gradients_and_homogeneity() {
    let mut rng = Rng::new(12);
    let nets: Vec<Box<dyn Family>> = vec![
        Box::new(MatrixFactorization::new(5, 4, [l(Norm::L2), l(Norm::L1L2 { gamma: 0.5 })])),
        Box::new(CpTensor::new(4, 3, 2)),
    ];
    for net in nets {
        let dims = net.layer_dims();
        let w = Weights { layers: dims.iter().map(|&d| rng.normal_mat(d, 3)).collect() };
        let (om, on) = net.output_shape();
        let g = rng.normal_mat(om, on);
        let f = |w: &Weights| gonn::numerics::linalg::dot(g.as_ref(), net.forward(w, Par::Seq).as_ref());
        let mut euler = 0.0;
        for (k, &dim) in dims.iter().enumerate() {
            let grad = net.layer_gradient(&w, k, g.as_ref(), Par::Seq);
            euler += gonn::numerics::linalg::dot(grad.as_ref(), w.layers[k].as_ref());
            for i in 0..dim {
                for j in 0..3 {
                    let h = 1e-6;
                    let (mut wp, mut wm) = (w.clone(), w.clone());
                    wp.layers[k][(i, j)] += h;
                    wm.layers[k][(i, j)] -= h;
                    let fd = (f(&wp) - f(&wm)) / (2.0 * h);
                    assert!((fd - grad[(i, j)]).abs() < 1e-6, "{} layer {k}: {fd} vs {}", net.name(), grad[(i, j)]);
                }
            }
            // Each layer enters linearly: <grad_k, W^k> = <G, Phi>.
            assert!(
                (gonn::numerics::linalg::dot(grad.as_ref(), w.layers[k].as_ref()) - f(&w)).abs()
                    < 1e-9 * f(&w).abs().max(1.0)
            );
        }
        let p = net.degree() as f64;
        assert!((euler - p * f(&w)).abs() < 1e-9 * f(&w).abs().max(1.0));
        // phi(a W) = a^p phi(W) and theta(a W) = a^p theta(W).
        let a = 1.7;
        let mut wa = w.clone();
        wa.scale_all(a);
        assert!((f(&wa) - a.powf(p) * f(&w)).abs() < 1e-9 * f(&wa).abs().max(1.0));
        let (ra, r) = (regularizer(net.as_ref(), &wa), regularizer(net.as_ref(), &w));
        assert!((ra - a.powf(p) * r).abs() < 1e-10 * ra);
        // Output Gram matches explicit outputs.
        let gram = net.output_gram(&w, Par::Seq);
        let single = |i: usize| {
            let mut s = w.clone();
            s.retain(&(0..3).map(|j| j == i).collect::<Vec<_>>());
            net.forward(&s, Par::Seq)
        };
        for i in 0..3 {
            for j in 0..3 {
                let d = gonn::numerics::linalg::dot(single(i).as_ref(), single(j).as_ref());
                assert!((gram[(i, j)] - d).abs() < 1e-9 * d.abs().max(1.0));
            }
        }
    }
}

/// The pruning move removes dependent subnetworks without changing `Phi` or increasing `Theta`, and a fit
/// started far wider than the output dimension ends at the optimal rank.
#[test]
fn pruning_move_bounds_the_width() {
    let (m, n) = (6, 5);
    let y = noisy_low_rank(m, n, 2, 0.1, 2);
    let net = MatrixFactorization::new(m, n, [l(Norm::L2); 2]);
    let obs = Observations::new(y.clone(), None).unwrap();
    let p = Problem { net: &net, loss: Loss::Squared, obs: &obs, lambda: 0.5, par: Par::Seq };
    let mut rng = Rng::new(4);
    // 3 columns, plus exact copies: outputs are linearly dependent.
    let base = Weights { layers: vec![rng.normal_mat(m, 3), rng.normal_mat(n, 3)] };
    let mut w = base.clone();
    for i in 0..3 {
        let atom = {
            let mut a = base.clone();
            a.retain(&(0..3).map(|j| j == i).collect::<Vec<_>>());
            a
        };
        w.push(&atom, &[0.5, 1.0]);
    }
    let (phi0, theta0) = (net.forward(&w, Par::Seq), regularizer(&net, &w));
    let removed = gonn::meta::pruning::prune_dependent(&p, &mut w);
    assert!(removed >= 3 && w.width() <= 3, "removed {removed}, width {}", w.width());
    let phi1 = net.forward(&w, Par::Seq);
    assert!((phi1 - &phi0).norm_l2() < 1e-9 * phi0.norm_l2());
    assert!(regularizer(&net, &w) <= theta0 * (1.0 + 1e-12));
    let sv = y.singular_values().unwrap();
    let lambda = 0.5 * (sv[1] + sv[2]);
    let model = fit(&net, &y, lambda, 40, 1e-9);
    assert_eq!(model.weights.width(), 2);
    assert_eq!(model.certificate.status, Status::Certified);
}

/// A lambda above the largest singular value: the zero network is optimal and certified immediately.
#[test]
fn large_lambda_gives_empty_certified_model() {
    let y = noisy_low_rank(8, 7, 2, 0.1, 6);
    let sv = y.singular_values().unwrap();
    let net = MatrixFactorization::new(8, 7, [l(Norm::L2); 2]);
    let model = fit(&net, &y, 1.01 * sv[0], 3, 1e-9);
    assert_eq!(model.weights.width(), 0);
    assert_eq!(model.certificate.status, Status::Certified);
    assert!((model.certificate.objective - 0.5 * y.squared_norm_l2()).abs() < 1e-9 * y.squared_norm_l2());
}

/// Bad parameters are errors naming the parameter.
#[test]
fn invalid_parameters_are_rejected() {
    for lam in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = FitParams::new(lam).validate().unwrap_err().to_string();
        assert!(e.contains("lambda"), "{e}");
    }
    assert!(FitParams::new(1.0).tol(0.0).validate().is_err());
    let net = MatrixFactorization::new(3, 3, [l(Norm::L2); 2]);
    let obs = Observations::new(Mat::zeros(4, 3), None).unwrap();
    assert!(FitParams::new(1.0).validate().unwrap().fit(&net, &obs).is_err());
    let bad = Weights { layers: vec![Mat::zeros(3, 2), Mat::zeros(3, 1)] };
    let obs = Observations::new(Mat::zeros(3, 3), None).unwrap();
    assert!(certify(&net, &obs, Loss::Squared, 1.0, &bad, 1e-6, 1).is_err());
}

/// A single row or column: the nuclear-norm optimum has the closed form `lambda s - lambda^2 / 2` (for
/// `s = ||y|| > lambda`), and the polar at zero must see `s / lambda` (the Lanczos process once stopped early on
/// the larger side and saw far less, so the model never grew).
#[test]
fn single_row_and_column_matrices_reach_the_closed_form() {
    let mut rng = Rng::new(8);
    for (m, n) in [(1, 50), (40, 1), (1, 1), (2, 30)] {
        let y = rng.normal_mat(m, n);
        let s = y.singular_values().unwrap();
        for ratio in [1.3, 4.0] {
            let lambda = s[0] / ratio;
            let fstar: f64 =
                s.iter().map(|&v| if v > lambda { lambda * v - 0.5 * lambda * lambda } else { 0.5 * v * v }).sum();
            let net = MatrixFactorization::new(m, n, [LayerNorm::new(Norm::L2, false); 2]);
            let obs = Observations::new(y.clone(), None).unwrap();
            let model = FitParams::new(lambda).tol(1e-8).threads(1).validate().unwrap().fit(&net, &obs).unwrap();
            let c = &model.certificate;
            assert_eq!(c.status, Status::Certified, "{m} x {n}, ratio {ratio}: {}", c.summary());
            assert!((c.objective - fstar).abs() <= 1e-7 * fstar, "{m} x {n}: f {} F* {fstar}", c.objective);
            assert!(
                model.history[0].polar_lower >= ratio * (1.0 - 1e-9),
                "{m} x {n}: first polar {}",
                model.history[0].polar_lower
            );
        }
    }
}

/// `lambda_max = Omega°(-G(0))` is `sigma_max(Y)` for the nuclear norm; at or above it the optimum is zero.
#[test]
fn lambda_max_is_the_top_singular_value_for_the_nuclear_norm() {
    let mut rng = Rng::new(12);
    let y = rng.normal_mat(9, 7);
    let smax = y.singular_values().unwrap()[0];
    let net = MatrixFactorization::new(9, 7, [LayerNorm::new(Norm::L2, false); 2]);
    let obs = Observations::new(y, None).unwrap();
    let (lo, up) = gonn::meta::lambda_max(&net, &obs, Loss::Squared, 1, Default::default()).unwrap();
    assert!((lo - smax).abs() <= 1e-9 * smax && up.unwrap() >= smax * (1.0 - 1e-12), "[{lo}, {up:?}] vs {smax}");
    let at = FitParams::new(up.unwrap() * 1.001).threads(1).validate().unwrap().fit(&net, &obs).unwrap();
    assert_eq!(at.weights.width(), 0);
    assert_eq!(at.certificate.status, Status::Certified);
    let below = FitParams::new(0.9 * smax).threads(1).validate().unwrap().fit(&net, &obs).unwrap();
    assert!(below.weights.width() >= 1);
}
