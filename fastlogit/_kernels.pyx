"""Compiled loops of fastlogit.

Everything here assumes validated input: the Python layer (``fastlogit._api``)
checks shapes, dtypes and contiguity and allocates outputs before calling in.

Design
------
* Work is cut into blocks of rows (``BLOCK`` elements / rows) whose size
  depends only on the problem shape, never on the thread count.
* Threads: ``src/fl_pool.h``, a small pool of helper threads in which the
  calling thread works too.  A kernel call is a *job* of numbered *tasks*;
  every worker (the caller is worker 0) claims the next unclaimed task from a
  shared counter, so no task ever waits for a helper that the OS has not
  scheduled (on a busy machine the caller simply runs more tasks itself).
  OpenMP is only asked for its thread count (``omp_get_max_threads``: it
  honours OMP_NUM_THREADS and threadpoolctl); it never runs a parallel
  region, so a forked child is safe (see fl_pool.h).
* Transcendental math lives in ``src/fl_math.h`` and the row-block loops over X
  in ``src/fl_rows.h`` (vectorised, one code path per instruction set chosen
  at run time); they work on contiguous double blocks, so float32 data is
  widened block by block in a per-worker buffer (no float64 copy of a float32
  input), except where fl_math_f32.h has a float32 loop of its own (sigmoid,
  log_sigmoid, the loss of float32 logits, float32 forward_pass outputs).
* Reductions are reproducible: rows are grouped into at most ``MAX_CHUNKS``
  chunks fixed by the problem size (:func:`reduction_chunks`); one task is one
  chunk, whose partial sum is accumulated block by block with Neumaier
  compensation into that chunk's own row of partials; the partials are
  combined in chunk order after the job (:func:`combine_partials`).  A block
  is summed in a fixed order of 16 lanes (``fl_sum``; mean_loss adds its losses
  in that order as it forms them, ``fl_logit_loss_total``), the same for every
  instruction-set clone.  The bits
  therefore depend neither on the number of threads nor on which worker ran
  which chunk.

Files
-----
This file: the pool and instruction-set administration, build information, the
block/chunk layout and the shared helpers.  The kernels, one family per file,
are included below: ``_kernels_elementwise.pxi`` (sigmoid, log_sigmoid, mean
losses), ``_kernels_rows.pxi`` (scores, forward pass, predict, fused cost and
gradients) and ``_kernels_newton.pxi`` (cost, gradient and Hessian; the Newton
direction).

How to write a kernel on the pool
---------------------------------
1. A ``cdef struct`` holds everything a task needs: raw pointers to the data
   (``const void *`` plus a dtype flag, or typed pointers), sizes, and a
   ``double *work`` scratch area with ``scratch`` doubles per worker.
2. A task function ``cdef void _my_task(void *ctx, Py_ssize_t task, int worker)
   noexcept nogil`` casts ``ctx`` to the struct, works on the rows of task
   number ``task`` only, uses ``work + worker * scratch`` as its scratch, and
   writes either disjoint parts of the output or its own row of per-task
   partials (never a shared accumulator: that would make the bits depend on
   the schedule).  Fused ``data_t`` helpers are called after casting the
   pointers according to the dtype flag (see ``_unary_task``).
3. The ``def`` entry point validates nothing (the Python layer did), fills the
   struct, allocates ``work`` as ``(n_threads, scratch)`` and the partials as
   ``(n_tasks, width)`` NumPy arrays (so memory is freed even on error), then
   ``with nogil: _run(_my_task, &job, n_tasks, n_threads)`` and finally
   combines the partials in task order (``_combine_rows``).
Tasks should be large (tens of microseconds: see ``_task_span``) so that
claiming one costs nothing measurable, and many (several per thread) so that
a descheduled thread delays the call by one task at most.
"""
import numpy as np
from libc.math cimport INFINITY

from fastlogit._openmp cimport FL_OPENMP, omp_get_max_threads

ctypedef fused data_t:          # X, Z, A: the big input
    float
    double

ctypedef fused label_t:         # Y: labels, converted to a float type by the caller
    float
    double

ctypedef fused out_t:           # outputs of element-wise kernels
    float
    double

cdef extern from "fl_math.h" nogil:
    void fl_sigmoid(const double *z, double *out, Py_ssize_t n)
    void fl_log_sigmoid(const double *z, double *out, Py_ssize_t n)
    void fl_logit_loss_residual(const double *z, const double *y, double *loss,
                                double *resid, Py_ssize_t n)
    void fl_logit_loss_residual_curvature(const double *z, const double *y, double *loss,
                                          double *resid, double *curv, Py_ssize_t n)

