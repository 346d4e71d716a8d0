#!/usr/bin/env python3
"""Independent checks of a certified ReLU network with several outputs (`--output-norm l2`, e.g. softmax classes).

Given the data, the model (`gonn fit ... --out M.safetensors`) and its report (`--report R.json`):
1. recomputes the objective `loss + lambda sum_i ||u_i|| ||v_i||` in numpy (softmax, squared or logistic loss);
2. searches the polar `max_{||u|| = 1} ||Q^T ([X, 1] u)_+||`, `Q = -grad loss / lambda`, with many random and
   data-row starts of an alternating pattern ascent, and compares the best value found with the report's proven
   `polar_upper` (nothing found may exceed it);
3. trains PyTorch networks (width 50, weight decay `lambda/2 (||U||^2 + ||V||^2)`, whose minimum over balanced
   scalings is the same objective) with L-BFGS from several seeds, and checks that no objective reached is below the
   report's proven `optimum_lower_bound`.

    python3 bench/relu_l2_check.py data/wine.npz wine.safetensors wine.json [--starts 20000] [--torch-seeds 5]
"""
import argparse
import json
import struct
import sys

import numpy as np


def load_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8 : 8 + n])
    base = 8 + n
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[base + s : base + e], dtype="<f8").reshape(v["shape"])
    return out, header["__metadata__"]


def targets(y, loss, m):
    if loss == "softmax":
        y = y.reshape(-1)
        if y.ndim == 1 and m > 1 and np.all(y == np.round(y)):
            t = np.zeros((len(y), m))
            t[np.arange(len(y)), y.astype(int)] = 1.0
            return t
    return y.reshape(len(y), -1).astype(float)


def loss_and_grad(z, t, loss):
    if loss == "softmax":
        zs = z - z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(zs).sum(axis=1, keepdims=True))
        p = np.exp(zs - lse)
        return float(-(t * (zs - lse)).sum()), p - t
    if loss == "logistic":
        return float((np.logaddexp(0, z) - t * z).sum()), 1 / (1 + np.exp(-z)) - t
    r = z - t
    return float(0.5 * (r * r).sum()), r


def polar_search(xa, q, starts, rng):
    """Alternating ascent: v <- Q^T h / ||.||, u <- pattern ascent on c = Q v. Returns the best ||Q^T h||."""
    n, k = xa.shape
    best = 0.0
    cands = [rng.normal(size=k) for _ in range(starts)] + [x for x in xa]
    for u in cands:
        u = u / np.linalg.norm(u)
        val = -1.0
        for _ in range(50):
            h = np.maximum(xa @ u, 0)
            w = q.T @ h
            nw = np.linalg.norm(w)
            if nw == 0 or nw <= val * (1 + 1e-12):
                break
            val = nw
            c = q @ (w / nw)
            # One pattern step: the gradient of c^T (X u)_+ on the current pattern.
            g = xa.T @ (c * (xa @ u > 0))
            ng = np.linalg.norm(g)
            if ng == 0:
                break
            u = g / ng
        best = max(best, val)
    return best


def torch_objective(xa_std, t, loss, lam, width, seed, m):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    x = torch.tensor(xa_std)
    tt = torch.tensor(t)
    u = torch.nn.Parameter(torch.randn(x.shape[1], width, dtype=torch.float64) * 0.5)
    v = torch.nn.Parameter(torch.randn(m, width, dtype=torch.float64) * 0.5)
    opt = torch.optim.LBFGS([u, v], max_iter=5000, tolerance_grad=1e-12, tolerance_change=1e-14,
                            history_size=50, line_search_fn="strong_wolfe")

    def lossf():
        z = torch.relu(x @ u) @ v.T
        if loss == "softmax":
            l = -(tt * torch.log_softmax(z, dim=1)).sum()
        elif loss == "logistic":
            l = (torch.nn.functional.softplus(z) - tt * z).sum()
        else:
            l = 0.5 * ((z - tt) ** 2).sum()
        return l

    def closure():
        opt.zero_grad()
        f = lossf() + 0.5 * lam * ((u ** 2).sum() + (v ** 2).sum())
        f.backward()
        return f

    for _ in range(3):
        opt.step(closure)
    with torch.no_grad():
        un = u.norm(dim=0)
        vn = v.norm(dim=0)
        return float(lossf() + lam * (un * vn).sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("model")
    ap.add_argument("report")
    ap.add_argument("--starts", type=int, default=20000)
    ap.add_argument("--torch-seeds", type=int, default=5)
    ap.add_argument("--width", type=int, default=50)
    a = ap.parse_args()
    w, meta = load_safetensors(a.model)
    rep = json.load(open(a.report))
    d = np.load(a.data)
    x = d["X"].astype(float)
    loss = meta["loss"]
    lam = float(meta["lambda"])
    w1, w2 = w["W1"], w["W2"]
    m = w2.shape[0]
    t = targets(d["Y"], loss, m)
    if "x_mean" in meta:
        x = (x - np.array(json.loads(meta["x_mean"]))) / np.array(json.loads(meta["x_scale"]))
    xa = np.hstack([x, np.ones((len(x), 1))]) if meta.get("bias", "true") == "true" else x
    z = np.maximum(xa @ w1, 0) @ w2.T
    lval, g = loss_and_grad(z, t, loss)
    obj = lval + lam * float((np.linalg.norm(w1, axis=0) * np.linalg.norm(w2, axis=0)).sum())
    print(f"objective: numpy {obj:.12g}, report {rep['objective']:.12g} (relative difference "
          f"{abs(obj - rep['objective']) / abs(obj):.1e})")
    q = -g / lam
    rng = np.random.default_rng(0)
    found = polar_search(xa, q, a.starts, rng)
    up = rep["polar_upper"]
    print(f"polar: best of {a.starts} + {len(xa)} ascents {found:.10f}; report lower {rep['polar_lower']:.10f}, "
          f"proven upper {up:.10f}: {'OK' if found <= up * (1 + 1e-9) else 'VIOLATED'}")
    ok = found <= up * (1 + 1e-9)
    lb = rep.get("optimum_lower_bound")
    if a.torch_seeds > 0 and lb is not None:
        objs = [torch_objective(xa, t, loss, lam, a.width, s, m) for s in range(a.torch_seeds)]
        print(f"PyTorch L-BFGS width {a.width}, {a.torch_seeds} seeds: best objective {min(objs):.10g} "
              f"(worst {max(objs):.10g}); proven lower bound {lb:.10g}, gonn {rep['objective']:.10g}: "
              f"{'OK' if min(objs) >= lb * (1 - 1e-12) else 'VIOLATED'}")
        ok &= min(objs) >= lb * (1 - 1e-12)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
