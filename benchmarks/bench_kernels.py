"""One benchmark per (kernel, implementation, size, dtype, threads).

Benchmarks are grouped by problem (kernel, size, dtype) so that pytest-benchmark's
table puts fastlogit next to the NumPy reference and the peers (SciPy,
scikit-learn, numexpr, PyTorch; each skipped when not installed).  Every
result is checked against the reference after timing.  The case definitions
are fastlogit.bench's, which `fastlogit bench` uses too.

Loaded-machine mode (opt-in): ``pytest benchmarks/bench_kernels.py --bench-load 1``
starts that many busy processes for each benchmark of ``test_loaded`` (stopped
afterwards) and times fastlogit with the default thread count and with one
thread; extra_info records t(None)/t(1).
"""
from __future__ import annotations

import gc

import pytest

from fastlogit import _kernels
from fastlogit.bench import load as bench_load
from fastlogit.bench import problems as bench_problems
from fastlogit.bench import registry as bench_registry
from fastlogit.bench import timing as bench_timing

pytest.importorskip("fastlogit._kernels")

DTYPES = ("float64", "float32")

# Implementations each kernel has in fastlogit.bench's registry (peers skipped at run time
# when not installed).
IMPLS = {
    "sigmoid": ("reference", "fastlogit", "fastlogit out=", "scipy", "numexpr", "torch"),
    "log_sigmoid": ("reference", "fastlogit", "fastlogit out=", "scipy", "numexpr", "torch"),
    "forward_pass": ("reference", "fastlogit", "fastlogit out=", "scipy", "torch"),
    "predict": ("reference", "fastlogit"),
    "compute_cost": ("reference", "fastlogit", "scipy", "sklearn", "numexpr", "torch"),
    "cost_from_logits": ("reference", "fastlogit", "scipy", "sklearn", "numexpr", "torch"),
    "gradients": ("reference", "fastlogit"),
    "cost_and_gradients": ("reference", "fastlogit", "sklearn", "torch"),
}
QUICK_M = 100_000
QUICK_SHAPES = ((20_000, 3), (5_000, 100))


def _problems(quick: bool):
    for kernel in bench_problems.KERNELS:
        if kernel in bench_problems.ELEMENTWISE:
            shapes = [(QUICK_M,)] if quick else [(m,) for m in bench_problems.DEFAULT_M]
        else:
            shapes = list(QUICK_SHAPES) if quick else list(bench_problems.DEFAULT_SHAPES[kernel])
        for shape in shapes:
            yield kernel, shape


def _threads(config):
    text = config.getoption("--bench-threads")
    if text:
        return [int(t) for t in text.split(",")]
    return list(dict.fromkeys([1, max(_kernels.max_threads(), 1)]))


def pytest_generate_tests(metafunc):
    quick = metafunc.config.getoption("--bench-quick")
    if "timing_case" in metafunc.fixturenames:
        params, ids = [], []
        # Problem outermost so that consecutive benchmarks share its arrays.
        for kernel, shape in _problems(quick):
            for dtype in DTYPES:
                for threads in _threads(metafunc.config):
                    for impl in IMPLS[kernel]:
                        params.append((kernel, shape, dtype, threads, impl))
                        ids.append(f"{kernel}-{'x'.join(map(str, shape))}-{dtype}-{threads}thr-{impl}")
        metafunc.parametrize("timing_case", params, ids=ids)
    if "loaded_case" in metafunc.fixturenames:
        loads = metafunc.config.getoption("--bench-load")
        params = [(kernel, shape, k, t) for k in (loads or [])
                  for kernel, shape in bench_load.LOADED_CASES for t in (1, None)]
        metafunc.parametrize("loaded_case", params, ids=[
            f"{k}-{'x'.join(map(str, s))}-busy{b}-{'default' if t is None else t}thr"
            for k, s, b, t in params])
    if "memory_case" in metafunc.fixturenames:
        params, ids = [], []
        for kernel, shape in _problems(True):
            for dtype in DTYPES:
                params.append((kernel, shape, dtype))
                ids.append(f"{kernel}-{'x'.join(map(str, shape))}-{dtype}")
        metafunc.parametrize("memory_case", params, ids=ids)


