"""Arbitrary-precision oracle for fastlogit's accuracy tests and benchmarks/accuracy.py.

Every function here takes a double (or float32 widened to double, which is
exact) and returns the exact mathematical value of sigmoid, log-sigmoid, the
per-example loss from logits or the residual sigma(z) - y, computed with
mpmath at ``PREC_BITS`` = 256 bits (77 decimal digits).  Results are far more
accurate than any double, so "error in ulps" below means error against the
mathematically exact value, not against another floating-point code.

Two layers:

* ``exact_*`` return raw mpmath values (``mpf`` tuples of ``mpmath.libmp``;
  the low-level layer is ~5x faster than ``mpmath.mpf`` objects, which matters
  for sweeps of 10^5 points).
* ``Exact`` holds a vector of exact values already reduced to what an ulp
  comparison needs (``hi`` = the correctly rounded value in the target format,
  ``frac`` = (exact - hi) / ulp(exact), ``ulp_exp``), so that
  :func:`ulp_errors` compares a whole NumPy array at NumPy speed.

The ulp of an exact value x is 2**(max(floor(log2|x|), emin) - p + 1) with
(p, emin) = (53, -1022) for float64 and (24, -126) for float32: the spacing of
the floating-point numbers around x, so subnormal results are measured in
units of the smallest subnormal.  An error of at most 0.5 ulp means correctly
rounded.

``python tests/oracle.py --check`` compares the fast low-level evaluation with
straightforward ``mpmath.mp`` formulas at 100 digits on random points.
"""
from __future__ import annotations

import functools
import hashlib
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mpmath import libmp as M

PREC_BITS = 256
# Working precision inside the formulas: a margin over PREC_BITS for the
# additions (1 + e, a + L) before the final result.
_WP = PREC_BITS + 64

FORMATS = {
    # name: (precision p in bits, exponent of the smallest normal, dtype)
    "float64": (53, -1022, np.float64),
    "float32": (24, -126, np.float32),
}

_ONE = M.fone
_ZERO = M.fzero
_HALF = M.from_float(0.5)
_NEG_INF = M.fninf
_POS_INF = M.finf


def _mpf(x: float):
    return M.from_float(float(x))


def _is_inf(v) -> bool:
    return v in (_POS_INF, _NEG_INF)


# ---------------------------------------------------------------------------
# Exact values (raw mpf) of the functions at one point
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Parts:
    """Building blocks at a = |z| (finite): e = exp(-a), L = log1p(e),
    p = sigma(a) = 1/(1+e), q = sigma(-a) = e/(1+e)."""
    a: tuple
    e: tuple
    L: tuple
    p: tuple
    q: tuple


def _parts(z: float) -> _Parts:
    a = _mpf(abs(z))
    e = M.mpf_exp(M.mpf_neg(a), _WP)
    # 1 + e with 140 extra bits, so that log(1 + e) keeps e to _WP bits down to e = 2^-140
    d = M.mpf_add(_ONE, e, _WP + 140)
    if M.mpf_lt(e, M.from_man_exp(1, -140)):
        # log1p(e) = e - e^2/2 + e^3/3 - ...: two terms leave a relative error
        # below e^2/3 < 2^-281 (and 1 + e could not be held for e = exp(-1e308)).
        L = M.mpf_mul(e, M.mpf_sub(_ONE, M.mpf_shift(e, -1), _WP), _WP)
    else:
        L = M.mpf_log(d, _WP)
    d = M.mpf_add(_ONE, e, _WP)
    p = M.mpf_div(_ONE, d, _WP)
    q = M.mpf_div(e, d, _WP)
    return _Parts(a, e, L, p, q)


def exact_sigmoid(z: float, parts: _Parts | None = None):
    """sigma(z) = 1 / (1 + exp(-z)) exactly (to 256 bits).

    ``parts``: _parts(z) (or of -z: only |z| matters) when already computed."""
    if math.isinf(z):
        return _ONE if z > 0 else _ZERO
    P = parts or _parts(z)
    return P.p if z >= 0 else P.q


