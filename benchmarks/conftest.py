"""pytest-benchmark suite of fastlogit against the NumPy reference and its peers.

Not part of CI's ``pytest`` (pyproject's testpaths = ["tests"]).  Run it with

    pytest benchmarks/                    # the issue's sizes, float64 and float32, 1 and all threads
    pytest benchmarks/ --bench-quick      # small sizes: a minute, for a smoke run
    pytest benchmarks/ -k "sigmoid and not float32" --benchmark-columns=median,iqr

Files are named bench_*.py so that no test run picks them up by accident;
the hook below collects them when this directory is asked for.
"""
from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("fastlogit benchmarks")
    group.addoption("--bench-quick", action="store_true", default=False,
                    help="small problem sizes (smoke run) instead of the issue's target sizes")
    group.addoption("--bench-threads", default=None,
                    help="comma-separated thread counts (default: 1 and all usable cores)")
    group.addoption("--bench-load", type=int, nargs="*", default=None, metavar="K",
                    help="run test_loaded with K busy processes (e.g. --bench-load 1 2); "
                         "off by default")


def pytest_collect_file(file_path, parent):
    # bench_*.py are collected when benchmarks/ is on the command line; a file
    # given explicitly is collected by pytest itself (no double collection).
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


try:
    import pytest_benchmark  # noqa: F401
except ImportError:  # keep the suite collectable; every benchmark skips
    @pytest.fixture
    def benchmark():
        pytest.skip("pytest-benchmark is not installed (pip install 'fastlogit[bench]')")
