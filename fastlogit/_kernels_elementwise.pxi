# Element-wise kernels and the reproducible mean losses: one pass over a vector.
# Included by fastlogit/_kernels.pyx (one extension module: these loops share its
# fused types, pool, chunking and compensated sums); not compiled on its own.

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


cdef extern from "fl_losses.h" nogil:
    # One block of a mean loss: *total = its sum in the order of fl_sum, counts[0] += labels
    # outside [0, 1] (NaN too), counts[1] += probabilities outside [0, 1] (prob kernels only).
    void fl_logit_loss_total(const double *z, const double *y, Py_ssize_t n, double scale,
                             double *total, double *counts)
    void fl_prob_loss_total(const double *a, const double *y, double eps, Py_ssize_t n,
                            double scale, double *total, double *counts)

cdef extern from "fl_math_f32.h" nogil:
    void fl_logit_loss_total_f32(const float *z, const float *y, Py_ssize_t n, double scale,
                                 double *total, double *counts)
    void fl_prob_loss_total_f32(const float *a, const float *y, double eps, Py_ssize_t n,
                                double scale, double *total, double *counts)


cdef inline void _loss_block(LossJob *j, const double *a, const double *y, Py_ssize_t k,
                             double *total, double *counts) noexcept nogil:
    if j.from_logits:
        fl_logit_loss_total(a, y, k, j.scale, total, counts)
    else:
        fl_prob_loss_total(a, y, j.eps, k, j.scale, total, counts)


cdef inline void _loss_chunk(LossJob *j, const data_t *a, const label_t *y, Py_ssize_t c,
                             double *av) noexcept nogil:
    # The kernels count the bad labels and values in their own pass over each block
    # (pc[2], pc[3]).  Same dtypes: read in place, float32 at its own width
    # (fl_math_f32.h); mixed dtypes: the float32 side is widened per block.
    cdef double *yv = av + BLOCK
    cdef double *pc = j.part + 8 * c
    cdef double block_total
    cdef Py_ssize_t blk, start, k
    for blk in range(_chunk_start(c, j.n_blocks, j.n_chunks),
                     _chunk_start(c + 1, j.n_blocks, j.n_chunks)):
        start = blk * BLOCK
        k = min(BLOCK, j.n - start)
        if data_t is float and label_t is float:
            if j.from_logits:
                fl_logit_loss_total_f32(a + start, y + start, k, j.scale, &block_total, &pc[2])
            else:
                fl_prob_loss_total_f32(a + start, y + start, j.eps, k, j.scale, &block_total,
                                       &pc[2])
        elif data_t is double and label_t is double:
            _loss_block(j, a + start, y + start, k, &block_total, &pc[2])
        elif data_t is double:
            _widen(y + start, yv, k)
            _loss_block(j, a + start, yv, k, &block_total, &pc[2])
        else:
            _widen(a + start, av, k)
            _loss_block(j, av, y + start, k, &block_total, &pc[2])
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
