"""A folder of Parquet or ``.npy`` parts as one data set, for the command line.

Each part is one row block of X, read by the worker that uses it with the
readers of :mod:`fastlogit.io`; :func:`score_parts` runs the table-scoring
engine (:func:`fastlogit.scoring.score_file`) on each part, on the workers,
and :func:`fit_parts` takes its columns and labels through the training-table
rules (:mod:`fastlogit.training_table`).  Nothing passes through the client
but part headers and a few numbers per part.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

from fastlogit._objective import l2_from_C
from fastlogit._validation import check_choice, check_float_dtype, check_scalar, check_threshold
from fastlogit.dask.arrays import dask_array_module, tokenize
from fastlogit.dask.training import fit
from fastlogit.io.files import InputError, OutputError, atomic_folder, check_distinct_paths
from fastlogit.io.readers import open_table
from fastlogit.scoring import ON_INVALID, score_file
from fastlogit.training_table import (
    check_invalid_rows, choose_features, label_classes, targets_from_labels,
)

__all__ = ["PART_SUFFIXES", "Parts", "read_parts", "score_parts", "fit_parts", "scheduler_client"]

PART_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".npy": "npy"}
OUTPUT_SUFFIXES = {"parquet": ".parquet", "npy": ".npy"}


class Parts:
    """A folder of parts read lazily as one data set (see :func:`read_parts`).

    Attributes
    ----------
    X : dask.array.Array, shape (m, n), one row block per part
    Y : dask.array.Array of shape (m,), or None when no label was asked for
    weights : dask.array.Array of shape (m,), or None: 0 for the rows left out
        by ``on_invalid="skip"``, else 1
    features : list of str, the columns of X
    files : list of Path, the parts in order
    rows : tuple of int, rows per part
    format : "parquet" or "npy"
    """

    def __init__(self, X, Y, features, files, rows, fmt, weights=None):
        self.X, self.Y, self.features, self.files, self.rows, self.format = (
            X, Y, features, files, rows, fmt)
        self.weights = weights

    def __repr__(self) -> str:
        return (f"Parts({len(self.files)} {self.format} parts, {sum(self.rows)} rows, "
                f"features={self.features!r})")


# What a part is called in messages; the readers add its path.
PART = "INPUT part"


def _part_name(path: Path) -> str:
    return f"{PART} {str(path)!r}"


def list_parts(folder) -> tuple[list[Path], str]:
    """The parts of ``folder`` in file-name order, and their format."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"INPUT {str(folder)!r} must be a folder of .parquet or .npy parts; "
                         "it is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in PART_SUFFIXES and p.is_file())
    formats = {PART_SUFFIXES[p.suffix.lower()] for p in files}
    if not files:
        raise InputError(f"INPUT {str(folder)!r} holds no .parquet or .npy parts")
    if len(formats) > 1:
        raise InputError(f"INPUT {str(folder)!r} mixes Parquet and .npy parts; expected one format")
    return files, formats.pop()


def _describe_part(path: Path) -> tuple[int, list[str]]:
    with open_table(path, PART) as reader:
        return reader.n_rows, list(reader.columns)


def _read_block(path: str, columns: list[str], dtype, on_invalid: str | None = None) -> NDArray:
    """Columns of one part as a C-contiguous (rows, len(columns)) array.

    ``on_invalid`` (training): a row holding NaN or inf is an error naming it
    ("error") or is set to zeros ("skip": its weight is 0, see
    :func:`_read_weights`); None reads the values as they are."""
    with open_table(path, PART) as reader:
        X = reader.read_all(reader.column_indices(columns), dtype=dtype)
        if on_invalid is not None:
            bad = check_invalid_rows(X, columns, reader.label, reader.row_label, on_invalid)
            if bad is not None:
                X[bad] = 0
        return X


