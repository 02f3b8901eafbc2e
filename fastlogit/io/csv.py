"""CSV / TSV tables, streamed in blocks of rows.

With pyarrow installed the file is parsed by ``pyarrow.csv.open_csv`` in
record batches (multi-threaded C++, a fraction of the cost of Python
parsing); without it, blocks of lines go through ``numpy.loadtxt``.  Both
engines read the same files the same way:

* a first line that is not all numbers is the header of column names;
* a UTF-8 byte-order mark (Excel's "CSV UTF-8") is not part of the data;
* an empty field is a missing value (NaN); blank lines carry no row;
* a row with more or fewer fields than the header is an error naming its
  line (blank lines counted, as an editor counts them).

Errors are found fast and explained slowly: when an engine refuses a block,
the file is read again field by field (:meth:`CsvReader.first_problem`) to
name the exact line, column and value.
"""
from __future__ import annotations

import csv
import itertools
import math
import warnings
from pathlib import Path

import numpy as np

from fastlogit.io.files import InputError, suffix_of
from fastlogit.io.table import TableReader, arrow_to_numpy, default_names

__all__ = ["CsvReader", "have_pyarrow_csv"]

# utf-8-sig reads plain UTF-8 too, and drops a leading byte-order mark.
ENCODING = "utf-8-sig"


def have_pyarrow_csv() -> bool:
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def _parse_number(text: str) -> float:
    """A CSV field as a float; an empty field is a missing value (NaN)."""
    text = text.strip()
    if not text:
        return math.nan
    return float(text)


def _is_blank(fields: list[str]) -> bool:
    return not fields or (len(fields) == 1 and not fields[0].strip())


class CsvReader(TableReader):
    """Comma- (or tab-) separated text, read in blocks of rows.

    ``engine`` is ``"pyarrow"``, ``"numpy"`` or None (pyarrow when installed).
    """

    def __init__(self, path: Path, label: str, engine: str | None = None):
        self.path, self.label = path, label
        self.nbytes = path.stat().st_size
        self.n_rows = None
        self.delimiter = "\t" if suffix_of(path) == ".tsv" else ","
        if engine is None:
            engine = "pyarrow" if have_pyarrow_csv() else "numpy"
        if engine not in ("pyarrow", "numpy"):
            raise ValueError(f"engine must be 'pyarrow', 'numpy' or None; got {engine!r}")
        self.engine = engine
        try:
            with open(path, newline="", encoding=ENCODING) as fh:
                lines = csv.reader(fh, delimiter=self.delimiter)
                first = next((fields for fields in lines if not _is_blank(fields)), None)
                # Physical lines up to the header (blank lines before it included).
                header_lines = lines.line_num
        except UnicodeDecodeError:
            raise InputError(f"{label} is not a text (UTF-8) CSV file") from None
        except csv.Error as exc:
            raise InputError(f"{label}: {exc}") from None
        if first is None:
            raise InputError(f"{label} is empty: no header and no rows")
        try:
            [_parse_number(f) for f in first]
            self.named, self.columns = False, default_names(len(first))
            self.header_lines = 0
        except ValueError:
            names = [f.strip() for f in first]
            if any(not n for n in names):
                raise InputError(f"{label}: the header line has an empty column name") from None
            if len(set(names)) != len(names):
                raise InputError(f"{label}: the header line repeats a column name") from None
            self.named, self.columns = True, names
            self.header_lines = header_lines

    # -- the exact (slow) path: line numbers, fields, values ---------------

    def _records(self):
        """(line number, fields) of every data row, blank lines skipped."""
        with open(self.path, newline="", encoding=ENCODING) as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            header_left = self.named
            try:
                for fields in reader:
                    if _is_blank(fields):
                        continue
                    if header_left:
                        header_left = False
                        continue
                    yield reader.line_num, fields
            except UnicodeDecodeError:
                raise InputError(f"{self.label} near line {reader.line_num + 1}: "
                                 f"not UTF-8 text") from None
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
                    _parse_number(fields[col])
                except ValueError:
                    return InputError(f"{where}, column {self.columns[col]!r}: "
                                      f"{fields[col].strip()[:40]!r} is not a number")
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
                    read_options=pc.ReadOptions(column_names=self.columns, skip_rows=self.header_lines),
                    parse_options=pc.ParseOptions(delimiter=self.delimiter),
                    convert_options=pc.ConvertOptions(column_types={name: pa.string()},
                                                      include_columns=[name]))
            except pa.ArrowException as exc:
                raise self._fail([], " ".join(str(exc).split())[:200]) from None
            values = table.column(0).to_numpy(zero_copy_only=False)
        else:
            values = np.array([fields[column] if column < len(fields) else ""
                               for _, fields in self._records()], dtype=object)
            problem = self.first_problem([])
            if problem is not None:
                raise problem
        return np.array([v.strip() for v in values], dtype=object)

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
                              block_size=1 << 20, encoding="utf8")
        parse = pc.ParseOptions(delimiter=self.delimiter)
        convert = pc.ConvertOptions(column_types={c: pa.float64() for c in set(names)},
                                    include_columns=list(dict.fromkeys(names)),
                                    null_values=[""], strings_can_be_null=True,
                                    quoted_strings_can_be_null=True)
        out = np.empty((chunk_rows, len(names)), dtype=np.float64)
        filled = yielded = 0
        try:
            reader = pc.open_csv(self.path, read_options=read, parse_options=parse,
                                 convert_options=convert)
            for batch in reader:
                k, start = batch.num_rows, 0
                cols = []
                for name in names:  # an empty field is a missing value (NaN)
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
        with open(self.path, newline="", encoding=ENCODING) as fh:
            header_left = self.named
            while True:
                try:
                    lines = list(itertools.islice(fh, chunk_rows))
                except UnicodeDecodeError:
                    raise self._fail(columns, "not UTF-8 text") from None
                if not lines:
                    return
                # Blank lines (a trailing one, say) carry no row.
                lines = [line for line in lines if line.strip()]
                if header_left and lines:
                    lines, header_left = lines[1:], False
                if skip:
                    lines, skip = lines[skip:], max(skip - len(lines), 0)
                if not lines:
                    continue
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        # Every field is parsed, used or not, so that a row
                        # with a field too many or too few cannot pass.
                        block = np.loadtxt(lines, delimiter=self.delimiter, quotechar='"',
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
                out[i] = [_parse_number(fields[col]) for col in columns]
            except ValueError:
                return None
        return out
