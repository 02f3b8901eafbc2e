"""Models trained elsewhere, scored by fastlogit: fitted estimators and ONNX files.

Every conversion is checked the way a user would: fastlogit's probabilities
for the converted Model against the source library's own predictions.
"""
import numpy as np
import pytest

import fastlogit
from fastlogit.interop import OnnxModelError, model_from_estimator, model_from_onnx
from fastlogit.model_io import Model, ModelFileError, load_model, save_model

W_TRUE = np.array([1.5, -2.0, 0.5, 3.0])


@pytest.fixture
def data(rng):
    # Scores reach |z| ~ 15 so that both tails of the sigmoid are exercised.
    X = rng.normal(size=(600, 4)) * [1.0, 2.0, 0.5, 1.5]
    y = (X @ W_TRUE - 0.7 + rng.logistic(size=600) > 0).astype(int)
    return X, y


def probabilities(model: Model, X) -> np.ndarray:
    dtype = np.dtype(model.dtype)
    return fastlogit.forward_pass(np.asarray(X, dtype=dtype), model.W.astype(dtype), model.b)[0]


def assert_same_probabilities(model, X, expected):
    # float64 end to end: the only differences are the order of the dot product.
    np.testing.assert_allclose(probabilities(model, X), expected, rtol=1e-12, atol=1e-300)


# ---------------------------------------------------------------- scikit-learn

@pytest.mark.parametrize("make", [
    lambda lm: lm.LogisticRegression(C=10.0),
    lambda lm: lm.LogisticRegression(fit_intercept=False),
    # scikit-learn 1.8+ announces new defaults (l1_ratios, fitted attributes) with
    # FutureWarnings whose silencing parameters older versions lack; coef_ is (1, n) both ways.
    pytest.param(lambda lm: lm.LogisticRegressionCV(Cs=3, cv=3, scoring="neg_log_loss"),
                 marks=pytest.mark.filterwarnings("ignore::FutureWarning")),
    lambda lm: lm.SGDClassifier(loss="log_loss", random_state=0),
], ids=["logreg", "no-intercept", "logreg-cv", "sgd"])
def test_sklearn_estimators(data, make):
    lm = pytest.importorskip("sklearn.linear_model")
    X, y = data
    est = make(lm).fit(X, y)
    model = model_from_estimator(est)
    assert model.features == ["0", "1", "2", "3"]
    assert model.dtype == "float64" and model.training["classes"] == [0, 1]
    assert_same_probabilities(model, X, est.predict_proba(X)[:, 1])
    same = Model.from_estimator(est)
    assert np.array_equal(same.W, model.W) and same.b == model.b and same.features == model.features


def test_feature_names_string_classes_and_the_model_file(data, tmp_path):
    pd = pytest.importorskip("pandas")
    lm = pytest.importorskip("sklearn.linear_model")
    X, y = data
    frame = pd.DataFrame(X, columns=["glucose", "bmi", "age", "blood pressure"])
    labels = np.where(y == 1, "M", "B")       # positive class: the second in sorted order
    est = lm.LogisticRegression().fit(frame, labels)
    model = Model.from_estimator(est)
    assert model.features == ["glucose", "bmi", "age", "blood pressure"]
    assert model.training["classes"] == ["B", "M"]
    assert_same_probabilities(model, X, est.predict_proba(frame)[:, list(est.classes_).index("M")])
    save_model(model, tmp_path / "model.json")
    again = load_model(tmp_path / "model.json")
    assert np.array_equal(again.W, model.W) and again.b == model.b
    assert again.training["classes"] == ["B", "M"]


def test_fastlogit_estimator(data):
    pytest.importorskip("sklearn")
    X, y = data
    est = fastlogit.LogisticRegression(C=5.0).fit(X, y)
    model = model_from_estimator(est)
    assert_same_probabilities(model, X, est.predict_proba(X)[:, 1])


def test_sklearn_refusals(data):
    lm = pytest.importorskip("sklearn.linear_model")
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = data
    with pytest.raises(ValueError, match="not fitted.*call fit first"):
        model_from_estimator(lm.LogisticRegression())
    three = np.digitize(X[:, 0], [-0.5, 0.5])
    with pytest.raises(ValueError, match="fitted on 3 classes.*binary models only"):
        model_from_estimator(lm.LogisticRegression().fit(X, three))
    with pytest.raises(ValueError, match="loss='hinge'.*expected loss=\"log_loss\""):
        model_from_estimator(lm.SGDClassifier(loss="hinge").fit(X, y))
    with pytest.raises(TypeError, match="RandomForestClassifier, which is not a binary linear"):
        model_from_estimator(RandomForestClassifier(n_estimators=2).fit(X, y))
    with pytest.raises(TypeError, match=r"Pipeline.*convert its last step \(est\[-1\]\)"):
        model_from_estimator(make_pipeline(StandardScaler(), lm.LogisticRegression()).fit(X, y))
    with pytest.raises(TypeError, match="est is a builtins dict"):
        model_from_estimator({"W": [1.0]})


