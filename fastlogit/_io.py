"""Chunked table readers and atomic writers for the command line.

Readers stream a table of numbers in blocks of rows so that memory stays
bounded by the block size, not the file size:

* ``.npy``: each block is memory-mapped on its own and unmapped when the block
  is done (a plain 2-D array, or a structured array whose field names are the
  column names);
* ``.npz``: the archive's members are read as streams (stored or
  compressed): either one array used like a ``.npy``, or one 1-D array per
  column named by its key;
* ``.csv`` / ``.tsv``: text in blocks of lines, parsed by ``numpy.loadtxt``;
  a first line that is not all numbers is the header of column names;
* ``.parquet``: record batches from pyarrow (the ``parquet`` extra).

Columns of a table without names are called ``"0"``, ``"1"``, ...

Writers put probabilities (and optionally 0/1 labels) into ``.npy``, ``.csv``
or ``.parquet``.  Every writer writes to a temporary file in the output's
folder and renames it over the output only on success (:func:`atomic_output`):
a failure or Ctrl-C leaves neither a partial output nor a temporary file.
"""
from __future__ import annotations

import contextlib
import csv
import itertools
import math
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

__all__ = [
    "InputError",
    "OutputError",
    "open_table",
    "open_writer",
    "atomic_output",
    "check_output_path",
    "READ_SUFFIXES",
    "WRITE_SUFFIXES",
]

READ_SUFFIXES = (".npy", ".npz", ".csv", ".tsv", ".parquet", ".pq")
WRITE_SUFFIXES = (".npy", ".csv", ".parquet", ".pq")


class InputError(ValueError):
    """An input table that is missing, unreadable, malformed or not numeric."""


class OutputError(ValueError):
    """An output path that cannot be written (missing folder, unknown format...)."""


def _need_pyarrow(what: str, error: type = None):
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet as pq
    except ImportError:
        raise (error or InputError)(
            f"{what} needs pyarrow; install it with: pip install 'fastlogit[parquet]'") from None
    return pq


def _suffix(path: Path) -> str:
    return path.suffix.lower()


# ---------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------

class TableReader:
    """A table of numbers read in blocks of rows.

    Attributes
    ----------
    path : Path
    label : str
        How the file is named in messages (``INPUT 'x.csv'``).
    columns : list of str
        Column names (``"0"``, ``"1"``, ... when the file has none).
    named : bool
        Whether the names come from the file.
    n_rows : int or None
        Number of rows when known without reading the file (not for CSV).
    nbytes : int
        Size of the input on disk.
    """

    path: Path
    label: str
    columns: list[str]
    named: bool
    n_rows: int | None
    nbytes: int

    def chunks(self, chunk_rows: int, columns: Sequence[int]) -> Iterator[np.ndarray]:
        """Yield blocks of at most ``chunk_rows`` rows of the given columns.

        Each block is a C-contiguous 2-D array of shape (k, len(columns)),
        float64 or float32 (float32 only when the file stores float32), valid
        until the next block is requested.
        """
        raise NotImplementedError

    def row_label(self, row: int) -> str:
        """How to name 0-based data row ``row`` in a message."""
        return f"row {row + 1}"

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _default_names(n: int) -> list[str]:
    return [str(i) for i in range(n)]


def _check_numeric_dtype(dtype: np.dtype, where: str) -> None:
    if dtype.kind not in "biuf" or (dtype.kind == "f" and dtype.itemsize > 8):
        raise InputError(f"{where} holds {dtype} values; expected numbers (float, int or bool)")


def _as_block(block: np.ndarray) -> np.ndarray:
    """A 2-D block as C-contiguous float32/float64 (float32 kept, else float64)."""
    target = np.float32 if block.dtype == np.float32 else np.float64
    return np.ascontiguousarray(block, dtype=np.dtype(target).newbyteorder("="))


