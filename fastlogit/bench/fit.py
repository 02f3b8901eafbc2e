"""Fit rows of the benchmark: fastlogit's default fit against its peers.

Each peer runs at its own defaults on the same objective

    J(w, b) = mean_i loss_i + ||w||^2 / (2 C m)

(scikit-learn's ``C``; glum's ``alpha = 1 / (C m)``), and every final (w, b)
is scored by the same function, fastlogit's J.  The optimum is fastlogit's
Newton at ``tol = 1e-12``; the gap is ``J(final) - J(optimum)``.  Times are the
best of ``repeat`` runs with every library held to one thread.

Run ``python -m fastlogit.bench.fit`` for the table.
"""
from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

import fastlogit
from fastlogit._objective import l2_from_C

__all__ = ["CASES", "PEERS", "FitRow", "make_case", "objective", "run_fit_rows"]


@dataclass(frozen=True)
class FitRow:
    case: str
    peer: str
    seconds: float
    gap: float          # J(final) - J(optimum), same J for every peer
    n_iter: int


def _logistic_labels(rng, Z):
    w = rng.normal(size=Z.shape[1]) / np.sqrt(Z.shape[1])
    p = 1.0 / (1.0 + np.exp(-(Z @ w) - 0.3))
    return (rng.random(Z.shape[0]) < p).astype(np.float64)


def make_case(name: str, seed: int = 0):
    """(X, y, C) of a named benchmark case."""
    rng = np.random.default_rng(seed)
    if name == "gauss":                     # (10^5, 50) N(0, 1), C = 1e4
        X = rng.normal(size=(100_000, 50))
        return X, _logistic_labels(rng, X), 1e4
    if name == "ill":                       # correlated columns, scales 1e-3..1e3, C = 1
        G = rng.normal(size=(100_000, 50))
        Z = 0.8 * G[:, :1] + 0.6 * G    # every pair of columns correlated ~0.64
        Z /= Z.std(axis=0)
        y = _logistic_labels(rng, Z)
        return Z * np.logspace(-3, 3, 50), y, 1.0
    if name == "wide":                      # (2 10^4, 500), C = 1
        X = rng.normal(size=(20_000, 500))
        return X, _logistic_labels(rng, X), 1.0
    if name == "tall":                      # (10^6, 10), C = 1e4
        X = rng.normal(size=(1_000_000, 10))
        return X, _logistic_labels(rng, X), 1e4
    if name == "cancer":                    # Wisconsin breast cancer, unscaled, C = 1
        from sklearn.datasets import load_breast_cancer
        X, y = load_breast_cancer(return_X_y=True)
        return np.ascontiguousarray(X), y.astype(np.float64), 1.0
    raise ValueError(f"unknown case {name!r}; expected one of {CASES}")


CASES = ("gauss", "ill", "wide", "tall", "cancer")


def objective(X, y, C, w, b) -> float:
    """fastlogit's J at (w, b): the one yardstick for every peer."""
    l2 = l2_from_C(C, X.shape[0])
    J, _, _ = fastlogit.cost_and_gradients(X, np.asarray(w, dtype=np.float64).reshape(-1, 1),
                                           float(b), y, l2=l2)
    return float(J)


def _fastlogit(solver="auto"):
    def run(X, y, C):
        from fastlogit.estimator import LogisticRegression
        est = LogisticRegression(C=C, n_threads=1, solver=solver).fit(X, y)
        return est.coef_[0], est.intercept_[0], int(est.n_iter_[0])
    return run


def _sklearn(solver):
    def run(X, y, C):
        from sklearn.linear_model import LogisticRegression
        est = LogisticRegression(C=C, solver=solver).fit(X, y)
        return est.coef_[0], est.intercept_[0], int(est.n_iter_[0])
    return run


def _fastlogit_dask(X, y, C):
    # fastlogit.dask.fit at the estimator's tol on 8 row blocks, Dask's local
    # threads (2 workers, 1 kernel thread each); its n_iter is the passes over X.
    import dask
    import dask.array as da

    from fastlogit.dask import fit
    from fastlogit.estimator import LogisticRegression
    Xd = da.from_array(X, chunks=(-(-X.shape[0] // 8), X.shape[1]))
    with dask.config.set(scheduler="threads", num_workers=2):
        res = fit(Xd, y, l2=l2_from_C(C, X.shape[0]), tol=LogisticRegression().tol, n_threads=1)
    return res.W[:, 0], res.b, res.n_passes


def _glum(X, y, C):
    from glum import GeneralizedLinearRegressor
    est = GeneralizedLinearRegressor(family="binomial", alpha=1.0 / (C * X.shape[0]),
                                     l1_ratio=0.0).fit(X, y)
    return est.coef_, est.intercept_, int(est.n_iter_)


PEERS: dict[str, Callable] = {
    "fastlogit": _fastlogit(),
    "sklearn-lbfgs": _sklearn("lbfgs"),
    "sklearn-newton-cholesky": _sklearn("newton-cholesky"),
    "glum": _glum,
    "fastlogit-dask": _fastlogit_dask,      # not a peer: fastlogit on Dask, passes in "iters"
}


def run_fit_rows(cases=CASES, peers=None, repeat: int = 3) -> list[FitRow]:
    """Time every peer on every case (one thread each) and score its result."""
    from threadpoolctl import threadpool_limits

    peers = dict(PEERS if peers is None else peers)
    rows = []
    for case in cases:
        X, y, C = make_case(case)
        opt = fastlogit.fit(X, y, l2=l2_from_C(C, X.shape[0]), tol=1e-12, max_iter=200,
                            solver="newton", n_threads=1)
        J_opt = objective(X, y, C, opt.W, opt.b)
        for name, run in peers.items():
            best = np.inf
            with threadpool_limits(limits=1), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    for _ in range(repeat):
                        t0 = time.perf_counter()
                        w, b, n_iter = run(X, y, C)
                        best = min(best, time.perf_counter() - t0)
                except ImportError:
                    continue
            rows.append(FitRow(case, name, best, objective(X, y, C, w, b) - J_opt, n_iter))
    return rows


def format_rows(rows: list[FitRow]) -> str:
    lines = [f"{'case':8} {'peer':26} {'time ms':>9} {'vs fastest peer':>16} "
             f"{'J - J*':>10} {'iters':>6}"]
    for case in dict.fromkeys(r.case for r in rows):
        group = [r for r in rows if r.case == case]
        peers = [r.seconds for r in group if not r.peer.startswith("fastlogit")]
        fastest = min(peers) if peers else np.nan
        for r in group:
            lines.append(f"{r.case:8} {r.peer:26} {r.seconds * 1e3:9.1f} "
                         f"{fastest / r.seconds:15.2f}x {r.gap:10.1e} {r.n_iter:6d}")
    if any(r.peer == "fastlogit-dask" for r in rows):
        lines.append("fastlogit-dask: fastlogit.dask.fit, 8 row blocks, 2 Dask threads; "
                     "its iters = passes over X")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(format_rows(run_fit_rows(args.cases, repeat=args.repeat)))


if __name__ == "__main__":
    main()
