"""The Shor semidefinite relaxation of the scalar ReLU polar at a fitted model (issue 11: does coupling the
samples at the root close what the per-sample relaxation of the branch and bound cannot?).

    pip install cvxpy numpy
    gonn fit --model relu --data D.npz --lambda L --standardize --polar bab --out M.model [--loss squared]
    python3 bench/relu_polar_sdp.py M.model D.npz

Squared loss only (c = residual / lambda). The polar is max_{||u|| <= 1} sum_i c_i (x_i^T u)_+ over the
standardized inputs plus the bias column. Lifting P = [1, u, z] [1, u, z]^T over the samples with c_i > 0
(z_i = (x_i^T u)_+: z >= 0, z >= X u, z_i^2 = z_i x_i^T u), tr U <= 1, and keeping the samples with c_i < 0 exactly
(z_i >= max(0, x_i^T u) at a negative weight) gives an upper bound on the polar. Measured 2026-12-04 on diabetes
(lambda 10, the 22-unit bounded fit): 9.02 (SCS, 149 s), against 17.9 for the branch and bound's root and 6.7 after
20,000 of its nodes; the polar itself is about 1.
"""
import sys
import time

import cvxpy as cp
import numpy as np
from relu_polar_probe import polar_input


def main():
    xs, w1, c = polar_input(sys.argv[1], sys.argv[2])
    xa = np.hstack([xs, np.ones((len(xs), 1))])
    d = xa.shape[1]
    pos, neg = c > 0, c < 0
    xp, cpos, xn, cneg = xa[pos], c[pos], xa[neg], c[neg]
    m = 1 + d + len(cpos)
    p = cp.Variable((m, m), PSD=True)
    u, z = p[0, 1 : 1 + d], p[0, 1 + d :]
    uu, uz, zz = p[1 : 1 + d, 1 : 1 + d], p[1 : 1 + d, 1 + d :], p[1 + d :, 1 + d :]
    zn = cp.Variable(len(cneg))
    cons = [p[0, 0] == 1, cp.trace(uu) <= 1, z >= 0, z >= xp @ u, zn >= 0, zn >= xn @ u,
            cp.diag(zz) == cp.sum(cp.multiply(xp.T, uz), axis=0)]
    t = time.time()
    value = cp.Problem(cp.Maximize(cpos @ z + cneg @ zn), cons).solve(solver=cp.SCS, eps=1e-6, max_iters=20000)
    best = max(c @ np.maximum(xa @ (r / np.linalg.norm(r)), 0) for r in w1.T)
    print(f"Shor relaxation of the polar: {value:.4f} ({time.time() - t:.0f} s); best unit of the model: {best:.4f}")


if __name__ == "__main__":
    main()
