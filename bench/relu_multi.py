"""Certificates for ReLU networks with several outputs and weight decay on both layers (`--output-norm l2`, the
default; softmax classification with C classes has C outputs): the cover of the output directions (THEORY.md
section 12) on synthetic 1-D, 2-D and 3-D regression with 2-3 outputs and on real classification data.

    cargo build --release && python3 bench/relu_multi.py [--only NAME ...] [--max-seconds S] [--bin PATH]

Prints, per problem, the status, the seconds, the proven relative gap, the units and the polar's method line.
`--bin` runs another build (e.g. an older commit's, for a before/after table).
"""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def regression(d, n, outputs, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, d))
    w, b = rng.normal(size=(d, 4)), 0.3 * rng.normal(size=4)
    y = np.maximum(x @ w + b, 0) @ rng.normal(size=(4, outputs)) + 0.05 * rng.normal(size=(n, outputs))
    return x, y


def real(name):
    from sklearn import datasets

    loader = {"iris": datasets.load_iris, "wine": datasets.load_wine, "digits": datasets.load_digits}[name]
    x, y = loader(return_X_y=True)
    return x, y.astype(float)


# name, data, loss, lambda
PROBLEMS = [
    ("1d-2out-1000", lambda: regression(1, 1000, 2), "squared", 0.1),
    ("1d-3out-1000", lambda: regression(1, 1000, 3), "squared", 0.1),
    ("2d-2out-200", lambda: regression(2, 200, 2), "squared", 0.1),
    ("2d-3out-200", lambda: regression(2, 200, 3), "squared", 0.1),
    ("2d-3out-1000", lambda: regression(2, 1000, 3), "squared", 0.1),
    ("3d-2out-200", lambda: regression(3, 200, 2), "squared", 0.1),
    ("iris", lambda: real("iris"), "softmax", 1.0),
    ("wine", lambda: real("wine"), "softmax", 1.0),
    ("digits", lambda: real("digits"), "softmax", 1.0),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "gonn"))
    ap.add_argument("--only", nargs="*", help="problem names")
    a = ap.parse_args()
    print("| problem | n x d -> outputs | loss, lambda | seconds | status | relative gap | units | polar |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, make, loss, lam in PROBLEMS:
            if a.only and name not in a.only:
                continue
            x, y = make()
            outputs = int(y.max()) + 1 if loss == "softmax" else y.shape[1]
            data, rep = Path(tmp) / "xy.npz", Path(tmp) / "r.json"
            np.savez(data, X=x, Y=y)
            cmd = [a.bin, "fit", "--model", "relu", "--data", str(data), "--loss", loss, "--lambda", str(lam),
                   "--threads", str(a.threads), "--max-seconds", str(a.max_seconds), "--report", str(rep), "--quiet"]
            if loss == "softmax":
                cmd.append("--standardize")
            subprocess.run(cmd, check=True)
            r = json.loads(rep.read_text())
            gap = r.get("relative_gap")
            print(f"| {name} | {x.shape[0]} x {x.shape[1]} -> {outputs} | {loss}, {lam:g} | {r['seconds']:.1f} | "
                  f"{r['status']} | {'-' if gap is None else f'{gap:.2e}'} | {r['subnetworks']} | "
                  f"{r['polar_method']} |", flush=True)


if __name__ == "__main__":
    main()
