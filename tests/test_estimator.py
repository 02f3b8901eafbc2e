"""fastlogit.LogisticRegression: scikit-learn's estimator checks, agreement with
sklearn.linear_model.LogisticRegression(solver="lbfgs"), and the estimator API."""
import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
pytest.importorskip("scipy")

from sklearn.datasets import load_breast_cancer, make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression as SkLogisticRegression  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.class_weight import compute_class_weight  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastlogit  # noqa: E402
from fastlogit import LogisticRegression  # noqa: E402
from fastlogit.estimator import _CLASS_WEIGHT_TAKES_SW as CLASS_WEIGHT_TAKES_SW  # noqa: E402


@parametrize_with_checks([LogisticRegression(), LogisticRegression(solver="lbfgs")])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_tags_declare_binary_only():
    from sklearn.utils import get_tags
    tags = get_tags(LogisticRegression())
    assert tags.classifier_tags.multi_class is False
    assert tags.input_tags.sparse is False and tags.input_tags.allow_nan is False


@pytest.mark.parametrize("solver", ["lbfgs", "newton"])
def test_fit_finds_nan_and_inf_without_a_separate_pass(solver):
    # fit skips scikit-learn's NaN/inf scan (a whole pass over X); the first
    # kernel pass finds them, in rows of zero weight too, and names the element.
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((60, 4)), np.arange(60) % 2
    for bad in (np.nan, np.inf, -np.inf):
        Xb = X.copy()
        Xb[7, 3] = bad
        for sw in (None, np.where(np.arange(60) == 7, 0.0, 1.0)):
            with pytest.raises(ValueError, match=r"\(no NaN or inf\); X\[7, 3\]"):
                LogisticRegression(solver=solver).fit(Xb, y, sample_weight=sw)
        with pytest.raises(ValueError, match="NaN|inf"):      # predict keeps the scan
            LogisticRegression(solver=solver).fit(X, y).predict(Xb)


@pytest.fixture(scope="module")
def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def synthetic():
    return make_classification(n_samples=3000, n_features=20, n_informative=8,
                               flip_y=0.05, random_state=0)


def objective(clf, X, y, sample_weight=None):
    """The final loss of the optimisers: sklearn's objective / (C * sum(s))."""
    s = np.ones(y.size) if sample_weight is None else sample_weight
    if clf.class_weight is not None:
        s = s * clf.class_weight_per_sample_
    J, _, _ = fastlogit.cost_and_gradients(X, clf.coef_.T, clf.intercept_[0],
                                           (y == clf.classes_[1]).astype(float),
                                           sample_weight=s, l2=1 / (clf.C * s.sum()))
    return J


def fit_both(X, y, C, solver, sample_weight=None, sk_solver="lbfgs", **params):
    sk = SkLogisticRegression(C=C, tol=1e-10, max_iter=10_000, solver=sk_solver, **params)
    sk.fit(X, y, sample_weight=sample_weight)
    ours = LogisticRegression(C=C, tol=1e-10, max_iter=10_000, solver=solver, **params)
    ours.fit(X, y, sample_weight=sample_weight)
    for clf in (sk, ours):
        if clf.class_weight is not None:
            cw = compute_class_weight(clf.class_weight, classes=clf.classes_, y=y,
                                      **({"sample_weight": sample_weight}
                                         if CLASS_WEIGHT_TAKES_SW else {}))
            clf.class_weight_per_sample_ = cw[np.searchsorted(clf.classes_, y)]
    return ours, sk


