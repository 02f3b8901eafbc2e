"""Training on Dask: Newton against L-BFGS, passes over X and wall time.

    python benchmarks/bench_dask_fit.py [--workers 2] [--repeat 3] [--solvers newton lbfgs] [--json PATH]
    python benchmarks/bench_dask_fit.py --memory [--features 199] [--blocks 1000]

Starts a LocalCluster (N worker processes, one thread each, loopback only),
keeps X on the workers (persisted), and fits each case with
``fastlogit.dask.fit(solver=...)`` for Newton (the default up to 200
parameters) and L-BFGS (what the Dask fit used before).  For every fit it
prints the passes over X (rounds of tasks: ``FitResult.n_passes``), the wall
time (median and interquartile range of ``--repeat``), whether it converged and the largest coefficient
difference to the in-memory optimum (Newton at tol 1e-12), relative to the
largest coefficient.  The in-memory default fit is timed beside it.  Wall
times on a shared machine measure the other users too: compare within a row.

``--memory`` instead runs Newton iterations on ``--blocks`` row blocks of
``--rows-per-block`` x ``--features`` N(0, 1) data and reports the largest
input any one task of the reduction received (bytes, from the scheduler),
against the ``COMBINE_GROUP * width * 8`` bound and what one task gathering
every block's sums would receive.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np


def cases():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    yield "breast cancer unscaled, C = 1", X, y.astype(float), 1.0, 150
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    yield "breast cancer scaled, C = 1", Xs, y.astype(float), 1.0, 150
    rng = np.random.default_rng(0)
    m, n = 1_000_000, 10
    X = rng.standard_normal((m, n))
    w = rng.normal(size=n)
    y = (rng.random(m) < 1 / (1 + np.exp(-(X @ w)))).astype(float)
    yield "(10^6, 10) N(0, 1), C = 1e4", X, y, 1e4, 125_000
    m, n = 100_000, 50
    Z = rng.standard_normal((m, n))
    X = (0.7 * Z + 0.3 * Z[:, :1]) * np.logspace(-3, 3, n)
    y = (rng.random(m) < 1 / (1 + np.exp(-(Z @ rng.normal(size=n) / 3)))).astype(float)
    yield "ill-conditioned (10^5, 50), C = 1", X, y, 1.0, 12_500


def timed(repeat, fn):
    """(median, first quartile, third quartile) of ``repeat`` wall times, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    return (median, q1, q3), result


def largest_reduction_input(args) -> int:
    """--memory: the largest input of one reduction task in a Newton fit."""
    import dask.array as da
    import distributed

    import fastlogit.dask as fld

    class Inputs(distributed.diagnostics.plugin.SchedulerPlugin):
        def __init__(self, scheduler):
            self.scheduler, self.largest = scheduler, {}

        def transition(self, key, start, finish, *a, **kw):
            if finish == "processing" and ("-sum-" in str(key) or "-gather-" in str(key)):
                ts = self.scheduler.tasks[key]
                self.largest[key] = sum(dep.get_nbytes() for dep in ts.dependencies)

    n, blocks, k = args.features, args.blocks, args.rows_per_block
    width = 4 + n + (n + 1) * (n + 2) // 2
    with fld.local_cluster(args.workers, silence_logs=40) as cluster, distributed.Client(cluster):
        plugin = Inputs(cluster.scheduler)
        cluster.scheduler.add_plugin(plugin, name="inputs")
        X = da.random.default_rng(0).standard_normal((blocks * k, n), chunks=(k, n)).persist()
        y = (da.random.default_rng(1).random(blocks * k, chunks=k) < 0.5).astype(float).persist()
        distributed.wait([X, y])
        start = time.perf_counter()
        res = fld.fit(X, y, l2=1e-2, max_iter=args.iterations, n_threads=1, solver="newton")
        seconds = time.perf_counter() - start
    worst = max(plugin.largest.values())
    print(f"{blocks} blocks of ({k}, {n}); Newton row of sums {width} doubles "
          f"({width * 8 / 1e3:.0f} kB); {res.n_passes} pass(es) in {seconds:.1f} s\n"
          f"largest input of one reduction task: {worst / 1e6:.2f} MB "
          f"(bound COMBINE_GROUP x row = {fld.COMBINE_GROUP * width * 8 / 1e6:.2f} MB; "
          f"all blocks' rows at one task would be {blocks * width * 8 / 1e6:.1f} MB)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--solvers", nargs="+", default=["newton", "lbfgs"],
                        choices=["newton", "lbfgs"])
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--memory", action="store_true",
                        help="report the largest input of one reduction task instead")
    parser.add_argument("--features", type=int, default=199)   # 200 parameters: Newton
    parser.add_argument("--blocks", type=int, default=1000)
    parser.add_argument("--rows-per-block", type=int, default=250)
    parser.add_argument("--iterations", type=int, default=2)
    args = parser.parse_args(argv)
    if args.memory:
        return largest_reduction_input(args)

    import dask.array as da
    import distributed

    import fastlogit
    import fastlogit.dask as fld

    warnings.simplefilter("ignore")           # not converging is a column of the table
    rows = []
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"{args.workers} worker process(es); median [IQR] of {args.repeat}", flush=True)
    with fld.local_cluster(args.workers, silence_logs=40) as cluster, distributed.Client(cluster):
        for name, X, y, C, block in cases():
            l2 = 1.0 / (C * X.shape[0])
            optimum = fastlogit.fit(X, y, l2=l2, tol=1e-12, solver="newton", n_threads=1)
            scale = np.max(np.abs(optimum.W))
            (t_mem, _, _), _ = timed(args.repeat, lambda: fastlogit.fit(X, y, l2=l2, n_threads=1))
            Xd = da.from_array(X, chunks=(block, X.shape[1])).persist()
            yd = da.from_array(y, chunks=(block,)).persist()
            distributed.wait([Xd, yd])
            for solver in args.solvers:
                (t, q1, q3), res = timed(
                    args.repeat, lambda: fld.fit(Xd, yd, l2=l2, solver=solver, n_threads=1))
                rows.append({"case": name, "solver": solver, "blocks": Xd.numblocks[0],
                             "passes": res.n_passes, "wall_s": t, "wall_q1_s": q1,
                             "wall_q3_s": q3, "converged": res.converged,
                             "rel_diff": float(np.max(np.abs(res.W - optimum.W)) / scale),
                             "in_memory_s": t_mem})
                r = rows[-1]
                print(f"{name:36} {solver:7} {r['blocks']:3d} blocks {r['passes']:5d} passes "
                      f"{t:8.2f} s [{q1:.2f}-{q3:.2f}]  converged {str(r['converged']):5}  "
                      f"coef rel diff {r['rel_diff']:.1e}  (in memory {t_mem * 1e3:.0f} ms)",
                      flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