_cache: dict = {}


def _problem_and_reference(kernel, shape, dtype):
    """The problem and the reference's result, kept for the benchmarks that follow."""
    key = (kernel, shape, dtype)
    if key not in _cache:
        _cache.clear()   # one problem at a time: the big ones are hundreds of MB
        gc.collect()
        problem = bench_problems.make_problem(kernel, shape, dtype)
        with bench_timing.thread_limits(1):
            _cache[key] = (problem, bench_registry.expected_result(problem))
    return _cache[key]


def test_kernel(benchmark, timing_case):
    kernel, shape, dtype, threads, impl_name = timing_case
    problem, expected = _problem_and_reference(kernel, shape, dtype)
    impls = {i.name: i for i in bench_registry.implementations(problem, threads)}
    if impl_name not in impls:
        pytest.skip(f"{impl_name} is not installed")
    impl = impls[impl_name]
    benchmark.group = problem.label
    benchmark.extra_info.update(
        kernel=kernel, impl=impl_name, threads=threads, dtype=dtype, shape=list(shape),
        bytes_moved=problem.read_bytes + problem.write_bytes, elements=problem.elements,
        note=impl.note)
    with bench_timing.thread_limits(threads):
        result = benchmark(impl.call)
    # Checked after timing: a fast wrong answer must not pass unnoticed.  The
    # expected answer is the reference on float64 copies; the reference itself
    # is only recorded (in float32 it overflows to an infinite cost).
    ok = bench_problems.close(impl.result(result), expected, bench_problems.check_tolerance(dtype))
    benchmark.extra_info["matches_reference"] = ok
    if impl_name != "reference":
        assert ok, f"{impl_name} disagrees with the reference on {problem.label}"


def _bookkeeping_bytes(problem) -> int:
    """Allowed allocations besides the outputs: O(n) and O(threads * block),
    never O(m): W as float64, per-chunk partial sums (64 chunks of 2n + 8
    doubles), per-thread scratch, Python objects."""
    n = problem.shape[1] if len(problem.shape) == 2 else 1
    return 64 * (2 * n + 16) * 8 + 256 * 1024


def test_peak_memory(benchmark, memory_case):
    """Peak extra memory of one fastlogit call = its outputs (+ O(n) bookkeeping);
    the reference's temporaries are recorded next to it for comparison."""
    kernel, shape, dtype = memory_case
    problem = bench_problems.make_problem(kernel, shape, dtype)
    impls = {i.name: i for i in bench_registry.implementations(problem, 1, peers=())}
    fast, ref = impls["fastlogit"], impls["reference"]
    fast_peak = bench_timing.peak_extra_memory(fast.call)
    ref_peak = bench_timing.peak_extra_memory(ref.call)
    benchmark.group = "peak memory"
    benchmark.extra_info.update(
        kernel=kernel, dtype=dtype, shape=list(shape), fastlogit_peak_bytes=fast_peak,
        reference_peak_bytes=ref_peak, output_bytes=problem.write_bytes)
    benchmark.pedantic(fast.call, rounds=3, iterations=1)
    limit = problem.write_bytes + _bookkeeping_bytes(problem)
    assert fast_peak <= limit, (
        f"fastlogit.{kernel} {problem.label} allocated {fast_peak} bytes at peak; "
        f"its outputs are {problem.write_bytes} bytes (limit with bookkeeping {limit})")


def test_loaded(benchmark, loaded_case):
    """One kernel while K busy processes run (opt-in: --bench-load K): compare
    the default thread count's median with one thread's in the same group."""
    kernel, shape, busy, threads = loaded_case
    problem = bench_problems.make_problem(kernel, shape, "float64")
    call = bench_load.public_call(problem, threads)
    benchmark.group = f"loaded: {problem.label}, {busy} busy processes"
    benchmark.extra_info.update(kernel=kernel, shape=list(shape), busy_processes=busy,
                                threads="default" if threads is None else threads)
    with bench_load.busy_processes(busy, 120):
        benchmark(call)
