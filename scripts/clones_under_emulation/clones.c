/* Every clone of every fastlogit C kernel on the same inputs; a hash of each kernel's output
   bytes per clone.  Runs natively and as /init of an initramfs under an emulated AVX-512 CPU. */
#include "fl_math_f32.h"
#include "fl_rows.h"
#include "fl_hessian.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <termios.h>

#define N 20000
static uint64_t lcg = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) { lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL; return lcg ^ (lcg >> 29); }
static double unif(void) { return (rnd() >> 11) * 0x1p-53; }
static uint64_t hash(const void *p, size_t n, uint64_t h)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) { h ^= c[i]; h *= 0x100000001b3ULL; }
    return h;
}

static double z[N], y[N], a[N], o1[N], o2[N], o3[N], yc[N], ac[N], zc[N];
static float zf[N], yf[N], af[N], of[N], ycf[N], acf[N], zcf[N];
/* NaN sign and payload are not part of the contract (IEEE 754 leaves them open, NumPy's
   comparisons treat every NaN alike): hashed as one canonical NaN, and counted apart. */
static int nan_bits_differ;
static const void *canon_d(const double *p, size_t n, double *buf)
{ for (size_t i = 0; i < n; i++) buf[i] = isnan(p[i]) ? __builtin_nan("") : p[i]; return buf; }
static const void *canon_f(const float *p, size_t n, float *buf)
{ for (size_t i = 0; i < n; i++) buf[i] = isnan(p[i]) ? __builtin_nanf("") : p[i]; return buf; }
static double cbuf[N]; static float cbuff[N];
#define RM 67
#define RN 37
static double X[RM * RN], w[RN], r[RM], g[RN], zz[RM], acc[RN], comp[RN];
static float Xf[RM * RN];
#define HK 50
#define HN 13
#define HLD 16   /* HN + 1 rounded up to FLN_V */
static double P[HK * HLD], S[HK * 18], H[18 * HLD], hv[HK];

static void inputs(void)
{
    static const double special[] = {0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1e-300, -1e-300, 4.9e-324, -4.9e-324,
        2.2250738585072014e-308, -2.2250738585072014e-308, 36.7, -36.7, 40.0, -40.0, 709.78, -709.78,
        708.4, -708.4, 745.13, -745.13, 745.14, -745.14, 760.0, -760.0, 1e308, -1e308, 1.0 / 0.0, -1.0 / 0.0,
        0.0 / 0.0, 110.0, -110.0, 0.32753062152997264, -0.32753062152997264, 688.64, -688.64, 0.381, -0.381};
    int ns = (int)(sizeof special / sizeof special[0]);
    for (int i = 0; i < N; i++) {
        double v;
        int kind = i % 5;
        if (i < ns) v = special[i];
        else if (kind == 0) v = (unif() - 0.5) * 80.0;
        else if (kind == 1) v = (unif() - 0.5) * 4.0;
        else if (kind == 2) v = (rnd() & 1 ? 1 : -1) * exp(unif() * log(800.0));
        else if (kind == 3) { uint64_t b = rnd(); memcpy(&v, &b, 8); if (!(fabs(v) <= 1e308)) v = 1.5; }
        else v = (rnd() & 1 ? 1 : -1) * exp(-unif() * 745.0);
        z[i] = v;
        int lk = (int)(rnd() % 10);
        y[i] = lk < 4 ? 0.0 : lk < 8 ? 1.0 : lk == 8 ? unif() : (rnd() & 1 ? 2.0 : 0.0 / 0.0);
        zf[i] = (float)v;
        yf[i] = (float)y[i];
        yc[i] = lk < 5 ? 0.0 : lk < 9 ? 1.0 : unif();    /* clean labels: finite sums */
        ycf[i] = (float)yc[i];
        zc[i] = fabs(v) <= 800.0 ? v : 3.0;                  /* clean logits: finite sums */
        zcf[i] = (float)zc[i];
    }
    fl_isa_select(FL_ISA_BASELINE);
    fl_sigmoid(z, a, N);
    static const double pa[] = {0.0, 1.0, 1e-300, 1.0 - 1e-16, 0.0 / 0.0, 1.5, -0.25, 4.9e-324, 0.5};
    for (int i = 0; i < (int)(sizeof pa / sizeof pa[0]); i++) a[i * 7] = pa[i];
    for (int i = 0; i < N; i++) {
        af[i] = (float)a[i];
        ac[i] = isnan(a[i]) || a[i] < 0 || a[i] > 1 ? 0.25 : a[i];   /* clean probabilities */
        acf[i] = (float)ac[i];
    }
    for (int i = 0; i < RM * RN; i++) { X[i] = (unif() - 0.5) * exp((unif() - 0.5) * 20); Xf[i] = (float)X[i]; }
    for (int j = 0; j < RN; j++) w[j] = unif() - 0.5;
    for (int i = 0; i < RM; i++) r[i] = unif() - 0.5;
    for (int i = 0; i < HK; i++) hv[i] = unif() * 0.25;
}

