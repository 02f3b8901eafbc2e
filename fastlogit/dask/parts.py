"""A folder of Parquet, ``.npy`` or CSV/text parts as one data set, for the command line.

Each part is one row block of X, read by the worker that uses it with the
readers of :mod:`fastlogit.io`; :func:`read_parts` reads the parts lazily as
dask arrays and :func:`fit_parts` trains on them with the training-table
rules (:mod:`fastlogit.training_table`).  Which files are parts is
:mod:`fastlogit.dask.part_folder`.  Scoring a folder of parts is
:func:`fastlogit.dask.part_scoring.score_parts`.  Nothing passes through the
client but part headers and a few numbers per part.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from fastlogit._objective import l2_from_C
from fastlogit._validation import check_choice, check_float_dtype, check_scalar
from fastlogit.dask.arrays import dask_array_module
from fastlogit.dask.cluster import scheduler_client
from fastlogit.dask.part_folder import (
    PART, PART_SUFFIXES, check_same_columns, count_rows, describe_part, list_parts,
)
from fastlogit.dask.training import fit
from fastlogit.io.files import InputError
from fastlogit.io.readers import open_table
from fastlogit.training_table import (
    check_invalid_rows, choose_features, invalid_training_rows, label_classes, targets_from_labels,
)

__all__ = ["PART", "PART_SUFFIXES", "Parts", "describe_part", "list_parts", "read_parts",
           "fit_parts"]


class Parts:
    """A folder of parts read lazily as one data set (see :func:`read_parts`).

    Attributes
    ----------
    X : dask.array.Array, shape (m, n), one row block per part
    Y : dask.array.Array of shape (m,), or None when no label was asked for
    features : list of str, the columns of X
    files : list of Path, the parts in order
    rows : tuple of int, rows per part as stored
    kept : tuple of int, rows per part in X and Y (``rows`` less the rows
        left out by ``on_invalid="skip"``)
    keep : dask.array.Array of bool, shape (sum(rows),), or None
        With ``on_invalid="skip"``: True for the stored rows that are in X
        (so ``X`` is the stored rows ``keep``), held in cluster memory.
    skipped : int, the rows left out (``sum(rows) - sum(kept)``)
    format : "parquet", "npy" or "csv" (``.csv``, ``.tsv`` and ``.txt`` parts)
    """

    def __init__(self, X, Y, features, files, rows, fmt, kept=None, keep=None):
        self.X, self.Y, self.features, self.files, self.rows, self.format = (
            X, Y, features, files, tuple(rows), fmt)
        self.kept = self.rows if kept is None else tuple(kept)
        self.keep = keep

    @property
    def skipped(self) -> int:
        return sum(self.rows) - sum(self.kept)

    def __repr__(self) -> str:
        skipped = f" ({self.skipped} skipped)" if self.skipped else ""
        return (f"Parts({len(self.files)} {self.format} parts, {sum(self.kept)} rows{skipped}, "
                f"features={self.features!r})")


def _features(reader, columns: list[str], dtype) -> NDArray:
    # A float64 value beyond float32's range becomes inf in a float32 read:
    # an invalid row, as in the scoring engine.
    with np.errstate(over="ignore"):
        return reader.read_all(reader.column_indices(columns), dtype=dtype)


def _check_rows(reader, got: int, rows: int | None) -> None:
    # The chunk sizes of X and Y are the rows counted when the folder was
    # read: a part that has changed since must not give a block of another size.
    if rows is not None and got != rows:
        raise InputError(f"{reader.label} has {got} rows now; it had {rows} when the folder "
                         f"was read (was it changed meanwhile?)")


def _read_block(path: str, columns: list[str], dtype, on_invalid: str | None = None,
                keep: NDArray | None = None, rows: int | None = None) -> NDArray:
    """Columns of one part as a C-contiguous (rows, len(columns)) array.

    ``on_invalid="error"`` (training): a row holding NaN or inf is an error
    naming it; ``keep``: only these rows (``on_invalid="skip"``, from
    :func:`_read_keep`); ``rows``: the rows the part must have."""
    with open_table(path, PART) as reader:
        X = _features(reader, columns, dtype)
        _check_rows(reader, X.shape[0], rows)
        if on_invalid == "error":
            check_invalid_rows(X, columns, reader.label, reader.row_label, on_invalid)
    return X if keep is None else np.ascontiguousarray(X[keep])


def _part_targets(reader, label: str, positive: str | None) -> NDArray:
    raw = reader.read_labels(reader.column_indices([label], "--target")[0])
    return targets_from_labels(raw, positive, f"{reader.label} column {label!r} (--target)")


def _read_targets(path: str, label: str, positive: str | None, on_invalid: str | None = None,
                  keep: NDArray | None = None, rows: int | None = None) -> NDArray:
    """One part's labels; ``on_invalid``, ``keep`` and ``rows`` as in :func:`_read_block`."""
    with open_table(path, PART) as reader:
        y = _part_targets(reader, label, positive)
        _check_rows(reader, y.shape[0], rows)
        if on_invalid == "error":
            check_invalid_rows(y[:, None], [label], reader.label, reader.row_label, on_invalid)
    return y if keep is None else y[keep]


