/* fl_hessian.h -- the Hessian tile of fastlogit's Newton kernel.
 *
 * The Hessian of the summed loss is X~^T diag(s_i h_i) X~ with X~ = [X, 1] and
 * h_i = sigma(z_i) sigma(-z_i).  _kernels_newton.pxi (cost_gradient_hessian) packs each row block
 * as doubles into P (k rows of ld = n + 1 rounded up to a whole FLN_V, intercept column of
 * ones, zero padding) and S = diag(s h) P (FLN_LDR(ld) columns) with fln_pack_*, then accumulates the upper
 * triangle of S^T P tile by tile with fln_syrk_upper.  Both are compiled once per
 * instruction set (as fl_math.h's FL_CLONES).  No implicit FMA contraction (setup.py
 * compiles with -ffp-contract=off); the tile's multiply-adds are explicit FMAs, an
 * instruction or glibc's correctly rounded fma(): every clone gives the same bits.
 */
#ifndef FL_HESSIAN_H
#define FL_HESSIAN_H

#include "fl_isa.h"         /* FL_CLONES: one clone per instruction set */
#define FLN_R 6     /* rows of an H tile: broadcast operands */
#define FLN_V 8     /* columns of an H tile: two 4-double vectors */
/* Rows of H (and columns of S) for ld columns: ld rounded up to whole tiles of FLN_R rows.
   The rows past ld are zero padding, never read back. */
#define FLN_LDR(ld) (((ld) + FLN_R - 1) / FLN_R * FLN_R)

/* H[j][l] += sum_i S[i][j] P[i][l] for the tiles on or above the diagonal; ld is a
   multiple of FLN_V, H has FLN_LDR(ld) rows of ld.  S and P are packed in panels (see
   fln_pack): the FLN_R columns of S and the FLN_V columns of P that a tile reads are
   contiguous, k rows long, so a tile streams two short arrays from L1 instead of striding
   through the block.  The summation order over i is fixed, and every step is one explicit
   fused multiply-add, H = fma(S, P, H), so the tile's shape does not change any bit.  On
   x86-64-v3/v4 the 6 x 8 tile is 12 accumulators of 4 doubles (with the 2 P vectors and a
   broadcast, 15 of the 16 registers): one vfmadd each per row, 12 independent chains, so
   the FMA units stay busy through their 4-cycle latency (8 chains, a 4 x 8 tile, left no
   slack: 13-17 GFLOP/s at n = 50).  The baseline clone calls fma() lane by lane (glibc's
   correctly rounded fma: slower, the same bits).  Without run-time dispatch the portable
   loop runs (fma() again, same bits). */
#define FLN_SYRK_PORTABLE \
    for (ptrdiff_t j0 = 0; j0 < FLN_LDR(ld); j0 += FLN_R) \
        for (ptrdiff_t l0 = (j0 / FLN_V) * FLN_V; l0 < ld; l0 += FLN_V) \
            for (ptrdiff_t i = 0; i < k; i++) \
                for (int r = 0; r < FLN_R; r++) { \
                    double s = S[j0 * k + i * FLN_R + r], *h = H + (j0 + r) * ld + l0; \
                    const double *p = P + l0 * k + i * FLN_V; \
                    for (int v = 0; v < FLN_V; v++) h[v] = fma(s, p[v], h[v]); \
                }
#if FL_DISPATCH
#include <immintrin.h>
#define FLN_ROW_LOAD(r) \
    __m256d a##r##0 = _mm256_loadu_pd(h + r * ld), a##r##1 = _mm256_loadu_pd(h + r * ld + 4);
#define FLN_ROW_FMA(r) \
    t = _mm256_broadcast_sd(s + r); \
    a##r##0 = _mm256_fmadd_pd(t, p0, a##r##0); a##r##1 = _mm256_fmadd_pd(t, p1, a##r##1);
