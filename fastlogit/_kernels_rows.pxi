# Kernels over the rows of X: scores, forward pass, prediction, fused cost and gradients.
# Included by fastlogit/_kernels.pyx (one extension module: these loops share its
# fused types, pool, chunking and compensated sums); not compiled on its own.

cdef extern from "fl_rows.h" nogil:
    void fl_rows_gradient_scores_c_f64(const double *Xg, const double *r, Py_ssize_t kg,
                                       const double *Xd, const double *w, double b,
                                       Py_ssize_t kd, double *z, Py_ssize_t row_stride,
                                       Py_ssize_t n, double *g)
    void fl_rows_gradient_scores_c_f32(const float *Xg, const double *r, Py_ssize_t kg,
                                       const float *Xd, const double *w, double b,
                                       Py_ssize_t kd, double *z, Py_ssize_t row_stride,
                                       Py_ssize_t n, double *g)
    void fl_rows_prefetch(const void *p, Py_ssize_t nbytes)
    int FL_DOT_LANES
    int FL_PIPE_SUB_BYTES

# Elements per sigmoid call of the row kernels: between two calls the next block's rows are
# prefetched (PREFETCH_BYTES at most), so memory keeps streaming while the sigmoid computes.
DEF SIGMOID_CHUNK = 128
DEF PREFETCH_BYTES = 4096

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
    cdef Py_ssize_t blk, start, k, i, c, kc, ahead
    cdef Py_ssize_t n_blocks = _ceil_div(j.m, j.rows)
    cdef Py_ssize_t stop_block = min(first_block + j.span, n_blocks)
    cdef double *z
    cdef long long *labels
    cdef const char *next_rows = NULL
    for blk in range(first_block, stop_block):
        start = blk * j.rows
        k = min(j.rows, j.m - start)
        # Scores and float64 probabilities go straight into the output: no copy.
        z = (<double *> j.out) + start if j.what == OUT_SCORES or j.what == OUT_PROB_F64 else buf
        _scores_block(X, j.rs, j.cs, j.n, j.w, j.b, start, start + k, z)
        if j.what == OUT_SCORES:
            continue
        # The sigmoid computes with no load of X in flight: between its chunks, prefetch the
        # first rows of the next block (C order), whose scores then start from the caches.
        # Without it, (10^6, 3) float64 spent as long waiting for each block's first lines as
        # computing its sigmoid.
        next_rows = NULL
        if j.cs == 1 and j.n > 0 and blk + 1 < n_blocks:
            next_rows = <const char *> (X + (start + k) * j.rs)
        ahead = min(SIGMOID_CHUNK * j.n * <Py_ssize_t> sizeof(data_t), PREFETCH_BYTES)
        c = 0
        while c < k:
            kc = min(SIGMOID_CHUNK, k - c)
            if next_rows != NULL:
                fl_rows_prefetch(next_rows, ahead)
                next_rows += ahead
            if j.what == OUT_PROB_F32:
                # float32 probabilities straight from the double scores (<= 0.51 ulp32)
                fl_sigmoid_to_f32(z + c, (<float *> j.out) + start + c, kc)
            else:
                fl_sigmoid(z + c, z + c, kc)
            c += kc
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


cdef inline void _losses_residuals(const double *zv, const double *yp, const double *sample_weight,
                                   Py_ssize_t k, double *lv, double *rv,
                                   double *hv) noexcept nogil:
    """Per-example loss (into lv, unless NULL), residual (rv) and, for Newton, curvature (hv,
    unless NULL) of k rows, all weighted (sample_weight NULL: unit weights)."""
    cdef Py_ssize_t i
    cdef double wi
    if hv != NULL:
        fl_logit_loss_residual_curvature(zv, yp, lv, rv, hv, k)
    else:
        fl_logit_loss_residual(zv, yp, lv, rv, k)
    if sample_weight != NULL:
        for i in range(k):
            wi = sample_weight[i]
            # A zero weight removes the example, even an inf loss.
            if lv != NULL:
                lv[i] = lv[i] * wi if wi != 0.0 else 0.0
            rv[i] = rv[i] * wi
            if hv != NULL:
                hv[i] = hv[i] * wi


cdef inline void _gradient_scores_block(const data_t *X, Py_ssize_t rs, Py_ssize_t n,
                                        const double *w, double b, Py_ssize_t gstart,
                                        Py_ssize_t kg, const double *r, Py_ssize_t dstart,
                                        Py_ssize_t kd, double *z, double *g) noexcept nogil:
    """g += the gradient rows gstart.. (kg rows, residuals r) and z = the scores of the rows
    dstart.. (kd rows) of a C-ordered X, in one sweep (fl_rows_gradient_scores_c)."""
    if data_t is double:
        fl_rows_gradient_scores_c_f64(X + gstart * rs, r, kg, X + dstart * rs, w, b, kd, z, rs, n, g)
    else:
        fl_rows_gradient_scores_c_f32(X + gstart * rs, r, kg, X + dstart * rs, w, b, kd, z, rs, n, g)