def _read_keep(path: str, features: list[str], dtype, label: str | None,
               positive: str | None, rows: int | None = None) -> NDArray:
    """The rows of one part that ``on_invalid="skip"`` keeps: the training
    rule (:func:`fastlogit.training_table.invalid_training_rows`) over the
    features, read as ``dtype``, and the label when there is one.  Its
    length is the part's row count (``rows``, when the header gave it)."""
    with open_table(path, PART) as reader:
        X = _features(reader, features, dtype)
        _check_rows(reader, X.shape[0], rows)
        y = None if label is None else _part_targets(reader, label, positive)
        bad = invalid_training_rows(X, features, reader.label, reader.row_label, "skip",
                                    y=y, target=label)
    return np.ones(X.shape[0], dtype=bool) if bad is None else ~bad


def _size_and_kept(mask: NDArray) -> tuple[int, int]:
    return mask.size, int(np.count_nonzero(mask))


def _distinct_labels(path: str, label: str) -> NDArray:
    with open_table(path, PART) as reader:
        raw = reader.read_labels(reader.column_indices([label], "--target")[0])
    return np.array(list(dict.fromkeys(raw.tolist())), dtype=raw.dtype)


def read_parts(folder, *, columns: Sequence[str] | None = None, label: str | None = None,
               dtype=np.float64, exclude: Sequence[str] | None = None,
               positive: str | None = None, on_invalid: str | None = None) -> Parts:
    """Read a folder of Parquet, ``.npy`` or CSV/text parts lazily as one data set.

    Parts are taken in file-name order; each part becomes one row block of X,
    read by the worker that uses it (nothing passes through the client).
    Which files are parts: :mod:`fastlogit.dask.part_folder` (``.parquet``,
    ``.pq``, ``.npy``, or ``.csv``/``.tsv``/``.txt`` read as ``fastlogit
    train`` reads one such file; never a name starting with ``.`` or ``_``).
    Only the part headers (Parquet footers, .npy headers, the first lines of
    a text part) are read here, except with ``on_invalid="skip"`` and for
    text parts: a text part's rows are counted by reading its first feature
    column, one task per part on the current scheduler.

    Parameters
    ----------
    folder : path
    columns : sequence of str, optional
        Feature columns.  Default: every column but ``label`` and ``exclude``.
        A plain 2-D .npy part and a text part without a header line have
        columns named "0", "1", ...; a structured .npy part, its fields.
    label : str, optional
        Label column, returned as Y (0/1 numbers, or ``positive`` as 1).
    dtype : float32 or float64
        dtype of X.
    exclude : sequence of str, optional
        Columns left out of the default features.
    positive : str, optional
        The label that counts as 1 (the one other label counts as 0).
    on_invalid : {None, "error", "skip"}
        A row holding NaN or inf (in a feature, read as ``dtype``, or the
        label), as ``fastlogit train --on-invalid`` (and, without a label,
        ``fastlogit score --on-invalid``) treats it:

        * None (default): the values as they are;
        * "error": the blocks stop with the part, row and column when read;
        * "skip": the row is **left out** of X and Y, with or without a
          label, by the one rule of the in-memory loader
          (:func:`fastlogit.training_table.invalid_training_rows`).  To know
          the rows, each part is read once more *here*, on the workers of
          the current scheduler; the masks stay in cluster memory (1 byte
          per row, ``.keep``) and the blocks of X and Y take their rows from
          them, so ``.kept`` and the chunks of X are exact row counts.

    Returns
    -------
    Parts
        ``.X`` (m, n) dask array, ``.Y`` (m,) or None, ``.features``, ``.files``, ``.rows``
        (stored), ``.kept`` (in X), ``.skipped``, ``.keep`` (skip only).

    Examples
    --------
    >>> parts = fld.read_parts("parts/", label="y", on_invalid="skip")   # doctest: +SKIP
    >>> parts.skipped, parts.X.shape                                      # doctest: +SKIP
    (2, (398, 2))
    """
    import dask
    da = dask_array_module()

    files, fmt = list_parts(folder)
    dtype = check_float_dtype(dtype, "dtype")
    if on_invalid is not None:
        on_invalid = check_choice(on_invalid, "on_invalid", ("error", "skip"))
    # Footers and headers are small reads dominated by latency (an object
    # store answers in ~10 ms): read them concurrently, keep file order.
    with ThreadPoolExecutor(max_workers=min(32, len(files))) as pool:
        described = list(pool.map(describe_part, files))
    names = check_same_columns(files, [part_names for _, part_names in described])
    rows = [None if k is None else int(k) for k, _ in described]  # None: a text part
    where = f"INPUT {str(folder)!r}"
    with open_table(files[0], PART) as first:
        if label is not None:
            first.column_indices([label], "--target")
        features = choose_features(names, label, None if columns is None else
                                   [str(c) for c in columns], exclude, where)
        first.column_indices(features, "--features")
    masks, keep = [None] * len(files), None
    if on_invalid == "skip":
        # One read of every part now, so that the rows left out are known
        # before any block is built: X keeps exact chunk sizes.  The masks'
        # lengths are the parts' row counts.
        find = dask.delayed(_read_keep, pure=True)
        masks = dask.persist(*[find(str(p), features, dtype, label, positive, k)
                               for p, k in zip(files, rows)])
        counted = dask.compute(*[dask.delayed(_size_and_kept, pure=True)(mask)
                                 for mask in masks])
        rows, kept = [n for n, _ in counted], [k for _, k in counted]
        keep = da.concatenate([da.from_delayed(mask, shape=(n,), dtype=bool)
                               for mask, n in zip(masks, rows)], axis=0)
        # A part with nothing left out is read whole (no copy per pass).
        masks = [None if k == n else mask for mask, k, n in zip(masks, kept, rows)]
        on_invalid = None               # nothing invalid is left in the kept rows
    else:
        # Text parts have no row count in a header: each is counted by a task
        # that reads its first feature column (see docs/scaling.md for the cost).
        count = dask.delayed(count_rows, pure=True)
        unknown = [j for j, n in enumerate(rows) if n is None]
        for j, n in zip(unknown, dask.compute(*[count(str(files[j]), features[0])
                                                for j in unknown])):
            rows[j] = n
        kept = rows
    read = dask.delayed(_read_block, pure=True)
    X = da.concatenate([
        da.from_delayed(read(str(p), features, dtype, on_invalid, mask, n),
                        shape=(k, len(features)), dtype=dtype)
        for p, k, mask, n in zip(files, kept, masks, rows)], axis=0)
    Y = None
    if label is not None:
        targets = dask.delayed(_read_targets, pure=True)
        Y = da.concatenate([
            da.from_delayed(targets(str(p), label, positive, on_invalid, mask, n), shape=(k,),
                            dtype=np.float64)
            for p, k, mask, n in zip(files, kept, masks, rows)], axis=0)
    return Parts(X, Y, features, files, rows, fmt, kept, keep)


