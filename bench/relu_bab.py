"""Certificates for ReLU networks with more than two input features (issue 11): gonn's branch-and-bound polar on
synthetic 3-, 4- and 5-feature data and on real tabular data.

    cargo build --release && python3 bench/relu_bab.py [--only NAME ...] [--max-seconds S] [--polar-seconds P]
        [--threads T] [--bin PATH]

Prints, per problem, the status, the seconds, the relative gap proven at the end, the number of units and the
polar's method line (nodes explored and left open). Real data: scikit-learn's diabetes (squared loss; all 10
features, or diabetes-K: the K features most correlated with the target), wine (class 0 against the rest) and
breast_cancer (logistic loss), standardized by gonn (--standardize).
"""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / "target" / "release" / "gonn"


def synthetic(d, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w, b = rng.normal(size=(d, 3)), 0.5 * rng.normal(size=3)
    y = np.maximum(x @ w + b, 0) @ rng.normal(size=3) + 0.1 * rng.normal(size=n)
    return x, y


def real(name):
    from sklearn import datasets

    if name.startswith("diabetes"):
        x, y = datasets.load_diabetes(return_X_y=True)
        if "-" in name:
            # diabetes-K: the K features most correlated with the target.
            k = int(name.split("-")[1])
            x = x[:, np.argsort([-abs(np.corrcoef(x[:, j], y)[0, 1]) for j in range(x.shape[1])])[:k]]
        return x, (y - y.mean()) / y.std()
    if name == "wine":
        x, y = datasets.load_wine(return_X_y=True)
        return x, (y == 0).astype(float)
    x, y = datasets.load_breast_cancer(return_X_y=True)
    return x, y.astype(float)


# name, data, loss, lambda, time limit factor (of --max-seconds)
PROBLEMS = [
    ("3feat-300", lambda: synthetic(3, 300), "squared", 1.0, 1),
    ("4feat-300", lambda: synthetic(4, 300), "squared", 1.0, 1),
    ("4feat-500", lambda: synthetic(4, 500), "squared", 1.0, 1),
    ("5feat-300", lambda: synthetic(5, 300), "squared", 1.0, 1),
    ("3feat-500", lambda: synthetic(3, 500), "squared", 1.0, 1),
    ("5feat-500", lambda: synthetic(5, 500), "squared", 1.0, 1),
    ("diabetes", lambda: real("diabetes"), "squared", 10.0, 2),
    ("diabetes-4", lambda: real("diabetes-4"), "squared", 10.0, 1),
    ("diabetes-5", lambda: real("diabetes-5"), "squared", 10.0, 1),
    ("diabetes-6", lambda: real("diabetes-6"), "squared", 10.0, 1),
    ("wine", lambda: real("wine"), "logistic", 1.0, 2),
    ("breast_cancer", lambda: real("breast_cancer"), "logistic", 1.0, 2),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--polar-seconds", type=float, default=10)
    ap.add_argument("--polar", default="bab")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", help="problem names")
    ap.add_argument("--bin", default=str(BIN), help="the gonn binary (default: this checkout's release build)")
    a = ap.parse_args()
    print("| problem | n x d | loss, lambda | seconds | status | relative gap | units | polar |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, make, loss, lam, factor in PROBLEMS:
            if a.only and name not in a.only:
                continue
            x, y = make()
            data, rep = Path(tmp) / "xy.npz", Path(tmp) / "r.json"
            np.savez(data, X=x, Y=y)
            subprocess.run([a.bin, "fit", "--model", "relu", "--data", str(data), "--loss", loss, "--lambda",
                            str(lam), "--standardize", "--polar", a.polar, "--polar-seconds", str(a.polar_seconds),
                            "--threads", str(a.threads), "--max-seconds", str(a.max_seconds * factor), "--report", str(rep),
                            "--quiet"], check=True)
            r = json.loads(rep.read_text())
            c = r.get("certificate", r)
            gap = c.get("relative_gap")
            print(f"| {name} | {x.shape[0]} x {x.shape[1]} | {loss}, {lam:g} | {r['seconds']:.1f} | {c['status']} | "
                  f"{'-' if gap is None else f'{gap:.2e}'} | {c['subnetworks']} | {c['polar_method']} |", flush=True)


if __name__ == "__main__":
    main()
