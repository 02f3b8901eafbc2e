"""Score models trained elsewhere: fitted estimators and ONNX files as fastlogit models.

A binary classifier on the logistic link is fully described by its weights and
intercept, P(y = 1 | x) = sigmoid(x . W + b): once those are read out of
another library's model, fastlogit scores it with its own kernels
(``fastlogit.forward_pass``, ``fastlogit score``) and needs none of that
library at scoring time.

- :func:`model_from_estimator` reads a fitted scikit-learn ``LogisticRegression``
  (or ``LogisticRegressionCV``), ``SGDClassifier(loss="log_loss")``,
  ``fastlogit.LogisticRegression``, glum ``GeneralizedLinearRegressor`` with the
  binomial family and logit link, and statsmodels ``Logit`` (or binomial ``GLM``
  with the logit link) results.
- :func:`model_from_onnx` reads an ONNX file holding a binary logistic graph, as
  skl2onnx writes it (``LinearClassifier`` with ``post_transform="LOGISTIC"``,
  optionally followed by ``ZipMap``/``Cast``/``Normalizer``) and as other
  exporters write it (``MatMul`` or ``Gemm``, ``Add``, ``Sigmoid``); it needs
  ``pip install "fastlogit[onnx]"``.

Both return a :class:`fastlogit.model_io.Model` whose probability is that of
the source model's positive class (scikit-learn's ``classes_[1]``, the column
``predict_proba(X)[:, 1]``), with the feature names where the source has them.
Without names, features are named by position ("0", "1", ...), which is how
fastlogit's readers name the columns of an unnamed input.

Examples
--------
>>> from sklearn.linear_model import LogisticRegression
>>> from sklearn.datasets import load_breast_cancer
>>> import numpy as np, fastlogit
>>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
>>> est = LogisticRegression(max_iter=10_000).fit(X, y)
>>> model = model_from_estimator(est)
>>> model.features[:2]
['mean radius', 'mean texture']
>>> A = fastlogit.forward_pass(X.to_numpy(), model.W, model.b)
>>> bool(np.allclose(A[0], est.predict_proba(X)[:, 1], rtol=1e-12, atol=0))
True
"""
from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from fastlogit._onnx_graph import OnnxModelError, read_logistic_graph
from fastlogit.model_io import Model

__all__ = ["model_from_estimator", "model_from_onnx", "OnnxModelError"]

SUPPORTED_ESTIMATORS = (
    "scikit-learn LogisticRegression/LogisticRegressionCV and SGDClassifier(loss=\"log_loss\"), "
    "fastlogit.LogisticRegression, glum GeneralizedLinearRegressor(family=\"binomial\", "
    "link=\"logit\"), statsmodels Logit or GLM(family=Binomial()) results with the logit link")


def model_from_onnx(path: str | os.PathLike) -> Model:
    """Read a binary logistic-regression model from an ONNX file.

    Parameters
    ----------
    path : str or path-like
        An ``.onnx`` file with one float or double input of shape
        (batch, n_features) (or one (batch, 1) input per feature, whose names
        become the feature names) and an output that is the probability of
        the positive class: ``sigmoid(X @ W + b)``.

    Returns
    -------
    Model
        Computes in the precision of the graph's input (float32 or float64);
        ``training`` records the producer and the class labels if the graph
        names them.

    Raises
    ------
    OnnxModelError
        (a :class:`~fastlogit.model_io.ModelFileError`, so a ValueError) with a
        one-line message naming the file: missing or not ONNX, the onnx package
        not installed, or a graph that is not a binary logistic model (naming
        the operator or attribute that is not supported).
    """
    return read_logistic_graph(path)


