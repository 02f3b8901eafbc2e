"""Writers of scores: probabilities (and optionally 0/1 labels) into
``.npy``, ``.csv`` or ``.parquet``, one block at a time.

Every writer writes into a temporary file that :func:`fastlogit.io.files.atomic_output`
renames over the output only on success.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fastlogit.io.csv import have_pyarrow_csv
from fastlogit.io.files import (
    WRITE_SUFFIXES,
    OutputError,
    atomic_output,
    need_pyarrow,
    suffix_of,
)

__all__ = ["WRITE_SUFFIXES", "LABEL_DTYPE", "ScoreWriter", "open_writer", "write_scores"]

LABEL_DTYPE = np.dtype(np.int8)


class ScoreWriter:
    """Streams probabilities (and labels) into an open temporary file."""

    def __init__(self, tmp: Path, prob_dtype, with_labels: bool):
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
        from numpy.lib.format import dtype_to_descr

        text = repr({"descr": dtype_to_descr(self.dtype), "fortran_order": False,
                     "shape": (rows,)})
        # Magic (6) + version (2) + length (2) + text padded with spaces + "\n".
        pad = self.HEADER_BYTES - 10 - len(text) - 1
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
    """``.csv`` with a header line; probabilities in shortest round-trip form
    (of their own dtype).  pyarrow's writer when installed, else Python's repr."""

    def __init__(self, tmp, prob_dtype, with_labels):
        super().__init__(tmp, prob_dtype, with_labels)
        self.header = "probability,label\n" if with_labels else "probability\n"
        self.arrow = None
        self.fh = open(tmp, "wb")
        self.fh.write(self.header.encode())
        if have_pyarrow_csv():
            import pyarrow as pa
            import pyarrow.csv as pc

            fields = [pa.field("probability", pa.from_numpy_dtype(self.prob_dtype))]
            if with_labels:
                fields.append(pa.field("label", pa.int8()))
            self.pa, self.schema = pa, pa.schema(fields)
            self.arrow = pc.CSVWriter(self.fh, self.schema,
                                      write_options=pc.WriteOptions(include_header=False))

    def write(self, prob, labels):
        if self.arrow is not None:
            arrays = [self.pa.array(np.asarray(prob, dtype=self.prob_dtype))]
            if self.with_labels:
                arrays.append(self.pa.array(labels.astype(LABEL_DTYPE, copy=False)))
            self.arrow.write_table(self.pa.Table.from_arrays(arrays, schema=self.schema))
        else:
            # repr of a Python float is the shortest string that reads back
            # to the same double; float32 values go through float64 exactly.
            values = prob.astype(np.float64, copy=False).tolist()
            if self.with_labels:
                text = "\n".join(map("{!r},{}".format, values, labels.tolist()))
            else:
                text = "\n".join(map(repr, values))
            if values:
                self.fh.write((text + "\n").encode())
        self.rows += prob.shape[0]

    def finish(self):
        if self.arrow is not None:
            self.arrow.close()
            self.arrow = None
        self.fh.close()


class ParquetWriter(ScoreWriter):
    """``.parquet`` with columns ``probability`` (and ``label``, int8)."""

    def __init__(self, tmp, prob_dtype, with_labels):
        super().__init__(tmp, prob_dtype, with_labels)
        pq = need_pyarrow(f"writing {tmp.name}", OutputError)
        import pyarrow as pa

        self.pa = pa
        fields = [pa.field("probability", pa.from_numpy_dtype(self.prob_dtype))]
        if with_labels:
            fields.append(pa.field("label", pa.int8()))
        self.schema = pa.schema(fields)
        self.writer = pq.ParquetWriter(tmp, self.schema)

    def write(self, prob, labels):
        arrays = [self.pa.array(np.asarray(prob, dtype=self.prob_dtype))]
        if self.with_labels:
            arrays.append(self.pa.array(labels.astype(LABEL_DTYPE, copy=False)))
        self.writer.write_table(self.pa.Table.from_arrays(arrays, schema=self.schema))
        self.rows += prob.shape[0]

    def finish(self):
        self.writer.close()


WRITERS = {".npy": NpyWriter, ".csv": CsvWriter, ".parquet": ParquetWriter, ".pq": ParquetWriter}


def open_writer(path: str | os.PathLike, tmp: Path, prob_dtype, with_labels: bool) -> ScoreWriter:
    """A writer for ``path``'s format that writes into ``tmp``."""
    suffix = suffix_of(path)
    if suffix not in WRITERS:
        raise OutputError(f"OUTPUT {str(path)!r}: unknown format {suffix!r}; "
                          f"expected one of {', '.join(WRITE_SUFFIXES)}")
    return WRITERS[suffix](Path(tmp), prob_dtype, with_labels)


def write_scores(path: str | os.PathLike, prob: np.ndarray, labels: np.ndarray | None) -> int:
    """Write one array of probabilities (and labels) to ``path``, atomically."""
    with atomic_output(path) as tmp:
        writer = open_writer(path, tmp, prob.dtype, labels is not None)
        try:
            writer.write(prob, labels)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
    return prob.shape[0]
