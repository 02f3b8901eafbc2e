# Newton's pass: cost, gradient and Hessian in one pass over X, and the Newton direction.
# Included by fastlogit/_kernels.pyx (one extension module: these loops share its
# fused types, pool, chunking and compensated sums); not compiled on its own.

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
    Py_ssize_t FLN_LDR(Py_ssize_t ld)
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
    double *hpart                 # (n_chunks, FLN_LDR(ld) * ld): upper triangles of H
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
    cdef Py_ssize_t blk, start, k
    for blk in range(_chunk_start(c, j.n_blocks, j.n_chunks),
                     _chunk_start(c + 1, j.n_blocks, j.n_chunks)):
        start = blk * rows
        k = min(rows, j.m - start)
        _loss_gradient_block(X, j.rs, j.cs, n, j.w, j.b, y, j.sample_weight, start, k,
                             zv, yv, lv, rv, hv, g, &pc[4])
        _neumaier_add(&pc[0], &pc[1], _block_sum(lv, k))
        _neumaier_add(&pc[2], &pc[3], _block_sum(rv, k))
        fl_neumaier_add(&pc[8], &pc[8 + n], g, n)
        if data_t is double:
            fln_pack_d(X + start * j.rs if j.cs == 1 else X + start, j.rs, j.cs, n, k, hv,
                       ld, P, S)
        else:
            fln_pack_f(X + start * j.rs if j.cs == 1 else X + start, j.rs, j.cs, n, k, hv,
                       ld, P, S)
        fln_syrk_upper(S, P, k, ld, j.hpart + c * FLN_LDR(ld) * ld)


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
    job.scratch = job.vec + job.rows * (job.ld + FLN_LDR(job.ld))     # P, then S
    cdef double[:, ::1] part = np.zeros((job.n_chunks, job.width), dtype=np.float64)
    # Each chunk's H: FLN_LDR(ld) rows of ld (the rows past ld are the tiles' padding).
    cdef double[:, ::1] hpart = np.zeros((job.n_chunks, FLN_LDR(job.ld) * job.ld),
                                         dtype=np.float64)
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
