/* fl_math.h -- vectorisable, accurate sigmoid / log-sigmoid / logistic-loss kernels.
 *
 * Self-contained C99 header (all functions static).  Arithmetic in double, IEEE semantics kept
 * (no fast-math assumptions: inf, NaN and subnormals handled).  Designed for
 * `-O3 -fno-math-errno -ffp-contract=off`: the per-element code is branch-free (selects only)
 * so gcc vectorises the block loops.  On gcc >= 12 / x86-64 / Linux the block loops are
 * compiled three times (x86-64-v4, x86-64-v3, baseline), see FL_CLONES, and give the same
 * bits.  Define FL_NO_DISPATCH to disable that (single build for the compiler's -march).
 * Derivations, thresholds and measured accuracy: see docs/numerics.md.
 */
#ifndef FL_MATH_H
#define FL_MATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

#include "fl_isa.h"

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define FL_HAVE_NT 1
#else
#define FL_HAVE_NT 0
#endif

/* Outputs of at least FL_NT_MIN elements (16 MB: input + output exceed a typical L3) are written
   with non-temporal stores: no read-for-ownership of the output lines, 1/3 less DRAM traffic. */
#ifndef FL_NT_MIN
#define FL_NT_MIN ((ptrdiff_t)1 << 21)
#endif

/* Block size for the kernels: results go to a stack buffer first so the compute loop never
   sees a possibly-aliased output (in-place use must still vectorise). */
#ifndef FL_BLK
#define FL_BLK 256
#endif

/* ---- constants (derivation in docs/numerics.md; coefficients from scripts/gen_fl_math_coeffs.py) ---- */
#define FL_LOG2E  0x1.71547652b82fep+0
#define FL_LN2HI  0x1.62e42fee00000p-1 /* 32 significant bits: k*LN2HI exact for |k| < 2^21 */
#define FL_LN2LO  0x1.a39ef35793c76p-33
#define FL_SHIFT  0x1.8p52             /* x + SHIFT rounds x to an integer held in the low bits */
#define FL_ESCALE 0x1p128              /* exp results are produced times 2^128: always normal */
#define FL_EUNSCALE 0x1p-128
/* exp(-760) < 2^-1096: below every result we can round to.  Read through a volatile (once per
   call): with a literal, gcc threads the clamp's constant path into a duplicated loop body, whose
   possibly-trapping FP ops (-ftrapping-math is on) then block if-conversion, i.e. AVX2 vectorisation. */
FL_UNUSED static const volatile double fl_exp_floor_volatile = -760.0;

