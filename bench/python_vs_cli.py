"""Crossing the Python boundary: the same fits from the CLI and from the Python package, in the same run.

Run from the repository root after `cargo build --release` and `pip install ./python`:
    python bench/python_vs_cli.py
Reports, per problem, the fit's own seconds (as the fit measures them) and wall-clock seconds from each side,
the ratio Python / CLI, and whether the objectives agree to 1e-10.
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import gonn

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / "target" / "release" / "gonn"


def problems():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (1000, 1))
    yield "relu 1-D n=1000 lam=0.1", "relu", x, np.sin(2 * x[:, 0]) + 0.1 * rng.normal(size=1000), 0.1
    y = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 300)) + 0.1 * rng.normal(size=(400, 300))
    yield "factor 400x300 lam=4", "factor", None, y, 4.0


def main(repeats: int = 3) -> None:
    print("| problem | CLI fit s | Python fit s | ratio | CLI wall s | Python wall s | objectives agree |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for name, kind, x, y, lam in problems():
            data, report = Path(d) / "data.npz", Path(d) / "r.json"
            np.savez(data, **({"X": x, "Y": y} if x is not None else {"Y": y}))
            cli_fit, cli_wall, py_fit, py_wall = [], [], [], []
            for _ in range(repeats):
                args = [str(BIN), "fit", "--model", kind, "--data", str(data), "--lambda", str(lam), "--threads", "1",
                        "--report", str(report), "--quiet"]
                if kind == "factor":
                    args += ["--norms", "l2,l2"]
                t = time.perf_counter()
                subprocess.run(args, check=True)
                cli_wall.append(time.perf_counter() - t)
                r = json.loads(report.read_text())
                cli_fit.append(r["seconds"])
                t = time.perf_counter()
                if kind == "relu":
                    est = gonn.ReLURegressor(lam=lam, n_jobs=1).fit(x, y)
                else:
                    est = gonn.MatrixFactorization(lam=lam, n_jobs=1).fit(y)
                py_wall.append(time.perf_counter() - t)
                py_fit.append(est.certificate_.seconds)
            agree = abs(est.certificate_.objective - r["objective"]) <= 1e-10 * abs(r["objective"])
            cf, pf = min(cli_fit), min(py_fit)
            print(f"| {name} | {cf:.3f} | {pf:.3f} | {pf / cf:.3f} | {min(cli_wall):.3f} | {min(py_wall):.3f} | {agree} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
