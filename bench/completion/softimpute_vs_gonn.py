"""gonn's certified sparse completion against softImpute-ALS (Hastie, Mazumder, Lee & Zadeh 2015) at the same
lambda, on MovieLens-shaped synthetic ratings, in the same run and on the same threads.

Both minimize  1/2 sum_{observed} (y_ij - z_ij)^2 + lambda ||Z||_*  (no biases: softImpute has none). The ALS
solver is a plain numpy/scipy.sparse implementation of the paper's Algorithm 3.1 (ridge updates of A and B on the
sparse-plus-low-rank completed matrix, each followed by the rotation to singular vectors), with the R package's
default stopping rule (relative change of the fit below 1e-5). Reported: ALS's time and final objective; gonn's
time to reach that objective (from its per-iteration history) and to `certified`; RMSE on 10% held-out ratings.

    python3 bench/completion/softimpute_vs_gonn.py --shape 1m --lam 20 --threads 2
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(__file__))
from movielens_synth import SHAPES, generate  # noqa: E402


def objective(S_vals, A, B, lam):
    """1/2 ||P(Y - A B^T)||^2 + lam ||A B^T||_* (nuclear norm from the r x r core)."""
    qa, ra = np.linalg.qr(A)
    qb, rb = np.linalg.qr(B)
    nuc = np.linalg.svd(ra @ rb.T, compute_uv=False).sum()
    return 0.5 * float(S_vals @ S_vals) + lam * nuc


def residual(rows, cols, y, A, B):
    return y - np.einsum("ij,ij->i", A[rows], B[cols])


def softimpute_als(rows, cols, y, shape, lam, rank, thresh=1e-5, max_iter=500, seed=0):
    m, n = shape
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, rank)) * 1e-2
    B = np.zeros((n, rank))
    t0 = time.perf_counter()
    trace = []
    for it in range(max_iter):
        # B step: B = (S^T A + B A^T A)(A^T A + lam I)^-1 with S = P(Y - A B^T).
        s = residual(rows, cols, y, A, B)
        S = sp.csr_matrix((s, (rows, cols)), shape=shape)
        AtA = A.T @ A
        B_new = np.linalg.solve(AtA + lam * np.eye(rank), (S.T @ A + B @ AtA).T).T
        s = residual(rows, cols, y, A, B_new)
        S = sp.csr_matrix((s, (rows, cols)), shape=shape)
        BtB = B_new.T @ B_new
        A_new = np.linalg.solve(BtB + lam * np.eye(rank), (S @ B_new + A @ BtB).T).T
        # Rotation to singular vectors (softImpute keeps U, D, V): A = U sqrt(D), B = V sqrt(D).
        qa, ra = np.linalg.qr(A_new)
        qb, rb = np.linalg.qr(B_new)
        u, d, vt = np.linalg.svd(ra @ rb.T)
        A_rot, B_rot = qa @ (u * np.sqrt(d)), qb @ (vt.T * np.sqrt(d))
        # Relative change of the fit ||Z_old - Z_new||_F^2 / ||Z_old||_F^2, by low-rank algebra.
        def gram(P, Q, R, T):
            return float(np.sum((P.T @ R) * (Q.T @ T)))
        old2 = gram(A, B, A, B)
        new2 = gram(A_rot, B_rot, A_rot, B_rot)
        cross = gram(A, B, A_rot, B_rot)
        change = (old2 + new2 - 2 * cross) / max(old2, 1e-300)
        A, B = A_rot, B_rot
        if it % 5 == 0 or change < thresh:
            trace.append((time.perf_counter() - t0, objective(residual(rows, cols, y, A, B), A, B, lam)))
        if it > 0 and change < thresh:
            break
    secs = time.perf_counter() - t0
    f = objective(residual(rows, cols, y, A, B), A, B, lam)
    return A, B, f, secs, it + 1, trace


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="1m", choices=sorted(SHAPES))
    ap.add_argument("--lam", type=float, default=20.0)
    ap.add_argument("--rank", type=int, default=0, help="ALS rank (default: gonn's certified rank + 10)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gonn", default=os.environ.get("GONN_BIN", "target/release/gonn"))
    ap.add_argument("--out", default=None, help="append a markdown row to this file")
    ap.add_argument("--thresh", type=float, default=1e-5, help="ALS stopping rule (the R package's default 1e-5)")
    ap.add_argument("--max-iter", type=int, default=500)
    ap.add_argument("--biases", default="none", help="gonn's --biases (ALS has none; only `none` is the same objective)")
    a = ap.parse_args()
    m, n, nnz = SHAPES[a.shape]
    rows, cols, y = generate(m, n, nnz, seed=1)
    rng = np.random.default_rng(2)
    test = rng.uniform(size=nnz) < 0.1
    tmp = tempfile.mkdtemp(prefix="gonn-softimpute-")
    for name, sel in [("train", ~test), ("test", test)]:
        with open(os.path.join(tmp, f"{name}.csv"), "w") as f:
            f.write("userId,movieId,rating\n")
            np.savetxt(f, np.column_stack([rows[sel], cols[sel], y[sel]]), fmt=["%d", "%d", "%.1f"], delimiter=",")
    # gonn indexes ids in sorted order; every user and item of the synthetic data appears in training at these sizes.
    tr = ~test
    assert len(np.unique(rows[tr])) == m and len(np.unique(cols[tr])) == n, "an id is missing from training"
    rep = os.path.join(tmp, "report.json")
    cmd = [a.gonn, "fit", "--model", "factor", "--data", os.path.join(tmp, "train.csv"), "--lambda", str(a.lam),
           "--validation-data", os.path.join(tmp, "test.csv"), "--threads", str(a.threads), "--report", rep,
           "--max-seconds", "1800", "--quiet", "--biases", a.biases]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    gonn_wall = time.perf_counter() - t0
    r = json.load(open(rep))
    rank = a.rank or r["subnetworks"] + 10
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    A, B, f_als, als_secs, iters, trace = softimpute_als(rows[tr], cols[tr], y[tr], (m, n), a.lam, rank, a.thresh, a.max_iter)
    pred = np.einsum("ij,ij->i", A[rows[test]], B[cols[test]])
    rmse_als = float(np.sqrt(np.mean((y[test] - pred) ** 2)))
    hist = r["history"]
    reach = next((h["seconds"] for h in hist if h["objective"] <= f_als), None)
    line = (
        f"| {a.shape} | {a.lam} | {a.biases} | {a.thresh:g} | {r['subnetworks']} | {r['status']} | {r['seconds']:.1f} | {gonn_wall:.1f} | "
        f"{reach if reach is None else round(reach, 1)} | {r['objective']:.6e} | {r['validation']['rmse']:.4f} | "
        f"{rank} | {iters} | {als_secs:.1f} | {f_als:.6e} | {rmse_als:.4f} | "
        f"{'-' if reach is None else round(als_secs / reach, 1)} |"
    )
    header = (
        "| data | lambda | gonn biases | ALS thresh | gonn rank | status | gonn fit s | gonn wall s | gonn s to ALS objective | gonn objective | "
        "gonn RMSE | ALS rank | ALS iters | ALS s | ALS objective | ALS RMSE | ALS s / gonn s to same objective |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    print(header)
    print(line)
    if a.out:
        new = not os.path.exists(a.out)
        with open(a.out, "a") as f:
            if new:
                f.write(header + "\n")
            f.write(line + "\n")


if __name__ == "__main__":
    main()
