"""Ratings files that Python users write: `scipy.sparse.save_npz` (COO, CSR, CSC) and a numpy triplet `.npz` give
the same certified fit from `gonn fit --model factor` as the MovieLens-style CSV of the same ratings."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

sp = pytest.importorskip("scipy.sparse")

ROOT = Path(__file__).resolve().parents[2]


def gonn_bin():
    path = Path(os.environ.get("GONN_BIN", ROOT / "target" / "release" / "gonn"))
    if not path.exists():
        pytest.skip(f"the gonn command-line binary is not built at {path} (cargo build --release, or set GONN_BIN)")
    return str(path)


def ratings(m=40, n=30, p=0.3, seed=0):
    rng = np.random.default_rng(seed)
    mask = rng.uniform(size=(m, n)) < p
    mask[np.arange(m), np.arange(m) % n] = True
    mask[np.arange(n) % m, np.arange(n)] = True
    rows, cols = np.nonzero(mask)
    a, b = rng.standard_normal(m), rng.standard_normal(n)
    y = np.clip(np.round(3 + a[rows] * b[cols] + 0.3 * rng.standard_normal(rows.size)), 1, 5)
    return rows, cols, y, (m, n)


def fit(path, tmp_path):
    rep = tmp_path / "rep.json"
    out = subprocess.run(
        [gonn_bin(), "fit", "--model", "factor", "--data", str(path), "--lambda", "2", "--biases", "both",
         "--threads", "1", "--report", str(rep), "--quiet"],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(rep.read_text())
    assert r["status"] == "certified"
    assert r["optimum_lower_bound"] <= r["objective"]
    return r["objective"]


def test_scipy_sparse_and_triplets_match_the_csv(tmp_path):
    rows, cols, y, shape = ratings()
    csv = tmp_path / "ratings.csv"
    with open(csv, "w") as f:
        f.write("userId,movieId,rating\n")
        for i, j, v in zip(rows, cols, y):
            f.write(f"{i},{j},{v}\n")
    reference = fit(csv, tmp_path)
    coo = sp.coo_matrix((y, (rows, cols)), shape=shape)
    for name, mat in [("coo", coo), ("csr", coo.tocsr()), ("csc", coo.tocsc())]:
        path = tmp_path / f"{name}.npz"
        sp.save_npz(path, mat)
        assert fit(path, tmp_path) == pytest.approx(reference, rel=1e-9), name
    path = tmp_path / "triplets.npz"
    np.savez(path, rows=rows, cols=cols, values=y, shape=np.array(shape))
    assert fit(path, tmp_path) == pytest.approx(reference, rel=1e-9)


def test_damaged_scipy_file_is_a_clear_error(tmp_path):
    rows, cols, y, shape = ratings()
    mat = sp.csr_matrix((y, (rows, cols)), shape=shape)
    path = tmp_path / "bad.npz"
    np.savez(path, data=mat.data, indices=mat.indices, indptr=mat.indptr[:-5], shape=np.array(shape), format=b"csr")
    out = subprocess.run([gonn_bin(), "fit", "--model", "factor", "--data", str(path), "--lambda", "2"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "indptr" in out.stderr


def test_matrix_completion_estimator_matches_the_cli(tmp_path):
    gonn = pytest.importorskip("gonn")
    rows, cols, y, shape = ratings()
    mat = sp.csr_matrix((y, (rows, cols)), shape=shape)
    path = tmp_path / "csr.npz"
    sp.save_npz(path, mat)
    est = gonn.MatrixCompletion(lam=2.0, biases="both", n_jobs=1).fit(mat)
    assert est.certificate_.status == "certified"
    assert est.certificate_.objective == pytest.approx(fit(path, tmp_path), rel=1e-9)
    # Predictions at the observed entries reproduce the certificate's loss.
    pred = est.predict(rows, cols)
    assert 0.5 * np.sum((y - pred) ** 2) == pytest.approx(est.certificate_.loss, rel=1e-8)
    # Triplets give the same fit; bad indices are a ValueError with the core's message.
    est2 = gonn.MatrixCompletion(lam=2.0, biases="both", n_jobs=1).fit((rows, cols), y, shape=shape)
    assert est2.certificate_.objective == est.certificate_.objective
    with pytest.raises(ValueError, match="is not an index"):
        gonn.MatrixCompletion(lam=2.0).fit((rows, cols), y, shape=(3, 3))
