"""The ``fastlogit`` command line: demo, train, score, convert, bench, show-config.

A parser and short wrappers over the library's engines: tables are read by
:mod:`fastlogit.io`, scored by :mod:`fastlogit.scoring`, loaded for training
by :mod:`fastlogit.training_table`; the demo is :mod:`fastlogit.demo`.

Every command reports a bad input (missing or damaged file, wrong columns,
non-numeric or non-finite values, empty input, missing output folder) as one
line on stderr and a non-zero exit status; ``--debug`` adds the traceback.
Outputs are written to a temporary file next to the target and renamed into
place only when complete, so a failure or Ctrl-C leaves nothing behind.

Exit status: 0 success, 1 error, 2 usage error, 130 interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
import time
import traceback
from typing import Sequence

import numpy as np

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A problem the user can fix, reported as one line without a traceback."""


# ---------------------------------------------------------------------------
# Argument types
# ---------------------------------------------------------------------------

def _number_type(convert, valid, expected: str):
    """An argparse type: ``convert(text)``, then ``valid(value)``, else a usage
    error saying what was expected."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None
        if not valid(value):  # comparisons are False for NaN: rejected too
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text}")
        return value
    return parse


_positive_int = _number_type(int, lambda v: v >= 1, "a positive integer")
_threads = _number_type(int, lambda v: v != 0, "a positive thread count, or -1 for all cores")
_probability = _number_type(float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")
_positive_float = _number_type(float, lambda v: v > 0, "a positive number (or inf)")


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------

def load_any_model(path):
    """A fastlogit model file (.json) or a binary logistic ONNX graph (.onnx)."""
    from fastlogit.model_io import load_model

    if str(path).lower().endswith(".onnx"):
        from fastlogit.interop import model_from_onnx   # says itself what to install
        return model_from_onnx(path)
    return load_model(path)


def cmd_score(args) -> int:
    model = load_any_model(args.model)
    if args.scheduler:
        from fastlogit.dask import score_parts

        s = score_parts(model, args.input, args.output, scheduler=args.scheduler,
                        output_format=args.output_format,
                        threshold=args.threshold, n_threads=args.threads,
                        on_invalid=args.on_invalid, model_path=args.model)
        extra = f"; {s['invalid']:,} invalid row(s) {_invalid_verb(args)}" if s["invalid"] else ""
        print(f"scored {s['rows']:,} rows in {s['parts']} parts on {s['workers']} worker(s) in "
              f"{s['seconds']:.2f} s -> {args.output}{extra}", file=sys.stderr)
        return EXIT_OK
    if args.output_format is not None:
        raise CLIError("--output-format is for a folder of parts (--scheduler); OUTPUT's "
                       "suffix gives the format of one output file")
    from fastlogit.scoring import score_file

    stats = score_file(model, args.input, args.output, threshold=args.threshold,
                       chunk_rows=args.chunk_rows, n_threads=args.threads,
                       on_invalid=args.on_invalid, progress=not args.no_progress,
                       model_path=args.model)
    rate = stats.rows_in / stats.seconds if stats.seconds > 0 else math.inf
    extra = f"; {stats.invalid:,} invalid row(s) {_invalid_verb(args)}" if stats.invalid else ""
    mb_rate = stats.input_bytes / stats.seconds / 1e6 if stats.seconds > 0 else math.inf
    print(f"scored {stats.rows_in:,} rows in {stats.seconds:.2f} s ({rate:,.0f} rows/s, "
          f"{mb_rate:.3g} MB/s of input) -> {args.output}{extra}", file=sys.stderr)
    return EXIT_OK


def _invalid_verb(args) -> str:
    return "skipped" if args.on_invalid == "skip" else "set to NaN"


def cmd_convert(args) -> int:
    from fastlogit.io.files import check_distinct_paths, check_output_path
    from fastlogit.model_io import save_model

    output = check_output_path(args.output, "model file (-o)", suffixes=(".json",))
    check_distinct_paths([("model file (-o)", output)], [("MODEL", args.model)])
    model = load_any_model(args.model)
    save_model(model, output)
    print(f"{model.n_features} feature(s), written to {output}")
    return EXIT_OK


def _fit_table(table, args):
    """fastlogit.fit on a loaded training table, with -C, --tol, --max-iter."""
    import warnings

    from fastlogit import fit
    from fastlogit._objective import l2_from_C

    m = table.X.shape[0]
    l2 = l2_from_C(args.C, m)
    with warnings.catch_warnings():
        # Not converging is reported in the summary and the model file instead.
        warnings.simplefilter("ignore")
        try:
            result = fit(table.X, table.y.reshape(1, m), l2=l2, tol=args.tol,
                         max_iter=args.max_iter, n_threads=args.threads)
        except ImportError as exc:  # L-BFGS needs scipy
            raise CLIError(f"training this model needs {exc.name or 'scipy'}: "
                           f"pip install 'fastlogit[sklearn]'") from None
    return result, l2


def _scores(X, W, b, n_threads) -> np.ndarray:
    """z = X @ W + b as float64, by the compiled row loop."""
    from fastlogit._api import linear_scores

    return linear_scores(X, W, b, n_threads=n_threads)


def cmd_train(args) -> int:
    import fastlogit
    from fastlogit.io.files import check_distinct_paths, check_output_path
    from fastlogit.model_io import Model, save_model

    output = check_output_path(args.output, "model file (-o)", suffixes=(".json",))
    check_distinct_paths([("model file (-o)", output)], [("DATA", args.data)])
    common = {"target": args.target, "data": os.path.basename(str(args.data)),
              "C": None if math.isinf(args.C) else float(args.C), "tol": args.tol}
    if args.scheduler:
        import warnings

        from fastlogit.dask import fit_parts

        started = time.perf_counter()
        with warnings.catch_warnings():
            # Not converging is reported below (one line) and in the model file.
            warnings.simplefilter("ignore")
            result, features, rows, classes, skipped = fit_parts(
                args.data, args.target, columns=args.features, exclude=args.exclude,
                positive=args.positive, scheduler=args.scheduler, C=args.C, tol=args.tol,
                max_iter=args.max_iter, n_threads=args.threads, on_invalid=args.on_invalid,
                return_classes=True, return_skipped=True)
        seconds = time.perf_counter() - started
        save_model(Model(features=features, W=result.W, b=result.b, dtype="float64",
                         training={"rows": rows, "rows_skipped": skipped, **common, **classes,
                                   "objective": result.cost, "converged": result.converged,
                                   "n_iter": result.n_iter, "solver": result.solver,
                                   "passes": result.n_passes,
                                   "scheduler": args.scheduler}), output)
        dropped = f" ({skipped:,} invalid row(s) skipped)" if skipped else ""
        print(f"trained on {rows:,} rows of {args.data}{dropped} on Dask ({args.scheduler}): "
              f"{result.solver}, {'converged' if result.converged else 'NOT converged'} after "
              f"{result.n_iter} iteration(s), {result.n_passes} pass(es) over the data in "
              f"{seconds:.1f} s\nmodel written to {output}")
        _warn_not_converged(result)
        return EXIT_OK
    from fastlogit.training_table import load_training_table

    table = load_training_table(args.data, args.target, features=args.features,
                                exclude=args.exclude, positive=args.positive,
                                on_invalid=args.on_invalid)
    result, l2 = _fit_table(table, args)
    X, y, names = table.X, table.y, table.features
    W = np.asarray(result.W, dtype=np.float64).reshape(-1, 1)
    b = float(result.b)
    Z = _scores(X, W, b, args.threads)
    cross_entropy = fastlogit.cost_from_logits(Z, y)
    accuracy = float(np.mean((Z >= 0) == (y >= 0.5)))
    m = X.shape[0]
    model = Model(
        features=names, W=W, b=b, dtype="float64",
        training={
            "rows": int(m), "rows_skipped": table.rows_skipped, **common, **table.classes,
            "cost": float(cross_entropy), "objective": float(result.cost), "accuracy": accuracy,
            "converged": bool(result.converged), "n_iter": int(result.n_iter),
            "solver": getattr(result, "solver", "") or "", "l2": l2,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })
    save_model(model, output)

    skipped = f", {table.rows_skipped:,} invalid row(s) skipped" if table.rows_skipped else ""
    positive = (f", {table.classes['positive']!r} is 1 and {table.classes['negative']!r} is 0"
                if table.classes else "")
    print(f"trained on {m:,} rows of {args.data} (target {args.target!r}{positive}{skipped})")
    width = max(len(f) for f in names)
    for name, w in zip(names, W[:, 0]):
        print(f"  W[{name}]{' ' * (width - len(name))} = {w: .6g}")
    print(f"  b{' ' * (width + 2)} = {b: .6g}")
    if len(names) == 1:
        print(f"  decision boundary: {names[0]} = {-b / W[0, 0]:.4g}")
    print(f"  cost (mean cross-entropy) {cross_entropy:.4f}, accuracy {accuracy:.1%} on the training rows")
    print(f"  {'converged' if result.converged else 'NOT converged'} after {result.n_iter} "
          f"iteration(s), C = {args.C:g}")
    print(f"model written to {output}")
    _warn_not_converged(result)
    return EXIT_OK


def _warn_not_converged(result) -> None:
    """One line on stderr when the fit did not converge, saying why."""
    from fastlogit._train import SEPARABLE

    if result.converged:
        return
    if result.message == SEPARABLE:
        print(f"fastlogit train: warning: {result.message}; the weights grow without bound. "
              "Use a finite -C (a penalty), e.g. -C 1", file=sys.stderr)
    else:
        print(f"fastlogit train: warning: the optimiser did not converge in {result.n_iter} "
              f"iteration(s) ({result.message}); try a larger --max-iter or a smaller -C",
              file=sys.stderr)


def cmd_demo(args) -> int:
    from fastlogit.demo import run_demo

    run_demo(rows=args.rows, plot=args.plot)
    return EXIT_OK


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
    from fastlogit.model_io import fastlogit_version

    parser.add_argument("--version", action="version", version=f"fastlogit {fastlogit_version()}")
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
    train.add_argument("data", metavar="DATA",
                       help="training table: .csv, .tsv, .txt, .parquet, .npy or .npz")
    train.add_argument("--target", required=True, metavar="COLUMN",
                       help="the column to predict: 0/1 (or probabilities), or any two labels "
                            "with --positive (for tables without names: its index, e.g. 3)")
    train.add_argument("--positive", metavar="LABEL", default=None,
                       help="the target's label that counts as 1 (e.g. M, yes, 2); the one "
                            "other label counts as 0")
    train.add_argument("--features", nargs="+", metavar="COLUMN",
                       help="feature columns (default: every column except the target and "
                            "--exclude)")
    train.add_argument("--exclude", nargs="+", metavar="COLUMN", default=None,
                       help="columns not to train on, such as an ID column")
    train.add_argument("-C", type=_positive_float, default=1.0, metavar="C",
                       help="regularisation as in scikit-learn: smaller C, smaller weights "
                            "(default 1.0; 'inf' for none)")
    train.add_argument("--max-iter", type=_positive_int, default=1000, metavar="N",
                       help="most optimiser iterations (default 1000)")
    train.add_argument("--tol", type=_positive_float, default=1e-8, metavar="TOL",
                       help="stop when the largest gradient component is below this (default 1e-8)")
    train.add_argument("--threads", type=_threads, default=None, metavar="N",
                       help="threads (default: all cores)")
    train.add_argument("--on-invalid", choices=("error", "skip"), default="error",
                       help="a row with NaN/inf: stop with its row number (default) or leave it out")
    train.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="train on Dask: 'local:N' (N local worker processes) or a dask "
                            "scheduler address; DATA is then a folder of parts of one format: "
                            ".parquet/.pq, .npy, or text (.csv, .tsv, .txt); names starting "
                            "with '.' or '_' are not parts")
    train.add_argument("-o", "--output", required=True, metavar="MODEL.json",
                       help="where to write the model (JSON, written atomically)")
    train.set_defaults(func=cmd_train)

    score = sub.add_parser("score", parents=[common],
                           help="stream a table through a model, write probabilities",
                           description="Score INPUT with a model in blocks of rows (memory bounded by "
                                       "the block size) and write probabilities to OUTPUT "
                                       "(.npy, .csv or .parquet), atomically.")
    score.add_argument("input", metavar="INPUT", help=".npy, .npz, .csv, .tsv, .txt or .parquet")
    score.add_argument("--model", required=True, metavar="MODEL",
                       help="a model file written by `fastlogit train` (.json), or a binary "
                            "logistic-regression model exported to ONNX (.onnx)")
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
                            "folder of parts of one format (.parquet/.pq, .npy, or text: .csv, "
                            ".tsv, .txt; names starting with '.' or '_' are not parts) and OUTPUT "
                            "a folder (one output part per input part)")
    # fastlogit.dask.part_scoring.OUTPUT_SUFFIXES (not imported here: Dask is
    # loaded only for --scheduler); tests/test_csv_parts.py keeps the two equal.
    score.add_argument("--output-format", choices=("parquet", "npy", "csv"), default=None,
                       help="with --scheduler: the format of the output parts (default: the "
                            "input's; csv for text parts)")
    score.add_argument("--no-progress", action="store_true",
                       help="no progress bar (there is none anyway when stderr is not a terminal)")
    score.set_defaults(func=cmd_score)

    convert = sub.add_parser("convert", parents=[common],
                             help="turn a model trained elsewhere (.onnx) into a fastlogit model file",
                             description="Read a binary logistic-regression model exported to "
                                         "ONNX (by skl2onnx, say) and write it as a fastlogit "
                                         "model file.")
    convert.add_argument("model", metavar="MODEL.onnx", help="the model exported to ONNX")
    convert.add_argument("-o", "--output", required=True, metavar="MODEL.json",
                         help="where to write the fastlogit model file")
    convert.set_defaults(func=cmd_convert)

    # No `common` parent: fastlogit.bench defines its own options (its peers
    # are imported only when it runs).
    from fastlogit import bench as bench_harness

    bench = sub.add_parser("bench", help="benchmark the kernels against NumPy and peers")
    bench_harness.add_arguments(bench)
    bench.set_defaults(func=bench_harness.run)

    config = sub.add_parser("show-config", parents=[common],
                            help="print how the compiled module was built")
    config.set_defaults(func=cmd_show_config)
    return parser


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM takes the same clean-up path as Ctrl-C (temporary files removed) while a
    command runs; the previous handler is put back afterwards, so ``main()`` called as a
    function (tests, an embedding program) leaves the process's handlers as it found them
    (a leaked handler reached forked multiprocessing workers, which then ignored the
    pool's SIGTERM).  Only the main thread may set handlers: elsewhere nothing changes."""
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fastlogit`` console script; returns the exit status."""
    from fastlogit.io.files import InputError, OutputError
    from fastlogit.model_io import ModelFileError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"fastlogit {args.command}"
    try:
        with _sigterm_as_interrupt():
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
