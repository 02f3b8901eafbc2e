"""Every fast function against its textbook twin where the textbook is exact."""
import inspect
import warnings

import numpy as np
import pytest

import fastlogit
from fastlogit import reference
from conftest import RTOL, SHAPES, make_problem

PUBLIC = ["sigmoid", "log_sigmoid", "forward_pass", "predict", "compute_cost",
          "cost_from_logits", "gradients", "cost_and_gradients"]


@pytest.mark.parametrize("name", PUBLIC)
def test_same_signature_as_reference(name):
    fast = inspect.signature(getattr(fastlogit, name))
    ref = inspect.signature(getattr(reference, name))
    assert list(fast.parameters) == list(ref.parameters)
    for p_fast, p_ref in zip(fast.parameters.values(), ref.parameters.values()):
        assert p_fast.kind == p_ref.kind, p_fast.name
        assert p_fast.default == p_ref.default, p_fast.name


@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5), (2, 3, 4), (100_001,)])
def test_sigmoid_matches_reference(rng, dtype, shape):
    z = (rng.normal(size=shape) * 8).astype(dtype)
    got = fastlogit.sigmoid(z)
    want = reference.sigmoid(z)
    assert got.dtype == want.dtype and np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=0)


def test_log_sigmoid_matches_reference(rng, dtype):
    # log(sigmoid(z)) is exact in float64 only while sigmoid(z) is not close to
    # 1 (z <= 2); float32 results are compared with the float64 reference.
    z = rng.uniform(-30, 2, size=10_000).astype(dtype)
    got = fastlogit.log_sigmoid(z)
    assert got.dtype == dtype
    want = reference.log_sigmoid(z.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=0)


@pytest.mark.parametrize("m,n", SHAPES)
@pytest.mark.parametrize("order", ["C", "F"])
def test_forward_pass_and_predict(rng, dtype, m, n, order):
    X, W, b, _ = make_problem(rng, m, n, dtype, order)
    got = fastlogit.forward_pass(X, W, b)
    want = reference.forward_pass(X.astype(np.float64), W.astype(np.float64), b)
    assert got.shape == (1, m) and got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=0)
    labels = fastlogit.predict(X, W, b)
    assert labels.shape == (1, m) and labels.dtype == np.int64
    # Away from the threshold, both must agree exactly.
    clear = np.abs(want - 0.5) > 1e-6
    np.testing.assert_array_equal(labels[clear], reference.predict(X, W, b)[clear])


@pytest.mark.parametrize("m", [1, 2, 513, 100_000])
def test_costs(rng, dtype, m):
    A = rng.uniform(0.001, 0.999, size=(1, m)).astype(dtype)
    Y = (rng.random((1, m)) < 0.5).astype(dtype)
    got = fastlogit.compute_cost(A, Y)
    assert isinstance(got, float)
    np.testing.assert_allclose(got, reference.compute_cost(A.astype(np.float64), Y), rtol=1e-12)
    Z = rng.normal(scale=5, size=(1, m)).astype(dtype)
    got = fastlogit.cost_from_logits(Z, Y)
    assert isinstance(got, float)
    np.testing.assert_allclose(got, reference.cost_from_logits(Z.astype(np.float64), Y),
                               rtol=1e-12)


def test_soft_labels(rng):
    Z = rng.normal(scale=3, size=(1, 1000))
    Y = rng.random((1, 1000))
    np.testing.assert_allclose(fastlogit.cost_from_logits(Z, Y),
                               reference.cost_from_logits(Z, Y), rtol=1e-12)
    A = reference.sigmoid(Z)
    np.testing.assert_allclose(fastlogit.compute_cost(A, Y), reference.compute_cost(A, Y),
                               rtol=1e-12)


@pytest.mark.parametrize("m,n", SHAPES)
@pytest.mark.parametrize("order", ["C", "F"])
def test_gradients(rng, dtype, m, n, order):
    X, W, b, Y = make_problem(rng, m, n, dtype, order)
    dW, db = fastlogit.gradients(X, W, b, Y)
    X64, W64 = X.astype(np.float64), W.astype(np.float64)
    dW_ref, db_ref = reference.gradients(X64, W64, b, Y.astype(np.float64))
    assert dW.shape == (n, 1) and dW.dtype == dtype and isinstance(db, float)
    scale = np.abs(X64).T @ np.ones((m, 1)) / m   # |residual| <= 1: bound of each sum
    np.testing.assert_array_less(np.abs(dW - dW_ref), 1e-12 * scale + RTOL[dtype] * np.abs(dW_ref) + 1e-15)
    assert abs(db - db_ref) <= 1e-12 + 1e-12 * abs(db_ref)


@pytest.mark.parametrize("m,n", [(1, 1), (500, 7), (20_000, 5)])
def test_cost_and_gradients_weighted_l2(rng, m, n):
    X, W, b, Y = make_problem(rng, m, n, np.float64)
    sw = rng.uniform(0, 3, size=m)
    J, dW, db = fastlogit.cost_and_gradients(X, W, b, Y, sample_weight=sw, l2=0.3)
    J_ref, dW_ref, db_ref = reference.cost_and_gradients(X, W, b, Y, sample_weight=sw, l2=0.3)
    np.testing.assert_allclose(J, J_ref, rtol=1e-12)
    np.testing.assert_allclose(dW, dW_ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(db, db_ref, rtol=1e-10, atol=1e-14)


def test_cost_and_gradients_is_cost_plus_gradients(rng):
    X, W, b, Y = make_problem(rng, 5000, 6, np.float64)
    J, dW, db = fastlogit.cost_and_gradients(X, W, b, Y)
    # Same per-example losses; scores differ only by the dot's summation order.
    assert J == pytest.approx(fastlogit.cost_from_logits((X @ W).T + b, Y), rel=1e-14)
    dW2, db2 = fastlogit.gradients(X, W, b, Y)
    np.testing.assert_array_equal(dW, dW2)
    assert db == db2


def test_gradient_matches_finite_differences(rng):
    X, W, b, Y = make_problem(rng, 300, 4, np.float64)
    J, dW, db = fastlogit.cost_and_gradients(X, W, b, Y, l2=0.1)
    h = 1e-6
    for j in range(4):
        E = np.zeros_like(W)
        E[j] = h
        num = (fastlogit.cost_and_gradients(X, W + E, b, Y, l2=0.1)[0]
               - fastlogit.cost_and_gradients(X, W - E, b, Y, l2=0.1)[0]) / (2 * h)
        assert abs(num - dW[j, 0]) < 1e-7
    num_b = (fastlogit.cost_and_gradients(X, W, b + h, Y, l2=0.1)[0]
             - fastlogit.cost_and_gradients(X, W, b - h, Y, l2=0.1)[0]) / (2 * h)
    assert abs(num_b - db) < 1e-7


def test_reference_still_breaks_where_fast_does_not():
    # The yardstick keeps the textbook's failure modes on purpose.
    with np.errstate(all="warn"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert reference.sigmoid(np.array([-710.0]))[0] == 0.0
        assert reference.compute_cost(np.array([[0.0]]), np.array([[1.0]])) == np.inf
    assert any(issubclass(w.category, RuntimeWarning) for w in caught)