def _part_targets(reader, label: str, positive: str | None) -> NDArray:
    raw = reader.read_labels(reader.column_indices([label], "--target")[0])
    return targets_from_labels(raw, positive, f"{reader.label} column {label!r} (--target)")


def _read_targets(path: str, label: str, positive: str | None,
                  on_invalid: str | None = None) -> NDArray:
    """One part's labels; ``on_invalid`` as in :func:`_read_block` (a missing label is 0)."""
    with open_table(path, PART) as reader:
        y = _part_targets(reader, label, positive)
        if on_invalid is not None:
            bad = check_invalid_rows(y[:, None], [label], reader.label, reader.row_label,
                                     on_invalid)
            if bad is not None:
                y[bad] = 0.0
        return y


def _read_weights(path: str, features: list[str], label: str, positive: str | None) -> NDArray:
    """One part's sample weights for ``on_invalid="skip"``: 0 for a row that
    the in-memory trainer leaves out (NaN or inf in a feature or the label:
    :func:`fastlogit.training_table.check_invalid_rows`), else 1."""
    with open_table(path, PART) as reader:
        X = reader.read_all(reader.column_indices(features), dtype=np.float64)
        y = _part_targets(reader, label, positive)
        bad = check_invalid_rows(np.column_stack([X, y]), features + [label], reader.label,
                                 reader.row_label, "skip")
    return np.ones(len(y)) if bad is None else (~bad).astype(np.float64)


def _distinct_labels(path: str, label: str) -> NDArray:
    with open_table(path, PART) as reader:
        raw = reader.read_labels(reader.column_indices([label], "--target")[0])
    return np.array(list(dict.fromkeys(raw.tolist())), dtype=raw.dtype)