def assert_matches_sklearn_lbfgs(X, y, C, solver, sample_weight=None, **params):
    """Same coefficients to 1e-5 relative (to the largest coefficient) and the
    same final loss to 1e-9 relative as sklearn's lbfgs.

    sklearn's lbfgs stops on its ftol (a cost decrease below 1.4e-14) with max
    |gradient| ~1e-8 even for tol = 1e-10, i.e. ~1e-7 off the optimum in each
    coefficient: element-wise rtol on near-zero coefficients, or a 1e-9
    match of the unpenalised log-loss (first-order in those errors), would
    test sklearn's stopping point, not ours.  Ours is checked against the
    exact optimum in test_matches_exact_optimum.
    """
    ours, sk = fit_both(X, y, C, solver, sample_weight, **params)
    scale = np.max(np.abs(sk.coef_))
    np.testing.assert_allclose(ours.coef_, sk.coef_, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(ours.intercept_, sk.intercept_, rtol=1e-5, atol=1e-5 * scale)
    J_ours, J_sk = objective(ours, X, y, sample_weight), objective(sk, X, y, sample_weight)
    assert J_ours == pytest.approx(J_sk, rel=1e-9)
    if ours.solver != "lbfgs":        # Newton reaches the optimum: never a higher loss
        assert J_ours <= J_sk * (1 + 1e-15)
    loss_ours = log_loss(y, ours.predict_proba(X), sample_weight=sample_weight)
    loss_sk = log_loss(y, sk.predict_proba(X), sample_weight=sample_weight)
    assert loss_ours == pytest.approx(loss_sk, rel=1e-7)


@pytest.mark.parametrize("C", [0.01, 0.1, 1.0])
def test_matches_sklearn_on_breast_cancer(breast_cancer, C):
    X, y = breast_cancer
    assert_matches_sklearn_lbfgs(X, y, C, "auto")


@pytest.mark.parametrize("solver", ["auto", "lbfgs", "newton"])
@pytest.mark.parametrize("C", [0.05, 1.0])
def test_matches_sklearn_on_synthetic(synthetic, solver, C):
    X, y = synthetic
    assert_matches_sklearn_lbfgs(X, y, C, solver)


@pytest.mark.parametrize("class_weight", [None, "balanced", {0: 3.0, 1: 0.5}])
def test_matches_sklearn_with_weights(synthetic, class_weight):
    X, y = synthetic
    sw = np.random.default_rng(0).uniform(0.1, 3.0, size=y.size)
    assert_matches_sklearn_lbfgs(X, y, 0.5, "auto", sample_weight=sw, class_weight=class_weight)


def test_matches_sklearn_without_intercept(synthetic):
    X, y = synthetic
    assert_matches_sklearn_lbfgs(X, y, 1.0, "auto", fit_intercept=False)
    ours = LogisticRegression(fit_intercept=False).fit(X, y)
    np.testing.assert_array_equal(ours.intercept_, [0.0])


# Against scikit-learn's newton-cholesky, which does converge to tol = 1e-10.
# A coefficient error is bounded by max|gradient| / lambda_min(Hessian) and
# lambda_min >= 1 / (C m): 1e-7 is within that bound up to C = 100; at C = 1e4
# (lambda_min ~ 1e-7) only the 1e-5 is, and the loss is compared.
@pytest.mark.parametrize("C,rtol", [(0.01, 1e-7), (1.0, 1e-7), (100.0, 1e-7), (1e4, 1e-5)])
def test_matches_exact_optimum_on_breast_cancer(breast_cancer, C, rtol):
    X, y = breast_cancer
    ours, sk = fit_both(X, y, C, "auto", sk_solver="newton-cholesky")
    np.testing.assert_allclose(ours.coef_, sk.coef_, rtol=rtol)
    np.testing.assert_allclose(ours.intercept_, sk.intercept_, rtol=rtol)
    assert objective(ours, X, y) <= objective(sk, X, y) + 1e-15
    assert abs(log_loss(y, ours.predict_proba(X)) - log_loss(y, sk.predict_proba(X))) <= 1e-9


def test_matches_exact_optimum_with_weights(synthetic):
    X, y = synthetic
    sw = np.random.default_rng(2).uniform(0.1, 3.0, size=y.size)
    ours, sk = fit_both(X, y, 0.5, "auto", sample_weight=sw, sk_solver="newton-cholesky",
                        class_weight="balanced")
    np.testing.assert_allclose(ours.coef_, sk.coef_, rtol=1e-7)
    loss_ours = log_loss(y, ours.predict_proba(X), sample_weight=sw)
    assert abs(loss_ours - log_loss(y, sk.predict_proba(X), sample_weight=sw)) <= 1e-12


def test_objective_is_sklearns(breast_cancer):
    # At our solution, the gradient of C * sum s_i loss_i + 0.5 ||w||^2 vanishes.
    X, y = breast_cancer
    C = 0.3
    sw = np.random.default_rng(1).uniform(0.5, 2.0, size=y.size)
    clf = LogisticRegression(C=C, tol=1e-12).fit(X, y, sample_weight=sw)
    residual = fastlogit.sigmoid(clf.decision_function(X)) - y
    grad_w = C * X.T @ (sw * residual) + clf.coef_[0]
    grad_b = C * np.sum(sw * residual)
    scale = C * sw.sum()      # tol applies to the gradient divided by C * sum(s)
    assert np.max(np.abs(grad_w)) / scale <= 1e-12 and abs(grad_b) / scale <= 1e-12


def test_attributes_and_shapes(synthetic):
    X, y = synthetic
    clf = LogisticRegression().fit(X, y)
    assert clf.coef_.shape == (1, 20) and clf.coef_.dtype == np.float64
    assert clf.intercept_.shape == (1,)
    assert clf.n_iter_.shape == (1,) and 1 <= clf.n_iter_[0] <= clf.max_iter
    assert clf.n_features_in_ == 20
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    assert clf.decision_function(X).shape == (3000,)
    assert clf.predict_proba(X).shape == (3000, 2)
    assert 0.8 < clf.score(X, y) <= 1.0


def test_string_labels(synthetic):
    X, y = synthetic
    labels = np.array(["spam", "ham"])[y]          # "ham" sorts first
    clf = LogisticRegression().fit(X, labels)
    ref = LogisticRegression().fit(X, (labels == "spam").astype(int))
    np.testing.assert_array_equal(clf.classes_, ["ham", "spam"])
    np.testing.assert_allclose(clf.coef_, ref.coef_, rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), np.array(["ham", "spam"])[ref.predict(X)])


