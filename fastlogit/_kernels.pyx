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
from libc.math cimport INFINITY
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

# Row-block loops of the fused X kernels, in C so that they can be compiled
# once per instruction set and dispatched at load time (target_clones), as
# fl_math.h does; Cython cannot attach that attribute.
cdef extern from *:
    """
    /* Row-block loops of the fused X kernels, compiled once per instruction set
     * (x86-64-v4, v3, baseline) and picked at load time, like fl_math.h.  The
     * summation order of every loop is fixed by the shape alone, so results do
     * not depend on the thread count (they may differ in the last bits between
     * instruction sets: FMA contraction). */
    #if !defined(FL_NO_DISPATCH) && defined(__GNUC__) && !defined(__clang__) && (__GNUC__ >= 12) \
        && defined(__x86_64__) && defined(__ELF__) && defined(__linux__)
    #define FLK_TARGETS __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
    #else
    #define FLK_TARGETS
    #endif
    /* Independent partial sums per dot product: one chain would wait on each
     * add's latency and the compiler may not reassociate it. */
    #define FLK_LANES 8
    #define FLK_FOLD(s) ((((s)[0] + (s)[4]) + ((s)[1] + (s)[5])) + (((s)[2] + (s)[6]) + ((s)[3] + (s)[7])))

    /* Few features, contiguous rows: a constant row length lets the compiler
     * vectorise across rows instead of running a 1..8-step loop per row. */
    #define FLK_SMALL_DOT(T, N) case N: \
        for (ptrdiff_t i = 0; i < k; i++) { \
            const T *x = X + i * N; double s = 0.0; \
            for (int j = 0; j < N; j++) s += (double)x[j] * w[j]; \
            z[i] = s + b; } \
        return;

    #define FLK_SMALL_GRAD(T, N) case N: { \
        double s[N] = {0}; \
        for (ptrdiff_t i = 0; i < k; i++) { \
            const T *x = X + i * N; double ri = r[i]; \
            for (int j = 0; j < N; j++) s[j] += ri * (double)x[j]; } \
        for (int j = 0; j < N; j++) g[j] = s[j]; \
        return; }

    #define FLK_DEFINE(T, SUF) \
    /* z[i] = X[i, :] . w + b, rows of a C-ordered block (row stride rs) */ \
    FLK_TARGETS static void flk_scores_c_##SUF(const T *X, ptrdiff_t rs, ptrdiff_t n, const double *w, \
                                               double b, ptrdiff_t k, double *z) \
    { \
        if (rs == n) switch (n) { FLK_SMALL_DOT(T, 1) FLK_SMALL_DOT(T, 2) FLK_SMALL_DOT(T, 3) \
            FLK_SMALL_DOT(T, 4) FLK_SMALL_DOT(T, 5) FLK_SMALL_DOT(T, 6) FLK_SMALL_DOT(T, 7) \
            FLK_SMALL_DOT(T, 8) default: break; } \
        for (ptrdiff_t i = 0; i < k; i++) { \
            const T *x = X + i * rs; double s[FLK_LANES] = {0}, t = 0.0; ptrdiff_t j = 0; \
            for (; j + FLK_LANES <= n; j += FLK_LANES) \
                for (int l = 0; l < FLK_LANES; l++) s[l] += (double)x[j + l] * w[j + l]; \
            for (; j < n; j++) t += (double)x[j] * w[j]; \
            z[i] = (FLK_FOLD(s) + t) + b; \
        } \
    } \
    /* The same for an F-ordered block: X points at its first row in column 0, \
     * column j starts cs elements further; columns are streamed contiguously. */ \
    FLK_TARGETS static void flk_scores_f_##SUF(const T *X, ptrdiff_t cs, ptrdiff_t n, const double *w, \
                                               double b, ptrdiff_t k, double *z) \
    { \
        for (ptrdiff_t i = 0; i < k; i++) z[i] = 0.0; \
        for (ptrdiff_t j = 0; j < n; j++) { \
            const T *col = X + j * cs; double wj = w[j]; \
            for (ptrdiff_t i = 0; i < k; i++) z[i] += (double)col[i] * wj; \
        } \
        for (ptrdiff_t i = 0; i < k; i++) z[i] += b; \
    } \
    /* g[j] = sum_i r[i] X[i, j] over a C-ordered block (g overwritten) */ \
    FLK_TARGETS static void flk_grad_c_##SUF(const T *X, ptrdiff_t rs, ptrdiff_t n, const double *r, \
                                             ptrdiff_t k, double *g) \
    { \
        if (rs == n) switch (n) { FLK_SMALL_GRAD(T, 1) FLK_SMALL_GRAD(T, 2) FLK_SMALL_GRAD(T, 3) \
            FLK_SMALL_GRAD(T, 4) FLK_SMALL_GRAD(T, 5) FLK_SMALL_GRAD(T, 6) FLK_SMALL_GRAD(T, 7) \
            FLK_SMALL_GRAD(T, 8) default: break; } \
        for (ptrdiff_t j = 0; j < n; j++) g[j] = 0.0; \
        for (ptrdiff_t i = 0; i < k; i++) { \
            const T *x = X + i * rs; double ri = r[i]; \
            for (ptrdiff_t j = 0; j < n; j++) g[j] += ri * (double)x[j]; \
        } \
    } \
    /* The same for an F-ordered block: one dot product per column */ \
    FLK_TARGETS static void flk_grad_f_##SUF(const T *X, ptrdiff_t cs, ptrdiff_t n, const double *r, \
                                             ptrdiff_t k, double *g) \
    { \
        for (ptrdiff_t j = 0; j < n; j++) { \
            const T *col = X + j * cs; double s[FLK_LANES] = {0}, t = 0.0; ptrdiff_t i = 0; \
            for (; i + FLK_LANES <= k; i += FLK_LANES) \
                for (int l = 0; l < FLK_LANES; l++) s[l] += r[i + l] * (double)col[i + l]; \
            for (; i < k; i++) t += r[i] * (double)col[i]; \
            g[j] = FLK_FOLD(s) + t; \
        } \
    }

    FLK_DEFINE(double, d)
    FLK_DEFINE(float, f)
    """
    void flk_scores_c_d(const double *X, Py_ssize_t rs, Py_ssize_t n, const double *w, double b,
                        Py_ssize_t k, double *z) noexcept nogil
    void flk_scores_c_f(const float *X, Py_ssize_t rs, Py_ssize_t n, const double *w, double b,
                        Py_ssize_t k, double *z) noexcept nogil
    void flk_scores_f_d(const double *X, Py_ssize_t cs, Py_ssize_t n, const double *w, double b,
                        Py_ssize_t k, double *z) noexcept nogil
    void flk_scores_f_f(const float *X, Py_ssize_t cs, Py_ssize_t n, const double *w, double b,
                        Py_ssize_t k, double *z) noexcept nogil
    void flk_grad_c_d(const double *X, Py_ssize_t rs, Py_ssize_t n, const double *r,
                      Py_ssize_t k, double *g) noexcept nogil
    void flk_grad_c_f(const float *X, Py_ssize_t rs, Py_ssize_t n, const double *r,
                      Py_ssize_t k, double *g) noexcept nogil
    void flk_grad_f_d(const double *X, Py_ssize_t cs, Py_ssize_t n, const double *r,
                      Py_ssize_t k, double *g) noexcept nogil
    void flk_grad_f_f(const float *X, Py_ssize_t cs, Py_ssize_t n, const double *r,
                      Py_ssize_t k, double *g) noexcept nogil

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
            flk_scores_c_d(X + start * row_stride, row_stride, n, w, b, stop - start, z)
        else:
            flk_scores_c_f(X + start * row_stride, row_stride, n, w, b, stop - start, z)
    else:                            # F order: stream each column's segment
        if data_t is double:
            flk_scores_f_d(X + start, col_stride, n, w, b, stop - start, z)
        else:
            flk_scores_f_f(X + start, col_stride, n, w, b, stop - start, z)


