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
  input), except where fl_math.h has a float32 loop of its own (sigmoid,
  log_sigmoid, the loss of float32 logits, float32 forward_pass outputs).
* Reductions are reproducible: rows are grouped into at most ``MAX_CHUNKS``
  chunks fixed by the problem size (:func:`reduction_chunks`); one task is one
  chunk, whose partial sum is accumulated block by block with Neumaier
  compensation into that chunk's own row of partials; the partials are
  combined in chunk order after the job (:func:`combine_partials`).  A block
  is summed in a fixed order of 16 lanes (``fl_sum``; mean_loss adds its losses
  in that order as it forms them, ``fl_logit_loss_sum``), the same for every
  instruction-set clone.  The bits
  therefore depend neither on the number of threads nor on which worker ran
  which chunk.

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
    void fl_logit_loss_sum(const double *z, const double *y, Py_ssize_t n, double scale,
                           double *total)
    void fl_logit_loss_residual(const double *z, const double *y, double *loss,
                                double *resid, Py_ssize_t n)
    void fl_logit_loss_residual_curvature(const double *z, const double *y, double *loss,
                                          double *resid, double *curv, Py_ssize_t n)
    void fl_prob_loss_sum(const double *a, const double *y, double eps, Py_ssize_t n,
                          double scale, double *total)
    void fl_sum(const double *v, Py_ssize_t n, double *total)

cdef extern from "fl_math_f32.h" nogil:
    void fl_sigmoid_f32(const float *z, float *out, Py_ssize_t n)
    void fl_sigmoid_to_f32(const double *z, float *out, Py_ssize_t n)
    void fl_logit_loss_sum_f32(const float *z, const float *y, Py_ssize_t n, double scale,
                               double *total)
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
    # src/fl_math.h), the same for every clone; the losses of mean_loss are added in the
    # same order by fl_logit_loss_sum / fl_prob_loss_sum without being stored.
    cdef double s
    fl_sum(v, k, &s)
    return s


cdef inline double _count_bad_labels(const label_t *y, Py_ssize_t k) noexcept nogil:
    # Labels must lie in [0, 1]; NaN fails both comparisons and counts too.
    # Written without && so that the loop vectorises.
    # An integer count: a floating-point sum would be one serial chain.
    cdef Py_ssize_t i, good = 0
    for i in range(k):
        good += (y[i] >= 0.0) & (y[i] <= 1.0)
    return <double> (k - good)


cdef inline double _count_outside_unit(const double *a, Py_ssize_t k) noexcept nogil:
    # Probabilities outside [0, 1] (NaN is not counted: a NaN example gives a NaN cost).
    # Counted in the kernel's own pass over the block: a separate NumPy check costs
    # three passes over A and two temporaries.
    cdef Py_ssize_t i, bad = 0
    for i in range(k):
        bad += (a[i] < 0.0) | (a[i] > 1.0)
    return <double> bad


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


# ---------------------------------------------------------------------------
# Element-wise kernels
# ---------------------------------------------------------------------------

cdef struct UnaryJob:
    unary_fn fn
    unary_f32_fn fn_f32        # float32 -> float32 at its own width (NULL: widen to double)
    const void *z
    void *out
    Py_ssize_t n
    Py_ssize_t span            # elements per task
    bint z_f32
    bint out_f32
    double *work               # BLOCK doubles per worker


cdef inline void _unary_range(unary_fn fn, const data_t *z, out_t *out, Py_ssize_t start,
                              Py_ssize_t stop, double *buf) noexcept nogil:
    cdef Py_ssize_t s, k
    if data_t is double and out_t is double:
        fn(z + start, out + start, stop - start)
    else:
        s = start
        while s < stop:
            k = min(BLOCK, stop - s)
            _widen(z + s, buf, k)
            fn(buf, buf, k)
            _narrow(buf, out + s, k)
            s += k


