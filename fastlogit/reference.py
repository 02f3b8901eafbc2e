"""The textbook NumPy implementation: fastlogit's yardstick.

Written the way the tutorial writes it, on purpose: ``1 / (1 + exp(-z))``
overflows (with a RuntimeWarning) for z < -709.78, ``log(0)`` gives inf, and
``A - Y`` cancels.  The fast module is tested against these functions where
they are exact and must beat them everywhere else.  Signatures equal those of
``fastlogit`` so that one can be swapped for the other; ``n_threads`` is
accepted and ignored.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "sigmoid",
    "log_sigmoid",
    "forward_pass",
    "predict",
    "compute_cost",
    "cost_from_logits",
    "gradients",
    "cost_and_gradients",
    "gradient_descent",
]


def sigmoid(z, out=None, *, n_threads=None):
    """1 / (1 + exp(-z))."""
    return np.divide(1, 1 + np.exp(-np.asarray(z)), out=out)


def log_sigmoid(z, out=None, *, n_threads=None):
    """log(sigmoid(z)), naively."""
    return np.log(sigmoid(z), out=out)


def forward_pass(X, W, b, out=None, *, n_threads=None):
    """A = sigmoid(X . W + b), transposed to a (1, m) row."""
    Z = np.dot(X, W) + b          # (m, 1)
    A = sigmoid(Z).T              # (1, m)
    if out is not None:
        out[...] = A
        return out
    return A


def predict(X, W, b, threshold=0.5, *, n_threads=None):
    """(1, m) int64 array of 0/1: probability >= threshold."""
    return (forward_pass(X, W, b) >= threshold).astype(np.int64)


def compute_cost(A, Y, eps=None, *, n_threads=None):
    """J = -(1/m) sum[y log a + (1 - y) log(1 - a)]; clipped only if eps is given."""
    A = np.asarray(A)
    Y = np.asarray(Y)
    if eps is not None:
        A = np.clip(A, eps, 1 - eps)
    m = Y.shape[-1]
    return float(-np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m)


def cost_from_logits(Z, Y, *, n_threads=None):
    """The cost of sigmoid(Z), computed the textbook way."""
    return compute_cost(sigmoid(Z), Y)


def gradients(X, W, b, Y, *, n_threads=None):
    """dW = X^T (A - Y)^T / m (shape (n, 1)), db = mean(A - Y)."""
    m = X.shape[0]
    A = forward_pass(X, W, b)
    dZ = A - Y                    # (1, m)
    dW = np.dot(X.T, dZ.T) / m    # (n, 1)
    db = float(np.sum(dZ) / m)
    return dW, db


def cost_and_gradients(X, W, b, Y, *, sample_weight=None, l2=0.0, n_threads=None):
    """J, dW, db with optional sample weights and an L2 penalty on W (not b).

    J = sum_i s_i loss_i / sum_i s_i + (l2 / 2) ||W||^2.  Two passes over X:
    one for the forward pass, one for the gradient.
    """
    X = np.asarray(X)
    m = X.shape[0]
    W = np.asarray(W).reshape(-1, 1)
    Y = np.asarray(Y).reshape(1, m)
    s = np.ones((1, m)) if sample_weight is None else np.asarray(sample_weight, float).reshape(1, m)
    A = forward_pass(X, W, b)
    losses = -(Y * np.log(A) + (1 - Y) * np.log(1 - A))
    total = s.sum()
    J = float(np.sum(s * losses) / total + 0.5 * l2 * np.sum(W * W))
    dZ = s * (A - Y)
    dW = np.dot(X.T, dZ.T) / total + l2 * W
    db = float(np.sum(dZ) / total)
    return J, dW, db


def gradient_descent(X, Y, W=None, b=0.0, *, learning_rate=0.01, num_iterations=1000,
                     l2=0.0, sample_weight=None, callback=None):
    """The textbook loop: W -= lr * dW, b -= lr * db; returns (W, b, costs)."""
    X = np.asarray(X)
    W = np.zeros((X.shape[1], 1)) if W is None else np.array(W, dtype=float).reshape(-1, 1)
    costs = []
    for i in range(num_iterations):
        J, dW, db = cost_and_gradients(X, W, b, Y, sample_weight=sample_weight, l2=l2)
        W = W - learning_rate * dW
        b = b - learning_rate * db
        costs.append(J)
        if callback is not None:
            callback(i, W, b, J)
    return W, b, costs
