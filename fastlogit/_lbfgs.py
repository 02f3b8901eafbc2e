"""SciPy's L-BFGS-B with scikit-learn's stopping rule, on any objective.

Internal API (not exported from :mod:`fastlogit`): the one L-BFGS driver of
the in-memory fit (:func:`fastlogit.fit`) and of the distributed one
(:func:`fastlogit.dask.fit`).  The objective is a callable
``theta -> (J, grad)``; each call is one pass over X in both.

Two things beyond a plain ``scipy.optimize.minimize``:

* **Diagonal scaling** (optional ``scale``): L-BFGS runs on u with
  theta = scale * u.  With scale ~ D^(-1/2) (D an estimate of the Hessian's
  diagonal) columns of very different scales stop hurting it (the
  ill-conditioned bench case: 26 evaluations instead of 1121, not converged).
  The stopping rule is always on the gradient of J in theta, never of the
  scaled problem.
* **The stopping rule is checked at every evaluation**: the first evaluated
  point with max |gradient| <= tol (scikit-learn's criterion) and the lowest J
  so far ends the run, even inside a line search.  L-BFGS-B's own gradient test
  (which would see the scaled gradient) is switched off.

BLAS calls inside L-BFGS-B (vectors of n + 1 doubles) run on one thread when
threadpoolctl is installed: a threaded BLAS waking its threads for such tiny
work cost 5-10 ms per iteration on a busy 2-core machine.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["lbfgs"]

_EPS = np.finfo(np.float64).eps

_controller = None


def _one_blas_thread():
    """A context manager holding BLAS to one thread (a no-op without threadpoolctl)."""
    global _controller
    import contextlib
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
            _controller = ThreadpoolController()
        except Exception:            # not installed, or cannot inspect this process
            _controller = False
    if not _controller:
        return contextlib.nullcontext()
    return _controller.limit(limits=1, user_api="blas")


class _Converged(Exception):
    """Raised from the objective to stop L-BFGS-B at a point meeting the rule."""


def lbfgs(objective: Callable[[NDArray], "tuple[float, NDArray]"], theta0: NDArray, J0: float,
          grad0: NDArray, tol: float, max_iter: int, max_evals: int | None = None,
          scale: NDArray | None = None,
          ) -> tuple[NDArray, float, NDArray, int, str, bool]:
    """Minimise ``objective`` from ``theta0`` (where it gave ``J0, grad0``).

    Stops when max |gradient| <= tol (scikit-learn's lbfgs criterion), after
    ``max_iter`` iterations or ``max_evals`` evaluations (15000 if None), or
    when the cost cannot decrease any further in floating point.  ``scale``
    (positive, finite, the shape of theta): run on u = theta / scale.
    Returns ``(theta, J, grad, n_iter, message, converged)``.
    """
    try:
        from scipy.optimize import minimize
    except ImportError as exc:
        raise ImportError("fastlogit.fit(solver='lbfgs') needs SciPy: "
                          "pip install fastlogit[sklearn]") from exc
    theta0 = np.asarray(theta0, dtype=np.float64)
    grad0 = np.asarray(grad0, dtype=np.float64)
    if not grad0.size or float(np.max(np.abs(grad0))) <= tol:
        return theta0, float(J0), grad0, 0, "max |gradient| <= tol", True
    c = np.ones_like(theta0) if scale is None else np.asarray(scale, dtype=np.float64)
    u0 = theta0 / c
    best = {"J": float(J0), "theta": theta0, "grad": grad0}
    first = [True]
    n_iter = [0]

    def fun(u):
        # L-BFGS-B starts by evaluating u0, which we already have.
        if first and np.array_equal(u, u0):
            first.clear()
            return float(J0), c * grad0
        first.clear()
        theta = c * u
        J, grad = objective(theta)
        # Near the optimum J moves by rounding only: a point within J's rounding of the
        # best one that meets the gradient rule ends the run.
        if J <= best["J"] + 4 * _EPS * max(abs(best["J"]), 1.0):
            if float(np.max(np.abs(grad))) <= tol:
                best.update(J=J, theta=theta, grad=grad)
                raise _Converged
            if J <= best["J"]:
                best.update(J=J, theta=theta, grad=grad)
        return J, c * grad

    def count(_):
        n_iter[0] += 1

    # gtol = 0: the gradient rule is fun's (on theta's gradient); ftol near machine precision
    # so that a flat cost alone does not stop it (scikit-learn accepts that stop too).  When
    # that ftol stop comes first, one more run from there (its memory reset) usually takes the
    # gradient the rest of the way in a few evaluations; a second ftol stop is accepted.
    u_start, nit = u0, 0
    for attempt in range(2):
        try:
            with _one_blas_thread():
                res = minimize(fun, u_start, method="L-BFGS-B", jac=True, callback=count,
                               options={"maxiter": max(max_iter - nit, 1), "maxls": 50,
                                        "gtol": 0.0, "maxfun": max_evals if max_evals else 15000,
                                        "ftol": 64 * np.finfo(float).eps})
        except _Converged:
            return (best["theta"], best["J"], np.asarray(best["grad"], dtype=np.float64),
                    n_iter[0] + 1, "max |gradient| <= tol", True)
        nit += int(res.nit)
        if res.status != 0 or max_evals or nit >= max_iter:
            break
        u_start = best["theta"] / c
    message = res.message if isinstance(res.message, str) else res.message.decode()
    theta, J = c * res.x, float(res.fun)
    grad = np.asarray(res.jac, dtype=np.float64) / c
    if best["J"] < J and float(np.max(np.abs(best["grad"]))) <= float(np.max(np.abs(grad))):
        # the run ended on a worse trial point: keep the best one
        theta, J, grad = best["theta"], best["J"], np.asarray(best["grad"], dtype=np.float64)
    # status 0 here: the cost stopped decreasing at the resolution of floating point
    # (ftol), which scikit-learn also counts as converged.
    return theta, J, grad, nit, message, res.status == 0
