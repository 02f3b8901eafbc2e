"""Why cost_and_gradients' fused sweep costs ~1.3x a read of X on wide rows: its variants, timed.

    python benchmarks/fused_sweep.py [--m 20000] [--n 500] [--sub 1 2 4 6 16] [--prefetch 0 2048 8192]

Compiles a C driver against this checkout's fastlogit/src/fl_rows.h (AVX2, as the clone this
machine runs; needs gcc) and times, interleaved, ns per row over an X of m x n float64 on
huge pages: the scores alone (fl_rows_scores_c), the scores of 4 rows per sweep, the fused
sweep as shipped (fl_rows_gradient_scores_c: gradient of sub-block s from cache + scores of
sub-block s+1 from memory), a fused sweep of 4 old and 4 new rows, and the gradient alone
(fl_rows_gradient_c, 4 rows per sweep).  Medians and minima of 15 trials.  Not shipped
code: the variants exist only here, to show that no shape of the sweep reaches the speed of
a single read (docs/performance.md, "The block fold and a fit's first pass").
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/mman.h>
#define FL_NO_DISPATCH 1
#include "fl_rows.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
/* The dots of 4 rows d0..d3 in one sweep over j, each row with its own 8 lanes and tail
   (the order of fl_rows_scores_c: same bits). */
#define DOT4_BEGIN \
    fl_v4d a0={0},a1={0},b0={0},b1={0},c0={0},c1={0},e0={0},e1={0}; ptrdiff_t j=0; \
    for(;j<n8;j+=8){ \
      fl_v4d wa=fl_load4_f64(w+j), wb=fl_load4_f64(w+j+4); \
      a0+=fl_load4_f64(d0+j)*wa; a1+=fl_load4_f64(d0+j+4)*wb; \
      b0+=fl_load4_f64(d1+j)*wa; b1+=fl_load4_f64(d1+j+4)*wb; \
      c0+=fl_load4_f64(d2+j)*wa; c1+=fl_load4_f64(d2+j+4)*wb; \
      e0+=fl_load4_f64(d3+j)*wa; e1+=fl_load4_f64(d3+j+4)*wb;
#define DOT4_END(TAIL) \
    } \
    double t0=0,t1=0,t2=0,t3=0; \
    for(;j<n;j++){t0+=d0[j]*w[j];t1+=d1[j]*w[j];t2+=d2[j]*w[j];t3+=d3[j]*w[j]; TAIL} \
    z[i]=(fl_sum_lanes_v4(a0,a1)+t0)+b; z[i+1]=(fl_sum_lanes_v4(b0,b1)+t1)+b; \
    z[i+2]=(fl_sum_lanes_v4(c0,c1)+t2)+b; z[i+3]=(fl_sum_lanes_v4(e0,e1)+t3)+b;
/* scores of 4 rows per sweep */
static void scores4(const double *X, ptrdiff_t rs, ptrdiff_t n, const double *w, double b, ptrdiff_t k, double *z){
  const ptrdiff_t n8 = n - n % 8; ptrdiff_t i=0;
  for(;i+4<=k;i+=4){
    const double *d0=X+i*rs,*d1=d0+rs,*d2=d1+rs,*d3=d2+rs;
    DOT4_BEGIN
    DOT4_END()
  }
  if(i<k) fl_rows_scores_c_f64(X+i*rs,rs,n,w,b,k-i,z+i);
}
/* fused: gradient of 4 old rows (g[j] gets them in row order) + scores of 4 new rows per sweep */
static void fused44(const double *Xg, const double *r, ptrdiff_t kg, const double *Xd, const double *w, double b, ptrdiff_t kd, double *z, ptrdiff_t rs, ptrdiff_t n, double *FL_RESTRICT g){
  const ptrdiff_t n8 = n - n % 8; ptrdiff_t i=0;
  for(;i+4<=kg && i+4<=kd;i+=4){
    const double *d0=Xd+i*rs,*d1=d0+rs,*d2=d1+rs,*d3=d2+rs;
    const double *x0=Xg+i*rs,*x1=x0+rs,*x2=x1+rs,*x3=x2+rs;
    double r0=r[i],r1=r[i+1],r2=r[i+2],r3=r[i+3];
    DOT4_BEGIN
      fl_v4d ga=fl_load4_f64(g+j), gb=fl_load4_f64(g+j+4);
      ga=(((ga+r0*fl_load4_f64(x0+j))+r1*fl_load4_f64(x1+j))+r2*fl_load4_f64(x2+j))+r3*fl_load4_f64(x3+j);
      gb=(((gb+r0*fl_load4_f64(x0+j+4))+r1*fl_load4_f64(x1+j+4))+r2*fl_load4_f64(x2+j+4))+r3*fl_load4_f64(x3+j+4);
      memcpy(g+j,&ga,32); memcpy(g+j+4,&gb,32);
    DOT4_END(g[j]=(((g[j]+r0*x0[j])+r1*x1[j])+r2*x2[j])+r3*x3[j];)
  }
  if(i<kg) fl_rows_gradient_c_f64(Xg+i*rs,rs,n,r+i,kg-i,g);
  if(i<kd) fl_rows_scores_c_f64(Xd+i*rs,rs,n,w,b,kd-i,z+i);
}
int main(int argc,char**argv){
  ptrdiff_t n=atoi(argv[3]), m=atoi(argv[1]); int reps=atoi(argv[2]); ptrdiff_t sub=atoi(argv[4]);
  char *raw=aligned_alloc(1<<21,m*n*8+(1<<21)); madvise(raw,m*n*8+(1<<21),MADV_HUGEPAGE); double *X=(double*)(raw+16);
  double *w=malloc(n*8), *g=calloc(n,8), *z=malloc(m*8), *r=malloc(m*8);
  for(ptrdiff_t i=0;i<m*n;i++) X[i]=(double)rand()/RAND_MAX-0.5;
  for(int j=0;j<n;j++) w[j]=0.01*j;
  for(ptrdiff_t i=0;i<m;i++) r[i]=0.1;
  const char *names[]={"scores","scores4","fused(cur)","fused44","grad4rows"};
  double tm[5][40]; int NT=15;
  for(int t=0;t<NT;t++) for(int v=0; v<5; v++){
      double t0=now();
      for(int q=0;q<reps;q++){
        if(v==0) fl_rows_scores_c_f64(X,n,n,w,0.1,m,z);
        else if(v==1) scores4(X,n,n,w,0.1,m,z);
        else if(v==2){ for(ptrdiff_t s=0;s<m;s+=sub){ ptrdiff_t ks=m-s<sub?m-s:sub; ptrdiff_t s1=s+ks, kn = m-s1<sub?m-s1:sub; fl_rows_gradient_scores_c_f64(X+s*n,r+s,ks,X+s1*n,w,0.1,kn,z+s1,n,n,g);} }
        else if(v==3){ for(ptrdiff_t s=0;s<m;s+=sub){ ptrdiff_t ks=m-s<sub?m-s:sub; ptrdiff_t s1=s+ks, kn = m-s1<sub?m-s1:sub; fused44(X+s*n,r+s,ks,X+s1*n,w,0.1,kn,z+s1,n,n,g);} }
        else if(v==4){ fl_rows_gradient_c_f64(X,n,n,r,m,g); }
      }
      tm[v][t]=(now()-t0)/reps/m*1e9;
  }
  for(int v=0;v<5;v++){ double *a=tm[v]; for(int i=0;i<NT;i++)for(int j=i+1;j<NT;j++) if(a[j]<a[i]){double x=a[i];a[i]=a[j];a[j]=x;}
    printf("m=%td n=%td %-12s median %.1f min %.1f ns/row\n", m, n, names[v], a[NT/2], a[0]); }
  printf("%g\n", g[3]+z[5]);
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=20000, help="rows of X (default 2e4: 80 MB at n = 500)")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--reps", type=int, default=10, help="sweeps of X per trial")
    parser.add_argument("--sub", type=int, nargs="+", default=[6], help="rows per sub-block")
    parser.add_argument("--prefetch", type=int, nargs="+", default=[2048],
                        help="bytes the shipped sweep prefetches ahead (FL_ROWS_PF)")
    args = parser.parse_args()
    src_dir = Path(__file__).resolve().parent.parent / "fastlogit" / "src"
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "fused_sweep.c"
        source.write_text(SOURCE)
        for pf in args.prefetch:
            exe = Path(tmp) / f"fused_sweep_{pf}"
            subprocess.run(["gcc", "-O3", "-fno-math-errno", "-ffp-contract=off", "-march=x86-64-v3",
                            "-Wno-psabi", f"-DFL_ROWS_PF={pf}", f"-I{src_dir}", str(source), "-o", str(exe),
                            "-lm"], check=True)
            for sub in args.sub:
                print(f"prefetch {pf} B, sub-blocks of {sub} rows:")
                out = subprocess.run([str(exe), str(args.m), str(args.reps), str(args.n), str(sub)],
                                     capture_output=True, text=True, check=True).stdout
                print("".join(f"  {line}\n" for line in out.splitlines()[:-1]), end="")


if __name__ == "__main__":
    main()
