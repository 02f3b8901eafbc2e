"""Chunked readers and atomic writers (in-process; the CLI tests cover the rest)."""
from __future__ import annotations

import numpy as np
import pytest

from fastlogit.io import InputError, OutputError, atomic_output, check_output_path, open_table
from fastlogit.io.writers import NpyWriter


def read_all(path, chunk_rows=3, columns=None):
    with open_table(path) as reader:
        cols = list(range(len(reader.columns))) if columns is None else columns
        blocks = list(reader.chunks(chunk_rows, cols))
        return reader, blocks


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_npy_blocks_reassemble_the_array(tmp_path, rng, order, dtype):
    X = np.asarray(rng.normal(size=(20, 4)) * 10, dtype=dtype, order=order)
    np.save(tmp_path / "X.npy", X)
    reader, blocks = read_all(tmp_path / "X.npy", chunk_rows=7, columns=[3, 0])
    assert [b.shape for b in blocks] == [(7, 2), (7, 2), (6, 2)]
    assert all(b.flags.c_contiguous for b in blocks)
    assert blocks[0].dtype == (np.float32 if dtype == np.float32 else np.float64)
    np.testing.assert_array_equal(np.concatenate(blocks), X[:, [3, 0]].astype(blocks[0].dtype))
    assert reader.n_rows == 20 and not reader.named


def test_npy_one_dimensional_is_one_column(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(5.0))
    reader, blocks = read_all(tmp_path / "x.npy", chunk_rows=2)
    assert reader.columns == ["0"]
    np.testing.assert_array_equal(np.concatenate(blocks)[:, 0], np.arange(5.0))


@pytest.mark.parametrize("order", ["C", "F"])
def test_npz_single_array_and_columns(tmp_path, rng, order):
    X = np.asarray(rng.normal(size=(11, 3)), order=order)
    np.savez_compressed(tmp_path / "one.npz", X=X)
    _, blocks = read_all(tmp_path / "one.npz", chunk_rows=4)
    np.testing.assert_array_equal(np.concatenate(blocks), X)

    np.savez(tmp_path / "cols.npz", b=X[:, 1], a=X[:, 0])
    reader, blocks = read_all(tmp_path / "cols.npz", chunk_rows=4)
    assert reader.named and sorted(reader.columns) == ["a", "b"]
    j = reader.columns.index("a")
    np.testing.assert_array_equal(np.concatenate(blocks)[:, j], X[:, 0])


def test_npz_problems(tmp_path):
    np.savez(tmp_path / "ragged.npz", a=np.ones(3), b=np.ones(4))
    with pytest.raises(InputError, match="different lengths"):
        open_table(tmp_path / "ragged.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a valid .npz"):
        open_table(tmp_path / "junk.npz")


def test_csv_header_quotes_blank_lines_and_tsv(tmp_path, csv_engine):
    (tmp_path / "a.csv").write_text('x,"y"\n1,"2.5"\n\n3,4\n5,\n')
    reader, blocks = read_all(tmp_path / "a.csv", chunk_rows=2)
    assert reader.engine == csv_engine
    assert reader.named and reader.columns == ["x", "y"]
    table = np.concatenate(blocks)
    np.testing.assert_array_equal(table[:2], [[1, 2.5], [3, 4]])
    assert table[2, 0] == 5 and np.isnan(table[2, 1])  # an empty field is a missing value

    (tmp_path / "b.tsv").write_text("1\t2\n3\t4\n")
    reader, blocks = read_all(tmp_path / "b.tsv")
    assert not reader.named and reader.columns == ["0", "1"]
    np.testing.assert_array_equal(np.concatenate(blocks), [[1, 2], [3, 4]])


def test_csv_errors_name_the_line(tmp_path, csv_engine):
    (tmp_path / "a.csv").write_text("x,y\n1,2\n3,4\n5,six\n")
    with open_table(tmp_path / "a.csv") as reader, pytest.raises(
            InputError, match=r"row 3 \(line 4\), column 'y': 'six' is not a number"):
        list(reader.chunks(2, [0, 1]))
    (tmp_path / "b.csv").write_text("x,y\n1,2\n3\n")
    with open_table(tmp_path / "b.csv") as reader, pytest.raises(InputError, match="has 1 fields; expected 2"):
        list(reader.chunks(10, [0, 1]))
    (tmp_path / "c.csv").write_text("x,x\n1,2\n")
    with pytest.raises(InputError, match="repeats a column name"):
        open_table(tmp_path / "c.csv")


