"""The one timing helper (interleaved rounds, median and spread), peak memory,
thread limits for peers, and the memory-bandwidth floor."""
from __future__ import annotations

import contextlib
import gc
import statistics
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from fastlogit.bench.problems import Problem
from fastlogit.bench.registry import import_peer

@contextlib.contextmanager
def thread_limits(threads: int):
    """Let BLAS, numexpr, PyTorch and OpenMP use ``threads`` threads inside."""
    stack = contextlib.ExitStack()
    try:
        from threadpoolctl import threadpool_limits
        stack.enter_context(threadpool_limits(limits=threads))
    except ImportError:
        pass
    ne = import_peer("numexpr") if "numexpr" in sys.modules else None
    torch = sys.modules.get("torch")
    old_ne = ne.set_num_threads(threads) if ne else None
    old_torch = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(threads)
    try:
        with stack:
            yield
    finally:
        if ne:
            ne.set_num_threads(old_ne)
        if torch:
            torch.set_num_threads(old_torch)


def _median_iqr(times: list) -> tuple[float, float]:
    med = statistics.median(times)
    if len(times) >= 4:
        q = statistics.quantiles(times, n=4)
        return med, (q[2] - q[0])
    return med, max(times) - min(times)


def time_interleaved(calls: dict, repeat: int, max_seconds: float) -> dict:
    """Median and spread of each call, measured round-robin.

    Each callable runs once untimed (imports, first-touch of reused buffers),
    then ``repeat`` times in rounds of one call each, so that load from other
    processes hits every implementation alike.  Returns, per call,
    (median, interquartile range, repeats, mean).  A callable slower than
    ``max_seconds / repeat`` is repeated fewer times (at least 3).
    """
    first = {}
    for name, fn in calls.items():
        t0 = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t0
    reps = {name: max(3, min(repeat, int(max_seconds / max(t, 1e-9)))) for name, t in first.items()}
    times: dict[str, list] = {name: [] for name in calls}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(max(reps.values())):
            for name, fn in calls.items():
                if r < reps[name]:
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: _median_iqr(ts) + (len(ts), statistics.fmean(ts)) for name, ts in times.items()}


def peak_extra_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated (and traced) during one call of ``fn``, beyond what
    was allocated before it.  NumPy reports its array buffers to tracemalloc,
    so this counts temporaries and outputs; it does not see PyTorch's heap."""
    gc.collect()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        if started:
            tracemalloc.stop()
    return max(peak - before, 0)


def _split(arr: np.ndarray, parts: int) -> list:
    flat = arr.ravel(order="K")  # a view: inputs are contiguous
    return np.array_split(flat, parts) if parts > 1 else [flat]


class BandwidthFloor:
    """Time this machine needs, right now, to read the inputs and write the
    outputs of a problem with ``threads`` threads: ``np.add.reduce`` over each
    input and ``np.copyto`` of a scalar into a touched output-sized buffer,
    each split into ``threads`` contiguous parts run in parallel (NumPy
    releases the GIL in both)."""

    def __init__(self, problem: Problem, threads: int):
        self.inputs = problem.inputs
        self.out = np.ones(max(problem.write_bytes // 8, 0), dtype=np.float64)
        self.threads = threads
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self.pieces = [(p, "r") for a in self.inputs for p in _split(a, threads)]
        if self.out.size:
            self.pieces += [(p, "w") for p in _split(self.out, threads)]

    @staticmethod
    def _touch(piece):
        arr, mode = piece
        if mode == "r":
            np.add.reduce(arr)
        else:
            np.copyto(arr, 0.5)

    def __call__(self):
        if self.pool is None:
            for p in self.pieces:
                self._touch(p)
        else:
            # Each thread takes the same share of every array.
            list(self.pool.map(self._touch, self.pieces))

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()


