"""Scoring throughput of fastlogit.dask on a LocalCluster, against the in-memory call.

Two ways to run it (from the repository root):

    python benchmarks/bench_dask.py --rows 10000000 --features 10 --repeat 7
    python -m pytest benchmarks/bench_dask.py -p no:cacheprovider --benchmark-only

The script prints one table (medians: the machine may be shared) and, with
``--json PATH``, writes the figures.  X is generated on the workers and
persisted there, so the timings are of scoring, not of data loading:

* ``in-memory, T threads``: ``fastlogit.forward_pass(X, W, b, n_threads=T)``
  on a NumPy X in this process;
* ``dask, N workers (kept)``: ``fastlogit.dask.forward_pass(X, W, b).persist()``
  and wait: probabilities computed and left on the workers (what a scoring
  job that writes its output from the workers costs);
* ``dask, N workers (gathered)``: ``.compute()``: the probabilities also
  travel to the client and are concatenated (the cost of wanting them in one
  process).

The overhead ratio is dask time / in-memory time with the same number of
cores (N workers x 1 thread vs N threads).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

ROWS = int(os.environ.get("FASTLOGIT_BENCH_ROWS", 10_000_000))
FEATURES = 10
# 100 MB blocks of float64 at 10 features: Dask's per-task cost (a few ms of
# CPU) is then ~1/3 of the kernel's; at 20 MB blocks (--block-rows 250000) it
# is twice the kernel's (docs/scaling.md).
BLOCK_ROWS = 1_250_000


def _median_seconds(fn, repeat: int, cpu_clock=time.process_time) -> tuple[float, float, list[float]]:
    """(median wall seconds, median CPU seconds, all wall times) of ``fn(i)``.

    CPU seconds (of every process doing the work) are reported beside wall
    time because the machine may be shared: wall time then measures the
    other users too, CPU time much less so.
    """
    fn(-1)                                # warm-up: imports, first-touch, connections
    walls, cpus = [], []
    for i in range(repeat):
        cpu0 = cpu_clock()
        start = time.perf_counter()
        fn(i)
        walls.append(time.perf_counter() - start)
        cpus.append(cpu_clock() - cpu0)
    return statistics.median(walls), statistics.median(cpus), walls


def make_problem(rows: int, features: int, block_rows: int = BLOCK_ROWS):
    import dask.array as da

    X = da.random.default_rng(2026).standard_normal(size=(rows, features),
                                                    chunks=(block_rows, features))
    W = np.random.default_rng(1).normal(size=(features, 1)) / np.sqrt(features)
    return X, W, 0.1


def start_cluster(workers: int):
    import distributed

    import fastlogit.dask as fld

    cluster = fld.local_cluster(workers, silence_logs=40)
    return cluster, distributed.Client(cluster)


def time_dask(workers: int, rows: int, features: int, repeat: int,
              block_rows: int = BLOCK_ROWS) -> dict:
    import distributed

    import fastlogit.dask as fld

    cluster, client = start_cluster(workers)
    try:
        X, W, b = make_problem(rows, features, block_rows)
        X = X.persist()
        distributed.wait(X)

        # A different b per run gives new task keys: Dask must not find the
        # previous run's results still in memory.
        def kept(i):
            A = fld.forward_pass(X, W, b + i * 1e-9).persist()
            distributed.wait(A)
            del A

        def gathered(i):
            return fld.forward_pass(X, W, b + i * 1e-9 + 0.5).compute()

        def cpu_clock():
            # Workers plus this process (which runs the scheduler and the client).
            return sum(client.run(time.process_time).values()) + time.process_time()

        t_kept, cpu_kept, all_kept = _median_seconds(kept, repeat, cpu_clock)
        t_gathered, cpu_gathered, all_gathered = _median_seconds(gathered, repeat, cpu_clock)
        return {"workers": workers, "kept_s": t_kept, "gathered_s": t_gathered,
                "kept_cpu_s": cpu_kept, "gathered_cpu_s": cpu_gathered,
                "kept_all": all_kept, "gathered_all": all_gathered, "blocks": X.numblocks[0]}
    finally:
        client.close()
        cluster.close()


def _noop(i):
    return i


def time_task_overhead(workers: int = 2, tasks: int = 2000, repeat: int = 5) -> dict:
    """Wall and scheduler+client CPU seconds per trivial task (the fixed cost of a task)."""
    import distributed

    cluster, client = start_cluster(workers)
    try:
        def run(i):
            futures = client.map(_noop, range(tasks), key=[f"noop-{i}-{k}" for k in range(tasks)])
            distributed.wait(futures)
            del futures

        wall, cpu, _ = _median_seconds(run, repeat)      # CPU of this process: scheduler + client
        return {"workers": workers, "tasks": tasks, "wall_per_task_s": wall / tasks,
                "scheduler_cpu_per_task_s": cpu / tasks}
    finally:
        client.close()
        cluster.close()


def time_in_memory(rows: int, features: int, repeat: int, threads: int) -> dict:
    import fastlogit

    X, W, b = make_problem(rows, features)
    X = X.compute(scheduler="threads")
    out = np.empty((1, rows))
    t, cpu, all_t = _median_seconds(
        lambda i: fastlogit.forward_pass(X, W, b, out, n_threads=threads), repeat)
    return {"threads": threads, "seconds": t, "cpu_s": cpu, "all": all_t}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--features", type=int, default=FEATURES)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--block-rows", type=int, default=BLOCK_ROWS,
                        help=f"rows per Dask block (default {BLOCK_ROWS:,}: 100 MB at 10 features)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    rows, features = args.rows, args.features
    gb = rows * features * 8 / 1e9
    load = os.getloadavg()
    print(f"X: {rows:,} rows x {features} float64 features ({gb:.2f} GB), blocks of "
          f"{args.block_rows:,} rows; {os.cpu_count()} cores; load average {load[0]:.1f} at start; "
          f"median of {args.repeat} runs", flush=True)
    results = {"rows": rows, "features": features, "block_rows": args.block_rows,
               "load_start": load,
               "in_memory": [time_in_memory(rows, features, args.repeat, t) for t in (1, 2)],
               "dask": [time_dask(w, rows, features, args.repeat, args.block_rows) for w in (1, 2)],
               "task_overhead": time_task_overhead()}
    results["load_end"] = os.getloadavg()
    mem = {r["threads"]: r for r in results["in_memory"]}
    print(f"\n{'configuration':40} {'wall s':>7} {'Mrows/s':>8} {'wall ratio':>10} "
          f"{'CPU s':>7} {'CPU ratio':>9}")
    for threads, r in mem.items():
        print(f"{f'in-memory, {threads} thread(s)':40} {r['seconds']:7.3f} "
              f"{rows / r['seconds'] / 1e6:8.1f} {1:10.2f} {r['cpu_s']:7.3f} {1:9.2f}")
    for r in results["dask"]:
        w, ref = r["workers"], mem[r["workers"]]
        for label, key in (("kept on workers", "kept"), ("gathered to client", "gathered")):
            t, cpu = r[f"{key}_s"], r[f"{key}_cpu_s"]
            print(f"{f'dask, {w} worker(s), {label}':40} {t:7.3f} {rows / t / 1e6:8.1f} "
                  f"{t / ref['seconds']:10.2f} {cpu:7.3f} {cpu / ref['cpu_s']:9.2f}")
    o = results["task_overhead"]
    print(f"\nfixed cost of a task ({o['tasks']} no-op tasks, {o['workers']} workers): "
          f"{o['wall_per_task_s'] * 1e3:.2f} ms wall, {o['scheduler_cpu_per_task_s'] * 1e3:.2f} ms "
          "CPU of the scheduler + client process")
    print(f"load average at end {results['load_end'][0]:.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


# ---------------------------------------------------------------------------
# pytest-benchmark entry points (same measurements, smaller default size)
# ---------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the script needs no pytest
    pytest = None

if pytest is not None:
    PYTEST_ROWS = int(os.environ.get("FASTLOGIT_BENCH_ROWS", 2_000_000))

    @pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
    def persisted(request):
        pytest.importorskip("distributed")
        import distributed

        cluster, client = start_cluster(request.param)
        X, W, b = make_problem(PYTEST_ROWS, FEATURES, max(1, PYTEST_ROWS // 8))
        X = X.persist()
        distributed.wait(X)
        yield request.param, X, W, b
        client.close()
        cluster.close()

    @pytest.mark.benchmark(group="dask-score")
    def test_dask_score(benchmark, persisted):
        import distributed

        import fastlogit
        import fastlogit.dask as fld

        workers, X, W, b = persisted

        runs = iter(range(1000))

        def run():
            # New keys every round: a cached result would time nothing.
            A = fld.forward_pass(X, W, b + next(runs) * 1e-9).persist()
            distributed.wait(A)
            return A

        A = benchmark.pedantic(run, rounds=5, warmup_rounds=1)
        benchmark.extra_info["rows_per_s"] = PYTEST_ROWS / benchmark.stats.stats.median
        first = X.blocks[0].compute()
        b_last = b + (next(runs) - 1) * 1e-9
        assert np.array_equal(A.blocks[0, 0].compute(), fastlogit.forward_pass(first, W, b_last))

    @pytest.mark.benchmark(group="dask-score")
    @pytest.mark.parametrize("threads", [1, 2])
    def test_in_memory_score(benchmark, threads):
        import fastlogit

        X, W, b = make_problem(PYTEST_ROWS, FEATURES)
        X = X.compute(scheduler="threads")
        out = np.empty((1, PYTEST_ROWS))
        benchmark.pedantic(fastlogit.forward_pass, args=(X, W, b, out),
                           kwargs={"n_threads": threads}, rounds=5, warmup_rounds=1)
        benchmark.extra_info["rows_per_s"] = PYTEST_ROWS / benchmark.stats.stats.median
        assert np.all((out >= 0) & (out <= 1))


if __name__ == "__main__":
    sys.exit(main())
