#!/usr/bin/env python3
"""Matrix completion: gonn against SoftImpute (fancyimpute) on the same objective, measured in the same run.

Problem: a 1000 x 1000 rank-10 matrix plus noise, 30 % of entries observed, objective
    1/2 * sum_observed (Y - Z)^2 + lambda * ||Z||_*,   lambda = 0.1 * sigma_max(P_Omega(Y)).
SoftImpute (Mazumder, Hastie, Tibshirani) solves exactly this problem by iterated singular-value thresholding.

Setup:  pip install "fancyimpute==0.7.0" "scikit-learn<1.8" numpy
Run:    cargo build --release && python3 bench/softimpute.py [--threads 2] [--size 1000]
(On machines that set OPENBLAS_CORETYPE, run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` for numpy's
fastest kernels.)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--size", type=int, default=1000)
parser.add_argument("--rank", type=int, default=10)
parser.add_argument("--observed", type=float, default=0.3)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import numpy as np  # noqa: E402  (after the thread pinning)

try:
    from fancyimpute import SoftImpute
except ImportError as e:  # pragma: no cover
    sys.exit(f"fancyimpute is needed: pip install 'fancyimpute==0.7.0' 'scikit-learn<1.8' ({e})")

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
gonn = os.path.join(root, "target", "release", "gonn")
if not os.path.exists(gonn):
    sys.exit("build gonn first: cargo build --release")

rng = np.random.default_rng(args.seed)
m = n = args.size
a = rng.standard_normal((m, args.rank))
b = rng.standard_normal((n, args.rank))
truth = a @ b.T / np.sqrt(args.rank)
y = truth + 0.1 * rng.standard_normal((m, n))
mask = (rng.random((m, n)) < args.observed).astype(np.float64)
lam = float(0.1 * np.linalg.svd(y * mask, compute_uv=False)[0])


def objective(z):
    r = (y - z) * mask
    return 0.5 * np.sum(r * r) + lam * np.linalg.svd(z, compute_uv=False).sum()


with tempfile.TemporaryDirectory() as d:
    data = os.path.join(d, "data.npz")
    np.savez(data, Y=y, mask=mask)
    report = os.path.join(d, "report.json")
    cmd = [gonn, "fit", "--data", data, "--lambda", repr(lam), "--tol", "1e-6", "--threads", str(args.threads),
           "--report", report, "--quiet"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    t_gonn = time.perf_counter() - t0
    rep = json.load(open(report))

x = y.copy()
x[mask == 0] = np.nan
t0 = time.perf_counter()
z_si = SoftImpute(shrinkage_value=lam, init_fill_method="zero", verbose=False).fit_transform(x)
t_si = time.perf_counter() - t0
f_si = objective(z_si)
f_gonn = rep["objective"]
print(f"problem: {m}x{n}, rank {args.rank}, {args.observed:.0%} observed, lambda = {lam:.4f}, threads = {args.threads}")
print(f"SoftImpute (fancyimpute): objective {f_si:.8e}  time {t_si:7.3f} s")
print(f"gonn fit               : objective {f_gonn:.8e}  time {t_gonn:7.3f} s  status {rep['status']}, "
      f"rank {rep['subnetworks']}, relative gap bound {rep['relative_gap']:.1e}, polar upper {rep['polar_upper']:.8f}")
print(f"gonn objective - SoftImpute objective: {f_gonn - f_si:+.3e} (negative: gonn is lower)")
reach = next((h["seconds"] for h in rep["history"] if h["objective"] <= f_si), None)
if reach is not None:
    print(f"gonn reached SoftImpute's objective after {reach:.3f} s of fitting (in-process clock): "
          f"{t_si / reach:.1f}x faster")
print(f"speed-up (SoftImpute time / gonn time, gonn including process start and file I/O): {t_si / t_gonn:.1f}x")
