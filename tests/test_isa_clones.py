"""Every instruction-set clone of the compiled kernels gives the same bits.

The kernels are compiled three times (baseline x86-64, AVX2+FMA, AVX-512) and
one is picked at import; FASTLOGIT_ISA forces one (docs/numerics.md, "Same bits
on every x86-64 CPU").  For every clone this CPU can run, a child process with
FASTLOGIT_ISA set evaluates the same inputs, and the results must be equal bit
for bit: the oracle sweep (sigmoid, log_sigmoid, per-example losses at labels
0, 1 and fractional, residuals, per-example compute_cost), mean costs over many
blocks (the fixed-order block sums), and forward_pass (float64 and float32
outputs), cost_and_gradients and cost_gradient_hessian on general X (several
widths, both memory orders, both dtypes, scores beyond +-745).

Clones this CPU cannot run are skipped: on a machine without AVX-512 the
AVX-512 clone is not covered here (its forced import must fail instead, which
is tested).
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from fastlogit import _kernels
from conftest import PACKAGE_PARENT
from oracle import fractional_labels, sweep_oracle

TESTS = Path(__file__).parent
# Children run from a neutral folder with the package under test first on the
# path: from the checkout, `-c` would import the uncompiled sources.
CHILD_CWD = tempfile.gettempdir()
BASE_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    p for p in (PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p))
RUNNABLE = _kernels.runnable_isas()

pytestmark = pytest.mark.skipif(not RUNNABLE, reason="a build without run-time dispatch")

# Shapes of X: the small-width special cases (3, 8), the generic row loop with a
# remainder (13) and a wide X (100, more than one tile of the Hessian).
SHAPES = [(3000, 3), (2000, 8), (1500, 13), (600, 100)]

# Runs in the child: FASTLOGIT_ISA is set in its environment.
CHILD = r"""
import sys
import numpy as np
sys.path.insert(0, sys.argv[3])
import fastlogit
from fastlogit import _kernels
from oracle import residuals_through_gradients

assert _kernels.math_isa() == sys.argv[4], (_kernels.math_isa(), sys.argv[4])
inp = np.load(sys.argv[1])
out = {}
for fmt in ("f64", "f32"):
    z = inp["z_" + fmt]
    out["sigmoid_" + fmt] = fastlogit.sigmoid(z)
    out["log_sigmoid_" + fmt] = fastlogit.log_sigmoid(z)
    for lab in (0.0, 1.0):
        out[f"residual_{lab}_{fmt}"] = residuals_through_gradients(fastlogit.gradients, z, lab)
    zl, yl = inp["zl_" + fmt], inp["yl_" + fmt]
    out["loss_" + fmt] = np.array([fastlogit.cost_from_logits(zl[i:i + 1, None].T, yl[i:i + 1, None].T)
                                   for i in range(len(zl))])
    a, ya = inp["a_" + fmt], inp["ya_" + fmt]
    out["compute_cost_" + fmt] = np.array([fastlogit.compute_cost(a[i:i + 1, None].T, ya[i:i + 1, None].T)
                                           for i in range(len(a))])
    # mean costs over many blocks: the fixed-order lane sums of every block, then the chunks
    zm, ym, am, yam = inp["zm_" + fmt], inp["ym_" + fmt], inp["am_" + fmt], inp["yam_" + fmt]
    out["mean_costs_" + fmt] = np.array([fastlogit.cost_from_logits(zm[None], ym[None]),
                                         fastlogit.compute_cost(am[None], yam[None])])
    for s in range(int(inp["n_shapes"])):
        X, W, b, y = inp[f"X{s}_{fmt}"], inp[f"W{s}"], float(inp[f"b{s}"]), inp[f"y{s}_{fmt}"]
        for order in "CF":
            Xo = np.asarray(X, order=order)
            key = f"{s}_{fmt}_{order}"
            out["A_" + key] = fastlogit.forward_pass(Xo, W, b)
            if fmt == "f32":     # float32 probabilities straight from the double scores
                out["A32_" + key] = fastlogit.forward_pass(Xo, W.astype(np.float32), b)
            J, dW, db = fastlogit.cost_and_gradients(Xo, W, b, y)
            out["cg_" + key] = np.concatenate([[J, db], np.ravel(dW)])
            sw = np.linspace(0.5, 2.0, len(y))
            L, g, gb, H, _ = _kernels.cost_gradient_hessian(Xo, W[:, 0], b, y, sw, 2)
            out["cgh_" + key] = np.concatenate([[L, gb], g, np.ravel(H)])
