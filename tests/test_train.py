"""gradient_descent and fit: against the textbook reference, against an
independent L-BFGS on the reference objective, and their invariances."""
import dataclasses
import inspect
import sys

import numpy as np
import pytest

import fastlogit
from fastlogit import reference
from conftest import make_problem, run_python

SOLVERS = ["lbfgs", "newton"]


def logistic_data(rng, m, n, scale=1.0, dtype=np.float64, order="C"):
    """Non-separable data drawn from a logistic model (the optimum is finite)."""
    X = rng.normal(size=(m, n)) * scale
    w = rng.normal(size=n) / np.sqrt(n)
    p = 1 / (1 + np.exp(-(X / scale) @ w - 0.3))
    Y = (rng.random(m) < p).astype(np.float64).reshape(1, m)
    return np.asarray(X, dtype=dtype, order=order), Y


def max_grad(X, res, Y, l2, sample_weight=None, fit_intercept=True):
    _, dW, db = fastlogit.cost_and_gradients(X, res.W, res.b, Y, l2=l2,
                                             sample_weight=sample_weight)
    return max(np.max(np.abs(dW)), abs(db) if fit_intercept else 0.0)


# ---------------------------------------------------------------------------
# gradient_descent
# ---------------------------------------------------------------------------

def test_gradient_descent_signature_equals_reference():
    fast = inspect.signature(fastlogit.gradient_descent)
    ref = inspect.signature(reference.gradient_descent)
    assert list(fast.parameters) == list(ref.parameters)
    for p_fast, p_ref in zip(fast.parameters.values(), ref.parameters.values()):
        assert (p_fast.kind, p_fast.default) == (p_ref.kind, p_ref.default), p_fast.name


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("l2", [0.0, 0.1])
@pytest.mark.parametrize("order", ["C", "F"])
def test_gradient_descent_matches_reference(rng, dtype, weighted, l2, order):
    X, W0, b0, Y = make_problem(rng, 300, 4, dtype, order)
    sw = rng.uniform(0, 3, size=300) if weighted else None
    W, b, costs = fastlogit.gradient_descent(X, Y, W0, b0, learning_rate=0.5, num_iterations=50,
                                             l2=l2, sample_weight=sw)
    W_ref, b_ref, costs_ref = reference.gradient_descent(
        X.astype(np.float64), Y.astype(np.float64), W0.astype(np.float64), b0,
        learning_rate=0.5, num_iterations=50, l2=l2, sample_weight=sw)
    assert W.shape == (4, 1) and W.dtype == np.float64 and isinstance(b, float)
    assert len(costs) == 50 and all(isinstance(c, float) for c in costs)
    np.testing.assert_allclose(W, W_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, b_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(costs, costs_ref, rtol=1e-12)
    assert costs[-1] < costs[0]


def test_gradient_descent_defaults_and_callback(rng):
    X, _, _, Y = make_problem(rng, 50, 3, np.float64)
    seen = []
    W, b, costs = fastlogit.gradient_descent(
        X, Y, num_iterations=5, callback=lambda i, W, b, J: seen.append((i, W.copy(), b, J)))
    W_ref, b_ref, costs_ref = reference.gradient_descent(X, Y, num_iterations=5)
    np.testing.assert_allclose(W, W_ref, rtol=1e-12)
    assert [s[0] for s in seen] == list(range(5))
    assert [s[3] for s in seen] == costs
    np.testing.assert_array_equal(seen[-1][1], W)
    assert seen[-1][2] == b
    # The starting point is the cost at W = 0, b = 0: log 2.
    assert costs[0] == pytest.approx(np.log(2), rel=1e-14)


def test_gradient_descent_does_not_modify_inputs_and_zero_iterations(rng):
    X, W0, b0, Y = make_problem(rng, 20, 2, np.float64)
    W0_copy = W0.copy()
    W, b, costs = fastlogit.gradient_descent(X, Y, W0, b0, num_iterations=0)
    np.testing.assert_array_equal(W, W0)
    assert b == b0 and costs == []
    fastlogit.gradient_descent(X, Y, W0, b0, num_iterations=3)
    np.testing.assert_array_equal(W0, W0_copy)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"learning_rate": 0.0}, ValueError, "learning_rate"),
    ({"learning_rate": np.nan}, ValueError, "learning_rate"),
    ({"num_iterations": -1}, ValueError, "num_iterations"),
    ({"num_iterations": 2.5}, TypeError, "num_iterations"),
    ({"W": np.zeros((1, 3))}, ValueError, "W"),
    ({"l2": -1.0}, ValueError, "l2"),
    ({"sample_weight": -np.ones(10)}, ValueError, "sample_weight"),
    ({"callback": 3}, TypeError, "callback"),
])
def test_gradient_descent_rejects_bad_arguments(rng, kwargs, exc, match):
    X, _, _, Y = make_problem(rng, 10, 3, np.float64)
    with pytest.raises(exc, match=match):
        fastlogit.gradient_descent(X, Y, **kwargs)