def test_more_than_two_classes_is_a_clear_error():
    X, y = make_classification(n_samples=60, n_classes=3, n_informative=4, random_state=0)
    with pytest.raises(ValueError, match="Only binary classification is supported.*3 classes"):
        LogisticRegression().fit(X, y)


def test_one_class_is_a_clear_error(synthetic):
    X, y = synthetic
    with pytest.raises(ValueError, match="only one class"):
        LogisticRegression().fit(X, np.zeros_like(y))
    with pytest.raises(ValueError, match="Only one class has non-zero sample weight"):
        LogisticRegression().fit(X, y, sample_weight=(y == 1).astype(float))


@pytest.mark.parametrize("param,value", [
    ("C", 0.0), ("C", -1.0), ("C", np.nan), ("tol", -1e-4), ("max_iter", 0),
    ("class_weight", "auto"), ("solver", "saga"), ("fit_intercept", "False"),
    ("fit_intercept", 0), ("penalty", "l1"), ("n_threads", 1.5),
])
def test_invalid_parameters_are_named(synthetic, param, value):
    X, y = synthetic
    with pytest.raises(ValueError, match=param):
        LogisticRegression(**{param: value}).fit(X, y)


def test_probabilities_use_stable_sigmoids(synthetic):
    X, y = synthetic
    clf = LogisticRegression().fit(X, y)
    clf.coef_ = clf.coef_ * 1e4        # scores of order 1e4: sigma(-z) underflows to 0
    z = clf.decision_function(X)
    assert np.max(np.abs(z)) > 1000
    log_proba = clf.predict_log_proba(X)
    assert np.all(np.isfinite(log_proba))
    np.testing.assert_array_equal(log_proba[:, 1], fastlogit.log_sigmoid(z))
    np.testing.assert_array_equal(log_proba[:, 0], fastlogit.log_sigmoid(-z))
    # Where the score is large, log P(class 0) is -z to double precision, not -inf.
    big = z > 800
    np.testing.assert_allclose(log_proba[big, 0], -z[big], rtol=1e-15)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-15)


def test_float32_input_gives_the_float64_fit_of_the_same_numbers(synthetic):
    X, y = synthetic
    X32 = X.astype(np.float32)
    a = LogisticRegression(tol=1e-10).fit(X32, y)
    b = LogisticRegression(tol=1e-10).fit(X32.astype(np.float64), y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9)
    np.testing.assert_allclose(a.decision_function(X32), b.decision_function(X32), rtol=1e-12)


def test_convergence_warning(breast_cancer):
    X, y = breast_cancer
    with pytest.warns(ConvergenceWarning):
        clf = LogisticRegression(C=1e4, max_iter=2, tol=1e-12).fit(X, y)
    assert clf.n_iter_[0] == 2


def test_not_fitted():
    with pytest.raises(NotFittedError):
        LogisticRegression().predict(np.zeros((2, 3)))