FL_INLINE uint64_t fl_bits_of(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
FL_INLINE double fl_double_from_bits(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }
/* Branch-free select c ? a : b, used for EVERY select in the element code.  A C ?: becomes a
   branch; gcc then sinks/threads the (maybe-trapping, -ftrapping-math is the default) FP ops into
   it and refuses to if-convert without AVX-512 masking, so the AVX2 loop would stay scalar. */
FL_INLINE double fl_select(int c, double a, double b)
{
    uint64_t m = (uint64_t)0 - (uint64_t)(c != 0);
    return fl_double_from_bits((fl_bits_of(a) & m) | (fl_bits_of(b) & ~m));
}

/* c(r) = (exp(r)-1-r)/r^2, degree-10 near-minimax on |r| <= ln2/2 (rel. err 2^-57.5), given
   r2 = r^2 and r4 = r^4.  Estrin scheme: a dependency chain of 4 FMAs instead of 10.  Same cost
   on L1-resident data, but on long arrays more elements are in flight, so the loads overlap the
   arithmetic (fl_sigmoid, 10^7 elements: ~25% faster together with the direct stores). */
FL_INLINE double fl_exp_poly(double r, double r2, double r4)
{
    double p01 = fma(0x1.5555555555557p-3, r, 0.5);
    double p23 = fma(0x1.11111111100dcp-7, r, 0x1.5555555555556p-5);
    double p45 = fma(0x1.a01a01abe7fe1p-13, r, 0x1.6c16c16c162d4p-10);
    double p67 = fma(0x1.71de0231960ebp-19, r, 0x1.a01a01a6d889cp-16);
    double p89 = fma(0x1.af4de97ca4194p-26, r, 0x1.27e4db646b17ep-22);
    double p03 = fma(p23, r2, p01);
    double p47 = fma(p67, r2, p45);
    double p8a = fma(0x1.1f730349868cep-29, r2, p89);
    double c = fma(fma(p8a, r4, p47), r4, p03);
    return c;
}

/* exp(x) * 2^128 as an unevaluated sum hi + lo, for x <= 0 (or NaN).  |lo| <= ulp(hi)/2,
   relative error of hi+lo about 2^-57.  Only non-positive arguments: no overflow flag. */
FL_INLINE void fl_exp_times_2p128(double x, double xmin, double *ph, double *pl)
{
    x = fl_select(x < xmin, xmin, x);             /* NaN passes (comparison false) */
    double t = fma(x, FL_LOG2E, FL_SHIFT);
    double kd = t - FL_SHIFT;                    /* k = round(x/ln2), |k| <= 1097 */
    double rh = fma(-kd, FL_LN2HI, x);           /* exact (Cody-Waite), fma or not: one op */
    double r = fma(-kd, FL_LN2LO, rh);
    double rl = fma(-kd, FL_LN2LO, rh - r);      /* r + rl = x - k ln2 to ~2^-100 */
    double r2 = r * r, r4 = r2 * r2;
    double c = fl_exp_poly(r, r2, r4);
    /* 1 + r + (r^2 c + rl(1+r)) in double-double: the big terms are added exactly */
    double h = 1.0 + r;
    double l = (1.0 - h) + r;                    /* exact: |r| < 1 */
    l = l + fma(r2, c, fma(rl, r, rl));
    double hi = h + l;
    double lo = (h - hi) + l;
    /* 2^(k+128) from the integer bits of t (low 52 bits of t are 2^51 + k) */
    double sc = fl_double_from_bits((fl_bits_of(t) << 52) + ((uint64_t)(1023 + 128) << 52));
    *ph = hi * sc;                               /* exact */
    *pl = lo * sc;
}

/* log(v + c) for v >= 0 (or NaN), c a tiny correction (|c| <= ulp(v)) that may be nonzero only
   for v in (1/2, 2].  fdlibm-style: v = 2^k m, m in [sqrt2/2, sqrt2), f = m-1 exact,
   s = f/(2+f), log(1+f) = f - f^2/2 + s(f^2/2 + R(s^2)).
   Written as two stages (prep: everything up to the division; finish: the polynomial and the
   sum) so that the staged loops below can run them as separate passes over a block; the
   composition fl_log_compensated is the same expression, so the bits are the same either way. */
FL_INLINE void fl_logc_prep(double v, double c, double *pf, double *ps, double *pkd, double *pcv)
{
    int sub = v < 0x1p-1022;
    double vs = v * fl_select(sub, 0x1p52, 1.0);
    uint64_t ix = fl_bits_of(vs);
    uint64_t u = ix - 0x3fe6a09e667f3bcdULL + (1024ULL << 52);     /* never wraps for v >= 0 */
    uint64_t kb = u & 0xfff0000000000000ULL;                        /* (k + 1024) << 52 */
    double m = fl_double_from_bits(ix - kb + (1024ULL << 52));
    /* k as a double without a vector int64->double conversion */
    double kd = fl_double_from_bits(0x4330000000000000ULL | (u >> 52)) - (0x1p52 + 1024.0);
    kd = kd - fl_select(sub, 52.0, 0.0);
    double f = m - 1.0;                                             /* exact (Sterbenz) */
    /* c/v = c 2^-k / (1+f); 1/(1+f) to rel. 0.42^5: enough, c/v only shifts the last bits */
    int kpos = kd > 0.5, kneg = kd < -0.5;
    double ck = c * fl_select(kpos, 0.5, fl_select(kneg, 2.0, 1.0));
    double ip = f - 1.0;
    ip = fma(ip, f, 1.0);
    ip = fma(ip, f, -1.0);
    ip = fma(ip, f, 1.0);
    *pcv = ck * ip;
    *pf = f;
    *pkd = kd;
    *ps = f / (2.0 + f);
}

/* R(z)/z of the log (the coefficients of fl_logc_finish), degree 6, rel. err 2^-50.9, by
   Estrin's scheme (a chain of 3 fmas, not 6).  (fl_logc_finish keeps Horner: measured no
   faster staged with Estrin, and its bits stay those of the documented table.) */
FL_INLINE double fl_log_poly(double z)
{
    double z2 = z * z, z4 = z2 * z2;
    double q01 = fma(0x1.99999999952d7p-2, z, 0x1.5555555555558p-1);
    double q23 = fma(0x1.c71c62e3f11e6p-3, z, 0x1.2492492df281ap-2);
    double q45 = fma(0x1.39fe51a7c18f9p-3, z, 0x1.7462b51cb66b1p-3);
    double q46 = fma(0x1.2b5900de53b32p-3, z2, q45);
    return fma(q46, z4, fma(q23, z2, q01));
}

FL_INLINE double fl_logc_finish(double v, double f, double s, double kd, double cv)
{
    double z = s * s;
    double q = 0x1.2b5900de53b32p-3;                 /* R(z)/z, degree 6, rel. err 2^-50.9 */
    q = fma(q, z, 0x1.39fe51a7c18f9p-3);
    q = fma(q, z, 0x1.7462b51cb66b1p-3);
    q = fma(q, z, 0x1.c71c62e3f11e6p-3);
    q = fma(q, z, 0x1.2492492df281ap-2);
    q = fma(q, z, 0x1.99999999952d7p-2);
    q = fma(q, z, 0x1.5555555555558p-1);
    double hfsq = 0.5 * f * f;
    /* kd * LN2HI is exact (32-bit constant): no fma needed there */
    double res = kd * FL_LN2HI - ((hfsq - fma(s, fma(z, q, hfsq), fma(kd, FL_LN2LO, cv))) - f);
    int vpos = v > 0, vzero = v == 0, vinf = v == HUGE_VAL;
    res = fl_select(vpos, res, fl_select(vzero, -HUGE_VAL, NAN));             /* NaN, v<0 -> NaN */
    res = fl_select(vinf, HUGE_VAL, res);
    return res;
}

FL_INLINE double fl_log_compensated(double v, double c)
{
    double f, s, kd, cv;
    fl_logc_prep(v, c, &f, &s, &kd, &cv);
    return fl_logc_finish(v, f, s, kd, cv);
}

/* log(v + c) for v = 1 + E in [1, 2] (or NaN), |c| <= 2^-52: the softplus case.  Same formula
   as fl_log_compensated, but k is 0 or 1, so no exponent extraction and no special cases (NaN propagates
   through f).  1/(1+f) to degree 3 (rel. err f^4 <= 0.03): c/v only moves the last bits.
   Two stages again (fl_log12_prep, fl_log12_finish), composed in fl_log_of_1_to_2. */
FL_INLINE void fl_log12_prep(double v, double c, double *pf, double *ps, double *pkd, double *pcv)
{
    int k = v > 0x1.6a09e667f3bcdp+0;                /* v > sqrt2 -> m = v/2 */
    double sc = fl_select(k, 0.5, 1.0);
    double kd = fl_select(k, 1.0, 0.0);
    double f = v * sc - 1.0;                         /* exact */
    double ip = 1.0 - f;
    ip = fma(ip, f, -1.0);
    ip = fma(ip, f, 1.0);
    *pcv = (c * sc) * ip;
    *pf = f;
    *pkd = kd;
    *ps = f / (2.0 + f);
}

FL_INLINE double fl_log12_finish(double f, double s, double kd, double cv)
{
    double z = s * s;
    double q = fl_log_poly(z);
    double hfsq = 0.5 * f * f;
    /* kd is 0 or 1: kd * LN2HI and kd * LN2LO are exact */
    return kd * FL_LN2HI - ((hfsq - fma(s, fma(z, q, hfsq), kd * FL_LN2LO + cv)) - f);
}

FL_INLINE double fl_log_of_1_to_2(double v, double c)
{
    double f, s, kd, cv;
    fl_log12_prep(v, c, &f, &s, &kd, &cv);
    return fl_log12_finish(f, s, kd, cv);
}

/* Shared quotient: with E = exp(-|z|) (scaled pair eh,el), D = 1 + E, returns
   (use_e ? E : 1) / D, FMA-corrected (about 0.5 ulp + 2^-55 rel), computed in the 2^128-scaled
   domain so a subnormal result is rounded only once, at the final multiply. */
FL_INLINE double fl_sigmoid_from_parts(double eh, double el, double dh, double dl, int use_e)
{
    double nh = fl_select(use_e, eh, FL_ESCALE);
    double nl = fl_select(use_e, el, 0.0);
    double inv = 1.0 / dh;
    double q0 = nh * inv;
    double rem = fma(-q0, dh, nh) + fma(-q0, dl, nl);
    /* Round once: q0u is q0 on the final (maybe subnormal) grid, d its exact rounding error;
       the last fma adds the scaled correction to q0u with a single rounding. */
    double q0u = q0 * FL_EUNSCALE;
    double d = fma(-q0u, FL_ESCALE, q0);     /* exact, fma or not: one op */
    double t = fma(rem, inv, d);
    return fma(t, FL_EUNSCALE, q0u);
}

/* D = 1 + exp(-|z|) as dh + dl (dl exact rounding error + low part) */
FL_INLINE void fl_one_plus_exp(double eh, double el, double *dh, double *dl)
{
    double Eh = eh * FL_EUNSCALE, El = el * FL_EUNSCALE;   /* may underflow: then 1+E == 1 anyway */
    double h = 1.0 + Eh;
    *dh = h;
    *dl = ((1.0 - h) + Eh) + El;                          /* exact: Eh <= 1 */
}

FL_INLINE double fl_loss_one(double z, double y, double L)
{
    /* y*softplus(-z) + (1-y)*softplus(z) = L + w|z|, w = (z<0 ? y : 1-y): all terms >= 0 */
    double w = fl_select(z < 0, y, 1.0 - y);
    /* weight 0 contributes 0 even if |z| = inf; explicit fma: one rounding, and the result
       does not depend on where the compiler chooses to contract */
    /* Select |z| -> 0 before multiplying: fma(0, inf, L) would raise the
       invalid flag even though its NaN is never selected. */
    double a = fl_select(w == 0, 0.0, fabs(z));
    return fma(w, a, L);
}

/* ---- block loops (dispatched) ---- */
FL_INLINE int fl_use_streaming_stores(const double *dst, const double *in1, const double *in2, ptrdiff_t n)
{
#if FL_HAVE_NT
    return n >= FL_NT_MIN && ((uintptr_t)dst & 15) == 0 && dst != in1 && dst != in2;
#else
    (void)dst; (void)in1; (void)in2; (void)n;
    return 0;
#endif
}

FL_INLINE void fl_store(double *dst, const double *src, ptrdiff_t m, int nt)
{
#if FL_HAVE_NT
    if (nt) {
        ptrdiff_t j = 0;
        for (; j + 2 <= m; j += 2) _mm_stream_pd(dst + j, _mm_loadu_pd(src + j));
        if (j < m) dst[j] = src[j];
        return;
    }
#endif
    if (m > 0)      /* always true; tells gcc the size cannot be "negative" (-Wstringop-overflow) */
        memcpy(dst, src, (size_t)m * sizeof(double));
}

FL_INLINE void fl_store_fence(int nt)
{
#if FL_HAVE_NT
    if (nt) _mm_sfence();                       /* NT stores are weakly ordered */
#else
    (void)nt;
#endif
}

#define FL_BLOCK_LOOP_BEGIN                                            \
    const double xmin = fl_exp_floor_volatile; (void)xmin;                    \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += FL_BLK) {                 \
        ptrdiff_t m = n - i0 < FL_BLK ? n - i0 : FL_BLK;

/* Does [o, o+n) overlap neither input?  Then the kernels write straight into the output: no
   stack buffer and copy, and the stores are spread over the compute instead of arriving in
   2 KB bursts that stall on read-for-ownership misses (10-25% on every kernel).  Exact in-place
   calls (o == input) and partial overlaps keep the buffer, see FL_BLK. */
FL_INLINE int fl_disjoint(const double *o, const double *a, const double *b, ptrdiff_t n)
{
    uintptr_t po = (uintptr_t)o, pa = (uintptr_t)a, pb = (uintptr_t)b, len = (uintptr_t)n * 8;
    return (po + len <= pa || pa + len <= po) && (po + len <= pb || pb + len <= po);
}

/* ---- staged element loops ----
   Each element's math is one long dependency chain (exp, 1 + E, a division, a polynomial:
   ~80 cycles of latency).  Written as one loop, an iteration is ~100 instructions and the
   out-of-order window of a core holds only two or three of them, so the loop runs at the
   chain's latency, not at the FP units' throughput (about 2 instructions a cycle measured on
   Zen 3).  The loops below run the same operations as two or three passes over a block of at
   most FL_BLK elements, through an L1-resident scratch (fl_stage): each pass has a shorter
   chain and fewer instructions, so more iterations overlap.  Same operations in the same
   order per element: the same bits as the single loop (sigmoid ~23 %, loss ~22 % faster,
   cache-resident, AVX2; docs/performance.md).
   `restrict` holds for every destination (the stack buffer, or an output checked by
   fl_disjoint), so gcc vectorises the passes without run-time alias checks. */
typedef struct { double a[FL_BLK], b[FL_BLK], c[FL_BLK], d[FL_BLK], e[FL_BLK], x[FL_BLK], y[FL_BLK]; } fl_stage;

/* pass: a, b = exp(-|z|) * 2^128 as hi + lo */
FL_INLINE void fl_stage_exp(const double *FL_RESTRICT z, ptrdiff_t m, double xmin, fl_stage *FL_RESTRICT w)
{
    for (ptrdiff_t j = 0; j < m; j++) {
        double eh, el;
        fl_exp_times_2p128(-fabs(z[j]), xmin, &eh, &el);
        w->a[j] = eh;
        w->b[j] = el;
    }
}

/* pass: from a, b = E (scaled), the first stage of log(1 + E): a, b, c, d = f, s, kd, cv */
FL_INLINE void fl_stage_log1p_exp(ptrdiff_t m, fl_stage *FL_RESTRICT w)
{
    for (ptrdiff_t j = 0; j < m; j++) {
        double dh, dl, f, s, kd, cv;
        fl_one_plus_exp(w->a[j], w->b[j], &dh, &dl);
        fl_log12_prep(dh, dl, &f, &s, &kd, &cv);
        w->a[j] = f; w->b[j] = s; w->c[j] = kd; w->d[j] = cv;
    }
}

FL_INLINE double fl_stage_log_finish(const fl_stage *FL_RESTRICT w, ptrdiff_t j)
{
    return fl_log12_finish(w->a[j], w->b[j], w->c[j], w->d[j]);
}

FL_INLINE void fl_sigmoid_loop(const double *FL_RESTRICT z, double *FL_RESTRICT o, ptrdiff_t m, double xmin,
                               fl_stage *FL_RESTRICT w)
{
    fl_stage_exp(z, m, xmin, w);
    for (ptrdiff_t j = 0; j < m; j++) {
        double eh = w->a[j], el = w->b[j], dh, dl;
        fl_one_plus_exp(eh, el, &dh, &dl);
        o[j] = fl_sigmoid_from_parts(eh, el, dh, dl, z[j] < 0);
    }
}

FL_INLINE void fl_log_sigmoid_loop(const double *FL_RESTRICT z, double *FL_RESTRICT o, ptrdiff_t m, double xmin,
                                   fl_stage *FL_RESTRICT w)
{
    fl_stage_exp(z, m, xmin, w);
    fl_stage_log1p_exp(m, w);
    for (ptrdiff_t j = 0; j < m; j++) {
        double x = z[j];
        o[j] = fl_select(x < 0, x, 0.0) - fl_stage_log_finish(w, j);   /* both terms <= 0 */
    }
}

FL_INLINE void fl_loss_loop(const double *FL_RESTRICT z, const double *FL_RESTRICT y, double *FL_RESTRICT o,
                            ptrdiff_t m, double xmin, fl_stage *FL_RESTRICT w)
{
    fl_stage_exp(z, m, xmin, w);
    fl_stage_log1p_exp(m, w);
    for (ptrdiff_t j = 0; j < m; j++)
        o[j] = fl_loss_one(z[j], y[j], fl_stage_log_finish(w, j));
}

/* residual (and, unless lo is NULL, loss): the quotient needs E and 1 + E, which the second
   pass has before it overwrites them with the log's first stage.  Two loops, not a test of lo
   inside one: a conditional store keeps gcc from vectorising the pass. */
FL_INLINE double fl_residual_one(double x, double yv, double eh, double el, double dh, double dl)
{
    int one = yv == 1.0;
    double q = fl_sigmoid_from_parts(eh, el, dh, dl, one ^ (x < 0));
    return fl_select(one, -q, q - yv);
}

FL_INLINE void fl_loss_residual_loop(const double *FL_RESTRICT z, const double *FL_RESTRICT y, double *FL_RESTRICT lo,
                                     double *FL_RESTRICT ro, ptrdiff_t m, double xmin, fl_stage *FL_RESTRICT w)
{
    fl_stage_exp(z, m, xmin, w);
    if (!lo) {
        for (ptrdiff_t j = 0; j < m; j++) {
            double eh = w->a[j], el = w->b[j], dh, dl;
            fl_one_plus_exp(eh, el, &dh, &dl);
            ro[j] = fl_residual_one(z[j], y[j], eh, el, dh, dl);
        }
        return;
    }
    for (ptrdiff_t j = 0; j < m; j++) {
        double eh = w->a[j], el = w->b[j], dh, dl, f, s, kd, cv;
        fl_one_plus_exp(eh, el, &dh, &dl);
        ro[j] = fl_residual_one(z[j], y[j], eh, el, dh, dl);
        fl_log12_prep(dh, dl, &f, &s, &kd, &cv);
        w->a[j] = f; w->b[j] = s; w->c[j] = kd; w->d[j] = cv;
    }
    for (ptrdiff_t j = 0; j < m; j++)
        lo[j] = fl_loss_one(z[j], y[j], fl_stage_log_finish(w, j));
}

/* Hard labels: only one of the two logs has a non-zero weight, so take just that one, log(a)
   or log(1-a), with the same arguments (and bits) as the soft-label loop.  Staged: the clip
   and the choice of argument (e, d = v, c), the log's first stage, its second. */
FL_INLINE void fl_prob_loss_hard_labels(const double *FL_RESTRICT a, const double *FL_RESTRICT y, double *FL_RESTRICT o,
                                        ptrdiff_t m, double lo, double hi, fl_stage *FL_RESTRICT w)
{
    for (ptrdiff_t j = 0; j < m; j++) {
        double av = a[j];
        int alo = av < lo, ahi = av > hi;
        av = fl_select(alo, lo, fl_select(ahi, hi, av));          /* NaN passes */
        double v = 1.0 - av;
        double c = (1.0 - v) - av;
        int one = y[j] == 1.0;
        w->e[j] = fl_select(one, av, v);
        w->d[j] = fl_select(one, 0.0, c);
    }
    for (ptrdiff_t j = 0; j < m; j++) {
        double f, s, kd, cv;
        fl_logc_prep(w->e[j], w->d[j], &f, &s, &kd, &cv);
        w->a[j] = f; w->b[j] = s; w->c[j] = kd; w->d[j] = cv;
    }
    for (ptrdiff_t j = 0; j < m; j++)
        o[j] = 0.0 - fl_logc_finish(w->e[j], w->a[j], w->b[j], w->c[j], w->d[j]);
}

FL_INLINE void fl_prob_loss_soft_labels(const double *FL_RESTRICT a, const double *FL_RESTRICT y, double *FL_RESTRICT o,
                           ptrdiff_t m, double lo, double hi)
{
    for (ptrdiff_t j = 0; j < m; j++) {
        double av = a[j], yv = y[j];
        int alo = av < lo, ahi = av > hi;
        av = fl_select(alo, lo, fl_select(ahi, hi, av));          /* NaN passes */
        double v = 1.0 - av;
        double c = (1.0 - v) - av;                /* exact error of 1-a (|a| <= 1) */
        double la = fl_log_compensated(av, 0.0);
        double lb = fl_log_compensated(v, c);
        double w = 1.0 - yv;
        /* weight 0 -> term exactly 0: the log is replaced by 0 *before* the multiply, so 0*inf
           (a = 0 or 1 with eps = 0) is never evaluated, not even in a discarded lane (it would
           raise the invalid flag).  fma: one rounding less. */
        double t2 = w * fl_select(w == 0, 0.0, lb);
        double t = fma(yv, fl_select(yv == 0, 0.0, la), t2);
        o[j] = 0.0 - t;                           /* +0 rather than -0 */
    }
}

FL_INLINE void fl_sigmoid_impl(const double *z, double *out, ptrdiff_t n)
{
    double b[FL_BLK];
    fl_stage w;
    const int nt = fl_use_streaming_stores(out, z, z, n);
    const int direct = !nt && fl_disjoint(out, z, z, n);
    FL_BLOCK_LOOP_BEGIN
        double *dst = direct ? out + i0 : b;
        fl_sigmoid_loop(z + i0, dst, m, xmin, &w);
        if (!direct) fl_store(out + i0, b, m, nt);
    }
    fl_store_fence(nt);
}
FL_CLONES(fl_sigmoid, (const double *z, double *out, ptrdiff_t n), (z, out, n))

