"""What counting the rows of CSV parts costs ``read_parts``.

    PYTHONPATH=. python benchmarks/bench_csv_parts_count.py [--parts 4] [--rows 100000] [--repeat 5]

Writes ``--parts`` parts of ``--rows`` x 10 N(0, 1) features and a 0/1 label,
once as CSV and once as Parquet, starts ``fastlogit.dask.local_cluster(2)``
and times, alternating: the ``read_parts(label="y")`` call (Parquet: footers
only; CSV: one counting task per part on the workers, which reads the part's
first feature column), the same counts in a thread pool of the client (the
alternative not taken: the client would read every part), and one pass over
X and Y (``(X.sum() + Y.sum()).compute()``).  Medians and [interquartile
range] of ``--repeat`` runs after one warm-up.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    import distributed
    import pyarrow as pa
    import pyarrow.csv as pc
    import pyarrow.parquet as pq

    import fastlogit.dask as fld
    from fastlogit.dask.part_folder import count_rows, list_parts

    with tempfile.TemporaryDirectory() as where:
        folders = {"csv": Path(where) / "csv", "parquet": Path(where) / "parquet"}
        for folder in folders.values():
            folder.mkdir()
        rng = np.random.default_rng(0)
        for k in range(args.parts):
            X = rng.normal(size=(args.rows, 10))
            y = (rng.random(args.rows) < 0.5).astype(float)
            table = pa.table({**{f"x{j}": X[:, j] for j in range(10)}, "y": y})
            pc.write_csv(table, folders["csv"] / f"p{k:03d}.csv")
            pq.write_table(table, folders["parquet"] / f"p{k:03d}.parquet")
        size = sum(p.stat().st_size for p in folders["csv"].iterdir()) / 1e6
        times = {name: [] for name in ("csv: read_parts (counts on the workers)",
                                       "csv: counts in the client's threads",
                                       "csv: one pass over X and Y",
                                       "parquet: read_parts (footers)",
                                       "parquet: one pass over X and Y")}
        with fld.local_cluster(2, silence_logs=logging.ERROR) as cluster, \
                distributed.Client(cluster):
            for rep in range(args.repeat + 1):
                got = []
                for fmt, folder in folders.items():
                    t0 = time.perf_counter()
                    parts = fld.read_parts(folder, label="y")
                    t1 = time.perf_counter()
                    (parts.X.sum() + parts.Y.sum()).compute()
                    t2 = time.perf_counter()
                    got += [t1 - t0, t2 - t1]
                    if fmt == "csv":
                        files, _ = list_parts(folder)
                        t3 = time.perf_counter()
                        with ThreadPoolExecutor(max_workers=min(32, len(files))) as pool:
                            counts = list(pool.map(count_rows, map(str, files),
                                                   ["x0"] * len(files)))
                        got.append(time.perf_counter() - t3)
                        assert counts == list(parts.rows)
                if rep:
                    for name, value in zip(times, [got[0], got[2], got[1], got[3], got[4]]):
                        times[name].append(value)
    print(f"{args.parts} parts of ({args.rows}, 10) + label ({size:.0f} MB of CSV); "
          f"local_cluster(2); median [IQR] of {args.repeat}")
    for name, values in times.items():
        med, lo, hi = np.percentile(values, [50, 25, 75])
        print(f"{name:42} {med:.3f} [{lo:.3f}-{hi:.3f}] s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