def test_non_finite_coefficients_are_refused(data):
    lm = pytest.importorskip("sklearn.linear_model")
    X, y = data
    est = lm.LogisticRegression().fit(X, y)
    est.coef_[0, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite coefficients"):
        model_from_estimator(est)


# ---------------------------------------------------------------- glum

def test_glum(data):
    pd = pytest.importorskip("pandas")
    glum = pytest.importorskip("glum")
    X, y = data
    est = glum.GeneralizedLinearRegressor(family="binomial", alpha=0.0).fit(X, y)
    model = model_from_estimator(est)
    assert model.features == ["0", "1", "2", "3"]
    assert_same_probabilities(model, X, est.predict(X))
    frame = pd.DataFrame(X, columns=list("abcd"))
    named = model_from_estimator(glum.GeneralizedLinearRegressor(
        family="binomial", alpha=1e-3).fit(frame, y))
    assert named.features == list("abcd")


@pytest.mark.filterwarnings("ignore:Sigmoid function too close")  # glum fitting cloglog
@pytest.mark.parametrize("kwargs, message", [
    ({"family": "poisson"}, "PoissonDistribution family; expected family=\"binomial\""),
    ({"family": "binomial", "link": "cloglog"}, "CloglogLink; expected link=\"logit\""),
])
def test_glum_refusals(data, kwargs, message):
    glum = pytest.importorskip("glum")
    X, y = data
    with np.errstate(all="ignore"):  # glum's own fit of these links underflows on the way
        est = glum.GeneralizedLinearRegressor(alpha=0.0, **kwargs).fit(X, y)
    with pytest.raises(ValueError, match=message):
        model_from_estimator(est)
    with pytest.raises(ValueError, match="not fitted"):
        model_from_estimator(glum.GeneralizedLinearRegressor(family="binomial"))


# ---------------------------------------------------------------- statsmodels

@pytest.mark.parametrize("constant", ["first", "last", "none"])
def test_statsmodels_logit(data, constant):
    sm = pytest.importorskip("statsmodels.api")
    X, y = data
    exog = X if constant == "none" else sm.add_constant(X, prepend=constant == "first")
    results = sm.Logit(y, exog).fit(disp=0)
    model = model_from_estimator(results)
    assert model.features == ["0", "1", "2", "3"]
    if constant == "none":
        assert model.b == 0.0
    assert_same_probabilities(model, X, results.predict(exog))


def test_statsmodels_names_and_glm(data):
    pd = pytest.importorskip("pandas")
    sm = pytest.importorskip("statsmodels.api")
    X, y = data
    frame = sm.add_constant(pd.DataFrame(X, columns=["glucose", "bmi", "age", "bp"]))
    results = sm.Logit(pd.Series(y), frame).fit(disp=0)
    model = model_from_estimator(results)
    assert model.features == ["glucose", "bmi", "age", "bp"]   # 'const' went into b
    assert model.b == results.params["const"]
    assert_same_probabilities(model, X, results.predict(frame))
    glm = sm.GLM(y, frame, family=sm.families.Binomial()).fit()
    assert_same_probabilities(model_from_estimator(glm), X, glm.predict(frame))
    smf = pytest.importorskip("statsmodels.formula.api")
    table = frame.drop(columns="const").assign(y=y)
    formula = smf.logit("y ~ glucose + bmi + age + bp", table).fit(disp=0)
    model = model_from_estimator(formula)
    assert model.features == ["glucose", "bmi", "age", "bp"]   # 'Intercept' went into b
    assert_same_probabilities(model, X, formula.predict(table))


def test_statsmodels_refusals(data):
    sm = pytest.importorskip("statsmodels.api")
    X, y = data
    exog = sm.add_constant(X)
    with pytest.raises(TypeError, match="statsmodels Logit model, not fitted results"):
        model_from_estimator(sm.Logit(y, exog))
    with pytest.raises(ValueError, match="statsmodels Probit model"):
        model_from_estimator(sm.Probit(y, exog).fit(disp=0))
    with pytest.raises(ValueError, match="Poisson family; expected family=Binomial"):
        model_from_estimator(sm.GLM(y, exog, family=sm.families.Poisson()).fit())
    probit = sm.families.Binomial(link=sm.families.links.Probit())
    with pytest.raises(ValueError, match="Probit link; expected the Logit link"):
        model_from_estimator(sm.GLM(y, exog, family=probit).fit())
    with pytest.raises(ValueError, match="fitted with an offset"):
        model_from_estimator(sm.Logit(y, exog, offset=np.full(len(y), 0.1)).fit(disp=0))
