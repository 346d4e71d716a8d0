"""Type stubs of the compiled core (`python/src/lib.rs`)."""

from typing import List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

__version__: str

class Model:
    seconds: float
    outer_iterations: int
    lam: float
    spec_json: str
    def certificate_json(self) -> str: ...
    def history_json(self) -> str: ...
    def termination(self) -> Optional[str]: ...
    def summary(self) -> str: ...
    def layers(self) -> List[npt.NDArray[np.float64]]: ...
    def predict(self, x: npt.NDArray[np.float64], threads: int) -> npt.NDArray[np.float64]: ...
    def completed(self, threads: int) -> npt.NDArray[np.float64]: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(bytes: bytes, seconds: float, outer_iterations: int) -> "Model": ...
    def save(self, path: str) -> None: ...

def fit(
    spec: str,
    y: npt.NDArray[np.float64],
    *,
    x: Optional[npt.NDArray[np.float64]] = None,
    mask: Optional[npt.NDArray[np.float64]] = None,
    loss: str,
    lam: float,
    tol: float,
    max_outer: int,
    max_seconds: float,
    init_width: int,
    seed: int,
    threads: int,
    polar_restarts: int,
    batch_size: Optional[int] = None,
    standardize: bool = False,
    classes: Optional[int] = None,
    init: Optional[Sequence[npt.NDArray[np.float64]]] = None,
    verbose: int = 0,
) -> Model: ...
def certify(
    spec: str,
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    layers: Sequence[npt.NDArray[np.float64]],
    *,
    loss: str,
    lam: float,
    tol: float,
    threads: int,
) -> Tuple[str, str]: ...
def lambda_max(
    spec: str,
    y: npt.NDArray[np.float64],
    *,
    x: Optional[npt.NDArray[np.float64]] = None,
    mask: Optional[npt.NDArray[np.float64]] = None,
    loss: str,
    threads: int,
) -> Tuple[float, Optional[float]]: ...
def fit_ratings(
    m: int,
    n: int,
    rows: Sequence[int],
    cols: Sequence[int],
    values: Sequence[float],
    *,
    lam: float,
    biases: str,
    tol: float,
    max_outer: int,
    max_seconds: float,
    seed: int,
    threads: int,
    verbose: int = 0,
) -> Tuple[
    npt.NDArray[np.float64], npt.NDArray[np.float64], float, List[float], List[float], str, str, str, str, float
]: ...
