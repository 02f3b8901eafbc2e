"""Delimited text as other tools save it: Excel's "CSV UTF-8", "CSV (Comma delimited)"
(Windows-1252), "CSV" in locales whose decimal mark is a comma (';' between fields) and
"Unicode Text" (UTF-16, tabs), each read by both CSV engines to the numbers of a plain CSV."""
from __future__ import annotations

import numpy as np
import pytest

from fastlogit.io import InputError, open_table
from fastlogit.training_table import load_training_table

X = np.array([[0.5, -1.25, 3.0], [1e-3, 2.0, -0.0625], [12.5, 0.0, 7.0], [-4.0, 1.5e-7, 0.1]])
Y = [1, 0, 1, 0]


def _table(sep: str, comma: bool, header: list[str] = ["x1", "x2", "Température", "label"]) -> str:
    def num(v):
        text = repr(float(v))
        return text.replace(".", ",") if comma else text
    lines = [sep.join(header)] if header else []
    lines += [sep.join([num(v) for v in row] + [str(y)]) for row, y in zip(X, Y)]
    return "\r\n".join(lines) + "\r\n\r\n"     # Excel: CRLF; a trailing blank line


def _read(path, columns=(0, 1, 2), chunk_rows=3):
    with open_table(path) as reader:
        return reader, np.concatenate(list(reader.chunks(chunk_rows, list(columns))))


FORMATS = {
    # name: (file name, text, encoding, expected delimiter, decimal comma)
    "excel-csv-utf8": ("a.csv", _table(",", False), "utf-8-sig", ",", False),
    "excel-csv-windows-1252": ("a.csv", _table(",", False), "cp1252", ",", False),
    "excel-csv-semicolon-decimal-comma": ("a.csv", _table(";", True), "utf-8-sig", ";", True),
    "semicolon-decimal-point": ("a.csv", _table(";", False), "cp1252", ";", False),
    "excel-unicode-text": ("a.txt", _table("\t", True), "utf-16", "\t", True),
    "tsv-decimal-comma": ("a.tsv", _table("\t", True), "utf-8", "\t", True),
    "headerless-semicolon-decimal-comma": ("a.csv", _table(";", True, header=None), "utf-8", ";", True),
    "old-mac-excel-cr-line-ends": ("a.csv", _table(",", False).replace("\r\n", "\r"), "utf-8", ",", False),
}


@pytest.mark.parametrize("name", FORMATS)
def test_text_saved_by_other_tools_reads_as_the_plain_csv(tmp_path, csv_engine, name):
    file_name, text, encoding, delimiter, comma = FORMATS[name]
    path = tmp_path / file_name
    path.write_bytes(text.encode(encoding))
    reader, table = _read(path)
    assert reader.engine == csv_engine
    assert (reader.text.delimiter, reader.text.decimal_comma) == (delimiter, comma)
    if "headerless" in name:
        assert not reader.named
    else:
        assert reader.columns == ["x1", "x2", "Température", "label"]
    np.testing.assert_array_equal(table, X)       # the same doubles, bit for bit
    assert np.signbit(table[1, 2]) == np.signbit(X[1, 2])


def test_training_from_a_decimal_comma_file_matches_the_plain_one(tmp_path, csv_engine):
    (tmp_path / "plain.csv").write_text(_table(",", False), encoding="utf-8")
    (tmp_path / "excel.csv").write_bytes(_table(";", True).encode("cp1252"))
    a = load_training_table(tmp_path / "plain.csv", "label")
    b = load_training_table(tmp_path / "excel.csv", "label")
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.features == b.features == ["x1", "x2", "Température"]


def test_fractional_labels_with_a_decimal_comma(tmp_path, csv_engine):
    (tmp_path / "p.csv").write_text("x;p\n1,5;0,25\n-2;1\n3;0\n", encoding="utf-8")
    t = load_training_table(tmp_path / "p.csv", "p")
    np.testing.assert_array_equal(t.y, [0.25, 1.0, 0.0])
    np.testing.assert_array_equal(t.X, [[1.5], [-2.0], [3.0]])


