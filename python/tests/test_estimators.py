"""The Python package against the command line, scikit-learn's conventions and bad input."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import gonn

ROOT = Path(__file__).resolve().parents[2]


def gonn_binary():
    path = Path(os.environ.get("GONN_BIN", ROOT / "target" / "release" / "gonn"))
    if not path.exists():
        pytest.skip(f"the gonn command-line binary is not built at {path} (cargo build --release, or set GONN_BIN)")
    return str(path)


def sine(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 1))
    y = np.sin(2 * x[:, 0]) + 0.05 * rng.normal(size=n)
    return x, y


def test_relu_fit_equals_the_cli(tmp_path):
    x, y = sine()
    np.savez(tmp_path / "xy.npz", X=x, Y=y)
    report = tmp_path / "r.json"
    subprocess.run(
        [gonn_binary(), "fit", "--model", "relu", "--data", str(tmp_path / "xy.npz"), "--lambda", "0.1",
         "--threads", "1", "--report", str(report), "--quiet"],
        check=True,
    )
    cli = json.loads(report.read_text())
    est = gonn.ReLURegressor(lam=0.1, n_jobs=1).fit(x, y)
    c = est.certificate_
    assert c.status == "certified" == cli["status"]
    assert abs(c.objective - cli["objective"]) <= 1e-10 * cli["objective"]
    assert est.n_subnetworks_ == cli["subnetworks"]
    assert c.gap_bound <= 1e-6 * c.objective
    # The certificate's lower bound on the optimum never exceeds the objective evaluated.
    assert c.optimum_lower_bound <= c.objective
    assert set(["status", "objective", "gap_bound", "polar_lower", "polar_upper", "polar_exact", "termination",
                "subnetworks", "seconds"]) <= set(c.to_dict())
    assert "CERTIFIED" in c.summary() and est.history_[-1]["objective"] == pytest.approx(c.objective, rel=1e-12)


def test_matrix_factorization_equals_the_cli_and_svt(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.normal(size=(30, 3)) @ rng.normal(size=(3, 20)) + 0.1 * rng.normal(size=(30, 20))
    mask = (rng.uniform(size=y.shape) < 0.7).astype(float)
    np.savez(tmp_path / "y.npz", Y=y, mask=mask)
    report = tmp_path / "r.json"
    subprocess.run(
        [gonn_binary(), "fit", "--data", str(tmp_path / "y.npz"), "--lambda", "1.5", "--norms", "l2,l2",
         "--threads", "1", "--report", str(report), "--quiet"],
        check=True,
    )
    cli = json.loads(report.read_text())
    mf = gonn.MatrixFactorization(lam=1.5, n_jobs=1).fit(y, mask)
    assert abs(mf.certificate_.objective - cli["objective"]) <= 1e-10 * cli["objective"]
    assert mf.U_.shape == (30, mf.n_subnetworks_) and mf.components_.shape == (mf.n_subnetworks_, 20)
    np.testing.assert_allclose(mf.predict(), mf.U_ @ mf.V_.T, atol=1e-12)
    # Fully observed: the optimum is singular-value soft-thresholding (closed form).
    full = gonn.MatrixFactorization(lam=1.5, n_jobs=1).fit(y)
    u, s, vt = np.linalg.svd(y, full_matrices=False)
    z = (u * np.maximum(s - 1.5, 0)) @ vt
    f_star = 0.5 * np.sum((y - z) ** 2) + 1.5 * np.maximum(s - 1.5, 0).sum()
    assert abs(full.certificate_.objective - f_star) <= 1e-6 * f_star
    assert full.n_subnetworks_ == int(np.sum(s > 1.5))


def test_classifier_probabilities_and_labels():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 2))
    labels = np.where(x[:, 0] * x[:, 1] > 0, "same", "different")
    clf = gonn.ReLUClassifier(lam=0.5, n_jobs=1, max_seconds=30).fit(x, labels)
    assert list(clf.classes_) == ["different", "same"]
    p = clf.predict_proba(x)
    assert p.shape == (120, 2) and np.allclose(p.sum(axis=1), 1)
    assert np.mean(clf.predict(x) == labels) > 0.85
    assert clf.certificate_.status == "certified"
    three = np.digitize(x[:, 0], [-0.5, 0.5])
    clf3 = gonn.ReLUClassifier(lam=0.5, n_jobs=1, max_seconds=30).fit(x, three)
    assert clf3.predict_proba(x).shape == (120, 3) and np.mean(clf3.predict(x) == three) > 0.85
    # Three classes: the polar of the 3 outputs is bounded by a cover of the output directions, which closes.
    assert clf3.certificate_.status == "certified"


def test_pickle_clone_and_params():
    from sklearn.base import clone

    x, y = sine(80)
    est = gonn.ReLURegressor(lam=0.2, random_state=3, n_jobs=1).fit(x, y)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(x), est.predict(x))
    assert again.certificate_.objective == est.certificate_.objective
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "model_")
    assert c.set_params(lam=0.3).lam == 0.3


def test_grid_search_pipeline_pandas_float32():
    pd = pytest.importorskip("pandas")
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = sine(150)
    frame = pd.DataFrame({"t": x[:, 0].astype(np.float32)})
    search = GridSearchCV(gonn.ReLURegressor(n_jobs=1, max_seconds=20), {"lam": [0.03, 0.3, 3.0]}, cv=3)
    search.fit(frame, y)
    assert search.best_params_["lam"] in (0.03, 0.3, 3.0)
    assert list(search.best_estimator_.feature_names_in_) == ["t"]
    scores = cross_val_score(make_pipeline(StandardScaler(), gonn.ReLURegressor(lam=0.1, n_jobs=1)), x, y, cv=3)
    assert np.all(scores > 0.8)


def test_bad_input_raises_value_error_with_the_cli_message(tmp_path):
    x, y = sine(30)
    # An error from the core: the same text as the command line's `error: ...` line.
    np.savez(tmp_path / "xy.npz", X=x, Y=y)
    cli = subprocess.run(
        [gonn_binary(), "fit", "--model", "relu", "--data", str(tmp_path / "xy.npz"), "--lambda", "0.1",
         "--polar", "magic"],
        capture_output=True, text=True,
    )
    assert cli.returncode == 2
    with pytest.raises(ValueError) as err:
        gonn.ReLURegressor(lam=0.1, polar="magic").fit(x, y)
    assert cli.stderr.strip().splitlines()[-1] == "error: " + str(err.value)
    with pytest.raises(ValueError, match="positive"):
        gonn.ReLURegressor(lam=-1).fit(x, y)
    bad = x.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite|NaN"):
        gonn.ReLURegressor().fit(bad, y)
    with pytest.raises(ValueError, match="samples"):
        gonn.ReLURegressor().fit(x, y[:10])
    with pytest.raises(ValueError, match="polar"):
        gonn.ReLURegressor(polar="magic").fit(x, y)
    est = gonn.ReLURegressor(lam=0.1).fit(x, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(np.ones((3, 2)))
    with pytest.raises(ValueError, match="mask"):
        gonn.MatrixFactorization().fit(np.ones((4, 3)), np.ones((3, 4)))


def test_certify_numpy_weights_and_weight_decay_conversion():
    x, y = sine(100)
    best = gonn.ReLURegressor(lam=0.1, n_jobs=1).fit(x, y)
    u, v = best.model_.layers()
    # The optimum, given as numpy weights (W1 with the bias row last, W2): certified again.
    cert = gonn.certify((u, v), x, y, lam=0.1)
    assert cert.status == "certified" and abs(cert.objective - best.certificate_.objective) <= 1e-9 * cert.objective
    # A random network: not optimal, with the unit that improves it.
    rng = np.random.default_rng(0)
    w1, b1, w2 = rng.normal(size=(1, 4)), rng.normal(size=4), 0.3 * rng.normal(size=(1, 4))
    rough = gonn.certify((w1, b1, w2), x, y, weight_decay=1e-3)
    assert rough.lam == pytest.approx(100 * 1e-3 / 2)
    assert rough.status != "certified" and rough.polar_lower > 1 and rough.improving_subnetwork is not None
    assert rough.optimum_lower_bound <= rough.objective and "n * C * wd / 2" in rough.summary()
    with pytest.raises(ValueError, match="exactly one"):
        gonn.certify((w1, b1, w2), x, y)


def test_certify_live_torch_module():
    torch = pytest.importorskip("torch", reason="torch is optional (pip install torch to run this test)")
    x, y = sine(100)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1, bias=False)).double()
    opt = torch.optim.Adam(net.parameters(), lr=0.01, weight_decay=1e-3)
    xt, yt = torch.tensor(x), torch.tensor(y).reshape(-1, 1)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(xt), yt).backward()
        opt.step()
    cert = gonn.certify(net, x, y, weight_decay=1e-3)
    # gonn's objective with lam = n wd / 2 is at most n/2 times PyTorch's (MSE mean plus wd/2 ||params||^2), with
    # equality for balanced layers: ||(w1_j, b1_j)|| ||w2_j|| <= (||(w1_j, b1_j)||^2 + ||w2_j||^2) / 2.
    with torch.no_grad():
        torch_obj = float(((net(xt) - yt) ** 2).mean() + 1e-3 / 2 * sum((p**2).sum() for p in net.parameters()))
    assert cert.objective <= len(x) / 2 * torch_obj * (1 + 1e-12)
    w1 = net[0].weight.detach().numpy().T
    same = gonn.certify((w1, net[0].bias.detach().numpy(), net[2].weight.detach().numpy()), x, y, weight_decay=1e-3)
    assert cert.objective == same.objective and cert.gap_bound >= 0
    with pytest.raises(ValueError, match="bias"):
        gonn.certify(torch.nn.Sequential(torch.nn.Linear(1, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)), x, y, lam=1)


def test_deep_estimators_are_honest():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, 3))
    y = np.maximum(x[:, 0], 0) - x[:, 1]
    est = gonn.DeepRegressor(architecture="mlp:4", lam=0.5, n_jobs=1, max_seconds=10, max_outer=5).fit(x, y)
    assert est.certificate_.status in ("heuristic", "bounded", "untested")
    assert est.predict(x).shape == (60,)
    labels = (y > 0).astype(int)
    clf = gonn.DeepClassifier(architecture="mlp:4", lam=0.5, n_jobs=1, max_seconds=10, max_outer=5).fit(x, labels)
    assert clf.predict_proba(x).shape == (60, 2)


def test_ctrl_c_raises_keyboard_interrupt_promptly(tmp_path):
    script = tmp_path / "long.py"
    script.write_text(
        "import numpy as np, gonn, sys\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.normal(size=(400, 6)); y = np.sin(x).sum(axis=1)\n"
        "est = gonn.ReLURegressor(lam=1e-3, max_seconds=120, n_jobs=1)\n"
        "print('started', flush=True)\n"
        "try:\n"
        "    est.fit(x, y)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', hasattr(est, 'model_'), flush=True)\n"
        "    sys.exit(7)\n"
    )
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "started"
    time.sleep(1.5)
    sent = time.time()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 7, out
    assert out.strip() == "interrupted False"
    assert time.time() - sent < 5


def test_verbose_progress_and_the_gil_is_released(capfd):
    import threading

    # 2-D inputs: a fit of a few outer iterations that lasts long enough (seconds) to watch another thread.
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (400, 2))
    y = np.sin(3 * x[:, 0]) * np.cos(2 * x[:, 1])
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    start = time.perf_counter()
    est = gonn.ReLURegressor(lam=0.01, n_jobs=1, verbose=1, max_outer=2).fit(x, y)
    elapsed = time.perf_counter() - start
    done.set()
    t.join()
    err = capfd.readouterr().err
    assert "outer" in err and "polar lo" in err and err.count("\n") >= 2 + 2, err
    assert "status:" in err and est.certificate_.summary().splitlines()[1] in err
    # Another Python thread ran throughout the fit (it would be blocked if the GIL were held).
    during = [s for s in ticks if start <= s <= start + elapsed]
    # It sleeps 1 ms per tick: with the GIL free it ticks about elapsed / 1 ms times, held it would not tick.
    assert elapsed > 0.1 and len(during) > 0.1 * elapsed / 0.001, (len(during), elapsed)


def test_branch_and_bound_polar_certifies_four_features():
    """Four input features (no enumeration): the branch and bound proves the polar; a certified fit has a closed
    bound, and gonn.certify of a truncated network reports a proven gap no smaller than its true excess."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 4))
    y = np.maximum(x @ np.array([1.0, -0.5, 0.3, 0.2]), 0) - np.maximum(x[:, 2] + 0.3, 0) + 0.1 * rng.normal(size=40)
    est = gonn.ReLURegressor(lam=0.3, polar="bab", polar_seconds=20, n_jobs=1, random_state=0).fit(x, y)
    c = est.certificate_
    assert c.status == "certified", c.summary
    assert "branch and bound" in c.polar_method
    assert c.optimum_lower_bound <= c.objective
    w1, w2 = est.model_.layers()
    keep = max(1, w1.shape[1] // 2)
    half = gonn.certify((w1[:, :keep], w2[:, :keep]), x, y, lam=0.3, polar_seconds=5)
    assert "branch and bound" in half.polar_method
    assert half.gap_bound >= half.objective - c.objective - 1e-9 * c.objective
    with pytest.raises(ValueError, match="polar_seconds"):
        gonn.ReLURegressor(lam=0.3, polar_seconds=-1).fit(x, y)
