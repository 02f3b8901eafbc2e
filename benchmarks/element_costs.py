"""Per-element cost of the fl_math.h kernels, cache-resident: ns per element.

    python benchmarks/element_costs.py                    # this checkout
    python benchmarks/element_costs.py --old OLD_CHECKOUT # and a checkout from before issue 11
    python benchmarks/element_costs.py --plain            # and the float64 sigmoid without its corrections

Compiles a small C driver against each checkout's fastlogit/src/fl_math.h and fl_math_f32.h (-DOLD for
the old one, whose loss kernels wrote per-example losses that Cython then summed
pairwise), runs them alternately (--runs times), and prints the minimum per kernel: 2048
elements, minimum over 60 interleaved trials, the clone this CPU runs best.  The minimum
is what a shared, noisy machine distorts least.  Needs gcc.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["-O3", "-fno-math-errno", "-ffp-contract=off"]
SOURCE = r"""
#ifdef OLD
#include "fl_math.h"
#else
#include "fl_math_f32.h"     /* includes fl_math.h */
#endif
#include <stdlib.h>
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+1e-9*t.tv_nsec;}
/* min over trials of ns/element; variants interleaved */
#define NV 16
static double best[NV]; static const char *names[NV]; static int nv;
#define TIME(idx, name, reps, n, stmt) do { names[idx]=name; if(idx>=nv) nv=idx+1; double t0=now(); for(long r_=0;r_<(reps);r_++){stmt;} double e=(now()-t0)*1e9/((reps)*(double)(n)); if(best[idx]==0||e<best[idx]) best[idx]=e; } while(0)
static void report(void){ for(int i=0;i<nv;i++) printf("%-14s %.3f ns/elem\n",names[i],best[i]); }
#ifdef OLD
static double pairwise(const double *v, ptrdiff_t k){
  if (k<=16){double s=0; for(ptrdiff_t i=0;i<k;i++) s+=v[i]; return s;}
  ptrdiff_t h=k/2; return pairwise(v,h)+pairwise(v+h,k-h);}
static void lsum(const double *z,const double *y,ptrdiff_t n,double *s){ double lv[512]; double t=0; for(ptrdiff_t i=0;i<n;i+=512){ fl_logit_loss(z+i,y+i,lv,512); t+=pairwise(lv,512);} *s=t;}
static void psum(const double *a,const double *y,ptrdiff_t n,double *s){ double lv[512]; double t=0; for(ptrdiff_t i=0;i<n;i+=512){ fl_prob_loss(a+i,y+i,2.2e-16,lv,512); t+=pairwise(lv,512);} *s=t;}
static void psum32(const float *a,const float *y,ptrdiff_t n,double *s){ double ab[512], yb[512], lv[512]; double t=0; for(ptrdiff_t i=0;i<n;i+=512){ for(int j=0;j<512;j++){ab[j]=a[i+j]; yb[j]=y[i+j];} fl_prob_loss(ab,yb,0x1p-23,lv,512); t+=pairwise(lv,512);} *s=t;}
static void lsum32(const float *z,const float *y,ptrdiff_t n,double *s){ double zb[512], yb[512], lv[512]; double t=0; for(ptrdiff_t i=0;i<n;i+=512){ for(int j=0;j<512;j++){zb[j]=z[i+j]; yb[j]=y[i+j];} fl_logit_loss(zb,yb,lv,512); t+=pairwise(lv,512);} *s=t;}
static void fwd32(const double *z, float *o, ptrdiff_t n){ double b[512]; for(ptrdiff_t i=0;i<n;i+=512){ fl_sigmoid(z+i,b,512); for(int j=0;j<512;j++) o[i+j]=(float)b[j];}}
#else
static double cnt[2];
static void lsum(const double *z,const double *y,ptrdiff_t n,double *s){ double t=0,b; for(ptrdiff_t i=0;i<n;i+=512){ fl_logit_loss_total(z+i,y+i,512,1.0,&b,cnt); t+=b;} *s=t;}
static void psum(const double *a,const double *y,ptrdiff_t n,double *s){ double t=0,b; for(ptrdiff_t i=0;i<n;i+=512){ fl_prob_loss_total(a+i,y+i,2.2e-16,512,1.0,&b,cnt); t+=b;} *s=t;}
static void lsum32(const float *z,const float *y,ptrdiff_t n,double *s){ double t=0,b; for(ptrdiff_t i=0;i<n;i+=512){ fl_logit_loss_total_f32(z+i,y+i,512,1.0,&b,cnt); t+=b;} *s=t;}
static void psum32(const float *a,const float *y,ptrdiff_t n,double *s){ double t=0,b; for(ptrdiff_t i=0;i<n;i+=512){ fl_prob_loss_total_f32(a+i,y+i,0x1p-23,512,1.0,&b,cnt); t+=b;} *s=t;}
static void fwd32(const double *z, float *o, ptrdiff_t n){ fl_sigmoid_to_f32(z,o,n);}
/* Not shipped (--plain): the float64 sigmoid without the corrections that keep its bound of
   1 ulp, to show what they cost: E from the exp's polynomial rounded once (no double-double
   part), one division (no corrected quotient).  (compute_cost has its uncorrected twin
   shipped: the float32 path, which drops log1p(-a)'s correction and the subnormal scaling
   where they cannot change a bit; for float64 a the correction is what keeps small a exact.) */