cdef extern from "fl_losses.h" nogil:
    void fl_sum(const double *v, Py_ssize_t n, double *total)
    # acc[q] += x[q] (q < n), Neumaier-compensated in comp: _neumaier_add over a vector.
    void fl_neumaier_add(double *acc, double *comp, const double *x, Py_ssize_t n)
    # Labels outside [0, 1] in a block (NaN counts): the one label check of the C loops.
    double fl_count_bad_labels(const double *y, Py_ssize_t m)

cdef extern from "fl_math_f32.h" nogil:
    void fl_sigmoid_f32(const float *z, float *out, Py_ssize_t n)
    void fl_sigmoid_to_f32(const double *z, float *out, Py_ssize_t n)
    void fl_log_sigmoid_f32(const float *z, float *out, Py_ssize_t n)

cdef extern from "fl_isa.h" nogil:
    const char *fl_math_isa()
    int FL_DISPATCH
    int fl_isa_supported(int isa)
    int fl_isa_select(int isa)

cdef extern from "fl_rows.h" nogil:
    void fl_rows_scores_c_f64(const double *X, Py_ssize_t row_stride, Py_ssize_t n,
                              const double *w, double b, Py_ssize_t k, double *z)
    void fl_rows_scores_c_f32(const float *X, Py_ssize_t row_stride, Py_ssize_t n,
                              const double *w, double b, Py_ssize_t k, double *z)
    void fl_rows_scores_f_f64(const double *X, Py_ssize_t col_stride, Py_ssize_t n,
                              const double *w, double b, Py_ssize_t k, double *z)
    void fl_rows_scores_f_f32(const float *X, Py_ssize_t col_stride, Py_ssize_t n,
                              const double *w, double b, Py_ssize_t k, double *z)
    void fl_rows_gradient_c_f64(const double *X, Py_ssize_t row_stride, Py_ssize_t n,
                                const double *r, Py_ssize_t k, double *g)
    void fl_rows_gradient_c_f32(const float *X, Py_ssize_t row_stride, Py_ssize_t n,
                                const double *r, Py_ssize_t k, double *g)
    void fl_rows_gradient_f_f64(const double *X, Py_ssize_t col_stride, Py_ssize_t n,
                                const double *r, Py_ssize_t k, double *g)
    void fl_rows_gradient_f_f32(const float *X, Py_ssize_t col_stride, Py_ssize_t n,
                                const double *r, Py_ssize_t k, double *g)

cdef extern from "fl_pool.h" nogil:
    ctypedef void (*fl_task_fn)(void *ctx, Py_ssize_t task, int worker) noexcept nogil
    void fl_pool_run(fl_task_fn fn, void *ctx, Py_ssize_t n_tasks, int n_workers)
    int fl_pool_size()
    int fl_pool_forked()
    long long fl_pool_backoffs()
    int fl_pool_set_backoff(int on)
    Py_ssize_t FL_POOL_MAX_TASKS
    int FL_POOL_MAX_WORKERS

ctypedef void (*unary_fn)(const double *, double *, Py_ssize_t) noexcept nogil
ctypedef void (*unary_f32_fn)(const float *, float *, Py_ssize_t) noexcept nogil

# Elements per block: large enough to amortise the call into fl_math, small
# enough that a block of doubles (4 KiB) and its scratch stay in L1.
DEF BLOCK = 512
# Upper bound on reduction chunks (one task each): enough tasks per thread to
# balance a busy machine, few enough that the (chunks, n) partials stay tiny
# next to X.
DEF MAX_CHUNKS = 64
# Target bytes of X per row block in the fused kernels.  A block's rows are read from memory
# once, in sub-blocks of SUB_BYTES that stay in L1 for the gradient, so the block size only
# sets how often the gradient's partial sums go into the compensated chunk sums (n Neumaier
# additions per block: 256 KiB instead of 64 KiB made (2e4, 500) 25 % faster); still fits L2.
DEF BLOCK_BYTES = 262144
# Element-operations per task of the element-wise and row kernels (about
# 10-20 microseconds): claiming a task (one atomic) is then negligible.
DEF TASK_WORK = 16384
# Bytes of X per sub-block of the fused kernels (scores, residuals and gradient rows of a
# sub-block while it is in L1); changes no bit, only speed.
DEF SUB_BYTES = 12288

