"""Repeated calls do not grow memory.

10**4 calls of every public function -- successful ones, rejected ones and
ones rejected by the kernel afterwards (bad labels) -- must not grow the
Python heap (tracemalloc, which also sees NumPy's data buffers) nor the
resident set (which sees malloc/OpenMP memory outside Python) beyond a small
bound.  A leak of one work buffer per call (>= 4 KiB) would grow RSS by
>= 40 MB over 10**4 calls; one leaked array object, by >= 1 MB of tracemalloc.
"""
from __future__ import annotations

import gc
import os
import tracemalloc

import numpy as np
import pytest

import fastlogit

CALLS_PER_FUNCTION = 10_000

# Under scripts/sanitize.sh, ASan's quarantine keeps freed memory resident on
# purpose: RSS growth means nothing there (ASan reports real leaks itself).
pytestmark = pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                                reason="RSS is meaningless under AddressSanitizer")

rng = np.random.default_rng(11)
X = rng.normal(size=(64, 4))
W = rng.normal(size=(4, 1))
Y = (rng.random((1, 64)) < 0.5).astype(np.float64)
Y_BAD = Y.copy()
Y_BAD[0, 3] = 5.0
Z = (X @ W).T
A = fastlogit.sigmoid(Z)
OUT = np.empty_like(Z)
X_F32 = np.asfortranarray(X, dtype=np.float32)
X_BIG = rng.normal(size=(20_000, 4))        # threaded path: OpenMP team, per-thread buffers
Y_BIG = (rng.random((1, 20_000)) < 0.5).astype(np.float64)


def _expect(exc, call):
    try:
        call()
    except exc:
        return
    raise AssertionError("expected an exception")


CALLS = {
    "sigmoid": lambda: fastlogit.sigmoid(Z),
    "sigmoid_out_f32_input": lambda: fastlogit.sigmoid(Z.astype(np.float32), out=OUT),
    "log_sigmoid": lambda: fastlogit.log_sigmoid(Z),
    "forward_pass": lambda: fastlogit.forward_pass(X_F32, W, 0.1),
    "predict": lambda: fastlogit.predict(X, W, 0.1),
    "compute_cost": lambda: fastlogit.compute_cost(A, Y),
    "cost_from_logits": lambda: fastlogit.cost_from_logits(Z, Y),
    "gradients": lambda: fastlogit.gradients(X, W, 0.1, Y),
    "cost_and_gradients": lambda: fastlogit.cost_and_gradients(X, W, 0.1, Y, sample_weight=Y[0] + 1,
                                                               l2=0.1),
    "threaded_cost_and_gradients": lambda: fastlogit.cost_and_gradients(X_BIG, W, 0.1, Y_BIG,
                                                                        n_threads=2),
    "rejected_shape": lambda: _expect(ValueError, lambda: fastlogit.gradients(X, W.T, 0.1, Y)),
    "rejected_dtype": lambda: _expect(TypeError, lambda: fastlogit.sigmoid(Z.astype(complex))),
    "rejected_by_kernel": lambda: _expect(ValueError, lambda: fastlogit.cost_and_gradients(
        X, W, 0.1, Y_BAD)),
}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _rss_growth(call, n_calls) -> int:
    gc.collect()
    before = _rss_bytes()
    for _ in range(n_calls):
        call()
    gc.collect()
    return _rss_bytes() - before


def _growth(call, n_calls, warm_up=200):
    """(tracemalloc growth, RSS growth) in bytes over n_calls calls after a warm-up.

    RSS is measured without tracemalloc (whose own tables are resident memory), over the
    second of two rounds of n_calls: in a process that has already run hundreds of other
    tests, the first round can still touch a few MB of fresh allocator pages once (a CI run
    saw 5 MB) -- a one-off rise to a new high-water mark, where a leak grows every round by
    the same amount (>= 40 MB for 4 KiB per call)."""
    for _ in range(warm_up):         # caches, allocator pools, OpenMP team
        call()
    _rss_growth(call, n_calls)
    rss_growth = _rss_growth(call, n_calls)
    tracemalloc.start()
    try:
        heap_before = tracemalloc.get_traced_memory()[0]
        for _ in range(n_calls):
            call()
        gc.collect()
        heap_growth = tracemalloc.get_traced_memory()[0] - heap_before
    finally:
        tracemalloc.stop()
    return heap_growth, rss_growth


SERIAL = [name for name in CALLS if not name.startswith("threaded")]
# One leaked float (24 B) per call over 10**4 calls is 240 KB; tracemalloc's and
# the allocator's own noise stays below a few KB.
HEAP_BOUND = 32 * 1024
# A per-call leak of one 4 KiB work buffer would add 40 MB a round.
RSS_BOUND = 4 * 1024 * 1024


def test_ten_thousand_mixed_calls_do_not_grow_memory():
    """10**4 calls cycling through every public function (good and rejected input)."""
    cycle = [CALLS[name] for name in SERIAL]
    state = {"i": 0}

    def next_call():
        cycle[state["i"] % len(cycle)]()
        state["i"] += 1

    heap, rss = _growth(next_call, CALLS_PER_FUNCTION)
    assert heap < HEAP_BOUND, heap
    assert rss < RSS_BOUND, rss


def test_threaded_calls_do_not_grow_memory():
    # Per-thread scratch here is ~16 KiB per thread: 150 leaked calls would be ~5 MB.
    heap, rss = _growth(CALLS["threaded_cost_and_gradients"], 150, warm_up=20)
    assert heap < HEAP_BOUND, heap
    assert rss < 2 * 1024 * 1024, rss


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CALLS))
def test_ten_thousand_calls_of_each_function(name):
    heap, rss = _growth(CALLS[name], CALLS_PER_FUNCTION)
    assert heap < HEAP_BOUND, (name, heap)
    assert rss < RSS_BOUND, (name, rss)


def test_the_leak_detector_catches_a_leak():
    """Negative control: keeping one small array per call is reported."""
    kept = []
    leaky = lambda: kept.append(fastlogit.sigmoid(Z))     # noqa: E731
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(CALLS_PER_FUNCTION):
            leaky()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert growth >= HEAP_BOUND


def test_the_rss_measure_catches_a_leak_of_one_work_buffer_per_call():
    """Negative control of the RSS bound: 4 KiB kept (and touched) per call is reported."""
    kept = []
    leaky = lambda: kept.append(np.ones(512))             # noqa: E731
    _, rss = _growth(leaky, CALLS_PER_FUNCTION, warm_up=0)
    kept.clear()
    assert rss >= RSS_BOUND, rss
