"""Cost, gradients and fitting over a row-chunked dask X.

Each row block's unnormalised sums come from the compiled fused kernel; they
are added up in fixed groups of consecutive blocks, then the groups' sums in
groups, and so on, each group with the kernel's own compensated summation
(see the package docstring for when the result equals the in-memory call bit
for bit).  The kernel's rules, its reduction chunks and its combine, are
used from one place here: :func:`kernel_row_chunks`, :func:`combine_partials`
and :func:`combine_in_groups`.

Memory
------
The groups hold ``COMBINE_GROUP`` (64, the kernel's own largest combine)
consecutive rows; their boundaries depend on the number of row blocks only.
So no task ever receives more than ``COMBINE_GROUP * width * 8`` bytes of
partials (``width`` doubles per block row: n + 3 for the cost and gradient,
(n + 1)(n + 2) / 2 + n + 4 for Newton, 10.5 MB at n = 200), whatever the
number of blocks, and the result does not depend on ``split_every`` (the
fan-in of the concatenations below each group's sum) or on the scheduler.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastlogit import _kernels
from fastlogit._objective import penalised_objective
from fastlogit._validation import (
    as_real_array,
    as_row,
    check_labels_found,
    check_nonneg,
    check_reduced_sums,
    check_scalar,
    check_W,
    check_weight_values,
    check_X,
    resolve_threads,
    result_dtype,
    working_dtype,
)
from fastlogit.dask.arrays import (
    aligned_rows,
    check_W_for,
    dask_array_module,
    rows_chunked,
    tokenize,
)

if TYPE_CHECKING:  # pragma: no cover
    import dask.array

__all__ = ["COMBINE_GROUP", "kernel_row_chunks", "combine_partials", "combine_in_groups",
           "cost_and_gradients", "in_memory_cost_and_gradients", "partials_graph",
           "finish_partials", "finish_sums", "block_arrays", "check_split_every"]

# Rows added up by one combine: the kernel's own most chunk partials combined
# at once.  So the blocks of kernel_row_chunks (at most 64) form ONE group and
# the distributed sums equal the in-memory call's bit for bit.
COMBINE_GROUP = _kernels.REDUCTION_CHUNKS


# ---------------------------------------------------------------------------
# The kernel's reduction rules (one place)
# ---------------------------------------------------------------------------

def kernel_row_chunks(m: int, n: int, dtype=np.float64) -> tuple[int, ...]:
    """Row chunks of the in-memory fused kernel's reduction for an (m, n) X.

    Chunk a dask X like this (``X.rechunk((kernel_row_chunks(m, n, X.dtype),
    n))``) and :func:`cost_and_gradients` equals ``fastlogit.cost_and_gradients``
    on the same data in memory bit for bit, provided ``m <= 4096 *
    rows_per_block`` (see the module docstring for the full conditions).

    Examples
    --------
    >>> import fastlogit.dask as fld
    >>> fld.kernel_row_chunks(2000, 3)
    (512, 512, 512, 464)
    """
    itemsize = working_dtype(dtype, "dtype").itemsize
    m, n = int(m), int(n)
    bounds = list(_kernels.reduction_chunks(m, n, itemsize))
    if len(bounds) < 2:
        return (0,)
    return tuple(hi - lo for lo, hi in zip(bounds[:-1], bounds[1:]))


def combine_partials(P: NDArray) -> NDArray:
    """Column sums of P, rows added in order with Neumaier compensation.

    The fused kernel's own combination of its chunk partials
    (``fastlogit._kernels.combine_partials``), so the same bits.
    """
    return np.asarray(_kernels.combine_partials(P), dtype=np.float64)


def _group_bounds(n_rows: int) -> list[tuple[int, int]]:
    # The one rule for the groups: COMBINE_GROUP consecutive rows, the last
    # one shorter.  A function of the number of rows only.
    return [(lo, min(lo + COMBINE_GROUP, n_rows)) for lo in range(0, n_rows, COMBINE_GROUP)]


def combine_in_groups(P: NDArray) -> NDArray:
    """Column sums of the (rows, width) partials ``P``, as the Dask reductions add them.

    Rows are added (:func:`combine_partials`: in order, Neumaier-compensated)
    in groups of ``COMBINE_GROUP`` consecutive rows; each group gives one
    compensated row (its [sum, compensation] pair folded, which is what the
    combine of pairs does with it anyway); the group rows are added the same
    way, level by level, until one group is left.  Up to ``COMBINE_GROUP``
    rows that is :func:`combine_partials` itself.  The bits depend on the
    number of rows and their values only.

    Examples
    --------
    >>> import numpy as np, fastlogit.dask as fld
    >>> fld.combine_in_groups(np.ones((1000, 2))).tolist()
    [1000.0, 1000.0]
    """
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2:
        raise ValueError(f"P must have shape (rows, width); got shape {P.shape}")
    while P.shape[0] > COMBINE_GROUP:
        P = np.stack([combine_partials(P[lo:hi]) for lo, hi in _group_bounds(P.shape[0])])
    return combine_partials(P)


# ---------------------------------------------------------------------------
# Cost and gradients: per-block kernel sums, gathered and combined in order
# ---------------------------------------------------------------------------

def block_arrays(X_block, Y_block, sw_block):
    """(X, y, weights, weight sum) of one row block, checked inside its task;
    weights are empty (the kernels' unit weights) when ``sw_block`` is None."""
    X_block = check_X(X_block)
    k = X_block.shape[0]
    y = as_row(Y_block, "Y", k)
    if sw_block is None:
        return X_block, y, np.empty(0, dtype=np.float64), float(k)
    sw = check_weight_values(sw_block, k)
    return X_block, y, sw, float(np.sum(sw))


def _block_partials(X_block, Y_block, sw_block, W_vec, b, n_threads):
    """Unnormalised sums of one row block, as a (1, n + 3) float64 row:
    [loss, sum r, sum s, X^T r (n)] with r = s (sigmoid(z) - y)."""
    X_block, y, sw, weight = block_arrays(X_block, Y_block, sw_block)
    k, n = X_block.shape
    out = np.zeros((1, n + 3))
    if k == 0:
        return out
    loss, dW, db, n_bad = _kernels.cost_and_gradients(
        X_block, W_vec, b, y, sw, True, resolve_threads(n_threads, X_block.size))
    check_labels_found(n_bad, y)
    out[0, 0], out[0, 1], out[0, 2] = loss, db, weight
    out[0, 3:] = dW
    return out


def _stack(*parts):
    # Keeps block order: the group's sum adds the rows in exactly this order.
    return np.concatenate(parts, axis=0)


def _group_sum(*parts):
    # One group's compensated sum, as a (1, width) row for the next level.
    return combine_partials(np.concatenate(parts, axis=0))[None, :]


def finish_partials(partials: NDArray, W_vec: NDArray, l2: float, dtype) -> tuple[float, NDArray, float]:
    """(J, dW (n, 1), db) from the stacked (blocks, n + 3) cost/gradient block
    partials, added up as on Dask (:func:`combine_in_groups`)."""
    return finish_sums(combine_in_groups(partials), W_vec, l2, dtype)


def finish_sums(total: NDArray, W_vec: NDArray, l2: float, dtype) -> tuple[float, NDArray, float]:
    """(J, dW (n, 1), db) from the summed cost/gradient partials (n + 3 numbers),
    as ``fastlogit.cost_and_gradients`` gives them."""
    total = np.asarray(total, dtype=np.float64).reshape(-1)
    loss, db_sum, weight_sum, dW_sum = total[0], total[1], total[2], total[3:]
    check_reduced_sums(0, weight_sum)
    J = float(loss) / float(weight_sum)
    dW = dW_sum / float(weight_sum)
    db = float(db_sum) / float(weight_sum)
    J, dW = penalised_objective(J, dW, W_vec, l2)
    return float(J), dW.reshape(-1, 1).astype(dtype, copy=False), float(db)


def partials_graph(X, Y1, sw1, W_vec, b, n_threads, split_every, *, block=None,
                   width: int | None = None, name: str = "partials"):
    """A delayed node yielding the (1, width) sums of ``block(X_b, Y_b, sw_b,
    W_vec, b, n_threads)`` over X's row blocks (one row each), and the token
    of the graph.

    The rows are added in the groups of :func:`combine_in_groups`, one task
    per group and level; below each group's sum, when ``split_every`` is
    smaller than the group, a tree of concatenations (fan-in ``split_every``,
    block order kept) gathers its rows.  No task receives more than
    ``COMBINE_GROUP`` rows, and the result depends on the row chunks only,
    never on ``split_every``.

    ``block`` defaults to the cost/gradient partials ((n + 3) wide) of
    :func:`cost_and_gradients`; :func:`fastlogit.dask.fit` passes Newton's.
    """
    import dask
    da = dask_array_module()

    if block is None:
        block, width = _block_partials, X.shape[1] + 3
    args = [X, "ij", Y1, "i"] + ([sw1, "i"] if sw1 is not None else [None, None])
    token = tokenize(X, Y1, sw1, W_vec, b, n_threads, name)
    partials = da.blockwise(block, "ij", *args, W_vec, None, b, None, n_threads, None,
                            adjust_chunks={"i": 1, "j": width}, concatenate=True,
                            dtype=np.float64, meta=np.empty((0, 0)),
                            name=f"fastlogit-{name}-" + token)
    nodes = list(partials.to_delayed(optimize_graph=False).ravel())
    stack = dask.delayed(_stack, pure=True)
    group_sum = dask.delayed(_group_sum, pure=True)
    level = 0
    while True:
        sums = []
        for g, (lo, hi) in enumerate(_group_bounds(len(nodes))):
            group, step = nodes[lo:hi], 0
            while len(group) > split_every:
                group = [stack(*group[i:i + split_every],
                               dask_key_name=f"fastlogit-{name}-gather-{level}-{g}-{step}-"
                                             f"{i // split_every}-{token}")
                         for i in range(0, len(group), split_every)]
                step += 1
            sums.append(group_sum(*group,
                                  dask_key_name=f"fastlogit-{name}-sum-{level}-{g}-{token}"))
        nodes = sums
        if len(nodes) == 1:
            return nodes[0], token
        level += 1


def _prepare_cost_inputs(X, W, b, Y, sample_weight, l2):
    X = rows_chunked(X)
    W_arr, W_vec = check_W_for(W, X.shape[1])
    b = check_scalar(b, "b")
    l2 = check_nonneg(l2, "l2")
    if X.shape[0] == 0:
        raise ValueError("X has no rows (m = 0); the cost and its gradients need at least one example")
    Y1 = aligned_rows(Y, X, "Y")
    sw1 = None if sample_weight is None else aligned_rows(sample_weight, X, "sample_weight")
    dtype = result_dtype(working_dtype(X.dtype, "X"), W_arr.dtype)
    return X, W_vec, b, Y1, sw1, l2, dtype


def check_split_every(split_every) -> int:
    """The fan-in of the concatenations below each group's sum (None: the
    default, ``COMBINE_GROUP``: no concatenation tasks)."""
    if split_every is None:
        return COMBINE_GROUP
    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise ValueError(f"split_every must be an int >= 2 or None; got {split_every!r}")
    return split_every


def cost_and_gradients(X: "dask.array.Array", W: ArrayLike, b: float, Y, *,
                       sample_weight=None, l2: float = 0.0, n_threads: int | None = None,
                       split_every: int | None = None, compute: bool = True):
    """``fastlogit.cost_and_gradients`` over a row-chunked dask X: one pass, a tree reduction.

    ``J = sum_i s_i loss_i / sum_i s_i + (l2 / 2) ||W||^2`` and its gradients.
    Each row block's unnormalised sums come from the compiled fused kernel;
    they are added with the kernel's compensated summation in fixed groups of
    consecutive blocks (:func:`combine_in_groups`), so no task holds more
    than ``COMBINE_GROUP`` blocks' sums.  The result depends on the row chunks
    only, never on the workers, task timing or ``split_every``; see the module docstring for when it equals the in-memory call
    bit for bit (and by how much it may differ otherwise).

    Parameters
    ----------
    X : dask.array.Array, shape (m, n), chunked along rows
        Row-chunk sizes must be known.
    W : array_like, shape (n, 1) or (n,); b : float
    Y : dask or NumPy array, shape (1, m) or (m,)
        Labels in [0, 1]; rechunked to X's row chunks if they differ.
    sample_weight : dask or NumPy array, shape (1, m) or (m,), optional
    l2 : float, non-negative
    n_threads : int, optional
        Threads per task; the bits do not depend on it.
    split_every : int, optional
        Fan-in of the concatenations below each group's sum (default 64: none);
        the result does not depend on it.
    compute : bool
        False returns a ``dask.delayed`` object yielding the tuple.

    Returns
    -------
    J : float
    dW : ndarray, shape (n, 1) (float32 when X and W are float32)
    db : float

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastlogit.dask as fld
    >>> X = da.from_array(np.eye(2), chunks=(1, 2))
    >>> J, dW, db = fld.cost_and_gradients(X, np.zeros((2, 1)), 0.0, np.array([[1.0, 0.0]]))
    >>> round(J, 6), dW.ravel(), db
    (0.693147, array([-0.25,  0.25]), 0.0)
    """
    import dask

    X, W_vec, b, Y1, sw1, l2, dtype = _prepare_cost_inputs(X, W, b, Y, sample_weight, l2)
    split_every = check_split_every(split_every)
    total, token = partials_graph(X, Y1, sw1, W_vec, b, n_threads, split_every)
    result = dask.delayed(finish_sums, pure=True)(
        total, W_vec, l2, dtype, dask_key_name="fastlogit-cost_and_gradients-" + token)
    return result.compute() if compute else result


def in_memory_cost_and_gradients(X: ArrayLike, W: ArrayLike, b: float, Y: ArrayLike,
                                 row_chunks: Sequence[int], *, sample_weight: ArrayLike | None = None,
                                 l2: float = 0.0, n_threads: int | None = None):
    """What :func:`cost_and_gradients` computes, on a NumPy X cut into ``row_chunks``.

    The bit-for-bit twin of the distributed computation (same kernel calls on
    the same blocks, same grouped combination: :func:`combine_in_groups`), for checking a cluster's result on
    one machine.

    Examples
    --------
    >>> import numpy as np, fastlogit.dask as fld
    >>> J, dW, db = fld.in_memory_cost_and_gradients(np.eye(2), np.zeros((2, 1)), 0.0,
    ...                                              [[1.0, 0.0]], (1, 1))
    >>> round(J, 6)
    0.693147
    """
    X = check_X(X)
    m, n = X.shape
    W_arr = as_real_array(W, "W")
    W_vec, _ = check_W(W, n)
    b = check_scalar(b, "b")
    l2 = check_nonneg(l2, "l2")
    Y = as_row(Y, "Y", m)
    sw = None if sample_weight is None else as_row(sample_weight, "sample_weight", m)
    bounds = np.concatenate([[0], np.cumsum(np.asarray(row_chunks, dtype=np.int64))])
    if bounds[-1] != m:
        raise ValueError(f"row_chunks must add up to X's {m} rows; they add up to {bounds[-1]}")
    parts = [_block_partials(X[lo:hi], Y[lo:hi], None if sw is None else sw[lo:hi],
                             W_vec, b, n_threads)
             for lo, hi in zip(bounds[:-1], bounds[1:])]
    return finish_partials(np.concatenate(parts, axis=0), W_vec, l2, result_dtype(X.dtype, W_arr.dtype))