BLOCK_SIZE = BLOCK
REDUCTION_CHUNKS = MAX_CHUNKS
OPENMP = bool(FL_OPENMP)
MAX_POOL_THREADS = FL_POOL_MAX_WORKERS


def max_threads():
    """Threads a default call asks for: OpenMP's count when built with OpenMP
    (it honours OMP_NUM_THREADS and threadpoolctl limits), else the first value
    of OMP_NUM_THREADS, else the usable cores.  Not capped here: the Python
    layer applies the cap (``_validation.resolve_threads``)."""
    if FL_OPENMP:
        return omp_get_max_threads()
    import os
    try:
        return max(int(os.environ.get("OMP_NUM_THREADS", "").split(",")[0]), 1)
    except ValueError:
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:
            return os.cpu_count() or 1


def pool_threads():
    """Helper threads started so far in this process (0 until a threaded call)."""
    return fl_pool_size()


def pool_backoffs():
    """Threaded calls so far that found the machine busy (a thread descheduled,
    or a wait for a descheduled helper); each makes the next calls run on the
    calling thread alone for a while (see src/fl_pool.h)."""
    return fl_pool_backoffs()


def set_pool_backoff(bint on):
    """Turn the busy-machine back-off on or off (returns the previous setting).
    Off, every threaded call uses the helper threads whatever the load: for
    tests that must exercise them, and for measuring what the back-off saves."""
    return bool(fl_pool_set_backoff(on))


def forked_child():
    """True in a process forked after this module was loaded."""
    return bool(fl_pool_forked())


def math_isa():
    """Instruction-set clone the kernels run (baseline, avx2 or avx512)."""
    return fl_math_isa().decode()


# The clones, in the order of fl_math.h's FL_ISA_* numbers.
ISA_NAMES = ("baseline", "avx2", "avx512")


def runnable_isas():
    """The clones this CPU can run (empty for a build without run-time dispatch)."""
    return tuple(name for i, name in enumerate(ISA_NAMES) if fl_isa_supported(i))


def _select_isa():
    """Pick the clone once, at import: FASTLOGIT_ISA if set, else the best this CPU runs.
    A clone that is asked for but cannot run here is an error, not a silent fallback: the
    variable exists to reproduce bits, and another clone would not show that it failed to."""
    import os
    raw = os.environ.get("FASTLOGIT_ISA", "")
    requested = raw.strip().lower()
    if requested in ("", "auto"):
        fl_isa_select(-1)
        return "auto-detected"
    if requested not in ISA_NAMES:
        raise ValueError(f"FASTLOGIT_ISA={raw!r} is not an instruction set fastlogit knows; "
                         f"expected one of {', '.join(ISA_NAMES)} (or auto / unset to detect)")
    if not FL_DISPATCH:
        raise RuntimeError(f"FASTLOGIT_ISA={raw!r}, but this build of fastlogit has a single code "
                           f"path ({math_isa()}, compiled without run-time dispatch); unset "
                           f"FASTLOGIT_ISA or build with GCC >= 12 on x86-64 Linux")
    if fl_isa_select(ISA_NAMES.index(requested)) < 0:
        raise RuntimeError(f"FASTLOGIT_ISA={raw!r}, but this CPU cannot run the {requested} code "
                           f"path; it runs: {', '.join(runnable_isas())}. Unset FASTLOGIT_ISA or "
                           f"choose one of those")
    return "forced by FASTLOGIT_ISA"


ISA_CHOSEN_BY = _select_isa()


cdef extern from *:
    """
    #ifndef FL_BUILD_CFLAGS
    #define FL_BUILD_CFLAGS "unknown"
    #define FL_BUILD_CYTHON "unknown"
    #define FL_BUILD_NUMPY "unknown"
    #endif
    """
    const char *FL_BUILD_CFLAGS
    const char *FL_BUILD_CYTHON
    const char *FL_BUILD_NUMPY


def build_info():
    """How this extension was compiled."""
    return {
        "openmp": bool(FL_OPENMP),
        "threads": "fastlogit's own pool (the calling thread works too); OpenMP gives "
                   "the default count" if FL_OPENMP else
                   "fastlogit's own pool (the calling thread works too); no OpenMP",
        "compile_args": FL_BUILD_CFLAGS.decode(),
        "cython_version": FL_BUILD_CYTHON.decode(),
        "numpy_build_version": FL_BUILD_NUMPY.decode(),
        "math_isa": fl_math_isa().decode(),
        "math_isa_chosen": ISA_CHOSEN_BY if FL_DISPATCH else "compiled in (no run-time dispatch)",
        "math_isas_this_cpu_runs": ", ".join(runnable_isas()) or "the compiled one only",
    }



