"""Certify a two-layer ReLU network trained with PyTorch, then let gonn find the certified optimum.

    pip install torch numpy
    cargo build --release
    python3 examples/certify_pytorch.py

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
import tempfile

import numpy as np
import torch

GONN = os.path.join(os.path.dirname(__file__), "..", "target", "release", "gonn")
tmp = tempfile.mkdtemp(prefix="gonn-torch-")
lam = 0.05

# 2-D inputs (plus bias, rank 3): gonn's polar is exact, so its verdict is a proof.
rng = np.random.default_rng(0)
X = rng.standard_normal((150, 2))
y = np.maximum(X[:, 0] - 0.5 * X[:, 1], 0) - np.maximum(X[:, 1] + 0.3, 0) + 0.1 * rng.standard_normal(150)
data = os.path.join(tmp, "train.npz")
np.savez(data, X=X, Y=y)

torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(2, 20), torch.nn.ReLU(), torch.nn.Linear(20, 1, bias=False)).double()
Xt, yt = torch.tensor(X), torch.tensor(y).reshape(-1, 1)
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
for step in range(3000):
    opt.zero_grad()
    loss = 0.5 * ((net(Xt) - yt) ** 2).sum() + 0.5 * lam * sum((p**2).sum() for p in net.parameters())
    loss.backward()
    opt.step()
print(f"PyTorch (Adam, 3000 steps, width 20): weight-decay objective {loss.item():.6f}")

weights = os.path.join(tmp, "torch_net.npz")
np.savez(weights, W1=net[0].weight.detach().numpy().T, b1=net[0].bias.detach().numpy(),
         W2=net[2].weight.detach().numpy())
report = os.path.join(tmp, "certificate.json")
subprocess.run([GONN, "certify", "--model", "relu", "--data", data, "--lambda", str(lam), "--weights", weights,
                "--report", report], check=True)
c = json.load(open(report))
print(f"\ngonn on the PyTorch network: status {c['status']}, objective {c['objective']:.6f}, "
      f"proven gap bound {c['gap_bound']:.3e}, polar {c['polar_lower']:.4f} (> 1: a better unit exists)")

fit = os.path.join(tmp, "fit.json")
subprocess.run([GONN, "fit", "--model", "relu", "--data", data, "--lambda", str(lam), "--report", fit, "--quiet"],
               check=True)
f = json.load(open(fit))
print(f"gonn fit from scratch: status {f['status']}, objective {f['objective']:.6f} with {f['subnetworks']} units, "
      f"gap bound {f['gap_bound']:.1e}; the PyTorch network is {c['objective'] - f['objective']:.3e} above it "
      f"(at most {c['gap_bound']:.3e} was proven before fitting)")
