/* fl_rows.h -- row-block loops over X for the fused kernels of fastlogit._kernels:
 * the scores z = X.w + b of a block of rows, and the gradient sums g = r^T X of a block.
 *
 * Compiled once per instruction set with the same clone macro as fl_math.h (FL_CLONES).
 * The summation order of every loop is fixed by the shape alone, so results depend
 * neither on the thread count nor on the clone: the products and sums are rounded one by
 * one (no fused multiply-add: with -ffp-contract=off the compiler does not fuse them
 * either), in the order written here, whatever the vector width.
 *
 * Naming: fl_rows_<what>_<layout>_<dtype of X>, layout c = C-ordered block (rows are
 * contiguous, row stride `row_stride`), f = F-ordered block (X points at the block's
 * first row in column 0; column j starts j * col_stride elements further).
 * Every function works on `k` rows; scores and gradients are accumulated in double.
 * The gradient loops ADD the block's sums into g (the caller zeroes it): a block can then be
 * fed in sub-blocks (fused with their scores while the rows are still in L1) with the same
 * bits, because the rows are added to each g[j] one by one in row order either way.
 */
#ifndef FL_ROWS_H
#define FL_ROWS_H

#include <stddef.h>
#include <string.h>
#include "fl_isa.h"

/* The vector helpers below are always inlined: no vector crosses a call, so GCC's note that a
   32-byte vector return "changes the ABI" without AVX (the baseline clone) does not apply. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

/* Independent partial sums per dot product: one chain would wait on each add's
 * latency and the compiler may not reassociate it. */
#define FL_DOT_LANES 8
/* Bytes of X per sub-block of the pipelined fused kernel (_kernels_rows.pxi). */
#ifndef FL_PIPE_SUB_BYTES
#define FL_PIPE_SUB_BYTES 24576
#endif
/* Bytes ahead of the row being dotted that fl_rows_gradient_scores_c prefetches (see there). */
#ifndef FL_ROWS_PF
#define FL_ROWS_PF 2048
#endif
#define FL_SUM_LANES(s) ((((s)[0] + (s)[4]) + ((s)[1] + (s)[5])) + (((s)[2] + (s)[6]) + ((s)[3] + (s)[7])))

/* Few features, contiguous rows: a constant row length lets the compiler vectorise
 * across rows instead of running a 1..8-step loop per row.  One switch case each. */
/* Four doubles as one vector (GCC vector extension: lane-wise IEEE operations, so the same
 * bits whether a clone holds it in one ymm or splits it into two xmm).  A row's FL_DOT_LANES
 * partial sums are two of them: lanes 0-3 and 4-7. */
typedef double fl_v4d __attribute__((vector_size(32)));
typedef float fl_v4f __attribute__((vector_size(16)));
FL_INLINE fl_v4d fl_load4_f64(const double *p) { fl_v4d v; memcpy(&v, p, sizeof v); return v; }
FL_INLINE fl_v4d fl_load4_f32(const float *p) { fl_v4d v = {p[0], p[1], p[2], p[3]}; return v; }
typedef long long fl_v4i __attribute__((vector_size(32)));
/* FL_SUM_LANES of the lanes (lo, hi) */
FL_INLINE double fl_sum_lanes_v4(fl_v4d lo, fl_v4d hi) { fl_v4d c = lo + hi; return (c[0] + c[1]) + (c[2] + c[3]); }

#define FL_SCORES_OF_WIDTH(T, N) case N: \
    for (ptrdiff_t i = 0; i < k; i++) { \
        const T *x = X + i * N; double s = 0.0; \
        for (int j = 0; j < N; j++) s += (double)x[j] * w[j]; \
        z[i] = s + b; } \
    return;

/* Rows of 3 features: four rows are three vectors a, b, c of the row-major data,
 * (x0 y0 z0 x1) (y1 z1 x2 y2) (z2 x3 y3 z3); two blends, one exchange of 128-bit halves and
 * three in-lane shuffles make them the columns (x0..x3) (y0..y3) (z0..z3), and the dots of the
 * four rows are lane-wise: ((0 + x w0) + y w1) + z w2, then + b, exactly the scalar order of
 * FL_SCORES_OF_WIDTH (same bits), about 30 % less time than the compiler's own vectorisation
 * of it (0.6 against 0.85 ns per row from L1, float64 on AVX2). */