# ---------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------

def reference_lbfgs(X, Y, l2, sample_weight=None):
    """An independent solution: scipy's L-BFGS on the textbook NumPy objective."""
    from scipy.optimize import minimize
    n = X.shape[1]

    def fun(theta):
        J, dW, db = reference.cost_and_gradients(X, theta[:n].reshape(-1, 1), theta[n], Y,
                                                 sample_weight=sample_weight, l2=l2)
        return J, np.append(dW.ravel(), db)

    res = minimize(fun, np.zeros(n + 1), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-11, "ftol": 0.0, "maxiter": 10_000})
    return res.x[:n].reshape(-1, 1), res.x[n], res.fun


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("l2", [1e-3, 0.1])
def test_fit_matches_independent_minimiser(rng, solver, l2):
    X, Y = logistic_data(rng, 500, 5)
    sw = rng.uniform(0.2, 2.0, size=500)
    res = fastlogit.fit(X, Y, l2=l2, sample_weight=sw, tol=1e-10, solver=solver)
    W_ref, b_ref, J_ref = reference_lbfgs(X, Y, l2, sw)
    assert isinstance(res, fastlogit.FitResult)
    assert res.converged and res.solver == solver and res.n_iter >= 1
    assert res.W.shape == (5, 1) and res.W.dtype == np.float64
    np.testing.assert_allclose(res.W, W_ref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.b, b_ref, rtol=1e-6, atol=1e-9)
    assert res.cost == pytest.approx(J_ref, rel=1e-12)
    assert res.grad_max == pytest.approx(max_grad(X, res, Y, l2, sw), rel=1e-6, abs=1e-15)


@pytest.mark.parametrize("solver", SOLVERS)
def test_fit_reaches_tol(rng, solver):
    X, Y = logistic_data(rng, 2000, 8, scale=3.0)
    for tol in (1e-4, 1e-8):
        res = fastlogit.fit(X, Y, l2=1e-4, tol=tol, solver=solver)
        assert res.converged
        assert max_grad(X, res, Y, 1e-4) <= tol


def test_solvers_agree(rng):
    X, Y = logistic_data(rng, 1000, 6, scale=5.0)
    results = {s: fastlogit.fit(X, Y, l2=1e-3, tol=1e-10, solver=s) for s in ["auto", *SOLVERS]}
    np.testing.assert_allclose(results["auto"].W, results["newton"].W, rtol=1e-7)
    np.testing.assert_allclose(results["lbfgs"].W, results["newton"].W, rtol=1e-7)
    assert results["lbfgs"].cost == pytest.approx(results["newton"].cost, rel=1e-13)
    # Newton's quadratic convergence: far fewer passes over X.
    assert results["newton"].n_iter < results["lbfgs"].n_iter


def test_auto_follows_its_rule(rng):
    # Well-scaled columns: L-BFGS converges within its first evaluations.
    X, Y = logistic_data(rng, 2000, 6)
    assert fastlogit.fit(X, Y, l2=1e-3, tol=1e-6).solver == "lbfgs"
    # Column scales 1e-3..1e3: Newton from the start.
    res = fastlogit.fit(X * np.logspace(-3, 3, 6), Y, l2=1e-3, tol=1e-6)
    assert res.solver == "newton" and res.converged
    # More parameters than Newton's limit: L-BFGS.
    X, Y = logistic_data(rng, 300, 250)
    assert fastlogit.fit(X, Y, l2=1e-2, tol=1e-6).solver == "lbfgs"


