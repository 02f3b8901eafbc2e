"""Files from the wild: each test here reproduces a way a file (or a folder of
parts) used to lose data or give a wrong answer, through the command line or
the public Python functions, and checks the fix.

The command-line tests run ``python -m fastlogit`` in a subprocess; the
reader-level tests run both CSV engines (pyarrow and the NumPy fallback).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastlogit
from fastlogit.model_io import Model, ModelFileError, load_model, save_model

from conftest import PACKAGE_PARENT


def run(*args, cwd, timeout=120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "fastlogit", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_limited(*args, cwd) -> subprocess.CompletedProcess:
    """``fastlogit ARGS`` with 2 GiB of address space: an attempt to allocate
    what a lying header promises fails fast instead of swapping the machine."""
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
            "from fastlogit.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def fails(result, *fragments) -> str:
    """Exit 1 with one line on stderr holding every fragment, not an internal error."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error" not in lines[0], result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def ok(result) -> None:
    assert result.returncode == 0, result.stderr


@pytest.fixture
def model2(tmp_path) -> Model:
    model = Model(["income", "age"], np.array([[0.5], [-0.25]]), 0.125)
    save_model(model, tmp_path / "model.json")
    return model


def expected(model, X):
    return fastlogit.forward_pass(np.asarray(X, dtype=np.float64), model.W, model.b)[0]


# ---------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------

BOM = "\ufeff"


def test_csv_with_a_byte_order_mark_and_a_header_names_its_first_column_plainly(tmp_path, model2):
    # Excel's "CSV UTF-8": the first name must be 'income', not '\ufeffincome'.
    (tmp_path / "in.csv").write_text(BOM + "income,age\n1,2\n3,4\n", encoding="utf-8")
    ok(run("score", "in.csv", "--model", "model.json", "-o", "out.npy", cwd=tmp_path))
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected(model2, [[1, 2], [3, 4]]))
    # Training on the same table names the feature the way scoring looks it up.
    (tmp_path / "t.csv").write_text(BOM + "income,y\n1,0\n2,1\n3,0\n4,1\n", encoding="utf-8")
    ok(run("train", "t.csv", "--target", "y", "-o", "t.json", cwd=tmp_path))
    assert load_model(tmp_path / "t.json").features == ["income"]


def test_headerless_csv_with_a_byte_order_mark_keeps_its_first_row(tmp_path):
    model = Model(["0", "1"], np.array([[0.5], [-0.25]]), 0.125)
    save_model(model, tmp_path / "m.json")
    (tmp_path / "in.csv").write_text(BOM + "1,2\n3,4\n5,6\n", encoding="utf-8")
    ok(run("score", "in.csv", "--model", "m.json", "-o", "out.npy", cwd=tmp_path))
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"),
                                  expected(model, [[1, 2], [3, 4], [5, 6]]))


@pytest.mark.parametrize("content, line, count", [
    ("income,age\n1,2\n52,000,41\n", 3, 3),      # a thousands separator: one field too many
    ("income,age\n1,2\n\n\n7\n", 5, 1),          # too few; blank lines still count as lines
])
def test_csv_row_with_a_wrong_field_count_is_an_error_naming_its_line(tmp_path, model2, content,
                                                                      line, count):
    (tmp_path / "in.csv").write_text(content)
    fails(run("score", "in.csv", "--model", "model.json", "-o", "out.npy", cwd=tmp_path),
          f"(line {line}) has {count} fields; expected 2")
    assert not (tmp_path / "out.npy").exists()


def test_csv_row_with_too_few_fields_fails_even_when_the_missing_column_is_unused(tmp_path):
    model = Model(["a"], np.array([[1.0]]), 0.0)
    save_model(model, tmp_path / "m.json")
    (tmp_path / "in.csv").write_text("a,b,c\n1,2,3\n4\n")
    fails(run("score", "in.csv", "--model", "m.json", "-o", "out.npy", cwd=tmp_path),
          "row 2 (line 3) has 1 fields; expected 3")


def test_csv_error_line_numbers_count_blank_lines(tmp_path, model2):
    (tmp_path / "in.csv").write_text("income,age\n\n1,2\n\n3,nan\n")
    fails(run("score", "in.csv", "--model", "model.json", "-o", "out.npy", cwd=tmp_path),
          "row 2 (line 5), column 'age': a missing value (empty, NA, #N/A or NaN)")


