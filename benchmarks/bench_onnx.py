"""Scoring an ONNX model: onnxruntime against fastlogit on the converted model.

The same logistic model is scored both ways on X of shape (10^6, 3) and
(10^6, 100): as skl2onnx writes it for float32 input (an ``ai.onnx.ml``
LinearClassifier with a LOGISTIC post-transform, two coefficient rows) and as
other exporters write it for float64 (MatMul, Add, Sigmoid).  fastlogit reads
the file with ``fastlogit.interop.model_from_onnx`` and scores with
``forward_pass``; onnxruntime runs the graph (CPU provider, its probability
output).  Each pair sits in one group so that the table shows the ratio.

    pytest benchmarks/bench_onnx.py                     # needs onnx and onnxruntime
    pytest benchmarks/bench_onnx.py --bench-quick       # 20,000 rows
    pytest benchmarks/bench_onnx.py --bench-threads 1   # both libraries on one thread
"""
from __future__ import annotations

import numpy as np
import pytest

import fastlogit
from fastlogit.interop import model_from_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROWS, QUICK_ROWS = 1_000_000, 20_000
FEATURES = (3, 100)
GRAPHS = {"linearclassifier-float32": np.float32, "matmul-float64": np.float64}
IMPLS = ("onnxruntime", "fastlogit")
ELEM = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE}


def _threads(config) -> list[int]:
    text = config.getoption("--bench-threads")
    if text:
        return [int(t) for t in text.split(",")]
    return list(dict.fromkeys([1, max(fastlogit.build_info()["openmp_max_threads"], 1)]))


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    rows = QUICK_ROWS if metafunc.config.getoption("--bench-quick") else ROWS
    params, ids = [], []
    for n in FEATURES:
        for graph in GRAPHS:
            for threads in _threads(metafunc.config):
                for impl in IMPLS:
                    params.append((rows, n, graph, threads, impl))
                    ids.append(f"{rows}x{n}-{graph}-{threads}thr-{impl}")
    metafunc.parametrize("case", params, ids=ids)


def write_graph(path, graph: str, w: np.ndarray, b: float) -> None:
    dtype = GRAPHS[graph]
    n = len(w)
    x = helper.make_tensor_value_info("X", ELEM[dtype], [None, n])
    if graph.startswith("linearclassifier"):
        nodes = [helper.make_node(
            "LinearClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml",
            coefficients=list(-w) + list(w), intercepts=[-b, b], classlabels_ints=[0, 1],
            post_transform="LOGISTIC")]
        outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                   helper.make_tensor_value_info("probabilities", ELEM[dtype], [None, 2])]
        inits = []
    else:
        nodes = [helper.make_node("MatMul", ["X", "coef"], ["z0"]),
                 helper.make_node("Add", ["z0", "intercept"], ["z"]),
                 helper.make_node("Sigmoid", ["z"], ["probabilities"])]
        outputs = [helper.make_tensor_value_info("probabilities", ELEM[dtype], [None, 1])]
        inits = [numpy_helper.from_array(w.reshape(n, 1).astype(dtype), "coef"),
                 numpy_helper.from_array(np.array([b], dtype=dtype), "intercept")]
    model = helper.make_model(helper.make_graph(nodes, graph, [x], outputs, inits),
                              opset_imports=[helper.make_opsetid("", 17),
                                             helper.make_opsetid("ai.onnx.ml", 1)])
    model.ir_version = 8
    onnx.save(model, str(path))


_cache: dict = {}


def _problem(tmp_path_factory, rows, n, graph):
    key = (rows, n, graph)
    if key not in _cache:
        _cache.clear()  # one problem at a time: (10^6, 100) float64 is 800 MB
        rng = np.random.default_rng(0)
        w = rng.normal(size=n) / np.sqrt(n)
        path = tmp_path_factory.mktemp("onnx") / f"{graph}-{n}.onnx"
        write_graph(path, graph, w, 0.1)
        X = rng.normal(size=(rows, n)).astype(GRAPHS[graph])
        _cache[key] = (path, X)
    return _cache[key]


def test_score(benchmark, case, tmp_path_factory):
    rows, n, graph, threads, impl = case
    path, X = _problem(tmp_path_factory, rows, n, graph)
    benchmark.group = f"onnx score ({rows}, {n}) {graph}, {threads} thread(s)"
    model = model_from_onnx(path)
    dtype = np.dtype(model.dtype)
    W = model.W.astype(dtype)
    if impl == "fastlogit":
        # A fresh output per call, as onnxruntime allocates its own.
        result = benchmark(fastlogit.forward_pass, X, W, model.b, n_threads=threads)[0]
    else:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        result = benchmark(session.run, ["probabilities"], {"X": X})[0][:, -1]
    # Checked after timing, against the double-precision formula: float32 results
    # within float32 rounding, float64 within onnxruntime's absolute accuracy.
    z = X.astype(np.float64) @ model.W[:, 0] + model.b
    expected = np.exp(-np.logaddexp(0.0, -z))
    tol = 1e-5 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(result, expected, rtol=tol, atol=tol)
