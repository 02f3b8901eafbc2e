"""Open a table by its suffix; the Parquet reader.

Formats: ``.npy`` / ``.npz`` (:mod:`fastlogit.io.npy`), ``.csv`` / ``.tsv`` /
``.txt`` (:mod:`fastlogit.io.csv`), ``.parquet`` / ``.pq`` (record batches from
pyarrow, the ``parquet`` extra).  Columns of a table without names are called
``"0"``, ``"1"``, ...  Every reader streams blocks of rows, so memory stays
bounded by the block size, not the file size.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from fastlogit.io.csv import CsvReader
from fastlogit.io.files import InputError, need_pyarrow, suffix_of
from fastlogit.io.npy import NpyReader, NpzReader
from fastlogit.io.table import TableReader, arrow_to_numpy, check_numeric_dtype

__all__ = ["READ_SUFFIXES", "ParquetReader", "open_table"]

READ_SUFFIXES = (".npy", ".npz", ".csv", ".tsv", ".txt", ".parquet", ".pq")
# Spreadsheet workbooks are not read; what to save them as instead.
SAVE_AS_HINTS = dict.fromkeys(
    (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods", ".numbers"),
    " (a spreadsheet workbook: save the sheet as CSV, e.g. Excel's \"CSV UTF-8\" or "
    "\"CSV\", which are read as saved, decimal commas included)")


class ParquetReader(TableReader):
    """A Parquet file, read in record batches; a null is a missing value (NaN)."""

    def __init__(self, path: Path, label: str):
        pq = need_pyarrow(f"reading {label}")
        import pyarrow as pa

        self.path, self.label = path, label
        self.nbytes = path.stat().st_size
        try:
            self._file = pq.ParquetFile(path)
            meta = self._file.metadata
            # The footer's promises, checked against the file before any
            # row group is decoded.
            promised = sum(meta.row_group(g).column(j).total_compressed_size
                           for g in range(meta.num_row_groups) for j in range(meta.num_columns))
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{label} is not a valid Parquet file ({exc})") from None
        if promised > self.nbytes:
            raise InputError(f"{label} is truncated: its footer promises {promised} bytes of "
                             f"column data, the file has {self.nbytes}")
        schema = self._file.schema_arrow
        self.columns, self.named = list(schema.names), True
        self.n_rows = meta.num_rows
        self._types = {f.name: f.type for f in schema}

    def _column_dtype(self, name: str) -> np.dtype:
        import pyarrow as pa

        t = self._types[name]
        if pa.types.is_decimal(t) or pa.types.is_null(t):
            return np.dtype(np.float64)
        try:
            return check_numeric_dtype(t.to_pandas_dtype(), f"{self.label} column {name!r}")
        except (NotImplementedError, TypeError, InputError):
            raise InputError(f"{self.label} column {name!r} holds {t} values; "
                             f"expected numbers") from None

    def chunks(self, chunk_rows, columns):
        import pyarrow as pa

        names = [self.columns[j] for j in columns]
        dtypes = [self._column_dtype(name) for name in names]
        dtype = np.dtype(np.float32) if dtypes and all(d == np.float32 for d in dtypes) \
            else np.dtype(np.float64)
        try:
            for batch in self._file.iter_batches(batch_size=chunk_rows, columns=names):
                out = np.empty((batch.num_rows, len(names)), dtype=dtype)
                for j in range(len(names)):  # a null is NaN: an invalid row
                    out[:, j] = arrow_to_numpy(batch.column(j), dtype)
                yield out
        except pa.ArrowException as exc:
            raise InputError(f"{self.label} cannot be read ({exc})") from None

    def read_labels(self, column):
        import pyarrow as pa

        name = self.columns[column]
        t = self._types[name]
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
            col = self._file.read(columns=[name]).column(0)
            return np.array(["" if v is None else str(v).strip() for v in col.to_pylist()],
                            dtype=object)
        return super().read_labels(column)

    def close(self):
        self._file.close()


READERS = {".npy": NpyReader, ".npz": NpzReader,
           ".csv": CsvReader, ".tsv": CsvReader, ".txt": CsvReader,
           ".parquet": ParquetReader, ".pq": ParquetReader}


def open_table(path: str | os.PathLike, what: str = "INPUT") -> TableReader:
    """Open a table for reading in blocks of rows, chosen by the file's suffix.

    Parameters
    ----------
    path : str or PathLike
        ``.npy``, ``.npz``, ``.csv``, ``.tsv``, ``.txt``, ``.parquet`` or ``.pq``.
    what : str
        How the file is called in error messages.

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
    name = f"{what} {str(path)!r}"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"{name} does not exist") from None
    except OSError as exc:
        raise InputError(f"{name} cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{name} is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{name} is not a regular file (a device or a pipe?)")
    if not os.access(path, os.R_OK):
        raise InputError(f"{name} is not readable (permission denied)")
    suffix = suffix_of(path)
    if suffix not in READERS:
        hint = SAVE_AS_HINTS.get(suffix, "")
        raise InputError(f"{name}: unknown format {suffix or '(no suffix)'!r}; "
                         f"expected one of {', '.join(READ_SUFFIXES)}{hint}")
    if info.st_size == 0:
        raise InputError(f"{name} is empty (0 bytes)")
    return READERS[suffix](path, name)
