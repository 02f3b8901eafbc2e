/* fl_hessian.h -- the Hessian tile of fastlogit's Newton kernel.
 *
 * The Hessian of the summed loss is X~^T diag(s_i h_i) X~ with X~ = [X, 1] and
 * h_i = sigma(z_i) sigma(-z_i).  _kernels.pyx (cost_gradient_hessian) packs each row block
 * as doubles into P (k rows of ld = n + 1 rounded up to a whole tile, intercept column of
 * ones, zero padding) and S = diag(s h) P with fln_pack_*, then accumulates the upper
 * triangle of S^T P tile by tile with fln_syrk_upper.  Both are compiled once per
 * instruction set (FL_CLONES, as fl_math.h).  No FMA contraction (setup.py compiles with
 * -ffp-contract=off): every clone gives the same bits.
 */
#ifndef FL_HESSIAN_H
#define FL_HESSIAN_H

#include "fl_math.h"        /* FL_CLONES: one clone per instruction set, as fl_math.h */
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
FL_INLINE void fln_syrk_upper_impl(const double *S, const double *P, ptrdiff_t k,
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
FL_CLONES(fln_syrk_upper, (const double *S, const double *P, ptrdiff_t k, ptrdiff_t ld, double *H),
          (S, P, k, ld, H))
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
FL_INLINE void fln_pack_##SUF##_impl(const T *X, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t n, \
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
} \
FL_CLONES(fln_pack_##SUF, (const T *X, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t n, ptrdiff_t k, \
                           const double *h, ptrdiff_t ld, double *P, double *S), \
          (X, rs, cs, n, k, h, ld, P, S))
FLN_DEFINE_PACK(double, d)
FLN_DEFINE_PACK(float, f)

#endif /* FL_HESSIAN_H */
