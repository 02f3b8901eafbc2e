"""Error bounds of fastlogit against an arbitrary-precision oracle (tests/oracle.py).

The bounds (issue 3, docs/numerics.md), in ulps of the exact value:

============================================  ===========  ===========
quantity                                      float64      float32
============================================  ===========  ===========
sigmoid, forward_pass                          1            0.51
log_sigmoid                                    2            0.51
loss from logits, labels 0/1 (a double)        2            2 (double)
loss from logits, fractional labels            4            4 (double)
loss from probabilities (compute_cost)         2 / 4        2 / 4
residual sigma(z) - y, labels 0/1              2            0.51 (dW)
mean cost over m = 10^6 .. 10^8               1e-14 relative
============================================  ===========  ===========

float32 results are computed in double and rounded once, so they sit within
0.5 ulp (plus 2^-29 ulp of the double's error): 0.51.

Where the functions are checked:

* a dense deterministic sweep (oracle.sweep_float64: 113 786 points, log-spaced
  over the whole range on both sides of 0, plus every multiple of 1/16 up to
  800 and fine windows around every formula threshold; oracle.sweep_float32:
  63 316 points), with exact values cached in tests/data/oracle_sweeps.npz
  (a random sample of which is recomputed with mpmath on every run);
* hypothesis property tests drawing z from the whole float range (subnormal,
  huge, infinite, near the thresholds) with labels 0, 1 and fractional;
* sums over m = 10^7 (10^8 marked slow) drawn from a pool of values
  whose exact losses are known, against the exactly summed total.

Hypothesis effort: FASTLOGIT_HYPOTHESIS_PROFILE=thorough runs 100x more examples.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import platform
import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath import libmp

import fastlogit
from fastlogit import _kernels
from oracle import (
    THRESHOLDS_F32,
    THRESHOLDS_F64,
    Exact,
    exact_log_sigmoid,
    exact_loss,
    exact_prob_loss,
    exact_residual,
    exact_sigmoid,
    fractional_labels,
    mp_sum,
    relative_error,
    residuals_through_gradients,
    round_exact,
    sweep_oracle,
    ulp_error_scalar,
    ulp_errors,
)

# ---------------------------------------------------------------------------
# Bounds (ulps of the exact value unless said otherwise)
# ---------------------------------------------------------------------------
SIGMOID_ULP = {"float64": 1.0, "float32": 0.51}
LOG_SIGMOID_ULP = {"float64": 2.0, "float32": 0.51}
LOSS_BINARY_ULP = 2.0         # double result, labels 0 and 1
LOSS_FRACTIONAL_ULP = 4.0     # double result, labels in (0, 1)
RESIDUAL_ULP = {"float64": 2.0, "float32": 0.51}
COST_RTOL = 1e-14

DTYPES = {"float64": np.float64, "float32": np.float32}
FMT_IDS = ["f64", "f32"]

# The profile (examples, deadline, database) is chosen in conftest.py.
HYPOTHESIS = settings()


def worst(errors: np.ndarray, z: np.ndarray, extra: str = "") -> str:
    """Text for an assertion message: the largest error and where."""
    i = int(np.argmax(errors))
    return f"max error {errors[i]:.4g} ulp at z = {float(z[i])!r}{extra}"


# ---------------------------------------------------------------------------
# The sweep oracle and its self-check
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["float64", "float32"], ids=FMT_IDS)
def sweep(request):
    oracle, _ = sweep_oracle(request.param)
    return oracle


@pytest.mark.parametrize("fmt", ["float64", "float32"], ids=FMT_IDS)
def test_sweep_is_large_symmetric_and_covers_the_range(fmt):
    oracle, from_cache = sweep_oracle(fmt)
    z = oracle.z.astype(np.float64)
    assert from_cache, "tests/data/oracle_sweeps.npz is stale: run python tests/oracle.py --regenerate"
    assert len(z) >= (100_000 if fmt == "float64" else 50_000)
    np.testing.assert_array_equal(z, -z[::-1])
    finite = z[np.isfinite(z) & (z > 0)]
    tiny = np.finfo(DTYPES[fmt]).smallest_subnormal
    assert finite.min() == tiny and finite.max() >= (1e308 if fmt == "float64" else 3e38)
    for t in (THRESHOLDS_F64 if fmt == "float64" else THRESHOLDS_F32):
        near = np.abs(z - np.float64(DTYPES[fmt](t)))
        assert np.count_nonzero(near <= 0.5) >= 250, t


@pytest.mark.parametrize("fmt", ["float64", "float32"], ids=FMT_IDS)
def test_cached_oracle_agrees_with_mpmath(fmt):
    # The cache is only as good as its regeneration: recompute a fresh random
    # sample (new points on every run) straight from the mpmath formulas.
    oracle, _ = sweep_oracle(fmt)
    rng = np.random.default_rng()
    index = np.concatenate([rng.choice(len(oracle.z), 150, replace=False), [0, len(oracle.z) - 1]])
    y = oracle.y_frac
    for i in index.tolist():
        zi = float(oracle.z[i])
        checks = [(oracle.sigmoid, exact_sigmoid(zi), fmt),
                  (oracle.log_sigmoid, exact_log_sigmoid(zi), fmt)]
        if oracle.loss_frac is not None:
            checks.append((oracle.loss_frac, exact_loss(zi, float(y[i])), "float64"))
        for cached, exact, f in checks:
            hi, frac, k = round_exact(exact, f)
            assert cached.hi[i] == hi or (math.isnan(hi) and math.isnan(cached.hi[i])), (zi, f)
            if math.isfinite(hi):
                assert cached.ulp_exp[i] == k, zi
                assert abs(cached.frac[i] - frac) <= 1e-6, zi


def test_oracle_ulp_arithmetic():
    # The error measure itself: a correctly rounded result is <= 0.5 ulp, the
    # next double is 0.5..1.5 ulp away, subnormals count in units of 2^-1074.
    ex = exact_sigmoid(-1.0)
    hi = round_exact(ex)[0]
    assert ulp_error_scalar(hi, ex) <= 0.5
    assert 0.5 <= ulp_error_scalar(np.nextafter(hi, 1.0), ex) <= 1.5
    tiny = exact_sigmoid(-740.0)                    # about 4.2e-322, subnormal
    want = float(mpmath.exp(-740) / (1 + mpmath.exp(-740)) * mpmath.mpf(2) ** 1074)   # 84.78
    assert ulp_error_scalar(0.0, tiny) == pytest.approx(want, rel=1e-12)
    vec = Exact.from_values([ex, tiny])
    np.testing.assert_allclose(ulp_errors([hi, 0.0], vec),
                               [ulp_error_scalar(hi, ex), ulp_error_scalar(0.0, tiny)], rtol=1e-6)


# ---------------------------------------------------------------------------
# Element-wise functions on the sweep
# ---------------------------------------------------------------------------

def test_sigmoid_sweep(sweep):
    z = sweep.z
    got = fastlogit.sigmoid(z)
    assert got.dtype == z.dtype
    err = ulp_errors(got, sweep.sigmoid)
    assert err.max() <= SIGMOID_ULP[sweep.fmt], worst(err, z)


def test_forward_pass_sweep(sweep):
    # X = z as one column, W = 1, b = 0: the score of row i is z_i exactly.
    z = sweep.z
    A = fastlogit.forward_pass(z[:, None], np.ones((1, 1), z.dtype), 0.0)
    assert A.shape == (1, len(z)) and A.dtype == z.dtype
    err = ulp_errors(A, sweep.sigmoid)
    assert err.max() <= SIGMOID_ULP[sweep.fmt], worst(err, z)


def test_log_sigmoid_sweep(sweep):
    z = sweep.z
    got = fastlogit.log_sigmoid(z)
    assert got.dtype == z.dtype
    err = ulp_errors(got, sweep.log_sigmoid)
    assert err.max() <= LOG_SIGMOID_ULP[sweep.fmt], worst(err, z)


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_residual_sweep(sweep, label):
    z = sweep.z
    got = residuals_through_gradients(fastlogit.gradients, z, label)
    err = ulp_errors(got, sweep.residual(int(label)))
    assert err.max() <= RESIDUAL_ULP[sweep.fmt], worst(err, z, f", y = {label}")


def test_residual_at_z_40_has_no_cancellation():
    # y = 1, z = 40: sigma(z) rounds to 1, so sigma(z) - 1 would be 0; the
    # residual is -sigma(-40) = -exp(-40) (1 - exp(-40) + ...) = -4.248e-18.
    exact = exact_residual(40.0, 1.0)
    dW, db = fastlogit.gradients(np.ones((1, 1)), np.array([[40.0]]), 0.0, [[1.0]])
    J, dW2, db2 = fastlogit.cost_and_gradients(np.ones((1, 1)), np.array([[40.0]]), 0.0, [[1.0]])
    for got in (dW[0, 0], db, dW2[0, 0], db2):
        assert ulp_error_scalar(float(got), exact) <= RESIDUAL_ULP["float64"]
    # and the loss there is sigma(-40) too, not 0
    assert ulp_error_scalar(J, exact_loss(40.0, 1.0)) <= LOSS_BINARY_ULP


# ---------------------------------------------------------------------------
# Per-example losses: one example per call, so a subsample in CI
# ---------------------------------------------------------------------------

def _per_example_losses(z, y, path):
    dtype = z.dtype
    out = np.empty(len(z))
    one = np.ones((1, 1), dtype)
    for i, (zi, yi) in enumerate(zip(z, y)):
        Z = np.array([[zi]], dtype)
        Y = np.array([[yi]], dtype)
        if path == "cost_from_logits":
            out[i] = fastlogit.cost_from_logits(Z, Y)
        else:       # the fused kernel: X = [[1]], W = [[z]], b = 0 gives the score z
            out[i] = fastlogit.cost_and_gradients(one, Z, 0.0, Y)[0]
    return out


def _loss_subsample(n_points, fmt):
    """Every s-th sweep point plus the 8 doubles on each side of every threshold
    and its mirror, with exact losses at labels 0, 1 and fractional (float64)."""
    oracle, _ = sweep_oracle(fmt)
    z = oracle.z
    stride = max(len(z) // n_points, 1)
    thresholds = [np.float64(DTYPES[fmt](t)) for t in (THRESHOLDS_F64 if fmt == "float64"
                                                         else THRESHOLDS_F32)]
    near = np.zeros(len(z), bool)
    zf = z.astype(np.float64)
    for t in thresholds:
        for s in (-t, t):
            i = np.searchsorted(zf, s)
            near[max(i - 8, 0):i + 9] = True
    index = np.flatnonzero(near | (np.arange(len(z)) % stride == 0))
    zs = z[index]
    y_frac = fractional_labels(zs.astype(np.float64)).astype(z.dtype)
    if fmt == "float64":
        exact = {1.0: oracle.loss(1).take(index), 0.0: oracle.loss(0).take(index),
                 "frac": oracle.loss_frac.take(index)}
    else:   # losses of float32 inputs are doubles: evaluate them here
        exact = {lab: Exact.from_values([exact_loss(float(a), float(b)) for a, b in
                                         zip(zs, np.full(len(zs), lab) if lab != "frac" else y_frac)])
                 for lab in (0.0, 1.0, "frac")}
    return zs, y_frac, exact


@pytest.mark.parametrize("path", ["cost_from_logits", "cost_and_gradients"])
@pytest.mark.parametrize("fmt", ["float64", "float32"], ids=FMT_IDS)
def test_loss_per_example_subsample(fmt, path):
    zs, y_frac, exact = _loss_subsample(700 if fmt == "float64" else 300, fmt)
    for label, bound in ((1.0, LOSS_BINARY_ULP), (0.0, LOSS_BINARY_ULP),
                         ("frac", LOSS_FRACTIONAL_ULP)):
        y = y_frac if label == "frac" else np.full(len(zs), label, zs.dtype)
        err = ulp_errors(_per_example_losses(zs, y, path), exact[label])
        assert err.max() <= bound, worst(err, zs, f", label {label}, {path}")


@pytest.mark.slow
@pytest.mark.parametrize("path", ["cost_from_logits", "cost_and_gradients"])
def test_loss_per_example_full_sweep(path):
    oracle, _ = sweep_oracle("float64")
    z = oracle.z
    for label, exact, bound in ((1.0, oracle.loss(1), LOSS_BINARY_ULP),
                                (0.0, oracle.loss(0), LOSS_BINARY_ULP),
                                ("frac", oracle.loss_frac, LOSS_FRACTIONAL_ULP)):
        y = oracle.y_frac if label == "frac" else np.full(len(z), label)
        err = ulp_errors(_per_example_losses(z, y, path), exact)
        assert err.max() <= bound, worst(err, z, f", label {label}")


# ---------------------------------------------------------------------------
# Hypothesis: the whole float range, thresholds, both labels and fractional ones
# ---------------------------------------------------------------------------

def _near_thresholds(width):
    dtype = np.float32 if width == 32 else np.float64
    itype = np.int32 if width == 32 else np.int64
    ts = sorted({float(dtype(t)) for t in THRESHOLDS_F64 + (THRESHOLDS_F32 if width == 32 else ())
                 if t < np.finfo(dtype).max})

    def shift(t, sign, k):
        bits = np.array(t, dtype).view(itype) + itype(k)
        return sign * float(bits.view(dtype))
    return st.builds(shift, st.sampled_from(ts), st.sampled_from([-1.0, 1.0]),
                     st.integers(-64, 64))


def z_values(width=64):
    """Any float (subnormal, huge, infinite), values near the thresholds, and
    the range where the functions vary, for float64 (width 64) or float32."""
    return st.one_of(
        st.floats(allow_nan=False, allow_subnormal=True, width=width),
        _near_thresholds(width),
        st.floats(-800.0 if width == 64 else -110.0, 800.0 if width == 64 else 110.0, width=width),
    )


def labels(width=64):
    return st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0, width=width))


@HYPOTHESIS
@given(z=z_values(64))
def test_sigmoid_property_f64(z):
    got = fastlogit.sigmoid(np.array([z]))[0]
    assert ulp_error_scalar(float(got), exact_sigmoid(z)) <= SIGMOID_ULP["float64"]


@HYPOTHESIS
@given(z=z_values(32))
def test_sigmoid_property_f32(z):
    got = fastlogit.sigmoid(np.array([z], np.float32))[0]
    assert ulp_error_scalar(float(got), exact_sigmoid(z), "float32") <= SIGMOID_ULP["float32"]


@HYPOTHESIS
@given(z=z_values(64))
def test_log_sigmoid_property_f64(z):
    got = fastlogit.log_sigmoid(np.array([z]))[0]
    assert ulp_error_scalar(float(got), exact_log_sigmoid(z)) <= LOG_SIGMOID_ULP["float64"]


@HYPOTHESIS
@given(z=z_values(32))
def test_log_sigmoid_property_f32(z):
    got = fastlogit.log_sigmoid(np.array([z], np.float32))[0]
    assert ulp_error_scalar(float(got), exact_log_sigmoid(z), "float32") <= LOG_SIGMOID_ULP["float32"]


@HYPOTHESIS
@given(data=st.data(), width=st.sampled_from([64, 32]))
def test_loss_property(data, width):
    z = data.draw(z_values(width), "z")
    y = data.draw(labels(width), "y")
    dtype = np.float64 if width == 64 else np.float32
    bound = LOSS_BINARY_ULP if y in (0.0, 1.0) else LOSS_FRACTIONAL_ULP
    exact = exact_loss(z, y)
    Z, Y = np.array([[z]], dtype), np.array([[y]], dtype)
    J1 = fastlogit.cost_from_logits(Z, Y)
    J2 = fastlogit.cost_and_gradients(np.ones((1, 1), dtype), Z, 0.0, Y)[0]
    assert ulp_error_scalar(J1, exact) <= bound
    assert ulp_error_scalar(J2, exact) <= bound


@HYPOTHESIS
@given(data=st.data(), width=st.sampled_from([64, 32]))
def test_residual_property(data, width):
    z = data.draw(z_values(width), "z")
    y = data.draw(st.sampled_from([0.0, 1.0]), "y")
    dtype = np.float64 if width == 64 else np.float32
    exact = exact_residual(z, y)
    dW, db = fastlogit.gradients(np.ones((1, 1), dtype), np.array([[z]], dtype), 0.0, [[y]])
    fmt = "float64" if width == 64 else "float32"
    assert ulp_error_scalar(float(dW[0, 0]), exact, fmt) <= RESIDUAL_ULP[fmt]
    assert ulp_error_scalar(db, exact) <= RESIDUAL_ULP["float64"]     # db is a double


def probabilities(width=64):
    dtype = np.float32 if width == 32 else np.float64
    eps = float(np.finfo(dtype).eps)
    return st.one_of(st.floats(0.0, 1.0, width=width),
                     st.floats(0.0, 4 * eps, width=width),
                     st.floats(1 - 4 * eps, 1.0, width=width),
                     st.sampled_from([0.0, 1.0, eps, 1 - eps]))


@HYPOTHESIS
@given(data=st.data(), width=st.sampled_from([64, 32]))
def test_compute_cost_per_example_property(data, width):
    dtype = np.float64 if width == 64 else np.float32
    a = float(dtype(data.draw(probabilities(width), "a")))
    y = data.draw(labels(width), "y")
    eps = float(np.finfo(dtype).eps)
    exact = exact_prob_loss(a, y, eps)
    got = fastlogit.compute_cost(np.array([[a]], dtype), np.array([[y]], dtype))
    bound = LOSS_BINARY_ULP if y in (0.0, 1.0) else LOSS_FRACTIONAL_ULP
    assert ulp_error_scalar(got, exact) <= bound


def test_exact_values_at_zero_and_infinities(dtype):
    z = np.array([-np.inf, -0.0, 0.0, np.inf, np.nan], dtype)
    s = fastlogit.sigmoid(z)
    np.testing.assert_array_equal(s[:4], np.array([0.0, 0.5, 0.5, 1.0], dtype))
    assert np.isnan(s[4])
    ls = fastlogit.log_sigmoid(z)
    np.testing.assert_array_equal(ls[:4], np.array([-np.inf, -math.log(2), -math.log(2), 0.0], dtype))
    assert np.isnan(ls[4])


# ---------------------------------------------------------------------------
# Means over m examples: compensated sums against the exact total
# ---------------------------------------------------------------------------

POOL_SIZE = 3000


def _pool(fmt, seed=20261127):
    """POOL_SIZE (z, y) pairs over the whole range (|z| <= 1e300, so that 10^8 of
    them cannot overflow the sum) with their exact losses and residuals."""
    rng = np.random.default_rng(seed)
    dtype = DTYPES[fmt]
    n3 = POOL_SIZE // 3
    top, bottom = (300, -300) if fmt == "float64" else (38, -37)    # float32: stay normal
    z = np.concatenate([
        rng.uniform(-40, 40, n3),
        rng.uniform(-800, 800, n3) if fmt == "float64" else rng.uniform(-110, 110, n3),
        rng.choice([-1.0, 1.0], POOL_SIZE - 2 * n3) * 10.0 ** rng.uniform(bottom, top, POOL_SIZE - 2 * n3),
    ]).astype(dtype)
    y = np.select([np.arange(POOL_SIZE) % 3 == 0, np.arange(POOL_SIZE) % 3 == 1],
                  [0.0, 1.0], rng.integers(1, 2 ** 20, POOL_SIZE) / 2.0 ** 20).astype(dtype)
    losses = [exact_loss(float(a), float(b)) for a, b in zip(z, y)]
    # sigma(z) - y to 320 bits absolute: enough for sums, whatever the label
    sig = [exact_sigmoid(float(a)) for a in z]
    resid = [libmp.mpf_sub(s, libmp.from_float(float(b)), 320) for s, b in zip(sig, y)]
    return z, y, losses, resid


@pytest.fixture(scope="module", params=["float64", "float32"], ids=FMT_IDS)
def pool(request):
    return request.param, _pool(request.param)


def _draw(pool_size, m, seed):
    index = np.random.default_rng(seed).integers(0, pool_size, m, dtype=np.int32)
    return index, np.bincount(index, minlength=pool_size)


def _check_mean_cost(fmt, pool_data, m, seed=1):
    z, y, losses, _ = pool_data
    index, counts = _draw(len(z), m, seed)
    Z, Y = z[index], y[index]
    del index
    exact_mean = libmp.mpf_div(mp_sum(losses, counts), libmp.from_int(m), 320)
    J = fastlogit.cost_from_logits(Z, Y)
    rel = relative_error(J, exact_mean)
    assert rel < COST_RTOL, f"cost_from_logits, m = {m}, {fmt}: relative error {rel:.3g}"
    J2 = fastlogit.cost_and_gradients(Z[:, None], np.ones((1, 1), Z.dtype), 0.0, Y)[0]
    rel2 = relative_error(J2, exact_mean)
    assert rel2 < COST_RTOL, f"cost_and_gradients, m = {m}, {fmt}: relative error {rel2:.3g}"


def test_mean_cost_m_1e7(pool):
    # about 2 s with the vectorised kernels: in CI (10^8 needs 2.5 GB: slow)
    _check_mean_cost(pool[0], pool[1], 10 ** 7)


@pytest.mark.slow
def test_mean_cost_m_1e8(pool):
    _check_mean_cost(pool[0], pool[1], 10 ** 8)


@pytest.mark.parametrize("m", [10 ** 6, pytest.param(10 ** 7, marks=pytest.mark.slow)])
def test_compute_cost_mean_is_compensated(dtype, m):
    # Probabilities from the whole (0, 1) range, with exact (clipped) losses.
    rng = np.random.default_rng(5)
    eps = float(np.finfo(dtype).eps)
    a = np.concatenate([rng.random(POOL_SIZE // 2),
                        10.0 ** rng.uniform(-300 if dtype == np.float64 else -37, 0, POOL_SIZE // 2)])
    a = np.concatenate([a, 1 - a[:200]]).astype(dtype)
    y = (rng.integers(0, 3, len(a)) / 2.0).astype(dtype)          # 0, 0.5, 1
    losses = [exact_prob_loss(float(p), float(q), eps) for p, q in zip(a, y)]
    index, counts = _draw(len(a), m, 3)
    J = fastlogit.compute_cost(a[index], y[index])
    exact_mean = libmp.mpf_div(mp_sum(losses, counts), libmp.from_int(m), 320)
    assert relative_error(J, exact_mean) < COST_RTOL


def _abs_sum(values, counts):
    return mp_sum([libmp.mpf_abs(v) for v in values], counts)


def test_gradient_sums_are_compensated(pool):
    # dW and db are sums of terms of both signs; a compensated (or pairwise)
    # sum errs by a small multiple of u * sum |terms|, a naive one by up to
    # m * u * sum |terms|.  The bound 1e-14 * sum|terms| / m tells them apart.
    fmt, (z, y, _, resid) = pool
    m = 10 ** 6
    index, counts = _draw(len(z), m, 11)
    Z, Y = z[index], y[index]
    J, dW, db = fastlogit.cost_and_gradients(Z[:, None], np.ones((1, 1), Z.dtype), 0.0, Y)
    dW2, db2 = fastlogit.gradients(Z[:, None], np.ones((1, 1), Z.dtype), 0.0, Y)
    assert db == db2
    M = libmp.from_int(m)
    exact_db = libmp.mpf_div(mp_sum(resid, counts), M, 320)
    scale_db = libmp.to_float(libmp.mpf_div(_abs_sum(resid, counts), M, 64))
    assert abs(libmp.to_float(libmp.mpf_sub(libmp.from_float(db), exact_db, 320))) <= COST_RTOL * scale_db
    # dW_0 = sum r_i z_i / m: the products r_i * z_i are rounded once each (0.5 ulp)
    rz = [libmp.mpf_mul(r, libmp.from_float(float(a)), 320) for r, a in zip(resid, z)]
    exact_dw = libmp.mpf_div(mp_sum(rz, counts), M, 320)
    scale_dw = libmp.to_float(libmp.mpf_div(_abs_sum(rz, counts), M, 64))
    for got in (dW[0, 0], dW2[0, 0]):
        tol = COST_RTOL * scale_dw + (abs(float(got)) * 2.0 ** -24 if fmt == "float32" else 0.0)
        assert abs(libmp.to_float(libmp.mpf_sub(libmp.from_float(float(got)), exact_dw, 320))) <= tol


def test_residual_sum_survives_cancellation():
    # +1, then m - 2 residuals of -4.25e-18 (y = 1, z = 40), then -1: a running
    # sum loses every small term against the 1 and returns 0; the exact mean
    # is -(m - 2) sigma(-40) / m.
    m = 10 ** 6
    Z = np.full(m, 40.0)
    Y = np.ones(m)
    Z[0], Y[0] = 800.0, 0.0           # residual sigma(800) = 1 - 2e-348
    Z[-1], Y[-1] = -800.0, 1.0        # residual -sigma(800)
    dW, db = fastlogit.gradients(Z[:, None], np.ones((1, 1)), 0.0, Y)
    parts = [exact_residual(800.0, 0.0), exact_residual(40.0, 1.0), exact_residual(-800.0, 1.0)]
    exact = libmp.mpf_div(mp_sum(parts, [1, m - 2, 1]), libmp.from_int(m), 320)
    abs_sum = 2.0 / m
    err = abs(libmp.to_float(libmp.mpf_sub(libmp.from_float(db), exact, 320)))
    assert err <= COST_RTOL * abs_sum, f"db = {db!r}, exact {libmp.to_str(exact, 17)}"


# ---------------------------------------------------------------------------
# No floating-point warning on any finite or infinite input
# ---------------------------------------------------------------------------

def _special_values(dtype, with_random=True):
    info = np.finfo(dtype)
    mags = [0.0, float(info.smallest_subnormal), float(info.tiny), 1e-300, 1e-30, 1e-8, 0.5,
            1.0, 7.97, 13.99, 16.64, 18.0, 18.02, 33.23, 33.3, 36.74, 37.0, 40.0, 87.33, 88.72,
            103.28, 103.97, 104.0, 700.0, 708.4, 709.78, 709.79, 744.44, 745.13, 745.14, 746.0,
            760.0, 1e4, 1e30, 1e300, float(info.max), math.inf]
    with np.errstate(over="ignore", under="ignore"):
        vals = np.array(mags, dtype=np.float64).astype(dtype)
    if not with_random:
        return np.unique(np.concatenate([vals, -vals]))
    rng = np.random.default_rng(0)
    bits = rng.integers(0, np.iinfo(np.int64 if dtype == np.float64 else np.int32).max, 2000)
    rand = bits.astype(np.int64 if dtype == np.float64 else np.int32).view(dtype)
    rand = rand[np.isfinite(rand)]
    return np.unique(np.concatenate([vals, -vals, rand, -rand]))


def test_no_floating_point_warning_from_public_api(dtype):
    z = _special_values(dtype)
    m = len(z)
    one = np.ones((1, 1), dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            fastlogit.sigmoid(z)
            fastlogit.log_sigmoid(z)
            fastlogit.forward_pass(z[:, None], one, 0.0)
            fastlogit.predict(z[:, None], one, 0.0)
            for label in (0.0, 1.0, 0.25):
                Y = np.full((1, m), label, dtype)
                fastlogit.cost_from_logits(z, Y)
                fastlogit.compute_cost(fastlogit.sigmoid(z), Y)
                # one example per call: 0 * inf would be a true NaN in dW
                for zi in _special_values(dtype, with_random=False):
                    fastlogit.cost_and_gradients(one, np.array([[zi]], dtype), 0.0, [[label]])
            fastlogit.compute_cost(np.array([[0.0, 1.0, 0.0, 1.0]], dtype), [[0, 0, 1, 1]])


class _FloatingPointFlags:
    """The C library's floating-point exception flags (fenv.h), via ctypes."""
    _BITS = {"x86_64": dict(invalid=0x01, divide=0x04, overflow=0x08, underflow=0x10),
             "aarch64": dict(invalid=0x01, divide=0x02, overflow=0x04, underflow=0x08)}

    def __init__(self):
        machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(),
                                                               platform.machine().lower())
        path = ctypes.util.find_library("m")
        if machine not in self._BITS or path is None:
            pytest.skip(f"no fenv flag layout known for {platform.machine()}")
        self.bits = self._BITS[machine]
        self.libm = ctypes.CDLL(path)
        self.all = sum(self.bits.values())

    def clear(self):
        self.libm.feclearexcept(self.all)

    def raised(self):
        got = self.libm.fetestexcept(self.all)
        return {name for name, bit in self.bits.items() if got & bit}


