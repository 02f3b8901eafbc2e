import numpy as np
import pytest

import fastlogit


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _raise_on_numpy_fp_errors():
    # Fast functions must not trip any floating-point error in NumPy code they call.
    with np.errstate(all="raise"):
        yield


RTOL = {np.float32: 1e-5, np.float64: 1e-12}

# (m, n) shapes: single rows and columns, odd sizes around the block sizes, and
# sizes above the serial threshold so that threaded paths run.
SHAPES = [(1, 1), (1, 5), (7, 1), (3, 4), (513, 3), (1000, 17), (40_000, 3), (3000, 40)]


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


def make_problem(rng, m, n, dtype, order="C", scale=1.0):
    X = np.asarray(rng.normal(size=(m, n)), dtype=dtype, order=order)
    W = (rng.normal(size=(n, 1)) * scale / np.sqrt(n)).astype(dtype)
    b = float(rng.normal())
    Y = (rng.random((1, m)) < 0.5).astype(dtype)
    return X, W, b, Y


__all__ = ["fastlogit", "RTOL", "SHAPES", "make_problem"]
