"""The fastlogit model file: a small, versioned JSON document.

Example (``fastlogit train`` writes it, ``fastlogit score`` reads it)::

    {
      "format": "fastlogit-model",
      "format_version": 1,
      "features": ["glucose", "bmi", "age"],
      "W": [0.0406, 0.0648, 0.0272],
      "b": -8.69,
      "dtype": "float64",
      "training": {"rows": 400, "cost": 0.47, "converged": true, ...}
    }

W holds one weight per feature, in the order of ``features``; the model's
probabilities are ``sigmoid(X @ W + b)`` with the columns of X in that order.
Floats are written with ``repr`` precision, so a model survives a save/load
round trip bit for bit.  :func:`load_model` checks every field and raises
:class:`ModelFileError` (a ValueError) with a one-line message that names the
file and what is wrong.
"""
from __future__ import annotations

import collections
import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT", "FORMAT_VERSION", "Model", "ModelFileError", "fastlogit_version", "load_model",
           "save_model"]

FORMAT = "fastlogit-model"
FORMAT_VERSION = 1
DTYPES = ("float32", "float64")
# A model file is a few kB; anything far bigger is not one (and is not read whole).
MAX_BYTES = 64 << 20


class ModelFileError(ValueError):
    """A model file that cannot be read, is damaged, or is not a fastlogit model."""


@dataclass
class Model:
    """A fitted logistic-regression model with its feature names.

    Attributes
    ----------
    features : list of str, length n
        Column names, in the order of W.
    W : ndarray of float64, shape (n, 1)
    b : float
    dtype : {"float32", "float64"}
        Precision ``fastlogit score`` computes in.
    training : dict
        Metadata: ``rows`` (int), ``cost`` (float or None), ``converged``
        (bool or None) and anything else the trainer recorded.

    Examples
    --------
    >>> import numpy as np
    >>> m = Model(["glucose"], np.array([[0.042]]), -5.66)
    >>> round(m.boundary(), 1)
    134.8
    """

    features: list[str]
    W: np.ndarray
    b: float
    dtype: str = "float64"
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.W = np.asarray(self.W, dtype=np.float64).reshape(-1, 1)
        self.b = float(self.b)
        self.features = [str(f) for f in self.features]
        if len(self.features) != self.W.shape[0]:
            raise ValueError(f"features has {len(self.features)} names but W has "
                             f"{self.W.shape[0]} weights; expected one weight per feature")

    @classmethod
    def from_estimator(cls, est: Any) -> Model:
        """The model of a fitted binary logistic classifier from scikit-learn, glum,
        statsmodels or fastlogit; see :func:`fastlogit.interop.model_from_estimator`."""
        from fastlogit.interop import model_from_estimator  # local: interop imports this module
        return model_from_estimator(est)

    @property
    def n_features(self) -> int:
        return len(self.features)

    def boundary(self) -> float:
        """The decision boundary ``-b / W`` of a one-feature model (P = 0.5)."""
        if self.n_features != 1:
            raise ValueError(f"the boundary is a single value only for a one-feature model; "
                             f"this one has {self.n_features} features")
        return -self.b / float(self.W[0, 0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "features": list(self.features),
            "W": [float(w) for w in self.W[:, 0]],
            "b": self.b,
            "dtype": self.dtype,
            "training": dict(self.training),
        }


def _jsonable(value: Any) -> Any:
    """NumPy scalars in metadata as plain Python numbers (json cannot write them)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no inf/NaN; an unknown metric is recorded as null
    return value


def save_model(model: Model, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` as JSON, atomically.

    The document goes to a temporary file in the same folder that is then
    renamed over ``path``: a reader never sees half a model, and a failure
    leaves no file behind.

    Raises
    ------
    ModelFileError
        If W or b is not finite (JSON cannot hold it and scoring would be
        meaningless) or the model does not validate.
    OSError
        If the folder does not exist or is not writable.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "model.json")
    >>> save_model(Model(["glucose"], np.array([[0.042]]), -5.66), path)
    >>> load_model(path).b
    -5.66
    """
    from fastlogit.io.files import atomic_output

    path = Path(path)
    document = model.to_dict()
    # Which fastlogit wrote the file: the first thing to ask about a model.
    document["training"].setdefault("fastlogit_version", fastlogit_version())
    # Metadata may hold NumPy scalars or an unknown (non-finite) metric; the
    # model itself is validated as it is, so a NaN weight is refused below.
    document["training"] = _jsonable(document["training"])
    # Validate what is about to be written with the same rules as the reader.
    _validate(document, str(path))
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)


