//! Property tests of what a certificate may claim (THEORY.md section 3), over random problems on random scales:
//! a reported lower bound on the optimum never exceeds an objective the same run evaluated, a proven gap bound is
//! never below the true gap (closed form for the nuclear norm), and `certified` implies a proven
//! `gap_bound <= tol * objective`.

use faer::Mat;
use gonn::core::problem::Problem;
use gonn::numerics::rng::Rng;
use gonn::prelude::*;
use proptest::prelude::*;

fn check(c: &Certificate, history_min: f64, tol: f64) -> Result<(), TestCaseError> {
    if let Some(lb) = c.optimum_lower_bound {
        prop_assert!(
            lb <= history_min.min(c.objective) * (1.0 + 1e-12) + 1e-12,
            "lower bound {lb} above {history_min}"
        );
    }
    if let Some(g) = c.gap_bound {
        prop_assert!(g >= 0.0 && g.is_finite());
    }
    if c.status == Status::Certified {
        let g = c.gap_bound.expect("certified means a proven gap");
        prop_assert!(g <= tol * c.objective.abs() * (1.0 + 1e-12), "certified with gap {g} at f {}", c.objective);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn nuclear_norm_certificates_are_true(m in 1usize..7, n in 1usize..7, scale in -3.0f64..6.0, ratio in 0.3f64..5.0, seed in 0u64..1000) {
        let mut rng = Rng::new(seed);
        let y = rng.normal_mat(m, n) * faer::Scale(10f64.powf(scale));
        let s = y.singular_values().unwrap();
        let lambda = s[0] / ratio;
        let fstar: f64 = s.iter().map(|&v| if v > lambda { lambda * v - 0.5 * lambda * lambda } else { 0.5 * v * v }).sum();
        let net = MatrixFactorization::new(m, n, [LayerNorm::new(Norm::L2, false); 2]);
        let obs = Observations::new(y, None).unwrap();
        let fit = FitParams::new(lambda).tol(1e-6).threads(1).max_seconds(10.0).validate().unwrap().fit(&net, &obs).unwrap();
        let least = fit.history.iter().map(|r| r.objective).fold(f64::INFINITY, f64::min);
        check(&fit.certificate, least, 1e-6)?;
        if let Some(lb) = fit.certificate.optimum_lower_bound {
            prop_assert!(lb <= fstar * (1.0 + 1e-9) + 1e-12 * fstar.abs().max(1.0), "lower bound {lb} above F* {fstar}");
        }
        if let Some(g) = fit.certificate.gap_bound {
            let true_gap = fit.certificate.objective - fstar;
            prop_assert!(g >= true_gap - 1e-9 * fstar.abs().max(1e-300), "gap bound {g} below the true gap {true_gap}");
        }
    }

    #[test]
    fn relu_certificates_hold_on_any_input_scale(n in 4usize..14, d in 1usize..3, offset in -5.0f64..5.0, spread in -3.0f64..3.0, lambda in 0.01f64..1.0, seed in 0u64..1000) {
        let mut rng = Rng::new(seed);
        let (off, sp) = (10f64.powf(offset).copysign(offset), 10f64.powf(spread));
        let x = Mat::from_fn(n, d, |_, _| off + sp * rng.normal());
        let y = Mat::from_fn(n, 1, |_, _| rng.normal());
        let net = ReluNetwork::new(x.as_ref(), 1, true, Norm::L2, PolarMode::Auto).unwrap();
        let obs = Observations::new(y, None).unwrap();
        let fit = FitParams::new(lambda).tol(1e-6).threads(1).max_seconds(3.0).validate().unwrap().fit(&net, &obs).unwrap();
        let least = fit.history.iter().map(|r| r.objective).fold(f64::INFINITY, f64::min);
        check(&fit.certificate, least, 1e-6)?;
        // The zero network is feasible: any lower bound on F* is at most f(0) = 1/2 ||y||^2.
        if let Some(lb) = fit.certificate.optimum_lower_bound {
            let f0 = 0.5 * (0..n).map(|i| obs.y()[(i, 0)].powi(2)).sum::<f64>();
            prop_assert!(lb <= f0 * (1.0 + 1e-12));
        }
    }
}

/// `Problem::nonneg_combination` ends at the KKT point of `min_{c >= 0} loss(sum_k c_k Z_k) + lambda
/// sum_k cost_k c_k`: `<Z_k, G> + lambda cost_k` is zero where `c_k > 0` and nonnegative where `c_k = 0`, for the
/// logistic and squared losses, with a mask, an atom without output and one repeated atom.
#[test]
fn nonneg_combination_reaches_the_kkt_point() {
    let mut rng = Rng::new(6);
    let (n, outputs) = (60, 2);
    let x = rng.normal_mat(n, 2);
    let net = ReluNetwork::new(x.as_ref(), outputs, true, Norm::L2, PolarMode::Exact).unwrap();
    for loss in [Loss::Logistic, Loss::Squared] {
        let y = Mat::from_fn(n, outputs, |_, _| if rng.uniform() < 0.5 { 0.0 } else { 1.0 });
        let mask = Mat::from_fn(n, outputs, |_, _| if rng.uniform() < 0.8 { 1.0 } else { 0.0 });
        let obs = Observations::new(y, Some(mask)).unwrap();
        let p = Problem { net: &net, loss, obs: &obs, lambda: 0.5, par: faer::Par::Seq };
        let mut atoms: Vec<Mat<f64>> = (0..6).map(|_| rng.normal_mat(n, outputs)).collect();
        atoms.push(Mat::zeros(n, outputs));
        atoms.push(atoms[0].clone());
        let costs: Vec<f64> = (0..atoms.len()).map(|k| if k == 6 { 0.0 } else { 0.5 + rng.uniform() }).collect();
        let mut c = vec![0.0; atoms.len()];
        c[0] = 1.0;
        let (z, loss_value, g) = p.nonneg_combination(&atoms.iter().collect::<Vec<_>>(), &costs, &mut c);
        let (check, gz) = loss.value_and_gradient(&obs, z.as_ref());
        assert!((check - loss_value).abs() <= 1e-12 * check.abs());
        assert!((&g - &gz).norm_l2() <= 1e-12 * gz.norm_l2().max(1.0));
        let scale = gz.norm_l2() * atoms[0].norm_l2();
        for (k, a) in atoms.iter().enumerate() {
            let inner: f64 = (0..n).flat_map(|i| (0..outputs).map(move |j| (i, j))).map(|e| a[e] * gz[e]).sum();
            let kkt = inner + p.lambda * costs[k];
            assert!(c[k] >= 0.0);
            if c[k] > 0.0 && k != 6 {
                assert!(kkt.abs() <= 1e-6 * scale, "{loss:?}: atom {k} c {} gradient {kkt}", c[k]);
            } else {
                assert!(kkt >= -1e-6 * scale, "{loss:?}: atom {k} at zero with gradient {kkt}");
            }
        }
        assert!(c.iter().any(|v| *v > 0.0), "{loss:?}: the solution is not trivial");
    }
}