#define FL_SCORES_WIDTH3(T, SUF) \
FL_INLINE void fl_rows_scores3_##SUF(const T *X, const double *w, double b, ptrdiff_t k, double *z) \
{ \
    const fl_v4d w0 = {w[0], w[0], w[0], w[0]}, w1 = {w[1], w[1], w[1], w[1]}, w2 = {w[2], w[2], w[2], w[2]}; \
    const fl_v4d bb = {b, b, b, b}, zero = {0.0, 0.0, 0.0, 0.0}; \
    ptrdiff_t i = 0; \
    for (; i + 4 <= k; i += 4) { \
        const T *x = X + i * 3; \
        const fl_v4d a = fl_load4_##SUF(x), c = fl_load4_##SUF(x + 4), e = fl_load4_##SUF(x + 8); \
        const fl_v4d l0 = __builtin_shuffle(a, c, (fl_v4i){0, 1, 6, 7});   /* x0 y0 x2 y2 */ \
        const fl_v4d l1 = __builtin_shuffle(a, e, (fl_v4i){2, 3, 4, 5});   /* z0 x1 z2 x3 */ \
        const fl_v4d l2 = __builtin_shuffle(c, e, (fl_v4i){0, 1, 6, 7});   /* y1 z1 y3 z3 */ \
        const fl_v4d c0 = __builtin_shuffle(l0, l1, (fl_v4i){0, 5, 2, 7}); \
        const fl_v4d c1 = __builtin_shuffle(l0, l2, (fl_v4i){1, 4, 3, 6}); \
        const fl_v4d c2 = __builtin_shuffle(l1, l2, (fl_v4i){0, 5, 2, 7}); \
        const fl_v4d s = (((zero + c0 * w0) + c1 * w1) + c2 * w2) + bb; \
        memcpy(z + i, &s, sizeof s); \
    } \
    for (; i < k; i++) { \
        const T *x = X + i * 3; double s = 0.0; \
        for (int j = 0; j < 3; j++) s += (double)x[j] * w[j]; \
        z[i] = s + b; \
    } \
}
FL_SCORES_WIDTH3(double, f64)
FL_SCORES_WIDTH3(float, f32)

#define FL_GRADIENT_OF_WIDTH(T, N) case N: { \
    double s[N]; \
    for (int j = 0; j < N; j++) s[j] = g[j]; \
    for (ptrdiff_t i = 0; i < k; i++) { \
        const T *x = X + i * N; double ri = r[i]; \
        for (int j = 0; j < N; j++) s[j] += ri * (double)x[j]; } \
    for (int j = 0; j < N; j++) g[j] = s[j]; \
    return; }