static inline double exp_plain(double x){
  double xc=fl_select(x < -745.2, -745.2, x), t=fma(xc,FL_LOG2E,FL_SHIFT), kd=t-FL_SHIFT;
  double r=fma(-kd,FL_LN2LO,fma(-kd,FL_LN2HI,xc)), r2=r*r, r4=r2*r2;
  double e=1.0+fma(r2,fl_exp_poly(r,r2,r4),r);
  return (e*fl_double_from_bits((fl_bits_of(t)<<52)+((uint64_t)(1023+128)<<52)))*FL_EUNSCALE;}
FL_INLINE void sigmoid_plain_impl(const double *FL_RESTRICT z, double *FL_RESTRICT o, ptrdiff_t n){
  for(ptrdiff_t j=0;j<n;j++){ double E=exp_plain(-fabs(z[j])); o[j]=fl_select(z[j]<0,E,1.0)/(1.0+E);} }
FL_CLONES(sigmoid_plain, (const double *FL_RESTRICT z, double *FL_RESTRICT o, ptrdiff_t n), (z, o, n))
/* called through a volatile pointer: the compiler sees its body and would hoist the repeats */
static void (*volatile sigmoid_plain_p)(const double *, double *, ptrdiff_t) = sigmoid_plain;
#endif
#ifdef LIB
void lib_init(void){ fl_isa_select(-1); }      /* the kernels are static: exported twins */
void lib_sigmoid(const double *z, double *o, ptrdiff_t n){ fl_sigmoid(z,o,n); }
void lib_sigmoid_plain(const double *z, double *o, ptrdiff_t n){ sigmoid_plain(z,o,n); }
#else
int main(){
  fl_isa_select(-1);
  ptrdiff_t n=2048; double *z=malloc(n*8),*y=malloc(n*8),*a=malloc(n*8),*lv=malloc(n*8),*rv=malloc(n*8),*cv=malloc(n*8); float *zf=malloc(n*4),*yf=malloc(n*4),*of=malloc(n*4),*af=malloc(n*4); double s;
  srand(1); for(ptrdiff_t i=0;i<n;i++){z[i]=((rand()/(double)RAND_MAX)-0.5)*40; y[i]=rand()&1; zf[i]=z[i]; yf[i]=y[i];}
  fl_sigmoid(z,a,n); for(ptrdiff_t i=0;i<n;i++) af[i]=(float)a[i];
  for(int rep=0;rep<60;rep++){
    TIME(0,"cost_from_logits f64 (loss+sum)",100,n,lsum(z,y,n,&s));
    TIME(1,"compute_cost f64 (loss+sum)",100,n,psum(a,y,n,&s));
    TIME(2,"cost_from_logits f32 (loss+sum)",100,n,lsum32(zf,yf,n,&s));
    TIME(3,"sigmoid f64",100,n,fl_sigmoid(z,lv,n));
    TIME(4,"sigmoid f32",100,n,fl_sigmoid_f32(zf,of,n));
    TIME(5,"log_sigmoid f64",100,n,fl_log_sigmoid(z,lv,n));
    TIME(6,"log_sigmoid f32",100,n,fl_log_sigmoid_f32(zf,of,n));
    TIME(7,"loss+residual f64",100,n,fl_logit_loss_residual(z,y,lv,rv,n));
    TIME(8,"loss+resid+curv f64",100,n,fl_logit_loss_residual_curvature(z,y,lv,rv,cv,n));
    TIME(9,"forward f64 z -> f32",100,n,fwd32(z,of,n));
    TIME(10,"compute_cost f32 (loss+sum)",100,n,psum32(af,yf,n,&s));
#ifdef PLAIN
    TIME(11,"sigmoid f64, no corrections",100,n,sigmoid_plain_p(z,lv,n));
#endif
  }
  for(int i=0;i<nv;i++) printf("%-34s %.3f\n",names[i],best[i]);
}
#endif
"""


def build(checkout: Path, old: bool, tmp: Path, plain: bool = False, lib: bool = False) -> Path:
    src = tmp / "element_costs.c"
    src.write_text(SOURCE)
    exe = tmp / ("ec_old" if old else "ec_lib.so" if lib else "ec_new")
    defines = ["-DOLD"] * old + ["-DPLAIN"] * plain + ["-DLIB", "-shared", "-fPIC"] * lib
    subprocess.run(["gcc", *FLAGS, *defines, f"-I{checkout / 'fastlogit' / 'src'}",
                    str(src), "-o", str(exe), "-lm"], check=True)
    return exe


def plain_errors(lib_path: Path) -> None:
    """Worst error, in ulps of the exact value (mpmath), of the uncorrected sigmoid on 10^6
    arguments: the 200 where it differs most from the shipped kernel are checked."""
    import ctypes

    import mpmath
    import numpy as np

    lib = ctypes.CDLL(str(lib_path))
    dp = ctypes.POINTER(ctypes.c_double)
    ptr = lambda v: v.ctypes.data_as(dp)                    # noqa: E731
    lib.lib_init()
    rng = np.random.default_rng(0)
    mpmath.mp.prec = 200

    def ulps(got, exact):
        return float(abs(mpmath.mpf(float(got)) - exact) / mpmath.mpf(float(np.spacing(float(exact)))))

    z = np.concatenate([rng.uniform(-2, 2, 400_000), rng.uniform(-40, 40, 400_000),
                        -np.exp(rng.uniform(0, np.log(745), 200_000))])
    plain, shipped = np.empty_like(z), np.empty_like(z)
    lib.lib_sigmoid_plain(ptr(z), ptr(plain), ctypes.c_ssize_t(z.size))
    lib.lib_sigmoid(ptr(z), ptr(shipped), ctypes.c_ssize_t(z.size))
    worst = max(ulps(plain[i], 1 / (1 + mpmath.exp(-mpmath.mpf(float(z[i])))))
                for i in np.argsort(np.abs(plain - shipped) / np.spacing(np.abs(shipped)))[-200:])
    print(f"{'sigmoid f64, no corrections':34s} worst {worst:.3f} ulp (bound of the shipped kernel: 1)")


def run(exe: Path) -> dict[str, float]:
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return {line[:34].strip(): float(line[34:]) for line in out.splitlines() if line.strip()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", type=Path, help="a checkout from before issue 11 (f7ee0c0 or older)")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--plain", action="store_true",
                   help="also time (and check with mpmath) the float64 sigmoid without its corrections")
    args = p.parse_args()
    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        exes = {"new": build(here, False, tmp, plain=args.plain)}
        if args.plain:
            plain_errors(build(here, False, tmp, lib=True))
        if args.old:
            exes["old"] = build(args.old.resolve(), True, tmp)
        best: dict[str, dict[str, float]] = {k: {} for k in exes}
        for _ in range(args.runs):
            for name in ("old", "new"):
                if name in exes:
                    for k, v in run(exes[name]).items():
                        best[name][k] = min(v, best[name].get(k, v))
    print(f"ns per element, best of {args.runs} runs" + (" (old | new | old/new)" if args.old else ""))
    for k, v in best["new"].items():
        if args.old:
            o = best["old"][k]
            print(f"{k:34s} {o:7.3f} | {v:7.3f} | {o / v:5.2f}x")
        else:
            print(f"{k:34s} {v:7.3f}")


if __name__ == "__main__":
    main()
