"""NumPy semantics of fastsoftmax: validation, axes, the dtype policy, ``out=``.

Every public function comes through here.  This layer knows NumPy and nothing
about SIMD: it turns the call into 3-D views (outer, n, inner) of the input and
the output, with the reduced axis in the middle, without copying whenever the
array's layout allows it, and hands them to ``_kernels``.
"""
import math
import operator

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

from . import _kernels, _reference

__all__ = ["softmax", "log_softmax", "logsumexp", "set_num_threads", "get_num_threads"]

# Calls on fewer elements run on the calling thread alone.
PARALLEL_MIN_ELEMENTS = _kernels.PARALLEL_MIN

_F16, _F32, _F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)


# ---- threads ---------------------------------------------------------------

def set_num_threads(n):
    """Set the number of threads fastsoftmax uses (None: follow OpenMP's limit).

    By default fastsoftmax follows ``OMP_NUM_THREADS`` and threadpoolctl's
    ``threadpool_limits``; a value set here overrides them until reset with
    ``set_num_threads(None)``.  ``num_threads=`` of a single call overrides both.
    Calls on fewer than 32768 elements always run on the calling thread.
    """
    _kernels.set_user_threads(0 if n is None else _check_threads(n, "set_num_threads"))


def get_num_threads():
    """The number of threads a large call uses when ``num_threads`` is not given."""
    return _kernels.default_threads()


def _check_threads(n, func):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{func}: num_threads must be a positive int or None, not {n!r}")
    if n < 1:
        raise ValueError(f"{func}: num_threads must be >= 1, got {n}")
    return int(n)


def _requested_threads(num_threads, func):
    """num_threads= as the kernels take it: 0 for the default."""
    return 0 if num_threads is None else _check_threads(num_threads, func)


def _threads_for(num_threads, size, func):
    return _kernels.threads_for(size, _requested_threads(num_threads, func))


# ---- dtypes ----------------------------------------------------------------

def _is_half(dt):
    """float16, or ml_dtypes' bfloat16 (recognised by name: ml_dtypes is optional)."""
    return dt == _F16 or dt.name == "bfloat16"


def _dtypes(func, x_dtype, dtype, complex_ok=False):
    """(compute dtype, result dtype) for an input dtype under DESIGN §1's policy."""
    native = x_dtype.newbyteorder("=")
    if native in (_F32, _F64) or _is_half(native):
        result = native
    elif native.kind in "biu":
        result = _F64
    elif native.kind == "c" and complex_ok:
        result = native
    elif native.kind == "c":
        raise TypeError(f"{func} does not support complex input (dtype {x_dtype}); "
                        "only logsumexp does, as in scipy.special")
    else:
        raise TypeError(f"{func} does not support input of dtype {x_dtype}")
    if dtype is not None:
        try:
            requested = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"{func}: dtype={dtype!r} is not a NumPy dtype") from None
        if result.kind == "c":
            supported = requested.kind == "c"
        else:
            supported = requested in (_F32, _F64) or _is_half(requested)
        if not supported:
            raise TypeError(f"{func}: dtype={requested} is not supported for input of dtype "
                            f"{x_dtype}; use float16, bfloat16, float32 or float64")
        result = requested
    compute = _F32 if _is_half(result) else result
    return compute, result


def _native(x, compute):
    """x as an aligned, native-order array of the compute dtype (a copy only if needed)."""
    if x.dtype == compute and x.flags.aligned:
        return x
    with np.errstate(over="ignore"):     # dtype= may narrow: overflow rounds to +-inf
        return x.astype(compute)


# ---- axes and layout -------------------------------------------------------

def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        return normalize_axis_tuple(tuple(axis), ndim)
    return (normalize_axis_index(operator.index(axis), ndim),)


def _rows(x, axes, copy=True):
    """x with `axes` merged into one axis: (array, that axis, shape before merging).

    One axis is used where it is; several are moved to the end and reshaped
    into one, a copy only when the layout requires it (with copy=False, the
    array is None then)."""
    if len(axes) == 1:
        return x, axes[0], None
    k = len(axes)
    moved = np.moveaxis(x, axes, tuple(range(x.ndim - k, x.ndim)))
    lead = moved.shape[:x.ndim - k]
    shape = lead + (math.prod(moved.shape[x.ndim - k:]),)
    try:
        merged = np.reshape(moved, shape, copy=None if copy else False)
    except ValueError:
        merged = None
    return merged, len(lead), moved.shape


