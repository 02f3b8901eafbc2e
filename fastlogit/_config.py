"""How fastlogit was built and what it will use at run time."""
from __future__ import annotations

import platform
import sys

import numpy as np

from fastlogit import _kernels
from fastlogit._validation import SERIAL_BELOW, cpu_count, default_threads, max_threads_allowed
from fastlogit._version import __version__


def build_info() -> dict:
    """Build and run-time facts as a dict (see :func:`show_config`)."""
    info = {"version": __version__, **_kernels.build_info()}
    info.update(
        python=sys.version.split()[0],
        platform=platform.platform(),
        numpy_runtime_version=np.__version__,
        openmp_max_threads=_kernels.max_threads(),
        default_threads=default_threads(),
        max_threads_allowed=max_threads_allowed(),
        pool_threads_started=_kernels.pool_threads(),
        usable_cores=cpu_count(),
        serial_below_elements=SERIAL_BELOW,
        block_size=_kernels.BLOCK_SIZE,
    )
    return info


def show_config() -> None:
    """Print how the compiled module was built (OpenMP, flags, Cython and
    NumPy versions) and the run-time math path and thread count."""
    for key, value in build_info().items():
        print(f"{key:>24}: {value}")
