"""Certified ReLU fits as n grows (issue 10's table): 1-D sine, 2-D and 3-D two-ReLU data, lambda 0.1, one thread.

    cargo build --release && python3 bench/relu_scale.py [--max-seconds 120] [--only 1d|2d|3d] [--loss logistic]

Prints, per problem, gonn's own fit seconds, the status and the relative gap reached, and the time ratio per
doubling of n between consecutive 1-D sizes. With `--loss logistic` the targets are the labels `y > median(y)`.
"""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / "target" / "release" / "gonn"


def one_d(n):
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (n, 1))
    return x, np.sin(2 * x[:, 0]) + 0.1 * rng.normal(size=n)


def two_d(n):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (n, 2))
    y = np.maximum(x @ [1.0, -1.0] + 0.2, 0) - np.maximum(x @ [0.5, 1.0] - 0.3, 0) + 0.1 * rng.normal(size=n)
    return x, y


def three_d(n):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (n, 3))
    y = (np.maximum(x @ [1.0, -1.0, 0.5] + 0.2, 0) - np.maximum(x @ [0.5, 1.0, -1.0] - 0.3, 0)
         + 0.1 * rng.normal(size=n))
    return x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--only", choices=["1d", "2d", "3d"], help="one input dimension only")
    ap.add_argument("--loss", choices=["squared", "logistic"], default="squared")
    ap.add_argument("--sizes", help="comma-separated sizes (default: the issue's)")
    ap.add_argument("--bin", default=str(BIN), help="the gonn binary (default: this checkout's release build)")
    a = ap.parse_args()
    rows, prev = [], None
    print("| inputs | n | seconds | status | relative gap | ratio per doubling |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        problems = [("1d", "1-D + bias", one_d, [1000, 10000, 100000]), ("2d", "2-D + bias", two_d, [1000, 10000]),
                    ("3d", "3-D + bias", three_d, [100, 200, 300])]
        for key, name, make, sizes in problems:
            if a.only and key != a.only:
                continue
            prev = None
            for n in ([int(v) for v in a.sizes.split(",")] if a.sizes else sizes):
                x, y = make(n)
                if a.loss == "logistic":
                    y = (y > np.median(y)).astype(float)
                data, rep = Path(d) / "xy.npz", Path(d) / "r.json"
                np.savez(data, X=x, Y=y)
                # --polar exact: auto stops enumerating 3-D inputs above 600 samples.
                subprocess.run([a.bin, "fit", "--model", "relu", "--data", str(data), "--lambda", "0.1",
                                "--polar", "exact", "--loss", a.loss, "--threads", "1", "--max-seconds", str(a.max_seconds), "--report", str(rep),
                                "--quiet"], check=True)
                r = json.loads(rep.read_text())
                ratio = "" if prev is None else f"{(r['seconds'] / prev[1]) ** (1 / np.log2(n / prev[0])):.2f}"
                print(f"| {name} | {n} | {r['seconds']:.2f} | {r['status']} | {r['relative_gap']:.2e} | {ratio} |")
                prev = (n, r["seconds"])


if __name__ == "__main__":
    main()