def test_kernels_raise_no_invalid_divide_or_overflow_flag(dtype):
    # np.errstate cannot see inside the compiled kernels, so read the C flags
    # directly.  One thread: the flags are per thread.  Underflow is allowed:
    # a subnormal result such as sigmoid(-720) is correct and signals it.
    flags = _FloatingPointFlags()
    z = _special_values(dtype)
    m = len(z)
    n_threads = 1

    def check(name, fn, *args):
        flags.clear()
        fn(*args)
        raised = flags.raised() - {"underflow"}
        assert not raised, f"{name} ({np.dtype(dtype).name}) raised {sorted(raised)}"

    out = np.empty(m, dtype)
    check("sigmoid", _kernels.sigmoid, z, out, n_threads)
    check("log_sigmoid", _kernels.log_sigmoid, z, out, n_threads)
    W = np.ones(1)
    check("forward_pass", _kernels.forward_pass, z[:, None], W, 0.0, out, n_threads)
    check("predict", _kernels.predict, z[:, None], W, 0.0, 0.5, np.empty(m, np.int64), n_threads)
    eps = float(np.finfo(dtype).eps)
    probs = np.linspace(0, 1, m).astype(dtype)
    # Sums of thousands of losses near 1.8e308 overflow (a true overflow of the
    # sum: see test_mean_of_huge_losses_is_finite); keep |z| <= 1e300 in bulk
    # and send the largest values one at a time.
    bulk = z[(np.abs(z.astype(np.float64)) <= 1e300) | np.isinf(z)]
    for label in (0.0, 1.0, 0.25):
        Y = np.full(len(bulk), label, dtype)
        check(f"mean_loss(logits), y={label}", _kernels.mean_loss, bulk, Y, True, 0.0, n_threads)
        check(f"mean_loss(probabilities), y={label}", _kernels.mean_loss, probs,
              np.full(m, label, dtype), False, eps, n_threads)
        for zi in _special_values(dtype, with_random=False):
            one_z, one_y = np.array([zi], dtype), np.array([label], dtype)
            check(f"mean_loss z={zi}, y={label}", _kernels.mean_loss, one_z, one_y, True, 0.0,
                  n_threads)
            check(f"cost_and_gradients z={zi}, y={label}", _kernels.cost_and_gradients,
                  np.ones((1, 1), dtype), np.array([float(zi)]), 0.0, one_y,
                  np.empty(0), True, n_threads)