def test_csv_blank_lines_before_the_header(tmp_path, csv_engine):
    (tmp_path / "a.csv").write_text("\n\nx,y\n1,2\n\n3,4\n")
    reader, blocks = read_all(tmp_path / "a.csv", chunk_rows=5)
    assert reader.columns == ["x", "y"]
    np.testing.assert_array_equal(np.concatenate(blocks), [[1, 2], [3, 4]])
    assert reader.read_labels(1).tolist() == ["2", "4"]
    assert reader.row_label(1) == "row 2 (line 6)"


def test_csv_lines_of_spaces_carry_no_row(tmp_path, csv_engine):
    # pyarrow refuses such a line; the rows after it are still read (by NumPy).
    rows = "".join(f"{i},{i + 0.5}\n" for i in range(50))
    (tmp_path / "a.csv").write_text("x,y\n" + rows + "   \n" + rows)
    reader, blocks = read_all(tmp_path / "a.csv", chunk_rows=7)
    want = np.array([[i, i + 0.5] for i in range(50)] * 2)
    np.testing.assert_array_equal(np.concatenate(blocks), want)


def test_csv_labels_are_read_as_text(tmp_path, csv_engine):
    (tmp_path / "a.csv").write_text("x,label\n1, M\n\n2,B\n3,\n")
    with open_table(tmp_path / "a.csv") as reader:
        assert reader.read_labels(1).tolist() == ["M", "B", ""]
        assert reader.read_labels(0).tolist() == ["1", "2", "3"]


def test_parquet_nulls_become_nan(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"a": pa.array([1, None, 3], pa.int64()), "s": ["u", "v", "w"]}),
                   tmp_path / "t.parquet")
    reader, blocks = read_all(tmp_path / "t.parquet", chunk_rows=2, columns=[0])
    table = np.concatenate(blocks)[:, 0]
    assert table[0] == 1 and np.isnan(table[1]) and table[2] == 3
    with open_table(tmp_path / "t.parquet") as reader, pytest.raises(InputError, match="expected numbers"):
        list(reader.chunks(2, [1]))


@pytest.mark.parametrize("rows", [0, 1, 1000])
@pytest.mark.parametrize("labels", [False, True])
def test_npy_writer_header_is_rewritten_with_the_row_count(tmp_path, rows, labels, rng):
    A = rng.random(rows)
    writer = NpyWriter(tmp_path / "a.npy", np.dtype(np.float64), labels)
    for start in range(0, rows, 300):
        part = A[start:start + 300]
        writer.write(part, (part >= 0.5).astype(np.int8) if labels else None)
    writer.finish()
    out = np.load(tmp_path / "a.npy")
    assert out.shape == (rows,)
    if labels:
        np.testing.assert_array_equal(out["probability"], A)
        np.testing.assert_array_equal(out["label"], A >= 0.5)
    else:
        np.testing.assert_array_equal(out, A)


def test_atomic_output_removes_the_temporary_on_failure(tmp_path):
    target = tmp_path / "out.npy"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_output(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["out.npy"]


def test_check_output_path(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "no" / "a.npy")
    with pytest.raises(OutputError, match="unknown format"):
        check_output_path(tmp_path / "a.xls")
    with pytest.raises(OutputError, match="it is a folder"):
        (tmp_path / "d.npy").mkdir()
        check_output_path(tmp_path / "d.npy")
    assert check_output_path(tmp_path / "a.csv") == tmp_path / "a.csv"


def test_open_table_problems(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        open_table(tmp_path / "x.npy")
    with pytest.raises(InputError, match="is a folder"):
        open_table(tmp_path)
    (tmp_path / "x.xlsx").write_text("1")
    with pytest.raises(InputError, match="unknown format '.xlsx'.* save the sheet as CSV"):
        open_table(tmp_path / "x.xlsx")
    (tmp_path / "e.npy").write_bytes(b"")
    with pytest.raises(InputError, match="is empty"):
        open_table(tmp_path / "e.npy")
    np.save(tmp_path / "cube.npy", np.ones((2, 2, 2)))
    with pytest.raises(InputError, match="expected a 2-D table"):
        open_table(tmp_path / "cube.npy")
