"""The training objective of fastlogit, written once.

Every solver (gradient descent, Newton, L-BFGS, in memory or on Dask), the
estimator and the command line minimise the same function of (W, b)::

    J(W, b) = sum_i s_i loss_i / sum_i s_i + (l2 / 2) ||W||^2

where ``loss_i`` is the per-example binary cross-entropy from logits and
``s_i`` the sample weights (1 by default).  The penalty is on W only, never
on b.  scikit-learn's ``C`` maps to ``l2 = 1 / (C * sum_i s_i)``: its
objective ``C * sum_i s_i loss_i + ||W||^2 / 2`` divided by ``C * sum_i s_i``,
so both have the same minimiser.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["l2_from_C", "penalised_objective", "newton_objective", "intercept_start"]


def l2_from_C(C: float, weight_sum: float) -> float:
    """``l2 = 1 / (C * weight_sum)``; ``C = inf`` means no penalty (l2 = 0).

    ``weight_sum`` is the number of examples, or the sum of the sample
    weights.  A product so small that l2 is not a finite float (tiny sample
    weights, say) is reported in the caller's terms, C and the weights, not
    as an error about an ``l2`` the caller never passed.
    """
    C = float(C)
    weight_sum = float(weight_sum)
    if not C > 0:                       # also NaN
        raise ValueError(f"C must be a positive float (or inf for no penalty); got {C!r}")
    if not (0 < weight_sum < math.inf):
        raise ValueError(f"the sample weights must have a positive, finite sum; got {weight_sum!r}")
    if math.isinf(C):
        return 0.0
    with np.errstate(all="ignore"):
        l2 = 1.0 / (C * weight_sum)
    if not math.isfinite(l2):
        raise ValueError(
            f"C * sum(sample_weight) = {C!r} * {weight_sum!r} is too small: the penalty "
            f"1 / (C * sum(sample_weight)) overflows; scale the sample weights up or raise C")
    return l2


def penalised_objective(loss_mean: float, dW_mean: NDArray, W: NDArray,
                        l2: float) -> tuple[float, NDArray]:
    """Add the ridge penalty to a mean loss and its W-gradient.

    ``W`` and ``dW_mean`` are float64 vectors of the same shape; ``dW_mean``
    is not modified.  IEEE results are the answer (no floating-point
    warnings): the callers report non-finite values themselves.
    """
    if not l2:
        return float(loss_mean), dW_mean
    with np.errstate(all="ignore"):
        dW = np.array(dW_mean, dtype=np.float64)
        return _add_penalty(float(loss_mean), dW, W, l2), dW


def _add_penalty(J: float, dW: NDArray, W: NDArray, l2: float) -> float:
    """The ridge term, written once: ``dW += l2 W`` in place; returns ``J + (l2/2) ||W||^2``.
    The caller holds the errstate."""
    dW += l2 * W
    return J + 0.5 * l2 * float(W @ W)


def newton_objective(loss_sum: float, dW_sum: NDArray, db_sum: float, H_sum: NDArray,
                     W: NDArray, weight_sum: float, l2: float,
                     fit_intercept: bool) -> tuple[float, NDArray, NDArray]:
    """(J, gradient, Hessian) of J over theta = [W, b] (b only if fitted) from the
    sums of the Newton kernel (``cost_gradient_hessian``), whether they come from
    one call or are added up over blocks of rows (Dask).

    ``H_sum`` is (n + 1, n + 1) with the intercept last; it is not modified.
    """
    n = W.shape[0]
    scale = 1.0 / weight_sum
    k = n + bool(fit_intercept)
    grad = np.empty(k)
    # penalised_objective's arithmetic, in place in grad (one errstate for all of it: this
    # runs once per Newton iteration, and on small data its Python overhead shows).
    with np.errstate(all="ignore"):
        J = float(loss_sum * scale)
        dW = np.multiply(dW_sum, scale, out=grad[:n])
        if l2:
            J = _add_penalty(J, dW, W, l2)
        if fit_intercept:
            grad[n] = db_sum * scale
        H = np.multiply(H_sum[:k, :k], scale)
        if l2:
            H.ravel()[: n * (k + 1): k + 1] += l2      # the diagonal of the W block
    return J, grad, H


def intercept_start(Y: NDArray, sample_weight: NDArray | None, weight_sum: float) -> float:
    """The log-odds of the weighted base rate: the optimum of J over b at W = 0.

    Starting there spends the first iterations on W only.  0 when every
    label is 0 or every label is 1 (the log-odds would be infinite).
    """
    if sample_weight is not None and sample_weight.size:
        p = float(sample_weight @ Y) / weight_sum
    else:
        p = float(np.mean(Y))
    if 0.0 < p < 1.0:
        return math.log(p) - math.log1p(-p)
    return 0.0