def test_pipeline_and_grid_search(breast_cancer):
    X, y = load_breast_cancer(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(tol=1e-6))
    pipe.fit(X, y)
    manual = LogisticRegression(tol=1e-6).fit(StandardScaler().fit_transform(X), y)
    np.testing.assert_array_equal(pipe[-1].coef_, manual.coef_)
    grid = GridSearchCV(pipe, {"logisticregression__C": [0.01, 1.0, 100.0]}, cv=3).fit(X, y)
    sk_pipe = make_pipeline(StandardScaler(), SkLogisticRegression(tol=1e-6, max_iter=10_000))
    sk_grid = GridSearchCV(sk_pipe, {"logisticregression__C": [0.01, 1.0, 100.0]}, cv=3).fit(X, y)
    assert grid.best_params_ == sk_grid.best_params_
    np.testing.assert_allclose(grid.cv_results_["mean_test_score"],
                               sk_grid.cv_results_["mean_test_score"], atol=0.01)
    assert grid.score(X, y) > 0.95


def test_pickle_round_trip(synthetic):
    X, y = synthetic
    clf = LogisticRegression(C=0.5, class_weight="balanced").fit(X, y)
    clone = pickle.loads(pickle.dumps(clf))
    assert clone.get_params() == clf.get_params()
    np.testing.assert_array_equal(clone.coef_, clf.coef_)
    np.testing.assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))
    unfitted = pickle.loads(pickle.dumps(LogisticRegression(C=2.0)))
    assert unfitted.C == 2.0


def test_dataframe_feature_names(synthetic):
    pd = pytest.importorskip("pandas")
    X, y = synthetic
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = LogisticRegression().fit(df, y)
    np.testing.assert_array_equal(clf.feature_names_in_, df.columns)
    np.testing.assert_array_equal(clf.predict(df), LogisticRegression().fit(X, y).predict(X))


# ---------------------------------------------------------------------------
# No penalty: C = inf, penalty=None, separable data
# ---------------------------------------------------------------------------

def test_infinite_C_and_penalty_none_are_the_same_fit(synthetic):
    X, y = synthetic
    a = LogisticRegression(C=np.inf, tol=1e-8).fit(X, y)
    b = LogisticRegression(penalty=None, C=0.5, tol=1e-8).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    # The meaning of C = inf: fastlogit.fit without penalty (as `train -C inf`).
    plain = fastlogit.fit(X, y.astype(float), l2=0.0, tol=1e-8)
    np.testing.assert_array_equal(a.coef_[0], plain.W[:, 0])


def test_separable_data_without_penalty_warn_naming_separation():
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    y = np.array([0, 0, 1, 1, 1])
    with pytest.warns(ConvergenceWarning, match="linearly separable"):
        LogisticRegression(C=np.inf).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression(C=1.0).fit(X, y)      # a penalty: a finite optimum, no warning


def test_tiny_sample_weights_name_the_weights_not_l2(synthetic):
    X, y = synthetic
    with pytest.raises(ValueError, match=r"sample_weight.*raise C") as info:
        LogisticRegression().fit(X, y, sample_weight=np.full(len(y), 1e-320))
    assert "l2" not in str(info.value)


@pytest.mark.parametrize("labels", [(0, 1), (-1.0, 3.0), (False, True), (2, 7)])
def test_two_numeric_labels_take_the_fast_path_with_the_same_result(synthetic, labels):
    from fastlogit.estimator import _two_numeric_classes

    X, y = synthetic
    y_lab = np.where(y == 1, labels[1], labels[0])
    classes, index = _two_numeric_classes(y_lab)
    np.testing.assert_array_equal(classes, np.unique(y_lab))
    assert classes.dtype == y_lab.dtype
    np.testing.assert_array_equal(index, np.unique(y_lab, return_inverse=True)[1])
    as_strings = LogisticRegression().fit(X, y_lab.astype(str))   # the general path
    np.testing.assert_array_equal(LogisticRegression().fit(X, y_lab).coef_, as_strings.coef_)


@pytest.mark.parametrize("y", [[0.0, 0.5, 1.0], [1, 1, 1], [0, 1, 2]])
def test_labels_outside_the_fast_path_get_the_general_errors(y):
    from fastlogit.estimator import _two_numeric_classes

    assert _two_numeric_classes(np.asarray(y))[0] is None
    with pytest.raises(ValueError):
        LogisticRegression().fit(np.arange(3.0).reshape(3, 1), y)
