"""Old and new build of fastlogit, alternating processes, whole calls at one size.

    python benchmarks/compare_builds_interleaved.py OLD_CHECKOUT NEW_CHECKOUT [M] [ROUNDS] [CALLS]

Each round runs OLD then NEW in their own process (PYTHONPATH = the checkout); every
process times CALLS calls of each kernel, one thread.  Prints median [IQR] and minimum
per build.  CASES=cost,sigmoid and DTS=float64 (environment) narrow the set.
"""
import json, os, subprocess, sys, tempfile

import numpy as np
CHILD = r'''
import time, json, sys, os, numpy as np, fastlogit
rng = np.random.default_rng(0)
m = int(float(sys.argv[1]))
out = {}
for dt in [np.dtype(d).type for d in os.environ.get("DTS", "float64 float32").split()]:
    z = (rng.standard_normal(m) * 8).astype(dt); y = (rng.random(m) < 0.5).astype(dt)
    a = fastlogit.sigmoid(z).astype(dt); o = np.empty_like(z)
    X3 = z.reshape(-1, 1)
    cases = {"cost_from_logits": lambda: fastlogit.cost_from_logits(z[None], y[None], n_threads=1),
             "compute_cost": lambda: fastlogit.compute_cost(a[None], y[None], n_threads=1),
             "sigmoid out=": lambda: fastlogit.sigmoid(z, out=o, n_threads=1),
             "sigmoid fresh": lambda: fastlogit.sigmoid(z, n_threads=1),
             "log_sigmoid out=": lambda: fastlogit.log_sigmoid(z, out=o, n_threads=1),
             "cost_and_gradients (m,1)": lambda: fastlogit.cost_and_gradients(X3[: m // 4], np.ones((1, 1)), 0.0, y[None, : m // 4], n_threads=1),
             }
    for k, f in cases.items():
        if os.environ.get("CASES") and not any(c in k for c in os.environ["CASES"].split(",")): continue
        f(); ts = []
        for _ in range(int(sys.argv[2])):
            t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
        out[f"{k} {np.dtype(dt).name}"] = ts
print(json.dumps(out))
'''
old_path, new_path = sys.argv[1], sys.argv[2]
m = sys.argv[3] if len(sys.argv) > 3 else "1e7"
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
reps = sys.argv[5] if len(sys.argv) > 5 else "5"
res = {"old": {}, "new": {}}
for r in range(rounds):
    for name, path in (("old", old_path), ("new", new_path)):
        o = subprocess.run([sys.executable, "-c", CHILD, m, reps], env=dict(os.environ, PYTHONPATH=path), cwd=tempfile.gettempdir(), capture_output=True, text=True)
        if o.returncode: print(o.stderr); sys.exit(1)
        for k, v in json.loads(o.stdout).items():
            res[name].setdefault(k, []).extend(v)
print(f"m = {m}, {rounds} rounds x {reps} calls, alternating processes; median [IQR] ms")
for k in res["old"]:
    def fmt(v):
        q = np.percentile(v, [25, 50, 75]) * 1e3
        return f"{q[1]:7.2f} [{q[0]:.1f}-{q[2]:.1f}]"
    a, b = np.median(res["old"][k]), np.median(res["new"][k])
    mo, mn = min(res["old"][k]), min(res["new"][k])
    print(f"{k:32s} old {fmt(res['old'][k])} min {mo*1e3:6.1f} | new {fmt(res['new'][k])} min {mn*1e3:6.1f} | new/old med {b/a:.2f} min {mn/mo:.2f}")
