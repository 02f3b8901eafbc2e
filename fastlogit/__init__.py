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
    "__version__",
]
