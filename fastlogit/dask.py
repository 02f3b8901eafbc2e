"""fastlogit on Dask: scoring and training when X does not fit one machine.

Install with ``pip install "fastlogit[dask]"``.  fastlogit's compiled kernels run
inside Dask tasks, one block of rows at a time; Dask does the scheduling, the
data movement and the fault tolerance.  Nothing here moves X: every task reads
one row block (and the matching block of Y / sample weights) and returns
either that block's scores or a few numbers (its partial sums).

Conventions are those of :mod:`fastlogit`: X (m, n) one example per row, a dask
array chunked along rows only; Y (1, m) or (m,); W (n, 1); b scalar.

Reproducibility of :func:`cost_and_gradients`
---------------------------------------------
Each row block's *unnormalised* sums (loss, X^T r, sum r, weight) come from
the compiled fused kernel, exactly as the in-memory call computes them.  The
tree reduction only gathers these partials, in block order; the root combines
them with the kernel's own compensated (Neumaier) summation, in block order.
So:

1. The result does not depend on the number of workers, the order in which
   tasks finish, retries after a lost worker, ``split_every``, or
   ``n_threads``: it is a function of the row chunks (and the values) only.
   It equals, bit for bit, :func:`in_memory_cost_and_gradients` on a NumPy X
   with the same row chunks.
2. It equals ``fastlogit.cost_and_gradients`` on the whole X in memory **bit
   for bit** when (a) the row chunks are :func:`kernel_row_chunks` ``(m, n,
   dtype)`` (the in-memory kernel's own reduction chunks), (b) each of those
   chunks holds at most 64 kernel blocks, i.e. ``m <= 4096 *
   rows_per_block(n)`` (2 097 152 rows for n <= 16 float64 features; beyond
   that the kernel re-chunks a block and the summation trees differ), (c) the
   in-memory X and every block are C-contiguous (C and F layouts accumulate
   the dot products in different orders), and (d) the sample weights are
   None, or their block sums are exact (integers, for example): the in-memory
   call normalises by ``numpy.sum`` of all weights, this one by the
   compensated sum of the block sums.  These conditions are sufficient, not
   necessary: outside (b) the two compensated summation trees usually still
   round to the same bits (m = 3 000 000, n = 3 did), but nothing guarantees it.
3. Otherwise the two differ by rounding in the summation only:
   ``|dask - memory| <= ~4 eps sum_blocks |partial|`` per component (eps =
   2.2e-16); for the cost, whose partials are all positive, that is a few
   units in the last place (relative 1e-15 or better).  A gradient component
   that cancels to nearly zero (near the optimum) carries the same *absolute*
   error, hence a larger relative one, as in the in-memory call itself.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastlogit import _kernels
from fastlogit._objective import l2_from_C, penalised_objective
from fastlogit._validation import (
    as_real_array,
    as_row,
    check_count,
    check_labels_found,
    check_nonneg,
    check_scalar,
    check_W,
    check_X,
    resolve_threads,
    working_dtype,
    result_dtype,
)

if TYPE_CHECKING:  # pragma: no cover
    import dask.array
    import dask.dataframe

__all__ = [
    "ColumnChunksWarning",
    "sigmoid",
    "forward_pass",
    "predict",
    "score_dataframe",
    "cost_and_gradients",
    "in_memory_cost_and_gradients",
    "kernel_row_chunks",
    "fit",
    "fit_classifier",
    "read_parts",
    "score_parts",
    "fit_parts",
    "scheduler_client",
]

# ``DEF MAX_CHUNKS`` of _kernels.pyx: the in-memory fused kernel splits its
# blocks into at most this many reduction chunks (read from the extension
# when it exports the constant).
_KERNEL_MAX_CHUNKS = int(getattr(_kernels, "REDUCTION_CHUNKS", 64))
# Default fan-in of the tree reduction: the partials are (n + 3) doubles per
# block, so fan-in bounds task count at the top, not memory.
_SPLIT_EVERY = 32


class ColumnChunksWarning(UserWarning):
    """X was chunked along columns and had to be rechunked to whole rows.

    The kernels need every feature of a row in one block; rechunking costs a
    shuffle of X.  Chunk X along rows only (``X.rechunk({1: -1})``) once and
    reuse it.
    """


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def _dask_array_module():
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError("fastlogit.dask needs Dask: pip install 'fastlogit[dask]'") from exc
    return da


def _is_dask_array(value) -> bool:
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover
        return False
    return isinstance(value, da.Array)


def _describe(value) -> str:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None:
        return f"{type(value).__module__}.{type(value).__name__} of shape {shape} and dtype {dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def _rows_chunked(X, name: str = "X"):
    """X as a 2-D dask array with one chunk along columns (rechunked with a warning)."""
    _dask_array_module()
    if not _is_dask_array(X):
        raise TypeError(f"{name} must be a dask.array.Array (fastlogit's own functions take "
                        f"in-memory arrays); got {_describe(X)}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D dask array of shape (m, n), one example per row; "
                         f"got shape {X.shape}")
    working_dtype(X.dtype, name)
    if len(X.chunks[1]) > 1:
        warnings.warn(
            f"{name} is chunked along columns ({len(X.chunks[1])} column chunks); rechunking it "
            "to whole rows. Do this once yourself with X.rechunk({1: -1}) to avoid the shuffle "
            "on every call.", ColumnChunksWarning, stacklevel=3)
        X = X.rechunk({1: -1})
    return X


def _check_W_for(W, n: int) -> tuple[NDArray, NDArray]:
    """(W as given, validated, as an (n, 1) array of its dtype; W as float64 (n,))."""
    if _is_dask_array(W):
        raise TypeError("W must be an in-memory array of shape (n, 1) (it is tiny); got a dask array")
    W_vec, _ = check_W(W, n)
    W_arr = as_real_array(W, "W").reshape(n, 1)
    return W_arr, W_vec


def _aligned_rows(value, X, name: str):
    """A (1, m) or (m,) argument as a 1-D dask array with X's row chunks."""
    da = _dask_array_module()
    m = X.shape[0]
    if any(math.isnan(c) for c in X.chunks[0]):
        raise ValueError("X has unknown row-chunk sizes (nan); call X.compute_chunk_sizes() "
                         "first so that its rows can be matched with " + name)
    if _is_dask_array(value):
        arr = value
        if arr.ndim == 2 and arr.shape[0] == 1:
            arr = arr.reshape(arr.shape[1])
        if arr.ndim != 1 or arr.shape[0] != m:
            raise ValueError(f"{name} must have shape (1, {m}) or ({m},); got shape {value.shape}")
        working_dtype(arr.dtype, name)
        if arr.chunks[0] != X.chunks[0]:
            arr = arr.rechunk((X.chunks[0],))
        return arr
    arr = as_row(value, name, m)
    return da.from_array(arr, chunks=(X.chunks[0],))


