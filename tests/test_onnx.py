"""ONNX files as fastlogit models: graphs written by skl2onnx and by hand (the
shapes other exporters write), checked against the source model and onnxruntime."""
import sys

import numpy as np
import pytest

import fastlogit
from fastlogit.interop import OnnxModelError, model_from_onnx
from fastlogit.model_io import ModelFileError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ELEM = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE}
W = np.array([0.8, -1.7, 0.25])
B = -0.4


@pytest.fixture
def X(rng):
    return rng.normal(size=(500, 3)) * 3.0


def probabilities(model, X):
    dtype = np.dtype(model.dtype)
    return fastlogit.forward_pass(X.astype(dtype), model.W.astype(dtype), model.b)[0]


def float32_bound(X, w, b, p, n_ulps):
    """|error| of a float32 probability: each coefficient and input rounded to
    float32 moves z by at most 2^-24 of each |x_j w_j| term (twice: both
    rounded), plus float32 sums, and dp/dz <= 1/4; then n_ulps of p."""
    spread = np.abs(X) @ np.abs(w) + abs(b)
    return 0.25 * spread * (2 + X.shape[1]) * 2.0 ** -24 + n_ulps * 2.0 ** -24 * p


def save(tmp_path, graph, opset=17, name="model.onnx"):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                    helper.make_opsetid("ai.onnx.ml", 1)])
    model.ir_version = 8
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def tensor(name, dtype, shape):
    return helper.make_tensor_value_info(name, ELEM.get(dtype, dtype), shape)


def const(name, value, dtype):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


# onnxruntime's double Sigmoid is accurate in absolute terms only (it rounds
# near 1 first: sigmoid(-20) is off by 4e-8 relative, sigmoid(-40) is 0), so it
# is compared with an absolute tolerance of 2 ulp of 1.0.
ORT_F64_ATOL = 2 * 2.0 ** -52


def onnxruntime_probability(path, feeds):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, feeds)[-1]
    if isinstance(out, list):          # ZipMap: one {label: probability} per row
        return np.array([row[1] for row in out])
    return np.asarray(out).reshape(len(next(iter(feeds.values()))), -1)[:, -1]


def matmul_add_sigmoid(dtype):
    return helper.make_graph(
        [helper.make_node("MatMul", ["X", "coef"], ["z0"]),
         helper.make_node("Add", ["z0", "intercept"], ["z"]),
         helper.make_node("Sigmoid", ["z"], ["p"])],
        "logistic", [tensor("X", dtype, [None, 3])], [tensor("p", dtype, [None, 1])],
        [const("coef", W.reshape(3, 1), dtype), const("intercept", [B], dtype)])


# ---------------------------------------------------------------- written by skl2onnx

@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "no-zipmap"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["logreg", "sgd"])
def test_skl2onnx(tmp_path, X, kind, dtype, zipmap):
    lm = pytest.importorskip("sklearn.linear_model")
    skl2onnx = pytest.importorskip("skl2onnx")
    y = (X @ W + B + np.random.default_rng(1).logistic(size=len(X)) > 0).astype(int)
    est = (lm.LogisticRegression(C=100.0) if kind == "logreg"
           else lm.SGDClassifier(loss="log_loss", random_state=0)).fit(X, y)
    proto = skl2onnx.to_onnx(est, X[:1].astype(dtype), options={"zipmap": zipmap})
    path = tmp_path / "model.onnx"
    path.write_bytes(proto.SerializeToString())
    model = model_from_onnx(path)
    assert model.dtype == np.dtype(dtype).name and model.features == ["0", "1", "2"]
    assert model.training.get("classes", [0, 1]) == [0, 1]  # when the graph names them
    assert model.training["producer"].startswith("skl2onnx")
    got, expected = probabilities(model, X), est.predict_proba(X.astype(dtype))[:, 1]
    w, b = est.coef_[0], est.intercept_[0]
    if dtype is np.float64:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    else:
        # fastlogit's float32 result is rounded once from double: 1 ulp.
        assert np.all(np.abs(got - expected) <= float32_bound(X, w, b, expected, 1))
    if dtype is np.float64 and zipmap:
        return  # onnxruntime refuses skl2onnx's ZipMap on doubles
    reference = onnxruntime_probability(path, {"X": X.astype(dtype)})
    if dtype is np.float64:
        np.testing.assert_allclose(got, reference, rtol=1e-12, atol=ORT_F64_ATOL)
    else:
        # onnxruntime computes the sigmoid in float32: allow it 16 ulp.
        assert np.all(np.abs(got - reference) <= float32_bound(X, w, b, reference, 16))


