"""Training on the fused kernel: gradient descent, L-BFGS and Newton.

Every optimiser here evaluates the objective

    J(W, b) = sum_i s_i loss_i / sum_i s_i + (l2 / 2) ||W||^2

(``loss_i`` the binary cross-entropy from logits, ``s_i`` the sample weights,
no penalty on b) with one call of the compiled fused kernel: one pass over X
for the cost and both gradients.  Inputs are validated once per training run,
not once per iteration.

Penalty convention.  scikit-learn's ``LogisticRegression(C=C)`` minimises
``C * sum_i s_i loss_i + 0.5 ||w||^2``; dividing by ``C * sum(s)`` gives J
with ``l2 = 1 / (C * sum(s))``.  scikit-learn's lbfgs solver minimises exactly
that scaled J and compares ``tol`` with its largest gradient component, as
:func:`fit` does, so ``tol`` means the same thing in both.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastlogit import _kernels
from fastlogit._objective import intercept_start, penalised_objective
from fastlogit._validation import (
    check_bool, check_count, check_labels, check_nonneg, check_sample_weight, check_scalar,
    check_W, check_X, resolve_threads,
)

__all__ = ["ConvergenceWarning", "FitResult", "fit", "gradient_descent"]

# Newton is chosen by solver="auto" up to this many parameters (W and b): its
# Hessian pass costs ~m n^2 flops, which stays cheaper than the 10-50x more
# iterations L-BFGS needs on ill-conditioned problems (see benchmarks/bench_train.py).
NEWTON_MAX_PARAMS = 200
# Target bytes of X per row block in the Newton Hessian pass: large enough for
# BLAS to run at speed, small enough to stay in cache between the score and
# Hessian products of the block.
_HESSIAN_BLOCK_BYTES = 1 << 20
# Upper bound on Hessian chunks (their (n+1)^2 partials are kept): enough to
# balance the threads of any common machine.
_HESSIAN_MAX_CHUNKS = 64


class ConvergenceWarning(UserWarning):
    """The optimiser stopped (max_iter, or a failed line search) before the
    gradient reached ``tol``.

    When scikit-learn is installed the warning actually issued is also an
    instance of ``sklearn.exceptions.ConvergenceWarning``, so filters written
    for either class catch it.
    """


_warning_category: type | None = None


def _convergence_warning_category() -> type:
    # Resolved on first use so that `import fastlogit` never imports sklearn.
    global _warning_category
    if _warning_category is None:
        try:
            from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
        except ImportError:
            _warning_category = ConvergenceWarning
        else:
            _warning_category = type(
                "ConvergenceWarning", (ConvergenceWarning, SkConvergenceWarning),
                {"__module__": __name__, "__doc__": ConvergenceWarning.__doc__})
    return _warning_category


@dataclass(frozen=True, eq=False)
class FitResult:
    """Result of :func:`fit`.

    Attributes
    ----------
    W : ndarray of shape (n, 1), float64
    b : float
        0.0 when fitted without intercept.
    cost : float
        Final value of J (mean weighted cross-entropy plus the L2 term).
    n_iter : int
        Optimiser iterations (L-BFGS iterations or Newton steps).
    converged : bool
        True when the largest gradient component is <= tol, or when the cost
        cannot decrease any further in floating point (scipy's ``ftol``
        criterion, which scikit-learn also accepts).
    grad_max : float
        Largest absolute component of the final gradient (W and, if fitted, b).
    n_evals : int
        Calls of the fused kernel (each one pass over X).
    solver : str
        "lbfgs" or "newton".
    message : str
        The optimiser's stopping reason.
    """

    W: NDArray[np.float64]
    b: float
    cost: float
    n_iter: int
    converged: bool
    grad_max: float = math.nan
    n_evals: int = 0
    solver: str = ""
    message: str = field(default="", repr=False)


# ---------------------------------------------------------------------------
# Validation done once per training run
# ---------------------------------------------------------------------------

class _Objective:
    """J and its gradient at a parameter vector theta = [W, b] (b only if fitted).

    Holds the validated arrays so that each evaluation is exactly one kernel
    call (one pass over X) plus O(n) work.
    """

    def __init__(self, X, Y, sample_weight, l2, fit_intercept, n_threads):
        self.X = check_X(X)
        m, n = self.X.shape
        if m == 0:
            raise ValueError("X has no rows (m = 0); training needs at least one example")
        self.m, self.n = m, n
        self.Y = check_labels(Y, m)
        self.sw, self.weight_sum = check_sample_weight(sample_weight, m)
        self.l2 = check_nonneg(l2, "l2")
        self.fit_intercept = check_bool(fit_intercept, "fit_intercept")
        self.threads = resolve_threads(n_threads, self.X.size)
        self.n_evals = 0

    def split(self, theta: NDArray) -> tuple[NDArray, float]:
        return theta[: self.n], (float(theta[self.n]) if self.fit_intercept else 0.0)

    def __call__(self, theta: NDArray) -> tuple[float, NDArray]:
        W, b = self.split(theta)
        W = np.ascontiguousarray(W, dtype=np.float64)
        loss, dW, db, _ = _kernels.cost_and_gradients(
            self.X, W, b, self.Y, self.sw, True, self.threads)
        self.n_evals += 1
        scale = 1.0 / self.weight_sum
        J, dW = penalised_objective(loss * scale, dW * scale, W, self.l2)
        grad = np.empty(self.n + self.fit_intercept)
        grad[: self.n] = dW
        if self.fit_intercept:
            grad[self.n] = db * scale
        return float(J), grad

    def start(self) -> NDArray:
        """W = 0 and b = log-odds of the weighted base rate: the optimum of J
        for W = 0, so the first steps are spent on W only."""
        theta = np.zeros(self.n + self.fit_intercept)
        if self.fit_intercept:
            theta[self.n] = intercept_start(self.Y, self.sw, self.weight_sum)
        return theta

    def check_finite(self, J: float, grad: NDArray) -> None:
        # With finite X the start point gives finite values, so anything else
        # means X holds NaN or inf (found here at no extra pass over X).
        if not (math.isfinite(J) and np.all(np.isfinite(grad))):
            raise ValueError("X must hold finite numbers; the cost at the starting point is "
                             f"{J!r} (NaN or inf in X?)")


# ---------------------------------------------------------------------------
# Gradient descent
# ---------------------------------------------------------------------------

def gradient_descent(X: ArrayLike, Y: ArrayLike, W: ArrayLike | None = None, b: float = 0.0, *,
                     learning_rate: float = 0.01, num_iterations: int = 1000, l2: float = 0.0,
                     sample_weight: ArrayLike | None = None,
                     callback: Callable[[int, NDArray, float, float], object] | None = None,
                     ) -> tuple[NDArray, float, list[float]]:
    """The textbook loop ``W -= learning_rate * dW; b -= learning_rate * db``.

    Each iteration is one call of the fused kernel (one pass over X for the
    cost and both gradients).  Same signature and results as
    :func:`fastlogit.reference.gradient_descent`.

    Parameters
    ----------
    X : array_like, shape (m, n)
        float32/float64 read in place (C or F order).
    Y : array_like, shape (1, m) or (m,)
        Labels in [0, 1].
    W : array_like, shape (n, 1) or (n,), optional
        Starting weights (zeros by default); not modified.
    b : float
        Starting bias.
    learning_rate : float, positive
    num_iterations : int, non-negative
    l2 : float, non-negative
        Penalty ``(l2 / 2) ||W||^2`` added to the mean cost (b is not penalised).
    sample_weight : array_like, shape (m,) or (1, m), optional
        Non-negative weights: the cost is the weighted mean.
    callback : callable, optional
        Called as ``callback(i, W, b, J)`` after iteration i's update, with
        the new W and b and the cost J evaluated before the update.

    Returns
    -------
    W : ndarray, shape (n, 1), float64
    b : float
    costs : list of float
        J before each update (``num_iterations`` values).

    Examples
    --------
    >>> import numpy as np, fastlogit
    >>> X = np.array([[105.0], [135.0], [170.0]]) / 100
    >>> W, b, costs = fastlogit.gradient_descent(X, [[0, 1, 1]], learning_rate=0.5,
    ...                                          num_iterations=200)
    >>> costs[-1] < costs[0]
    True
    """
    learning_rate = check_scalar(learning_rate, "learning_rate")
    if not (learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(f"learning_rate must be a finite positive float; got {learning_rate!r}")
    num_iterations = check_count(num_iterations, "num_iterations", 0)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None; got {type(callback).__name__}")
    objective = _Objective(X, Y, sample_weight, l2, True, None)
    n = objective.n
    theta = np.empty(n + 1)
    theta[:n] = 0.0 if W is None else check_W(W, n)[0]
    theta[n] = check_scalar(b, "b")
    costs: list[float] = []
    for i in range(num_iterations):
        J, grad = objective(theta)
        theta = theta - learning_rate * grad
        costs.append(J)
        if callback is not None:
            callback(i, theta[:n].reshape(n, 1).copy(), float(theta[n]), J)
    return theta[:n].reshape(n, 1).copy(), float(theta[n]), costs


# ---------------------------------------------------------------------------
# fit: L-BFGS (scipy) or Newton
# ---------------------------------------------------------------------------

def _warn_not_converged(caller: str, n_iter: int, grad_max: float, tol: float,
                        message: str) -> None:
    """The ConvergenceWarning of every solver (stacklevel: the user's call of fit)."""
    warnings.warn(
        f"{caller} stopped after {n_iter} iteration(s) with max |gradient| "
        f"{grad_max:.3g} > tol = {tol:g}: {message}. Increase max_iter, scale the "
        "features, or add an L2 penalty.", _convergence_warning_category(), stacklevel=3)


def _lbfgs(objective: _Objective, theta0, J0, grad0, tol, max_iter):
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
                            "ftol": 64 * np.finfo(float).eps})
    grad = np.asarray(res.jac, dtype=np.float64)
    message = res.message if isinstance(res.message, str) else res.message.decode()
    # status 0: max |gradient| <= tol, or the cost stopped decreasing at the
    # resolution of floating point (ftol), which scikit-learn also counts as
    # converged.
    return res.x, float(res.fun), grad, int(res.nit), message, res.status == 0


