"""gonn: certified global optimality for positively homogeneous networks and structured factorizations.

Estimators follow scikit-learn's conventions (scikit-learn itself is optional); every fitted estimator has a
``certificate_`` that says what is proven about its distance to the global optimum.
"""

from ._gonn import __version__
from ._certificate import Certificate
from ._certify import certify
from ._estimators import (
    DeepClassifier,
    DeepRegressor,
    MatrixCompletion,
    MatrixFactorization,
    ReLUClassifier,
    ReLURegressor,
    lambda_max,
)

__all__ = [
    "Certificate",
    "DeepClassifier",
    "DeepRegressor",
    "MatrixCompletion",
    "MatrixFactorization",
    "ReLUClassifier",
    "ReLURegressor",
    "certify",
    "lambda_max",
    "__version__",
]
