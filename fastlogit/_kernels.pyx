"""Compiled loops of fastlogit.

Everything here assumes validated input: the Python layer (``fastlogit._api``)
checks shapes, dtypes and contiguity and allocates outputs before calling in.

Design
------
* Work is cut into blocks of rows (``BLOCK`` elements / rows) whose size
  depends only on the problem shape, never on the thread count.  Threads take
  blocks with a static schedule, so each thread first-touches the part of the
  output it writes.
* Transcendental math lives in ``src/fl_math.h`` (vectorised, one code path
  per instruction set chosen at run time); it works on contiguous double
  blocks, so float32 data is widened block by block in a per-thread buffer
  (no float64 copy of a float32 input).
* Reductions are reproducible: rows are grouped into at most ``MAX_CHUNKS``
  chunks fixed by the problem size; each chunk's partial sum is accumulated
  block by block with Neumaier compensation, and the partials are combined
  in chunk order after the parallel loop.  The bits therefore do not depend
  on the number of threads.
"""
import numpy as np
from cython.parallel cimport prange, threadid
from libc.string cimport memset

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
    void fl_logit_loss(const double *z, const double *y, double *loss, Py_ssize_t n)
    void fl_logit_loss_residual(const double *z, const double *y, double *loss,
                                double *resid, Py_ssize_t n)
    void fl_prob_loss(const double *a, const double *y, double eps, double *loss, Py_ssize_t n)
    const char *fl_math_isa()

ctypedef void (*unary_fn)(const double *, double *, Py_ssize_t) noexcept nogil

# Elements per block: large enough to amortise the call into fl_math, small
# enough that a block of doubles (4 KiB) and its scratch stay in L1.
DEF BLOCK = 512
# Upper bound on reduction chunks: enough for 64 threads' static share, small
# enough that the (chunks, n) partials stay tiny next to X.
DEF MAX_CHUNKS = 64
# Target bytes of X per row block in the fused kernels (fits in L2, so the
# second sweep over the block for dW reads cache, not memory).
DEF BLOCK_BYTES = 65536

BLOCK_SIZE = BLOCK
OPENMP = bool(FL_OPENMP)


def max_threads():
    """Threads OpenMP would use now (OMP_NUM_THREADS, threadpoolctl limits)."""
    return omp_get_max_threads()


def math_isa():
    """Instruction-set path selected by fl_math at run time."""
    return fl_math_isa().decode()


# ---------------------------------------------------------------------------
# Small helpers (inlined into the loops)
# ---------------------------------------------------------------------------

cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return (a + b - 1) // b


cdef inline void _neumaier_add(double *acc, double *comp, double x) noexcept nogil:
    # Neumaier's variant of Kahan summation: the compensation stays correct
    # when |x| > |acc| (Kahan's does not).
    cdef double t = acc[0] + x
    if abs(acc[0]) >= abs(x):
        comp[0] += (acc[0] - t) + x
    else:
        comp[0] += (x - t) + acc[0]
    acc[0] = t


cdef inline double _compensated(double acc, double comp) noexcept nogil:
    # Once the sum is inf (or NaN) the compensation is NaN (inf - inf): drop it.
    return acc + comp if acc - acc == 0.0 else acc