def _tokenize(*args) -> str:
    from dask.base import tokenize

    return tokenize(*args)


# ---------------------------------------------------------------------------
# Element-wise and row-wise scoring (lazy)
# ---------------------------------------------------------------------------

def _sigmoid_block(z, n_threads):
    from fastlogit import sigmoid as _sigmoid

    return _sigmoid(np.asarray(z), n_threads=n_threads)


def sigmoid(z: "dask.array.Array", *, n_threads: int | None = None) -> "dask.array.Array":
    """Lazy ``fastlogit.sigmoid`` of a dask array of any shape and chunking.

    Parameters
    ----------
    z : dask.array.Array
        float32 stays float32; float64, ints and bools give float64.
    n_threads : int, optional
        Threads per task (None: the worker's OpenMP default; Dask's workers
        set OMP_NUM_THREADS=1).

    Returns
    -------
    dask.array.Array of z's shape and chunks.

    Examples
    --------
    >>> import dask.array as da, fastlogit.dask as fld
    >>> fld.sigmoid(da.from_array([-1000.0, 0.0, 1000.0], chunks=2)).compute()
    array([0. , 0.5, 1. ])
    """
    _dask_array_module()
    if not _is_dask_array(z):
        raise TypeError(f"z must be a dask.array.Array (fastlogit.sigmoid takes in-memory arrays); "
                        f"got {_describe(z)}")
    dtype = working_dtype(z.dtype, "z")
    return z.map_blocks(_sigmoid_block, n_threads, dtype=dtype,
                        meta=np.empty((0,) * z.ndim, dtype=dtype),
                        name="fastlogit-sigmoid-" + _tokenize(z, n_threads))


def _forward_block(X_block, W, b, n_threads):
    from fastlogit import forward_pass as _forward_pass

    return _forward_pass(X_block, W, b, n_threads=n_threads)


def _predict_block(X_block, W, b, threshold, n_threads):
    from fastlogit import predict as _predict

    return _predict(X_block, W, b, threshold, n_threads=n_threads)


def _row_map(func, X, dtype, name, *args):
    """Apply ``func(X_block, *args) -> (1, rows)`` to every row block: (1, m) result."""
    da = _dask_array_module()
    literal_args = [item for a in args for item in (a, None)]
    # Output index "ji" (X's column index, resized to 1) rather than a new
    # axis with the columns contracted: a contraction makes blockwise
    # concatenate, i.e. copy, every block of X before the call.
    return da.blockwise(func, "ji", X, "ij", *literal_args,
                        adjust_chunks={"j": 1}, dtype=dtype,
                        meta=np.empty((0, 0), dtype=dtype),
                        name=f"fastlogit-{name}-" + _tokenize(X, *args))


def forward_pass(X: "dask.array.Array", W: ArrayLike, b: float, *,
                 n_threads: int | None = None) -> "dask.array.Array":
    """Lazy probabilities ``A = sigmoid(X @ W + b).T`` of a row-chunked dask X.

    Parameters
    ----------
    X : dask.array.Array, shape (m, n)
        Chunked along rows.  A chunking along columns is rechunked to whole
        rows once, with a :class:`ColumnChunksWarning`.
    W : array_like, shape (n, 1) or (n,)
    b : float
    n_threads : int, optional
        Threads per task (None: the worker's OpenMP default).

    Returns
    -------
    A : dask.array.Array, shape (1, m), chunks ((1,), X.chunks[0])
        float32 when X and W are float32, else float64; each block equals
        ``fastlogit.forward_pass`` of the X block, bit for bit.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastlogit.dask as fld
    >>> X = da.from_array(np.array([[105.0], [135.0], [170.0]]), chunks=(2, 1))
    >>> A = fld.forward_pass(X, np.array([[0.042]]), -5.66)
    >>> A.chunks, A.compute().round(3)
    (((1,), (2, 1)), array([[0.223, 0.502, 0.815]]))
    """
    X = _rows_chunked(X)
    W_arr, _ = _check_W_for(W, X.shape[1])
    b = check_scalar(b, "b")
    dtype = result_dtype(working_dtype(X.dtype, "X"), W_arr.dtype)
    return _row_map(_forward_block, X, dtype, "forward_pass", W_arr, b, n_threads)


