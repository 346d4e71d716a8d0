"""Certificates for two-layer ReLU networks trained elsewhere: a live PyTorch module or numpy weights."""

from __future__ import annotations

import json
from typing import Any, Optional, Tuple

import numpy as np

from . import _gonn
from ._certificate import Certificate
from ._estimators import _as_2d


def _torch_weights(model: Any) -> Tuple[np.ndarray, Optional[np.ndarray], np.ndarray]:
    """``(W1 (d x r), b1 (r) or None, W2 (C x r))`` of ``Sequential(Linear(d, r), ReLU(), Linear(r, C, bias=False))``."""
    import torch  # noqa: F401  (only to fail clearly when torch is absent)

    layers = list(model.children()) if hasattr(model, "children") else []
    names = [type(m).__name__ for m in layers]
    if names != ["Linear", "ReLU", "Linear"]:
        raise ValueError(
            "gonn.certify takes torch.nn.Sequential(Linear(d, r), ReLU(), Linear(r, C, bias=False)); got "
            f"Sequential({', '.join(names) or type(model).__name__})"
        )
    first, last = layers[0], layers[2]
    if last.bias is not None:
        raise ValueError(
            "the last Linear has a bias (PyTorch's default): an output offset this model does not have; build it "
            "with Linear(r, C, bias=False)"
        )
    as_np = lambda t: t.detach().cpu().double().numpy()  # noqa: E731
    w1 = as_np(first.weight).T
    b1 = None if first.bias is None else as_np(first.bias)
    return w1, b1, as_np(last.weight)


def certify(
    model: Any,
    X: Any,
    y: Any,
    lam: Optional[float] = None,
    weight_decay: Optional[float] = None,
    loss: str = "squared",
    tol: float = 1e-6,
    n_jobs: Optional[int] = None,
    polar_seconds: Optional[float] = None,
) -> Certificate:
    """The optimality certificate of a two-layer ReLU network trained with any tool, without changing it.

    Parameters
    ----------
    model : torch.nn.Sequential or tuple
        ``Sequential(Linear(d, r), ReLU(), Linear(r, C, bias=False))``, or numpy weights ``(W1, W2)`` with ``W1``
        of shape ``(d, r)`` (no bias) or ``(d + 1, r)`` (bias as the last row) and ``W2`` of shape ``(C, r)``, or
        ``(W1, b1, W2)``.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, C)
        Targets (squared loss) or 0/1 labels (logistic).
    lam : float, optional
        gonn's ``lambda`` in ``sum_i loss_i + lam * sum_j ||(w1_j, b1_j)|| ||w2_j||``.
    weight_decay : float, optional
        Instead of ``lam``: PyTorch's (coupled, SGD or Adam) ``weight_decay`` used with a mean-reduced loss;
        converted to ``lam = n * C * weight_decay / 2`` for ``MSELoss`` and ``lam = n * C * weight_decay`` for
        ``BCEWithLogitsLoss`` (``n`` samples, ``C`` outputs). The conversion is shown in the certificate's summary.
    loss : {"squared", "logistic"}, default="squared"
    tol : float, default=1e-6
    n_jobs : int or None, default=None
    polar_seconds : float or None, default=None
        Time for the branch-and-bound polar (more than three input features, or past the enumeration limits);
        None: 10 s. More time gives a tighter proven gap.

    Returns
    -------
    Certificate
        With ``improving_subnetwork`` when the network is not optimal.
    """
    x = _as_2d(X, "X")
    yy = _as_2d(np.asarray(y, dtype=np.float64), "y")
    if yy.shape[0] != x.shape[0]:
        raise ValueError(f"X has {x.shape[0]} samples but y has {yy.shape[0]}")
    if isinstance(model, (tuple, list)):
        if len(model) == 2:
            w1, w2 = (np.asarray(m, dtype=np.float64) for m in model)
            b1 = None
        elif len(model) == 3:
            w1, b1, w2 = (np.asarray(m, dtype=np.float64) for m in model)
        else:
            raise ValueError("numpy weights are (W1, W2) or (W1, b1, W2)")
    else:
        w1, b1, w2 = _torch_weights(model)
    n, d = x.shape
    if w1.ndim != 2 or w2.ndim != 2:
        raise ValueError("W1 and W2 must be 2-D")
    r = w1.shape[1]
    if b1 is not None:
        w1 = np.vstack([w1, np.asarray(b1, dtype=np.float64).reshape(1, -1)])
    if w1.shape == (d, r):
        w1 = np.vstack([w1, np.zeros((1, r))])
    if w1.shape != (d + 1, r):
        raise ValueError(f"W1 is {w1.shape[0]} x {w1.shape[1]}; for {d} features it must be {d} x r or {d + 1} x r")
    if w2.shape[1] != r or w2.shape[0] != yy.shape[1]:
        raise ValueError(f"W2 is {w2.shape[0]} x {w2.shape[1]}; it must be {yy.shape[1]} x {r} (outputs x hidden units)")
    notes = []
    if (lam is None) == (weight_decay is None):
        raise ValueError("give exactly one of lam and weight_decay")
    if weight_decay is not None:
        c = yy.shape[1]
        factor = {"squared": 0.5, "logistic": 1.0}.get(loss)
        if factor is None:
            raise ValueError(f"weight_decay conversion is defined for squared and logistic loss, not {loss!r}")
        lam = factor * n * c * float(weight_decay)
        name = "MSELoss" if loss == "squared" else "BCEWithLogitsLoss"
        notes.append(
            f"lambda = {lam:.6g}: weight_decay {weight_decay:g} with {name} (mean over {n} x {c} entries) is "
            f"lambda = {'n * C * wd / 2' if loss == 'squared' else 'n * C * wd'} in gonn's summed objective"
        )
    spec = json.dumps({"model": "relu", "bias": True, "output_norm": "l2", "polar": "auto"})
    text, summary = _gonn.certify(
        spec,
        x,
        yy,
        [np.ascontiguousarray(w1), np.ascontiguousarray(w2)],
        loss=loss,
        lam=float(lam),  # type: ignore[arg-type]
        tol=float(tol),
        threads=int(n_jobs or 0),
        polar_seconds=None if polar_seconds is None else float(polar_seconds),
    )
    return Certificate(json.loads(text), summary, {"notes": notes})

