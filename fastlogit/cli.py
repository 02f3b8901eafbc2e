"""The ``fastlogit`` command line: demo, train, score, bench and show-config.

Every command reports a bad input (missing or damaged file, wrong columns,
non-numeric or non-finite values, empty input, missing output folder) as one
line on stderr and a non-zero exit status; ``--debug`` adds the traceback.
Outputs are written to a temporary file next to the target and renamed into
place only when complete, so a failure or Ctrl-C leaves nothing behind.

Exit status: 0 success, 1 error, 2 usage error, 130 interrupted.
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from fastlogit._objective import l2_from_C

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

# Default block size of `score`: about this many bytes of input per block.
# Big enough that per-block costs (a memory map, a kernel launch, a write
# call) vanish, small enough to keep peak memory at a few tens of MB.
DEFAULT_CHUNK_BYTES = 16 << 20

# The textbook's glucose model (the tutorial's worked example).
TEXTBOOK_W = 0.042
TEXTBOOK_B = -5.66
TEXTBOOK_GLUCOSE = (105.0, 135.0, 170.0)


class CLIError(Exception):
    """A problem the user can fix, reported as one line without a traceback."""


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def _best_time(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best of ``repeat`` wall-clock times of ``fn()`` in seconds (the least
    disturbed run on a shared machine)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _optional_api(name: str):
    """``fastlogit.<name>`` or, while it is not exported yet, ``fastlogit._train.<name>``;
    None when neither exists."""
    import fastlogit

    obj = getattr(fastlogit, name, None)
    if obj is None:
        try:
            from fastlogit import _train
        except ImportError:
            return None
        obj = getattr(_train, name, None)
    return obj


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int | None, enabled: bool, desc: str):
    """A tqdm bar on stderr when it is a terminal (and tqdm is installed), else a no-op."""
    if not enabled or not sys.stderr.isatty():
        return _NoProgress()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoProgress()
    return tqdm(total=total, unit=" rows", unit_scale=True, desc=desc, file=sys.stderr,
                leave=False, dynamic_ncols=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {value}")
    return value


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("expected a positive thread count, or -1 for all cores; got 0")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1]; got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1]; got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}") from None
    if not value > 0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"expected a positive number (or inf); got {text}")
    return value


def _select_columns(reader, names: Sequence[str], what: str) -> list[int]:
    """Indices of ``names`` among the reader's columns, or a CLIError naming what is missing."""
    index = {name: j for j, name in enumerate(reader.columns)}
    missing = [name for name in names if name not in index]
    if missing:
        listed = ", ".join(reader.columns[:20]) + (", ..." if len(reader.columns) > 20 else "")
        kind = "column" if len(missing) == 1 else "columns"
        raise CLIError(f"{reader.label} has no {kind} "
                       f"{', '.join(repr(m) for m in missing)} (its columns: {listed})")
    return [index[name] for name in names]


def _model_columns(model, reader) -> list[int]:
    """Which input columns feed the model's features, in the model's order.

    Named inputs (CSV header, Parquet, structured .npy, .npz of columns) are
    matched by name.  Unnamed inputs are taken by position and must have
    exactly one column per feature, unless the model itself was trained on
    unnamed columns ("0", "1", ...), which are then picked by index.
    """
    n = model.n_features
    positional_model = all(f.isdigit() for f in model.features)
    if reader.named:
        if not positional_model or any(f in reader.columns for f in model.features):
            return _select_columns(reader, model.features, "INPUT")
    elif positional_model and len(reader.columns) != n:
        if all(int(f) < len(reader.columns) for f in model.features):
            return [int(f) for f in model.features]
    if len(reader.columns) != n:
        raise CLIError(
            f"{reader.label} has {len(reader.columns)} column(s) but the model expects "
            f"{n} feature(s) ({', '.join(model.features)})")
    return list(range(n))


def _first_invalid(X: np.ndarray) -> tuple[int, int]:
    bad = ~np.isfinite(X)
    i = int(np.argmax(bad.any(axis=1)))
    return i, int(np.argmax(bad[i]))