#define FLN_ROW_STORE(r) \
    _mm256_storeu_pd(h + r * ld, a##r##0); _mm256_storeu_pd(h + r * ld + 4, a##r##1);
#define FLN_SYRK_AVX \
    for (ptrdiff_t j0 = 0; j0 < FLN_LDR(ld); j0 += FLN_R) { \
        const double *Sp = S + j0 * k;               /* panel j0 / FLN_R: k rows of FLN_R */ \
        for (ptrdiff_t l0 = (j0 / FLN_V) * FLN_V; l0 < ld; l0 += FLN_V) { \
            const double *Pp = P + l0 * k;           /* panel l0 / FLN_V: k rows of FLN_V */ \
            double *h = H + j0 * ld + l0; \
            FLN_ROW_LOAD(0) FLN_ROW_LOAD(1) FLN_ROW_LOAD(2) \
            FLN_ROW_LOAD(3) FLN_ROW_LOAD(4) FLN_ROW_LOAD(5) \
            for (ptrdiff_t i = 0; i < k; i++) { \
                const double *s = Sp + i * FLN_R, *p = Pp + i * FLN_V; \
                __m256d p0 = _mm256_loadu_pd(p), p1 = _mm256_loadu_pd(p + 4), t; \
                FLN_ROW_FMA(0) FLN_ROW_FMA(1) FLN_ROW_FMA(2) \
                FLN_ROW_FMA(3) FLN_ROW_FMA(4) FLN_ROW_FMA(5) \
            } \
            FLN_ROW_STORE(0) FLN_ROW_STORE(1) FLN_ROW_STORE(2) \
            FLN_ROW_STORE(3) FLN_ROW_STORE(4) FLN_ROW_STORE(5) \
        } \
    }
__attribute__((target("arch=x86-64-v4"))) FL_UNUSED static void
fln_syrk_upper_avx512(const double *S, const double *P, ptrdiff_t k, ptrdiff_t ld, double *H)
{ FLN_SYRK_AVX }
__attribute__((target("arch=x86-64-v3"))) FL_UNUSED static void
fln_syrk_upper_avx2(const double *S, const double *P, ptrdiff_t k, ptrdiff_t ld, double *H)
{ FLN_SYRK_AVX }
FL_UNUSED static void
fln_syrk_upper_baseline(const double *S, const double *P, ptrdiff_t k, ptrdiff_t ld, double *H)
{ FLN_SYRK_PORTABLE }
FL_UNUSED static void fln_syrk_upper(const double *S, const double *P, ptrdiff_t k, ptrdiff_t ld,
                                     double *H)
{
    if (fl_isa_active == FL_ISA_AVX512) fln_syrk_upper_avx512(S, P, k, ld, H);
    else if (fl_isa_active == FL_ISA_AVX2) fln_syrk_upper_avx2(S, P, k, ld, H);
    else fln_syrk_upper_baseline(S, P, k, ld, H);
}
#else
FL_UNUSED static void fln_syrk_upper(const double *S, const double *P, ptrdiff_t k, ptrdiff_t ld,
                                     double *H)
{ FLN_SYRK_PORTABLE }
#endif

/* x~ = [x, 1, 0...] (ld values) of k rows, packed in panels: P holds column panels of
   FLN_V (element (i, j) at (j - j % FLN_V) * k + i * FLN_V + j % FLN_V), S = diag(h) x~
   in panels of FLN_R over FLN_LDR(ld) columns (the ones past ld zero).  X points at the
   block's first element; (rs, cs) are its row and column strides (one of them is 1).  A
   C-ordered block is copied by whole panels of FLN_V data columns (contiguous in each row:
   vector loads and stores), then the last panel (the remaining data columns, the 1 of the
   intercept, zero padding; ld = n + 1 rounded up to FLN_V leaves exactly one) row by row;
   an F-ordered block column by column.  S is then formed from P, whatever X's layout.  Only
   copies and the products h_i x~_ij: the values do not depend on the path. */
#define FLN_DEFINE_PACK(T, SUF) \
FL_INLINE void fln_pack_##SUF##_impl(const T *X, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t n, \
                                     ptrdiff_t k, const double *h, ptrdiff_t ld, \
                                     double *FL_RESTRICT P, double *FL_RESTRICT S) \
{ \
    if (cs == 1) { \
        ptrdiff_t full = n / FLN_V * FLN_V, nd = n - full; \
        for (ptrdiff_t j0 = 0; j0 < full; j0 += FLN_V) { \
            double *Pp = P + j0 * k; \
            for (ptrdiff_t i = 0; i < k; i++) { \
                const T *x = X + i * rs + j0; \
                for (int v = 0; v < FLN_V; v++) Pp[i * FLN_V + v] = (double)x[v]; \
            } \
        } \
        if (full < ld) { \
            double *Pp = P + full * k; \
            for (ptrdiff_t i = 0; i < k; i++) { \
                const T *x = X + i * rs + full; \
                for (int v = 0; v < FLN_V; v++) \
                    Pp[i * FLN_V + v] = v < nd ? (double)x[v < nd ? v : 0] : (v == nd ? 1.0 : 0.0); \
            } \
        } \
    } else { \
        for (ptrdiff_t j = 0; j < ld; j++) { \
            double *Pc = P + (j - j % FLN_V) * k + j % FLN_V; \
            if (j < n) { \
                const T *x = X + j * cs; \
                for (ptrdiff_t i = 0; i < k; i++) Pc[i * FLN_V] = (double)x[i * rs]; \
            } else { \
                double v = j == n ? 1.0 : 0.0; \
                for (ptrdiff_t i = 0; i < k; i++) Pc[i * FLN_V] = v; \
            } \
        } \
    } \
    for (ptrdiff_t j0 = 0; j0 < FLN_LDR(ld); j0 += FLN_R) { \
        double *Sp = S + j0 * k; \
        for (ptrdiff_t i = 0; i < k; i++) \
            for (int r = 0; r < FLN_R; r++) { \
                ptrdiff_t j = j0 + r; \
                Sp[i * FLN_R + r] = j < ld ? h[i] * P[(j - j % FLN_V) * k + i * FLN_V + j % FLN_V] \
                                           : 0.0; \
            } \
    } \
} \
FL_CLONES(fln_pack_##SUF, (const T *X, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t n, ptrdiff_t k, \
                           const double *h, ptrdiff_t ld, double *P, double *S), \
          (X, rs, cs, n, k, h, ld, P, S))
