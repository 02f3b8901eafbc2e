"""Thread safety and GIL release of every kernel.

* 8 Python threads calling every public function at once (each with its own
  OpenMP team) give bit-for-bit the results of serial calls.
* The GIL is released inside the kernels: while one thread is inside a long
  kernel call, another thread keeps completing its own (short) fastlogit
  calls.  Measured with timestamps, not speed: if the kernel held the GIL, the
  other thread could not complete a single call during that window.
"""
from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

import fastlogit

N_PY_THREADS = 8


# The helper threads must really run here, even on a busy machine.
pytestmark = pytest.mark.usefixtures("pool_without_backoff")


def _problem(m, n, seed=7, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)).astype(dtype)
    W = rng.normal(size=(n, 1)) / np.sqrt(n)
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    return X, W, 0.3, Y


# Big enough that the threaded (OpenMP) paths run too (> SERIAL_BELOW elements).
X_, W_, B_, Y_ = _problem(30_000, 5)
Z_ = (X_ @ W_).T + B_
A_ = fastlogit.sigmoid(Z_)
SW_ = np.random.default_rng(1).uniform(0, 2, 30_000)

CALLS = {
    "sigmoid": lambda nt: fastlogit.sigmoid(Z_, n_threads=nt),
    "sigmoid_out": lambda nt: fastlogit.sigmoid(Z_, out=np.empty_like(Z_), n_threads=nt),
    "log_sigmoid": lambda nt: fastlogit.log_sigmoid(Z_, n_threads=nt),
    "forward_pass": lambda nt: fastlogit.forward_pass(X_, W_, B_, n_threads=nt),
    "forward_pass_F": lambda nt: fastlogit.forward_pass(np.asfortranarray(X_), W_, B_, n_threads=nt),
    "predict": lambda nt: fastlogit.predict(X_, W_, B_, n_threads=nt),
    "compute_cost": lambda nt: fastlogit.compute_cost(A_, Y_, n_threads=nt),
    "cost_from_logits": lambda nt: fastlogit.cost_from_logits(Z_, Y_, n_threads=nt),
    "gradients": lambda nt: fastlogit.gradients(X_, W_, B_, Y_, n_threads=nt),
    "cost_and_gradients": lambda nt: fastlogit.cost_and_gradients(
        X_, W_, B_, Y_, sample_weight=SW_, l2=0.1, n_threads=nt),
    "float32": lambda nt: fastlogit.gradients(X_.astype(np.float32), W_.astype(np.float32), B_, Y_,
                                              n_threads=nt),
}


