/* fl_math.h -- scalar math of fastlogit, written once for every kernel.
 *
 * Placeholder implementation on libm; the vectorised, runtime-dispatched
 * version replaces the bodies, never the API.  All arithmetic in double.
 * `out`, `loss` and `resid` may alias `z` exactly (in-place), never partially.
 */
#ifndef FASTLOGIT_FL_MATH_H
#define FASTLOGIT_FL_MATH_H

#include <math.h>
#include <stddef.h>

/* sigma(|z|) and sigma(-|z|) from e = exp(-|z|) <= 1: no overflow anywhere. */
static inline void fl__sig_pair(double z, double *s_pos, double *s_neg)
{
    double e = exp(-fabs(z));
    double p = 1.0 / (1.0 + e);
    double q = e * p;
    *s_pos = (z >= 0) ? p : q;   /* sigma(z)  */
    *s_neg = (z >= 0) ? q : p;   /* sigma(-z) */
}

static void fl_sigmoid(const double *z, double *out, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        double sp, sn;
        fl__sig_pair(z[i], &sp, &sn);
        out[i] = (z[i] != z[i]) ? z[i] : sp;
    }
}

static void fl_log_sigmoid(const double *z, double *out, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        double zi = z[i];
        double m = (zi < 0) ? zi : 0.0;
        out[i] = m - log1p(exp(-fabs(zi)));
    }
}

/* y*softplus(-z) + (1-y)*softplus(z) = L + y*max(-z,0) + (1-y)*max(z,0),
 * L = log1p(exp(-|z|)); a zero weight contributes 0, never 0*inf. */
static inline double fl__logit_loss1(double z, double y)
{
    double L = log1p(exp(-fabs(z)));
    double neg = (z < 0) ? -z : 0.0;
    double pos = (z > 0) ? z : 0.0;
    double t1 = (y == 0.0) ? 0.0 : y * neg;
    double t0 = (y == 1.0) ? 0.0 : (1.0 - y) * pos;
    return (t1 + t0) + L;
}

static void fl_logit_loss(const double *z, const double *y, double *loss, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        loss[i] = fl__logit_loss1(z[i], y[i]);
}

static void fl_logit_loss_residual(const double *z, const double *y, double *loss,
                                   double *resid, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        double zi = z[i], yi = y[i], sp, sn;
        if (loss) loss[i] = fl__logit_loss1(zi, yi);
        fl__sig_pair(zi, &sp, &sn);
        /* y = 1: sigma(z) - 1 = -sigma(-z), exact where 1 - sigma(z) cancels. */
        resid[i] = (yi == 1.0) ? -sn : ((yi == 0.0) ? sp : sp - yi);
    }
}

static void fl_prob_loss(const double *a, const double *y, double eps, double *loss, ptrdiff_t n)
{
    double hi = 1.0 - eps;
    for (ptrdiff_t i = 0; i < n; i++) {
        double ai = a[i], yi = y[i];
        ai = (ai < eps) ? eps : ((ai > hi) ? hi : ai);
        double t1 = (yi == 0.0) ? 0.0 : yi * log(ai);
        double t0 = (yi == 1.0) ? 0.0 : (1.0 - yi) * log1p(-ai);
        loss[i] = -(t1 + t0);
    }
}

static const char *fl_math_isa(void) { return "scalar libm"; }

#endif
