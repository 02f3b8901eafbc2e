"""The input contract of every public function, as one parametrized table.

Each row of the table builds fresh arguments for one call and says what must
happen: either the call returns what the NumPy reference returns on the same
data made contiguous float64 (``OK``), or it raises TypeError/ValueError whose
message starts with the argument's name, says what it got and what was
expected (``Raises``: the fragments listed must all appear in the message).

docs/reliability.md renders the same contract as a table for users.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import fastlogit
from fastlogit import reference
from fastlogit._validation import max_threads_allowed

M, N = 6, 3
_rng = np.random.default_rng(2024)
X0 = np.round(_rng.uniform(-2, 2, size=(M, N)), 3)
W0 = np.array([[0.5], [-1.25], [2.0]])
B0 = 0.25
Y0 = np.array([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0]])
A0 = np.array([[0.1, 0.8, 0.55, 0.3, 0.95, 0.05]])
Z0 = np.array([[-3.0, 2.5, 0.1, -0.7, 4.0, -6.0]])
ZZ0 = np.array([[-3.0, 2.5, 0.0], [-0.7, 4.0, -6.0]])     # z of the element-wise functions
BASE = {"z": ZZ0, "X": X0, "W": W0, "b": B0, "Y": Y0, "A": A0, "Z": Z0}

SIGNATURES = {
    "sigmoid": ["z"],
    "log_sigmoid": ["z"],
    "forward_pass": ["X", "W", "b"],
    "predict": ["X", "W", "b"],
    "compute_cost": ["A", "Y"],
    "cost_from_logits": ["Z", "Y"],
    "gradients": ["X", "W", "b", "Y"],
    "cost_and_gradients": ["X", "W", "b", "Y"],
}
ALL = list(SIGNATURES)
WITH_X = ["forward_pass", "predict", "gradients", "cost_and_gradients"]
WITH_Y = ["compute_cost", "cost_from_logits", "gradients", "cost_and_gradients"]
ELEMENTWISE = ["sigmoid", "log_sigmoid"]
COSTS = ["compute_cost", "cost_from_logits"]


@dataclass
class Raises:
    exc: type
    arg: str             # the message must start with this argument's name
    fragments: tuple = ()


OK = "ok"


@dataclass
class Case:
    id: str
    func: str
    build: Callable[[], tuple[list, dict]]
    expect: object


CASES: list[Case] = []


def case(func, what, expect, kwargs=None, **overrides):
    """Register a call of ``func`` on the base data with some arguments replaced.

    An override may be a value or a zero-argument callable that builds it
    (for memory maps, views and buffers that a test may mutate).
    """
    def build():
        args = []
        for name in SIGNATURES[func]:
            if name not in overrides:
                args.append(_snapshot(BASE[name]))       # a fresh copy: calls never share state
            elif callable(overrides[name]):
                args.append(overrides[name]())
            else:
                args.append(overrides[name])
        kw = {k: (v() if callable(v) else v) for k, v in (kwargs or {}).items()}
        return args, kw
    CASES.append(Case(f"{func}-{what}", func, build, expect))


def wrong(exc, arg, *fragments):
    return Raises(exc, arg, fragments)


def first_array_arg(func):
    return SIGNATURES[func][0]


# ---------------------------------------------------------------------------
# Layout helpers (each returns the same values as its argument)
# ---------------------------------------------------------------------------

def strided(a):
    """Every other element along the last axis of a bigger buffer."""
    a = np.asarray(a)
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


def strided_rows(a):
    a = np.asarray(a)
    big = np.zeros((2 * a.shape[0],) + a.shape[1:], a.dtype)
    big[::2] = a
    return big[::2]


def reversed_view(a):
    """Negative stride on every axis."""
    a = np.asarray(a)
    flipped = np.ascontiguousarray(a[tuple(slice(None, None, -1) for _ in a.shape)])
    return flipped[tuple(slice(None, None, -1) for _ in a.shape)]


def read_only(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


def misaligned(a):
    """The same values at an odd byte offset (flags.aligned is False)."""
    a = np.asarray(a, dtype=np.float64)
    out = np.ndarray(a.shape, np.float64, buffer=bytearray(a.nbytes + 1), offset=1)
    out[...] = a
    assert not out.flags.aligned
    return out


MEMMAP_DIR = None


def memmap(a, mode="r+"):
    a = np.asarray(a)
    path = MEMMAP_DIR / f"mm{len(list(MEMMAP_DIR.iterdir()))}.dat"
    mm = np.memmap(path, dtype=a.dtype, mode="w+", shape=a.shape)
    mm[...] = a
    mm.flush()
    return np.memmap(path, dtype=a.dtype, mode=mode, shape=a.shape)


@pytest.fixture(autouse=True, scope="module")
def _memmap_dir(tmp_path_factory):
    global MEMMAP_DIR
    MEMMAP_DIR = tmp_path_factory.mktemp("memmaps")
    yield


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------

# -- wrong number of dimensions ----------------------------------------------
for f in WITH_X:
    case(f, "X-1d", wrong(ValueError, "X", "2-D", "got shape (18,)"), X=X0.ravel())
    case(f, "X-3d", wrong(ValueError, "X", "2-D", "got shape (1, 6, 3)"), X=X0[None])
    case(f, "X-0d", wrong(ValueError, "X", "2-D", "got shape ()"), X=np.array(1.0))
    case(f, "X-python-scalar", wrong(ValueError, "X", "2-D", "got shape ()"), X=1.5)
    case(f, "W-3d", wrong(ValueError, "W", "(3, 1) or (3,)", "got W of shape (3, 1, 1)"),
         W=W0[..., None])
    case(f, "W-0d", wrong(ValueError, "W", "(3, 1) or (3,)", "got W of shape ()"), W=np.array(0.5))
    case(f, "W-n-by-2", wrong(ValueError, "W", "(3, 1) or (3,)", "got W of shape (3, 2)"),
         W=np.hstack([W0, W0]))
for f in WITH_Y:
    case(f, "Y-3d", wrong(ValueError, "Y", "(1, 6) or (6,)", "got shape (1, 1, 6)"), Y=Y0[None])
    case(f, "Y-0d", wrong(ValueError, "Y", "(1, 6) or (6,)", "got shape ()"), Y=np.array(1.0))
    case(f, "Y-2-rows", wrong(ValueError, "Y", "(1, 6) or (6,)", "got shape (2, 3)"),
         Y=Y0.reshape(2, 3))
    case(f, "Y-column", wrong(ValueError, "Y", "(1, 6) or (6,)", "got shape (6, 1)"), Y=Y0.T)
for f, arg, base in [("compute_cost", "A", A0), ("cost_from_logits", "Z", Z0)]:
    case(f, f"{arg}-3d", wrong(ValueError, arg, "(1, m) or (m,)", "got shape (1, 1, 6)"),
         **{arg: base[None]})
    case(f, f"{arg}-0d", wrong(ValueError, arg, "(1, m) or (m,)", "got shape ()"),
         **{arg: np.array(0.5)})
    case(f, f"{arg}-python-scalar", wrong(ValueError, arg, "(1, m) or (m,)", "got shape ()"),
         **{arg: 0.5})
    case(f, f"{arg}-column", wrong(ValueError, arg, "(1, m) or (m,)", "got shape (6, 1)"),
         **{arg: base.T})
for f in ELEMENTWISE:      # element-wise: any number of dimensions is fine
    case(f, "z-3d", OK, z=ZZ0.reshape(1, 2, 3))
    case(f, "z-1d", OK, z=ZZ0.ravel())

# -- mismatched m between X (or A, Z) and Y; mismatched n between X and W -----
for f in ["gradients", "cost_and_gradients"]:
    case(f, "Y-m-plus-1", wrong(ValueError, "Y", "(1, 6) or (6,)", "6 examples of X",
                                "got shape (1, 7)"), Y=np.zeros((1, 7)))
    case(f, "Y-m-minus-1", wrong(ValueError, "Y", "(1, 6) or (6,)", "got shape (5,)"),
         Y=np.zeros(5))
for f, arg in [("compute_cost", "A"), ("cost_from_logits", "Z")]:
    case(f, "Y-longer", wrong(ValueError, "Y", "(1, 6) or (6,)", f"6 examples of {arg}",
                              "got shape (1, 7)"), Y=np.zeros((1, 7)))
for f in WITH_X:
    case(f, "W-n-plus-1", wrong(ValueError, "W", "(3, 1) or (3,)", "3 feature(s)",
                                "got W of shape (4, 1)"), W=np.zeros((4, 1)))
    case(f, "W-n-minus-1", wrong(ValueError, "W", "(3, 1) or (3,)", "got W of shape (2,)"),
         W=np.zeros(2))
    case(f, "W-row-1-by-n", wrong(ValueError, "W", "(3, 1) or (3,)", "got W of shape (1, 3)",
                                  "transposed"), W=W0.T)
    # Accepted W shapes.
    case(f, "W-vector-n", OK, W=W0.ravel())
    case(f, "W-column-n-1", OK, W=W0)
    case(f, "n1-W-1-by-1", OK, X=X0[:, :1], W=np.array([[0.7]]))
    case(f, "n1-W-vector-1", OK, X=X0[:, :1], W=np.array([0.7]))
    case(f, "n1-W-0d", wrong(ValueError, "W", "(1, 1) or (1,)", "got W of shape ()"),
         X=X0[:, :1], W=np.array(0.7))
for f in WITH_Y:
    case(f, "Y-vector-m", OK, Y=Y0.ravel())
    case(f, "Y-row-1-m", OK, Y=Y0)
    case(f, "Y-list", OK, Y=Y0.ravel().tolist())
case("cost_and_gradients", "sample_weight-m-plus-1",
     wrong(ValueError, "sample_weight", "(1, 6) or (6,)", "got shape (7,)"),
     kwargs={"sample_weight": np.ones(7)})
case("cost_and_gradients", "sample_weight-2d",
     wrong(ValueError, "sample_weight", "(1, 6) or (6,)", "got shape (2, 3)"),
     kwargs={"sample_weight": np.ones((2, 3))})
for f in COSTS:
    case(f, "first-arg-vector", OK, **{first_array_arg(f): BASE[first_array_arg(f)].ravel()})

# -- m = 0 and n = 0 ------------------------------------------------------------
for f in ["forward_pass", "predict"]:
    case(f, "m0", OK, X=np.zeros((0, N)))
    case(f, "m0-n0", OK, X=np.zeros((0, 0)), W=np.zeros((0, 1)))
for f in ["gradients", "cost_and_gradients"]:
    case(f, "m0", wrong(ValueError, "X", "at least one row", "got shape (0, 3)"),
         X=np.zeros((0, N)), Y=np.zeros((1, 0)))
for f in WITH_X:
    case(f, "n0", OK, X=np.zeros((M, 0)), W=np.zeros((0, 1)))
    case(f, "n0-W-vector", OK, X=np.zeros((M, 0)), W=np.zeros(0))
for f, arg in [("compute_cost", "A"), ("cost_from_logits", "Z")]:
    case(f, "m0", wrong(ValueError, arg, "at least one example", "got shape (1, 0)"),
         **{arg: np.zeros((1, 0)), "Y": np.zeros((1, 0))})
    case(f, "m0-vector", wrong(ValueError, arg, "at least one example", "got shape (0,)"),
         **{arg: np.zeros(0), "Y": np.zeros(0)})
for f in ELEMENTWISE:
    case(f, "empty-1d", OK, z=np.zeros(0))
    case(f, "empty-2d", OK, z=np.zeros((0, 3)))

# -- NaN and +-inf (the policy is checked row by row in test_nan_inf_* below) ----
for f in ELEMENTWISE:
    case(f, "z-nan-inf", OK, z=np.array([[np.nan, np.inf, -np.inf], [0.0, 1.0, -2.0]]))
for f in ["forward_pass", "predict", "gradients", "cost_and_gradients"]:
    case(f, "b-nan", OK, b=math.nan)
    case(f, "X-nan-row", OK, X=np.where(np.arange(M)[:, None] == 2, np.nan, X0))
    case(f, "W-nan", OK, W=np.array([[0.5], [np.nan], [2.0]]))
for f in ["forward_pass", "predict"]:
    case(f, "b-inf", OK, b=math.inf)
    case(f, "b-minus-inf", OK, b=-math.inf)
    case(f, "X-inf-row", OK, X=np.where(np.arange(M)[:, None] == 1, np.inf, X0))
    case(f, "W-inf", OK, W=np.array([[0.5], [-np.inf], [2.0]]))
case("cost_from_logits", "Z-nan", OK, Z=np.array([[np.nan, 1.0, 2.0, 0.0, 1.0, -1.0]]))
case("compute_cost", "A-nan", OK, A=np.array([[np.nan, 0.5, 0.5, 0.5, 0.5, 0.5]]))
# A outside [0, 1] is a mistake (scores passed as probabilities), not something to clip.
for value in [1.5, -0.25, math.inf, -math.inf]:
    case("compute_cost", f"A-outside-{value!r}",
         wrong(ValueError, "A", "probabilities in [0, 1]", repr(value), "cost_from_logits"),
         A=np.array([[0.5, 0.5, value, 0.5, 0.5, 0.5]]))

# -- labels outside [0, 1]; soft labels ------------------------------------------
for f in WITH_Y:
    for label, text in [(2.0, "2.0"), (-1.0, "-1.0"), (math.nan, "nan"), (math.inf, "inf")]:
        Y_bad = Y0.copy()
        Y_bad[0, 3] = label
        case(f, f"Y-label-{text}", wrong(ValueError, "Y", "labels in [0, 1]", "got 1 value(s)",
                                         f"e.g. {text}"), Y=Y_bad)
    case(f, "Y-soft-labels", OK, Y=np.array([[0.0, 0.3, 1.0, 0.5, 0.99, 0.01]]))
    case(f, "Y-bool", OK, Y=Y0.astype(bool))
    case(f, "Y-int8", OK, Y=Y0.astype(np.int8))
for weights, what, fragment in [([1, -1, 1, 1, 1, 1], "negative", "e.g. -1.0"),
                                ([1, np.nan, 1, 1, 1, 1], "nan", "e.g. nan"),
                                ([1, np.inf, 1, 1, 1, 1], "inf", "e.g. inf"),
                                ([0] * 6, "all-zero", "got sum 0.0"),
                                # Regression: the sum overflowed with a FloatingPointError.
                                ([1e308] * 6, "overflowing-sum", "got sum inf")]:
    case("cost_and_gradients", f"sample_weight-{what}",
         wrong(ValueError, "sample_weight", fragment),
         kwargs={"sample_weight": np.array(weights, dtype=float)})
case("cost_and_gradients", "sample_weight-str",
     wrong(TypeError, "sample_weight", "got dtype <U1"), kwargs={"sample_weight": ["a"] * 6})
case("cost_and_gradients", "sample_weight-ok-row", OK,
     kwargs={"sample_weight": np.array([[1.0, 2.0, 0.0, 0.5, 1.0, 3.0]])})
case("cost_and_gradients", "sample_weight-ok-int", OK,
     kwargs={"sample_weight": np.array([1, 2, 0, 1, 1, 3])})
case("cost_and_gradients", "sample_weight-ok-misaligned", OK,
     kwargs={"sample_weight": lambda: misaligned([1.0, 2.0, 0.0, 0.5, 1.0, 3.0])})

# -- dtypes -------------------------------------------------------------------------
BAD_DTYPES = [("object", object, "object"), ("complex", np.complex128, "complex128"),
              ("str", "U8", "<U8"), ("bytes", "S8", "|S8"), ("datetime", "M8[s]", "datetime64[s]"),
              ("timedelta", "m8[s]", "timedelta64[s]"), ("longdouble", np.longdouble, "float128"),
              ("structured", [("a", "f8")], "[('a', '<f8')]")]
GOOD_DTYPES = [("bool", np.bool_), ("int8", np.int8), ("int64", np.int64), ("uint64", np.uint64),
               ("float16", np.float16), ("float32", np.float32), ("big-endian-f8", ">f8"),
               ("big-endian-f4", ">f4"), ("big-endian-i4", ">i4")]


def _cast(value, dtype):
    value = np.asarray(value)
    if isinstance(dtype, list):                  # structured
        out = np.zeros(value.shape, dtype=dtype)
        out["a"] = value
        return out
    if np.dtype(dtype).kind in "Mm":
        return value.astype(np.int64).astype(dtype)
    if np.dtype(dtype).kind in "US":
        return value.astype(dtype)
    return value.astype(dtype)


for f in ALL:
    for arg in SIGNATURES[f]:
        if arg == "b":
            continue
        for what, dtype, shown in BAD_DTYPES:
            case(f, f"{arg}-dtype-{what}", wrong(TypeError, arg, f"got dtype {shown}"),
                 **{arg: _cast(BASE[arg], dtype)})
        for what, dtype in GOOD_DTYPES:
            base = BASE[arg]
            if what in ("uint64",) and arg in ("X", "W", "Z", "z"):
                base = np.abs(base)
            if what == "bool" and arg not in ("Y",):
                base = base > 0.3     # a bool array of the same shape
            elif what.startswith("int") or what.endswith("i4") or what == "uint64":
                base = np.round(base) if arg != "A" else (base > 0.5)
            case(f, f"{arg}-dtype-{what}", OK, **{arg: _cast(base, dtype)})

# -- layouts: non-contiguous, negative strides, F order, read-only, memmap ----------
for f in ALL:
    for arg in SIGNATURES[f]:
        if arg == "b":
            continue
        base = BASE[arg]
        case(f, f"{arg}-strided", OK, **{arg: (lambda base=base: strided(base))})
        case(f, f"{arg}-negative-stride", OK, **{arg: (lambda base=base: reversed_view(base))})
        case(f, f"{arg}-read-only", OK, **{arg: (lambda base=base: read_only(base))})
        case(f, f"{arg}-memmap", OK, **{arg: (lambda base=base: memmap(base))})
        case(f, f"{arg}-memmap-read-only", OK, **{arg: (lambda base=base: memmap(base, "r"))})
        if base.ndim == 2 and base.shape[0] > 1 and base.shape[1] > 1:
            case(f, f"{arg}-F-order", OK, **{arg: (lambda base=base: np.asfortranarray(base))})
            case(f, f"{arg}-strided-rows", OK, **{arg: (lambda base=base: strided_rows(base))})
            case(f, f"{arg}-transposed-view", OK,
                 **{arg: (lambda base=base: np.ascontiguousarray(base.T).T)})
            case(f, f"{arg}-F-order-float32", OK,
                 **{arg: (lambda base=base: np.asfortranarray(base, dtype=np.float32))})
        case(f, f"{arg}-masked", wrong(TypeError, arg, "masked array"),
             **{arg: np.ma.masked_array(base, mask=np.zeros(base.shape, bool))})
        case(f, f"{arg}-nested-list", OK, **{arg: base.tolist()})
        case(f, f"{arg}-misaligned", OK, **{arg: (lambda base=base: misaligned(base))})
for f in ELEMENTWISE:
    case(f, "z-ragged-list", wrong(ValueError, "z", "rectangular", "got list"), z=[[1.0, 2.0], [3.0]])
    case(f, "z-None", wrong(TypeError, "z", "got dtype object", "NoneType"), z=None)
case("forward_pass", "X-ragged-list", wrong(ValueError, "X", "rectangular"), X=[[1.0, 2.0, 3.0], [1.0]])

# -- 0-d arrays and Python scalars ------------------------------------------------
for f in ELEMENTWISE:
    for what, value in [("python-float", 0.75), ("python-int", 3), ("python-bool", True),
                        ("0d-array", np.array(-1.5)), ("numpy-float32", np.float32(2.0)),
                        ("numpy-int", np.int16(-4)), ("big-endian-0d", np.array(1.5, ">f8"))]:
        case(f, f"z-{what}", OK, z=value)
    case(f, "z-python-complex", wrong(TypeError, "z", "got dtype complex128"), z=1j)
    case(f, "z-string", wrong(TypeError, "z", "got dtype <U3"), z="1.0")
    case(f, "z-huge-int", wrong(TypeError, "z", "got dtype object"), z=10**400)
for f in WITH_X:
    for what, value in [("0d-array", np.array(-0.5)), ("float32", np.float32(0.5)), ("int", 2),
                        ("size-1-array", np.array([[0.3]])), ("bool", True),
                        ("big-endian", np.array(0.5, ">f8"))]:
        case(f, f"b-{what}", OK, b=value)
    case(f, "b-vector", wrong(ValueError, "b", "scalar", "got an array of shape (2,)"),
         b=np.array([0.1, 0.2]))
    case(f, "b-string", wrong(TypeError, "b", "got dtype <U3"), b="0.1")
    case(f, "b-None", wrong(TypeError, "b", "got dtype object", "NoneType"), b=None)
    case(f, "b-complex", wrong(TypeError, "b", "got dtype complex128"), b=1 + 0j)
    # Regression (found by scripts/fuzz.py): used to escape as OverflowError.
    case(f, "b-huge-int", wrong(ValueError, "b", "representable as a float", "got int"), b=10**400)
    case(f, "b-datetime", wrong(TypeError, "b", "got dtype datetime64"), b=np.datetime64(1, "s"))

# -- other scalar parameters --------------------------------------------------------
for value, exc, fragment in [(math.nan, ValueError, "got nan"), ("0.5", TypeError, "got dtype <U3"),
                             (np.array([0.1, 0.2]), ValueError, "scalar"),
                             (None, TypeError, "got dtype object")]:
    case("predict", f"threshold-{value!r}"[:40], wrong(exc, "threshold", fragment),
         kwargs={"threshold": value})
for value in [0.0, 1.0, 0.7, np.float32(0.3), -1.0]:
    case("predict", f"threshold-ok-{value!r}", OK, kwargs={"threshold": value})
for value, exc, fragment in [(-0.1, ValueError, "[0, 0.5)"), (0.5, ValueError, "got 0.5"),
                             (math.nan, ValueError, "got nan"), ("x", TypeError, "got dtype <U1"),
                             ([1e-3, 1e-3], ValueError, "scalar")]:
    case("compute_cost", f"eps-{value!r}", wrong(exc, "eps", fragment), kwargs={"eps": value})
for value in [0.0, 1e-3, np.float32(1e-7)]:
    case("compute_cost", f"eps-ok-{value!r}", OK, kwargs={"eps": value})
for value, exc, fragment in [(-1.0, ValueError, "non-negative"), (math.inf, ValueError, "got inf"),
                             (math.nan, ValueError, "got nan"), ("x", TypeError, "got dtype <U1"),
                             ([1.0, 2.0], ValueError, "scalar"), (1j, TypeError, "complex")]:
    case("cost_and_gradients", f"l2-{value!r}", wrong(exc, "l2", fragment), kwargs={"l2": value})
for value in [0.0, 0.5, 3, np.float32(0.25)]:
    case("cost_and_gradients", f"l2-ok-{value!r}", OK, kwargs={"l2": value})
for f in ALL:
    for value, exc, fragment in [(0, ValueError, "got 0"), (1.5, TypeError, "got float 1.5"),
                                 ("2", TypeError, "got str '2'"), (True, TypeError, "got bool"),
                                 # Regressions: 10**6 crashed the interpreter (libgomp
                                 # could not create the team), 2**40 raised OverflowError.
                                 (10**6, ValueError, "got 1000000"),
                                 (2**40, ValueError, "got 1099511627776"),
                                 (np.array(2), TypeError, "got an array")]:
        case(f, f"n_threads-{value!r}", wrong(exc, "n_threads", fragment),
             kwargs={"n_threads": value})
    for value in [None, 1, 2, 3, -1, -100, np.int64(2)]:
        case(f, f"n_threads-ok-{value!r}", OK, kwargs={"n_threads": value})
    limit = max_threads_allowed()                 # the documented bound, both sides of it
    case(f, "n_threads-at-limit", OK, kwargs={"n_threads": limit})
    case(f, "n_threads-past-limit", wrong(ValueError, "n_threads", f"up to {limit}",
                                          f"got {limit + 1}"), kwargs={"n_threads": limit + 1})

# -- out= ----------------------------------------------------------------------------
for f, shape in [("sigmoid", ZZ0.shape), ("log_sigmoid", ZZ0.shape), ("forward_pass", (1, M))]:
    wrong_shape = shape[::-1]
    case(f, "out-wrong-shape", wrong(ValueError, "out", f"shape {shape}", f"got shape {wrong_shape}"),
         kwargs={"out": lambda s=wrong_shape: np.empty(s)})
    case(f, "out-flat", wrong(ValueError, "out", f"shape {shape}", f"got shape ({math.prod(shape)},)"),
         kwargs={"out": lambda s=shape: np.empty(math.prod(s))})
    for dtype, shown in [(np.int64, "int64"), (np.complex128, "complex128"), (np.float16, "float16"),
                         (">f8", ">f8"), (np.longdouble, "float128"), (object, "object")]:
        case(f, f"out-dtype-{shown}", wrong(TypeError, "out", "float32 or float64", f"got {shown}"),
             kwargs={"out": lambda s=shape, d=dtype: np.empty(s, dtype=d)})
    case(f, "out-read-only", wrong(ValueError, "out", "writeable", "got a read-only array"),
         kwargs={"out": lambda s=shape: read_only(np.empty(s))})
    case(f, "out-list", wrong(TypeError, "out", "NumPy array", "got list"),
         kwargs={"out": lambda s=shape: np.empty(s).tolist()})
    case(f, "out-float32", OK, kwargs={"out": lambda s=shape: np.empty(s, np.float32)})
    case(f, "out-F-order", OK, kwargs={"out": lambda s=shape: np.empty(s, order="F")})
    case(f, "out-strided", OK, kwargs={"out": lambda s=shape: strided(np.empty(s))})
    case(f, "out-negative-stride", OK, kwargs={"out": lambda s=shape: reversed_view(np.empty(s))})
    case(f, "out-memmap", OK, kwargs={"out": lambda s=shape: memmap(np.empty(s))})
    case(f, "out-misaligned", OK, kwargs={"out": lambda s=shape: misaligned(np.empty(s))})
    case(f, "out-memmap-read-only", wrong(ValueError, "out", "writeable"),
         kwargs={"out": lambda s=shape: memmap(np.zeros(s), "r")})


def _shared(*shapes_and_offsets, length=32, dtype=np.float64):
    buf = np.arange(length, dtype=dtype) / 7.0 - 2.0
    return [buf[o:o + math.prod(s)].reshape(s) for s, o in shapes_and_offsets]


def _overlap_case(func, what, make):
    """``make()`` returns (args, kwargs) whose out= shares memory with an input."""
    CASES.append(Case(f"{func}-{what}", func, make, OK))


for f in ELEMENTWISE:
    _overlap_case(f, "out-is-z", lambda: (lambda z: ([z], {"out": z}))(np.array(ZZ0)))
    _overlap_case(f, "out-shifted-forward", lambda: (lambda z, o: ([z], {"out": o}))(
        *_shared(((6,), 1), ((6,), 0))))
    _overlap_case(f, "out-shifted-backward", lambda: (lambda z, o: ([z], {"out": o}))(
        *_shared(((6,), 0), ((6,), 1))))
    _overlap_case(f, "out-transposed-self", lambda: (lambda z: ([z], {"out": z.T}))(
        np.arange(9.0).reshape(3, 3)))
    _overlap_case(f, "out-reversed-self", lambda: (lambda z: ([z], {"out": z[::-1]}))(
        np.arange(8.0) - 4))
    _overlap_case(f, "out-threaded-shifted", lambda: (lambda z, o: ([z], {"out": o}))(
        *_shared(((100_000,), 3), ((100_000,), 0), length=100_003)))
_overlap_case("forward_pass", "out-overlaps-X", lambda: (
    lambda buf: ([buf[:18].reshape(6, 3), W0, B0], {"out": buf[2:8].reshape(1, 6)}))(
    np.arange(20.0) / 10))
# Regression: out= sharing memory with W was written while the kernel still read W.
_overlap_case("forward_pass", "out-overlaps-W", lambda: (
    lambda buf: ([X0, buf[:3].reshape(3, 1), B0], {"out": buf[:6].reshape(1, 6)}))(
    np.array([0.5, -1.25, 2.0, 0, 0, 0])))
_overlap_case("forward_pass", "out-overlaps-X-threaded", lambda: (
    lambda buf: ([buf[:150_000].reshape(50_000, 3), W0, B0],
                 {"out": buf[1000:51_000].reshape(1, 50_000)}))(
    np.sin(np.arange(150_000.0))))


# ---------------------------------------------------------------------------
# Running a row of the table
# ---------------------------------------------------------------------------

def _snapshot(value):
    return np.array(value, copy=True) if isinstance(value, np.ndarray) else value


def _to_reference(name, value):
    """The argument as the reference wants it: contiguous float64 of the textbook shape."""
    if name == "b":
        return float(np.asarray(value, dtype=np.float64).reshape(()))
    arr = np.array(np.asarray(value), dtype=np.float64, order="C")
    if name == "W":
        return arr.reshape(-1, 1)
    if name in ("Y", "A", "Z"):
        return arr.reshape(1, -1)
    return arr


def _low_precision(args):
    return any(np.asarray(a).dtype.kind == "f" and np.asarray(a).dtype.itemsize <= 4
               for a in args if not isinstance(a, (list, bool, int, float)))


def expected(func, args, kwargs):
    ref_args = [_to_reference(name, a) for name, a in zip(SIGNATURES[func], args)]
    ref_kwargs = {}
    if "sample_weight" in kwargs:
        ref_kwargs["sample_weight"] = _to_reference("Y", kwargs["sample_weight"])
    if "l2" in kwargs:
        ref_kwargs["l2"] = float(kwargs["l2"])
    if "threshold" in kwargs:
        ref_kwargs["threshold"] = float(kwargs["threshold"])
    if func == "compute_cost":
        # fastlogit clips at the machine epsilon of A's (converted) dtype.
        a_dtype = fastlogit._validation.as_real_array(args[0], "A").dtype
        ref_kwargs["eps"] = (float(kwargs["eps"]) if kwargs.get("eps") is not None
                             else float(np.finfo(a_dtype).eps))
    with np.errstate(all="ignore"):
        return getattr(reference, func)(*ref_args, **ref_kwargs)


def assert_matches(got, want, rtol):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_matches(g, w, rtol)
        return
    if type(want) is float:          # costs and db are Python floats, as in the reference
        assert type(got) is float, type(got)
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64),
                               rtol=rtol, atol=rtol * 1e-3, equal_nan=True)
    assert np.shape(got) == np.shape(want), (np.shape(got), np.shape(want))


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_contract(c):
    args, kwargs = c.build()
    func = getattr(fastlogit, c.func)
    if isinstance(c.expect, Raises):
        with pytest.raises(c.expect.exc) as info:
            func(*args, **kwargs)
        message = str(info.value)
        assert message.startswith(c.expect.arg + " "), message
        assert "got" in message, message
        assert "must" in message, message           # says what was expected
        for fragment in c.expect.fragments:
            assert fragment in message, (fragment, message)
        assert type(info.value) is c.expect.exc
        return
    inputs = [_snapshot(a) for a in args]            # out= may overwrite an input
    kw_inputs = {k: _snapshot(v) for k, v in kwargs.items() if k != "out"}
    got = func(*args, **kwargs)
    want = expected(c.func, inputs, kw_inputs)
    if c.func == "predict":
        # The reference rounds differently only within 1e-12 of the threshold.
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.int64
        return
    low = _low_precision(inputs) or ("out" in kwargs and kwargs["out"].dtype == np.float32)
    assert_matches(got, want, 2e-6 if low else 1e-12)
    if "out" in kwargs:
        assert got is kwargs["out"]
    if c.func in ELEMENTWISE and np.ndim(inputs[0]) == 0 and "out" not in kwargs:
        assert np.ndim(got) == 0 and not isinstance(got, np.ndarray)   # a scalar, like a ufunc


def test_table_size():
    """The closing note quotes these counts; keep the table from shrinking unnoticed."""
    rejected = sum(isinstance(c.expect, Raises) for c in CASES)
    accepted = len(CASES) - rejected
    assert rejected >= 380 and accepted >= 480, (rejected, accepted)
    assert len({c.id for c in CASES}) == len(CASES), "duplicate case ids"
    assert {c.func for c in CASES} == set(SIGNATURES)


# ---------------------------------------------------------------------------
# NaN / inf policy: bad values reach the affected rows only
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [7, 70_000])           # serial and threaded paths
def test_nan_inf_in_X_touch_only_their_rows(order, dtype, m):
    rng = np.random.default_rng(5)
    X = np.asarray(rng.normal(size=(m, 4)), dtype=dtype, order=order)
    W = np.array([0.5, -1.0, 0.25, 2.0])
    bad_rows = {1: np.nan, 3: np.inf, 5: -np.inf}
    for row, value in bad_rows.items():
        X[row, 2] = value
    X[6, 0], X[6, 1] = np.inf, np.inf               # inf*0.5 + inf*(-1) = NaN in this row
    A = fastlogit.forward_pass(X, W, 0.1)
    clean = np.ones(m, bool)
    clean[[1, 3, 5, 6]] = False
    X_clean = np.asarray(X[clean], order=order)      # same layout, same summation order
    A_clean = fastlogit.forward_pass(X_clean, W, 0.1)
    np.testing.assert_array_equal(A[0, clean], A_clean[0])      # unaffected rows: same bits
    assert np.isnan(A[0, 1]) and np.isnan(A[0, 6])
    assert A[0, 3] == 1.0 and A[0, 5] == 0.0        # X[., 2] * 0.25 = +-inf: exact limits
    labels = fastlogit.predict(X, W, 0.1)
    assert labels[0, 1] == 0 and labels[0, 6] == 0 and labels[0, 3] == 1 and labels[0, 5] == 0
    np.testing.assert_array_equal(labels[0, clean], fastlogit.predict(X_clean, W, 0.1)[0])


def test_nan_in_a_reduction_is_reported_not_dropped(rng):
    X = rng.normal(size=(1000, 3))
    Y = (rng.random((1, 1000)) < 0.5).astype(float)
    X[10, 1] = np.nan
    J, dW, db = fastlogit.cost_and_gradients(X, np.ones(3), 0.0, Y)
    assert np.isnan(J) and np.isnan(db) and np.all(np.isnan(dW))
    # A NaN weight-zero example is still NaN: a zero weight does not hide bad data in X.
    assert np.isnan(fastlogit.cost_from_logits(np.array([np.nan, 1.0]), [1, 0]))
    assert np.isnan(fastlogit.compute_cost(np.array([np.nan, 0.5]), [1, 0]))


def test_inf_in_X_gives_exact_limits_in_reductions():
    X = np.array([[np.inf, 1.0], [0.5, -1.0]])
    W = np.array([1.0, 1.0])
    J, dW, db = fastlogit.cost_and_gradients(X, W, 0.0, [1, 0])
    # Row 0: z = +inf with y = 1: loss 0, residual -0; the 0 * inf of dW[0] is NaN
    # (as in the reference), the other column and db stay finite.
    assert np.isfinite(J) and np.isfinite(db) and np.isfinite(dW[1, 0])
    assert np.isnan(dW[0, 0])


def test_nan_in_W_or_b_poisons_every_row_as_it_must():
    X = np.ones((4, 2))
    assert np.all(np.isnan(fastlogit.forward_pass(X, [np.nan, 1.0], 0.0)))
    assert np.all(np.isnan(fastlogit.forward_pass(X, [1.0, 1.0], np.nan)))


def test_shapes_of_results():
    A = fastlogit.forward_pass(np.zeros((0, 3)), W0, 0.0)
    assert A.shape == (1, 0) and A.dtype == np.float64
    dW, db = fastlogit.gradients(np.zeros((M, 0)), np.zeros((0, 1)), 0.5, Y0)
    assert dW.shape == (0, 1) and isinstance(db, float)
    A32 = fastlogit.forward_pass(X0.astype(np.float16), W0.astype(np.float32), 0.0)
    assert A32.dtype == np.float32
    A64 = fastlogit.forward_pass(X0.astype(np.float32), W0, 0.0)
    assert A64.dtype == np.float64     # float64 W: as NumPy would promote


def test_inputs_are_never_modified(rng):
    X = rng.normal(size=(100, 3))
    W, Y = rng.normal(size=(3, 1)), (rng.random((1, 100)) < 0.5).astype(float)
    copies = [X.copy(), W.copy(), Y.copy()]
    fastlogit.forward_pass(X, W, 0.1)
    fastlogit.cost_and_gradients(X, W, 0.1, Y, sample_weight=np.ones(100), l2=0.5)
    fastlogit.gradients(X, W, 0.1, Y)
    for before, after in zip(copies, [X, W, Y]):
        np.testing.assert_array_equal(before, after)


# ---------------------------------------------------------------------------
# Training entry points (fastlogit/_train.py, owned elsewhere): the same contract
# ---------------------------------------------------------------------------

def _gd(X=X0, Y=Y0, **kw):
    kw.setdefault("num_iterations", 5)
    return fastlogit.gradient_descent(X, Y, **kw)


def _fit(X=X0, Y=Y0, **kw):
    return fastlogit.fit(X, Y, **kw)


TRAIN_BAD = [
    ("X-1d", dict(X=X0[:, 0]), ValueError, "X", ("2-D", "got shape (6,)")),
    ("X-3d", dict(X=X0[None]), ValueError, "X", ("2-D",)),
    ("Y-m-mismatch", dict(Y=Y0[:, :5]), ValueError, "Y", ("(1, 6) or (6,)", "got shape (1, 5)")),
    ("Y-column", dict(Y=Y0.T), ValueError, "Y", ("got shape (6, 1)",)),
    ("Y-label-2", dict(Y=Y0 * 2), ValueError, "Y", ("[0, 1]",)),
    ("Y-label-nan", dict(Y=np.where(Y0 > 0, np.nan, 0)), ValueError, "Y", ("[0, 1]",)),
    ("X-object", dict(X=X0.astype(object)), TypeError, "X", ("got dtype object",)),
    ("X-complex", dict(X=X0.astype(complex)), TypeError, "X", ("got dtype complex128",)),
    ("X-str", dict(X=X0.astype(str)), TypeError, "X", ("got dtype <U",)),
    ("X-datetime", dict(X=X0.astype(np.int64).astype("M8[s]")), TypeError, "X", ("datetime64",)),
    ("X-masked", dict(X=np.ma.masked_array(X0)), TypeError, "X", ("masked array",)),
    ("Y-str", dict(Y=Y0.astype(str)), TypeError, "Y", ("got dtype <U",)),
    ("l2-negative", dict(l2=-1.0), ValueError, "l2", ("got -1.0",)),
    ("l2-nan", dict(l2=math.nan), ValueError, "l2", ("got nan",)),
    ("l2-str", dict(l2="x"), TypeError, "l2", ("got dtype <U1",)),
    ("sample_weight-negative", dict(sample_weight=-np.ones(M)), ValueError, "sample_weight", ()),
    ("sample_weight-shape", dict(sample_weight=np.ones(M + 1)), ValueError, "sample_weight",
     ("got shape (7,)",)),
    ("sample_weight-all-zero", dict(sample_weight=np.zeros(M)), ValueError, "sample_weight", ()),
    ("sample_weight-overflowing-sum", dict(sample_weight=np.full(M, 1e308)), ValueError,
     "sample_weight", ("got sum inf",)),
]
# Known problems (strict: these rows start failing -- and must be moved up --
# once fixed).
TRAIN_KNOWN = []

TRAIN_ROWS = []
for entry, call in [("gradient_descent", _gd), ("fit", _fit)]:
    for what, kw, exc, arg, fragments in TRAIN_BAD:
        TRAIN_ROWS.append(pytest.param(call, kw, exc, arg, fragments, id=f"{entry}-{what}"))
    for what, kw, exc, arg, fragments, why in TRAIN_KNOWN:
        TRAIN_ROWS.append(pytest.param(call, kw, exc, arg, fragments, id=f"{entry}-{what}",
                                       marks=pytest.mark.xfail(strict=True, reason=why)))
for what, kw, exc, arg, fragments in [
        ("W-transposed", dict(W=W0[:2].T), ValueError, "W", ("got W of shape (1, 2)",)),
        ("learning_rate-zero", dict(learning_rate=0.0), ValueError, "learning_rate", ("got 0.0",)),
        ("learning_rate-str", dict(learning_rate="x"), TypeError, "learning_rate", ("<U1",)),
        ("num_iterations-negative", dict(num_iterations=-1), ValueError, "num_iterations", ("-1",)),
        ("num_iterations-float", dict(num_iterations=1.5), TypeError, "num_iterations", ("1.5",)),
        ("b-str", dict(b="x"), TypeError, "b", ("<U1",)),
        ("callback-not-callable", dict(callback=1), TypeError, "callback", ("int",))]:
    TRAIN_ROWS.append(pytest.param(_gd, dict(kw, X=X0[:, :2]) if what == "W-transposed" else kw,
                                   exc, arg, fragments, id=f"gradient_descent-{what}"))
for what, kw, exc, arg, fragments in [
        ("tol-negative", dict(tol=-1.0), ValueError, "tol", ("got -1.0",)),
        ("max_iter-zero", dict(max_iter=0), ValueError, "max_iter", ("got 0",)),
        ("solver-unknown", dict(solver="sgd"), ValueError, "solver", ("'sgd'",)),
        ("n_threads-zero", dict(n_threads=0), ValueError, "n_threads", ("got 0",)),
        ("n_threads-huge", dict(n_threads=10**6), ValueError, "n_threads", ("got 1000000",)),
        ("X-nan", dict(X=np.where(X0 > 1, np.nan, X0)), ValueError, "X", ("finite",))]:
    TRAIN_ROWS.append(pytest.param(_fit, kw, exc, arg, fragments, id=f"fit-{what}"))
TRAIN_ROWS.append(pytest.param(
    _fit, dict(fit_intercept="no"), TypeError, "fit_intercept", ("got str",), id="fit-fit_intercept-str"))


@pytest.mark.parametrize("call,kwargs,exc,arg,fragments", TRAIN_ROWS)
def test_training_rejects_bad_input(call, kwargs, exc, arg, fragments):
    with pytest.raises(exc) as info:
        call(**kwargs)
    message = str(info.value)
    assert message.startswith(arg + " "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


TRAIN_OK = {
    "C": lambda a: a, "F": np.asfortranarray, "strided": strided, "negative-stride": reversed_view,
    "read-only": read_only, "big-endian": lambda a: a.astype(">f8"), "list": lambda a: a.tolist(),
    "float32": lambda a: a.astype(np.float32), "memmap": lambda a: memmap(a),
}


@pytest.mark.parametrize("layout", list(TRAIN_OK))
def test_training_accepts_every_layout(layout):
    change = TRAIN_OK[layout]
    W, b, costs = fastlogit.gradient_descent(change(X0), change(Y0), num_iterations=5,
                                             learning_rate=0.5)
    W_ref, b_ref, costs_ref = reference.gradient_descent(X0, Y0, num_iterations=5,
                                                         learning_rate=0.5)
    rtol = 1e-6 if layout == "float32" else 1e-12
    np.testing.assert_allclose(W, W_ref, rtol=rtol)
    np.testing.assert_allclose(costs, costs_ref, rtol=rtol)
    result = fastlogit.fit(change(X0), change(Y0), l2=0.1)
    expected = fastlogit.fit(np.ascontiguousarray(X0), Y0, l2=0.1)
    np.testing.assert_allclose(result.W, expected.W, rtol=1e-5 if layout == "float32" else 1e-10)


def test_subnormal_and_overflowing_results_raise_no_floating_point_error():
    """Regressions found by tests/test_differential.py: the Python layer's own
    normalisation (sum / m, the L2 term, the cast of dW to float32) used to
    raise FloatingPointError under np.errstate(all="raise") (active here, see
    conftest) and RuntimeWarning("overflow encountered in cast") by default."""
    tiny = np.full((3, 1), 1e-320)
    dW, db = fastlogit.gradients(tiny, [[0.0]], 0.0, [[1, 0, 1]])
    assert dW[0, 0] != 0 and abs(dW[0, 0]) < 1e-300
    X32 = np.ones((4, 1), np.float32)
    J, dW, db = fastlogit.cost_and_gradients(X32, np.array([[3e38]], np.float32), 0.0,
                                             [1, 1, 1, 1], l2=10.0)
    assert dW.dtype == np.float32 and dW[0, 0] == np.inf    # 3e39 does not fit in float32
    assert J == pytest.approx(0.5 * 10.0 * 9e76, rel=1e-6)  # J is a float64: no overflow