def test_mean_of_huge_losses_is_finite():
    # Each loss is 1.8e308 (y = 0, z = DBL_MAX); their mean is finite.
    big = np.finfo(np.float64).max
    assert fastlogit.cost_from_logits([[big, big]], [[0.0, 0.0]]) == big


# ---------------------------------------------------------------------------
# float32 at its own width: float32 in, float32 out, plain double arithmetic
# (no double-double), error argument in fl_math_f32.h (fl_exp_wide, fl_exp_short)
# ---------------------------------------------------------------------------

def _dense_float32(stride=251):
    """Every stride-th float32 bit pattern (all exponents, both signs, a prime
    stride so the mantissas are spread), finite ones only."""
    z = np.arange(0, 1 << 32, stride, dtype=np.uint64).astype(np.uint32).view(np.float32)
    return z[np.isfinite(z)]


def _float32_forward_pass(z):
    # X = z as one float32 column, W = 1 (float32): float32 probabilities from the double
    # scores, which equal z exactly
    return fastlogit.forward_pass(z[:, None], np.ones((1, 1), np.float32), 0.0)[0]


@pytest.mark.parametrize("name", ["sigmoid", "log_sigmoid", "forward_pass"])
def test_float32_own_width_against_the_float64_path(name):
    # The float64 path is within 0.62 ulp of double (the sweep above), so rounded to
    # float32 it is correctly rounded except within ~2^-29 ulp32 of a midpoint.  The
    # float32 path's double result has a relative error below 2^-39.5 (docs/numerics.md),
    # so it can round differently only within 2^-39.5 of a midpoint (a fraction of at
    # most 2^-14.5 of the inputs; measured: 1 or 2 in these 17 million): it must agree
    # with the float64 path nearly everywhere, and where it does not, mpmath decides:
    # both within 0.51 ulp32.
    fn = _float32_forward_pass if name == "forward_pass" else getattr(fastlogit, name)
    exact_fn = exact_log_sigmoid if name == "log_sigmoid" else exact_sigmoid
    z = _dense_float32()
    got = fn(z)
    assert got.dtype == np.float32
    with np.errstate(under="ignore"):     # the float64 path's tiny results
        ref_fn = fastlogit.sigmoid if name == "forward_pass" else fn
        ref = ref_fn(z.astype(np.float64)).astype(np.float32)
    differ = np.flatnonzero(got.view(np.uint32) != ref.view(np.uint32))
    assert len(differ) <= 1e-6 * len(z), f"{len(differ)} of {len(z)} differ"
    for i in differ:
        exact = exact_fn(float(z[i]))
        err = ulp_error_scalar(float(got[i]), exact, "float32")
        assert err <= SIGMOID_ULP["float32"], f"{name}({z[i]!r}) = {got[i]!r}: {err} ulp32"


@pytest.mark.parametrize("name", ["sigmoid", "log_sigmoid"])
def test_float32_own_width_in_place_and_at_the_edges(name):
    fn = getattr(fastlogit, name)
    z = np.array([-np.inf, -1e30, -110.0, -103.98, -103.97, -87.34, -16.64, -1e-30, -0.0, 0.0,
                  1e-30, 7.97, 13.99, 16.64, 103.3, 110.0, 1e30, np.inf, np.nan], np.float32)
    with np.errstate(under="ignore"):
        ref = fn(z.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(fn(z).view(np.uint32), ref.view(np.uint32))
    zz = np.repeat(z, 40)             # more than one block, in place
    fn(zz, out=zz)
    np.testing.assert_array_equal(zz.view(np.uint32), np.repeat(ref, 40).view(np.uint32))
