"""Forward + backward of r parallel deep / convolutional subnetworks: gonn against PyTorch on CPU.

Both run the same networks on the shipped digits images (1797 x 64, scaled to [0, 1]), in float64 on one thread,
and report the best of REPEATS runs of one forward pass plus the backward pass of <G, Phi(W)> for a fixed G.
PyTorch evaluates the parallel subnetworks the way one would write them there: the first layer as one wide
Linear/Conv2d, deeper fully connected layers as torch.bmm over the r subnetworks, deeper convolutions as grouped
Conv2d (groups = r), and the output layer as one bmm summed over r.

    python3 bench/deep_benchmark.py [REPEATS]      (needs numpy and torch; builds gonn's example first)
"""

import json
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
torch.set_num_threads(1)
torch.manual_seed(0)


def parse(spec):
    kind, rest = spec.split(":")
    stages = []
    for tok in rest.split(","):
        if kind == "mlp":
            stages.append(("dense", int(tok)))
        elif tok.startswith("pool"):
            stages.append(("pool", int(tok[4:])))
        elif tok.startswith("c"):
            c, k = tok[1:].split("k")
            stages.append(("conv", int(c), int(k)))
        else:
            raise ValueError(tok)
    return kind, stages


def torch_step(spec, r, x, g):
    """One forward + backward of r parallel subnetworks; returns a closure."""
    kind, stages = parse(spec)
    n = x.shape[0]
    dt = torch.float64
    params = []

    def param(*shape):
        p = torch.randn(*shape, dtype=dt, requires_grad=True)
        params.append(p)
        return p

    if kind == "mlp":
        xa = torch.cat([x, torch.ones(n, 1, dtype=dt)], 1)
        ws = [param(xa.shape[1], r * stages[0][1])]
        prev = stages[0][1]
        for _, h in stages[1:]:
            ws.append(param(r, prev, h))
            prev = h
        wout = param(r, prev, 10)

        def forward():
            h = torch.relu(xa @ ws[0]).view(n, r, -1).transpose(0, 1)  # (r, n, h1)
            for w in ws[1:]:
                h = torch.relu(torch.bmm(h, w))
            return torch.bmm(h, wout).sum(0)

    else:
        img = x.view(n, 1, 8, 8)
        convs, ops = [], []
        cin, side, first = 1, 8, True
        for st in stages:
            if st[0] == "conv":
                _, c, k = st
                if first:
                    convs.append((param(r * c, 1, k, k), param(r * c), 1))
                else:
                    convs.append((param(r * c, cin, k, k), None, r))
                ops.append(("conv", len(convs) - 1))
                cin, side, first = c, side + 1 - k, False
            else:
                ops.append(("pool", st[1]))
                side //= st[1]
        feat = cin * side * side
        wout = param(r, feat, 10)

        def forward():
            h = img
            for op, a in ops:
                if op == "conv":
                    w, b, groups = convs[a]
                    h = torch.relu(F.conv2d(h, w, b, groups=groups))
                else:
                    h = F.max_pool2d(h, a)
            h = h.reshape(n, r, feat).transpose(0, 1)  # (r, n, feat)
            return torch.bmm(h, wout).sum(0)

    def step():
        for p in params:
            p.grad = None
        out = forward()
        (out * g).sum().backward()

    return step


def main():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "gonn", "--example", "deep_speed"], check=True)
    out = subprocess.run(
        ["cargo", "run", "--release", "-q", "-p", "gonn", "--example", "deep_speed", "--", str(REPEATS)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    d = np.load("data/digits.npz")
    x = torch.tensor(d["X"] / 16.0, dtype=torch.float64)
    g = torch.randn(x.shape[0], 10, dtype=torch.float64)
    print(f"torch {torch.__version__}, 1 thread, float64, best of {REPEATS}\n")
    print("| subnetwork | r | gonn ms | gonn GFLOP/s | PyTorch ms | PyTorch / gonn |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        step = torch_step(row["model"], row["r"], x, g)
        step()
        best = float("inf")
        for _ in range(REPEATS):
            t = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - t)
        ms = best * 1e3
        print(f"| `{row['model']}` | {row['r']} | {row['ms']:.2f} | {row['gflops']:.1f} | {ms:.2f} | {ms / row['ms']:.2f} |")


if __name__ == "__main__":
    main()
