"""``fastlogit bench``: fastlogit side by side with the NumPy reference and the peers.

For every (kernel, size, dtype, threads) it times the textbook NumPy reference,
fastlogit and whichever peers are installed (SciPy, scikit-learn, numexpr,
PyTorch), interleaving the implementations round by round so that a noisy,
shared machine slows them alike, and prints

* the median time and its spread (interquartile range / median),
* the throughput in Melem/s and GB/s (bytes the kernel must read and write),
* the speed-up over the reference at the same thread count,
* the percentage of the memory-bandwidth floor: the time this machine takes,
  measured on the spot with the same number of threads, to read the same
  input bytes (``np.add.reduce`` over the actual inputs) and write the same
  output bytes (``np.copyto`` into a touched buffer),
* the peak extra memory of one call (tracemalloc sees NumPy's allocations,
  not PyTorch's),
* whether the result matches the reference (checked after timing).

The case definitions here are shared with the pytest-benchmark suite in
``benchmarks/``.  Peers are imported lazily; a missing one is skipped.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

KERNELS = ("sigmoid", "log_sigmoid", "forward_pass", "predict", "compute_cost",
           "cost_from_logits", "gradients", "cost_and_gradients")
DEFAULT_KERNELS = ("sigmoid", "log_sigmoid", "forward_pass", "compute_cost",
                   "cost_from_logits", "cost_and_gradients")
ELEMENTWISE = ("sigmoid", "log_sigmoid", "compute_cost", "cost_from_logits")
# The sizes of the performance targets (issue 5).
DEFAULT_M = (10_000_000,)
DEFAULT_SHAPES = {
    "forward_pass": ((1_000_000, 3), (1_000_000, 100), (100_000, 1000)),
    "predict": ((1_000_000, 3),),
    "gradients": ((1_000_000, 3), (1_000_000, 100)),
    "cost_and_gradients": ((1_000_000, 3), (1_000_000, 100)),
}
QUICK_M = (1_000_000,)
QUICK_SHAPES = ((100_000, 3), (100_000, 100))

# Implementations in the order the table shows them; peers are optional.
IMPL_ORDER = ("reference", "fastlogit", "fastlogit out=", "scipy", "sklearn", "numexpr", "torch")
PEERS = ("scipy", "sklearn", "numexpr", "torch")


# ---------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------

@dataclass
class Problem:
    """Inputs of one benchmark case and the bytes any implementation must move."""

    kernel: str
    shape: tuple
    dtype: np.dtype
    arrays: dict
    read_bytes: int
    write_bytes: int
    elements: int

    @property
    def label(self) -> str:
        size = "x".join(_fmt_count(s) for s in self.shape)
        return f"{self.kernel} {size} {self.dtype.name}"

    @property
    def inputs(self) -> list:
        """The arrays a kernel has to read (for the bandwidth floor)."""
        return [a for k, a in self.arrays.items() if k in ("z", "X", "A", "Z", "Y")]


def _fmt_count(v: int) -> str:
    if v >= 1000 and v % 10 ** int(np.log10(v)) == 0:
        return f"10^{int(np.log10(v))}"
    return str(v)


def make_problem(kernel: str, shape: tuple, dtype, seed: int = 0) -> Problem:
    """Random inputs of a realistic spread for ``kernel``.

    ``shape`` is ``(m,)`` for element-wise kernels and costs, ``(m, n)`` for
    kernels of X.  Scores have standard deviation 4 (a trained model's
    spread), so exp is exercised over its range, not at one point.
    """
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    isz = dtype.itemsize
    if kernel in ELEMENTWISE:
        (m,) = shape
        z = rng.standard_normal(m, dtype=np.float64) * 4.0
        arrays: dict[str, Any] = {}
        if kernel in ("sigmoid", "log_sigmoid"):
            arrays["z"] = z.astype(dtype)
            return Problem(kernel, (m,), dtype, arrays, m * isz, m * isz, m)
        Y = (rng.random(m) < 1.0 / (1.0 + np.exp(-z))).astype(dtype).reshape(1, m)
        if kernel == "compute_cost":
            # A model's probabilities, kept off exactly 0 and 1 in this dtype so
            # that the textbook reference does not take log(0).
            eps = 4 * float(np.finfo(dtype).eps)
            A = np.clip(1.0 / (1.0 + np.exp(-z)), eps, 1 - eps)
            arrays["A"] = A.astype(dtype).reshape(1, m)
        else:
            arrays["Z"] = z.astype(dtype).reshape(1, m)
        arrays["Y"] = Y
        return Problem(kernel, (m,), dtype, arrays, 2 * m * isz, 0, m)
    m, n = shape
    X = rng.standard_normal((m, n), dtype=np.float32 if dtype == np.float32 else np.float64)
    # Scores X.W + b of standard deviation ~4, as in the element-wise cases.
    W = (rng.standard_normal((n, 1)) * (4.0 / np.sqrt(n))).astype(dtype)
    arrays = {"X": X, "W": W, "b": 0.25}
    if kernel in ("forward_pass", "predict"):
        out_isz = 8 if kernel == "predict" else isz
        return Problem(kernel, (m, n), dtype, arrays, m * n * isz, m * out_isz, m * n)
    z = (X @ W.astype(np.float64))[:, 0] + 0.25
    arrays["Y"] = (rng.random(m) < 1.0 / (1.0 + np.exp(-z))).astype(dtype).reshape(1, m)
    return Problem(kernel, (m, n), dtype, arrays, (m * n + m) * isz, 0, m * n)


# ---------------------------------------------------------------------------
# Implementations
# ---------------------------------------------------------------------------

@dataclass
class Impl:
    """One way of computing a kernel: ``call()`` runs it once."""

    name: str
    call: Callable[[], Any]
    # Turns call()'s return value into plain NumPy/float for the check.
    result: Callable[[Any], Any] = lambda r: r
    # Peak memory is meaningful only where tracemalloc sees the allocations.
    traced_memory: bool = True
    note: str = ""


def _import_peer(name: str):
    """The peer's module, or None when it is not installed."""
    try:
        if name == "scipy":
            import scipy.special as mod
        elif name == "sklearn":
            import sklearn as mod
        elif name == "numexpr":
            import numexpr as mod
        elif name == "torch":
            import torch as mod
        else:
            raise ValueError(name)
    except ImportError:
        return None
    return mod


