"""Certify a two-layer ReLU network trained with PyTorch, then let gonn find the certified optimum: on 2-D synthetic
data (the polar is enumerated), then on real data, scikit-learn's diabetes restricted to its four features most
correlated with the target (4-D inputs plus bias: the branch and bound proves the polar; about half a minute).

    pip install torch numpy scikit-learn
    cargo build --release
    python3 examples/certify_pytorch.py [K]      (K diabetes features, default 4; 5 takes about 5 minutes)

The network is nn.Sequential(nn.Linear(d, r), nn.ReLU(), nn.Linear(r, 1, bias=False)) trained with Adam on
    1/2 * sum_i (net(x_i) - y_i)^2 + lambda/2 * (||W1||^2 + ||b1||^2 + ||W2||^2),
whose minimum equals gonn's objective 1/2 ||r||^2 + lambda * sum_j ||(w1_j, b1_j)||_2 |w2_j| with the same lambda.
(With nn.MSELoss() (a mean) and an optimizer's weight_decay=wd the objective is 2/n times gonn's with
lambda = n * wd / 2.)

Weights go to gonn as W1 = first.weight.T (d x r), b1 = first.bias (r), W2 = second.weight (1 x r); the bias may also
be the last row of a (d + 1) x r W1.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from sklearn import datasets

GONN = os.path.join(os.path.dirname(__file__), "..", "target", "release", "gonn")
tmp = tempfile.mkdtemp(prefix="gonn-torch-")


def train(X, y, lam, width, steps):
    """Adam on the weight-decay objective, float64; returns the network and its objective."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], width), torch.nn.ReLU(),
                              torch.nn.Linear(width, 1, bias=False)).double()
    Xt, yt = torch.tensor(X), torch.tensor(y).reshape(-1, 1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for step in range(steps):
        opt.zero_grad()
        loss = 0.5 * ((net(Xt) - yt) ** 2).sum() + 0.5 * lam * sum((p**2).sum() for p in net.parameters())
        loss.backward()
        opt.step()
    return net, loss.item()


def certify_then_fit(name, X, y, lam, width, steps, polar_seconds=None):
    data = os.path.join(tmp, f"{name}.npz")
    np.savez(data, X=X, Y=y)
    net, objective = train(X, y, lam, width, steps)
    print(f"\n[{name}] PyTorch (Adam, {steps} steps, width {width}): weight-decay objective {objective:.6f}")
    weights = os.path.join(tmp, f"{name}_torch_net.npz")
    np.savez(weights, W1=net[0].weight.detach().numpy().T, b1=net[0].bias.detach().numpy(),
             W2=net[2].weight.detach().numpy())
    report = os.path.join(tmp, f"{name}_certificate.json")
    budget = [] if polar_seconds is None else ["--polar-seconds", str(polar_seconds)]
    subprocess.run([GONN, "certify", "--model", "relu", "--data", data, "--lambda", str(lam), "--weights", weights,
                    "--report", report, *budget], check=True)
    c = json.load(open(report))
    print(f"gonn on the PyTorch network: status {c['status']}, objective {c['objective']:.6f}, "
          f"proven gap bound {c['gap_bound']:.3e}, polar {c['polar_lower']:.4f}"
          f"{' (> 1: a better unit exists)' if c['polar_lower'] > 1 else ''}, "
          f"{c['seconds']:.1f} s")
    fit = os.path.join(tmp, f"{name}_fit.json")
    subprocess.run([GONN, "fit", "--model", "relu", "--data", data, "--lambda", str(lam), "--report", fit, "--quiet"],
                   check=True)
    f = json.load(open(fit))
    true_gap = c["objective"] - f["objective"]
    print(f"gonn fit from scratch: status {f['status']}, objective {f['objective']:.6f} with {f['subnetworks']} units, "
          f"gap bound {f['gap_bound']:.1e}, {f['seconds']:.1f} s")
    if f["status"] == "certified":
        print(f"the PyTorch network is {true_gap:.3e} above the certified optimum; {c['gap_bound']:.3e} was proven "
              f"before fitting ({c['gap_bound'] / true_gap:.4f} times the true gap)")


# 2-D inputs (plus bias, rank 3): gonn's polar is exact, so its verdict is a proof.
rng = np.random.default_rng(0)
X = rng.standard_normal((150, 2))
y = np.maximum(X[:, 0] - 0.5 * X[:, 1], 0) - np.maximum(X[:, 1] + 0.3, 0) + 0.1 * rng.standard_normal(150)
certify_then_fit("synthetic", X, y, lam=0.05, width=20, steps=3000)

# Real data: diabetes (442 patients), the K features most correlated with disease progression (for K = 4: bmi, s5,
# bp, s4), inputs and target standardized; lambda 10 gives about 8 units.
k = int(sys.argv[1]) if len(sys.argv) > 1 else 4
X, y = datasets.load_diabetes(return_X_y=True)
order = np.argsort([-abs(np.corrcoef(X[:, j], y)[0, 1]) for j in range(X.shape[1])])
X = X[:, order[:k]]
X = (X - X.mean(0)) / X.std(0)
y = (y - y.mean()) / y.std()
# One proof, so it may take longer than a fit's per-iteration default (10 s): on 5 features it needs about a minute.
certify_then_fit(f"diabetes-{k}", X, y, lam=10.0, width=32, steps=5000, polar_seconds=120)
