"""Training on a row-chunked dask X: Newton (or L-BFGS) driven from the client.

The drivers are those of the in-memory :func:`fastlogit.fit`
(:func:`fastlogit._newton.newton`, :func:`fastlogit._lbfgs.lbfgs`); only the
oracle is distributed.  One Newton iteration is ONE round of tasks over X:
every row block runs the compiled ``cost_gradient_hessian`` kernel and sends
back its unnormalised sums (loss, gradient, the upper triangle of the
Hessian, weight sum, count of bad labels: (n + 1)(n + 2) / 2 + n + 4
doubles), and tasks add them up in fixed groups of consecutive blocks, level
by level, with the kernel's compensated summation
(:func:`fastlogit.dask.reductions.combine_in_groups`: no task holds more than
64 blocks' sums, 10.5 MB at n = 200).  The client receives one vector, turns it into (J, gradient, Hessian) with
:func:`fastlogit._objective.newton_objective` (the in-memory oracle's own
function) and does the O(n^3) step.  So the result depends on the row chunks
only, never on the workers, retries or ``split_every``.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from fastlogit import _kernels
from fastlogit._lbfgs import lbfgs
from fastlogit._newton import newton
from fastlogit._objective import intercept_start, newton_objective
from fastlogit._solver_rule import newton_fits, scipy_available
from fastlogit._train import (
    SEPARABLE, FitResult, check_start_finite, classifies_all, separation_watch,
    warn_not_converged, warn_separable,
)
from fastlogit._validation import (
    check_bool, check_count, check_nonneg, check_reduced_sums, resolve_threads,
)
from fastlogit.dask.arrays import aligned_rows, rows_chunked
from fastlogit.dask.reductions import (
    block_arrays, check_split_every, finish_sums, partials_graph,
)

if TYPE_CHECKING:  # pragma: no cover
    import dask.array

__all__ = ["fit"]

_SOLVERS = ("auto", "newton", "lbfgs")


def _newton_width(n: int) -> int:
    return 4 + n + (n + 1) * (n + 2) // 2


def _newton_block(X_block, Y_block, sw_block, W_vec, b, n_threads):
    """One row block's sums for Newton, as a (1, width) row:
    [loss, grad_b, weight, bad labels, grad_W (n), upper triangle of H row by row]."""
    X_block, y, sw, weight = block_arrays(X_block, Y_block, sw_block)
    k, n = X_block.shape
    out = np.zeros((1, _newton_width(n)))
    if k == 0:
        return out
    loss, dW, db, H, bad = _kernels.cost_gradient_hessian(
        X_block, W_vec, b, y, sw, resolve_threads(n_threads, X_block.size))
    out[0, :4] = loss, db, weight, bad
    out[0, 4:4 + n] = dW
    out[0, 4 + n:] = H[np.triu_indices(n + 1)]
    return out


def _separation_block(X_block, Y_block, sw_block, W_vec, b, n_threads):
    """1 when (W, b) misclassify an example of this block (or it holds a soft label), else 0."""
    X_block, y, sw, _ = block_arrays(X_block, Y_block, sw_block)
    if X_block.shape[0] == 0:
        return np.zeros((1, 1))
    ok = classifies_all(X_block, y, sw, W_vec, b, resolve_threads(n_threads, X_block.size))
    return np.full((1, 1), 0.0 if ok else 1.0)


class _Problem:
    """The distributed oracles at theta = [W, b] (b only if fitted); counts passes over X."""

    def __init__(self, X, Y1, sw1, l2, fit_intercept, n_threads, split_every):
        self.X, self.Y1, self.sw1 = X, Y1, sw1
        self.m, self.n = X.shape
        self.l2, self.fit_intercept = l2, fit_intercept
        self.n_threads, self.split_every = n_threads, split_every
        self.n_evals = self.n_passes = 0
        self.weight_sum = math.nan

    def split(self, theta):
        W = np.ascontiguousarray(theta[: self.n], dtype=np.float64)
        return W, (float(theta[self.n]) if self.fit_intercept else 0.0)

    def _reduce(self, theta, block, width, name):
        """One pass over X: the grouped sums of ``block`` over all row blocks, as one vector."""
        W, b = self.split(theta)
        total, _ = partials_graph(self.X, self.Y1, self.sw1, W, b, self.n_threads,
                                  self.split_every, block=block, width=width, name=name)
        self.n_passes += 1
        return total.compute()[0]

    def with_hessian(self, theta):
        """(J, gradient, Hessian): one round of tasks, one tree reduction."""
        n = self.n
        total = self._reduce(theta, _newton_block, _newton_width(n), "newton")
        self.n_evals += 1
        loss, db, weight, bad = total[:4]
        check_reduced_sums(bad, weight)
        self.weight_sum = float(weight)
        H = np.zeros((n + 1, n + 1))
        H[np.triu_indices(n + 1)] = total[4 + n:]
        H = H + np.triu(H, 1).T
        W, _ = self.split(theta)
        return newton_objective(loss, total[4:4 + n], db, H, W, self.weight_sum, self.l2,
                                self.fit_intercept)

    def __call__(self, theta):
        """(J, gradient) for L-BFGS: one round of tasks of the fused cost kernel."""
        W, b = self.split(theta)
        total, _ = partials_graph(self.X, self.Y1, self.sw1, W, b, self.n_threads,
                                  self.split_every)
        total = total.compute()[0]
        self.n_evals += 1
        self.n_passes += 1
        J, dW, db = finish_sums(total, W, self.l2, np.float64)
        grad = np.empty(self.n + self.fit_intercept)
        grad[: self.n] = dW[:, 0]
        if self.fit_intercept:
            grad[self.n] = db
        return J, grad

    def separated(self, W, b) -> bool:
        """Do (W, b) separate the data?  One round of predict tasks."""
        return self._reduce(np.append(W, b), _separation_block, 1, "separated")[0] == 0

    def start(self):
        import dask

        theta = np.zeros(self.n + self.fit_intercept)
        if self.fit_intercept:
            # b at the log-odds of the weighted base rate (a pass over Y, not X).
            Y1 = self.Y1.astype(np.float64)
            if self.sw1 is None:
                sy, s = float(Y1.sum().compute()), float(self.m)
            else:
                sw = self.sw1.astype(np.float64)
                sy, s = dask.compute((sw * Y1).sum(), sw.sum())
            if s > 0:
                theta[self.n] = intercept_start(np.array([float(sy) / float(s)]), None, 1.0)
        return theta


def _choose_solver(solver: str, problem: _Problem) -> str:
    """The in-memory rule where it applies.  On Dask a pass is a round of
    tasks, so Newton's few passes win whenever its Hessian is small: Newton up
    to NEWTON_MAX_PARAMS parameters (fastlogit._solver_rule) (and at least as many rows as features),
    L-BFGS beyond."""
    if solver != "auto":
        return solver
    if not newton_fits(problem.n + problem.fit_intercept, problem.m, problem.n):
        return "lbfgs" if scipy_available() else "newton"
    return "newton"


def fit(X: "dask.array.Array", Y, *, l2: float = 0.0, sample_weight=None,
        fit_intercept: bool = True, tol: float = 1e-8, max_iter: int = 1000,
        n_threads: int | None = None, split_every: int | None = None, persist: bool = True,
        solver: str = "auto") -> FitResult:
    """``fastlogit.fit`` for a dask X: Newton (or L-BFGS) on the client, one
    round of tasks over X per iteration.

    Minimises ``J = sum_i s_i loss_i / sum_i s_i + (l2/2) ||W||^2`` with the
    drivers of ``fastlogit.fit`` (start at W = 0, b = log-odds of the weighted
    base rate; stop when max |gradient| <= tol, Newton also when its decrement
    is below max(tol^2, rounding)).  A Newton iteration is one pass of the
    compiled cost/gradient/Hessian kernel over every row block and ONE tree
    reduction of the sums, added in fixed groups of consecutive blocks: the
    result depends on the row chunks only (not on the workers, retries or
    ``split_every``), and no task holds more than 64 blocks' sums.  Without
    a penalty, linearly separable data are detected as in memory (a
    ConvergenceWarning naming separation; ``converged`` False).

    Parameters
    ----------
    X : dask.array.Array, shape (m, n), chunked along rows (known chunk sizes)
    Y : dask or NumPy array, shape (1, m) or (m,), labels in [0, 1]
    l2, sample_weight, fit_intercept, tol, max_iter, n_threads
        As in ``fastlogit.fit``.
    split_every : int, optional
        Fan-in of the concatenations below each group's sum (default 64:
        none); the result does not depend on it.
    persist : bool
        Persist X, Y and the weights in the cluster's memory for the run
        (default), so that each pass reads memory instead of recomputing
        (or re-reading) X.  Needs the cluster to hold X.
    solver : {"auto", "newton", "lbfgs"}
        "auto": Newton up to 200 parameters (5-15 passes over X, whatever the
        scaling), L-BFGS beyond (SciPy; one pass per evaluation).

    Returns
    -------
    fastlogit's FitResult
        ``n_passes`` counts the rounds of tasks over X (kernel passes and
        separation checks); ``solver`` says which ran.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastlogit.dask as fld
    >>> X = da.from_array(np.array([[1.05], [1.20], [1.35], [1.50], [1.70]]), chunks=(2, 1))
    >>> res = fld.fit(X, np.array([[0, 0, 1, 0, 1]]), l2=0.01)
    >>> res.converged, res.W.shape, res.solver
    (True, (1, 1), 'newton')
    """
    import dask

    tol = check_nonneg(tol, "tol")
    max_iter = check_count(max_iter, "max_iter", 1)
    l2 = check_nonneg(l2, "l2")
    fit_intercept = check_bool(fit_intercept, "fit_intercept")
    split_every = check_split_every(split_every)
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be 'auto', 'newton' or 'lbfgs'; got {solver!r}")
    X = rows_chunked(X)
    if X.shape[0] == 0:
        raise ValueError("X has no rows (m = 0); training needs at least one example")
    Y1 = aligned_rows(Y, X, "Y")
    sw1 = None if sample_weight is None else aligned_rows(sample_weight, X, "sample_weight")
    if persist:
        X, Y1, sw1 = dask.persist(X, Y1, sw1)
    problem = _Problem(X, Y1, sw1, l2, fit_intercept, n_threads, split_every)
    theta = problem.start()
    solver = _choose_solver(solver, problem)
    if solver == "newton":
        J, grad, H = problem.with_hessian(theta)
        check_start_finite(J, grad)
        give_up = separation_watch(problem.split, problem.separated) if l2 == 0 else None
        theta, J, grad, n_iter, message, converged = newton(
            problem.with_hessian, theta, J, grad, H, tol, max_iter, give_up)
    else:
        J, grad = problem(theta)
        check_start_finite(J, grad)
        theta, J, grad, n_iter, message, converged = lbfgs(problem, theta, J, grad, tol, max_iter)
    grad_max = float(np.max(np.abs(grad))) if grad.size else 0.0
    W, b = problem.split(np.asarray(theta, dtype=np.float64))
    if message == SEPARABLE or (l2 == 0 and problem.separated(W, b)):
        converged, message = False, SEPARABLE
        warn_separable(f"fastlogit.dask.fit ({solver})", W)
    elif not converged:
        warn_not_converged(f"fastlogit.dask.fit ({solver})", n_iter, grad_max, tol, message)
    return FitResult(W=W.reshape(-1, 1).copy(), b=b, cost=float(J), n_iter=n_iter,
                     converged=bool(converged), grad_max=grad_max, n_evals=problem.n_evals,
                     solver=solver, n_passes=problem.n_passes, message=message)

