//! `lambda-path`: a decreasing path of lambdas, network size and train/test error.

use super::*;

pub(super) fn lambda_path(a: &ExperimentArgs, dir: &Path) -> Result<Outcome> {
    let total = if a.small { 450 } else { 1797 };
    let (mut x, y) = digits(a, total)?;
    let train = total * 2 / 3;
    standardize(&mut x, train);
    let (xtr, xte) = (rows(x.as_ref(), 0, train), rows(x.as_ref(), train, x.nrows()));
    let (ytr, yte) = (rows(y.as_ref(), 0, train), rows(y.as_ref(), train, y.nrows()));
    let obs = Observations::new(ytr.clone(), None)?;
    let arch = Architecture::parse("mlp:8", Activation::Relu)?;
    let net = DeepNetwork::new(xtr.as_ref(), 10, arch, None, true, Regularizer::Product)?;
    let lambdas: Vec<f64> = if a.small { vec![30.0, 10.0, 3.0, 1.0] } else { vec![100.0, 30.0, 10.0, 3.0, 1.0, 0.3] };
    let budget = if a.small { 2.0 } else { 30.0 };
    let error = |net: &DeepNetwork, w: &Weights, y: &Mat<f64>| {
        let z = net.forward(w, Par::Seq);
        let wrong = (0..z.nrows())
            .filter(|&i| {
                let pred = (0..z.ncols()).max_by(|&p, &q| z[(i, p)].total_cmp(&z[(i, q)])).unwrap_or(0);
                y[(i, pred)] < 0.5
            })
            .count();
        wrong as f64 / z.nrows() as f64
    };
    let test_net = net.with_inputs(xte.as_ref())?;
    let mut w: Option<Weights> = None;
    let mut path = Vec::new();
    for &lambda in &lambdas {
        let m = FitParams::new(lambda)
            .loss(Loss::Softmax)
            .seed(a.seed)
            .threads(1)
            .max_seconds(budget)
            .validate()?
            .fit_from(&net, &obs, w.clone(), &mut gonn::meta::Silent)?;
        let (tr, te) = (error(&net, &m.weights, &ytr), error(&test_net, &m.weights, &yte));
        path.push(json!({
            "lambda": lambda, "subnetworks": m.weights.width(), "objective": m.certificate.objective,
            "train_error": tr, "test_error": te, "polar_lower": m.certificate.polar_lower, "status": m.certificate.status,
        }));
        w = Some(m.weights);
    }
    let get = |i: usize, k: &str| path[i][k].as_f64().unwrap_or(0.0);
    let last = path.len() - 1;
    let holds = get(0, "subnetworks") < get(last, "subnetworks") && get(0, "train_error") >= get(last, "train_error");
    let mut table = String::from("| lambda | subnetworks | objective | train error | test error | polar (lower) | status |\n|---|---|---|---|---|---|---|\n");
    for r in &path {
        table += &format!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.4} | {} |\n",
            r["lambda"],
            r["subnetworks"],
            fmt(r["objective"].as_f64().unwrap()),
            r["train_error"].as_f64().unwrap(),
            r["test_error"].as_f64().unwrap(),
            r["polar_lower"].as_f64().unwrap(),
            r["status"].as_str().unwrap_or("")
        );
    }
    let line = |k: &str| -> Vec<(f64, f64)> { (0..path.len()).map(|i| (get(i, "lambda"), get(i, k))).collect() };
    let mut figures = Chart {
        title: "lambda path: network size chosen by the regularizer".into(),
        x_label: "lambda".into(),
        y_label: "subnetworks r".into(),
        log_x: true,
        log_y: false,
        series: vec![Series { label: "subnetworks".into(), points: line("subnetworks") }],
    }
    .write(dir, "lambda_path_size")?
    .to_vec();
    figures.extend(
        Chart {
            title: "lambda path: classification error".into(),
            x_label: "lambda".into(),
            y_label: "error".into(),
            log_x: true,
            log_y: false,
            series: vec![
                Series { label: "train".into(), points: line("train_error") },
                Series { label: "test".into(), points: line("test_error") },
            ],
        }
        .write(dir, "lambda_path_error")?,
    );
    Ok(Outcome {
        claim: "along a decreasing path of lambda values (warm starts) the regularizer picks the network size: \
                fewer subnetworks and higher training error for large lambda, more subnetworks and lower training \
                error for small lambda"
            .into(),
        holds,
        body: format!(
            "Subnetworks `mlp:8` on the digits images ({train} training, {} test samples, standardized), softmax \
             loss, {budget} s per lambda, each fit starting from the previous one. The polar is heuristic here (no \
             certificate is possible for this family).\n\n{table}",
            x.nrows() - train
        ),
        numbers: json!({"path": path}),
        figures,
    })
}
