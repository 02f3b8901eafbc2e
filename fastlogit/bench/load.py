"""Loaded-machine mode: K busy processes compete for the cores while fastlogit
runs with the default thread count and with one thread.

The busy processes are bounded in time twice: each stops by itself after a
deadline (so none can outlive a crashed or killed parent by more than that),
and :func:`busy_processes` terminates them on the way out, whatever happened
inside (exception, KeyboardInterrupt).
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time


from fastlogit.bench.problems import make_problem
from fastlogit.bench.timing import time_interleaved

# Cases of the loaded table: short calls (a millisecond or less), where one
# descheduled helper thread used to stall the whole call, and long ones.
LOADED_CASES = (
    ("sigmoid", (1_000_000,)), ("log_sigmoid", (1_000_000,)),
    ("compute_cost", (1_000_000,)), ("cost_from_logits", (1_000_000,)),
    ("forward_pass", (100_000, 3)), ("predict", (100_000, 3)),
    ("cost_and_gradients", (100_000, 3)), ("cost_and_gradients", (100_000, 100)),
)
QUICK_LOADED_CASES = tuple((k, (s[0] // 10,) + s[1:]) for k, s in LOADED_CASES)


def _spin(deadline: float) -> None:
    """A CPU-bound process that stops by itself at ``deadline`` (monotonic)."""
    # Plain signal handling in the child: terminate() ends it quietly (a
    # parent's handler may turn SIGTERM into an exception), and Ctrl-C in the
    # terminal goes to the parent, whose clean-up stops it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    x = 0
    while time.monotonic() < deadline:
        x += 1


@contextlib.contextmanager
def busy_processes(k: int, max_seconds: float):
    """``k`` CPU-bound processes for the duration of the block (at most
    ``max_seconds``); always stopped on exit."""
    if k <= 0:
        yield []
        return
    ctx = multiprocessing.get_context("spawn" if os.name != "posix" else "fork")
    deadline = time.monotonic() + max_seconds
    procs = [ctx.Process(target=_spin, args=(deadline,), daemon=True) for _ in range(k)]
    try:
        for p in procs:
            p.start()
        time.sleep(0.1)               # let them reach the scheduler
        yield procs
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():        # pragma: no cover - terminate was ignored
                p.kill()
                p.join()


def public_call(problem, n_threads):
    """fastlogit's public call of ``problem`` with ``n_threads`` (None = default)."""
    import fastlogit
    a, k = problem.arrays, problem.kernel
    if k in ("sigmoid", "log_sigmoid"):
        fn = getattr(fastlogit, k)
        return lambda: fn(a["z"], n_threads=n_threads)
    if k == "compute_cost":
        return lambda: fastlogit.compute_cost(a["A"], a["Y"], n_threads=n_threads)
    if k == "cost_from_logits":
        return lambda: fastlogit.cost_from_logits(a["Z"], a["Y"], n_threads=n_threads)
    fn = getattr(fastlogit, k)
    if k in ("forward_pass", "predict"):
        return lambda: fn(a["X"], a["W"], a["b"], n_threads=n_threads)
    return lambda: fn(a["X"], a["W"], a["b"], a["Y"], n_threads=n_threads)


def scaling_rows(cases, loads, repeat: int, max_seconds: float, say=print) -> list:
    """For each K in ``loads`` (0 = idle) and each case: mean t(None)/t(1),
    and t(1)/t(2) (the 2-thread gain), all timed interleaved in one run."""
    from fastlogit import _kernels
    rows = []
    problems = [make_problem(kernel, shape, "float64") for kernel, shape in cases]
    for k in loads:
        with busy_processes(k, max_seconds * len(problems) * 4 + 30):
            for problem in problems:
                calls = {t: public_call(problem, t) for t in (1, 2, None)}
                before = _kernels.pool_backoffs()
                # As many calls as fit in the budget (at least ``repeat``): a
                # busy machine's preemptions are rare, long events, and only
                # many calls average them out.
                timed = time_interleaved(calls, max(repeat, 10**6), max_seconds)
                # Means, not medians: on a busy machine a call either runs
                # uninterrupted or waits a scheduler time slice, and the
                # median of such a two-valued sample flips between the two.
                mean = {t: timed[t][3] for t in calls}
                row = {"kernel": problem.kernel, "shape": "x".join(map(str, problem.shape)),
                       "busy_processes": k, "t1_s": mean[1], "t2_s": mean[2],
                       "tdefault_s": mean[None],
                       "default_over_1": mean[None] / mean[1],
                       "gain_2_threads": mean[1] / mean[2],
                       "backoffs": _kernels.pool_backoffs() - before}
                rows.append(row)
                say(format_row(row))
    return rows


LOADED_HEADER = (f"{'kernel':<20}{'shape':>12}{'K':>3}{'t(1)':>11}{'t(None)/t(1)':>14}"
                 f"{'t(1)/t(2)':>11}{'backoffs':>10}")


def format_row(row: dict) -> str:
    from fastlogit.bench.report import fmt_time
    return (f"{row['kernel']:<20}{row['shape']:>12}{row['busy_processes']:>3}"
            f"{fmt_time(row['t1_s']):>11}{row['default_over_1']:>13.2f}x"
            f"{row['gain_2_threads']:>10.2f}x{row['backoffs']:>10}")


def estimate_seconds(cases, loads, max_seconds: float) -> float:
    """Rough wall time of :func:`scaling_rows`: 3 thread settings per case, each
    repeated for about ``max_seconds``."""
    return len(loads) * (len(cases) * (3 * max_seconds + 0.3) + 0.5)


__all__ = ["busy_processes", "public_call", "scaling_rows", "estimate_seconds", "LOADED_CASES",
           "QUICK_LOADED_CASES", "LOADED_HEADER", "format_row"]