def test_auto_switches_to_newton_when_lbfgs_is_slow(rng):
    # Equal scales but strongly correlated columns and no penalty: L-BFGS
    # crawls, so auto hands over to Newton, which reaches a tight tol.
    G = rng.normal(size=(4000, 8))
    X = G[:, :1] + 1e-3 * G
    Y = (rng.random(4000) < 1 / (1 + np.exp(-G[:, 1] - G[:, 2]))).astype(float)
    res = fastlogit.fit(X, Y, tol=1e-10)
    assert res.solver == "lbfgs+newton" and res.converged
    assert max_grad(X, res, Y, 0.0) <= 1e-10


@pytest.mark.parametrize("solver", SOLVERS)
def test_fit_float32_and_memory_order_change_nothing(rng, solver):
    X, Y = logistic_data(rng, 800, 5, dtype=np.float32)
    base = fastlogit.fit(X.astype(np.float64), Y, l2=1e-2, solver=solver)
    for X_variant in (X, np.asfortranarray(X), np.asfortranarray(X.astype(np.float64)),
                      X.astype(np.float64)[:, ::1]):
        res = fastlogit.fit(X_variant, Y, l2=1e-2, solver=solver)
        # Same numbers (float32 values are exact in float64), computed in float64.
        np.testing.assert_allclose(res.W, base.W, rtol=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
def test_integer_sample_weight_equals_repeated_rows(rng, solver):
    X, Y = logistic_data(rng, 200, 4)
    reps = rng.integers(0, 4, size=200)          # zeros drop rows
    res_w = fastlogit.fit(X, Y, l2=1e-2, sample_weight=reps, tol=1e-11, solver=solver)
    res_r = fastlogit.fit(np.repeat(X, reps, axis=0), np.repeat(Y, reps, axis=1), l2=1e-2,
                          tol=1e-11, solver=solver)
    np.testing.assert_allclose(res_w.W, res_r.W, rtol=1e-8)
    assert res_w.b == pytest.approx(res_r.b, rel=1e-8)
    assert res_w.cost == pytest.approx(res_r.cost, rel=1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
def test_fit_without_intercept(rng, solver):
    X, Y = logistic_data(rng, 300, 3)
    res = fastlogit.fit(X, Y, l2=1e-2, fit_intercept=False, tol=1e-10, solver=solver)
    assert res.b == 0.0 and res.converged
    _, dW, db = fastlogit.cost_and_gradients(X, res.W, 0.0, Y, l2=1e-2)
    # L-BFGS also stops, converged, when the cost no longer decreases at the resolution
    # of floating point (_lbfgs.py, as scikit-learn): which stop comes first depends on
    # the last bits of the cost along the way (here a change of the block-sum order
    # turned a gradient stop at 4.6e-11 into a cost stop at 8.4e-10, same cost to 16
    # digits).  The gradient bound is the tolerance only for the gradient stop.
    gradient_stop = solver != "lbfgs" or "PGTOL" in res.message
    assert np.max(np.abs(dW)) <= (1e-10 if gradient_stop else 1e-8), res.message
    assert abs(db) > 1e-4        # the intercept's gradient is not driven to zero


@pytest.mark.parametrize("solver", SOLVERS)
def test_fit_is_reproducible_across_thread_counts(rng, solver):
    # Above the serial threshold, and 2 Hessian blocks (so 2 chunks) for Newton.
    X, Y = logistic_data(rng, 30_000, 8)
    one = fastlogit.fit(X, Y, l2=1e-3, solver=solver, n_threads=1)
    for n_threads in (2, 3):
        other = fastlogit.fit(X, Y, l2=1e-3, solver=solver, n_threads=n_threads)
        np.testing.assert_array_equal(one.W, other.W)
        assert one.b == other.b and one.n_iter == other.n_iter


def test_newton_with_collinear_columns_and_no_penalty(rng):
    # Duplicated column, l2 = 0: a singular Hessian (least-squares step).
    X, Y = logistic_data(rng, 400, 2)
    X_dup = np.column_stack([X, X[:, 0]])
    res_dup = fastlogit.fit(X_dup, Y, tol=1e-9, solver="newton")
    res = fastlogit.fit(X, Y, tol=1e-9, solver="newton")
    assert res_dup.converged
    assert res_dup.cost == pytest.approx(res.cost, rel=1e-12)
    assert res_dup.W[0, 0] + res_dup.W[2, 0] == pytest.approx(res.W[0, 0], rel=1e-7)


@pytest.mark.parametrize("solver", SOLVERS)
def test_fit_warns_when_not_converged(rng, solver):
    X, Y = logistic_data(rng, 300, 4, scale=10.0)
    with pytest.warns(fastlogit.ConvergenceWarning, match="max_iter|iteration"):
        res = fastlogit.fit(X, Y, l2=0.0, tol=1e-14, max_iter=1, solver=solver)
    assert not res.converged and res.n_iter == 1
    assert res.grad_max > 1e-14


def test_convergence_warning_is_also_sklearns(rng):
    sk_exceptions = pytest.importorskip("sklearn.exceptions")
    assert issubclass(fastlogit.ConvergenceWarning, UserWarning)
    X, Y = logistic_data(rng, 100, 3)
    with pytest.warns(sk_exceptions.ConvergenceWarning):
        fastlogit.fit(X, Y, tol=0.0, max_iter=1, solver="lbfgs")


def test_fit_result_is_frozen(rng):
    X, Y = logistic_data(rng, 50, 2)
    res = fastlogit.fit(X, Y, l2=0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.b = 1.0
    assert {f.name for f in dataclasses.fields(res)} >= {"W", "b", "cost", "n_iter", "converged"}


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"l2": -1.0}, ValueError, "l2"),
    ({"tol": -1e-3}, ValueError, "tol"),
    ({"max_iter": 0}, ValueError, "max_iter"),
    ({"max_iter": 10.0}, TypeError, "max_iter"),
    ({"solver": "sgd"}, ValueError, "solver"),
    ({"sample_weight": np.zeros(20)}, ValueError, "sample_weight"),
    ({"sample_weight": np.ones(19)}, ValueError, "sample_weight"),
])
def test_fit_rejects_bad_arguments(rng, kwargs, exc, match):
    X, Y = logistic_data(rng, 20, 2)
    with pytest.raises(exc, match=match):
        fastlogit.fit(X, Y, **kwargs)


