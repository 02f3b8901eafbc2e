/* fl_isa.h -- one build, three instruction sets: the clone machinery of fastlogit's C loops.
 *
 * Every exported loop of fl_math.h, fl_math_f32.h, fl_rows.h and fl_hessian.h is written once
 * and compiled per instruction set by FL_CLONES; the module picks the clone once, at import
 * (fl_isa_select, FASTLOGIT_ISA).  Define FL_NO_DISPATCH for a single build for the compiler's
 * -march.  Why the clones give the same bits: see the comment at FL_CLONES.
 */
#ifndef FL_ISA_H
#define FL_ISA_H

#if !defined(FL_NO_DISPATCH) && defined(__GNUC__) && !defined(__clang__) && (__GNUC__ >= 12) \
    && defined(__x86_64__) && defined(__ELF__) && defined(__linux__)
#define FL_DISPATCH 1
#else
#define FL_DISPATCH 0
#endif

#if defined(__GNUC__)
#define FL_INLINE static inline __attribute__((always_inline))
#define FL_UNUSED __attribute__((unused))
#else
#define FL_INLINE static inline
#define FL_UNUSED
#endif

/* `restrict` is C99; C++ compilers spell it __restrict. */
#if defined(__cplusplus)
#define FL_RESTRICT __restrict
#else
#define FL_RESTRICT restrict
#endif

/* ---- instruction-set clones ----
   Every exported loop is written once, as an always-inline FL_INLINE NAME_impl, and
   FL_CLONES(NAME, ...) compiles it three times: for x86-64-v4 (AVX-512), x86-64-v3 (AVX2+FMA)
   and the x86-64 baseline (SSE2).  NAME calls the clone fl_isa_active names; the module sets
   it once at import (fl_isa_select: the best this CPU runs, or the one FASTLOGIT_ISA forces).
   The clones give the same bits: the kernels are built with -ffp-contract=off (no a*b+c is
   fused behind our back, so no clone rounds differently), every FMA the algorithms want is an
   explicit fma() (an instruction on v3/v4; on the baseline a call to libm's correctly rounded
   software fma: slower, same result), and no loop is reassociated (no -ffast-math), so every
   sum is added in the order the source states, whatever the vector width. */
enum { FL_ISA_BASELINE = 0, FL_ISA_AVX2 = 1, FL_ISA_AVX512 = 2 };
FL_UNUSED static int fl_isa_active = FL_ISA_BASELINE;
FL_UNUSED static const char *const fl_isa_names[3] = {"baseline", "avx2", "avx512"};

#if FL_DISPATCH
#define FL_CLONES(NAME, PARAMS, ARGS) \
    __attribute__((target("arch=x86-64-v4"))) FL_UNUSED static void NAME##_avx512 PARAMS { NAME##_impl ARGS; } \
    __attribute__((target("arch=x86-64-v3"))) FL_UNUSED static void NAME##_avx2 PARAMS { NAME##_impl ARGS; } \
    FL_UNUSED static void NAME##_baseline PARAMS { NAME##_impl ARGS; } \
    FL_UNUSED static void NAME PARAMS \
    { \
        if (fl_isa_active == FL_ISA_AVX512) NAME##_avx512 ARGS; \
        else if (fl_isa_active == FL_ISA_AVX2) NAME##_avx2 ARGS; \
        else NAME##_baseline ARGS; \
    }
#else
#define FL_CLONES(NAME, PARAMS, ARGS) FL_UNUSED static void NAME PARAMS { NAME##_impl ARGS; }
#endif

/* Can this CPU run clone `isa`?  Without dispatch only the one compiled path exists. */
FL_UNUSED static int fl_isa_supported(int isa)
{
#if FL_DISPATCH
    __builtin_cpu_init();
    if (isa == FL_ISA_AVX512) return __builtin_cpu_supports("x86-64-v4");
    if (isa == FL_ISA_AVX2) return __builtin_cpu_supports("x86-64-v3");
    return isa == FL_ISA_BASELINE;
#else
    (void)isa;
    return 0;
#endif
}

/* Select the clone: isa < 0 picks the best this CPU runs.  Returns the clone selected, or -1
   if `isa` cannot run here (the active clone is then left unchanged). */
FL_UNUSED static int fl_isa_select(int isa)
{
    if (isa < 0) {
        isa = fl_isa_supported(FL_ISA_AVX512) ? FL_ISA_AVX512
            : fl_isa_supported(FL_ISA_AVX2) ? FL_ISA_AVX2 : FL_ISA_BASELINE;
    } else if (!fl_isa_supported(isa)) {
        return -1;
    }
    fl_isa_active = isa;
    return isa;
}

/* Name of the clone the kernels run (see fl_isa_select), or of the single compiled path. */
FL_UNUSED static const char *fl_math_isa(void)
{
#if FL_DISPATCH
    return fl_isa_names[fl_isa_active];
#elif defined(__AVX512F__)
    return "avx512 (compile-time, no dispatch)";
#elif defined(__AVX2__) && defined(__FMA__)
    return "avx2+fma (compile-time, no dispatch)";
#elif defined(__x86_64__) || defined(__SSE2__)
    return "sse2/default (no dispatch)";
#else
    return "generic (no dispatch)";
#endif
}

#endif /* FL_ISA_H */