cdef void _unary_task(void *ctx, Py_ssize_t task, int worker) noexcept nogil:
    cdef UnaryJob *j = <UnaryJob *> ctx
    cdef Py_ssize_t start = task * j.span
    cdef Py_ssize_t stop = min(start + j.span, j.n)
    cdef double *buf = j.work + worker * BLOCK
    if j.z_f32 and j.out_f32 and j.fn_f32 != NULL:
        j.fn_f32(<const float *> j.z + start, <float *> j.out + start, stop - start)
    elif j.z_f32:
        if j.out_f32:
            _unary_range(j.fn, <const float *> j.z, <float *> j.out, start, stop, buf)
        else:
            _unary_range(j.fn, <const float *> j.z, <double *> j.out, start, stop, buf)
    else:
        if j.out_f32:
            _unary_range(j.fn, <const double *> j.z, <float *> j.out, start, stop, buf)
        else:
            _unary_range(j.fn, <const double *> j.z, <double *> j.out, start, stop, buf)


cdef void _unary(unary_fn fn, unary_f32_fn fn_f32, const data_t[::1] z, out_t[::1] out,
                 int n_threads) noexcept:
    cdef UnaryJob job
    cdef Py_ssize_t n = z.shape[0]
    cdef double[:, ::1] work = np.empty((max(n_threads, 1), BLOCK), dtype=np.float64)
    if n == 0:
        return
    job.fn = fn
    job.fn_f32 = fn_f32
    job.z = &z[0]
    job.out = &out[0]
    job.n = n
    job.span = _task_span(n, 1)
    job.z_f32 = data_t is float
    job.out_f32 = out_t is float
    job.work = &work[0, 0]
    with nogil:
        _run(_unary_task, &job, _ceil_div(n, job.span), n_threads)


def sigmoid(const data_t[::1] z, out_t[::1] out, int n_threads):
    _unary(fl_sigmoid, fl_sigmoid_f32, z, out, n_threads)


def log_sigmoid(const data_t[::1] z, out_t[::1] out, int n_threads):
    _unary(fl_log_sigmoid, fl_log_sigmoid_f32, z, out, n_threads)


# ---------------------------------------------------------------------------
# Scores, forward pass and prediction: one pass over X, no (m, 1) temporary
# ---------------------------------------------------------------------------

cdef enum RowsOutput:
    OUT_SCORES = 0             # z itself, float64
    OUT_PROB_F64 = 1           # sigmoid(z)
    OUT_PROB_F32 = 2
    OUT_LABELS = 3             # sigmoid(z) >= threshold, int64


cdef struct RowsJob:
    const void *X
    bint x_f32
    Py_ssize_t rs, cs, m, n, rows
    Py_ssize_t span            # blocks per task
    const double *w
    double b
    double threshold
    RowsOutput what
    void *out
    double *work               # rows doubles per worker


cdef inline void _rows_range(RowsJob *j, const data_t *X, Py_ssize_t first_block,
                             double *buf) noexcept nogil:
    cdef Py_ssize_t blk, start, k, i
    cdef Py_ssize_t stop_block = min(first_block + j.span, _ceil_div(j.m, j.rows))
    cdef double *z
    cdef long long *labels
    for blk in range(first_block, stop_block):
        start = blk * j.rows
        k = min(j.rows, j.m - start)
        # Scores and float64 probabilities go straight into the output: no copy.
        z = (<double *> j.out) + start if j.what == OUT_SCORES or j.what == OUT_PROB_F64 else buf
        _scores_block(X, j.rs, j.cs, j.n, j.w, j.b, start, start + k, z)
        if j.what == OUT_SCORES:
            continue
        if j.what == OUT_PROB_F32:
            # float32 probabilities straight from the double scores (<= 0.51 ulp32)
            fl_sigmoid_to_f32(z, (<float *> j.out) + start, k)
            continue
        fl_sigmoid(z, z, k)
        if j.what == OUT_LABELS:
            labels = (<long long *> j.out) + start
            for i in range(k):
                labels[i] = z[i] >= j.threshold


cdef void _rows_task(void *ctx, Py_ssize_t task, int worker) noexcept nogil:
    cdef RowsJob *j = <RowsJob *> ctx
    cdef double *buf = j.work + worker * j.rows
    if j.x_f32:
        _rows_range(j, <const float *> j.X, task * j.span, buf)
    else:
        _rows_range(j, <const double *> j.X, task * j.span, buf)


