"""The command line, driven as a user drives it: ``python -m fastlogit ...`` in a subprocess.

Every bad input must give exactly one line on stderr, exit status 1, no
traceback and no output file (nor a temporary file) left behind.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastlogit
from fastlogit.demo import load_diabetes
from fastlogit.model_io import Model, load_model, save_model

from conftest import PACKAGE_PARENT  # the package under test: in-place build or installed


def _env(extra_path: str | None = None) -> dict:
    env = dict(os.environ)
    paths = [p for p in (extra_path, PACKAGE_PARENT, env.get("PYTHONPATH")) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("FORCE_COLOR", None)
    return env


def run(*args, cwd, extra_path=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastlogit", *map(str, args)], cwd=cwd,
                          env=_env(extra_path), capture_output=True, text=True, timeout=timeout)


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def assert_fails(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 1, one line on stderr containing every fragment, no traceback, nothing on stdout."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temporary files a writer may have left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def model3(tmp_path) -> Model:
    """A 3-feature model with names, saved as tmp_path/model.json."""
    model = Model(["glucose", "bmi", "age"], np.array([[0.041], [0.04], [0.033]]), -8.17,
                  training={"rows": 400, "cost": 0.49, "converged": True})
    save_model(model, tmp_path / "model.json")
    return model


@pytest.fixture
def patients(tmp_path, rng) -> np.ndarray:
    X = np.column_stack([rng.normal(120, 30, 5000), rng.normal(31, 6, 5000), rng.normal(45, 15, 5000)])
    np.save(tmp_path / "X.npy", X)
    return X


def expected(model: Model, X: np.ndarray) -> np.ndarray:
    return fastlogit.forward_pass(X, model.W, model.b)[0]


# ---------------------------------------------------------------------------
# score: results
# ---------------------------------------------------------------------------

def test_score_npy_in_many_chunks_equals_in_memory_forward_pass(tmp_path, rng):
    # 200 000 rows in blocks of 1 000: the file is 200 blocks long.
    X = rng.normal(size=(200_000, 3)) * [30.0, 6.0, 15.0] + [120.0, 31.0, 45.0]
    np.save(tmp_path / "X.npy", X)
    model = Model(["0", "1", "2"], np.array([[0.041], [0.04], [0.033]]), -8.17)
    save_model(model, tmp_path / "model.json")
    result = run("score", "X.npy", "--model", "model.json", "-o", "A.npy", "--chunk-rows", 1000,
                 cwd=tmp_path)
    assert_ok(result)
    A = np.load(tmp_path / "A.npy")
    assert A.shape == (200_000,) and A.dtype == np.float64
    np.testing.assert_array_equal(A, fastlogit.forward_pass(X, model.W, model.b)[0])
    # Piped stderr: no progress bar, just the final line with rows, seconds and rows/s.
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scored 200,000 rows in ")
    assert "rows/s" in lines[0]
    assert leftovers(tmp_path) == []


def test_score_matches_columns_by_name(tmp_path, model3, patients):
    # CSV with the columns in another order plus an id column the model ignores.
    rows = ["id,age,glucose,note_free_bmi,bmi"]
    rows += [f"p{i},{a!r},{g!r},0,{b!r}" for i, (g, b, a) in enumerate(patients[:500].tolist())]
    (tmp_path / "in.csv").write_text("\n".join(rows) + "\n")
    assert_ok(run("score", "in.csv", "--model", "model.json", "-o", "out.csv", cwd=tmp_path))
    text = (tmp_path / "out.csv").read_text().splitlines()
    assert text[0] == "probability"
    A = np.array([float(v) for v in text[1:]])
    np.testing.assert_array_equal(A, expected(model3, patients[:500]))


def test_score_threshold_writes_labels(tmp_path, model3, patients):
    assert_ok(run("score", "X.npy", "--model", "model.json", "-o", "out.npy",
                  "--threshold", "0.3", cwd=tmp_path))
    out = np.load(tmp_path / "out.npy")
    assert out.dtype.names == ("probability", "label")
    A = expected(model3, patients)
    np.testing.assert_array_equal(out["probability"], A)
    np.testing.assert_array_equal(out["label"], (A >= 0.3).astype(np.int8))


def test_score_csv_output_with_labels_round_trips(tmp_path, model3, patients):
    assert_ok(run("score", "X.npy", "--model", "model.json", "-o", "out.csv",
                  "--threshold", "0.5", "--chunk-rows", 777, cwd=tmp_path))
    table = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1)
    A = expected(model3, patients)
    np.testing.assert_array_equal(table[:, 0], A)
    np.testing.assert_array_equal(table[:, 1], A >= 0.5)
    assert (tmp_path / "out.csv").read_text().startswith("probability,label\n")


def test_score_parquet_in_and_out(tmp_path, model3, patients):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"age": patients[:, 2], "bmi": patients[:, 1], "glucose": patients[:, 0]})
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=1000)
    assert_ok(run("score", "in.parquet", "--model", "model.json", "-o", "out.parquet",
                  "--threshold", "0.5", "--chunk-rows", 300, cwd=tmp_path))
    out = pq.read_table(tmp_path / "out.parquet")
    A = expected(model3, patients)
    np.testing.assert_array_equal(out.column("probability").to_numpy(), A)
    np.testing.assert_array_equal(out.column("label").to_numpy(), (A >= 0.5).astype(np.int8))


def test_score_npz_of_named_columns_and_structured_npy(tmp_path, model3, patients):
    np.savez_compressed(tmp_path / "cols.npz", bmi=patients[:, 1], glucose=patients[:, 0],
                        age=patients[:, 2])
    assert_ok(run("score", "cols.npz", "--model", "model.json", "-o", "a.npy",
                  "--chunk-rows", 999, cwd=tmp_path))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), expected(model3, patients))

    rec = np.empty(len(patients), dtype=[("age", "f4"), ("glucose", "f8"), ("bmi", "f8")])
    rec["age"], rec["glucose"], rec["bmi"] = patients[:, 2], patients[:, 0], patients[:, 1]
    np.save(tmp_path / "rec.npy", rec)
    assert_ok(run("score", "rec.npy", "--model", "model.json", "-o", "b.npy", cwd=tmp_path))
    X = np.column_stack([rec["glucose"], rec["bmi"], rec["age"].astype(np.float64)])
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), expected(model3, X))


def test_score_on_invalid_skip_and_nan(tmp_path, model3, patients):
    X = patients[:1000].copy()
    X[10, 1] = np.nan
    X[500, 0] = np.inf
    np.save(tmp_path / "bad.npy", X)
    good = np.ones(len(X), bool)
    good[[10, 500]] = False

    result = run("score", "bad.npy", "--model", "model.json", "-o", "skip.npy",
                 "--on-invalid", "skip", "--chunk-rows", 100, cwd=tmp_path)
    assert_ok(result)
    assert "2 invalid row(s) skipped" in result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "skip.npy"), expected(model3, X[good]))

    assert_ok(run("score", "bad.npy", "--model", "model.json", "-o", "nan.npy",
                  "--on-invalid", "nan", "--threshold", "0.5", cwd=tmp_path))
    out = np.load(tmp_path / "nan.npy")
    assert np.isnan(out["probability"][[10, 500]]).all()
    assert (out["label"][[10, 500]] == -1).all()
    np.testing.assert_array_equal(out["probability"][good], expected(model3, X[good]))


def test_score_float32_model(tmp_path, patients):
    model = Model(["0", "1", "2"], np.array([[0.041], [0.04], [0.033]]), -8.17, dtype="float32")
    save_model(model, tmp_path / "m32.json")
    assert_ok(run("score", "X.npy", "--model", "m32.json", "-o", "a.npy", cwd=tmp_path))
    A = np.load(tmp_path / "a.npy")
    assert A.dtype == np.float32
    np.testing.assert_array_equal(
        A, fastlogit.forward_pass(patients.astype(np.float32), model.W.astype(np.float32), model.b)[0])


def test_score_float32_model_out_of_range_value_is_an_invalid_row(tmp_path):
    model = Model(["0", "1"], np.array([[1.0], [1.0]]), 0.0, dtype="float32")
    save_model(model, tmp_path / "m32.json")
    np.save(tmp_path / "X.npy", np.array([[1.0, 2.0], [1e300, 0.0]]))
    # One line, no RuntimeWarning from the float64 -> float32 cast.
    assert_fails(run("score", "X.npy", "--model", "m32.json", "-o", "a.npy", cwd=tmp_path),
                 "row 2, column '0': 1e+300 is outside the range of float32")


# ---------------------------------------------------------------------------
# score: bad input -> one line, exit 1, no output
# ---------------------------------------------------------------------------

def _bad_model_files(folder: Path) -> dict[str, tuple[str, str]]:
    """name -> (file content, expected message fragment)."""
    good = json.loads((folder / "model.json").read_text())
    wrong_w = dict(good, W=good["W"][:2])
    newer = dict(good, format_version=99)
    # Each kind of damage is checked in-process in test_model_io.py; here a
    # few go through the command line to show the one-line error end to end.
    return {
        "truncated.json": ((folder / "model.json").read_text()[:60], "not valid JSON"),
        "foreign.json": (json.dumps({"coef": [1, 2, 3]}), "not a fastlogit model"),
        "wrong_w.json": (json.dumps(wrong_w), "W has 2 weights but features has 3"),
        "newer.json": (json.dumps(newer), "format_version 99 is newer"),
    }


def test_score_rejects_bad_models(tmp_path, model3, patients):
    for name, (content, fragment) in _bad_model_files(tmp_path).items():
        (tmp_path / name).write_bytes(content.encode("latin1"))
        line = assert_fails(run("score", "X.npy", "--model", name, "-o", "out.npy", cwd=tmp_path),
                            fragment, name)
        assert line.startswith("fastlogit score: error: model file")
    assert_fails(run("score", "X.npy", "--model", "missing.json", "-o", "out.npy", cwd=tmp_path),
                 "model file 'missing.json' does not exist")
    assert not (tmp_path / "out.npy").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("setup, fragment", [
    ("missing", "INPUT 'in.csv' does not exist"),
    ("wrong_count", "has 2 column(s) but the model expects 3 feature(s)"),
    ("missing_column", "has no column 'age'"),
    ("non_numeric", "row 3 (line 4), column 'bmi': 'n/a' is not a number"),
    ("nan_row", "row 2 (line 3), column 'age': a missing value (empty, NA, #N/A or NaN)"),
    ("header_only", "has no rows to score"),
    ("zero_bytes", "is empty (0 bytes)"),
    ("unknown_format", "unknown format '.xlsx'"),
])
def test_score_bad_input(tmp_path, model3, setup, fragment):
    name = "in.xlsx" if setup == "unknown_format" else "in.csv"
    content = {
        "wrong_count": "1,2\n3,4\n",
        "missing_column": "glucose,bmi\n1,2\n",
        "non_numeric": "glucose,bmi,age\n1,2,3\n4,5,6\n7,n/a,9\n",
        "nan_row": "glucose,bmi,age\n1,2,3\n4,5,nan\n",
        "header_only": "glucose,bmi,age\n",
        "zero_bytes": "",
        "unknown_format": "glucose,bmi,age\n1,2,3\n",
    }.get(setup)
    if content is not None:
        (tmp_path / name).write_text(content)
    assert_fails(run("score", name, "--model", "model.json", "-o", "out.csv", cwd=tmp_path), fragment)
    assert not (tmp_path / "out.csv").exists() and leftovers(tmp_path) == []


def test_score_error_mid_file_leaves_no_partial_output(tmp_path, model3, patients):
    # The bad row is in the last block: earlier blocks were already written
    # to the temporary file, which must be removed.
    X = patients.copy()
    X[-1, 2] = np.nan
    np.save(tmp_path / "late.npy", X)
    assert_fails(run("score", "late.npy", "--model", "model.json", "-o", "out.npy",
                     "--chunk-rows", 100, cwd=tmp_path), f"row {len(X)}", "column 'age'")
    assert not (tmp_path / "out.npy").exists() and leftovers(tmp_path) == []


def test_score_bad_output(tmp_path, model3, patients):
    assert_fails(run("score", "X.npy", "--model", "model.json", "-o", "nowhere/out.npy", cwd=tmp_path),
                 "folder 'nowhere' does not exist")
    assert_fails(run("score", "X.npy", "--model", "model.json", "-o", "out.txt", cwd=tmp_path),
                 "unknown format '.txt'")
    assert_fails(run("score", "X.npy", "--model", "model.json", "-o", "X.npy", cwd=tmp_path),
                 "is the INPUT file")
    np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), patients)


def test_score_npy_problems(tmp_path, model3, patients):
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    assert_fails(run("score", "text.npy", "--model", "model.json", "-o", "o.npy", cwd=tmp_path),
                 "expected numbers")
    (tmp_path / "junk.npy").write_bytes(b"this is not an array")
    assert_fails(run("score", "junk.npy", "--model", "model.json", "-o", "o.npy", cwd=tmp_path),
                 "not a valid .npy")
    data = (tmp_path / "X.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(data[: len(data) // 2])
    assert_fails(run("score", "short.npy", "--model", "model.json", "-o", "o.npy", cwd=tmp_path),
                 "truncated")
    np.save(tmp_path / "empty.npy", np.empty((0, 3)))
    assert_fails(run("score", "empty.npy", "--model", "model.json", "-o", "o.npy", cwd=tmp_path),
                 "no rows")
    assert not (tmp_path / "o.npy").exists() and leftovers(tmp_path) == []


def test_debug_shows_the_traceback(tmp_path, model3):
    (tmp_path / "in.csv").write_text("glucose,bmi,age\n1,x,3\n")
    result = run("score", "in.csv", "--model", "model.json", "-o", "o.csv", "--debug", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("fastlogit score: error:")


def test_missing_pyarrow_is_a_clear_error(tmp_path, model3):
    # A fake `pyarrow` that cannot be imported stands in for an install without the extra.
    fake = tmp_path / "fake"
    (fake / "pyarrow").mkdir(parents=True)
    (fake / "pyarrow" / "__init__.py").write_text("raise ImportError('no pyarrow here')\n")
    (tmp_path / "in.parquet").write_bytes(b"PAR1 not really")
    assert_fails(run("score", "in.parquet", "--model", "model.json", "-o", "o.npy",
                     cwd=tmp_path, extra_path=str(fake)), "pip install 'fastlogit[parquet]'")
    np.save(tmp_path / "X.npy", np.ones((3, 3)))
    assert_fails(run("score", "X.npy", "--model", "model.json", "-o", "o.parquet",
                     cwd=tmp_path, extra_path=str(fake)),
                 "writing OUTPUT 'o.parquet' needs pyarrow", "pip install 'fastlogit[parquet]'")
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------
# score: interruption and memory
# ---------------------------------------------------------------------------

def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_score_leaves_nothing(tmp_path, sig):
    # CSV output in small blocks is slow enough (seconds) to be caught mid-way:
    # 3 * 10^6 rows once took 0.9 s, close enough to the signal's 0.2 s delay
    # plus process start-up to finish first on a busy machine.
    m = 8_000_000
    X = np.lib.format.open_memmap(tmp_path / "X.npy", "w+", np.float64, (m, 2))
    X[:] = 0.5
    X.flush()
    del X
    save_model(Model(["0", "1"], np.array([[1.0], [-1.0]]), 0.0), tmp_path / "model.json")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastlogit", "score", "X.npy", "--model", "model.json",
         "-o", "out.csv", "--chunk-rows", "5000"],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = _wait_for(lambda: leftovers(tmp_path) or proc.poll() is not None, 60)
        assert started and proc.poll() is None, "score finished before it could be interrupted"
        time.sleep(0.2)  # let it write a few blocks into the temporary file
        assert leftovers(tmp_path), "no temporary file while scoring"
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["fastlogit score: interrupted; no partial output left behind"]
    assert not (tmp_path / "out.csv").exists()
    assert leftovers(tmp_path) == []


# Runs the command line exactly as `python -m fastlogit` does, then reports the
# process's own peak resident memory.  VmHWM belongs to the memory map created
# at exec; ru_maxrss would also count the parent's pages the child had before
# exec (fork/vfork), i.e. the test process's own size.
_MEASURE = (
    "import sys\n"
    "from fastlogit.cli import main\n"
    "status = main(sys.argv[1:])\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    "print('PEAK_KB', hwm.split()[1], file=sys.stderr)\n"
    "sys.exit(status)\n"
)


def _peak_rss_bytes(args, cwd) -> int:
    """Peak resident memory of one run of the command line, in bytes."""
    result = subprocess.run([sys.executable, "-c", _MEASURE, *map(str, args)], cwd=cwd, env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    peak = [line for line in result.stderr.splitlines() if line.startswith("PEAK_KB")]
    return int(peak[0].split()[1]) * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_score_memory_is_bounded_by_the_chunk_not_the_file(tmp_path):
    # 240 MB of input in 1.2 MB blocks.  Peak memory must not grow with the
    # file: compare it with the same command on a file of 2 000 rows.
    m, n = 10_000_000, 3
    X = np.lib.format.open_memmap(tmp_path / "big.npy", "w+", np.float64, (m, n))
    for start in range(0, m, 1_000_000):
        X[start:start + 1_000_000] = 0.25
    X.flush()
    del X
    np.save(tmp_path / "small.npy", np.full((2000, n), 0.25))
    save_model(Model(["0", "1", "2"], np.array([[1.0], [2.0], [3.0]]), 0.0), tmp_path / "model.json")
    args = ["score", "--model", "model.json", "--chunk-rows", 50_000, "--threads", 1]
    small = _peak_rss_bytes(args + ["small.npy", "-o", "small_out.npy"], tmp_path)
    big = _peak_rss_bytes(args + ["big.npy", "-o", "big_out.npy"], tmp_path)
    file_bytes = (tmp_path / "big.npy").stat().st_size
    assert np.load(tmp_path / "big_out.npy", mmap_mode="r").shape == (m,)
    # One block is 1.2 MB of input and 0.4 MB of output; allow 25 MB of slack
    # (allocator, page-cache bookkeeping), a tenth of the file.
    assert small > 10e6  # the measurement measures something (Python + NumPy alone are more)
    assert big - small < 25e6, (big, small, file_bytes)


# ---------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------

def _diabetes_csv(folder: Path) -> Path:
    data, names = load_diabetes()
    path = folder / "diabetes.csv"
    lines = [",".join(names)] + [",".join(repr(float(v)) for v in row) for row in data]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_csv_writes_a_model_equal_to_fit(tmp_path):
    _diabetes_csv(tmp_path)
    result = run("train", "diabetes.csv", "--target", "diabetic", "-C", "2.0", "-o", "model.json",
                 cwd=tmp_path)
    assert_ok(result)
    model = load_model(tmp_path / "model.json")
    assert model.features == ["glucose", "bmi", "age"]
    data, _ = load_diabetes()
    m = len(data)
    fit = fastlogit.fit if hasattr(fastlogit, "fit") else pytest.importorskip("fastlogit._train").fit
    ref = fit(data[:, :3], data[:, 3].reshape(1, m), l2=1.0 / (2.0 * m), tol=1e-8, max_iter=1000)
    np.testing.assert_allclose(model.W, ref.W, rtol=1e-12)
    assert model.b == pytest.approx(ref.b, rel=1e-12)
    t = model.training
    assert t["rows"] == m and t["converged"] is True and t["target"] == "diabetic"
    assert t["C"] == 2.0 and t["l2"] == pytest.approx(1.0 / (2.0 * m))
    Z = data[:, :3] @ ref.W[:, 0] + ref.b
    assert t["cost"] == pytest.approx(fastlogit.cost_from_logits(Z, data[:, 3]), rel=1e-12)
    assert "model written to model.json" in result.stdout


def test_train_then_score_the_glucose_model(tmp_path):
    _diabetes_csv(tmp_path)
    assert_ok(run("train", "diabetes.csv", "--target", "diabetic", "--features", "glucose",
                  "-C", "inf", "-o", "glucose.json", cwd=tmp_path))
    model = load_model(tmp_path / "glucose.json")
    assert model.training["C"] is None and model.training["l2"] == 0.0
    (tmp_path / "g.csv").write_text("glucose\n105\n135\n170\n")
    assert_ok(run("score", "g.csv", "--model", "glucose.json", "-o", "p.csv", cwd=tmp_path))
    p = np.loadtxt(tmp_path / "p.csv", skiprows=1)
    np.testing.assert_array_equal(p, expected(model, np.array([[105.0], [135.0], [170.0]])))
    # The boundary the trainer prints is -b / W of the saved model.
    result = run("train", "diabetes.csv", "--target", "diabetic", "--features", "glucose",
                 "-C", "inf", "-o", "glucose.json", cwd=tmp_path)
    assert f"decision boundary: glucose = {model.boundary():.4g}" in result.stdout


def test_train_on_unnamed_npy_and_parquet(tmp_path):
    data, names = load_diabetes()
    np.save(tmp_path / "d.npy", data)
    assert_ok(run("train", "d.npy", "--target", "3", "-o", "npy.json", cwd=tmp_path))
    from_npy = load_model(tmp_path / "npy.json")
    assert from_npy.features == ["0", "1", "2"]
    # A model trained on unnamed columns scores the same unnamed table by index.
    assert_ok(run("score", "d.npy", "--model", "npy.json", "-o", "p.npy", cwd=tmp_path))
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected(from_npy, data[:, :3]))

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({n: data[:, j] for j, n in enumerate(names)}), tmp_path / "d.parquet")
    assert_ok(run("train", "d.parquet", "--target", "diabetic", "-o", "pq.json", cwd=tmp_path))
    from_parquet = load_model(tmp_path / "pq.json")
    assert from_parquet.features == ["glucose", "bmi", "age"]
    np.testing.assert_array_equal(from_parquet.W, from_npy.W)


@pytest.mark.parametrize("setup, args, fragment", [
    ("good", ["--target", "outcome"], "has no column 'outcome'"),
    ("good", ["--target", "y", "--features", "a", "zz"], "has no column 'zz'"),
    ("good", ["--target", "y", "--features", "a", "y"], "also listed in --features"),
    ("labels_2", ["--target", "y"], "row 3 (line 4), target 'y': 2.0; expected 0/1 labels"),
    ("one_class", ["--target", "y"], "target 'y' is 1 in every row"),
    ("nan", ["--target", "y"], "row 2 (line 3), column 'b': a missing value (empty, NA, #N/A or NaN)"),
    ("text", ["--target", "y"], "row 1 (line 2), column 'a': 'x' is not a number"),
    ("header_only", ["--target", "y"], "has no rows to train on"),
])
def test_train_bad_input(tmp_path, setup, args, fragment):
    content = {
        "good": "a,b,y\n1,2,0\n3,4,1\n5,6,0\n",
        "labels_2": "a,b,y\n1,2,0\n3,4,1\n5,6,2\n",
        "one_class": "a,b,y\n1,2,1\n3,4,1\n",
        "nan": "a,b,y\n1,2,0\n3,nan,1\n",
        "text": "a,b,y\nx,2,0\n3,4,1\n",
        "header_only": "a,b,y\n",
    }[setup]
    (tmp_path / "d.csv").write_text(content)
    assert_fails(run("train", "d.csv", *args, "-o", "m.json", cwd=tmp_path), fragment)
    assert not (tmp_path / "m.json").exists() and leftovers(tmp_path) == []


def test_train_skip_invalid_rows_and_bad_output(tmp_path):
    (tmp_path / "d.csv").write_text("a,y\n1,0\nnan,1\n2,0\n3,1\n4,1\n0,1\n")
    result = run("train", "d.csv", "--target", "y", "--on-invalid", "skip", "-o", "m.json",
                 cwd=tmp_path)
    assert_ok(result)
    assert load_model(tmp_path / "m.json").training["rows"] == 5
    assert "1 invalid row(s) skipped" in result.stdout
    assert_fails(run("train", "d.csv", "--target", "y", "-o", "no/m.json", cwd=tmp_path),
                 "folder 'no' does not exist")
    assert_fails(run("train", "d.csv", "--target", "y", "-o", "m.txt", cwd=tmp_path),
                 "expected one of .json")
    assert_fails(run("train", "missing.csv", "--target", "y", "-o", "m2.json", cwd=tmp_path),
                 "DATA 'missing.csv' does not exist")


# ---------------------------------------------------------------------------
# train on real tables: ID columns, text labels, near-miss column names
# ---------------------------------------------------------------------------

CANCER = ("id,radius,texture,diagnosis\n"
          "p1,17.99,10.38,M\np2,13.54,14.36,B\np3,20.57,17.77,M\np4,11.42,20.38,B\n"
          "p5,12.45,15.70,M\np6,13.08,15.71,B\np7,19.81,22.15,M\np8,9.50,12.44,B\n")


def test_train_with_exclude_and_positive_records_both_labels(tmp_path):
    (tmp_path / "c.csv").write_text(CANCER)
    result = run("train", "c.csv", "--target", "diagnosis", "--positive", "M", "--exclude", "id",
                 "-o", "m.json", cwd=tmp_path)
    assert_ok(result)
    model = load_model(tmp_path / "m.json")
    assert model.features == ["radius", "texture"]
    assert model.training["positive"] == "M" and model.training["negative"] == "B"
    assert model.training["fastlogit_version"] == fastlogit.__version__
    assert "'M' is 1 and 'B' is 0" in result.stdout
    X = np.loadtxt(tmp_path / "c.csv", delimiter=",", skiprows=1, usecols=(1, 2))
    y = np.array([1, 0, 1, 0, 1, 0, 1, 0.0])
    want = fastlogit.fit(X, y.reshape(1, -1), l2=1 / 8, tol=1e-8)
    np.testing.assert_allclose(model.W, want.W, rtol=1e-6)
    # Numeric labels name the positive class too: 2 is 1, 4 is 0.
    (tmp_path / "n.csv").write_text("x,y\n1,2\n2,4\n3,2\n4,4\n5,4\n")
    assert_ok(run("train", "n.csv", "--target", "y", "--positive", "4", "-o", "n.json",
                  cwd=tmp_path))
    assert load_model(tmp_path / "n.json").training["negative"] == 2


@pytest.mark.parametrize("args, fragments", [
    (["--target", "diagnosis", "--exclude", "id"],
     ["column 'diagnosis' (--target) holds labels that are not numbers", "--positive"]),
    (["--target", "diagnosis", "--positive", "M"],
     ["column 'id': 'p1' is not a number", "--exclude"]),
    (["--target", "diagnosis", "--positive", "X", "--exclude", "id"],
     ["--positive 'X' is not a label of", "'M', 'B'"]),
    (["--target", "Diagnosis", "--positive", "M"],
     ["has no column 'Diagnosis' (named by --target); did you mean 'diagnosis'?"]),
    (["--target", "diagnosis", "--positive", "M", "--exclude", "idd"],
     ["has no column 'idd' (named by --exclude); did you mean 'id'?"]),
])
def test_train_errors_on_real_tables_say_what_to_do(tmp_path, args, fragments):
    (tmp_path / "c.csv").write_text(CANCER)
    assert_fails(run("train", "c.csv", *args, "-o", "m.json", cwd=tmp_path), *fragments)


def test_train_a_third_label_is_an_error(tmp_path):
    (tmp_path / "c.csv").write_text(CANCER + "p9,10.0,10.0,?\n")
    assert_fails(run("train", "c.csv", "--target", "diagnosis", "--positive", "M",
                     "--exclude", "id", "-o", "m.json", cwd=tmp_path),
                 "holds 3 distinct labels ('M', 'B', '?')")


def test_column_errors_list_every_column(tmp_path):
    names = [f"col{j:02d}" for j in range(30)]
    (tmp_path / "w.csv").write_text(",".join(names) + "\n" + ",".join(["1"] * 30) + "\n")
    line = assert_fails(run("train", "w.csv", "--target", "zzz", "-o", "m.json", cwd=tmp_path),
                        "has no column 'zzz'", "its 30 columns")
    assert all(name in line for name in names)


def test_version(tmp_path):
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"fastlogit {fastlogit.__version__}"


def test_convert_and_score_an_onnx_model(tmp_path):
    interop = pytest.importorskip("fastlogit.interop")
    pytest.importorskip("onnx")
    sklearn_linear = pytest.importorskip("sklearn.linear_model")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    X = np.random.default_rng(0).normal(size=(200, 3))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    est = sklearn_linear.LogisticRegression().fit(X, y)
    onnx_model = skl2onnx.convert_sklearn(est, initial_types=[("X", FloatTensorType([None, 3]))])
    (tmp_path / "m.onnx").write_bytes(onnx_model.SerializeToString())
    want = interop.model_from_onnx(tmp_path / "m.onnx")
    assert_ok(run("convert", "m.onnx", "-o", "m.json", cwd=tmp_path))
    np.testing.assert_array_equal(load_model(tmp_path / "m.json").W, want.W)
    np.save(tmp_path / "X.npy", X)
    assert_ok(run("score", "X.npy", "--model", "m.onnx", "-o", "p.npy", cwd=tmp_path))
    # Scored in the model's precision (ONNX models are float32).
    dtype = np.dtype(want.dtype)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"),
                                  fastlogit.forward_pass(X.astype(dtype), want.W.astype(dtype),
                                                         want.b)[0])


# ---------------------------------------------------------------------------
# demo, bench, show-config, usage
# ---------------------------------------------------------------------------

def _demo_checks(stdout: str, rows: int) -> None:
    # The textbook walk-through, through both modules.
    assert "decision boundary: glucose = -b / W = 134.8 mg/dL" in stdout
    for g in (105, 135, 170):
        z = 0.042 * g - 5.66
        p = f"{1 / (1 + np.exp(-z)):.4f}"
        assert any(line.split()[:1] == [str(g)] and line.count(p) == 2 for line in stdout.splitlines())
    # The learned glucose model: its boundary equals that of fastlogit.fit on the same data.
    data, _ = load_diabetes()
    fit = fastlogit.fit if hasattr(fastlogit, "fit") else pytest.importorskip("fastlogit._train").fit
    ref = fit(data[:, :1], data[:, 3].reshape(1, -1))
    boundary = -ref.b / ref.W[0, 0]
    assert f"decision boundary: glucose = -b / W = {boundary:.1f} mg/dL" in stdout
    assert f"learned W = {ref.W[0, 0]:.4f} per mg/dL, b = {ref.b:.2f}" in stdout
    ref3 = fit(data[:, :3], data[:, 3].reshape(1, -1))
    accuracy = np.mean(((data[:, :3] @ ref3.W)[:, 0] + ref3.b >= 0) == (data[:, 3] == 1))
    assert f"accuracy {accuracy:.1%} on the 400 training patients" in stdout
    assert f"X of shape ({rows}, 3)" in stdout
    assert "same answers (rtol 1e-12): True" in stdout
    assert "speed-up" in stdout and "NumPy reference" in stdout


def test_demo_fast_variant(tmp_path):
    result = run("demo", "--rows", 20_000, cwd=tmp_path)
    assert_ok(result)
    assert result.stderr == ""
    _demo_checks(result.stdout, 20_000)


@pytest.mark.slow
def test_demo_full_size(tmp_path):
    # Its wall time (the 30 s budget) is measured by benchmarks/bench_demo.py.
    result = run("demo", cwd=tmp_path)
    assert_ok(result)
    _demo_checks(result.stdout, 1_000_000)


def test_demo_plot(tmp_path):
    pytest.importorskip("matplotlib")
    result = run("demo", "--rows", 1000, "--plot", "demo.png", cwd=tmp_path)
    assert_ok(result)
    png = (tmp_path / "demo.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert "plot written to demo.png" in result.stdout
    assert leftovers(tmp_path) == []


def test_demo_plot_errors_come_before_any_work(tmp_path):
    fake = tmp_path / "fake"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    assert_fails(run("demo", "--plot", "d.png", cwd=tmp_path, extra_path=str(fake)),
                 "--plot needs matplotlib: pip install 'fastlogit[cli]'")
    assert_fails(run("demo", "--plot", "missing/d.png", cwd=tmp_path), "folder 'missing' does not exist")
    assert_fails(run("demo", "--plot", "d.jpg", cwd=tmp_path), "expected one of .png")


def test_bench_is_wired(tmp_path):
    result = run("bench", "--help", cwd=tmp_path)
    assert_ok(result)
    assert "usage: fastlogit bench" in result.stdout


def test_show_config(tmp_path):
    result = run("show-config", cwd=tmp_path)
    assert_ok(result)
    assert "numpy" in result.stdout.lower()


def test_usage_errors_exit_2(tmp_path):
    for args in (["frobnicate"], ["score", "x.npy"],
                 ["score", "x.npy", "--model", "m.json", "-o", "o.npy", "--threshold", "1.5"]):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses a pseudo-terminal")
@pytest.mark.parametrize("with_tqdm", [True, False], ids=["tqdm", "no-tqdm"])
def test_progress_bar_only_on_a_terminal(tmp_path, model3, patients, with_tqdm):
    import pty

    extra = None
    if with_tqdm:
        pytest.importorskip("tqdm")
    else:  # an install without the `cli` extra
        extra = tmp_path / "fake"
        (extra / "tqdm").mkdir(parents=True)
        (extra / "tqdm" / "__init__.py").write_text("raise ImportError('no tqdm here')\n")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    # A new pseudo-terminal is 0 columns wide, where tqdm draws nothing: make it 80.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastlogit", "score", "X.npy", "--model", "model.json",
         "-o", "A.npy", "--chunk-rows", "100"],
        cwd=tmp_path, env=_env(extra and str(extra)), stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = b"".join(chunks).decode(errors="replace")
    assert "scored 5,000 rows" in text
    assert ("scoring" in text) == with_tqdm, text
    np.testing.assert_array_equal(np.load(tmp_path / "A.npy"), expected(model3, patients))


def test_bench_runs_a_small_table_and_writes_json(tmp_path):
    import json

    out = tmp_path / "bench.json"
    proc = run("bench", "--kernels", "sigmoid", "cost_from_logits", "--m", "20000",
               "--shapes", "2000x3", "--threads", "1", "--repeat", "3", "--peers",
               "--no-memory", "--json", out, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "sigmoid" in proc.stdout and "reference" in proc.stdout
    report = json.loads(out.read_text())
    assert report["machine"] and report["results"], "no results in the JSON output"


def test_main_called_in_process_leaves_the_signal_handlers_as_it_found_them(tmp_path):
    # main() turns SIGTERM into the Ctrl-C clean-up only while a command runs: a handler left
    # behind reached forked multiprocessing workers of the calling process, which then did
    # not stop on the pool's SIGTERM (a hung test run).  From another thread (where handlers
    # cannot be set) it still runs.
    import signal
    import threading

    from fastlogit.cli import main

    args = ["score", str(tmp_path / "missing.npy"), "--model", str(tmp_path / "missing.json"),
            "-o", str(tmp_path / "out.csv")]
    before = signal.getsignal(signal.SIGTERM)
    assert main(args) == 1                       # the command ran (and failed cleanly)
    assert signal.getsignal(signal.SIGTERM) is before
    status = []
    t = threading.Thread(target=lambda: status.append(main(args)))
    t.start()
    t.join(60)
    assert status == [1]                         # the same clear error, no ValueError
    assert signal.getsignal(signal.SIGTERM) is before