def exact_log_sigmoid(z: float, parts: _Parts | None = None):
    """log sigma(z) = min(z, 0) - log1p(exp(-|z|))."""
    if math.isinf(z):
        return _ZERO if z > 0 else _NEG_INF
    P = parts or _parts(z)
    if z >= 0:
        return M.mpf_neg(P.L)
    return M.mpf_neg(M.mpf_add(P.a, P.L, _WP))


def exact_loss(z: float, y: float, parts: _Parts | None = None):
    """Per-example loss from logits, y*softplus(-z) + (1-y)*softplus(z).

    = log1p(exp(-|z|)) + y*max(-z, 0) + (1-y)*max(z, 0); the products of the
    doubles y and z are formed exactly (prec=0).
    """
    y_m = _mpf(y)
    one_minus_y = M.mpf_sub(_ONE, y_m)               # exact
    if math.isinf(z):
        weight = y_m if z < 0 else one_minus_y       # weight of the infinite term
        return _ZERO if weight == _ZERO else _POS_INF
    P = parts or _parts(z)
    linear = M.mpf_mul(y_m if z < 0 else one_minus_y, P.a)   # exact
    return M.mpf_add(P.L, linear, _WP)


def exact_residual(z: float, y: float):
    """sigma(z) - y, for labels y in {0, 1} (no cancellation: -sigma(-z) for y = 1).

    Fractional labels are refused: sigma(z) - y can cancel below any fixed
    precision (sigma(1e-300) - 0.5), and the issue bounds only y in {0, 1}.
    """
    if y == 0.0:
        return exact_sigmoid(z)
    if y == 1.0:
        return M.mpf_neg(exact_sigmoid(-z))
    raise ValueError(f"exact_residual supports y in {{0, 1}}; got y = {y!r}")


def exact_prob_loss(a: float, y: float, eps: float):
    """Per-example loss from a probability, clipped as compute_cost does:
    -(y log c + (1 - y) log(1 - c)), c = min(max(a, eps), 1 - eps) with the
    clip bounds themselves rounded to double (1 - eps is what the code sees)."""
    hi = 1.0 - eps
    c = min(max(a, eps), hi)
    c_m = _mpf(c)
    y_m = _mpf(y)
    total = _ZERO
    if y != 0.0:
        total = M.mpf_add(total, M.mpf_mul(y_m, M.mpf_log(c_m, _WP), _WP), _WP)
    if y != 1.0:
        log1m = M.mpf_log(M.mpf_sub(_ONE, c_m), _WP)           # 1 - c is exact (prec=0)
        total = M.mpf_add(total, M.mpf_mul(M.mpf_sub(_ONE, y_m), log1m, _WP), _WP)
    return M.mpf_neg(total)


# ---------------------------------------------------------------------------
# Rounding and ulps
# ---------------------------------------------------------------------------

def ulp_exponent(x, fmt: str = "float64") -> int:
    """Exponent k of ulp(x) = 2**k for an exact (mpf) value x in format fmt."""
    p, emin, _ = FORMATS[fmt]
    if x == _ZERO:
        return emin - p + 1
    sign, man, exp, bc = x
    top = exp + bc - 1                       # floor(log2 |x|)
    return max(top, emin) - p + 1


