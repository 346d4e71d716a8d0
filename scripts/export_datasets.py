"""Export the small classification data sets that scikit-learn ships into data/*.npz (X: n x d, Y: labels).

Run from the repository root: python3 scripts/export_datasets.py  (needs scikit-learn and numpy).
The copies in data/ were made with scikit-learn 1.7.2; see data/README.md for their licenses.
"""
import numpy as np
from sklearn import datasets

SETS = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
    "digits": datasets.load_digits,
}

for name, loader in SETS.items():
    d = loader()
    x = d.data.astype(np.uint8) if name == "digits" else d.data.astype(np.float64)
    y = d.target.astype(np.int64)
    np.savez(f"data/{name}.npz", X=x, Y=y)
    print(f"data/{name}.npz: X {x.shape} {x.dtype}, {len(np.unique(y))} classes")