def read_parts(folder, *, columns: Sequence[str] | None = None, label: str | None = None,
               dtype=np.float64, exclude: Sequence[str] | None = None,
               positive: str | None = None, on_invalid: str | None = None) -> Parts:
    """Read a folder of Parquet (``*.parquet``) or ``.npy`` parts lazily as one data set.

    Parts are taken in file-name order; each part becomes one row block of X,
    read by the worker that uses it (nothing passes through the client).
    Only the part headers (Parquet footers, .npy headers) are read here.

    Parameters
    ----------
    folder : path
    columns : sequence of str, optional
        Feature columns.  Default: every column but ``label`` and ``exclude``.
        A plain 2-D .npy part has columns named "0", "1", ...; a structured
        one, its fields.
    label : str, optional
        Label column, returned as Y (0/1 numbers, or ``positive`` as 1).
    dtype : float32 or float64
        dtype of X.
    exclude : sequence of str, optional
        Columns left out of the default features.
    positive : str, optional
        The label that counts as 1 (the one other label counts as 0).
    on_invalid : {None, "error", "skip"}
        A row holding NaN or inf (in a feature or the label), checked as the
        blocks are read: None (default) leaves the values as they are;
        "error" stops with the part, row and column (the rule of ``fastlogit
        train``); "skip" sets the row to zeros and gives it weight 0 in
        ``.weights`` (pass them as ``sample_weight``: the fit then equals the
        in-memory one without those rows).

    Returns
    -------
    Parts
        ``.X`` (m, n) dask array, ``.Y`` (m,) or None, ``.features``, ``.files``, ``.rows``,
        ``.weights`` ((m,) dask array with ``on_invalid="skip"`` and a label, else None).
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
        described = list(pool.map(_describe_part, files))
    rows, names = [], None
    for path, (k, part_names) in zip(files, described):
        if names is None:
            names = part_names
        elif part_names != names:
            raise InputError(f"{_part_name(path)} has columns {part_names!r}; the first part "
                             f"{files[0].name!r} has {names!r}")
        rows.append(int(k))
    where = f"INPUT {str(folder)!r}"
    with open_table(files[0], PART) as first:
        if label is not None:
            first.column_indices([label], "--target")
        features = choose_features(names, label, None if columns is None else
                                   [str(c) for c in columns], exclude, where)
        first.column_indices(features, "--features")
    read = dask.delayed(_read_block, pure=True)
    X = da.concatenate([
        da.from_delayed(read(str(p), features, dtype, on_invalid), shape=(k, len(features)),
                        dtype=dtype)
        for p, k in zip(files, rows)], axis=0)
    Y = weights = None
    if label is not None:
        targets = dask.delayed(_read_targets, pure=True)
        Y = da.concatenate([
            da.from_delayed(targets(str(p), label, positive, on_invalid), shape=(k,),
                            dtype=np.float64)
            for p, k in zip(files, rows)], axis=0)
        if on_invalid == "skip":
            weigh = dask.delayed(_read_weights, pure=True)
            weights = da.concatenate([
                da.from_delayed(weigh(str(p), features, label, positive), shape=(k,),
                                dtype=np.float64)
                for p, k in zip(files, rows)], axis=0)
    return Parts(X, Y, features, files, tuple(rows), fmt, weights)


def _model_of(model, columns: Sequence[str] | None, n_columns: Sequence[str]):
    """A model_io.Model from a Model, a model file, a FitResult, an estimator or (W, b)."""
    from fastlogit.model_io import Model, load_model

    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    if isinstance(model, Model):
        return model
    if isinstance(model, tuple) and len(model) == 2:
        W, b, names = model[0], model[1], None
    elif hasattr(model, "coef_") and hasattr(model, "intercept_"):   # scikit-learn-like
        W, b = model.coef_, np.ravel(model.intercept_)[0]
        names = getattr(model, "feature_names_in_", None)
    elif hasattr(model, "W") and hasattr(model, "b"):                # FitResult
        W, b, names = model.W, model.b, None
    else:
        raise TypeError("model must be a fastlogit Model, a model file path, a FitResult, a fitted "
                        f"estimator or a (W, b) tuple; got {type(model).__name__}")
    W = np.asarray(W, dtype=np.float64).reshape(-1, 1)
    if names is None:
        names = list(columns) if columns is not None else list(n_columns)
    names = [str(c) for c in names]
    if len(names) != W.shape[0]:
        raise ValueError(f"the model has {W.shape[0]} weights but the parts give "
                         f"{len(names)} feature columns {names!r}")
    return Model(names, W, float(check_scalar(b, "b")))


def _score_part(model, path, out_path, threshold, n_threads, on_invalid,
                final_path) -> tuple[int, int, int]:
    # Written to out_path (in the temporary folder), named by its final path.
    stats = score_file(model, path, out_path, threshold=threshold, n_threads=n_threads,
                       on_invalid=on_invalid, input_what=PART,
                       output_what=f"OUTPUT part {str(final_path)!r}")
    return stats.rows_in, stats.rows_out, stats.invalid


def score_parts(model, input_folder, output, *, scheduler: str | None = None,
                columns: Sequence[str] | None = None, output_format: str | None = None,
                threshold: float | None = None, n_threads: int | None = None,
                on_invalid: str = "error", model_path=None) -> dict:
    """Score a folder of parts with Dask, writing one output part per input part.

    Part ``k`` of the input (file-name order) gives part ``k`` of the output,
    named after it (``data-007.parquet`` -> ``OUTPUT/data-007.parquet``), with
    a column ``probability`` (and ``label`` if ``threshold`` is given).  Each
    part is read, scored and written by one worker task with the engine of
    ``fastlogit score`` (:func:`fastlogit.scoring.score_file`): the same
    blocks, invalid-row policy and atomic output.  An output part that would
    overwrite an input part, the model file or another output part is refused
    before anything is written.  The output is all or nothing: the parts are
    written into a temporary folder next to ``output``, which becomes
    ``output`` (or whose parts are moved into an existing ``output``) only
    when every part is written; if any part fails, nothing is left behind
    (:func:`fastlogit.io.files.atomic_folder`).

    Parameters
    ----------
    model : fastlogit Model, model file path, FitResult, estimator or (W, b)
        A Model (or file) gives the feature names and the precision (dtype).
    input_folder : path
        ``*.parquet`` or ``*.npy`` parts (see :func:`read_parts`).
    output : path
        Output folder (created if missing; the files of an existing one other
        than the output parts are left alone).
    scheduler : str, optional
        ``"local:N"``, a scheduler address, or None for the current default
        (an active ``distributed.Client`` if there is one).  See
        :func:`scheduler_client`.
    columns : sequence of str, optional
        Feature columns when the model carries no names (default: all).
    output_format : {"parquet", "npy"}, optional
        Default: the input's format.
    threshold : float, optional
        Also write 0/1 labels ``probability >= threshold`` (int8); not NaN.
    n_threads : int, optional
        Threads per task.
    on_invalid : {"error", "skip", "nan"}
        A row holding NaN or inf, as in ``fastlogit score``.
    model_path : path, optional
        The model's file, so that an output naming it is refused.

    Returns
    -------
    dict with ``rows``, ``rows_out``, ``invalid``, ``parts``, ``seconds``,
    ``output`` (str) and ``workers``.

    Examples
    --------
    >>> import fastlogit.dask as fld                                          # doctest: +SKIP
    >>> fld.score_parts("model.json", "parts/", "scores/", scheduler="local:2")  # doctest: +SKIP
    {'rows': 10000000, 'parts': 40, ...}
    """
    import dask

    if isinstance(model, (str, os.PathLike)) and model_path is None:
        model_path = model
    on_invalid = check_choice(on_invalid, "on_invalid", ON_INVALID)
    if threshold is not None:
        threshold = check_threshold(threshold)
    files, fmt = list_parts(input_folder)
    out_fmt = output_format or fmt
    if out_fmt not in OUTPUT_SUFFIXES:
        raise ValueError(f"output_format must be 'parquet' or 'npy'; got {output_format!r}")
    first_columns = _describe_part(files[0])[1]
    model = _model_of(model, columns, first_columns)
    out_dir = Path(output)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"OUTPUT {str(out_dir)!r} must be a folder; it is a file")
    outputs = [out_dir / (p.stem + OUTPUT_SUFFIXES[out_fmt]) for p in files]
    # Before anything is written: no output part may replace an input part
    # (OUTPUT == INPUT), the model, or another output part (p.parquet and p.pq).
    others = [("INPUT part", p) for p in files]
    if model_path is not None:
        others.append(("MODEL", model_path))
    check_distinct_paths([(f"OUTPUT part {str(o)!r}", o) for o in outputs], others)
    for o in outputs:
        if o.is_dir():
            raise OutputError(f"cannot write OUTPUT part {str(o)!r}: it is a folder")
    # One task per part (read, score, write): the fewest tasks for the
    # scheduler, and no block of X or of scores is ever held between tasks.
    score = dask.delayed(_score_part, pure=True)
    with scheduler_client(scheduler) as client, atomic_folder(out_dir) as tmp_dir:
        writes = [score(model, str(p), str(tmp_dir / o.name), threshold, n_threads, on_invalid,
                        str(o),
                        dask_key_name=f"fastlogit-score-part-{k}-" + tokenize(
                            str(p), model.W, model.b, str(tmp_dir / o.name), threshold,
                            on_invalid))
                  for k, (p, o) in enumerate(zip(files, outputs))]
        start = time.perf_counter()
        counts = dask.compute(*writes)
        seconds = time.perf_counter() - start
        workers = len(client.scheduler_info()["workers"]) if client is not None else 0
    rows_in, rows_out, invalid = (int(sum(c[i] for c in counts)) for i in range(3))
    return {"rows": rows_in, "rows_out": rows_out, "invalid": invalid, "parts": len(counts),
            "seconds": seconds, "output": str(out_dir), "workers": workers}


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
    fit with its part, row and column ("error"), or is left out ("skip": it
    gets weight 0, so the fit is the in-memory fit of the other rows).

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
    parts = read_parts(input_folder, columns=columns, label=label, dtype=dtype,
                       exclude=exclude, positive=positive, on_invalid=on_invalid)
    total = int(sum(parts.rows))
    if C is not None and "l2" in fit_kwargs:
        raise TypeError("give C or l2, not both")
    with scheduler_client(scheduler):
        classes = {}
        if positive is not None:
            distinct = dask.compute(*[dask.delayed(_distinct_labels, pure=True)(str(p), label)
                                      for p in parts.files])
            classes = label_classes(np.concatenate(distinct), positive,
                                    f"INPUT {str(input_folder)!r} column {label!r} (--target)")
        rows, weights = total, None
        if parts.weights is not None:
            # Read once, kept in the cluster's memory for the fit's passes.
            weights = parts.weights.persist()
            rows = int(weights.sum().compute())
            if rows == 0:
                raise InputError(f"INPUT {str(input_folder)!r}: every row holds NaN or inf; "
                                 "nothing to train on")
            if rows == total:
                weights = None          # nothing skipped: the unweighted fit
        if C is not None:
            fit_kwargs["l2"] = l2_from_C(check_scalar(C, "C"), rows)
        res = fit(parts.X, parts.Y, sample_weight=weights, **fit_kwargs)
    out = (res, parts.features, rows)
    if return_classes:
        out += (classes,)
    if return_skipped:
        out += (total - rows,)
    return out


def local_cluster(n_workers: int, silence_logs: int = logging.WARNING) -> Any:
    """A ``distributed.LocalCluster`` of `n_workers` processes, one thread each, on loopback.

    The one set of cluster settings of the command line (``--scheduler local:N``), the tests and
    the benchmarks.  The scheduler's HTTP server (it serves /health and /metrics even without a
    dashboard) listens on a free port of 127.0.0.1: distributed's default, 8787, is often taken
    by a notebook's cluster, and then it warns and moves (an error where warnings are errors).
    """
    from distributed import LocalCluster

    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address="127.0.0.1:0",
                        scheduler_kwargs={"dashboard": False}, silence_logs=silence_logs)


@contextlib.contextmanager
def scheduler_client(scheduler: str | None) -> Iterator[Any]:
    """A ``distributed.Client`` for the command line's ``--scheduler`` value.

    * ``"local:N"``: start a LocalCluster of N worker processes (one thread
      each, listening on 127.0.0.1 only, no dashboard, logs below CRITICAL
      silenced: a task's error comes back to the caller as its exception, not
      also as a worker's log lines) and close it on exit;
    * any other string: the address of a running ``dask scheduler``
      (``tcp://host:8786`` or ``host:8786``); the client is closed on exit,
      the cluster is not;
    * None: yield the current default Client (or None: Dask's local threads).

    Examples
    --------
    >>> with scheduler_client("local:2") as client:                 # doctest: +SKIP
    ...     print(len(client.scheduler_info()["workers"]))
    2
    """
    if scheduler is None:
        try:
            from distributed import default_client
            client = default_client()
        except (ImportError, ValueError):
            client = None
        yield client
        return
    from distributed import Client

    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ValueError(f"scheduler must be 'local:N' or a scheduler address; got {scheduler!r}")
    if scheduler.startswith("local:"):
        count = scheduler[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"scheduler 'local:N' needs a positive worker count N; got {scheduler!r}")
        # Worker logs below CRITICAL silenced: a task's error comes back to
        # the caller as its exception, not also as a worker's log lines.
        with local_cluster(int(count), silence_logs=logging.CRITICAL) as cluster, \
                Client(cluster) as client:
            yield client
        return
    with Client(scheduler) as client:
        yield client
