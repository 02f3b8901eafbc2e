"""The table-scoring engine: a model over a table, block by block.

Used by ``fastlogit score`` and, per part on the workers, by
:func:`fastlogit.dask.score_parts`.  Memory stays bounded by the block size:
blocks are sized by bytes (about 16 MB of input each, however wide the
table: no row floor), read, scored by the compiled kernel and written
before the next is read.

A row holding NaN or +-inf is an *invalid row*; ``on_invalid`` decides:
``"error"`` stops with the file, row (and line) and column, nothing written;
``"skip"`` leaves the row out; ``"nan"`` gives it probability NaN (label -1).
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from fastlogit._api import forward_pass
from fastlogit._validation import check_choice, check_count, check_threshold
from fastlogit.io.files import InputError, atomic_output, check_distinct_paths, check_output_path
from fastlogit.io.readers import open_table
from fastlogit.io.table import TableReader
from fastlogit.io.writers import WRITE_SUFFIXES, ScoreWriter, open_writer

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "ON_INVALID",
    "ScoreStats",
    "chunk_rows_for",
    "first_invalid",
    "invalid_rows",
    "not_finite",
    "model_columns",
    "score_file",
    "score_table",
]

# Default block size: about this many bytes of input per block.  Big enough
# that per-block costs (a memory map, a kernel launch, a write call) vanish,
# small enough to keep peak memory at a few tens of MB.
DEFAULT_CHUNK_BYTES = 16 << 20
ON_INVALID = ("error", "skip", "nan")


@dataclass
class ScoreStats:
    rows_in: int
    rows_out: int
    invalid: int
    seconds: float
    input_bytes: int


def chunk_rows_for(n_columns: int, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Rows per block so that a block of float64 values holds about ``chunk_bytes``."""
    return max(1, chunk_bytes // (8 * max(n_columns, 1)))


def invalid_rows(X: np.ndarray) -> np.ndarray | None:
    """Boolean mask of rows holding NaN or +-inf, or None if there are none.

    One sum over the block screens it (a NaN or inf anywhere makes the sum
    non-finite); the exact row test runs only when the screen trips.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(X.sum()):
            return None
    bad = ~np.isfinite(X).all(axis=1)
    return bad if bad.any() else None


def first_invalid(X: np.ndarray) -> tuple[int, int]:
    """(row, column) of the first NaN or +-inf of X."""
    bad = ~np.isfinite(X)
    i = int(np.argmax(bad.any(axis=1)))
    return i, int(np.argmax(bad[i]))


def not_finite(value: float) -> str:
    """What is wrong with a NaN or +-inf read from a table, for a message: a NaN is
    how a missing value (an empty field, NA, #N/A) arrives."""
    if math.isnan(value):
        return "a missing value (empty, NA, #N/A or NaN)"
    return f"{value!r} is not a finite number"


def model_columns(model, reader: TableReader) -> list[int]:
    """Which input columns feed the model's features, in the model's order.

    Named inputs (CSV header, Parquet, structured .npy, .npz of columns) are
    matched by name.  Unnamed inputs are taken by position and must have
    exactly one column per feature, unless the model itself was trained on
    unnamed columns ("0", "1", ...), which are then picked by index.
    """
    n = model.n_features
    positional_model = all(f.isdigit() for f in model.features)
    if reader.named:
        if not positional_model or any(f in reader.columns for f in model.features):
            return reader.column_indices(model.features, "the model's features")
    elif positional_model and len(reader.columns) != n:
        if all(int(f) < len(reader.columns) for f in model.features):
            return [int(f) for f in model.features]
    if len(reader.columns) != n:
        raise InputError(
            f"{reader.label} has {len(reader.columns)} column(s) but the model expects "
            f"{n} feature(s) ({', '.join(model.features[:20])}{', ...' if n > 20 else ''})")
    return list(range(n))


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int | None, enabled: bool, desc: str):
    """A tqdm bar on stderr when it is a terminal (and tqdm is installed), else a no-op."""
    if not enabled or not sys.stderr.isatty():
        return _NoProgress()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoProgress()
    return tqdm(total=total, unit=" rows", unit_scale=True, desc=desc, file=sys.stderr,
                leave=False, dynamic_ncols=True)


def _invalid_row_error(reader, X, X_read, bad_row_offset, names, dtype) -> InputError:
    i, j = first_invalid(X)
    value = float(X_read[i, j])
    problem = (not_finite(value) if not math.isfinite(value)
               else f"{value!r} is outside the range of {dtype} (the model's dtype)")
    return InputError(f"{reader.label} {reader.row_label(bad_row_offset + i)}, "
                      f"column {names[j]!r}: {problem} "
                      f"(--on-invalid skip or nan to continue past such rows)")


def score_table(model, reader: TableReader, writer: ScoreWriter, *,
                threshold: float | None = None, chunk_rows: int | None = None,
                n_threads: int | None = None, on_invalid: str = "error",
                progress: bool = False) -> ScoreStats:
    """Score every row of ``reader`` with ``model`` into ``writer`` (not finished here).

    The arguments are those of :func:`score_file`, already checked.
    """
    t0 = time.perf_counter()
    columns = model_columns(model, reader)
    # Messages name the model's feature (for unnamed inputs the column
    # itself is only a position).
    names = list(model.features)
    dtype = np.dtype(model.dtype)
    W = model.W.astype(dtype)
    if chunk_rows is None:
        chunk_rows = chunk_rows_for(len(reader.columns))
    rows_in = rows_out = invalid = 0
    bar = _progress(reader.n_rows, progress, "scoring")
    try:
        for X in reader.chunks(chunk_rows, columns):
            k = X.shape[0]
            X_read = X
            if X.dtype != dtype:
                # float64 values beyond float32's range become inf and are
                # then reported as invalid rows.
                with np.errstate(over="ignore"):
                    X = X.astype(dtype)
            bad = invalid_rows(X)
            if bad is not None:
                if on_invalid == "error":
                    raise _invalid_row_error(reader, X, X_read, rows_in, names, dtype)
                invalid += int(bad.sum())
                if on_invalid == "skip":
                    X = X[~bad]
            A = forward_pass(X, W, model.b, n_threads=n_threads)[0]
            if bad is not None and on_invalid == "nan":
                A[bad] = np.nan
            labels = None
            if threshold is not None:
                labels = (A >= threshold).astype(np.int8)
                if bad is not None and on_invalid == "nan":
                    labels[bad] = -1
            writer.write(A, labels)
            rows_in += k
            rows_out += A.shape[0]
            bar.update(k)
    finally:
        bar.close()
    if rows_in == 0:
        raise InputError(f"{reader.label} has no rows to score")
    return ScoreStats(rows_in, rows_out, invalid, time.perf_counter() - t0, reader.nbytes)


def score_file(model, input_path, output_path, *, threshold: float | None = None,
               chunk_rows: int | None = None, n_threads: int | None = None,
               on_invalid: str = "error", progress: bool = False,
               model_path=None, input_what: str = "INPUT",
               output_what: str = "OUTPUT") -> ScoreStats:
    """Stream ``input_path`` through ``model`` into ``output_path``, atomically.

    Parameters
    ----------
    model : fastlogit.model_io.Model
    input_path, output_path : str or Path
        Formats by suffix (see :mod:`fastlogit.io`).  An output that names
        the input or the model file is refused before anything is written.
    threshold : float, optional
        Also write labels ``probability >= threshold`` (int8 0/1; -1 for an
        invalid row kept with ``on_invalid="nan"``).  Any real number but NaN.
    chunk_rows : int, optional
        Rows per block; default about 16 MB of input per block.
    n_threads : int, optional
        Threads of the compiled kernel.
    on_invalid : {"error", "skip", "nan"}
        What to do with a row holding NaN or inf (see the module docstring).
    progress : bool
        Show a progress bar if stderr is a terminal and tqdm is installed.
    model_path : path, optional
        The model's file, so that an output naming it is refused.

    Returns
    -------
    ScoreStats

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from fastlogit.model_io import Model
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "X.npy"), np.array([[105.0], [170.0]]))
    >>> stats = score_file(Model(["0"], np.array([[0.042]]), -5.66),
    ...                    os.path.join(folder, "X.npy"), os.path.join(folder, "A.npy"))
    >>> np.load(os.path.join(folder, "A.npy")).round(3)
    array([0.223, 0.815])
    """
    on_invalid = check_choice(on_invalid, "on_invalid", ON_INVALID)
    if threshold is not None:
        threshold = check_threshold(threshold)
    if chunk_rows is not None:
        chunk_rows = check_count(chunk_rows, "chunk_rows", 1)
    output_path = check_output_path(output_path, output_what, WRITE_SUFFIXES)
    others = [(input_what, input_path)]
    if model_path is not None:
        others.append(("MODEL", model_path))
    check_distinct_paths([(output_what, output_path)], others)
    with open_table(input_path, input_what) as reader:
        with atomic_output(output_path) as tmp:
            writer = open_writer(output_path, tmp, np.dtype(model.dtype), threshold is not None)
            try:
                stats = score_table(model, reader, writer, threshold=threshold,
                                    chunk_rows=chunk_rows, n_threads=n_threads,
                                    on_invalid=on_invalid, progress=progress)
                writer.finish()
            except BaseException:
                writer.abort()
                raise
    return stats


