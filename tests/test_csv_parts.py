"""Folders of text parts (.csv, .tsv, .txt) on Dask: which files are parts,
headers, row counts, output formats and the command line.

What text parts share with Parquet and .npy parts (invalid rows, skip,
training, all-or-nothing output) is tested in test_dask_parts.py, whose
fixtures run over every format.
"""
import numpy as np
import pytest

pytest.importorskip("dask.array")
pytest.importorskip("distributed")

import fastlogit  # noqa: E402
import fastlogit.dask as fld  # noqa: E402
from fastlogit.dask.part_folder import list_parts  # noqa: E402
from fastlogit.dask.part_scoring import OUTPUT_SUFFIXES  # noqa: E402
from fastlogit.model_io import Model, save_model  # noqa: E402
from part_tables import read_folder, read_table, write_table  # noqa: E402

pytestmark = pytest.mark.dask

MODEL = Model(["a", "b"], np.array([[0.5], [-2.0]]), 0.25)


def _data(m=300, seed=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m, 2))
    y = (rng.random(m) < 1 / (1 + np.exp(-x[:, 0]))).astype(float)
    return {"a": x[:, 0], "b": x[:, 1], "y": y}


def _rows(columns, lo, hi):
    return {name: values[lo:hi] for name, values in columns.items()}


def _folder(tmp_path, data, pieces):
    """tmp_path/parts with a part STEM of rows LO:HI of ``data`` in FMT per (STEM, LO, HI, FMT)."""
    folder = tmp_path / "parts"
    folder.mkdir()
    for stem, lo, hi, fmt in pieces:
        write_table(folder / stem, _rows(data, lo, hi), fmt)
    return folder


@pytest.fixture
def spark_folder(tmp_path):
    """A folder as Spark writes it: parts named part-NNNNN-<uuid>.csv, _SUCCESS,
    hidden .crc checksums; and files no tool would read as parts."""
    folder = tmp_path / "spark"
    folder.mkdir()
    data = _data()
    for k, (lo, hi) in enumerate([(0, 100), (100, 101), (101, 300)]):
        name = f"part-{k:05d}-1b2c3d4e-0000-4000-8000-00000000000{k}-c000"
        write_table(folder / name, _rows(data, lo, hi), "csv")
        (folder / f".{name}.csv.crc").write_bytes(b"crc\x00\x01")
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / "_notes.txt").write_text("not a part: its name starts with '_'\n")
    (folder / ".hidden.csv").write_text("x,y\nnot,numbers\n")
    (folder / "README.md").write_text("# not a part\n")
    return folder, data


def test_only_visible_files_with_a_part_suffix_are_parts(spark_folder, tmp_path):
    folder, data = spark_folder
    files, fmt = list_parts(folder)
    assert fmt == "csv" and [p.name[:10] for p in files] == [f"part-0000{k}" for k in range(3)]
    parts = fld.read_parts(folder, label="y")
    assert parts.rows == (100, 1, 199) and parts.X.chunks[0] == (100, 1, 199)
    assert parts.features == ["a", "b"] and parts.format == "csv"
    X = np.column_stack([data["a"], data["b"]])
    np.testing.assert_array_equal(parts.X.compute(), X)
    np.testing.assert_array_equal(parts.Y.compute(), data["y"])
    # The same rule for Parquet parts: a hidden part is not read.
    pytest.importorskip("pyarrow.parquet")
    pq_folder = tmp_path / "pq"
    pq_folder.mkdir()
    for k, (lo, hi) in enumerate([(0, 100), (100, 101), (101, 300)]):
        write_table(pq_folder / f"part-{k}", _rows(data, lo, hi), "parquet")
    write_table(pq_folder / ".part-3", _rows(data, 0, 5), "parquet")
    write_table(pq_folder / "_part-4", _rows(data, 0, 5), "parquet")
    assert fld.read_parts(pq_folder).rows == (100, 1, 199)
    # The same rows in the same parts give the same fit, bit for bit, from CSV and Parquet.
    from_csv = fld.fit_parts(folder, "y", C=1.0)[0]
    from_pq = fld.fit_parts(pq_folder, "y", C=1.0)[0]
    assert from_csv.W.tobytes() == from_pq.W.tobytes() and from_csv.b == from_pq.b


