#!/usr/bin/env python
"""Coverage-guided fuzz target (atheris / libFuzzer) for fastlogit's public API.

Each input is decoded into one call of a public function with arguments of
random shapes (mostly consistent, sometimes not), dtypes (float, int, bool,
float16, big-endian, complex, object, str, datetime, long double), layouts
(C, F, strided, negative stride, read-only, lists, Python scalars), values
(ordinary numbers mixed with 0, +-inf, NaN, +-1e308, subnormals) and keyword
arguments (``out=``, including overlapping and mis-shaped buffers, ``eps``,
``threshold``, ``sample_weight``, ``l2``, ``n_threads``).

The oracle, checked on every call:

* the call returns, or raises TypeError/ValueError whose message names one of
  the function's arguments (anything else -- a crash, OverflowError,
  MemoryError, a warning -- is a finding);
* a result has the documented shape and dtype;
* a result equals the same call on C-contiguous copies of the arguments, and
  the NumPy reference where the reference is exact (moderate values);
* NaN/inf policy: with finite W and b, a row of X with only finite values
  gets a finite probability (a bad row never poisons another one).

Usage (from the repository root; crashes are written to ./crash-*)::

    python scripts/fuzz.py -max_total_time=600            # 10 minutes
    python scripts/fuzz.py /tmp/fastlogit-corpus -max_total_time=600 -artifact_prefix=/tmp/fl-
    python scripts/fuzz.py crash-1234abcd                  # replay one finding
    python scripts/fuzz.py --replay /tmp/fastlogit-corpus  # replay a corpus without libFuzzer

Only the Python layer is coverage-instrumented (``fastlogit`` modules); the
compiled kernels are exercised, and can be run under AddressSanitizer by
combining this script with scripts/sanitize.sh's build (see docs/reliability.md).
"""
from __future__ import annotations

import math
import os
import re
import sys
import warnings

import atheris

# The checkout's fastlogit (in-place build) first, as `python -m pytest` does;
# a script's sys.path[0] is scripts/, not the repository.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with atheris.instrument_imports(include=["fastlogit"]):
    import numpy as np

    import fastlogit
    from fastlogit import reference

FUNCTIONS = ["sigmoid", "log_sigmoid", "forward_pass", "predict", "compute_cost",
             "cost_from_logits", "gradients", "cost_and_gradients"]
# Training entry points (fastlogit/_train.py) too, with FASTLOGIT_FUZZ_TRAINING=1.
TRAINING = os.environ.get("FASTLOGIT_FUZZ_TRAINING") == "1"
if TRAINING:
    FUNCTIONS += ["gradient_descent", "fit"]
ARG_NAMES = {
    "gradient_descent": ["X", "Y", "W", "b", "learning_rate", "num_iterations", "l2",
                         "sample_weight", "callback"],
    "fit": ["X", "Y", "l2", "sample_weight", "fit_intercept", "tol", "max_iter", "n_threads",
            "solver"],
    "sigmoid": ["z", "out", "n_threads"],
    "log_sigmoid": ["z", "out", "n_threads"],
    "forward_pass": ["X", "W", "b", "out", "n_threads"],
    "predict": ["X", "W", "b", "threshold", "n_threads"],
    "compute_cost": ["A", "Y", "eps", "n_threads"],
    "cost_from_logits": ["Z", "Y", "n_threads"],
    "gradients": ["X", "W", "b", "Y", "n_threads"],
    "cost_and_gradients": ["X", "W", "b", "Y", "sample_weight", "l2", "n_threads"],
}
REAL_DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int8, np.uint16, np.bool_,
               np.dtype(">f8"), np.dtype(">f4"), np.dtype(">i4")]
BAD_DTYPES = [np.complex128, object, np.dtype("U4"), np.dtype("M8[s]"), np.dtype("m8[s]"),
              np.longdouble, np.dtype("V8")]
