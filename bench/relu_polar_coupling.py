"""Does coupling the samples tighten the branch-and-bound relaxation of the ReLU polar (THEORY.md section 11)?

    python3 bench/relu_polar_coupling.py P.npz [SEED]     (P.npz from bench/relu_polar_probe.py; pip install cvxpy)

Along a path of splits (the samples with the largest c_i first, signed as at a point u0: the best of 40,000 random
unit vectors, then two points of lower value), prints at depths 0, 5, 10, 20, 30 the sampled maximum of h over the
node's set and two proven bounds on it, both over the same intervals [l_i, h_i] (the exact support of the node's
cone within the ball, by SOCP):
- chord: the relaxation of gonn's branch and bound (each open sample by its chord, the samples with c_i < 0 exact
  through lambda in [0, 1], the split constraints through beta >= 0), minimized over (lambda, beta);
- quadratic: each chord plus alpha_i (t - l_i)(t - h_i) with 0 <= alpha_i <= min(h_i, -l_i) / (h_i - l_i)^2 (still
  above (t)_+ on the interval), so the bound is a convex quadratic plus linear terms over the ball:
  max_{||u|| <= 1} b^T u + u^T M u <= mu + b^T (mu I - M)^{-1} b / 4 for mu I > M, minimized over
  (alpha, lambda, beta, mu) as an SDP.
Measured 2026-12-05 on the 5-feature, n = 300 polar at a fitted model (polar 1.0012): root 13.72 against 8.26,
depth 10 4.05-4.99 against 3.68-4.39, depth 20 2.14-3.06 against 2.14-2.93, depth 30 1.47-2.26 against 1.37-1.97.
"""
import sys
import warnings

import cvxpy as cp
import numpy as np

warnings.filterwarnings("ignore")


def main():
    z = np.load(sys.argv[1])
    x = np.hstack([z["X"], np.ones((len(z["X"]), 1))])
    c = z["Q"].reshape(-1)
    d = x.shape[1]
    rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    pos, neg = np.where(c > 0)[0], np.where(c < 0)[0]
    units = rng.normal(size=(40000, d))
    units /= np.linalg.norm(units, axis=1, keepdims=True)
    values = np.maximum(x @ units.T, 0).T @ c

    def support(v, splits):
        u = cp.Variable(d)
        return cp.Problem(cp.Maximize(v @ u), [cp.norm(u) <= 1] + [s * x[j] @ u >= 0 for j, s in splits]).solve()

    def bounds(splits):
        split = dict(splits)
        open_pos = [i for i in pos if i not in split]
        active = [i for i in pos if split.get(i) == 1]
        lin = x[active].T @ c[active] if active else np.zeros(d)
        cst, chords = 0.0, []
        for i in open_pos:
            lo, hi = -support(-x[i], splits), support(x[i], splits)
            if hi <= 0:
                continue
            if lo >= 0:
                lin = lin + c[i] * x[i]
                continue
            lin = lin + c[i] * hi / (hi - lo) * x[i]
            cst += c[i] * (-lo * hi / (hi - lo))
            chords.append((i, lo, hi))
        lam = cp.Variable(len(neg))
        beta = cp.Variable(len(splits))
        xs = np.array([s * x[j] for j, s in splits]).reshape(len(splits), d)
        b = lin + x[neg].T @ cp.multiply(c[neg], lam) + (xs.T @ beta if splits else 0)
        base = [lam >= 0, lam <= 1] + ([beta >= 0] if splits else [])
        chord = cp.Problem(cp.Minimize(cst + cp.norm(b)), base).solve()
        if not chords:
            return chord, chord
        idx = np.array([i for i, _, _ in chords])
        lo = np.array([v for _, v, _ in chords])
        hi = np.array([v for _, _, v in chords])
        xi, ci = x[idx], c[idx]
        alpha, mu, t = cp.Variable(len(idx)), cp.Variable(), cp.Variable()
        m = xi.T @ cp.diag(cp.multiply(ci, alpha)) @ xi
        bq = cp.reshape(b - xi.T @ cp.multiply(ci * (lo + hi), alpha), (d, 1), order="C")
        lmi = cp.bmat([[mu * np.eye(d) - m, bq / 2], [bq.T / 2, cp.reshape(t, (1, 1), order="C")]])
        cons = base + [alpha >= 0, alpha <= np.minimum(hi, -lo) / (hi - lo) ** 2, mu >= 0, (lmi + lmi.T) / 2 >> 0]
        quad = cp.Problem(cp.Minimize(cst + (ci * lo * hi) @ alpha + mu + t), cons).solve(solver=cp.SCS, eps=1e-7)
        return chord, quad

    order = pos[np.argsort(-c[pos])]
    for trial in range(3):
        u0 = units[np.argsort(-values)[rng.integers(0, 2000)]] if trial else units[np.argmax(values)]
        splits = []
        for depth in [0, 5, 10, 20, 30]:
            while len(splits) < depth:
                j = order[len(splits)]
                splits.append((j, 1.0 if x[j] @ u0 >= 0 else -1.0))
            inside = np.all([s * (units @ x[j]) >= 0 for j, s in splits], axis=0) if splits else np.ones(len(units), bool)
            top = values[inside].max() if inside.any() else float("nan")
            chord, quad = bounds(splits)
            print(f"path {trial} depth {depth}: sampled max {top:.4f}  chord {chord:.4f}  quadratic {quad:.4f}", flush=True)


if __name__ == "__main__":
    main()