cdef inline void _accumulate_gradient_block(const data_t *X, Py_ssize_t row_stride,
                                            Py_ssize_t col_stride, Py_ssize_t n,
                                            Py_ssize_t start, Py_ssize_t stop,
                                            const double *r, double *g) noexcept nogil:
    """g[j] = sum_i r[i - start] * X[i, j] over the block (g is overwritten)."""
    if col_stride == 1:
        if data_t is double:
            flk_grad_c_d(X + start * row_stride, row_stride, n, r, stop - start, g)
        else:
            flk_grad_c_f(X + start * row_stride, row_stride, n, r, stop - start, g)
    else:
        if data_t is double:
            flk_grad_f_d(X + start, col_stride, n, r, stop - start, g)
        else:
            flk_grad_f_f(X + start, col_stride, n, r, stop - start, g)


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
    # Written without && so that the loop vectorises.
    # An integer count: a floating-point sum would be one serial chain.
    cdef Py_ssize_t i, good = 0
    for i in range(k):
        good += (y[i] >= 0.0) & (y[i] <= 1.0)
    return <double> (k - good)


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
            if out_t is double:      # straight into the output: no copy
                fl_sigmoid(z, &out[start], k)
            else:
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
              int n_threads, double scale=1.0):
    """(sum over i of scale * the per-example loss, number of labels outside [0, 1]):
    the loss from probabilities a (clipped to [eps, 1 - eps]) or from logits a.
    A power-of-two ``scale`` (2^-64) lets the caller re-sum losses whose plain
    sum overflows: scaling is exact, so no other bits change."""
    cdef Py_ssize_t n = a.shape[0]
    cdef Py_ssize_t n_blocks = _ceil_div(n, BLOCK)
    cdef Py_ssize_t n_chunks = _n_chunks(n_blocks)
    cdef Py_ssize_t c, blk, start, k, i
    cdef double[:, ::1] work = np.empty((max(n_threads, 1), 3 * BLOCK), dtype=np.float64)
    # One cache line (8 doubles) per chunk: no false sharing between threads.
    cdef double[:, ::1] part = np.zeros((max(n_chunks, 1), 8), dtype=np.float64)
    cdef double *av
    cdef double *yv
    cdef double *lv
    cdef const double *ap
    cdef const double *yp
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
                # float64 data is read in place; float32 is widened per block.
                if data_t is double:
                    ap = &a[start]
                else:
                    _widen(&a[start], av, k)
                    ap = av
                if label_t is double:
                    yp = &y[start]
                else:
                    _widen(&y[start], yv, k)
                    yp = yv
                part[c, 2] += _count_bad_labels(yp, k)
                if from_logits:
                    fl_logit_loss(ap, yp, lv, k)
                else:
                    fl_prob_loss(ap, yp, eps, lv, k)
                if scale != 1.0:
                    for i in range(k):
                        lv[i] = lv[i] * scale
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
    cdef const double *yp
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
                if label_t is double:
                    yp = &y[start]
                else:
                    _widen(&y[start], yv, k)
                    yp = yv
                pc[4] += _count_bad_labels(yp, k)
                fl_logit_loss_residual(zv, yp, lv if with_loss else NULL, rv, k)
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


