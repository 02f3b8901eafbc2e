"""Training on the fused kernels: gradient descent, L-BFGS and Newton.

Every optimiser here evaluates the objective

    J(W, b) = sum_i s_i loss_i / sum_i s_i + (l2 / 2) ||W||^2

(``loss_i`` the binary cross-entropy from logits, ``s_i`` the sample weights,
no penalty on b) with one call of a compiled kernel: one pass over X for the
cost and both gradients (and, for Newton, the Hessian).  Inputs are validated once per training run,
not once per iteration.

Penalty convention.  scikit-learn's ``LogisticRegression(C=C)`` minimises
``C * sum_i s_i loss_i + 0.5 ||w||^2``; dividing by ``C * sum(s)`` gives J
with ``l2 = 1 / (C * sum(s))``.  scikit-learn's lbfgs solver minimises exactly
that scaled J and compares ``tol`` with its largest gradient component, as
:func:`fit` does, so ``tol`` means the same thing in both.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastlogit import _kernels
from fastlogit._lbfgs import lbfgs
from fastlogit._newton import newton
from fastlogit._objective import intercept_start, newton_objective, penalised_objective
from fastlogit._solver_rule import LBFGS_FIRST_EVALS, auto_solver, column_mean_squares, lbfgs_scale
from fastlogit._validation import (
    check_bool, check_count, check_labels, check_nonneg, check_sample_weight, check_scalar,
    check_W, check_X, first_nonfinite, resolve_threads,
)

__all__ = ["ConvergenceWarning", "FitResult", "fit", "gradient_descent",
           # Internal API shared with fastlogit.dask (not exported by fastlogit):
           "SEPARABLE", "check_start_finite", "classifies_all",
           "separation_watch",
           "warn_not_converged", "warn_separable"]

class ConvergenceWarning(UserWarning):
    """The optimiser stopped (max_iter, or a failed line search) before the
    gradient reached ``tol``; or, without a penalty, the data are linearly
    separable (no finite optimum); or gradient descent's cost rose or stopped
    being finite.

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
        criterion, which scikit-learn also accepts).  False on linearly
        separable data without a penalty, where no finite optimum exists.
    grad_max : float
        Largest absolute component of the final gradient (W and, if fitted, b).
    n_evals : int
        Calls of the fused kernel (each one pass over X).
    n_passes : int
        Passes over X in all: ``n_evals`` plus the separation checks (one
        predict pass each, only without a penalty).  On Dask every pass is a
        round of tasks over all row blocks.
    solver : str
        "lbfgs", "newton" or "lbfgs+newton" (auto handed over to Newton).
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
    n_passes: int = 0
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
        self.n_passes = 0       # every pass over X: kernel calls and separation checks

    def split(self, theta: NDArray) -> tuple[NDArray, float]:
        return theta[: self.n], (float(theta[self.n]) if self.fit_intercept else 0.0)

    def __call__(self, theta: NDArray) -> tuple[float, NDArray]:
        W, b = self.split(theta)
        W = np.ascontiguousarray(W, dtype=np.float64)
        loss, dW, db, _ = _kernels.cost_and_gradients(
            self.X, W, b, self.Y, self.sw, True, self.threads)
        self.n_evals += 1
        self.n_passes += 1
        scale = 1.0 / self.weight_sum
        J, dW = penalised_objective(loss * scale, dW * scale, W, self.l2)
        grad = np.empty(self.n + self.fit_intercept)
        grad[: self.n] = dW
        if self.fit_intercept:
            grad[self.n] = db * scale
        return float(J), grad

    def with_hessian(self, theta: NDArray) -> tuple[float, NDArray, NDArray]:
        """J, its gradient and its Hessian at theta: one pass of the Newton kernel."""
        W, b = self.split(theta)
        W = np.ascontiguousarray(W, dtype=np.float64)
        loss, dW, db, H, _ = _kernels.cost_gradient_hessian(
            self.X, W, b, self.Y, self.sw, self.threads)
        self.n_evals += 1
        self.n_passes += 1
        return newton_objective(loss, dW, db, H, W, self.weight_sum, self.l2, self.fit_intercept)

    def separated(self, W: NDArray, b: float) -> bool:
        """Do (W, b) separate the training data?  One predict pass."""
        self.n_passes += 1
        return classifies_all(self.X, self.Y, self.sw, W, b, self.threads)

    def start(self) -> NDArray:
        """W = 0 and b = log-odds of the weighted base rate: the optimum of J
        for W = 0, so the first steps are spent on W only."""
        theta = np.zeros(self.n + self.fit_intercept)
        if self.fit_intercept:
            theta[self.n] = intercept_start(self.Y, self.sw, self.weight_sum)
        return theta



# ---------------------------------------------------------------------------
# Gradient descent
# ---------------------------------------------------------------------------