FLN_DEFINE_PACK(double, d)
FLN_DEFINE_PACK(float, f)

/* Newton's direction d = -(H + shift I)^{-1} g by Cholesky, on the small (n, n) matrix H
   (row-major, symmetric; only the lower triangle is read).  Compiled once (not cloned),
   plain multiplies and adds in a fixed order (no FMA: -ffp-contract=off), so the bits depend
   on nothing but H and g -- not on the LAPACK build NumPy links, nor on its threads.
   H + shift I positive definite: its factor L (n * n scratch) solves L L^T d = -g; a pivot
   that is not > 0 (or NaN) means "not positive definite": return -1.  Returns 0 with d
   filled otherwise (d may hold inf or NaN if the factor overflows; the caller checks). */
FL_UNUSED static int fln_cholesky_solve(const double *H, ptrdiff_t n, double shift,
                                        const double *g, double *L, double *d)
{
    for (ptrdiff_t j = 0; j < n; j++) {
        const double *Lj = L + j * n;
        double s = H[j * n + j] + shift;
        for (ptrdiff_t q = 0; q < j; q++) s -= Lj[q] * Lj[q];
        if (!(s > 0.0)) return -1;
        double piv = sqrt(s);
        L[j * n + j] = piv;
        for (ptrdiff_t i = j + 1; i < n; i++) {
            double *Li = L + i * n, t = H[i * n + j];
            for (ptrdiff_t q = 0; q < j; q++) t -= Li[q] * Lj[q];
            Li[j] = t / piv;
        }
    }
    for (ptrdiff_t i = 0; i < n; i++) {            /* L y = -g */
        const double *Li = L + i * n;
        double t = -g[i];
        for (ptrdiff_t q = 0; q < i; q++) t -= Li[q] * d[q];
        d[i] = t / Li[i];
    }
    for (ptrdiff_t i = n - 1; i >= 0; i--) {       /* L^T d = y */
        double t = d[i];
        for (ptrdiff_t q = i + 1; q < n; q++) t -= L[q * n + i] * d[q];
        d[i] = t / L[i * n + i];
    }
    return 0;
}

#endif /* FL_HESSIAN_H */