def _unrows(y, axes, moved_shape):
    """Inverse of _rows for a result of the merged shape."""
    if moved_shape is None:
        return y
    k = len(axes)
    return np.moveaxis(y.reshape(moved_shape), tuple(range(len(moved_shape) - k, len(moved_shape))), axes)


def _view3(a, axis, order=None):
    """a as a view of shape (outer, n, inner), n = a.shape[axis], and the order
    ('C' or 'F') in which the outer and inner dimensions were merged; (None,
    None) if no view exists.  Never copies.

    Two 3-D views index the same logical elements only if they were merged in
    the same order, so the output is viewed with the input's `order`."""
    outer, n, inner = math.prod(a.shape[:axis]), a.shape[axis], math.prod(a.shape[axis + 1:])
    if order in (None, "C"):
        try:
            return np.reshape(a, (outer, n, inner), copy=False), "C"
        except ValueError:
            pass
    if order in (None, "F"):
        try:
            return np.reshape(a.T, (inner, n, outer), copy=False).transpose(2, 1, 0), "F"
        except ValueError:
            pass
    return None, None


def _input3(a, axis):
    """(array, its 3-D view, merge order), copying `a` only if it has no 3-D view."""
    v, order = _view3(a, axis)
    if v is None:
        a = np.ascontiguousarray(a)
        v, order = _view3(a, axis)
    return a, v, order


def _out3(a, axis, order, x3):
    """The 3-D view through which the kernels write into (a view of) out= for
    input x3: merged in x3's order, and only if the kernels then take the path a
    new result would take (so out= never changes the result); else None."""
    y3, _ = _view3(a, axis, order)
    if y3 is None or not _kernels.same_path_as_default(x3, y3):
        return None
    return y3