cdef inline void _run(fl_task_fn fn, void *ctx, Py_ssize_t n_tasks, int n_threads) noexcept nogil:
    fl_pool_run(fn, ctx, n_tasks, n_threads)


cdef inline Py_ssize_t _task_span(Py_ssize_t n_units, Py_ssize_t work_per_unit) noexcept nogil:
    """Units (elements or blocks) per task: about TASK_WORK element-operations,
    and few enough tasks for the pool's counter."""
    cdef Py_ssize_t span = TASK_WORK // max(work_per_unit, 1)
    if span < 1:
        span = 1
    if _ceil_div(n_units, span) > FL_POOL_MAX_TASKS:
        span = _ceil_div(n_units, FL_POOL_MAX_TASKS)
    return span


# ---------------------------------------------------------------------------
# Small helpers (inlined into the loops)
# ---------------------------------------------------------------------------

cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b


cdef inline bint _finite(double x) noexcept nogil:
    # == and != are quiet comparisons: no invalid-operation flag for inf or NaN.
    return x == x and abs(x) != INFINITY


cdef inline void _neumaier_add(double *acc, double *comp, double x) noexcept nogil:
    # Neumaier's variant of Kahan summation: the compensation stays correct
    # when |x| > |acc| (Kahan's does not).  Once the sum is inf or NaN the
    # compensation means nothing, and computing it (inf - inf) would raise
    # the invalid flag: skip it.
    cdef double t = acc[0] + x
    if _finite(t):
        if abs(acc[0]) >= abs(x):
            comp[0] += (acc[0] - t) + x
        else:
            comp[0] += (x - t) + acc[0]
    acc[0] = t


cdef inline double _compensated(double acc, double comp) noexcept nogil:
    # A sum that reached inf (or NaN) keeps that value; its compensation is void.
    return acc + comp if _finite(acc) else acc


cdef inline void _scores_block(const data_t *X, Py_ssize_t row_stride, Py_ssize_t col_stride,
                               Py_ssize_t n, const double *w, double b,
                               Py_ssize_t start, Py_ssize_t stop, double *z) noexcept nogil:
    """z[i - start] = X[i, :] . w + b for rows start..stop-1."""
    if col_stride == 1:              # C order: rows are contiguous
        if data_t is double:
            fl_rows_scores_c_f64(X + start * row_stride, row_stride, n, w, b, stop - start, z)
        else:
            fl_rows_scores_c_f32(X + start * row_stride, row_stride, n, w, b, stop - start, z)
    else:                            # F order: stream each column's segment
        if data_t is double:
            fl_rows_scores_f_f64(X + start, col_stride, n, w, b, stop - start, z)
        else:
            fl_rows_scores_f_f32(X + start, col_stride, n, w, b, stop - start, z)


cdef inline void _gradient_block(const data_t *X, Py_ssize_t row_stride, Py_ssize_t col_stride,
                                 Py_ssize_t n, Py_ssize_t start, Py_ssize_t stop,
                                 const double *r, double *g) noexcept nogil:
    """g[j] += sum_i r[i - start] * X[i, j] over the block, row after row."""
    if col_stride == 1:
        if data_t is double:
            fl_rows_gradient_c_f64(X + start * row_stride, row_stride, n, r, stop - start, g)
        else:
            fl_rows_gradient_c_f32(X + start * row_stride, row_stride, n, r, stop - start, g)
    else:
        if data_t is double:
            fl_rows_gradient_f_f64(X + start, col_stride, n, r, stop - start, g)
        else:
            fl_rows_gradient_f_f32(X + start, col_stride, n, r, stop - start, g)


cdef inline double _block_sum(const double *v, Py_ssize_t k) noexcept nogil:
    # The sum of a block in a fixed order (16 lanes, then a fixed tree: fl_sum in
    # src/fl_losses.h), the same for every clone; the losses of mean_loss are added in the
    # same order by fl_logit_loss_total / fl_prob_loss_total without being stored.
    cdef double s
    fl_sum(v, k, &s)
    return s


