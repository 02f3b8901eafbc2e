/* fl_math_f32.h -- float32 at its own width: sigmoid, log-sigmoid, the loss of float32 logits,
 * and the float32 output stage of forward_pass.
 *
 * Built on the element code of fl_math.h (same clones, same staged loops); kept apart because
 * its error argument is its own (plain double, no double-double corrections): see the comment
 * below and docs/numerics.md.
 */
#ifndef FL_MATH_F32_H
#define FL_MATH_F32_H

#include "fl_losses.h"   /* fl_math.h, and the fixed-order sums and label counts */

/* ---- float32 at its own width ----
   float32 in, float32 out (and float32 in, double loss out): the same formulas in plain double,
   without the double-double corrections, the 2^128 scaling and the corrected quotient.
   Inputs below -110 (or above 110 for the exp) are clamped: exp(-110) < 2^-158 rounds to 0 in
   float32 whatever the exact value below it, so the clamp cannot change a float32 result.

   Two exps.  fl_exp_wide (losses: doubles, summed in double; their mean must stay within
   1e-14, and e^-200 is a double): range reduction with two fmas, the degree-12 polynomial of
   fl_exp_times_2p128, one rounding of the sum, an exact scaling: relative error ~2^-51; with
   1 + E and the log (<= 1 ulp of double each) the loss has a relative error delta < 2^-49.
   fl_exp_short (sigmoid and log_sigmoid, whose results are float32): one-fma range reduction
   (|k| <= 159, |LN2 - ln2| < 2^-55.3: < 2^-48 relative), a degree-8 polynomial (relative error
   2^-39.68 on |r| <= ln2/2: scripts/gen_fl_math_coeffs.py), one rounding of the sum: relative
   error < 2^-39.6; 1 + E, the quotient or the log and the last sum add <= 3 ulp of double, so
   the double result r has delta < 2^-39.5.  Rounded to float32 that is at most
   0.5 ulp32 + delta * 2^25 ulp32 < 0.5 + 2^-14.5 ulp32 (0.50005; subnormal float32 results are
   no worse: their ulp, 2^-149, is far above delta * r).  Bound 0.51 ulp32.  The result differs
   from the correctly rounded one only when the exact value lies within delta * r of a
   midpoint between two float32: at most a fraction delta * 2^25 < 2^-14.5 of the inputs,
   and by 0.5 + 2^-14.5 ulp32 at most (tests/test_accuracy.py checks each such input with
   mpmath). */
#define FL_F32_XMIN (-110.0)
#define FL_LN2 0x1.62e42fefa39efp-1
/* exp(x) for x <= 0 (or NaN) over the whole double range, for the losses of float32 inputs
   (doubles, not rounded to float32: exp(-200) matters there): the arithmetic of fl_exp_times_2p128's
   high part, with the scale 2^(k+128), a normal double down to the clamp xmin = -760, and one multiply by
   2^-128 that rounds once where the result is subnormal.  Relative error ~2^-51 (normal
   results), + 0.5 ulp (subnormal ones). */
FL_INLINE double fl_exp_wide(double x, double xmin)
{
    double xc = fl_select(x < xmin, xmin, x);
    double t = fma(xc, FL_LOG2E, FL_SHIFT);
    double kd = t - FL_SHIFT;
    double r = fma(-kd, FL_LN2HI, xc);
    r = fma(-kd, FL_LN2LO, r);
    double r2 = r * r, r4 = r2 * r2;
    double c = fl_exp_poly(r, r2, r4);
    double e = 1.0 + fma(r2, c, r);
    double sc = fl_double_from_bits((fl_bits_of(t) << 52) + ((uint64_t)(1023 + 128) << 52));
    return (e * sc) * FL_EUNSCALE;
}

/* exp(x) for x <= 0 (or NaN), x clamped at FL_F32_XMIN, for float32 results: relative error
   < 2^-39.6 (see above).  c(r) = (e^r - 1 - r)/r^2, degree 6, near-minimax for the relative
   error of e^r on |r| <= ln2/2 (Lawson-weighted least squares, mpmath at 200 bits). */
