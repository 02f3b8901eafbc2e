"""Hypothesis-driven differential tests: fastlogit against the NumPy reference.

Hypothesis draws shapes (m = 0 / n = 0 where allowed, sizes past the threading
threshold), dtypes (float64/32/16, ints, bool, big-endian), a value range and
a seed; NumPy generates the values from the seed (drawing 10**4 floats one by
one through Hypothesis would cost more than the kernels).  Every example is
then checked in every memory layout (C, F, strided, negative strides,
read-only, transposed view, nested list) against the reference run on the
same data made contiguous float64.  Value ranges are those where the textbook
formulas are exact; tests/test_extremes.py covers the rest.  A second family
mixes NaN/inf/subnormals in and checks that the layout never changes the
answer and that bad rows stay local.

CI: 200 examples per test, each checked in up to 7 layouts: ~1,200 examples and
~8,000 checked calls (~20 s on an idle 2-core machine).  Larger, by hand:

    FASTLOGIT_HYPOTHESIS_EXAMPLES=5000 python -m pytest tests/test_differential.py -q -p no:cacheprovider
"""
from __future__ import annotations


import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import fastlogit
from fastlogit import reference

# The profile (examples, derandomize, deadline, database) is chosen in conftest.py.
SETTINGS = settings()

DTYPES = [np.float64, np.float32, np.float16, np.int32, np.int64, np.uint8, np.bool_,
          np.dtype(">f8"), np.dtype(">f4")]
LAYOUTS = ["C", "F", "strided", "reversed", "read-only", "transposed", "list"]
THREADED_M = 70_001          # past SERIAL_BELOW for any n >= 1


