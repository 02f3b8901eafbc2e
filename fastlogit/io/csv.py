"""Delimited text tables (.csv, .tsv, .txt), streamed in blocks of rows.

With pyarrow installed the file is parsed by ``pyarrow.csv.open_csv`` in
record batches (multi-threaded C++, a fraction of the cost of Python
parsing); without it, blocks of lines go through ``numpy.loadtxt``.  Both
engines read the same files the same way:

* a first line that is not all numbers is the header of column names; an
  empty one (the index column pandas' ``to_csv`` writes) is ``"Unnamed: i"``,
  as pandas names it, and is no feature unless named (``is_unnamed``);
* the text is read as Excel and other tools save it
  (:class:`fastlogit.io.text_format.TextFormat`: encoding, delimiter, decimal
  comma, Excel's ``sep=`` line);
* an empty field is a missing value (NaN), and so are the markers other tools
  write for one (MISSING: Excel's ``#N/A``, R's ``NA``, ``NULL`` from SQL
  exports); blank lines carry no row;
* a row with more or fewer fields than the header is an error naming its
  line (blank lines counted, as an editor counts them).

Errors are found fast and explained slowly: when an engine refuses a block,
the file is read again field by field (:meth:`CsvReader.first_problem`) to
name the exact line, column and value.
"""
from __future__ import annotations

import csv
import itertools
import warnings
from pathlib import Path

import numpy as np

from fastlogit.io.files import InputError
from fastlogit.io.table import TableReader, arrow_to_numpy, default_names, unnamed_column
from fastlogit.io.text_format import MISSING, TextFormat

__all__ = ["CsvReader", "have_pyarrow_csv"]


def have_pyarrow_csv() -> bool:
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def _is_blank(fields: list[str]) -> bool:
    return not fields or (len(fields) == 1 and not fields[0].strip())


