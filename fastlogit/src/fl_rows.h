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
#include "fl_isa.h"

/* Independent partial sums per dot product: one chain would wait on each add's
 * latency and the compiler may not reassociate it. */
#define FL_DOT_LANES 8
#define FL_SUM_LANES(s) ((((s)[0] + (s)[4]) + ((s)[1] + (s)[5])) + (((s)[2] + (s)[6]) + ((s)[3] + (s)[7])))

/* Few features, contiguous rows: a constant row length lets the compiler vectorise
 * across rows instead of running a 1..8-step loop per row.  One switch case each. */
#define FL_SCORES_OF_WIDTH(T, N) case N: \
    for (ptrdiff_t i = 0; i < k; i++) { \
        const T *x = X + i * N; double s = 0.0; \
        for (int j = 0; j < N; j++) s += (double)x[j] * w[j]; \
        z[i] = s + b; } \
    return;

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
        FL_SCORES_OF_WIDTH(T, 1) FL_SCORES_OF_WIDTH(T, 2) FL_SCORES_OF_WIDTH(T, 3) \
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

FL_ROWS_DEFINE(double, f64)
FL_ROWS_DEFINE(float, f32)

#endif /* FL_ROWS_H */
