"""The ``fastlogit`` command line."""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _best_time(fn, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def cmd_demo(args) -> int:
    import fastlogit
    from fastlogit import reference

    W = np.array([[0.042]])
    b = -5.66
    print("fastlogit demo: the textbook glucose model, W = 0.042, b = -5.66")
    print(f"decision boundary: glucose = -b / W = {-b / W[0, 0]:.1f} mg/dL")
    glucose = np.array([[105.0], [135.0], [170.0]])
    A_ref = reference.forward_pass(glucose, W, b)
    A_fast = fastlogit.forward_pass(glucose, W, b)
    print(f"{'glucose (mg/dL)':>16} {'z':>8} {'P(diabetic) reference':>22} {'fastlogit':>10}")
    for g, a_ref, a_fast in zip(glucose[:, 0], A_ref[0], A_fast[0]):
        print(f"{g:16.0f} {W[0, 0] * g + b:8.2f} {a_ref:22.4f} {a_fast:10.4f}")

    rng = np.random.default_rng(0)
    m = 1_000_000
    X = rng.normal([120.0, 30.0, 50.0], [30.0, 6.0, 15.0], size=(m, 3))
    W3 = np.array([[0.04], [0.08], [0.02]])
    b3 = -9.0
    t_ref = _best_time(lambda: reference.forward_pass(X, W3, b3))
    t_fast = _best_time(lambda: fastlogit.forward_pass(X, W3, b3))
    same = np.allclose(reference.forward_pass(X, W3, b3), fastlogit.forward_pass(X, W3, b3),
                       rtol=1e-12, atol=0)
    print(f"\nforward_pass on a generated batch X of shape {X.shape} (best of 5):")
    print(f"  NumPy reference {t_ref * 1e3:8.2f} ms")
    print(f"  fastlogit       {t_fast * 1e3:8.2f} ms   speed-up {t_ref / t_fast:5.1f}x   "
          f"same answers: {same}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastlogit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="walk the textbook glucose example and time both modules")
    demo.set_defaults(func=cmd_demo)
    config = sub.add_parser("show-config", help="print how the compiled module was built")
    config.set_defaults(func=lambda args: (__import__("fastlogit").show_config(), 0)[1])
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