SPECIALS = [0.0, -0.0, 1.0, 0.5, -1.0, 2.0, math.nan, math.inf, -math.inf, 1e308, -1e308,
            5e-324, 745.0, -745.0, 1e4, -40.0, 36.0]
N_THREADS = [None, None, None, 1, 2, -1, 0, -100, 3, 64, 10**6, 2**40, 1.5, "2", True]
# Above this many elements the kernels run threaded: sometimes inflate inputs past it.
THREADED = 70_000


class Skip(Exception):
    """Input the decoder could not turn into a call."""


def _values(fdp, size, kind):
    if kind == "probability":
        vals = [fdp.ConsumeProbability() if fdp.ConsumeBool() else fdp.PickValueInList(SPECIALS)
                for _ in range(size)]
    elif kind == "label":
        vals = [float(fdp.ConsumeIntInRange(0, 1)) if fdp.ConsumeIntInRange(0, 7) else
                fdp.PickValueInList(SPECIALS + [0.3]) for _ in range(size)]
    else:
        vals = [fdp.ConsumeIntInRange(-3000, 3000) / 100 if fdp.ConsumeIntInRange(0, 5) else
                fdp.PickValueInList(SPECIALS) for _ in range(size)]
    return vals


def _array(fdp, shape, kind="real"):
    """An argument of (nominal) ``shape`` in a random dtype and layout."""
    if fdp.ConsumeIntInRange(0, 9) == 0:           # now and then: a wrong shape
        shape = tuple(fdp.ConsumeIntInRange(0, 5) for _ in range(fdp.ConsumeIntInRange(0, 3)))
    size = int(np.prod(shape, dtype=np.int64))
    # At most 64 decoded values, repeated to fill larger shapes: decoding is
    # Python code, and a slow decoder starves the fuzzer.
    base = np.resize(np.array(_values(fdp, min(size, 64), kind), dtype=np.float64), size)
    base = base.reshape(shape)
    if fdp.ConsumeIntInRange(0, 12) == 0:
        dtype = fdp.PickValueInList(BAD_DTYPES)
    else:
        dtype = fdp.PickValueInList(REAL_DTYPES)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            arr = base.astype(dtype)
        except (TypeError, ValueError):
            arr = base
    layout = fdp.ConsumeIntInRange(0, 9)
    if layout == 1:
        arr = np.asfortranarray(arr)
    elif layout == 2 and arr.ndim:                  # every other element of a bigger buffer
        big = np.zeros(arr.shape[:-1] + (2 * arr.shape[-1],), arr.dtype)
        big[..., ::2] = arr
        arr = big[..., ::2]
    elif layout == 3 and arr.ndim:                  # negative stride, same values
        arr = np.ascontiguousarray(arr[..., ::-1])[..., ::-1]
    elif layout == 4:
        arr = arr.copy()
        arr.flags.writeable = False
    elif layout == 5 and arr.ndim == 2:             # transposed (F order) copy
        arr = np.ascontiguousarray(arr.T).T
    elif layout == 6:
        return arr.tolist()
    elif layout == 7 and arr.size == 1:
        return arr.reshape(()).item()
    elif layout == 8:
        return arr.reshape(())[()] if arr.size == 1 else arr
    return arr


def _scalar(fdp, kind="real"):
    choice = fdp.ConsumeIntInRange(0, 9)
    if choice <= 5:
        return _values(fdp, 1, kind)[0]
    if choice == 6:
        with np.errstate(over="ignore"):
            return np.float32(_values(fdp, 1, kind)[0])
    if choice == 7:
        return fdp.PickValueInList(["0.1", None, 1j, True, 10**400, [0.5], np.array([0.1, 0.2])])
    return _array(fdp, (), kind)


