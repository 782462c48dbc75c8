/* Portable variant: the compiler's baseline vectors (SSE2 on x86-64, NEON on arm64). */
#define FSM_ISA generic
#define FSM_VEC_BYTES 16
#include "fsm_isa_variant.h"