def fastlogit_version() -> str:
    """The version of this fastlogit (recorded in every model file it writes)."""
    from fastlogit._version import __version__
    return __version__


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def load_model(path: str | os.PathLike) -> Model:
    """Read and validate a model file written by :func:`save_model`.

    Raises
    ------
    ModelFileError
        With a one-line message: the file is missing or unreadable, not JSON,
        not a fastlogit model, of an unsupported format version, or has a
        missing or malformed field (feature names, W, b, dtype, training).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "model.json")
    >>> save_model(Model(["glucose"], np.array([[0.042]]), -5.66), path)
    >>> load_model(path).features
    ['glucose']
    """
    name = str(path)
    try:
        # A device (/dev/zero) or a FIFO has no size to check in advance (and
        # opening a FIFO waits for a writer): only regular files are model
        # files, and no more than the limit (plus one byte, to tell "at the
        # limit" from "beyond") is ever read.
        if not stat.S_ISREG(os.stat(path).st_mode):
            if os.path.isdir(path):
                raise IsADirectoryError(path)
            raise ModelFileError(f"model file {name!r} is not a regular file (a device or a pipe?)")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ModelFileError(f"model file {name!r} does not exist") from None
    except IsADirectoryError:
        raise ModelFileError(f"model file {name!r} is a folder, not a file") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {name!r}: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise ModelFileError(f"model file {name!r} is larger than {MAX_BYTES} bytes; "
                             f"a fastlogit model is a small JSON file (is this the right file?)")
    if not raw.strip():
        raise ModelFileError(f"model file {name!r} is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(f"model file {name!r} is not a text (UTF-8 JSON) file") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        # JSONDecodeError carries the position; a truncated file shows up here.
        where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
        msg = exc.msg if hasattr(exc, "msg") else str(exc)
        raise ModelFileError(f"model file {name!r} is not valid JSON{where}: {msg}") from None
    except RecursionError:
        raise ModelFileError(f"model file {name!r} is not a fastlogit model "
                             f"(its JSON is nested too deeply)") from None
    return _validate(document, name)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    """A JSON number that is a finite float (a 400-digit integer is not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _validate(document: Any, name: str) -> Model:
    def fail(problem: str) -> ModelFileError:
        return ModelFileError(f"model file {name!r}: {problem}")

    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise fail(f"not a fastlogit model (expected a JSON object with \"format\": \"{FORMAT}\")")
    version = document.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise fail(f"format_version must be an integer; got {version!r}")
    if version > FORMAT_VERSION:
        raise fail(f"format_version {version} is newer than this fastlogit reads "
                   f"({FORMAT_VERSION}); upgrade fastlogit")
    if version < 1:
        raise fail(f"format_version must be >= 1; got {version}")

    features = document.get("features")
    if (not isinstance(features, list) or not features
            or not all(isinstance(f, str) and f for f in features)):
        raise fail("features must be a non-empty list of column names (strings)")
    if len(set(features)) != len(features):
        dupes = sorted(f for f, k in collections.Counter(features).items() if k > 1)
        raise fail(f"features has duplicate names: {', '.join(dupes)}")

    W = document.get("W")
    if not isinstance(W, list) or not all(_is_number(w) for w in W):
        raise fail("W must be a list of numbers, one per feature")
    if len(W) != len(features):
        raise fail(f"W has {len(W)} weights but features has {len(features)} names; "
                   f"expected one weight per feature")
    if not all(_is_finite(w) for w in W):
        raise fail("W holds a non-finite weight (or a number beyond the float range)")

    b = document.get("b")
    if not _is_number(b) or not _is_finite(b):
        raise fail(f"b must be a finite number; got {str(b)[:40]}")

    dtype = document.get("dtype", "float64")
    if dtype not in DTYPES:
        raise fail(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    # A float32 model computes in float32: a weight beyond its range would
    # become inf and every score NaN.
    limit = float(np.finfo(dtype).max)
    if any(abs(float(w)) > limit for w in W) or abs(float(b)) > limit:
        raise fail(f"a weight or b is beyond the range of {dtype} (largest {limit:.7g}); "
                   f"store the model as float64")

    training = document.get("training", {})
    if not isinstance(training, dict):
        raise fail("training must be a JSON object of metadata")
    rows = training.get("rows")
    if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 0):
        raise fail(f"training.rows must be a non-negative integer; got {rows!r}")
    cost = training.get("cost")
    if cost is not None and not _is_number(cost):
        raise fail(f"training.cost must be a number or null; got {cost!r}")
    converged = training.get("converged")
    if converged is not None and not isinstance(converged, bool):
        raise fail(f"training.converged must be true, false or null; got {converged!r}")

    return Model(features=list(features), W=np.array(W, dtype=np.float64).reshape(-1, 1),
                 b=float(b), dtype=dtype, training=training)
