"""fastlogit: numerically stable, fast logistic-regression kernels.

The functions mirror :mod:`fastlogit.reference` (the textbook NumPy version):
same names, argument order and shapes, computed by compiled kernels that
never overflow, never return NaN for finite input and release the GIL.
"""
import sys


def _require_compiled_extension() -> None:
    """Fail with instructions when the compiled kernels are not there.

    Without this, a source checkout that was never built fails deep inside
    the package with a confusing circular-import message.
    """
    import importlib.machinery
    import importlib.util
    from pathlib import Path

    if importlib.util.find_spec("fastlogit._kernels") is not None:
        return  # present: any load error (a missing libgomp, ...) is reported as it is
    here = Path(__file__).resolve().parent
    others = sorted(p.name for p in here.glob("_kernels.*")
                    if p.suffix in (".so", ".pyd") or p.name.endswith(".dylib"))
    lines = [f"fastlogit's compiled extension (fastlogit._kernels) is missing: "
             f"fastlogit was imported from {here}"]
    if others:
        lines.append(f"  (found {', '.join(others)}, built for another Python; this one, "
                     f"Python {sys.version.split()[0]}, needs "
                     f"{importlib.machinery.EXTENSION_SUFFIXES[0]!r})")
    if (here.parent / "setup.py").is_file():
        lines += [
            "That folder is a source checkout that has not been built for this Python. Either:",
            f"  build it in place:  cd {here.parent} && pip install -U \"setuptools>=77\" Cython numpy"
            " && python setup.py build_ext --inplace",
            f"  or install it:      pip install {here.parent}   "
            f"(then run Python from outside {here.parent})",
        ]
    else:
        lines.append("The installation is incomplete; reinstall it:  "
                     "pip install --force-reinstall fastlogit")
    raise ImportError("\n".join(lines), name="fastlogit._kernels")


_require_compiled_extension()

from fastlogit._api import (  # noqa: E402  (after the check above)
    compute_cost,
    cost_and_gradients,
    cost_from_logits,
    forward_pass,
    gradients,
    log_sigmoid,
    predict,
    sigmoid,
)
from fastlogit._config import (  # noqa: E402
    build_info, output_cache_info, set_output_cache, show_config,
)
from fastlogit._train import ConvergenceWarning, FitResult, fit, gradient_descent  # noqa: E402
from fastlogit._version import __version__  # noqa: E402

__all__ = [
    "sigmoid",
    "log_sigmoid",
    "forward_pass",
    "predict",
    "compute_cost",
    "cost_from_logits",
    "gradients",
    "cost_and_gradients",
    "build_info",
    "show_config",
    "set_output_cache",
    "output_cache_info",
    "gradient_descent",
    "fit",
    "FitResult",
    "ConvergenceWarning",
    "__version__",
]


def __getattr__(name):
    # The scikit-learn estimator is loaded on first use, so that
    # `import fastlogit` needs neither scikit-learn nor SciPy.  (It is not in
    # __all__: `from fastlogit import *` must work without scikit-learn.)
    if name == "LogisticRegression":
        from fastlogit.estimator import LogisticRegression
        return LogisticRegression
    raise AttributeError(f"module 'fastlogit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"LogisticRegression"})