FL_INLINE void fl_log_sigmoid_impl(const double *z, double *out, ptrdiff_t n)
{
    double b[FL_BLK];
    fl_stage w;
    const int nt = fl_use_streaming_stores(out, z, z, n);
    const int direct = !nt && fl_disjoint(out, z, z, n);
    FL_BLOCK_LOOP_BEGIN
        double *dst = direct ? out + i0 : b;
        fl_log_sigmoid_loop(z + i0, dst, m, xmin, &w);
        if (!direct) fl_store(out + i0, b, m, nt);
    }
    fl_store_fence(nt);
}
FL_CLONES(fl_log_sigmoid, (const double *z, double *out, ptrdiff_t n), (z, out, n))

/* resid = sigma(z) - y; for y == 1 it is -sigma(-z), for y == 0 sigma(z): both are a single
   quotient (E or 1)/(1+E), so no cancellation.  loss may be NULL. */
FL_INLINE void fl_logit_loss_residual_impl(const double *z, const double *y, double *loss,
                                                        double *resid, ptrdiff_t n)
{
    double b[FL_BLK], br[FL_BLK];
    fl_stage w;
    const int nt = loss ? fl_use_streaming_stores(loss, z, y, n) : 0, ntr = fl_use_streaming_stores(resid, z, y, n);
    const int direct = !nt && !ntr && fl_disjoint(resid, z, y, n)
                       && (!loss || (fl_disjoint(loss, z, y, n) && fl_disjoint(loss, resid, resid, n)));
    FL_BLOCK_LOOP_BEGIN
        double *dl = direct ? loss + i0 : b, *dr = direct ? resid + i0 : br;
        fl_loss_residual_loop(z + i0, y + i0, loss ? dl : NULL, dr, m, xmin, &w);
        if (loss && !direct) fl_store(loss + i0, b, m, nt);
        if (!direct) fl_store(resid + i0, br, m, ntr);
    }
    fl_store_fence(nt | ntr);
}
FL_CLONES(fl_logit_loss_residual, (const double *z, const double *y, double *loss, double *resid, ptrdiff_t n), (z, y, loss, resid, n))


