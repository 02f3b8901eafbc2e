"""The registry of implementations: for every kernel, fastlogit, the textbook
NumPy reference and the peers (SciPy, scikit-learn, numexpr, PyTorch, JAX), each
imported lazily and skipped when not installed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from fastlogit.bench.problems import Problem

PEERS = ("scipy", "sklearn", "numexpr", "torch", "jax")
# Implementations in the order the tables show them.
IMPL_ORDER = ("reference", "fastlogit", "fastlogit out=", "scipy", "sklearn", "numexpr", "torch",
              "jax")


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


def import_peer(name: str):
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
        elif name == "jax":
            mod = _import_jax_on_one_core()
        else:
            raise ValueError(name)
    except ImportError:
        return None
    return mod


def _import_jax_on_one_core():
    """JAX, its CPU backend started while this thread runs on one core: XLA's thread pool
    inherits that affinity, so JAX computes on one core (it has no thread-count setter,
    and its matrix-vector products used both cores here).  Hence JAX rows only at 1 thread."""
    import os
    import sys
    pin = "jax" not in sys.modules and hasattr(os, "sched_setaffinity")
    allowed = os.sched_getaffinity(0) if pin else None
    if pin:
        os.sched_setaffinity(0, {min(allowed)})
    try:
        import jax
        # float64 arrays stay float64 (JAX's default narrows them to float32).
        jax.config.update("jax_enable_x64", True)
        jax.jit(lambda a: a @ a)(jax.numpy.ones((64, 64))).block_until_ready()
    finally:
        if pin:
            os.sched_setaffinity(0, allowed)
    return jax


def available_peers() -> list:
    return [p for p in PEERS if import_peer(p) is not None]


def _torch_result(r):
    return r.numpy() if hasattr(r, "numpy") else r


def _jax(problem: Problem, threads: int, peers) -> list:
    """JAX's jit-compiled versions (XLA on the CPU, on one core: see
    _import_jax_on_one_core), inputs placed on the device once; 1-thread rows only."""
    if "jax" not in peers or threads != 1:
        return []
    jax = import_peer("jax")
    k, a = problem.kernel, problem.arrays
    on_device = {name: jax.device_put(v) for name, v in a.items() if isinstance(v, np.ndarray)}

    def timed(fn, *args):
        return lambda: fn(*args).block_until_ready()

    def as_numpy(shape=None):
        return lambda r: (np.asarray(r) if shape is None else np.asarray(r).reshape(shape))

    if k in ("sigmoid", "log_sigmoid"):
        fn = jax.jit(jax.nn.sigmoid if k == "sigmoid" else jax.nn.log_sigmoid)
        return [Impl("jax", timed(fn, on_device["z"]), as_numpy(), False,
                     note=f"jit(jax.nn.{k})")]
    if k == "forward_pass":
        X, W = on_device["X"], on_device["W"]
        fn = jax.jit(lambda X, w, b: jax.nn.sigmoid(X @ w + b))
        return [Impl("jax", timed(fn, X, W[:, 0], a["b"]), as_numpy((1, -1)), False,
                     note="jit(sigmoid(X @ w + b))")]
    if k == "cost_from_logits":
        # softplus(z) - y z is the loss written as log(1 + e^z) - y z.
        fn = jax.jit(lambda z, y: jax.numpy.mean(jax.nn.softplus(z) - y * z))
        return [Impl("jax", timed(fn, on_device["Z"], on_device["Y"]), lambda r: float(r), False,
                     note="jit(mean(softplus(z) - y z))")]
    return []


def _elementwise(problem: Problem, threads: int, peers) -> list:
    """sigmoid and log_sigmoid."""
    import fastlogit
    from fastlogit import reference

    k, a = problem.kernel, problem.arrays
    impls: list[Impl] = []
    torch = import_peer("torch") if "torch" in peers else None
    tt = (lambda v: torch.from_numpy(np.ascontiguousarray(v))) if torch else None
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
        sp = import_peer("scipy")
        sp_fn = sp.expit if k == "sigmoid" else sp.log_expit
        impls.append(Impl("scipy", lambda: sp_fn(z),
                          note="scipy.special." + sp_fn.__name__))
    if "numexpr" in peers:
        ne = import_peer("numexpr")
        expr = ("1 / (1 + exp(-z))" if k == "sigmoid"
                else "where(z < 0, z - log1p(exp(z)), -log1p(exp(-z)))")
        impls.append(Impl("numexpr", lambda: ne.evaluate(expr, local_dict={"z": z}),
                          note=expr))
    if torch:
        zt = tt(z)
        t_fn = torch.sigmoid if k == "sigmoid" else torch.nn.functional.logsigmoid
        impls.append(Impl("torch", lambda: t_fn(zt), _torch_result, False,
                          note="torch." + ("sigmoid" if k == "sigmoid" else "nn.functional.logsigmoid")))
    return impls + _jax(problem, threads, peers)


def _rows(problem: Problem, threads: int, peers) -> list:
    """forward_pass and predict."""
    import fastlogit
    from fastlogit import reference

    k, a = problem.kernel, problem.arrays
    impls: list[Impl] = []
    torch = import_peer("torch") if "torch" in peers else None
    tt = (lambda v: torch.from_numpy(np.ascontiguousarray(v))) if torch else None
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
            sp = import_peer("scipy")
            impls.append(Impl("scipy", lambda: sp.expit(X @ W + b).T, note="expit(X @ W + b)"))
        if torch:
            Xt, wt = tt(X), tt(W[:, 0])
            impls.append(Impl("torch", lambda: torch.sigmoid(torch.mv(Xt, wt) + b),
                              lambda r: r.numpy().reshape(1, -1), False,
                              note="torch.sigmoid(X @ w + b)"))
        impls += _jax(problem, threads, peers)
    else:
        impls += [
            Impl("reference", lambda: reference.predict(X, W, b)),
            Impl("fastlogit", lambda: fastlogit.predict(X, W, b, n_threads=threads)),
        ]
    return impls


def _compute_cost(problem: Problem, threads: int, peers) -> list:
    """compute_cost."""
    import fastlogit
    from fastlogit import reference

    a = problem.arrays
    impls: list[Impl] = []
    torch = import_peer("torch") if "torch" in peers else None
    tt = (lambda v: torch.from_numpy(np.ascontiguousarray(v))) if torch else None
    A, Y = a["A"], a["Y"]
    m = A.shape[1]
    impls += [
        Impl("reference", lambda: reference.compute_cost(A, Y)),
        Impl("fastlogit", lambda: fastlogit.compute_cost(A, Y, n_threads=threads)),
    ]
    if "scipy" in peers:
        sp = import_peer("scipy")
        impls.append(Impl("scipy", lambda: -float(np.mean(sp.xlogy(Y, A) + sp.xlog1py(1 - Y, -A))),
                          note="xlogy(y, a) + xlog1py(1 - y, -a)"))
    if "sklearn" in peers:
        from sklearn.metrics import log_loss
        Yv, Av = Y[0], A[0]
        impls.append(Impl("sklearn", lambda: log_loss(Yv, Av), note="sklearn.metrics.log_loss"))
    if "numexpr" in peers:
        ne = import_peer("numexpr")
        expr = "sum(y * log(a) + (1 - y) * log1p(-a))"
        impls.append(Impl("numexpr", lambda: -float(ne.evaluate(expr, local_dict={"a": A, "y": Y})) / m,
                          note=expr))
    if torch:
        At, Yt = tt(A), tt(Y)
        impls.append(Impl("torch", lambda: torch.nn.functional.binary_cross_entropy(At, Yt),
                          lambda r: float(r), False, note="binary_cross_entropy"))
    return impls


def _cost_from_logits(problem: Problem, threads: int, peers) -> list:
    """cost_from_logits."""
    import fastlogit
    from fastlogit import reference

    a = problem.arrays
    impls: list[Impl] = []
    torch = import_peer("torch") if "torch" in peers else None
    tt = (lambda v: torch.from_numpy(np.ascontiguousarray(v))) if torch else None
    Z, Y = a["Z"], a["Y"]
    m = Z.shape[1]
    impls += [
        Impl("reference", lambda: reference.cost_from_logits(Z, Y)),
        Impl("fastlogit", lambda: fastlogit.cost_from_logits(Z, Y, n_threads=threads)),
    ]
    if "scipy" in peers:
        sp = import_peer("scipy")
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
        ne = import_peer("numexpr")
        expr = "sum(where(z > 0, z, 0) - z * y + log1p(exp(-abs(z))))"
        impls.append(Impl("numexpr", lambda: float(ne.evaluate(expr, local_dict={"z": Z, "y": Y})) / m,
                          note=expr))
    if torch:
        Zt, Yt = tt(Z), tt(Y)
        impls.append(Impl("torch",
                          lambda: torch.nn.functional.binary_cross_entropy_with_logits(Zt, Yt),
                          lambda r: float(r), False, note="binary_cross_entropy_with_logits"))
    return impls + _jax(problem, threads, peers)


def _gradients(problem: Problem, threads: int, peers) -> list:
    """gradients and cost_and_gradients."""
    import fastlogit
    from fastlogit import reference

    k, a = problem.kernel, problem.arrays
    impls: list[Impl] = []
    torch = import_peer("torch") if "torch" in peers else None
    tt = (lambda v: torch.from_numpy(np.ascontiguousarray(v))) if torch else None
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


# The registry: kernel -> the builder of its implementations.
BUILDERS: dict[str, Callable[..., list]] = {
    "sigmoid": _elementwise, "log_sigmoid": _elementwise,
    "forward_pass": _rows, "predict": _rows,
    "compute_cost": _compute_cost, "cost_from_logits": _cost_from_logits,
    "gradients": _gradients, "cost_and_gradients": _gradients,
}


def implementations(problem: Problem, threads: int, peers=PEERS) -> list:
    """Every implementation of ``problem.kernel`` available here, at ``threads``."""
    installed = [p for p in peers if import_peer(p) is not None]
    impls = BUILDERS[problem.kernel](problem, threads, installed)
    for impl in impls:
        if impl.name == "reference":
            impl.call = quiet(impl.call)
    return impls


def quiet(fn: Callable[[], Any]) -> Callable[[], Any]:
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


