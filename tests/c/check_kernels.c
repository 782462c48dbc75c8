/*
 * The C kernels checked without Python: every instruction set this CPU runs,
 * float and double, against a long-double reference computed here.
 *
 * It exists for the machines the Python suite cannot reach from here: built
 * with a cross compiler and run under qemu-user (tests/c/run_arm64.sh), it
 * checks the NEON build of the generic variant on arm64.  Natively it is one
 * more check of every x86 variant, small enough for valgrind.
 *
 * Layouts: contiguous rows (row groups, short-row tiles, rows of several
 * blocks), reversed and strided rows, columns side by side (a non-last axis:
 * column tiles, and strips for long columns), in place; temperature, masks,
 * float16 input, NaN and +-inf; one long row on 1 and 3 threads (bit for bit
 * the same); the backward passes; cross-entropy with its gradient.  Every
 * output is compared with the reference (tests/util.py's tolerances: softmax
 * relative 1e-6 / 1e-14 above 1e-30 / 1e-300, log outputs 8 ulps of max(1,
 * |value|)), the input is compared with a copy, and guard elements around
 * every output must be left alone.  Prints one line per failure and exits 1
 * if there was any.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_half.h"
#include "fsm_kernels.h"

enum { SOFTMAX, LOG_SOFTMAX, LOGSUMEXP };
static const char *const OP_NAME[] = {"softmax", "log_softmax", "logsumexp"};
#define GUARD 16               /* elements before and after every output */
#define GUARD_VALUE 12345.0

static int failures, checks;
static const char *isa_name;
/* Whether long double arithmetic is wider than double, as it is on x86-64 and
 * arm64 Linux but not under valgrind: where it is not, the float64 outputs
 * are held to a tolerance the reference itself can meet. */
static int wide_reference;

/* fmt: a printf format of up to two doubles, a and b (those it does not use are ignored). */
static void fail(const char *what, const char *dtype, const char *fmt, double a, double b)
{
    if (failures++ < 40) {
        printf("FAIL %s %s %s: ", isa_name, dtype, what);
        printf(fmt, a, b);
        printf("\n");
    }
}

/* ---- input ------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static double uniform(void)     /* [0, 1), splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}

static double normal(void) { return sqrt(-2.0 * log(1.0 - uniform())) * cos(6.283185307179586 * uniform()); }

/* Kinds of values: N(0, 4^2); N(0, 30^2) + 1000 (far from 0, many terms
 * flushed); U(-100, 100); N(0, 4^2) with NaN, +-inf sprinkled in. */
enum { VALUES_NORMAL, VALUES_OFFSET, VALUES_WIDE, VALUES_SPECIAL, VALUES_KINDS };

static double draw(int kind)
{
    switch (kind) {
    case VALUES_OFFSET: return 1000.0 + 30.0 * normal();
    case VALUES_WIDE: return 200.0 * uniform() - 100.0;
    case VALUES_SPECIAL: {
        double u = uniform();
        return u < 0.02 ? NAN : u < 0.05 ? INFINITY : u < 0.15 ? -INFINITY : 4.0 * normal();
    }
    default: return 4.0 * normal();
    }
}

/* ---- reference: softmax, log_softmax and logsumexp of one row --------------- */

/* ref[k] for k < n (softmax or log_softmax), and logsumexp in *lse, of the
 * values v[0..n) / T whose mask byte is nonzero (DESIGN §1: +inf as the limit,
 * a NaN makes the row NaN, a row with nothing present gives 0 / -inf).
 * NaN and infinities are told apart in double: valgrind keeps long doubles in
 * 64 bits, and glibc's isinfl and isnanl then misread them. */
