"""Input checking and normalisation for the public API.

Every public function passes its arguments through these helpers before any
kernel runs, so that a kernel only ever sees C- or F-contiguous float32/float64
data of the right shapes.  Error messages name the argument, say what was
received and what was expected.
"""
from __future__ import annotations

import math
import numbers
import os

import numpy as np

from fastlogit import _kernels

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Below this many element-operations a kernel runs on the calling thread
# alone: waking a helper thread (a futex system call, tens of microseconds
# before it starts) costs more than it saves.  The calling thread works too,
# so above it a helper that comes late costs nothing; measured with
# `fastlogit bench --sizes`.
SERIAL_BELOW = 1 << 16


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def as_real_array(value, name: str) -> np.ndarray:
    """``value`` as a NumPy array of a real (float32 or float64) dtype.

    float32 and float64 are kept (no copy); booleans and integers become
    float64, float16 becomes float32; big-endian data is brought to native
    byte order.  Anything else (complex, object, str, bytes, datetime,
    timedelta, structured, long double, masked arrays, ragged lists) is a
    TypeError or ValueError that names the argument.
    """
    if isinstance(value, np.ma.MaskedArray):
        # np.asarray would drop the mask and silently use the hidden values.
        raise TypeError(f"{name} must be a plain array; got a masked array of shape "
                        f"{value.shape} (fill or remove the masked values first)")
    try:
        arr = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{name} must be array-like of real numbers with a rectangular shape; "
                         f"got {_describe(value)} ({exc})") from None
    except Exception as exc:  # objects whose __array__ fails, and the like
        raise TypeError(f"{name} must be array-like of real numbers; got {_describe(value)} "
                        f"({type(exc).__name__}: {exc})") from None
    source = "" if isinstance(value, np.ndarray) else f" (from {_describe(value)})"
    target = working_dtype(arr.dtype, name, source)
    # astype(copy=False) also brings big-endian data to native byte order.
    return arr.astype(target, copy=False)


def working_dtype(dtype, name: str, source: str = "") -> np.dtype:
    """The native float dtype the kernels compute data of ``dtype`` in.

    float32 stays float32 and float16 becomes float32 (as NumPy would keep a
    small float); float64, integers and booleans become float64.  Anything
    else is a TypeError naming ``name``.  This is the one rule for in-memory
    arrays, file columns and Dask blocks alike.
    """
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        # pandas' nullable dtypes (Int64, Float32, boolean) wrap a NumPy one;
        # anything else (categorical, string, ...) is not a number column.
        inner = getattr(dtype, "numpy_dtype", None)
        if inner is None:
            raise TypeError(f"{name} must hold real numbers (float32, float64, int or bool); "
                            f"got dtype {dtype}{source}") from None
        dtype = np.dtype(inner)
    kind = dtype.kind
    if kind == "f":
        if dtype.itemsize > 8:
            raise TypeError(f"{name} must be float32 or float64 (or int, bool, float16); "
                            f"got dtype {dtype}{source}")
        return np.dtype(np.float32 if dtype.itemsize <= 4 else np.float64)
    if kind in "biu":
        return np.dtype(np.float64)
    raise TypeError(f"{name} must hold real numbers (float32, float64, int or bool); "
                    f"got dtype {dtype}{source}")