def predict(X: "dask.array.Array", W: ArrayLike, b: float, threshold: float = 0.5, *,
            n_threads: int | None = None) -> "dask.array.Array":
    """Lazy 0/1 predictions ``forward_pass(X, W, b) >= threshold``, int64, shape (1, m).

    Chunking, validation and ``n_threads`` as in :func:`forward_pass`.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastlogit.dask as fld
    >>> X = da.from_array(np.array([[105.0], [170.0]]), chunks=(1, 1))
    >>> fld.predict(X, np.array([[0.042]]), -5.66).compute()
    array([[0, 1]])
    """
    X = _rows_chunked(X)
    W_arr, _ = _check_W_for(W, X.shape[1])
    b = check_scalar(b, "b")
    threshold = check_scalar(threshold, "threshold")
    return _row_map(_predict_block, X, np.dtype(np.int64), "predict", W_arr, b, threshold,
                    n_threads)


def _score_partition(part, W, b, name, n_threads, dtype):
    import pandas as pd
    from fastlogit import forward_pass as _forward_pass

    X = part.to_numpy(dtype=dtype)
    A = _forward_pass(X, W, b, n_threads=n_threads)
    return pd.Series(A[0], index=part.index, name=name)


def score_dataframe(df: "dask.dataframe.DataFrame", W: ArrayLike, b: float,
                    columns: Sequence[str], *, name: str = "probability",
                    n_threads: int | None = None) -> "dask.dataframe.Series":
    """Lazy probabilities of a dask DataFrame, the features taken by column name.

    Parameters
    ----------
    df : dask.dataframe.DataFrame
    W : array_like, shape (n, 1) or (n,)
        One weight per name in ``columns``, in that order.
    b : float
    columns : sequence of str, length n
        Feature columns (numeric), in the order of W.
    name : str
        Name of the resulting Series.

    Returns
    -------
    dask.dataframe.Series
        Same partitions, index and divisions as ``df``; float32 when every
        feature column and W are float32, else float64.

    Examples
    --------
    >>> import numpy as np, pandas as pd, dask.dataframe as dd, fastlogit.dask as fld
    >>> df = dd.from_pandas(pd.DataFrame({"glucose": [105.0, 135.0, 170.0]}), npartitions=2)
    >>> fld.score_dataframe(df, np.array([[0.042]]), -5.66, ["glucose"]).compute().round(3).tolist()
    [0.223, 0.502, 0.815]
    """
    import pandas as pd

    columns = [columns] if isinstance(columns, str) else list(columns)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing!r} are not in the DataFrame; it has {list(df.columns)!r}")
    W_arr, _ = _check_W_for(W, len(columns))
    b = check_scalar(b, "b")
    for c in columns:
        working_dtype(df.dtypes[c], f"column {c!r}")
    work = [working_dtype(df.dtypes[c], c) for c in columns]
    x_dtype = np.dtype(np.float32) if all(d == np.float32 for d in work) else np.dtype(np.float64)
    dtype = result_dtype(x_dtype, W_arr.dtype)
    meta = pd.Series(np.empty(0, dtype=dtype), name=name, index=df._meta.index[:0])
    return df[columns].map_partitions(_score_partition, W_arr, b, name, n_threads, x_dtype,
                                      meta=meta, enforce_metadata=False)