def _inflate(fdp, arg, axis_len):
    """Repeat a real array along axis 0 (or its only axis) past the threading threshold."""
    if not isinstance(arg, np.ndarray) or arg.ndim == 0 or arg.shape[0] == 0 or arg.dtype.kind not in "fiub":
        return arg
    reps = -(-THREADED // max(arg.size, 1))
    return np.repeat(arg, reps, axis=axis_len)


def decode(data: bytes):
    fdp = atheris.FuzzedDataProvider(data)
    name = fdp.PickValueInList(FUNCTIONS)
    m, n = fdp.ConsumeIntInRange(0, 9), fdp.ConsumeIntInRange(0, 6)
    big = fdp.ConsumeIntInRange(0, 30) == 0
    kwargs = {}
    if name in ("sigmoid", "log_sigmoid"):
        shape = tuple(fdp.ConsumeIntInRange(0, 5) for _ in range(fdp.ConsumeIntInRange(0, 3)))
        z = _array(fdp, shape)
        if big:
            z = _inflate(fdp, z, 0)
        args = [z]
        if fdp.ConsumeIntInRange(0, 3) == 0:
            zs = np.shape(z)
            choice = fdp.ConsumeIntInRange(0, 4)
            if choice == 0 and isinstance(z, np.ndarray) and z.dtype.kind == "f" and z.dtype.isnative \
                    and z.dtype.itemsize >= 4 and z.flags.writeable:
                kwargs["out"] = z                                  # in place
            elif choice == 1 and isinstance(z, np.ndarray) and z.ndim == 1 and z.size > 1 \
                    and z.dtype == np.float64 and z.flags.writeable:
                args = [z[1:]]                                     # shifted overlap
                kwargs["out"] = z[:-1]
            elif choice == 2:
                kwargs["out"] = np.empty(zs, order="F", dtype=fdp.PickValueInList([np.float32, np.float64]))
            elif choice == 3:
                kwargs["out"] = _array(fdp, zs)
            else:
                kwargs["out"] = np.empty(zs[::-1])
    elif name in ("gradient_descent", "fit"):
        X = _array(fdp, (m, n))
        Y = _array(fdp, fdp.PickValueInList([(1, m), (m,)]), "label")
        args = [X, Y]
        if name == "gradient_descent":
            if fdp.ConsumeBool():
                args += [_array(fdp, fdp.PickValueInList([(n, 1), (n,)])), _scalar(fdp)]
            kwargs["num_iterations"] = fdp.PickValueInList([0, 1, 3, -1, 2.0, None])
            if fdp.ConsumeBool():
                kwargs["learning_rate"] = _scalar(fdp, "probability")
        else:
            kwargs["max_iter"] = fdp.PickValueInList([1, 5, 0, -2, 3.5])
            if fdp.ConsumeBool():
                kwargs["solver"] = fdp.PickValueInList(["auto", "lbfgs", "newton", "sgd", None])
            if fdp.ConsumeBool():
                kwargs["tol"] = _scalar(fdp, "probability")
            if fdp.ConsumeBool():
                kwargs["fit_intercept"] = fdp.ConsumeBool()
        if fdp.ConsumeBool():
            kwargs["l2"] = _scalar(fdp, "probability")
        if fdp.ConsumeBool():
            kwargs["sample_weight"] = _array(fdp, fdp.PickValueInList([(m,), (1, m)]), "probability")
        if name == "fit" and fdp.ConsumeIntInRange(0, 4) == 0:
            kwargs["n_threads"] = fdp.PickValueInList(N_THREADS)
        return name, args, kwargs
    elif name in ("forward_pass", "predict", "gradients", "cost_and_gradients"):
        X = _array(fdp, (m, n))
        W = _array(fdp, fdp.PickValueInList([(n, 1), (n,), (1, n), (n, 1)]))
        b = _scalar(fdp)
        if big:
            X = _inflate(fdp, X, 0)
        args = [X, W, b]
        rows = np.shape(X)[0] if np.ndim(X) else m
        if name in ("gradients", "cost_and_gradients"):
            args.append(_array(fdp, fdp.PickValueInList([(1, rows), (rows,)]), "label"))
        if name == "forward_pass" and fdp.ConsumeIntInRange(0, 3) == 0:
            choice = fdp.ConsumeIntInRange(0, 2)
            if choice == 0:
                kwargs["out"] = np.empty((1, rows), dtype=fdp.PickValueInList([np.float32, np.float64]))
            elif choice == 1 and isinstance(X, np.ndarray) and X.dtype == np.float64 \
                    and X.flags.writeable and X.size >= rows:
                kwargs["out"] = X.reshape(-1)[:rows].reshape(1, rows) if X.flags.c_contiguous else X[:1]
            else:
                kwargs["out"] = _array(fdp, (1, rows))
        if name == "predict" and fdp.ConsumeBool():
            kwargs["threshold"] = _scalar(fdp, "probability")
        if name == "cost_and_gradients":
            if fdp.ConsumeBool():
                kwargs["sample_weight"] = _array(fdp, fdp.PickValueInList([(rows,), (1, rows)]),
                                                 "probability")
            if fdp.ConsumeBool():
                kwargs["l2"] = _scalar(fdp, "probability")
    else:
        shape = fdp.PickValueInList([(1, m), (m,)])
        first = _array(fdp, shape, "probability" if name == "compute_cost" else "real")
        Y = _array(fdp, fdp.PickValueInList([(1, m), (m,)]), "label")
        if big:
            first, Y = _inflate(fdp, first, -1), _inflate(fdp, Y, -1)
        args = [first, Y]
        if name == "compute_cost" and fdp.ConsumeBool():
            kwargs["eps"] = _scalar(fdp, "probability")
    if fdp.ConsumeIntInRange(0, 4) == 0:
        kwargs["n_threads"] = fdp.PickValueInList(N_THREADS)
    return name, args, kwargs


def _as_contiguous(arg):
    if isinstance(arg, np.ndarray):
        return np.array(arg, order="C", copy=True)
    return arg


def _finite_real(arg) -> bool:
    try:
        a = np.asarray(arg)
    except Exception:
        return False
    return a.dtype.kind in "fiub" and a.dtype.itemsize <= 8 and bool(np.all(np.isfinite(a)))


def _f64(arg):
    return np.asarray(arg).astype(np.float64)


def _close(got, want, rtol):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64),
                               rtol=rtol, atol=rtol, equal_nan=True)