def _cast(values: np.ndarray, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    with np.errstate(all="ignore"):      # tiny values underflow to float16/32 zeros: fine
        if dtype.kind == "b":
            return np.asarray(values > 0)
        if dtype.kind == "u":
            return np.asarray(np.round(np.abs(values)).astype(dtype))
        if dtype.kind == "i":
            return np.asarray(np.round(values).astype(dtype))
        return np.asarray(values.astype(dtype))


def _layout(arr: np.ndarray, layout: str):
    """The same values in another memory layout (or as a nested list)."""
    if layout == "F" and arr.ndim:        # asfortranarray would make a 0-d array 1-D
        return np.asfortranarray(arr)
    if layout == "strided" and arr.ndim:
        big = np.zeros(arr.shape[:-1] + (3 * arr.shape[-1],), arr.dtype)
        big[..., ::3] = arr
        return big[..., ::3]
    if layout == "reversed" and arr.ndim:
        index = tuple(slice(None, None, -1) for _ in arr.shape)
        return np.ascontiguousarray(arr[index])[index]
    if layout == "read-only":
        arr = arr.copy()
        arr.flags.writeable = False
        return arr
    if layout == "transposed" and arr.ndim == 2:
        return np.ascontiguousarray(arr.T).T
    if layout == "list" and arr.size and arr.size < 5000:   # an empty list would lose the shape
        return arr.tolist()
    return arr


@st.composite
def arrays(draw, shape, low, high, dtypes=DTYPES):
    """(values as drawn dtype, the same values as float64): uniform in [low, high]
    from a drawn seed, sometimes with exact endpoints and zeros mixed in."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    values = rng.uniform(low, high, size=shape)
    if draw(st.booleans()) and values.size:
        picks = rng.integers(0, values.size, size=max(1, values.size // 4))
        values.flat[picks] = rng.choice([low, high, 0.0 if low <= 0 <= high else low], picks.size)
    arr = _cast(values, draw(st.sampled_from(dtypes)))
    return arr, np.array(arr, dtype=np.float64)


@st.composite
def sizes(draw, min_m=0):
    """(m, n): small, with a 1 in 25 chance of m past the threading threshold."""
    n = draw(st.integers(0, 8))
    if draw(st.integers(0, 24)) == 0:
        return THREADED_M, n
    return draw(st.integers(min_m, 40)), n


def _low_precision(*arrays_):
    return any(a.dtype.kind == "f" and a.dtype.itemsize <= 4 for a in arrays_)


def _each_layout(arr):
    # Threaded sizes: the three layouts that reach different kernel paths (C,
    # F, copied); every layout at every size would dominate the run time.
    layouts = LAYOUTS if arr.size < 50_000 else ["C", "F", "strided"]
    for layout in layouts:
        yield layout, _layout(arr, layout)


@SETTINGS
@given(data=st.data(), name=st.sampled_from(["sigmoid", "log_sigmoid"]),
       ndim=st.integers(0, 3))
def test_elementwise(data, name, ndim):
    shape = tuple(data.draw(st.lists(st.integers(0, 7), min_size=ndim, max_size=ndim)))
    z, z64 = data.draw(arrays(shape, -30, 30 if name == "sigmoid" else 2))
    with np.errstate(all="ignore"):
        want = getattr(reference, name)(z64)
    rtol = 2e-7 if _low_precision(z) else 1e-13
    # log(sigmoid(z)) of a sigmoid rounded near 1 is off by up to one ulp of 1,
    # absolutely: the reference's error, not fastlogit's.
    atol = 2.3e-16 if name == "log_sigmoid" else 1e-300
    for layout, arg in _each_layout(z):
        got = getattr(fastlogit, name)(arg)
        assert np.shape(got) == np.shape(want), layout
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol, atol=atol,
                                   err_msg=layout)


@SETTINGS
@given(data=st.data(), mn=sizes(), W_as_vector=st.booleans())
def test_forward_pass_and_predict(data, mn, W_as_vector):
    m, n = mn
    X, X64 = data.draw(arrays((m, n), -4, 4))
    W, W64 = data.draw(arrays((n,) if W_as_vector else (n, 1), -1, 1))
    b = data.draw(st.floats(-3, 3))
    # |z| <= 4 n + 3 <= 35: the textbook sigmoid is accurate to a few ulp there.
    with np.errstate(all="ignore"):           # subnormal products underflow in NumPy's dot
        want = reference.forward_pass(X64, W64.reshape(-1, 1), b)
        want_labels = reference.predict(X64, W64.reshape(-1, 1), b)
    rtol = 2e-7 if _low_precision(X, W) else 1e-13
    clear = np.abs(want - 0.5) > 1e-6
    for layout, arg in _each_layout(X):
        A = fastlogit.forward_pass(arg, _layout(W, layout), b)
        assert A.shape == (1, m)
        np.testing.assert_allclose(A, want, rtol=rtol, atol=1e-300, err_msg=layout)
        labels = fastlogit.predict(arg, W, b)
        np.testing.assert_array_equal(labels[clear], want_labels[clear], err_msg=layout)


@SETTINGS
@given(data=st.data(), name=st.sampled_from(["compute_cost", "cost_from_logits"]),
       Y_as_vector=st.booleans())
def test_costs(data, name, Y_as_vector):
    m = THREADED_M if data.draw(st.integers(0, 24)) == 0 else data.draw(st.integers(1, 60))
    if name == "compute_cost":
        first, first64 = data.draw(arrays((1, m), 0.01, 0.99,
                                          dtypes=[np.float64, np.float32, np.dtype(">f8")]))
    else:
        first, first64 = data.draw(arrays((1, m), -10, 10))
    Y, Y64 = data.draw(arrays((m,) if Y_as_vector else (1, m), 0, 1,
                              dtypes=[np.float64, np.float32, np.bool_, np.uint8]))
    with np.errstate(all="ignore"):
        want = getattr(reference, name)(first64, Y64.reshape(1, -1))
    for layout, arg in _each_layout(first):
        got = getattr(fastlogit, name)(arg, _layout(Y, layout))
        assert type(got) is float
        np.testing.assert_allclose(got, want, rtol=1e-9, err_msg=layout)


@SETTINGS
@given(data=st.data(), mn=sizes(min_m=1), fused=st.booleans(), Y_as_vector=st.booleans())
def test_gradients(data, mn, fused, Y_as_vector):
    m, n = mn
    X, X64 = data.draw(arrays((m, n), -4, 4))
    # |z| <= 7 keeps the textbook's log(1 - A) accurate.
    W, W64 = data.draw(arrays((n, 1), -1 / max(n, 1), 1 / max(n, 1),
                              dtypes=[np.float64, np.float32, np.dtype(">f8")]))
    b = data.draw(st.floats(-3, 3))
    Y, Y64 = data.draw(arrays((m,) if Y_as_vector else (1, m), 0, 1,
                              dtypes=[np.float64, np.float32, np.bool_, np.uint8]))
    sw = sw64 = None
    l2 = 0.0
    if fused:
        if data.draw(st.booleans()):
            sw, sw64 = data.draw(arrays((m,), 0.1, 3, dtypes=[np.float64, np.float32]))
        l2 = data.draw(st.sampled_from([0.0, 0.5]))
    with np.errstate(all="ignore"):
        if fused:
            J_ref, dW_ref, db_ref = reference.cost_and_gradients(
                X64, W64, b, Y64.reshape(1, -1), sample_weight=sw64, l2=l2)
        else:
            dW_ref, db_ref = reference.gradients(X64, W64, b, Y64.reshape(1, -1))
        # Each sum is bounded by sum |x| (|residual| <= 1): the tolerance scales with it.
        scale = np.abs(X64).sum(axis=0).reshape(-1, 1) / m * (3 if fused else 1)
    for layout, arg in _each_layout(X):
        if fused:
            J, dW, db = fastlogit.cost_and_gradients(arg, W, b, _layout(Y, layout),
                                                     sample_weight=sw, l2=l2)
            np.testing.assert_allclose(J, J_ref, rtol=1e-10, err_msg=layout)
        else:
            dW, db = fastlogit.gradients(arg, W, b, _layout(Y, layout))
        assert dW.shape == (n, 1) and type(db) is float
        with np.errstate(all="ignore"):
            tol = (1e-6 if dW.dtype == np.float32 else 1e-12) * (scale + np.abs(dW_ref)) + 1e-15
            assert np.all(np.abs(dW - dW_ref) <= tol), layout
        assert abs(db - db_ref) <= 1e-11 * (3 if fused else 1), layout


# ---------------------------------------------------------------------------
# NaN/inf anywhere: layout never changes the answer, bad rows stay local
# ---------------------------------------------------------------------------

SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, 750.0, -750.0])


@st.composite
def wild_arrays(draw, shape):
    """Normal values with NaN, +-inf, huge and subnormal values mixed in."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.uniform(-50, 50, size=shape)
    share = draw(st.sampled_from([0.0, 0.05, 0.3]))
    mask = rng.random(shape) < share
    values[mask] = rng.choice(SPECIALS, int(mask.sum()))
    with np.errstate(all="ignore"):      # 1e308 -> float32 inf, 5e-324 -> 0: intended
        return values.astype(draw(st.sampled_from([np.float64, np.float32])))


@SETTINGS
@given(data=st.data(), m=st.integers(1, 30), n=st.integers(1, 6))
def test_layout_independence_with_nonfinite_values(data, m, n):
    X = data.draw(wild_arrays((m, n)))
    W = data.draw(wild_arrays((n, 1)))
    b = float(data.draw(wild_arrays(())))
    z = data.draw(wild_arrays((m, n)))
    Y = (np.arange(m) % 2).astype(np.float64)
    Xc = np.ascontiguousarray(X)
    A_c = fastlogit.forward_pass(Xc, W, b)
    J_c, dW_c, db_c = fastlogit.cost_and_gradients(Xc, W, b, Y)
    for layout in ["F", "strided", "reversed", "read-only", "transposed"]:
        # Element-wise: bit-for-bit the same as on a contiguous copy.
        for func in (fastlogit.sigmoid, fastlogit.log_sigmoid):
            np.testing.assert_array_equal(func(_layout(z, layout)), func(np.ascontiguousarray(z)))
        A = fastlogit.forward_pass(_layout(X, layout), W, b)
        J, dW, db = fastlogit.cost_and_gradients(_layout(X, layout), W, b, Y)
        # (fastlogit ran under conftest's np.errstate(all="raise"); the comparisons
        # of subnormal results below need not.)
        with np.errstate(all="ignore"):
            # C and F order sum a row in different orders: equal up to rounding, same NaN/inf.
            np.testing.assert_allclose(A, A_c, rtol=1e-12, atol=1e-300, equal_nan=True,
                                       err_msg=layout)
            np.testing.assert_allclose([J, db], [J_c, db_c], rtol=1e-12, atol=1e-300,
                                       equal_nan=True, err_msg=layout)
            np.testing.assert_allclose(dW, dW_c, rtol=1e-12, atol=1e-300, equal_nan=True,
                                       err_msg=layout)
    # Each row's probability is what that row gives on its own: NaN/inf (or an
    # overflowing dot product) in one row never reach another.
    alone = np.array([fastlogit.forward_pass(Xc[i:i + 1], W, b)[0, 0] for i in range(m)])
    np.testing.assert_array_equal(A_c[0], alone)


@SETTINGS
@given(data=st.data(), name=st.sampled_from(["sigmoid", "forward_pass", "predict", "compute_cost",
                                             "cost_from_logits", "gradients",
                                             "cost_and_gradients"]))
def test_any_input_is_answered_or_rejected_cleanly(data, name):
    """Arbitrary shapes, dtypes and layouts for every argument: a result, or a
    TypeError/ValueError whose message starts with one of the argument names."""
    names = {"sigmoid": ["z"], "forward_pass": ["X", "W", "b"], "predict": ["X", "W", "b"],
             "compute_cost": ["A", "Y"], "cost_from_logits": ["Z", "Y"],
             "gradients": ["X", "W", "b", "Y"], "cost_and_gradients": ["X", "W", "b", "Y"]}[name]
    dtypes = DTYPES + [np.complex128, object, np.dtype("U3"), np.dtype("M8[s]")]
    args = []
    for _ in names:
        shape = tuple(data.draw(st.lists(st.integers(0, 4), max_size=3)))
        values = np.random.default_rng(data.draw(st.integers(0, 99))).uniform(-1, 2, size=shape)
        dtype = np.dtype(data.draw(st.sampled_from(dtypes)))
        arr = values.astype(np.int64).astype(dtype) if dtype.kind in "MU" else _cast(values, dtype)
        args.append(_layout(arr, data.draw(st.sampled_from(LAYOUTS))))
    try:
        getattr(fastlogit, name)(*args)
    except (TypeError, ValueError) as exc:
        assert str(exc).split(" ")[0] in names, str(exc)
