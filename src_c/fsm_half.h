/*
 * float16 (IEEE binary16) and bfloat16 <-> float conversions, in portable C on
 * the bit patterns, rounding to nearest even.  Half-precision arrays are
 * converted a block at a time inside the kernels, so no float copy of a whole
 * array is ever made.
 */
#ifndef FSM_HALF_H
#define FSM_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t fsm_f32_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
static inline float fsm_bits_f32(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }

static inline float fsm_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = h & 0x7fffu;                  /* exponent and mantissa */
    if (em >= 0x7c00u)                          /* inf, NaN: keep the payload */
        return fsm_bits_f32(sign | 0x7f800000u | (em & 0x3ffu) << 13);
    /* Shifted into place, the bits read as a float 2^112 too small (bias 15, not
     * 127); the product is exact, also for subnormal halves. */
    return fsm_bits_f32(sign | fsm_f32_bits(fsm_bits_f32(em << 13) * 0x1p112f));
}

static inline uint16_t fsm_f32_to_f16(float f)
{
    uint32_t u = fsm_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    u &= 0x7fffffffu;
    if (u >= 0x47800000u)                        /* >= 2^16: inf, or NaN (quieted) */
        return sign | (u > 0x7f800000u ? 0x7e00u : 0x7c00u);
    if (u < 0x38800000u) {                      /* below 2^-14: subnormal half or 0 */
        /* Adding 0.5 puts the units of 2^-24 in the float's last mantissa bits,
         * rounded to nearest even by the addition itself. */
        float a = fsm_bits_f32(u) + 0.5f;
        return sign | (uint16_t)(fsm_f32_bits(a) - 0x3f000000u);
    }
    /* Rebias the exponent and round the 13 dropped bits to nearest even; a carry
     * out of the mantissa correctly bumps the exponent (up to inf). */
    u += 0xc8000fffu + ((u >> 13) & 1u);
    return sign | (uint16_t)(u >> 13);
}

static inline float fsm_bf16_to_f32(uint16_t h) { return fsm_bits_f32((uint32_t)h << 16); }

static inline uint16_t fsm_f32_to_bf16(float f)
{
    uint32_t u = fsm_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);   /* quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

#endif
