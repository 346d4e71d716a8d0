//! `homogeneity`: measured degrees of positive homogeneity against the computed ones, per stack and per layer.

use super::*;

pub(super) fn homogeneity(a: &ExperimentArgs, dir: &Path) -> Result<Outcome> {
    let (x, _) = digits(a, if a.small { 20 } else { 100 })?;
    let mut rng = Rng::new(a.seed);
    let image = Some((8, 8, 1));
    let stacks: Vec<(&str, &str, Activation)> = vec![
        ("linear + ReLU (one hidden layer)", "mlp:8", Activation::Relu),
        ("linear + leaky ReLU", "mlp:8", Activation::Leaky(0.1)),
        ("linear + max-out (3 pieces)", "mlp:8", Activation::Maxout(3)),
        ("two hidden ReLU layers", "mlp:8,6", Activation::Relu),
        ("convolution + ReLU", "cnn:c4k3", Activation::Relu),
        ("convolution + ReLU + max pooling", "cnn:c4k3,pool2", Activation::Relu),
        ("convolution + ReLU + mean pooling", "cnn:c4k3,meanpool2", Activation::Relu),
        ("conv, max pool, conv, fully connected", "cnn:c4k3,pool2,c4k2,fc6", Activation::Relu),
    ];
    let scales = [0.25, 0.5, 2.0, 4.0];
    let mut table = String::from(
        "| subnetwork | architecture | weight layers K | measured degree of phi | measured degree in each layer |\n|---|---|---|---|---|\n",
    );
    let (mut worst, mut rows_json, mut series) = (0.0f64, vec![], vec![]);
    for (label, spec, act) in &stacks {
        let arch = Architecture::parse(spec, *act)?;
        let net = DeepNetwork::new(x.as_ref(), 3, arch.clone(), image, true, Regularizer::Product)?;
        let w = Weights { layers: net.layer_dims().iter().map(|&d| rng.normal_mat(d, 2)).collect() };
        let norm_at = |s: f64, layer: Option<usize>| {
            let mut ws = w.clone();
            match layer {
                None => ws.scale_all(s),
                Some(k) => (0..ws.width()).for_each(|i| ws.scale_column(k, i, s)),
            }
            net.forward(&ws, Par::Seq).norm_l2()
        };
        let degs: Vec<f64> = scales.iter().map(|&s| measured_degree(|c| norm_at(c, None), s)).collect();
        let per_layer: Vec<f64> = (0..net.degree()).map(|k| measured_degree(|c| norm_at(c, Some(k)), 2.0)).collect();
        let k = net.degree() as f64;
        worst =
            degs.iter().map(|d| (d - k).abs()).chain(per_layer.iter().map(|d| (d - 1.0).abs())).fold(worst, f64::max);
        table += &format!(
            "| {label} | `{arch}` | {} | {} | {} |\n",
            net.degree(),
            degs.iter().map(|d| format!("{d:.6}")).collect::<Vec<_>>().join(", "),
            per_layer.iter().map(|d| format!("{d:.6}")).collect::<Vec<_>>().join(", ")
        );
        rows_json.push(json!({"subnetwork": label, "architecture": arch.to_string(), "degree": net.degree(), "measured": degs, "per_layer": per_layer}));
        series.push(Series {
            label: arch.to_string(),
            points: [0.25, 0.5, 1.0, 2.0, 4.0].iter().map(|&s| (s, norm_at(s, None) / norm_at(1.0, None))).collect(),
        });
    }
    // A counterexample: tanh is not positively homogeneous.
    let (w1, w2) = (rng.normal_mat(x.ncols(), 8), rng.normal_mat(8, 3));
    let tanh_norm = |s: f64| {
        let h = gonn::numerics::linalg::mul(x.as_ref(), (s * &w1).as_ref(), Par::Seq);
        let h = Mat::from_fn(h.nrows(), h.ncols(), |i, j| (h[(i, j)] / 64.0).tanh());
        gonn::numerics::linalg::mul(h.as_ref(), (s * &w2).as_ref(), Par::Seq).norm_l2()
    };
    let tanh_degs: Vec<f64> = scales.iter().map(|&s| measured_degree(tanh_norm, s)).collect();
    let tanh_spread = tanh_degs.iter().fold(0.0f64, |m, d| m.max((d - tanh_degs[0]).abs()));
    table += &format!(
        "| linear + tanh (not homogeneous) | - | 2 | {} | - |\n",
        tanh_degs.iter().map(|d| format!("{d:.4}")).collect::<Vec<_>>().join(", ")
    );
    let mut reg_table = String::from("| regularizer | formula | degree for K = 3 layers |\n|---|---|---|\n");
    for (r, f) in [
        (Regularizer::Product, "prod_k ||W^k||"),
        (Regularizer::Powers, "(1/K) sum_k ||W^k||^K"),
        (Regularizer::WeightDecay, "1/2 sum_k ||W^k||^2"),
    ] {
        reg_table += &format!("| {} | `{f}` | {} |\n", r.name(), r.degree(3));
    }
    let chart = Chart {
        title: "homogeneity: ||phi(a W)|| / ||phi(W)|| = a^K".into(),
        x_label: "scale a".into(),
        y_label: "output ratio".into(),
        log_x: true,
        log_y: true,
        series,
    };
    let figures = chart.write(dir, "homogeneity")?.to_vec();
    let holds = worst < 1e-9 && tanh_spread > 1e-2;
    Ok(Outcome {
        claim: "every stack of linear, convolution, ReLU, leaky ReLU, max-out, max and mean pooling layers is \
                positively homogeneous of degree K (the number of weight layers), and of degree 1 in each layer; \
                tanh is not homogeneous"
            .into(),
        holds,
        body: format!(
            "Measured degree `log2(||phi(a W)|| / ||phi(W)||) / log2(a)` at a = {scales:?}, on {} digits images, \
             random weights, r = 2 subnetworks, 3 outputs. Largest deviation from the computed degree: {worst:.2e}. \
             The tanh row's measured degree varies with a by {tanh_spread:.3}.\n\n{table}\nRegularizers (degree \
             computed from the formula):\n\n{reg_table}",
            x.nrows()
        ),
        numbers: json!({"stacks": rows_json, "worst_deviation": worst, "tanh_measured": tanh_degs, "tanh_spread": tanh_spread}),
        figures,
    })
}
