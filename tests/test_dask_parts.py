"""Folders of parts (``fastlogit.dask.read_parts / score_parts / fit_parts``)
and DataFrames, on Dask's local threads: the same rules as the in-memory
command line (output paths, invalid rows, thresholds, nulls, labels), for
Parquet, .npy and text (.csv, .tsv, .txt) parts alike.

A real cluster is exercised in test_dask.py; nothing here needs one.  What is
particular to text parts (which files are parts, headers, output formats) is
in test_csv_parts.py.
"""
import numpy as np
import pytest

pytest.importorskip("dask.array")
pytest.importorskip("distributed")

import fastlogit  # noqa: E402
import fastlogit.dask as fld  # noqa: E402
from fastlogit.model_io import Model  # noqa: E402
from part_tables import SUFFIX, TEXT, read_folder, read_table, row_line, write_table  # noqa: E402


def _need(fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow.parquet")


def _save_X(stem, X, fmt):
    # Unnamed columns "0", "1", ...: a .npy part, or a text part without a header line.
    return write_table(stem, {str(j): X[:, j] for j in range(X.shape[1])}, fmt, header=False)


@pytest.fixture(params=["npy", "csv"])
def npy_parts(tmp_path, request):
    """Two parts of unnamed columns: .npy, or CSV without a header line."""
    folder = tmp_path / "parts"
    folder.mkdir()
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 2))
    for k, (lo, hi) in enumerate([(0, 10), (10, 30)]):
        _save_X(folder / f"p{k}", X[lo:hi], request.param)
    return folder, X, request.param


MODEL = Model(["0", "1"], np.array([[0.5], [-2.0]]), 0.25)


def _bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_output_folder_equal_to_the_input_folder_is_refused(npy_parts):
    folder, _, _ = npy_parts
    before = _bytes(folder)
    with pytest.raises(ValueError, match="is the INPUT part file"):
        fld.score_parts(MODEL, folder, folder)
    assert _bytes(folder) == before


def test_parts_that_would_share_an_output_file_are_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.table({"0": [1.0, 2.0], "1": [3.0, 4.0]}), folder / "p.parquet")
    pq.write_table(pa.table({"0": [5.0, 6.0, 7.0], "1": [8.0, 9.0, 1.0]}), folder / "p.pq")
    with pytest.raises(ValueError, match="would be written to the same file"):
        fld.score_parts(MODEL, folder, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_nan_row_is_an_error_by_default_and_nan_on_request(npy_parts, tmp_path):
    folder, X, fmt = npy_parts
    sfx = SUFFIX[fmt]
    X1 = X[10:].copy()
    X1[3, 1] = np.nan
    _save_X(folder / "p1", X1, fmt)
    with pytest.raises(ValueError, match=rf"p1{sfx}' {row_line(fmt, 4, header=False)}, column "
                                         r"'1': a missing value \(empty, NA, #N/A or NaN\)"):
        fld.score_parts(MODEL, folder, tmp_path / "out", threshold=0.5)
    summary = fld.score_parts(MODEL, folder, tmp_path / "out", threshold=0.5, on_invalid="nan")
    assert summary["invalid"] == 1 and summary["rows"] == 30
    # The output parts are in the input's format (CSV for text parts).
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"p0{sfx}", f"p1{sfx}"]
    scores = read_table(tmp_path / "out" / f"p1{sfx}")
    assert np.isnan(scores["probability"][3]) and scores["label"][3] == -1
    X[10 + 3, 1] = np.nan
    want = fastlogit.forward_pass(np.nan_to_num(X), MODEL.W, MODEL.b)[0][10:]
    keep = np.arange(20) != 3
    np.testing.assert_array_equal(scores["probability"][keep], want[keep])
    summary = fld.score_parts(MODEL, folder, tmp_path / "skip", on_invalid="skip")
    assert summary["rows_out"] == 29


def test_a_nan_threshold_is_refused(npy_parts, tmp_path):
    folder, _, _ = npy_parts
    with pytest.raises(ValueError, match="threshold must be a real number"):
        fld.score_parts(MODEL, folder, tmp_path / "out", threshold=float("nan"))
    assert not (tmp_path / "out").exists()