def round_exact(x, fmt: str = "float64") -> tuple[float, float, int]:
    """(hi, frac, k): hi = x correctly rounded (half to even) to fmt, including
    subnormals and overflow to inf; frac = (x - hi) / 2**k with 2**k = ulp(x)."""
    if _is_inf(x):
        return (math.inf if x == _POS_INF else -math.inf), 0.0, 0
    if x == M.fnan:
        return math.nan, 0.0, 0
    k = ulp_exponent(x, fmt)
    scaled = M.mpf_shift(x, -k)                              # x / ulp, exact
    n = M.to_int(scaled, M.round_nearest)                    # ties to even
    frac = M.to_float(M.mpf_sub(scaled, M.from_int(n)), rnd=M.round_nearest)
    p, emin, dtype = FORMATS[fmt]
    max_top = 1023 if fmt == "float64" else 127
    if abs(n) >= (1 << p) and k + p > max_top + 1:           # rounds past the largest finite
        return (math.inf if n > 0 else -math.inf), 0.0, k
    return math.ldexp(n, k), frac, k


@dataclass
class Exact:
    """Exact values of one function at many points, ready for ulp_errors."""
    hi: np.ndarray          # correctly rounded, float64 (float32 values for fmt float32)
    frac: np.ndarray        # (exact - hi) / ulp(exact)
    ulp_exp: np.ndarray     # int: ulp(exact) = 2**ulp_exp
    fmt: str

    @classmethod
    def from_values(cls, values, fmt: str = "float64") -> "Exact":
        rounded = [round_exact(v, fmt) for v in values]
        hi = np.array([r[0] for r in rounded], dtype=np.float64)
        frac = np.array([r[1] for r in rounded], dtype=np.float64)
        k = np.array([r[2] for r in rounded], dtype=np.int64)
        return cls(hi, frac, k, fmt)

    def negated(self) -> "Exact":
        return Exact(-self.hi, -self.frac, self.ulp_exp.copy(), self.fmt)

    def take(self, index) -> "Exact":
        return Exact(self.hi[index], self.frac[index], self.ulp_exp[index], self.fmt)

    def __len__(self) -> int:
        return len(self.hi)


def ulp_errors(got, exact: Exact) -> np.ndarray:
    """|got - exact| / ulp(exact) element-wise, as float64.

    inf where ``got`` is NaN, or infinite while the exact value is finite, or
    differs from an infinite exact value; 0 where both are the same infinity.
    ``got`` - hi is exact in double whenever got is within a factor 2 of hi
    (Sterbenz) or both are subnormal-scale, i.e. whenever the error is small
    enough to matter; larger errors are reported approximately (and huge).
    """
    got = np.asarray(got, dtype=np.float64).ravel()
    if got.shape != exact.hi.shape:
        raise ValueError(f"got has {got.size} values, exact has {exact.hi.size}")
    with np.errstate(all="ignore"):
        diff = np.ldexp(got - exact.hi, -exact.ulp_exp)
        err = np.abs(diff - exact.frac)
        exact_inf = np.isinf(exact.hi)
        err = np.where(exact_inf, np.where(got == exact.hi, 0.0, np.inf), err)
        err = np.where(np.isnan(got), np.inf, err)
    return err


def ulp_error_scalar(got: float, x, fmt: str = "float64") -> float:
    """|got - x| / ulp(x) for one exact mpf value x, computed exactly in mpmath."""
    if math.isnan(got):
        return math.inf
    if _is_inf(x) or math.isinf(got):
        same = (_is_inf(x) and math.isinf(got) and (got > 0) == (x == _POS_INF))
        return 0.0 if same else math.inf
    k = ulp_exponent(x, fmt)
    diff = M.mpf_sub(_mpf(got), x, _WP)
    return abs(M.to_float(M.mpf_shift(diff, -k)))


def to_float(x) -> float:
    """Exact value x rounded to the nearest double (subnormals included)."""
    return round_exact(x, "float64")[0]


def mp_sum(values, counts=None):
    """Exact-enough sum of mpf values (optionally weighted by integer counts),
    at 256 + 64 bits: the relative error is far below 1e-60."""
    total = _ZERO
    prec = _WP + 64
    if counts is None:
        for v in values:
            total = M.mpf_add(total, v, prec)
    else:
        for v, c in zip(values, counts):
            if c:
                total = M.mpf_add(total, M.mpf_mul(v, M.from_int(int(c))), prec)
    return total


