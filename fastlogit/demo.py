"""The walk-through behind ``fastlogit demo``.

1. The textbook's glucose model (W = 0.042 per mg/dL, b = -5.66) through the
   NumPy reference and the compiled kernels side by side.
2. The same model learned from the built-in diabetes data set (one feature,
   then three), by gradient descent on standardised features.
3. Batch scoring of a generated (10^6, 3) table, timed against the reference.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from fastlogit.io.files import OutputError

__all__ = ["load_diabetes", "fit_standardised", "generate_patients", "check_plot_target",
           "run_demo", "TEXTBOOK_W", "TEXTBOOK_B"]

# The textbook's glucose model (the tutorial's worked example).
TEXTBOOK_W = 0.042
TEXTBOOK_B = -5.66
TEXTBOOK_GLUCOSE = (105.0, 135.0, 170.0)


def _best_time(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best of ``repeat`` wall-clock times of ``fn()`` in seconds (the least
    disturbed run on a shared machine)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def load_diabetes() -> tuple[np.ndarray, list[str]]:
    """The built-in diabetes data set: ((400, 4) float64 array, column names).

    Columns: glucose (mg/dL), bmi (kg/m^2), age (years), diabetic (0/1).
    Synthetic and seeded: see ``scripts/make_diabetes_data.py``.

    Examples
    --------
    >>> data, names = load_diabetes()
    >>> names, data.shape
    (['glucose', 'bmi', 'age', 'diabetic'], (400, 4))
    """
    from importlib import resources

    text = resources.files("fastlogit").joinpath("data/diabetes.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    names = lines[0].split(",")
    return np.loadtxt(lines[1:], delimiter=",", ndmin=2), names


def fit_standardised(X: np.ndarray, y: np.ndarray, *, learning_rate: float = 1.0,
                     num_iterations: int = 3000):
    """Gradient descent on standardised features; W, b returned in the original units.

    With every feature scaled to mean 0 and SD 1 one learning rate suits all
    of them, so plain gradient descent converges in a few thousand cheap
    iterations; ``z = sum_j w_j (x_j - mu_j) / sd_j + c`` is then rewritten as
    ``W = w / sd`` and ``b = c - sum_j w_j mu_j / sd_j``.

    Returns
    -------
    W : ndarray (n, 1); b : float; costs : list of float; grad_max : float
    """
    import fastlogit

    mu = X.mean(axis=0)
    sd = X.std(axis=0)
    Xs = (X - mu) / sd
    Y = y.reshape(1, -1)
    Ws, bs, costs = fastlogit.gradient_descent(Xs, Y, learning_rate=learning_rate, num_iterations=num_iterations)
    _, dW, db = fastlogit.cost_and_gradients(Xs, Ws, bs, Y)
    grad_max = float(max(np.max(np.abs(dW)), abs(db)))
    W = Ws / sd.reshape(-1, 1)
    b = float(bs - np.sum(Ws[:, 0] * mu / sd))
    return W, b, costs, grad_max


def generate_patients(m: int, seed: int = 0) -> np.ndarray:
    """(m, 3) float64 batch of glucose, BMI, age, distributed like the built-in data."""
    rng = np.random.default_rng(seed)
    age = 21.0 + rng.gamma(2.0, 9.5, size=m)
    bmi = rng.normal(31.0 + 0.05 * (age - 40.0), 6.5)
    glucose = rng.normal(112.0 + 0.35 * (age - 40.0) + 0.6 * (bmi - 31.0), 28.0)
    return np.column_stack([glucose, bmi, age])


def check_plot_target(path: str) -> Path:
    from fastlogit.io.files import check_output_path

    target = check_output_path(path, "--plot file", suffixes=(".png",))
    try:  # checked before the demo runs, not after
        import matplotlib  # noqa: F401
    except ImportError:
        raise OutputError("--plot needs matplotlib: pip install 'fastlogit[cli]'") from None
    return target


def _plot(path: Path, glucose, diabetic, W1: float, b1: float) -> None:
    from fastlogit.io.files import atomic_output

    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    import fastlogit

    g = np.linspace(50.0, 210.0, 400)
    fitted = fastlogit.sigmoid(W1 * g + b1)
    textbook = fastlogit.sigmoid(TEXTBOOK_W * g + TEXTBOOK_B)
    jitter = np.random.default_rng(1).uniform(-0.03, 0.03, size=diabetic.shape)
    fig, ax = plt.subplots(figsize=(7.5, 5.2), dpi=120)
    for label, colour, name in ((1, "C3", "diabetic patients"), (0, "C0", "not diabetic")):
        rows = diabetic == label
        ax.scatter(glucose[rows], diabetic[rows] + jitter[rows], s=12, alpha=0.45, color=colour,
                   label=f"{name} (y = {label}, jittered)")
    ax.plot(g, fitted, "k-", lw=2, label=f"fitted: sigmoid({W1:.4f} g {b1:+.2f})")
    ax.plot(g, textbook, "--", color="0.5", lw=1.5,
            label=f"textbook: sigmoid({TEXTBOOK_W} g {TEXTBOOK_B:+.2f})")
    boundary = -b1 / W1
    ax.axvline(boundary, color="C2", lw=1.5, label=f"fitted boundary {boundary:.1f} mg/dL")
    ax.axhline(0.5, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel("glucose (mg/dL)")
    ax.set_ylabel("P(diabetic)")
    ax.set_xlim(g[0], g[-1])
    ax.set_ylim(-0.08, 1.08)
    ax.set_title("fastlogit demo: logistic regression on glucose (built-in data set)")
    # Below the axes: inside, it would hide the patients at P = 0 or 1.
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def run_demo(rows: int = 1_000_000, plot: str | None = None) -> None:
    """Print the walk-through of ``fastlogit demo`` (and draw it to ``plot``, a .png)."""
    import fastlogit
    from fastlogit import reference

    plot_path = check_plot_target(plot) if plot else None

    # 1. The textbook's worked example, through both modules.
    W = np.array([[TEXTBOOK_W]])
    b = TEXTBOOK_B
    print(f"fastlogit demo: the textbook glucose model, W = {TEXTBOOK_W}, b = {TEXTBOOK_B}")
    print(f"decision boundary: glucose = -b / W = {-b / W[0, 0]:.1f} mg/dL")
    glucose = np.array(TEXTBOOK_GLUCOSE).reshape(-1, 1)
    A_ref = reference.forward_pass(glucose, W, b)
    A_fast = fastlogit.forward_pass(glucose, W, b)
    print(f"{'glucose (mg/dL)':>16} {'z':>8} {'P(diabetic) reference':>22} {'fastlogit':>10}")
    for g, a_ref, a_fast in zip(glucose[:, 0], A_ref[0], A_fast[0]):
        print(f"{g:16.0f} {W[0, 0] * g + b:8.2f} {a_ref:22.4f} {a_fast:10.4f}")

    # 2. Learn the model from the built-in data instead.
    data, names = load_diabetes()
    X3, y = data[:, :3], data[:, 3]
    m = len(y)
    print(f"\ntraining on the built-in data set: {m} patients ({int(y.sum())} diabetic), "
          f"columns {', '.join(names)}")
    print("(gradient descent on standardised features; W and b reported in the original units)")
    W1, b1, costs1, grad1 = fit_standardised(X3[:, :1], y)
    w1 = float(W1[0, 0])
    print(f"\none feature, glucose: {len(costs1)} iterations, cost {costs1[-1]:.4f}, "
          f"max |gradient| {grad1:.1e}")
    print(f"  learned W = {w1:.4f} per mg/dL, b = {b1:.2f}   (textbook: {TEXTBOOK_W}, {TEXTBOOK_B})")
    print(f"  decision boundary: glucose = -b / W = {-b1 / w1:.1f} mg/dL   (textbook: "
          f"{-TEXTBOOK_B / TEXTBOOK_W:.1f})")
    A1 = fastlogit.forward_pass(glucose, W1, b1)
    print(f"{'glucose (mg/dL)':>18} {'P(diabetic) learned':>20} {'textbook':>9}")
    for g, a, a_tb in zip(glucose[:, 0], A1[0], A_fast[0]):
        print(f"{g:18.0f} {a:20.4f} {a_tb:9.4f}")

    W3, b3, costs3, grad3 = fit_standardised(X3, y)
    A3 = fastlogit.forward_pass(X3, W3, b3)
    accuracy = float(np.mean((A3[0] >= 0.5) == (y == 1)))
    baseline = max(y.mean(), 1 - y.mean())
    cost3 = fastlogit.compute_cost(A3, y.reshape(1, -1))
    print(f"\nthree features, glucose + BMI + age: {len(costs3)} iterations, "
          f"max |gradient| {grad3:.1e}")
    print(f"  W = [{W3[0, 0]:.4f} per mg/dL, {W3[1, 0]:.4f} per kg/m^2, {W3[2, 0]:.4f} per year], "
          f"b = {b3:.2f}")
    print(f"  accuracy {accuracy:.1%} on the {m} training patients (always 'not diabetic': "
          f"{baseline:.1%}), cost {cost3:.4f} (glucose alone: {costs1[-1]:.4f})")
    patients = np.array([[105.0, 24.0, 30.0], [135.0, 31.0, 45.0], [170.0, 38.0, 60.0]])
    for p, a in zip(patients, fastlogit.forward_pass(patients, W3, b3)[0]):
        print(f"  glucose {p[0]:.0f} mg/dL, BMI {p[1]:.0f}, age {p[2]:.0f}: P(diabetic) = {a:.3f}")

    # 3. Batch scoring: a generated (10^6, 3) batch through both modules.
    n_rows = rows
    X = generate_patients(n_rows)
    t_ref = _best_time(lambda: reference.forward_pass(X, W3, b3))
    t_fast = _best_time(lambda: fastlogit.forward_pass(X, W3, b3))
    A_ref = reference.forward_pass(X, W3, b3)
    A_fast = fastlogit.forward_pass(X, W3, b3)
    same = np.allclose(A_ref, A_fast, rtol=1e-12, atol=0)
    print(f"\nscoring a generated batch of {n_rows:,} patients, X of shape {X.shape}, "
          f"forward_pass with the 3-feature model (best of 5):")
    print(f"  NumPy reference {t_ref * 1e3:8.2f} ms  {n_rows / t_ref / 1e6:7.1f} M rows/s")
    print(f"  fastlogit       {t_fast * 1e3:8.2f} ms  {n_rows / t_fast / 1e6:7.1f} M rows/s   "
          f"speed-up {t_ref / t_fast:4.1f}x   same answers (rtol 1e-12): {same}")
    print(f"  {np.mean(A_fast >= 0.5):.1%} of the generated patients are predicted diabetic")

    if plot_path is not None:
        _plot(plot_path, X3[:, 0], y, w1, b1)
        print(f"\nplot written to {plot_path}")
