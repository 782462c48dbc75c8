/*
 * fastsoftmax C interface: row kernels.
 *
 * A "rows" call processes `nrows` rows of `n` elements each.  Row r starts at
 * x + r * row_stride and its k-th element is x[r * row_stride + k * stride]
 * (strides in elements of that array, any sign).  softmax/log_softmax write y
 * with the same geometry; logsumexp writes one value per row at
 * y[r * y_row_stride].
 *
 * The kernels never allocate and never touch memory outside those elements.
 * Every instruction-set variant computes the same function; the variant is
 * chosen once, at import, by fsm_select_isa().
 */
#ifndef FSM_KERNELS_H
#define FSM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef ptrdiff_t fsm_idx;

/* Element types of x and y besides the kernel's own (float kernels only):
 * half-precision values are converted to float a block at a time. */
enum { FSM_NATIVE = 0, FSM_FLOAT16 = 1, FSM_BFLOAT16 = 2 };

/* What softmax, log_softmax and logsumexp compute besides f(x). */
typedef struct {
    double temperature;               /* f(x / temperature); 1: plain */
    fsm_idx mask_row_stride, mask_stride;   /* of the mask, in bytes */
    int x_type, y_type;               /* FSM_NATIVE, FSM_FLOAT16, FSM_BFLOAT16 */
    int y_cold;                       /* x's elements in y's type: FSM_COLD_Y_BYTES or more */
    int data_cold;                    /* x and y together: FSM_COLD_DATA_BYTES or more */
} fsm_opts;

/* Outputs this large are not expected to stay cached between calls: the
 * kernels fetch their rows ahead of writing them (fsm_rows.inc:
 * log_softmax_row), which costs where they are cached. */
#define FSM_COLD_Y_BYTES (32 * 1024 * 1024)
/* Calls whose x and y (cross_entropy: x and grad) together are this large
 * are not expected to stay cached either: the short-row tiles fetch the next
 * tile's rows ahead (fsm_rows.inc: rows; fsm_ml.inc: cross_entropy_rows),
 * which costs 1-5 % where they are cached. */
#define FSM_COLD_DATA_BYTES (16 * 1024 * 1024)

/* mask: NULL, or one byte per element of x with the geometry given in opts;
 * entries whose byte is 0 take no part (they get 0, or -inf for log_softmax),
 * and a row without any entry gives 0 / -inf / -inf (logsumexp).
 * y may alias x exactly (same pointer, strides and type): in place. */
typedef void (*fsm_map_rows_fn)(const void *x, fsm_idx x_row_stride, fsm_idx x_stride,
                                void *y, fsm_idx y_row_stride, fsm_idx y_stride,
                                fsm_idx nrows, fsm_idx n, const fsm_opts *opts,
                                const unsigned char *mask);
typedef void (*fsm_reduce_rows_fn)(const void *x, fsm_idx x_row_stride, fsm_idx x_stride,
                                   void *y, fsm_idx y_row_stride,
                                   fsm_idx nrows, fsm_idx n, const fsm_opts *opts,
                                   const unsigned char *mask);

/* Backward passes, out = (vector-Jacobian product) / temperature:
 *   softmax:      out = y * (g - sum(g * y))         (a: y = softmax(x / T))
 *   log_softmax:  out = g - exp(a) * sum(g)          (a: log_softmax(x / T))
 * out may alias a or g exactly. */
typedef void (*fsm_backward_rows_fn)(const void *a, fsm_idx a_row_stride, fsm_idx a_stride,
                                     const void *g, fsm_idx g_row_stride, fsm_idx g_stride,
                                     void *out, fsm_idx out_row_stride, fsm_idx out_stride,
                                     fsm_idx nrows, fsm_idx n, double temperature);

/* Cross-entropy of the rows of x (logits, n classes) against a target
 * distribution a (per row, a_c >= 0):
 *   labels y:  a_c = (1 - eps) w_y [c == y] + eps / n * w_c
 *   probs p:   a_c = w_c ((1 - eps) p_c + eps / n)
 * (w = weight, or 1; eps = label_smoothing).  loss[r] = -sum_c a_c log_softmax(x/T)_c,
 * in double; with grad non-NULL, grad = grad_scale / T * (softmax(x/T) * sum(a) - a).
 * A row whose label equals ignore_index (when has_ignore) gets loss 0 and grad 0. */
