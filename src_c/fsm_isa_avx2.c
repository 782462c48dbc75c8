/* AVX2 + FMA (+ F16C) variant (Haswell, Zen and later).
 * Compiled with a per-file target, chosen at run time by fsm_dispatch.c. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif
#define FSM_ISA avx2
#define FSM_VEC_BYTES 32
#include "fsm_isa_variant.h"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