# ---------------------------------------------------------------------------
# Cost and gradients: per-block kernel sums, gathered and combined in order
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
    rows = int(_kernels.rows_per_block(int(n), itemsize))
    n_blocks = -(-int(m) // rows)
    n_chunks = min(n_blocks, _KERNEL_MAX_CHUNKS)
    if n_chunks == 0:
        return (0,)
    bounds = [min(rows * ((c * n_blocks) // n_chunks), m) for c in range(n_chunks + 1)]
    return tuple(hi - lo for lo, hi in zip(bounds[:-1], bounds[1:]))


def _block_partials(X_block, Y_block, sw_block, W_vec, b, n_threads):
    """Unnormalised sums of one row block, as a (1, n + 3) float64 row:
    [loss, sum r, sum s, X^T r (n)] with r = s (sigmoid(z) - y)."""
    X_block = check_X(X_block)
    k, n = X_block.shape
    out = np.zeros((1, n + 3))
    y = as_row(Y_block, "Y", k)
    if sw_block is None:
        sw, weight = np.empty(0, dtype=np.float64), float(k)
    else:
        sw = np.ascontiguousarray(as_row(sw_block, "sample_weight", k), dtype=np.float64)
        if not np.all(np.isfinite(sw)) or np.any(sw < 0):
            raise ValueError("sample_weight must hold finite non-negative numbers; got min "
                             f"{sw.min()!r}, max {sw.max()!r} in a block")
        weight = float(np.sum(sw))
    if k == 0:
        return out
    loss, dW, db, n_bad = _kernels.cost_and_gradients(
        X_block, W_vec, b, y, sw, True, resolve_threads(n_threads, X_block.size))
    check_labels_found(n_bad, y)
    out[0, 0], out[0, 1], out[0, 2] = loss, db, weight
    out[0, 3:] = dW
    return out


def _stack(*parts):
    # Keeps block order: the root sums the rows in exactly this order.
    return np.concatenate(parts, axis=0)


def _compensated_sum_rows(P: NDArray) -> NDArray:
    """Column sums of P, rows added in order with Neumaier compensation.

    The same operations as the fused kernel's combination of its chunk
    partials (``_neumaier_add`` then ``_compensated``), so the same bits.
    """
    width = P.shape[1]
    acc = np.zeros(width)
    comp = np.zeros(width)
    # inf - inf in the compensation of an infinite loss is expected (and
    # dropped below, as the kernel does).
    with np.errstate(invalid="ignore", over="ignore"):
        for x in P:
            t = acc + x
            comp += np.where(np.abs(acc) >= np.abs(x), (acc - t) + x, (x - t) + acc)
            acc = t
        return np.where(acc - acc == 0.0, acc + comp, acc)


def _finish(partials: NDArray, W_vec: NDArray, l2: float, dtype) -> tuple[float, NDArray, float]:
    """(J, dW (n, 1), db) from the stacked block partials, as _api.cost_and_gradients."""
    total = _compensated_sum_rows(partials)
    loss, db_sum, weight_sum, dW_sum = total[0], total[1], total[2], total[3:]
    if not weight_sum > 0:
        raise ValueError("sample_weight must not be all zero: the weighted mean cost is undefined")
    J = float(loss) / float(weight_sum)
    dW = dW_sum / float(weight_sum)
    db = float(db_sum) / float(weight_sum)
    J, dW = penalised_objective(J, dW, W_vec, l2)
    return float(J), dW.reshape(-1, 1).astype(dtype, copy=False), float(db)


def _partials_graph(X, Y1, sw1, W_vec, b, n_threads, split_every):
    """A Delayed that yields the (blocks, n + 3) partials, gathered by a tree
    of concatenations (fan-in ``split_every``) that keeps block order."""
    import dask
    da = _dask_array_module()

    n = X.shape[1]
    args = [X, "ij", Y1, "i"] + ([sw1, "i"] if sw1 is not None else [None, None])
    token = _tokenize(X, Y1, sw1, W_vec, b, n_threads)
    partials = da.blockwise(_block_partials, "ij", *args, W_vec, None, b, None, n_threads, None,
                            adjust_chunks={"i": 1, "j": n + 3}, concatenate=True,
                            dtype=np.float64, meta=np.empty((0, 0)),
                            name="fastlogit-partials-" + token)
    nodes = list(partials.to_delayed(optimize_graph=False).ravel())
    stack = dask.delayed(_stack, pure=True)
    level = 0
    while len(nodes) > split_every:
        nodes = [stack(*nodes[i:i + split_every],
                       dask_key_name=f"fastlogit-gather-{level}-{i // split_every}-{token}")
                 for i in range(0, len(nodes), split_every)]
        level += 1
    return nodes, token


def _prepare_cost_inputs(X, W, b, Y, sample_weight, l2):
    X = _rows_chunked(X)
    W_arr, W_vec = _check_W_for(W, X.shape[1])
    b = check_scalar(b, "b")
    l2 = check_nonneg(l2, "l2")
    if X.shape[0] == 0:
        raise ValueError("X has no rows (m = 0); the cost and its gradients need at least one example")
    Y1 = _aligned_rows(Y, X, "Y")
    sw1 = None if sample_weight is None else _aligned_rows(sample_weight, X, "sample_weight")
    dtype = result_dtype(working_dtype(X.dtype, "X"), W_arr.dtype)
    return X, W_vec, b, Y1, sw1, l2, dtype


def _check_split_every(split_every) -> int:
    if split_every is None:
        return _SPLIT_EVERY
    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise ValueError(f"split_every must be an int >= 2 or None; got {split_every!r}")
    return split_every


def cost_and_gradients(X: "dask.array.Array", W: ArrayLike, b: float, Y, *,
                       sample_weight=None, l2: float = 0.0, n_threads: int | None = None,
                       split_every: int | None = None, compute: bool = True):
    """``fastlogit.cost_and_gradients`` over a row-chunked dask X: one pass, a tree reduction.

    ``J = sum_i s_i loss_i / sum_i s_i + (l2 / 2) ||W||^2`` and its gradients.
    Each row block's unnormalised sums come from the compiled fused kernel;
    the tree gathers them in block order (fan-in ``split_every``) and the
    root adds them with the kernel's compensated summation, in block order.
    The result depends on the row chunks only, never on the workers or task
    timing; see the module docstring for when it equals the in-memory call
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
        Fan-in of the gathering tree (default 32).
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
    split_every = _check_split_every(split_every)
    nodes, token = _partials_graph(X, Y1, sw1, W_vec, b, n_threads, split_every)
    result = dask.delayed(_finish_nodes, pure=True)(
        W_vec, l2, dtype, *nodes, dask_key_name="fastlogit-cost_and_gradients-" + token)
    return result.compute() if compute else result


def _finish_nodes(W_vec, l2, dtype, *nodes):
    return _finish(np.concatenate(nodes, axis=0), W_vec, l2, dtype)


def in_memory_cost_and_gradients(X: ArrayLike, W: ArrayLike, b: float, Y: ArrayLike,
                                 row_chunks: Sequence[int], *, sample_weight: ArrayLike | None = None,
                                 l2: float = 0.0, n_threads: int | None = None):
    """What :func:`cost_and_gradients` computes, on a NumPy X cut into ``row_chunks``.

    The bit-for-bit twin of the distributed computation (same kernel calls on
    the same blocks, same combination), for checking a cluster's result on
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
    return _finish(np.concatenate(parts, axis=0), W_vec, l2, result_dtype(X.dtype, W_arr.dtype))


# ---------------------------------------------------------------------------
# fit: L-BFGS driven from the client
# ---------------------------------------------------------------------------

def fit(X: "dask.array.Array", Y, *, l2: float = 0.0, sample_weight=None,
        fit_intercept: bool = True, tol: float = 1e-8, max_iter: int = 1000,
        n_threads: int | None = None, split_every: int | None = None, persist: bool = True):
    """``fastlogit.fit`` for a dask X: L-BFGS on the client, one distributed pass per evaluation.

    Minimises ``J = sum_i s_i loss_i / sum_i s_i + (l2/2) ||W||^2`` with
    ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)`` and the options
    of ``fastlogit.fit(solver="lbfgs")`` (start at W = 0, b = log-odds of the
    weighted base rate; stop when max |gradient| <= tol).  Each evaluation is
    one :func:`cost_and_gradients`: the workers send back (n + 3) numbers per
    row block, the client does the O(n) optimiser step.

    Parameters
    ----------
    X : dask.array.Array, shape (m, n), chunked along rows
    Y : dask or NumPy array, shape (1, m) or (m,), labels in [0, 1]
    l2, sample_weight, fit_intercept, tol, max_iter, n_threads
        As in ``fastlogit.fit``.
    split_every : int, optional
        Fan-in of the gathering tree.
    persist : bool
        Persist X, Y and the weights in the cluster's memory for the run
        (default), so that each iteration reads memory instead of recomputing
        (or re-reading) X.  Needs the cluster to hold X.

    Returns
    -------
    fastlogit's FitResult
        W (n, 1) float64, b, cost, n_iter, converged, grad_max, n_evals,
        solver="lbfgs".

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastlogit.dask as fld
    >>> X = da.from_array(np.array([[1.05], [1.20], [1.35], [1.50], [1.70]]), chunks=(2, 1))
    >>> res = fld.fit(X, np.array([[0, 0, 1, 0, 1]]), l2=0.01)
    >>> res.converged, res.W.shape
    (True, (1, 1))
    """
    import dask

    from fastlogit._train import FitResult, _lbfgs, _warn_not_converged

    tol = check_nonneg(tol, "tol")
    max_iter = check_count(max_iter, "max_iter", 1)
    l2 = check_nonneg(l2, "l2")
    split_every = _check_split_every(split_every)
    X = _rows_chunked(X)
    m, n = X.shape
    if m == 0:
        raise ValueError("X has no rows (m = 0); training needs at least one example")
    Y1 = _aligned_rows(Y, X, "Y")
    sw1 = None if sample_weight is None else _aligned_rows(sample_weight, X, "sample_weight")
    if persist:
        X, Y1, sw1 = dask.persist(X, Y1, sw1)
    fit_b = bool(fit_intercept)
    n_evals = 0

    def objective(theta):
        nonlocal n_evals
        W = np.ascontiguousarray(theta[:n], dtype=np.float64)
        b = float(theta[n]) if fit_b else 0.0
        nodes, token = _partials_graph(X, Y1, sw1, W, b, n_threads, split_every)
        parts = dask.compute(*nodes)
        n_evals += 1
        J, dW, db = _finish(np.concatenate(parts, axis=0), W, l2, np.float64)
        grad = np.empty(n + fit_b)
        grad[:n] = dW[:, 0]
        if fit_b:
            grad[n] = db
        return J, grad

    theta0 = np.zeros(n + fit_b)
    if fit_b:
        # Same start as fastlogit.fit: b at the log-odds of the weighted base rate.
        if sw1 is None:
            p = float(Y1.astype(np.float64).sum().compute()) / m
        else:
            sy, s = dask.compute((sw1.astype(np.float64) * Y1).sum(), sw1.astype(np.float64).sum())
            p = float(sy) / float(s) if s > 0 else 0.5
        if 0.0 < p < 1.0:
            theta0[n] = math.log(p) - math.log1p(-p)
    J0, grad0 = objective(theta0)
    if not (math.isfinite(J0) and np.all(np.isfinite(grad0))):
        raise ValueError("X must hold finite numbers; the cost at the starting point is "
                         f"{J0!r} (NaN or inf in X?)")
    # The same L-BFGS driver (and options) as the in-memory fit.
    theta, cost, grad, n_iter, message, converged = _lbfgs(objective, theta0, J0, grad0,
                                                           tol, max_iter)
    grad_max = float(np.max(np.abs(grad))) if grad.size else 0.0
    if not converged:
        _warn_not_converged("fastlogit.dask.fit (lbfgs)", n_iter, grad_max, tol, message)
    theta = np.asarray(theta, dtype=np.float64)
    return FitResult(W=theta[:n].reshape(-1, 1).copy(), b=float(theta[n]) if fit_b else 0.0,
                     cost=cost, n_iter=n_iter, converged=bool(converged),
                     grad_max=grad_max, n_evals=n_evals, solver="lbfgs", message=message)


def fit_classifier(X: "dask.array.Array", y, *, C: float = 1.0, sample_weight=None,
                   fit_intercept: bool = True, tol: float = 1e-8, max_iter: int = 1000,
                   n_threads: int | None = None):
    """What ``LogisticRegression(C=...).fit`` needs for dask inputs: labels, C and the fit.

    Finds the two classes of ``y`` (any labels), maps ``classes[1]`` to 1,
    converts scikit-learn's ``C`` to ``l2 = 1 / (C * sum(sample_weight))``
    (``C = inf``: no penalty) and runs :func:`fit`.

    Parameters
    ----------
    X : dask.array.Array, shape (m, n), chunked along rows
    y : dask or NumPy array, shape (m,), exactly two distinct labels
    C : float, positive (may be inf)
    sample_weight : dask or NumPy array, shape (m,), optional

    Returns
    -------
    classes : ndarray of shape (2,)
    result : FitResult

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastlogit.dask as fld
    >>> X = da.from_array(np.array([[1.05], [1.20], [1.35], [1.50], [1.70]]), chunks=(2, 1))
    >>> classes, res = fld.fit_classifier(X, np.array(["no", "no", "yes", "no", "yes"]))
    >>> classes.tolist(), res.converged
    (['no', 'yes'], True)
    """
    import dask
    da = _dask_array_module()

    C = check_scalar(C, "C")
    if not C > 0:
        raise ValueError(f"C must be a positive float (inf for no penalty); got {C!r}")
    X = _rows_chunked(X)
    y = y if _is_dask_array(y) else da.from_array(np.asarray(y), chunks=(X.chunks[0],))
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have shape ({X.shape[0]},); got shape {y.shape}")
    if sample_weight is None:
        classes = da.unique(y).compute()
        weight_sum = float(X.shape[0])
    else:
        sw = (sample_weight if _is_dask_array(sample_weight)
              else da.from_array(np.asarray(sample_weight, dtype=np.float64), chunks=(X.chunks[0],)))
        classes, weight_sum = dask.compute(da.unique(y), sw.sum())
        weight_sum = float(weight_sum)
    if classes.size != 2:
        raise ValueError(f"y must hold exactly two classes for logistic regression; got "
                         f"{classes.size}: {list(classes[:5])}")
    l2 = l2_from_C(C, weight_sum)
    Y = (y == classes[1]).astype(np.float64)
    result = fit(X, Y, l2=l2, sample_weight=sample_weight, fit_intercept=fit_intercept,
                 tol=tol, max_iter=max_iter, n_threads=n_threads)
    return classes, result


# ---------------------------------------------------------------------------
# A folder of Parquet or .npy parts as one data set (for the command line)
# ---------------------------------------------------------------------------

PART_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".npy": "npy"}


class Parts:
    """A folder of parts read lazily as one data set (see :func:`read_parts`).

    Attributes
    ----------
    X : dask.array.Array, shape (m, n), one row block per part
    Y : dask.array.Array of shape (m,), or None when no label was asked for
    features : list of str, the columns of X
    files : list of Path, the parts in order
    rows : tuple of int, rows per part
    format : "parquet" or "npy"
    """

    def __init__(self, X, Y, features, files, rows, fmt):
        self.X, self.Y, self.features, self.files, self.rows, self.format = (
            X, Y, features, files, rows, fmt)

    def __repr__(self) -> str:
        return (f"Parts({len(self.files)} {self.format} parts, {sum(self.rows)} rows, "
                f"features={self.features!r})")


def _list_parts(folder) -> tuple[list[Path], str]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"INPUT {str(folder)!r} must be a folder of .parquet or .npy parts; "
                         "it is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in PART_SUFFIXES and p.is_file())
    formats = {PART_SUFFIXES[p.suffix.lower()] for p in files}
    if not files:
        raise ValueError(f"INPUT {str(folder)!r} holds no .parquet or .npy parts")
    if len(formats) > 1:
        raise ValueError(f"INPUT {str(folder)!r} mixes Parquet and .npy parts; expected one format")
    return files, formats.pop()


def _npy_header(path: Path):
    from numpy.lib import format as npy_format

    with open(path, "rb") as fh:
        version = npy_format.read_magic(fh)
        reader = {(1, 0): npy_format.read_array_header_1_0,
                  (2, 0): npy_format.read_array_header_2_0}.get(version)
        if reader is None:
            raise ValueError(f"{str(path)!r}: unsupported .npy version {version}")
        return reader(fh)  # (shape, fortran_order, dtype)


def _npy_columns(path: Path) -> tuple[int, list[str], np.dtype]:
    shape, _, dtype = _npy_header(path)
    if dtype.names:
        if len(shape) != 1:
            raise ValueError(f"{str(path)!r}: a structured .npy part must be 1-D; got shape {shape}")
        return shape[0], list(dtype.names), dtype
    if len(shape) != 2:
        raise ValueError(f"{str(path)!r}: a .npy part must be 2-D (rows, columns); got shape {shape}")
    return shape[0], [str(j) for j in range(shape[1])], dtype


def _parquet_columns(path: Path) -> tuple[int, list[str], Any]:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path)
    return meta.metadata.num_rows, list(meta.schema_arrow.names), meta.schema_arrow


def _read_block(path: str, fmt: str, columns: list[str], dtype) -> NDArray:
    """Columns of one part as a C-contiguous (rows, len(columns)) array."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=columns)
        out = np.empty((table.num_rows, len(columns)), dtype=dtype)
        for j, name in enumerate(columns):
            out[:, j] = table.column(name).to_numpy()
        return out
    data = np.load(path, mmap_mode="r")
    if data.dtype.names:
        out = np.empty((data.shape[0], len(columns)), dtype=dtype)
        for j, name in enumerate(columns):
            out[:, j] = data[name]
        return out
    return np.ascontiguousarray(data[:, [int(c) for c in columns]], dtype=dtype)


def read_parts(folder, *, columns: Sequence[str] | None = None, label: str | None = None,
               dtype=np.float64) -> Parts:
    """Read a folder of Parquet (``*.parquet``) or ``.npy`` parts lazily as one data set.

    Parts are taken in file-name order; each part becomes one row block of X,
    read by the worker that scores it (nothing passes through the client).
    Only the part headers (Parquet footers, .npy headers) are read here.

    Parameters
    ----------
    folder : path
    columns : sequence of str, optional
        Feature columns.  Default: every column but ``label``.  A plain 2-D
        .npy part has columns named "0", "1", ...; a structured one, its fields.
    label : str, optional
        Label column, returned as Y.
    dtype : float32 or float64
        dtype of X.

    Returns
    -------
    Parts
        ``.X`` (m, n) dask array, ``.Y`` (m,) or None, ``.features``, ``.files``, ``.rows``.

    Examples
    --------
    >>> import fastlogit.dask as fld                                  # doctest: +SKIP
    >>> parts = fld.read_parts("data/", label="outcome")             # doctest: +SKIP
    >>> parts.X.chunks[0] == parts.rows                              # doctest: +SKIP
    True
    """
    import dask
    da = _dask_array_module()

    files, fmt = _list_parts(folder)
    describe = _parquet_columns if fmt == "parquet" else _npy_columns
    rows, names = [], None
    # Footers and headers are small reads dominated by latency (an object
    # store answers in ~10 ms): read them concurrently, keep file order.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(32, len(files))) as pool:
        described = list(pool.map(describe, files))
    for path, (k, part_names, _) in zip(files, described):
        if names is None:
            names = part_names
        elif part_names != names:
            raise ValueError(f"part {path.name!r} has columns {part_names!r}; the first part "
                             f"{files[0].name!r} has {names!r}")
        rows.append(int(k))
    if label is not None and label not in names:
        raise ValueError(f"label column {label!r} is not in the parts; they have {names!r}")
    features = [c for c in names if c != label] if columns is None else [str(c) for c in columns]
    missing = [c for c in features if c not in names]
    if missing:
        raise ValueError(f"columns {missing!r} are not in the parts; they have {names!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64; got {dtype}")
    read = dask.delayed(_read_block, pure=True)
    X = da.concatenate([
        da.from_delayed(read(str(p), fmt, features, dtype), shape=(k, len(features)), dtype=dtype)
        for p, k in zip(files, rows)], axis=0)
    Y = None
    if label is not None:
        Y = da.concatenate([
            da.from_delayed(read(str(p), fmt, [label], np.float64), shape=(k, 1),
                            dtype=np.float64)[:, 0]
            for p, k in zip(files, rows)], axis=0)
    return Parts(X, Y, features, files, tuple(rows), fmt)


def _write_part(A_block, path: str, fmt: str, threshold) -> int:
    """Write one part's probabilities (and labels) atomically; return its rows."""
    prob = np.asarray(A_block).reshape(-1)
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            columns = {"probability": pa.array(prob)}
            if threshold is not None:
                columns["label"] = pa.array((prob >= threshold).astype(np.int8))
            pq.write_table(pa.table(columns), tmp)
        else:
            if threshold is not None:
                record = np.empty(prob.shape[0], dtype=[("probability", prob.dtype), ("label", np.int8)])
                record["probability"] = prob
                record["label"] = prob >= threshold
                prob = record
            with open(tmp, "wb") as fh:
                np.save(fh, prob)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return prob.shape[0]


def _score_file(path, fmt, features, dtype, W, b, out_path, out_fmt, threshold, n_threads) -> int:
    from fastlogit import forward_pass as _forward_pass

    X = _read_block(path, fmt, features, dtype)
    return _write_part(_forward_pass(X, W, b, n_threads=n_threads), out_path, out_fmt, threshold)


def _model_parts(model) -> tuple[NDArray, float, list[str] | None, np.dtype]:
    """(W (n, 1), b, feature names or None, dtype) from a model-like object or file."""
    if isinstance(model, (str, os.PathLike)):
        from fastlogit.model_io import load_model

        model = load_model(model)
    if isinstance(model, tuple) and len(model) == 2:
        W, b = model
        return np.asarray(W, dtype=np.float64).reshape(-1, 1), float(b), None, np.dtype(np.float64)
    if hasattr(model, "features") and hasattr(model, "W"):        # model_io.Model
        return (np.asarray(model.W, dtype=np.float64).reshape(-1, 1), float(model.b),
                list(model.features), np.dtype(getattr(model, "dtype", "float64")))
    if hasattr(model, "W") and hasattr(model, "b"):                # FitResult
        return np.asarray(model.W, dtype=np.float64).reshape(-1, 1), float(model.b), None, np.dtype(np.float64)
    if hasattr(model, "coef_") and hasattr(model, "intercept_"):   # scikit-learn-like estimator
        names = getattr(model, "feature_names_in_", None)
        return (np.asarray(model.coef_, dtype=np.float64).reshape(-1, 1),
                float(np.ravel(model.intercept_)[0]),
                None if names is None else [str(c) for c in names], np.dtype(np.float64))
    raise TypeError("model must be a fastlogit Model, a model file path, a FitResult, a fitted "
                    f"estimator or a (W, b) tuple; got {type(model).__name__}")


def score_parts(model, input_folder, output, *, scheduler: str | None = None,
                columns: Sequence[str] | None = None, output_format: str | None = None,
                threshold: float | None = None, n_threads: int | None = None) -> dict:
    """Score a folder of parts with Dask, writing one output part per input part.

    Part ``k`` of the input (file-name order) gives part ``k`` of the output,
    named after it (``data-007.parquet`` -> ``OUTPUT/data-007.parquet``), with
    a column ``probability`` (and ``label`` if ``threshold`` is given).
    Each part is read, scored and written by one worker task; every file is
    written to a temporary name and renamed on success, so a retried task
    (a lost worker) leaves no partial part behind.

    Parameters
    ----------
    model : fastlogit Model, model file path, FitResult, estimator or (W, b)
        A Model (or file) gives the feature names and the precision (dtype).
    input_folder : path
        ``*.parquet`` or ``*.npy`` parts (see :func:`read_parts`).
    output : path
        Output folder (created if missing).
    scheduler : str, optional
        ``"local:N"``, a scheduler address, or None for the current default
        (an active ``distributed.Client`` if there is one).  See
        :func:`scheduler_client`.
    columns : sequence of str, optional
        Feature columns when the model carries no names (default: all).
    output_format : {"parquet", "npy"}, optional
        Default: the input's format.
    threshold : float, optional
        Also write 0/1 labels ``probability >= threshold`` (int8).
    n_threads : int, optional
        Threads per task.

    Returns
    -------
    dict with ``rows``, ``parts``, ``seconds``, ``output`` (str) and ``workers``.

    Examples
    --------
    >>> import fastlogit.dask as fld                                          # doctest: +SKIP
    >>> fld.score_parts("model.json", "parts/", "scores/", scheduler="local:2")  # doctest: +SKIP
    {'rows': 10000000, 'parts': 40, ...}
    """
    import dask

    W, b, names, dtype = _model_parts(model)
    if columns is None:
        columns = names
    if threshold is not None:
        threshold = check_scalar(threshold, "threshold")
    files, fmt = _list_parts(input_folder)
    out_fmt = output_format or fmt
    if out_fmt not in ("parquet", "npy"):
        raise ValueError(f"output_format must be 'parquet' or 'npy'; got {output_format!r}")
    parts = read_parts(input_folder, columns=columns, dtype=dtype)
    if len(parts.features) != W.shape[0]:
        raise ValueError(f"the model has {W.shape[0]} weights but the parts give "
                         f"{len(parts.features)} feature columns {parts.features!r}")
    out_dir = Path(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".parquet" if out_fmt == "parquet" else ".npy"
    # One task per part (read, score, write): the fewest tasks for the
    # scheduler, and no block of X or of scores is ever held between tasks.
    score = dask.delayed(_score_file, pure=True)
    writes = [score(str(p), parts.format, parts.features, dtype, W.astype(dtype), b,
                    str(out_dir / (p.stem + suffix)), out_fmt, threshold, n_threads,
                    dask_key_name=f"fastlogit-score-part-{k}-{_tokenize(str(p), W, b, out_fmt)}")
              for k, p in enumerate(parts.files)]
    with scheduler_client(scheduler) as client:
        start = time.perf_counter()
        rows = dask.compute(*writes)
        seconds = time.perf_counter() - start
        workers = len(client.scheduler_info()["workers"]) if client is not None else 0
    return {"rows": int(sum(rows)), "parts": len(rows), "seconds": seconds,
            "output": str(out_dir), "workers": workers}


def fit_parts(input_folder, label: str, *, columns: Sequence[str] | None = None,
              scheduler: str | None = None, dtype=np.float64, C: float | None = None,
              **fit_kwargs):
    """:func:`fit` on a folder of parts (``fastlogit train --scheduler``).

    ``C`` (scikit-learn's inverse penalty, inf for none) may be given instead
    of ``l2``: ``l2 = 1 / (C * rows)``, the rows counted from the part footers.

    Returns
    -------
    (FitResult, features, rows)
        The fit, the feature names in the order of W, and the number of rows.

    Examples
    --------
    >>> res, features, rows = fld.fit_parts("parts/", "outcome", C=1.0,
    ...                                     scheduler="local:2")  # doctest: +SKIP
    """
    parts = read_parts(input_folder, columns=columns, label=label, dtype=dtype)
    rows = int(sum(parts.rows))
    if C is not None:
        if "l2" in fit_kwargs:
            raise TypeError("give C or l2, not both")
        C = check_scalar(C, "C")
        if not C > 0:
            raise ValueError(f"C must be a positive float (inf for no penalty); got {C!r}")
        fit_kwargs["l2"] = l2_from_C(C, rows)
    with scheduler_client(scheduler):
        res = fit(parts.X, parts.Y, **fit_kwargs)
    return res, parts.features, rows


@contextlib.contextmanager
def scheduler_client(scheduler: str | None) -> Iterator[Any]:
    """A ``distributed.Client`` for the command line's ``--scheduler`` value.

    * ``"local:N"``: start a LocalCluster of N worker processes (one thread
      each, listening on 127.0.0.1 only, no dashboard) and close it on exit;
    * any other string: the address of a running ``dask scheduler``
      (``tcp://host:8786`` or ``host:8786``); the client is closed on exit,
      the cluster is not;
    * None: yield the current default Client (or None: Dask's local threads).

    Examples
    --------
    >>> with scheduler_client("local:2") as client:                 # doctest: +SKIP
    ...     print(len(client.scheduler_info()["workers"]))
    2
    """
    if scheduler is None:
        try:
            from distributed import default_client
            client = default_client()
        except (ImportError, ValueError):
            client = None
        yield client
        return
    from distributed import Client, LocalCluster

    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ValueError(f"scheduler must be 'local:N' or a scheduler address; got {scheduler!r}")
    if scheduler.startswith("local:"):
        count = scheduler[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"scheduler 'local:N' needs a positive worker count N; got {scheduler!r}")
        with LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster, \
                Client(cluster) as client:
            yield client
        return
    with Client(scheduler) as client:
        yield client