def relative_error(got: float, x) -> float:
    """|got - x| / |x| for an exact mpf value x (x != 0)."""
    diff = M.mpf_sub(_mpf(got), x, _WP)
    return abs(M.to_float(M.mpf_div(diff, x, 64)))


# ---------------------------------------------------------------------------
# Deterministic sweeps
# ---------------------------------------------------------------------------

def _bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


def _from_bits(b: np.ndarray) -> np.ndarray:
    return np.asarray(b, dtype=np.int64).view(np.float64)


# Where fastlogit's formulas and libm switch regimes (float64):
#   709.782712893384   = log(DBL_MAX): exp(z) overflows above, 1/(1 + exp(-z)) overflows below -it
#   708.3964185322641  = -log(2^-1022): exp(-z) subnormal beyond
#   744.4400719213812  = -log(2^-1074): exp(-z) below the smallest subnormal
#   745.1332191019412  = exp(-z) rounds to 0 beyond
#   36.7368005696771   = log1p(exp(-z)) == exp(-z) in double beyond (Maechler's cut-offs,
#   18.021826694558577   LogExpFunctions.jl); log1p(exp(z)) switches to z + exp(-z) at 18.02
#   33.23111882352963    and to z alone at 33.23 / 36.7 (the usual rounded values 37, 18, 33.3
#   37.0, 18.0, 33.3     are included too)
#   760.0              = the clamp of the vectorised exp in /work/vmath's fl_math.h
THRESHOLDS_F64 = (709.782712893384, 708.3964185322641, 744.4400719213812, 745.1332191019412,
                  36.7368005696771, 18.021826694558577, 33.23111882352963,
                  37.0, 18.0, 33.3, 760.0, 0.5 * math.log(2.0), 1.0)
# float32 results come from the double computation; their own edges are where
# float32 sigma(z) underflows (87.33 normal limit, 103.28 last subnormal) or
# rounds to 1 (16.64), and the float32 log1pexp cut-offs.
THRESHOLDS_F32 = (88.72283935546875, 87.3365478515625, 103.27892303466797, 103.97207641601562,
                  16.635532, 7.9711924, 13.993, 17.328680, 15.942385)