def test_csv_tsv_and_txt_parts_are_one_format_each_read_as_saved(tmp_path):
    """A .csv (',' '.'), a .tsv (tab, decimal comma, NA) and a .txt (';',
    decimal comma, #N/A, Windows-1252) read as one table, as fastlogit train
    reads each file."""
    data = _data(90)
    data["b"][50] = np.nan
    folder = _folder(tmp_path, data, [("2024-01", 0, 30, "csv"), ("2024-02", 30, 60, "tsv"),
                                      ("2024-03", 60, 90, "txt")])
    txt = folder / "2024-03.txt"
    txt.write_bytes(txt.read_text().replace("a;b", "a\u00e9;b").encode("cp1252"))
    for k, fmt in enumerate(("csv", "tsv")):
        text = (folder / f"2024-0{k + 1}.{fmt}").read_text()
        (folder / f"2024-0{k + 1}.{fmt}").write_text(text.replace("a", "a\u00e9", 1))
    parts = fld.read_parts(folder, label="y", on_invalid="skip")
    assert parts.format == "csv" and parts.features == ["a\u00e9", "b"]
    assert parts.rows == (30, 30, 30) and parts.kept == (30, 29, 30)
    keep = np.arange(90) != 50
    np.testing.assert_array_equal(parts.X.compute(),
                                  np.column_stack([data["a"], data["b"]])[keep])
    np.testing.assert_array_equal(parts.Y.compute(), data["y"][keep])


def test_mixed_and_compressed_parts_are_refused(tmp_path):
    pytest.importorskip("pyarrow.parquet")
    folder = _folder(tmp_path, _data(20), [("a", 0, 10, "parquet"), ("b", 10, 20, "csv")])
    with pytest.raises(ValueError, match=r"mixes Parquet parts \('a.parquet', ...\) and CSV/text "
                                         r"parts \('b.csv', ...\); expected parts of one format"):
        fld.read_parts(folder)
    # A note next to Parquet parts is a text part too: named, and how to keep it.
    (folder / "b.csv").rename(folder / "notes.txt")
    with pytest.raises(ValueError, match=r"'notes.txt'.*a file whose name starts with '_'"):
        fld.score_parts(MODEL, folder, tmp_path / "out")
    (folder / "notes.txt").rename(folder / "_notes.txt")
    assert fld.read_parts(folder).rows == (10,)
    (folder / "b.csv.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(ValueError, match=r"compressed part\(s\) \(b.csv.gz\), which are not read"):
        fld.read_parts(folder)
    assert not (tmp_path / "out").exists()


def test_parts_must_have_the_same_columns(tmp_path):
    data = _data(30)
    folder = _folder(tmp_path, data, [("p0", 0, 10, "csv")])
    write_table(folder / "p1", {"a": data["a"][10:20], "c": data["b"][10:20],
                                "y": data["y"][10:20]}, "csv")
    with pytest.raises(ValueError, match=r"INPUT part '[^']*p1.csv' has columns \['a', 'c', 'y'\]; "
                                         r"the first part 'p0.csv' has \['a', 'b', 'y'\]: it lacks "
                                         r"\['b'\]; it has \['c'\], which the first part has not"):
        fld.read_parts(folder, label="y")
    write_table(folder / "p1", _rows(data, 10, 20), "csv", header=False)
    with pytest.raises(ValueError, match=r"p1.csv' has columns \['0', '1', '2'\].*a text part "
                                         r"without a header line has columns '0', '1', ..."):
        fld.fit_parts(folder, "y")
    write_table(folder / "p1", {"b": data["b"][10:20], "a": data["a"][10:20],
                                "y": data["y"][10:20]}, "csv")
    with pytest.raises(ValueError, match="the same columns in another order"):
        fld.read_parts(folder)


def test_a_bad_field_names_the_part_row_line_and_column(tmp_path):
    folder = _folder(tmp_path, _data(20), [("p0", 0, 10, "csv"), ("p1", 10, 20, "tsv")])
    p1 = folder / "p1.tsv"
    lines = p1.read_text().splitlines()
    lines[3] = "\t".join(["#DIV/0!"] + lines[3].split("\t")[1:])
    p1.write_text("\n".join(lines[:2] + [""] + lines[2:]) + "\n")   # and a blank line
    for call in (lambda: fld.read_parts(folder, label="y"),
                 lambda: fld.score_parts(MODEL, folder, tmp_path / "out")):
        with pytest.raises(ValueError, match=r"INPUT part '[^']*p1.tsv' row 3 \(line 5\), "
                                             r"column 'a': '#DIV/0!' is not a number"):
            call()
    assert not (tmp_path / "out").exists()


def test_rows_are_counted_and_a_part_changed_since_is_an_error(tmp_path):
    data = _data(40)
    folder = _folder(tmp_path, data, [("p0", 0, 25, "csv"), ("p1", 25, 40, "csv")])
    p0 = folder / "p0.csv"
    p0.write_text("\n" + p0.read_text().replace("\n", "\n\n", 3))   # blank lines carry no row
    parts = fld.read_parts(folder, label="y")
    assert parts.rows == (25, 15) and parts.X.shape == (40, 2)
    write_table(folder / "p1", _rows(data, 25, 39), "csv")
    with pytest.raises(ValueError, match=r"p1.csv' has 14 rows now; it had 15 when the folder "
                                         r"was read"):
        parts.X.compute()


@pytest.mark.parametrize("output_format, suffix", [(None, ".csv"), ("csv", ".csv"),
                                                   ("parquet", ".parquet"), ("npy", ".npy")])
def test_scores_of_text_parts_equal_the_in_memory_scores_in_every_output_format(
        tmp_path, output_format, suffix):
    """Text parts are scored into .csv parts by default (the CSV writer of
    fastlogit score), into Parquet or .npy on request; every probability is
    the one fastlogit score gives on the concatenated table, bit for bit."""
    from fastlogit.scoring import score_file

    if output_format == "parquet":
        pytest.importorskip("pyarrow.parquet")
    data = _data(120)
    data["a"][7] = np.nan
    folder = _folder(tmp_path, data, [("jan", 0, 50, "csv"), ("feb", 50, 120, "tsv")])
    summary = fld.score_parts(MODEL, folder, tmp_path / "out", output_format=output_format,
                              threshold=0.5, on_invalid="nan")
    assert summary["rows"] == 120 and summary["invalid"] == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"feb{suffix}",
                                                                   f"jan{suffix}"]
    got = [read_table(tmp_path / "out" / f"{name}{suffix}") for name in ("jan", "feb")]
    whole = write_table(tmp_path / "whole", data, "csv")
    score_file(MODEL, whole, tmp_path / "whole-scores.csv", threshold=0.5, on_invalid="nan")
    want = read_table(tmp_path / "whole-scores.csv")
    for column in ("probability", "label"):
        np.testing.assert_array_equal(np.concatenate([g[column] for g in got]), want[column])
    assert np.isnan(want["probability"][7]) and want["label"][7] == -1
    assert np.array_equal(want["probability"][:3],
                          fastlogit.forward_pass(np.column_stack([data["a"], data["b"]])[:3],
                                                 MODEL.W, MODEL.b)[0])


