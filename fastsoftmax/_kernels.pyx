# cython: boundscheck=False, wraparound=False, cdivision=True
"""Threads and memory layout: the layer between the NumPy API and the C row kernels.

Every call arrives here as 3-D views (outer, n, inner) prepared by _api.py: the
softmax axis is the middle one.  The rows to process are the (outer, inner)
pairs; they are split into tasks that OpenMP runs in parallel with the GIL
released.  Each row is computed by one thread from start to end, so results do
not depend on the number of threads.
"""
cimport numpy as cnp
from cython.parallel cimport prange

cnp.import_array()

cdef extern from "fsm_kernels.h" nogil:
    ctypedef Py_ssize_t fsm_idx
    ctypedef void (*fsm_map_rows_fn)(const void *x, fsm_idx x_row_stride, fsm_idx x_stride,
                                     void *y, fsm_idx y_row_stride, fsm_idx y_stride,
                                     fsm_idx nrows, fsm_idx n) noexcept nogil
    ctypedef void (*fsm_reduce_rows_fn)(const void *x, fsm_idx x_row_stride, fsm_idx x_stride,
                                        void *y, fsm_idx y_row_stride,
                                        fsm_idx nrows, fsm_idx n) noexcept nogil
    ctypedef struct fsm_isa_table:
        const char *name
        fsm_map_rows_fn softmax[2]
        fsm_map_rows_fn log_softmax[2]
        fsm_reduce_rows_fn logsumexp[2]
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
# Calls below PARALLEL_MIN_ELEMENTS stay on one thread.  Work per parallel task,
# and the row multiple of a task when rows lie side by
# side (a multiple of every vector width, so tasks split into whole tiles).
cdef enum:
    TASK_ELEMENTS = 1 << 16
    TILE_ROWS = 64
    PARALLEL_MIN_ELEMENTS = 1 << 15

PARALLEL_MIN = PARALLEL_MIN_ELEMENTS

cdef enum:
    OP_SOFTMAX = 0
    OP_LOG_SOFTMAX = 1
    OP_LOGSUMEXP = 2
SOFTMAX, LOG_SOFTMAX, LOGSUMEXP = OP_SOFTMAX, OP_LOG_SOFTMAX, OP_LOGSUMEXP

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
        "compiler": FSM_COMPILER.decode(),
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


cdef inline int _dtype_index(cnp.ndarray a) except -1:
    cdef int t = cnp.PyArray_TYPE(a)
    if t == cnp.NPY_FLOAT32:
        return 0
    if t == cnp.NPY_FLOAT64:
        return 1
    raise TypeError(f"kernels take float32 or float64, not {a.dtype}")


cdef struct Rows:
    # Row (o, r) of x starts at x + o * x_outer + r * x_row, its elements x_elem
    # apart (strides in elements; y likewise).  Rows are grouped into tasks of
    # rows_per_task consecutive r.
    fsm_idx n_outer, n_rows, n
    fsm_idx x_outer, x_row, x_elem, y_outer, y_row, y_elem
    fsm_idx rows_per_task, tasks_per_outer, n_tasks


