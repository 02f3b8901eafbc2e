"""``.npy`` and ``.npz`` tables: the one ``.npy`` header reader, and readers
that stream blocks of rows.

* ``.npy``: each block is memory-mapped on its own and unmapped when the
  block is done (a plain 2-D array, or a structured array whose field names
  are the column names);
* ``.npz``: the archive's members are read as streams (stored or
  compressed): either one array used like a ``.npy``, or one 1-D array per
  column named by its key.

The size a header promises is checked against the file before anything of
that size (column names included) is allocated.
"""
from __future__ import annotations

import ast
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from fastlogit.io.files import InputError
from fastlogit.io.table import TableReader, as_block, check_numeric_dtype, default_names

__all__ = ["read_npy_header", "NpyReader", "NpzReader", "NPY_MAGIC"]

NPY_MAGIC = b"\x93NUMPY"
# NumPy itself refuses headers above 10 kB unless told otherwise; a table's
# header (a dtype and a shape) is far smaller even with many named fields.
MAX_HEADER_BYTES = 1 << 20


def read_npy_header(fh, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the .npy stream ``fh``, left positioned
    after the header.  Versions 1, 2 and 3 of the format."""
    def bad(problem: str) -> InputError:
        return InputError(f"{where} is not a valid .npy array ({problem})")

    try:
        magic = fh.read(8)
        if len(magic) < 8 or magic[:6] != NPY_MAGIC:
            raise bad("it does not start with the .npy magic string")
        major = magic[6]
        if major == 1:
            size_bytes, encoding = 2, "latin1"
        elif major in (2, 3):
            size_bytes, encoding = 4, "latin1" if major == 2 else "utf8"
        else:
            raise bad(f"unsupported format version {major}.{magic[7]}")
        raw = fh.read(size_bytes)
        length = int.from_bytes(raw, "little")
        if len(raw) < size_bytes or length > MAX_HEADER_BYTES:
            raise bad(f"a header of {length} bytes")
        text = fh.read(length)
        if len(text) < length:
            raise bad("the header is truncated")
        header = ast.literal_eval(text.decode(encoding))
    except InputError:
        raise
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError,
            OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise bad(f"{type(exc).__name__}: {exc}") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise bad("its header is not a dict of descr, fortran_order and shape")
    shape, fortran = header["shape"], header["fortran_order"]
    if (not isinstance(shape, tuple)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
        raise bad(f"shape {shape!r}")
    if not isinstance(fortran, bool):
        raise bad(f"fortran_order {fortran!r}")
    try:
        from numpy.lib.format import descr_to_dtype

        dtype = descr_to_dtype(header["descr"])
    except (TypeError, ValueError) as exc:
        raise bad(f"descr {header['descr']!r}: {exc}") from None
    return shape, fortran, dtype


def _table_shape(shape: tuple[int, ...], dtype: np.dtype, label: str) -> tuple[int, ...]:
    """The (rows,) of a structured array or the (rows, columns) of a plain one."""
    if dtype.names:
        if len(shape) != 1:
            raise InputError(f"{label} holds a structured array of shape {shape}; expected 1-D")
        return shape
    if len(shape) == 1:
        return (shape[0], 1)
    if len(shape) != 2:
        raise InputError(f"{label} holds an array of shape {shape}; expected a 2-D table "
                         f"(m rows, n columns)")
    return shape


def _columns_of(dtype: np.dtype, shape: tuple[int, ...], label: str) -> tuple[list[str], bool]:
    if dtype.names:
        for name in dtype.names:
            check_numeric_dtype(dtype.fields[name][0], f"{label} column {name!r}")
        return list(dtype.names), True
    check_numeric_dtype(dtype, label)
    return default_names(shape[1]), False


class NpyReader(TableReader):
    """A .npy file; every block is its own memory map, released when done."""

    def __init__(self, path: Path, label: str):
        self.path, self.label = path, label
        self.nbytes = path.stat().st_size
        with open(path, "rb") as fh:
            shape, fortran, dtype = read_npy_header(fh, label)
            self._offset = fh.tell()
        self._dtype = dtype
        self._shape = _table_shape(shape, dtype, label)
        # Python ints: a header promising (2**62, 4) must not overflow the check.
        expected = self._offset + math.prod(self._shape) * dtype.itemsize
        if self.nbytes < expected:
            raise InputError(f"{label} is truncated: its header promises {expected} bytes "
                             f"(shape {shape}, {dtype}), the file has {self.nbytes}")
        self.columns, self.named = _columns_of(dtype, self._shape, label)
        self._fortran = fortran and len(self._shape) == 2 and self._shape[1] > 1
        self.n_rows = self._shape[0]

    def _map_rows(self, start: int, stop: int) -> np.ndarray:
        row_bytes = self._dtype.itemsize * (1 if self._dtype.names else self._shape[1])
        shape = (stop - start,) if self._dtype.names else (stop - start, self._shape[1])
        return np.memmap(self.path, dtype=self._dtype, mode="r",
                         offset=self._offset + start * row_bytes, shape=shape)

    def chunks(self, chunk_rows, columns):
        columns = list(columns)
        m = self.n_rows
        if m == 0:
            return
        if self._fortran:
            # Rows of a Fortran-ordered file are strided across the whole file:
            # map it once; blocks are copied out row-major.
            whole = np.memmap(self.path, dtype=self._dtype, mode="r", offset=self._offset,
                              shape=self._shape, order="F")
            for start in range(0, m, chunk_rows):
                yield as_block(whole[start:start + chunk_rows][:, columns])
            return
        all_columns = columns == list(range(len(self.columns)))
        for start in range(0, m, chunk_rows):
            block = self._map_rows(start, min(start + chunk_rows, m))
            if self._dtype.names:
                yield as_block(np.column_stack([block[self.columns[j]] for j in columns])
                               if columns else np.empty((len(block), 0)))
            elif all_columns:
                yield as_block(block)
            else:
                yield as_block(block[:, columns])
            # Dropping the last reference unmaps the block: resident memory
            # stays at one block, whatever the file size.
            del block


_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError,
               RuntimeError)


class _NpzMember:
    """One .npy inside a zip archive, read as a stream."""

    def __init__(self, archive: zipfile.ZipFile, name: str, where: str):
        self.name, self.where = name, where
        try:
            self.stream = archive.open(name)
        except _ZIP_ERRORS as exc:
            raise InputError(f"{where} cannot be read ({type(exc).__name__}: {exc})") from None
        self.shape, self.fortran, self.dtype = read_npy_header(self.stream, where)
        # The archive's directory says how large the member is once unpacked:
        # the header's promise is checked against it before anything is allocated.
        promised = math.prod(self.shape) * self.dtype.itemsize
        available = archive.getinfo(name).file_size - self.stream.tell()
        if promised > available:
            raise InputError(f"{where} is truncated: its header promises {promised} bytes "
                             f"(shape {self.shape}, {self.dtype}), the archive holds {available}")

    def read_rows(self, k: int, row_items: int) -> np.ndarray:
        nbytes = k * row_items * self.dtype.itemsize
        try:
            data = self.stream.read(nbytes)
        except _ZIP_ERRORS as exc:
            raise InputError(f"{self.where} cannot be read ({type(exc).__name__}: {exc})") from None
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
            names = [n for n in self._zip.namelist() if n.endswith(".npy")]
        except _ZIP_ERRORS as exc:
            raise InputError(f"{label} is not a valid .npz archive ({exc})") from None
        if not names:
            raise InputError(f"{label} holds no arrays")
        self._member_names = names
        members = [_NpzMember(self._zip, n, f"{label} (array {n[:-4]!r})") for n in names]
        if len(names) == 1:
            member = members[0]
            self._shape = _table_shape(member.shape, member.dtype, label)
            if member.dtype.names:
                raise InputError(f"{label} holds a structured array; expected a 2-D table "
                                 f"or one 1-D array per column")
            self.columns, self.named = _columns_of(member.dtype, self._shape, label)
            self.n_rows = self._shape[0]
            self._table = True
        else:
            lengths = set()
            for member in members:
                key = member.name[:-4]
                check_numeric_dtype(member.dtype, f"{label} column {key!r}")
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
        # Re-opened in chunks(): the headers were consumed for inspection.
        for member in members:
            member.stream.close()

    def chunks(self, chunk_rows, columns):
        columns = list(columns)
        m = self.n_rows
        if self._table:
            member = _NpzMember(self._zip, self._member_names[0], self.label)
            try:
                n = self._shape[1]
                if member.fortran and n > 1:
                    whole = np.asarray(member.read_rows(m, n)).reshape(self._shape, order="F")
                    for start in range(0, m, chunk_rows):
                        yield as_block(whole[start:start + chunk_rows][:, columns])
                    return
                for start in range(0, m, chunk_rows):
                    k = min(chunk_rows, m - start)
                    yield as_block(member.read_rows(k, n).reshape(k, n)[:, columns])
            finally:
                member.stream.close()
            return
        members = [_NpzMember(self._zip, self._member_names[j], self.label) for j in columns]
        try:
            for start in range(0, m, chunk_rows):
                k = min(chunk_rows, m - start)
                yield as_block(np.column_stack([member.read_rows(k, 1) for member in members])
                               if members else np.empty((k, 0)))
        finally:
            for member in members:
                member.stream.close()

    def close(self):
        self._zip.close()
