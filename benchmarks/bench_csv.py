"""CSV scoring against pyarrow's own streaming read of the same file.

    python benchmarks/bench_csv.py                     # 2e6 rows x 10 floats (~400 MB)
    python benchmarks/bench_csv.py --rows 200000 --repeat 3

The target: ``fastlogit score X.csv`` costs at most 1.3x a plain
``pyarrow.csv.open_csv`` loop over the same file, with memory bounded by the
block size.  Each step is a fresh process (interpreter start-up included, as
a user runs it), steps interleaved, and the ratios are taken within one round:
on a shared machine only ratios from the same moment mean anything.
Reported: wall seconds and peak resident memory of each process.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    import fastlogit
except ImportError:  # run from a checkout with the in-place build: use it
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import fastlogit
# The children import the same fastlogit.
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    p for p in (str(Path(fastlogit.__file__).resolve().parent.parent),
                os.environ.get("PYTHONPATH")) if p))

CHILD = r"""
import resource, sys, time
t0 = time.perf_counter()
if sys.argv[1] == "pyarrow":
    import pyarrow.csv as pc
    rows = sum(batch.num_rows for batch in pc.open_csv(sys.argv[2]))
else:
    from fastlogit.cli import main
    if main(["score", sys.argv[2], "--model", sys.argv[3], "-o", sys.argv[4], "--no-progress"]):
        sys.exit(1)
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_csv(path: Path, rows: int, columns: int) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w") as fh:
        fh.write(",".join(f"f{j}" for j in range(columns)) + "\n")
        for start in range(0, rows, 100_000):
            np.savetxt(fh, rng.normal(size=(min(100_000, rows - start), columns)),
                       delimiter=",", fmt="%.17g")


def run(step: str, *args) -> tuple[float, float]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, step, *map(str, args)],
                         capture_output=True, text=True, check=True, env=ENV, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t0
    _, kb = out.stdout.split()[-2:]
    return wall, int(kb) / 1024


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--columns", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1, help="rounds (each reports its ratios)")
    args = parser.parse_args(argv)

    from fastlogit.model_io import Model, save_model

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv = folder / "X.csv"
        make_csv(csv, args.rows, args.columns)
        model = folder / "model.json"
        save_model(Model([f"f{j}" for j in range(args.columns)],
                         np.linspace(-1, 1, args.columns).reshape(-1, 1), 0.1), model)
        print(f"{csv.stat().st_size / 1e6:.0f} MB, {args.rows:,} rows x {args.columns} columns")
        for r in range(args.repeat):
            arrow = run("pyarrow", csv)
            npy = run("score", csv, model, folder / "A.npy")
            to_csv = run("score", csv, model, folder / "A.csv")
            print(f"round {r + 1}: pyarrow read {arrow[0]:.2f} s {arrow[1]:.0f} MB | "
                  f"score -> .npy {npy[0]:.2f} s {npy[1]:.0f} MB ({npy[0] / arrow[0]:.2f}x) | "
                  f"score -> .csv {to_csv[0]:.2f} s {to_csv[1]:.0f} MB "
                  f"({to_csv[0] / arrow[0]:.2f}x)")


if __name__ == "__main__":
    main()
