"""Old and new build of fastlogit on the row kernels, alternating processes, one thread.

    python benchmarks/compare_rows_interleaved.py OLD_CHECKOUT NEW_CHECKOUT [ROUNDS] [CALLS]

The row-kernel twin of compare_builds_interleaved.py: forward_pass on (10^6, 3) and
(10^6, 100), cost_and_gradients on (10^6, 100), C order, float64 and float32.  Each round
runs OLD then NEW in their own process (PYTHONPATH = the checkout); every process times
CALLS calls of each case, the cases interleaved call by call.  Prints median [IQR] per build,
the ratio new/old, and cost_and_gradients / forward_pass on the same X per build (the
issue-11 target: at most 1.15).  CASES=fwd3,cg100 and DTS=float64 (environment) narrow the set.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

CHILD = r'''
import time, json, sys, os, numpy as np, fastlogit
rng = np.random.default_rng(0)
calls = int(sys.argv[1])
out = {}
for dt in os.environ.get("DTS", "float64 float32").split():
    X3 = rng.standard_normal((10**6, 3)).astype(dt)
    X100 = rng.standard_normal((10**6, 100)).astype(dt)
    W3, W100 = rng.standard_normal((3, 1)) * 0.3, rng.standard_normal((100, 1)) * 0.1
    y = (rng.random((1, 10**6)) < 0.5).astype(dt)
    o = np.empty((1, 10**6), dtype=dt)
    cases = {"fwd3": lambda: fastlogit.forward_pass(X3, W3, 0.1, out=o, n_threads=1),
             "fwd100": lambda: fastlogit.forward_pass(X100, W100, 0.1, out=o, n_threads=1),
             "cg100": lambda: fastlogit.cost_and_gradients(X100, W100, 0.1, y, n_threads=1)}
    sel = os.environ.get("CASES")
    cases = {k: f for k, f in cases.items() if not sel or k in sel.split(",")}
    for f in cases.values():
        f()
    ts = {k: [] for k in cases}
    for _ in range(calls):
        for k, f in cases.items():
            t = time.perf_counter(); f(); ts[k].append(time.perf_counter() - t)
    for k, v in ts.items():
        out[f"{k} {dt}"] = v
print(json.dumps(out))
'''


def main():
    old_path, new_path = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    calls = sys.argv[4] if len(sys.argv) > 4 else "5"
    res = {"old": {}, "new": {}}
    for _ in range(rounds):
        for name, path in (("old", old_path), ("new", new_path)):
            o = subprocess.run([sys.executable, "-c", CHILD, calls],
                               env=dict(os.environ, PYTHONPATH=path),
                               cwd=tempfile.gettempdir(), capture_output=True, text=True)
            if o.returncode:
                print(o.stderr)
                sys.exit(1)
            for k, v in json.loads(o.stdout).items():
                res[name].setdefault(k, []).extend(v)

    def fmt(v):
        q = np.percentile(v, [25, 50, 75]) * 1e3
        return f"{q[1]:7.2f} [{q[0]:.2f}-{q[2]:.2f}]"

    print(f"{rounds} rounds x {calls} calls, alternating processes, 1 thread; median [IQR] ms")
    for k in res["old"]:
        a, b = np.median(res["old"][k]), np.median(res["new"][k])
        print(f"{k:18s} old {fmt(res['old'][k])} | new {fmt(res['new'][k])} | new/old {b / a:.2f}")
    for dt in ("float64", "float32"):
        if f"cg100 {dt}" in res["old"] and f"fwd100 {dt}" in res["old"]:
            # ratio per call pair (same process, adjacent calls), then the median
            r = {name: np.median(np.array(res[name][f"cg100 {dt}"])
                                 / np.array(res[name][f"fwd100 {dt}"])) for name in res}
            print(f"cost_and_gradients / forward_pass (10^6, 100) {dt}: old {r['old']:.2f}, "
                  f"new {r['new']:.2f} (median of per-pair ratios)")


if __name__ == "__main__":
    main()