def model_from_estimator(est: Any) -> Model:
    """Read the weights of a fitted binary logistic classifier into a :class:`Model`.

    Supported: scikit-learn ``LogisticRegression`` (and ``LogisticRegressionCV``)
    and ``SGDClassifier(loss="log_loss")``, ``fastlogit.LogisticRegression``,
    glum ``GeneralizedLinearRegressor``/``GeneralizedLinearRegressorCV`` with
    the binomial family and logit link, statsmodels ``Logit`` results and
    binomial ``GLM`` results with the logit link.  The features are the
    columns the estimator multiplies: ``feature_names_in_`` (scikit-learn),
    the design-matrix columns (glum, statsmodels; a statsmodels constant
    column becomes the intercept ``b``), else positional names "0", "1", ...

    Raises
    ------
    TypeError
        If ``est`` is not one of the supported kinds (a pipeline, a tree
        model, an unfitted statsmodels model, ...).
    ValueError
        If it is not fitted, has more than two classes, another loss, family
        or link, an offset, or non-finite coefficients.
    """
    for is_kind, convert in _CONVERTERS:
        if is_kind(est):
            return convert(est)
    raise TypeError(f"est is a {_type_name(est)}, which is not a binary linear model on the "
                    f"logistic link that fastlogit can read; supported: {SUPPORTED_ESTIMATORS}"
                    + _hint(est))


# ---------------------------------------------------------------- helpers

def _type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__.split('.')[0]} {cls.__qualname__}"


def _hint(est: Any) -> str:
    if hasattr(est, "steps") and isinstance(getattr(est, "steps"), list):
        return ("; for a Pipeline convert its last step (est[-1]) and apply the earlier "
                "steps to the data before scoring")
    return ""


def _instance_of(module: str, *names: str):
    """A predicate that is true for instances of ``module.name``, without
    importing the module (an object of it exists only if it was imported)."""
    def check(obj: Any) -> bool:
        mod = sys.modules.get(module)
        classes = tuple(getattr(mod, n) for n in names if hasattr(mod, n)) if mod else ()
        return bool(classes) and isinstance(obj, classes)
    return check


def _positional(n: int) -> list[str]:
    return [str(i) for i in range(n)]


def _plain(value: Any) -> Any:
    """A class label as JSON can hold it."""
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def _library_version(est: Any) -> str:
    top = sys.modules.get(type(est).__module__.split(".")[0])
    return str(getattr(top, "__version__", ""))


def _make_model(est: Any, features: list[str], W: np.ndarray, b: float,
                classes: Any = None) -> Model:
    W = np.asarray(W, dtype=np.float64).reshape(-1)
    if not (np.all(np.isfinite(W)) and np.isfinite(b)):
        raise ValueError(f"est (a {_type_name(est)}) has non-finite coefficients or intercept; "
                         f"expected a converged fit with finite weights")
    training: dict[str, Any] = {"source": _type_name(est), "source_version": _library_version(est)}
    if classes is not None:
        # The probability fastlogit computes is that of the second class.
        training["classes"] = [_plain(c) for c in classes]
    return Model(features=features, W=W.reshape(-1, 1), b=float(b), dtype="float64",
                 training=training)


def _not_fitted(est: Any, attribute: str) -> ValueError:
    return ValueError(f"est (a {_type_name(est)}) is not fitted (it has no {attribute}); "
                      f"call fit first")


# ---------------------------------------------------------------- scikit-learn

_is_sklearn_logistic = _instance_of("sklearn.linear_model", "LogisticRegression", "SGDClassifier")
_is_fastlogit_estimator = _instance_of("fastlogit.estimator", "LogisticRegression")


def _from_sklearn(est: Any) -> Model:
    if not hasattr(est, "coef_"):
        raise _not_fitted(est, "coef_")
    loss = getattr(est, "loss", "log_loss")  # LogisticRegression has no loss parameter
    if loss not in ("log_loss", "log"):
        raise ValueError(f"est is an SGDClassifier with loss={loss!r}, which has no logistic "
                         f"link; expected loss=\"log_loss\"")
    coef = np.asarray(est.coef_, dtype=np.float64)
    classes = np.asarray(est.classes_)
    if coef.shape[0] != 1 or len(classes) != 2:
        raise ValueError(f"est (a {_type_name(est)}) was fitted on {len(classes)} classes "
                         f"({', '.join(map(str, classes[:5]))}{', ...' if len(classes) > 5 else ''}); "
                         f"fastlogit scores binary models only")
    names = getattr(est, "feature_names_in_", None)
    features = [str(f) for f in names] if names is not None else _positional(coef.shape[1])
    return _make_model(est, features, coef[0], float(np.ravel(est.intercept_)[0]), classes)


