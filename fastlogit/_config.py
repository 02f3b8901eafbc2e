"""How fastlogit was built and what it will use at run time."""
from __future__ import annotations

import numbers
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
        output_cache=_describe_output_cache(),
    )
    return info


def set_output_cache(max_bytes: int) -> int:
    """Limit the cache of freed result buffers to ``max_bytes``; returns the previous limit.

    Results of 1 MiB and more (``sigmoid``, ``log_sigmoid``, ``forward_pass``,
    ``predict``) are allocated through a NumPy memory handler that keeps up to
    8 freed buffers, ``max_bytes`` in all, and gives them to the next result of
    about the same size.  A fresh result then costs what ``out=`` costs:
    without it the operating system zeroes every new page first (sigmoid on
    10^7 doubles: 34 % slower than with ``out=``).  The arrays are ordinary
    NumPy arrays that own their data; the cache holds only buffers whose arrays
    are gone.  Default: 256 MiB (at most an eighth of the RAM), or
    ``FASTLOGIT_OUTPUT_CACHE_MB`` read at import.  0 turns it off and frees
    what it holds.
    """
    if isinstance(max_bytes, (bool, np.bool_)) or not isinstance(max_bytes, numbers.Integral):
        raise TypeError(f"max_bytes must be an int (bytes); got {type(max_bytes).__name__} "
                        f"{max_bytes!r}")
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0 (0 turns the cache off); got {max_bytes}")
    return int(_kernels.set_output_cache(int(max_bytes)))


def output_cache_info() -> dict:
    """The output cache now: ``on``, ``limit`` and ``held`` (bytes), ``buffers`` held,
    ``hits`` (results given a cached buffer) and ``misses`` (new buffers)."""
    return dict(_kernels.output_cache_stats())


def _describe_output_cache() -> str:
    info = output_cache_info()
    if not info["on"]:
        return "off"
    return (f"{info['limit'] / 2**20:.0f} MiB limit, {info['held'] / 2**20:.1f} MiB in "
            f"{info['buffers']} buffer(s), {info['hits']} reuses, {info['misses']} new")


def show_config() -> None:
    """Print how the compiled module was built (OpenMP, flags, Cython and
    NumPy versions) and the run-time math path and thread count."""
    for key, value in build_info().items():
        print(f"{key:>24}: {value}")
