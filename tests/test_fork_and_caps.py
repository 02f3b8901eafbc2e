"""Threads after fork, and thread counts from the environment.

* A process forked after a threaded call (os.fork, a multiprocessing 'fork'
  pool, a pre-forking server) computes the same bits as its parent, threads
  included: the child starts helper threads of its own (the parent's do not
  exist in it).  Every wait has a timeout, so a hang fails instead of blocking.
* A default thread count above the cap -- OMP_NUM_THREADS=100000, or a
  threadpoolctl limit of 100000 -- is clamped to ``max_threads_allowed()``,
  never a crash (run in subprocesses: the environment is read at start-up).
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from conftest import PACKAGE_PARENT

import fastlogit
from fastlogit import _kernels
from fastlogit._validation import SERIAL_BELOW

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # Python >= 3.12 warns that forking a multi-threaded process may deadlock:
    # exactly what these tests check does not happen.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

TIMEOUT_S = 60
M = 4 * SERIAL_BELOW


def _problem():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(M // 4, 4))
    W = rng.normal(size=(4, 1))
    Y = (rng.random((1, M // 4)) < 0.5).astype(np.float64)
    z = rng.normal(size=M)
    return X, W, Y, z


def _results(n_threads):
    """Every kernel family, threaded, as one picklable tuple."""
    X, W, Y, z = _problem()
    return (fastlogit.sigmoid(z, n_threads=n_threads),
            fastlogit.cost_from_logits(z, (z > 0).astype(np.float64), n_threads=n_threads),
            fastlogit.forward_pass(X, W, 0.2, n_threads=n_threads),
            fastlogit.cost_and_gradients(X, W, 0.2, Y, n_threads=n_threads))


def _same(a, b) -> bool:
    return pickle.dumps(a) == pickle.dumps(b)


def _wait(pid: int) -> int:
    """Exit status of child ``pid``; kill it and fail if it hangs."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child hung for {TIMEOUT_S} s in a threaded call")


def test_os_fork_child_computes_with_threads():
    expected = _results(2)                      # threaded: the parent's helpers run
    assert _kernels.pool_threads() >= 1
    pid = os.fork()
    if pid == 0:                                # child: never return into pytest
        code = 1
        try:
            ok = _same(_results(2), expected) and _same(_results(None), expected)
            code = 0 if ok and _kernels.forked_child() and _kernels.pool_threads() >= 1 else 2
        finally:
            os._exit(code)
    assert _wait(pid) == 0, "the child's threaded results differ from the parent's"
    assert _same(_results(2), expected)         # the parent's pool still works


def _child_task(n_threads):
    return _results(n_threads)


def test_multiprocessing_fork_pool_after_threaded_call():
    expected = _results(None)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        got = pool.map_async(_child_task, [2, None, 1, 2]).get(timeout=TIMEOUT_S)
    assert all(_same(g, expected) for g in got)


def test_fork_while_another_thread_runs_a_kernel():
    """Fork from the main thread while a Python thread is inside threaded calls:
    the child must not inherit a pool that looks busy or half-run."""
    import threading
    expected = _results(2)
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            _results(2)

    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.05)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = 0 if _same(_results(2), expected) else 2
            finally:
                os._exit(code)
        assert _wait(pid) == 0
    finally:
        stop.set()
        t.join(timeout=TIMEOUT_S)


def _run_python(code: str, **env) -> subprocess.CompletedProcess:
    # From a neutral folder, with the package under test first on the path:
    # run from the checkout, `-c` would import the uncompiled sources.
    path = os.pathsep.join(p for p in (PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tempfile.gettempdir(), timeout=TIMEOUT_S,
                          env={**os.environ, "PYTHONPATH": path, **env})


CHECK_CLAMPED = """
import numpy as np, fastlogit
from fastlogit._validation import default_threads, max_threads_allowed, resolve_threads
out = fastlogit.sigmoid(np.zeros(100000))
assert out[0] == 0.5, out[0]
assert default_threads() == max_threads_allowed(), (default_threads(), max_threads_allowed())
assert resolve_threads(None, 10**9) == max_threads_allowed()
print("ok")
"""


def test_omp_num_threads_above_the_cap_is_clamped():
    done = _run_python(CHECK_CLAMPED, OMP_NUM_THREADS="100000")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.skipif(not _kernels.OPENMP, reason="threadpoolctl sees fastlogit only through OpenMP")
def test_threadpoolctl_limit_above_the_cap_is_clamped():
    pytest.importorskip("threadpoolctl")
    # fastlogit (and so libgomp) is loaded first: threadpoolctl limits the
    # libraries loaded when the block starts.
    code = ("import fastlogit\nfrom threadpoolctl import threadpool_limits\n"
            "with threadpool_limits(100000):\n" + "\n".join(
                "    " + line for line in CHECK_CLAMPED.strip().splitlines()))
    done = _run_python(code)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_omp_num_threads_one_means_one_thread():
    # The default count follows the environment below the cap.
    done = _run_python("from fastlogit._validation import default_threads; "
                       "print(default_threads())", OMP_NUM_THREADS="1")
    assert done.returncode == 0 and done.stdout.strip() == "1", done.stderr