FL_INLINE double fl_exp_short(double x)
{
    double xc = fl_select(x < FL_F32_XMIN, FL_F32_XMIN, x);
    double t = fma(xc, FL_LOG2E, FL_SHIFT);
    double kd = t - FL_SHIFT;
    double r = fma(-kd, FL_LN2, xc);
    double r2 = r * r;
    double c01 = fma(0x1.5555557dcde73p-3, r, 0x1.000000005ddf0p-1);
    double c23 = fma(0x1.1110a2696b738p-7, r, 0x1.5555541e777abp-5);
    double c45 = fma(0x1.a1854f1e7e432p-13, r, 0x1.6c18d307a8df0p-10);
    double c46 = fma(0x1.9e893e6b12459p-16, r2, c45);
    double c = fma(fma(c46, r2, c23), r2, c01);
    double e = 1.0 + fma(r2, c, r);
    double sc = fl_double_from_bits((fl_bits_of(t) << 52) + ((uint64_t)1023 << 52));
    /* e * sc: exact (2^k, k >= -159, a normal double).  0 below the point where the float64
       path's exp underflows to 0 (between the float32 neighbours -745.13330 and -745.13318):
       there its log_sigmoid(z) is +0, not -0, and the float32 path gives the same zero. */
    return fl_select(x < -745.1332, 0.0, e * sc);
}

/* Staged as the double loops (see fl_stage).  float32 inputs are first widened into the
   stage (w->x, w->y: L1, never memory): converting in each pass instead costs more (the
   conversions, and gcc narrows the tests on (double)z to float32 compares whose masks it then
   widens with ~15 integer instructions per 8 elements: measured 11-14 % slower). */
FL_INLINE void fl_widen_f32(const float *FL_RESTRICT src, double *FL_RESTRICT dst, ptrdiff_t m)
{
    for (ptrdiff_t j = 0; j < m; j++) dst[j] = (double)src[j];
}

/* o = sigmoid(x) rounded to float32, x double (<= 0.51 ulp32 for any double x) */
FL_INLINE void fl_sigmoid_to_f32_loop(const double *FL_RESTRICT x, float *FL_RESTRICT o, ptrdiff_t m,
                                      fl_stage *FL_RESTRICT w)
{
    for (ptrdiff_t j = 0; j < m; j++) w->a[j] = fl_exp_short(-fabs(x[j]));
    for (ptrdiff_t j = 0; j < m; j++)
        o[j] = (float)(fl_select(x[j] < 0, w->a[j], 1.0) / (1.0 + w->a[j]));
}

FL_INLINE void fl_sigmoid_f32_loop(const float *FL_RESTRICT z, float *FL_RESTRICT o, ptrdiff_t m,
                                   fl_stage *FL_RESTRICT w)
{
    fl_widen_f32(z, w->x, m);
    fl_sigmoid_to_f32_loop(w->x, o, m, w);
}

FL_INLINE void fl_log_sigmoid_f32_loop(const float *FL_RESTRICT z, float *FL_RESTRICT o, ptrdiff_t m,
                                       fl_stage *FL_RESTRICT w)
{
    fl_widen_f32(z, w->x, m);
    for (ptrdiff_t j = 0; j < m; j++) w->a[j] = fl_exp_short(-fabs(w->x[j]));
    for (ptrdiff_t j = 0; j < m; j++) {
        double e = w->a[j], v = 1.0 + e, f, s, kd, cv;
        fl_log12_prep(v, (1.0 - v) + e, &f, &s, &kd, &cv);     /* (1 - v) + e: exact, e <= 1 */
        w->a[j] = f; w->b[j] = s; w->c[j] = kd; w->d[j] = cv;
    }
    for (ptrdiff_t j = 0; j < m; j++) {
        double x = w->x[j];
        o[j] = (float)(fl_select(x < 0, x, 0.0) - fl_stage_log_finish(w, j));
    }
}

/* Double scores in, float32 probabilities out (forward_pass into a float32 output): the
   float32 sigmoid's arithmetic on a double z; the same bound (0.51 ulp32) for any double z. */
