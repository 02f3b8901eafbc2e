"""Running one benchmark case (every implementation, interleaved, checked
against the reference) and the serial-threshold sweep."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastlogit.bench.problems import Problem, check_tolerance, close, fmt_count
from fastlogit.bench.registry import expected_result, implementations
from fastlogit.bench.timing import BandwidthFloor, peak_extra_memory, thread_limits, time_interleaved


@dataclass
class Row:
    kernel: str
    size: str
    dtype: str
    threads: int
    impl: str
    median_s: float
    iqr_s: float
    repeats: int
    melem_per_s: float
    gb_per_s: float
    ratio_to_reference: float | None
    pct_of_floor: float
    floor_s: float
    peak_extra_bytes: int | None
    output_bytes: int
    matches_reference: bool | None
    note: str = ""
    extra: dict = field(default_factory=dict)


def run_case(problem: Problem, threads: int, peers, repeat: int, max_seconds: float,
             memory: bool = True, impl_filter=None) -> list:
    impls = implementations(problem, threads, peers)
    if impl_filter:
        impls = [i for i in impls if i.name in impl_filter or i.name == "reference"]
    floor = BandwidthFloor(problem, threads)
    try:
        with thread_limits(threads):
            calls = {"floor": floor}
            calls.update({i.name: i.call for i in impls})
            timed = time_interleaved(calls, repeat, max_seconds)
            results = {i.name: i.result(i.call()) for i in impls}
            mem = {i.name: (peak_extra_memory(i.call) if memory and i.traced_memory else None)
                   for i in impls}
    finally:
        floor.close()
    floor_s = timed["floor"][0]
    ref_s = timed["reference"][0]
    ref_result = expected_result(problem)
    tol = check_tolerance(problem.dtype)
    moved = problem.read_bytes + problem.write_bytes
    size = "x".join(fmt_count(s) for s in problem.shape)
    rows = []
    for i in impls:
        med, iqr, n, _mean = timed[i.name]
        rows.append(Row(
            kernel=problem.kernel, size=size, dtype=problem.dtype.name, threads=threads,
            impl=i.name, median_s=med, iqr_s=iqr, repeats=n,
            melem_per_s=problem.elements / med / 1e6, gb_per_s=moved / med / 1e9,
            ratio_to_reference=ref_s / med, pct_of_floor=100.0 * floor_s / med, floor_s=floor_s,
            peak_extra_bytes=mem[i.name], output_bytes=problem.write_bytes,
            matches_reference=close(results[i.name], ref_result, tol),
            note=i.note))
    return rows


def crossover(threads: int, repeat: int, sizes=None) -> list:
    """Time sigmoid and cost_from_logits on 1 and ``threads`` threads across
    sizes, calling the kernels directly (the API would force small inputs
    serial).  The smallest size from which ``threads`` threads win is where
    SERIAL_BELOW belongs."""
    from fastlogit import _kernels
    sizes = sizes or [2 ** p for p in range(10, 21)]
    rows = []
    for m in sizes:
        rng = np.random.default_rng(0)
        z = rng.standard_normal(m) * 4
        y = (rng.random(m) < 0.5).astype(np.float64)
        out = np.empty_like(z)
        X = rng.standard_normal((max(m // 8, 1), 8))
        W = rng.standard_normal(8)
        aout = np.empty(X.shape[0])
        for name, fn in (("sigmoid", lambda t: _kernels.sigmoid(z, out, t)),
                         ("cost_from_logits", lambda t: _kernels.mean_loss(z, y, True, 0.0, t)),
                         ("forward_pass n=8", lambda t: _kernels.forward_pass(X, W, 0.0, aout, t))):
            calls = {1: lambda: fn(1), threads: lambda: fn(threads)}
            reps = max(repeat, int(2e6 / m))  # many repeats for tiny sizes
            timed = time_interleaved(calls, reps, 1.0)
            rows.append({"kernel": name, "elements": m, "t1_s": timed[1][0],
                         f"t{threads}_s": timed[threads][0],
                         "speedup": timed[1][0] / timed[threads][0]})
    return rows