def check_start_finite(J: float, grad: NDArray, X: NDArray | None = None) -> None:
    """Raise unless J and its gradient at the starting point are finite.

    With finite, moderate X the start point gives finite values, so anything
    else means X holds NaN or inf.  This is the fit's only finiteness check
    (no extra pass over X): rows of weight 0 count too, since their gradient
    terms are 0 * x, NaN for a non-finite x.  Given X (in memory), the error
    names the first bad element, or says that finite X overflowed the sums.
    """
    if math.isfinite(J) and np.all(np.isfinite(grad)):
        return
    where = first_nonfinite(X) if X is not None else None
    if where is not None:
        i, j = where
        raise ValueError(f"X must hold finite numbers (no NaN or inf); X[{i}, {j}] is "
                         f"{float(X[i, j])!r}")
    if X is not None:
        with np.errstate(all="ignore"):
            largest = float(np.max(np.abs(X))) if X.size else 0.0
        raise ValueError(
            f"X is finite but the cost or gradient at the starting point is not (J = {J!r}): "
            f"its values, up to |x| = {largest:.3g}, overflow the sums (no NaN or inf in X, "
            "but scale the features)")
    raise ValueError("X must hold finite numbers; the cost at the starting point is "
                     f"{J!r} (NaN or inf in X?)")


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
    warned = False
    for i in range(num_iterations):
        J, grad = objective(theta)
        if not warned and costs:
            warned = _warn_if_diverging(i, costs[-1], J, learning_rate)
        with np.errstate(all="ignore"):     # a diverging run is reported by the warning
            theta = theta - learning_rate * grad
        costs.append(J)
        if callback is not None:
            callback(i, theta[:n].reshape(n, 1).copy(), float(theta[n]), J)
    return theta[:n].reshape(n, 1).copy(), float(theta[n]), costs


def _warn_if_diverging(i: int, previous: float, J: float, learning_rate: float) -> bool:
    """Warn (once per run: the caller stops asking) when the cost of gradient
    descent rises beyond rounding or stops being finite; True if it warned."""
    if math.isfinite(J) and J <= previous + 16 * np.finfo(float).eps * abs(previous):
        return False
    what = (f"the cost is {J!r} at iteration {i}" if not math.isfinite(J)
            else f"the cost rose from {previous:.10g} to {J:.10g} at iteration {i}")
    warnings.warn(
        f"gradient_descent: {what}: learning_rate = {learning_rate:g} is too large for these "
        "data. Lower it, scale the features, or use fastlogit.fit.",
        _convergence_warning_category(), stacklevel=3)
    return True


# ---------------------------------------------------------------------------
# fit: L-BFGS (scipy) or Newton
# ---------------------------------------------------------------------------

def warn_not_converged(caller: str, n_iter: int, grad_max: float, tol: float,
                       message: str) -> None:
    """The ConvergenceWarning of every solver (stacklevel: the user's call of fit)."""
    warnings.warn(
        f"{caller} stopped after {n_iter} iteration(s) with max |gradient| "
        f"{grad_max:.3g} > tol = {tol:g}: {message}. Increase max_iter, scale the "
        "features, or add an L2 penalty.", _convergence_warning_category(), stacklevel=3)


def classifies_all(X: NDArray, Y: NDArray, sample_weight: NDArray, W: NDArray, b: float,
                   n_threads: int) -> bool:
    """Do (W, b) classify every example of non-zero weight correctly (hard labels)?

    Then the data are linearly separable and, without a penalty, the loss
    has no minimum: it falls toward 0 as the weights grow along (W, b), and
    any "converged" result is only where the gradient became small.  One
    pass over X (the compiled predict).  X, Y and ``sample_weight`` (empty:
    unit weights) as validated by the trainer; a block of rows of a larger
    set gives that block's answer (the set's is the AND over blocks).
    """
    keep = sample_weight > 0 if sample_weight.size else slice(None)
    labels = Y[keep]
    if not np.all((labels == 0) | (labels == 1)):
        return False        # a soft label in (0, 1) bounds the weights
    predicted = np.empty(X.shape[0], dtype=np.int64)
    _kernels.predict(X, np.ascontiguousarray(W, dtype=np.float64), float(b), 0.5,
                     predicted, n_threads)
    return bool(np.all(predicted[keep] == labels))


def warn_separable(caller: str, W: NDArray) -> None:
    w_max = float(np.max(np.abs(W))) if W.size else 0.0
    warnings.warn(
        f"{caller}: the training data are linearly separable (the fitted weights, max |W| = "
        f"{w_max:.3g}, classify every example correctly): without a penalty the loss keeps "
        "falling toward 0 as the weights grow, so there is no finite optimum and these "
        "weights are not one. Add an L2 penalty (l2 > 0, or a finite C).",
        _convergence_warning_category(), stacklevel=3)


