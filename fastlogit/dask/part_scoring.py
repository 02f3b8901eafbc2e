"""Scoring a folder of parts on Dask: one task per part, the output all or nothing.

Each task runs the table-scoring engine of ``fastlogit score``
(:func:`fastlogit.scoring.score_file`) on one part, on a worker, into a
temporary folder that replaces the output folder in one step when every part
is written (:func:`fastlogit.io.files.atomic_folder`).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from fastlogit._validation import check_choice, check_scalar, check_threshold
from fastlogit.dask.arrays import tokenize
from fastlogit.dask.cluster import scheduler_client
from fastlogit.dask.part_folder import PART, describe_part, is_part, list_parts
from fastlogit.io.files import OutputError, atomic_folder, check_distinct_paths
from fastlogit.scoring import ON_INVALID, score_file

__all__ = ["OUTPUT_SUFFIXES", "score_parts"]

# The output formats of a folder of parts, and their suffixes.  Text parts
# (.csv, .tsv, .txt; format "csv") are scored into .csv parts by the CSV
# writer of ``fastlogit score`` (comma-separated, '.' decimals, a header line).
OUTPUT_SUFFIXES = {"parquet": ".parquet", "npy": ".npy", "csv": ".csv"}


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


def _check_no_stale_parts(out_dir: Path, outputs: Sequence[Path]) -> None:
    # The new folder carries over the old one's other files; an old part
    # (by the one rule, is_part) that no new part replaces would be read as
    # part of the new set.
    if not out_dir.is_dir():
        return
    written = {o.name for o in outputs}
    stale = sorted(p.name for p in out_dir.iterdir() if is_part(p) and p.name not in written)
    if stale:
        shown = ", ".join(repr(name) for name in stale[:5]) + (", ..." if len(stale) > 5 else "")
        raise OutputError(f"OUTPUT {str(out_dir)!r} holds {len(stale)} part(s) that this job "
                          f"would not replace ({shown}): a reader of the folder would mix them "
                          f"with the new parts; delete them (or rename them to start with "
                          f"'_') or choose another OUTPUT folder")


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
    ``output`` only when every part is written, in one step, also when
    ``output`` exists (an atomic exchange of the two folders on Linux: a
    reader sees the complete old set of parts or the complete new set, never
    a mix); if any part fails, nothing is left behind and ``output`` is as
    it was (:func:`fastlogit.io.files.atomic_folder`).  An existing
    ``output`` holding parts (``.parquet``, ``.pq``, ``.npy``, ``.csv``,
    ``.tsv``, ``.txt``, not hidden: :func:`fastlogit.dask.part_folder.is_part`)
    that this job would not write is refused before anything is done: a
    reader of the folder would take them for parts of the new set.

    Parameters
    ----------
    model : fastlogit Model, model file path, FitResult, estimator or (W, b)
        A Model (or file) gives the feature names and the precision (dtype).
    input_folder : path
        Parquet, ``.npy`` or CSV/text (``.csv``, ``.tsv``, ``.txt``) parts
        (see :mod:`fastlogit.dask.part_folder`).
    output : path
        Output folder (created if missing; the files of an existing one other
        than the output parts are kept, its parts must all be replaced).
    scheduler : str, optional
        ``"local:N"``, a scheduler address, or None for the current default
        (an active ``distributed.Client`` if there is one).  See
        :func:`fastlogit.dask.scheduler_client`.
    columns : sequence of str, optional
        Feature columns when the model carries no names (default: all).
    output_format : {"parquet", "npy", "csv"}, optional
        Default: the input's format; ``"csv"`` for text parts, whatever
        their delimiter and decimal mark (``data.tsv`` -> ``OUTPUT/data.csv``).
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
        raise ValueError(f"output_format must be 'parquet', 'npy' or 'csv'; "
                         f"got {output_format!r}")
    first_columns = describe_part(files[0])[1]
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
    _check_no_stale_parts(out_dir, outputs)
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
