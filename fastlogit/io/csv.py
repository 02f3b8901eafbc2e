"""Delimited text tables (.csv, .tsv, .txt), streamed in blocks of rows.

With pyarrow installed the file is parsed by ``pyarrow.csv.open_csv`` in
record batches (multi-threaded C++, a fraction of the cost of Python
parsing); without it, blocks of lines go through ``numpy.loadtxt``.  Both
engines read the same files the same way:

* a first line that is not all numbers is the header of column names; an
  empty one (the index column pandas' ``to_csv`` writes) is ``"Unnamed: i"``,
  as pandas names it, and is no feature unless named (``is_unnamed``);
* the text is read as Excel and other tools save it (:class:`TextFormat`):
  UTF-8 with or without a byte-order mark (Excel's "CSV UTF-8"), UTF-16 with
  one (Excel's "Unicode Text"), or Windows-1252 (Excel's "CSV (Comma
  delimited)" on Western-European Windows) when the start of the file is not
  UTF-8; fields separated by ``;``, tab or ``,`` (found from the first lines;
  ``.tsv`` is always tab; a first line ``sep=X``, which Excel writes and
  honours, names it), and with ``;`` or tab, a decimal comma (``0,5``);
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

import codecs
import csv
import itertools
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastlogit.io.files import InputError, suffix_of
from fastlogit.io.table import TableReader, arrow_to_numpy, default_names, unnamed_column

__all__ = ["CsvReader", "TextFormat", "have_pyarrow_csv"]

# utf-8-sig reads plain UTF-8 too, and drops a leading byte-order mark.
UTF8 = "utf-8-sig"
# How much of the file decides its encoding, and how many lines its delimiter.
SAMPLE_BYTES = 1 << 16
SAMPLE_LINES = 20
# Fields that mean "no value" (read as NaN, then handled as any NaN): what Excel (#N/A),
# R and pandas (NA), and SQL exports (NULL) write for a missing value.  Excel's other error
# values (#DIV/0!, #VALUE!) are not missing values but errors, and are reported as such.
MISSING = ("", "NA", "N/A", "#N/A", "NULL", "null")
_LINE_END = re.compile(r"\r\n|\r|\n")   # as the csv module counts lines
# A number written with a decimal comma: 0,5  -1,25e-3  ,5
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d*,\d+(?:[eE][+-]?\d+)?\s*$")


def have_pyarrow_csv() -> bool:
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def _is_blank(fields: list[str]) -> bool:
    return not fields or (len(fields) == 1 and not fields[0].strip())


def _sniff_encoding(path: Path, label: str) -> str:
    """UTF-16 when the file starts with its byte-order mark, else UTF-8 when its first
    SAMPLE_BYTES decode as UTF-8, else Windows-1252 when they decode as that."""
    with open(path, "rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        # final=False: a character cut by the end of the sample is not an error
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < SAMPLE_BYTES)
        return UTF8
    except UnicodeDecodeError:
        pass
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        raise InputError(f"{label} is not text (UTF-8, UTF-16 with a byte-order mark, "
                         f"or Windows-1252)") from None


def _sniff_delimiter(lines: list[str]) -> str:
    """';', tab or ',': the first that splits every sampled line into the same number (> 1)
    of fields, ',' if none does (one column).  ';' first: Excel separates fields with ';'
    where the decimal mark is ',' (0,5;1,25 splits evenly at ',' too), and a comma-separated
    file rarely has the same number of ';' on every line, header included."""
    for delimiter in (";", "\t", ","):
        counts = {len(fields) for fields in csv.reader(lines, delimiter=delimiter)}
        if len(counts) == 1 and counts.pop() > 1:
            return delimiter
    return ","


@dataclass(frozen=True)
class TextFormat:
    """How a delimited text file was saved: the one place its fields are split and parsed."""

    encoding: str          # a Python codec name
    delimiter: str
    decimal_comma: bool    # numbers are written 0,5 (fields separated by ';' or tab)
    sep_hint: bool = False  # the first line is Excel's "sep=X", which names the delimiter

    @classmethod
    def of(cls, path: Path, label: str) -> "TextFormat":
        encoding = _sniff_encoding(path, label)
        with open(path, newline="", encoding=encoding, errors="replace") as fh:
            lines = [line for line in itertools.islice(fh, 10 * SAMPLE_LINES) if line.strip()]
        hint = lines[0].rstrip("\r\n") if lines else ""
        sep_hint = len(hint) == 5 and hint.startswith("sep=")
        lines = lines[1:SAMPLE_LINES + 1] if sep_hint else lines[:SAMPLE_LINES]
        if sep_hint:
            delimiter = hint[4]
        else:
            delimiter = "\t" if suffix_of(path) == ".tsv" else _sniff_delimiter(lines)
        decimal_comma = delimiter != "," and any(
            _DECIMAL_COMMA.match(field) for fields in csv.reader(lines, delimiter=delimiter)
            for field in fields)
        return cls(encoding, delimiter, decimal_comma, sep_hint)

    @property
    def encoding_name(self) -> str:
        return {UTF8: "UTF-8", "utf-16": "UTF-16", "cp1252": "Windows-1252"}[self.encoding]

    @property
    def arrow_encoding(self) -> str:
        return "utf8" if self.encoding == UTF8 else self.encoding

    def undecodable(self, path: Path, label: str) -> InputError:
        """The error for a file that stops being text in its encoding past the sample that
        chose it: the exact line and bytes (the csv module reads ahead, so the line it had
        reached is not the one).  Decodes the file again from the start; only ever on the
        way to an error."""
        decoder = codecs.getincrementaldecoder(self.encoding)()
        ends, after_cr = 0, False           # line ends so far; did the text end in '\r'?

        def count(text: str) -> None:
            nonlocal ends, after_cr
            ends += len(_LINE_END.findall(text)) - (after_cr and text.startswith("\n"))
            after_cr = text.endswith("\r") if text else after_cr

        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(SAMPLE_BYTES), b""):
                pending = len(getattr(decoder, "buffer", b""))
                try:
                    count(decoder.decode(chunk))
                except UnicodeDecodeError as exc:
                    count(decoder.decode(chunk[:max(exc.start - pending, 0)]))
                    return InputError(f"{label} line {ends + 1}: {exc.object[exc.start:exc.end]!r} "
                                      f"is not {self.encoding_name} text (the file's start is; "
                                      f"save the whole file in one encoding)")
        return InputError(f"{label} is not {self.encoding_name} text")

    def number(self, text: str) -> float:
        """A field as a float; an empty field or a MISSING marker is a missing value (NaN).
        With a decimal comma a '.' is refused, never guessed: Excel writes digit grouping
        (1.234,5) as shown."""
        text = text.strip()
        if text in MISSING:
            return math.nan
        if self.decimal_comma:
            if "." in text:
                raise ValueError(text)
            text = text.replace(",", ".")
        return float(text)

    def label_text(self, text: str) -> str:
        """A label as text: a MISSING marker as "" (no label), a decimal-comma number
        rewritten with '.' (0,5 -> 0.5)."""
        text = text.strip()
        if text in MISSING:
            return ""
        if self.decimal_comma and _DECIMAL_COMMA.match(text):
            return text.replace(",", ".")
        return text

    def not_a_number(self, text: str) -> str:
        why = f"{text.strip()[:40]!r} is not a number"
        if self.decimal_comma and "." in text:
            why += (" (this file writes decimals with ',': a '.' is read neither as a decimal "
                    "mark nor as digit grouping; save the numbers without grouping)")
        elif self.delimiter != "," and _DECIMAL_COMMA.match(text):
            why += (f" (a decimal comma, but none of the first {SAMPLE_LINES} lines has one, "
                    f"so the file was taken to write decimals with '.')")
        return why


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
        self.delimiter = self.text.delimiter
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