def _read_npy_header(fh, where: str):
    """(shape, fortran_order, dtype) of the .npy stream ``fh``, positioned after the header."""
    from numpy.lib import format as npy_format

    try:
        version = npy_format.read_magic(fh)
        if version == (1, 0):
            return npy_format.read_array_header_1_0(fh)
        if version == (2, 0):
            return npy_format.read_array_header_2_0(fh)
        # Version 3 only changes the header's encoding; the private reader handles all.
        return npy_format._read_array_header(fh, version)  # pragma: no cover
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{where} is not a valid .npy array ({exc})") from None


class NpyReader(TableReader):
    """A .npy file; every block is its own memory map, released when done."""

    def __init__(self, path: Path, label: str):
        self.path, self.label = path, label
        self.nbytes = path.stat().st_size
        with open(path, "rb") as fh:
            shape, fortran, dtype = _read_npy_header(fh, f"{label}")
            self._offset = fh.tell()
        self._dtype = dtype
        if dtype.names:  # structured: the fields are named columns
            if len(shape) != 1:
                raise InputError(f"{label} holds a structured array of shape {shape}; expected 1-D")
            for name in dtype.names:
                _check_numeric_dtype(dtype.fields[name][0], f"{label} column {name!r}")
            self.columns, self.named = list(dtype.names), True
            self._shape = (shape[0],)
        else:
            _check_numeric_dtype(dtype, label)
            if len(shape) == 1:
                shape = (shape[0], 1)
            if len(shape) != 2:
                raise InputError(f"{label} holds an array of shape {shape}; expected a 2-D table "
                                 f"(m rows, n columns)")
            self.columns, self.named = _default_names(shape[1]), False
            self._shape = shape
        self._fortran = fortran and len(self._shape) == 2 and self._shape[1] > 1
        self.n_rows = self._shape[0]
        expected = self._offset + int(np.prod(self._shape)) * dtype.itemsize
        if self.nbytes < expected:
            raise InputError(f"{label} is truncated: its header promises {expected} bytes, "
                             f"the file has {self.nbytes}")

    def _map_rows(self, start: int, stop: int) -> np.ndarray:
        row_bytes = self._dtype.itemsize * (1 if self._dtype.names else self._shape[1])
        shape = (stop - start,) if self._dtype.names else (stop - start, self._shape[1])
        return np.memmap(self.path, dtype=self._dtype, mode="r",
                         offset=self._offset + start * row_bytes, shape=shape)

    def chunks(self, chunk_rows, columns):
        columns = list(columns)
        m = self.n_rows
        if self._fortran:
            # Rows of a Fortran-ordered file are strided across the whole file:
            # map it once; blocks are copied out row-major.
            whole = np.load(self.path, mmap_mode="r")
            for start in range(0, m, chunk_rows):
                yield _as_block(whole[start:start + chunk_rows][:, columns])
            return
        all_columns = columns == list(range(len(self.columns)))
        for start in range(0, m, chunk_rows):
            block = self._map_rows(start, min(start + chunk_rows, m))
            if self._dtype.names:
                names = [self.columns[j] for j in columns]
                out = np.empty((len(block), len(names)), dtype=np.float64)
                for j, name in enumerate(names):
                    out[:, j] = block[name]
                yield out
            elif all_columns:
                yield _as_block(block)
            else:
                yield _as_block(block[:, columns])
            # Dropping the last reference unmaps the block: resident memory
            # stays at one block, whatever the file size.
            del block


class _NpzMember:
    """One .npy inside a zip archive, read as a stream."""

    def __init__(self, archive: zipfile.ZipFile, name: str, where: str):
        self.name, self.where = name, where
        self.stream = archive.open(name)
        self.shape, self.fortran, self.dtype = _read_npy_header(self.stream, where)

    def read_rows(self, k: int, row_items: int) -> np.ndarray:
        nbytes = k * row_items * self.dtype.itemsize
        data = self.stream.read(nbytes)
        if len(data) != nbytes:
            raise InputError(f"{self.where} is truncated")
        return np.frombuffer(data, dtype=self.dtype)