#define FL_ROWS_DEFINE(T, SUF) \
/* z[i] = X[i, :] . w + b for the k rows of a C-ordered block */ \
FL_INLINE void fl_rows_scores_c_##SUF##_impl(const T *X, ptrdiff_t row_stride, ptrdiff_t n, const double *w, double b, ptrdiff_t k, double *z) \
{ \
    if (row_stride == n) switch (n) { \
        FL_SCORES_OF_WIDTH(T, 1) FL_SCORES_OF_WIDTH(T, 2) case 3: fl_rows_scores3_##SUF(X, w, b, k, z); return; \
        FL_SCORES_OF_WIDTH(T, 4) FL_SCORES_OF_WIDTH(T, 5) FL_SCORES_OF_WIDTH(T, 6) \
        FL_SCORES_OF_WIDTH(T, 7) FL_SCORES_OF_WIDTH(T, 8) default: break; } \
    for (ptrdiff_t i = 0; i < k; i++) { \
        const T *x = X + i * row_stride; double s[FL_DOT_LANES] = {0}, t = 0.0; ptrdiff_t j = 0; \
        for (; j + FL_DOT_LANES <= n; j += FL_DOT_LANES) \
            for (int l = 0; l < FL_DOT_LANES; l++) s[l] += (double)x[j + l] * w[j + l]; \
        for (; j < n; j++) t += (double)x[j] * w[j]; \
        z[i] = (FL_SUM_LANES(s) + t) + b; \
    } \
} \
FL_CLONES(fl_rows_scores_c_##SUF, (const T *X, ptrdiff_t row_stride, ptrdiff_t n, const double *w, double b, ptrdiff_t k, double *z), (X, row_stride, n, w, b, k, z)) \
/* The same for an F-ordered block: each column's segment is streamed contiguously */ \
FL_INLINE void fl_rows_scores_f_##SUF##_impl(const T *X, ptrdiff_t col_stride, ptrdiff_t n, const double *w, double b, ptrdiff_t k, double *z) \
{ \
    for (ptrdiff_t i = 0; i < k; i++) z[i] = 0.0; \
    for (ptrdiff_t j = 0; j < n; j++) { \
        const T *col = X + j * col_stride; double wj = w[j]; \
        for (ptrdiff_t i = 0; i < k; i++) z[i] += (double)col[i] * wj; \
    } \
    for (ptrdiff_t i = 0; i < k; i++) z[i] += b; \
} \
FL_CLONES(fl_rows_scores_f_##SUF, (const T *X, ptrdiff_t col_stride, ptrdiff_t n, const double *w, double b, ptrdiff_t k, double *z), (X, col_stride, n, w, b, k, z)) \
/* g[j] += sum_i r[i] X[i, j] over the k rows of a C-ordered block, row after row.  Four rows \
   per sweep over g, g[j] = (((g[j] + r0 x0[j]) + r1 x1[j]) + r2 x2[j]) + r3 x3[j]: the same \
   additions in the same order as one row at a time (same bits), a quarter of g's loads and \
   stores. */ \
FL_INLINE void fl_rows_gradient_c_##SUF##_impl(const T *X, ptrdiff_t row_stride, ptrdiff_t n, const double *r, ptrdiff_t k, double *FL_RESTRICT g) \
{ \
    ptrdiff_t i = 0; \
    if (row_stride == n) switch (n) { \
        FL_GRADIENT_OF_WIDTH(T, 1) FL_GRADIENT_OF_WIDTH(T, 2) FL_GRADIENT_OF_WIDTH(T, 3) \
        FL_GRADIENT_OF_WIDTH(T, 4) FL_GRADIENT_OF_WIDTH(T, 5) FL_GRADIENT_OF_WIDTH(T, 6) \
        FL_GRADIENT_OF_WIDTH(T, 7) FL_GRADIENT_OF_WIDTH(T, 8) default: break; } \
    for (; i + 4 <= k; i += 4) { \
        const T *x0 = X + i * row_stride, *x1 = x0 + row_stride, *x2 = x1 + row_stride, *x3 = x2 + row_stride; \
        double r0 = r[i], r1 = r[i + 1], r2 = r[i + 2], r3 = r[i + 3]; \
        for (ptrdiff_t j = 0; j < n; j++) \
            g[j] = (((g[j] + r0 * (double)x0[j]) + r1 * (double)x1[j]) + r2 * (double)x2[j]) + r3 * (double)x3[j]; \
    } \
    for (; i < k; i++) { \
        const T *x = X + i * row_stride; double ri = r[i]; \
        for (ptrdiff_t j = 0; j < n; j++) g[j] += ri * (double)x[j]; \
    } \
} \
FL_CLONES(fl_rows_gradient_c_##SUF, (const T *X, ptrdiff_t row_stride, ptrdiff_t n, const double *r, ptrdiff_t k, double *g), (X, row_stride, n, r, k, g)) \
/* Both at once, for C-ordered rows: g += the gradient rows of the kg rows at Xg (residuals r, \
   rows in L1 or L2) and z = the scores of the kd rows at Xd (the next rows, still in memory), \
   four rows of each per sweep over j.  Every load of X then has compute next to it and every \
   sweep of the gradient has loads of new rows in flight, so the memory stream never pauses \
   for the gradient.  Same bits as fl_rows_gradient_c and fl_rows_scores_c (n > 8): each dot \
   keeps its FL_DOT_LANES lanes and tail, each g[j] gets the rows added one by one in row order. */ \
FL_INLINE void fl_rows_gradient_scores_c_##SUF##_impl(const T *Xg, const double *r, ptrdiff_t kg, const T *Xd, const double *w, double b, ptrdiff_t kd, double *z, ptrdiff_t row_stride, ptrdiff_t n, double *FL_RESTRICT g) \
{ \
    const ptrdiff_t n8 = n - n % FL_DOT_LANES; \
    ptrdiff_t i = 0; \
    const ptrdiff_t kg0 = kg, kd0 = kd; \
    if (n <= FL_DOT_LANES) kg = kd = 0;   /* few features: the dots have an order of their own */ \
    for (; i < kg && i < kd; i++) { \
        const T *x = Xg + i * row_stride, *d = Xd + i * row_stride; \
        const double ri = r[i]; \
        fl_v4d s0 = {0}, u0 = {0}; \
        double t = 0.0; \
        ptrdiff_t j = 0; \
        for (; j < n8; j += FL_DOT_LANES) { \
            if ((j * (ptrdiff_t)sizeof(T)) % 64 == 0) __builtin_prefetch((const char *)(d + j) + FL_ROWS_PF); \
            s0 += fl_load4_##SUF(d + j) * fl_load4_f64(w + j); \
            u0 += fl_load4_##SUF(d + j + 4) * fl_load4_f64(w + j + 4); \
            fl_v4d ga = fl_load4_f64(g + j) + ri * fl_load4_##SUF(x + j); \
            fl_v4d gb = fl_load4_f64(g + j + 4) + ri * fl_load4_##SUF(x + j + 4); \
            memcpy(g + j, &ga, sizeof ga); memcpy(g + j + 4, &gb, sizeof gb); \
        } \
        for (; j < n; j++) { g[j] += ri * (double)x[j]; t += (double)d[j] * w[j]; } \
        z[i] = (fl_sum_lanes_v4(s0, u0) + t) + b; \
    } \
    if (i < kg0) fl_rows_gradient_c_##SUF##_impl(Xg + i * row_stride, row_stride, n, r + i, kg0 - i, g); \
    if (i < kd0) fl_rows_scores_c_##SUF##_impl(Xd + i * row_stride, row_stride, n, w, b, kd0 - i, z + i); \
} \
FL_CLONES(fl_rows_gradient_scores_c_##SUF, (const T *Xg, const double *r, ptrdiff_t kg, const T *Xd, const double *w, double b, ptrdiff_t kd, double *z, ptrdiff_t row_stride, ptrdiff_t n, double *g), (Xg, r, kg, Xd, w, b, kd, z, row_stride, n, g)) \
/* The same for an F-ordered block: one dot product per column, added to g[j] */ \
FL_INLINE void fl_rows_gradient_f_##SUF##_impl(const T *X, ptrdiff_t col_stride, ptrdiff_t n, const double *r, ptrdiff_t k, double *g) \
{ \
    for (ptrdiff_t j = 0; j < n; j++) { \
        const T *col = X + j * col_stride; double s[FL_DOT_LANES] = {0}, t = 0.0; ptrdiff_t i = 0; \
        for (; i + FL_DOT_LANES <= k; i += FL_DOT_LANES) \
            for (int l = 0; l < FL_DOT_LANES; l++) s[l] += r[i + l] * (double)col[i + l]; \
        for (; i < k; i++) t += r[i] * (double)col[i]; \
        g[j] += FL_SUM_LANES(s) + t; \
    } \
} \
FL_CLONES(fl_rows_gradient_f_##SUF, (const T *X, ptrdiff_t col_stride, ptrdiff_t n, const double *r, ptrdiff_t k, double *g), (X, col_stride, n, r, k, g))

/* Prefetch [p, p + bytes) into the caches, one line per 64 bytes: the next block of X while a
   caller computes on this one (its sigmoid), so that memory keeps streaming. */
FL_UNUSED static void fl_rows_prefetch(const void *p, ptrdiff_t bytes)
{
    for (ptrdiff_t o = 0; o < bytes; o += 64) __builtin_prefetch((const char *)p + o);
}

FL_ROWS_DEFINE(double, f64)
FL_ROWS_DEFINE(float, f32)

#pragma GCC diagnostic pop

#endif /* FL_ROWS_H */
