"""fastlogit.LogisticRegression: a binary scikit-learn classifier on the fused kernel.

Importing this module imports scikit-learn; ``import fastlogit`` does not
(``fastlogit.LogisticRegression`` loads this module on first access).

Objective (scikit-learn's, same C, sample_weight and class_weight semantics)::

    min_{w, b}  C * sum_i s_i loss_i(w, b) + 0.5 ||w||^2

where ``s_i = sample_weight_i * class_weight[y_i]`` and ``loss_i`` the binary
cross-entropy.  It is solved as :func:`fastlogit.fit` with
``l2 = 1 / (C * sum(s))`` (the same objective divided by ``C * sum(s)``, which
is also what scikit-learn's lbfgs solver minimises, so ``tol`` compares with
the same gradient).
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers
import sys

import numpy as np
from numpy.typing import ArrayLike, NDArray

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.class_weight import compute_class_weight
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("fastlogit.LogisticRegression needs scikit-learn and SciPy: "
                      "pip install fastlogit[sklearn]") from exc

try:  # scikit-learn >= 1.3: declared parameter constraints, checked on fit
    from sklearn.base import _fit_context
    from sklearn.utils._param_validation import Interval, StrOptions
except ImportError:  # pragma: no cover - older scikit-learn: the hand checks below
    _fit_context = None

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - scikit-learn 1.4 and 1.5
    def _validate_data(estimator, X="no_validation", y="no_validation", **kwargs):
        if "ensure_all_finite" in kwargs:       # its name before 1.6
            kwargs["force_all_finite"] = kwargs.pop("ensure_all_finite")
        return estimator._validate_data(X, y, **kwargs)

from fastlogit._api import linear_scores, log_sigmoid, sigmoid
from fastlogit._objective import l2_from_C
from fastlogit._train import fit as _fit
from fastlogit._validation import check_bool

__all__ = ["LogisticRegression"]

_FLOAT_DTYPES = [np.float64, np.float32]
# Whether compute_class_weight accepts sample_weight (scikit-learn >= 1.7);
# scikit-learn's own LogisticRegression passes it when it can.
_CLASS_WEIGHT_TAKES_SW = "sample_weight" in inspect.signature(compute_class_weight).parameters


_SOLVERS = ("auto", "lbfgs", "newton")


def _two_numeric_classes(y):
    """(classes, y == classes[1]) when y holds exactly two integer-valued
    numbers, else (None, None).

    The common case in O(m): scikit-learn's label checks sort y three times
    (np.unique in type_of_target, twice, and for the classes), which costs
    more than a whole fit on 10^6 rows.  Anything else (strings, one class,
    more classes, non-integer floats) takes the general path and its errors.
    """
    if y.ndim != 1 or y.dtype.kind not in "biuf" or y.size == 0:
        return None, None
    lo, hi = y.min(), y.max()
    if not (lo < hi) or (y.dtype.kind == "f" and (lo != np.floor(lo) or hi != np.floor(hi))):
        return None, None
    upper = y == hi
    if np.count_nonzero(upper) + np.count_nonzero(y == lo) != y.size:
        return None, None
    return np.array([lo, hi], dtype=y.dtype), upper.astype(np.intp)


def _is_dask(X) -> bool:
    dask = sys.modules.get("dask")      # never import dask for in-memory inputs
    return dask is not None and dask.is_dask_collection(X)


def _dask_rows(value, name: str, like=None):
    """``value`` as a dask array with known row-chunk sizes.

    A dask DataFrame or Series (or an array made from one, whose chunk sizes
    are unknown) costs one pass to count its rows per partition.  An
    in-memory value (y, sample_weight) is cut like ``like``'s rows.
    """
    import dask.array as da

    if not _is_dask(value):
        if like is None:
            raise TypeError(f"{name} must be a dask array; got {type(value).__name__}")
        arr = np.asarray(value)
        return da.from_array(arr, chunks=(like.chunks[0],) + arr.shape[1:])
    if not isinstance(value, da.Array):
        if not hasattr(value, "to_dask_array"):
            raise TypeError(f"{name} must be a dask array, DataFrame or Series; got "
                            f"{type(value).__name__}")
        return value.to_dask_array(lengths=True)
    if any(math.isnan(c) for c in value.chunks[0]):
        value = value.compute_chunk_sizes()
    return value


def _validated_fit(fit):
    """scikit-learn's own parameter validation when it has it (>= 1.3), the
    hand checks of ``_check_params`` otherwise."""
    if _fit_context is not None:
        return _fit_context(prefer_skip_nested_validation=True)(fit)

    @functools.wraps(fit)
    def checked(self, *args, **kwargs):
        self._check_params()
        return fit(self, *args, **kwargs)
    return checked


class LogisticRegression(ClassifierMixin, BaseEstimator):
    """Binary L2-penalised logistic regression trained on fastlogit's fused kernel.

    A drop-in for ``sklearn.linear_model.LogisticRegression(solver="lbfgs")``
    on two-class problems: same objective, same meaning of ``C``, ``tol``,
    ``sample_weight`` and ``class_weight``.  Every cost and gradient
    evaluation is one pass over X.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength: minimises
        ``C * sum_i s_i loss_i + 0.5 ||coef||^2`` (the intercept is not penalised).
        ``np.inf`` means no penalty (as ``fastlogit train -C inf``); on linearly
        separable data there is then no finite optimum, and fit says so with a
        ConvergenceWarning.
    fit_intercept : bool, default=True
    tol : float, default=1e-4
        Stop when the largest gradient component of the objective divided by
        ``C * sum(s)`` is <= tol (scikit-learn's lbfgs criterion).
    max_iter : int, default=100
    class_weight : dict, "balanced" or None, default=None
        Multiplies each example's sample weight by its class's weight;
        "balanced" uses ``n_samples / (2 * bincount(y))``.
    n_threads : int or None, default=None
        Threads of the fused kernel (None: all usable cores).
    solver : {"auto", "lbfgs", "newton"}, default="auto"
        See :func:`fastlogit.fit` (and docs/training.md for the measurements
        behind "auto").
    penalty : {"l2", None}, default="l2"
        scikit-learn's spelling: None is the same as ``C=np.inf`` (C is then ignored).

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The labels; ``classes_[1]`` is the positive class.
    coef_ : ndarray of shape (1, n_features), float64
    intercept_ : ndarray of shape (1,), float64
    n_iter_ : ndarray of shape (1,), int32
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,)
        Only when X has string column names (e.g. a pandas DataFrame).

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> import fastlogit
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), fastlogit.LogisticRegression(C=1.0)).fit(X, y)
    >>> round(clf.score(X, y), 3)
    0.988
    """

    if _fit_context is not None:
        _parameter_constraints: dict = {
            "C": [Interval(numbers.Real, 0, None, closed="right")],   # inf: no penalty
            "fit_intercept": ["boolean"],
            "tol": [Interval(numbers.Real, 0, None, closed="left")],
            "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
            "class_weight": [dict, StrOptions({"balanced"}), None],
            "n_threads": [numbers.Integral, None],
            "solver": [StrOptions(set(_SOLVERS))],
            "penalty": [StrOptions({"l2"}), None],
        }

    def __init__(self, C: float = 1.0, fit_intercept: bool = True, tol: float = 1e-4,
                 max_iter: int = 100, class_weight: dict | str | None = None,
                 n_threads: int | None = None, solver: str = "auto",
                 penalty: str | None = "l2"):
        self.C = C
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.n_threads = n_threads
        self.solver = solver
        self.penalty = penalty

    # -- tags ---------------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False   # binary only: >2 classes is a ValueError
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"binary_only": True}

    # -- fitting ------------------------------------------------------------

    def _check_params(self) -> None:
        # Only for scikit-learn versions without parameter constraints.
        C = self.C
        if (isinstance(C, (bool, np.bool_)) or not isinstance(C, numbers.Real)
                or not C > 0):
            raise ValueError(f"C must be a positive float (or inf for no penalty); got {C!r}")
        check_bool(self.fit_intercept, "fit_intercept")
        tol = self.tol
        if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real) or not tol >= 0:
            raise ValueError(f"tol must be a non-negative float; got {tol!r}")
        if (isinstance(self.max_iter, (bool, np.bool_))
                or not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1):
            raise ValueError(f"max_iter must be a positive int; got {self.max_iter!r}")
        cw = self.class_weight
        if not (cw is None or cw == "balanced" or isinstance(cw, dict)):
            raise ValueError(f"class_weight must be None, 'balanced' or a dict; got {cw!r}")
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be 'auto', 'lbfgs' or 'newton'; got {self.solver!r}")
        if self.penalty not in ("l2", None):
            raise ValueError(f"penalty must be 'l2' or None; got {self.penalty!r}")

    def _C(self) -> float:
        """C as fit uses it: penalty=None is scikit-learn's spelling of C = inf."""
        return math.inf if self.penalty is None else float(self.C)

    @staticmethod
    def _encode_labels(y):
        """(classes, index of each label) by scikit-learn's rules, with its errors."""
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y")
        classes, y_index = np.unique(y, return_inverse=True)
        if classes.size > 2 or y_type not in ("binary", "multiclass"):
            raise ValueError(
                "Only binary classification is supported. The type of the target is "
                f"{y_type} with {classes.size} classes {list(classes[:5])}"
                f"{'...' if classes.size > 5 else ''}; for more classes wrap this estimator in "
                "sklearn.multiclass.OneVsRestClassifier or use sklearn's LogisticRegression.")
        if classes.size < 2:
            raise ValueError("This solver needs samples of 2 classes in the data, but the "
                             f"data contains only one class: {classes[0]!r}")
        return classes, y_index

    @_validated_fit
    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Dense; float32 is used without a float64 copy.
        y : array-like of shape (n_samples,)
            Exactly two distinct labels (any values, e.g. strings).
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative.

        Returns
        -------
        self
        """
        if _is_dask(X):
            return self._fit_dask(X, y, sample_weight)
        # No NaN/inf pass over X here: the fit's first kernel pass finds them
        # for free and names the element (fastlogit._train.check_start_finite).
        X, y = _validate_data(self, X, y, dtype=_FLOAT_DTYPES, order=None,
                              ensure_all_finite=False)
        classes, y_index = _two_numeric_classes(y)
        if classes is None:
            classes, y_index = self._encode_labels(y)
        self.classes_ = classes

        weighted = sample_weight is not None or self.class_weight is not None
        if weighted:
            sw = _check_sample_weight(sample_weight, X, dtype=np.float64, copy=True)
            if self.class_weight is not None:
                extra = {"sample_weight": sw} if _CLASS_WEIGHT_TAKES_SW else {}
                cw = compute_class_weight(self.class_weight, classes=classes, y=y, **extra)
                sw *= cw[y_index]
            if np.any(sw < 0):
                raise ValueError("sample_weight must be non-negative")
            present = np.bincount(y_index, weights=sw, minlength=2) > 0
            if not present.all():
                raise ValueError(
                    "Only one class has non-zero sample weight "
                    f"({classes[present][0]!r} of classes {list(classes)}): the logistic "
                    "regression optimum does not exist")
            weight_sum = float(sw.sum())
        else:
            sw, weight_sum = None, float(X.shape[0])

        result = _fit(X, y_index.astype(np.float64), l2=l2_from_C(self._C(), weight_sum),
                      sample_weight=sw, fit_intercept=bool(self.fit_intercept),
                      tol=float(self.tol), max_iter=int(self.max_iter),
                      n_threads=self.n_threads, solver=self.solver)
        self.coef_ = result.W.reshape(1, -1)
        self.intercept_ = np.array([result.b if self.fit_intercept else 0.0])
        self.n_iter_ = np.array([result.n_iter], dtype=np.int32)
        return self

    def _fit_dask(self, X, y, sample_weight):
        """Dask inputs: :func:`fastlogit.dask.fit` (Newton up to 200 parameters:
        one round of tasks over X per iteration), with the labels and C
        mapped as for in-memory inputs."""
        import dask
        import dask.array as da

        from fastlogit.dask import fit as fit_dask

        if self.class_weight is not None:
            raise ValueError("class_weight is not supported with dask inputs; pass sample_weight")
        X = _dask_rows(X, "X")
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D dask array of shape (n_samples, n_features); "
                             f"got shape {X.shape}")
        y = _dask_rows(y, "y", like=X)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have shape ({X.shape[0]},); got shape {y.shape}")
        if sample_weight is None:
            classes, weight_sum = da.unique(y).compute(), float(X.shape[0])
        else:
            sample_weight = _dask_rows(sample_weight, "sample_weight", like=X)
            classes, weight_sum = dask.compute(
                da.unique(y), sample_weight.astype(np.float64).sum())
        if classes.size != 2:
            raise ValueError(f"y must hold exactly two classes for logistic regression; got "
                             f"{classes.size}: {list(classes[:5])}")
        result = fit_dask(X, (y == classes[1]).astype(np.float64),
                          l2=l2_from_C(self._C(), float(weight_sum)),
                          sample_weight=sample_weight, fit_intercept=bool(self.fit_intercept),
                          tol=float(self.tol), max_iter=int(self.max_iter),
                          n_threads=self.n_threads, solver=self.solver)
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        self.coef_ = result.W.reshape(1, -1)
        self.intercept_ = np.array([result.b if self.fit_intercept else 0.0])
        self.n_iter_ = np.array([result.n_iter], dtype=np.int32)
        return self

    # -- prediction ---------------------------------------------------------

    def decision_function(self, X: ArrayLike) -> NDArray:
        """Scores ``X @ coef_.T + intercept_``: log-odds of ``classes_[1]``.

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        check_is_fitted(self)
        X = _validate_data(self, X, dtype=_FLOAT_DTYPES, order=None, reset=False)
        # The compiled row loop: float32 X is read in place, scores are
        # accumulated in float64, the bits do not depend on the thread count.
        return linear_scores(X, self.coef_[0], float(self.intercept_[0]), n_threads=self.n_threads)

    def predict(self, X: ArrayLike) -> NDArray:
        """``classes_[1]`` where the score is positive, else ``classes_[0]``."""
        positive = self.decision_function(X) > 0   # checks fitted-ness first
        return self.classes_[positive.astype(np.intp)]

    def predict_proba(self, X: ArrayLike) -> NDArray:
        """Class probabilities, shape (n_samples, 2); columns follow ``classes_``.

        Each column is a sigmoid of the score (``sigmoid(-z)`` for class 0,
        not ``1 - sigmoid(z)``, so tiny probabilities are not rounded to 0).
        """
        z = self.decision_function(X)
        proba = np.empty((z.shape[0], 2))
        sigmoid(-z, out=proba[:, 0])
        sigmoid(z, out=proba[:, 1])
        return proba

    def predict_log_proba(self, X: ArrayLike) -> NDArray:
        """Log of :meth:`predict_proba`, as ``log_sigmoid(±z)``: finite for every finite score."""
        z = self.decision_function(X)
        log_proba = np.empty((z.shape[0], 2))
        log_sigmoid(-z, out=log_proba[:, 0])
        log_sigmoid(z, out=log_proba[:, 1])
        return log_proba