static void reference(int op, const long double *v, const unsigned char *mask, long n, double temperature,
                      long double *ref, long double *lse)
{
    long double m = -INFINITY;
    long n_posinf = 0, n_present = 0;
    int nan = 0;
    for (long k = 0; k < n; k++) {
        if (mask && !mask[k]) continue;
        long double a = v[k] / temperature;
        n_present++;
        if (isnan((double)a)) nan = 1;
        else if (a > m) m = a;
        if (a == INFINITY) n_posinf++;
    }
    long double s = 0;
    if (isfinite((double)m))
        for (long k = 0; k < n; k++)
            if (!mask || mask[k]) s += expl(v[k] / temperature - m);
    *lse = nan ? NAN : n_present == 0 || m == -INFINITY ? -INFINITY : isinf((double)m) ? m : m + logl(s);
    if (op == LOGSUMEXP) return;
    for (long k = 0; k < n; k++) {
        long double a = v[k] / temperature, r;
        if (mask && !mask[k]) r = op == SOFTMAX ? 0 : -INFINITY;
        else if (nan || m == -INFINITY) r = NAN;
        else if (m == INFINITY) r = op == SOFTMAX ? (a == INFINITY ? 1.0L / n_posinf : 0)
                                                  : (a == INFINITY ? -logl(n_posinf) : -INFINITY);
        else r = op == SOFTMAX ? expl(a - m) / s : (a - m) - logl(s);
        ref[k] = r;
    }
}

/* One output against its reference (tests/util.py's tolerances). */
static void compare(int op, double got, long double want, int is_double, const char *what)
{
    const char *dtype = is_double ? "float64" : "float32";
    checks++;
    if (!isfinite((double)want)) {
        if (isnan((double)want) ? !isnan(got) : got != (double)want) fail(what, dtype, "got %.17g, want %.17g", got, (double)want);
        return;
    }
    if (!isfinite(got)) {
        fail(what, dtype, "got %.17g, want %.17g", got, (double)want);
        return;
    }
    long double err = fabsl((long double)got - want), loose = is_double && !wide_reference ? 100 : 1;
    if (op == SOFTMAX) {
        long double tiny = is_double ? 1e-300L : 1e-30L, rtol = (is_double ? 1e-14L : 1e-6L) * loose;
        if (fabsl(want) >= tiny ? err > rtol * fabsl(want) : err > tiny)
            fail(what, dtype, "got %.17g, want %.17g", got, (double)want);
    } else {
        long double eps = is_double ? 0x1p-52L : 0x1p-23L;
        if (err > 8 * loose * eps * fmaxl(1.0L, fabsl(want))) fail(what, dtype, "got %.17g, want %.17g", got, (double)want);
    }
}

/* ---- one rows call ------------------------------------------------------- */

typedef struct {
    const char *what;
    long nrows, n;
    long xr, xs;                /* x's strides, in elements */
    int columns;                /* rows side by side: x is n x nrows, C order (xr = 1, xs = nrows) */
    int in_place;
    int masked;
    int half;                   /* x in float16 (float kernels only) */
    double temperature;
    int values;
    int cold;                   /* the kernels' cold-data hints on */
} layout;

/* The element offsets of row r, element k, in x (and y, which has x's
 * geometry); rows start at base. */
static long at(const layout *L, long r, long k, long base) { return base + r * L->xr + k * L->xs; }

