"""Throughput of ``fastlogit score`` on a large .npy against a plain NumPy loop.

Run by hand (2 GB of float64 input by default; the file is written once and
then read from a warm page cache, so this measures CPU + memory, not disk):

    python benchmarks/bench_score.py                 # 2 GB, 3 features, 3 repeats
    python benchmarks/bench_score.py --size-gb 0.5 --repeat 5
    FASTLOGIT_BENCH_SCORE_GB=8 python benchmarks/bench_score.py --dir /big/scratch

Three ways of doing the same job -- read X (m, n) from X.npy in blocks, write
the (m,) probabilities to A.npy -- are timed, each the median of ``--repeat``
runs:

* ``fastlogit score`` as a user runs it (a subprocess: includes interpreter
  start-up, model loading, the atomic rename);
* ``fastlogit.scoring.score_file`` in-process (the same streaming code, no start-up);
* the NumPy loop a user would write without fastlogit: ``np.load(mmap_mode="r")``,
  ``fastlogit.reference.forward_pass`` on each block (``1 / (1 + exp(-(X @ W + b)))``)
  and an ``open_memmap`` output, with the same block size.

Reported: seconds, rows/s and GB/s of input (file bytes / seconds).

Under pytest (``pytest benchmarks/bench_score.py``) the same comparison runs
with pytest-benchmark on a small file (``FASTLOGIT_BENCH_SCORE_GB``, default
0.05 GB there) so that it stays quick.
"""
from __future__ import annotations

import argparse
import os
import statistics
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
from fastlogit import reference
from fastlogit.scoring import DEFAULT_CHUNK_BYTES, score_file
from fastlogit.model_io import Model, save_model

ENV_SIZE = "FASTLOGIT_BENCH_SCORE_GB"
PACKAGE_PARENT = str(Path(fastlogit.__file__).resolve().parent.parent)


def make_input(folder: Path, size_gb: float, n_features: int, seed: int = 0) -> tuple[Path, Path, int]:
    """Write X.npy (float64, about ``size_gb`` GB) and model.json; returns (X, model, rows)."""
    m = max(1, int(size_gb * 1e9) // (8 * n_features))
    path = folder / "X.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(m, n_features))
    rng = np.random.default_rng(seed)
    block = 1 << 20
    for start in range(0, m, block):
        stop = min(start + block, m)
        X[start:stop] = rng.normal(size=(stop - start, n_features))
    X.flush()
    del X
    W = rng.normal(size=(n_features, 1)) / np.sqrt(n_features)
    model_path = folder / "model.json"
    save_model(Model([str(j) for j in range(n_features)], W, 0.25), model_path)
    return path, model_path, m


def numpy_loop(x_path: Path, out_path: Path, W: np.ndarray, b: float, chunk_rows: int) -> None:
    """The plain NumPy way: memory-mapped input, textbook forward pass per block."""
    X = np.load(x_path, mmap_mode="r")
    m = X.shape[0]
    A = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float64, shape=(m,))
    with np.errstate(over="ignore"):  # the textbook sigmoid overflows for z < -709
        for start in range(0, m, chunk_rows):
            A[start:start + chunk_rows] = reference.forward_pass(X[start:start + chunk_rows], W, b)[0]
    A.flush()
    del A, X


def cli_score(x_path: Path, model_path: Path, out_path: Path, chunk_rows: int,
              threads: int | None) -> None:
    args = [sys.executable, "-c", _MEASURE, "score", str(x_path), "--model", str(model_path),
            "-o", str(out_path), "--chunk-rows", str(chunk_rows), "--no-progress"]
    if threads is not None:
        args += ["--threads", str(threads)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p))
    result = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    if result.returncode != 0:
        raise RuntimeError(f"fastlogit score failed: {result.stderr}")
    PEAK_RSS.extend(int(line.split()[1]) * 1024 for line in result.stderr.splitlines()
                    if line.startswith("PEAK_KB"))