cdef void _rows(const data_t[:, :] X, const double[::1] W, double b, double threshold,
                RowsOutput what, void *out, int n_threads):
    cdef RowsJob job
    cdef Py_ssize_t m = X.shape[0], n = X.shape[1]
    cdef Py_ssize_t n_blocks
    cdef double[:, ::1] work
    if m == 0:
        return
    job.X = &X[0, 0] if n > 0 else NULL
    job.x_f32 = data_t is float
    job.rs = X.strides[0] // sizeof(data_t)
    job.cs = X.strides[1] // sizeof(data_t)
    job.m, job.n = m, n
    job.rows = rows_per_block(n, sizeof(data_t))
    n_blocks = _ceil_div(m, job.rows)
    job.span = _task_span(n_blocks, job.rows * max(n, 1))
    job.w = &W[0] if n > 0 else NULL
    job.b = b
    job.threshold = threshold
    job.what = what
    job.out = out
    work = np.empty((max(n_threads, 1), job.rows), dtype=np.float64)
    job.work = &work[0, 0]
    with nogil:
        _run(_rows_task, &job, _ceil_div(n_blocks, job.span), n_threads)


def scores(const data_t[:, :] X, const double[::1] W, double b, double[::1] out, int n_threads):
    """out[i] = X[i] . W + b in float64; X must be C- or F-contiguous."""
    _rows(X, W, b, 0.0, OUT_SCORES, &out[0] if out.shape[0] > 0 else NULL, n_threads)


def forward_pass(const data_t[:, :] X, const double[::1] W, double b,
                 out_t[::1] out, int n_threads):
    """out[i] = sigmoid(X[i] . W + b); X must be C- or F-contiguous."""
    _rows(X, W, b, 0.0, OUT_PROB_F32 if out_t is float else OUT_PROB_F64,
          &out[0] if out.shape[0] > 0 else NULL, n_threads)


def predict(const data_t[:, :] X, const double[::1] W, double b, double threshold,
            long long[::1] out, int n_threads):
    """out[i] = sigmoid(X[i] . W + b) >= threshold."""
    _rows(X, W, b, threshold, OUT_LABELS, &out[0] if out.shape[0] > 0 else NULL, n_threads)


# ---------------------------------------------------------------------------
# Reproducible mean losses
# ---------------------------------------------------------------------------

cdef struct LossJob:
    const void *a
    const void *y
    bint a_f32
    bint y_f32
    bint from_logits
    double eps
    double scale
    Py_ssize_t n, n_blocks, n_chunks
    double *part               # 8 doubles per chunk: [loss, loss_c, bad labels, bad values, ...]
    double *work               # 2 * BLOCK doubles per worker


cdef inline void _loss_chunk(LossJob *j, const data_t *a, const label_t *y, Py_ssize_t c,
                             double *av) noexcept nogil:
    cdef double *yv = av + BLOCK
    cdef double *pc = j.part + 8 * c
    cdef const double *ap
    cdef const double *yp
    cdef double block_total
    cdef Py_ssize_t blk, start, k
    for blk in range(_chunk_start(c, j.n_blocks, j.n_chunks),
                     _chunk_start(c + 1, j.n_blocks, j.n_chunks)):
        start = blk * BLOCK
        k = min(BLOCK, j.n - start)
        if data_t is float and label_t is float:
            if j.from_logits:        # float32 at its own width (fl_logit_loss_sum_f32)
                pc[2] += _count_bad_labels(y + start, k)
                fl_logit_loss_sum_f32(a + start, y + start, k, j.scale, &block_total)
                _neumaier_add(&pc[0], &pc[1], block_total)
                continue
        # float64 data is read in place; float32 is widened per block.
        if data_t is double:
            ap = a + start
        else:
            _widen(a + start, av, k)
            ap = av
        if label_t is double:
            yp = y + start
        else:
            _widen(y + start, yv, k)
            yp = yv
        pc[2] += _count_bad_labels(yp, k)
        if j.from_logits:
            fl_logit_loss_sum(ap, yp, k, j.scale, &block_total)
        else:
            pc[3] += _count_outside_unit(ap, k)
            fl_prob_loss_sum(ap, yp, j.eps, k, j.scale, &block_total)
        _neumaier_add(&pc[0], &pc[1], block_total)


