"""Wall time of the main job, ``fastlogit demo`` (issue 6: under 30 s on 2 cores).

    pytest benchmarks/bench_demo.py --benchmark-columns=median,min,max

The whole command runs in a fresh interpreter (import, training on the
built-in data, scoring 10^6 rows with both modules), as a user starts it.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastlogit

PACKAGE_PARENT = str(Path(fastlogit.__file__).resolve().parent.parent)


@pytest.mark.benchmark(group="demo")
def test_demo_wall_time(benchmark, tmp_path):
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)

    def demo():
        return subprocess.run([sys.executable, "-m", "fastlogit", "demo"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)

    result = benchmark.pedantic(demo, rounds=3, iterations=1)
    assert result.returncode == 0, result.stderr
    assert "same answers (rtol 1e-12): True" in result.stdout
    benchmark.extra_info["budget_s"] = 30