def available_peers() -> list:
    return [p for p in PEERS if _import_peer(p) is not None]


def implementations(problem: Problem, threads: int, peers=PEERS) -> list:
    """Every implementation of ``problem.kernel`` available here, at ``threads``."""
    impls = _implementations(problem, threads, peers)
    for impl in impls:
        if impl.name == "reference":
            impl.call = _quiet(impl.call)
    return impls


def _implementations(problem: Problem, threads: int, peers) -> list:
    import fastlogit
    from fastlogit import reference

    k, a = problem.kernel, problem.arrays
    impls: list[Impl] = []
    peers = [p for p in peers if _import_peer(p) is not None]
    torch = _import_peer("torch") if "torch" in peers else None
    tt = (lambda v: torch.from_numpy(np.ascontiguousarray(v))) if torch else None

    def totorch_result(r):
        return r.numpy() if hasattr(r, "numpy") else r

    if k in ("sigmoid", "log_sigmoid"):
        z = a["z"]
        fl_fn = getattr(fastlogit, k)
        buf = np.zeros_like(z)
        impls += [
            Impl("reference", lambda: getattr(reference, k)(z)),
            Impl("fastlogit", lambda: fl_fn(z, n_threads=threads)),
            Impl("fastlogit out=", lambda: fl_fn(z, out=buf, n_threads=threads),
                 note="reuses one output buffer"),
        ]
        if "scipy" in peers:
            sp = _import_peer("scipy")
            sp_fn = sp.expit if k == "sigmoid" else sp.log_expit
            impls.append(Impl("scipy", lambda: sp_fn(z),
                              note="scipy.special." + sp_fn.__name__))
        if "numexpr" in peers:
            ne = _import_peer("numexpr")
            expr = ("1 / (1 + exp(-z))" if k == "sigmoid"
                    else "where(z < 0, z - log1p(exp(z)), -log1p(exp(-z)))")
            impls.append(Impl("numexpr", lambda: ne.evaluate(expr, local_dict={"z": z}),
                              note=expr))
        if torch:
            zt = tt(z)
            t_fn = torch.sigmoid if k == "sigmoid" else torch.nn.functional.logsigmoid
            impls.append(Impl("torch", lambda: t_fn(zt), totorch_result, False,
                              note="torch." + ("sigmoid" if k == "sigmoid" else "nn.functional.logsigmoid")))
        return impls

    if k in ("forward_pass", "predict"):
        X, W, b = a["X"], a["W"], a["b"]
        m = X.shape[0]
        if k == "forward_pass":
            buf = np.zeros((1, m), dtype=problem.dtype)
            impls += [
                Impl("reference", lambda: reference.forward_pass(X, W, b)),
                Impl("fastlogit", lambda: fastlogit.forward_pass(X, W, b, n_threads=threads)),
                Impl("fastlogit out=",
                     lambda: fastlogit.forward_pass(X, W, b, out=buf, n_threads=threads),
                     note="reuses one output buffer"),
            ]
            if "scipy" in peers:
                sp = _import_peer("scipy")
                impls.append(Impl("scipy", lambda: sp.expit(X @ W + b).T, note="expit(X @ W + b)"))
            if torch:
                Xt, wt = tt(X), tt(W[:, 0])
                impls.append(Impl("torch", lambda: torch.sigmoid(torch.mv(Xt, wt) + b),
                                  lambda r: r.numpy().reshape(1, -1), False,
                                  note="torch.sigmoid(X @ w + b)"))
        else:
            impls += [
                Impl("reference", lambda: reference.predict(X, W, b)),
                Impl("fastlogit", lambda: fastlogit.predict(X, W, b, n_threads=threads)),
            ]
        return impls

    if k == "compute_cost":
        A, Y = a["A"], a["Y"]
        m = A.shape[1]
        impls += [
            Impl("reference", lambda: reference.compute_cost(A, Y)),
            Impl("fastlogit", lambda: fastlogit.compute_cost(A, Y, n_threads=threads)),
        ]
        if "scipy" in peers:
            sp = _import_peer("scipy")
            impls.append(Impl("scipy", lambda: -float(np.mean(sp.xlogy(Y, A) + sp.xlog1py(1 - Y, -A))),
                              note="xlogy(y, a) + xlog1py(1 - y, -a)"))
        if "sklearn" in peers:
            from sklearn.metrics import log_loss
            Yv, Av = Y[0], A[0]
            impls.append(Impl("sklearn", lambda: log_loss(Yv, Av), note="sklearn.metrics.log_loss"))
        if "numexpr" in peers:
            ne = _import_peer("numexpr")
            expr = "sum(y * log(a) + (1 - y) * log1p(-a))"
            impls.append(Impl("numexpr", lambda: -float(ne.evaluate(expr, local_dict={"a": A, "y": Y})) / m,
                              note=expr))
        if torch:
            At, Yt = tt(A), tt(Y)
            impls.append(Impl("torch", lambda: torch.nn.functional.binary_cross_entropy(At, Yt),
                              lambda r: float(r), False, note="binary_cross_entropy"))
        return impls

    if k == "cost_from_logits":
        Z, Y = a["Z"], a["Y"]
        m = Z.shape[1]
        impls += [
            Impl("reference", lambda: reference.cost_from_logits(Z, Y)),
            Impl("fastlogit", lambda: fastlogit.cost_from_logits(Z, Y, n_threads=threads)),
        ]
        if "scipy" in peers:
            sp = _import_peer("scipy")
            impls.append(Impl("scipy", lambda: -float(np.mean(Y * sp.log_expit(Z) + (1 - Y) * sp.log_expit(-Z))),
                              note="y log_expit(z) + (1 - y) log_expit(-z)"))
        if "sklearn" in peers:
            try:
                from sklearn._loss.loss import HalfBinomialLoss
            except ImportError:
                HalfBinomialLoss = None
            if HalfBinomialLoss is not None:
                loss = HalfBinomialLoss()
                Zv, Yv = Z[0], Y[0]
                impls.append(Impl("sklearn",
                                  lambda: float(np.mean(loss.loss(Yv, Zv, n_threads=threads))),
                                  note="HalfBinomialLoss().loss(...).mean()"))
        if "numexpr" in peers:
            ne = _import_peer("numexpr")
            expr = "sum(where(z > 0, z, 0) - z * y + log1p(exp(-abs(z))))"
            impls.append(Impl("numexpr", lambda: float(ne.evaluate(expr, local_dict={"z": Z, "y": Y})) / m,
                              note=expr))
        if torch:
            Zt, Yt = tt(Z), tt(Y)
            impls.append(Impl("torch",
                              lambda: torch.nn.functional.binary_cross_entropy_with_logits(Zt, Yt),
                              lambda r: float(r), False, note="binary_cross_entropy_with_logits"))
        return impls

    # gradients and cost_and_gradients
    X, W, b, Y = a["X"], a["W"], a["b"], a["Y"]
    if k == "gradients":
        impls += [
            Impl("reference", lambda: reference.gradients(X, W, b, Y)),
            Impl("fastlogit", lambda: fastlogit.gradients(X, W, b, Y, n_threads=threads)),
        ]
        return impls
    impls += [
        Impl("reference", lambda: reference.cost_and_gradients(X, W, b, Y)),
        Impl("fastlogit", lambda: fastlogit.cost_and_gradients(X, W, b, Y, n_threads=threads)),
    ]
    if "sklearn" in peers:
        try:
            from sklearn._loss.loss import HalfBinomialLoss
            from sklearn.linear_model._linear_loss import LinearModelLoss
        except ImportError:
            LinearModelLoss = None
        if LinearModelLoss is not None:
            lml = LinearModelLoss(base_loss=HalfBinomialLoss(), fit_intercept=True)
            coef = np.r_[W[:, 0], b].astype(problem.dtype)
            Yv = Y[0]

            def sk_result(r):
                J, g = r
                return float(J), g[:-1].reshape(-1, 1), float(g[-1])

            impls.append(Impl("sklearn",
                              lambda: lml.loss_gradient(coef, X, Yv, l2_reg_strength=0.0,
                                                        n_threads=threads),
                              sk_result, note="LinearModelLoss.loss_gradient (lbfgs's objective)"))
    if torch:
        Xt, Yt = tt(X), tt(Y[0])
        w0 = torch.from_numpy(W[:, 0].copy())
        b0 = torch.tensor(b, dtype=w0.dtype)
        F = torch.nn.functional

        def torch_autograd():
            w = w0.clone().requires_grad_(True)
            bb = b0.clone().requires_grad_(True)
            J = F.binary_cross_entropy_with_logits(torch.mv(Xt, w) + bb, Yt)
            J.backward()
            return J, w.grad, bb.grad

        impls.append(Impl("torch", torch_autograd,
                          lambda r: (float(r[0].detach()), r[1].numpy().reshape(-1, 1), float(r[2])), False,
                          note="autograd of binary_cross_entropy_with_logits"))
    return impls


