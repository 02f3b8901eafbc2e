"""Training benchmarks (pytest-benchmark).

    python -m pytest benchmarks/bench_train.py -p no:cacheprovider \
        --benchmark-columns=median,iqr,min,rounds --benchmark-sort=name

Groups (each row of a group does the same job; compare medians):

* ``cost_and_gradients (m, n)`` for X of (10^6, 100) and (10^6, 3): the fused
  kernel (one pass over X; float64 and float32, C order, all cores) against the
  reference's two-pass NumPy (``X @ W`` then ``X.T @ dZ``, BLAS on all cores).
* ``fit (10^5, 50) C=1e4``: ``fastlogit.LogisticRegression.fit`` (solver auto =
  Newton here, and lbfgs) against ``sklearn.linear_model.LogisticRegression``
  (lbfgs; newton-cholesky as a second peer) on the same data and C, at equal
  final loss: after timing, every contender's objective must be within 1e-9
  (relative) of the optimum found by a tight Newton solve.

Peers that are not installed are skipped.  Results are checked after timing.
The machine is shared while engineers work: quote medians, rerun when quiet.
Set FASTLOGIT_BENCH_TRAIN_SMALL=1 for a quick smoke run on 10x smaller data.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import fastlogit
from fastlogit import reference

pytest.importorskip("pytest_benchmark")

SMALL = os.environ.get("FASTLOGIT_BENCH_TRAIN_SMALL") == "1"
M_KERNEL = 10**5 if SMALL else 10**6
M_FIT = 10**4 if SMALL else 10**5
KERNEL_SHAPES = [(M_KERNEL, 100), (M_KERNEL, 3)]
FIT_C = 1e4
FIT_TOL = 1e-6       # lbfgs stops there with the loss within 1e-9 of the optimum
LOSS_RTOL = 1e-9     # "equal final loss"


# ---------------------------------------------------------------------------
# cost_and_gradients: one fused pass against the two-pass reference
# ---------------------------------------------------------------------------

_problems: dict = {}


def kernel_problem(shape):
    if shape not in _problems:
        m, n = shape
        rng = np.random.default_rng(0)
        X = rng.standard_normal((m, n))
        W = rng.standard_normal((n, 1)) / np.sqrt(n)
        Y = (rng.random((1, m)) < 0.5).astype(np.float64)
        _problems.clear()          # keep one (m, n) problem in memory at a time
        _problems[shape] = (X, X.astype(np.float32), W, 0.1, Y)
    return _problems[shape]


def _check_against_reference(got, X, W, b, Y, rtol):
    want = reference.cost_and_gradients(X, W, b, Y)
    np.testing.assert_allclose(got[0], want[0], rtol=rtol)
    np.testing.assert_allclose(got[1], want[1], rtol=rtol, atol=rtol * np.abs(want[1]).max())
    np.testing.assert_allclose(got[2], want[2], rtol=rtol, atol=rtol)


@pytest.mark.parametrize("shape", KERNEL_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cost_and_gradients_fastlogit(benchmark, shape, dtype):
    X64, X32, W, b, Y = kernel_problem(shape)
    X = X64 if dtype == "float64" else X32
    benchmark.group = f"cost_and_gradients {shape[0]}x{shape[1]}"
    got = benchmark(fastlogit.cost_and_gradients, X, W, b, Y)
    # float32 X holds other numbers: compare with the reference on those numbers.
    _check_against_reference(got, X.astype(np.float64), W, b, Y,
                             1e-10 if dtype == "float64" else 1e-5)


@pytest.mark.parametrize("shape", KERNEL_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_cost_and_gradients_reference_numpy(benchmark, shape):
    X, _, W, b, Y = kernel_problem(shape)
    benchmark.group = f"cost_and_gradients {shape[0]}x{shape[1]}"
    got = benchmark(reference.cost_and_gradients, X, W, b, Y)
    fast = fastlogit.cost_and_gradients(X, W, b, Y)
    np.testing.assert_allclose(got[0], fast[0], rtol=1e-10)


# ---------------------------------------------------------------------------
# LogisticRegression.fit against scikit-learn at equal final loss
# ---------------------------------------------------------------------------

_fit_data: dict = {}


def fit_problem():
    """(10^5, 50) make_classification data (30 informative features, 5% label
    noise) and the optimum of scikit-learn's objective at C = 1e4."""
    if not _fit_data:
        sk_datasets = pytest.importorskip("sklearn.datasets")
        X, y = sk_datasets.make_classification(
            n_samples=M_FIT, n_features=50, n_informative=30, n_redundant=0, flip_y=0.05,
            random_state=0)
        l2 = 1.0 / (FIT_C * X.shape[0])
        best = fastlogit.fit(X, y, l2=l2, tol=1e-12, solver="newton")
        _fit_data.update(X=X, y=y, l2=l2, best=best)
    return _fit_data


def final_loss(clf, data):
    J, _, _ = fastlogit.cost_and_gradients(data["X"], clf.coef_.T, clf.intercept_[0],
                                           data["y"], l2=data["l2"])
    return J


def _bench_fit(benchmark, make_estimator, name):
    data = fit_problem()
    benchmark.group = f"fit {M_FIT}x50 C={FIT_C:g}"
    benchmark.name = name
    clf = benchmark.pedantic(lambda: make_estimator().fit(data["X"], data["y"]),
                             rounds=5, iterations=1, warmup_rounds=1)
    J, J_best = final_loss(clf, data), data["best"].cost
    benchmark.extra_info.update(final_loss=J, excess_loss=J - J_best, n_iter=int(clf.n_iter_[0]))
    assert abs(J - J_best) <= LOSS_RTOL * J_best, (name, J, J_best)


@pytest.mark.parametrize("solver", ["auto", "lbfgs"])
def test_fit_fastlogit(benchmark, solver):
    _bench_fit(benchmark, lambda: fastlogit.LogisticRegression(
        C=FIT_C, tol=FIT_TOL, max_iter=10_000, solver=solver), f"fastlogit[{solver}]")


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cholesky"])
def test_fit_sklearn(benchmark, solver):
    linear_model = pytest.importorskip("sklearn.linear_model")
    _bench_fit(benchmark, lambda: linear_model.LogisticRegression(
        C=FIT_C, tol=FIT_TOL, max_iter=10_000, solver=solver), f"sklearn[{solver}]")