def test_a_null_in_a_parquet_part_is_an_invalid_row(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.table({"0": [1.0, None], "1": [3.0, 4.0]}), folder / "a.parquet")
    with pytest.raises(ValueError, match=r"row 2, column '0': a missing value \(empty, NA, #N/A or NaN\)"):
        fld.score_parts(MODEL, folder, tmp_path / "out")


def test_npy_parts_of_format_version_3_are_read(tmp_path):
    from numpy.lib import format as npy_format

    folder = tmp_path / "parts"
    folder.mkdir()
    X = np.arange(6.0).reshape(3, 2)
    with open(folder / "a.npy", "wb") as fh:
        npy_format.write_array(fh, X, version=(3, 0))
    parts = fld.read_parts(folder)
    np.testing.assert_array_equal(parts.X.compute(), X)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_fit_parts_takes_exclude_and_positive(tmp_path, fmt):
    _need(fmt)
    folder = tmp_path / "parts"
    folder.mkdir()
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    y = np.where(rng.random(400) < 1 / (1 + np.exp(-2 * x)), "M", "B")
    for k in range(2):
        rows = slice(200 * k, 200 * (k + 1))
        write_table(folder / f"part-{k}", {"id": [f"p{i}" for i in range(200)], "x": x[rows],
                                           "diagnosis": y[rows]}, fmt)
    res, features, rows, classes = fld.fit_parts(folder, "diagnosis", exclude=["id"],
                                                 positive="M", l2=0.0, return_classes=True)
    assert features == ["x"] and rows == 400
    assert classes == {"positive": "M", "negative": "B"}
    want = fastlogit.fit(x.reshape(-1, 1), (y == "M").astype(float))
    np.testing.assert_allclose(res.W, want.W, rtol=1e-6)
    with pytest.raises(ValueError, match="not a label of"):
        fld.fit_parts(folder, "diagnosis", exclude=["id"], positive="X")
    with pytest.raises(ValueError, match="labels that are not numbers.*--positive"):
        fld.fit_parts(folder, "diagnosis", exclude=["id"])


def test_score_dataframe_with_nullable_and_categorical_columns():
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    frame = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"),
                          "b": pd.array([0.5, 1.5, None], dtype="Float64"),
                          "c": pd.Categorical(["x", "y", "x"])})
    df = dd.from_pandas(frame, npartitions=2)
    W = np.array([[0.25], [-1.0]])
    got = fld.score_dataframe(df, W, 0.5, ["a", "b"]).compute().to_numpy()
    want = fastlogit.forward_pass(np.array([[1.0, 0.5], [np.nan, 1.5], [3.0, np.nan]]), W, 0.5)[0]
    np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match="column 'c'"):
        fld.score_dataframe(df, np.array([[1.0]]), 0.0, ["c"])


