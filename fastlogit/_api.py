"""Public API of fastlogit: validation, dtype/shape handling, output allocation.

The arithmetic is in the compiled ``fastlogit._kernels``; this module only
decides what to call it with.  Conventions (the textbook's): X (m, n) one
example per row, Y (1, m) labels in [0, 1], W (n, 1), b scalar, A (1, m).
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastlogit import _kernels
from fastlogit._objective import penalised_objective
from fastlogit._validation import (
    as_contiguous,
    as_real_array,
    as_row,
    check_labels_found,
    check_nonneg,
    check_number,
    check_sample_weight,
    check_scalar,
    check_threshold,
    check_out,
    check_probabilities,
    check_W,
    check_X,
    resolve_threads,
    result_dtype,
)

__all__ = [
    "sigmoid",
    "log_sigmoid",
    "forward_pass",
    "predict",
    "compute_cost",
    "cost_from_logits",
    "gradients",
    "cost_and_gradients",
]


# ---------------------------------------------------------------------------
# Element-wise functions
# ---------------------------------------------------------------------------

def _elementwise(kernel, z, out, n_threads, name):
    z = as_contiguous(as_real_array(z, "z"))
    # Like a ufunc: 0-d input (Python or NumPy scalar, 0-d array) gives a scalar.
    scalar_input = z.ndim == 0
    if out is None:
        result = _kernels.empty_output(None, z.dtype, like=z)
    else:
        result = check_out(out, z.shape)
    # The kernel walks both arrays in memory order; that is the same element
    # order only if their layouts agree.  Otherwise (or on partial overlap, or
    # a misaligned out) compute into a fresh buffer and copy, as NumPy's ufuncs do.
    direct = result.flags.aligned and (
        result.flags.c_contiguous and z.flags.c_contiguous
        or result.flags.f_contiguous and z.flags.f_contiguous
    ) and (
        not np.may_share_memory(result, z)
        or (result.__array_interface__["data"][0] == z.__array_interface__["data"][0]
            and result.strides == z.strides)
    )
    target = result if direct else _kernels.empty_output(None, result.dtype, like=z)
    kernel(z.ravel(order="K"), target.ravel(order="K"), resolve_threads(n_threads, z.size))
    if not direct:
        result[...] = target
    if out is None and scalar_input:
        return result[()]
    return result


def sigmoid(z: ArrayLike, out: NDArray | None = None, *, n_threads: int | None = None) -> NDArray:
    """Logistic sigmoid ``1 / (1 + exp(-z))``, element-wise and overflow-free.

    Parameters
    ----------
    z : array_like, any shape
        float32 stays float32; ints, bools and float64 give float64.
    out : ndarray, optional
        float32 or float64 array of ``z``'s shape to write into (as a ufunc's
        ``out``); may be ``z`` itself.
    n_threads : int, optional
        OpenMP threads; None uses every usable core.

    Returns
    -------
    ndarray (or scalar for scalar input) of ``z``'s shape: sigma(z), in [0, 1].
    Exact at the limits: sigma(-inf) = 0, sigma(inf) = 1, sigma(0) = 0.5;
    sigma(-700) is the correctly rounded tiny value, NaN stays NaN.  No
    floating-point warning for any input.

    Examples
    --------
    >>> import fastlogit
    >>> fastlogit.sigmoid([-1000.0, 0.0, 1000.0])
    array([0. , 0.5, 1. ])
    """
    return _elementwise(_kernels.sigmoid, z, out, n_threads, "sigmoid")


def log_sigmoid(z: ArrayLike, out: NDArray | None = None, *, n_threads: int | None = None) -> NDArray:
    """``log(sigmoid(z))`` computed as ``min(z, 0) - log1p(exp(-|z|))``.

    Accurate where sigmoid underflows (``log_sigmoid(-1000) == -1000``) and
    where it rounds to 1 (``log_sigmoid(40) == -4.25e-18``).  Shapes, dtypes,
    ``out`` and ``n_threads`` as in :func:`sigmoid`.

    Examples
    --------
    >>> import fastlogit
    >>> float(fastlogit.log_sigmoid(-1000.0))
    -1000.0
    """
    return _elementwise(_kernels.log_sigmoid, z, out, n_threads, "log_sigmoid")


# ---------------------------------------------------------------------------
# Functions of (X, W, b)
# ---------------------------------------------------------------------------

def _linear_inputs(X, W, b):
    X = check_X(X)
    W_vec, W_dtype = check_W(W, X.shape[1])
    return X, W_vec, check_scalar(b, "b"), result_dtype(X.dtype, W_dtype)


def linear_scores(X: ArrayLike, W: ArrayLike, b: float, *, n_threads: int | None = None) -> NDArray:
    """Scores (logits) ``z = X @ W + b`` as a float64 vector of length m.

    The compiled row loop of :func:`forward_pass` without the sigmoid: rows
    accumulated in float64 whatever the dtype of X, the same bits for any
    thread count.  The one home of ``X @ W + b`` for the estimator, the
    command line and the solvers.

    Examples
    --------
    >>> import numpy as np
    >>> from fastlogit._api import linear_scores
    >>> linear_scores(np.array([[105.0], [170.0]]), np.array([[0.042]]), -5.66)
    array([-1.25,  1.48])
    """
    X, W_vec, b_val, _ = _linear_inputs(X, W, b)
    z = _kernels.empty_output(X.shape[0], np.float64)
    _kernels.scores(X, W_vec, b_val, z, resolve_threads(n_threads, X.size))
    return z


def forward_pass(X: ArrayLike, W: ArrayLike, b: float, out: NDArray | None = None, *,
                 n_threads: int | None = None) -> NDArray:
    """Probabilities ``A = sigmoid(X @ W + b).T`` in one pass over X.

    Parameters
    ----------
    X : array_like, shape (m, n)
        One example per row; float32 or float64 is read in place (C or F
        order), other real dtypes are converted to float64.
    W : array_like, shape (n, 1) or (n,)
    b : float
    out : ndarray of shape (1, m), optional
        Buffer to reuse across calls (batch scoring).
    n_threads : int, optional

    Returns
    -------
    A : ndarray, shape (1, m)
        float32 when X and W are float32, else float64.  Scores are
        accumulated in float64.

    NaN/inf policy: row i depends on row i of X, on W and on b only.  NaN in
    a row gives NaN in that row; +-inf gives the exact limit (1 or 0), or NaN
    where the row's score is inf - inf; other rows are bit-for-bit unchanged.
    NaN/inf in W or b reach every row.

    Examples
    --------
    >>> import numpy as np, fastlogit
    >>> X = np.array([[105.0], [135.0], [170.0]])
    >>> fastlogit.forward_pass(X, np.array([[0.042]]), -5.66).round(3)
    array([[0.223, 0.502, 0.815]])
    """
    X, W_vec, b_val, dtype = _linear_inputs(X, W, b)
    m = X.shape[0]
    A = _kernels.empty_output((1, m), dtype) if out is None else check_out(out, (1, m))
    # W_vec is a private copy, so only X can overlap out; the kernel writes A
    # while other threads still read X, hence a temporary on any overlap.
    direct = A.flags.c_contiguous and A.flags.aligned and not np.may_share_memory(A, X)
    target = A if direct else _kernels.empty_output((1, m), A.dtype)
    _kernels.forward_pass(X, W_vec, b_val, target.reshape(m),
                          resolve_threads(n_threads, X.size))
    if target is not A:
        A[...] = target
    return A


def predict(X: ArrayLike, W: ArrayLike, b: float, threshold: float = 0.5, *,
            n_threads: int | None = None) -> NDArray:
    """Class predictions ``(forward_pass(X, W, b) >= threshold)`` as int64 0/1.

    Returns
    -------
    ndarray of int64, shape (1, m)
        A row whose probability is NaN (NaN in that row of X) predicts 0, as
        ``NaN >= threshold`` is false in NumPy.

    Examples
    --------
    >>> import numpy as np, fastlogit
    >>> fastlogit.predict(np.array([[105.0], [170.0]]), np.array([[0.042]]), -5.66)
    array([[0, 1]])
    """
    X, W_vec, b_val, _ = _linear_inputs(X, W, b)
    # A NaN threshold would silently predict 0 everywhere.
    threshold = check_threshold(threshold)
    m = X.shape[0]
    labels = _kernels.empty_output((1, m), np.int64)
    _kernels.predict(X, W_vec, b_val, threshold, labels.reshape(m),
                     resolve_threads(n_threads, X.size))
    return labels


# ---------------------------------------------------------------------------
# Costs
# ---------------------------------------------------------------------------

_OVERFLOW_SCALE = 2.0 ** -64


def _mean_loss(values, Y, from_logits, eps, n_threads, name):
    shape = np.shape(values)
    values = as_row(values, name)
    m = values.shape[0]
    if m == 0:
        raise ValueError(f"{name} must hold at least one example (the mean over m = 0 "
                         f"examples is undefined); got shape {shape}")
    Y = as_row(Y, "Y", m, rows_of=name)
    threads = resolve_threads(n_threads, m)
    total, n_bad, n_outside = _kernels.mean_loss(values, Y, from_logits, eps, threads)
    if not from_logits:     # probabilities outside [0, 1]: counted by the kernel, same message
        check_probabilities(values, name, n_outside)
    check_labels_found(n_bad, Y)
    if total == math.inf:
        # Finite losses near 1.8e308 can overflow the sum although their mean
        # cannot: sum again scaled by 2^-64 (exact).  Still inf only if some
        # loss is inf.
        scaled, _, _ = _kernels.mean_loss(values, Y, from_logits, eps, threads, _OVERFLOW_SCALE)
        return (scaled / m) / _OVERFLOW_SCALE
    return total / m


def compute_cost(A: ArrayLike, Y: ArrayLike, eps: float | None = None, *,
                 n_threads: int | None = None) -> float:
    """Mean binary cross-entropy of probabilities A against labels Y, clipped.

    ``J = -(1/m) sum[y log a + (1 - y) log(1 - a)]`` with ``a`` clipped to
    ``[eps, 1 - eps]``, so J is finite for every A in [0, 1].  A value of A
    outside [0, 1] is an error: scores (logits) go to :func:`cost_from_logits`.

    Parameters
    ----------
    A : array_like, shape (1, m) or (m,)
        Probabilities.
    Y : array_like, shape (1, m) or (m,)
        Labels in [0, 1] (0/1, or soft labels).
    eps : float, optional
        Clip bound; default: the machine epsilon of A's dtype (2.2e-16 for
        float64, 1.2e-7 for float32), so each example costs at most
        36.04 (float64) or 15.94 (float32).

    Returns
    -------
    float
        NaN if any example's value is NaN (a bad example is reported, not
        dropped); +inf scores give the exact limits of the loss.

    Examples
    --------
    >>> import fastlogit
    >>> round(fastlogit.compute_cost([[0.9, 0.2]], [[1, 0]]), 6)
    0.164252
    """
    A_arr = as_real_array(A, "A")     # values in [0, 1]: checked from the kernel's count
    if eps is None:
        eps = float(np.finfo(A_arr.dtype).eps)
    else:
        eps = check_number(eps, "eps", lambda e: 0.0 <= e < 0.5, "a float in [0, 0.5)")
    return _mean_loss(A_arr, Y, False, eps, n_threads, "A")


def cost_from_logits(Z: ArrayLike, Y: ArrayLike, *, n_threads: int | None = None) -> float:
    """Mean binary cross-entropy straight from the scores ``Z = X @ W + b``.

    Each example costs ``y*softplus(-z) + (1-y)*softplus(z)``, computed with
    ``log1p(exp(-|z|))``: no clipping, exact for |z| up to the largest float
    (z = 1000, y = 0 costs 1000).  ±inf scores give the exact limits.

    Parameters
    ----------
    Z : array_like, shape (1, m) or (m,)
    Y : array_like, shape (1, m) or (m,), labels in [0, 1]

    Returns
    -------
    float
        NaN if any example's value is NaN (a bad example is reported, not
        dropped); +inf scores give the exact limits of the loss.

    Examples
    --------
    >>> import fastlogit
    >>> fastlogit.cost_from_logits([[1000.0]], [[0]])
    1000.0
    """
    return _mean_loss(Z, Y, True, 0.0, n_threads, "Z")


# ---------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------

def _fused(X, W, b, Y, sample_weight, with_loss, n_threads):
    X, W_vec, b_val, dtype = _linear_inputs(X, W, b)
    m, n = X.shape
    if m == 0:
        raise ValueError(f"X must have at least one row (the cost and its gradients are means "
                         f"over the m examples); got shape {X.shape}")
    Y = as_row(Y, "Y", m)
    sw, weight_sum = check_sample_weight(sample_weight, m)
    loss, dW, db, n_bad = _kernels.cost_and_gradients(
        X, W_vec, b_val, Y, sw, with_loss, resolve_threads(n_threads, X.size))
    check_labels_found(n_bad, Y)
    # IEEE results are the answer here (a subnormal mean, an inf sum): never a
    # warning or FloatingPointError that depends on the caller's np.errstate.
    with np.errstate(all="ignore"):
        return loss / weight_sum, dW / weight_sum, db / weight_sum, W_vec, dtype


def gradients(X: ArrayLike, W: ArrayLike, b: float, Y: ArrayLike, *,
              n_threads: int | None = None) -> tuple[NDArray, float]:
    """Gradients of the mean cross-entropy: ``dW = X.T (A - Y).T / m``, ``db = mean(A - Y)``.

    One pass over X; the residual ``A - Y`` is formed without cancellation
    (for y = 1 it is ``-sigmoid(-z)``, not ``sigmoid(z) - 1``), and the sums
    are compensated and reproducible for any thread count.

    Returns
    -------
    dW : ndarray, shape (n, 1), float32 when X and W are float32 else float64
    db : float
        NaN in any row of X (or in W, b) makes dW and db NaN: the sums
        include every example.

    Examples
    --------
    >>> import numpy as np, fastlogit
    >>> dW, db = fastlogit.gradients(np.eye(2), np.zeros((2, 1)), 0.0, [[1, 0]])
    >>> dW.ravel(), db
    (array([-0.25,  0.25]), 0.0)
    """
    _, dW, db, _, dtype = _fused(X, W, b, Y, None, False, n_threads)
    with np.errstate(all="ignore"):      # a float32 dW past 3.4e38 is inf, silently
        return dW.reshape(-1, 1).astype(dtype, copy=False), float(db)


def cost_and_gradients(X: ArrayLike, W: ArrayLike, b: float, Y: ArrayLike, *,
                       sample_weight: ArrayLike | None = None, l2: float = 0.0,
                       n_threads: int | None = None) -> tuple[float, NDArray, float]:
    """Cost and its gradients in one streaming pass over X.

    ``J = sum_i s_i loss_i / sum_i s_i + (l2 / 2) ||W||^2`` where ``loss_i`` is
    the stable per-example loss from logits and ``s_i`` the sample weights
    (1 by default); the penalty is on W only, never on b.  With
    ``l2 = 1 / (C * sum(s))`` this is scikit-learn's LogisticRegression
    objective divided by ``C * sum(s)``.

    Parameters
    ----------
    X : array_like (m, n); W : (n, 1) or (n,); b : float; Y : (1, m) or (m,)
    sample_weight : array_like (m,) or (1, m), optional, non-negative
    l2 : float, non-negative
    n_threads : int, optional

    Returns
    -------
    J : float
    dW : ndarray, shape (n, 1)
    db : float

    Examples
    --------
    >>> import numpy as np, fastlogit
    >>> J, dW, db = fastlogit.cost_and_gradients(np.eye(2), np.zeros((2, 1)), 0.0, [[1, 0]])
    >>> round(J, 6), dW.ravel(), db
    (0.693147, array([-0.25,  0.25]), 0.0)
    """
    l2 = check_nonneg(l2, "l2")
    J, dW, db, W_vec, dtype = _fused(X, W, b, Y, sample_weight, True, n_threads)
    J, dW = penalised_objective(J, dW, W_vec, l2)
    with np.errstate(all="ignore"):      # see _fused: IEEE results, no FP traps
        return float(J), dW.reshape(-1, 1).astype(dtype, copy=False), float(db)
