//! `mismatch`: a weight-decay regularizer of the wrong degree against the product form.

use super::*;

pub(super) fn mismatch(a: &ExperimentArgs, dir: &Path) -> Result<Outcome> {
    let (mut x, y) = digits(a, if a.small { 150 } else { 600 })?;
    let all = x.nrows();
    standardize(&mut x, all);
    let obs = Observations::new(y, None)?;
    let lambda = 1.0;
    let arch = Architecture::parse("mlp:8,8", Activation::Relu)?;
    let wd = DeepNetwork::new(x.as_ref(), 10, arch.clone(), None, true, Regularizer::WeightDecay)?;
    let matched = DeepNetwork::new(x.as_ref(), 10, arch, None, true, Regularizer::Product)?;
    let p_wd = Problem { net: &wd, loss: Loss::Softmax, obs: &obs, lambda, par: Par::Seq };
    let p_m = Problem { net: &matched, loss: Loss::Softmax, obs: &obs, lambda, par: Par::Seq };
    let zero = Weights::empty(&wd.layer_dims());
    let f0 = p_wd.objective(&zero);
    let mut rng = Rng::new(a.seed);
    let directions = if a.small { 50 } else { 200 };
    let ts: Vec<f64> = (0..13).map(|i| 10f64.powf(-3.0 + 0.25 * i as f64)).collect();
    let unit = |w: &mut Weights| {
        for l in w.layers.iter_mut() {
            let nrm = l.norm_l2();
            *l = &*l * (1.0 / nrm);
        }
    };
    let delta = |p: &Problem<'_>, d: &Weights, t: f64| {
        let mut w = d.clone();
        w.scale_all(t);
        p.objective(&w) - f0
    };
    let (mut wd_min, mut m_neg) = (vec![f64::INFINITY; ts.len()], 0usize);
    for _ in 0..directions {
        let mut d = Weights { layers: wd.layer_dims().iter().map(|&k| rng.normal_mat(k, 1)).collect() };
        unit(&mut d);
        for (i, &t) in ts.iter().enumerate() {
            wd_min[i] = wd_min[i].min(delta(&p_wd, &d, t));
        }
        if ts.iter().take(4).any(|&t| delta(&p_m, &d, t) < 0.0) {
            m_neg += 1;
        }
    }
    // The matched regularizer's polar at zero: its subnetwork is a descent direction when the polar exceeds 1.
    let ev = p_m.evaluate(&zero);
    let q = Mat::from_fn(ev.g.nrows(), ev.g.ncols(), |i, j| -ev.g[(i, j)] / lambda);
    let mut opts = PolarOptions::new(true, Par::Seq);
    opts.restarts = 8;
    let polar = matched.polar(q.as_ref(), &opts, &mut rng);
    let polar_curve: Vec<f64> = ts.iter().map(|&t| delta(&p_m, &polar.atom, t)).collect();
    let polar_wd: Vec<f64> = ts.iter().map(|&t| delta(&p_wd, &polar.atom, t)).collect();
    // Zero is not optimal for weight decay either: a trained network does better.
    let trained = FitParams::new(lambda)
        .loss(Loss::Softmax)
        .init_width(4)
        .seed(a.seed)
        .threads(1)
        .max_seconds(if a.small { 5.0 } else { 30.0 })
        .validate()?
        .fit_from(&wd, &obs, None, &mut gonn::meta::Silent)?;
    let f_trained = trained.certificate.objective;
    let small_t = 2; // t = 10^-2.5
    let wd_local_min = wd_min[..=small_t].iter().all(|v| *v > 0.0);
    let matched_descends = polar.lower > 1.0 && polar_curve[..=small_t].iter().all(|v| *v < 0.0);
    let holds = wd_local_min && matched_descends && f_trained < f0 && polar_wd[..=small_t].iter().all(|v| *v > 0.0);
    let mut table = String::from(
        "| t | min over directions of f(tD) - f(0), weight decay | along the polar subnetwork, weight decay | along the polar subnetwork, product |\n|---|---|---|---|\n",
    );
    for i in 0..ts.len() {
        table += &format!("| {} | {} | {} | {} |\n", fmt(ts[i]), fmt(wd_min[i]), fmt(polar_wd[i]), fmt(polar_curve[i]));
    }
    let series = |label: &str, v: &[f64], sign: f64| Series {
        label: label.into(),
        points: ts.iter().zip(v).filter(|(_, d)| sign * **d > 0.0).map(|(t, d)| (*t, sign * d)).collect(),
    };
    let chart = Chart {
        title: "degree mismatch: f(tD) - f(0) near the zero network".into(),
        x_label: "t".into(),
        y_label: "|f(tD) - f(0)|".into(),
        log_x: true,
        log_y: true,
        series: vec![
            series("weight decay, worst direction (increase)", &wd_min, 1.0),
            series("weight decay, polar direction (increase)", &polar_wd, 1.0),
            series("product, polar direction (decrease)", &polar_curve, -1.0),
        ],
    };
    let figures = chart.write(dir, "mismatch")?.to_vec();
    Ok(Outcome {
        claim: "with weight decay (degree 2) on 3-layer subnetworks (degree 3) the zero network is a local minimum \
                although it is not optimal; with the degree-matched product regularizer it is not a local minimum"
            .into(),
        holds,
        body: format!(
            "Subnetworks `mlp:8,8` (3 weight layers) on {} standardized digits images, softmax loss, lambda = \
             {lambda}, f(0) = {}. Directions D: {directions} random single subnetworks with unit-norm layers, plus the \
             matched problem's heuristic polar subnetwork (polar lower bound {:.4}). With weight decay every sampled \
             direction increases f for t <= {} (zero is a local minimum: {wd_local_min}), yet a width-4 network \
             trained with weight decay reaches f = {} < f(0). With the product regularizer, f decreases along the \
             polar subnetwork ({matched_descends}); {m_neg} of the {directions} random directions also decrease it \
             for some t <= 10^-2.25.\n\n{table}",
            x.nrows(),
            fmt(f0),
            polar.lower,
            fmt(ts[small_t]),
            fmt(f_trained)
        ),
        numbers: json!({
            "f0": f0, "t": ts, "weight_decay_min_delta": wd_min, "weight_decay_polar_delta": polar_wd,
            "matched_polar_delta": polar_curve, "matched_polar": polar.lower, "matched_random_descending": m_neg,
            "weight_decay_trained": f_trained, "zero_is_local_min_wd": wd_local_min, "matched_descends": matched_descends,
        }),
        figures,
    })
}