def check_result(name, args, kwargs, result):
    # float16/float32 (any byte order) results are rounded to float32.
    rtol = 2e-5 if any(np.asarray(a).dtype.kind == "f" and np.asarray(a).dtype.itemsize <= 4
                       for a in args if _finite_real(a)) else 1e-9
    if name in ("sigmoid", "log_sigmoid"):
        assert np.shape(result) == np.shape(args[0]), (np.shape(result), np.shape(args[0]))
        if "out" in kwargs:
            assert result is kwargs["out"]
    if name in ("forward_pass", "predict"):
        X = np.asarray(args[0])
        assert result.shape == (1, X.shape[0])
        if name == "predict":
            assert result.dtype == np.int64 and set(np.unique(result)) <= {0, 1}
        if _finite_real(args[1]) and _finite_real(args[2]) and name == "forward_pass":
            finite_rows = np.all(np.isfinite(_f64(X)), axis=1)
            assert not np.any(np.isnan(result[0, finite_rows])), "a bad row poisoned a finite one"
    if name in ("gradients", "cost_and_gradients"):
        dW = result[-2]
        assert dW.shape == (np.asarray(args[0]).shape[1], 1)
        assert isinstance(result[-1], float)
    if name in ("compute_cost", "cost_from_logits"):
        assert isinstance(result, float)
    # Differential oracles on inputs where both sides are exact enough.
    if name in ("compute_cost", "predict") or "out" in kwargs:
        return
    if not all(_finite_real(a) for a in args):
        return
    f64 = [_f64(a) for a in args]
    if max((float(np.max(np.abs(a))) if a.size else 0.0) for a in f64) > 20:
        return       # the textbook overflows or cancels there: test_extremes covers it
    extra = {k: v for k, v in kwargs.items() if k in ("sample_weight", "l2")}
    if "sample_weight" in extra:
        if not _finite_real(extra["sample_weight"]):
            return
        extra["sample_weight"] = _f64(extra["sample_weight"])
    if "l2" in extra:
        extra["l2"] = float(np.asarray(extra["l2"], dtype=np.float64).reshape(()))
    if name in ("forward_pass", "gradients", "cost_and_gradients", "cost_from_logits"):
        if name == "cost_from_logits":
            f64 = [a.reshape(1, -1) for a in f64]
            scores = f64[0]
        else:
            f64[1] = f64[1].reshape(-1, 1)
            f64[2] = float(f64[2].reshape(()))
            if len(f64) > 3:
                f64[3] = f64[3].reshape(1, -1)
            with np.errstate(all="ignore"):
                scores = f64[0] @ f64[1] + f64[2]
        # The textbook's log(1 - A) is exact only while |z| stays moderate.
        if scores.size and np.max(np.abs(scores)) > 10:
            return
        with np.errstate(all="ignore"):
            want = getattr(reference, name)(*f64, **extra)
    else:
        with np.errstate(all="ignore"):
            want = getattr(reference, name)(f64[0])
    if isinstance(result, tuple):
        for g, w in zip(result, want):
            _close(g, w, rtol)
    else:
        _close(result, want, rtol)