class CsvReader(TableReader):
    """Delimited text (``.csv``, ``.tsv``, ``.txt``), read in blocks of rows.

    ``engine`` is ``"pyarrow"``, ``"numpy"`` or None (pyarrow when installed).
    """

    def __init__(self, path: Path, label: str, engine: str | None = None):
        self.path, self.label = path, label
        self.nbytes = path.stat().st_size
        self.n_rows = None
        if engine is None:
            engine = "pyarrow" if have_pyarrow_csv() else "numpy"
        if engine not in ("pyarrow", "numpy"):
            raise ValueError(f"engine must be 'pyarrow', 'numpy' or None; got {engine!r}")
        self.engine = engine
        self.text = TextFormat.of(path, label)
        try:
            with open(path, newline="", encoding=self.text.encoding) as fh:
                lines = csv.reader(fh, delimiter=self.delimiter)
                rows = (fields for fields in lines if not _is_blank(fields))
                if self.text.sep_hint:
                    next(rows)
                # Physical lines up to the hint, then up to the header (blank lines included).
                hint_lines = lines.line_num
                first = next(rows, None)
                header_lines = lines.line_num
        except UnicodeDecodeError:
            raise self.text.undecodable(path, label) from None
        except csv.Error as exc:
            raise InputError(f"{label}: {exc}") from None
        if first is None:
            raise InputError(f"{label} is empty: no header and no rows")
        try:
            [self.text.number(f) for f in first]
            self.named, self.columns = False, default_names(len(first))
            self.header_lines = hint_lines
        except ValueError:
            names = [f.strip() or unnamed_column(i) for i, f in enumerate(first)]
            if len(set(names)) != len(names):
                raise InputError(f"{label}: the header line repeats a column name") from None
            self.named, self.columns = True, names
            self.header_lines = header_lines
        # Lines with text before the first row: Excel's "sep=" hint, the header.
        self.preamble = int(self.text.sep_hint) + int(self.named)

    @property
    def delimiter(self) -> str:
        return self.text.delimiter

    # -- the exact (slow) path: line numbers, fields, values ---------------

    def _records(self):
        """(line number, fields) of every data row, blank lines skipped."""
        with open(self.path, newline="", encoding=self.text.encoding) as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            preamble_left = self.preamble
            try:
                for fields in reader:
                    if _is_blank(fields):
                        continue
                    if preamble_left:
                        preamble_left -= 1
                        continue
                    yield reader.line_num, fields
            except UnicodeDecodeError:
                raise self.text.undecodable(self.path, self.label) from None
            except csv.Error as exc:
                raise InputError(f"{self.label} line {reader.line_num}: {exc}") from None

    def row_label(self, row):
        # Read again up to that row: only ever on the way to an error message.
        for i, (line, _) in enumerate(self._records()):
            if i == row:
                return f"row {row + 1} (line {line})"
        return f"row {row + 1}"

    def first_problem(self, columns) -> InputError | None:
        """The first row with a wrong field count or a non-number among ``columns``."""
        n_fields = len(self.columns)
        for row, (line, fields) in enumerate(self._records()):
            where = f"{self.label} row {row + 1} (line {line})"
            if len(fields) != n_fields:
                return InputError(f"{where} has {len(fields)} fields; expected {n_fields} "
                                  f"({', '.join(self.columns[:20])}"
                                  f"{', ...' if n_fields > 20 else ''})")
            for col in columns:
                try:
                    self.text.number(fields[col])
                except ValueError:
                    return InputError(f"{where}, column {self.columns[col]!r}: "
                                      f"{self.text.not_a_number(fields[col])}")
        return None

    def _fail(self, columns, detail: str) -> InputError:
        return self.first_problem(columns) or InputError(f"{self.label} cannot be read ({detail})")

    def read_labels(self, column):
        if self.engine == "pyarrow":
            import pyarrow as pa
            import pyarrow.csv as pc

            name = self.columns[column]
            try:
                table = pc.read_csv(
                    self.path,
                    read_options=pc.ReadOptions(column_names=self.columns,
                                                skip_rows=self.header_lines,
                                                encoding=self.text.arrow_encoding),
                    parse_options=pc.ParseOptions(delimiter=self.delimiter),
                    convert_options=pc.ConvertOptions(column_types={name: pa.string()},
                                                      include_columns=[name]))
            except pa.ArrowException as exc:
                raise self._fail([], " ".join(str(exc).split())[:200]) from None
            except UnicodeDecodeError:     # pyarrow transcodes other encodings with Python's codecs
                raise self.text.undecodable(self.path, self.label) from None
            values = table.column(0).to_numpy(zero_copy_only=False)
        else:
            values = np.array([fields[column] if column < len(fields) else ""
                               for _, fields in self._records()], dtype=object)
            problem = self.first_problem([])
            if problem is not None:
                raise problem
        return np.array([self.text.label_text(v) for v in values], dtype=object)

    # -- blocks --------------------------------------------------------------

    def chunks(self, chunk_rows, columns):
        columns = list(columns)
        if self.engine == "pyarrow":
            return self._arrow_chunks(chunk_rows, columns)
        return self._numpy_chunks(chunk_rows, columns)

    def _arrow_chunks(self, chunk_rows, columns):
        import pyarrow as pa
        import pyarrow.csv as pc

        names = [self.columns[j] for j in columns]
        # pyarrow parses blocks of text in parallel and reads a few ahead:
        # blocks of 1 MB (its default) keep that read-ahead small, and the
        # record batches are copied into blocks of chunk_rows rows here.
        read = pc.ReadOptions(column_names=self.columns, skip_rows=self.header_lines,
                              block_size=1 << 20, encoding=self.text.arrow_encoding)
        parse = pc.ParseOptions(delimiter=self.delimiter)
        convert = pc.ConvertOptions(column_types={c: pa.float64() for c in set(names)},
                                    decimal_point="," if self.text.decimal_comma else ".",
                                    include_columns=list(dict.fromkeys(names)),
                                    null_values=list(MISSING), strings_can_be_null=True,
                                    quoted_strings_can_be_null=True)
        out = np.empty((chunk_rows, len(names)), dtype=np.float64)
        filled = yielded = 0
        try:
            reader = pc.open_csv(self.path, read_options=read, parse_options=parse,
                                 convert_options=convert)
            for batch in reader:
                k, start = batch.num_rows, 0
                cols = []
                for name in names:  # a missing value (null) becomes NaN
                    cols.append(arrow_to_numpy(batch.column(name), np.float64))
                while start < k:
                    take = min(k - start, chunk_rows - filled)
                    for j, values in enumerate(cols):
                        out[filled:filled + take, j] = values[start:start + take]
                    filled += take
                    start += take
                    if filled == chunk_rows:
                        yield out
                        yielded += filled
                        out = np.empty((chunk_rows, len(names)), dtype=np.float64)
                        filled = 0
            if filled:
                yield out[:filled]
            return
        except pa.ArrowException as exc:
            detail = " ".join(str(exc).split())[:200]
        except UnicodeDecodeError:         # pyarrow transcodes other encodings with Python's codecs
            raise self.text.undecodable(self.path, self.label) from None
        # pyarrow refused the text.  A real problem is named exactly; text that
        # only pyarrow refuses (a line of spaces, say) is read on by NumPy from
        # the first row not yet handed out.
        problem = self.first_problem(columns)
        if problem is not None:
            raise problem
        yield from self._numpy_chunks(chunk_rows, columns, skip=yielded, detail=detail)

    def _numpy_chunks(self, chunk_rows, columns, skip: int = 0, detail: str = ""):
        """Blocks parsed by NumPy, the first ``skip`` data rows left out."""
        n_fields = len(self.columns)
        with open(self.path, newline="", encoding=self.text.encoding) as fh:
            preamble_left = self.preamble
            while True:
                try:
                    lines = list(itertools.islice(fh, chunk_rows))
                except UnicodeDecodeError:
                    raise self.text.undecodable(self.path, self.label) from None
                if not lines:
                    return
                # Blank lines (a trailing one, say) carry no row.
                lines = [line for line in lines if line.strip()]
                if preamble_left:
                    take = min(preamble_left, len(lines))
                    lines, preamble_left = lines[take:], preamble_left - take
                if skip:
                    lines, skip = lines[skip:], max(skip - len(lines), 0)
                if not lines:
                    continue
                try:
                    if self.text.decimal_comma:
                        # loadtxt knows only '.': a block with a '.' anywhere goes field by
                        # field (which refuses a '.' in a number), the others are rewritten.
                        if any("." in line for line in lines):
                            raise ValueError("a '.' in a file with decimal commas")
                        numeric = [line.replace(",", ".") for line in lines]
                    else:
                        numeric = lines
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        # Every field is parsed, used or not, so that a row
                        # with a field too many or too few cannot pass.
                        block = np.loadtxt(numeric, delimiter=self.delimiter, quotechar='"',
                                           ndmin=2, dtype=np.float64, comments=None)
                    if block.shape != (len(lines), n_fields):
                        raise ValueError("field count")
                    block = block[:, columns]
                except ValueError as exc:
                    # Empty fields (missing values) or a bad row: field by field.
                    block = self._parse_lines(lines, columns)
                    if block is None:
                        raise self._fail(columns, detail or str(exc)) from None
                yield np.ascontiguousarray(block)

    def _parse_lines(self, lines, columns) -> np.ndarray | None:
        out = np.empty((len(lines), len(columns)), dtype=np.float64)
        n_fields = len(self.columns)
        for i, fields in enumerate(csv.reader(lines, delimiter=self.delimiter)):
            if i >= len(lines) or len(fields) != n_fields:
                return None
            try:
                out[i] = [self.text.number(fields[col]) for col in columns]
            except ValueError:
                return None
        return out
