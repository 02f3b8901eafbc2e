import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastlogit

# ---------------------------------------------------------------------------
# Hypothesis: the profiles, registered once for every test file.
# FASTLOGIT_HYPOTHESIS_PROFILE=quick (a local run), ci (default) or thorough
# (a release, or a change to the scalar math); FASTLOGIT_HYPOTHESIS_RANDOM=1
# draws new examples instead of CI's reproducible ones.
# ---------------------------------------------------------------------------
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    settings = None
if settings is not None:
    _COMMON = dict(deadline=None, database=None,  # no .hypothesis/ folder in the checkout
                   derandomize=os.environ.get("FASTLOGIT_HYPOTHESIS_RANDOM") != "1",
                   # The autouse np.errstate fixture below is harmless to share between examples.
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.function_scoped_fixture])
    settings.register_profile("quick", max_examples=25, **_COMMON)
    settings.register_profile(
        "ci", max_examples=int(os.environ.get("FASTLOGIT_HYPOTHESIS_EXAMPLES", "200")), **_COMMON)
    settings.register_profile("thorough", max_examples=30_000, **_COMMON)
    settings.load_profile(os.environ.get("FASTLOGIT_HYPOTHESIS_PROFILE", "ci"))


# ---------------------------------------------------------------------------
# Markers for a quick local run: python -m pytest -m "not slow and not dask and not cli"
# (CI runs everything but "slow"; see tests/README.md).
# ---------------------------------------------------------------------------
_FILE_MARKERS = {"test_dask.py": "dask", "test_dask_parts.py": "dask", "test_cli.py": "cli",
                 "test_train_cli.py": "cli"}


def pytest_configure(config):
    config.addinivalue_line("markers", "dask: uses Dask (test_dask.py starts a local cluster)")
    config.addinivalue_line("markers", "cli: runs the command line in subprocesses")


def pytest_collection_modifyitems(config, items):
    for item in items:
        marker = _FILE_MARKERS.get(Path(str(item.fspath)).name)
        if marker:
            item.add_marker(marker)

# The package under test, wherever it is (in-place build or installed).
PACKAGE_PARENT = str(Path(fastlogit.__file__).resolve().parent.parent)


def run_python(args, *, cwd, env_extra=None, **kwargs) -> subprocess.CompletedProcess:
    """``python ARGS`` in a subprocess that imports the fastlogit under test.

    ``cwd`` must not be the source checkout: ``-m``/``-c`` put the current
    folder first on sys.path, where the uncompiled sources would shadow the
    installed package.  ``env_extra``: variables to set for the child.
    """
    env = dict(os.environ, **(env_extra or {}))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, **kwargs)


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


__all__ = ["fastlogit", "RTOL", "SHAPES", "make_problem", "run_python"]


@pytest.fixture(params=["pyarrow", "numpy"])
def csv_engine(request, monkeypatch):
    """Run a CSV test with each engine: pyarrow's reader and the NumPy-only fallback."""
    from fastlogit.io import csv as csv_module

    if request.param == "pyarrow":
        pytest.importorskip("pyarrow.csv")
    else:
        monkeypatch.setattr(csv_module, "have_pyarrow_csv", lambda: False)
    return request.param


@pytest.fixture(scope="module")
def pool_without_backoff():
    """Helper threads run in every threaded call, even on a busy machine (where
    fastlogit would otherwise back off to one thread for a while)."""
    from fastlogit import _kernels as kernels
    was = kernels.set_pool_backoff(False)
    yield
    kernels.set_pool_backoff(was)