typedef struct {
    double temperature, label_smoothing, grad_scale;
    const void *weight;               /* NULL, or n contiguous weights of the kernel's type */
    int64_t ignore_index;
    int has_ignore;
    int x_type, grad_type;            /* FSM_NATIVE, FSM_FLOAT16, FSM_BFLOAT16 */
    int data_cold;                    /* x and grad together: FSM_COLD_DATA_BYTES or more */
} fsm_ce_opts;

typedef void (*fsm_cross_entropy_rows_fn)(const void *x, fsm_idx x_row_stride, fsm_idx x_stride,
                                          const int64_t *labels, fsm_idx label_stride,
                                          const void *probs, fsm_idx probs_row_stride,
                                          fsm_idx probs_stride,
                                          double *loss, fsm_idx loss_stride,
                                          void *grad, fsm_idx grad_row_stride, fsm_idx grad_stride,
                                          fsm_idx nrows, fsm_idx n, const fsm_ce_opts *opts);

/* One long row (op 0 softmax, 1 log_softmax, 2 logsumexp into y[0]) of native
 * elements, split into chunks computed by up to nthreads OpenMP threads; the
 * chunks depend on n alone, so the result does not depend on nthreads.  y may
 * alias x exactly. */
typedef void (*fsm_long_row_fn)(int op, const void *x, fsm_idx x_stride, void *y, fsm_idx y_stride,
                                fsm_idx n, double temperature, int nthreads);

typedef struct {
    const char *name;               /* "generic", "avx2", "avx512" */
    fsm_map_rows_fn softmax[2];     /* [0] float32, [1] float64 */
    fsm_map_rows_fn log_softmax[2];
    fsm_reduce_rows_fn logsumexp[2];
    fsm_backward_rows_fn softmax_backward[2];
    fsm_backward_rows_fn log_softmax_backward[2];
    fsm_cross_entropy_rows_fn cross_entropy[2];
    fsm_long_row_fn long_row[2];
} fsm_isa_table;

enum { FSM_ISA_GENERIC = 0, FSM_ISA_AVX2 = 1, FSM_ISA_AVX512 = 2, FSM_ISA_COUNT = 3 };

/* The table of an instruction set, or NULL if it is not compiled in or the CPU lacks it. */
const fsm_isa_table *fsm_isa(int isa);
/* The best instruction set this CPU runs. */
int fsm_best_isa(void);

/* Where the kernels change layout (fsm_rows.inc), which the Python layer's
 * tasks follow (fastsoftmax/_kernels.pyx): rows of at most FSM_SHORT_N
 * elements go in short-row tiles; rows side by side (a non-last axis) in
 * tiles of up to FSM_TILE_BYTES, or in strips FSM_STRIP_BYTES wide where a
 * tile would be narrower than FSM_STRIP_MIN_TILE vectors: with 64-byte
 * vectors, for columns of FSM_STRIP_MIN_N elements or more. */
/* Short rows: rows of 33 to 63 took 1.0-2.9x as long in the row groups as in
 * the tiles (AVX-512 and AVX2, float and double); rows of 64, with no partial
 * vector, 1.1-1.6x for float but 0.75-1.17x for double, whose tiles stop at
 * 63.  FSM_SHORT_N is the longer, which the tasks follow. */
#define FSM_SHORT_N 64
#define FSM_SHORT_N_DOUBLE 63
#define FSM_TILE_BYTES (256 * 1024)
#define FSM_STRIP_BYTES 4096
#define FSM_STRIP_MIN_TILE 5
#define FSM_STRIP_MIN_N (FSM_TILE_BYTES / (64 * FSM_STRIP_MIN_TILE) + 1)

/* A per-thread scratch buffer for the kernels (fsm_rows.inc: packed_cols_tile):
 * too large for the stack of every thread (musl gives threads 128 KB), and
 * thread-local so that concurrent calls never share it. */
#define FSM_SCRATCH_BYTES (FSM_TILE_BYTES + 64)      /* + 64: aligned to a cache line by the user */
extern _Thread_local unsigned char fsm_scratch[FSM_SCRATCH_BYTES];

/* Whether an instruction set's kernels were compiled into this build. */
int fsm_isa_compiled(int isa);
int fsm_isa_supported_by_cpu(int isa);

#endif
