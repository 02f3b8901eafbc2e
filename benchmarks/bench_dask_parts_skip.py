"""What ``read_parts(on_invalid="skip")`` costs: the read at call time and a pass.

    PYTHONPATH=. python benchmarks/bench_dask_parts_skip.py [--parts 8] [--rows 250000] [--repeat 5]

Writes ``--parts`` Parquet parts of ``--rows`` x 10 N(0, 1) features and a 0/1
label (100 NaN features per part) to a temporary folder, starts
``fastlogit.dask.local_cluster(2)`` and times, alternating the two modes:
the ``read_parts(label="y", on_invalid=...)`` call itself (headers only
without "skip"; with it, one read of every part to find the rows left out)
and one pass over X and Y (``(X.sum() + Y.sum()).compute()``).  Medians and
[interquartile range] of ``--repeat`` runs after one warm-up.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    import distributed
    import pyarrow as pa
    import pyarrow.parquet as pq

    import fastlogit.dask as fld

    with tempfile.TemporaryDirectory() as where:
        folder = Path(where)
        rng = np.random.default_rng(0)
        for k in range(args.parts):
            X = rng.normal(size=(args.rows, 10))
            X[rng.integers(0, args.rows, 100), 3] = np.nan
            y = (rng.random(args.rows) < 0.5).astype(float)
            pq.write_table(pa.table({**{f"x{j}": X[:, j] for j in range(10)}, "y": y}),
                           folder / f"p{k:03d}.parquet")
        times = {None: ([], []), "skip": ([], [])}
        with fld.local_cluster(2, silence_logs=logging.ERROR) as cluster, \
                distributed.Client(cluster):
            for rep in range(args.repeat + 1):
                for mode in (None, "skip"):
                    t0 = time.perf_counter()
                    parts = fld.read_parts(folder, label="y", on_invalid=mode)
                    t1 = time.perf_counter()
                    (parts.X.sum() + parts.Y.sum()).compute()
                    t2 = time.perf_counter()
                    if rep:
                        times[mode][0].append(t1 - t0)
                        times[mode][1].append(t2 - t1)
                    del parts
    print(f"{args.parts} parts of ({args.rows}, 10) + label; median [IQR] of {args.repeat}")
    for mode, (call, one_pass) in times.items():
        def q(v):
            med, lo, hi = np.percentile(v, [50, 25, 75])
            return f"{med:.3f} [{lo:.3f}-{hi:.3f}] s"
        print(f"on_invalid={mode!s:5}  read_parts {q(call)}   one pass over X and Y {q(one_pass)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