cdef Rows _rows(fsm_idx outer, fsm_idx n, fsm_idx inner, fsm_idx x_strides[3], fsm_idx y_strides[3]):
    """The rows of an (outer, n, inner) problem, the middle axis reduced."""
    cdef Rows g
    g.n = n
    g.x_elem, g.y_elem = x_strides[1], y_strides[1]
    if inner == 1:       # one flat run of rows: let a task take many of them
        g.n_outer, g.n_rows = 1, outer
        g.x_outer, g.y_outer = 0, 0
        g.x_row, g.y_row = x_strides[0], y_strides[0]
    else:
        g.n_outer, g.n_rows = outer, inner
        g.x_outer, g.y_outer = x_strides[0], y_strides[0]
        g.x_row, g.y_row = x_strides[2], y_strides[2]
    # Tasks of about TASK_ELEMENTS elements, whole tiles of side-by-side rows:
    # the partition, and so every result bit, does not depend on the threads.
    g.rows_per_task = max(1, TASK_ELEMENTS // max(g.n, 1))
    if g.x_row == 1:
        g.rows_per_task = (g.rows_per_task + TILE_ROWS - 1) // TILE_ROWS * TILE_ROWS
    g.rows_per_task = max(1, min(g.rows_per_task, g.n_rows))
    g.tasks_per_outer = (g.n_rows + g.rows_per_task - 1) // g.rows_per_task
    g.n_tasks = g.n_outer * g.tasks_per_outer
    return g


cdef void _run(int op, int dt, const char *xp, char *yp, fsm_idx item, Rows g, int nthreads) noexcept nogil:
    """Run op over all rows, tasks in parallel.  For logsumexp, y_elem is unused."""
    cdef fsm_map_rows_fn map_fn = NULL
    cdef fsm_reduce_rows_fn reduce_fn = NULL
    if op == OP_SOFTMAX:
        map_fn = _table.softmax[dt]
    elif op == OP_LOG_SOFTMAX:
        map_fn = _table.log_softmax[dt]
    else:
        reduce_fn = _table.logsumexp[dt]
    cdef fsm_idx t, o, r0, nr
    cdef const char *xt
    cdef char *yt
    if g.n_tasks == 0:
        return
    for t in prange(g.n_tasks, schedule="static", num_threads=nthreads):
        o = t // g.tasks_per_outer
        r0 = (t % g.tasks_per_outer) * g.rows_per_task
        nr = min(g.rows_per_task, g.n_rows - r0)
        xt = xp + (o * g.x_outer + r0 * g.x_row) * item
        yt = yp + (o * g.y_outer + r0 * g.y_row) * item
        if map_fn != NULL:
            map_fn(xt, g.x_row, g.x_elem, yt, g.y_row, g.y_elem, nr, g.n)
        else:
            reduce_fn(xt, g.x_row, g.x_elem, yt, g.y_row, nr, g.n)


cdef void _strides3(cnp.ndarray a, fsm_idx item, fsm_idx out[3]) noexcept:
    cdef int d
    for d in range(3):
        out[d] = cnp.PyArray_STRIDE(a, d) // item


cdef Rows _rows3(cnp.ndarray x3, cnp.ndarray y3):
    """The rows of x3 (outer, n, inner) and of y3 (same shape, or (outer, 1, inner))."""
    cdef fsm_idx item = cnp.PyArray_ITEMSIZE(x3)
    cdef fsm_idx xs[3]
    cdef fsm_idx ys[3]
    _strides3(x3, item, xs)
    _strides3(y3, item, ys)
    return _rows(cnp.PyArray_DIM(x3, 0), cnp.PyArray_DIM(x3, 1), cnp.PyArray_DIM(x3, 2), xs, ys)


def same_path_as_default(cnp.ndarray x3, cnp.ndarray y3):
    """Whether writing into y3 takes the kernel path that a new result of x3's
    layout takes.  Rows lying side by side (row stride 1) are vectorized across
    when the output rows lie side by side too, and otherwise along each row;
    the two round differently in the last bit, and a result written into out=
    must not differ from the result of a call without out=."""
    cdef Rows g = _rows3(x3, y3)
    return not (g.x_row == 1 and g.x_elem != 1) or g.y_row == 1


def run(int op, cnp.ndarray x3, cnp.ndarray y3, int nthreads):
    """op along axis 1 of x3 (outer, n, inner) into y3.

    softmax/log_softmax: y3 has x3's shape.  logsumexp: y3 is (outer, 1, inner).
    Both are aligned arrays of one native float dtype, y3 writeable and either
    disjoint from x3 or x3 itself.  The GIL is released while the kernels run.
    """
    cdef int dt = _dtype_index(x3)
    cdef fsm_idx item = cnp.PyArray_ITEMSIZE(x3)
    cdef Rows g = _rows3(x3, y3)
    with nogil:
        _run(op, dt, <const char *> cnp.PyArray_DATA(x3), <char *> cnp.PyArray_DATA(y3), item, g, nthreads)


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


def run_last_axis(int op, object x, object axis, int requested_threads):
    """The fast path of a call without out= or dtype=: op along the last axis of
    a plain array (see _plain_last_axis) into a new array; None for any other x.
    requested_threads: num_threads=, or 0 for the default."""
    if not _plain_last_axis(x, axis):
        return None
    cdef cnp.ndarray a = <cnp.ndarray> x
    cdef int nd = cnp.PyArray_NDIM(a)
    cdef fsm_idx n = cnp.PyArray_DIM(a, nd - 1)
    cdef fsm_idx size = cnp.PyArray_SIZE(a)
    cdef cnp.ndarray y
    if op == OP_LOGSUMEXP:
        y = cnp.PyArray_EMPTY(nd - 1, cnp.PyArray_DIMS(a), cnp.PyArray_TYPE(a), 0)
    else:
        y = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(a), cnp.PyArray_TYPE(a), 0)
    cdef fsm_idx xs[3]
    cdef fsm_idx ys[3]
    xs[0], xs[1], xs[2] = n, 1, 1
    ys[0], ys[1], ys[2] = (1 if op == OP_LOGSUMEXP else n), 1, 1
    cdef Rows g = _rows(size // n, n, 1, xs, ys)
    cdef int nthreads = threads_for(size, requested_threads)
    cdef int dt = _dtype_index(a)
    with nogil:
        _run(op, dt, <const char *> cnp.PyArray_DATA(a), <char *> cnp.PyArray_DATA(y),
             cnp.PyArray_ITEMSIZE(a), g, nthreads)
    return y
