"""SciPy's L-BFGS-B with scikit-learn's stopping options, on any objective.

Internal API (not exported from :mod:`fastlogit`): the one L-BFGS driver of
the in-memory fit (:func:`fastlogit.fit`) and of the distributed one
(:func:`fastlogit.dask.fit`).  The objective is a callable
``theta -> (J, grad)``; each call is one pass over X in both.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["lbfgs"]


def lbfgs(objective: Callable[[NDArray], "tuple[float, NDArray]"], theta0: NDArray, J0: float,
          grad0: NDArray, tol: float, max_iter: int, max_evals: int | None = None,
          ) -> tuple[NDArray, float, NDArray, int, str, bool]:
    """Minimise ``objective`` from ``theta0`` (where it gave ``J0, grad0``).

    Stops when max |gradient| <= tol (scikit-learn's lbfgs criterion), after
    ``max_iter`` iterations or ``max_evals`` evaluations (15000 if None), or
    when the cost cannot decrease any further in floating point.
    Returns ``(theta, J, grad, n_iter, message, converged)``.
    """
    try:
        from scipy.optimize import minimize
    except ImportError as exc:
        raise ImportError("fastlogit.fit(solver='lbfgs') needs SciPy: "
                          "pip install fastlogit[sklearn]") from exc
    first = [theta0, J0, grad0]

    def fun(theta):
        # L-BFGS-B starts by evaluating theta0, which we already have.
        if first and np.array_equal(theta, first[0]):
            _, J, grad = first
            first.clear()
            return J, grad.copy()
        first.clear()
        return objective(theta)

    # Options as scikit-learn's lbfgs solver: stop on max |gradient| <= tol;
    # ftol near machine precision so that a flat cost alone does not stop it.
    res = minimize(fun, theta0, method="L-BFGS-B", jac=True,
                   options={"maxiter": max_iter, "maxls": 50, "gtol": tol,
                            "maxfun": max_evals if max_evals else 15000,
                            "ftol": 64 * np.finfo(float).eps})
    grad = np.asarray(res.jac, dtype=np.float64)
    message = res.message if isinstance(res.message, str) else res.message.decode()
    # status 0: max |gradient| <= tol, or the cost stopped decreasing at the
    # resolution of floating point (ftol), which scikit-learn also counts as
    # converged.
    return res.x, float(res.fun), grad, int(res.nit), message, res.status == 0
