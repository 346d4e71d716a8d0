"""gonn's grow-and-prune fit of parallel `mlp:16` subnetworks on the digits images against PyTorch training the
same objective at a fixed width, for the same wall time, one thread each.

Objective (both): softmax cross-entropy summed over samples + lambda * sum_i ||W1_i||_F ||W2_i||_F, inputs
z-scored (gonn --standardize), first-layer bias as a constant input. PyTorch uses Adam (lr 1e-2, then 1e-3 for
the last third) on the width gonn ended with and on twice that width, full batch.

    cargo build --release && python3 bench/deep_fit_compare.py [SECONDS] [LAMBDA]
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 40.0
LAM = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
torch.set_num_threads(1)
GONN = os.path.join(os.path.dirname(__file__), "..", "target", "release", "gonn")


def standardized():
    d = np.load("data/digits.npz")
    x = d["X"].astype(np.float64)
    sd = x.std(0)
    sd[sd == 0] = 1.0
    return (x - x.mean(0)) / sd, d["Y"].astype(np.int64)


def objective(xa, y, w1, w2, lam):
    h = torch.relu(torch.einsum("nd,rdh->rnh", xa, w1))
    z = torch.einsum("rnh,rhc->nc", h, w2)
    loss = torch.nn.functional.cross_entropy(z, y, reduction="sum")
    reg = (w1.flatten(1).norm(dim=1) * w2.flatten(1).norm(dim=1)).sum()
    return loss + lam * reg


def torch_fit(xa, y, r, seconds, seed=0):
    torch.manual_seed(seed)
    w1 = (torch.randn(r, xa.shape[1], 16, dtype=torch.float64) * 0.1).requires_grad_()
    w2 = (torch.randn(r, 16, 10, dtype=torch.float64) * 0.1).requires_grad_()
    opt = torch.optim.Adam([w1, w2], lr=1e-2)
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        if steps > 0 and time.perf_counter() - start > 2 * seconds / 3:
            for g in opt.param_groups:
                g["lr"] = 1e-3
        opt.zero_grad()
        f = objective(xa, y, w1, w2, LAM)
        f.backward()
        opt.step()
        steps += 1
    with torch.no_grad():
        return float(objective(xa, y, w1, w2, LAM)), steps


def main():
    tmp = tempfile.mkdtemp()
    rep = os.path.join(tmp, "r.json")
    t = time.perf_counter()
    subprocess.run([GONN, "fit", "--model", "mlp:16", "--data", "data/digits.npz", "--loss", "softmax",
                    "--lambda", str(LAM), "--standardize", "--threads", "1", "--max-seconds", str(SECONDS),
                    "--report", rep, "--quiet"], check=True)
    wall = time.perf_counter() - t
    r = json.load(open(rep))
    print(f"lambda = {LAM}, {SECONDS:.0f} s budget, one thread\n")
    print("| method | seconds | subnetworks | objective |")
    print("|---|---|---|---|")
    print(f"| gonn (grow + prune, heuristic polar) | {wall:.1f} | {r['subnetworks']} | {r['objective']:.4f} |")
    x, y = standardized()
    xa = torch.tensor(np.hstack([x, np.ones((x.shape[0], 1))]))
    yt = torch.tensor(y)
    for width in [r["subnetworks"], 2 * r["subnetworks"]]:
        f, steps = torch_fit(xa, yt, width, wall)
        print(f"| PyTorch Adam, fixed width, {steps} steps | {wall:.1f} | {width} | {f:.4f} |")


if __name__ == "__main__":
    main()
