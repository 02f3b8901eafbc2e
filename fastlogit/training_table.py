"""The training-table loader: a table on disk to (X, y) for fitting.

Used by ``fastlogit train`` and, for folders of parts, by
:func:`fastlogit.dask.fit_parts` (through :func:`choose_features`,
:func:`label_classes` and :func:`targets_from_labels`).  It picks the feature columns (``--features``,
or every column but the target and ``--exclude``), turns the target into
0/1 (numbers in [0, 1] as they are; with ``--positive LABEL`` that label is
1 and the one other label 0), and applies the invalid-row policy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from fastlogit._validation import check_choice, labels_outside
from fastlogit.io.files import InputError
from fastlogit.io.readers import open_table
from fastlogit.io.table import is_unnamed
from fastlogit.scoring import first_invalid, invalid_rows, not_finite

__all__ = ["TrainingTable", "choose_features", "label_classes", "targets_from_labels",
           "check_invalid_rows", "invalid_training_rows", "load_training_table"]

LISTED_LABELS = 10


@dataclass
class TrainingTable:
    """What a training table holds, ready for ``fastlogit.fit``.

    Attributes
    ----------
    X : (m, n) float64, C-contiguous
    y : (m,) float64 in [0, 1]
    features : list of str, the columns of X
    target : str
    rows_skipped : int
        Rows left out by ``on_invalid="skip"``.
    classes : dict
        ``{"positive": label, "negative": label}`` when ``positive`` was given, else {}.
    """

    X: np.ndarray
    y: np.ndarray
    features: list[str]
    target: str
    rows_skipped: int = 0
    classes: dict[str, Any] = field(default_factory=dict)


def choose_features(columns: Sequence[str], target: str, features: Sequence[str] | None,
                    exclude: Sequence[str] | None, label: str) -> list[str]:
    """The feature columns: ``features`` as given, or every column but the
    target, the excluded ones and the unnamed ones (an empty header field, such
    as the index pandas' to_csv writes: ``fastlogit.io.table.is_unnamed``).
    Names must exist (checked by the caller's reader) and not repeat; the
    target is never a feature."""
    exclude = list(exclude or ())
    if features:
        if exclude:
            raise InputError("give --features or --exclude, not both")
        if target in features:
            raise InputError(f"--target {target!r} is also listed in --features")
        if len(set(features)) != len(features):
            raise InputError("--features lists a column twice")
        return list(features)
    unknown = [c for c in exclude if c not in columns]
    if unknown:
        from fastlogit.io.table import missing_columns_message

        raise InputError(missing_columns_message(label, unknown, list(columns), "--exclude"))
    chosen = [c for c in columns if c != target and c not in exclude and not is_unnamed(c)]
    if not chosen:
        raise InputError(f"{label} has no column besides the target {target!r}"
                         f"{' and the excluded ones' if exclude else ''} to train on")
    return chosen


def _as_numbers(raw: np.ndarray) -> np.ndarray | None:
    """Text labels as float64 when every one is a number (an empty one is NaN), else None."""
    if raw.dtype != object:
        return np.asarray(raw, dtype=np.float64)
    try:
        return np.array([float(v) if v != "" else np.nan for v in raw], dtype=np.float64)
    except ValueError:
        return None


def _plain(value):
    """A label as it should appear in a message and in the model file."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return value.item() if isinstance(value, np.generic) else value


def _label_keys(raw: np.ndarray, positive: str | None, where: str):
    """(keys to compare, the positive key, mask of present labels) of a label column."""
    numbers = _as_numbers(raw)
    if positive is None:
        if numbers is None:
            example = next(v for v in raw if _as_numbers(np.array([v], dtype=object)) is None)
            raise InputError(f"{where} holds labels that are not numbers (e.g. {example!r}); "
                             f"name the positive class with --positive LABEL "
                             f"(e.g. --positive {example})")
        return numbers, None, None
    if numbers is not None:
        try:
            return numbers, float(positive), ~np.isnan(numbers)
        except ValueError:
            pass
    key = raw.astype(str) if raw.dtype == object else np.array([repr(v) for v in raw.tolist()])
    return key, str(positive), key != ""


def targets_from_labels(raw: np.ndarray, positive: str | None, where: str) -> np.ndarray:
    """y as float64 from one block of a label column (NaN for a missing label):
    the numbers themselves, or 1 for ``positive`` and 0 for anything else."""
    key, wanted, present = _label_keys(raw, positive, where)
    if wanted is None:
        return key
    y = (key == wanted).astype(np.float64)
    y[~present] = np.nan
    return y


def label_classes(raw: np.ndarray, positive: str | None, where: str) -> dict:
    """Check that a label column (or the distinct labels of all its parts)
    holds ``positive`` and exactly one other label; {"positive", "negative"}."""
    key, wanted, present = _label_keys(raw, positive, where)
    if wanted is None:
        return {}
    distinct = list(dict.fromkeys(key[present].tolist()))
    more = ", ..." if len(distinct) > LISTED_LABELS else ""
    shown = ", ".join(repr(_plain(v)) for v in distinct[:LISTED_LABELS]) + more
    if wanted not in distinct:
        raise InputError(f"--positive {positive!r} is not a label of {where} (its labels: {shown})")
    if len(distinct) > 2:
        raise InputError(f"{where} holds {len(distinct)} distinct labels ({shown}); "
                         f"logistic regression with --positive needs exactly two")
    if len(distinct) < 2:
        raise InputError(f"{where} is {positive!r} in every row; training needs both classes")
    negative = distinct[1] if distinct[0] == wanted else distinct[0]
    return {"positive": _plain(wanted), "negative": _plain(negative)}


def check_invalid_rows(table: np.ndarray, names: Sequence[str], label: str, row_label,
                       on_invalid: str) -> np.ndarray | None:
    """The training rule for rows holding NaN or inf (or a missing label).

    ``table`` holds the columns ``names`` side by side (features, then the
    target, or any of them alone: one part's labels, say); ``label`` names
    the file and ``row_label(i)`` its row i in messages.  Returns None when
    every row is finite; otherwise, with ``on_invalid="error"`` raises an
    InputError naming the first such row and column, with ``"skip"`` returns
    the mask of the rows to leave out.
    """
    bad = invalid_rows(table)
    if bad is None:
        return None
    if on_invalid == "error":
        i, j = first_invalid(table)
        raise InputError(f"{label} {row_label(i)}, column {names[j]!r}: "
                         f"{not_finite(float(table[i, j]))} "
                         f"(--on-invalid skip to leave such rows out)")
    return bad


def invalid_training_rows(X: np.ndarray, names: Sequence[str], label: str, row_label,
                          on_invalid: str, *, y: np.ndarray | None = None,
                          target: str | None = None) -> np.ndarray | None:
    """:func:`check_invalid_rows` over a training block: the features ``X``
    (columns ``names``) and, when given, the targets ``y`` (column
    ``target``), side by side.  The one rule of ``on_invalid`` for training,
    used by :func:`load_training_table` and, part by part, by
    :func:`fastlogit.dask.read_parts` (where ``y`` is None without a label:
    then it is also the scoring engine's rule, NaN or inf in a feature).
    """
    if y is None:
        return check_invalid_rows(X, names, label, row_label, on_invalid)
    return check_invalid_rows(np.column_stack([X, y]), list(names) + [target], label,
                              row_label, on_invalid)


def load_training_table(path, target: str, *, features: Sequence[str] | None = None,
                        exclude: Sequence[str] | None = None, positive: str | None = None,
                        on_invalid: str = "error", what: str = "DATA") -> TrainingTable:
    """Read a training table from ``path`` (any format of :func:`fastlogit.io.open_table`).

    Raises
    ------
    InputError
        One line naming the file, and the row, line and column where it has them.
    """
    on_invalid = check_choice(on_invalid, "on_invalid", ("error", "skip"))
    with open_table(path, what) as reader:
        label = reader.label
        target_col = reader.column_indices([target], "--target")[0]
        names = choose_features(reader.columns, target, features, exclude, label)
        feature_cols = reader.column_indices(names, "--features")
        where = f"{label} column {target!r} (--target)"
        raw = reader.read_labels(target_col)
        classes = label_classes(raw, positive, where)
        y = targets_from_labels(raw, positive, where)
        try:
            X = reader.read_all(feature_cols)
        except InputError as exc:
            if "is not a number" not in str(exc) or features:
                raise
            raise InputError(f"{exc} (leave such a column out with --exclude COLUMN)") from None
        row_label = reader.row_label
    m = X.shape[0]
    if m == 0:
        raise InputError(f"{label} has no rows to train on")
    bad = invalid_training_rows(X, names, label, row_label, on_invalid, y=y, target=target)
    kept = np.arange(m)  # file row of each kept row, for messages
    dropped = 0
    if bad is not None:
        dropped = int(bad.sum())
        X, y, kept = X[~bad], y[~bad], kept[~bad]
        if X.shape[0] == 0:
            raise InputError(f"{label}: every row holds NaN or inf; nothing to train on")
    outside = labels_outside(y)
    if outside.any():
        i = int(np.argmax(outside))
        raise InputError(f"{label} {row_label(int(kept[i]))}, target {target!r}: {float(y[i])!r}; "
                         f"expected 0/1 labels (or probabilities in [0, 1]), or name the "
                         f"positive class with --positive LABEL")
    if np.all(y == y[0]) and y[0] in (0.0, 1.0):
        raise InputError(f"{label}: target {target!r} is {y[0]:g} in every row; "
                         f"training needs both classes")
    return TrainingTable(np.ascontiguousarray(X, dtype=np.float64), np.ascontiguousarray(y),
                         names, target, dropped, classes)
