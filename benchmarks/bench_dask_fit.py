"""Training on Dask: Newton against L-BFGS, passes over X and wall time.

    python benchmarks/bench_dask_fit.py [--workers 2] [--repeat 2] [--json PATH]

Starts a LocalCluster (N worker processes, one thread each, loopback only),
keeps X on the workers (persisted), and fits each case with
``fastlogit.dask.fit(solver=...)`` for Newton (the default up to 200
parameters) and L-BFGS (what the Dask fit used before).  For every fit it
prints the passes over X (rounds of tasks: ``FitResult.n_passes``), the wall
time (best of ``--repeat``), whether it converged and the largest coefficient
difference to the in-memory optimum (Newton at tol 1e-12), relative to the
largest coefficient.  The in-memory default fit is timed beside it.  Wall
times on a shared machine measure the other users too: compare within a row.
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


def best_of(repeat, fn):
    best, result = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    import dask.array as da
    import distributed

    import fastlogit
    import fastlogit.dask as fld

    warnings.simplefilter("ignore")           # not converging is a column of the table
    rows = []
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"{args.workers} worker process(es); best of {args.repeat}", flush=True)
    with fld.local_cluster(args.workers, silence_logs=40) as cluster, distributed.Client(cluster):
        for name, X, y, C, block in cases():
            l2 = 1.0 / (C * X.shape[0])
            optimum = fastlogit.fit(X, y, l2=l2, tol=1e-12, solver="newton", n_threads=1)
            scale = np.max(np.abs(optimum.W))
            t_mem, _ = best_of(args.repeat, lambda: fastlogit.fit(X, y, l2=l2, n_threads=1))
            Xd = da.from_array(X, chunks=(block, X.shape[1])).persist()
            yd = da.from_array(y, chunks=(block,)).persist()
            distributed.wait([Xd, yd])
            for solver in ("newton", "lbfgs"):
                t, res = best_of(args.repeat,
                                 lambda: fld.fit(Xd, yd, l2=l2, solver=solver, n_threads=1))
                rows.append({"case": name, "solver": solver, "blocks": Xd.numblocks[0],
                             "passes": res.n_passes, "wall_s": t, "converged": res.converged,
                             "rel_diff": float(np.max(np.abs(res.W - optimum.W)) / scale),
                             "in_memory_s": t_mem})
                r = rows[-1]
                print(f"{name:36} {solver:7} {r['blocks']:3d} blocks {r['passes']:5d} passes "
                      f"{t:8.2f} s  converged {str(r['converged']):5}  "
                      f"coef rel diff {r['rel_diff']:.1e}  (in memory {t_mem * 1e3:.0f} ms)",
                      flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