def _same(a, b):
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def test_eight_threads_at_once_equal_serial_results():
    serial = {name: call(1) for name, call in CALLS.items()}
    barrier = threading.Barrier(N_PY_THREADS)
    mismatches, errors = [], []

    def worker(index):
        order = list(CALLS)
        random.Random(index).shuffle(order)
        # Different OpenMP team sizes per thread: results must not depend on it.
        n_threads = [1, 2, None, -1][index % 4]
        try:
            barrier.wait()
            for _ in range(3):
                for name in order:
                    if not _same(CALLS[name](n_threads), serial[name]):
                        mismatches.append((index, name))
        except Exception as exc:   # reported below, with the thread it came from
            errors.append((index, repr(exc)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(N_PY_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    assert not mismatches, mismatches


def test_threads_with_errors_mixed_in_stay_correct():
    """Rejected calls (which raise before any kernel) interleaved with good ones."""
    good = fastlogit.cost_and_gradients(X_, W_, B_, Y_)
    bad_Y = Y_.copy()
    bad_Y[0, 5] = 2.0          # found by the kernel, raised afterwards
    failures = []

    def worker():
        for _ in range(20):
            with pytest.raises(ValueError, match="^Y must hold labels"):
                fastlogit.cost_and_gradients(X_, W_, B_, bad_Y)
            with pytest.raises(ValueError, match="^W must have shape"):
                fastlogit.forward_pass(X_, W_.T, B_)
            if not _same(fastlogit.cost_and_gradients(X_, W_, B_, Y_), good):
                failures.append("mismatch")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures


# ---------------------------------------------------------------------------
# GIL release
# ---------------------------------------------------------------------------

def _long_calls():
    """One call per kernel family that takes long enough to observe (tens of ms)."""
    z = np.random.default_rng(3).normal(size=2_000_000)
    y = (z > 0).astype(np.float64)
    a = fastlogit.sigmoid(z)
    X, W, b, Y = _problem(1_000_000, 8, seed=4)
    return {
        "sigmoid": lambda: fastlogit.sigmoid(z, n_threads=1),
        "log_sigmoid": lambda: fastlogit.log_sigmoid(z, n_threads=1),
        "compute_cost": lambda: fastlogit.compute_cost(a, y, n_threads=1),
        "cost_from_logits": lambda: fastlogit.cost_from_logits(z, y, n_threads=1),
        "forward_pass": lambda: fastlogit.forward_pass(X, W, b, n_threads=1),
        "predict": lambda: fastlogit.predict(X, W, b, n_threads=1),
        "gradients": lambda: fastlogit.gradients(X, W, b, Y, n_threads=1),
        "cost_and_gradients": lambda: fastlogit.cost_and_gradients(X, W, b, Y, n_threads=1),
    }


@pytest.fixture(scope="module")
def long_calls():
    return _long_calls()


def _observe(long_call):
    """Run ``long_call`` in one thread while another thread keeps completing
    short fastlogit calls; return (window duration, stamps inside, largest gap)."""
    small = np.linspace(-3, 3, 256)
    window, stamps = {}, []
    started, done = threading.Event(), threading.Event()

    def long_worker():
        started.wait()
        window["enter"] = time.perf_counter()
        long_call()
        window["exit"] = time.perf_counter()
        done.set()

    def short_worker():
        # Each stamp is taken after a complete fastlogit call, which needs the
        # GIL for its Python part: no stamp can fall inside a GIL-holding call.
        started.set()
        while not done.is_set():
            fastlogit.sigmoid(small, n_threads=1)
            stamps.append(time.perf_counter())

    threads = [threading.Thread(target=long_worker), threading.Thread(target=short_worker)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    enter, exit_ = window["enter"], window["exit"]
    inside = [t for t in stamps if enter < t < exit_]
    edges = [enter] + inside + [exit_]
    return exit_ - enter, len(inside), max(b - a for a, b in zip(edges, edges[1:]))


def _released(duration, n_inside, largest_gap):
    # Held GIL: no call completes inside the window (largest gap == duration).
    # Released: calls complete all along; half the window allows for OS
    # scheduling hiccups on a loaded machine.
    return n_inside >= 5 and largest_gap < 0.5 * duration


@pytest.mark.parametrize("name", ["sigmoid", "log_sigmoid", "compute_cost", "cost_from_logits",
                                  "forward_pass", "predict", "gradients", "cost_and_gradients"])
def test_gil_is_released_inside_the_kernel(long_calls, name):
    long_calls[name]()                            # warm up (page faults, thread pool)
    # Best of 3: an OS scheduling hiccup can spoil one window; a kernel that
    # holds the GIL spoils every one of them.
    trials = []
    for _ in range(3):
        trials.append(_observe(long_calls[name]))
        if _released(*trials[-1]):
            return
    raise AssertionError(f"{name}: no trial showed overlap (duration, n_inside, gap): {trials}")


def test_the_gil_detector_sees_a_call_that_holds_the_gil():
    """Negative control: a C-level call that keeps the GIL (a backtracking
    regular expression, ~0.2 s) must be reported as not releasing it."""
    import re
    pattern = re.compile(r"(a+)+b")
    stats = _observe(lambda: pattern.match("a" * 20))
    assert not _released(*stats), stats


def test_thousands_of_short_threaded_calls_keep_their_bits():
    """Jobs published back to back (helpers joining late, finishing the previous
    job while the next is published, sleeping and waking): every result keeps
    the serial bits.  Alternating kernels catches a helper running a task of
    the wrong job."""
    from fastlogit._validation import SERIAL_BELOW
    rng = np.random.default_rng(9)
    z = rng.normal(size=SERIAL_BELOW + 4097) * 8
    X = rng.normal(size=(SERIAL_BELOW // 2 + 31, 3))
    W = rng.normal(size=(3, 1))
    Y = (rng.random((1, X.shape[0])) < 0.5).astype(np.float64)
    calls = [lambda t: fastlogit.sigmoid(z, n_threads=t),
             lambda t: fastlogit.cost_from_logits(z, (z > 0).astype(np.float64), n_threads=t),
             lambda t: fastlogit.cost_and_gradients(X, W, 0.1, Y, n_threads=t),
             lambda t: fastlogit.forward_pass(X, W, 0.1, n_threads=t)]
    serial = [call(1) for call in calls]
    for i in range(2000):
        k = i % len(calls)
        assert _same(calls[k](2), serial[k]), f"call {i} ({k}) differs"
