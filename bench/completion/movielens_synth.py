"""MovieLens-shaped synthetic ratings: Zipf-like user and item popularity, ratings 1..5 from a rank-10 model with
user and item biases plus noise, rounded. Writes a MovieLens-style `ratings.csv` (userId,movieId,rating,timestamp)
and the same triplets as `ratings.npz` (rows, cols, values, shape).

    python3 bench/completion/movielens_synth.py --shape 1m --out /tmp/ml1m      # 6,040 x 3,706, 1M ratings
    python3 bench/completion/movielens_synth.py --shape 10m --out /tmp/ml10m    # 69,878 x 10,677, 10M ratings
"""
import argparse
import os

import numpy as np

SHAPES = {"1m": (6040, 3706, 1_000_209), "10m": (69878, 10677, 10_000_054), "100k": (943, 1682, 100_000)}


def generate(m, n, nnz, seed=1, rank=10):
    rng = np.random.default_rng(seed)
    pu = 1.0 / (np.arange(m) + 10.0) ** 0.8
    pi = 1.0 / (np.arange(n) + 10.0) ** 0.8
    pu /= pu.sum()
    pi /= pi.sum()
    keys = np.empty(0, dtype=np.int64)
    while keys.size < nnz:
        k = 2 * (nnz - keys.size) + 1000
        i = rng.choice(m, size=k, p=pu)
        j = rng.choice(n, size=k, p=pi)
        new = i.astype(np.int64) * n + j
        keys = np.concatenate([keys, new])
        _, first = np.unique(keys, return_index=True)
        keys = keys[np.sort(first)]
    keys = keys[:nnz]
    rows, cols = keys // n, keys % n
    # Shuffle the ids so that popularity is not the id order.
    uperm, iperm = rng.permutation(m), rng.permutation(n)
    U = 0.35 * rng.standard_normal((m, rank))
    V = 0.35 * rng.standard_normal((n, rank))
    bu, bi = 0.4 * rng.standard_normal(m), 0.4 * rng.standard_normal(n)
    z = np.einsum("ij,ij->i", U[rows], V[cols])
    y = np.clip(np.round(3.5 + bu[rows] + bi[cols] + z + 0.8 * rng.standard_normal(nnz)), 1, 5)
    return uperm[rows], iperm[cols], y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="1m", choices=sorted(SHAPES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    m, n, nnz = SHAPES[a.shape]
    rows, cols, y = generate(m, n, nnz, a.seed)
    os.makedirs(a.out, exist_ok=True)
    np.savez(os.path.join(a.out, "ratings.npz"), rows=rows, cols=cols, values=y, shape=np.array([m, n]))
    with open(os.path.join(a.out, "ratings.csv"), "w") as f:
        f.write("userId,movieId,rating,timestamp\n")
        ts = 978300760 + np.arange(nnz)
        # ids start at 1, as in MovieLens
        np.savetxt(f, np.column_stack([rows + 1, cols + 1, y, ts]), fmt=["%d", "%d", "%.1f", "%d"], delimiter=",")
    print(f"{m} x {n}, {nnz} ratings written to {a.out}/ratings.csv and ratings.npz")


if __name__ == "__main__":
    main()