def check_float_dtype(dtype, name: str) -> np.dtype:
    """float32 or float64 exactly (a dtype asked for, not data to convert)."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64; got {dtype}")
    return dtype


def as_contiguous(arr: np.ndarray) -> np.ndarray:
    """C- or F-contiguous, aligned view of ``arr`` (a C-order copy only if needed).

    Misaligned data (e.g. ``np.frombuffer`` at an odd offset) is copied too:
    the kernels dereference ``double *``/``float *``, and a misaligned one is
    undefined behaviour in C (a fault on some CPUs), as NumPy's own loops know.
    """
    if (arr.flags.c_contiguous or arr.flags.f_contiguous) and arr.flags.aligned:
        return arr
    return np.array(arr, order="C", copy=True)


def check_X(X) -> np.ndarray:
    """X as a C- or F-contiguous float32/float64 matrix (copied only if neither)."""
    X = as_real_array(X, "X")
    if X.ndim != 2:
        raise ValueError(
            f"X must be a 2-D array of shape (m, n), one example per row; got shape {X.shape}"
        )
    return as_contiguous(X)


def first_nonfinite(X: np.ndarray, block_elements: int = 1 << 20) -> tuple[int, int] | None:
    """(row, column) of the first NaN or inf of the 2-D array X in row order, or None.

    For error messages only: callers detect non-finite data for free (a kernel's
    result is not finite) and then ask where.  Blocks of rows keep the mask small."""
    rows = max(1, block_elements // max(X.shape[1], 1))
    for start in range(0, X.shape[0], rows):
        bad = ~np.isfinite(X[start:start + rows])
        if bad.any():
            i, j = np.argwhere(bad)[0]
            return start + int(i), int(j)
    return None


def check_W(W, n: int) -> tuple[np.ndarray, np.dtype]:
    """(W as a private contiguous float64 vector of length n, W's own dtype).

    Accepts shapes (n, 1) and (n,) (so (1, 1) and (1,) when n = 1); (1, n)
    is rejected for n > 1, as a transposed W is more often a bug than a
    choice.  W is tiny, so it is always copied: scores are accumulated in
    float64 whatever the dtype of X, and an ``out=`` buffer that shares
    memory with the caller's W cannot change W while the kernel reads it.
    """
    W_arr = as_real_array(W, "W")
    if W_arr.shape not in ((n, 1), (n,)):
        hint = " (W looks transposed)" if W_arr.shape == (1, n) else ""
        raise ValueError(
            f"W must have shape ({n}, 1) or ({n},) because X has {n} feature(s); "
            f"got W of shape {W_arr.shape}{hint}"
        )
    return np.array(W_arr.reshape(n), dtype=np.float64, order="C", copy=True), W_arr.dtype


def check_scalar(value, name: str) -> float:
    """A real scalar (or size-1 array) as a Python float."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        try:
            return float(value)
        except (OverflowError, ValueError, TypeError) as exc:   # 10**400, odd Real types
            raise ValueError(f"{name} must be a real number representable as a float; "
                             f"got {_describe(value)} ({exc})") from None
    arr = as_real_array(value, name)
    if arr.size != 1:
        raise ValueError(f"{name} must be a scalar; got {_describe(arr)}")
    return float(arr.reshape(()))


def check_number(value, name: str, valid, expected: str) -> float:
    """``check_scalar`` plus a range check: ``valid(x)`` must hold (NaN fails
    every comparison, so a range test rejects it too)."""
    result = check_scalar(value, name)
    if not valid(result):
        raise ValueError(f"{name} must be {expected}; got {result!r}")
    return result


def as_row(value, name: str, m: int | None = None, rows_of: str = "X") -> np.ndarray:
    """A (1, m) or (m,) argument as a contiguous 1-D array of length m.

    ``rows_of`` names the argument that fixed m, for the error message.
    """
    arr = as_real_array(value, name)
    shape = arr.shape
    if arr.ndim == 2 and shape[0] == 1:
        arr = arr[0]
    expected = f"(1, {m}) or ({m},)" if m is not None else "(1, m) or (m,)"
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape {expected}; got shape {shape}")
    if m is not None and arr.shape[0] != m:
        raise ValueError(
            f"{name} must have shape {expected} to match the {m} examples of {rows_of}; "
            f"got shape {shape}"
        )
    return as_contiguous(arr)


def check_bool(value, name: str) -> bool:
    """A real bool (Python or NumPy): the string "False" is truthy, so it is
    rejected rather than silently read as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool (True or False); got {_describe(value)}")
    return bool(value)


def check_nonneg(value, name: str) -> float:
    """A finite, non-negative real scalar as a Python float."""
    return check_number(value, name, lambda v: 0.0 <= v < np.inf, "a finite non-negative float")


def check_count(value, name: str, minimum: int = 1) -> int:
    """An integer (not a bool, not a float) of at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {int(value)}")
    return int(value)


def check_threshold(value, name: str = "threshold") -> float:
    """A probability threshold: any real number but NaN (a NaN threshold
    would label every row 0, silently).  Values outside [0, 1] are allowed:
    they label every row 0 (above 1) or 1 (below 0), as NumPy's >= would."""
    return check_number(value, name, lambda t: not math.isnan(t), "a real number (not NaN)")


def check_weight_values(sample_weight, m: int, rows_of: str = "X") -> np.ndarray:
    """Sample weights (or one block of them) as a contiguous float64 vector of
    length m, every weight finite and non-negative (no condition on the sum:
    one block of a larger set may be all zero)."""
    sw = as_contiguous(as_row(sample_weight, "sample_weight", m, rows_of).astype(np.float64, copy=False))
    bad = ~(np.isfinite(sw) & (sw >= 0))
    if np.any(bad):
        raise ValueError(f"sample_weight must be finite and non-negative; got "
                         f"{int(np.count_nonzero(bad))} value(s) that are not, e.g. {float(sw[bad][0])!r}")
    return sw


def check_sample_weight(sample_weight, m: int, rows_of: str = "X") -> tuple[np.ndarray, float]:
    """(weights as a contiguous float64 vector, their sum); ``None`` gives an
    empty vector (the kernels' "unit weights") and the sum m.

    Weights must be finite and non-negative with a positive, finite sum.
    """
    if sample_weight is None:
        return np.empty(0, dtype=np.float64), float(m)
    sw = check_weight_values(sample_weight, m, rows_of)
    # Finite weights near the float64 limit can overflow the sum: that is the
    # caller's error to report, not a RuntimeWarning/FloatingPointError.
    with np.errstate(over="ignore"):
        total = float(np.sum(sw))
    if not (0 < total < np.inf):
        raise ValueError(f"sample_weight must have a positive, finite sum; got sum {total!r}")
    return sw, total


def check_labels(Y, m: int, name: str = "Y", rows_of: str = "X") -> np.ndarray:
    """Labels as a contiguous 1-D array of length m, every value in [0, 1]
    (0/1 or soft labels); NaN is rejected."""
    Y = as_row(Y, name, m, rows_of)
    outside = labels_outside(Y)
    if outside.any():
        bad = Y[outside]
        raise _labels_error(name, bad.size, float(bad[0]))
    return Y


def _labels_error(name: str, count: int, example: float | None = None) -> ValueError:
    """The one message for labels outside [0, 1], wherever they were counted."""
    eg = "" if example is None else f", e.g. {example!r}"
    return ValueError(f"{name} must hold labels in [0, 1] (0/1, or soft labels); got "
                      f"{int(count)} value(s) outside (NaN included){eg}")


def labels_outside(Y: np.ndarray) -> np.ndarray:
    """Mask of the labels that are not in [0, 1] (NaN included): the one label rule."""
    with np.errstate(invalid="ignore"):
        return ~((Y >= 0) & (Y <= 1))


def check_probabilities(A: np.ndarray, name: str = "A", n_outside: int | None = None) -> np.ndarray:
    """Probabilities: every value in [0, 1] or NaN (a NaN example is reported
    by the cost as NaN, not dropped).  Values outside are most often scores
    (logits) passed by mistake: the message says where those go.  ``n_outside``:
    the count of such values when the kernel has already made it (compute_cost
    counts them in its own pass over A); 0 skips the scan."""
    if n_outside == 0:
        return A
    with np.errstate(invalid="ignore"):
        outside = (A < 0) | (A > 1)
    if outside.any():
        bad = A[outside]
        raise ValueError(f"{name} must hold probabilities in [0, 1]; got {bad.size} value(s) "
                         f"outside, e.g. {float(bad[0])!r}. For scores z = X @ W + b (logits) "
                         f"use cost_from_logits(Z, Y), which is also exact where A rounds to 0 or 1")
    return A


def check_binary_labels(y, name: str = "y") -> np.ndarray:
    """Hard labels: a 1-D array whose values are all exactly 0 or 1."""
    y = as_real_array(y, name).reshape(-1)
    ok = (y == 0) | (y == 1)
    if not ok.all():
        bad = y[~ok]
        raise ValueError(f"{name} must hold the labels 0 and 1 only; found {bad.size} other "
                         f"value(s), e.g. {float(bad[0])!r}")
    return y


def check_labels_found(n_bad: int, Y: np.ndarray, name: str = "Y") -> None:
    """Raise if the kernel counted labels outside [0, 1] (or NaN)."""
    if n_bad:
        raise _labels_error(name, n_bad, float(Y[labels_outside(Y)][0]))


def check_reduced_sums(n_bad: float, weight_sum: float, name: str = "Y") -> None:
    """Checks on sums reduced over blocks (Dask), where no single array holds
    the labels: the count of labels outside [0, 1] and the total weight."""
    if n_bad:
        raise _labels_error(name, n_bad)
    if not weight_sum > 0:
        raise ValueError("sample_weight must not be all zero: the weighted mean cost is undefined")


def result_dtype(*dtypes) -> np.dtype:
    """float32 if every operand is float32 (as NumPy would keep it), else float64."""
    f32 = np.dtype(np.float32)
    return f32 if all(np.dtype(d) == f32 for d in dtypes) else np.dtype(np.float64)


def check_out(out, shape: tuple, name: str = "out") -> np.ndarray:
    """A writeable native float32/float64 ndarray of exactly ``shape``.

    Any layout and any overlap with the inputs is accepted: the callers
    compute into a temporary when writing directly would be unsafe.
    """
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array; got {_describe(out)}")
    if out.dtype not in FLOAT_DTYPES or not out.dtype.isnative:
        raise TypeError(f"{name} must have dtype float32 or float64 (native byte order); got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got shape {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be a writeable array; got a read-only array")
    return out


def max_threads_allowed() -> int:
    """Largest thread count a call uses: 4 threads per usable core, at least 64.

    A bound is needed because every thread is a real OS thread: n_threads=10**6
    used to crash the interpreter, and values past 2**31 overflowed the kernels'
    C int.  Explicit ``n_threads`` above it are an error; the default count
    (OMP_NUM_THREADS, threadpoolctl limits) above it is clamped to it.
    """
    return max(64, 4 * cpu_count())


def default_threads() -> int:
    """Threads a call with ``n_threads=None`` uses: OpenMP's count (which honours
    OMP_NUM_THREADS and threadpoolctl limits), clamped to 1 ..
    :func:`max_threads_allowed` -- an environment asking for 100000 threads
    gets the cap, never a crash."""
    return min(max(int(_kernels.max_threads()), 1), max_threads_allowed())


def resolve_threads(n_threads, work: int) -> int:
    """Number of threads for a kernel doing ``work`` element-operations.

    None: :func:`default_threads`; -1 likewise, -2 one fewer, ...; 0 is an
    error; more than :func:`max_threads_allowed` is an error.  Jobs below
    ``SERIAL_BELOW`` element-operations run on the calling thread alone.
    """
    if n_threads is None:
        n = default_threads()
    else:
        if isinstance(n_threads, (bool, np.bool_)) or not isinstance(n_threads, numbers.Integral):
            raise TypeError(f"n_threads must be an int or None; got {_describe(n_threads)}")
        n_threads = int(n_threads)
        limit = max_threads_allowed()
        if n_threads == 0 or n_threads > limit:
            raise ValueError(
                f"n_threads must be None, a positive int up to {limit} (4 per usable core, at "
                f"least 64), or a negative int counting back from the number of cores; "
                f"got {n_threads}")
        n = n_threads if n_threads > 0 else max(default_threads() + 1 + n_threads, 1)
    if work < SERIAL_BELOW:
        return 1
    return n


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_choice(value, name: str, choices) -> str:
    """One of a few allowed strings (an option such as ``on_invalid``)."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}; got {_describe(value)}")
    return value
