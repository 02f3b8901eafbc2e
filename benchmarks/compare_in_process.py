"""Two built checkouts of fastlogit in ONE process, called alternately: kernels and whole fits.

    PYTHONPATH=NEW python benchmarks/compare_in_process.py OLD_CHECKOUT [--fits] [--calls 25]

The other compare_* scripts run each build in its own process; on this shared VM whole-run
drift (10-20 %) is then as large as the changes being measured.  Here OLD's compiled
``_kernels`` is loaded beside the package's own (NEW, from PYTHONPATH) and every timed call
alternates between them, so drift hits both alike.  Kernels: scores and cost_and_gradients at
one thread on (10^5, 50), (2 10^4, 500), (10^6, 100), (10^6, 10).  --fits: LogisticRegression
on the fit cases of ``fastlogit.bench.fit`` with ``fastlogit._train``'s kernel module swapped
per call (needs scikit-learn).  Prints median / minimum in ms per build and old / new.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import time

import numpy as np

import fastlogit._train as train


def load_kernels(checkout: str):
    so = glob.glob(f"{checkout}/fastlogit/_kernels*.so")
    if not so:
        raise SystemExit(f"no built fastlogit/_kernels*.so under {checkout!r}")
    spec = importlib.util.spec_from_file_location("old_build._kernels", so[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alternate(calls: int, **runs) -> dict[str, list[float]]:
    times = {name: [] for name in runs}
    for _ in range(calls):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    return times


def report(label: str, times: dict[str, list[float]]) -> None:
    cells = "  ".join(f"{k} {np.median(v) * 1e3:7.2f} / {min(v) * 1e3:7.2f}" for k, v in times.items())
    ratio = np.median(times["old"]) / np.median(times["new"])
    print(f"{label:<34} {cells}   old/new {ratio:.3f}")


def kernels(old, new, calls: int) -> None:
    rng = np.random.default_rng(0)
    for m, n in ((100_000, 50), (20_000, 500), (1_000_000, 100), (1_000_000, 10)):
        X = rng.standard_normal((m, n))
        y = (rng.random(m) < 0.5).astype(np.float64)
        w = rng.standard_normal(n) * 0.1
        z, sw = np.empty(m), np.empty(0)
        report(f"scores ({m}, {n})", alternate(calls, old=lambda: old.scores(X, w, 0.1, z, 1),
                                                new=lambda: new.scores(X, w, 0.1, z, 1)))
        report(f"cost_and_gradients ({m}, {n})",
               alternate(calls, old=lambda: old.cost_and_gradients(X, w, 0.1, y, sw, True, 1),
                         new=lambda: new.cost_and_gradients(X, w, 0.1, y, sw, True, 1)))


def fits(old, new, calls: int) -> None:
    from threadpoolctl import threadpool_limits

    from fastlogit.bench.fit import CASES, make_case
    from fastlogit.estimator import LogisticRegression

    def fit_with(module, X, y, C):
        def run():
            train._kernels = module
            try:
                LogisticRegression(C=C, n_threads=1).fit(X, y)
            finally:
                train._kernels = new
        return run

    with threadpool_limits(limits=1):
        for case in CASES:
            X, y, C = make_case(case)
            report(f"fit {case}", alternate(calls, old=fit_with(old, X, y, C),
                                            new=fit_with(new, X, y, C)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="checkout of the old build (built in place)")
    parser.add_argument("--fits", action="store_true", help="time whole fits instead of kernels")
    parser.add_argument("--calls", type=int, default=25, help="timed calls per build and case")
    args = parser.parse_args()
    new = train._kernels
    old = load_kernels(args.old)
    print(f"old: {args.old}; new: {new.__file__}; median / min in ms, one thread")
    (fits if args.fits else kernels)(old, new, args.calls)


if __name__ == "__main__":
    main()