def TestOneInput(data: bytes) -> None:
    try:
        name, args, kwargs = decode(data)
    except Skip:
        return
    func = getattr(fastlogit, name)
    # out= may overlap an input: keep the inputs as they were for the checks.
    snapshot = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
    training = name in ("gradient_descent", "fit")
    if training and any(_finite_real(a) and np.asarray(a).size
                        and float(np.max(np.abs(np.asarray(a, dtype=np.float64)))) > 1e100
                        for a in list(args) + list(kwargs.values())):
        # Known and reported (issue 8): near-overflow data makes fit's Newton
        # Hessian / gradient_descent's update / the weight sum overflow with a
        # RuntimeWarning instead of a clear error.  Skipped so the fuzzer looks further.
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if training:       # not converging in max_iter steps is a result, not a finding
            warnings.filterwarnings("ignore", category=fastlogit.ConvergenceWarning)
        try:
            # Kernels: no FP trap under any np.errstate.  Training: NumPy's
            # defaults (warn on overflow/invalid, which are errors here).
            with np.errstate(**({"under": "ignore"} if training else {"all": "raise"})):
                result = func(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            message = str(exc)
            if not any(re.search(rf"(?<![A-Za-z_]){re.escape(arg)}(?![A-Za-z_])", message)
                       for arg in ARG_NAMES[name]):
                raise AssertionError(f"{name}: message names no argument: {message!r}") from exc
            return
    if training:
        W_out = result[0] if name == "gradient_descent" else result.W
        assert W_out.shape == (np.asarray(args[0]).shape[1], 1), W_out.shape
        return
    # The same call on fresh C-contiguous copies must give the same answer.
    args = snapshot
    if "out" not in kwargs:
        again = func(*[_as_contiguous(a) for a in args],
                     **{k: _as_contiguous(v) for k, v in kwargs.items()})
        if isinstance(result, tuple):
            for g, w in zip(result, again):
                _close(g, w, 1e-6)
        else:
            _close(result, again, 1e-6)
    check_result(name, args, kwargs, result)


def replay(paths) -> int:
    """Run TestOneInput on every file (or every file in every directory) given,
    without libFuzzer: used to replay a corpus under the ASan build."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(os.path.join(path, f) for f in os.listdir(path))
        else:
            files.append(path)
    for path in files:
        with open(path, "rb") as f:
            TestOneInput(f.read())
    print(f"replayed {len(files)} inputs: no finding")
    return 0


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--replay":
        sys.exit(replay(sys.argv[2:]))
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