/* The Newton pass: loss and residual as fl_logit_loss_residual, plus the curvature of the loss,
   curv = sigma(z) sigma(-z) = E/(1+E)^2 with E = exp(-|z|), formed as the product of the two
   quotients E/(1+E) and 1/(1+E) (each about 0.5 ulp, fl_sigmoid_from_parts): about 1.5 ulp in all, never
   1 - sigma(z) (which cancels for large z) and never a square of a rounded 1+E.  It underflows
   gracefully to 0 for |z| beyond ~745.  Outputs are per-thread scratch, disjoint from the
   inputs (restrict), so no staging buffer is needed; staged in passes as the other loops. */
FL_INLINE void fl_logit_loss_residual_curvature_impl(
    const double *FL_RESTRICT z, const double *FL_RESTRICT y, double *FL_RESTRICT loss,
    double *FL_RESTRICT resid, double *FL_RESTRICT curv, ptrdiff_t n)
{
    fl_stage w;
    FL_BLOCK_LOOP_BEGIN
        const double *zz = z + i0, *yy = y + i0;
        double *lo = loss + i0, *ro = resid + i0, *co = curv + i0;
        fl_stage_exp(zz, m, xmin, &w);
        for (ptrdiff_t j = 0; j < m; j++) {
            double eh = w.a[j], el = w.b[j], dh, dl, f, s, kd, cv;
            fl_one_plus_exp(eh, el, &dh, &dl);
            ro[j] = fl_residual_one(zz[j], yy[j], eh, el, dh, dl);
            co[j] = fl_sigmoid_from_parts(eh, el, dh, dl, 1) * fl_sigmoid_from_parts(eh, el, dh, dl, 0);
            fl_log12_prep(dh, dl, &f, &s, &kd, &cv);
            w.a[j] = f; w.b[j] = s; w.c[j] = kd; w.d[j] = cv;
        }
        for (ptrdiff_t j = 0; j < m; j++)
            lo[j] = fl_loss_one(zz[j], yy[j], fl_stage_log_finish(&w, j));
    }
}
FL_CLONES(fl_logit_loss_residual_curvature, (const double *FL_RESTRICT z, const double *FL_RESTRICT y, double *FL_RESTRICT loss, double *FL_RESTRICT resid, double *FL_RESTRICT curv, ptrdiff_t n), (z, y, loss, resid, curv, n))

/* FL_BLOCK_LOOP_BEGIN stays defined for fl_losses.h, which undefines it. */
#endif /* FL_MATH_H */