np.savez(sys.argv[2], **out)
"""


def _inputs(path):
    rng = np.random.default_rng(20261202)
    data = {"n_shapes": len(SHAPES)}
    for fmt, dtype in (("f64", np.float64), ("f32", np.float32)):
        oracle, _ = sweep_oracle("float64" if fmt == "f64" else "float32")
        z = oracle.z
        data["z_" + fmt] = z
        # per-example losses: one call per example, so every 8th sweep point
        zl = z[::8]
        y = fractional_labels(zl.astype(np.float64)).astype(dtype)
        y[::3], y[1::3] = 0, 1
        data["zl_" + fmt], data["yl_" + fmt] = zl, y
        a = np.concatenate([np.abs(rng.standard_normal(2000)) * 10.0 ** rng.integers(-300, 0, 2000),
                            rng.uniform(0, 1, 2000), 1 - rng.uniform(0, 1e-6, 500)]).astype(dtype)
        data["a_" + fmt] = np.clip(a, 0, 1)
        data["ya_" + fmt] = rng.choice([0.0, 1.0, 0.25, 0.9], len(a)).astype(dtype)
        # whole-array means: the sweep (huge |z| included) with mixed labels, and the
        # probabilities repeated over many blocks, with hard labels only in some blocks
        data["zm_" + fmt] = z
        data["ym_" + fmt] = rng.choice([0.0, 1.0, 0.3], len(z)).astype(dtype)
        am = np.tile(data["a_" + fmt], 20)
        yam = rng.choice([0.0, 1.0], len(am))
        yam[: len(am) // 2] = rng.choice([0.0, 1.0, 0.25], len(am) // 2)
        data["am_" + fmt], data["yam_" + fmt] = am, yam.astype(dtype)
        for s, (m, n) in enumerate(SHAPES):
            X = rng.standard_normal((m, n))
            X[: m // 10] *= 400.0 / np.sqrt(n)      # some scores far beyond +-745
            data[f"X{s}_{fmt}"] = X.astype(dtype)
            data[f"y{s}_{fmt}"] = rng.choice([0.0, 1.0, 0.3], m).astype(dtype)
            if fmt == "f64":
                data[f"W{s}"] = rng.standard_normal((n, 1)) * 3.0
                data[f"b{s}"] = rng.standard_normal()
    np.savez(path, **data)


# glibc picks its fma() at load time: the FMA instruction where the CPU has one, else a
# correctly rounded software fma (about 150 ns a call).  This tunable makes it take the
# software path on this machine too, as on a CPU without FMA (glibc >= 2.33 honours it).
SOFTWARE_FMA = {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-FMA"}
ON_GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def _run_child(isa, inputs, out, env=()):
    env = dict(BASE_ENV, FASTLOGIT_ISA=isa, **dict(env))
    subprocess.run([sys.executable, "-c", CHILD, str(inputs), str(out), str(TESTS), isa],
                   env=env, cwd=CHILD_CWD, check=True, timeout=900)
    with np.load(out) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("isa")
    inputs = tmp / "inputs.npz"
    _inputs(inputs)
    got = {isa: _run_child(isa, inputs, tmp / f"{isa}.npz") for isa in RUNNABLE}
    if ON_GLIBC:   # the baseline clone as a CPU without FMA runs it: glibc's software fma
        got["baseline, software fma"] = _run_child("baseline", inputs, tmp / "soft.npz",
                                                   SOFTWARE_FMA)
    return got


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.uint64 if a.dtype.itemsize == 8 else np.uint32)


@pytest.mark.parametrize("isa", [i for i in _kernels.ISA_NAMES if i != "baseline"]
                         + ["baseline, software fma"])
def test_every_clone_gives_the_baseline_bits(results, isa):
    if isa not in results:
        pytest.skip(f"this CPU cannot run the {isa} clone")
    base, other = results["baseline"], results[isa]
    assert sorted(base) == sorted(other)
    differ = []
    for key in sorted(base):
        a, b = base[key], other[key]
        assert a.shape == b.shape and a.dtype == b.dtype, key
        n = int(np.count_nonzero(_bits(a) != _bits(b)))
        if n:
            i = int(np.flatnonzero(_bits(a).ravel() != _bits(b).ravel())[0])
            differ.append(f"{key}: {n} of {a.size} differ (first at {i}: "
                          f"{a.ravel()[i]!r} vs {b.ravel()[i]!r})")
    assert not differ, "\n".join(differ)


def test_the_comparison_sees_scores_beyond_745(results):
    # guards the inputs: the general-X cases must reach the tails of the exp
    A = results["baseline"]["A_0_f64_C"]
    assert A.min() == 0.0 or A.min() < 1e-300
    assert A.max() == 1.0


def test_a_forced_clone_is_reported_and_runs():
    isa = RUNNABLE[-1]
    code = ("import fastlogit, fastlogit._config as c; i = c.build_info(); "
            "print(i['math_isa'], '|', i['math_isa_chosen'])")
    got = subprocess.run([sys.executable, "-c", code], env=dict(BASE_ENV, FASTLOGIT_ISA=isa),
                         cwd=CHILD_CWD, capture_output=True, text=True, check=True).stdout.strip()
    assert got == f"{isa} | forced by FASTLOGIT_ISA"
    env = {k: v for k, v in BASE_ENV.items() if k != "FASTLOGIT_ISA"}
    got = subprocess.run([sys.executable, "-c", code], env=env, cwd=CHILD_CWD, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert got == f"{RUNNABLE[-1]} | auto-detected"


@pytest.mark.parametrize("value, message", [
    ("avx3", "expected one of baseline, avx2, avx512"),
    ("avx512", "this CPU cannot run the avx512 code path"),
])
def test_a_clone_that_cannot_run_is_an_error_at_import(value, message):
    if value in RUNNABLE:
        pytest.skip(f"this CPU runs {value}")
    proc = subprocess.run([sys.executable, "-c", "import fastlogit"], cwd=CHILD_CWD,
                          env=dict(BASE_ENV, FASTLOGIT_ISA=value), capture_output=True, text=True)
    assert proc.returncode != 0
    assert "FASTLOGIT_ISA" in proc.stderr and message in proc.stderr, proc.stderr[-800:]


# Exact a*b + c rounded to nearest even, for the fma check below.
FMA_CHECK = r"""
import ctypes, ctypes.util, random, sys
from fractions import Fraction
libm = ctypes.CDLL(ctypes.util.find_library("m"))
libm.fma.restype = ctypes.c_double
libm.fma.argtypes = [ctypes.c_double] * 3
rnd = random.Random(7)
def draw():
    return rnd.uniform(1, 2) * 2.0 ** rnd.randint(-540, 500) * rnd.choice((-1, 1))
