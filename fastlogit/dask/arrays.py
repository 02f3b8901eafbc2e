"""Dask arrays and DataFrames scored block by block with the in-memory kernels.

Helpers shared by the other modules of :mod:`fastlogit.dask` (row chunking,
W and row-vector checks through :mod:`fastlogit._validation`), and the lazy
element-wise and row-wise functions: :func:`sigmoid`, :func:`forward_pass`,
:func:`predict`, :func:`score_dataframe`.
"""
from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastlogit._validation import (
    as_real_array,
    as_row,
    check_scalar,
    check_threshold,
    check_W,
    result_dtype,
    working_dtype,
)

if TYPE_CHECKING:  # pragma: no cover
    import dask.array
    import dask.dataframe

__all__ = ["ColumnChunksWarning", "sigmoid", "forward_pass", "predict", "score_dataframe"]


class ColumnChunksWarning(UserWarning):
    """X was chunked along columns and had to be rechunked to whole rows.

    The kernels need every feature of a row in one block; rechunking costs a
    shuffle of X.  Chunk X along rows only (``X.rechunk({1: -1})``) once and
    reuse it.
    """


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def dask_array_module():
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError("fastlogit.dask needs Dask: pip install 'fastlogit[dask]'") from exc
    return da


def is_dask_array(value) -> bool:
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover
        return False
    return isinstance(value, da.Array)


def describe(value) -> str:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None:
        return f"{type(value).__module__}.{type(value).__name__} of shape {shape} and dtype {dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def rows_chunked(X, name: str = "X"):
    """X as a 2-D dask array with one chunk along columns (rechunked with a warning)."""
    dask_array_module()
    if not is_dask_array(X):
        raise TypeError(f"{name} must be a dask.array.Array (fastlogit's own functions take "
                        f"in-memory arrays); got {describe(X)}")
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


def check_W_for(W, n: int) -> tuple[NDArray, NDArray]:
    """(W as given, validated, as an (n, 1) array of its dtype; W as float64 (n,))."""
    if is_dask_array(W):
        raise TypeError("W must be an in-memory array of shape (n, 1) (it is tiny); got a dask array")
    W_vec, _ = check_W(W, n)
    W_arr = as_real_array(W, "W").reshape(n, 1)
    return W_arr, W_vec


def aligned_rows(value, X, name: str):
    """A (1, m) or (m,) argument as a 1-D dask array with X's row chunks."""
    da = dask_array_module()
    m = X.shape[0]
    if any(math.isnan(c) for c in X.chunks[0]):
        raise ValueError("X has unknown row-chunk sizes (nan); call X.compute_chunk_sizes() "
                         "first so that its rows can be matched with " + name)
    if is_dask_array(value):
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


def tokenize(*args) -> str:
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
    dask_array_module()
    if not is_dask_array(z):
        raise TypeError(f"z must be a dask.array.Array (fastlogit.sigmoid takes in-memory arrays); "
                        f"got {describe(z)}")
    dtype = working_dtype(z.dtype, "z")
    return z.map_blocks(_sigmoid_block, n_threads, dtype=dtype,
                        meta=np.empty((0,) * z.ndim, dtype=dtype),
                        name="fastlogit-sigmoid-" + tokenize(z, n_threads))


def _forward_block(X_block, W, b, n_threads):
    from fastlogit import forward_pass as _forward_pass

    return _forward_pass(X_block, W, b, n_threads=n_threads)


def _predict_block(X_block, W, b, threshold, n_threads):
    from fastlogit import predict as _predict

    return _predict(X_block, W, b, threshold, n_threads=n_threads)


def _row_map(func, X, dtype, name, *args):
    """Apply ``func(X_block, *args) -> (1, rows)`` to every row block: (1, m) result."""
    da = dask_array_module()
    literal_args = [item for a in args for item in (a, None)]
    # Output index "ji" (X's column index, resized to 1) rather than a new
    # axis with the columns contracted: a contraction makes blockwise
    # concatenate, i.e. copy, every block of X before the call.
    return da.blockwise(func, "ji", X, "ij", *literal_args,
                        adjust_chunks={"j": 1}, dtype=dtype,
                        meta=np.empty((0, 0), dtype=dtype),
                        name=f"fastlogit-{name}-" + tokenize(X, *args))


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
    X = rows_chunked(X)
    W_arr, _ = check_W_for(W, X.shape[1])
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
    X = rows_chunked(X)
    W_arr, _ = check_W_for(W, X.shape[1])
    b = check_scalar(b, "b")
    threshold = check_threshold(threshold)
    return _row_map(_predict_block, X, np.dtype(np.int64), "predict", W_arr, b, threshold,
                    n_threads)


def _score_partition(part, W, b, name, n_threads, dtype):
    import pandas as pd
    from fastlogit import forward_pass as _forward_pass

    # Nullable columns (pandas' Int64, Float64, boolean) hold NA: a missing
    # value scores NaN, as NaN in an in-memory X does.
    X = part.to_numpy(dtype=dtype, na_value=np.nan)
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
    W_arr, _ = check_W_for(W, len(columns))
    b = check_scalar(b, "b")
    work = [working_dtype(df.dtypes[c], f"column {c!r}") for c in columns]
    x_dtype = np.dtype(np.float32) if all(d == np.float32 for d in work) else np.dtype(np.float64)
    dtype = result_dtype(x_dtype, W_arr.dtype)
    meta = pd.Series(np.empty(0, dtype=dtype), name=name, index=df._meta.index[:0])
    return df[columns].map_partitions(_score_partition, W_arr, b, name, n_threads, x_dtype,
                                      meta=meta, enforce_metadata=False)


