"""scikit-learn style estimators over gonn's compiled core."""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from . import _gonn
from ._certificate import Certificate

try:  # scikit-learn is optional: without it the estimators still work, with a minimal parameter API.
    from sklearn.base import BaseEstimator as _Base, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets as _check_targets
    from sklearn.utils.validation import check_is_fitted as _check_is_fitted
    from sklearn.utils.validation import column_or_1d as _column_or_1d
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    import inspect

    class _Base:  # type: ignore[no-redef]
        @classmethod
        def _get_param_names(cls) -> List[str]:
            sig = inspect.signature(cls.__init__)
            return [p for p in sig.parameters if p != "self"]

        def get_params(self, deep: bool = True) -> Dict[str, Any]:
            return {k: getattr(self, k) for k in self._get_param_names()}

        def set_params(self, **params: Any) -> "_Base":
            for k, v in params.items():
                if k not in self._get_param_names():
                    raise ValueError(f"invalid parameter {k!r} for {type(self).__name__}")
                setattr(self, k, v)
            return self

    class ClassifierMixin:  # type: ignore[no-redef]
        _estimator_type = "classifier"

    class RegressorMixin:  # type: ignore[no-redef]
        _estimator_type = "regressor"

    def _check_is_fitted(est: Any, attributes: Any = None) -> None:
        if not hasattr(est, "model_"):
            raise AttributeError(f"This {type(est).__name__} instance is not fitted yet: call fit first.")

    _validate_data = None  # type: ignore[assignment]

    def _check_targets(y: Any) -> None:
        pass

    def _column_or_1d(y: Any, warn: bool = False) -> np.ndarray:
        return np.asarray(y).reshape(-1)