cdef inline void _loss_gradient_block(const data_t *X, Py_ssize_t rs, Py_ssize_t cs,
                                      Py_ssize_t n, const double *w, double b, const label_t *y,
                                      const double *sample_weight, Py_ssize_t start, Py_ssize_t k,
                                      double *zv, double *yv, double *lv, double *rv, double *hv,
                                      double *g, double *bad) noexcept nogil:
    """One row block of the fused kernels: scores, per-example loss (into lv,
    unless NULL), residual (rv) and, for Newton, curvature (hv, unless NULL), all
    weighted, and g = the block's sum of r_i x_i.  Adds the bad-label count to bad.

    A C-ordered block goes through in sub-blocks of about SUB_BYTES of X, software-pipelined
    when rows are wide: the scores of sub-block 0, then for each sub-block s its residuals,
    then one sweep that adds its gradient rows (still in L1) and computes the scores of
    sub-block s + 1 (from memory), so the loads of X never stop for the gradient
    (fl_rows_gradient_scores_c).  Narrow rows (n <= FL_DOT_LANES): scores, residuals and
    gradient rows of each sub-block in turn.  An F-ordered block: scores of the whole block,
    then one dot per column.  The gradient adds the rows to g in row order either way and
    the scores keep their order: the sub-block size and the pipelining change no bit, and
    every element-wise step is independent of where a sub-block starts."""
    cdef const double *yp
    cdef Py_ssize_t i, s0, s1, ks, kn
    cdef Py_ssize_t sub = k if cs != 1 else max(16, SUB_BYTES // max(n * <Py_ssize_t> sizeof(data_t), 1))
    if label_t is double:
        yp = y + start
    else:
        _widen(y + start, yv, k)
        yp = yv
    bad[0] += fl_count_bad_labels(yp, k)
    for i in range(n):
        g[i] = 0.0
    if cs == 1 and n > FL_DOT_LANES:
        sub = max(8, FL_PIPE_SUB_BYTES // (n * <Py_ssize_t> sizeof(data_t)))
        ks = min(sub, k)
        _scores_block(X, rs, cs, n, w, b, start, start + ks, zv)
        s0 = 0
        while s0 < k:
            ks = min(sub, k - s0)
            _losses_residuals(zv + s0, yp + s0,
                              sample_weight + start + s0 if sample_weight != NULL else NULL, ks,
                              lv + s0 if lv != NULL else NULL, rv + s0,
                              hv + s0 if hv != NULL else NULL)
            s1 = s0 + ks
            kn = min(sub, k - s1)
            _gradient_scores_block(X, rs, n, w, b, start + s0, ks, rv + s0, start + s1, kn,
                                   zv + s1, g)
            s0 = s1
        return
    s0 = 0
    while s0 < k:
        ks = min(sub, k - s0)
        _scores_block(X, rs, cs, n, w, b, start + s0, start + s0 + ks, zv + s0)
        _losses_residuals(zv + s0, yp + s0,
                          sample_weight + start + s0 if sample_weight != NULL else NULL, ks,
                          lv + s0 if lv != NULL else NULL, rv + s0,
                          hv + s0 if hv != NULL else NULL)
        _gradient_block(X, rs, cs, n, start + s0, start + s0 + ks, rv + s0, g)
        s0 += ks


cdef inline void _grad_chunk(GradJob *j, const data_t *X, const label_t *y, Py_ssize_t c,
                             double *zv) noexcept nogil:
    cdef double *yv = zv + j.rows
    cdef double *lv = yv + j.rows
    cdef double *rv = lv + j.rows
    cdef double *g = rv + j.rows
    cdef double *pc = j.part + c * j.width
    cdef Py_ssize_t blk, start, k, n = j.n
    for blk in range(_chunk_start(c, j.n_blocks, j.n_chunks),
                     _chunk_start(c + 1, j.n_blocks, j.n_chunks)):
        start = blk * j.rows
        k = min(j.rows, j.m - start)
        _loss_gradient_block(X, j.rs, j.cs, n, j.w, j.b, y, j.sample_weight, start, k,
                             zv, yv, lv if j.with_loss else NULL, rv, NULL, g, &pc[4])
        if j.with_loss:
            _neumaier_add(&pc[0], &pc[2], _block_sum(lv, k))
        _neumaier_add(&pc[1], &pc[3], _block_sum(rv, k))
        fl_neumaier_add(&pc[8], &pc[8 + n], g, n)


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
