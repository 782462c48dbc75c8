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
# Work per parallel task, and the row multiple of a task when rows lie side by
# side (a multiple of every vector width, so tasks split into whole tiles).
cdef enum:
    TASK_ELEMENTS = 1 << 16
    TILE_ROWS = 64

OP_SOFTMAX = 0
OP_LOG_SOFTMAX = 1

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


def omp_max_threads():
    """OpenMP's current thread limit (OMP_NUM_THREADS, threadpoolctl); 1 without OpenMP."""
    return fsm_omp_max_threads()


cdef inline int _dtype_index(cnp.ndarray a) except -1:
    cdef int t = cnp.PyArray_TYPE(a)
    if t == cnp.NPY_FLOAT32:
        return 0
    if t == cnp.NPY_FLOAT64:
        return 1
    raise TypeError(f"kernels take float32 or float64, not {a.dtype}")


cdef struct Geometry:
    # rows (o, r): x + o * outer_stride + r * row_stride, elements `stride` apart
    fsm_idx n_outer, n_rows, n
    fsm_idx x_outer, x_row, x_elem, y_outer, y_row, y_elem
    fsm_idx rows_per_task, tasks_per_outer, n_tasks


cdef Geometry _geometry(cnp.ndarray x3, cnp.ndarray y, bint reduce):
    """Rows of x3 (outer, n, inner) and of y (same shape, or (outer, inner) if reduce)."""
    cdef Geometry g
    cdef fsm_idx itemsize = cnp.PyArray_ITEMSIZE(x3)
    cdef cnp.npy_intp *xs = cnp.PyArray_STRIDES(x3)
    cdef cnp.npy_intp *ys = cnp.PyArray_STRIDES(y)
    cdef fsm_idx outer = cnp.PyArray_DIM(x3, 0), inner = cnp.PyArray_DIM(x3, 2)
    cdef fsm_idx yo = ys[0] // itemsize
    cdef fsm_idx yi = (ys[1] if reduce else ys[2]) // itemsize
    g.n = cnp.PyArray_DIM(x3, 1)
    g.x_elem = xs[1] // itemsize
    g.y_elem = 0 if reduce else ys[1] // itemsize
    if inner == 1:       # one flat run of rows: let a task take many of them
        g.n_outer, g.n_rows = 1, outer
        g.x_outer, g.y_outer = 0, 0
        g.x_row, g.y_row = xs[0] // itemsize, yo
    else:
        g.n_outer, g.n_rows = outer, inner
        g.x_outer, g.y_outer = xs[0] // itemsize, yo
        g.x_row, g.y_row = xs[2] // itemsize, yi
    # Tasks of about TASK_ELEMENTS elements, whole tiles of side-by-side rows:
    # the partition, and so every result bit, does not depend on the threads.
    g.rows_per_task = max(1, TASK_ELEMENTS // max(g.n, 1))
    if g.x_row == 1:
        g.rows_per_task = (g.rows_per_task + TILE_ROWS - 1) // TILE_ROWS * TILE_ROWS
    g.rows_per_task = min(g.rows_per_task, g.n_rows)
    g.tasks_per_outer = (g.n_rows + g.rows_per_task - 1) // g.rows_per_task
    g.n_tasks = g.n_outer * g.tasks_per_outer
    return g


def map_rows(int op, cnp.ndarray x3, cnp.ndarray y3, int nthreads):
    """y3 = op(x3) along axis 1 (op: OP_SOFTMAX or OP_LOG_SOFTMAX).

    x3 and y3 are aligned (outer, n, inner) arrays of one native float dtype with
    strides that are multiples of the item size; y3 is writeable and either
    does not overlap x3 or is x3 itself.
    """
    cdef int dt = _dtype_index(x3)
    cdef fsm_map_rows_fn fn = _table.softmax[dt] if op == OP_SOFTMAX else _table.log_softmax[dt]
    cdef Geometry g = _geometry(x3, y3, False)
    cdef char *xp = <char *> cnp.PyArray_DATA(x3)
    cdef char *yp = <char *> cnp.PyArray_DATA(y3)
    cdef fsm_idx item = cnp.PyArray_ITEMSIZE(x3)
    cdef fsm_idx t, o, r0, nr
    if g.n_tasks == 0:
        return
    for t in prange(g.n_tasks, nogil=True, schedule="static", num_threads=nthreads):
        o = t // g.tasks_per_outer
        r0 = (t % g.tasks_per_outer) * g.rows_per_task
        nr = min(g.rows_per_task, g.n_rows - r0)
        fn(xp + (o * g.x_outer + r0 * g.x_row) * item, g.x_row, g.x_elem,
           yp + (o * g.y_outer + r0 * g.y_row) * item, g.y_row, g.y_elem, nr, g.n)


def reduce_rows(cnp.ndarray x3, cnp.ndarray y2, int nthreads):
    """y2 = logsumexp(x3) along axis 1; y2 has shape (outer, inner)."""
    cdef int dt = _dtype_index(x3)
    cdef fsm_reduce_rows_fn fn = _table.logsumexp[dt]
    cdef Geometry g = _geometry(x3, y2, True)
    cdef char *xp = <char *> cnp.PyArray_DATA(x3)
    cdef char *yp = <char *> cnp.PyArray_DATA(y2)
    cdef fsm_idx item = cnp.PyArray_ITEMSIZE(x3)
    cdef fsm_idx t, o, r0, nr
    if g.n_tasks == 0:
        return
    for t in prange(g.n_tasks, nogil=True, schedule="static", num_threads=nthreads):
        o = t // g.tasks_per_outer
        r0 = (t % g.tasks_per_outer) * g.rows_per_task
        nr = min(g.rows_per_task, g.n_rows - r0)
        fn(xp + (o * g.x_outer + r0 * g.x_row) * item, g.x_row, g.x_elem,
           yp + (o * g.y_outer + r0 * g.y_row) * item, g.y_row, nr, g.n)
