"""The kernel layer's exports for other engines (the Dask reductions, scoring):
``reduction_chunks``, ``combine_partials`` and ``scores``.

* combine_partials applied to per-chunk partials -- each computed by calling
  the kernel on that chunk's rows alone -- reproduces the whole
  cost_and_gradients call bit for bit (the chunking and the combine are the
  kernel's own, not copies).
* scores equals X @ W + b within rounding, in C and F order, float32 and
  float64, and gives the same bits for every thread count.
"""
from __future__ import annotations

import numpy as np
import pytest

from fastlogit import _kernels

THREADS = (1, 2, 3, 8)


def _problem(m, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=10.0 / np.sqrt(max(n, 1)), size=(m, n)).astype(dtype)
    W = rng.normal(size=n)
    y = rng.choice([0.0, 1.0, 0.25], size=m).astype(dtype)
    sw = rng.uniform(0.0, 2.0, size=m)
    return X, W, y, sw


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m, n", [(40_001, 3), (3_001, 40), (700, 1)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_combine_partials_reproduces_the_fused_kernel(dtype, m, n, order):
    X, W, y, sw = _problem(m, n, dtype)
    X = np.asarray(X, order=order)
    bounds = _kernels.reduction_chunks(m, n, X.itemsize)
    assert bounds[0] == 0 and bounds[-1] == m and list(bounds) == sorted(bounds)
    assert 1 < len(bounds) - 1 <= _kernels.REDUCTION_CHUNKS
    whole = _kernels.cost_and_gradients(X, W, 0.3, y, sw, True, 2)
    rows = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        loss, dW, db, bad = _kernels.cost_and_gradients(
            X[lo:hi], W, 0.3, y[lo:hi], sw[lo:hi], True, 1)
        assert bad == 0
        rows.append(np.concatenate([[loss, db], dW]))
    total = _kernels.combine_partials(np.array(rows))
    assert total[0].tobytes() == np.float64(whole[0]).tobytes()
    assert total[1].tobytes() == np.float64(whole[2]).tobytes()
    assert total[2:].tobytes() == whole[1].tobytes()


def test_combine_partials_is_not_a_plain_sum():
    # Rows whose plain sum loses the small terms: the compensated combine keeps them.
    P = np.array([[1e16], [1.0], [-1e16], [1.0]])
    assert float(np.sum(P)) != 2.0
    assert _kernels.combine_partials(P)[0] == 2.0


def test_combine_partials_of_pairs_applies_the_compensation():
    P = np.array([[[1.0, 1e-17], [2.0, 0.0]], [[3.0, 0.0], [4.0, 0.5]]])
    assert _kernels.combine_partials(P).tolist() == [4.0, 6.5]


def test_combine_partials_keeps_an_infinite_sum():
    P = np.array([[np.inf, 1.0], [1.0, np.nan]])
    got = _kernels.combine_partials(P)
    assert got[0] == np.inf and np.isnan(got[1])


def test_combine_partials_rejects_other_shapes():
    with pytest.raises(ValueError, match="^P must have shape"):
        _kernels.combine_partials(np.zeros(3))
    with pytest.raises(ValueError, match="^P must have shape"):
        _kernels.combine_partials(np.zeros((2, 3, 3)))


def test_reduction_chunks_of_empty_and_small_problems():
    assert list(_kernels.reduction_chunks(0, 3, 8)) == [0, 0]
    assert list(_kernels.reduction_chunks(5, 3, 8)) == [0, 5]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("m, n", [(100_003, 3), (5_001, 40), (10, 0), (0, 4)])
def test_scores_equal_x_at_w_plus_b_for_every_thread_count(dtype, order, m, n):
    X, W, _, _ = _problem(m, n, dtype, seed=3)
    X = np.asarray(X, order=order)
    expected = X.astype(np.float64) @ W + 0.5
    reference = None
    for t in THREADS:
        out = np.empty(m)
        _kernels.scores(X, W, 0.5, out, t)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12 * max(n, 1))
        if reference is None:
            reference = out.tobytes()
        assert out.tobytes() == reference, f"n_threads={t} changed the bits"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_linear_scores_matches_numpy_and_validates(dtype, order):
    from fastlogit._api import linear_scores

    rng = np.random.default_rng(7)
    X = np.asarray(rng.normal(size=(1000, 13)), dtype=dtype, order=order)
    W = rng.normal(size=(13, 1))
    z = linear_scores(X, W, -0.75)
    assert z.dtype == np.float64 and z.shape == (1000,)
    expected = X.astype(np.float64) @ W[:, 0] - 0.75
    np.testing.assert_allclose(z, expected, rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match=r"W must have shape \(13, 1\)"):
        linear_scores(X, W[:5], 0.0)