def _as_2d(a: Any, name: str) -> np.ndarray:
    """A float64, C-ordered 2-D copy-or-view of `a` (pandas DataFrames and float32 are converted once)."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (got {arr.ndim} dimensions)")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite entries (NaN or infinity)")
    return np.ascontiguousarray(arr)


def _check_X(X: Any, est: Any, reset: bool) -> np.ndarray:
    if _validate_data is not None:
        return np.ascontiguousarray(_validate_data(est, X, dtype=np.float64, reset=reset))
    if hasattr(X, "columns") and reset:
        est.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
    elif reset and hasattr(est, "feature_names_in_"):
        del est.feature_names_in_
    x = _as_2d(X, "X")
    if reset:
        est.n_features_in_ = x.shape[1]
    elif x.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {x.shape[1]} features, but {type(est).__name__} is expecting {est.n_features_in_} features as input"
        )
    return x


def _limits(max_outer: Optional[int], max_seconds: Optional[float]) -> Dict[str, Any]:
    return {
        "max_outer": 500 if max_outer is None else int(max_outer),
        "max_seconds": 600.0 if max_seconds is None else float(max_seconds),
    }


def _seed(random_state: Any) -> int:
    if random_state is None:
        return 0
    if isinstance(random_state, (int, np.integer)):
        return int(random_state) & 0xFFFFFFFFFFFFFFFF
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    raise ValueError(f"random_state must be None, an int or a numpy random generator, not {random_state!r}")


class _GonnModel(_Base):
    """Shared fitting, certificate and pickling of every estimator."""

    def _spec(self) -> Dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_common(self) -> None:
        lam = self.lam
        if not isinstance(lam, (int, float, np.floating, np.integer)) or not math.isfinite(lam) or lam <= 0:
            raise ValueError(f"invalid parameter `lambda`: {lam} (must be positive and finite)")

    def _fit_core(self, y: np.ndarray, x: Optional[np.ndarray], loss: str, **kw: Any) -> "_GonnModel":
        self._check_common()
        init = kw.pop("init", None)
        model = _gonn.fit(
            json.dumps(self._spec()),
            y,
            x=x,
            loss=loss,
            lam=float(self.lam),
            tol=float(self.tol),
            seed=_seed(self.random_state),
            threads=int(getattr(self, "n_jobs", None) or 0),
            polar_restarts=int(getattr(self, "polar_restarts", 8)),
            polar_seconds=getattr(self, "polar_seconds", None),
            init_width=int(getattr(self, "init_width", 0)),
            verbose=int(self.verbose),
            init=init,
            **_limits(self.max_outer, self.max_seconds),
            **kw,
        )
        self._set_fitted(model)
        return self

    def _set_fitted(self, model: Any) -> None:
        self.model_ = model
        self.history_ = json.loads(model.history_json())
        self.n_subnetworks_ = int(model.layers()[0].shape[1]) if model.layers() else 0
        self.certificate_ = Certificate._from_json(
            model.certificate_json(),
            model.summary(),
            termination=model.termination(),
            seconds=model.seconds,
        )
        if self.verbose:
            import sys

            sys.stderr.write(self.certificate_.summary() + "\n")

    def save(self, path: str) -> None:
        """Writes the fitted model as a safetensors file that ``gonn predict`` and ``gonn evaluate`` read."""
        _check_is_fitted(self, "model_")
        self.model_.save(str(path))

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        model = state.pop("model_", None)
        if model is not None:
            state["_model_bytes"] = (bytes(model.to_bytes()), model.seconds, model.outer_iterations)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        packed = state.pop("_model_bytes", None)
        self.__dict__.update(state)
        if packed is not None:
            self.model_ = _gonn.Model.from_bytes(*packed)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.non_deterministic = False
        return tags


class _Network(_GonnModel):
    """A network (relu, mlp, cnn) fitted to inputs X and targets y."""

    _classifier = False

    def _encode(self, y: Any) -> tuple:
        raise NotImplementedError  # pragma: no cover

    def fit(self, X: Any, y: Any, init_weights: Optional[Sequence[Any]] = None) -> "_Network":
        """Fits the network, growing hidden units until the optimum is certified or a limit is hit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs; pandas DataFrames and float32 arrays are converted to float64 once.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets (class labels for classifiers).
        init_weights : sequence of arrays, optional
            Start from these layers (gonn's layout, e.g. ``model.layers()`` of an earlier fit) instead of the
            configured start.

        Returns
        -------
        self
        """
        if _validate_data is not None:
            x, y = _validate_data(self, X, y, dtype=np.float64, multi_output=True, y_numeric=not self._classifier)
            x = np.ascontiguousarray(x)
        else:
            if y is None:
                raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
            x = _check_X(X, self, reset=True)
        yy, loss, classes = self._encode(y)
        if yy.shape[0] != x.shape[0]:
            raise ValueError(f"X has {x.shape[0]} samples but y has {yy.shape[0]}")
        init = None if init_weights is None else [_as_2d(w, "init_weights") for w in init_weights]
        kw: Dict[str, Any] = {"standardize": bool(self.standardize), "classes": classes, "init": init}
        if getattr(self, "batch_size", None) is not None:
            kw["batch_size"] = int(self.batch_size)
        return self._fit_core(yy, x, loss, **kw)

    def _scores(self, X: Any) -> np.ndarray:
        _check_is_fitted(self, "model_")
        x = _check_X(X, self, reset=False)
        return np.asarray(self.model_.predict(x, int(getattr(self, "n_jobs", None) or 0)))


class _Regressor(RegressorMixin, _Network):
    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _encode(self, y: Any) -> tuple:
        yy = np.asarray(y, dtype=np.float64)
        self._y_1d = yy.ndim == 1
        return _as_2d(yy, "y"), "squared", None

    def predict(self, X: Any) -> np.ndarray:
        """Network outputs, shape (n_samples,) for a 1-D target, else (n_samples, n_outputs)."""
        z = self._scores(X)
        return z[:, 0] if getattr(self, "_y_1d", False) else z


class _Classifier(ClassifierMixin, _Network):
    _classifier = True

    def _encode(self, y: Any) -> tuple:
        labels = _column_or_1d(y, warn=True)
        _check_targets(labels)
        self.classes_, codes = np.unique(labels, return_inverse=True)
        k = len(self.classes_)
        if k < 2:
            raise ValueError(f"y has {k} class; a classifier needs at least 2 classes")
        if k == 2:
            return codes.astype(np.float64).reshape(-1, 1), "logistic", None
        onehot = np.zeros((len(codes), k))
        onehot[np.arange(len(codes)), codes] = 1.0
        return onehot, "softmax", k

    def decision_function(self, X: Any) -> np.ndarray:
        """Network outputs (logits): shape (n_samples,) for two classes, else (n_samples, n_classes)."""
        z = self._scores(X)
        return z[:, 0] if z.shape[1] == 1 else z

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes)."""
        z = self._scores(X)
        if z.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.column_stack([1.0 - p, p])
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels."""
        p = self.predict_proba(X)
        return self.classes_[np.argmax(p, axis=1)]


_RELU_DOC = """
    Parameters
    ----------
    lam : float, default=1.0
        Regularization weight in ``loss + lam * sum_j ||u_j||_2 ||v_j||`` (losses are sums over samples; the
        same optimum as weight decay ``lam/2 (||W1||^2 + ||W2||^2)``).
    bias : bool, default=True
        Add a first-layer bias (a constant-1 input column, regularized with the weights).
    standardize : bool, default=False
        Z-score each input feature with this data's mean and standard deviation (kept in the model).
    output_norm : {"l2", "l1"}, default="l2"
        Output-layer norm. ``"l2"`` (weight decay): the polar of several outputs (softmax classes) is exact for
        up to 2 input features and otherwise bounded by a cover of the output directions (up to 6 outputs);
        ``"l1"`` makes several outputs separate scalar problems.
    polar : {"auto", "exact", "bab", "heuristic"}, default="auto"
        Polar solver; exact enumeration needs ``rank([X, 1]) <= 4`` (up to 3 input features); ``"auto"``
        enumerates up to 11,000 samples with 2 features and 400 with 3, and runs the branch and bound (``"bab"``:
        a proven bound that tightens with time) otherwise; ``"heuristic"`` only searches.
    tol : float, default=1e-6
        Relative gap at which the fit is certified.
    max_outer, max_seconds : int, float, default=None
        Limits on outer iterations (500) and wall-clock seconds (600).
    init_width : int, default=0
        Random hidden units to start from (0: start empty).
    random_state : int or None, default=None
        Seed of every random choice.
    verbose : int, default=0
        1: print one line per outer iteration and the certificate to stderr.
    n_jobs : int or None, default=None
        Threads (None: all cores; pin it to compare runs across machines).
    polar_restarts : int, default=8
        Starts of the pattern ascent (the polar's lower bound where the patterns are not enumerated).
    polar_seconds : float or None, default=None
        Seconds for each proven polar's branch and bound (None: 10).

    Attributes
    ----------
    certificate_ : Certificate
    n_subnetworks_ : int
    history_ : list of dict
    n_features_in_ : int
"""


class ReLURegressor(_Regressor):
    __doc__ = "One-hidden-layer ReLU network regressor fitted to a certified global optimum." + _RELU_DOC

    def __init__(
        self,
        lam: float = 1.0,
        bias: bool = True,
        standardize: bool = False,
        output_norm: str = "l2",
        polar: str = "auto",
        tol: float = 1e-6,
        max_outer: Optional[int] = None,
        max_seconds: Optional[float] = None,
        init_width: int = 0,
        random_state: Any = None,
        verbose: int = 0,
        n_jobs: Optional[int] = None,
        polar_restarts: int = 8,
        polar_seconds: Optional[float] = None,
    ):
        self.lam = lam
        self.bias = bias
        self.standardize = standardize
        self.output_norm = output_norm
        self.polar = polar
        self.tol = tol
        self.max_outer = max_outer
        self.max_seconds = max_seconds
        self.init_width = init_width
        self.random_state = random_state
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.polar_restarts = polar_restarts
        self.polar_seconds = polar_seconds

    def _spec(self) -> Dict[str, Any]:
        return {"model": "relu", "bias": bool(self.bias), "output_norm": self.output_norm, "polar": self.polar}


class ReLUClassifier(_Classifier):
    __doc__ = (
        "One-hidden-layer ReLU network classifier (logistic loss for two classes, softmax for more), fitted to a "
        "certified global optimum." + _RELU_DOC
    )

    __init__ = ReLURegressor.__init__
    _spec = ReLURegressor._spec


_DEEP_DOC = """
    Parameters
    ----------
    architecture : str, default="mlp:32,16"
        ``mlp:W1,W2,..`` (hidden widths) or ``cnn:TOKENS`` (``cCkK``, ``poolS``, ``meanpoolS``, ``fcN``); a final
        linear layer to the outputs is always added.
    reg : {"product", "powers", "weight-decay"}, default="product"
        Regularizer from the layers' Frobenius norms (weight decay is degree-mismatched unless the network has two
        weight layers, and then has no certificate).
    activation : str, default="relu"
        ``relu``, ``leaky:ALPHA`` or ``maxout:M``.
    image_shape : tuple or None, default=None
        cnn: ``(height, width)`` or ``(height, width, channels)`` of each row of X (default: square, 1 channel).
    batch_size : int or None, default=None
        Minibatch size of the local descent (the polar and certificate always use a full pass).
    lam, bias, standardize, tol, max_outer, max_seconds, init_width, random_state, verbose, n_jobs, polar_restarts
        As for :class:`ReLURegressor`.

    The polar of a deep subnetwork has no exact algorithm: ``certificate_.status`` is ``heuristic`` with a loose
    proven bound, said plainly.
"""


class DeepRegressor(_Regressor):
    __doc__ = "Parallel deep or convolutional subnetworks (regression), grown and pruned by the polar." + _DEEP_DOC

    def __init__(
        self,
        architecture: str = "mlp:32,16",
        reg: str = "product",
        activation: str = "relu",
        image_shape: Optional[tuple] = None,
        batch_size: Optional[int] = None,
        lam: float = 1.0,
        bias: bool = True,
        standardize: bool = False,
        tol: float = 1e-6,
        max_outer: Optional[int] = None,
        max_seconds: Optional[float] = None,
        init_width: int = 0,
        random_state: Any = None,
        verbose: int = 0,
        n_jobs: Optional[int] = None,
        polar_restarts: int = 8,
    ):
        self.architecture = architecture
        self.reg = reg
        self.activation = activation
        self.image_shape = image_shape
        self.batch_size = batch_size
        self.lam = lam
        self.bias = bias
        self.standardize = standardize
        self.tol = tol
        self.max_outer = max_outer
        self.max_seconds = max_seconds
        self.init_width = init_width
        self.random_state = random_state
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.polar_restarts = polar_restarts

    def _spec(self) -> Dict[str, Any]:
        spec: Dict[str, Any] = {
            "model": self.architecture,
            "activation": self.activation,
            "reg": self.reg,
            "bias": bool(self.bias),
        }
        shape = self.image_shape
        if shape is None and str(self.architecture).startswith("cnn"):
            d = self.n_features_in_
            side = int(round(math.sqrt(d)))
            if side * side != d:
                raise ValueError(f"X has {d} features, not a square image: give image_shape=(height, width[, channels])")
            shape = (side, side, 1)
        if shape is not None:
            dims = tuple(int(s) for s in shape)
            spec["image"] = "x".join(str(s) for s in (dims + (1,) if len(dims) == 2 else dims))
        return spec


class DeepClassifier(_Classifier):
    __doc__ = "Parallel deep or convolutional subnetworks (classification), grown and pruned by the polar." + _DEEP_DOC

    __init__ = DeepRegressor.__init__
    _spec = DeepRegressor._spec


class MatrixFactorization(_GonnModel):
    """Structured matrix factorization ``Y ~ U V^T`` (nuclear norm for ``l2,l2``), certified.

    Minimizes ``loss(Y, U V^T) + lam * sum_i ||u_i||_A ||v_i||_B`` over the observed entries, choosing the rank.

    Parameters
    ----------
    lam : float, default=1.0
    norms : tuple of str, default=("l2", "l2")
        ``(A, B)``, each ``l1``, ``l2`` or ``l1l2:GAMMA``.
    nonneg : {None, "u", "v", "both"}, default=None
        Nonnegative factors.
    loss : {"squared", "logistic", "softmax"}, default="squared"
    tol, max_outer, max_seconds, init_width, random_state, verbose, n_jobs
        As for :class:`ReLURegressor`.

    Attributes
    ----------
    U_ : ndarray of shape (m, r)
    V_ : ndarray of shape (n, r)
    components_ : ndarray of shape (r, n)
        ``V_.T``, as in scikit-learn's decompositions.
    certificate_, n_subnetworks_, history_
    """

    def __init__(
        self,
        lam: float = 1.0,
        norms: Sequence[str] = ("l2", "l2"),
        nonneg: Optional[str] = None,
        loss: str = "squared",
        tol: float = 1e-6,
        max_outer: Optional[int] = None,
        max_seconds: Optional[float] = None,
        init_width: int = 0,
        random_state: Any = None,
        verbose: int = 0,
        n_jobs: Optional[int] = None,
    ):
        self.lam = lam
        self.norms = norms
        self.nonneg = nonneg
        self.loss = loss
        self.tol = tol
        self.max_outer = max_outer
        self.max_seconds = max_seconds
        self.init_width = init_width
        self.random_state = random_state
        self.verbose = verbose
        self.n_jobs = n_jobs

    def _spec(self) -> Dict[str, Any]:
        norms = self.norms if isinstance(self.norms, str) else ",".join(self.norms)
        spec: Dict[str, Any] = {"model": "factor", "norms": norms}
        if self.nonneg is not None:
            spec["nonneg"] = self.nonneg
        return spec

    def fit(self, Y: Any, mask: Any = None) -> "MatrixFactorization":
        """Fits ``Y`` (m x n); ``mask`` (0/1, same shape) marks the observed entries (matrix completion).

        Returns
        -------
        self
        """
        y = np.asarray(Y, dtype=np.float64)
        if y.ndim != 2:
            raise ValueError(f"Y must be 2-D (got {y.ndim} dimensions)")
        m = None
        if mask is not None:
            m = _as_2d(mask, "mask")
            if m.shape != y.shape:
                raise ValueError(f"mask is {m.shape[0]} x {m.shape[1]} but Y is {y.shape[0]} x {y.shape[1]}")
            y = np.where(m != 0, y, 0.0)
        y = _as_2d(y, "Y")
        self._check_common()
        model = _gonn.fit(
            json.dumps(self._spec()),
            y,
            mask=m,
            loss=self.loss,
            lam=float(self.lam),
            tol=float(self.tol),
            seed=_seed(self.random_state),
            threads=int(self.n_jobs or 0),
            polar_restarts=8,
            init_width=int(self.init_width),
            verbose=int(self.verbose),
            **_limits(self.max_outer, self.max_seconds),
        )
        self._set_fitted(model)
        layers = model.layers()
        self.U_, self.V_ = np.asarray(layers[0]), np.asarray(layers[1])
        self.components_ = self.V_.T
        return self

    def fit_transform(self, Y: Any, mask: Any = None) -> np.ndarray:
        """Fits and returns ``U_``."""
        return self.fit(Y, mask).U_

    def transform(self, Y: Any = None) -> np.ndarray:
        """``U_``, the row factors of the fitted matrix (new matrices are not projected)."""
        _check_is_fitted(self, "model_")
        return self.U_

    def predict(self) -> np.ndarray:
        """The completed matrix ``U_ @ V_.T`` (every entry, observed or not)."""
        _check_is_fitted(self, "model_")
        return np.asarray(self.model_.completed(int(self.n_jobs or 0)))


def lambda_max(estimator: Any, X: Any, y: Any = None) -> tuple:
    """The smallest ``lam`` whose optimum is the zero model, as ``(lower, proven upper or None)``.

    For a network pass ``X, y``; for :class:`MatrixFactorization` pass ``Y`` (and ``mask`` as ``y``).
    """
    if isinstance(estimator, MatrixFactorization):
        yy = _as_2d(X, "Y")
        mask = None if y is None else _as_2d(y, "mask")
        return _gonn.lambda_max(json.dumps(estimator._spec()), yy, mask=mask, loss=estimator.loss, threads=0)
    x = _as_2d(X, "X")
    estimator.n_features_in_ = x.shape[1]
    yy, loss, _ = estimator._encode(y)
    return _gonn.lambda_max(json.dumps(estimator._spec()), yy, x=x, loss=loss, threads=0)


class MatrixCompletion(_Base):
    """Nuclear-norm completion of sparse ratings, certified; memory grows with the ratings, never with ``m * n``.

    Minimizes ``1/2 sum_observed (y_ij - biases - z_ij)^2 + lam ||Z||_*`` with ``Z = U V^T``, choosing the rank.
    The same solver as ``gonn fit --model factor --data ratings.csv``.

    Parameters
    ----------
    lam : float, default=1.0
    biases : {"none", "global", "both"}, default="none"
        Unregularized biases added to ``U V^T``: none, one offset, or one per row and per column.
    tol, max_outer, max_seconds, random_state, verbose, n_jobs
        As for :class:`ReLURegressor`.

    Attributes
    ----------
    U_ : ndarray of shape (m, r)
    V_ : ndarray of shape (n, r)
    offset_ : float
    row_bias_ : ndarray of shape (m,) (zeros unless ``biases="both"``)
    col_bias_ : ndarray of shape (n,)
    certificate_, n_subnetworks_ (the rank), history_
    """

    def __init__(
        self,
        lam: float = 1.0,
        biases: str = "none",
        tol: float = 1e-6,
        max_outer: Optional[int] = None,
        max_seconds: Optional[float] = None,
        random_state: Any = None,
        verbose: int = 0,
        n_jobs: Optional[int] = None,
    ):
        self.lam = lam
        self.biases = biases
        self.tol = tol
        self.max_outer = max_outer
        self.max_seconds = max_seconds
        self.random_state = random_state
        self.verbose = verbose
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any = None, shape: Optional[tuple] = None) -> "MatrixCompletion":
        """Fits the stored entries of a scipy.sparse matrix ``X``, or the triplets ``X = (rows, cols)`` with values
        ``y`` (``shape`` defaults to the largest indices + 1).

        Returns
        -------
        self
        """
        if hasattr(X, "tocoo") and y is None:
            coo = X.tocoo()
            rows, cols, values = coo.row, coo.col, coo.data
            m, n = coo.shape
        else:
            if y is None:
                raise ValueError("give a scipy.sparse matrix, or (rows, cols) and the ratings as y")
            rows, cols = (np.asarray(a) for a in X)
            values = np.asarray(y, dtype=np.float64)
            if shape is None:
                m, n = int(rows.max()) + 1, int(cols.max()) + 1
            else:
                m, n = (int(s) for s in shape)
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if not (rows.shape == cols.shape == values.shape and rows.ndim == 1):
            raise ValueError(f"rows, cols and values must be 1-D of one length (got {rows.shape}, {cols.shape}, "
                             f"{values.shape})")
        limits = _limits(self.max_outer, self.max_seconds)
        u, v, offset, rb, cb, cert, summary, history, termination, seconds = _gonn.fit_ratings(
            m, n, rows.tolist(), cols.tolist(), values.tolist(), lam=float(self.lam), biases=str(self.biases),
            tol=float(self.tol), seed=_seed(self.random_state), threads=int(self.n_jobs or 0),
            verbose=int(self.verbose), **limits,
        )
        self.U_, self.V_ = np.asarray(u), np.asarray(v)
        self.offset_ = float(offset)
        self.row_bias_ = np.asarray(rb) if len(rb) else np.zeros(m)
        self.col_bias_ = np.asarray(cb) if len(cb) else np.zeros(n)
        self.n_subnetworks_ = self.U_.shape[1]
        self.history_ = json.loads(history)
        self.certificate_ = Certificate._from_json(cert, summary, termination=termination, seconds=seconds)
        self.shape_ = (m, n)
        if self.verbose:
            import sys

            sys.stderr.write(self.certificate_.summary() + "\n")
        return self

    def predict(self, rows: Any, cols: Any = None) -> np.ndarray:
        """Predicted ratings at ``(rows, cols)`` (two index arrays, or one ``(k, 2)`` array)."""
        _check_is_fitted(self, "U_")
        if cols is None:
            pairs = np.asarray(rows)
            rows, cols = pairs[:, 0], pairs[:, 1]
        r = np.asarray(rows, dtype=np.int64)
        c = np.asarray(cols, dtype=np.int64)
        m, n = self.shape_
        if r.size and (r.min() < 0 or r.max() >= m or c.min() < 0 or c.max() >= n):
            raise ValueError(f"indices outside the fitted {m} x {n} matrix")
        z = np.einsum("ij,ij->i", self.U_[r], self.V_[c])
        return z + self.offset_ + self.row_bias_[r] + self.col_bias_[c]
