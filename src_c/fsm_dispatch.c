/*
 * Run-time choice of the instruction-set variant.  The variants are compiled
 * with per-file targets (never -march=native), so one binary runs everywhere
 * and uses the widest vectors the CPU has.
 */
#include "fsm_kernels.h"

extern const fsm_isa_table fsm_table_generic;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FSM_X86_VARIANTS 1
#include <cpuid.h>
extern const fsm_isa_table fsm_table_avx2;
extern const fsm_isa_table fsm_table_avx512;
#else
#define FSM_X86_VARIANTS 0
#endif

_Thread_local unsigned char fsm_scratch[FSM_SCRATCH_BYTES];

int fsm_isa_compiled(int isa)
{
    return isa == FSM_ISA_GENERIC || (FSM_X86_VARIANTS && (isa == FSM_ISA_AVX2 || isa == FSM_ISA_AVX512));
}

#if FSM_X86_VARIANTS
/* F16C (CPUID.1:ECX bit 29), which every AVX2 CPU has; GCC 12's
 * __builtin_cpu_supports does not know it. */
static int fsm_cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

int fsm_isa_supported_by_cpu(int isa)
{
    if (!fsm_isa_compiled(isa)) return 0;
#if FSM_X86_VARIANTS
    __builtin_cpu_init();
    if (isa == FSM_ISA_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && fsm_cpu_has_f16c();
    if (isa == FSM_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma") && fsm_cpu_has_f16c();
#endif
    return 1;
}

const fsm_isa_table *fsm_isa(int isa)
{
    if (!fsm_isa_supported_by_cpu(isa)) return NULL;
#if FSM_X86_VARIANTS
    if (isa == FSM_ISA_AVX2) return &fsm_table_avx2;
    if (isa == FSM_ISA_AVX512) return &fsm_table_avx512;
#endif
    return &fsm_table_generic;
}

int fsm_best_isa(void)
{
    for (int isa = FSM_ISA_COUNT - 1; isa > 0; isa--)
        if (fsm_isa_supported_by_cpu(isa)) return isa;
    return FSM_ISA_GENERIC;
}
