"""The fixed order of the row dots (src/fl_rows.h), checked bit for bit against a NumPy twin.

C-ordered rows of n <= 8 features: s = ((0 + x0 w0) + x1 w1) + ..., then s + b (width 3 has
its own vectorised deinterleave, same order).  Wider rows: 8 lanes, lane l adding x[j] w[j] for
j = l, l + 8, ... over the first 8 * floor(n / 8) features, the rest in order into a tail t,
z = (((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7)) + t) + b.  The fused kernel computes its
scores in a software-pipelined sweep (fl_rows_gradient_scores_c); its gradient must equal the
one-row-at-a-time sum r_i x_i in row order, whatever the sub-block and pipelining.
"""
from __future__ import annotations

import numpy as np
import pytest

from fastlogit import _kernels


def twin_scores(X, w, b):
    X = X.astype(np.float64)
    m, n = X.shape
    if n <= 8:
        s = np.zeros(m)
        for j in range(n):
            s = s + X[:, j] * w[j]
        return s + b
    n8 = n - n % 8
    lanes = np.zeros((m, 8))
    for j in range(0, n8, 8):
        lanes = lanes + X[:, j:j + 8] * w[j:j + 8]
    t = np.zeros(m)
    for j in range(n8, n):
        t = t + X[:, j] * w[j]
    L = lanes
    tree = ((L[:, 0] + L[:, 4]) + (L[:, 1] + L[:, 5])) + ((L[:, 2] + L[:, 6]) + (L[:, 3] + L[:, 7]))
    return (tree + t) + b


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 8, 9, 16, 37, 100])
@pytest.mark.parametrize("m", [1, 3, 4, 5, 515, 1031])
def test_scores_follow_the_documented_order(m, n, dtype):
    rng = np.random.default_rng(m * 131 + n)
    X = (rng.standard_normal((m, n)) * 10.0 ** rng.uniform(-3, 3, (m, n))).astype(dtype)
    w = rng.standard_normal(n) * 10.0 ** rng.uniform(-2, 2, n)
    b = float(rng.standard_normal())
    out = np.empty(m)
    _kernels.scores(X, w, b, out, 1)
    np.testing.assert_array_equal(out, twin_scores(X, w, b))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [9, 37, 100])
def test_pipelined_gradient_adds_rows_in_row_order(n, dtype):
    # One block (m rows <= rows_per_block): the block's g is 0 + r_0 x_0 + r_1 x_1 + ... in
    # row order; r_i is read off one-row calls (their db is r_i exactly).
    m = min(int(_kernels.rows_per_block(n, np.dtype(dtype).itemsize)), 150)
    rng = np.random.default_rng(n)
    X = (rng.standard_normal((m, n)) * 3).astype(dtype)
    w = rng.standard_normal(n) * 0.3
    y = rng.choice([0.0, 1.0, 0.3], m).astype(dtype)
    sw = np.empty(0)
    r = np.array([_kernels.cost_and_gradients(X[i:i + 1], w, 0.1, y[i:i + 1], sw, True, 1)[2]
                  for i in range(m)])
    g = np.zeros(n)
    for i in range(m):
        g = g + r[i] * X[i].astype(np.float64)
    _, dW, _, _ = _kernels.cost_and_gradients(X, w, 0.1, y, sw, True, 1)
    np.testing.assert_array_equal(dW, g)


def _neumaier(acc, comp, x):
    t = acc + x
    comp = comp + np.where(np.abs(acc) >= np.abs(x), (acc - t) + x, (x - t) + acc)
    return t, comp


def test_fold_of_block_gradients_is_neumaier_per_column():
    # Each block's gradient sums are added to its chunk's partials with Neumaier's
    # compensation (fl_neumaier_add, branch-free), and the chunks' compensated partials are
    # combined with the same rule in chunk order.  More blocks than chunks, so chunks hold
    # several blocks; rows of very different sizes, so |partial| < |block sum| (the other
    # branch) happens.
    n, rows = 9, int(_kernels.rows_per_block(9, 8))
    m = 150 * rows
    bounds = _kernels.reduction_chunks(m, n, 8)
    assert len(bounds) - 1 < m // rows                  # some chunk holds several blocks
    rng = np.random.default_rng(11)
    X = rng.standard_normal((m, n)) * np.where(rng.random((m, 1)) < 0.5, 1e-8, 1e8)
    w = rng.standard_normal(n) * 1e-9
    y = (rng.random(m) < 0.5).astype(np.float64)
    sw = np.empty(0)
    out, out_c = np.zeros(n), np.zeros(n)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        acc, comp = np.zeros(n), np.zeros(n)
        for s in range(lo, hi, rows):          # a one-block call returns that block's sums
            g = _kernels.cost_and_gradients(X[s:s + rows], w, 0.1, y[s:s + rows], sw, True, 1)[1]
            acc, comp = _neumaier(acc, comp, g)
        out, out_c = _neumaier(out, out_c, acc + comp)
    _, dW, _, _ = _kernels.cost_and_gradients(X, w, 0.1, y, sw, True, 1)
    np.testing.assert_array_equal(dW, out + out_c)
