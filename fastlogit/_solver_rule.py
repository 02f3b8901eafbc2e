"""Which solver a default fit runs, and how L-BFGS is scaled: the rule measured in docs/training.md.

One home for the choice, used by the in-memory fit (:mod:`fastlogit._train`) and, where it
applies, by the Dask fit (:mod:`fastlogit.dask.training`).

- Newton's pass costs m (n + 1)^2 / 2 multiply-adds against L-BFGS's 2 m n: at 500 features a
  Newton iteration costs ~30 L-BFGS evaluations, so above NEWTON_MAX_PARAMS parameters (or with
  fewer rows than features) L-BFGS.
- Columns whose scales differ by more than SCALE_SPREAD_NEWTON (unscaled data): L-BFGS needs
  hundreds of evaluations, Newton 5-10 passes: Newton.
- Otherwise L-BFGS for at most LBFGS_FIRST_EVALS evaluations (well-scaled data converges within
  them: 5-7 at tol 1e-4), then Newton from where it got to (correlated columns, weak penalties).
"""
from __future__ import annotations

import importlib.util
import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["NEWTON_MAX_PARAMS", "SCALE_SPREAD_NEWTON", "LBFGS_FIRST_EVALS", "newton_fits",
           "scipy_available", "column_mean_squares", "column_scale_spread", "auto_solver",
           "lbfgs_scale"]

NEWTON_MAX_PARAMS = 200
SCALE_SPREAD_NEWTON = 100.0
LBFGS_FIRST_EVALS = 12

# Values of X read for the column statistics: a fraction of one pass (8 MB of float64).
SAMPLE_ELEMENTS = 1 << 20


def newton_fits(n_params: int, m: int, n: int) -> bool:
    """Is Newton's (n+1) x (n+1) Hessian cheap enough, and does the data determine it?"""
    return n_params <= NEWTON_MAX_PARAMS and m >= n


_scipy_found: bool | None = None


def scipy_available() -> bool:
    """Is SciPy (L-BFGS) importable?  Looked up once per process: find_spec searches
    sys.path (stat calls), which cost a small fit about a tenth of its time."""
    global _scipy_found
    if _scipy_found is None:
        _scipy_found = importlib.util.find_spec("scipy") is not None
    return _scipy_found


def column_mean_squares(X: NDArray, sample_weight: NDArray) -> NDArray:
    """Weighted mean square of every column over a sample of rows: the first rows, about
    2^20 values (at least 1024 rows), or all rows of a smaller X (so that integer weights
    and repeated rows agree there)."""
    k = min(X.shape[0], max(1024, SAMPLE_ELEMENTS // max(X.shape[1], 1)))
    rows = X[:k]
    with np.errstate(all="ignore"):
        if sample_weight.size:
            s = sample_weight[:k]
            total = float(np.sum(s))
            return (np.einsum("ij,ij,i->j", rows, rows, s, dtype=np.float64) / total
                    if total > 0 else np.zeros(X.shape[1]))
        return np.einsum("ij,ij->j", rows, rows, dtype=np.float64) / max(k, 1)


def column_scale_spread(ms: NDArray) -> float:
    """max / min of the non-zero column root-mean-squares (1.0 if < 2 columns)."""
    ms = ms[(ms > 0) & np.isfinite(ms)]
    if ms.size < 2:
        return 1.0
    return float(np.sqrt(ms.max() / ms.min()))


def auto_solver(n_params: int, m: int, n: int, ms: NDArray | None) -> str:
    """The in-memory default: "lbfgs", "newton" or "lbfgs-then-newton" (see the module)."""
    if not newton_fits(n_params, m, n):
        return "lbfgs"
    if not scipy_available():      # Newton needs only NumPy
        return "newton"
    if ms is not None and column_scale_spread(ms) > SCALE_SPREAD_NEWTON:
        return "newton"
    return "lbfgs-then-newton"


def lbfgs_scale(ms: NDArray, theta: NDArray, n: int, fit_intercept: bool,
                l2: float) -> NDArray | None:
    """theta = scale * u for L-BFGS (see fastlogit._lbfgs): scale_j proportional to
    1 / sqrt(D_j), D the diagonal of the Hessian of J at the start, estimated from the
    column mean squares (curvature p (1 - p) at the base rate p, plus l2), divided by its
    geometric mean.  Columns of very different scales then look alike to L-BFGS, while on
    well-scaled data the scale is ~1 everywhere and L-BFGS runs as before (a common factor
    would only move its first trial step: measured, that cost as often as it saved).
    None when the estimate is not usable (L-BFGS then runs unscaled)."""
    b = float(theta[n]) if fit_intercept else 0.0
    p = 1.0 / (1.0 + math.exp(-b)) if abs(b) < 700 else (1.0 if b > 0 else 0.0)
    h = max(p * (1.0 - p), 1e-3)
    D = np.empty(theta.shape[0])
    D[:n] = h * ms + l2
    if fit_intercept:
        D[n] = h
    if not (D.size and np.all(np.isfinite(D)) and D.max() > 0):
        return None
    d = 1.0 / np.sqrt(np.maximum(D, 1e-12 * D.max()))
    return d / math.exp(float(np.mean(np.log(d))))
