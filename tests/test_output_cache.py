"""The cache of freed result buffers (src/fl_outbuf.h, a NumPy memory handler):
results stay correct when they reuse a buffer, the cache stays within its limit,
and it is safe under threads, fork and the array operations that reallocate."""
import multiprocessing
import pickle
import threading

import numpy as np
import pytest

from conftest import fastlogit, run_python
from fastlogit import reference

MIB = 1 << 20
BIG = 300_000          # float64 elements: 2.4 MB, above the cache's 1 MiB minimum


def handler_name(a):
    return np.lib.get_handler_name(a) if hasattr(np.lib, "get_handler_name") else \
        np._core.multiarray.get_handler_name(a)


@pytest.fixture
def cache():
    """A known, empty cache of 64 MiB for the test; the previous limit afterwards."""
    previous = fastlogit.set_output_cache(0)
    fastlogit.set_output_cache(64 * MIB)
    yield
    fastlogit.set_output_cache(0)
    fastlogit.set_output_cache(previous)


def test_only_large_results_use_the_handler(cache, rng):
    z = rng.normal(size=BIG)
    assert handler_name(fastlogit.sigmoid(z)) == "fastlogit_output_cache"
    assert handler_name(fastlogit.sigmoid(z[:1000])) != "fastlogit_output_cache"
    # Arrays the user makes keep NumPy's handler, also right after a call.
    assert handler_name(np.empty(BIG)) != "fastlogit_output_cache"
    # Temporaries NumPy makes from a cached array are NumPy's again.
    assert handler_name(fastlogit.sigmoid(z) + 1.0) != "fastlogit_output_cache"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_reused_buffer_gives_the_same_result(cache, rng, dtype):
    z = (rng.normal(size=(3, BIG // 3)) * 30).astype(dtype)
    X = rng.normal(size=(BIG, 3)).astype(dtype)
    W = rng.normal(size=(3, 1)).astype(dtype)
    fastlogit.set_output_cache(0)                 # the expected results: without the cache
    expect = [fastlogit.sigmoid(z), fastlogit.log_sigmoid(z), fastlogit.forward_pass(X, W, 0.5),
              fastlogit.predict(X, W, 0.5)]
    assert all(handler_name(e) != "fastlogit_output_cache" for e in expect)
    fastlogit.set_output_cache(64 * MIB)
    for _ in range(3):
        before = fastlogit.output_cache_info()["hits"]
        # Garbage in the buffers that the next results will reuse.
        junk = [fastlogit.sigmoid(z), fastlogit.log_sigmoid(z),
                fastlogit.forward_pass(X, W, 0.5), fastlogit.predict(X, W, 0.5)]
        for a in junk:
            a[...] = 7 if a.dtype.kind == "i" else np.nan
        del junk, a
        got = [fastlogit.sigmoid(z), fastlogit.log_sigmoid(z), fastlogit.forward_pass(X, W, 0.5),
               fastlogit.predict(X, W, 0.5)]
        assert fastlogit.output_cache_info()["hits"] >= before + 4
        for g, e in zip(got, expect):
            np.testing.assert_array_equal(g, e)
            assert g.dtype == e.dtype and g.shape == e.shape and g.flags.owndata
            assert handler_name(g) == "fastlogit_output_cache"


def test_the_cache_stays_within_its_limit_and_its_slots(cache, rng):
    fastlogit.set_output_cache(10 * MIB)
    results = [fastlogit.sigmoid(rng.normal(size=k * 100_000)) for k in range(2, 30, 3)]
    sizes = sum(r.nbytes for r in results)
    assert sizes > 10 * MIB
    del results
    info = fastlogit.output_cache_info()
    assert 0 < info["held"] <= 10 * MIB and 0 < info["buffers"] <= 8
    # Many small-but-cacheable buffers: never more than the 8 slots.
    fastlogit.set_output_cache(64 * MIB)
    results = [fastlogit.sigmoid(rng.normal(size=BIG + k)) for k in range(20)]
    del results
    assert fastlogit.output_cache_info()["buffers"] <= 8
    # A buffer larger than the limit is never kept.
    fastlogit.set_output_cache(2 * MIB)
    assert fastlogit.output_cache_info()["held"] <= 2 * MIB
    del_me = fastlogit.sigmoid(rng.normal(size=1_000_000))
    held = fastlogit.output_cache_info()["held"]
    del del_me
    assert fastlogit.output_cache_info()["held"] == held
    # 0: off, and what was held is freed.
    fastlogit.set_output_cache(0)
    info = fastlogit.output_cache_info()
    assert info["held"] == 0 and info["buffers"] == 0
    assert handler_name(fastlogit.sigmoid(rng.normal(size=BIG))) != "fastlogit_output_cache"


def test_sizes_far_apart_do_not_share_a_buffer(cache, rng):
    big = fastlogit.sigmoid(rng.normal(size=4 * BIG))
    del big
    hits = fastlogit.output_cache_info()["hits"]
    small = fastlogit.sigmoid(rng.normal(size=BIG))    # a quarter: would waste 3/4
    assert fastlogit.output_cache_info()["hits"] == hits
    del small


def test_cached_arrays_behave_like_any_array(cache, rng):
    a = fastlogit.sigmoid(rng.normal(size=BIG))
    keep = a.copy()
    a.resize(2 * BIG, refcheck=False)          # realloc through the handler
    np.testing.assert_array_equal(a[:BIG], keep)
    a[BIG:] = 1.0
    assert a.sum() == pytest.approx(keep.sum() + BIG)
    a.resize(BIG // 2, refcheck=False)
    np.testing.assert_array_equal(a, keep[: BIG // 2])
    b = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(a, b)
    view = a[10:20]
    del a
    np.testing.assert_array_equal(view, keep[10:20])   # the view keeps the buffer alive


def test_threads_share_the_cache_safely(cache, rng):
    z = rng.normal(size=(8, BIG))
    expect = [reference.sigmoid(row) for row in z]
    errors = []

    def work(k):
        try:
            for _ in range(40):
                r = fastlogit.sigmoid(z[k], n_threads=1)
                np.testing.assert_allclose(r, expect[k], rtol=1e-15, atol=0)
                r[...] = np.nan
        except Exception as exc:    # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    info = fastlogit.output_cache_info()
    assert info["held"] <= 64 * MIB and info["buffers"] <= 8


def _child_sigmoid(queue, z, expect):
    hits = fastlogit.output_cache_info()["hits"]
    results = [fastlogit.sigmoid(z) for _ in range(3)]
    hits = fastlogit.output_cache_info()["hits"] - hits
    fastlogit.set_output_cache(0)             # the child owns its copy of the cache
    queue.put((all(np.array_equal(r, expect) for r in results), hits,
               fastlogit.output_cache_info()["held"]))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_a_forked_child_uses_the_cache_it_inherited(cache, rng):
    z = rng.normal(size=BIG)
    expect = fastlogit.sigmoid(z)
    held = [fastlogit.sigmoid(z) for _ in range(3)]
    for h in held:
        h[...] = np.nan
    del held, h                               # the child inherits three cached buffers
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_sigmoid, args=(queue, z, expect))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == (True, 3, 0)
    assert fastlogit.output_cache_info()["buffers"] == 3     # the parent's are untouched


def test_the_environment_variable_sets_the_limit(tmp_path):
    code = "import fastlogit; print(fastlogit.output_cache_info()['limit'])"
    out = run_python(["-c", code], cwd=tmp_path, env_extra={"FASTLOGIT_OUTPUT_CACHE_MB": "5"})
    assert out.returncode == 0 and out.stdout.strip() == str(5 * MIB)
    out = run_python(["-c", code + "; fastlogit.show_config()"], cwd=tmp_path,
                     env_extra={"FASTLOGIT_OUTPUT_CACHE_MB": "0"})
    assert out.stdout.splitlines()[0] == "0" and "output_cache: off" in out.stdout
    out = run_python(["-c", code], cwd=tmp_path, env_extra={"FASTLOGIT_OUTPUT_CACHE_MB": "lots"})
    assert out.returncode != 0 and "FASTLOGIT_OUTPUT_CACHE_MB='lots' must be a whole number" \
        in out.stderr


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (1.5, TypeError), ("64", TypeError),
                                      (True, TypeError), (None, TypeError)])
def test_set_output_cache_checks_its_argument(bad, exc):
    with pytest.raises(exc, match="max_bytes"):
        fastlogit.set_output_cache(bad)
