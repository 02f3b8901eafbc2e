"""Input checking and normalisation for the public API.

Every public function passes its arguments through these helpers before any
kernel runs, so that a kernel only ever sees C- or F-contiguous float32/float64
data of the right shapes.  Error messages name the argument, say what was
received and what was expected.
"""
from __future__ import annotations

import numbers
import os

import numpy as np

from fastlogit import _kernels

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Below this many elements of work a kernel runs on one thread: starting a
# team costs more than it saves (measured by `fastlogit bench --sizes`).
SERIAL_BELOW = 1 << 16


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def as_real_array(value, name: str) -> np.ndarray:
    """``value`` as a NumPy array of a real (float32 or float64) dtype.

    float32 and float64 are kept (no copy); booleans, integers and float16
    are converted to float64 (float16 to float32); anything else is a
    TypeError that names the argument.
    """
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be array-like of real numbers; got {_describe(value)}") from exc
    kind = arr.dtype.kind
    if kind == "f":
        if arr.dtype.itemsize > 8:
            raise TypeError(f"{name} must be float32 or float64; got dtype {arr.dtype}")
        target = np.float32 if arr.dtype.itemsize <= 4 else np.float64
    elif kind in "biu":
        target = np.float64
    else:
        raise TypeError(
            f"{name} must hold real numbers (float32, float64, int or bool); "
            f"got dtype {arr.dtype}"
        )
    # astype(copy=False) also brings big-endian data to native byte order.
    return arr.astype(np.dtype(target).newbyteorder("="), copy=False)


def as_contiguous(arr: np.ndarray) -> np.ndarray:
    """C- or F-contiguous view of ``arr`` (copied to C order only if neither)."""
    if arr.flags.c_contiguous or arr.flags.f_contiguous:
        return arr
    return np.ascontiguousarray(arr)


def check_X(X) -> np.ndarray:
    X = as_real_array(X, "X")
    if X.ndim != 2:
        raise ValueError(
            f"X must be a 2-D array of shape (m, n), one example per row; got shape {X.shape}"
        )
    return as_contiguous(X)


def check_W(W, n: int) -> tuple[np.ndarray, np.dtype]:
    """(W as a contiguous float64 vector of length n, W's own dtype).

    Accepts shapes (n, 1) and (n,).  W is tiny, so it is always widened:
    scores are accumulated in float64 whatever the dtype of X.
    """
    W_arr = as_real_array(W, "W")
    if W_arr.shape not in ((n, 1), (n,)):
        raise ValueError(
            f"X has {n} features but W has shape {W_arr.shape}; "
            f"expected W of shape ({n}, 1) or ({n},)"
        )
    return np.ascontiguousarray(W_arr.reshape(n), dtype=np.float64), W_arr.dtype


def check_scalar(value, name: str) -> float:
    """A real scalar (or size-1 array) as a Python float."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    arr = as_real_array(value, name)
    if arr.size != 1:
        raise ValueError(f"{name} must be a scalar; got an array of shape {arr.shape}")
    return float(arr.reshape(()))


def as_row(value, name: str, m: int | None = None) -> np.ndarray:
    """A (1, m) or (m,) argument as a contiguous 1-D array of length m."""
    arr = as_real_array(value, name)
    shape = arr.shape
    if arr.ndim == 2 and shape[0] == 1:
        arr = arr[0]
    expected = f"(1, {m}) or ({m},)" if m is not None else "(1, m) or (m,)"
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape {expected}; got shape {shape}")
    if m is not None and arr.shape[0] != m:
        raise ValueError(
            f"{name} has {arr.shape[0]} examples (shape {shape}) but X has {m} rows; "
            f"expected shape {expected}"
        )
    return np.ascontiguousarray(arr)


def check_labels_found(n_bad: int, Y: np.ndarray, name: str = "Y") -> None:
    """Raise if the kernel counted labels outside [0, 1] (or NaN)."""
    if n_bad:
        bad = Y[~((Y >= 0) & (Y <= 1))]
        raise ValueError(
            f"{name} must hold labels in [0, 1] (0/1, or soft labels); "
            f"found {int(n_bad)} value(s) outside, e.g. {bad[0]!r}"
        )


def result_dtype(*dtypes) -> np.dtype:
    """float32 if every operand is float32 (as NumPy would keep it), else float64."""
    f32 = np.dtype(np.float32)
    return f32 if all(np.dtype(d) == f32 for d in dtypes) else np.dtype(np.float64)


def check_out(out, shape: tuple, name: str = "out") -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array; got {_describe(out)}")
    if out.dtype not in FLOAT_DTYPES or not out.dtype.isnative:
        raise TypeError(f"{name} must have dtype float32 or float64 (native byte order); got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got shape {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    return out


def resolve_threads(n_threads, work: int) -> int:
    """Number of OpenMP threads for a kernel doing ``work`` element-operations.

    None: all usable cores (OpenMP's own count, which honours OMP_NUM_THREADS
    and threadpoolctl limits); -1 likewise, -2 one fewer, ...; 0 is an error.
    Small jobs run serially whatever is asked.
    """
    if n_threads is None:
        n = _kernels.max_threads()
    else:
        if isinstance(n_threads, (bool, np.bool_)) or not isinstance(n_threads, numbers.Integral):
            raise TypeError(f"n_threads must be an int or None; got {_describe(n_threads)}")
        n_threads = int(n_threads)
        if n_threads == 0:
            raise ValueError("n_threads must be a positive int, a negative int counting back from "
                             "the number of cores, or None; got 0")
        n = n_threads if n_threads > 0 else max(_kernels.max_threads() + 1 + n_threads, 1)
    if not _kernels.OPENMP or work < SERIAL_BELOW:
        return 1
    return n


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