def test_fit_rejects_bad_data(rng):
    X, Y = logistic_data(rng, 20, 2)
    with pytest.raises(ValueError, match="Y must hold labels in"):
        fastlogit.fit(X, 2 * Y)
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="X must hold finite"):
        fastlogit.fit(X, Y)
    with pytest.raises(ValueError, match="X"):
        fastlogit.fit(np.empty((0, 2)), np.empty((1, 0)))


@pytest.mark.parametrize("solver", ["lbfgs", "newton"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("layout", ["C64", "F64", "C32"])
def test_fit_names_the_first_non_finite_element_even_in_a_row_of_weight_zero(
        rng, solver, bad, layout):
    # The fit has no separate NaN/inf pass: the first kernel pass finds them,
    # including in rows of weight 0 (whose loss is ignored but whose gradient
    # term 0 * x is not finite), and the error then says where.
    X, Y = logistic_data(rng, 40, 3)
    X = np.asarray(X, dtype=np.float32 if layout == "C32" else np.float64,
                   order="F" if layout == "F64" else "C")
    X[5, 2] = bad
    X[9, 0] = bad                         # later in row order: not the one named
    sw = np.ones(40)
    for weights in (None, np.where(np.arange(40) == 5, 0.0, sw)):
        with pytest.raises(ValueError, match=rf"no NaN or inf\); X\[5, 2\] is {bad!r}"):
            fastlogit.fit(X, Y, l2=1e-3, sample_weight=weights, solver=solver)


def test_fit_on_finite_x_that_overflows_the_start_says_so(rng):
    X, Y = logistic_data(rng, 40, 2)
    X[:, 0] = np.where(Y.ravel() > 0, 1e308, -1e308)     # every gradient term of one sign
    with pytest.raises(ValueError, match=r"X is finite but .* overflow the sums"):
        fastlogit.fit(X, Y, l2=1e-3)


def test_fit_without_scipy_names_the_extra(rng, monkeypatch):
    X, Y = logistic_data(rng, 50, 2)
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)   # import now fails
    with pytest.raises(ImportError, match=r"pip install fastlogit\[sklearn\]"):
        fastlogit.fit(X, Y, solver="lbfgs")
    assert fastlogit.fit(X, Y, solver="newton").converged    # NumPy only


def test_import_fastlogit_needs_neither_sklearn_nor_scipy(tmp_path):
    code = """
import sys
for name in ("sklearn", "scipy"):
    sys.modules[name] = None          # make them unimportable
import numpy as np, fastlogit
from fastlogit import *               # noqa: must not need scikit-learn
assert "LogisticRegression" in dir(fastlogit)
X = np.array([[0.0], [1.0], [2.0], [3.0]]); Y = [[0, 1, 0, 1]]
print(fastlogit.fit(X, Y, l2=0.1).converged)
try:
    fastlogit.LogisticRegression
except ImportError as exc:
    print("ImportError", exc)
"""
    out = run_python(["-c", code], cwd=tmp_path, check=True).stdout.splitlines()
    assert out[0] == "True"
    assert out[1].startswith("ImportError") and "pip install fastlogit[sklearn]" in out[1]


def test_import_fastlogit_does_not_load_sklearn_or_scipy(tmp_path):
    code = ("import sys, fastlogit; "
            "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))")
    out = run_python(["-c", code], cwd=tmp_path, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------
# Newton's step rule, separation, divergence
# ---------------------------------------------------------------------------

def test_newton_never_increases_the_cost(rng):
    from fastlogit import _kernels
    from fastlogit._newton import newton

    X, Y = logistic_data(rng, 3000, 6)
    X = X * np.logspace(-3, 3, 6)
    y = Y[0]
    seen = []

    def oracle(theta):
        loss, dW, db, H, _ = _kernels.cost_gradient_hessian(X, theta[:-1].copy(), theta[-1], y,
                                                            np.empty(0), 1)
        J, g, Hs = loss / 3000, np.append(dW, db) / 3000, H / 3000
        seen.append(J)
        return J, g, Hs

    theta = np.zeros(7)
    J, g, H = oracle(theta)
    theta, J_end, g, n_iter, message, ok = newton(oracle, theta, J, g, H, 1e-10, 100)
    assert ok and n_iter >= 3
    accepted = [seen[0]]
    for J in seen[1:]:
        if J <= accepted[-1]:
            accepted.append(J)
    assert accepted[-1] == J_end and np.all(np.diff(accepted) <= 0)


def test_newton_direction_handles_singular_and_indefinite_hessians():
    from fastlogit._newton import newton_direction

    g = np.array([1.0, -2.0, 0.5])
    for H in (np.zeros((3, 3)), np.diag([1.0, -1.0, 2.0]), np.ones((3, 3))):
        d = newton_direction(H, g)
        assert np.all(np.isfinite(d)) and g @ d < 0


@pytest.mark.parametrize("solver", ["auto", *SOLVERS])
def test_separable_data_without_penalty_is_not_reported_converged(rng, solver):
    X = rng.normal(size=(300, 3))
    Y = (X[:, 0] - X[:, 1] > 0).astype(float)
    with pytest.warns(fastlogit.ConvergenceWarning, match="linearly separable"):
        res = fastlogit.fit(X, Y, solver=solver)
    assert not res.converged and "separable" in res.message
    if solver == "newton":
        # Stopped once separation is established, not after tens of steps
        # chasing a cost that halves while the weights grow (about 40 here).
        assert res.n_iter <= 15
    # A penalty, or labels that overlap, give a finite optimum: no warning.
    assert fastlogit.fit(X, Y, l2=1e-3, solver=solver).converged
    Y[:15] = 1 - Y[:15]
    assert fastlogit.fit(X, Y, solver=solver).converged


def test_soft_labels_are_never_separable(rng):
    X = rng.normal(size=(300, 3))
    Y = np.where(X[:, 0] > 0, 0.9, 0.1)
    assert fastlogit.fit(X, Y).converged


def test_gradient_descent_warns_once_when_the_cost_rises(rng):
    X, Y = logistic_data(rng, 200, 3, scale=100.0)
    with pytest.warns(fastlogit.ConvergenceWarning, match="learning_rate") as record:
        fastlogit.gradient_descent(X, Y, learning_rate=10.0, num_iterations=100)
    assert len(record) == 1


def test_gradient_descent_warns_when_the_cost_stops_being_finite(rng):
    X, Y = logistic_data(rng, 200, 3, scale=1e150)
    # The scores overflow: x_j * w_j rounds to +-inf, and a sum of +inf and -inf is NaN (on
    # every CPU now; a fused multiply-add used to give inf on AVX2 CPUs only).
    with pytest.warns(fastlogit.ConvergenceWarning, match="the cost (is inf|is nan|rose)"):
        fastlogit.gradient_descent(X, Y, learning_rate=1e10, num_iterations=5)