#define DEFINE_CHECK_ROWS(T, SFX, IS_DOUBLE)                                                                     \
static void check_rows_##SFX(const fsm_isa_table *t, int op, const layout *L)                                     \
{                                                                                                                 \
    const long nrows = L->nrows, n = L->n;                                                                        \
    /* x spans the elements from its lowest to its highest offset. */                                             \
    const long span = L->columns ? nrows * n : nrows * n * (L->xs < 0 ? 1 : L->xs);                               \
    const long base = L->xs < 0 ? n - 1 : 0;                                                                      \
    T *x = malloc(sizeof(T) * (span + 2 * GUARD)), *x_copy = malloc(sizeof(T) * (span + 2 * GUARD));             \
    uint16_t *xh = malloc(sizeof(uint16_t) * (span + 1));                                                         \
    unsigned char *mask = calloc(span + 1, 1);                                                                    \
    long double *v = malloc(sizeof(long double) * n), *ref = malloc(sizeof(long double) * n);                    \
    unsigned char *row_mask = malloc(n + 1);                                                                      \
    for (long i = 0; i < span + 2 * GUARD; i++) x[i] = (T)GUARD_VALUE;                                            \
    for (long i = 0; i < span; i++) {                                                                             \
        double d = draw(L->values);                                                                               \
        xh[i] = fsm_f32_to_f16((float)d);                                                                         \
        x[GUARD + i] = L->half ? (T)fsm_f16_to_f32(xh[i]) : (T)d;                                                 \
        mask[i] = uniform() < 0.8;                                                                                \
    }                                                                                                             \
    memcpy(x_copy, x, sizeof(T) * (span + 2 * GUARD));                                                            \
    T *y = L->in_place ? x : malloc(sizeof(T) * (span + 2 * GUARD));                                              \
    if (!L->in_place)                                                                                             \
        for (long i = 0; i < span + 2 * GUARD; i++) y[i] = (T)GUARD_VALUE;                                        \
    T *lse = malloc(sizeof(T) * (nrows + 2 * GUARD));                                                             \
    for (long i = 0; i < nrows + 2 * GUARD; i++) lse[i] = (T)GUARD_VALUE;                                         \
    fsm_opts o = {L->temperature, 0, 0, L->half ? FSM_FLOAT16 : FSM_NATIVE, FSM_NATIVE, L->cold, L->cold};       \
    o.mask_row_stride = L->xr;                                                                                    \
    o.mask_stride = L->xs;                                                                                        \
    const void *xp = L->half ? (const void *)(xh + base) : (const void *)(x + GUARD + base);                     \
    const unsigned char *mp = L->masked ? mask + base : NULL;                                                     \
    if (op == LOGSUMEXP)                                                                                          \
        t->logsumexp[IS_DOUBLE](xp, L->xr, L->xs, lse + GUARD, 1, nrows, n, &o, mp);                             \
    else                                                                                                          \
        (op == SOFTMAX ? t->softmax : t->log_softmax)[IS_DOUBLE](xp, L->xr, L->xs, y + GUARD + base, L->xr,     \
                                                                L->xs, nrows, n, &o, mp);                         \
    char what[200];                                                                                               \
    snprintf(what, sizeof what, "%s %s %ldx%ld T=%g", OP_NAME[op], L->what, nrows, n, L->temperature);           \
    for (long r = 0; r < nrows; r++) {                                                                            \
        long double want_lse;                                                                                     \
        for (long k = 0; k < n; k++) {                                                                            \
            v[k] = x_copy[GUARD + at(L, r, k, base)];                                                             \
            row_mask[k] = mask[at(L, r, k, base)];                                                                \
        }                                                                                                         \
        reference(op, v, L->masked ? row_mask : NULL, n, L->temperature, ref, &want_lse);                        \
        if (op == LOGSUMEXP)                                                                                      \
            compare(op, lse[GUARD + r], want_lse, IS_DOUBLE, what);                                               \
        else                                                                                                      \
            for (long k = 0; k < n; k++) compare(op, y[GUARD + at(L, r, k, base)], ref[k], IS_DOUBLE, what);     \
    }                                                                                                             \
    /* Nothing written outside the outputs; x unchanged unless it is y. */                                        \
    for (long i = 0; i < GUARD; i++) {                                                                            \
        if (lse[i] != (T)GUARD_VALUE || lse[GUARD + nrows + i] != (T)GUARD_VALUE)                                \
            fail(what, #T, "wrote past the logsumexp outputs (%g, %g)", lse[i], lse[GUARD + nrows + i]);          \
        if (y[i] != (T)GUARD_VALUE || y[GUARD + span + i] != (T)GUARD_VALUE)                                     \
            fail(what, #T, "wrote past the outputs (%g, %g)", y[i], y[GUARD + span + i]);                         \
    }                                                                                                             \
    if (!L->in_place && memcmp(x, x_copy, sizeof(T) * (span + 2 * GUARD)) != 0)                                  \
        fail(what, #T, "modified its input", 0, 0);                                                               \
    if (op != LOGSUMEXP && !L->in_place && !L->columns && L->xs > 1)   /* the gaps in strided rows */            \
        for (long r = 0; r < nrows; r++)                                                                          \
            for (long k = 0; k + 1 < n; k++)                                                                      \
                if (y[GUARD + at(L, r, k, base) + 1] != (T)GUARD_VALUE)                                           \
                    fail(what, #T, "wrote between strided elements (%g)", y[GUARD + at(L, r, k, base) + 1], 0);   \
    free(x); free(x_copy); free(xh); free(mask); free(v); free(ref); free(row_mask); free(lse);                   \
    if (!L->in_place) free(y);                                                                                    \
}

DEFINE_CHECK_ROWS(float, f32, 0)
DEFINE_CHECK_ROWS(double, f64, 1)

/* ---- one long row on 1 and 3 threads -------------------------------------- */

#define DEFINE_CHECK_LONG(T, SFX, IS_DOUBLE)                                                                     \
static void check_long_row_##SFX(const fsm_isa_table *t, int op, long n)                                          \
{                                                                                                                 \
    T *x = malloc(sizeof(T) * n), *y1 = malloc(sizeof(T) * n), *y3 = malloc(sizeof(T) * n);                       \
    long double *v = malloc(sizeof(long double) * n), *ref = malloc(sizeof(long double) * n), want_lse;           \
    for (long i = 0; i < n; i++) v[i] = x[i] = (T)draw(VALUES_NORMAL);                                            \
    t->long_row[IS_DOUBLE](op, x, 1, y1, 1, n, 1.0, 1);                                                           \
    t->long_row[IS_DOUBLE](op, x, 1, y3, 1, n, 1.0, 3);                                                           \
    reference(op, v, NULL, n, 1.0, ref, &want_lse);                                                               \
    char what[100];                                                                                               \
    snprintf(what, sizeof what, "%s one row of %ld", OP_NAME[op], n);                                             \
    const long outputs = op == LOGSUMEXP ? 1 : n;                                                                 \
    if (memcmp(y1, y3, sizeof(T) * outputs) != 0) fail(what, #T, "1 and 3 threads differ", 0, 0);                 \
    for (long k = 0; k < outputs; k++) compare(op, y1[k], op == LOGSUMEXP ? want_lse : ref[k], IS_DOUBLE, what);  \
    free(x); free(y1); free(y3); free(v); free(ref);                                                              \
}

DEFINE_CHECK_LONG(float, f32, 0)
DEFINE_CHECK_LONG(double, f64, 1)

/* ---- cross-entropy: the loss per row and its gradient ------------------------ */

#define DEFINE_CHECK_CE(T, SFX, IS_DOUBLE)                                                                       \
static void check_cross_entropy_##SFX(const fsm_isa_table *t, long nrows, long n)                                 \
{                                                                                                                 \
    T *x = malloc(sizeof(T) * nrows * n), *grad = malloc(sizeof(T) * nrows * n);                                  \
    int64_t *labels = malloc(sizeof(int64_t) * nrows);                                                            \
    double *loss = malloc(sizeof(double) * nrows);                                                                \
    long double *v = malloc(sizeof(long double) * n), *ref = malloc(sizeof(long double) * n), lse;               \
    for (long i = 0; i < nrows * n; i++) x[i] = (T)draw(VALUES_NORMAL);                                           \
    for (long r = 0; r < nrows; r++) labels[r] = (int64_t)(uniform() * n);                                        \
    const double scale = 1.0 / nrows;                                                                             \
    fsm_ce_opts o = {1.0, 0.0, scale, NULL, -100, 0, FSM_NATIVE, FSM_NATIVE, 0};                                  \
    t->cross_entropy[IS_DOUBLE](x, n, 1, labels, 1, NULL, 0, 0, loss, 1, grad, n, 1, nrows, n, &o);               \
    char what[100];                                                                                               \
    snprintf(what, sizeof what, "cross_entropy %ldx%ld", nrows, n);                                               \
    for (long r = 0; r < nrows; r++) {                                                                            \
        for (long k = 0; k < n; k++) v[k] = x[r * n + k];                                                         \
        reference(SOFTMAX, v, NULL, n, 1.0, ref, &lse);                                                           \
        /* The loss, in double, at the kernel type's log tolerance. */                                    \
        compare(LOG_SOFTMAX, loss[r], lse - v[labels[r]], IS_DOUBLE, what);                                               \
        for (long k = 0; k < n; k++) {                                                                            \
            long double want = scale * (ref[k] - (k == labels[r])), got = grad[r * n + k];                        \
            long double tol = (IS_DOUBLE ? (wide_reference ? 1e-14L : 1e-12L) : 1e-6L) * scale;                                               \
            checks++;                                                                                             \
            if (!(fabsl(got - want) <= tol)) fail(what, #T, "gradient %.17g, want %.17g", (double)got, (double)want); \
        }                                                                                                         \
    }                                                                                                             \
    free(x); free(grad); free(labels); free(loss); free(v); free(ref);                                            \
}

DEFINE_CHECK_CE(float, f32, 0)
DEFINE_CHECK_CE(double, f64, 1)

/* ---- backward passes: softmax's and log_softmax's vector-Jacobian products ------- */

/* a: probabilities (softmax) or their logs (log_softmax), g: any gradient;
 * out = a (g - sum(g a)) / T, or (g - exp(a) sum(g)) / T, against the same
 * sums in long double, each output within a few ulps of the size of its terms. */
#define DEFINE_CHECK_BACKWARD(T, SFX, IS_DOUBLE)                                                                 \
static void check_backward_##SFX(const fsm_isa_table *t, int is_log, long nrows, long n, double temperature)        \
{                                                                                                                 \
    T *a = malloc(sizeof(T) * nrows * n), *g = malloc(sizeof(T) * nrows * n), *out = malloc(sizeof(T) * nrows * n); \
    for (long r = 0; r < nrows; r++) {                                                                            \
        double total = 0;                                                                                         \
        for (long k = 0; k < n; k++) total += a[r * n + k] = (T)exp(draw(VALUES_NORMAL));                          \
        for (long k = 0; k < n; k++) {                                                                            \
            a[r * n + k] = is_log ? (T)(a[r * n + k] == 0 ? -INFINITY : logl(a[r * n + k] / total)) : (T)(a[r * n + k] / total); \
            g[r * n + k] = (T)normal();                                                                           \
        }                                                                                                         \
    }                                                                                                             \
    (is_log ? t->log_softmax_backward : t->softmax_backward)[IS_DOUBLE](a, n, 1, g, n, 1, out, n, 1, nrows, n,      \
                                                                     temperature);                                \
    char what[100];                                                                                               \
    snprintf(what, sizeof what, "%s_backward %ldx%ld T=%g", is_log ? "log_softmax" : "softmax", nrows, n, temperature); \
    const long double eps = IS_DOUBLE ? 0x1p-52L : 0x1p-23L;                                                      \
    for (long r = 0; r < nrows; r++) {                                                                            \
        long double sum = 0, size = 0;                                                                            \
        for (long k = 0; k < n; k++) {                                                                            \
            const long double ak = a[r * n + k], gk = g[r * n + k], w = is_log ? 1 : ak;                              \
            sum += gk * w;                                                                                        \
            size += fabsl(gk * w);                                                                                \
        }                                                                                                         \
        for (long k = 0; k < n; k++) {                                                                            \
            const long double ak = a[r * n + k], gk = g[r * n + k], p = is_log ? expl(ak) : ak;                       \
            const long double want = (is_log ? gk - p * sum : p * (gk - sum)) / temperature;                          \
            const long double tol = 16 * eps * (is_log ? fabsl(gk) + p * size : p * (fabsl(gk) + size)) / temperature; \
            checks++;                                                                                             \
            if (!(fabsl(out[r * n + k] - want) <= tol))                                                           \
                fail(what, #T, "got %.17g, want %.17g", (double)out[r * n + k], (double)want);                     \
        }                                                                                                         \
    }                                                                                                             \
    free(a); free(g); free(out);                                                                                  \
}

DEFINE_CHECK_BACKWARD(float, f32, 0)
DEFINE_CHECK_BACKWARD(double, f64, 1)

/* ---- the cases ------------------------------------------------------------ */

static void check_layout(const fsm_isa_table *t, layout L)
{
    for (int op = SOFTMAX; op <= LOGSUMEXP; op++) {
        if (L.in_place && op == LOGSUMEXP) continue;
        check_rows_f32(t, op, &L);
        if (!L.half) check_rows_f64(t, op, &L);
    }
}

static void check_isa(const fsm_isa_table *t, int quick)
{
    static const long row_lengths[] = {1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 31, 33, 63, 64, 65, 100, 257, 1000,
                                       1025, 3000};
    static const long row_counts[] = {1, 3, 37, 70};
    isa_name = t->name;
    for (size_t i = 0; i < sizeof row_lengths / sizeof *row_lengths; i++) {
        const long n = row_lengths[i];
        for (size_t j = 0; j < sizeof row_counts / sizeof *row_counts; j++) {
            const long nrows = n >= 1000 ? row_counts[j] / 8 + 1 : row_counts[j];
            const layout rows = {.what = "rows", .nrows = nrows, .n = n, .xr = n, .xs = 1, .temperature = 1.0,
                                 .values = (int)((i + j) % VALUES_KINDS)};
            check_layout(t, rows);
            if (quick && j > 1) continue;
            layout L = rows;
            L.what = "reversed rows", L.xs = -1, L.temperature = 0.5, L.values = VALUES_NORMAL;
            check_layout(t, L);
            L = rows;
            L.what = "strided rows", L.xr = 2 * n, L.xs = 2, L.temperature = 3.0, L.values = VALUES_WIDE, L.cold = 1;
            check_layout(t, L);
            L = rows;
            L.what = "in place", L.in_place = 1, L.values = VALUES_SPECIAL;
            check_layout(t, L);
            L = rows;   /* the cold-data hints: long rows prefetched, log_softmax's y streamed */
            L.what = "cold rows", L.cold = 1, L.temperature = 0.5;
            check_layout(t, L);
            L.what = "cold rows in place", L.in_place = 1, L.temperature = 1.0;
            check_layout(t, L);
            L = rows;
            L.what = "masked", L.masked = 1, L.values = VALUES_NORMAL;
            check_layout(t, L);
            L = rows;
            L.what = "float16 rows", L.half = 1, L.values = VALUES_NORMAL;
            check_layout(t, L);
        }
    }
    /* Columns side by side: column tiles, narrow tiles, and strips for
     * columns of FSM_STRIP_MIN_N or more (more with narrower vectors). */
    static const long col_lengths[] = {1, 3, 10, 100, 1000, 5000};
    static const long col_counts[] = {1, 5, 16, 67};
    for (size_t i = 0; i < sizeof col_lengths / sizeof *col_lengths; i++)
        for (size_t j = 0; j < sizeof col_counts / sizeof *col_counts; j++) {
            const long n = col_lengths[i], ncols = col_counts[j];
            layout C = {.what = "columns", .nrows = ncols, .n = n, .xr = 1, .xs = ncols, .columns = 1,
                        .temperature = j % 2 ? 1.0 : 0.5, .values = (int)((i + j) % VALUES_KINDS)};
            check_layout(t, C);
            C.what = "columns in place";
            C.in_place = 1;
            check_layout(t, C);
        }
    for (int op = SOFTMAX; op <= LOGSUMEXP; op++) {
        check_long_row_f32(t, op, quick ? 100000 : 300000);
        check_long_row_f64(t, op, quick ? 100000 : 300000);
    }
    for (int is_log = 0; is_log <= 1; is_log++) {
        check_backward_f32(t, is_log, 37, 10, 1.0);
        check_backward_f32(t, is_log, 5, 1000, 0.5);
        check_backward_f64(t, is_log, 37, 10, 1.0);
        check_backward_f64(t, is_log, 5, 1000, 0.5);
    }
    check_cross_entropy_f32(t, 37, 10);
    check_cross_entropy_f32(t, 5, 1000);
    check_cross_entropy_f64(t, 37, 10);
    check_cross_entropy_f64(t, 5, 1000);
}

/* Options: --quick (fewer layouts, shorter long rows); --isa NAME (that
 * instruction set alone: valgrind, for one, runs no AVX-512). */
int main(int argc, char **argv)
{
    int quick = 0;
    const char *only = NULL;
    volatile long double one = 1.0L;
    wide_reference = one + 0x1p-60L != one;
    if (!wide_reference) printf("long double is no wider than double here: float64 held to 100x the tolerance\n");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--isa") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--quick] [--isa generic|avx2|avx512]\n", argv[0]);
            return 2;
        }
    }
    for (int isa = 0; isa < FSM_ISA_COUNT; isa++) {
        const fsm_isa_table *t = fsm_isa(isa);
        if (!t || (only && strcmp(t->name, only) != 0)) continue;
        const int before = failures, checks_before = checks;
        check_isa(t, quick);
        printf("%-8s %d outputs checked, %d failures\n", t->name, checks - checks_before, failures - before);
    }
    return failures ? 1 : 0;
}