FL_INLINE void fl_sigmoid_to_f32_impl(const double *FL_RESTRICT z, float *FL_RESTRICT o, ptrdiff_t n)
{
    fl_stage w;
    for (ptrdiff_t i0 = 0; i0 < n; i0 += FL_BLK) {
        ptrdiff_t m = n - i0 < FL_BLK ? n - i0 : FL_BLK;
        fl_sigmoid_to_f32_loop(z + i0, o + i0, m, &w);
    }
}
FL_CLONES(fl_sigmoid_to_f32, (const double *FL_RESTRICT z, float *FL_RESTRICT o, ptrdiff_t n), (z, o, n))

/* Direct stores when out and z are disjoint (restrict holds), else through a stack block
   (exact in-place calls): as the double kernels, see fl_disjoint. */
#define FL_F32_UNARY(NAME) \
FL_INLINE void NAME##_impl(const float *z, float *out, ptrdiff_t n) \
{ \
    uintptr_t po = (uintptr_t)out, pz = (uintptr_t)z, len = (uintptr_t)n * 4; \
    int direct = po + len <= pz || pz + len <= po; \
    float b[FL_BLK]; \
    fl_stage w; \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += FL_BLK) { \
        ptrdiff_t m = n - i0 < FL_BLK ? n - i0 : FL_BLK; \
        NAME##_loop(z + i0, direct ? out + i0 : b, m, &w); \
        if (!direct && m > 0) memcpy(out + i0, b, (size_t)m * sizeof(float)); \
    } \
} \
FL_CLONES(NAME, (const float *z, float *out, ptrdiff_t n), (z, out, n))

FL_F32_UNARY(fl_sigmoid_f32)
FL_F32_UNARY(fl_log_sigmoid_f32)

/* *sum = the sum, in the order of fl_sum, of scale * loss(z_i, y_i), float32 z and y: E by
   fl_exp_wide, log(1 + E) with 1 + E's exact rounding error, the loss in double (relative
   error < 2^-49, see above), summed in double as the float64 kernel does.  counts[0] += the
   labels outside [0, 1]. */
FL_INLINE void fl_logit_loss_total_f32_impl(const float *z, const float *y, ptrdiff_t n, double scale, double *sum,
                                            double *counts)
{
    double b[FL_BLK], s[FL_SUM_W] = {0}, t = 0.0, bad = 0.0;
    fl_stage w;
    const double xmin = fl_exp_floor_volatile;
    for (ptrdiff_t i0 = 0; i0 < n; i0 += FL_BLK) {
        ptrdiff_t m = n - i0 < FL_BLK ? n - i0 : FL_BLK;
        fl_widen_f32(z + i0, w.x, m);
        fl_widen_f32(y + i0, w.y, m);
        bad += fl_count_bad_labels(w.y, m);
        for (ptrdiff_t j = 0; j < m; j++) w.a[j] = fl_exp_wide(-fabs(w.x[j]), xmin);
        for (ptrdiff_t j = 0; j < m; j++) {
            double e = w.a[j], v = 1.0 + e, f, sv, kd, cv;
            fl_log12_prep(v, (1.0 - v) + e, &f, &sv, &kd, &cv);
            w.a[j] = f; w.b[j] = sv; w.c[j] = kd; w.d[j] = cv;
        }
        for (ptrdiff_t j = 0; j < m; j++)
            b[j] = fl_loss_one(w.x[j], w.y[j], fl_stage_log_finish(&w, j));
        fl_sum_block(s, &t, b, m, scale);
    }
    *sum = fl_sum_tree(s) + t;
    counts[0] += bad;
}
FL_CLONES(fl_logit_loss_total_f32, (const float *z, const float *y, ptrdiff_t n, double scale, double *sum, double *counts),
          (z, y, n, scale, sum, counts))