@pytest.mark.parametrize("engine", ["pyarrow", "numpy"])
def test_both_csv_engines_read_the_same_way(tmp_path, engine):
    if engine == "pyarrow":
        pytest.importorskip("pyarrow.csv")
    from fastlogit.io.csv import CsvReader
    from fastlogit.io.files import InputError

    path = tmp_path / "in.csv"
    path.write_text(BOM + "a,b,c\n1,,3\n\n 4 ,5,inf\n", encoding="utf-8")
    reader = CsvReader(path, "INPUT 'in.csv'", engine=engine)
    assert reader.columns == ["a", "b", "c"]
    got = np.concatenate(list(reader.chunks(1, [2, 0])))
    np.testing.assert_array_equal(got, [[3.0, 1.0], [np.inf, 4.0]])
    assert np.isnan(np.concatenate(list(reader.chunks(10, [1])))[0, 0])
    path.write_text(BOM + "1,2\n3,4\n\n5,6,7\n", encoding="utf-8")
    reader = CsvReader(path, "INPUT 'in.csv'", engine=engine)
    assert reader.columns == ["0", "1"]
    with pytest.raises(InputError, match=r"row 3 \(line 4\) has 3 fields; expected 2"):
        list(reader.chunks(2, [0, 1]))


# ---------------------------------------------------------------------------
# .npy / .npz headers that promise more than the file holds
# ---------------------------------------------------------------------------

def _npy_with_header(path: Path, shape, descr="<f8"):
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
                     + b"\0" * 64)


@pytest.mark.parametrize("shape", [(1, 10**9), (2**62, 4), (10**30, 10**30)])
def test_npy_header_promising_more_than_the_file_is_refused_before_allocating(tmp_path, model2,
                                                                          shape):
    _npy_with_header(tmp_path / "X.npy", shape)
    fails(run_limited("score", "X.npy", "--model", "model.json", "-o", "out.npy", cwd=tmp_path),
          "INPUT 'X.npy' is truncated")


def test_npz_member_promising_more_than_the_archive_holds_is_refused(tmp_path, model2):
    _npy_with_header(tmp_path / "member.npy", (1, 10**9))
    with zipfile.ZipFile(tmp_path / "X.npz", "w") as archive:
        archive.write(tmp_path / "member.npy", "X.npy")
    fails(run_limited("score", "X.npz", "--model", "model.json", "-o", "out.npy", cwd=tmp_path),
          "is truncated")


def test_damaged_npz_is_an_error_naming_the_input(tmp_path):
    model = Model(["0", "1"], np.array([[1.0], [2.0]]), 0.0)
    save_model(model, tmp_path / "m.json")
    np.savez_compressed(tmp_path / "X.npz", X=np.random.default_rng(0).normal(size=(5000, 2)))
    data = bytearray((tmp_path / "X.npz").read_bytes())
    data[200:260] = b"\xff" * 60                      # inside the compressed stream
    (tmp_path / "X.npz").write_bytes(bytes(data))
    fails(run("score", "X.npz", "--model", "m.json", "-o", "out.npy", cwd=tmp_path),
          "INPUT 'X.npz'")


# ---------------------------------------------------------------------------
# Block size: bounded by bytes, however wide the table
# ---------------------------------------------------------------------------