def fit_parts(input_folder, label: str, *, columns: Sequence[str] | None = None,
              exclude: Sequence[str] | None = None, positive: str | None = None,
              scheduler: str | None = None, dtype=np.float64, C: float | None = None,
              on_invalid: str = "error", return_classes: bool = False,
              return_skipped: bool = False, **fit_kwargs):
    """:func:`fit` on a folder of parts (``fastlogit train --scheduler``).

    ``C`` (scikit-learn's inverse penalty, inf for none) may be given instead
    of ``l2``: ``l2 = 1 / (C * rows)``, the rows trained on.  ``columns``,
    ``exclude``, ``positive`` and ``on_invalid`` are ``--features``,
    ``--exclude``, ``--positive`` and ``--on-invalid`` of ``fastlogit
    train``: a row holding NaN or inf (in a feature or the label) stops the
    fit with its part, row and column ("error"), or is left out ("skip", as
    in :func:`read_parts`: the fit is the in-memory fit of the other rows).

    Returns
    -------
    (FitResult, features, rows), rows counting the rows trained on; then the
    classes ({"positive", "negative"}, or {} without ``positive``) when
    ``return_classes``, and the number of rows skipped when ``return_skipped``.

    Examples
    --------
    >>> res, features, rows = fld.fit_parts("parts/", "outcome", C=1.0,
    ...                                     scheduler="local:2")  # doctest: +SKIP
    """
    import dask

    on_invalid = check_choice(on_invalid, "on_invalid", ("error", "skip"))
    if "sample_weight" in fit_kwargs:
        raise TypeError("fit_parts takes no sample_weight (the parts give the rows)")
    if C is not None and "l2" in fit_kwargs:
        raise TypeError("give C or l2, not both")
    with scheduler_client(scheduler):
        parts = read_parts(input_folder, columns=columns, label=label, dtype=dtype,
                           exclude=exclude, positive=positive, on_invalid=on_invalid)
        rows = int(sum(parts.kept))
        if rows == 0:
            raise InputError(f"INPUT {str(input_folder)!r}: every row holds NaN or inf; "
                             "nothing to train on")
        classes = {}
        if positive is not None:
            distinct = dask.compute(*[dask.delayed(_distinct_labels, pure=True)(str(p), label)
                                      for p in parts.files])
            classes = label_classes(np.concatenate(distinct), positive,
                                    f"INPUT {str(input_folder)!r} column {label!r} (--target)")
        if C is not None:
            fit_kwargs["l2"] = l2_from_C(check_scalar(C, "C"), rows)
        res = fit(parts.X, parts.Y, **fit_kwargs)
    out = (res, parts.features, rows)
    if return_classes:
        out += (classes,)
    if return_skipped:
        out += (parts.skipped,)
    return out
