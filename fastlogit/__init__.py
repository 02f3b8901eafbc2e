"""fastlogit: numerically stable, fast logistic-regression kernels.

The functions mirror :mod:`fastlogit.reference` (the textbook NumPy version):
same names, argument order and shapes, computed by compiled kernels that
never overflow, never return NaN for finite input and release the GIL.
"""
from fastlogit._api import (
    compute_cost,
    cost_and_gradients,
    cost_from_logits,
    forward_pass,
    gradients,
    log_sigmoid,
    predict,
    sigmoid,
)
from fastlogit._config import build_info, show_config
from fastlogit._train import ConvergenceWarning, FitResult, fit, gradient_descent

__version__ = "0.1.0"

__all__ = [
    "sigmoid",
    "log_sigmoid",
    "forward_pass",
    "predict",
    "compute_cost",
    "cost_from_logits",
    "gradients",
    "cost_and_gradients",
    "build_info",
    "show_config",
    "gradient_descent",
    "fit",
    "FitResult",
    "ConvergenceWarning",
    "__version__",
]


def __getattr__(name):
    # The scikit-learn estimator is loaded on first use, so that
    # `import fastlogit` needs neither scikit-learn nor SciPy.  (It is not in
    # __all__: `from fastlogit import *` must work without scikit-learn.)
    if name == "LogisticRegression":
        from fastlogit.estimator import LogisticRegression
        return LogisticRegression
    raise AttributeError(f"module 'fastlogit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"LogisticRegression"})