def test_a_point_in_a_decimal_comma_file_is_refused_not_guessed(tmp_path, csv_engine):
    # Excel writes a cell formatted with digit grouping as shown: 1.234 could be 1234.
    (tmp_path / "g.csv").write_text("x;y\n0,5;1\n1.234;2\n", encoding="utf-8")
    with open_table(tmp_path / "g.csv") as reader, pytest.raises(
            InputError, match=r"row 2 \(line 3\), column 'x': '1.234' is not a number "
                              r"\(this file writes decimals with ','"):
        list(reader.chunks(10, [0, 1]))
    # a '.' in a column that is not read is no problem
    (tmp_path / "t.csv").write_text("name;x\nJ. Doe;0,5\nA. N. Other;1,5\n", encoding="utf-8")
    with open_table(tmp_path / "t.csv") as reader:
        np.testing.assert_array_equal(np.concatenate(list(reader.chunks(10, [1]))), [[0.5], [1.5]])


def test_commas_stay_the_delimiter_when_semicolons_are_only_in_some_text(tmp_path, csv_engine):
    (tmp_path / "a.csv").write_text('note,x\n"a;b",1.5\nplain,2\n', encoding="utf-8")
    reader, table = _read(tmp_path / "a.csv", columns=[1])
    assert reader.text.delimiter == "," and not reader.text.decimal_comma
    np.testing.assert_array_equal(table, [[1.5], [2.0]])


def test_bytes_that_are_no_known_text_are_refused(tmp_path):
    # 0x81 and 0x8d are undefined in Windows-1252 and invalid UTF-8 here
    (tmp_path / "b.csv").write_bytes(b"x,y\n\x81\x8d,1\n")
    with pytest.raises(InputError, match=r"b.csv' is not text \(UTF-8, UTF-16"):
        open_table(tmp_path / "b.csv")


def test_a_decimal_comma_after_the_sampled_lines_is_named(tmp_path, csv_engine):
    rows = "".join(f"{i};{i}\n" for i in range(30))      # integers only in the sample
    (tmp_path / "late.csv").write_text("x;y\n" + rows + "2,5;1\n", encoding="utf-8")
    with open_table(tmp_path / "late.csv") as reader, pytest.raises(
            InputError, match=r"row 31 \(line 32\), column 'x': '2,5' is not a number "
                              r"\(a decimal comma, but none of the first 20 lines"):
        list(reader.chunks(8, [0, 1]))


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_text_that_stops_being_utf8_names_the_exact_line(tmp_path, csv_engine, newline):
    rows = "".join(f"{i},{i}{newline}" for i in range(12000)).encode()  # past the 64 KB sample
    (tmp_path / "mixed.csv").write_bytes(f"x,y{newline}".encode() + rows + b"caf\xe9,1\n")
    with open_table(tmp_path / "mixed.csv") as reader, pytest.raises(
            InputError, match=r"mixed.csv' line 12002: b'\\xe9' is not UTF-8 text"):
        list(reader.chunks(1000, [0, 1]))


def test_utf16_with_a_broken_character_names_the_line(tmp_path, csv_engine):
    text = "x\ty\r\n" + "".join(f"{i}\t{i}\r\n" for i in range(20000))
    data = text.encode("utf-16") + "7\t".encode("utf-16-le") + b"\x00\xd8" + "1\r\n".encode("utf-16-le")
    (tmp_path / "u.txt").write_bytes(data)                # a lone surrogate on line 20002
    with open_table(tmp_path / "u.txt") as reader:
        with pytest.raises(InputError, match=r"u.txt' line 20002: .* is not UTF-16 text"):
            list(reader.chunks(5000, [0, 1]))
        with pytest.raises(InputError, match=r"u.txt' line 20002: .* is not UTF-16 text"):
            reader.read_labels(1)