def test_wide_table_is_scored_in_blocks_of_about_16_mb(tmp_path):
    import tracemalloc

    try:
        from fastlogit.scoring import score_file
    except ImportError:  # the layout before the scoring engine had a module
        from fastlogit.cli import score_file
    n = 50_000
    # float32 values, a float64 model: every block is converted, so a block
    # is allocated (and seen by tracemalloc) rather than only memory-mapped.
    X = np.random.default_rng(0).normal(size=(120, n)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)                          # 48 MB once converted
    model = Model([str(j) for j in range(n)], np.full((n, 1), 1e-3), 0.0)
    del X
    tracemalloc.start()
    try:
        score_file(model, tmp_path / "X.npy", tmp_path / "A.npy", progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One block of ~16 MB (and its float64 copy at most), never the whole 48 MB.
    assert peak < 40e6, peak
    assert np.load(tmp_path / "A.npy").shape == (120,)


# ---------------------------------------------------------------------------
# Model files
# ---------------------------------------------------------------------------

def _load_in_a_small_address_space(path, tmp_path) -> subprocess.CompletedProcess:
    """load_model(path) in a child limited to 1 GiB of address space and 60 s."""
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "from fastlogit.model_io import load_model, ModelFileError\n"
            "try:\n"
            f"    load_model({str(path)!r})\n"
            "except ModelFileError as exc:\n"
            "    print('refused:', exc)\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_load_model_refuses_a_device(tmp_path):
    result = _load_in_a_small_address_space("/dev/zero", tmp_path)
    assert result.returncode == 0 and "refused:" in result.stdout, result.stderr[-500:]
    assert "not a regular file" in result.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_load_model_refuses_a_fifo_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "model.json")
    result = _load_in_a_small_address_space(tmp_path / "model.json", tmp_path)
    assert result.returncode == 0 and "not a regular file" in result.stdout, result.stderr[-500:]


def test_load_model_reads_at_most_its_limit(tmp_path, monkeypatch):
    from fastlogit import model_io

    path = tmp_path / "model.json"
    path.write_text(" " * 5000)
    monkeypatch.setattr(model_io, "MAX_BYTES", 1000)
    with pytest.raises(ModelFileError, match="larger than 1000 bytes"):
        load_model(path)


def _document(**changes) -> dict:
    doc = {"format": "fastlogit-model", "format_version": 1, "features": ["a", "b"],
           "W": [0.5, -0.25], "b": 0.125, "dtype": "float64"}
    doc.update(changes)
    return doc


@pytest.mark.parametrize("text, fragment", [
    (json.dumps(_document()).replace("0.5", "1" + "0" * 400), "W holds a non-finite weight"),
    (json.dumps(_document()).replace("0.125", "1" + "0" * 400), "b must be a finite number"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    (json.dumps(_document(dtype="float32", W=[1e39, 0.0])), "beyond the range of float32"),
], ids=["huge-int-weight", "huge-int-b", "deep-nesting", "float32-overflow"])
def test_malformed_model_files_are_model_file_errors(tmp_path, text, fragment):
    (tmp_path / "model.json").write_text(text)
    with pytest.raises(ModelFileError, match=fragment):
        load_model(tmp_path / "model.json")
    (tmp_path / "X.npy").write_bytes(b"")  # never reached: the model is read first
    fails(run("score", "X.npy", "--model", "model.json", "-o", "out.npy", cwd=tmp_path),
          "model file 'model.json'")


@pytest.mark.timeout(120)
def test_duplicate_feature_check_is_linear(tmp_path):
    # 200 000 names, one repeated: a quadratic check takes minutes here, a
    # linear one a fraction of a second (the timeout guards against a hang;
    # nothing is timed).
    names = [f"f{j}" for j in range(200_000)] + ["f7"]
    (tmp_path / "model.json").write_text(json.dumps(
        _document(features=names, W=[0.0] * len(names))))
    with pytest.raises(ModelFileError, match="duplicate names: f7"):
        load_model(tmp_path / "model.json")


# ---------------------------------------------------------------------------
# Output paths: refused before anything is written
# ---------------------------------------------------------------------------

def test_score_output_naming_the_model_is_refused(tmp_path, model2):
    # A model file may have any name; scores must never be written over it.
    np.save(tmp_path / "X.npy", np.ones((3, 2)))
    os.replace(tmp_path / "model.json", tmp_path / "model.csv")
    before = (tmp_path / "model.csv").read_bytes()
    fails(run("score", "X.npy", "--model", "model.csv", "-o", "model.csv", cwd=tmp_path),
          "is the MODEL file")
    assert (tmp_path / "model.csv").read_bytes() == before


def test_score_output_naming_the_input_through_another_spelling_is_refused(tmp_path, model2):
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "X.npy", np.ones((3, 2)))
    before = (tmp_path / "sub" / "X.npy").read_bytes()
    fails(run("score", "sub/X.npy", "--model", "model.json", "-o", "sub/../sub/X.npy",
              cwd=tmp_path), "is the INPUT file")
    assert (tmp_path / "sub" / "X.npy").read_bytes() == before
