/* fl_losses.h -- the fixed-order block sums and the mean losses of fastlogit.
 *
 * The sum of a block in a fixed order of 16 lanes (fl_sum), the same in every clone, and
 * the mean-loss kernels built on it (cost_from_logits, compute_cost): each block's losses
 * are formed in L1 by fl_math.h's staged loops, added to the lanes there without being
 * stored, and its bad labels and out-of-range values counted in the same pass.  The element
 * math lives in fl_math.h (float64) and fl_math_f32.h (float32, which includes this file
 * for its own loss totals).
 */
#ifndef FL_LOSSES_H
#define FL_LOSSES_H

#include "fl_math.h"

/* ---- fixed-order sums ----
   The sum of v[0..k) is formed in FL_SUM_W = 16 lanes: lane l adds v[l], v[l + 16], ... in
   order over the first 16 * floor(k / 16) values, the rest (fewer than 16) is added in order
   into t, and the result is ((lane tree) + t) with the tree of fl_sum_tree.  The order depends
   on k only: 4 AVX2 vectors, 2 AVX-512 vectors or 8 SSE2 pairs give the same bits, and so does
   a kernel that produces v block by block, as long as every block but the last holds a
   multiple of 16 values (FL_BLK does).  Sixteen lanes, not one chain: one add a cycle per
   vector instead of one per add latency.  Error (first order, u = 2^-53): a value in a lane
   passes through at most k/16 - 1 lane adds, 4 tree levels and the final + t, a tail value
   through at most 15 adds and the final one, so the error is at most max(k/16 + 4, 16) u sum|v|:
   4.0e-15 sum|v| for a block of 512, against 2.2e-15 for the pairwise sum it replaces (a
   16-term serial base case and 5 levels). */
#define FL_SUM_W 16
#if FL_BLK % FL_SUM_W != 0
#error "FL_BLK must be a multiple of FL_SUM_W"
#endif

FL_INLINE void fl_sum_lanes(double *FL_RESTRICT s, const double *FL_RESTRICT v, ptrdiff_t k16, double scale)
{
    for (ptrdiff_t j = 0; j < k16; j += FL_SUM_W)
        for (int l = 0; l < FL_SUM_W; l++) s[l] += v[j + l] * scale;
}

FL_INLINE double fl_sum_tree(const double *s)
{
    return (((s[0] + s[8]) + (s[4] + s[12])) + ((s[2] + s[10]) + (s[6] + s[14])))
         + (((s[1] + s[9]) + (s[5] + s[13])) + ((s[3] + s[11]) + (s[7] + s[15])));
}

/* Adds the block v[0..m) (scaled: v * scale, exact for a power of two) to the lanes s, or, for
   the values past the last multiple of 16, to the tail *t. */
FL_INLINE void fl_sum_block(double *FL_RESTRICT s, double *FL_RESTRICT t, const double *FL_RESTRICT v,
                            ptrdiff_t m, double scale)
{
    ptrdiff_t k16 = m - m % FL_SUM_W;
    fl_sum_lanes(s, v, k16, scale);
    for (ptrdiff_t j = k16; j < m; j++) *t += v[j] * scale;
}

FL_INLINE void fl_sum_impl(const double *v, ptrdiff_t n, double *out)
{
    double s[FL_SUM_W] = {0}, t = 0.0;
    fl_sum_block(s, &t, v, n, 1.0);
    *out = fl_sum_tree(s) + t;
}
FL_CLONES(fl_sum, (const double *v, ptrdiff_t n, double *out), (v, n, out))

/* acc[q] += x[q] for q < n, with Neumaier's compensation in comp[q]: the operations of
   _kernels.pyx's scalar _neumaier_add, in selects instead of branches so that the loop
   vectorises.  The fused kernels fold each block's n gradient sums into their chunk's
   partials with it; the scalar loop's branch on |acc| >= |x| is unpredictable there and cost
   ~15 % of a cost_and_gradients pass at 500 features.  Same bits: where acc + x is finite the
   same operations on the same values; where it is not, comp is left alone in effect (it is
   void once the sum is inf or NaN, see _compensated) and the compensation is computed from
   zeros, so that no inf - inf raises the invalid flag in a lane whose result is thrown away. */