# ---------------------------------------------------------------- glum

_is_glum = _instance_of("glum", "GeneralizedLinearRegressor", "GeneralizedLinearRegressorCV")


def _from_glum(est: Any) -> Model:
    import glum

    if not hasattr(est, "coef_"):
        raise _not_fitted(est, "coef_")
    family, link = est.family_instance, est.link_instance
    if not isinstance(family, glum.BinomialDistribution):
        raise ValueError(f"est is a glum model of the {type(family).__name__} family; "
                         f"expected family=\"binomial\"")
    if type(link) is not glum.LogitLink:
        raise ValueError(f"est is a glum binomial model with the {type(link).__name__}; "
                         f"expected link=\"logit\" (the logistic link)")
    coef = np.asarray(est.coef_, dtype=np.float64).reshape(-1)
    names = [str(f) for f in est.feature_names_]
    # glum names the columns of an unnamed array "_col_0", "_col_1", ...
    if names == [f"_col_{i}" for i in range(len(names))]:
        names = _positional(len(names))
    return _make_model(est, names, coef, float(est.intercept_), classes=None)


# ---------------------------------------------------------------- statsmodels

_is_statsmodels_results = _instance_of("statsmodels.base.wrapper", "ResultsWrapper")
_is_statsmodels_model = _instance_of("statsmodels.base.model", "Model")


def _from_statsmodels(results: Any) -> Model:
    model = results.model
    discrete = sys.modules.get("statsmodels.discrete.discrete_model")
    genmod = sys.modules.get("statsmodels.genmod.generalized_linear_model")
    kind = type(model).__name__
    if genmod is not None and isinstance(model, genmod.GLM):
        from statsmodels.genmod import families
        if not isinstance(model.family, families.Binomial):
            raise ValueError(f"est is the result of a statsmodels GLM of the "
                             f"{type(model.family).__name__} family; expected family=Binomial()")
        # type(), not isinstance: statsmodels derives its Probit link from Logit.
        if type(model.family.link) is not families.links.Logit:
            raise ValueError(f"est is the result of a statsmodels binomial GLM with the "
                             f"{type(model.family.link).__name__} link; expected the Logit link")
    elif discrete is None or not isinstance(model, discrete.Logit):
        raise ValueError(f"est is the result of a statsmodels {kind} model; fastlogit reads "
                         f"Logit and binomial GLM (logit link) results")
    for extra in ("offset", "exposure"):
        if getattr(model, extra, None) is not None:
            raise ValueError(f"est is a statsmodels {kind} fitted with an {extra}, which "
                             f"a fastlogit model does not hold; refit without it")
    params = np.asarray(results.params, dtype=np.float64).reshape(-1)
    names = [str(n) for n in model.exog_names]
    if params.shape[0] != len(names):
        raise ValueError(f"est has {params.shape[0]} parameters but {len(names)} design columns; "
                         f"expected one parameter per column")
    const = getattr(model.data, "const_idx", None)
    keep = [i for i in range(len(names)) if i != const]
    b = float(params[const]) if const is not None else 0.0
    if hasattr(model.data.orig_exog, "columns"):
        features = [names[i] for i in keep]
    else:
        # An unnamed array: statsmodels made up x1, x2, ... ; the scoring input
        # is that array without the constant column, so name them by position.
        features = _positional(len(keep))
    return _make_model(results, features, params[keep], b, classes=[0, 1])


def _from_statsmodels_model(model: Any) -> Model:
    raise TypeError(f"est is a statsmodels {type(model).__name__} model, not fitted results; "
                    f"pass the object its fit() returns")


_CONVERTERS = (
    (_is_sklearn_logistic, _from_sklearn),
    (_is_fastlogit_estimator, _from_sklearn),
    (_is_glum, _from_glum),
    (_is_statsmodels_results, _from_statsmodels),
    (_is_statsmodels_model, _from_statsmodels_model),
)
