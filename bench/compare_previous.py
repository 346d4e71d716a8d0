"""The benchmarks of this binary against a previous build, interleaved in the same run (this machine is noisy):
examples/speed (certified 1000 x 1000 factorization vs one SVD), examples/deep_speed (deep forward/backward),
and the ReLU benchmark's gonn fits (1-D sine and 2-D two-ReLU data, n = 200, lambda 0.05, one thread), with
their objectives and outer-iteration counts, which must not change.

    git worktree add /tmp/old <commit> && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build --release --examples --bins)
    cargo build --release --examples --bins
    python3 bench/compare_previous.py /tmp/old-target/release [REPEATS]
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

NEW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release")
OLD = sys.argv[1]
REPEATS = int(sys.argv[2]) if len(sys.argv) > 2 else 2
TMP = tempfile.mkdtemp(prefix="gonn-compare-")


def speed(root):
    out = subprocess.run([os.path.join(root, "examples", "speed"), "1"], capture_output=True, text=True).stdout
    fit = float(re.search(r"certified fit .*: ([0-9.]+) s", out).group(1))
    outer = int(re.search(r"(\d+) outer", out).group(1))
    return {"factor 1000x1000 certified fit (s)": fit}, {"factor outer": outer}


def deep(root):
    out = subprocess.run([os.path.join(root, "examples", "deep_speed"), "1"], capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {f"deep {r['model']} r={r['r']} fwd+bwd (s)": r["ms"] / 1000 for r in rows}, {}


def relu_data():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(-3, 3, 200))
    np.savez(os.path.join(TMP, "sine.npz"), X=t.reshape(-1, 1), Y=np.sin(2 * t) + 0.1 * rng.standard_normal(200))
    X = rng.standard_normal((200, 2))
    y = np.maximum(X[:, 0] - 0.5 * X[:, 1], 0) - np.maximum(X[:, 1] + 0.3, 0) + 0.1 * rng.standard_normal(200)
    np.savez(os.path.join(TMP, "two.npz"), X=X, Y=y)


def relu(root):
    times, same = {}, {}
    for name in ["sine", "two"]:
        rep = os.path.join(TMP, f"{name}.json")
        t = time.perf_counter()
        subprocess.run([os.path.join(root, "gonn"), "fit", "--model", "relu", "--data", os.path.join(TMP, f"{name}.npz"),
                        "--lambda", "0.05", "--threads", "1", "--report", rep, "--quiet"], check=True)
        times[f"relu {name} n=200 fit (s)"] = time.perf_counter() - t
        r = json.load(open(rep))
        same[f"relu {name} objective"] = r["objective"]
        same[f"relu {name} outer"] = r["outer_iterations"]
        same[f"relu {name} status"] = r["status"]
    return times, same


def main():
    relu_data()
    runs = {"old": [], "new": []}
    invariants = {"old": {}, "new": {}}
    for _ in range(REPEATS):
        for label, root in [("old", OLD), ("new", NEW)]:
            merged = {}
            for bench in (speed, deep, relu):
                t, s = bench(root)
                merged.update(t)
                invariants[label].update(s)
            runs[label].append(merged)
    print("| benchmark | previous (best) | this (best) | ratio this / previous |")
    print("|---|---|---|---|")
    logs = []
    for key in runs["old"][0]:
        a = min(r[key] for r in runs["old"])
        b = min(r[key] for r in runs["new"])
        logs.append(math.log(b / a))
        print(f"| {key} | {a:.4f} | {b:.4f} | {b / a:.2f} |")
    print(f"\ngeometric mean of the ratios: {math.exp(sum(logs) / len(logs)):.2f} ({REPEATS} interleaved repeats)")
    print("\n| invariant | previous | this |")
    print("|---|---|---|")
    for key in invariants["old"]:
        print(f"| {key} | {invariants['old'][key]} | {invariants['new'][key]} |")


main()
