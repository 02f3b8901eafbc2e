"""The fixed summation order of the reductions (src/fl_losses.h, "fixed-order sums").

A block of k values is summed in 16 lanes (lane l adds v[l], v[l + 16], ... in
order over the first 16 * floor(k / 16) values), the rest in order into a tail t,
and the result is (a fixed tree of the lanes) + t.  mean_loss forms the losses and
adds them in that order without storing them; here its result is compared bit for
bit with a NumPy twin of the order, fed with the same per-example losses (from
one-example calls, whose sum is the loss itself), and the block totals are
combined as the kernels combine chunks (combine_partials).
"""
from __future__ import annotations

import numpy as np
import pytest

from fastlogit import _kernels

BLOCK = _kernels.BLOCK_SIZE


def lane_sum(v):
    """The fixed order of fl_sum, in NumPy (each lane's adds one by one)."""
    v = np.asarray(v, dtype=np.float64)
    k16 = len(v) - len(v) % 16
    s = np.zeros(16)
    for j in range(0, k16, 16):
        s = s + v[j:j + 16]           # lane l: one add, in order
    t = np.float64(0.0)
    for x in v[k16:]:
        t = t + x
    tree = ((((s[0] + s[8]) + (s[4] + s[12])) + ((s[2] + s[10]) + (s[6] + s[14])))
            + (((s[1] + s[9]) + (s[5] + s[13])) + ((s[3] + s[11]) + (s[7] + s[15]))))
    return tree + t


def _per_example(a, y, from_logits, eps):
    return np.array([_kernels.mean_loss(a[i:i + 1], y[i:i + 1], from_logits, eps, 1)[0]
                     for i in range(len(a))])


def _case(m, from_logits, dtype, seed):
    rng = np.random.default_rng(seed)
    if from_logits:
        a = (rng.standard_normal(m) * 10.0 ** rng.uniform(-3, 3, m)).astype(dtype)
    else:
        a = rng.uniform(0, 1, m).astype(dtype)
    y = rng.choice([0.0, 1.0, 0.25], m).astype(dtype)
    if seed % 2:
        y = rng.choice([0.0, 1.0], m).astype(dtype)        # hard labels: one log per example
    return a, y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probabilities"])
@pytest.mark.parametrize("m", [1, 15, 16, 17, 255, 256, 257, 300, BLOCK - 1, BLOCK,
                               BLOCK + 1, 3 * BLOCK + 37])
def test_mean_loss_adds_in_the_documented_order(m, from_logits, dtype):
    a, y = _case(m, from_logits, dtype, seed=m)
    eps = float(np.finfo(dtype).eps)
    losses = _per_example(a, y, from_logits, eps)
    total, bad, outside = _kernels.mean_loss(a, y, from_logits, eps, 2)
    assert bad == 0 and outside == 0
    # one chunk per block here (m <= 64 blocks); each block's sum enters its chunk exactly
    blocks = [lane_sum(losses[i:i + BLOCK]) for i in range(0, m, BLOCK)]
    want = _kernels.combine_partials(np.array(blocks)[:, None])[0]
    assert np.float64(total).tobytes() == np.float64(want).tobytes(), (total, want)


def test_the_twin_is_not_a_plain_sum():
    # the order matters for these values (a running sum loses every 2^-53, NumPy's pairwise
    # sum some of them): a twin that summed in another order would not be caught otherwise
    v = np.array([1.0] + [2.0 ** -53] * 40 + [-1.0])
    assert lane_sum(v) == 39 * 2.0 ** -53      # one 2^-53 is lost in lane 0 (1 + 2^-53 == 1)
    assert sum(v.tolist()) == 0.0
    assert float(np.sum(v)) != lane_sum(v)