def sweep_float64(n_log: int = 30_000, linear_step: float = 1 / 16, linear_max: float = 800.0,
                  window_half_width: int = 512, window_ulps: int = 32) -> np.ndarray:
    """Deterministic float64 grid, symmetric about 0 (for every z, -z is in it).

    * ``n_log`` positive doubles evenly spaced in bit pattern from the smallest
      subnormal to 1e308: evenly spaced in log2 within each binade, i.e. log-spaced;
    * every multiple of 1/16 in [0, 800] (the range where the functions vary);
    * around each threshold t: t + j/1024 for |j| <= 512 and the 2*32 doubles
      next to t;
    * 0, the smallest normal, DBL_MAX, inf.

    Built from integer bit patterns and exact arithmetic, so it is identical on
    every platform and NumPy version.
    """
    lo, hi = _bits(5e-324), _bits(1e308)
    log_bits = lo + np.arange(n_log, dtype=np.int64) * ((hi - lo) // (n_log - 1))
    parts = [_from_bits(log_bits),
             np.arange(int(linear_max / linear_step) + 1, dtype=np.float64) * linear_step]
    j = np.arange(-window_half_width, window_half_width + 1, dtype=np.float64) / 1024.0
    k = np.arange(-window_ulps, window_ulps + 1, dtype=np.int64)
    for t in THRESHOLDS_F64:
        parts.append(t + j)
        parts.append(_from_bits(_bits(t) + k))
    parts.append(np.array([0.0, 2.0 ** -1022, np.finfo(np.float64).max, np.inf]))
    pos = np.unique(np.abs(np.concatenate(parts)))
    return np.concatenate([-pos[::-1], pos])


def sweep_float32(n_log: int = 15_000, linear_step: float = 1 / 64, linear_max: float = 110.0,
                  window_half_width: int = 256, window_ulps: int = 32) -> np.ndarray:
    """Float32 analogue of :func:`sweep_float64` (values exactly representable
    in float32, returned as float32): log-spaced from the smallest float32
    subnormal to 3.4e38, every multiple of 1/64 up to 110, windows around
    THRESHOLDS_F32 and THRESHOLDS_F64 below 110."""
    f32 = np.float32
    lo = int(np.array(1e-45, f32).view(np.int32))
    hi = int(np.array(3.4e38, f32).view(np.int32))
    log_bits = lo + (np.arange(n_log, dtype=np.int64) * (hi - lo)) // (n_log - 1)
    parts = [log_bits.astype(np.int32).view(f32),
             (np.arange(int(linear_max / linear_step) + 1) * linear_step).astype(f32)]
    j = (np.arange(-window_half_width, window_half_width + 1) / 512.0)
    k = np.arange(-window_ulps, window_ulps + 1, dtype=np.int32)
    for t in THRESHOLDS_F32 + tuple(t for t in THRESHOLDS_F64 if t < 110):
        t32 = np.float32(t)
        parts.append((np.float64(t32) + j).astype(f32))     # rounds to float32 grid
        parts.append((np.array(t32).view(np.int32) + k).astype(np.int32).view(f32))
    parts.append(np.array([0.0, 2.0 ** -126, np.finfo(f32).max, np.inf], dtype=f32))
    pos = np.unique(np.abs(np.concatenate(parts)))
    return np.concatenate([-pos[::-1], pos])


def fractional_labels(z: np.ndarray) -> np.ndarray:
    """A deterministic fractional label in (0, 1) for every z: a hash of z's
    bits, so the same (z, y) pairs are drawn on every platform.  Multiples of
    2^-20 (exact in float32 and float64)."""
    b = np.ascontiguousarray(z, dtype=np.float64).view(np.uint64)
    h = (b * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(44)        # 20 bits
    return (h.astype(np.float64) + 0.5) / 2.0 ** 20


@dataclass
class SweepOracle:
    """Exact values on a symmetric sweep z (float64 or float32 values).

    ``sigmoid`` and ``log_sigmoid`` are rounded to the sweep's own format, the
    format the element-wise functions return.  ``loss_frac`` (float64 sweep
    only) is the loss at the fractional label ``fractional_labels(z)``.
    Labels 0/1 need no extra evaluation: softplus(z) = -log sigma(-z) and
    sigma(z) - 1 = -sigma(-z) come from the mirror point -z.
    """
    z: np.ndarray
    sigmoid: Exact
    log_sigmoid: Exact
    loss_frac: Exact | None = None

    @property
    def fmt(self) -> str:
        return self.sigmoid.fmt

    @property
    def mirror(self) -> np.ndarray:
        """Index of -z for each z (the sweep is symmetric and sorted)."""
        return np.arange(len(self.z))[::-1]

    @property
    def y_frac(self) -> np.ndarray:
        return fractional_labels(self.z)

    def loss(self, label: int) -> Exact:
        """Exact per-example loss at label 0 or 1 (in the sweep's format)."""
        ls = self.log_sigmoid
        return ls.negated() if label == 1 else ls.take(self.mirror).negated()

    def residual(self, label: int) -> Exact:
        """Exact sigma(z) - y at label 0 or 1 (in the sweep's format)."""
        s = self.sigmoid
        return s if label == 0 else s.take(self.mirror).negated()


def _sweep_parts(zf: np.ndarray) -> list:
    # exp and log only once per |z|: the parts serve z and its mirror -z.
    half = len(zf) // 2
    parts = [None if math.isinf(a) else _parts(a) for a in zf[half:].tolist()]
    return parts[::-1][:half] + parts if len(zf) % 2 == 0 else parts[::-1] + parts[1:]


def build_sweep_oracle(z: np.ndarray, with_loss: bool | None = None) -> SweepOracle:
    """Evaluate the oracle on a symmetric sweep (some 40-100 microseconds a point).

    ``with_loss`` (default: for float64 sweeps) adds the fractional-label loss.
    """
    z = np.asarray(z)
    if not np.array_equal(z, -z[::-1]) or np.any(np.diff(z) < 0):
        raise ValueError("the sweep must be sorted and symmetric about 0")
    fmt = "float32" if z.dtype == np.float32 else "float64"
    with_loss = fmt == "float64" if with_loss is None else with_loss
    zf = z.astype(np.float64)
    y = fractional_labels(zf)
    sig, lsig, loss = [], [], []
    for zi, yi, P in zip(zf.tolist(), y.tolist(), _sweep_parts(zf)):
        sig.append(exact_sigmoid(zi, P))
        lsig.append(exact_log_sigmoid(zi, P))
        if with_loss:
            loss.append(exact_loss(zi, yi, P))
    return SweepOracle(z=z, sigmoid=Exact.from_values(sig, fmt),
                       log_sigmoid=Exact.from_values(lsig, fmt),
                       loss_frac=Exact.from_values(loss, "float64") if with_loss else None)


# The sweeps' exact values cost 10-40 s of mpmath; tests read them from this
# file (regenerate with `python tests/oracle.py --regenerate`) and re-derive a
# random sample with mpmath each run (tests/test_accuracy.py).
CACHE_FILE = Path(__file__).parent / "data" / "oracle_sweeps.npz"
SWEEPS = {"float64": sweep_float64, "float32": sweep_float32}


def _fingerprint(z: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(z).tobytes()).hexdigest()


def _store(ex: Exact, prefix: str, out: dict) -> None:
    out[prefix + "_hi"] = ex.hi.astype(FORMATS[ex.fmt][2])      # exact: hi is in that format
    out[prefix + "_frac"] = ex.frac.astype(np.float32)           # 2^-24 ulp is plenty
    out[prefix + "_k"] = ex.ulp_exp.astype(np.int16)


def _load(data, prefix: str, fmt: str) -> Exact:
    return Exact(data[prefix + "_hi"].astype(np.float64), data[prefix + "_frac"].astype(np.float64),
                 data[prefix + "_k"].astype(np.int64), fmt)


def regenerate_cache(path: Path = CACHE_FILE) -> None:
    out: dict = {"prec_bits": np.array(PREC_BITS)}
    for fmt, make in SWEEPS.items():
        z = make()
        oracle = build_sweep_oracle(z)
        out[fmt + "_sha256"] = np.array(_fingerprint(z))
        _store(oracle.sigmoid, fmt + "_sigmoid", out)
        _store(oracle.log_sigmoid, fmt + "_log_sigmoid", out)
        if oracle.loss_frac is not None:
            _store(oracle.loss_frac, fmt + "_loss_frac", out)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)


@functools.lru_cache(maxsize=4)
def sweep_oracle(fmt: str = "float64", path: Path = CACHE_FILE) -> tuple[SweepOracle, bool]:
    """(oracle on SWEEPS[fmt](), True if read from the cache file).

    Falls back to computing it (slow) when the file is missing or was made
    for a different sweep.  Memoised: treat the arrays as read-only."""
    z = SWEEPS[fmt]()
    if path.exists():
        with np.load(path) as data:
            if str(data[fmt + "_sha256"]) == _fingerprint(z):
                loss = (_load(data, fmt + "_loss_frac", "float64")
                        if fmt + "_loss_frac_hi" in data else None)
                return SweepOracle(z, _load(data, fmt + "_sigmoid", fmt),
                                   _load(data, fmt + "_log_sigmoid", fmt), loss), True
    return build_sweep_oracle(z), False


# ---------------------------------------------------------------------------
# Reading per-example residuals off a gradients() function
# ---------------------------------------------------------------------------

def residuals_through_gradients(gradients, z: np.ndarray, label: float, k: int = 128) -> np.ndarray:
    """sigma(z_i) - label for every z_i, read exactly off ``gradients(X, W, b, Y)``
    (fastlogit.gradients or fastlogit.reference.gradients).

    A batch of k examples uses X = k * I (k x k) and W = z / k: the score of
    row j is k * (z_j / k) = z_j exactly (the other products are exact zeros),
    and dW_j = (r_j * k) / k = r_j exactly (k is a power of two).  z so small
    that z / k would lose bits uses X = I, W = z and dW_j * k; infinite z
    (0 * inf would poison the other rows) is sent alone with X = [[1]].
    k = 128 keeps each call below fastlogit's serial threshold (2^16 elements
    of X): starting a thread team per batch would cost more than the work.
    """
    z = np.asarray(z)
    dtype = z.dtype
    out = np.empty(len(z), dtype=dtype)
    tiny = np.finfo(dtype).tiny * k
    eye = np.eye(k, dtype=dtype)
    for scale_up, mask in ((True, np.isfinite(z) & (np.abs(z) >= tiny)),
                           (False, np.abs(z) < tiny)):
        index = np.flatnonzero(mask)
        for start in range(0, len(index), k):
            part = index[start:start + k]
            w = np.zeros(k, dtype=dtype)
            w[:len(part)] = z[part] / k if scale_up else z[part]
            X = eye * k if scale_up else eye
            dW, _ = gradients(X, w[:, None], 0.0, np.full((1, k), label, dtype))
            r = np.asarray(dW)[:, 0] if scale_up else np.asarray(dW)[:, 0] * k
            out[part] = r[:len(part)]
    for i in np.flatnonzero(np.isinf(z)):
        dW, _ = gradients(np.ones((1, 1), dtype), np.array([[z[i]]], dtype), 0.0,
                          np.full((1, 1), label, dtype))
        out[i] = np.asarray(dW)[0, 0]
    return out


# ---------------------------------------------------------------------------
# Self-check against plain mpmath formulas
# ---------------------------------------------------------------------------

def _check(n: int = 2000, seed: int = 0) -> None:
    """Compare the low-level evaluation with textbook mpmath formulas at 100 digits."""
    import mpmath
    rng = np.random.default_rng(seed)
    z = np.concatenate([rng.uniform(-800, 800, n // 2),
                        np.sign(rng.normal(size=n // 2)) * 10.0 ** rng.uniform(-320, 300, n // 2)])
    worst = 0.0
    with mpmath.workdps(100):
        softplus = lambda t: mpmath.log1p(mpmath.exp(t))         # noqa: E731
        for zi in z.tolist():
            x = mpmath.mpf(zi)
            y = float(rng.random())
            pairs = ((exact_sigmoid(zi), 1 / (1 + mpmath.exp(-x))),
                     (exact_log_sigmoid(zi), -softplus(-x)),
                     (exact_loss(zi, y), y * softplus(-x) + (1 - y) * softplus(x)))
            for got, want in pairs:
                if want != 0:
                    worst = max(worst, float(abs((mpmath.mpf(got) - want) / want)))
    print(f"max relative difference over {len(z)} points: {worst:.3g}")
    assert worst < 2.0 ** -240, worst


if __name__ == "__main__":
    import sys
    import time
    if "--check" in sys.argv:
        _check()
    if "--regenerate" in sys.argv:
        t0 = time.perf_counter()
        regenerate_cache()
        print(f"wrote {CACHE_FILE} ({CACHE_FILE.stat().st_size / 1e6:.1f} MB) "
              f"in {time.perf_counter() - t0:.0f} s")
    if len(sys.argv) == 1:
        print("usage: python tests/oracle.py [--check] [--regenerate]")
