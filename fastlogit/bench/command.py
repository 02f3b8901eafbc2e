"""``fastlogit bench``: options, checks made before anything runs, and the run."""
from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import sys

from fastlogit.bench import load
from fastlogit.bench.cases import crossover, run_case
from fastlogit.bench.problems import (DEFAULT_KERNELS, DEFAULT_M, DEFAULT_SHAPES, ELEMENTWISE,
                                      KERNELS, QUICK_M, QUICK_SHAPES, make_problem)
from fastlogit.bench.registry import PEERS, import_peer
from fastlogit.bench.report import fmt_time, format_table, machine_info, plot, write_json


def _count(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number; got {text!r}") from None
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number; got {text!r}")
    return int(value)


def _busy(text: str) -> int:
    """A number of busy processes: 0 (idle) or a positive whole number."""
    return 0 if text.strip() == "0" else _count(text)


def _shape(text: str) -> tuple:
    parts = text.lower().split("x")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected a shape MxN such as 1e6x100; got {text!r}")
    return _count(parts[0]), _count(parts[1])


def _threads(text: str) -> int:
    if text == "max":
        from fastlogit._validation import default_threads
        return default_threads()
    return _count(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds; got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``fastlogit bench``."""
    parser.add_argument("--kernels", nargs="+", choices=KERNELS + ("all",), default=None,
                        metavar="KERNEL",
                        help=f"kernels to time (default: {' '.join(DEFAULT_KERNELS)}; 'all' adds "
                             "predict and gradients)")
    parser.add_argument("--m", nargs="+", type=_count, default=None, metavar="M",
                        help="sizes of the element-wise kernels and costs (default 1e7)")
    parser.add_argument("--shapes", nargs="+", type=_shape, default=None, metavar="MxN",
                        help="shapes of X for forward_pass, predict and the gradients "
                             "(default: 1e6x3 1e6x100 1e5x1000 and the like)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (m = 1e6, X 1e5x3 and 1e5x100; with --load, sizes "
                             "divided by 10) for a look in a few seconds")
    parser.add_argument("--dtypes", nargs="+", choices=("float64", "float32"), default=["float64"])
    parser.add_argument("--threads", nargs="+", type=_threads, default=None, metavar="T",
                        help="thread counts ('max' = the default count; default: 1 and max)")
    parser.add_argument("--peers", nargs="*", choices=PEERS, default=None,
                        help="peers to include (default: every installed one; none: --peers)")
    parser.add_argument("--repeat", type=_count, default=9,
                        help="timed calls per implementation, at least 1 (median reported; "
                             "default 9)")
    parser.add_argument("--max-seconds", type=_seconds, default=4.0,
                        help="time budget per implementation and case; slow peers are repeated "
                             "fewer times, at least 3 (default 4)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory column")
    parser.add_argument("--crossover", action="store_true",
                        help="instead of the table, time 1 vs max threads from 2^10 to 2^20 "
                             "elements (where the serial threshold belongs)")
    parser.add_argument("--load", nargs="+", type=_busy, default=None, metavar="K",
                        help="loaded-machine mode: for each K, start K busy processes (stopped "
                             "afterwards, even on Ctrl-C) and report t(default threads) / "
                             "t(1 thread) per kernel, next to the idle 2-thread gain t(1)/t(2), "
                             "each thread setting called for about --max-seconds; "
                             "e.g. --load 0 1 2")
    parser.add_argument("--fit", action="store_true",
                        help="instead of the kernel table, time whole fits against scikit-learn "
                             "(lbfgs, newton-cholesky) and glum on five data sets, one thread "
                             "each, with each result's distance to the optimum (needs "
                             "scikit-learn; about a minute)")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                        help="write the results as JSON to FILE (or stdout with no FILE)")
    parser.add_argument("--plot", default=None, metavar="FILE.png",
                        help="save a bar chart of the speed-ups (needs matplotlib)")


def check_args(args) -> str | None:
    """Why ``args`` cannot run (a one-line message), or None.  Made before any
    timing, so that a typo never costs a whole benchmark run."""
    for option, target in (("--json", args.json), ("--plot", args.plot)):
        if target in (None, "-"):
            continue
        folder = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(folder):
            return f"{option} {target}: the folder {folder} does not exist"
        if not os.access(folder, os.W_OK):
            return f"{option} {target}: the folder {folder} is not writable"
        if os.path.isdir(target):
            return f"{option} {target}: is a folder; give a file name"
    if args.plot is not None:
        if args.crossover or args.load is not None:
            return "--plot draws the speed-up table; it cannot be combined with --crossover or --load"
        if importlib.util.find_spec("matplotlib") is None:
            return "--plot needs matplotlib: pip install matplotlib (or 'fastlogit[cli]')"
    modes = [name for name, on in (("--load", args.load is not None),
                                   ("--crossover", args.crossover), ("--fit", args.fit)) if on]
    if len(modes) > 1:
        return f"{' and '.join(modes)} are different runs; choose one"
    if args.fit:
        if args.plot is not None:
            return "--plot draws the speed-up table; it cannot be combined with --fit"
        for module in ("sklearn", "threadpoolctl"):
            if importlib.util.find_spec(module) is None:
                return f"--fit needs {module}: pip install 'fastlogit[bench]'"
    if args.crossover and args.threads and max(args.threads) < 2:
        return "--crossover needs at least 2 threads (--threads 2, or max on a multi-core machine)"
    return None


def cases_from_args(args) -> list:
    kernels = list(DEFAULT_KERNELS) if not args.kernels else (
        list(KERNELS) if "all" in args.kernels else list(dict.fromkeys(args.kernels)))
    cases = []
    for kernel in kernels:
        if kernel in ELEMENTWISE:
            sizes = args.m or (QUICK_M if args.quick else DEFAULT_M)
            cases += [(kernel, (m,)) for m in sizes]
        else:
            shapes = args.shapes or (QUICK_SHAPES if args.quick else DEFAULT_SHAPES[kernel])
            cases += [(kernel, s) for s in shapes]
    return cases


def estimate_seconds(args, threads: list, peers) -> float:
    """Rough wall time of the run, said before it starts."""
    if args.load is not None:
        return load.estimate_seconds(_loaded_cases(args), args.load, args.max_seconds)
    if args.crossover:
        return 3 * 11 * 1.5
    if args.fit:    # five data sets, four libraries and fastlogit on Dask, ~0.3 s a fit here
        return 5 * 5 * args.repeat * 0.3 + 10
    n_impls = 3 + len([p for p in peers if import_peer(p) is not None])
    total = 0.0
    for kernel, shape in cases_from_args(args):
        elements = shape[0] * (shape[1] if len(shape) > 1 else 1)
        one_call = elements * 10e-9                    # the reference, ~10 ns per element
        per_impl = min(one_call * (args.repeat + 2), args.max_seconds + one_call)
        total += len(args.dtypes) * len(threads) * (n_impls * per_impl + 2 * one_call + 0.5)
    return total


def _loaded_cases(args) -> tuple:
    if args.kernels or args.m or args.shapes:
        return tuple(cases_from_args(args))
    return load.QUICK_LOADED_CASES if args.quick else load.LOADED_CASES


def run(args) -> int:
    """Run ``fastlogit bench`` with parsed ``args``; returns the exit status."""
    from fastlogit._validation import default_threads
    problem = check_args(args)
    to_stdout_json = args.json == "-"
    say = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if to_stdout_json else print
    if problem:
        print(f"fastlogit bench: error: {problem}", file=sys.stderr)
        return 2
    threads = list(dict.fromkeys(args.threads or [1, default_threads()]))
    peers = PEERS if args.peers is None else tuple(args.peers)
    info = machine_info()
    say("fastlogit bench on " + f"{info['cpu']}, {info['usable_cores']} usable cores, "
        f"numpy {info['numpy']}, fastlogit math: {info.get('fastlogit_math_isa', '?')}")
    say(f"this run takes about {fmt_time(estimate_seconds(args, threads, peers)).strip()} "
        "(more on a busy machine)")
    missing = [p for p in peers if import_peer(p) is None]
    if missing and args.load is None and not args.crossover and not args.fit:
        say(f"peers not installed (skipped): {', '.join(missing)}")
    if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("OPENBLAS_L2_SIZE"):
        say("note: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set; NumPy's BLAS may be handicapped")

    if args.load is not None:
        say(load.LOADED_HEADER)
        rows = load.scaling_rows(_loaded_cases(args), args.load, args.repeat, args.max_seconds,
                                 say=say)
        say("K = busy processes running meanwhile; means of interleaved calls; t(None)/t(1): "
            "default thread count against one thread (above 1 = the default is slower); "
            "t(1)/t(2): gain of 2 threads; "
            "backoffs: threaded calls that found the machine busy and sent the next calls to one thread for a while.")
        if args.json:
            write_json({"machine": info, "loaded": rows}, args.json)
        return 0

    if args.fit:
        from fastlogit.bench import fit as fit_rows
        rows = fit_rows.run_fit_rows(repeat=args.repeat)
        say(fit_rows.format_rows(rows))
        say("one thread per library, best of --repeat fits; vs fastest peer = the fastest "
            "other library's time / this time; J - J* = final objective minus the optimum.")
        if args.json:
            write_json({"machine": info, "fit": [r.__dict__ for r in rows]}, args.json)
        return 0

    if args.crossover:
        t = max(threads)
        if t < 2:
            say("--crossover needs at least 2 threads")
            return 2
        rows = crossover(t, args.repeat)
        say(f"{'kernel':<18}{'elements':>10}{'1 thread':>12}{f'{t} threads':>12}{'speed-up':>10}")
        for r in rows:
            say(f"{r['kernel']:<18}{r['elements']:>10}{fmt_time(r['t1_s']):>12}"
                f"{fmt_time(r[f't{t}_s']):>12}{r['speedup']:>9.2f}x")
        if args.json:
            write_json({"machine": info, "crossover": rows}, args.json)
        return 0

    rows = []
    for kernel, shape in cases_from_args(args):
        for dtype in args.dtypes:
            problem_ = make_problem(kernel, shape, dtype)
            case_rows = []
            for t in threads:
                case_rows += run_case(problem_, t, peers, args.repeat, args.max_seconds,
                                      memory=not args.no_memory)
            rows += case_rows
            say(format_table(case_rows))
            del problem_
            gc.collect()
    say("\nmedian of interleaved runs; +-IQR = interquartile range / median; x ref = reference "
        "time / this time, same thread count;\n% floor = time to read the inputs and write the "
        "outputs once (measured now, same threads) / this time; extra MiB = peak traced "
        "allocation of one call ('-': not traced).")
    bad = [r for r in rows if r.matches_reference is False]
    if bad:
        say("results that do NOT match the reference: "
            + ", ".join(f"{r.impl} ({r.kernel} {r.size} {r.dtype}, {r.threads} thr)" for r in bad))
    if args.json:
        write_json({"machine": info, "results": [r.__dict__ for r in rows]}, args.json)
    if args.plot:
        plot(rows, args.plot)
        say(f"bar chart written to {args.plot}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastlogit bench",
                                     description="benchmark the kernels against NumPy and peers")
    add_arguments(parser)
    return run(parser.parse_args(argv))
