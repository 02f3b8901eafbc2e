"""Newton's method on an oracle ``theta -> (J, grad, H)``.

The driver knows nothing about X: the in-memory oracle is one call of the
compiled kernel ``cost_gradient_hessian`` (one pass over X), and a distributed
oracle only has to tree-reduce the same kernel's per-block sums into the same
``(J, grad, H)``.  Everything here is O(n^3) work on the small matrix H.

Step rule: damped Newton with Armijo backtracking on the true J, so J never
increases.  Every trial point is one oracle call, so an accepted step brings
its gradient and Hessian with it: one pass over X per iteration unless the
line search backtracks.

Stopping rule (``tol``): the largest absolute gradient component of J is
<= tol (scikit-learn's lbfgs criterion, on the same scaled objective), AND
the Newton decrement predicts that a further step would lower J by at most
max(tol^2, the rounding of J).  The second condition makes the result at
least as close to the optimum as scikit-learn's solvers at the same tol: a
gradient just under tol can still leave J noticeably above its minimum when
the curvature is small; one more Newton step then costs one pass.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from fastlogit import _kernels

__all__ = ["newton", "newton_direction", "newton_direction_numpy"]

_EPS = np.finfo(np.float64).eps
# Armijo's sufficient-decrease constant (Nocedal & Wright's usual 1e-4).
_ARMIJO = 1e-4
_MAX_HALVINGS = 40

Oracle = Callable[[NDArray], "tuple[float, NDArray, NDArray]"]


def newton_direction(H: NDArray, grad: NDArray) -> NDArray:
    """Solve ``H d = -grad`` by Cholesky; a singular or indefinite H gets a
    growing multiple of the identity added until it factorises (a
    Levenberg-Marquardt shift: the step shortens and turns toward -grad).

    The compiled ``_kernels.newton_direction`` (a few microseconds at n = 31
    where NumPy's cholesky + solve cost ~40: on small data that was a fifth of
    a fit); its bits depend on H and g only, not on NumPy's LAPACK."""
    return _kernels.newton_direction(np.ascontiguousarray(H, dtype=np.float64),
                                     np.ascontiguousarray(grad, dtype=np.float64))


def newton_direction_numpy(H: NDArray, grad: NDArray) -> NDArray:
    """Reference twin of :func:`newton_direction` with NumPy's LAPACK (the same
    shifts; LU for the solve, so equal within rounding, not bit for bit)."""
    n = H.shape[0]
    if n == 0:
        return np.zeros(0)
    scale = float(np.max(np.abs(np.diag(H)))) if np.all(np.isfinite(H)) else math.nan
    if not math.isfinite(scale):
        return -grad
    shift = 0.0
    for _ in range(20):
        A = H + shift * np.eye(n) if shift else H
        try:
            np.linalg.cholesky(A)       # the test of positive definiteness
            # NumPy only (no SciPy import on this path); O(n^3) on a small matrix.
            step = np.linalg.solve(A, -grad)
        except np.linalg.LinAlgError:
            step = None
        if step is not None and np.all(np.isfinite(step)):
            return step
        shift = max(shift * 100.0, 1e-12 * max(scale, 1e-300))
    return -grad


def newton(oracle: Oracle, theta: NDArray, J: float, grad: NDArray, H: NDArray, tol: float,
           max_iter: int, give_up: Callable[[NDArray, float], str] | None = None,
           ) -> tuple[NDArray, float, NDArray, int, str, bool]:
    """Minimise J from ``theta`` (where the oracle gave ``J, grad, H``).

    ``give_up(theta, J)``, called after each accepted step, may return a
    reason to stop (not converged), e.g. that the optimum is at infinity.
    Returns ``(theta, J, grad, n_iter, message, converged)``.
    """
    n_iter = 0
    while True:
        grad_max = float(np.abs(grad).max()) if grad.size else 0.0
        step = newton_direction(H, grad)
        # Extreme X (|x| ~ 1e300) can overflow these dot products: an infinite
        # slope then fails the line search, which reports it; no RuntimeWarning.
        with np.errstate(over="ignore", invalid="ignore"):
            slope = float(grad @ step)
            if not slope < 0:                      # numerically not a descent direction
                step, slope = -grad, -float(grad @ grad)
        # -slope / 2 is the decrease a full Newton step predicts (the decrement).
        floor = 4 * _EPS * max(abs(J), 1.0)
        if grad_max <= tol and -0.5 * slope <= max(tol * tol, floor):
            return theta, J, grad, n_iter, "max |gradient| <= tol", True
        if not grad.size or grad_max == 0.0:
            return theta, J, grad, n_iter, "zero gradient", True
        if n_iter >= max_iter:
            return theta, J, grad, n_iter, "maximum number of iterations reached", False
        n_iter += 1
        # When the promised decrease is below J's rounding, J cannot guide the
        # search: a couple of trials decide (by the gradient) instead of 40.
        at_resolution = -slope <= 16 * _EPS * max(abs(J), 1.0)
        t = 1.0
        accepted = False
        for _ in range(2 if at_resolution else _MAX_HALVINGS):
            trial = theta + t * step
            J_t, grad_t, H_t = oracle(trial)
            if J_t <= J + _ARMIJO * t * slope:
                accepted = True
                break
            # Near the optimum the decrease is below J's resolution: a step that
            # does not raise J beyond rounding and shrinks the gradient is taken.
            if (J_t <= J + floor and np.all(np.isfinite(grad_t))
                    and float(np.abs(grad_t).max()) < grad_max):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            if at_resolution or grad_max <= tol:
                return theta, J, grad, n_iter, "the cost cannot decrease further in floating point", True
            return theta, J, grad, n_iter, "line search could not decrease the cost", False
        theta, J, grad, H = trial, J_t, grad_t, H_t
        reason = give_up(theta, J) if give_up is not None else ""
        if reason:
            return theta, J, grad, n_iter, reason, False