# ---------------------------------------------------------------- other exporters' shapes

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_matmul_add_sigmoid(tmp_path, X, dtype):
    path = save(tmp_path, matmul_add_sigmoid(dtype))
    model = model_from_onnx(path)
    assert np.array_equal(model.W[:, 0], W.astype(dtype)) and model.b == np.float64(dtype(B))
    assert model.dtype == np.dtype(dtype).name and model.training["onnx_output"] == "p"
    z = X.astype(dtype).astype(np.float64) @ W.astype(dtype) + dtype(B)
    expected = 1 / (1 + np.exp(-z))
    if dtype is np.float64:
        np.testing.assert_allclose(probabilities(model, X), expected, rtol=1e-12)
        np.testing.assert_allclose(probabilities(model, X), onnxruntime_probability(
            path, {"X": X}), rtol=1e-12, atol=ORT_F64_ATOL)
    else:
        assert np.all(np.abs(probabilities(model, X) - expected) <= 2.0 ** -24 * expected * 2)


def test_gemm_with_transposed_weights(tmp_path, X):
    # The shape of a torch.nn.Linear(3, 1) + Sigmoid export.
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["X", "weight", "bias"], ["z"], transB=1),
         helper.make_node("Sigmoid", ["z"], ["s"]),
         helper.make_node("Flatten", ["s"], ["p"], axis=1)],
        "torch-like", [tensor("X", np.float32, ["batch", 3])], [tensor("p", np.float32, ["batch", 1])],
        [const("weight", W.reshape(1, 3), np.float32), const("bias", [B], np.float32)])
    model = model_from_onnx(save(tmp_path, graph))
    assert np.array_equal(model.W[:, 0], W.astype(np.float32)) and model.b == np.float32(B)


def test_one_input_per_feature_names_the_features(tmp_path, X):
    graph = helper.make_graph(
        [helper.make_node("Concat", ["glucose", "bmi", "age"], ["X"], axis=1),
         helper.make_node("MatMul", ["X", "coef"], ["z0"]),
         helper.make_node("Add", ["intercept", "z0"], ["z"]),
         helper.make_node("Sigmoid", ["z"], ["p"])],
        "named", [tensor(n, np.float64, [None, 1]) for n in ("glucose", "bmi", "age")],
        [tensor("p", np.float64, [None, 1])],
        [const("coef", W.reshape(3, 1), np.float64), const("intercept", [B], np.float64)])
    path = save(tmp_path, graph)
    model = model_from_onnx(path)
    assert model.features == ["glucose", "bmi", "age"]
    feeds = {n: X[:, [j]] for j, n in enumerate(model.features)}
    np.testing.assert_allclose(probabilities(model, X), onnxruntime_probability(path, feeds),
                               rtol=1e-12, atol=ORT_F64_ATOL)


# ---------------------------------------------------------------- what is refused, and how

def refused(tmp_path, graph, *fragments):
    path = save(tmp_path, graph)
    with pytest.raises(OnnxModelError) as info:
        model_from_onnx(path)
    message = str(info.value)
    assert "\n" not in message and repr(str(path)) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_an_unsupported_op_is_named(tmp_path):
    graph = matmul_add_sigmoid(np.float64)
    graph.node.insert(2, helper.make_node("Relu", ["z"], ["r"], name="relu1"))
    graph.node[3].input[0] = "r"
    refused(tmp_path, graph, "node 'relu1'", "op 'Relu' is not supported",
            "LinearClassifier with post_transform LOGISTIC")


def test_scores_without_a_sigmoid(tmp_path):
    graph = matmul_add_sigmoid(np.float64)
    del graph.node[2]
    graph.output[0].name = "z"
    refused(tmp_path, graph, "output 'z' is a linear score without a sigmoid")


