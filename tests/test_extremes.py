"""Inputs where the textbook formulas overflow, cancel or return inf/NaN."""
import math

import numpy as np
import pytest

import fastlogit

BIG = 1e308


def test_sigmoid_limits(dtype):
    z = np.array([-np.inf, -BIG if dtype == np.float64 else -3e38, -1000.0, 0.0, -0.0,
                  1000.0, 3e38, np.inf, np.nan], dtype=dtype)
    got = fastlogit.sigmoid(z)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got[:-1], np.array([0, 0, 0, 0.5, 0.5, 1, 1, 1], dtype))
    assert np.isnan(got[-1])


def test_sigmoid_tiny_outputs_are_not_flushed():
    # 1/(1+exp(700)) is a normal number ~9.86e-305; exp(-z) overflows only past 709.78.
    z = np.array([-700.0, -709.0, -720.0, -740.0, -745.0, -746.0])
    got = fastlogit.sigmoid(z)
    want = [math.exp(v) / (1 + math.exp(v)) for v in z]   # exact enough: exp(v) << 1
    np.testing.assert_array_equal(got, want)
    assert got[3] > 0 and got[-1] == 0.0


def test_sigmoid_float32_tiny():
    got = fastlogit.sigmoid(np.array([-90.0, -100.0, -104.0, -110.0], dtype=np.float32))
    with np.errstate(under="ignore"):   # the expected values are float32 subnormals
        want = np.array([math.exp(v) for v in (-90.0, -100.0, -104.0, -110.0)]).astype(np.float32)
    np.testing.assert_array_equal(got, want)


def test_log_sigmoid_extremes():
    z = np.array([-np.inf, -BIG, -1000.0, 0.0, 40.0, 800.0, BIG, np.inf, np.nan])
    got = fastlogit.log_sigmoid(z)
    assert got[0] == -np.inf and got[1] == -BIG and got[2] == -1000.0
    assert got[3] == -math.log(2)
    assert got[4] == -math.exp(-40.0) * (1 - 0)  # log1p(e) == e to double precision here
    assert got[5] == 0.0 and got[6] == 0.0 and got[7] == 0.0
    assert np.isnan(got[8])


@pytest.mark.parametrize("z,y,want", [
    (1000.0, 0, 1000.0), (1000.0, 1, 0.0), (-1000.0, 1, 1000.0), (-1000.0, 0, 0.0),
    (BIG, 0, BIG), (-BIG, 1, BIG), (BIG, 1, 0.0),
    (np.inf, 1, 0.0), (-np.inf, 0, 0.0), (np.inf, 0, np.inf), (-np.inf, 1, np.inf),
    (0.0, 1, math.log(2)), (40.0, 1, math.exp(-40.0)),
])
def test_cost_from_logits_extremes(z, y, want):
    assert fastlogit.cost_from_logits([[z]], [[y]]) == want


def test_cost_from_logits_nan_propagates():
    assert math.isnan(fastlogit.cost_from_logits([[np.nan, 0.0]], [[1, 0]]))


@pytest.mark.parametrize("a,y", [(0.0, 1), (1.0, 0), (0.0, 0), (1.0, 1)])
def test_compute_cost_is_finite_at_exact_zero_and_one(dtype, a, y):
    eps = float(np.finfo(dtype).eps)
    J = fastlogit.compute_cost(np.array([[a]], dtype=dtype), np.array([[y]], dtype=dtype))
    assert math.isfinite(J)
    if a != y:
        # Clipped to eps: -log(eps), 36.04 in float64, 15.94 in float32.
        assert J == pytest.approx(-math.log(eps), rel=1e-12)
    else:
        assert J == pytest.approx(-math.log1p(-eps), rel=1e-9)


def test_compute_cost_eps_default_is_dtype_machine_epsilon():
    A32 = np.array([[0.0, 1.0]], dtype=np.float32)
    assert fastlogit.compute_cost(A32, [[1, 0]]) == pytest.approx(-math.log(np.finfo(np.float32).eps))
    assert fastlogit.compute_cost(A32, [[1, 0]], eps=1e-3) == pytest.approx(-math.log(1e-3))


def test_gradients_residual_has_no_cancellation():
    # y = 1, z = 40: sigma(z) - 1 rounds to 0 in double; the true residual is -exp(-40).
    X = np.array([[1.0]])
    dW, db = fastlogit.gradients(X, np.array([[40.0]]), 0.0, [[1]])
    assert db == pytest.approx(-math.exp(-40.0), rel=1e-15)
    assert dW[0, 0] == db


@pytest.mark.parametrize("z", [BIG, -BIG, np.inf, -np.inf, 1000.0, -1000.0])
@pytest.mark.parametrize("y", [0, 1])
def test_gradients_at_huge_scores_are_finite(z, y):
    J, dW, db = fastlogit.cost_and_gradients(np.array([[1.0]]), np.array([[1.0]]), z, [[y]])
    expected_db = (1.0 if z > 0 else 0.0) - y
    assert db == expected_db
    assert not math.isnan(J)


def test_nan_in_x_only_poisons_its_row():
    X = np.ones((5, 2))
    X[2, 1] = np.nan
    A = fastlogit.forward_pass(X, np.ones((2, 1)), 0.0)
    assert np.isnan(A[0, 2]) and np.all(np.isfinite(np.delete(A, 2)))


def test_huge_scores_in_forward_pass():
    X = np.array([[1e300, 1e300], [-1e300, -1e300]])
    A = fastlogit.forward_pass(X, np.array([[1e10], [1e10]]), 0.0)  # scores overflow to +-inf
    np.testing.assert_array_equal(A, [[1.0, 0.0]])
