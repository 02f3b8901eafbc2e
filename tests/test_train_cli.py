"""`fastlogit train`'s report when the fit does not converge: one line, saying why."""
from __future__ import annotations

import json

import numpy as np

from conftest import run_python


def _train(tmp_path, *args):
    return run_python(["-m", "fastlogit", "train", "data.csv", "--target", "y",
                       "-o", "model.json", *args], cwd=tmp_path, timeout=120)


def _write(tmp_path, X, y):
    rows = "\n".join(",".join(f"{v:.6f}" for v in x) + f",{int(t)}" for x, t in zip(X, y))
    (tmp_path / "data.csv").write_text("a,b,y\n" + rows + "\n")


def test_train_without_penalty_on_separable_data_names_separation(tmp_path):
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(size=(50, 2)) + 3, rng.normal(size=(50, 2)) - 3])
    _write(tmp_path, X, np.repeat([1, 0], 50))
    result = _train(tmp_path, "-C", "inf")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr                # no Python warning besides
    assert "linearly separable" in lines[0] and "-C" in lines[0]
    assert "--max-iter" not in lines[0]
    assert "NOT converged" in result.stdout
    training = json.loads((tmp_path / "model.json").read_text())["training"]
    assert training["converged"] is False


def test_train_that_runs_out_of_iterations_says_so_once(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 2)) * [1.0, 1000.0]
    y = (rng.random(200) < 1 / (1 + np.exp(-X[:, 0]))).astype(int)
    _write(tmp_path, X, y)
    result = _train(tmp_path, "--max-iter", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "did not converge in 1 iteration(s)" in lines[0], result.stderr
    assert "--max-iter" in lines[0]
