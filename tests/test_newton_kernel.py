"""The Newton kernel cost_gradient_hessian: against NumPy in float64, against
finite differences of the gradient, against mpmath at extreme scores, and its
bits across thread counts."""
import numpy as np
import pytest

from fastlogit import _kernels

mpmath = pytest.importorskip("mpmath")


def problem(rng, m, n, dtype=np.float64, order="C", weighted=False, soft=False):
    X = np.asarray(rng.normal(size=(m, n)), dtype=dtype, order=order)
    y = rng.random(m) if soft else (rng.random(m) < 0.4).astype(np.float64)
    sw = rng.random(m) * 2 if weighted else np.empty(0)
    W = rng.normal(size=n) / np.sqrt(n)
    return X, y, sw, W, 0.3


def numpy_reference(X, y, sw, W, b):
    """The sums in float64 with textbook NumPy (stable weights e / (1 + e)^2)."""
    X = np.asarray(X, dtype=np.float64)
    m = X.shape[0]
    s = sw if sw.size else np.ones(m)
    z = X @ W + b
    e = np.exp(-np.abs(z))
    h = s * e / (1 + e) ** 2
    r = s * (1 / (1 + np.exp(-z)) - y)
    loss = s * (np.logaddexp(0, z) - y * z)
    Xt = np.hstack([X, np.ones((m, 1))])
    return loss.sum(), Xt.T @ r, (Xt * h[:, None]).T @ Xt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (37, 3), (3000, 9), (2000, 40), (700, 130)])
def test_matches_numpy_float64_reference(rng, dtype, order, weighted, shape):
    X, y, sw, W, b = problem(rng, *shape, dtype=dtype, order=order, weighted=weighted)
    loss, dW, db, H, bad = _kernels.cost_gradient_hessian(X, W, b, y, sw, 1)
    loss_ref, g_ref, H_ref = numpy_reference(X, y, sw, W, b)
    n = shape[1]
    assert bad == 0 and H.shape == (n + 1, n + 1) and H.dtype == np.float64
    np.testing.assert_array_equal(H, H.T)
    scale = np.max(np.abs(H_ref))
    assert np.max(np.abs(H - H_ref)) <= 1e-13 * scale * np.sqrt(shape[0])
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-12)
    np.testing.assert_allclose(np.append(dW, db), g_ref, rtol=1e-10,
                               atol=1e-12 * np.max(np.abs(g_ref)) * np.sqrt(shape[0]))


def test_gradient_and_loss_agree_with_cost_and_gradients(rng):
    X, y, sw, W, b = problem(rng, 5000, 17, weighted=True, soft=True)
    loss, dW, db, _, _ = _kernels.cost_gradient_hessian(X, W, b, y, sw, 1)
    loss2, dW2, db2, _ = _kernels.cost_and_gradients(X, W, b, y, sw, True, 1)
    np.testing.assert_allclose(loss, loss2, rtol=1e-14)
    np.testing.assert_allclose(dW, dW2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, db2, rtol=1e-12)