# ---- NEWTON begin ----
# Cost, gradient and Hessian in one pass over X, for Newton's method.  Self-contained on
# purpose: it reuses only the file's helpers (_scores_block, _accumulate_gradient_block,
# _neumaier_add, _compensated, _pairwise_sum, _widen, _count_bad_labels, _ceil_div,
# _chunk_start) and its own C loops below.
#
# The Hessian of the summed loss is X~^T diag(s_i h_i) X~ with X~ = [X, 1] and
# h_i = sigma(z_i) sigma(-z_i).  Each row block is packed as doubles into P (k rows of
# ld = n + 1 rounded up to a whole tile, intercept column of ones, zero padding) and
# S = diag(s h) P, and the upper triangle of S^T P is accumulated tile by tile: an FLN_R x FLN_V
# tile of H stays in registers while the block's rows stream through (FLN_R broadcasts and
# two vector loads feed 2 * FLN_R vector FMAs per row).  The lower triangle is
# mirrored at the end.  Rows per block and the chunking depend on the shape only, chunk
# partials are combined in chunk order: the bits do not depend on the thread count.
cdef extern from *:
    """
    #ifndef FLN_TARGETS
    #if !defined(FL_NO_DISPATCH) && defined(__GNUC__) && !defined(__clang__) && (__GNUC__ >= 12) \
        && defined(__x86_64__) && defined(__ELF__) && defined(__linux__)
    #define FLN_TARGETS __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
    #else
    #define FLN_TARGETS
    #endif
    #endif
    #define FLN_R 4     /* rows of an H tile: broadcast operands */
    #define FLN_V 8     /* columns of an H tile: two 4-double vectors */

    /* H[j][l] += sum_i S[i][j] P[i][l] for the tiles on or above the diagonal; ld is a
       multiple of FLN_V (so of FLN_R).  S and P are packed in panels (see fln_pack): the
       FLN_R columns of S and the FLN_V columns of P that a tile reads are contiguous, k rows
       long, so a tile streams two short arrays from L1 instead of striding through the block.
       The summation order over i is fixed.  The 4 x 8 tile is 8 accumulators of 4 doubles,
       written with GCC vector types: plain C loops kept the tile on the stack (10x slower),
       and 8-double vectors spill on AVX2 (16 registers).  Measured on a loaded 2-core AVX2
       machine: 5.2 G multiply-adds/s, against 6.5 for OpenBLAS's dgemm on one thread. */
    #if defined(__GNUC__)
    typedef double fln_v4 __attribute__((vector_size(32), aligned(8)));
    #define FLN_LD(v, p) __builtin_memcpy(&(v), (p), 32)
    #define FLN_ST(p, v) __builtin_memcpy((p), &(v), 32)
    FLN_TARGETS static void fln_syrk_upper(const double *S, const double *P, ptrdiff_t k,
                                           ptrdiff_t ld, double *H)
    {
        for (ptrdiff_t j0 = 0; j0 < ld; j0 += FLN_R) {
            const double *Sp = S + j0 * k;               /* panel j0 / FLN_R: k rows of FLN_R */
            for (ptrdiff_t l0 = (j0 / FLN_V) * FLN_V; l0 < ld; l0 += FLN_V) {
                const double *Pp = P + l0 * k;           /* panel l0 / FLN_V: k rows of FLN_V */
                double *h = H + j0 * ld + l0;
                /* Named accumulators: an array indexed in a loop was kept in memory. */
                fln_v4 a0, a1, b0, b1, c0, c1, d0, d1, p0, p1;
                FLN_LD(a0, h);          FLN_LD(a1, h + 4);
                FLN_LD(b0, h + ld);     FLN_LD(b1, h + ld + 4);
                FLN_LD(c0, h + 2 * ld); FLN_LD(c1, h + 2 * ld + 4);
                FLN_LD(d0, h + 3 * ld); FLN_LD(d1, h + 3 * ld + 4);
                for (ptrdiff_t i = 0; i < k; i++) {
                    const double *s = Sp + i * FLN_R, *p = Pp + i * FLN_V;
                    FLN_LD(p0, p);
                    FLN_LD(p1, p + 4);
                    a0 += s[0] * p0; a1 += s[0] * p1;
                    b0 += s[1] * p0; b1 += s[1] * p1;
                    c0 += s[2] * p0; c1 += s[2] * p1;
                    d0 += s[3] * p0; d1 += s[3] * p1;
                }
                FLN_ST(h, a0);          FLN_ST(h + 4, a1);
                FLN_ST(h + ld, b0);     FLN_ST(h + ld + 4, b1);
                FLN_ST(h + 2 * ld, c0); FLN_ST(h + 2 * ld + 4, c1);
                FLN_ST(h + 3 * ld, d0); FLN_ST(h + 3 * ld + 4, d1);
            }
        }
    }
    #else
    static void fln_syrk_upper(const double *S, const double *P, ptrdiff_t k, ptrdiff_t ld,
                               double *H)
    {
        for (ptrdiff_t j0 = 0; j0 < ld; j0 += FLN_R)
            for (ptrdiff_t l0 = (j0 / FLN_V) * FLN_V; l0 < ld; l0 += FLN_V)
                for (ptrdiff_t i = 0; i < k; i++)
                    for (int r = 0; r < FLN_R; r++)
                        for (int v = 0; v < FLN_V; v++)
                            H[(j0 + r) * ld + l0 + v] +=
                                S[j0 * k + i * FLN_R + r] * P[l0 * k + i * FLN_V + v];
    }
    #endif

    /* x~ = [x, 1, 0...] (ld values) of k rows, packed in panels: P holds column panels of
       FLN_V (element (i, j) at (j - j % FLN_V) * k + i * FLN_V + j % FLN_V), S = diag(h) x~
       in panels of FLN_R.  X points at the block's first element; (rs, cs) are its row and
       column strides (one of them is 1). */
    #define FLN_DEFINE_PACK(T, SUF) \
    FLN_TARGETS static void fln_pack_##SUF(const T *X, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t n, \
                                           ptrdiff_t k, const double *h, ptrdiff_t ld, \
                                           double *P, double *S) \
    { \
        for (ptrdiff_t i = 0; i < k; i++) { \
            const T *x = X + i * rs; double hi = h[i]; \
            for (ptrdiff_t j = 0; j < ld; j++) { \
                double v = j < n ? (double)x[j * cs] : (j == n ? 1.0 : 0.0); \
                P[(j - j % FLN_V) * k + i * FLN_V + j % FLN_V] = v; \
                S[(j - j % FLN_R) * k + i * FLN_R + j % FLN_R] = hi * v; \
            } \
        } \
    }
    FLN_DEFINE_PACK(double, d)
    FLN_DEFINE_PACK(float, f)
    """
    int FLN_V
    void fln_syrk_upper(const double *S, const double *P, Py_ssize_t k, Py_ssize_t ld,
                        double *H) noexcept nogil
    void fln_pack_d(const double *X, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t n, Py_ssize_t k,
                    const double *h, Py_ssize_t ld, double *P, double *S) noexcept nogil
    void fln_pack_f(const float *X, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t n, Py_ssize_t k,
                    const double *h, Py_ssize_t ld, double *P, double *S) noexcept nogil