def _invalid_rows(X: np.ndarray) -> np.ndarray | None:
    """Boolean mask of rows holding NaN or +-inf, or None if there are none.

    One sum over the block screens it (a NaN or inf anywhere makes the sum
    non-finite); the exact row test runs only when the screen trips.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(X.sum()):
            return None
    bad = ~np.isfinite(X).all(axis=1)
    return bad if bad.any() else None


# ---------------------------------------------------------------------------
# score
# ---------------------------------------------------------------------------

@dataclass
class ScoreStats:
    rows_in: int
    rows_out: int
    invalid: int
    seconds: float
    input_bytes: int


def score_file(model, input_path, output_path, *, threshold: float | None = None,
               chunk_rows: int | None = None, n_threads: int | None = None,
               on_invalid: str = "error", progress: bool = True) -> ScoreStats:
    """Stream ``input_path`` through ``model`` into ``output_path``.

    Parameters
    ----------
    model : fastlogit.model_io.Model
    input_path, output_path : str or Path
        Formats by suffix (see :mod:`fastlogit._io`).
    threshold : float, optional
        Also write labels ``probability >= threshold`` (int8 0/1; -1 for an
        invalid row kept with ``on_invalid="nan"``).
    chunk_rows : int, optional
        Rows per block; default about 16 MB of input per block.
    n_threads : int, optional
        Threads of the compiled kernel.
    on_invalid : {"error", "skip", "nan"}
        What to do with a row holding NaN or inf: stop with the row number
        (nothing is written), leave the row out, or give it probability NaN.
    progress : bool
        Show a progress bar if stderr is a terminal and tqdm is installed.

    Returns
    -------
    ScoreStats

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from fastlogit.model_io import Model
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "X.npy"), np.array([[105.0], [170.0]]))
    >>> stats = score_file(Model(["0"], np.array([[0.042]]), -5.66),
    ...                    os.path.join(folder, "X.npy"), os.path.join(folder, "A.npy"))
    >>> np.load(os.path.join(folder, "A.npy")).round(3)
    array([0.223, 0.815])
    """
    import fastlogit
    from fastlogit._io import atomic_output, check_output_path, open_table, open_writer

    if on_invalid not in ("error", "skip", "nan"):
        raise ValueError(f"on_invalid must be 'error', 'skip' or 'nan'; got {on_invalid!r}")
    output_path = check_output_path(output_path, "OUTPUT")
    input_path = Path(input_path)
    if output_path.exists() and input_path.exists() and os.path.samefile(input_path, output_path):
        raise CLIError(f"OUTPUT {str(output_path)!r} is the INPUT file; choose another name")
    # --scheduler (Dask) will branch off here: same reader/columns, distributed blocks.
    t0 = time.perf_counter()
    with open_table(input_path, "INPUT") as reader:
        columns = _model_columns(model, reader)
        # Messages name the model's feature (for unnamed inputs the column
        # itself is only a position).
        names = list(model.features)
        dtype = np.dtype(model.dtype)
        W = model.W.astype(dtype)
        if chunk_rows is None:
            chunk_rows = max(1024, DEFAULT_CHUNK_BYTES // (8 * max(len(reader.columns), 1)))
        rows_in = rows_out = invalid = 0
        bar = _progress(reader.n_rows, progress, "scoring")
        try:
            with atomic_output(output_path) as tmp:
                writer = open_writer(output_path, tmp, dtype, threshold is not None)
                try:
                    for X in reader.chunks(chunk_rows, columns):
                        k = X.shape[0]
                        X_read = X
                        if X.dtype != dtype:
                            # float64 values beyond float32's range become inf
                            # and are then reported as invalid rows.
                            with np.errstate(over="ignore"):
                                X = X.astype(dtype)
                        bad = _invalid_rows(X)
                        if bad is not None:
                            if on_invalid == "error":
                                i, j = _first_invalid(X)
                                value = float(X_read[i, j])
                                problem = (f"{value!r} is not a finite number" if not math.isfinite(value)
                                           else f"{value!r} is outside the range of {dtype} "
                                                f"(the model's dtype)")
                                raise CLIError(
                                    f"{reader.label} {reader.row_label(rows_in + i)}, "
                                    f"column {names[j]!r}: {problem} "
                                    f"(--on-invalid skip or nan to continue past such rows)")
                            invalid += int(bad.sum())
                            if on_invalid == "skip":
                                X = X[~bad]
                        A = fastlogit.forward_pass(X, W, model.b, n_threads=n_threads)[0]
                        if bad is not None and on_invalid == "nan":
                            A[bad] = np.nan
                        labels = None
                        if threshold is not None:
                            labels = (A >= threshold).astype(np.int8)
                            if bad is not None and on_invalid == "nan":
                                labels[bad] = -1
                        writer.write(A, labels)
                        rows_in += k
                        rows_out += A.shape[0]
                        bar.update(k)
                    if rows_in == 0:
                        raise CLIError(f"{reader.label} has no rows to score")
                    writer.finish()
                except BaseException:
                    writer.abort()
                    raise
        finally:
            bar.close()
        nbytes = reader.nbytes
    return ScoreStats(rows_in, rows_out, invalid, time.perf_counter() - t0, nbytes)


def cmd_score(args) -> int:
    from fastlogit.model_io import load_model

    model = load_model(args.model)
    if args.scheduler:
        from fastlogit.dask import score_parts

        if args.on_invalid != "error":
            raise CLIError("--on-invalid skip/nan is not supported with --scheduler")
        s = score_parts(model, args.input, args.output, scheduler=args.scheduler,
                        threshold=args.threshold, n_threads=args.threads)
        print(f"scored {s['rows']:,} rows in {s['parts']} parts on {s['workers']} worker(s) in "
              f"{s['seconds']:.2f} s -> {args.output}", file=sys.stderr)
        return EXIT_OK
    stats = score_file(model, args.input, args.output, threshold=args.threshold,
                       chunk_rows=args.chunk_rows, n_threads=args.threads,
                       on_invalid=args.on_invalid, progress=not args.no_progress)
    rate = stats.rows_in / stats.seconds if stats.seconds > 0 else math.inf
    extra = ""
    if stats.invalid:
        verb = "skipped" if args.on_invalid == "skip" else "set to NaN"
        extra = f"; {stats.invalid:,} invalid row(s) {verb}"
    mb_rate = stats.input_bytes / stats.seconds / 1e6 if stats.seconds > 0 else math.inf
    print(f"scored {stats.rows_in:,} rows in {stats.seconds:.2f} s ({rate:,.0f} rows/s, "
          f"{mb_rate:.3g} MB/s of input) -> {args.output}{extra}", file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------

def _read_all(reader, columns: list[int], chunk_rows: int = 1 << 16) -> np.ndarray:
    blocks = [np.array(block, dtype=np.float64) for block in reader.chunks(chunk_rows, columns)]
    if not blocks:
        return np.empty((0, len(columns)))
    return np.concatenate(blocks, axis=0)


def cmd_train(args) -> int:
    import warnings

    import fastlogit
    from fastlogit._io import check_output_path, open_table
    from fastlogit.model_io import Model, save_model

    output = check_output_path(args.output, "model file (-o)", suffixes=(".json",))
    if args.scheduler:
        from fastlogit.dask import fit_parts

        if args.on_invalid != "error":
            raise CLIError("--on-invalid skip is not supported with --scheduler")
        result, features, rows = fit_parts(
            args.data, args.target, columns=args.features, scheduler=args.scheduler, C=args.C,
            tol=args.tol, max_iter=args.max_iter, n_threads=args.threads)
        save_model(Model(features=features, W=result.W, b=result.b, dtype="float64",
                         training={"rows": rows, "target": args.target,
                                   "data": os.path.basename(str(args.data)),
                                   "objective": result.cost, "converged": result.converged,
                                   "n_iter": result.n_iter, "solver": "lbfgs",
                                   "scheduler": args.scheduler,
                                   "C": None if math.isinf(args.C) else float(args.C)}), output)
        print(f"trained on {rows:,} rows of {args.data} on Dask ({args.scheduler}); "
              f"converged: {result.converged} after {result.n_iter} iteration(s)\n"
              f"model written to {output}")
        return EXIT_OK
    with open_table(args.data, "DATA") as reader:
        target_col = _select_columns(reader, [args.target], "DATA")[0]
        if args.features:
            if args.target in args.features:
                raise CLIError(f"--target {args.target!r} is also listed in --features")
            if len(set(args.features)) != len(args.features):
                raise CLIError("--features lists a column twice")
            feature_names = list(args.features)
        else:
            feature_names = [c for c in reader.columns if c != args.target]
            if not feature_names:
                raise CLIError(f"{reader.label} has no column besides the target "
                               f"{args.target!r} to train on")
        feature_cols = _select_columns(reader, feature_names, "DATA")
        table = _read_all(reader, feature_cols + [target_col])
        row_label = reader.row_label
        label = reader.label
    if table.shape[0] == 0:
        raise CLIError(f"{label} has no rows to train on")

    bad = _invalid_rows(table)
    dropped = 0
    kept = np.arange(table.shape[0])  # file row of each kept row, for messages
    if bad is not None:
        if args.on_invalid == "error":
            i, j = _first_invalid(table)
            name = (feature_names + [args.target])[j]
            raise CLIError(f"{label} {row_label(i)}, column {name!r}: {float(table[i, j])!r} "
                           f"is not a finite number (--on-invalid skip to leave such rows out)")
        dropped = int(bad.sum())
        table = table[~bad]
        kept = kept[~bad]
        if table.shape[0] == 0:
            raise CLIError(f"{label}: every row holds NaN or inf; nothing to train on")
    X = np.ascontiguousarray(table[:, :-1])
    y = table[:, -1]
    outside = (y < 0) | (y > 1)
    if outside.any():
        i = int(np.argmax(outside))
        where = row_label(int(kept[i]))
        raise CLIError(f"{label} {where}, target {args.target!r}: {float(y[i])!r}; expected 0/1 labels "
                       f"(or probabilities in [0, 1])")
    if np.all(y == y[0]) and y[0] in (0.0, 1.0):
        raise CLIError(f"{label}: target {args.target!r} is {y[0]:g} in every row; "
                       f"training needs both classes")

    fit = _optional_api("fit")
    if fit is None:
        raise CLIError("this fastlogit has no fastlogit.fit (the trainer); upgrade fastlogit")
    m = X.shape[0]
    l2 = l2_from_C(args.C, m)
    with warnings.catch_warnings():
        # Not converging is reported in the summary and the model file instead.
        warnings.simplefilter("ignore")
        try:
            result = fit(X, y.reshape(1, m), l2=l2, tol=args.tol, max_iter=args.max_iter,
                         n_threads=args.threads)
        except ImportError as exc:  # L-BFGS needs scipy
            raise CLIError(f"training this model needs {exc.name or 'scipy'}: "
                           f"pip install 'fastlogit[sklearn]'") from None
    W = np.asarray(result.W, dtype=np.float64).reshape(-1, 1)
    b = float(result.b)
    Z = (X @ W)[:, 0] + b
    cross_entropy = fastlogit.cost_from_logits(Z, y)
    accuracy = float(np.mean((Z >= 0) == (y >= 0.5)))
    model = Model(
        features=feature_names, W=W, b=b, dtype="float64",
        training={
            "rows": int(m),
            "rows_skipped": dropped,
            "target": args.target,
            "data": os.path.basename(str(args.data)),
            "cost": float(cross_entropy),
            "objective": float(result.cost),
            "accuracy": accuracy,
            "converged": bool(result.converged),
            "n_iter": int(result.n_iter),
            "solver": getattr(result, "solver", "") or "",
            "C": None if math.isinf(args.C) else float(args.C),
            "l2": l2,
            "tol": args.tol,
            "fastlogit_version": fastlogit.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })
    save_model(model, output)

    print(f"trained on {m:,} rows of {args.data} (target {args.target!r}"
          + (f", {dropped:,} invalid row(s) skipped" if dropped else "") + ")")
    width = max(len(f) for f in feature_names)
    for name, w in zip(feature_names, W[:, 0]):
        print(f"  W[{name}]{' ' * (width - len(name))} = {w: .6g}")
    print(f"  b{' ' * (width + 2)} = {b: .6g}")
    if len(feature_names) == 1:
        print(f"  decision boundary: {feature_names[0]} = {-b / W[0, 0]:.4g}")
    print(f"  cost (mean cross-entropy) {cross_entropy:.4f}, accuracy {accuracy:.1%} on the training rows")
    print(f"  {'converged' if result.converged else 'NOT converged'} after {result.n_iter} "
          f"iteration(s), C = {args.C:g}")
    print(f"model written to {output}")
    if not result.converged:
        print(f"fastlogit train: warning: the optimiser did not converge in {result.n_iter} "
              f"iteration(s); try a larger --max-iter or a smaller -C", file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------

def load_diabetes() -> tuple[np.ndarray, list[str]]:
    """The built-in diabetes data set: ((400, 4) float64 array, column names).

    Columns: glucose (mg/dL), bmi (kg/m^2), age (years), diabetic (0/1).
    Synthetic and seeded: see ``scripts/make_diabetes_data.py``.

    Examples
    --------
    >>> data, names = load_diabetes()
    >>> names, data.shape
    (['glucose', 'bmi', 'age', 'diabetic'], (400, 4))
    """
    from importlib import resources

    text = resources.files("fastlogit").joinpath("data/diabetes.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    names = lines[0].split(",")
    return np.loadtxt(lines[1:], delimiter=",", ndmin=2), names


def _gd_fallback(X, Y, W=None, b=0.0, *, learning_rate=0.01, num_iterations=1000, l2=0.0,
                 sample_weight=None, callback=None):
    """The textbook loop on the fused kernel, for builds without fastlogit.gradient_descent."""
    import fastlogit

    W = np.zeros((X.shape[1], 1)) if W is None else np.array(W, dtype=np.float64).reshape(-1, 1)
    costs = []
    for i in range(num_iterations):
        J, dW, db = fastlogit.cost_and_gradients(X, W, b, Y, sample_weight=sample_weight, l2=l2)
        W = W - learning_rate * dW
        b = b - learning_rate * db
        costs.append(J)
    return W, b, costs


def fit_standardised(X: np.ndarray, y: np.ndarray, *, learning_rate: float = 1.0,
                     num_iterations: int = 3000):
    """Gradient descent on standardised features; W, b returned in the original units.

    With every feature scaled to mean 0 and SD 1 one learning rate suits all
    of them, so plain gradient descent converges in a few thousand cheap
    iterations; ``z = sum_j w_j (x_j - mu_j) / sd_j + c`` is then rewritten as
    ``W = w / sd`` and ``b = c - sum_j w_j mu_j / sd_j``.

    Returns
    -------
    W : ndarray (n, 1); b : float; costs : list of float; grad_max : float
    """
    import fastlogit

    mu = X.mean(axis=0)
    sd = X.std(axis=0)
    Xs = (X - mu) / sd
    Y = y.reshape(1, -1)
    descend = _optional_api("gradient_descent") or _gd_fallback
    Ws, bs, costs = descend(Xs, Y, learning_rate=learning_rate, num_iterations=num_iterations)
    _, dW, db = fastlogit.cost_and_gradients(Xs, Ws, bs, Y)
    grad_max = float(max(np.max(np.abs(dW)), abs(db)))
    W = Ws / sd.reshape(-1, 1)
    b = float(bs - np.sum(Ws[:, 0] * mu / sd))
    return W, b, costs, grad_max


def generate_patients(m: int, seed: int = 0) -> np.ndarray:
    """(m, 3) float64 batch of glucose, BMI, age, distributed like the built-in data."""
    rng = np.random.default_rng(seed)
    age = 21.0 + rng.gamma(2.0, 9.5, size=m)
    bmi = rng.normal(31.0 + 0.05 * (age - 40.0), 6.5)
    glucose = rng.normal(112.0 + 0.35 * (age - 40.0) + 0.6 * (bmi - 31.0), 28.0)
    return np.column_stack([glucose, bmi, age])


def _check_plot_target(path: str) -> Path:
    from fastlogit._io import check_output_path

    target = check_output_path(path, "--plot file", suffixes=(".png",))
    try:  # checked before the demo runs, not after
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIError("--plot needs matplotlib: pip install 'fastlogit[cli]'") from None
    return target


def _plot(path: Path, glucose, diabetic, W1: float, b1: float) -> None:
    from fastlogit._io import atomic_output

    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    import fastlogit

    g = np.linspace(50.0, 210.0, 400)
    fitted = fastlogit.sigmoid(W1 * g + b1)
    textbook = fastlogit.sigmoid(TEXTBOOK_W * g + TEXTBOOK_B)
    jitter = np.random.default_rng(1).uniform(-0.03, 0.03, size=diabetic.shape)
    fig, ax = plt.subplots(figsize=(7.5, 5.2), dpi=120)
    for label, colour, name in ((1, "C3", "diabetic patients"), (0, "C0", "not diabetic")):
        rows = diabetic == label
        ax.scatter(glucose[rows], diabetic[rows] + jitter[rows], s=12, alpha=0.45, color=colour,
                   label=f"{name} (y = {label}, jittered)")
    ax.plot(g, fitted, "k-", lw=2, label=f"fitted: sigmoid({W1:.4f} g {b1:+.2f})")
    ax.plot(g, textbook, "--", color="0.5", lw=1.5,
            label=f"textbook: sigmoid({TEXTBOOK_W} g {TEXTBOOK_B:+.2f})")
    boundary = -b1 / W1
    ax.axvline(boundary, color="C2", lw=1.5, label=f"fitted boundary {boundary:.1f} mg/dL")
    ax.axhline(0.5, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel("glucose (mg/dL)")
    ax.set_ylabel("P(diabetic)")
    ax.set_xlim(g[0], g[-1])
    ax.set_ylim(-0.08, 1.08)
    ax.set_title("fastlogit demo: logistic regression on glucose (built-in data set)")
    # Below the axes: inside, it would hide the patients at P = 0 or 1.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def cmd_demo(args) -> int:
    import fastlogit
    from fastlogit import reference

    plot_path = _check_plot_target(args.plot) if args.plot else None

    # 1. The textbook's worked example, through both modules.
    W = np.array([[TEXTBOOK_W]])
    b = TEXTBOOK_B
    print(f"fastlogit demo: the textbook glucose model, W = {TEXTBOOK_W}, b = {TEXTBOOK_B}")
    print(f"decision boundary: glucose = -b / W = {-b / W[0, 0]:.1f} mg/dL")
    glucose = np.array(TEXTBOOK_GLUCOSE).reshape(-1, 1)
    A_ref = reference.forward_pass(glucose, W, b)
    A_fast = fastlogit.forward_pass(glucose, W, b)
    print(f"{'glucose (mg/dL)':>16} {'z':>8} {'P(diabetic) reference':>22} {'fastlogit':>10}")
    for g, a_ref, a_fast in zip(glucose[:, 0], A_ref[0], A_fast[0]):
        print(f"{g:16.0f} {W[0, 0] * g + b:8.2f} {a_ref:22.4f} {a_fast:10.4f}")

    # 2. Learn the model from the built-in data instead.
    data, names = load_diabetes()
    X3, y = data[:, :3], data[:, 3]
    m = len(y)
    print(f"\ntraining on the built-in data set: {m} patients ({int(y.sum())} diabetic), "
          f"columns {', '.join(names)}")
    print("(gradient descent on standardised features; W and b reported in the original units)")
    W1, b1, costs1, grad1 = fit_standardised(X3[:, :1], y)
    w1 = float(W1[0, 0])
    print(f"\none feature, glucose: {len(costs1)} iterations, cost {costs1[-1]:.4f}, "
          f"max |gradient| {grad1:.1e}")
    print(f"  learned W = {w1:.4f} per mg/dL, b = {b1:.2f}   (textbook: {TEXTBOOK_W}, {TEXTBOOK_B})")
    print(f"  decision boundary: glucose = -b / W = {-b1 / w1:.1f} mg/dL   (textbook: "
          f"{-TEXTBOOK_B / TEXTBOOK_W:.1f})")
    A1 = fastlogit.forward_pass(glucose, W1, b1)
    print(f"{'glucose (mg/dL)':>18} {'P(diabetic) learned':>20} {'textbook':>9}")
    for g, a, a_tb in zip(glucose[:, 0], A1[0], A_fast[0]):
        print(f"{g:18.0f} {a:20.4f} {a_tb:9.4f}")

    W3, b3, costs3, grad3 = fit_standardised(X3, y)
    A3 = fastlogit.forward_pass(X3, W3, b3)
    accuracy = float(np.mean((A3[0] >= 0.5) == (y == 1)))
    baseline = max(y.mean(), 1 - y.mean())
    cost3 = fastlogit.compute_cost(A3, y.reshape(1, -1))
    print(f"\nthree features, glucose + BMI + age: {len(costs3)} iterations, "
          f"max |gradient| {grad3:.1e}")
    print(f"  W = [{W3[0, 0]:.4f} per mg/dL, {W3[1, 0]:.4f} per kg/m^2, {W3[2, 0]:.4f} per year], "
          f"b = {b3:.2f}")
    print(f"  accuracy {accuracy:.1%} on the {m} training patients (always 'not diabetic': "
          f"{baseline:.1%}), cost {cost3:.4f} (glucose alone: {costs1[-1]:.4f})")
    patients = np.array([[105.0, 24.0, 30.0], [135.0, 31.0, 45.0], [170.0, 38.0, 60.0]])
    for p, a in zip(patients, fastlogit.forward_pass(patients, W3, b3)[0]):
        print(f"  glucose {p[0]:.0f} mg/dL, BMI {p[1]:.0f}, age {p[2]:.0f}: P(diabetic) = {a:.3f}")

    # 3. Batch scoring: a generated (10^6, 3) batch through both modules.
    n_rows = args.rows
    X = generate_patients(n_rows)
    t_ref = _best_time(lambda: reference.forward_pass(X, W3, b3))
    t_fast = _best_time(lambda: fastlogit.forward_pass(X, W3, b3))
    A_ref = reference.forward_pass(X, W3, b3)
    A_fast = fastlogit.forward_pass(X, W3, b3)
    same = np.allclose(A_ref, A_fast, rtol=1e-12, atol=0)
    print(f"\nscoring a generated batch of {n_rows:,} patients, X of shape {X.shape}, "
          f"forward_pass with the 3-feature model (best of 5):")
    print(f"  NumPy reference {t_ref * 1e3:8.2f} ms  {n_rows / t_ref / 1e6:7.1f} M rows/s")
    print(f"  fastlogit       {t_fast * 1e3:8.2f} ms  {n_rows / t_fast / 1e6:7.1f} M rows/s   "
          f"speed-up {t_ref / t_fast:4.1f}x   same answers (rtol 1e-12): {same}")
    print(f"  {np.mean(A_fast >= 0.5):.1%} of the generated patients are predicted diabetic")

    if plot_path is not None:
        _plot(plot_path, X3[:, 0], y, w1, b1)
        print(f"\nplot written to {plot_path}")
    return EXIT_OK


# ---------------------------------------------------------------------------
# show-config (bench lives in fastlogit/_bench.py)
# ---------------------------------------------------------------------------

def cmd_show_config(args) -> int:
    import fastlogit

    fastlogit.show_config()
    return EXIT_OK


# ---------------------------------------------------------------------------
# Parser and entry point
# ---------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fastlogit`` command."""
    parser = argparse.ArgumentParser(
        prog="fastlogit",
        description="Fast, numerically stable logistic regression: demo, train, batch scoring.",
        epilog="Exit status: 0 success, 1 error, 2 usage error, 130 interrupted.")
    # --debug is accepted before or after the command; SUPPRESS keeps the
    # subcommand's default from overwriting a value given before it.
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", parents=[common],
                          help="the textbook glucose example, training on built-in data, batch scoring",
                          description="Walk the textbook glucose model through both modules, fit "
                                      "models to the built-in diabetes data set and time batch "
                                      "scoring against the NumPy reference.")
    demo.add_argument("--plot", metavar="FILE.png", help="also draw the data, the fitted sigmoid "
                      "and the boundary (needs matplotlib: pip install 'fastlogit[cli]')")
    demo.add_argument("--rows", type=_positive_int, default=1_000_000,
                      help="rows of the generated batch to score (default: 1000000)")
    demo.set_defaults(func=cmd_demo)

    train = sub.add_parser("train", parents=[common], help="fit a model to a table, write model.json",
                           description="Fit a logistic-regression model to DATA and write it as JSON.")
    train.add_argument("data", metavar="DATA", help="training table: .csv, .tsv, .parquet, .npy or .npz")
    train.add_argument("--target", required=True, metavar="COLUMN",
                       help="column of 0/1 labels (for tables without names: its index, e.g. 3)")
    train.add_argument("--features", nargs="+", metavar="COLUMN",
                       help="feature columns (default: every column except the target)")
    train.add_argument("-C", type=_positive_float, default=1.0,
                       help="inverse L2 strength as in scikit-learn (default 1.0; 'inf' for none)")
    train.add_argument("--max-iter", type=_positive_int, default=1000)
    train.add_argument("--tol", type=_positive_float, default=1e-8,
                       help="stop when the largest gradient component is below this (default 1e-8)")
    train.add_argument("--threads", type=_threads, default=None, help="threads (default: all cores)")
    train.add_argument("--on-invalid", choices=("error", "skip"), default="error",
                       help="a row with NaN/inf: stop with its row number (default) or leave it out")
    train.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="train on Dask: 'local:N' (N local worker processes) or a dask "
                            "scheduler address; DATA is then a folder of .parquet or .npy parts")
    train.add_argument("-o", "--output", required=True, metavar="MODEL.json")
    train.set_defaults(func=cmd_train)

    score = sub.add_parser("score", parents=[common],
                           help="stream a table through a model, write probabilities",
                           description="Score INPUT with a model in blocks of rows (memory bounded by "
                                       "the block size) and write probabilities to OUTPUT "
                                       "(.npy, .csv or .parquet), atomically.")
    score.add_argument("input", metavar="INPUT", help=".npy, .npz, .csv, .tsv or .parquet")
    score.add_argument("--model", required=True, metavar="MODEL.json",
                       help="a model file written by `fastlogit train`")
    score.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                       help="probabilities (column 'probability', and 'label' with --threshold): "
                            ".npy, .csv or .parquet; written atomically")
    score.add_argument("--threshold", type=_probability, default=None, metavar="T",
                       help="also write 0/1 labels (probability >= T)")
    score.add_argument("--chunk-rows", type=_positive_int, default=None, metavar="N",
                       help="rows per block (default: about 16 MB of input)")
    score.add_argument("--threads", type=_threads, default=None, metavar="N",
                       help="threads (default: all cores)")
    score.add_argument("--on-invalid", choices=("error", "skip", "nan"), default="error",
                       help="a row with NaN/inf: stop with its row number (default), leave it "
                            "out, or give it probability NaN (label -1)")
    score.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="score on Dask: 'local:N' or a scheduler address; INPUT is then a "
                            "folder of .parquet or .npy parts and OUTPUT a folder (one output "
                            "part per input part)")
    score.add_argument("--no-progress", action="store_true",
                       help="no progress bar (there is none anyway when stderr is not a terminal)")
    score.set_defaults(func=cmd_score)

    # No `common` parent: fastlogit._bench defines its own options (its peers
    # are imported only when it runs).
    from fastlogit import _bench

    bench = sub.add_parser("bench", help="benchmark the kernels against NumPy and peers")
    _bench.add_arguments(bench)
    bench.set_defaults(func=_bench.run)

    config = sub.add_parser("show-config", parents=[common],
                            help="print how the compiled module was built")
    config.set_defaults(func=cmd_show_config)
    return parser


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fastlogit`` console script; returns the exit status."""
    from fastlogit._io import InputError, OutputError
    from fastlogit.model_io import ModelFileError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM takes the same clean-up path as Ctrl-C (temporary files removed).
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _raise_interrupt)
    prefix = f"fastlogit {args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print(f"{prefix}: interrupted; no partial output left behind", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (| head): not an error worth a message.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except (CLIError, InputError, OutputError, ModelFileError, MemoryError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except (ValueError, TypeError, OSError) as exc:
        # From NumPy, pyarrow or the OS: still the user's input, most likely.
        if args.debug:
            traceback.print_exc()
        print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        print(f"{prefix}: internal error: {type(exc).__name__}: {_one_line(exc)} "
              f"(run with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
