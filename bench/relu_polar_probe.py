"""Writes the input of one ReLU polar at a fitted model, for `examples/relu_bab_polar.rs` (the time and nodes of
one branch-and-bound proof, apart from the fit).

    gonn fit --model relu --data D.npz --lambda L --standardize --out M.model [--loss squared|logistic]
    python3 bench/relu_polar_probe.py M.model D.npz OUT.npz [squared|logistic]
    cargo run --release -p gonn --example relu_bab_polar -- OUT.npz SECONDS TARGET

OUT.npz holds X (the standardized inputs, no bias column) and Q = -(gradient of the loss) / lambda (n x 1).
"""
import json
import struct
import sys

import numpy as np


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for k, v in header.items():
        if k != "__metadata__":
            s, e = v["data_offsets"]
            out[k] = np.frombuffer(raw[8 + n + s : 8 + n + e], dtype="<f8").reshape(v["shape"])
    return out, header["__metadata__"]


def polar_input(model, data, loss="squared"):
    """The standardized inputs (no bias column), the first layer W1 and c = -(loss gradient) / lambda at the model."""
    w, meta = load(model)
    z = np.load(data)
    x, y = z["X"], z["Y"].reshape(-1)
    mean, scale = np.array(json.loads(meta["x_mean"])), np.array(json.loads(meta["x_scale"]))
    xs = (x - mean) / scale
    f = (np.maximum(np.hstack([xs, np.ones((len(x), 1))]) @ w["W1"], 0) @ w["W2"].T).reshape(-1)
    residual = y - f if loss == "squared" else y - 1 / (1 + np.exp(-f))
    return xs, w["W1"], residual / float(meta["lambda"])


def main():
    xs, _, c = polar_input(sys.argv[1], sys.argv[2], sys.argv[4] if len(sys.argv) > 4 else "squared")
    np.savez(sys.argv[3], X=xs, Q=c.reshape(-1, 1))


if __name__ == "__main__":
    main()