FL_INLINE void fl_neumaier_add_impl(double *FL_RESTRICT acc, double *FL_RESTRICT comp,
                                    const double *FL_RESTRICT x, ptrdiff_t n)
{
    for (ptrdiff_t q = 0; q < n; q++) {
        double a = acc[q], v = x[q], t = a + v;
        int fin = fabs(t) <= 0x1.fffffffffffffp+1023;            /* false for NaN */
        int a_big = fabs(a) >= fabs(v);
        double big = fl_select(fin, fl_select(a_big, a, v), 0.0);
        double small = fl_select(fin, fl_select(a_big, v, a), 0.0);
        comp[q] += (big - fl_select(fin, t, 0.0)) + small;
        acc[q] = t;
    }
}
FL_CLONES(fl_neumaier_add, (double *FL_RESTRICT acc, double *FL_RESTRICT comp, const double *FL_RESTRICT x, ptrdiff_t n),
          (acc, comp, x, n))

/* The checks of the mean losses, counted in the kernels' own pass over each block: labels
   outside [0, 1] (NaN counts) and values outside [0, 1] (NaN does not: a NaN value gives a NaN
   loss).  Integer counts (exact, the same in every clone) over at most FL_BLK values; the
   comparisons vectorise in the AVX clones (the Cython loops they replace ran one comisd and
   setae per value: a third of compute_cost's time). */
FL_INLINE double fl_count_bad_labels(const double *FL_RESTRICT y, ptrdiff_t m)
{
    int good = 0;
    for (ptrdiff_t j = 0; j < m; j++) good += (y[j] >= 0.0) & (y[j] <= 1.0);
    return (double)(m - good);
}

FL_INLINE double fl_count_outside_unit(const double *FL_RESTRICT a, ptrdiff_t m)
{
    int bad = 0;
    for (ptrdiff_t j = 0; j < m; j++) bad += (a[j] < 0.0) | (a[j] > 1.0);
    return (double)bad;
}

/* *sum = the sum, in the order of fl_sum, of scale * loss(z_i, y_i) over n examples: the losses
   are formed block by block in L1 and added to the lanes there, never stored.  counts[0] +=
   the labels outside [0, 1]. */
FL_INLINE void fl_logit_loss_total_impl(const double *z, const double *y, ptrdiff_t n, double scale, double *sum,
                                      double *counts)
{
    double b[FL_BLK], s[FL_SUM_W] = {0}, t = 0.0, bad = 0.0;
    fl_stage w;
    FL_BLOCK_LOOP_BEGIN
        bad += fl_count_bad_labels(y + i0, m);
        fl_loss_loop(z + i0, y + i0, b, m, xmin, &w);
        fl_sum_block(s, &t, b, m, scale);
    }
    *sum = fl_sum_tree(s) + t;
    counts[0] += bad;
}
FL_CLONES(fl_logit_loss_total, (const double *z, const double *y, ptrdiff_t n, double scale, double *sum, double *counts),
          (z, y, n, scale, sum, counts))

/* *sum = the sum, in the order of fl_sum, of scale * -(y log(a) + (1-y) log(1-a)), a clipped
   to [eps, 1-eps]; log(1-a) computed as log1p(-a) (1-a and its exact rounding error), so small
   a keeps full relative accuracy.  Blocks whose labels are all 0 or 1 take one log.
   counts[0] += the labels outside [0, 1], counts[1] += the values of a outside [0, 1]. */
FL_INLINE int fl_soft_labels(const double *FL_RESTRICT y, ptrdiff_t m)
{
    int soft = 0;                                 /* any label other than 0/1 (or NaN)? */
    for (ptrdiff_t j = 0; j < m; j++)
        soft |= (y[j] != 0.0) & (y[j] != 1.0);
    return soft;
}

FL_INLINE void fl_prob_loss_total_impl(const double *a, const double *y, double eps, ptrdiff_t n,
                                     double scale, double *sum, double *counts)
{
    double b[FL_BLK], s[FL_SUM_W] = {0}, t = 0.0, bad = 0.0, outside = 0.0;
    fl_stage w;
    const double lo = eps, hi = 1.0 - eps;
    FL_BLOCK_LOOP_BEGIN
        const double *aa = a + i0, *yy = y + i0;
        bad += fl_count_bad_labels(yy, m);
        outside += fl_count_outside_unit(aa, m);
        if (!fl_soft_labels(yy, m))
            fl_prob_loss_hard_labels(aa, yy, b, m, lo, hi, &w);
        else
            fl_prob_loss_soft_labels(aa, yy, b, m, lo, hi);
        fl_sum_block(s, &t, b, m, scale);
    }
    *sum = fl_sum_tree(s) + t;
    counts[0] += bad;
    counts[1] += outside;
}
FL_CLONES(fl_prob_loss_total, (const double *a, const double *y, double eps, ptrdiff_t n, double scale, double *sum, double *counts),
          (a, y, eps, n, scale, sum, counts))

#undef FL_BLOCK_LOOP_BEGIN
#endif /* FL_LOSSES_H */