#define NK 32
static const char *names[NK];
static uint64_t hashes[3][NK];

static void run(int isa)
{
    int k = 0;
    double sum, counts[2];
#define REC(name, ptr, bytes) do { names[k] = name; hashes[isa][k++] = hash(ptr, bytes, 0xcbf29ce484222325ULL); } while (0)
#define RECD(name, p) REC(name, canon_d(p, N, cbuf), sizeof cbuf)
#define RECF(name, p) REC(name, canon_f(p, N, cbuff), sizeof cbuff)
    fl_sigmoid(z, o1, N); RECD("sigmoid", o1);
    fl_log_sigmoid(z, o1, N); RECD("log_sigmoid", o1);
    fl_logit_loss_residual(z, y, o1, o2, N); RECD("loss", o1); RECD("residual", o2);
    fl_logit_loss_residual(z, y, NULL, o2, N); RECD("residual only", o2);
    fl_logit_loss_residual_curvature(z, y, o1, o2, o3, N); RECD("newton: loss", o1);
    RECD("newton: residual", o2); RECD("newton: curvature", o3);
    counts[0] = counts[1] = 0; fl_logit_loss_total(zc, yc, N, 0.5, &sum, counts);
    o1[0] = sum; o1[1] = counts[0]; REC("cost_from_logits sum", o1, 16);
    if (isa == 0) printf("FASTLOGIT-CLONES info: cost_from_logits sum %.17g\n", sum);
    double eps[3] = {2.220446049250313e-16, 0.0, 0x1p-23};
    for (int e = 0; e < 3; e++) {
        counts[0] = counts[1] = 0; fl_prob_loss_total(ac, yc, eps[e], N, 1.0, &sum, counts);
        o1[3 * e] = sum; o1[3 * e + 1] = counts[0]; o1[3 * e + 2] = counts[1];
    }
    REC("compute_cost sums", o1, 72);
    counts[0] = counts[1] = 0; fl_prob_loss_total(a, y, 1e-12, N, 1.0, &sum, counts);
    o1[0] = counts[0]; o1[1] = counts[1]; o1[2] = isnan(sum); REC("bad labels/values counted", o1, 24);
    fl_sum(a, N, &sum); REC("fl_sum", &sum, 8);
    fl_sigmoid_f32(zf, of, N); RECF("sigmoid f32", of);
    fl_log_sigmoid_f32(zf, of, N); RECF("log_sigmoid f32", of);
    fl_sigmoid_to_f32(z, of, N); RECF("forward f64 -> f32", of);
    counts[0] = counts[1] = 0; fl_logit_loss_total_f32(zcf, ycf, N, 1.0, &sum, counts);
    o1[0] = sum; o1[1] = counts[0]; REC("cost_from_logits f32", o1, 16);
    for (int e = 0; e < 3; e++) {
        counts[0] = counts[1] = 0; fl_prob_loss_total_f32(acf, ycf, eps[e], N, 1.0, &sum, counts);
        o1[3 * e] = sum; o1[3 * e + 1] = counts[0]; o1[3 * e + 2] = counts[1];
    }
    REC("compute_cost f32", o1, 72);
    /* row kernels: C and F order, float64 and float32, widths 3, 8, 37 */
    uint64_t hr = 0xcbf29ce484222325ULL;
    static const int widths[] = {1, 3, 8, 9, 37};
    for (int q = 0; q < 5; q++) {
        int n = widths[q];
        fl_rows_scores_c_f64(X, RN, n, w, 0.25, RM, zz); hr = hash(zz, sizeof zz, hr);
        fl_rows_scores_c_f32(Xf, RN, n, w, 0.25, RM, zz); hr = hash(zz, sizeof zz, hr);
        fl_rows_scores_f_f64(X, RM, n, w, 0.25, RM, zz); hr = hash(zz, sizeof zz, hr);
        fl_rows_scores_f_f32(Xf, RM, n, w, 0.25, RM, zz); hr = hash(zz, sizeof zz, hr);
    }
    REC("row scores", &hr, 8);
    hr = 0xcbf29ce484222325ULL;
    for (int q = 0; q < 5; q++) {
        int n = widths[q];
        memset(g, 0, sizeof g); fl_rows_gradient_c_f64(X, RN, n, r, RM, g); hr = hash(g, sizeof g, hr);
        memset(g, 0, sizeof g); fl_rows_gradient_c_f32(Xf, RN, n, r, RM, g); hr = hash(g, sizeof g, hr);
        memset(g, 0, sizeof g); fl_rows_gradient_f_f64(X, RM, n, r, RM, g); hr = hash(g, sizeof g, hr);
        memset(g, 0, sizeof g); fl_rows_gradient_f_f32(Xf, RM, n, r, RM, g); hr = hash(g, sizeof g, hr);
        memset(g, 0, sizeof g);
        fl_rows_gradient_scores_c_f64(X, r, 30, X + 30 * RN, w, 0.25, 31, zz, RN, n, g);
        hr = hash(g, sizeof g, hr); hr = hash(zz, 31 * 8, hr);
        memset(g, 0, sizeof g);
        fl_rows_gradient_scores_c_f32(Xf, r, 30, Xf + 30 * RN, w, 0.25, 31, zz, RN, n, g);
        hr = hash(g, sizeof g, hr); hr = hash(zz, 31 * 8, hr);
    }
    REC("row gradients (+fused)", &hr, 8);
    memset(acc, 0, sizeof acc); memset(comp, 0, sizeof comp);
    for (int i = 0; i < RM; i++) fl_neumaier_add(acc, comp, X + i * RN, RN);
    REC("neumaier fold", acc, sizeof acc); REC("neumaier comp", comp, sizeof comp);
    memset(H, 0, sizeof H);
    fln_pack_d(X, RN, 1, HN, HK, hv, HLD, P, S); fln_syrk_upper(S, P, HK, HLD, H);
    fln_pack_f(Xf, 1, RM, HN, HK, hv, HLD, P, S); fln_syrk_upper(S, P, HK, HLD, H);
    REC("hessian pack+syrk", H, sizeof H);
#undef REC
}

