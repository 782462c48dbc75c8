/*
 * The body of every instruction-set variant: fsm_isa_<name>.c defines
 * FSM_ISA (a name token) and FSM_VEC_BYTES, sets the compiler target, and
 * includes this file, which instantiates the row kernels for float and double
 * and exports them as the table fsm_table_<name>.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>   /* fsm_rows.inc: vmax, widen */
#endif

/* What the variant's target (set by its fsm_isa_<name>.c) guarantees on x86,
 * for the kernels' x86 paths: Clang's target attribute, unlike GCC's pragma,
 * does not define __AVX512F__, __AVX__, __F16C__ or __FMA__, and testing
 * those left a Clang build on the generic fallbacks (scalar masked loads and
 * stores: rows of 10 1.6-2.3x as long). */
#if defined(__x86_64__) && FSM_VEC_BYTES == 64
#define FSM_X86_AVX512 1        /* AVX-512F, AVX2, FMA, F16C */
#elif defined(__x86_64__) && FSM_VEC_BYTES == 32
#define FSM_X86_AVX2 1          /* AVX2, FMA, F16C */
#endif
/* Whether the target has fused multiply-add, to which a * b + c contracts. */
#if defined(FSM_X86_AVX512) || defined(FSM_X86_AVX2) || defined(__FMA__) || defined(__FP_FAST_FMA) || \
    defined(__ARM_FEATURE_FMA)
#define FSM_HAS_FMA 1
#endif

#include "fsm_dd.h"
#include "fsm_half.h"
#include "fsm_kernels.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"  /* wide vectors only cross static inline calls */
#endif

#define FSM_ALWAYS_INLINE static inline __attribute__((always_inline))

#define FSM_GLUE_(a, b) a##_##b
#define FSM_GLUE(a, b) FSM_GLUE_(a, b)

#define FSM_DOUBLE 0
#define FSM_SFX FSM_GLUE(f32, FSM_ISA)
#include "fsm_rows.inc"     /* softmax, log_softmax, logsumexp */
#include "fsm_ml.inc"       /* backward passes, cross-entropy */
#include "fsm_template_end.inc"
#undef FSM_DOUBLE
#undef FSM_SFX

#define FSM_DOUBLE 1
#define FSM_SFX FSM_GLUE(f64, FSM_ISA)
#include "fsm_rows.inc"     /* softmax, log_softmax, logsumexp */
#include "fsm_ml.inc"       /* backward passes, cross-entropy */
#include "fsm_template_end.inc"
#undef FSM_DOUBLE
#undef FSM_SFX

#define FSM_STR_(a) #a
#define FSM_STR(a) FSM_STR_(a)
#define FSM_BOTH(op) {FSM_GLUE(op, FSM_GLUE(f32, FSM_ISA)), FSM_GLUE(op, FSM_GLUE(f64, FSM_ISA))}

const fsm_isa_table FSM_GLUE(fsm_table, FSM_ISA) = {
    FSM_STR(FSM_ISA),
    FSM_BOTH(softmax_rows),
    FSM_BOTH(log_softmax_rows),
    FSM_BOTH(logsumexp_rows),
    FSM_BOTH(softmax_backward_rows),
    FSM_BOTH(log_softmax_backward_rows),
    FSM_BOTH(cross_entropy_rows),
    FSM_BOTH(long_row),
};