def _check_out(func, out, shape, dtype):
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{func}: out must be a numpy.ndarray, not {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{func}: out has shape {out.shape}, but the result has shape {shape}")
    if out.dtype.newbyteorder("=") != dtype:
        raise ValueError(f"{func}: out has dtype {out.dtype}, but the result has dtype {dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{func}: out is read-only")
    return out


def _writes_safely(out, src):
    """Whether kernels reading `src` may write straight into `out`: no overlap, or
    exactly the same elements (in place)."""
    if not np.may_share_memory(out, src):
        return True
    same = (out.__array_interface__["data"][0] == src.__array_interface__["data"][0]
            and out.strides == src.strides and out.shape == src.shape)
    if same:
        return True
    try:
        return not np.shares_memory(out, src, max_work=10**6)
    except np.exceptions.TooHardError:
        return False


def _finish(res, out, result_dtype):
    """Deliver a computed result: into `out`, or as a new array (a scalar if 0-d)."""
    # Rounding to a half-precision result may overflow to +-inf: that is the
    # correctly rounded value, not an event to warn about.
    with np.errstate(over="ignore"):
        if out is not None:
            if res is not out:
                np.copyto(out, res, casting="unsafe")
            return out
        res = res.astype(result_dtype, copy=False)
    return res[()] if res.ndim == 0 else res


# ---- the operations ----------------------------------------------------------

def _map(op, func, x, axis, dtype, out, num_threads):
    """softmax / log_softmax: an output of x's shape."""
    if out is None and dtype is None:
        y = _kernels.run_last_axis(op, x, axis, _requested_threads(num_threads, func))
        if y is not None:
            return y
    x = np.asarray(x)
    compute, result = _dtypes(func, x.dtype, dtype)
    axes = _axes(axis, x.ndim)
    out = _check_out(func, out, x.shape, result)
    nthreads = _threads_for(num_threads, x.size, func)
    xc = _native(x, compute)
    rows, ax, moved_shape = _rows(xc, axes)
    rows, x3, order = _input3(rows, ax)

    y3 = None
    if out is not None and out.dtype == compute and out.flags.aligned:
        out_rows = _rows(out, axes, copy=False)[0]     # the kernels write out itself
        if out_rows is not None and _writes_safely(out_rows, rows):
            y3 = _out3(out_rows, ax, order, x3)
    if y3 is not None:
        _kernels.run(op, x3, y3, nthreads)
        return out
    # A new result has the input's memory layout (as NumPy's ufuncs do), so that
    # it takes the same kernel path as out=x would.
    y = np.empty_like(rows, dtype=compute)
    y3, _ = _view3(y, ax, order)
    if y3 is None:
        y = np.empty(rows.shape, dtype=compute, order=order)
        y3, _ = _view3(y, ax, order)
    _kernels.run(op, x3, y3, nthreads)
    return _finish(_unrows(y, axes, moved_shape), out, result)


def softmax(x, axis=-1, *, dtype=None, out=None, num_threads=None):
    """Softmax along an axis: ``exp(x) / sum(exp(x), axis)``, computed stably.

    Parameters
    ----------
    x : array_like
        Input.  float32 and float64 are computed in their own precision;
        float16 and bfloat16 in float32 (returned in the input dtype); bool and
        integers in float64.  Complex and other dtypes raise TypeError.
    axis : int, tuple of ints or None, optional
        Axis along which the entries sum to 1 (default: the last, as in
        ``torch.softmax``).  A tuple treats the listed axes as one; None means
        all axes (``scipy.special.softmax``'s default; see
        ``fastsoftmax.special``).
    dtype : dtype, optional
        Compute and return in this floating dtype (float16/bfloat16 results are
        computed in float32).
    out : ndarray, optional
        Array of the result's shape and dtype to write into.  ``out=x`` works in
        place without allocating; any other overlap with ``x`` is detected and
        handled.
    num_threads : int, optional
        Threads for this call.  Default: ``get_num_threads()``.  Calls with
        fewer than 32768 elements always run on one thread.

    Returns
    -------
    ndarray
        Same shape as ``x``; a NumPy scalar for 0-d input.

    See Also
    --------
    scipy.special.softmax, torch.softmax, log_softmax, logsumexp

    Notes
    -----
    Edge cases: a row containing NaN is all NaN; +inf is treated as the limit,
    so ``softmax([inf, 1]) == [1, 0]`` and ``softmax([inf, inf, 1]) == [.5, .5, 0]``;
    a row of only -inf is 0/0 = NaN; an empty axis gives an empty result.
    Terms below the smallest normal number (``exp(x - max) < 1.2e-38`` in
    float32) are exactly 0.  The input is never modified (unless it is ``out``).

    Accuracy: ``x - max`` is formed without rounding error and the sum is
    accumulated in double, so float32 results are within a few ulps of the
    exact value, independent of the row length.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fsm
    >>> fsm.softmax(np.array([1.0, 2.0, 3.0]))
    array([0.09003057, 0.24472847, 0.66524096])
    >>> fsm.softmax(np.array([[0.0, np.inf], [1.0, 1.0]]))
    array([[0. , 1. ],
           [0.5, 0.5]])
    """
    return _map(_kernels.SOFTMAX, "softmax", x, axis, dtype, out, num_threads)


def log_softmax(x, axis=-1, *, dtype=None, out=None, num_threads=None):
    """Logarithm of softmax along an axis: ``x - logsumexp(x, axis)``, computed stably.

    Parameters are those of :func:`softmax`.

    Returns
    -------
    ndarray
        Same shape as ``x``; a NumPy scalar for 0-d input.

    See Also
    --------
    scipy.special.log_softmax, torch.log_softmax, softmax, logsumexp

    Notes
    -----
    Same dtype policy as :func:`softmax`.  A row containing NaN is all NaN; if a
    row has k entries equal to +inf, they get ``-log(k)`` and the others -inf;
    a row of only -inf is NaN.  ``x - max`` is computed without rounding error
    and ``log(sum)`` is subtracted in extended precision, so entries far below
    the max (where ``softmax`` underflows to 0) stay accurate.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fsm
    >>> fsm.log_softmax(np.array([0.0, 0.0]))
    array([-0.69314718, -0.69314718])
    >>> fsm.log_softmax(np.array([1000.0, 0.0]))
    array([    0., -1000.])
    """
    return _map(_kernels.LOG_SOFTMAX, "log_softmax", x, axis, dtype, out, num_threads)


def logsumexp(x, axis=-1, *, b=None, keepdims=False, return_sign=False, dtype=None,
              out=None, num_threads=None):
    """``log(sum(b * exp(x), axis))``, computed stably.

    Parameters
    ----------
    x : array_like
        Input.  Same dtype policy as :func:`softmax`, plus complex input (the
        principal complex logarithm, as in ``scipy.special.logsumexp``).
    axis : int, tuple of ints or None, optional
        Axes to reduce (default: the last).  None reduces all axes.
    b : array_like, optional
        Weights broadcastable to ``x``; may be negative (see ``return_sign``).
    keepdims : bool, optional
        Keep the reduced axes with length one.
    return_sign : bool, optional
        Also return the sign of the sum, and ``log|sum|`` as the value.
    dtype : dtype, optional
        Compute and return in this dtype.
    out : ndarray, optional
        Array of the result's shape and dtype to write the value into.
    num_threads : int, optional
        Threads for this call (see :func:`softmax`).

    Returns
    -------
    res : ndarray or scalar
        The reduced array; a NumPy scalar when all axes are reduced.
    sgn : ndarray or scalar
        Only with ``return_sign=True``: the sign of the sum (+1, -1, 0; a unit
        complex number for complex input).

    See Also
    --------
    scipy.special.logsumexp, torch.logsumexp, numpy.logaddexp, softmax

    Notes
    -----
    A NaN gives NaN; any +inf gives +inf; only -inf (or an empty axis) gives
    -inf.  Without ``b`` and ``return_sign``, real input is reduced by the C
    kernels in one read of the input; ``b=``, ``return_sign=`` and complex
    input use the pure-NumPy implementation (``fastsoftmax._reference``).

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fsm
    >>> float(fsm.logsumexp(np.array([0.0, 0.0])))
    0.6931471805599453
    >>> fsm.logsumexp(np.array([[1e3, 1e3], [-np.inf, -np.inf]]))
    array([1000.69314718,          -inf])
    """
    if b is None and not keepdims and not return_sign and dtype is None and out is None:
        y = _kernels.run_last_axis(_kernels.LOGSUMEXP, x, axis, _requested_threads(num_threads, "logsumexp"))
        if y is not None:
            return y if y.ndim else y[()]
    func = "logsumexp"
    x = np.asarray(x)
    if b is not None:      # b may broadcast x to more dimensions, as in SciPy
        x, b = np.broadcast_arrays(x, np.asarray(b))
    compute, result = _dtypes(func, x.dtype, dtype, complex_ok=True)
    axes = _axes(axis, x.ndim)
    if keepdims:
        shape = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
    else:
        shape = tuple(s for i, s in enumerate(x.shape) if i not in axes)
    out = _check_out(func, out, shape, result)
    nthreads = _threads_for(num_threads, x.size, func)
    xc = _native(x, compute)

    if b is not None or return_sign or compute.kind == "c":
        b = None if b is None else b.astype(compute, copy=False)
        res = _reference.logsumexp(xc, axis=axes, b=b, keepdims=keepdims, return_sign=return_sign)
        if return_sign:
            value, sign = res
            return _finish(np.asarray(value), out, result), np.asarray(sign).astype(result)[()]
        return _finish(np.asarray(res), out, result)

    rows, ax, _ = _rows(xc, axes)
    rows, x3, order = _input3(rows, ax)
    # The result as an array of rows' shape with the reduced axis of length 1.
    keep_shape = rows.shape[:ax] + (1,) + rows.shape[ax + 1:]
    y3 = None
    if out is not None and out.dtype == compute and out.flags.aligned and not np.may_share_memory(out, rows):
        try:
            y = out
            y3 = _out3(np.reshape(out, keep_shape, copy=False), ax, order, x3)
        except ValueError:
            pass
    if y3 is None:
        y = np.empty(keep_shape, dtype=compute, order=order)
        y3, _ = _view3(y, ax, order)
        y = y.reshape(shape)
    _kernels.run(_kernels.LOGSUMEXP, x3, y3, nthreads)
    return _finish(y, out, result)