bad = 0
for i in range(30000):
    a, b = draw(), draw()
    p = Fraction(a) * Fraction(b)
    kind = i % 4
    if kind == 0:
        c = draw()
    elif kind == 1:   # a*b - fl(a*b): the exact product error (cancellation)
        c = -float(p) if abs(p) < 2 ** 1000 else 1.0
    elif kind == 2:   # near a halfway case of the sum
        c = -float(p) * (1 + rnd.choice((-1, 1)) * 2.0 ** -rnd.randint(20, 60)) if abs(p) < 2 ** 1000 else 1.0
    else:             # tiny and subnormal results
        a, b = a * 2.0 ** -500, b * 2.0 ** -500 if abs(a) > 2 ** -300 else b
        p = Fraction(a) * Fraction(b)
        c = rnd.choice((0.0, 5e-324, -5e-324, 2.2e-308, -float(p) if p != 0 else 1e-310))
    exact = p + Fraction(c)
    try:
        want = float(exact)
    except OverflowError:
        continue
    got = libm.fma(a, b, c)
    if got != want or (got == 0 and str(got) != str(want)):
        bad += 1
        if bad < 5: print("fma(%r, %r, %r) = %r, exact %r" % (a, b, c, got, want))
print("bad", bad)
sys.exit(bad != 0)
"""


@pytest.mark.skipif(not ON_GLIBC, reason="checks glibc's fma")
def test_glibcs_software_fma_is_correctly_rounded():
    # The baseline clone calls libm's fma(); its bits equal the FMA instruction's only
    # if that fma is correctly rounded (C99 requires it; glibc's software path is).
    proc = subprocess.run([sys.executable, "-c", FMA_CHECK], env=dict(BASE_ENV, **SOFTWARE_FMA),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-1000:]
