/*
 * Double-double arithmetic for the scalar work done once per row (or per block):
 * a value is hi + lo with |lo| much smaller than |hi|.  Sums of exponentials are
 * kept this way so that log(sum), 1/sum and max + log(sum) lose nothing to the
 * rounding of the sum itself: logsumexp([0, -40]) keeps its 4.2e-18.
 */
#ifndef FSM_DD_H
#define FSM_DD_H

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    double hi, lo;
} fsm_dd;

#define FSM_LN2_HI 0x1.62e42fee00000p-1   /* trailing zeros: k * FSM_LN2_HI is exact */
#define FSM_LN2_LO 0x1.a39ef35793c76p-33

/* s += v, compensated (Neumaier: the larger of the two is the reference). */
static inline void fsm_dd_add(fsm_dd *s, double v)
{
    double t = s->hi + v;
    s->lo += fabs(s->hi) >= fabs(v) ? (s->hi - t) + v : (v - t) + s->hi;
    s->hi = t;
}

static inline void fsm_dd_add_dd(fsm_dd *s, fsm_dd v)
{
    fsm_dd_add(s, v.hi);
    s->lo += v.lo;
}

static inline void fsm_dd_scale(fsm_dd *s, double f)
{
    s->hi *= f;
    s->lo *= f;
}

static inline int fsm_dd_isnan(fsm_dd s) { return s.hi != s.hi || s.lo != s.lo; }

/* log(s) for s >= 1, as k ln2 + log(f) + s.lo / s.hi with f = s.hi 2^-k in [1, 2):
 * the part that grows with s is exact, and log is only asked for a value
 * below ln 2, so the result is good to about 2^-53 absolute, however large s is. */
static inline fsm_dd fsm_dd_log(fsm_dd s)
{
    /* s.hi is a normal number (>= 1 for a sum of exponentials): k and f come
     * straight from its exponent and mantissa bits. */
    uint64_t bits, f_bits;
    memcpy(&bits, &s.hi, sizeof bits);
    int k = (int)((bits >> 52) & 0x7ff) - 1023;
    f_bits = (bits & ~(UINT64_C(0x7ff) << 52)) | (UINT64_C(1023) << 52);
    double f;
    memcpy(&f, &f_bits, sizeof f);
    fsm_dd r = {k * FSM_LN2_HI, k * FSM_LN2_LO + log(f) + s.lo / s.hi};
    return r;
}

/* 1 / s, to about 2^-100 relative. */
static inline fsm_dd fsm_dd_recip(fsm_dd s)
{
    double hi = 1.0 / s.hi;
    fsm_dd r = {hi, (fma(-s.hi, hi, 1.0) - s.lo * hi) / s.hi};
    return r;
}

/* 1 + a for a >= 0, exactly as a double-double (Fast2Sum: the larger first). */
static inline fsm_dd fsm_dd_one_plus(fsm_dd a)
{
    fsm_dd s;
    if (a.hi < 1.0) {
        s.hi = 1.0 + a.hi;
        s.lo = (a.hi - (s.hi - 1.0)) + a.lo;
    } else {
        s.hi = a.hi + 1.0;
        s.lo = (1.0 - (s.hi - a.hi)) + a.lo;
    }
    return s;
}

/* log(1 + a) for a >= 0.  Because 1 + a is formed exactly, the log of the
 * double-double keeps a tail far below the rounding of 1: logsumexp([0, -40])
 * = 4.2e-18 (and log is cheaper than log1p). */
static inline fsm_dd fsm_dd_log1p(fsm_dd a) { return fsm_dd_log(fsm_dd_one_plus(a)); }

/* m + log(1 + a), rounded once (m a double-double too). */
static inline double fsm_dd_add_log1p(fsm_dd m, fsm_dd a)
{
    fsm_dd c = fsm_dd_log1p(a);
    double hi = m.hi + c.hi;
    double m_part = hi - c.hi;
    double err = (m.hi - m_part) + (c.hi - (hi - m_part));   /* TwoSum: m.hi + c.hi == hi + err */
    return hi + (err + (c.lo + m.lo));
}

#endif