class NpzReader(TableReader):
    """A .npz archive: one 2-D array, or one 1-D array per named column."""

    def __init__(self, path: Path, label: str):
        self.path, self.label = path, label
        self.nbytes = path.stat().st_size
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"{label} is not a valid .npz archive ({exc})") from None
        names = [n for n in self._zip.namelist() if n.endswith(".npy")]
        if not names:
            raise InputError(f"{label} holds no arrays")
        self._members = [_NpzMember(self._zip, n, f"{label} (array {n[:-4]!r})") for n in names]
        self._member_names = names
        if len(names) == 1:
            member = self._members[0]
            _check_numeric_dtype(member.dtype, label)
            shape = member.shape if len(member.shape) == 2 else (member.shape[0], 1) \
                if len(member.shape) == 1 else member.shape
            if len(shape) != 2:
                raise InputError(f"{label} holds an array of shape {member.shape}; expected 2-D")
            self._shape = shape
            self.columns, self.named = _default_names(shape[1]), False
            self.n_rows = shape[0]
            self._table = True
        else:
            lengths = set()
            for member in self._members:
                key = member.name[:-4]
                _check_numeric_dtype(member.dtype, f"{label} column {key!r}")
                if len(member.shape) != 1:
                    raise InputError(
                        f"{label} holds several arrays, so each must be one 1-D column; "
                        f"{key!r} has shape {member.shape}")
                lengths.add(member.shape[0])
            if len(lengths) != 1:
                raise InputError(f"{label}: the column arrays have different lengths {sorted(lengths)}")
            self.columns, self.named = [n[:-4] for n in names], True
            self.n_rows = lengths.pop()
            self._table = False
        # Re-open the streams in chunks(): headers were consumed for inspection.
        for member in self._members:
            member.stream.close()

    def chunks(self, chunk_rows, columns):
        columns = list(columns)
        m = self.n_rows
        where = self.label
        if self._table:
            member = _NpzMember(self._zip, self._member_names[0], where)
            try:
                n = self._shape[1]
                if member.fortran and n > 1:
                    whole = np.asarray(member.read_rows(m, n)).reshape(self._shape, order="F")
                    for start in range(0, m, chunk_rows):
                        yield _as_block(whole[start:start + chunk_rows][:, columns])
                    return
                for start in range(0, m, chunk_rows):
                    k = min(chunk_rows, m - start)
                    yield _as_block(member.read_rows(k, n).reshape(k, n)[:, columns])
            finally:
                member.stream.close()
            return
        members = [_NpzMember(self._zip, self._member_names[j], where) for j in columns]
        try:
            for start in range(0, m, chunk_rows):
                k = min(chunk_rows, m - start)
                out = np.empty((k, len(members)), dtype=np.float64)
                for j, member in enumerate(members):
                    out[:, j] = member.read_rows(k, 1)
                yield out
        finally:
            for member in members:
                member.stream.close()

    def close(self):
        self._zip.close()


def _parse_number(text: str) -> float:
    """A CSV field as a float; an empty field is a missing value (NaN)."""
    text = text.strip()
    if not text:
        return math.nan
    return float(text)


