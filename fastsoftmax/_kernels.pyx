# cython: boundscheck=False, wraparound=False, cdivision=True
"""Threads and memory layout: the layer between the NumPy API and the C row kernels.

Every call arrives here as 3-D views (outer, n, inner) prepared by _api.py: the
softmax axis is the middle one.  The rows to process are the (outer, inner)
pairs; they are split into tasks that OpenMP runs in parallel with the GIL
released.  Each row is computed by one thread from start to end, so results do
not depend on the number of threads.
"""
import functools

cimport numpy as cnp
from cython.parallel cimport prange

cnp.import_array()

cdef extern from "fsm_kernels.h" nogil:
    ctypedef Py_ssize_t fsm_idx
    ctypedef long long int64_t
    enum:
        FSM_NATIVE
        FSM_FLOAT16
        FSM_BFLOAT16
        FSM_SHORT_N
        FSM_STRIP_BYTES
        FSM_STRIP_MIN_N
        FSM_COLD_Y_BYTES
        FSM_COLD_DATA_BYTES
    ctypedef struct fsm_opts:
        double temperature
        fsm_idx mask_row_stride, mask_stride
        int x_type, y_type
        int y_cold
        int data_cold
    ctypedef struct fsm_ce_opts:
        double temperature, label_smoothing, grad_scale
        const void *weight
        int64_t ignore_index
        int has_ignore
        int x_type, grad_type
        int data_cold
    ctypedef void (*fsm_map_rows_fn)(const void *x, fsm_idx x_row_stride, fsm_idx x_stride,
                                     void *y, fsm_idx y_row_stride, fsm_idx y_stride,
                                     fsm_idx nrows, fsm_idx n, const fsm_opts *opts,
                                     const unsigned char *mask) noexcept nogil
    ctypedef void (*fsm_reduce_rows_fn)(const void *x, fsm_idx x_row_stride, fsm_idx x_stride,
                                        void *y, fsm_idx y_row_stride,
                                        fsm_idx nrows, fsm_idx n, const fsm_opts *opts,
                                        const unsigned char *mask) noexcept nogil
    ctypedef void (*fsm_backward_rows_fn)(const void *a, fsm_idx a_row_stride, fsm_idx a_stride,
                                          const void *g, fsm_idx g_row_stride, fsm_idx g_stride,
                                          void *out, fsm_idx out_row_stride, fsm_idx out_stride,
                                          fsm_idx nrows, fsm_idx n, double temperature) noexcept nogil
    ctypedef void (*fsm_cross_entropy_rows_fn)(const void *x, fsm_idx x_row_stride, fsm_idx x_stride,
                                               const int64_t *labels, fsm_idx label_stride,
                                               const void *probs, fsm_idx probs_row_stride,
                                               fsm_idx probs_stride, double *loss, fsm_idx loss_stride,
                                               void *grad, fsm_idx grad_row_stride, fsm_idx grad_stride,
                                               fsm_idx nrows, fsm_idx n, const fsm_ce_opts *opts) noexcept nogil
    ctypedef void (*fsm_long_row_fn)(int op, const void *x, fsm_idx x_stride, void *y, fsm_idx y_stride,
                                     fsm_idx n, double temperature, int nthreads) noexcept nogil
    ctypedef struct fsm_isa_table:
        const char *name
        fsm_map_rows_fn softmax[2]
        fsm_map_rows_fn log_softmax[2]
        fsm_reduce_rows_fn logsumexp[2]
        fsm_backward_rows_fn softmax_backward[2]
        fsm_backward_rows_fn log_softmax_backward[2]
        fsm_cross_entropy_rows_fn cross_entropy[2]
        fsm_long_row_fn long_row[2]
    enum:
        FSM_ISA_GENERIC
        FSM_ISA_AVX2
        FSM_ISA_AVX512
        FSM_ISA_COUNT
    const fsm_isa_table *fsm_isa(int isa)
    int fsm_best_isa()
    int fsm_isa_compiled(int isa)
    int fsm_isa_supported_by_cpu(int isa)

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FSM_HAVE_OPENMP 1
    static int fsm_omp_max_threads(void) { return omp_get_max_threads(); }
    #else
    #define FSM_HAVE_OPENMP 0
    static int fsm_omp_max_threads(void) { return 1; }
    #endif
    #ifndef FSM_BUILD_FLAGS
    #define FSM_BUILD_FLAGS ""
    #endif
    #if defined(__clang__)
    #define FSM_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #define FSM_COMPILER "gcc " __VERSION__
    #else
    #define FSM_COMPILER "unknown"
    #endif
    """
    int FSM_HAVE_OPENMP
    const char *FSM_BUILD_FLAGS
    const char *FSM_COMPILER
    int fsm_omp_max_threads() nogil

ISA_NAMES = ("generic", "avx2", "avx512")
# Calls below PARALLEL_MIN_ELEMENTS stay on one thread, and a call wakes at most
# one thread per task.  Work per parallel task (small enough that a 64x1000
# call keeps 8 threads busy: measured on 16 cores), and the row
# multiple of a task when rows lie side by side or are short (a multiple of
# every tile, so tasks split into whole tiles).  Side-by-side rows of at least
# FSM_STRIP_MIN_N elements (in strips with 64-byte vectors: fsm_kernels.h)
# take tasks of at least STRIP_ROWS rows, as wide as a strip of float32:
# narrower strips read x in shorter runs (512 rows: 0.82-1.0x).
cdef enum:
    TASK_ELEMENTS = 1 << 13
    TILE_ROWS = 64
    STRIP_ROWS = FSM_STRIP_BYTES // 4
    PARALLEL_MIN_ELEMENTS = 1 << 15
# At most LONG_ROWS rows of at least LONG_ROW_ELEMENTS are each split across
# the threads (fsm_long_row_fn) instead of giving each thread whole rows.  The
# choice depends on the shape alone, never on the thread count.
cdef enum:
    LONG_ROWS = 8
    LONG_ROW_ELEMENTS = 1 << 18

PARALLEL_MIN = PARALLEL_MIN_ELEMENTS

cdef enum:
    OP_SOFTMAX = 0
    OP_LOG_SOFTMAX = 1
    OP_LOGSUMEXP = 2
    OP_SOFTMAX_BACKWARD = 3
    OP_LOG_SOFTMAX_BACKWARD = 4
    OP_CROSS_ENTROPY = 5
SOFTMAX, LOG_SOFTMAX, LOGSUMEXP = OP_SOFTMAX, OP_LOG_SOFTMAX, OP_LOGSUMEXP
SOFTMAX_BACKWARD, LOG_SOFTMAX_BACKWARD = OP_SOFTMAX_BACKWARD, OP_LOG_SOFTMAX_BACKWARD

cdef const fsm_isa_table *_table = fsm_isa(fsm_best_isa())


def set_isa(str name):
    """Use the kernels of instruction set `name` ('generic', 'avx2', 'avx512')."""
    global _table
    if name not in ISA_NAMES:
        raise ValueError(f"unknown instruction set {name!r}; choose one of {ISA_NAMES}")
    cdef int isa = ISA_NAMES.index(name)
    if not fsm_isa_compiled(isa):
        raise ValueError(f"instruction set {name!r} is not compiled into this build")
    if not fsm_isa_supported_by_cpu(isa):
        raise ValueError(f"this CPU does not support instruction set {name!r}")
    _table = fsm_isa(isa)


def isa():
    """The name of the instruction set in use."""
    return _table.name.decode()


def available_isas():
    """The instruction sets compiled in and supported by this CPU, best last."""
    return tuple(n for i, n in enumerate(ISA_NAMES) if fsm_isa_supported_by_cpu(i))


def build_info():
    return {
        "openmp": bool(FSM_HAVE_OPENMP),
        "compiler": FSM_COMPILER.decode().strip(),
        "flags": FSM_BUILD_FLAGS.decode(),
        "compiled_isas": tuple(n for i, n in enumerate(ISA_NAMES) if fsm_isa_compiled(i)),
    }


# ---- threads -----------------------------------------------------------------

cdef int _user_threads = 0      # set_num_threads(); 0: follow OpenMP's limit


def set_user_threads(int n):
    """Threads for calls without num_threads=; 0 follows OpenMP (OMP_NUM_THREADS,
    threadpoolctl's threadpool_limits)."""
    global _user_threads
    _user_threads = n


cpdef int default_threads():
    return _user_threads if _user_threads > 0 else max(1, fsm_omp_max_threads())


cpdef int threads_for(Py_ssize_t size, int requested):
    """Threads for a call on `size` elements; requested 0 means the default.
    Small calls run on the calling thread alone: waking a pool costs more."""
    if size < PARALLEL_MIN_ELEMENTS:
        return 1
    return requested if requested > 0 else default_threads()


cdef inline int _kernel_type(cnp.ndarray a, int *elem_type) except -1:
    """The kernel variant for a's dtype, [0] float32 or [1] float64; *elem_type
    says how the float32 kernels read it (native, float16 or bfloat16)."""
    cdef int t = cnp.PyArray_TYPE(a)
    elem_type[0] = FSM_NATIVE
    if t == cnp.NPY_FLOAT32:
        return 0
    if t == cnp.NPY_FLOAT64:
        return 1
    if t == cnp.NPY_FLOAT16:
        elem_type[0] = FSM_FLOAT16
        return 0
    if a.dtype.name == "bfloat16" and a.dtype.itemsize == 2:
        elem_type[0] = FSM_BFLOAT16
        return 0
    raise TypeError(f"kernels take float16, bfloat16, float32 or float64, not {a.dtype}")


cdef enum:
    MAX_ARRAYS = 4


cdef struct Rows:
    # Up to MAX_ARRAYS arrays share the rows: row (o, r) of array k starts at
    # data[k] + (o * outer[k] + r * row[k]) * item[k], its elements elem[k]
    # apart (strides in elements).  Rows are grouped into tasks of
    # rows_per_task consecutive r.
    fsm_idx n_outer, n_rows, n
    fsm_idx rows_per_task, tasks_per_outer, n_tasks
    char *data[MAX_ARRAYS]
    fsm_idx item[MAX_ARRAYS]
    fsm_idx outer[MAX_ARRAYS]
    fsm_idx row[MAX_ARRAYS]
    fsm_idx elem[MAX_ARRAYS]


cdef Rows _rows(list arrays) except *:
    """The rows of (outer, n, inner) problems, the middle axis reduced.  arrays[0]
    is the input x3 and sets the geometry; the others (None: absent) are 3-D
    arrays of the same shape, or of shape (outer, 1, inner) for one value per row."""
    cdef Rows g
    cdef cnp.ndarray x3 = arrays[0]
    cdef cnp.ndarray a
    cdef fsm_idx outer = cnp.PyArray_DIM(x3, 0), inner = cnp.PyArray_DIM(x3, 2)
    cdef int k
    g.n = cnp.PyArray_DIM(x3, 1)
    if inner == 1:       # one flat run of rows: let a task take many of them
        g.n_outer, g.n_rows = 1, outer
    else:
        g.n_outer, g.n_rows = outer, inner
    for k in range(MAX_ARRAYS):
        g.data[k] = NULL
        g.item[k] = g.outer[k] = g.row[k] = g.elem[k] = 0
        if k >= len(arrays) or arrays[k] is None:
            continue
        a = arrays[k]
        g.data[k] = <char *> cnp.PyArray_DATA(a)
        g.item[k] = cnp.PyArray_ITEMSIZE(a)
        g.elem[k] = cnp.PyArray_STRIDE(a, 1) // g.item[k]
        if inner == 1:
            g.row[k] = cnp.PyArray_STRIDE(a, 0) // g.item[k]
        else:
            g.outer[k] = cnp.PyArray_STRIDE(a, 0) // g.item[k]
            g.row[k] = cnp.PyArray_STRIDE(a, 2) // g.item[k]
    _partition(&g)
    return g


cdef void _partition(Rows *g) noexcept nogil:
    """Tasks of about TASK_ELEMENTS elements, whole tiles of side-by-side or short
    rows: the partition, and so every result bit, does not depend on the threads."""
    g.rows_per_task = max(1, TASK_ELEMENTS // max(g.n, 1))
    if g.row[0] == 1 and g.n >= FSM_STRIP_MIN_N:
        g.rows_per_task = max(g.rows_per_task, STRIP_ROWS)
    if g.row[0] == 1 or g.n <= FSM_SHORT_N:
        g.rows_per_task = (g.rows_per_task + TILE_ROWS - 1) // TILE_ROWS * TILE_ROWS
    g.rows_per_task = max(1, min(g.rows_per_task, g.n_rows))
    g.tasks_per_outer = (g.n_rows + g.rows_per_task - 1) // g.rows_per_task
    g.n_tasks = g.n_outer * g.tasks_per_outer


cdef Rows _flat_rows(fsm_idx nrows, fsm_idx n, char *x, char *y, fsm_idx item, fsm_idx y_row):
    """The rows of a C-contiguous (nrows, n) x into y with row stride y_row: what
    _rows gives, without building Python objects (the small-call fast path)."""
    cdef Rows g
    cdef int k
    for k in range(MAX_ARRAYS):
        g.data[k] = NULL
        g.item[k] = g.outer[k] = g.row[k] = g.elem[k] = 0
    g.n, g.n_outer, g.n_rows = n, 1, nrows
    g.data[0], g.data[1] = x, y
    g.item[0] = g.item[1] = item
    g.elem[0] = g.elem[1] = 1
    g.row[0], g.row[1] = n, y_row
    _partition(&g)
    return g


cdef struct Call:
    # What a task runs: the operation, the kernel variant and its options.
    int op, dt
    fsm_opts opts
    fsm_ce_opts ce
    bint labels         # cross-entropy: array 1 holds int64 labels, not probabilities


cdef void _task(const Call *c, const Rows *g, fsm_idx t) noexcept nogil:
    """The rows of task t: arrays as for _run."""
    cdef fsm_idx o = t // g.tasks_per_outer
    cdef fsm_idx r0 = (t % g.tasks_per_outer) * g.rows_per_task
    cdef fsm_idx nr = min(g.rows_per_task, g.n_rows - r0)
    cdef char *p[MAX_ARRAYS]
    cdef int k
    for k in range(MAX_ARRAYS):
        p[k] = NULL
        if g.data[k] != NULL:
            p[k] = g.data[k] + (o * g.outer[k] + r0 * g.row[k]) * g.item[k]
    if c.op == OP_SOFTMAX:
        _table.softmax[c.dt](p[0], g.row[0], g.elem[0], p[1], g.row[1], g.elem[1], nr, g.n,
                             &c.opts, <const unsigned char *> p[2])
    elif c.op == OP_LOG_SOFTMAX:
        _table.log_softmax[c.dt](p[0], g.row[0], g.elem[0], p[1], g.row[1], g.elem[1], nr, g.n,
                                 &c.opts, <const unsigned char *> p[2])
    elif c.op == OP_LOGSUMEXP:
        _table.logsumexp[c.dt](p[0], g.row[0], g.elem[0], p[1], g.row[1], nr, g.n,
                               &c.opts, <const unsigned char *> p[2])
    elif c.op == OP_SOFTMAX_BACKWARD:
        _table.softmax_backward[c.dt](p[0], g.row[0], g.elem[0], p[1], g.row[1], g.elem[1],
                                      p[2], g.row[2], g.elem[2], nr, g.n, c.opts.temperature)
    elif c.op == OP_LOG_SOFTMAX_BACKWARD:
        _table.log_softmax_backward[c.dt](p[0], g.row[0], g.elem[0], p[1], g.row[1], g.elem[1],
                                          p[2], g.row[2], g.elem[2], nr, g.n, c.opts.temperature)
    else:   # cross-entropy: x, labels or probabilities, loss, gradient
        _table.cross_entropy[c.dt](p[0], g.row[0], g.elem[0],
                                   <const int64_t *> p[1] if c.labels else NULL, g.row[1],
                                   NULL if c.labels else p[1], g.row[1], g.elem[1],
                                   <double *> p[2], g.row[2], p[3], g.row[3], g.elem[3], nr, g.n, &c.ce)


cdef bint _long_rows(const Call *c, const Rows *g) noexcept nogil:
    """Whether c's rows are few and long enough to split each across the threads."""
    return (c.op <= OP_LOGSUMEXP and g.data[2] == NULL
            and c.opts.x_type == FSM_NATIVE and c.opts.y_type == FSM_NATIVE
            and g.n >= LONG_ROW_ELEMENTS and g.n_outer * g.n_rows <= LONG_ROWS)


cdef void _run(Call *c, const Rows *g, int nthreads) noexcept nogil:
    """Run c over all rows: tasks in parallel, or few long rows one at a time,
    each split across the threads."""
    cdef fsm_idx t, o, r
    if g.n_tasks == 0:
        return
    cdef fsm_idx rows = g.n_outer * g.n_rows
    # softmax's and log_softmax's y has x's shape (logsumexp never reads y_cold)
    c.opts.y_cold = rows * g.n * g.item[1] >= FSM_COLD_Y_BYTES
    c.opts.data_cold = rows * (g.n * g.item[0] + (1 if c.op == OP_LOGSUMEXP else g.n) * g.item[1]) >= FSM_COLD_DATA_BYTES
    if _long_rows(c, g):
        for o in range(g.n_outer):
            for r in range(g.n_rows):
                _table.long_row[c.dt](c.op, g.data[0] + (o * g.outer[0] + r * g.row[0]) * g.item[0],
                                      g.elem[0], g.data[1] + (o * g.outer[1] + r * g.row[1]) * g.item[1],
                                      g.elem[1], g.n, c.opts.temperature, nthreads)
        return
    if nthreads > g.n_tasks:     # no thread is woken for nothing
        nthreads = <int> g.n_tasks
    if nthreads == 1:        # entering an OpenMP region costs more than a small call
        for t in range(g.n_tasks):
            _task(c, g, t)
        return
    for t in prange(g.n_tasks, schedule="static", num_threads=nthreads):
        _task(c, g, t)


cdef Call _call(int op, cnp.ndarray x3, object y3, double temperature):
    """A Call for op on x3 (the kernel variant and element types of x3 and y3)."""
    cdef Call c
    cdef int y_type = FSM_NATIVE
    c.op = op
    c.dt = _kernel_type(x3, &c.opts.x_type)
    if y3 is not None:
        _kernel_type(y3, &y_type)
    c.opts.y_type = y_type
    c.opts.temperature = temperature
    c.opts.mask_row_stride = c.opts.mask_stride = 0
    c.opts.y_cold = c.opts.data_cold = 0
    c.labels = False
    return c


def same_path_as_default(cnp.ndarray x3, cnp.ndarray y3):
    """Whether writing into y3 takes the kernel path that a new result of x3's
    layout takes.  Rows lying side by side (row stride 1) are vectorized across
    when the output rows lie side by side too, and otherwise along each row;
    the two round differently in the last bit, and a result written into out=
    must not differ from the result of a call without out=."""
    cdef Rows g = _rows([x3, y3])
    return not (g.row[0] == 1 and g.elem[0] != 1) or g.row[1] == 1


def run(int op, cnp.ndarray x3, cnp.ndarray y3, int nthreads, double temperature=1.0, mask3=None):
    """op (softmax, log_softmax, logsumexp) along axis 1 of x3 (outer, n, inner) into y3.

    softmax/log_softmax: y3 has x3's shape.  logsumexp: y3 is (outer, 1, inner).
    x3 and y3 are aligned arrays of a float dtype the kernels take (float32,
    float64; float16 and bfloat16 read and written by the float32 kernels), y3
    writeable and either disjoint from x3 or x3 itself.  mask3: None, or a bool
    array of x3's shape.  The GIL is released while the kernels run.
    """
    cdef Call c = _call(op, x3, y3, temperature)
    if c.dt == 1 and c.opts.y_type != FSM_NATIVE or c.dt == 0 and cnp.PyArray_TYPE(y3) == cnp.NPY_FLOAT64:
        raise TypeError(f"kernels cannot write {y3.dtype} from {x3.dtype}")
    cdef Rows g = _rows([x3, y3, mask3])
    c.opts.mask_row_stride, c.opts.mask_stride = g.row[2], g.elem[2]
    with nogil:
        _run(&c, &g, nthreads)


def run_backward(int op, cnp.ndarray a3, cnp.ndarray g3, cnp.ndarray out3, double temperature,
                 int nthreads):
    """softmax/log_softmax backward along axis 1 of same-shaped, same-dtype
    float32/float64 3-D arrays: out3 disjoint from a3 and g3, or one of them."""
    cdef Call c = _call(op, a3, None, temperature)
    cdef Rows g = _rows([a3, g3, out3])
    with nogil:
        _run(&c, &g, nthreads)


def run_cross_entropy(cnp.ndarray x3, cnp.ndarray target3, cnp.ndarray loss3, object grad3,
                      double temperature, object weight, object ignore_index,
                      double label_smoothing, double grad_scale, int nthreads):
    """Cross-entropy along axis 1 of the logits x3 (outer, n, inner).

    target3: int64 labels (outer, 1, inner) or probabilities of x3's shape in
    the compute dtype; loss3: float64 (outer, 1, inner); grad3: None or an
    array of x3's shape; weight: None or n contiguous weights in the compute
    dtype; ignore_index: None or an int.  See fsm_kernels.h for the math."""
    cdef Call c = _call(OP_CROSS_ENTROPY, x3, grad3, temperature)
    cdef Rows g = _rows([x3, target3, loss3, grad3])
    c.labels = cnp.PyArray_TYPE(target3) == cnp.NPY_INT64
    c.ce.temperature = temperature
    c.ce.label_smoothing = label_smoothing
    c.ce.grad_scale = grad_scale
    c.ce.weight = NULL if weight is None else cnp.PyArray_DATA(<cnp.ndarray> weight)
    c.ce.has_ignore = ignore_index is not None
    c.ce.ignore_index = ignore_index if ignore_index is not None else 0
    c.ce.x_type = c.opts.x_type
    c.ce.grad_type = c.opts.y_type
    # item[3] is 0 without a gradient
    c.ce.data_cold = g.n_outer * g.n_rows * g.n * (g.item[0] + g.item[3]) >= FSM_COLD_DATA_BYTES
    with nogil:
        _run(&c, &g, nthreads)


cdef inline bint _plain_last_axis(object x, object axis):
    """x is a non-empty, aligned, C-contiguous, native float32/float64 ndarray and
    axis its last: the rows are contiguous and nothing needs converting."""
    if type(x) is not cnp.ndarray or type(axis) is not int:
        return False
    cdef cnp.ndarray a = <cnp.ndarray> x
    cdef int t = cnp.PyArray_TYPE(a)
    cdef int nd = cnp.PyArray_NDIM(a)
    return (nd > 0 and (t == cnp.NPY_FLOAT32 or t == cnp.NPY_FLOAT64)
            and cnp.PyArray_SIZE(a) > 0
            and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a)
            and cnp.PyArray_ISNOTSWAPPED(a)
            and (axis == -1 or axis == nd - 1))


cdef inline bint _plain_out(cnp.ndarray a, object out, int op):
    """out can take op(a) on the fast path: an aligned, C-contiguous, writeable
    native array of a's type and of the result's shape, either a itself or not
    overlapping it (both are contiguous, so comparing the byte ranges is exact)."""
    if type(out) is not cnp.ndarray:
        return False
    cdef cnp.ndarray o = <cnp.ndarray> out
    cdef int nd = cnp.PyArray_NDIM(a) - (1 if op == OP_LOGSUMEXP else 0)
    if (cnp.PyArray_TYPE(o) != cnp.PyArray_TYPE(a) or cnp.PyArray_NDIM(o) != nd
            or not cnp.PyArray_IS_C_CONTIGUOUS(o) or not cnp.PyArray_ISALIGNED(o)
            or not cnp.PyArray_ISNOTSWAPPED(o) or not cnp.PyArray_ISWRITEABLE(o)):
        return False
    cdef int k
    for k in range(nd):
        if cnp.PyArray_DIM(o, k) != cnp.PyArray_DIM(a, k):
            return False
    cdef char *xa = <char *> cnp.PyArray_DATA(a)
    cdef char *oa = <char *> cnp.PyArray_DATA(o)
    return (oa == xa and op != OP_LOGSUMEXP) or oa + cnp.PyArray_NBYTES(o) <= xa or xa + cnp.PyArray_NBYTES(a) <= oa


cdef object _fast_call(int op, object x, object axis, object dtype, object temperature, object where,
                       object out, object num_threads):
    """The whole call, when it takes the fast path: no dtype=, where= or
    temperature, a plain array (_plain_last_axis) along its last axis, out=
    None or one _plain_out accepts, num_threads= None or a positive int.  Returns
    the result (a NumPy scalar for logsumexp of 1-d input), or None for every
    other call: the general path takes those, and checks their arguments."""
    if dtype is not None or where is not None or type(temperature) is not float or temperature != 1.0:
        return None
    cdef int requested = 0           # the default
    if num_threads is not None:
        if type(num_threads) is not int or not 1 <= num_threads <= 1 << 30:
            return None
        requested = num_threads
    if not _plain_last_axis(x, axis):
        return None
    cdef cnp.ndarray a = <cnp.ndarray> x
    if out is not None and not _plain_out(a, out, op):
        return None
    cdef int nd = cnp.PyArray_NDIM(a)
    cdef fsm_idx n = cnp.PyArray_DIM(a, nd - 1)
    cdef fsm_idx size = cnp.PyArray_SIZE(a)
    cdef cnp.ndarray y
    if out is not None:
        y = <cnp.ndarray> out
    elif op == OP_LOGSUMEXP:
        y = cnp.PyArray_EMPTY(nd - 1, cnp.PyArray_DIMS(a), cnp.PyArray_TYPE(a), 0)
    else:
        y = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(a), cnp.PyArray_TYPE(a), 0)
    cdef Call c = _call(op, a, None, 1.0)
    cdef Rows g = _flat_rows(size // n, n, <char *> cnp.PyArray_DATA(a), <char *> cnp.PyArray_DATA(y),
                             cnp.PyArray_ITEMSIZE(a), 1 if op == OP_LOGSUMEXP else n)
    cdef int nthreads = threads_for(size, requested)
    with nogil:
        _run(&c, &g, nthreads)
    if out is None and nd == 1 and op == OP_LOGSUMEXP:
        return y[()]
    return y