cdef void _loss_task(void *ctx, Py_ssize_t c, int worker) noexcept nogil:
    cdef LossJob *j = <LossJob *> ctx
    cdef double *buf = j.work + worker * 2 * BLOCK
    if j.a_f32:
        if j.y_f32:
            _loss_chunk(j, <const float *> j.a, <const float *> j.y, c, buf)
        else:
            _loss_chunk(j, <const float *> j.a, <const double *> j.y, c, buf)
    else:
        if j.y_f32:
            _loss_chunk(j, <const double *> j.a, <const float *> j.y, c, buf)
        else:
            _loss_chunk(j, <const double *> j.a, <const double *> j.y, c, buf)


def mean_loss(const data_t[::1] a, const label_t[::1] y, bint from_logits, double eps,
              int n_threads, double scale=1.0):
    """(sum over i of scale * the per-example loss, number of labels outside [0, 1],
    number of probabilities outside [0, 1]): the loss from probabilities a (clipped to
    [eps, 1 - eps]) or from logits a (then the last count is 0).  NaN is counted as a
    bad label but not as a bad probability.  A power-of-two ``scale`` (2^-64) lets the
    caller re-sum losses whose plain sum overflows: scaling is exact, so no other bits
    change."""
    cdef LossJob job
    cdef Py_ssize_t n = a.shape[0]
    cdef Py_ssize_t c
    cdef double total, bad = 0.0, outside = 0.0
    job.n = n
    job.n_blocks = _ceil_div(n, BLOCK)
    job.n_chunks = _n_chunks(job.n_blocks)
    # One cache line (8 doubles) per chunk: no false sharing between threads.
    cdef double[:, ::1] part = np.zeros((max(job.n_chunks, 1), 8), dtype=np.float64)
    cdef double[:, ::1] work = np.empty((max(n_threads, 1), 2 * BLOCK), dtype=np.float64)
    if n == 0:
        return 0.0, 0, 0
    job.a, job.y = &a[0], &y[0]
    job.a_f32, job.y_f32 = data_t is float, label_t is float
    job.from_logits, job.eps, job.scale = from_logits, eps, scale
    job.part = &part[0, 0]
    job.work = &work[0, 0]
    with nogil:
        _run(_loss_task, &job, job.n_chunks, n_threads)
        _combine_rows(job.part, job.n_chunks, 8, 0, 1, True, &total)
        for c in range(job.n_chunks):
            bad += part[c, 2]
            outside += part[c, 3]
    return total, int(bad), int(outside)


# ---------------------------------------------------------------------------
# Fused cost and gradients: one pass over X
# ---------------------------------------------------------------------------

cdef struct GradJob:
    const void *X
    const void *y
    bint x_f32
    bint y_f32
    Py_ssize_t rs, cs, m, n, rows, n_blocks, n_chunks
    const double *w
    double b
    const double *sample_weight   # NULL: unit weights
    bint with_loss
    # Partials per chunk: [loss, db, loss_c, db_c, bad, -, -, -, dW(n), dW_c(n)],
    # padded to a whole number of cache lines so chunks never share one.
    double *part
    Py_ssize_t width
    double *work               # z, y, loss, residual (rows each) and g (n) per worker
    Py_ssize_t scratch