class CsvReader(TableReader):
    """Comma- (or tab-) separated text, read in blocks of lines."""

    def __init__(self, path: Path, label: str):
        self.path, self.label = path, label
        self.nbytes = path.stat().st_size
        self.n_rows = None
        self._delimiter = "\t" if _suffix(path) == ".tsv" else ","
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                first = fh.readline()
        except UnicodeDecodeError:
            raise InputError(f"{label} is not a text (UTF-8) CSV file") from None
        if not first.strip():
            raise InputError(f"{label} is empty: no header and no rows")
        fields = next(csv.reader([first], delimiter=self._delimiter))
        try:
            [float(f) for f in fields]
            self.named, self.columns = False, _default_names(len(fields))
        except ValueError:
            names = [f.strip() for f in fields]
            if any(not n for n in names):
                raise InputError(f"{label}: the header line has an empty column name") from None
            if len(set(names)) != len(names):
                raise InputError(f"{label}: the header line repeats a column name") from None
            self.named, self.columns = True, names

    def row_label(self, row):
        # Data rows are lines; the header is line 1 when there is one.
        return f"row {row + 1} (line {row + 1 + self.named})"

    def _slow_parse(self, lines: list[str], columns: list[int], first_row: int) -> np.ndarray:
        """Parse a block field by field: slower, but names the first bad value exactly."""
        out = np.empty((len(lines), len(columns)), dtype=np.float64)
        n_fields = len(self.columns)
        for i, fields in enumerate(csv.reader(lines, delimiter=self._delimiter)):
            where = f"{self.label} {self.row_label(first_row + i)}"
            if len(fields) != n_fields:
                raise InputError(f"{where} has {len(fields)} fields; expected {n_fields} "
                                 f"({', '.join(self.columns)})")
            for j, col in enumerate(columns):
                try:
                    out[i, j] = _parse_number(fields[col])
                except ValueError:
                    raise InputError(f"{where}, column {self.columns[col]!r}: "
                                     f"{fields[col].strip()[:40]!r} is not a number") from None
        return out

    def chunks(self, chunk_rows, columns):
        columns = list(columns)
        with open(self.path, newline="", encoding="utf-8") as fh:
            if self.named:
                fh.readline()
            row = 0
            while True:
                try:
                    lines = list(itertools.islice(fh, chunk_rows))
                except UnicodeDecodeError:
                    raise InputError(f"{self.label} near {self.row_label(row)}: "
                                     f"not UTF-8 text") from None
                # Blank lines (a trailing one, say) carry no row.
                if any(not line.strip() for line in lines):
                    lines = [line for line in lines if line.strip()]
                if not lines:
                    return
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        block = np.loadtxt(lines, delimiter=self._delimiter, quotechar='"',
                                           usecols=columns, ndmin=2, dtype=np.float64,
                                           comments=None)
                    if block.shape[0] != len(lines):
                        raise ValueError("row count")
                except ValueError:
                    block = self._slow_parse(lines, columns, row)
                row += len(lines)
                yield block


class ParquetReader(TableReader):
    """A Parquet file, read in record batches."""

    def __init__(self, path: Path, label: str):
        pq = _need_pyarrow(f"reading {label}")
        import pyarrow as pa

        self.path, self.label = path, label
        self.nbytes = path.stat().st_size
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{label} is not a valid Parquet file ({exc})") from None
        schema = self._file.schema_arrow
        self.columns, self.named = list(schema.names), True
        self.n_rows = self._file.metadata.num_rows
        self._types = {f.name: f.type for f in schema}

    def chunks(self, chunk_rows, columns):
        import pyarrow as pa

        names = [self.columns[j] for j in columns]
        for name in names:
            t = self._types[name]
            if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
                    or pa.types.is_decimal(t) or pa.types.is_null(t)):
                raise InputError(f"{self.label} column {name!r} holds {t} values; expected numbers")
        try:
            for batch in self._file.iter_batches(batch_size=chunk_rows, columns=names):
                out = np.empty((batch.num_rows, len(names)), dtype=np.float64)
                for j in range(len(names)):
                    col = batch.column(j)
                    if col.null_count:  # missing values become NaN: an invalid row
                        col = col.cast(pa.float64()).fill_null(math.nan)
                    out[:, j] = col.to_numpy(zero_copy_only=False)
                yield out
        except pa.ArrowException as exc:
            raise InputError(f"{self.label} cannot be read ({exc})") from None

    def close(self):
        self._file.close()


