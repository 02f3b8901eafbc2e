"""Benchmark problems: the inputs of one case, the bytes it must move, and the
answer every implementation is checked against."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

KERNELS = ("sigmoid", "log_sigmoid", "forward_pass", "predict", "compute_cost",
           "cost_from_logits", "gradients", "cost_and_gradients")
DEFAULT_KERNELS = ("sigmoid", "log_sigmoid", "forward_pass", "compute_cost",
                   "cost_from_logits", "cost_and_gradients")
ELEMENTWISE = ("sigmoid", "log_sigmoid", "compute_cost", "cost_from_logits")
# The sizes of the performance targets (issue 5).
DEFAULT_M = (10_000_000,)
DEFAULT_SHAPES = {
    "forward_pass": ((1_000_000, 3), (1_000_000, 100), (100_000, 1000)),
    "predict": ((1_000_000, 3),),
    "gradients": ((1_000_000, 3), (1_000_000, 100)),
    "cost_and_gradients": ((1_000_000, 3), (1_000_000, 100)),
}
QUICK_M = (1_000_000,)
QUICK_SHAPES = ((100_000, 3), (100_000, 100))

# Implementations in the order the table shows them; peers are optional.
IMPL_ORDER = ("reference", "fastlogit", "fastlogit out=", "scipy", "sklearn", "numexpr", "torch")
PEERS = ("scipy", "sklearn", "numexpr", "torch")


@dataclass
class Problem:
    """Inputs of one benchmark case and the bytes any implementation must move."""

    kernel: str
    shape: tuple
    dtype: np.dtype
    arrays: dict
    read_bytes: int
    write_bytes: int
    elements: int

    @property
    def label(self) -> str:
        size = "x".join(fmt_count(s) for s in self.shape)
        return f"{self.kernel} {size} {self.dtype.name}"

    @property
    def inputs(self) -> list:
        """The arrays a kernel has to read (for the bandwidth floor)."""
        return [a for k, a in self.arrays.items() if k in ("z", "X", "A", "Z", "Y")]


def fmt_count(v: int) -> str:
    if v >= 1000 and v % 10 ** int(np.log10(v)) == 0:
        return f"10^{int(np.log10(v))}"
    return str(v)


def make_problem(kernel: str, shape: tuple, dtype, seed: int = 0) -> Problem:
    """Random inputs of a realistic spread for ``kernel``.

    ``shape`` is ``(m,)`` for element-wise kernels and costs, ``(m, n)`` for
    kernels of X.  Scores have standard deviation 4 (a trained model's
    spread), so exp is exercised over its range, not at one point.
    """
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    isz = dtype.itemsize
    if kernel in ELEMENTWISE:
        (m,) = shape
        z = rng.standard_normal(m, dtype=np.float64) * 4.0
        arrays: dict[str, Any] = {}
        if kernel in ("sigmoid", "log_sigmoid"):
            arrays["z"] = z.astype(dtype)
            return Problem(kernel, (m,), dtype, arrays, m * isz, m * isz, m)
        Y = (rng.random(m) < 1.0 / (1.0 + np.exp(-z))).astype(dtype).reshape(1, m)
        if kernel == "compute_cost":
            # A model's probabilities, kept off exactly 0 and 1 in this dtype so
            # that the textbook reference does not take log(0).
            eps = 4 * float(np.finfo(dtype).eps)
            A = np.clip(1.0 / (1.0 + np.exp(-z)), eps, 1 - eps)
            arrays["A"] = A.astype(dtype).reshape(1, m)
        else:
            arrays["Z"] = z.astype(dtype).reshape(1, m)
        arrays["Y"] = Y
        return Problem(kernel, (m,), dtype, arrays, 2 * m * isz, 0, m)
    m, n = shape
    X = rng.standard_normal((m, n), dtype=np.float32 if dtype == np.float32 else np.float64)
    # Scores X.W + b of standard deviation ~4, as in the element-wise cases.
    W = (rng.standard_normal((n, 1)) * (4.0 / np.sqrt(n))).astype(dtype)
    arrays = {"X": X, "W": W, "b": 0.25}
    if kernel in ("forward_pass", "predict"):
        out_isz = 8 if kernel == "predict" else isz
        return Problem(kernel, (m, n), dtype, arrays, m * n * isz, m * out_isz, m * n)
    z = (X @ W.astype(np.float64))[:, 0] + 0.25
    arrays["Y"] = (rng.random(m) < 1.0 / (1.0 + np.exp(-z))).astype(dtype).reshape(1, m)
    return Problem(kernel, (m, n), dtype, arrays, (m * n + m) * isz, 0, m * n)


def close(x, y, rtol: float) -> bool:
    """Agreement of two results (arrays, floats or tuples of them)."""
    if isinstance(x, tuple) or isinstance(y, tuple):
        return len(x) == len(y) and all(close(u, v, rtol) for u, v in zip(x, y))
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size != y.size:
        return False
    x, y = x.reshape(-1), y.reshape(-1)
    scale = float(np.max(np.abs(y))) if y.size else 0.0
    # Elements compare relative to themselves, tiny ones relative to the
    # largest (gradients sum many terms of both signs).
    return bool(np.allclose(x, y, rtol=rtol, atol=rtol * scale + 1e-300, equal_nan=True))


def check_tolerance(dtype) -> float:
    return 2e-3 if np.dtype(dtype) == np.float32 else 1e-7


