"""Time the same kernels in two built checkouts of fastlogit, alternating runs.

    python benchmarks/compare_builds.py OLD_CHECKOUT NEW_CHECKOUT [--rounds 3]

Each build runs in its own process (PYTHONPATH = its checkout), one thread,
median of 9 calls per kernel; the table keeps the best of the rounds.  Meant
for a before/after ratio on a shared machine, not for absolute figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, time
import numpy as np
import fastlogit
from fastlogit import _kernels
rng = np.random.default_rng(0)
m = 10**6
z = rng.standard_normal(m) * 8; o = np.empty_like(z)
y = (rng.random(m) < 0.5).astype(np.float64)
a = fastlogit.sigmoid(z)
X3 = rng.standard_normal((m, 3)); W3 = rng.standard_normal((3, 1))
X100 = rng.standard_normal((m // 4, 100)); W100 = rng.standard_normal((100, 1)) * 0.1
Xh = rng.standard_normal((50000, 100))
cases = {
 "sigmoid 10^6 out=": lambda: fastlogit.sigmoid(z, out=o, n_threads=1),
 "log_sigmoid 10^6 out=": lambda: fastlogit.log_sigmoid(z, out=o, n_threads=1),
 "cost_from_logits 10^6": lambda: fastlogit.cost_from_logits(z[None], y[None], n_threads=1),
 "compute_cost 10^6": lambda: fastlogit.compute_cost(a[None], y[None], n_threads=1),
 "forward_pass (10^6, 3)": lambda: fastlogit.forward_pass(X3, W3, 0.1, n_threads=1),
 "forward_pass (2.5e5, 100)": lambda: fastlogit.forward_pass(X100, W100, 0.1, n_threads=1),
 "cost_and_gradients (2.5e5, 100)":
     lambda: fastlogit.cost_and_gradients(X100, W100, 0.1, y[None, :m // 4], n_threads=1),
 "cost_gradient_hessian (5e4, 100)":
     lambda: _kernels.cost_gradient_hessian(Xh, W100[:, 0], 0.1, y[:50000], np.empty(0), 1),
}
res = {"isa": _kernels.math_isa()}
for name, f in cases.items():
    f(); ts = []
    for _ in range(9):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    res[name] = float(np.median(ts)) * 1e3
print(json.dumps(res))
"""


def run(checkout):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(checkout))
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=checkout,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    old, new = [], []
    for _ in range(args.rounds):
        old.append(run(args.old))
        new.append(run(args.new))
    print(f"clones: old {old[0]['isa']}, new {new[0]['isa']}; best of {args.rounds} rounds, ms")
    print(f"| kernel (float64, 1 thread) | old | new | new / old |\n|---|--:|--:|--:|")
    for key in old[0]:
        if key == "isa":
            continue
        a, b = min(r[key] for r in old), min(r[key] for r in new)
        print(f"| {key} | {a:.2f} | {b:.2f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
