"""Same bits whatever the thread count, and from one call to the next.

Every reduction (compute_cost, cost_from_logits, gradients,
cost_and_gradients) must return bitwise identical results for n_threads = 1,
2, 3 and 8 and on repeated calls: the kernels block the reduction by the
problem shape only and combine the per-chunk partial sums in chunk order
(fastlogit/_kernels.pyx).  The element-wise functions are checked too.

Sizes are chosen above the serial threshold (so the threads really run) and
with more blocks than reduction chunks (so several blocks share a chunk), with
ragged last blocks and with an uneven split of blocks between threads.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastlogit
from fastlogit import _kernels
from fastlogit._validation import SERIAL_BELOW

THREADS = (1, 2, 3, 8)


# The helper threads must really run here, even on a busy machine.
pytestmark = pytest.mark.usefixtures("pool_without_backoff")
REPEATS = 2


def bits(value) -> bytes:
    """Exact bit pattern of a float or an array (NaN payloads and -0.0 included)."""
    return np.asarray(value, dtype=np.asarray(value).dtype).tobytes()


def _all_bits(result) -> tuple:
    if isinstance(result, tuple):
        return tuple(bits(r) for r in result)
    return (bits(result),)


def assert_same_bits_for_all_thread_counts(fn):
    """fn(n_threads) gives identical bits for every thread count and call."""
    reference = _all_bits(fn(1))
    for n_threads in THREADS:
        for _ in range(REPEATS):
            got = _all_bits(fn(n_threads))
            assert got == reference, f"n_threads={n_threads} differs from n_threads=1"


# (m, n): many blocks per chunk, a ragged last block, and one wide X whose
# row blocks are short.  All exceed fastlogit's serial threshold of 2^16 elements.
SHAPES = [(100_003, 1), (40_001, 3), (4_001, 40)]


@pytest.fixture(params=SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def problem(request, dtype):
    m, n = request.param
    rng = np.random.default_rng(m + n)
    # Scores spread over [-60, 60] so that losses and residuals span many
    # magnitudes (rounding differences would show), fractional labels included.
    X = rng.normal(scale=20.0 / np.sqrt(n), size=(m, n)).astype(dtype)
    W = rng.normal(size=(n, 1)).astype(dtype)
    b = 0.3
    Y = rng.choice([0.0, 1.0, 0.3], size=(1, m)).astype(dtype)
    return X, W, b, Y


def test_threads_really_run():
    # Otherwise this whole file could not fail: every shape must be large
    # enough for fastlogit to start helper threads (with or without OpenMP).
    assert all(m * n >= SERIAL_BELOW for m, n in SHAPES)
    fastlogit.sigmoid(np.zeros(2 * SERIAL_BELOW), n_threads=2)
    assert _kernels.pool_threads() >= 1


@pytest.mark.parametrize("order", ["C", "F"])
def test_cost_and_gradients_same_bits(problem, order):
    X, W, b, Y = problem
    X = np.asarray(X, order=order)
    sw = np.linspace(0.5, 2.0, X.shape[0])
    assert_same_bits_for_all_thread_counts(
        lambda t: fastlogit.cost_and_gradients(X, W, b, Y, sample_weight=sw, l2=1e-3, n_threads=t))
    assert_same_bits_for_all_thread_counts(
        lambda t: fastlogit.cost_and_gradients(X, W, b, Y, n_threads=t))


def test_gradients_same_bits(problem):
    X, W, b, Y = problem
    assert_same_bits_for_all_thread_counts(lambda t: fastlogit.gradients(X, W, b, Y, n_threads=t))


def test_costs_same_bits(problem):
    X, W, b, Y = problem
    Z = ((X.astype(np.float64) @ W.astype(np.float64)).T + b).astype(X.dtype)
    A = fastlogit.forward_pass(X, W, b)
    # The mean kernels thread by m alone: repeat short problems past the serial threshold.
    reps = -(-2 * SERIAL_BELOW // Z.shape[1])
    Z, A, Y = (np.tile(v, reps) for v in (Z, A, Y))
    assert_same_bits_for_all_thread_counts(lambda t: fastlogit.cost_from_logits(Z, Y, n_threads=t))
    assert_same_bits_for_all_thread_counts(lambda t: fastlogit.compute_cost(A, Y, n_threads=t))


def test_elementwise_same_bits(problem):
    X, W, b, _ = problem
    z = X.ravel()[:131_101]
    assert_same_bits_for_all_thread_counts(lambda t: fastlogit.sigmoid(z, n_threads=t))
    assert_same_bits_for_all_thread_counts(lambda t: fastlogit.log_sigmoid(z, n_threads=t))
    assert_same_bits_for_all_thread_counts(lambda t: fastlogit.forward_pass(X, W, b, n_threads=t))
    assert_same_bits_for_all_thread_counts(lambda t: fastlogit.predict(X, W, b, n_threads=t))


def test_reduction_is_not_a_plain_running_sum():
    # The fixed blocking must also be an accurate one: check the threaded
    # result is the compensated sum, not just a reproducible naive one.  The
    # mean of 10^6 copies of 0.1 plus a large outlier: a running sum drifts
    # by ~1e-11 relative, a blocked compensated sum by less than 1e-15.
    m = 1_000_003
    Z = np.full(m, -2.0)
    Y = np.zeros(m)
    Z[0] = 1e6                                  # loss 1e6: the accumulator is large from the start
    per_example = np.log1p(np.exp(-2.0))        # loss of z = -2, y = 0 (libm, < 1 ulp)
    expected = (1e6 + (m - 1) * per_example) / m
    for t in THREADS:
        J = fastlogit.cost_from_logits(Z, Y, n_threads=t)
        assert abs(J - expected) <= 4e-15 * expected