cdef inline double _dot_row(const data_t *x, const double *w, Py_ssize_t n) noexcept nogil:
    # Four independent accumulators: the compiler may not reassociate a single
    # floating-point sum, and one dependency chain would bound it to one FMA
    # per 4 cycles.
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef Py_ssize_t j = 0
    while j + 4 <= n:
        s0 += x[j] * w[j]
        s1 += x[j + 1] * w[j + 1]
        s2 += x[j + 2] * w[j + 2]
        s3 += x[j + 3] * w[j + 3]
        j += 4
    while j < n:
        s0 += x[j] * w[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


cdef inline void _scores_block(const data_t *X, Py_ssize_t row_stride, Py_ssize_t col_stride,
                               Py_ssize_t n, const double *w, double b,
                               Py_ssize_t start, Py_ssize_t stop, double *z) noexcept nogil:
    """z[i - start] = X[i, :] . w + b for rows start..stop-1."""
    cdef Py_ssize_t i, j, k = stop - start
    cdef const data_t *col
    cdef double wj
    if col_stride == 1:              # C order: one contiguous row at a time
        for i in range(k):
            z[i] = _dot_row(X + (start + i) * row_stride, w, n) + b
    else:                            # F order: stream each column's segment
        for i in range(k):
            z[i] = 0.0
        for j in range(n):
            col = X + j * col_stride + start
            wj = w[j]
            for i in range(k):
                z[i] += col[i] * wj
        for i in range(k):
            z[i] += b


cdef inline void _accumulate_gradient_block(const data_t *X, Py_ssize_t row_stride,
                                            Py_ssize_t col_stride, Py_ssize_t n,
                                            Py_ssize_t start, Py_ssize_t stop,
                                            const double *r, double *g) noexcept nogil:
    """g[j] = sum_i r[i - start] * X[i, j] over the block (g is overwritten)."""
    cdef Py_ssize_t i, j, k = stop - start
    cdef const data_t *row
    cdef const data_t *col
    cdef double ri, s
    if col_stride == 1:
        memset(g, 0, n * sizeof(double))
        for i in range(k):
            row = X + (start + i) * row_stride
            ri = r[i]
            for j in range(n):
                g[j] += ri * row[j]
    else:
        for j in range(n):
            col = X + j * col_stride + start
            s = 0.0
            for i in range(k):
                s += r[i] * col[i]
            g[j] = s


cdef double _pairwise_sum(const double *v, Py_ssize_t k) noexcept nogil:
    # Pairwise summation: error grows as log2(k), not k, for a block sum.
    cdef Py_ssize_t h, i
    cdef double s = 0.0
    if k <= 16:
        for i in range(k):
            s += v[i]
        return s
    h = k // 2
    return _pairwise_sum(v, h) + _pairwise_sum(v + h, k - h)


cdef inline double _count_bad_labels(const double *y, Py_ssize_t k) noexcept nogil:
    # Labels must lie in [0, 1]; NaN fails both comparisons and counts too.
    cdef Py_ssize_t i
    cdef double bad = 0.0
    for i in range(k):
        bad += not (y[i] >= 0.0 and y[i] <= 1.0)
    return bad


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


def rows_per_block(Py_ssize_t n, Py_ssize_t itemsize):
    """Rows per block of the fused X kernels: a function of the shape only."""
    cdef Py_ssize_t rows = BLOCK_BYTES // max(n * itemsize, 1)
    if rows > BLOCK:
        rows = BLOCK
    if rows < 16:
        rows = 16
    return rows


# ---------------------------------------------------------------------------
# Element-wise kernels
# ---------------------------------------------------------------------------

cdef void _unary(unary_fn fn, const data_t[::1] z, out_t[::1] out, int n_threads) noexcept:
    cdef Py_ssize_t n = z.shape[0]
    cdef Py_ssize_t n_blocks = _ceil_div(n, BLOCK)
    cdef Py_ssize_t blk, start, k
    cdef double[:, ::1] work
    cdef double *buf
    if data_t is double and out_t is double:
        with nogil:
            for blk in prange(n_blocks, num_threads=n_threads, schedule='static'):
                start = blk * BLOCK
                k = min(BLOCK, n - start)
                fn(&z[start], &out[start], k)
    else:
        work = np.empty((max(n_threads, 1), BLOCK), dtype=np.float64)
        with nogil:
            for blk in prange(n_blocks, num_threads=n_threads, schedule='static'):
                start = blk * BLOCK
                k = min(BLOCK, n - start)
                buf = &work[threadid(), 0]
                _widen(&z[start], buf, k)
                fn(buf, buf, k)
                _narrow(buf, &out[start], k)


def sigmoid(const data_t[::1] z, out_t[::1] out, int n_threads):
    _unary(fl_sigmoid, z, out, n_threads)


def log_sigmoid(const data_t[::1] z, out_t[::1] out, int n_threads):
    _unary(fl_log_sigmoid, z, out, n_threads)


# ---------------------------------------------------------------------------
# Forward pass and prediction: one pass over X, no (m, 1) temporary
# ---------------------------------------------------------------------------

def forward_pass(const data_t[:, :] X, const double[::1] W, double b,
                 out_t[::1] out, int n_threads):
    """out[i] = sigmoid(X[i] . W + b); X must be C- or F-contiguous."""
    cdef Py_ssize_t m = X.shape[0], n = X.shape[1]
    cdef Py_ssize_t rs = X.strides[0] // sizeof(data_t), cs = X.strides[1] // sizeof(data_t)
    cdef Py_ssize_t rows = rows_per_block(n, sizeof(data_t))
    cdef Py_ssize_t n_blocks = _ceil_div(m, rows)
    cdef Py_ssize_t blk, start, k
    cdef double[:, ::1] work = np.empty((max(n_threads, 1), rows), dtype=np.float64)
    cdef double *z
    cdef const data_t *Xp = &X[0, 0] if m > 0 and n > 0 else NULL
    if m == 0:
        return
    with nogil:
        for blk in prange(n_blocks, num_threads=n_threads, schedule='static'):
            start = blk * rows
            k = min(rows, m - start)
            z = &work[threadid(), 0]
            _scores_block(Xp, rs, cs, n, &W[0] if n > 0 else NULL, b, start, start + k, z)
            fl_sigmoid(z, z, k)
            _narrow(z, &out[start], k)


def predict(const data_t[:, :] X, const double[::1] W, double b, double threshold,
            long long[::1] out, int n_threads):
    """out[i] = sigmoid(X[i] . W + b) >= threshold."""
    cdef Py_ssize_t m = X.shape[0], n = X.shape[1]
    cdef Py_ssize_t rs = X.strides[0] // sizeof(data_t), cs = X.strides[1] // sizeof(data_t)
    cdef Py_ssize_t rows = rows_per_block(n, sizeof(data_t))
    cdef Py_ssize_t n_blocks = _ceil_div(m, rows)
    cdef Py_ssize_t blk, start, k, i
    cdef double[:, ::1] work = np.empty((max(n_threads, 1), rows), dtype=np.float64)
    cdef double *z
    cdef const data_t *Xp = &X[0, 0] if m > 0 and n > 0 else NULL
    if m == 0:
        return
    with nogil:
        for blk in prange(n_blocks, num_threads=n_threads, schedule='static'):
            start = blk * rows
            k = min(rows, m - start)
            z = &work[threadid(), 0]
            _scores_block(Xp, rs, cs, n, &W[0] if n > 0 else NULL, b, start, start + k, z)
            fl_sigmoid(z, z, k)
            for i in range(k):
                out[start + i] = z[i] >= threshold


# ---------------------------------------------------------------------------
# Reproducible mean losses
# ---------------------------------------------------------------------------

def mean_loss(const data_t[::1] a, const label_t[::1] y, bint from_logits, double eps,
              int n_threads):
    """(sum over i of the per-example loss, number of labels outside [0, 1]):
    the loss from probabilities a (clipped to [eps, 1 - eps]) or from logits a."""
    cdef Py_ssize_t n = a.shape[0]
    cdef Py_ssize_t n_blocks = _ceil_div(n, BLOCK)
    cdef Py_ssize_t n_chunks = _n_chunks(n_blocks)
    cdef Py_ssize_t c, blk, start, k
    cdef double[:, ::1] work = np.empty((max(n_threads, 1), 3 * BLOCK), dtype=np.float64)
    # One cache line (8 doubles) per chunk: no false sharing between threads.
    cdef double[:, ::1] part = np.zeros((max(n_chunks, 1), 8), dtype=np.float64)
    cdef double *av
    cdef double *yv
    cdef double *lv
    cdef double total = 0.0, comp = 0.0, bad = 0.0
    with nogil:
        for c in prange(n_chunks, num_threads=n_threads, schedule='static'):
            av = &work[threadid(), 0]
            yv = av + BLOCK
            lv = yv + BLOCK
            for blk in range(_chunk_start(c, n_blocks, n_chunks),
                             _chunk_start(c + 1, n_blocks, n_chunks)):
                start = blk * BLOCK
                k = min(BLOCK, n - start)
                _widen(&a[start], av, k)
                _widen(&y[start], yv, k)
                part[c, 2] += _count_bad_labels(yv, k)
                if from_logits:
                    fl_logit_loss(av, yv, lv, k)
                else:
                    fl_prob_loss(av, yv, eps, lv, k)
                _neumaier_add(&part[c, 0], &part[c, 1], _pairwise_sum(lv, k))
        for c in range(n_chunks):
            _neumaier_add(&total, &comp, _compensated(part[c, 0], part[c, 1]))
            bad += part[c, 2]
    return _compensated(total, comp), int(bad)


# ---------------------------------------------------------------------------
# Fused cost and gradients: one pass over X
# ---------------------------------------------------------------------------

def cost_and_gradients(const data_t[:, :] X, const double[::1] W, double b,
                       const label_t[::1] y, const double[::1] sample_weight,
                       bint with_loss, int n_threads):
    """Weighted sums over rows of (loss_i, r_i x_i, r_i), r_i = sigmoid(z_i) - y_i.

    Returns (loss_sum, grad_W_sum (n,), grad_b_sum, number of labels outside
    [0, 1]), float64 and unnormalised.
    ``sample_weight`` empty means unit weights.
    """
    cdef Py_ssize_t m = X.shape[0], n = X.shape[1]
    cdef Py_ssize_t rs = X.strides[0] // sizeof(data_t), cs = X.strides[1] // sizeof(data_t)
    cdef Py_ssize_t rows = rows_per_block(n, sizeof(data_t))
    cdef Py_ssize_t n_blocks = _ceil_div(m, rows)
    cdef Py_ssize_t n_chunks = _n_chunks(n_blocks)
    cdef bint weighted = sample_weight.shape[0] > 0
    # Partials per chunk: [loss, loss_c, db, db_c, bad, -, -, -, dW(n), dW_c(n)],
    # padded to a whole number of cache lines so chunks never share one.
    cdef Py_ssize_t width = _ceil_div(8 + 2 * n, 8) * 8
    cdef double[:, ::1] part = np.zeros((max(n_chunks, 1), width), dtype=np.float64)
    # Scratch per thread: z, y, loss, residual (rows each) and g (n).
    cdef Py_ssize_t scratch = _ceil_div(4 * rows + n, 8) * 8
    cdef double[:, ::1] work = np.empty((max(n_threads, 1), scratch), dtype=np.float64)
    cdef const data_t *Xp = &X[0, 0] if m > 0 and n > 0 else NULL
    cdef const double *Wp = &W[0] if n > 0 else NULL
    cdef double *zv
    cdef double *yv
    cdef double *lv
    cdef double *rv
    cdef double *g
    cdef double *pc
    cdef double wi
    cdef Py_ssize_t c, blk, start, k, i, j
    cdef double loss_sum = 0.0, loss_comp = 0.0, db_sum = 0.0, db_comp = 0.0, bad = 0.0
    cdef double[::1] dW = np.zeros(n, dtype=np.float64)
    cdef double[::1] dW_comp = np.zeros(n, dtype=np.float64)

    with nogil:
        for c in prange(n_chunks, num_threads=n_threads, schedule='static'):
            zv = &work[threadid(), 0]
            yv = zv + rows
            lv = yv + rows
            rv = lv + rows
            g = rv + rows
            pc = &part[c, 0]
            for blk in range(_chunk_start(c, n_blocks, n_chunks),
                             _chunk_start(c + 1, n_blocks, n_chunks)):
                start = blk * rows
                k = min(rows, m - start)
                _scores_block(Xp, rs, cs, n, Wp, b, start, start + k, zv)
                _widen(&y[start], yv, k)
                pc[4] += _count_bad_labels(yv, k)
                fl_logit_loss_residual(zv, yv, lv if with_loss else NULL, rv, k)
                if weighted:
                    for i in range(k):
                        wi = sample_weight[start + i]
                        # A zero weight removes the example, even an inf loss.
                        lv[i] = lv[i] * wi if wi != 0.0 else 0.0
                        rv[i] = rv[i] * wi
                _accumulate_gradient_block(Xp, rs, cs, n, start, start + k, rv, g)
                if with_loss:
                    _neumaier_add(&pc[0], &pc[1], _pairwise_sum(lv, k))
                _neumaier_add(&pc[2], &pc[3], _pairwise_sum(rv, k))
                for j in range(n):
                    _neumaier_add(&pc[8 + j], &pc[8 + n + j], g[j])
        # Combine the chunk partials in chunk order: same bits for any thread count.
        for c in range(n_chunks):
            pc = &part[c, 0]
            _neumaier_add(&loss_sum, &loss_comp, _compensated(pc[0], pc[1]))
            _neumaier_add(&db_sum, &db_comp, _compensated(pc[2], pc[3]))
            bad += pc[4]
            for j in range(n):
                _neumaier_add(&dW[j], &dW_comp[j], _compensated(pc[8 + j], pc[8 + n + j]))
    for j in range(n):
        dW[j] = _compensated(dW[j], dW_comp[j])
    return (_compensated(loss_sum, loss_comp), np.asarray(dW),
            _compensated(db_sum, db_comp), int(bad))


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
        "compile_args": FL_BUILD_CFLAGS.decode(),
        "cython_version": FL_BUILD_CYTHON.decode(),
        "numpy_build_version": FL_BUILD_NUMPY.decode(),
        "math_isa": fl_math_isa().decode(),
    }