cdef inline void _loss_gradient_block(const data_t *X, Py_ssize_t rs, Py_ssize_t cs,
                                      Py_ssize_t n, const double *w, double b, const label_t *y,
                                      const double *sample_weight, Py_ssize_t start, Py_ssize_t k,
                                      double *zv, double *yv, double *lv, double *rv, double *hv,
                                      double *g, double *bad) noexcept nogil:
    """One row block of the fused kernels: scores, per-example loss (into lv,
    unless NULL), residual (rv) and, for Newton, curvature (hv, unless NULL), all
    weighted, and g = the block's sum of r_i x_i.  Adds the bad-label count to bad.

    A C-ordered block goes through in sub-blocks of about SUB_BYTES of X: scores, residuals
    and the gradient rows of one sub-block while its rows are still in L1, so X is read from
    memory once (an F-ordered block: scores of the whole block, then one dot per column).
    The gradient adds the rows to g in row order either way: the sub-block size changes no
    bit, and every element-wise step is independent of where a sub-block starts."""
    cdef const double *yp
    cdef double wi
    cdef Py_ssize_t i, s0, ks
    cdef Py_ssize_t sub = k if cs != 1 else max(16, SUB_BYTES // max(n * <Py_ssize_t> sizeof(data_t), 1))
    if label_t is double:
        yp = y + start
    else:
        _widen(y + start, yv, k)
        yp = yv
    bad[0] += _count_bad_labels(yp, k)
    for i in range(n):
        g[i] = 0.0
    s0 = 0
    while s0 < k:
        ks = min(sub, k - s0)
        _scores_block(X, rs, cs, n, w, b, start + s0, start + s0 + ks, zv + s0)
        if hv != NULL:
            fl_logit_loss_residual_curvature(zv + s0, yp + s0, lv + s0, rv + s0, hv + s0, ks)
        else:
            fl_logit_loss_residual(zv + s0, yp + s0, lv + s0 if lv != NULL else NULL, rv + s0, ks)
        if sample_weight != NULL:
            for i in range(s0, s0 + ks):
                wi = sample_weight[start + i]
                # A zero weight removes the example, even an inf loss.
                if lv != NULL:
                    lv[i] = lv[i] * wi if wi != 0.0 else 0.0
                rv[i] = rv[i] * wi
                if hv != NULL:
                    hv[i] = hv[i] * wi
        _gradient_block(X, rs, cs, n, start + s0, start + s0 + ks, rv + s0, g)
        s0 += ks


cdef inline void _grad_chunk(GradJob *j, const data_t *X, const label_t *y, Py_ssize_t c,
                             double *zv) noexcept nogil:
    cdef double *yv = zv + j.rows
    cdef double *lv = yv + j.rows
    cdef double *rv = lv + j.rows
    cdef double *g = rv + j.rows
    cdef double *pc = j.part + c * j.width
    cdef Py_ssize_t blk, start, k, q, n = j.n
    for blk in range(_chunk_start(c, j.n_blocks, j.n_chunks),
                     _chunk_start(c + 1, j.n_blocks, j.n_chunks)):
        start = blk * j.rows
        k = min(j.rows, j.m - start)
        _loss_gradient_block(X, j.rs, j.cs, n, j.w, j.b, y, j.sample_weight, start, k,
                             zv, yv, lv if j.with_loss else NULL, rv, NULL, g, &pc[4])
        if j.with_loss:
            _neumaier_add(&pc[0], &pc[2], _block_sum(lv, k))
        _neumaier_add(&pc[1], &pc[3], _block_sum(rv, k))
        for q in range(n):
            _neumaier_add(&pc[8 + q], &pc[8 + n + q], g[q])


cdef void _grad_task(void *ctx, Py_ssize_t c, int worker) noexcept nogil:
    cdef GradJob *j = <GradJob *> ctx
    cdef double *buf = j.work + worker * j.scratch
    if j.x_f32:
        if j.y_f32:
            _grad_chunk(j, <const float *> j.X, <const float *> j.y, c, buf)
        else:
            _grad_chunk(j, <const float *> j.X, <const double *> j.y, c, buf)
    else:
        if j.y_f32:
            _grad_chunk(j, <const double *> j.X, <const float *> j.y, c, buf)
        else:
            _grad_chunk(j, <const double *> j.X, <const double *> j.y, c, buf)


def cost_and_gradients(const data_t[:, :] X, const double[::1] W, double b,
                       const label_t[::1] y, const double[::1] sample_weight,
                       bint with_loss, int n_threads):
    """Weighted sums over rows of (loss_i, r_i x_i, r_i), r_i = sigmoid(z_i) - y_i.

    Returns (loss_sum, grad_W_sum (n,), grad_b_sum, number of labels outside
    [0, 1]), float64 and unnormalised.
    ``sample_weight`` empty means unit weights.
    """
    cdef GradJob job
    cdef Py_ssize_t m = X.shape[0], n = X.shape[1]
    cdef Py_ssize_t c
    cdef double sums[2]
    cdef double bad = 0.0
    job.rows = rows_per_block(n, sizeof(data_t))
    job.n_blocks = _ceil_div(m, job.rows)
    job.n_chunks = _n_chunks(job.n_blocks)
    job.width = _ceil_div(8 + 2 * n, 8) * 8
    job.scratch = _ceil_div(4 * job.rows + n, 8) * 8
    cdef double[:, ::1] part = np.zeros((max(job.n_chunks, 1), job.width), dtype=np.float64)
    cdef double[:, ::1] work = np.empty((max(n_threads, 1), job.scratch), dtype=np.float64)
    dW = np.zeros(n, dtype=np.float64)
    cdef double[::1] dW_view = dW
    if m == 0:
        return 0.0, dW, 0.0, 0
    job.X = &X[0, 0] if n > 0 else NULL
    job.y = &y[0]
    job.x_f32, job.y_f32 = data_t is float, label_t is float
    job.rs = X.strides[0] // sizeof(data_t)
    job.cs = X.strides[1] // sizeof(data_t)
    job.m, job.n = m, n
    job.w = &W[0] if n > 0 else NULL
    job.b = b
    job.sample_weight = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    job.with_loss = with_loss
    job.part = &part[0, 0]
    job.work = &work[0, 0]
    with nogil:
        _run(_grad_task, &job, job.n_chunks, n_threads)
        # Combine the chunk partials in chunk order: same bits for any thread count.
        _combine_rows(job.part, job.n_chunks, job.width, 0, 2, True, sums)
        if n > 0:
            _combine_rows(job.part, job.n_chunks, job.width, 8, n, True, &dW_view[0])
        for c in range(job.n_chunks):
            bad += part[c, 4]
    return sums[0], dW, sums[1], int(bad)


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


# ---- NEWTON begin ----
# Cost, gradient and Hessian in one pass over X, for Newton's method (on the pool: one task
# per chunk, like cost_and_gradients).  Each row block goes through the same
# _loss_gradient_block as cost_and_gradients (plus the curvature), then the C loops of
# src/fl_hessian.h.
#
# The Hessian of the summed loss is X~^T diag(s_i h_i) X~ with X~ = [X, 1] and
# h_i = sigma(z_i) sigma(-z_i): each row block is packed and its upper triangle accumulated
# tile by tile by the C loops of src/fl_hessian.h; the lower triangle is mirrored at the
# end.  Rows per block and the chunking depend on the shape only, chunk partials are
# combined in chunk order: the bits do not depend on the thread count.
cdef extern from "fl_hessian.h" nogil:
    int FLN_V
    void fln_syrk_upper(const double *S, const double *P, Py_ssize_t k, Py_ssize_t ld,
                        double *H) noexcept nogil
    void fln_pack_d(const double *X, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t n, Py_ssize_t k,
                    const double *h, Py_ssize_t ld, double *P, double *S) noexcept nogil
    void fln_pack_f(const float *X, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t n, Py_ssize_t k,
                    const double *h, Py_ssize_t ld, double *P, double *S) noexcept nogil
    int fln_cholesky_solve(const double *H, Py_ssize_t n, double shift, const double *g,
                           double *L, double *d) noexcept nogil

# Bytes of one packed row block (P and S each): both stay in a 512 KiB L2 with room for the
# tile's H rows.
DEF NEWTON_BLOCK_BYTES = 131072
# Bytes of all chunks' Hessian partials together: bounds the chunk count for wide X
# (n = 500: 16 chunks of 2 MiB), which then also bounds the threads that can help.
DEF NEWTON_PARTIAL_BYTES = 33554432


def newton_layout(Py_ssize_t m, Py_ssize_t n):
    """(ld, rows per block, number of chunks) of cost_gradient_hessian for an (m, n) X:
    a function of the shape only."""
    cdef Py_ssize_t ld = _ceil_div(n + 1, FLN_V) * FLN_V
    cdef Py_ssize_t rows = NEWTON_BLOCK_BYTES // (ld * 8)
    rows = max(16, min(rows, 1024))
    cdef Py_ssize_t n_blocks = _ceil_div(m, rows)
    cdef Py_ssize_t n_chunks = min(n_blocks, MAX_CHUNKS,
                                   max(1, NEWTON_PARTIAL_BYTES // (ld * ld * 8)))
    return ld, rows, max(n_chunks, 1)


cdef struct NewtonJob:
    const void *X
    const void *y
    bint x_f32
    bint y_f32
    Py_ssize_t rs, cs, m, n, ld, rows, n_blocks, n_chunks
    const double *w
    double b
    const double *sample_weight   # NULL: unit weights
    double *part                  # (n_chunks, width): [loss, loss_c, db, db_c, bad, -, -, -, dW, dW_c]
    Py_ssize_t width
    double *hpart                 # (n_chunks, ld * ld): upper triangles of H
    double *work                  # per worker: z, y, loss, residual, curvature, g, then P and S
    Py_ssize_t vec
    Py_ssize_t scratch


cdef inline void _newton_chunk(NewtonJob *j, const data_t *X, const label_t *y, Py_ssize_t c,
                               double *zv) noexcept nogil:
    cdef Py_ssize_t rows = j.rows, n = j.n, ld = j.ld
    cdef double *yv = zv + rows
    cdef double *lv = yv + rows
    cdef double *rv = lv + rows
    cdef double *hv = rv + rows
    cdef double *g = hv + rows
    cdef double *P = zv + j.vec
    cdef double *S = P + rows * ld
    cdef double *pc = j.part + c * j.width
    cdef Py_ssize_t blk, start, k, q
    for blk in range(_chunk_start(c, j.n_blocks, j.n_chunks),
                     _chunk_start(c + 1, j.n_blocks, j.n_chunks)):
        start = blk * rows
        k = min(rows, j.m - start)
        _loss_gradient_block(X, j.rs, j.cs, n, j.w, j.b, y, j.sample_weight, start, k,
                             zv, yv, lv, rv, hv, g, &pc[4])
        _neumaier_add(&pc[0], &pc[1], _block_sum(lv, k))
        _neumaier_add(&pc[2], &pc[3], _block_sum(rv, k))
        for q in range(n):
            _neumaier_add(&pc[8 + q], &pc[8 + n + q], g[q])
        if data_t is double:
            fln_pack_d(X + start * j.rs if j.cs == 1 else X + start, j.rs, j.cs, n, k, hv,
                       ld, P, S)
        else:
            fln_pack_f(X + start * j.rs if j.cs == 1 else X + start, j.rs, j.cs, n, k, hv,
                       ld, P, S)
        fln_syrk_upper(S, P, k, ld, j.hpart + c * ld * ld)


cdef void _newton_task(void *ctx, Py_ssize_t c, int worker) noexcept nogil:
    cdef NewtonJob *j = <NewtonJob *> ctx
    cdef double *buf = j.work + worker * j.scratch
    if j.x_f32:
        if j.y_f32:
            _newton_chunk(j, <const float *> j.X, <const float *> j.y, c, buf)
        else:
            _newton_chunk(j, <const float *> j.X, <const double *> j.y, c, buf)
    else:
        if j.y_f32:
            _newton_chunk(j, <const double *> j.X, <const float *> j.y, c, buf)
        else:
            _newton_chunk(j, <const double *> j.X, <const double *> j.y, c, buf)


def cost_gradient_hessian(const data_t[:, :] X, const double[::1] W, double b,
                          const label_t[::1] y, const double[::1] sample_weight,
                          int n_threads):
    """Weighted sums over rows of (loss_i, r_i x_i, r_i, h_i x~_i x~_i^T), one pass over X.

    r_i = sigma(z_i) - y_i, h_i = sigma(z_i) sigma(-z_i), x~_i = [x_i, 1].  Returns
    (loss_sum, grad_W_sum (n,), grad_b_sum, hessian_sum (n+1, n+1) symmetric with the
    intercept last, number of labels outside [0, 1]), float64 and unnormalised.
    ``sample_weight`` empty means unit weights.
    """
    cdef NewtonJob job
    cdef Py_ssize_t m = X.shape[0], n = X.shape[1]
    cdef Py_ssize_t c, i, q
    cdef double sums[2]
    cdef double bad = 0.0
    job.ld, job.rows, job.n_chunks = newton_layout(m, n)
    job.n_blocks = _ceil_div(m, job.rows)
    job.width = _ceil_div(8 + 2 * n, 8) * 8
    job.vec = _ceil_div(5 * job.rows + n, 8) * 8
    job.scratch = job.vec + 2 * job.rows * job.ld
    cdef double[:, ::1] part = np.zeros((job.n_chunks, job.width), dtype=np.float64)
    cdef double[:, ::1] hpart = np.zeros((job.n_chunks, job.ld * job.ld), dtype=np.float64)
    cdef double[:, ::1] work = np.empty((max(n_threads, 1), job.scratch), dtype=np.float64)
    dW = np.zeros(n, dtype=np.float64)
    cdef double[::1] dW_view = dW
    Hout = np.empty((n + 1, n + 1), dtype=np.float64)
    cdef double[:, ::1] H = Hout
    job.X = &X[0, 0] if m > 0 and n > 0 else NULL
    job.y = &y[0] if m > 0 else NULL
    job.x_f32, job.y_f32 = data_t is float, label_t is float
    job.rs = X.strides[0] // sizeof(data_t)
    job.cs = X.strides[1] // sizeof(data_t)
    job.m, job.n = m, n
    job.w = &W[0] if n > 0 else NULL
    job.b = b
    job.sample_weight = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    job.part = &part[0, 0]
    job.hpart = &hpart[0, 0]
    job.work = &work[0, 0]
    with nogil:
        if m > 0:
            _run(_newton_task, &job, job.n_chunks, n_threads)
        # Combine the chunk partials in chunk order: same bits for any thread count.
        # Rows of part laid out [loss, loss_c, db, db_c]: pairs (0, 1) and (2, 3).
        _combine_rows(job.part, job.n_chunks, job.width, 0, 1, True, &sums[0])
        _combine_rows(job.part, job.n_chunks, job.width, 2, 1, True, &sums[1])
        if n > 0:
            _combine_rows(job.part, job.n_chunks, job.width, 8, n, True, &dW_view[0])
        for i in range(n + 1):
            for q in range(i, n + 1):
                H[i, q] = 0.0
        for c in range(job.n_chunks):
            bad += part[c, 4]
            for i in range(n + 1):
                for q in range(i, n + 1):
                    H[i, q] += hpart[c, i * job.ld + q]
        for i in range(n + 1):
            for q in range(i):
                H[i, q] = H[q, i]
    return (sums[0], dW, sums[1], Hout, int(bad))

def newton_direction(const double[:, ::1] H, const double[::1] g):
    """Newton's direction d solving H d = -g by Cholesky (src/fl_hessian.h), for the small
    symmetric (n, n) H of Newton's method; a singular or indefinite H gets a growing
    multiple of the identity added until it factorises (Levenberg-Marquardt: the step
    shortens and turns toward -g): shifts 0, then 1e-12 max|H_jj|, x100 each time, 20 in
    all; then, or when H holds NaN or inf, -g.  Returns a new float64 (n,) array.
    Reference twin: fastlogit._newton.newton_direction_numpy (NumPy's LAPACK)."""
    cdef Py_ssize_t n = H.shape[0], i, q, attempt
    if H.shape[1] != n or g.shape[0] != n:
        raise ValueError(f"H must be square (n, n) and g (n,); got H {H.shape[0]} x "
                         f"{H.shape[1]}, g {g.shape[0]}")
    d = np.empty(n, dtype=np.float64)
    if n == 0:
        return d
    cdef double[::1] dv = d
    cdef double scale = 0.0, shift = 0.0
    cdef bint ok = True
    Lbuf = np.empty(n * n, dtype=np.float64)
    cdef double[::1] L = Lbuf
    with nogil:
        for i in range(n):
            for q in range(n):
                if not _finite(H[i, q]):
                    ok = False
            scale = max(scale, H[i, i] if H[i, i] >= 0 else -H[i, i])
        if ok:
            ok = False
            for attempt in range(20):
                if fln_cholesky_solve(&H[0, 0], n, shift, &g[0], &L[0], &dv[0]) == 0:
                    ok = True
                    for i in range(n):
                        if not _finite(dv[i]):
                            ok = False
                    if ok:
                        break
                shift = max(shift * 100.0, 1e-12 * max(scale, 1e-300))
        if not ok:
            for i in range(n):
                dv[i] = -g[i]
    return d
# ---- NEWTON end ----