cdef extern from "fl_math.h" nogil:
    void fl_logit_loss_residual_curvature(const double *z, const double *y, double *loss,
                                          double *resid, double *curv, Py_ssize_t n)

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


def cost_gradient_hessian(const data_t[:, :] X, const double[::1] W, double b,
                          const label_t[::1] y, const double[::1] sample_weight,
                          int n_threads):
    """Weighted sums over rows of (loss_i, r_i x_i, r_i, h_i x~_i x~_i^T), one pass over X.

    r_i = sigma(z_i) - y_i, h_i = sigma(z_i) sigma(-z_i), x~_i = [x_i, 1].  Returns
    (loss_sum, grad_W_sum (n,), grad_b_sum, hessian_sum (n+1, n+1) symmetric with the
    intercept last, number of labels outside [0, 1]), float64 and unnormalised.
    ``sample_weight`` empty means unit weights.
    """
    cdef Py_ssize_t m = X.shape[0], n = X.shape[1]
    cdef Py_ssize_t rs = X.strides[0] // sizeof(data_t), cs = X.strides[1] // sizeof(data_t)
    cdef Py_ssize_t ld, rows, n_chunks
    ld, rows, n_chunks = newton_layout(m, n)
    cdef Py_ssize_t n_blocks = _ceil_div(m, rows)
    cdef bint weighted = sample_weight.shape[0] > 0
    # Per chunk: [loss, loss_c, db, db_c, bad, -, -, -, dW(n), dW_c(n)] (whole cache lines).
    cdef Py_ssize_t width = _ceil_div(8 + 2 * n, 8) * 8
    cdef double[:, ::1] part = np.zeros((n_chunks, width), dtype=np.float64)
    cdef double[:, ::1] hpart = np.zeros((n_chunks, ld * ld), dtype=np.float64)
    # Scratch per thread: z, y, loss, residual, curvature (rows each), g (n), P and S.
    cdef Py_ssize_t vec = _ceil_div(5 * rows + n, 8) * 8
    cdef double[:, ::1] work = np.empty((max(n_threads, 1), vec + 2 * rows * ld),
                                        dtype=np.float64)
    cdef const data_t *Xp = &X[0, 0] if m > 0 and n > 0 else NULL
    cdef const double *Wp = &W[0] if n > 0 else NULL
    cdef double *zv
    cdef double *yv
    cdef double *lv
    cdef double *rv
    cdef double *hv
    cdef double *g
    cdef double *P
    cdef double *S
    cdef double *pc
    cdef const double *yp
    cdef double wi
    cdef Py_ssize_t c, blk, start, k, i, j
    cdef double loss_sum = 0.0, loss_comp = 0.0, db_sum = 0.0, db_comp = 0.0, bad = 0.0
    cdef double[::1] dW = np.zeros(n, dtype=np.float64)
    cdef double[::1] dW_comp = np.zeros(n, dtype=np.float64)
    cdef double[:, ::1] H = np.zeros((ld, ld), dtype=np.float64)

    with nogil:
        for c in prange(n_chunks, num_threads=n_threads, schedule='static'):
            zv = &work[threadid(), 0]
            yv = zv + rows
            lv = yv + rows
            rv = lv + rows
            hv = rv + rows
            g = hv + rows
            P = zv + vec
            S = P + rows * ld
            pc = &part[c, 0]
            for blk in range(_chunk_start(c, n_blocks, n_chunks),
                             _chunk_start(c + 1, n_blocks, n_chunks)):
                start = blk * rows
                k = min(rows, m - start)
                _scores_block(Xp, rs, cs, n, Wp, b, start, start + k, zv)
                if label_t is double:
                    yp = &y[start]
                else:
                    _widen(&y[start], yv, k)
                    yp = yv
                pc[4] += _count_bad_labels(yp, k)
                fl_logit_loss_residual_curvature(zv, yp, lv, rv, hv, k)
                if weighted:
                    for i in range(k):
                        wi = sample_weight[start + i]
                        # A zero weight removes the example, even an inf loss.
                        lv[i] = lv[i] * wi if wi != 0.0 else 0.0
                        rv[i] = rv[i] * wi
                        hv[i] = hv[i] * wi
                _accumulate_gradient_block(Xp, rs, cs, n, start, start + k, rv, g)
                _neumaier_add(&pc[0], &pc[1], _pairwise_sum(lv, k))
                _neumaier_add(&pc[2], &pc[3], _pairwise_sum(rv, k))
                for j in range(n):
                    _neumaier_add(&pc[8 + j], &pc[8 + n + j], g[j])
                if data_t is double:
                    fln_pack_d(Xp + start * rs if cs == 1 else Xp + start, rs, cs, n, k, hv,
                               ld, P, S)
                else:
                    fln_pack_f(Xp + start * rs if cs == 1 else Xp + start, rs, cs, n, k, hv,
                               ld, P, S)
                fln_syrk_upper(S, P, k, ld, &hpart[c, 0])
        # Combine the chunk partials in chunk order: same bits for any thread count.
        for c in range(n_chunks):
            pc = &part[c, 0]
            _neumaier_add(&loss_sum, &loss_comp, _compensated(pc[0], pc[1]))
            _neumaier_add(&db_sum, &db_comp, _compensated(pc[2], pc[3]))
            bad += pc[4]
            for j in range(n):
                _neumaier_add(&dW[j], &dW_comp[j], _compensated(pc[8 + j], pc[8 + n + j]))
            for i in range(n + 1):
                for j in range(i, n + 1):
                    H[i, j] += hpart[c, i * ld + j]
        for i in range(n + 1):
            for j in range(i):
                H[i, j] = H[j, i]
    for j in range(n):
        dW[j] = _compensated(dW[j], dW_comp[j])
    return (_compensated(loss_sum, loss_comp), np.asarray(dW), _compensated(db_sum, db_comp),
            np.array(np.asarray(H)[:n + 1, :n + 1]), int(bad))
# ---- NEWTON end ----
