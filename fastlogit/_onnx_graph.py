"""Read the weights of a binary logistic model out of an ONNX graph.

Exporters write the same model in different shapes: skl2onnx as an
``ai.onnx.ml`` LinearClassifier with a LOGISTIC post-transform (float input)
or as MatMul, Add, Sigmoid and a row normalisation (double input), with a
ZipMap on the probabilities; other exporters as MatMul or Gemm, Add and
Sigmoid.  Rather than matching each node list, the graph is evaluated
symbolically: every tensor on the path from the input to an output is tracked
as an exact formula in X (a constant, ``X @ W + b``, ``sigmoid(X @ W + b)``),
and an operator outside the small supported set stops the reading with its
name.  The output that is a sigmoid of an affine function of X is the model.

The coefficients are copied exactly (float32 values widen exactly to float64);
only a chain of several MatMul/Gemm nodes is folded with rounding.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastlogit.model_io import Model, ModelFileError

__all__ = ["OnnxModelError", "read_logistic_graph"]

SUPPORTED = ("binary logistic graphs: LinearClassifier with post_transform LOGISTIC "
             "(optionally followed by ZipMap, Cast or Normalizer), or MatMul/Gemm, Add, Sigmoid")
# ONNX TensorProto element types of the inputs fastlogit can score.
FLOAT, DOUBLE = 1, 11
DTYPE_OF = {FLOAT: "float32", DOUBLE: "float64"}
ML_DOMAIN = "ai.onnx.ml"


class OnnxModelError(ModelFileError):
    """An ONNX file that cannot be read or is not a binary logistic-regression graph."""


class _Unsupported(Exception):
    """Reading stopped at a node; the message says why (completed by the caller)."""


@dataclass
class _Affine:
    """X @ W + b, one column per output column."""
    W: np.ndarray  # (n, k)
    b: np.ndarray  # (k,)


@dataclass
class _Logistic:
    """sigmoid(X @ W + b) per column, with the class labels if the graph names them."""
    W: np.ndarray
    b: np.ndarray
    labels: tuple | None = None

    def complementary(self) -> bool:
        """Two columns that are sigma(-z) and sigma(z): they sum to one row by row."""
        return (self.W.shape[1] == 2 and np.array_equal(self.W[:, 0], -self.W[:, 1])
                and self.b[0] == -self.b[1])


@dataclass
class _RowSum:
    """ReduceSum over the columns of a probability tensor (a normaliser)."""
    of: _Logistic


@dataclass
class _Label:
    """A class-label output; nothing of the probability is computed from it."""


def read_logistic_graph(path: str | os.PathLike) -> Model:
    """See :func:`fastlogit.interop.model_from_onnx`."""
    error = OnnxModelError
    name = str(path)
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise error(f"reading ONNX model file {name!r} needs the onnx package: "
                    f"pip install \"fastlogit[onnx]\"") from None
    if not os.path.exists(path):
        raise error(f"ONNX model file {name!r} does not exist")
    if os.path.isdir(path):
        raise error(f"ONNX model file {name!r} is a folder, not a file")
    try:
        proto = onnx.load(path)
    except Exception as exc:  # protobuf's DecodeError, OSError, external-data errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"ONNX model file {name!r} cannot be read as an ONNX model: {first}") from None
    if not proto.graph.node and not proto.graph.input:
        # protobuf parses an empty (or some non-ONNX) file as an empty model
        raise error(f"ONNX model file {name!r} holds no graph (is it an ONNX model?)")
    try:
        return _read(proto, onnx, numpy_helper)
    except _Unsupported as exc:
        raise error(f"ONNX model file {name!r}: {exc}") from None


def _read(proto: Any, onnx: Any, numpy_helper: Any) -> Model:
    graph = proto.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in consts]
    values, features, elem = _bind_inputs(inputs)

    best: tuple[int, str] | None = None   # (nodes read, message) of the furthest failure
    found: list[tuple[str, _Logistic]] = []
    linear: list[str] = []
    for out in graph.output:
        try:
            value = _evaluate(graph, out.name, values, consts, onnx, numpy_helper)
        except _Unsupported as exc:
            depth, message = exc.args
            if best is None or depth > best[0]:
                best = (depth, message)
            continue
        if isinstance(value, _Logistic):
            found.append((out.name, value))
        elif isinstance(value, _Affine):
            linear.append(out.name)
    if not found:
        if linear:
            raise _Unsupported(f"output {linear[0]!r} is a linear score without a sigmoid; "
                               f"fastlogit reads {SUPPORTED}")
        detail = best[1] if best else "no output is computed from the input"
        raise _Unsupported(f"{detail}; fastlogit reads {SUPPORTED}")
    output, prob = found[0]
    k = prob.W.shape[1]
    n_classes = len(prob.labels) if prob.labels is not None else k
    if n_classes > 2 or k > 2:
        raise _Unsupported(f"output {output!r} holds the probabilities of {max(k, n_classes)} "
                           f"classes; fastlogit reads binary models only")
    # The positive class is the last column: sigma(z) itself when there is one,
    # the second class's probability when there are two.
    W, b = prob.W[:, -1], float(prob.b[-1])
    if not (np.all(np.isfinite(W)) and np.isfinite(b)):
        raise _Unsupported("the coefficients are not all finite")
    training: dict[str, Any] = {
        "source": "onnx",
        "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
        "onnx_inputs": [i.name for i in inputs],
        "onnx_output": output,
    }
    if prob.labels is not None and len(prob.labels) == 2:
        training["classes"] = list(prob.labels)
    return Model(features=features, W=W.reshape(-1, 1), b=b, dtype=DTYPE_OF[elem],
                 training=training)


def _bind_inputs(inputs: list) -> tuple[dict, list[str], int]:
    """Each graph input as an exact slice of X; the feature names; the element type."""
    if not inputs:
        raise _Unsupported("the graph has no input")
    widths, elems = [], set()
    for i in inputs:
        t = i.type.tensor_type if i.type.HasField("tensor_type") else None
        if t is None or t.elem_type not in DTYPE_OF:
            raise _Unsupported(f"input {i.name!r} is not a float or double tensor")
        dims = list(t.shape.dim) if t.HasField("shape") else None
        if dims is None or len(dims) != 2:
            raise _Unsupported(f"input {i.name!r} has rank {len(dims) if dims else 'unknown'}; "
                               f"expected a 2-D tensor of shape (batch, features)")
        if not dims[1].HasField("dim_value") or dims[1].dim_value < 1:
            raise _Unsupported(f"input {i.name!r} has no fixed feature count "
                               f"(its second dimension is {dims[1].dim_param or 'unknown'!r})")
        widths.append(dims[1].dim_value)
        elems.add(t.elem_type)
    if len(elems) > 1:
        raise _Unsupported("the inputs mix float and double tensors")
    n = sum(widths)
    eye, values, features, start = np.eye(n), {}, [], 0
    for i, w in zip(inputs, widths):
        values[i.name] = _Affine(eye[:, start:start + w].copy(), np.zeros(w))
        if len(inputs) == 1:
            features += [str(j) for j in range(w)]  # one matrix input: columns by position
        else:
            features += [i.name] if w == 1 else [f"{i.name}[{j}]" for j in range(w)]
        start += w
    return values, features, elems.pop()


def _evaluate(graph: Any, output: str, inputs: dict, consts: dict, onnx: Any,
              numpy_helper: Any):
    """The symbolic value of ``output``, reading only the nodes it depends on."""
    producer = {o: node for node in graph.node for o in node.output}
    needed, stack = set(), [output]
    while stack:
        name = stack.pop()
        node = producer.get(name)
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            stack.extend(x for x in node.input if x)
    values: dict[str, Any] = {**consts, **inputs}
    done = 0
    for node in graph.node:  # ONNX stores nodes in topological order
        if id(node) not in needed:
            continue
        try:
            args = [values[x] if x else None for x in node.input]
        except KeyError as exc:
            raise _Unsupported(done, f"node {node.name or node.op_type!r} reads {exc.args[0]!r}, "
                                     f"which nothing produces") from None
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        try:
            results = _apply(node, args, attrs, numpy_helper)
        except _Unsupported as exc:
            raise _Unsupported(done, f"node {node.name or node.op_type!r} on the path to output "
                                     f"{output!r}: {exc.args[0]}") from None
        values.update(zip(node.output, results))
        done += 1
    if output not in values:
        raise _Unsupported(done, f"output {output!r} is not computed by any node")
    return values[output]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _columns(c: np.ndarray, k: int, what: str) -> np.ndarray:
    """A constant broadcast over k columns (shape (), (1,), (k,), (1, k))."""
    c = np.asarray(c, dtype=np.float64)
    if c.size in (1, k) and (c.ndim < 2 or (c.ndim == 2 and c.shape[0] == 1)):
        return np.broadcast_to(c.reshape(-1), (k,)).copy()
    raise _Unsupported(f"{what} has shape {c.shape}, which does not broadcast over the "
                       f"{k} score column(s)")


def _apply(node: Any, args: list, attrs: dict, numpy_helper: Any) -> list:
    op = node.op_type
    domain = node.domain or "ai.onnx"
    if domain not in ("ai.onnx", ML_DOMAIN):
        raise _Unsupported(f"op {op!r} of domain {domain!r} is not supported")
    if any(isinstance(a, _Label) for a in args):
        raise _Unsupported(f"op {op!r} on a class label is not supported")
    x = args[0] if args else None

    if op in ("Identity", "Abs") and isinstance(x, _Logistic) or op == "Identity":
        return [x]  # probabilities are positive: Abs leaves them as they are
    if op == "Constant":
        if "value" in attrs:
            return [numpy_helper.to_array(attrs["value"])]
        for key in ("value_float", "value_floats", "value_int", "value_ints"):
            if key in attrs:
                return [np.asarray(attrs[key])]
        raise _Unsupported(f"Constant with attribute {sorted(attrs)} is not supported")
    if op == "Cast":
        if attrs.get("to") not in DTYPE_OF:
            raise _Unsupported(f"Cast to element type {attrs.get('to')} is not supported "
                               f"(only float and double)")
        return [x]
    if op == "MatMul":
        W2 = args[1]
        if not (isinstance(x, _Affine) and isinstance(W2, np.ndarray)):
            raise _Unsupported("MatMul is supported as (features) @ (constant matrix) only")
        W2 = W2.astype(np.float64).reshape(W2.shape[0], -1) if W2.ndim in (1, 2) else None
        if W2 is None or W2.shape[0] != x.W.shape[1]:
            raise _Unsupported(f"MatMul of {x.W.shape[1]} column(s) by a constant of shape "
                               f"{np.shape(args[1])}; expected ({x.W.shape[1]}, k)")
        return [_Affine(x.W @ W2, x.b @ W2)]
    if op == "Gemm":
        B, C = args[1], args[2] if len(args) > 2 else None
        if not isinstance(x, _Affine) or not isinstance(B, np.ndarray) or attrs.get("transA", 0):
            raise _Unsupported("Gemm is supported as (features) @ (constant matrix) + C only")
        B = B.astype(np.float64).T if attrs.get("transB", 0) else B.astype(np.float64)
        if B.ndim != 2 or B.shape[0] != x.W.shape[1]:
            raise _Unsupported(f"Gemm of {x.W.shape[1]} column(s) by B of shape "
                               f"{np.shape(args[1])} (transB={attrs.get('transB', 0)})")
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        b = alpha * (x.b @ B)
        if C is not None:
            b = b + beta * _columns(C, B.shape[1], "Gemm's C")
        return [_Affine(alpha * (x.W @ B), b)]
    if op in ("Add", "Sub"):
        a, c = args
        sign = 1.0 if op == "Add" else -1.0
        if isinstance(a, _Affine) and isinstance(c, _Affine) and a.W.shape == c.W.shape:
            return [_Affine(a.W + sign * c.W, a.b + sign * c.b)]
        if isinstance(a, _Affine) and isinstance(c, np.ndarray):
            return [_Affine(a.W, a.b + sign * _columns(c, a.W.shape[1], f"{op}'s constant"))]
        if op == "Add" and isinstance(c, _Affine) and isinstance(a, np.ndarray):
            return [_Affine(c.W, c.b + _columns(a, c.W.shape[1], "Add's constant"))]
        if (op == "Sub" and isinstance(a, np.ndarray) and isinstance(c, _Logistic)
                and a.size == 1 and float(a.reshape(-1)[0]) == 1.0):
            return [_Logistic(-c.W, -c.b)]  # 1 - sigmoid(z) = sigmoid(-z)
        raise _Unsupported(f"{op} of {type(a).__name__.strip('_')} and "
                           f"{type(c).__name__.strip('_')} is not supported")
    if op == "Sigmoid":
        if not isinstance(x, _Affine):
            raise _Unsupported("Sigmoid of something other than a linear score is not supported")
        return [_Logistic(x.W, x.b)]
    if op == "LinearClassifier":
        return _linear_classifier(x, attrs)
    if op == "Concat":
        if attrs.get("axis") not in (1, -1) or not args:
            raise _Unsupported(f"Concat along axis {attrs.get('axis')} is not supported "
                               f"(only the column axis 1)")
        kinds = {type(a) for a in args}
        if kinds == {_Affine} or kinds == {_Logistic}:
            kind = kinds.pop()
            return [kind(np.hstack([a.W for a in args]), np.concatenate([a.b for a in args]))]
        raise _Unsupported("Concat of scores with probabilities or constants is not supported")
    if op == "ZipMap":
        labels = attrs.get("classlabels_int64s") or attrs.get("classlabels_strings") or []
        if not isinstance(x, _Logistic) or len(labels) != x.W.shape[1]:
            raise _Unsupported("ZipMap is supported on class probabilities with one label per column")
        return [_Logistic(x.W, x.b, tuple(_label(v) for v in labels))]
    if op in ("Normalizer", "Div", "ReduceSum"):
        return _normalisation(op, args, attrs)
    if op in ("Squeeze", "Flatten") and isinstance(x, (_Affine, _Logistic)):
        if op == "Flatten" and attrs.get("axis", 1) != 1:
            raise _Unsupported(f"Flatten with axis={attrs['axis']} is not supported")
        if x.W.shape[1] != 1 and op == "Squeeze":
            raise _Unsupported("Squeeze of more than one column is not supported")
        return [x]
    raise _Unsupported(f"op {op!r} is not supported")


def _label(value: Any) -> Any:
    return _text(value) if isinstance(value, bytes) else int(value)


def _linear_classifier(x: Any, attrs: dict) -> list:
    transform = _text(attrs.get("post_transform", "NONE"))
    if transform not in ("LOGISTIC", "NONE"):
        raise _Unsupported(f"LinearClassifier with post_transform {transform!r} is not "
                           f"supported (only LOGISTIC, the binary logistic model)")
    if not isinstance(x, _Affine):
        raise _Unsupported("LinearClassifier is supported on the input features only")
    coefs = np.asarray(attrs.get("coefficients", []), dtype=np.float64)
    n = x.W.shape[1]
    if coefs.size == 0 or coefs.size % n:
        raise _Unsupported(f"LinearClassifier has {coefs.size} coefficients for {n} features; "
                           f"expected a multiple of {n}")
    rows = coefs.reshape(-1, n)
    k = rows.shape[0]
    intercepts = np.asarray(attrs.get("intercepts", [0.0] * k), dtype=np.float64)
    if intercepts.shape != (k,):
        raise _Unsupported(f"LinearClassifier has {intercepts.size} intercepts for {k} "
                           f"coefficient rows; expected {k}")
    labels = attrs.get("classlabels_ints") or attrs.get("classlabels_strings") or []
    labels = tuple(_label(v) for v in labels)
    if k == 1 and len(labels) == 2:
        # One score z for two classes: onnxruntime returns [1 - sigma(z), sigma(z)].
        rows, intercepts = np.vstack([-rows, rows]), np.array([-intercepts[0], intercepts[0]])
    elif labels and len(labels) != k:
        raise _Unsupported(f"LinearClassifier has {len(labels)} class labels for {k} "
                           f"coefficient rows")
    W, b = x.W @ rows.T, x.b @ rows.T + intercepts
    scores = _Logistic(W, b, labels or None) if transform == "LOGISTIC" else _Affine(W, b)
    return [_Label(), scores]


def _normalisation(op: str, args: list, attrs: dict) -> list:
    """Row normalisation of class probabilities: a no-op exactly when the two
    columns are sigma(-z) and sigma(z), which sum to one."""
    x = args[0]
    if op == "ReduceSum":
        axes = attrs.get("axes")
        if axes is None and len(args) > 1 and isinstance(args[1], np.ndarray):
            axes = args[1].reshape(-1).tolist()
        if not isinstance(x, _Logistic) or list(axes or []) not in ([1], [-1]) \
                or not attrs.get("keepdims", 1):
            raise _Unsupported("ReduceSum is supported over the columns of probabilities "
                               "(axes=[1], keepdims=1) only")
        return [_RowSum(x)]
    if op == "Normalizer" and _text(attrs.get("norm", "MAX")) != "L1":
        raise _Unsupported(f"Normalizer with norm {_text(attrs.get('norm', 'MAX'))!r} is not "
                           f"supported (only L1)")
    if op == "Div" and not (isinstance(args[1], _RowSum) and args[1].of is x):
        raise _Unsupported("Div is supported as probabilities / their row sum only")
    if not isinstance(x, _Logistic):
        raise _Unsupported(f"{op} is supported on class probabilities only")
    if x.W.shape[1] == 1 or not x.complementary():
        raise _Unsupported(f"{op} over probabilities that do not sum to one would make the "
                           f"model non-logistic")
    return [x]