/* ---- the loss of float32 probabilities ----
   The float64 kernel's arithmetic, on float32 a and y widened into the stage, with two steps
   dropped that cannot change a bit when the clip bounds lo = eps and hi = 1 - eps are float32
   numbers and lo >= 2^-29 (the default eps = 2^-23 is): every clipped a is then a float32 in
   [2^-29, 1), so
   - v = 1 - a is exact in double (a's last bit is >= 2^-52; v >= 1/2 has ulp 2^-53, and for
     a >= 1/2 Sterbenz), so the correction c = (1 - v) - a of log1p(-a) is +0, and with it the
     term cv of fl_logc_prep (c/v by a polynomial: +0 times a positive number);
   - log's argument (a or v) is a normal double (>= 2^-29): no subnormal scaling.
   So the results are those of the float64 kernel on the widened values, bit for bit, with
   its bounds (docs/numerics.md).  Other clip bounds (eps = 0, or not a float32) take the
   float64 kernel's loops on the widened block. */
FL_INLINE void fl_logn_prep(double v, double *pf, double *ps, double *pkd)
{
    /* fl_logc_prep for a normal v (or 0, NaN), c = 0: the same operations, less the scaling */
    uint64_t ix = fl_bits_of(v);
    uint64_t u = ix - 0x3fe6a09e667f3bcdULL + (1024ULL << 52);
    uint64_t kb = u & 0xfff0000000000000ULL;
    double m = fl_double_from_bits(ix - kb + (1024ULL << 52));
    double kd = fl_double_from_bits(0x4330000000000000ULL | (u >> 52)) - (0x1p52 + 1024.0);
    double f = m - 1.0;
    *pf = f;
    *pkd = kd;
    *ps = f / (2.0 + f);
}

FL_INLINE void fl_prob_loss_hard_labels_f32(const double *FL_RESTRICT y, double *FL_RESTRICT o, ptrdiff_t m,
                                            double lo, double hi, fl_stage *FL_RESTRICT w)
{
    for (ptrdiff_t j = 0; j < m; j++) {
        double av = w->x[j];
        int alo = av < lo, ahi = av > hi;
        av = fl_select(alo, lo, fl_select(ahi, hi, av));          /* NaN passes */
        w->e[j] = fl_select(y[j] == 1.0, av, 1.0 - av);           /* 1 - av: exact here */
    }
    for (ptrdiff_t j = 0; j < m; j++) {
        double f, s, kd;
        fl_logn_prep(w->e[j], &f, &s, &kd);
        w->a[j] = f; w->b[j] = s; w->c[j] = kd;
    }
    for (ptrdiff_t j = 0; j < m; j++)
        o[j] = 0.0 - fl_logc_finish(w->e[j], w->a[j], w->b[j], w->c[j], 0.0);
}

/* *sum = the sum, in the order of fl_sum, of scale * the clipped loss of float32 probabilities
   a against float32 labels y; counts as fl_prob_loss_total. */
FL_INLINE void fl_prob_loss_total_f32_impl(const float *a, const float *y, double eps, ptrdiff_t n,
                                           double scale, double *sum, double *counts)
{
    double b[FL_BLK], s[FL_SUM_W] = {0}, t = 0.0, bad = 0.0, outside = 0.0;
    fl_stage w;
    const double lo = eps, hi = 1.0 - eps;
    const int exact = lo >= 0x1p-29 && (double)(float)lo == lo && (double)(float)hi == hi;
    for (ptrdiff_t i0 = 0; i0 < n; i0 += FL_BLK) {
        ptrdiff_t m = n - i0 < FL_BLK ? n - i0 : FL_BLK;
        fl_widen_f32(a + i0, w.x, m);
        fl_widen_f32(y + i0, w.y, m);
        bad += fl_count_bad_labels(w.y, m);
        outside += fl_count_outside_unit(w.x, m);
        if (fl_soft_labels(w.y, m))
            fl_prob_loss_soft_labels(w.x, w.y, b, m, lo, hi);
        else if (exact)
            fl_prob_loss_hard_labels_f32(w.y, b, m, lo, hi, &w);
        else
            fl_prob_loss_hard_labels(w.x, w.y, b, m, lo, hi, &w);
        fl_sum_block(s, &t, b, m, scale);
    }
    *sum = fl_sum_tree(s) + t;
    counts[0] += bad;
    counts[1] += outside;
}
FL_CLONES(fl_prob_loss_total_f32, (const float *a, const float *y, double eps, ptrdiff_t n, double scale, double *sum, double *counts),
          (a, y, eps, n, scale, sum, counts))

#endif /* FL_MATH_F32_H */
