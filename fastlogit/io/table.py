"""What every table reader is: blocks of rows of named numeric columns."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from fastlogit._validation import working_dtype
from fastlogit.io.files import InputError

__all__ = ["TableReader", "arrow_to_numpy", "as_block", "check_numeric_dtype", "default_names",
           "is_unnamed", "missing_columns_message", "unnamed_column"]


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

        Each block is a C-contiguous 2-D array of shape (k, len(columns)) in
        the working dtype of the stored values (float32 for float32 and
        float16 columns, float64 otherwise), valid until the next block is
        requested.
        """
        raise NotImplementedError

    def row_label(self, row: int) -> str:
        """How to name 0-based data row ``row`` in a message."""
        return f"row {row + 1}"

    def column_indices(self, names: Sequence[str], flag: str = "") -> list[int]:
        """Indices of ``names`` among the columns, or an InputError that lists
        the columns and suggests the closest name to a near miss.

        ``flag`` (``"--target"``, say) tells the user which option named it.
        """
        index = {name: j for j, name in enumerate(self.columns)}
        missing = [name for name in names if name not in index]
        if missing:
            raise InputError(missing_columns_message(self.label, missing, self.columns, flag))
        return [index[name] for name in names]

    def read_labels(self, column: int) -> np.ndarray:
        """One column as it is stored: float64 numbers, or an object array of
        str for a column of text (CSV, Parquet) so that labels such as
        ``"M"``/``"B"`` can be named by the user."""
        return self.read_all([column])[:, 0]

    def read_all(self, columns: Sequence[int], dtype=np.float64,
                 chunk_rows: int = 1 << 16) -> np.ndarray:
        """The given columns of every row as one C-contiguous (m, k) array."""
        # A copy of each block: a reader may reuse its buffer for the next one.
        blocks = [np.array(block, dtype=dtype) for block in self.chunks(chunk_rows, columns)]
        if not blocks:
            return np.empty((0, len(columns)), dtype=dtype)
        return np.ascontiguousarray(np.concatenate(blocks, axis=0))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


LISTED_COLUMNS = 1000  # a message that lists more than this helps nobody


def missing_columns_message(label: str, missing: Sequence[str], columns: Sequence[str],
                            flag: str = "") -> str:
    """``label has no column 'Target' (--target); did you mean 'target'? ...``"""
    import difflib

    kind = "column" if len(missing) == 1 else "columns"
    text = f"{label} has no {kind} {', '.join(repr(m) for m in missing)}"
    if flag:
        text += f" (named by {flag})"
    lowered = {c.lower(): c for c in columns}
    hints = []
    for name in missing:
        close = lowered.get(name.lower()) or next(
            iter(difflib.get_close_matches(name, columns, n=1, cutoff=0.6)), None)
        if close is not None:
            hints.append(f"{close!r} for {name!r}" if len(missing) > 1 else repr(close))
    if hints:
        text += f"; did you mean {', '.join(hints)}?"
    listed = ", ".join(columns[:LISTED_COLUMNS])
    more = f", ... ({len(columns) - LISTED_COLUMNS} more)" if len(columns) > LISTED_COLUMNS else ""
    return text + f" (its {len(columns)} columns: {listed}{more})"


def default_names(n: int) -> list[str]:
    return [str(i) for i in range(n)]


# A header field left empty -- above all the index column that pandas' to_csv writes by
# default -- is called as pandas calls it when reading the file back ("Unnamed: 0"), so
# the same file has the same column names in both.  Such a column is data nobody named:
# it is never a feature unless asked for by name (training_table.choose_features).
_UNNAMED = re.compile(r"Unnamed: \d+$")


def unnamed_column(index: int) -> str:
    """The name of the column at ``index`` whose header field is empty."""
    return f"Unnamed: {index}"


def is_unnamed(name: str) -> bool:
    """Whether ``name`` is one :func:`unnamed_column` gives (or pandas gave before)."""
    return _UNNAMED.match(name) is not None


def check_numeric_dtype(dtype, where: str) -> np.dtype:
    """The working dtype of a stored column (the one rule of the package), or
    an InputError naming the file and column."""
    try:
        return working_dtype(dtype, where)
    except TypeError:
        raise InputError(f"{where} holds {np.dtype(dtype)} values; expected numbers "
                         f"(float, int or bool)") from None


def arrow_to_numpy(col, dtype) -> np.ndarray:
    """A pyarrow array of numbers as a NumPy array of ``dtype`` (float32 or
    float64); a null is a missing value (NaN).

    Reads the data buffer directly: ``to_numpy`` would import pandas (a
    second of start-up for every command)."""
    import pyarrow as pa

    target = pa.float32() if np.dtype(dtype) == np.float32 else pa.float64()
    if col.type != target:
        col = col.cast(target)
    if col.null_count:
        col = col.fill_null(np.nan)
    data = np.frombuffer(col.buffers()[1], dtype=dtype)
    return data[col.offset:col.offset + len(col)]


def as_block(block: np.ndarray) -> np.ndarray:
    """A 2-D block as C-contiguous native float32/float64 (its working dtype)."""
    return np.ascontiguousarray(block, dtype=working_dtype(block.dtype, "block"))