cdef object _entry(int op, object general, object x, object axis, object dtype, object temperature,
                   object where, object out, object num_threads):
    y = _fast_call(op, x, axis, dtype, temperature, where, out, num_threads)
    if y is not None:
        return y
    return general(x, axis, dtype=dtype, temperature=temperature, where=where, out=out,
                   num_threads=num_threads)


def fast_path(int op):
    """Decorator: the public function for op (softmax, log_softmax, logsumexp),
    which takes the fast path (_fast_call) itself and hands every other call to
    the decorated function of _api.py, whose name, docstring and signature it
    carries.  Compiled, it saves a Python call: about 0.3 us, a fifth of a small
    call.  Each op has its own def so that argument errors name the function."""
    def decorate(general):
        def softmax(x, axis=-1, *, dtype=None, temperature=1.0, where=None, out=None, num_threads=None):
            return _entry(op, general, x, axis, dtype, temperature, where, out, num_threads)

        def log_softmax(x, axis=-1, *, dtype=None, temperature=1.0, where=None, out=None, num_threads=None):
            return _entry(op, general, x, axis, dtype, temperature, where, out, num_threads)

        def logsumexp(x, axis=-1, *, b=None, keepdims=False, return_sign=False, dtype=None,
                      temperature=1.0, where=None, out=None, num_threads=None):
            if b is None and not keepdims and not return_sign:
                y = _fast_call(op, x, axis, dtype, temperature, where, out, num_threads)
                if y is not None:
                    return y
            return general(x, axis, b=b, keepdims=keepdims, return_sign=return_sign, dtype=dtype,
                           temperature=temperature, where=where, out=out, num_threads=num_threads)

        entry = {OP_SOFTMAX: softmax, OP_LOG_SOFTMAX: log_softmax, OP_LOGSUMEXP: logsumexp}[op]
        return functools.update_wrapper(entry, general)
    return decorate