def _quiet(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` with NumPy's floating-point warnings off: the textbook reference
    overflows or takes log(0) on some inputs, which is what fastlogit fixes."""
    def call():
        with np.errstate(all="ignore"):
            return fn()
    return call


def expected_result(problem: Problem):
    """The answer every implementation is checked against: the reference on
    float64 copies of the inputs (in float32 it rounds sigmoid(17) to 1 and
    returns an infinite cost)."""
    arrays = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) else v)
              for k, v in problem.arrays.items()}
    wide = Problem(problem.kernel, problem.shape, np.dtype(np.float64), arrays,
                   problem.read_bytes, problem.write_bytes, problem.elements)
    ref = next(i for i in implementations(wide, 1, peers=()) if i.name == "reference")
    return ref.result(ref.call())


def _close(x, y, rtol: float) -> bool:
    """Agreement of two results (arrays, floats or tuples of them)."""
    if isinstance(x, tuple) or isinstance(y, tuple):
        return len(x) == len(y) and all(_close(u, v, rtol) for u, v in zip(x, y))
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size != y.size:
        return False
    x, y = x.reshape(-1), y.reshape(-1)
    scale = float(np.max(np.abs(y))) if y.size else 0.0
    # Elements compare relative to themselves, tiny ones relative to the
    # largest (gradients sum many terms of both signs).
    return bool(np.allclose(x, y, rtol=rtol, atol=rtol * scale + 1e-300, equal_nan=True))


def check_tolerance(dtype) -> float:
    return 2e-3 if np.dtype(dtype) == np.float32 else 1e-7


# ---------------------------------------------------------------------------
# Thread limits
# ---------------------------------------------------------------------------

@contextlib.contextmanager
def thread_limits(threads: int):
    """Let BLAS, numexpr, PyTorch and OpenMP use ``threads`` threads inside."""
    stack = contextlib.ExitStack()
    try:
        from threadpoolctl import threadpool_limits
        stack.enter_context(threadpool_limits(limits=threads))
    except ImportError:
        pass
    ne = _import_peer("numexpr") if "numexpr" in sys.modules else None
    torch = sys.modules.get("torch")
    old_ne = ne.set_num_threads(threads) if ne else None
    old_torch = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(threads)
    try:
        with stack:
            yield
    finally:
        if ne:
            ne.set_num_threads(old_ne)
        if torch:
            torch.set_num_threads(old_torch)


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------

def _median_iqr(times: list) -> tuple[float, float]:
    med = statistics.median(times)
    if len(times) >= 4:
        q = statistics.quantiles(times, n=4)
        return med, (q[2] - q[0])
    return med, max(times) - min(times)


def time_interleaved(calls: dict, repeat: int, max_seconds: float) -> dict:
    """Median and spread of each call, measured round-robin.

    Each callable runs once untimed (imports, first-touch of reused buffers),
    then ``repeat`` times in rounds of one call each, so that load from other
    processes hits every implementation alike.  A callable slower than
    ``max_seconds / repeat`` is repeated fewer times (at least 3).
    """
    first = {}
    for name, fn in calls.items():
        t0 = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t0
    reps = {name: max(3, min(repeat, int(max_seconds / max(t, 1e-9)))) for name, t in first.items()}
    times: dict[str, list] = {name: [] for name in calls}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(max(reps.values())):
            for name, fn in calls.items():
                if r < reps[name]:
                    t0 = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: _median_iqr(ts) + (len(ts),) for name, ts in times.items()}


def peak_extra_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated (and traced) during one call of ``fn``, beyond what
    was allocated before it.  NumPy reports its array buffers to tracemalloc,
    so this counts temporaries and outputs; it does not see PyTorch's heap."""
    gc.collect()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        if started:
            tracemalloc.stop()
    return max(peak - before, 0)


def _split(arr: np.ndarray, parts: int) -> list:
    flat = arr.ravel(order="K")  # a view: inputs are contiguous
    return np.array_split(flat, parts) if parts > 1 else [flat]


class BandwidthFloor:
    """Time this machine needs, right now, to read the inputs and write the
    outputs of a problem with ``threads`` threads: ``np.add.reduce`` over each
    input and ``np.copyto`` of a scalar into a touched output-sized buffer,
    each split into ``threads`` contiguous parts run in parallel (NumPy
    releases the GIL in both)."""

    def __init__(self, problem: Problem, threads: int):
        self.inputs = problem.inputs
        self.out = np.ones(max(problem.write_bytes // 8, 0), dtype=np.float64)
        self.threads = threads
        self.pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self.pieces = [(p, "r") for a in self.inputs for p in _split(a, threads)]
        if self.out.size:
            self.pieces += [(p, "w") for p in _split(self.out, threads)]

    @staticmethod
    def _touch(piece):
        arr, mode = piece
        if mode == "r":
            np.add.reduce(arr)
        else:
            np.copyto(arr, 0.5)

    def __call__(self):
        if self.pool is None:
            for p in self.pieces:
                self._touch(p)
        else:
            # Each thread takes the same share of every array.
            list(self.pool.map(self._touch, self.pieces))

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()


# ---------------------------------------------------------------------------
# Running a set of cases
# ---------------------------------------------------------------------------

@dataclass
class Row:
    kernel: str
    size: str
    dtype: str
    threads: int
    impl: str
    median_s: float
    iqr_s: float
    repeats: int
    melem_per_s: float
    gb_per_s: float
    ratio_to_reference: float | None
    pct_of_floor: float
    floor_s: float
    peak_extra_bytes: int | None
    output_bytes: int
    matches_reference: bool | None
    note: str = ""
    extra: dict = field(default_factory=dict)


def run_case(problem: Problem, threads: int, peers, repeat: int, max_seconds: float,
             memory: bool = True, impl_filter=None) -> list:
    impls = implementations(problem, threads, peers)
    if impl_filter:
        impls = [i for i in impls if i.name in impl_filter or i.name == "reference"]
    floor = BandwidthFloor(problem, threads)
    try:
        with thread_limits(threads):
            calls = {"floor": floor}
            calls.update({i.name: i.call for i in impls})
            timed = time_interleaved(calls, repeat, max_seconds)
            results = {i.name: i.result(i.call()) for i in impls}
            mem = {i.name: (peak_extra_memory(i.call) if memory and i.traced_memory else None)
                   for i in impls}
    finally:
        floor.close()
    floor_s = timed["floor"][0]
    ref_s = timed["reference"][0]
    ref_result = expected_result(problem)
    tol = check_tolerance(problem.dtype)
    moved = problem.read_bytes + problem.write_bytes
    size = "x".join(_fmt_count(s) for s in problem.shape)
    rows = []
    for i in impls:
        med, iqr, n = timed[i.name]
        rows.append(Row(
            kernel=problem.kernel, size=size, dtype=problem.dtype.name, threads=threads,
            impl=i.name, median_s=med, iqr_s=iqr, repeats=n,
            melem_per_s=problem.elements / med / 1e6, gb_per_s=moved / med / 1e9,
            ratio_to_reference=ref_s / med, pct_of_floor=100.0 * floor_s / med, floor_s=floor_s,
            peak_extra_bytes=mem[i.name], output_bytes=problem.write_bytes,
            matches_reference=_close(results[i.name], ref_result, tol),
            note=i.note))
    return rows


def machine_info() -> dict:
    import fastlogit
    info = {"python": sys.version.split()[0], "numpy": np.__version__,
            "platform": platform.platform(), "cpu": _cpu_model(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "fastlogit": fastlogit.__version__}
    info.update({f"fastlogit_{k}": v for k, v in fastlogit.build_info().items()
                 if k in ("math_isa", "compile_args", "openmp", "serial_below_elements")})
    for peer in PEERS:
        mod = _import_peer(peer)
        if mod is not None:
            top = sys.modules[mod.__name__.split(".")[0]]
            info[peer] = getattr(top, "__version__", "?")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---------------------------------------------------------------------------
# Serial threshold sweep
# ---------------------------------------------------------------------------

def crossover(threads: int, repeat: int, sizes=None) -> list:
    """Time sigmoid and cost_from_logits on 1 and ``threads`` threads across
    sizes, calling the kernels directly (the API would force small inputs
    serial).  The smallest size from which ``threads`` threads win is where
    SERIAL_BELOW belongs."""
    from fastlogit import _kernels
    sizes = sizes or [2 ** p for p in range(10, 21)]
    rows = []
    for m in sizes:
        rng = np.random.default_rng(0)
        z = rng.standard_normal(m) * 4
        y = (rng.random(m) < 0.5).astype(np.float64)
        out = np.empty_like(z)
        X = rng.standard_normal((max(m // 8, 1), 8))
        W = rng.standard_normal(8)
        aout = np.empty(X.shape[0])
        for name, fn in (("sigmoid", lambda t: _kernels.sigmoid(z, out, t)),
                         ("cost_from_logits", lambda t: _kernels.mean_loss(z, y, True, 0.0, t)),
                         ("forward_pass n=8", lambda t: _kernels.forward_pass(X, W, 0.0, aout, t))):
            calls = {1: lambda: fn(1), threads: lambda: fn(threads)}
            reps = max(repeat, int(2e6 / m))  # many repeats for tiny sizes
            timed = time_interleaved(calls, reps, 1.0)
            rows.append({"kernel": name, "elements": m, "t1_s": timed[1][0],
                         f"t{threads}_s": timed[threads][0],
                         "speedup": timed[1][0] / timed[threads][0]})
    return rows


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

def _fmt_time(s: float) -> str:
    if s >= 1:
        return f"{s:7.2f} s "
    if s >= 1e-3:
        return f"{s * 1e3:7.2f} ms"
    return f"{s * 1e6:7.1f} us"


def _fmt_bytes(b) -> str:
    if b is None:
        return "     -"
    return f"{b / 2**20:6.1f}"


def format_table(rows: list) -> str:
    lines = []
    groups: dict = {}
    for r in rows:
        groups.setdefault((r.kernel, r.size, r.dtype), []).append(r)
    for (kernel, size, dtype), rs in groups.items():
        floors = {r.threads: r.floor_s for r in rs}
        floor_txt = ", ".join(f"{t} thr {_fmt_time(f).strip()}" for t, f in sorted(floors.items()))
        lines.append(f"\n{kernel}  {size}  {dtype}   (bandwidth floor: {floor_txt}; "
                     f"outputs {rs[0].output_bytes / 2**20:.1f} MiB)")
        lines.append(f"  {'implementation':<16}{'thr':>4}{'median':>11}{'+-IQR':>7}{'Melem/s':>9}"
                     f"{'GB/s':>7}{'x ref':>7}{'% floor':>8}{'extra MiB':>10}  ok  note")
        order = {name: i for i, name in enumerate(IMPL_ORDER)}
        for r in sorted(rs, key=lambda r: (r.threads, order.get(r.impl, 99))):
            ok = "" if r.matches_reference is None else ("yes" if r.matches_reference else "NO")
            spread = 100 * r.iqr_s / r.median_s if r.median_s else 0
            lines.append(
                f"  {r.impl:<16}{r.threads:>4}{_fmt_time(r.median_s):>11}{spread:>6.0f}%"
                f"{r.melem_per_s:>9.0f}{r.gb_per_s:>7.2f}{r.ratio_to_reference:>6.2f}x"
                f"{r.pct_of_floor:>7.0f}%{_fmt_bytes(r.peak_extra_bytes):>10}  {ok:<3} {r.note}")
    return "\n".join(lines)


def plot(rows: list, path: str) -> None:
    """Bar chart: one panel per case, speed-up over the reference per
    implementation and thread count, the bandwidth floor as a dashed line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict = {}
    for r in rows:
        groups.setdefault((r.kernel, r.size, r.dtype), []).append(r)
    n = len(groups)
    cols = min(3, n)
    nrows = (n + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 3.6 * nrows), squeeze=False)
    colours = {"reference": "#888888", "fastlogit": "#d62728", "fastlogit out=": "#ff9896",
               "scipy": "#1f77b4", "sklearn": "#ff7f0e", "numexpr": "#2ca02c", "torch": "#9467bd"}
    order = {name: i for i, name in enumerate(IMPL_ORDER)}
    for ax, ((kernel, size, dtype), rs) in zip(axes.flat, groups.items()):
        rs = sorted(rs, key=lambda r: (r.threads, order.get(r.impl, 99)))
        labels = [f"{r.impl} {r.threads}t" for r in rs]
        speed = [r.ratio_to_reference for r in rs]
        ax.barh(range(len(rs)), speed, color=[colours.get(r.impl, "#17becf") for r in rs])
        for t in sorted({r.threads for r in rs}):
            # Speed-up the floor would give, per thread count.
            ref = next(r for r in rs if r.threads == t and r.impl == "reference")
            ax.axvline(ref.median_s / ref.floor_s, ls="--" if t == 1 else ":", color="k", lw=1,
                       label=f"bandwidth floor, {t} thread{'s' if t > 1 else ''}")
        ax.set_yticks(range(len(rs)))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{kernel} {size} {dtype}", fontsize=9)
        ax.set_xlabel("speed-up over the NumPy reference (x)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.legend(fontsize=6, loc="lower right")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("fastlogit bench: higher is faster (medians)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def _count(text: str) -> int:
    value = float(text)
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number; got {text!r}")
    return int(value)


def _shape(text: str) -> tuple:
    parts = text.lower().split("x")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected a shape MxN such as 1e6x100; got {text!r}")
    return _count(parts[0]), _count(parts[1])


def _threads(text: str) -> int:
    if text == "max":
        from fastlogit import _kernels
        return max(_kernels.max_threads(), 1)
    return _count(text)


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
                             "(default: the issue's, e.g. 1e6x3 1e6x100 1e5x1000)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (m = 1e6, X 1e5x3 and 1e5x100) for a fast look")
    parser.add_argument("--dtypes", nargs="+", choices=("float64", "float32"), default=["float64"])
    parser.add_argument("--threads", nargs="+", type=_threads, default=None, metavar="T",
                        help="thread counts ('max' = all usable cores; default: 1 and max)")
    parser.add_argument("--peers", nargs="*", choices=PEERS, default=None,
                        help="peers to include (default: every installed one; none: --peers)")
    parser.add_argument("--repeat", type=int, default=9,
                        help="timed calls per implementation (median reported; default 9)")
    parser.add_argument("--max-seconds", type=float, default=4.0,
                        help="time budget per implementation and case; slow peers are repeated "
                             "fewer times, at least 3 (default 4)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory column")
    parser.add_argument("--crossover", action="store_true",
                        help="instead of the table, time 1 vs max threads from 2^10 to 2^20 "
                             "elements (where the serial threshold SERIAL_BELOW belongs)")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                        help="write the results as JSON to FILE (or stdout with no FILE)")
    parser.add_argument("--plot", default=None, metavar="FILE.png",
                        help="save a bar chart of the speed-ups (needs matplotlib)")


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


def run(args) -> int:
    """Run ``fastlogit bench`` with parsed ``args``; returns the exit status."""
    from fastlogit import _kernels
    threads = list(dict.fromkeys(args.threads or [1, max(_kernels.max_threads(), 1)]))
    peers = PEERS if args.peers is None else tuple(args.peers)
    to_stdout_json = args.json == "-"
    say = (lambda *a, **k: print(*a, file=sys.stderr, **k)) if to_stdout_json else print
    info = machine_info()
    say("fastlogit bench on " + f"{info['cpu']}, {info['usable_cores']} usable cores, "
        f"numpy {info['numpy']}, fastlogit math: {info.get('fastlogit_math_isa', '?')}")
    missing = [p for p in peers if _import_peer(p) is None]
    if missing:
        say(f"peers not installed (skipped): {', '.join(missing)}")
    if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("OPENBLAS_L2_SIZE"):
        say("note: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set; NumPy's BLAS may be handicapped")

    if args.crossover:
        t = max(threads)
        if t < 2:
            say("--crossover needs at least 2 threads")
            return 2
        rows = crossover(t, args.repeat)
        say(f"{'kernel':<18}{'elements':>10}{'1 thread':>12}{f'{t} threads':>12}{'speed-up':>10}")
        for r in rows:
            say(f"{r['kernel']:<18}{r['elements']:>10}{_fmt_time(r['t1_s']):>12}"
                f"{_fmt_time(r[f't{t}_s']):>12}{r['speedup']:>9.2f}x")
        if args.json:
            _write_json({"machine": info, "crossover": rows}, args.json)
        return 0

    rows: list[Row] = []
    for kernel, shape in cases_from_args(args):
        for dtype in args.dtypes:
            problem = make_problem(kernel, shape, dtype)
            case_rows = []
            for t in threads:
                case_rows += run_case(problem, t, peers, args.repeat, args.max_seconds,
                                      memory=not args.no_memory)
            rows += case_rows
            say(format_table(case_rows))
            del problem
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
        _write_json({"machine": info, "results": [r.__dict__ for r in rows]}, args.json)
    if args.plot:
        plot(rows, args.plot)
        say(f"bar chart written to {args.plot}")
    return 0


def _write_json(payload: dict, target: str) -> None:
    text = json.dumps(payload, indent=2, default=float)
    if target == "-":
        print(text)
    else:
        with open(target, "w") as f:
            f.write(text + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastlogit bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