# `python -m fastlogit ...` plus a report of the process's own peak resident
# memory (VmHWM, Linux): the memory bound of streaming, shown.  (ru_maxrss of a
# child would include the parent's pages it had before exec.)
_MEASURE = (
    "import sys\n"
    "from fastlogit.cli import main\n"
    "status = main(sys.argv[1:])\n"
    "try:\n"
    "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    "    print('PEAK_KB', hwm.split()[1], file=sys.stderr)\n"
    "except OSError:\n"
    "    pass\n"
    "sys.exit(status)\n"
)
PEAK_RSS: list[int] = []


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(size_gb: float, n_features: int, chunk_rows: int | None, repeat: int,
        threads: int | None, folder: Path) -> list[tuple[str, float]]:
    x_path, model_path, m = make_input(folder, size_gb, n_features)
    from fastlogit.model_io import load_model

    model = load_model(model_path)
    if chunk_rows is None:
        chunk_rows = max(1024, DEFAULT_CHUNK_BYTES // (8 * n_features))
    nbytes = x_path.stat().st_size
    out = folder / "A.npy"
    # One untimed pass of each warms the page cache and the code paths.
    numpy_loop(x_path, out, model.W, model.b, chunk_rows)
    results = [
        ("fastlogit score (CLI, subprocess)",
         _median_time(lambda: cli_score(x_path, model_path, out, chunk_rows, threads), repeat)),
        ("fastlogit score_file (in-process)",
         _median_time(lambda: score_file(model, x_path, out, chunk_rows=chunk_rows,
                                         n_threads=threads, progress=False), repeat)),
        ("NumPy loop (mmap + reference)",
         _median_time(lambda: numpy_loop(x_path, out, model.W, model.b, chunk_rows), repeat)),
    ]
    check = np.load(out, mmap_mode="r")
    assert check.shape == (m,)
    print(f"input: {x_path} ({m:,} rows x {n_features} float64 = {nbytes / 1e9:.2f} GB), "
          f"blocks of {chunk_rows:,} rows, threads {threads or 'all'}, "
          f"median of {repeat}, warm page cache")
    print(f"{'':36} {'seconds':>8} {'M rows/s':>9} {'GB/s':>6} {'vs NumPy':>9}")
    t_numpy = results[-1][1]
    for name, t in results:
        print(f"{name:36} {t:8.2f} {m / t / 1e6:9.1f} {nbytes / t / 1e9:6.2f} {t_numpy / t:8.2f}x")
    if PEAK_RSS:
        print(f"peak resident memory of the CLI process: {max(PEAK_RSS) / 1e6:.0f} MB "
              f"for {nbytes / 1e9:.2f} GB of input")
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=float(os.environ.get(ENV_SIZE, 2.0)),
                        help=f"input size in GB (default 2, or ${ENV_SIZE})")
    parser.add_argument("--features", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, default=None,
                        help="rows per block (default: the CLI's, about 16 MB of input)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--dir", type=Path, default=None,
                        help="folder for the input and output files (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        run(args.size_gb, args.features, args.chunk_rows, args.repeat, args.threads, args.dir)
        return
    with tempfile.TemporaryDirectory(prefix="fastlogit-bench-score-") as folder:
        run(args.size_gb, args.features, args.chunk_rows, args.repeat, args.threads, Path(folder))


# ---------------------------------------------------------------------------
# pytest-benchmark entry points (small by default)
# ---------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - running as a script without pytest
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="module")
    def score_input(tmp_path_factory):
        folder = tmp_path_factory.mktemp("bench_score")
        size = float(os.environ.get(ENV_SIZE, 0.05))
        x_path, model_path, m = make_input(folder, size, 3)
        from fastlogit.model_io import load_model

        return folder, x_path, load_model(model_path), m

    @pytest.mark.benchmark(group="score-npy")
    def test_score_file(benchmark, score_input):
        folder, x_path, model, m = score_input
        out = folder / "A_fast.npy"
        benchmark(score_file, model, x_path, out, progress=False)
        np.testing.assert_array_equal(np.load(out), fastlogit.forward_pass(
            np.load(x_path), model.W, model.b)[0])

    @pytest.mark.benchmark(group="score-npy")
    def test_numpy_loop(benchmark, score_input):
        folder, x_path, model, m = score_input
        out = folder / "A_numpy.npy"
        chunk_rows = DEFAULT_CHUNK_BYTES // (8 * 3)
        benchmark(numpy_loop, x_path, out, model.W, model.b, chunk_rows)
        np.testing.assert_allclose(np.load(out), fastlogit.forward_pass(
            np.load(x_path), model.W, model.b)[0], rtol=1e-12)


if __name__ == "__main__":
    main()
