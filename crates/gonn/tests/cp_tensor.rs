//! CP tensor factorization: closed forms on orthogonally decomposable tensors, honest status otherwise.

use faer::Mat;
use gonn::prelude::*;

fn orthonormal(rng: &mut Rng, n: usize, r: usize) -> Mat<f64> {
    let a = rng.normal_mat(n, r);
    let qr = a.qr();
    qr.compute_thin_Q()
}

/// `T = sum_i s_i a_i ∘ b_i ∘ c_i` with orthonormal factors: the optimum of `1/2 ||T - Z||^2 + lambda Omega(Z)` is
/// `sum_i (s_i - lambda)_+ a_i ∘ b_i ∘ c_i`, and the unfolding bound proves it.
#[test]
fn orthogonally_decomposable_tensor_is_certified() {
    let mut rng = Rng::new(5);
    let (m, n, k) = (6, 5, 4);
    let s = [5.0, 3.0, 0.8];
    let (a, b, c) = (orthonormal(&mut rng, m, 3), orthonormal(&mut rng, n, 3), orthonormal(&mut rng, k, 3));
    let t =
        Mat::from_fn(m, n * k, |i, jl| (0..3).map(|r| s[r] * a[(i, r)] * b[(jl / k, r)] * c[(jl % k, r)]).sum::<f64>());
    let lambda = 1.0;
    let optimum: f64 =
        s.iter().map(|&v| if v > lambda { 0.5 * lambda * lambda + lambda * (v - lambda) } else { 0.5 * v * v }).sum();
    let net = CpTensor::new(m, n, k);
    let obs = Observations::new(t, None).unwrap();
    for init in [0, 2, 6] {
        let model = FitParams::new(lambda)
            .tol(1e-8)
            .init_width(init)
            .seed(1)
            .threads(1)
            .validate()
            .unwrap()
            .fit(&net, &obs)
            .unwrap();
        let cert = &model.certificate;
        assert_eq!(cert.status, Status::Certified, "init {init}: {}", cert.summary());
        assert!(!cert.polar_exact, "the CP polar is never claimed exact");
        assert!((cert.objective - optimum).abs() <= 1e-7 * optimum, "init {init}: {} vs {optimum}", cert.objective);
        assert_eq!(model.weights.width(), 2);
    }
}

/// On a generic noisy tensor the fit ends honestly: a proven gap bound (possibly loose) and a status that is
/// `certified` only if that bound is within tolerance.
#[test]
fn generic_tensor_reports_bounds_honestly() {
    let mut rng = Rng::new(9);
    let (m, n, k) = (5, 4, 3);
    let t = rng.normal_mat(m, n * k);
    let net = CpTensor::new(m, n, k);
    let obs = Observations::new(t, None).unwrap();
    let model = FitParams::new(0.8).tol(1e-6).threads(1).max_seconds(30.0).validate().unwrap().fit(&net, &obs).unwrap();
    let c = &model.certificate;
    let (lo, up) = (c.polar_lower, c.polar_upper.unwrap());
    assert!(lo <= up + 1e-12);
    let gap = c.gap_bound.unwrap();
    match c.status {
        Status::Certified => assert!(gap <= 1e-6 * c.objective),
        Status::Bounded => assert!(gap > 1e-6 * c.objective),
        Status::Heuristic | Status::Untested => panic!("cp always has a proven upper bound"),
    }
}