def test_text_parts_that_would_share_an_output_part_are_refused(tmp_path):
    folder = _folder(tmp_path, _data(20), [("p", 0, 10, "csv"), ("p", 10, 20, "tsv")])
    with pytest.raises(ValueError, match="would be written to the same file"):
        fld.score_parts(MODEL, folder, tmp_path / "out")
    with pytest.raises(ValueError, match=r"output_format must be 'parquet', 'npy' or 'csv'; "
                                         r"got 'xlsx'"):
        fld.score_parts(MODEL, folder, tmp_path / "out", output_format="xlsx")
    assert not (tmp_path / "out").exists()


def test_command_line_scores_a_folder_of_csv_parts_as_it_scores_one_file(tmp_path, capsys):
    from fastlogit.cli import main

    data = _data(60)
    folder = _folder(tmp_path, data, [("part-00000", 0, 25, "csv"), ("part-00001", 25, 60, "csv")])
    (folder / "_SUCCESS").write_bytes(b"")
    model = tmp_path / "model.json"
    save_model(MODEL, model)
    assert main(["score", str(folder), "--model", str(model), "-o", str(tmp_path / "x.csv"),
                 "--output-format", "csv"]) == 1
    assert "--output-format is for a folder of parts (--scheduler)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["score", str(folder), "--model", str(model), "-o", "out", "--output-format", "x"])
    choices = ", ".join(repr(fmt) for fmt in OUTPUT_SUFFIXES)
    assert f"(choose from {choices})" in capsys.readouterr().err
    assert main(["score", str(folder), "--model", str(model), "--scheduler", "local:1",
                 "-o", str(tmp_path / "out"), "--output-format", "parquet"]) == 0
    assert "scored 60 rows in 2 parts" in capsys.readouterr().err
    whole = write_table(tmp_path / "whole", data, "csv")
    assert main(["score", str(whole), "--model", str(model), "-o",
                 str(tmp_path / "whole.parquet")]) == 0
    np.testing.assert_array_equal(read_folder(tmp_path / "out", ".parquet")["probability"],
                                  read_table(tmp_path / "whole.parquet")["probability"])
