"""Accuracy table: max error in ulps (and where) per function and dtype.

Compares fastlogit, fastlogit.reference (the textbook NumPy code), SciPy
(scipy.special.expit / log_expit) and scikit-learn's binomial loss
(sklearn._loss.loss.HalfBinomialLoss) against the mpmath oracle of
tests/oracle.py, on the deterministic sweeps used by tests/test_accuracy.py
(113 786 float64 and 63 316 float32 points over the whole range).

Usage (from the repository root)::

    python benchmarks/accuracy.py                      # table of the importable fastlogit
    python benchmarks/accuracy.py --compare "vmath=/tmp/numerics-copy"
        # adds a column for the fastlogit found at that path (run in a subprocess)

Errors are in ulps of the exact value, in the format of each result: a
float32 array is measured in float32 ulps ("ulp32"), a Python float or a
float64 array in float64 ulps.  "inf" means an infinite, NaN or zero result
where the exact value is finite and non-zero (e.g. 1/(1+exp(720)) = 0).
The mean-cost rows give the relative error of the mean of m = 10^6 losses
drawn from a pool over the whole range, against the exactly summed total.
The run takes a few minutes (per-example losses cost one call each).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from oracle import (  # noqa: E402
    Exact,
    exact_loss,
    exact_sigmoid,
    fractional_labels,
    mp_sum,
    relative_error,
    residuals_through_gradients,
    sweep_oracle,
    ulp_errors,
)
from mpmath import libmp  # noqa: E402

BOUNDS = {
    ("sigmoid", "float64"): "1", ("sigmoid", "float32"): "0.51",
    ("log_sigmoid", "float64"): "2", ("log_sigmoid", "float32"): "0.51",
    ("loss, y in {0,1}", "float64"): "2", ("loss, y in {0,1}", "float32"): "2",
    ("loss, fractional y", "float64"): "4", ("loss, fractional y", "float32"): "4",
    ("residual sigma(z)-y, y in {0,1}", "float64"): "2",
    ("residual sigma(z)-y, y in {0,1}", "float32"): "0.51",
    ("mean loss, m=10^6 (relative)", "float64"): "1e-14",
    ("mean loss, m=10^6 (relative)", "float32"): "1e-14",
}
ROWS = list(BOUNDS)


# ---------------------------------------------------------------------------
# Exact values
# ---------------------------------------------------------------------------

class Truth:
    """Exact values on the sweep of one format, in float64 and float32 ulps."""

    def __init__(self, fmt):
        self.fmt = fmt
        self.oracle, _ = sweep_oracle(fmt)
        self.z = self.oracle.z
        self.y_frac = fractional_labels(self.z.astype(np.float64)).astype(self.z.dtype)
        self._cache = {}

    def get(self, quantity, label, result_fmt):
        key = (quantity, label, result_fmt)
        if key not in self._cache:
            self._cache[key] = self._compute(quantity, label, result_fmt)
        return self._cache[key]

    def _compute(self, quantity, label, result_fmt):
        o = self.oracle
        if result_fmt == self.fmt:
            if quantity == "sigmoid":
                return o.sigmoid
            if quantity == "log_sigmoid":
                return o.log_sigmoid
            if quantity == "residual":
                return o.residual(int(label))
            if quantity == "loss" and label != "frac":
                return o.loss(int(label))
            if quantity == "loss" and o.loss_frac is not None:
                return o.loss_frac
        # Not cached in that format: evaluate with mpmath (some 10 s).
        zf = self.z.astype(np.float64).tolist()
        if quantity == "sigmoid":
            vals = [exact_sigmoid(v) for v in zf]
        elif quantity == "loss":
            ys = self.y_frac.astype(np.float64).tolist() if label == "frac" else [label] * len(zf)
            vals = [exact_loss(v, y) for v, y in zip(zf, ys)]
        else:
            raise KeyError((quantity, label, result_fmt))
        return Exact.from_values(vals, result_fmt)


def _fmt_of(result) -> str:
    return "float32" if np.asarray(result).dtype == np.float32 else "float64"


def _measure(got, truth: Truth, quantity, label):
    fmt = _fmt_of(got)
    exact = truth.get(quantity, label, fmt)
    err = ulp_errors(np.asarray(got, dtype=np.float64).ravel(), exact)

    def worst(errors):
        i = int(np.argmax(errors))
        where = f"z={float(truth.z[i]):.6g}"
        if label == "frac":
            where += f", y={float(truth.y_frac[i]):.3g}"
        elif label is not None:
            where += f", y={label:g}"
        return {"err": float(errors[i]), "where": where,
                "unit": "ulp32" if fmt == "float32" else "ulp"}
    result = worst(err)
    if not np.isfinite(truth.z[int(np.argmax(err))]):
        # worst at z = +-inf: also say how the finite inputs fare
        result["finite"] = worst(np.where(np.isfinite(truth.z), err, 0.0))
    return result


# ---------------------------------------------------------------------------
# Implementations
# ---------------------------------------------------------------------------

def _per_example(fn, z, y):
    out = np.empty(len(z))
    for i in range(len(z)):
        out[i] = fn(z[i:i + 1][None, :], y[i:i + 1][None, :])
    return out


def _labels(truth, label):
    return truth.y_frac if label == "frac" else np.full(len(truth.z), label, truth.z.dtype)


def fastlogit_impl(fl):
    return {
        "sigmoid": lambda z: fl.sigmoid(z),
        "log_sigmoid": lambda z: fl.log_sigmoid(z),
        "loss": lambda z, y: _per_example(fl.cost_from_logits, z, y),
        "residual": lambda z, y: residuals_through_gradients(fl.gradients, z, y),
        "mean_loss": lambda z, y: fl.cost_from_logits(z, y),
    }


def peers():
    impls = {}
    from fastlogit import reference as ref
    impls["reference"] = {
        "sigmoid": lambda z: ref.sigmoid(z),
        "log_sigmoid": lambda z: ref.log_sigmoid(z),
        "loss": lambda z, y: _per_example(ref.cost_from_logits, z, y),
        "residual": lambda z, y: residuals_through_gradients(ref.gradients, z, y),
        "mean_loss": lambda z, y: ref.cost_from_logits(z[None, :], y[None, :]),
    }
    try:
        from scipy.special import expit, log_expit
    except ImportError:
        pass
    else:
        def sp_loss(z, y):
            # y*softplus(-z) + (1-y)*softplus(z) from SciPy's primitives; a zero
            # weight contributes exactly 0 (never 0 * inf).
            a = np.where(y != 0, -y * log_expit(z), 0)
            b = np.where(y != 1, -(1 - y) * log_expit(-z), 0)
            return a + b
        impls["scipy"] = {
            "sigmoid": expit,
            "log_sigmoid": log_expit,
            "loss": sp_loss,
            "residual": lambda z, y: expit(z) - np.asarray(y, z.dtype),
            "mean_loss": lambda z, y: float(np.mean(sp_loss(z, y))),
        }
    try:
        from sklearn._loss.loss import HalfBinomialLoss
    except ImportError:
        pass
    else:
        hbl = HalfBinomialLoss()
        impls["sklearn"] = {
            # HalfBinomialLoss: loss = log1pexp(z) - y z, gradient = expit(z) - y
            "loss": lambda z, y: hbl.loss(y_true=np.asarray(y, z.dtype), raw_prediction=z),
            "residual": lambda z, y: hbl.gradient(y_true=np.full(len(z), y, z.dtype), raw_prediction=z),
            "mean_loss": lambda z, y: float(hbl(y_true=np.asarray(y, z.dtype), raw_prediction=z)),
        }
    return impls


# ---------------------------------------------------------------------------
# Mean over m examples
# ---------------------------------------------------------------------------

def mean_loss_problem(fmt, m=10 ** 6, pool_size=3000, seed=20261127):
    rng = np.random.default_rng(seed)
    dtype = np.float64 if fmt == "float64" else np.float32
    n3 = pool_size // 3
    lo, hi = (-300, 300) if fmt == "float64" else (-37, 38)
    z = np.concatenate([rng.uniform(-40, 40, n3), rng.uniform(-800, 800, n3),
                        rng.choice([-1.0, 1.0], pool_size - 2 * n3)
                        * 10.0 ** rng.uniform(lo, hi, pool_size - 2 * n3)])
    with np.errstate(over="ignore"):
        z = z.astype(dtype)
    y = np.select([np.arange(pool_size) % 3 == 0, np.arange(pool_size) % 3 == 1], [0.0, 1.0],
                  rng.integers(1, 2 ** 20, pool_size) / 2.0 ** 20).astype(dtype)
    losses = [exact_loss(float(a), float(b)) for a, b in zip(z, y)]
    index = rng.integers(0, pool_size, m)
    counts = np.bincount(index, minlength=pool_size)
    exact = libmp.mpf_div(mp_sum(losses, counts), libmp.from_int(m), 320)
    return z[index], y[index], exact


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------

def measure_all(impls, log=print):
    results = {name: {} for name in impls}
    for fmt in ("float64", "float32"):
        t0 = time.perf_counter()
        truth = Truth(fmt)
        z = truth.z
        for name, impl in impls.items():
            def put(row, fn):
                try:
                    with warnings.catch_warnings(), np.errstate(all="ignore"):
                        warnings.simplefilter("ignore")
                        results[name][f"{row}|{fmt}"] = fn()
                except Exception as exc:       # a peer refusing an input is a result too
                    results[name][f"{row}|{fmt}"] = {"err": None, "where": f"error: {exc}"[:60],
                                                     "unit": ""}
            if "sigmoid" in impl:
                put("sigmoid", lambda: _measure(impl["sigmoid"](z), truth, "sigmoid", None))
            if "log_sigmoid" in impl:
                put("log_sigmoid", lambda: _measure(impl["log_sigmoid"](z), truth, "log_sigmoid", None))
            if "loss" in impl:
                def binary():
                    a = _measure(impl["loss"](z, _labels(truth, 0.0)), truth, "loss", 0.0)
                    b = _measure(impl["loss"](z, _labels(truth, 1.0)), truth, "loss", 1.0)
                    return _worse(a, b)
                put("loss, y in {0,1}", binary)
                put("loss, fractional y",
                    lambda: _measure(impl["loss"](z, _labels(truth, "frac")), truth, "loss", "frac"))
            if "residual" in impl:
                def resid():
                    rs = [_measure(impl["residual"](z, lab), truth, "residual", lab) for lab in (0.0, 1.0)]
                    return _worse(*rs)
                put("residual sigma(z)-y, y in {0,1}", resid)
            log(f"  {fmt} {name}: {time.perf_counter() - t0:.0f} s")
        Zm, Ym, exact_mean = mean_loss_problem(fmt)
        for name, impl in impls.items():
            def mean():
                got = impl["mean_loss"](Zm, Ym)
                rel = relative_error(got, exact_mean) if math.isfinite(got) else math.inf
                return {"err": rel, "where": "m=10^6", "unit": "rel"}
            put_key = f"mean loss, m=10^6 (relative)|{fmt}"
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    results[name][put_key] = mean()
            except Exception as exc:
                results[name][put_key] = {"err": None, "where": f"error: {exc}"[:60], "unit": ""}
    return results


def _worse(a, b):
    """The worse of two results (and the worse finite-z result, if any)."""
    key = (lambda r: r["err"])
    out = dict(max(a, b, key=key))
    finite = [r.get("finite", r) for r in (a, b) if r["err"] is not None]
    if "finite" in a or "finite" in b:
        out["finite"] = max(finite, key=key)
    return out


def _cell(r):
    if r is None:
        return "—"
    if r["err"] is None:
        return r["where"]
    e = r["err"]
    if r["unit"] == "rel":
        return "inf" if not math.isfinite(e) else f"{e:.1e}"
    unit = " ulp32" if r["unit"] == "ulp32" else ""
    val = "inf" if not math.isfinite(e) else (f"{e:.3g}" if e < 1e4 else f"{e:.2e}")
    text = f"{val}{unit} ({r['where']})"
    if "finite" in r:
        text += "; finite z: " + _cell(r["finite"])
    return text


def table(results, columns):
    head = "| quantity | dtype | bound | " + " | ".join(columns) + " |"
    lines = [head, "|" + "---|" * (3 + len(columns))]
    for row, fmt in ROWS:
        key = f"{row}|{fmt}"
        cells = [_cell(results.get(c, {}).get(key)) for c in columns]
        lines.append(f"| {row} | {fmt} | {BOUNDS[(row, fmt)]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def float32_exhaustive(fastlogit, chunk=1 << 25):
    """The float32 sigmoid / log_sigmoid (own-width path) against the float64 path rounded
    to float32 on every finite float32; each disagreement is measured with mpmath."""
    sys.path.insert(0, str(ROOT / "tests"))
    from oracle import exact_log_sigmoid, exact_sigmoid, ulp_error_scalar
    for name, exact_fn in (("sigmoid", exact_sigmoid), ("log_sigmoid", exact_log_sigmoid)):
        fn = getattr(fastlogit, name)
        total, differ, worst = 0, [], 0.0
        for start in range(0, 1 << 32, chunk):
            z = np.arange(start, start + chunk, dtype=np.uint64).astype(np.uint32).view(np.float32)
            z = z[np.isfinite(z)]
            got = fn(z)
            with np.errstate(under="ignore"):
                ref = fn(z.astype(np.float64)).astype(np.float32)
            for i in np.flatnonzero(got.view(np.uint32) != ref.view(np.uint32)):
                e = exact_fn(float(z[i]))
                err = (ulp_error_scalar(float(got[i]), e, "float32"),
                       ulp_error_scalar(float(ref[i]), e, "float32"))
                differ.append((float(z[i]), *err))
                worst = max(worst, err[0])
            total += len(z)
        print(f"{name}: {total} finite float32, {len(differ)} differ from the float64 path"
              + (f", worst of those {worst:.9f} ulp32 (float64 path there: "
                 f"{max(d[2] for d in differ):.9f})" if differ else ""))
        for d in differ[:20]:
            print(f"  z = {d[0]!r}: float32 path {d[1]:.9f}, float64 path {d[2]:.9f} ulp32")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--compare", action="append", default=[], metavar="NAME=PATH",
                    help="also measure the fastlogit importable from PATH, as column NAME")
    ap.add_argument("--fastlogit-path", default=str(ROOT),
                    help="directory holding the fastlogit package to measure (default: this checkout)")
    ap.add_argument("--fastlogit-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", help="write the raw results to this file")
    ap.add_argument("--float32-exhaustive", action="store_true",
                    help="only: the float32 sigmoid and log_sigmoid against the float64 path on "
                         "every finite float32 (a few minutes)")
    args = ap.parse_args(argv)

    sys.path.insert(0, args.fastlogit_path)
    import fastlogit
    if args.float32_exhaustive:
        float32_exhaustive(fastlogit)
        return
    label = f"fastlogit ({fastlogit.build_info().get('math_isa', '?')})"
    impls = {label: fastlogit_impl(fastlogit)}
    if not args.fastlogit_only:
        impls.update(peers())
    print(f"fastlogit from {Path(fastlogit.__file__).parent}", file=sys.stderr)
    results = measure_all(impls, log=lambda s: print(s, file=sys.stderr))
    columns = [label]
    for spec in args.compare:
        name, path = spec.split("=", 1)
        out = Path(f"/tmp/accuracy-{os.getpid()}-{name}.json")
        subprocess.run([sys.executable, __file__, "--fastlogit-only", "--json", str(out),
                        "--fastlogit-path", path], check=True)
        other = json.loads(out.read_text())
        for key, val in other.items():
            results[f"{name}: {key}"] = val
            columns.append(f"{name}: {key}")
        out.unlink()
    columns += [c for c in impls if c != label]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if not args.fastlogit_only:
        print(table(results, columns))


if __name__ == "__main__":
    main()