def _hessian(objective: _Objective, theta: NDArray, pool) -> NDArray:
    """Hessian of J at theta: X^T diag(s h) X / sum(s) (+ l2 on W), h = a (1 - a).

    One blocked pass over X; each block's scores and its contribution
    ``Xb^T diag(h) Xb`` (a BLAS syrk) are computed while the block is in cache.
    Rows are cut into at most ``_HESSIAN_MAX_CHUNKS`` chunks fixed by the
    problem size; chunks run on ``pool``'s threads (BLAS itself on one
    thread) and their partial sums are added in chunk order, so the bits do
    not depend on the thread count.
    """
    X, m, n, fit_b = objective.X, objective.m, objective.n, objective.fit_intercept
    W, b = objective.split(theta)
    W = np.ascontiguousarray(W)
    rows = max(1, _HESSIAN_BLOCK_BYTES // max(1, n * X.itemsize))
    n_blocks = -(-m // rows)
    n_chunks = min(n_blocks, _HESSIAN_MAX_CHUNKS)
    bounds = [(c * n_blocks // n_chunks) * rows for c in range(n_chunks)] + [m]
    partials = np.zeros((n_chunks, n + fit_b, n + fit_b))

    def chunk(c):
        with np.errstate(under="ignore"):   # h underflows to 0 for |z| > 745: harmless
            _hessian_rows(objective, W, b, bounds[c], bounds[c + 1], rows, partials[c])

    if pool is None:
        for c in range(n_chunks):
            chunk(c)
    else:
        list(pool.map(chunk, range(n_chunks)))
    H = partials.sum(axis=0)        # chunk order, whatever the thread count
    H /= objective.weight_sum
    H[np.arange(n), np.arange(n)] += objective.l2
    return H


def _hessian_rows(objective: _Objective, W: NDArray, b: float, first: int, stop: int,
                  rows: int, H: NDArray) -> None:
    X, n, fit_b = objective.X, objective.n, objective.fit_intercept
    # [sqrt(h) Xb, sqrt(h)]: one syrk gives the W-W, W-b and b-b blocks.
    scaled = np.empty((min(rows, stop - first), n + fit_b))
    for start in range(first, stop, rows):
        Xb = np.asarray(X[start:min(start + rows, stop)], dtype=np.float64)
        k = Xb.shape[0]
        z = Xb @ W + b
        # h = sigmoid(z) sigmoid(-z): the curvature of the loss, never negative
        # and never cancelled (a - a^2 would be for a near 1).
        e = np.exp(-np.abs(z))
        h = e / (1.0 + e) ** 2
        if objective.sw.size:
            h *= objective.sw[start:start + k]
        root_h = np.sqrt(h)
        Xs = scaled[:k]
        np.multiply(Xb, root_h[:, None], out=Xs[:, :n])
        if fit_b:
            Xs[:, n] = root_h
        H += Xs.T @ Xs           # NumPy calls syrk for a.T @ a


@contextlib.contextmanager
def _hessian_workers(objective: _Objective):
    """Thread pool for the Hessian chunks (None: serial), BLAS held to one thread.

    Multi-threaded BLAS on the per-block products collapses when the cores
    are oversubscribed (measured on a loaded 2-core machine: a Newton fit 10x
    slower, a lone X.T @ X 300x slower), so the parallelism is ours: one
    chunk per thread, one BLAS thread each.  Without threadpoolctl BLAS
    cannot be held, so the chunks run serially and BLAS threads as it likes.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield None
        return
    with threadpool_limits(limits=1, user_api="blas"):
        if objective.threads <= 1:
            yield None
            return
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=objective.threads) as pool:
            yield pool


def _newton_direction(H: NDArray, grad: NDArray) -> NDArray:
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        # Singular curvature (collinear columns without penalty, saturated
        # examples): the minimum-norm least-squares step.
        return -np.linalg.lstsq(H, grad, rcond=None)[0]
    y = np.linalg.solve(L, -grad)
    return np.linalg.solve(L.T, y)


def _newton(objective: _Objective, theta, J, grad, tol, max_iter):
    """Damped Newton with an Armijo backtracking line search.

    Per iteration: one Hessian pass and (usually) one fused-kernel pass, whose
    gradient is reused by the next iteration.
    """
    with _hessian_workers(objective) as pool:
        return _newton_steps(objective, theta, J, grad, tol, max_iter, pool)


def _newton_steps(objective: _Objective, theta, J, grad, tol, max_iter, pool):
    n_iter = 0
    message = "maximum number of iterations reached"
    success = False
    while True:
        grad_max = float(np.max(np.abs(grad))) if grad.size else 0.0
        if grad_max <= tol:
            message = "max |gradient| <= tol"
            success = True
            break
        if n_iter >= max_iter:
            break
        n_iter += 1
        step = _newton_direction(_hessian(objective, theta, pool), grad)
        slope = float(grad @ step)
        if not slope < 0:           # numerically not a descent direction
            step, slope = -grad, -float(grad @ grad)
        # When the promised decrease is below J's rounding, J cannot guide the
        # search: a couple of trials decide (by the gradient) instead of 40.
        at_resolution = -slope <= 64 * np.finfo(float).eps * max(abs(J), 1.0)
        t = 1.0
        accepted = False
        for _ in range(2 if at_resolution else 40):
            trial = theta + t * step
            J_trial, grad_trial = objective(trial)
            # Armijo, with slack for rounding in J near the optimum where the
            # decrease t*slope is below J's resolution; there a step is only
            # taken if it also shrinks the gradient.
            if J_trial <= J + 1e-4 * t * slope:
                accepted = True
                break
            if (J_trial <= J + 4 * np.finfo(float).eps * abs(J)
                    and float(np.max(np.abs(grad_trial))) < grad_max):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            # If the full Newton step promised a decrease below the resolution
            # of J, the cost is at its floating-point minimum (scipy's ftol
            # criterion); otherwise something is wrong.
            success = at_resolution
            message = ("the cost cannot decrease further in floating point" if success
                       else "line search could not decrease the cost")
            break
        theta, J, grad = trial, J_trial, grad_trial
    return theta, J, grad, n_iter, message, success


def fit(X: ArrayLike, Y: ArrayLike, *, l2: float = 0.0, sample_weight: ArrayLike | None = None,
        fit_intercept: bool = True, tol: float = 1e-8, max_iter: int = 1000,
        n_threads: int | None = None, solver: str = "auto") -> FitResult:
    """Minimise ``J = sum_i s_i loss_i / sum_i s_i + (l2/2) ||W||^2`` over W (and b).

    Every cost/gradient evaluation is one pass of the fused kernel over X.
    The penalty is on W only.  scikit-learn's ``LogisticRegression(C=C)`` is
    ``l2 = 1 / (C * sum(sample_weight))`` (``1 / (C * m)`` unweighted).

    Parameters
    ----------
    X : array_like, shape (m, n)
        float32/float64 are used in place (C or F order); other reals become float64.
    Y : array_like, shape (1, m) or (m,)
        Labels in [0, 1] (0/1, or soft labels).
    l2 : float, non-negative
    sample_weight : array_like, shape (m,) or (1, m), optional
        Non-negative, not all zero.
    fit_intercept : bool
        False fixes b = 0.
    tol : float
        Stop when the largest absolute gradient component of J is <= tol
        (scikit-learn's lbfgs criterion).
    max_iter : int
        Maximum optimiser iterations.
    n_threads : int, optional
        Threads of the fused kernel and of the Newton Hessian pass (None: all
        usable cores).  Results do not depend on it.
    solver : {"auto", "lbfgs", "newton"}
        "lbfgs": scipy's L-BFGS-B (``scipy.optimize.minimize(jac=True)``).
        "newton": damped Newton with the exact Hessian (one extra blocked
        pass over X and O(m n^2) flops per step; converges in a few steps).
        "auto": Newton for at most ``NEWTON_MAX_PARAMS`` (200) parameters
        when m >= n, L-BFGS otherwise.  Newton needs only NumPy.

    Returns
    -------
    FitResult
        W (n, 1) float64, b, cost, n_iter, converged, grad_max, n_evals, solver.

    Warns
    -----
    ConvergenceWarning
        When it stops (max_iter, failed line search) before converging (also a
        ``sklearn.exceptions.ConvergenceWarning`` if scikit-learn is installed).

    Examples
    --------
    >>> import numpy as np, fastlogit
    >>> X = np.array([[105.0], [120.0], [135.0], [150.0], [170.0]]) / 100
    >>> res = fastlogit.fit(X, [[0, 0, 1, 0, 1]], l2=0.01)
    >>> res.converged, res.W.shape
    (True, (1, 1))
    """
    tol = check_nonneg(tol, "tol")
    max_iter = check_count(max_iter, "max_iter", 1)
    if solver not in ("auto", "lbfgs", "newton"):
        raise ValueError(f"solver must be 'auto', 'lbfgs' or 'newton'; got {solver!r}")
    objective = _Objective(X, Y, sample_weight, l2, fit_intercept, n_threads)
    n_params = objective.n + objective.fit_intercept
    if solver == "auto":
        small = n_params <= NEWTON_MAX_PARAMS and objective.m >= objective.n
        solver = "newton" if small else "lbfgs"
    theta = objective.start()
    J, grad = objective(theta)
    objective.check_finite(J, grad)
    run = _newton if solver == "newton" else _lbfgs
    theta, J, grad, n_iter, message, converged = run(objective, theta, J, grad, tol, max_iter)
    grad_max = float(np.max(np.abs(grad))) if grad.size else 0.0
    if not converged:
        _warn_not_converged(f"fastlogit.fit ({solver})", n_iter, grad_max, tol, message)
    W, b = objective.split(theta)
    return FitResult(W=np.array(W, dtype=np.float64).reshape(-1, 1), b=float(b), cost=float(J),
                     n_iter=n_iter, converged=bool(converged), grad_max=grad_max,
                     n_evals=objective.n_evals, solver=solver, message=message)