def open_table(path: str | os.PathLike, what: str = "INPUT") -> TableReader:
    """Open a table for chunked reading, chosen by the file's suffix.

    Parameters
    ----------
    path : str or PathLike
        ``.npy``, ``.npz``, ``.csv``, ``.tsv``, ``.parquet`` or ``.pq``.
    what : str
        How the file is called in error messages.

    Returns
    -------
    TableReader

    Raises
    ------
    InputError
        Missing, unreadable, unknown format, or not a table of numbers.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "X.npy")
    >>> np.save(path, np.arange(6.0).reshape(3, 2))
    >>> reader = open_table(path)
    >>> reader.columns, reader.n_rows
    (['0', '1'], 3)
    >>> [block.shape for block in reader.chunks(2, [0, 1])]
    [(2, 2), (1, 2)]
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {str(path)!r} does not exist")
    if path.is_dir():
        raise InputError(f"{what} {str(path)!r} is a folder, not a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} {str(path)!r} is not readable (permission denied)")
    suffix = _suffix(path)
    readers = {".npy": NpyReader, ".npz": NpzReader, ".csv": CsvReader, ".tsv": CsvReader,
               ".parquet": ParquetReader, ".pq": ParquetReader}
    if suffix not in readers:
        raise InputError(f"{what} {str(path)!r}: unknown format {suffix or '(no suffix)'!r}; "
                         f"expected one of {', '.join(READ_SUFFIXES)}")
    if path.stat().st_size == 0:
        raise InputError(f"{what} {str(path)!r} is empty (0 bytes)")
    return readers[suffix](path, f"{what} {str(path)!r}")


# ---------------------------------------------------------------------------
# Atomic output
# ---------------------------------------------------------------------------

def check_output_path(path: str | os.PathLike, what: str = "OUTPUT",
                      suffixes: Sequence[str] | None = WRITE_SUFFIXES) -> Path:
    """Check, before any work is done, that ``path`` can be written.

    Raises
    ------
    OutputError
        The folder is missing or not writable, the path is a folder, or the
        suffix is not one of ``suffixes``.
    """
    path = Path(path)
    folder = path.parent
    if suffixes is not None and _suffix(path) not in suffixes:
        raise OutputError(f"{what} {str(path)!r}: unknown format {_suffix(path) or '(no suffix)'!r}; "
                          f"expected one of {', '.join(suffixes)}")
    if not folder.exists():
        raise OutputError(f"cannot write {what} {str(path)!r}: folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise OutputError(f"cannot write {what} {str(path)!r}: {str(folder)!r} is not a folder")
    if path.is_dir():
        raise OutputError(f"cannot write {what} {str(path)!r}: it is a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {what} {str(path)!r}: folder {str(folder)!r} is not writable")
    if _suffix(path) in (".parquet", ".pq"):  # found out now, not after the input was read
        _need_pyarrow(f"writing {what} {str(path)!r}", OutputError)
    return path


def _default_file_mode() -> int:
    # mkstemp creates 0600; give the final file the mode open() would have given it.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Context manager: yields a temporary path next to ``path``; on a clean
    exit renames it to ``path``, on any exception (Ctrl-C included) deletes it.

    Examples
    --------
    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_output(target) as tmp:
    ...     _ = open(tmp, "w").write("done")
    >>> open(target).read()
    'done'
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


# ---------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------

class ScoreWriter:
    """Streams probabilities (and labels) into an open temporary file."""

    def __init__(self, tmp: Path, prob_dtype: np.dtype, with_labels: bool):
        self.tmp = tmp
        self.prob_dtype = np.dtype(prob_dtype)
        self.with_labels = with_labels
        self.rows = 0

    def write(self, prob: np.ndarray, labels: np.ndarray | None) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        self.finish()


LABEL_DTYPE = np.dtype(np.int8)


class NpyWriter(ScoreWriter):
    """``.npy``: probabilities as a 1-D array of shape (m,), or with labels a
    structured array with fields ``probability`` and ``label`` (int8).

    The row count is unknown until the end (skipped rows, CSV input), so the
    header is written with room for any count and rewritten, same length,
    at the end.
    """

    HEADER_BYTES = 128  # a multiple of 64, like NumPy's own headers

    def __init__(self, tmp, prob_dtype, with_labels):
        super().__init__(tmp, prob_dtype, with_labels)
        if with_labels:
            self.dtype = np.dtype([("probability", self.prob_dtype), ("label", LABEL_DTYPE)])
        else:
            self.dtype = self.prob_dtype
        self.fh = open(tmp, "wb")
        self.fh.write(self._header(0))

    def _header(self, rows: int) -> bytes:
        from numpy.lib import format as npy_format

        text = repr({"descr": npy_format.dtype_to_descr(self.dtype), "fortran_order": False,
                     "shape": (rows,)})
        # Magic (6) + version (2) + length (2) + text padded with spaces + "\n".
        pad = self.HEADER_BYTES - 10 - len(text) - 1
        if pad < 0:  # pragma: no cover - descr of two fields is far shorter
            raise OutputError("internal: .npy header does not fit")
        body = (text + " " * pad + "\n").encode("latin1")
        return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body

    def write(self, prob, labels):
        if self.with_labels:
            record = np.empty(prob.shape[0], dtype=self.dtype)
            record["probability"] = prob
            record["label"] = labels
            self.fh.write(memoryview(record).cast("B"))
        else:
            self.fh.write(memoryview(np.ascontiguousarray(prob, dtype=self.dtype)).cast("B"))
        self.rows += prob.shape[0]

    def finish(self):
        if not self.fh.closed:
            self.fh.seek(0)
            self.fh.write(self._header(self.rows))
            self.fh.close()

    def abort(self):
        self.fh.close()


class CsvWriter(ScoreWriter):
    """``.csv`` with a header line; probabilities in shortest round-trip form."""

    def __init__(self, tmp, prob_dtype, with_labels):
        super().__init__(tmp, prob_dtype, with_labels)
        self.fh = open(tmp, "w", encoding="utf-8", newline="")
        self.fh.write("probability,label\n" if with_labels else "probability\n")

    def write(self, prob, labels):
        # repr of a Python float is the shortest string that reads back to the
        # same double; float32 values go through float64 exactly.
        values = prob.astype(np.float64, copy=False).tolist()
        if self.with_labels:
            text = "\n".join(map("{!r},{}".format, values, labels.tolist()))
        else:
            text = "\n".join(map(repr, values))
        if values:
            self.fh.write(text + "\n")
        self.rows += len(values)

    def finish(self):
        self.fh.close()


class ParquetWriter(ScoreWriter):
    """``.parquet`` with columns ``probability`` (and ``label``, int8)."""

    def __init__(self, tmp, prob_dtype, with_labels):
        super().__init__(tmp, prob_dtype, with_labels)
        pq = _need_pyarrow(f"writing {tmp.name}")
        import pyarrow as pa

        self.pa = pa
        fields = [pa.field("probability", pa.from_numpy_dtype(self.prob_dtype))]
        if with_labels:
            fields.append(pa.field("label", pa.int8()))
        self.schema = pa.schema(fields)
        self.writer = pq.ParquetWriter(tmp, self.schema)

    def write(self, prob, labels):
        arrays = [self.pa.array(prob)]
        if self.with_labels:
            arrays.append(self.pa.array(labels.astype(LABEL_DTYPE, copy=False)))
        self.writer.write_table(self.pa.Table.from_arrays(arrays, schema=self.schema))
        self.rows += prob.shape[0]

    def finish(self):
        self.writer.close()


def open_writer(path: Path, tmp: Path, prob_dtype, with_labels: bool) -> ScoreWriter:
    """A writer for ``path``'s format that writes into ``tmp``."""
    suffix = _suffix(Path(path))
    if suffix == ".npy":
        return NpyWriter(tmp, prob_dtype, with_labels)
    if suffix == ".csv":
        return CsvWriter(tmp, prob_dtype, with_labels)
    if suffix in (".parquet", ".pq"):
        return ParquetWriter(tmp, prob_dtype, with_labels)
    raise OutputError(f"OUTPUT {str(path)!r}: unknown format {suffix!r}; "
                      f"expected one of {', '.join(WRITE_SUFFIXES)}")