SEPARABLE = "the data are linearly separable: without a penalty there is no finite optimum"


def _newton(objective: _Objective, theta, tol, max_iter):
    """Newton on the in-memory oracle: one compiled pass for J, gradient and Hessian."""
    J, grad, H = objective.with_hessian(theta)
    check_start_finite(J, grad, objective.X)
    give_up = separation_watch(objective.split, objective.separated) if objective.l2 == 0 else None
    return newton(objective.with_hessian, theta, J, grad, H, tol, max_iter, give_up)


def separation_watch(split: Callable[[NDArray], "tuple[NDArray, float]"],
                     separated: Callable[[NDArray, float], bool]):
    """``give_up`` for :func:`fastlogit._newton.newton` without a penalty: stop
    early on separable data.  There J falls by a constant factor per step
    (about e) while ||W|| keeps growing, where near a finite optimum J
    settles; after 3 such steps running, ``separated(W, b)`` (one predict
    pass) decides (if not, the count starts again).  ``split(theta)`` gives
    (W, b)."""
    last = {"J": math.inf, "norm": 0.0, "streak": 0}

    def give_up(theta, J):
        W, b = split(theta)
        norm = float(np.linalg.norm(W))
        heading_out = J <= 0.7 * last["J"] and norm > last["norm"]
        last.update(J=J, norm=norm, streak=last["streak"] + 1 if heading_out else 0)
        if last["streak"] >= 3:
            last["streak"] = 0
            if separated(W, b):
                return SEPARABLE
        return ""
    return give_up


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
        (scikit-learn's lbfgs criterion, on the same scaled objective).  Newton
        also requires its decrement to promise a further decrease of J of at
        most max(tol^2, rounding): one more cheap step near the optimum.
    max_iter : int
        Maximum optimiser iterations.
    n_threads : int, optional
        Threads of the compiled kernels (None: all usable cores).  Results do
        not depend on it.
    solver : {"auto", "lbfgs", "newton"}
        "lbfgs": SciPy's L-BFGS-B, one pass over X per evaluation.
        "newton": damped Newton, one compiled pass over X for J, gradient and
        Hessian per iteration (O(m n^2) multiply-adds; needs only NumPy).
        "auto" (chosen by measurement, see docs/training.md): L-BFGS above 200
        parameters or with fewer rows than features; Newton when the column
        scales differ by more than 100x; otherwise L-BFGS for up to 12
        evaluations, then Newton from there if it has not converged
        (``FitResult.solver`` is then "lbfgs+newton").

    Returns
    -------
    FitResult
        W (n, 1) float64, b, cost, n_iter, converged, grad_max, n_evals, solver.

    Warns
    -----
    ConvergenceWarning
        When it stops (max_iter, failed line search) before converging, or when
        l2 = 0 and the data are linearly separable (no finite optimum:
        ``converged`` is then False); also a
        ``sklearn.exceptions.ConvergenceWarning`` if scikit-learn is installed.

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
    theta = objective.start()
    ms = column_mean_squares(objective.X, objective.sw) if solver != "newton" else None
    if solver == "auto":
        solver = auto_solver(objective.n + objective.fit_intercept, objective.m, objective.n, ms)
    if solver == "newton":
        theta, J, grad, n_iter, message, converged = _newton(objective, theta, tol, max_iter)
    else:
        J, grad = objective(theta)
        check_start_finite(J, grad, objective.X)
        budget = LBFGS_FIRST_EVALS if solver == "lbfgs-then-newton" else None
        theta, J, grad, n_iter, message, converged = lbfgs(
            objective, theta, J, grad, tol, max_iter, budget,
            scale=lbfgs_scale(ms, theta, objective.n, objective.fit_intercept, objective.l2))
        if solver == "lbfgs-then-newton":
            solver = "lbfgs"
            if not converged and n_iter < max_iter:
                # Slow progress: the curvature is uneven, Newton's ground.
                theta, J, grad, more, message, converged = _newton(
                    objective, theta, tol, max_iter - n_iter)
                n_iter += more
                solver = "lbfgs+newton"
    grad_max = float(np.max(np.abs(grad))) if grad.size else 0.0
    W, b = objective.split(theta)
    if message == SEPARABLE or (objective.l2 == 0 and objective.separated(W, b)):
        converged = False
        message = SEPARABLE
        warn_separable(f"fastlogit.fit ({solver})", W)
    elif not converged:
        warn_not_converged(f"fastlogit.fit ({solver})", n_iter, grad_max, tol, message)
    return FitResult(W=np.array(W, dtype=np.float64).reshape(-1, 1), b=float(b), cost=float(J),
                     n_iter=n_iter, converged=bool(converged), grad_max=grad_max,
                     n_evals=objective.n_evals, solver=solver, n_passes=objective.n_passes,
                     message=message)
