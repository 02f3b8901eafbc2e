# Result arrays from a bounded cache of large buffers (src/fl_outbuf.h, a NumPy
# memory handler): included by _kernels.pyx.
#
# A fresh 80 MB result costs a page-zeroing pass of the kernel on top of the
# work (sigmoid on 10^7 doubles: +34 %); batch loops free one result and ask for
# one of the same size, so the freed buffer is reused instead.  Only the arrays
# made here use the handler; they own their data like any other array.

import math

from libc.stdint cimport uint64_t

cdef extern from "fl_outbuf.h":
    int fl_outbuf_init() except -1
    object fl_outbuf_handler()
    object fl_outbuf_set_handler(object handler)
    size_t FL_OUTBUF_MIN
    size_t fl_outbuf_set_limit(size_t limit) nogil
    void fl_outbuf_stats(size_t *limit, size_t *held, int *blocks, uint64_t *hits,
                         uint64_t *misses) nogil

fl_outbuf_init()
_OUTPUT_HANDLER = fl_outbuf_handler()

# Default: 256 MiB, and never more than an eighth of the machine's memory.
DEFAULT_OUTPUT_CACHE_BYTES = 256 << 20
# Whether results go through the cache: a limit below the smallest cached size caches nothing.
cdef bint _output_cache_on = False


def set_output_cache(size_t max_bytes):
    """Cache at most ``max_bytes`` of freed result buffers (0: none; held buffers
    beyond the new limit are freed now).  Returns the previous limit.  The checked
    public entry is fastlogit.set_output_cache."""
    global _output_cache_on
    old = fl_outbuf_set_limit(max_bytes)
    _output_cache_on = max_bytes >= FL_OUTBUF_MIN
    return old


def output_cache_stats():
    """Whether the cache is on, its limit, bytes and buffers held, and reuses (hits) and
    new buffers (misses)."""
    cdef size_t limit, held
    cdef int blocks
    cdef uint64_t hits, misses
    fl_outbuf_stats(&limit, &held, &blocks, &hits, &misses)
    return {"on": bool(_output_cache_on), "limit": limit, "held": held, "buffers": blocks,
            "hits": hits, "misses": misses}


def empty_output(shape, dtype, like=None):
    """``np.empty(shape, dtype)``, or ``np.empty_like(like, dtype, order="K")`` when
    ``like`` is given (shape then ignored): a result array, from the cache when large."""
    size = like.size if like is not None else math.prod(shape) if isinstance(shape, tuple) else shape
    cached = _output_cache_on and size * np.dtype(dtype).itemsize >= FL_OUTBUF_MIN
    if cached:
        previous = fl_outbuf_set_handler(_OUTPUT_HANDLER)
    try:
        return np.empty(shape, dtype) if like is None else np.empty_like(like, dtype, order="K")
    finally:
        if cached:
            fl_outbuf_set_handler(previous)


def _output_cache_from_environment():
    """FASTLOGIT_OUTPUT_CACHE_MB (a whole number of MiB; 0 turns the cache off), read at import."""
    import os
    raw = os.environ.get("FASTLOGIT_OUTPUT_CACHE_MB", "").strip()
    if raw == "":
        limit = DEFAULT_OUTPUT_CACHE_BYTES
        try:
            limit = min(limit, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 8)
        except (AttributeError, ValueError, OSError):
            pass
        return limit
    try:
        mb = int(raw)
    except ValueError:
        mb = -1
    if mb < 0:
        raise ValueError(f"FASTLOGIT_OUTPUT_CACHE_MB={raw!r} must be a whole number of MiB "
                         "(0 turns the output cache off)")
    return mb << 20


set_output_cache(_output_cache_from_environment())