def test_hessian_is_the_derivative_of_the_gradient(rng):
    X, y, sw, W, b = problem(rng, 800, 6, weighted=True)
    theta = np.append(W, b)
    _, _, _, H, _ = _kernels.cost_gradient_hessian(X, W, b, y, sw, 1)

    def grad(t):
        _, dW, db, _ = _kernels.cost_and_gradients(X, t[:-1].copy(), t[-1], y, sw, False, 1)
        return np.append(dW, db)

    eps = 1e-5
    for j in range(theta.size):
        step = np.zeros_like(theta)
        step[j] = eps
        column = (grad(theta + step) - grad(theta - step)) / (2 * eps)
        np.testing.assert_allclose(H[:, j], column, rtol=1e-6, atol=1e-6 * np.max(np.abs(H)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_bits_do_not_depend_on_the_thread_count(rng, dtype, order):
    # Enough rows for many chunks, so that 2 and 3 threads really split the work.
    X, y, sw, W, b = problem(rng, 60_000, 12, dtype=dtype, order=order, weighted=True)
    assert _kernels.newton_layout(*X.shape)[2] > 3
    first = _kernels.cost_gradient_hessian(X, W, b, y, sw, 1)
    for n_threads in (2, 3):
        again = _kernels.cost_gradient_hessian(X, W, b, y, sw, n_threads)
        assert again[0] == first[0] and again[2] == first[2]
        np.testing.assert_array_equal(again[1], first[1])
        np.testing.assert_array_equal(again[3], first[3])


def test_float32_input_is_the_float64_result_of_the_same_numbers(rng):
    X, y, sw, W, b = problem(rng, 3000, 20, dtype=np.float32)
    r32 = _kernels.cost_gradient_hessian(X, W, b, y, sw, 1)
    r64 = _kernels.cost_gradient_hessian(X.astype(np.float64), W, b, y, sw, 1)
    # Same numbers, same float64 arithmetic; only contraction into FMAs may differ.
    np.testing.assert_allclose(r32[3], r64[3], rtol=1e-12, atol=1e-12 * np.max(np.abs(r64[3])))
    np.testing.assert_allclose(r32[1], r64[1], rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("z", [0.0, 1e-8, 3.0, -3.0, 20.0, -37.5, 40.0, -300.0, 700.0, -740.0])
def test_curvature_is_accurate_at_extreme_scores(z):
    # One example x = 1, W = 0, b = z: H = [[h, h], [h, h]] with h = sigma(z) sigma(-z).
    # 1 - sigma(z) would round to 0 beyond z = 37; the kernel must not cancel.
    X = np.ones((1, 1))
    _, _, _, H, _ = _kernels.cost_gradient_hessian(X, np.zeros(1), z, np.ones(1), np.empty(0), 1)
    with mpmath.workdps(40):
        exact = float(mpmath.exp(-abs(mpmath.mpf(z))) / (1 + mpmath.exp(-abs(mpmath.mpf(z)))) ** 2)
    assert H[0, 0] == H[1, 1] == H[0, 1]
    # 2 ulp; in the subnormal range an ulp is the smallest subnormal.
    ulp = max(np.spacing(exact), 5e-324) if exact >= 2.3e-308 else 5e-324
    assert abs(H[0, 0] - exact) <= 2 * ulp


def test_curvature_underflows_to_zero_not_nan():
    X = np.ones((2, 1))
    _, _, _, H, _ = _kernels.cost_gradient_hessian(X, np.zeros(1), 800.0, np.array([0.0, 1.0]),
                                                   np.empty(0), 1)
    np.testing.assert_array_equal(H, 0.0)


def test_zero_weight_removes_the_example(rng):
    X, y, _, W, b = problem(rng, 50, 4)
    sw = np.ones(50)
    sw[7] = 0.0
    X[7] = 1e3        # a saturated example: loss ~1e3, curvature 0
    keep = np.arange(50) != 7
    full = _kernels.cost_gradient_hessian(X, W, b, y, sw, 1)
    part = _kernels.cost_gradient_hessian(np.ascontiguousarray(X[keep]), W, b, y[keep],
                                          np.empty(0), 1)
    np.testing.assert_allclose(full[0], part[0], rtol=1e-13)
    np.testing.assert_allclose(full[3], part[3], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 7, 31, 64, 201])
def test_newton_direction_against_numpy_lapack(rng, n):
    from fastlogit._newton import newton_direction_numpy
    A = rng.normal(size=(n + 3, n)) * np.logspace(-2, 2, n)
    H = A.T @ A / (n + 3) + 1e-6 * np.eye(n)
    g = rng.normal(size=n)
    d = _kernels.newton_direction(H, g)
    ref = newton_direction_numpy(H, g)
    # The residual of the solve is at the level of the conditioning times rounding.
    assert np.linalg.norm(H @ d + g) <= 1e-9 * np.linalg.norm(g) * np.linalg.cond(H) ** 0.5 + 1e-12
    assert np.allclose(d, ref, rtol=1e-6, atol=1e-9 * np.max(np.abs(ref)))
    assert d.tobytes() == _kernels.newton_direction(H.copy(), g.copy()).tobytes()


def test_newton_direction_shifts_and_falls_back_like_numpy():
    from fastlogit._newton import newton_direction_numpy
    g = np.array([1.0, -2.0, 0.5])
    for H in (np.zeros((3, 3)), np.diag([1.0, -1.0, 2.0]), np.ones((3, 3)),
              np.diag([1.0, np.nan, 1.0]), np.diag([np.inf, 1.0, 1.0])):
        d, ref = _kernels.newton_direction(H, g), newton_direction_numpy(H, g)
        assert np.all(np.isfinite(d)) and g @ d < 0
        assert np.allclose(d, ref, rtol=1e-9)
    assert _kernels.newton_direction(np.zeros((0, 0)), np.zeros(0)).shape == (0,)
    with pytest.raises(ValueError, match="square"):
        _kernels.newton_direction(np.zeros((2, 3)), np.zeros(2))