int main(void)
{
    if (getpid() == 1) {                 /* /init of the initramfs: a console, then power off */
        mkdir("/dev", 0755);
        mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
        int fd = open("/dev/console", O_RDWR);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
    }
    inputs();
    int ran[3] = {0, 0, 0};
    for (int isa = 0; isa < 3; isa++) {
        if (fl_isa_select(isa) != isa) continue;
        ran[isa] = 1;
        run(isa);
    }
    printf("FASTLOGIT-CLONES clones run: baseline %d avx2 %d avx512 %d\n", ran[0], ran[1], ran[2]);
    int differ = 0;
    for (int k = 0; k < NK && names[k]; k++) {
        printf("FASTLOGIT-CLONES %-24s", names[k]);
        for (int isa = 0; isa < 3; isa++)
            if (ran[isa]) printf(" %016llx", (unsigned long long)hashes[isa][k]);
        int same = 1;
        for (int isa = 1; isa < 3; isa++) if (ran[isa] && hashes[isa][k] != hashes[0][k]) same = 0;
        differ += !same;
        printf(" %s\n", same ? "same" : "DIFFER");
    }
    printf("FASTLOGIT-CLONES done: %d kernel(s) differ between clones\n", differ);
    fflush(stdout);
    if (getpid() == 1) { tcdrain(1); sleep(3); sync(); reboot(RB_POWER_OFF); }
    return differ != 0;
}