def test_multiclass_and_softmax_are_refused(tmp_path, X):
    lm = pytest.importorskip("sklearn.linear_model")
    skl2onnx = pytest.importorskip("skl2onnx")
    three = np.digitize(X[:, 0], [-1.0, 1.0])
    est = lm.LogisticRegression().fit(X, three)
    path = tmp_path / "three.onnx"
    path.write_bytes(skl2onnx.to_onnx(est, X[:1].astype(np.float32)).SerializeToString())
    with pytest.raises(OnnxModelError, match="post_transform 'SOFTMAX' is not supported"):
        model_from_onnx(path)
    graph = helper.make_graph(
        [helper.make_node("LinearClassifier", ["X"], ["label", "p"], domain="ai.onnx.ml",
                          coefficients=list(np.tile(W, 3)), intercepts=[0.0, 1.0, 2.0],
                          classlabels_ints=[0, 1, 2], post_transform="LOGISTIC")],
        "three", [tensor("X", np.float32, [None, 3])],
        [tensor("label", TensorProto.INT64, [None]), tensor("p", np.float32, [None, 3])])
    refused(tmp_path, graph, "probabilities of 3 classes", "binary models only")


@pytest.mark.parametrize("shape, elem, fragment", [
    ([None, "n"], np.float32, "input 'X' has no fixed feature count"),
    ([None, 3, 1], np.float32, "input 'X' has rank 3"),
    ([None, 3], TensorProto.INT64, "input 'X' is not a float or double tensor"),
])
def test_inputs_are_validated(tmp_path, shape, elem, fragment):
    graph = matmul_add_sigmoid(np.float32)
    graph.input[0].CopyFrom(tensor("X", elem, shape))
    refused(tmp_path, graph, fragment)


def test_shapes_are_validated(tmp_path):
    graph = matmul_add_sigmoid(np.float64)
    graph.initializer[0].CopyFrom(const("coef", np.ones((4, 1)), np.float64))
    refused(tmp_path, graph, "MatMul of 3 column(s) by a constant of shape (4, 1)")
    graph = matmul_add_sigmoid(np.float64)
    graph.initializer[1].CopyFrom(const("intercept", np.ones(2), np.float64))
    refused(tmp_path, graph, "Add's constant has shape (2,)", "1 score column(s)")


def test_a_normaliser_of_non_complementary_probabilities_is_refused(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("LinearClassifier", ["X"], ["label", "p"], domain="ai.onnx.ml",
                          coefficients=list(W) + list(2 * W), intercepts=[0.0, 1.0],
                          classlabels_ints=[0, 1], post_transform="LOGISTIC"),
         helper.make_node("Normalizer", ["p"], ["q"], domain="ai.onnx.ml", norm="L1")],
        "norm", [tensor("X", np.float32, [None, 3])], [tensor("q", np.float32, [None, 2])])
    refused(tmp_path, graph, "Normalizer over probabilities that do not sum to one")


def test_file_errors_name_the_file(tmp_path):
    for path, fragment in [(tmp_path / "missing.onnx", "does not exist"),
                           (tmp_path, "is a folder"),
                           (tmp_path / "model.json", "cannot be read as an ONNX model"),
                           (tmp_path / "empty.onnx", "holds no graph")]:
        if path.suffix == ".json":
            path.write_text('{"format": "fastlogit-model"}')
        if path.name == "empty.onnx":
            path.write_bytes(b"")
        with pytest.raises(ModelFileError) as info:
            model_from_onnx(path)
        assert isinstance(info.value, ValueError) and isinstance(info.value, OnnxModelError)
        assert repr(str(path)) in str(info.value) and fragment in str(info.value)
        assert "\n" not in str(info.value)


def test_missing_onnx_package_says_what_to_install(tmp_path, monkeypatch):
    path = save(tmp_path, matmul_add_sigmoid(np.float64))
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(OnnxModelError, match=r"needs the onnx package: pip install \"fastlogit\[onnx\]\""):
        model_from_onnx(path)