def test_a_failing_part_leaves_no_output_folder_and_no_temporary_folder(npy_parts, tmp_path):
    """Part p0 is scored and written before p1 fails (a NaN row): the output
    is all or nothing, so neither the output folder nor a temporary sibling
    is left; an existing output folder keeps exactly what it held."""
    import dask

    folder, X, fmt = npy_parts
    sfx = SUFFIX[fmt]
    X1 = X[10:].copy()
    X1[3, 1] = np.nan
    _save_X(folder / "p1", X1, fmt)
    out = tmp_path / "out"
    fails = rf"p1{sfx}' {row_line(fmt, 4, header=False)}, column '1'"
    with dask.config.set(scheduler="sync"):            # p0 first, then p1 fails
        with pytest.raises(ValueError, match=fails):
            fld.score_parts(MODEL, folder, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parts"]
    out.mkdir()
    (out / f"p0{sfx}").write_bytes(b"old")
    (out / "README.md").write_text("mine")
    with pytest.raises(ValueError, match=fails):
        fld.score_parts(MODEL, folder, out)
    assert _bytes(out) == {"README.md": b"mine", f"p0{sfx}": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "parts"]
    # Success into the existing folder: the parts replace their namesakes only.
    fld.score_parts(MODEL, folder, out, on_invalid="nan")
    assert sorted(_bytes(out)) == ["README.md", f"p0{sfx}", f"p1{sfx}"]
    assert (out / "README.md").read_text() == "mine"
    # Probabilities only: a 1-D .npy (column "0"), a CSV column "probability".
    assert [v.shape for v in read_table(out / f"p0{sfx}").values()] == [(10,)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "parts"]


def test_atomic_folder_is_all_or_nothing(tmp_path):
    import os

    from fastlogit.io.files import atomic_folder

    target = tmp_path / "a" / "b"
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(target) as tmp:
            (tmp / "x.txt").write_text("half")
            raise KeyboardInterrupt
    assert list((tmp_path / "a").iterdir()) == []
    with atomic_folder(target) as tmp:
        assert tmp.parent == target.parent and not target.exists()
        (tmp / "x.txt").write_text("done")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b"]
    assert (target / "x.txt").read_text() == "done"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask


class InvalidRowParts:
    """Two parts of columns a, b (features) and y (label) in one format; part-0
    row 6 has a missing feature, part-1 row 101 a missing label.  ``whole()``
    writes the same rows as one table of that format: what the in-memory
    command line reads."""

    def __init__(self, folder, fmt, x, y):
        self.folder, self.fmt, self.x, self.y = folder, fmt, x, y
        for k in range(2):
            rows = slice(200 * k, 200 * (k + 1))
            write_table(folder / f"part-{k}", self.columns(rows), fmt)

    def columns(self, rows=slice(None)):
        return {"a": self.x[rows, 0], "b": self.x[rows, 1], "y": self.y[rows]}

    def whole(self):
        return write_table(self.folder.parent / "whole", self.columns(), self.fmt)


@pytest.fixture(params=["parquet", *TEXT])
def parts_with_invalid_rows(tmp_path, request):
    """Parquet, or text as Spark (.csv) or a European Excel (.tsv, .txt) writes it."""
    _need(request.param)
    folder = tmp_path / "parts"
    folder.mkdir()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = (rng.random(400) < 1 / (1 + np.exp(-x[:, 0]))).astype(float)
    x[5, 1] = np.nan
    y[300] = np.nan
    return InvalidRowParts(folder, request.param, x, y)


def test_fit_parts_leaves_out_invalid_rows_as_the_in_memory_trainer(parts_with_invalid_rows):
    from fastlogit.training_table import load_training_table

    parts = parts_with_invalid_rows
    folder, x, y, fmt = parts.folder, parts.x, parts.y, parts.fmt
    where = rf"INPUT part '[^']*part-(0{SUFFIX[fmt]}' {row_line(fmt, 6)}, column 'b'|" \
            rf"1{SUFFIX[fmt]}' {row_line(fmt, 101)}, column 'y')"
    with pytest.raises(ValueError, match=where + r": a missing value \(empty, NA, #N/A or NaN\)"):
        fld.fit_parts(folder, "y", C=1.0)
    res, features, rows, skipped = fld.fit_parts(folder, "y", C=1.0, on_invalid="skip",
                                                 tol=1e-10, return_skipped=True)
    assert features == ["a", "b"] and rows == 398 and skipped == 2
    keep = np.isfinite(x).all(axis=1) & np.isfinite(y)
    want = fastlogit.fit(x[keep], y[keep], l2=1 / (1.0 * 398), tol=1e-10)
    assert res.converged
    np.testing.assert_allclose(res.W, want.W, rtol=1e-6, atol=0)
    assert abs(res.b - want.b) <= 1e-6 * np.max(np.abs(want.W))
    # The rule is the in-memory trainer's: the same rows left out.
    table = load_training_table(parts.whole(), "y", on_invalid="skip")
    assert table.rows_skipped == skipped and table.X.shape[0] == rows


# Each run starts a local cluster: one binary and one text format.
@pytest.mark.parametrize("parts_with_invalid_rows", ["parquet", "csv"], indirect=True)
def test_command_line_trains_on_parts_with_on_invalid_skip(parts_with_invalid_rows, tmp_path,
                                                           capsys):
    from fastlogit.cli import main
    from fastlogit.model_io import load_model

    folder = parts_with_invalid_rows.folder
    out = tmp_path / "model.json"
    assert main(["train", str(folder), "--target", "y", "--scheduler", "local:1",
                 "-o", str(out)]) == 1
    assert "a missing value (empty, NA, #N/A or NaN) (--on-invalid skip" in capsys.readouterr().err
    assert not out.exists()
    assert main(["train", str(folder), "--target", "y", "--scheduler", "local:1",
                 "--on-invalid", "skip", "-o", str(out)]) == 0
    assert "trained on 398 rows" in capsys.readouterr().out
    model = load_model(out)
    assert model.training["rows"] == 398 and model.training["rows_skipped"] == 2


def test_bench_fit_rows_have_a_dask_row_that_reports_passes():
    from fastlogit.bench.fit import PEERS, FitRow, format_rows, objective

    rng = np.random.default_rng(2)
    X = rng.normal(size=(800, 3))
    y = (rng.random(800) < 1 / (1 + np.exp(-X @ [1.0, -0.5, 0.25]))).astype(float)
    w, b, passes = PEERS["fastlogit-dask"](X, y, 1.0)
    want = PEERS["fastlogit"](X, y, 1.0)
    assert 1 <= passes <= 15
    assert abs(objective(X, y, 1.0, w, b) - objective(X, y, 1.0, want[0], want[1])) <= 1e-8
    # Not a peer: the speed-up column compares fastlogit with the other libraries only.
    table = format_rows([FitRow("c", "fastlogit", 1.0, 0.0, 3),
                         FitRow("c", "fastlogit-dask", 0.1, 0.0, 4),
                         FitRow("c", "sklearn-lbfgs", 2.0, 0.0, 9)])
    assert "2.00x" in table.splitlines()[1] and "passes over X" in table


def test_read_parts_skip_without_a_label_leaves_the_rows_out_as_score_does(
        parts_with_invalid_rows, tmp_path):
    """Without a label, "skip" is the scoring engine's rule (NaN or inf in a
    feature): the rows are not in X, .keep says which stored rows are, and
    scores over X are those of ``score_parts(on_invalid="skip")``, bit for bit."""
    from fastlogit.scoring import invalid_rows

    folder, x, fmt = parts_with_invalid_rows.folder, parts_with_invalid_rows.x, \
        parts_with_invalid_rows.fmt
    parts = fld.read_parts(folder, columns=["a", "b"], on_invalid="skip")
    want_keep = ~invalid_rows(x)
    assert parts.rows == (200, 200) and parts.kept == (199, 200) and parts.skipped == 1
    assert parts.X.shape == (399, 2) and parts.X.chunks[0] == (199, 200) and parts.Y is None
    np.testing.assert_array_equal(parts.keep.compute(), want_keep)
    np.testing.assert_array_equal(parts.X.compute(), x[want_keep])   # the NaN label row stays
    model = Model(["a", "b"], np.array([[0.5], [-2.0]]), 0.25)
    summary = fld.score_parts(model, folder, tmp_path / "scores", on_invalid="skip")
    assert summary["rows_out"] == 399 and summary["invalid"] == 1
    # Text parts are scored into CSV parts (read back by fastlogit's reader, bit for bit).
    scored = read_folder(tmp_path / "scores", ".parquet" if fmt == "parquet" else ".csv")
    scored = scored["probability"]
    ours = fld.forward_pass(parts.X, model.W, model.b)[0].compute()
    np.testing.assert_array_equal(ours.ravel(), scored)
    # The default columns include the label column "y": its NaN row goes too.
    assert fld.read_parts(folder, on_invalid="skip").skipped == 2


def test_read_parts_skip_with_a_label_gives_the_in_memory_training_table(
        parts_with_invalid_rows):
    from fastlogit.training_table import load_training_table

    folder, x, y = parts_with_invalid_rows.folder, parts_with_invalid_rows.x, \
        parts_with_invalid_rows.y
    parts = fld.read_parts(folder, label="y", on_invalid="skip")
    table = load_training_table(parts_with_invalid_rows.whole(), "y", on_invalid="skip")
    assert parts.kept == (199, 199) and parts.skipped == table.rows_skipped == 2
    np.testing.assert_array_equal(parts.X.compute(), table.X)
    np.testing.assert_array_equal(parts.Y.compute(), table.y)
    assert parts.X.chunks[0] == parts.Y.chunks[0] == (199, 199)
    np.testing.assert_array_equal(parts.keep.compute(), np.isfinite(x).all(axis=1) & np.isfinite(y))
    assert "398 rows (2 skipped)" in repr(parts)
    # Nothing to skip: the stored rows as they are, with the same numbers.
    clean = fld.read_parts(folder, columns=["a"], on_invalid="skip")
    assert clean.skipped == 0 and clean.X.chunks[0] == (200, 200)


def test_a_part_with_no_valid_row_is_an_empty_block(parts_with_invalid_rows):
    folder, x, y, fmt = parts_with_invalid_rows.folder, parts_with_invalid_rows.x, \
        parts_with_invalid_rows.y, parts_with_invalid_rows.fmt
    write_table(folder / "part-2", {"a": [np.nan] * 5, "b": [1.0] * 5, "y": [1.0] * 5}, fmt)
    parts = fld.read_parts(folder, label="y", on_invalid="skip")
    assert parts.kept == (199, 199, 0) and parts.skipped == 7 and parts.X.shape == (398, 2)
    res, _, rows, skipped = fld.fit_parts(folder, "y", C=1.0, on_invalid="skip", tol=1e-10,
                                          return_skipped=True)
    assert (rows, skipped) == (398, 7)
    keep = np.isfinite(x).all(axis=1) & np.isfinite(y)
    want = fastlogit.fit(x[keep], y[keep], l2=1 / 398, tol=1e-10)
    np.testing.assert_allclose(res.W, want.W, rtol=1e-6, atol=0)


def test_skip_at_float32_leaves_out_values_beyond_its_range_as_score_does(tmp_path):
    from fastlogit.scoring import invalid_rows

    folder = tmp_path / "parts"
    folder.mkdir()
    X = np.random.default_rng(3).normal(size=(12, 2))
    X[4, 0] = 1e300                      # finite in float64, inf in float32
    np.save(folder / "p0.npy", X[:6])
    np.save(folder / "p1.npy", X[6:])
    as64 = fld.read_parts(folder, on_invalid="skip")
    as32 = fld.read_parts(folder, dtype=np.float32, on_invalid="skip")
    assert as64.skipped == 0
    with np.errstate(over="ignore"):
        X32 = X.astype(np.float32)
    assert as32.skipped == 1 and as32.kept == (5, 6)
    np.testing.assert_array_equal(as32.X.compute(), X32[~invalid_rows(X32)])
    model = Model(["0", "1"], np.array([[0.5], [-2.0]]), 0.25, dtype="float32")
    summary = fld.score_parts(model, folder, tmp_path / "scores", on_invalid="skip")
    assert summary["invalid"] == as32.skipped


def test_an_output_folder_with_parts_this_job_would_not_replace_is_refused(npy_parts, tmp_path):
    folder, _, fmt = npy_parts
    sfx = SUFFIX[fmt]
    out = tmp_path / "out"
    out.mkdir()
    (out / f"p0{sfx}").write_bytes(b"old")
    (out / f"p9{sfx}").write_bytes(b"stale")
    (out / "README.md").write_text("mine")
    (out / "_notes.txt").write_text("mine too")         # '_': never a part
    with pytest.raises(ValueError, match=rf"holds 1 part\(s\) that this job would not replace "
                                         rf"\('p9{sfx}'\): a reader of the folder would mix"):
        fld.score_parts(MODEL, folder, out)
    assert _bytes(out) == {"README.md": b"mine", "_notes.txt": b"mine too", f"p0{sfx}": b"old",
                           f"p9{sfx}": b"stale"}
    (out / f"p9{sfx}").unlink()
    fld.score_parts(MODEL, folder, out)
    assert sorted(_bytes(out)) == ["README.md", "_notes.txt", f"p0{sfx}", f"p1{sfx}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "parts"]