def test_missing_value_markers_of_other_tools_are_missing_values(tmp_path, csv_engine):
    (tmp_path / "m.csv").write_text("x,y,label\n1,#N/A,1\nNA,2, NULL\n3, N/A ,0\n4,5,NA\n",
                                    encoding="utf-8")
    with open_table(tmp_path / "m.csv") as reader:
        table = np.concatenate(list(reader.chunks(10, [0, 1])))
        assert reader.read_labels(2).tolist() == ["1", "", "0", ""]
    np.testing.assert_array_equal(np.isnan(table), [[0, 1], [1, 0], [0, 1], [0, 0]])
    np.testing.assert_array_equal(table[~np.isnan(table)], [1, 2, 3, 4, 5])
    # a computed error of Excel is not a missing value
    (tmp_path / "e.csv").write_text("x,y\n1,#DIV/0!\n", encoding="utf-8")
    with open_table(tmp_path / "e.csv") as reader, pytest.raises(
            InputError, match=r"column 'y': '#DIV/0!' is not a number"):
        list(reader.chunks(10, [0, 1]))


def test_the_index_column_pandas_writes_is_named_as_pandas_names_it_and_not_trained_on(
        tmp_path, csv_engine):
    # DataFrame.to_csv() writes its index as a first column with an empty header field
    (tmp_path / "pd.csv").write_text(",x1,x2,label\n0,0.5,1.5,1\n1,-2.0,0.25,0\n2,3.0,-1.0,1\n",
                                     encoding="utf-8")
    with open_table(tmp_path / "pd.csv") as reader:
        assert reader.columns == ["Unnamed: 0", "x1", "x2", "label"]
    t = load_training_table(tmp_path / "pd.csv", "label")
    assert t.features == ["x1", "x2"]
    np.testing.assert_array_equal(t.X, [[0.5, 1.5], [-2.0, 0.25], [3.0, -1.0]])
    # asked for by name, it is a feature like any other
    t = load_training_table(tmp_path / "pd.csv", "label", features=["Unnamed: 0", "x1"])
    np.testing.assert_array_equal(t.X[:, 0], [0, 1, 2])
    # a name that is already taken is still a repeated name, not a silent rename
    (tmp_path / "dup.csv").write_text("Unnamed: 1,,y\n1,2,3\n", encoding="utf-8")
    with pytest.raises(InputError, match="repeats a column name"):
        open_table(tmp_path / "dup.csv")


def test_empty_trailing_columns_excel_leaves_are_no_features(tmp_path, csv_engine):
    # cells once formatted, now empty: Excel writes their separators on every line
    (tmp_path / "t.csv").write_text("x1;x2;label;;\r\n1,5;2;1;;\r\n2;3;0;;\r\n4;1;1;;\r\n",
                                    encoding="utf-8")
    t = load_training_table(tmp_path / "t.csv", "label")
    assert t.features == ["x1", "x2"]
    np.testing.assert_array_equal(t.X, [[1.5, 2.0], [2.0, 3.0], [4.0, 1.0]])


@pytest.mark.parametrize("header", [True, False])
def test_excel_sep_hint_line_names_the_delimiter_and_is_no_row(tmp_path, csv_engine, header):
    head = "x|y|label\r\n" if header else ""
    # '|' is no delimiter the first lines would give: only the hint names it
    (tmp_path / "s.csv").write_text("sep=|\r\n" + head + "1,5|2|1\r\n\r\n2|0,25|0\r\n",
                                    encoding="utf-8")
    reader, table = _read(tmp_path / "s.csv", columns=[0, 1, 2], chunk_rows=1)
    assert (reader.text.delimiter, reader.text.decimal_comma, reader.named) == ("|", True, header)
    np.testing.assert_array_equal(table, [[1.5, 2.0, 1.0], [2.0, 0.25, 0.0]])
    with open_table(tmp_path / "s.csv") as reader:
        assert reader.read_labels(2).tolist() == ["1", "0"]
        assert reader.row_label(1) == f"row 2 (line {5 if header else 4})"