cdef inline void _widen(const data_t *src, double *dst, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(k):
        dst[i] = src[i]


cdef inline void _narrow(const double *src, out_t *dst, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(k):
        dst[i] = <out_t> src[i]


cdef inline Py_ssize_t _n_chunks(Py_ssize_t n_blocks) noexcept nogil:
    return n_blocks if n_blocks < MAX_CHUNKS else MAX_CHUNKS


cdef inline Py_ssize_t _chunk_start(Py_ssize_t c, Py_ssize_t n_blocks, Py_ssize_t n_chunks) noexcept nogil:
    # Blocks are split as evenly as possible; depends on the shape only.
    return (c * n_blocks) // n_chunks


cdef void _combine_rows(const double *part, Py_ssize_t n_rows, Py_ssize_t stride,
                        Py_ssize_t first, Py_ssize_t width, bint pairs, double *out) noexcept nogil:
    """out[j] = the Neumaier sum, in row order, of part[r, first + j] (pairs:
    of the compensated pairs part[r, first + j], part[r, first + width + j]).
    The one combine of every reduction: same bits for any thread count."""
    cdef Py_ssize_t r, j
    cdef const double *row
    cdef double value, comp
    for j in range(width):
        out[j] = 0.0
        comp = 0.0
        for r in range(n_rows):
            row = part + r * stride + first
            value = _compensated(row[j], row[width + j]) if pairs else row[j]
            _neumaier_add(&out[j], &comp, value)
        out[j] = _compensated(out[j], comp)


def rows_per_block(Py_ssize_t n, Py_ssize_t itemsize):
    """Rows per block of the fused X kernels: a function of the shape only."""
    cdef Py_ssize_t rows = BLOCK_BYTES // max(n * itemsize, 1)
    if rows > BLOCK:
        rows = BLOCK
    if rows < 16:
        rows = 16
    return rows


def reduction_chunks(Py_ssize_t m, Py_ssize_t n, Py_ssize_t itemsize):
    """Row boundaries (chunks + 1 increasing ints, from 0 to m) of the reduction
    chunks of :func:`cost_and_gradients` for an (m, n) X of that item size.

    A call of cost_and_gradients on the rows of one chunk returns that chunk's
    partial sums exactly when the chunk holds at most ``REDUCTION_CHUNKS``
    blocks (m <= REDUCTION_CHUNKS**2 * rows_per_block); :func:`combine_partials`
    then reproduces the whole call bit for bit."""
    cdef Py_ssize_t rows = rows_per_block(n, itemsize)
    cdef Py_ssize_t n_blocks = _ceil_div(m, rows)
    cdef Py_ssize_t n_chunks = _n_chunks(n_blocks)
    if m <= 0:
        return [0, 0] if m == 0 else []
    return [min(rows * _chunk_start(c, n_blocks, n_chunks), m) for c in range(n_chunks + 1)]


def combine_partials(P):
    """Column sums of the per-chunk partials ``P``, combined as the kernels do:
    rows in order, Neumaier-compensated, a non-finite sum kept as it is.

    ``P`` is float64 of shape (chunks, width), one chunk's (already compensated)
    sums per row, or (chunks, width, 2) holding [sum, compensation] pairs.
    Returns a float64 array of shape (width,)."""
    cdef double[:, ::1] rows
    cdef Py_ssize_t n_rows, width
    arr = np.asarray(P, dtype=np.float64)
    pairs = arr.ndim == 3
    if arr.ndim not in (2, 3) or (pairs and arr.shape[2] != 2):
        raise ValueError(f"P must have shape (chunks, width) or (chunks, width, 2); "
                         f"got shape {arr.shape}")
    n_rows, width = arr.shape[0], arr.shape[1]
    # Pairs are laid out [sums (width), compensations (width)] per row.
    rows = np.ascontiguousarray(np.concatenate([arr[..., 0], arr[..., 1]], axis=1) if pairs
                                else arr).reshape(n_rows, -1)
    out = np.zeros(width, dtype=np.float64)
    cdef double[::1] out_view = out
    if width > 0 and n_rows > 0:
        _combine_rows(&rows[0, 0], n_rows, rows.shape[1], 0, width, pairs, &out_view[0])
    return out


# The kernel families, one file each (textual includes: one module, one set of helpers).
include "_kernels_elementwise.pxi"
include "_kernels_rows.pxi"
include "_kernels_newton.pxi"
include "_kernels_outputs.pxi"
