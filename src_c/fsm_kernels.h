/*
 * fastsoftmax C interface: row kernels for softmax, log_softmax and logsumexp.
 *
 * A "rows" call processes `nrows` rows of `n` elements each.  Row r starts at
 * x + r * row_stride and its k-th element is x[r * row_stride + k * stride]
 * (strides in elements, any sign).  softmax/log_softmax write y with the same
 * geometry; logsumexp writes one value per row at y[r * y_row_stride].
 *
 * The kernels never allocate and never touch memory outside those elements.
 * Every instruction-set variant computes the same function; the variant is
 * chosen once, at import, by fsm_select_isa().
 */
#ifndef FSM_KERNELS_H
#define FSM_KERNELS_H

#include <stddef.h>

typedef ptrdiff_t fsm_idx;

/* y may alias x exactly (same pointer and strides): in place. */
typedef void (*fsm_map_rows_fn)(const void *x, fsm_idx x_row_stride, fsm_idx x_stride,
                                void *y, fsm_idx y_row_stride, fsm_idx y_stride,
                                fsm_idx nrows, fsm_idx n);
typedef void (*fsm_reduce_rows_fn)(const void *x, fsm_idx x_row_stride, fsm_idx x_stride,
                                   void *y, fsm_idx y_row_stride,
                                   fsm_idx nrows, fsm_idx n);

typedef struct {
    const char *name;               /* "generic", "avx2", "avx512" */
    fsm_map_rows_fn softmax[2];     /* [0] float32, [1] float64 */
    fsm_map_rows_fn log_softmax[2];
    fsm_reduce_rows_fn logsumexp[2];
} fsm_isa_table;

enum { FSM_ISA_GENERIC = 0, FSM_ISA_AVX2 = 1, FSM_ISA_AVX512 = 2, FSM_ISA_COUNT = 3 };

/* The table of an instruction set, or NULL if it is not compiled in or the CPU lacks it. */
const fsm_isa_table *fsm_isa(int isa);
/* The best instruction set this CPU runs. */
int fsm_best_isa(void);
/* Whether an instruction set's kernels were compiled into this build. */
int fsm_isa_compiled(int isa);
int fsm_isa_supported_by_cpu(int isa);

#endif
