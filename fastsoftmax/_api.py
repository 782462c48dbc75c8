"""NumPy semantics of fastsoftmax: validation, axes, the dtype policy, ``out=``.

Every public function comes through here.  This layer knows NumPy and nothing
about SIMD: it turns the call into 3-D views (outer, n, inner) of the input and
the output, with the reduced axis in the middle, without copying whenever the
array's layout allows it, and hands them to ``_kernels``.
"""
import math
import numbers
import operator

import numpy as np
from numpy.lib.array_utils import normalize_axis_index, normalize_axis_tuple

from . import _kernels, _reference

__all__ = ["softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward",
           "cross_entropy", "set_num_threads", "get_num_threads"]

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


def _threads_for(num_threads, size, func):
    """Threads for a call on `size` elements (num_threads=None: the default, 0)."""
    return _kernels.threads_for(size, 0 if num_threads is None else _check_threads(num_threads, func))


# ---- dtypes ----------------------------------------------------------------

def _is_half(dt):
    """float16, or ml_dtypes' bfloat16 (recognised by name: ml_dtypes is optional)."""
    return dt == _F16 or (dt.kind == "V" and dt.name == "bfloat16")


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
    """x as the kernels read it: an aligned, native-order array of the compute
    dtype, or of float16/bfloat16 for float32 kernels, which convert those a
    block at a time themselves (a copy only if needed)."""
    if x.flags.aligned and x.dtype.isnative and (x.dtype == compute or compute == _F32 and _is_half(x.dtype)):
        return x
    with np.errstate(over="ignore"):     # dtype= may narrow: overflow rounds to +-inf
        return x.astype(compute)


def _kernel_result(compute, result):
    """The dtype the kernels write: float32 kernels write float16/bfloat16 themselves."""
    return result if compute == _F32 and _is_half(result) else compute


_F32_MAX = float(np.finfo(np.float32).max)
_WIDER = {_F32: _F64, np.dtype(np.complex64): np.dtype(np.complex128)}


def _kernel_dtype(compute, t):
    """The dtype to compute in at temperature t: `compute`, or float64 (complex128)
    for float32 (complex64) arithmetic when 1/t overflows float32 (t < 2.9e-39).

    The float32 kernels scale x - max by 1/t, which float32 cannot hold then,
    although (x - max) / t may be moderate (x - max can be as small as 1e-45);
    the float64 kernels form (x - max) / t for every positive t, and the result
    is rounded once more, to the result dtype.  Costs a cast of the input (and
    out= is written through a temporary), only at such temperatures."""
    return _WIDER.get(compute, compute) if 1.0 / t > _F32_MAX else compute


# ---- temperature and mask ---------------------------------------------------

def _divide_by_t(x, t):
    """x / t for the NumPy paths, as the kernels scale: by t as a double (not t
    rounded to float32), and a complex x a component at a time, since complex
    division by a subnormal t overflows in its scaling (inf + nan j)."""
    t = np.float64(t)
    if x.dtype.kind != "c":
        return np.divide(x, t).astype(x.dtype, copy=False)
    q = np.empty_like(x)
    q.real = x.real / t
    q.imag = x.imag / t
    return q


def _check_temperature(temperature, func):
    if type(temperature) is not float and (isinstance(temperature, bool)      # the ABC check is slow
                                           or not isinstance(temperature, numbers.Real)):
        raise TypeError(f"{func}: temperature must be a positive real number, not {temperature!r}")
    t = float(temperature)
    if not 0.0 < t < math.inf:
        raise ValueError(f"{func}: temperature must be positive and finite, got {temperature!r}")
    return t


def _check_where(where, shape, func):
    """where= as a read-only boolean view of the input's shape (broadcast, not copied)."""
    if where is None:
        return None
    w = np.asarray(where)
    if w.dtype != np.bool_:
        raise TypeError(f"{func}: where must be a boolean array, not of dtype {w.dtype}")
    try:
        return np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(f"{func}: where of shape {w.shape} does not broadcast to the input's "
                         f"shape {shape}") from None


def _mask3(mask, axes, ax, order):
    """The mask's 3-D view in the input's merge order; a copy in that order only
    when its (broadcast) strides have none."""
    return None if mask is None else _view3_like(_rows(mask, axes)[0], ax, order)


def _is_dask(x):
    """A dask array, recognised without importing dask (an optional extra)."""
    return type(x).__name__ == "Array" and type(x).__module__.startswith("dask.")


def _to_dask(func, x, out, **kwargs):
    """Hand a dask array to fastsoftmax.dask: a lazy result, never a computed one."""
    if out is not None:
        raise TypeError(f"{func}: out= is not supported for dask arrays")
    from . import dask as fsm_dask
    return getattr(fsm_dask, func)(x, **kwargs)


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
            return a.reshape((outer, n, inner), copy=False), "C"
        except ValueError:
            pass
    if order in (None, "F"):
        try:
            return a.T.reshape((inner, n, outer), copy=False).transpose(2, 1, 0), "F"
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


def _view3_like(a, ax, order):
    """a's 3-D view merged in `order`, or that of a copy in that order."""
    v, _ = _view3(a, ax, order)
    if v is None:
        v, _ = _view3(np.array(a, order=order), ax, order)
    return v


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

def _map(op, func, x, axis, dtype, temperature, where, out, num_threads):
    """softmax / log_softmax: an output of x's shape."""
    if _is_dask(x):
        return _to_dask(func, x, out, axis=axis, dtype=dtype, temperature=temperature, where=where,
                        num_threads=num_threads)
    x = np.asarray(x)
    compute, result = _dtypes(func, x.dtype, dtype)
    axes = _axes(axis, x.ndim)
    t = _check_temperature(temperature, func)
    compute = _kernel_dtype(compute, t)
    mask = _check_where(where, x.shape, func)
    out = _check_out(func, out, x.shape, result)
    nthreads = _threads_for(num_threads, x.size, func)
    written = _kernel_result(compute, result)
    xc = _native(x, compute)
    rows, ax, moved_shape = _rows(xc, axes)
    rows, x3, order = _input3(rows, ax)
    m3 = _mask3(mask, axes, ax, order)

    y3 = None
    if out is not None and out.dtype == written and out.flags.aligned:
        out_rows = _rows(out, axes, copy=False)[0]     # the kernels write out itself
        if out_rows is not None and _writes_safely(out_rows, rows):
            y3 = _out3(out_rows, ax, order, x3)
    if y3 is not None:
        _kernels.run(op, x3, y3, nthreads, t, m3)
        return out
    # A new result has the input's memory layout (as NumPy's ufuncs do), so that
    # it takes the same kernel path as out=x would.
    y = np.empty_like(rows, dtype=written)
    y3, _ = _view3(y, ax, order)
    if y3 is None:
        y = np.empty(rows.shape, dtype=written, order=order)
        y3, _ = _view3(y, ax, order)
    _kernels.run(op, x3, y3, nthreads, t, m3)
    return _finish(_unrows(y, axes, moved_shape), out, result)


@_kernels.fast_path(_kernels.SOFTMAX)
def softmax(x, axis=-1, *, dtype=None, temperature=1.0, where=None, out=None, num_threads=None):
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
    temperature : float, optional
        Compute ``softmax(x / temperature)``, inside the kernels (no temporary
        array).  Must be positive and finite; as it tends to 0 the result tends
        to the one-hot argmax, ties sharing equally.  Below 2.9e-39, where its
        reciprocal overflows float32, float32/float16/bfloat16 input is
        computed in float64 (a temporary) and rounded to the result dtype.
    where : array_like of bool, optional
        Mask broadcastable to ``x``: False entries take no part and get 0.  A
        row without any True entry gives zeros (attention with every key
        masked), never NaN.
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
    return _map(_kernels.SOFTMAX, "softmax", x, axis, dtype, temperature, where, out, num_threads)


@_kernels.fast_path(_kernels.LOG_SOFTMAX)
def log_softmax(x, axis=-1, *, dtype=None, temperature=1.0, where=None, out=None, num_threads=None):
    """Logarithm of softmax along an axis: ``x - logsumexp(x, axis)``, computed stably.

    Parameters are those of :func:`softmax`; entries masked out by ``where``
    get -inf, and a row without any True entry is all -inf.

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
    return _map(_kernels.LOG_SOFTMAX, "log_softmax", x, axis, dtype, temperature, where, out, num_threads)


@_kernels.fast_path(_kernels.LOGSUMEXP)
def logsumexp(x, axis=-1, *, b=None, keepdims=False, return_sign=False, dtype=None,
              temperature=1.0, where=None, out=None, num_threads=None):
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
    temperature : float, optional
        Compute ``logsumexp(x / temperature)`` (positive and finite).
    where : array_like of bool, optional
        Mask broadcastable to ``x``: only True entries are summed; a row
        without any gives -inf.
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
    input use the pure-NumPy implementation (``fastsoftmax._reference``), in
    float64 (complex128) for every input dtype, rounded once to the result.

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fsm
    >>> float(fsm.logsumexp(np.array([0.0, 0.0])))
    0.6931471805599453
    >>> fsm.logsumexp(np.array([[1e3, 1e3], [-np.inf, -np.inf]]))
    array([1000.69314718,          -inf])
    """
    func = "logsumexp"
    if _is_dask(x):
        return _to_dask(func, x, out, axis=axis, b=b, keepdims=keepdims, return_sign=return_sign,
                        dtype=dtype, temperature=temperature, where=where, num_threads=num_threads)
    x = np.asarray(x)
    if b is not None:      # b may broadcast x to more dimensions, as in SciPy
        x, b = np.broadcast_arrays(x, np.asarray(b))
    compute, result = _dtypes(func, x.dtype, dtype, complex_ok=True)
    axes = _axes(axis, x.ndim)
    t = _check_temperature(temperature, func)
    compute = _kernel_dtype(compute, t)
    mask = _check_where(where, x.shape, func)
    if keepdims:
        shape = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
    else:
        shape = tuple(s for i, s in enumerate(x.shape) if i not in axes)
    out = _check_out(func, out, shape, result)
    nthreads = _threads_for(num_threads, x.size, func)
    written = _kernel_result(compute, result)
    xc = _native(x, compute)

    if b is not None or return_sign or compute.kind == "c":
        # In double precision at least, as the kernels sum, and rounded once
        # to the result: x and b are taken as values of `compute`.
        wide = np.promote_types(compute, np.float64)
        xc = xc.astype(wide, copy=False)     # exact: xc is of `compute`, or half for float32
        if t != 1.0:
            xc = _divide_by_t(xc, t)
        if mask is not None:   # masked entries weigh 0
            b = np.where(mask, 1 if b is None else b, 0)
        b = None if b is None else b.astype(compute, copy=False).astype(wide, copy=False)
        res = _reference.logsumexp(xc, axis=axes, b=b, keepdims=keepdims, return_sign=return_sign)
        if return_sign:
            value, sign = res
            return _finish(np.asarray(value), out, result), np.asarray(sign).astype(result)[()]
        return _finish(np.asarray(res), out, result)

    rows, ax, _ = _rows(xc, axes)
    rows, x3, order = _input3(rows, ax)
    m3 = _mask3(mask, axes, ax, order)
    # The result as an array of rows' shape with the reduced axis of length 1.
    keep_shape = rows.shape[:ax] + (1,) + rows.shape[ax + 1:]
    y3 = None
    if out is not None and out.dtype == written and out.flags.aligned and not np.may_share_memory(out, rows):
        try:
            y = out
            y3 = _out3(np.reshape(out, keep_shape, copy=False), ax, order, x3)
        except ValueError:
            pass
    if y3 is None:
        y = np.empty(keep_shape, dtype=written, order=order)
        y3, _ = _view3(y, ax, order)
        y = y.reshape(shape)
    _kernels.run(_kernels.LOGSUMEXP, x3, y3, nthreads, t, m3)
    return _finish(y, out, result)


# ---- backward passes ---------------------------------------------------------

def _backward(op, func, a, g, axis, temperature, out, num_threads):
    a, g = np.asarray(a), np.asarray(g)
    if a.shape != g.shape:
        raise ValueError(f"{func}: the two inputs must have the same shape, got {a.shape} and {g.shape}")
    compute, result = _dtypes(func, np.result_type(a.dtype, g.dtype), None)
    axes = _axes(axis, a.ndim)
    t = _check_temperature(temperature, func)
    out = _check_out(func, out, a.shape, result)
    nthreads = _threads_for(num_threads, a.size, func)
    with np.errstate(over="ignore"):
        ac, gc = (v if v.dtype == compute and v.flags.aligned else v.astype(compute) for v in (a, g))
    a_rows, ax, moved_shape = _rows(ac, axes)
    a_rows, a3, order = _input3(a_rows, ax)
    g_rows = _rows(gc, axes)[0]
    g3 = _view3_like(g_rows, ax, order)

    if out is not None and out.dtype == compute and out.flags.aligned:
        out_rows = _rows(out, axes, copy=False)[0]
        if out_rows is not None and _writes_safely(out_rows, a_rows) and _writes_safely(out_rows, g_rows):
            out3, _ = _view3(out_rows, ax, order)
            if out3 is not None:
                _kernels.run_backward(op, a3, g3, out3, t, nthreads)
                return out
    y = np.empty(a_rows.shape, dtype=compute, order=order)
    _kernels.run_backward(op, a3, g3, _view3(y, ax, order)[0], t, nthreads)
    return _finish(_unrows(y, axes, moved_shape), out, result)


def softmax_backward(y, grad_y, axis=-1, *, temperature=1.0, out=None, num_threads=None):
    """Gradient of a loss with respect to ``x``, given ``y = softmax(x / temperature, axis)``
    and the gradient ``grad_y`` with respect to ``y``: ``y * (g - sum(g * y, axis)) / T``.

    Parameters
    ----------
    y : array_like
        The softmax output.
    grad_y : array_like
        The gradient with respect to ``y``; same shape as ``y``.
    axis : int, tuple of ints or None, optional
        The axis ``y`` was normalised along (default: the last).
    temperature : float, optional
        The temperature of the forward call; the result is divided by it.
        With a tiny temperature, entries beyond the dtype's range are +-inf
        (the correctly rounded value) and exact zeros stay 0.
    out : ndarray, optional
        Array of the result's shape and dtype to write into; it may be ``y`` or
        ``grad_y`` itself (in place).
    num_threads : int, optional
        Threads for this call (see :func:`softmax`).

    Returns
    -------
    ndarray
        The gradient with respect to ``x``, of ``y``'s shape; dtype by the
        policy of :func:`softmax` applied to ``result_type(y, grad_y)``.

    See Also
    --------
    softmax, log_softmax_backward, torch.autograd

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fsm
    >>> y = fsm.softmax(np.array([0.0, 0.0]))
    >>> fsm.softmax_backward(y, np.array([1.0, 0.0]))
    array([ 0.25, -0.25])
    """
    return _backward(_kernels.SOFTMAX_BACKWARD, "softmax_backward", y, grad_y, axis, temperature,
                     out, num_threads)


def log_softmax_backward(logp, grad_logp, axis=-1, *, temperature=1.0, out=None, num_threads=None):
    """Gradient of a loss with respect to ``x``, given ``logp = log_softmax(x / temperature, axis)``
    and the gradient ``grad_logp`` with respect to ``logp``: ``(g - exp(logp) * sum(g, axis)) / T``.

    Parameters are those of :func:`softmax_backward`.

    See Also
    --------
    log_softmax, softmax_backward, cross_entropy

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fsm
    >>> logp = fsm.log_softmax(np.array([0.0, 0.0]))
    >>> fsm.log_softmax_backward(logp, np.array([-1.0, 0.0]))
    array([-0.5,  0.5])
    """
    return _backward(_kernels.LOG_SOFTMAX_BACKWARD, "log_softmax_backward", logp, grad_logp, axis,
                     temperature, out, num_threads)


# ---- cross-entropy -------------------------------------------------------------

_REDUCTIONS = ("none", "mean", "sum")


def _check_labels(func, t, shape, n_classes, ignore_index):
    """Integer labels as int64, or ValueError naming the first bad one."""
    if t.shape != shape:
        raise ValueError(f"{func}: integer target must have the shape of the logits without the "
                         f"class axis, {shape}, not {t.shape}")
    counted = t if ignore_index is None else t[t != ignore_index]
    # One reduction: viewed as unsigned, a negative label is above any class.
    unsigned = counted.view(counted.dtype.str.replace("i", "u"))
    if counted.size and unsigned.max() >= n_classes:
        label = counted[(counted < 0) | (counted >= n_classes)][0]
        raise ValueError(f"{func}: target contains label {label}, outside [0, {n_classes}) "
                         f"(and not ignore_index={ignore_index})")
    if t.dtype == np.int64 and t.flags.aligned:     # the kernels read aligned native int64
        return t
    return np.require(t, np.int64, "A")


def cross_entropy(logits, target, axis=-1, *, temperature=1.0, weight=None, ignore_index=None,
                  label_smoothing=0.0, reduction="mean", return_grad=False, num_threads=None):
    """Cross-entropy loss between ``logits`` and a target, as ``torch.nn.functional.cross_entropy``.

    The log-softmax, the loss and (with ``return_grad``) its gradient are
    computed together, in one pass over the memory of each row.

    Parameters
    ----------
    logits : array_like
        Unnormalised scores, classes along ``axis`` (e.g. (N, C), or (N, C, d1,
        ...) with ``axis=1`` as in PyTorch).  float16/bfloat16 are computed in
        float32; integers in float64.
    target : array_like
        Integer class labels, of the logits' shape without ``axis``; or class
        probabilities (a float array of the logits' shape).
    axis : int, optional
        The class axis (default: the last).
    temperature : float, optional
        Loss of ``logits / temperature`` (e.g. 0.07 in InfoNCE); the gradient is
        with respect to the original logits.
    weight : array_like, optional
        A weight per class (length C).
    ignore_index : int, optional
        Samples whose label equals this take no part (loss 0, gradient 0, and
        not counted by 'mean').  Default None: none is ignored (PyTorch's
        default is -100).  Not allowed with probability targets.
    label_smoothing : float, optional
        In [0, 1]: the target becomes ``(1 - s) * target + s / C``.
    reduction : {'mean', 'sum', 'none'}, optional
        'none': the loss per sample; 'sum'; 'mean': with labels, the sum divided
        by the total weight of the non-ignored samples (their number without
        ``weight``), with probabilities, by the number of samples.
    return_grad : bool, optional
        Also return d loss / d logits (for 'none': of the sum of the losses).
    num_threads : int, optional
        Threads for this call (see :func:`softmax`).

    Returns
    -------
    loss : ndarray or scalar
        float32 for float32/float16/bfloat16 logits, float64 for float64 and
        integer logits; a scalar for 'mean' and 'sum'.
    grad : ndarray
        Only with ``return_grad=True``: of the logits' shape and dtype (float64
        for integer logits).

    Raises
    ------
    ValueError
        A label outside [0, C) (other than ``ignore_index``), a target of the
        wrong shape, a bad ``reduction``, ``label_smoothing``, ``weight`` or
        ``temperature``.
    TypeError
        A target that is neither integer nor floating, unsupported logits.

    See Also
    --------
    torch.nn.functional.cross_entropy, log_softmax, softmax

    Notes
    -----
    Per sample, with ``a_c`` the (smoothed, weighted) target distribution, the
    loss is ``-sum_c a_c log_softmax(x / T)_c`` and its gradient
    ``(softmax(x / T) * sum_c a_c - a) / T``, scaled by the reduction.  A 'mean'
    over no samples (or only ignored ones) is NaN, as in PyTorch.  +inf logits
    follow the limits of :func:`softmax` (PyTorch gives NaN there).

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fsm
    >>> logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> loss, grad = fsm.cross_entropy(logits, np.array([0, 2]), return_grad=True)
    >>> round(float(loss), 6)
    0.669079
    >>> grad.shape
    (2, 3)
    """
    func = "cross_entropy"
    if _is_dask(logits):
        return _to_dask(func, logits, None, target=target, axis=axis, temperature=temperature,
                        weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
                        reduction=reduction, return_grad=return_grad, num_threads=num_threads)
    x = np.asarray(logits)
    compute, grad_dtype = _dtypes(func, x.dtype, None)
    if x.ndim == 0:
        raise ValueError(f"{func}: logits must have a class axis, got a 0-d array")
    ax = normalize_axis_index(operator.index(axis), x.ndim)
    n_classes = x.shape[ax]
    t = _check_temperature(temperature, func)
    loss_dtype, compute = compute, _kernel_dtype(compute, t)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{func}: reduction must be one of {_REDUCTIONS}, not {reduction!r}")
    if type(label_smoothing) is not float and (isinstance(label_smoothing, bool)
                                               or not isinstance(label_smoothing, numbers.Real)):
        raise TypeError(f"{func}: label_smoothing must be a real number, not {label_smoothing!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{func}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    if ignore_index is not None:
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
            raise TypeError(f"{func}: ignore_index must be an int or None, not {ignore_index!r}")
        ignore_index = int(ignore_index)
    sample_shape = x.shape[:ax] + x.shape[ax + 1:]
    target = np.asarray(target)
    if target.dtype.kind in "iu":
        labels = _check_labels(func, target, sample_shape, n_classes, ignore_index)
        target = labels.reshape(x.shape[:ax] + (1,) + x.shape[ax + 1:])
    elif target.dtype.kind == "f" or _is_half(target.dtype):
        if ignore_index is not None and ignore_index >= 0:   # PyTorch's rule (its default is -100)
            raise ValueError(f"{func}: ignore_index is not supported with class-probability targets")
        ignore_index = None
        if target.shape != x.shape:
            raise ValueError(f"{func}: a probability target must have the logits' shape {x.shape}, "
                             f"not {target.shape}")
        labels = None
        target = np.require(target, compute, "A")
    else:
        raise TypeError(f"{func}: target must be integer labels or float probabilities, not "
                        f"of dtype {target.dtype}")
    if weight is not None:
        weight = np.asarray(weight)
        if weight.dtype.kind not in "biuf" and not _is_half(weight.dtype):
            raise TypeError(f"{func}: weight must be a real array, not of dtype {weight.dtype}")
        if weight.shape != (n_classes,):
            raise ValueError(f"{func}: weight must have shape ({n_classes},), not {weight.shape}")
        weight = np.ascontiguousarray(weight, dtype=compute)
    nthreads = _threads_for(num_threads, x.size, func)

    # 'mean' divides by the total weight of the counted samples (PyTorch).
    n_samples = math.prod(sample_shape)
    if labels is None:
        denominator = float(n_samples)
    else:
        counted = labels if ignore_index is None else labels[labels != ignore_index]
        denominator = float(counted.size if weight is None
                            else np.sum(weight[counted], dtype=np.float64))
    # Over no weight, the counted samples' gradients are 0/0 = NaN and the
    # ignored ones' 0, as in PyTorch.
    grad_scale = 1.0 if reduction != "mean" else 1.0 / denominator if denominator else math.inf

    xc = _native(x, compute)
    xc, x3, order = _input3(xc, ax)
    target3 = _view3_like(target, ax, order)
    keep_shape = x.shape[:ax] + (1,) + x.shape[ax + 1:]
    losses = np.empty(keep_shape, dtype=np.float64, order=order)
    grad = grad3 = None
    if return_grad:
        grad = np.empty_like(xc, dtype=_kernel_result(compute, grad_dtype))
        grad3, _ = _view3(grad, ax, order)
        if grad3 is None:
            grad = np.empty(xc.shape, dtype=grad.dtype, order=order)
            grad3, _ = _view3(grad, ax, order)
    _kernels.run_cross_entropy(x3, target3, _view3(losses, ax, order)[0], grad3, t, weight,
                               ignore_index, float(label_smoothing), grad_scale, nthreads)
    losses = losses.reshape(sample_shape)
    # Rounding to a float32 loss or gradient may overflow to +-inf (as in _finish).
    with np.errstate(over="ignore"):
        if reduction == "none":
            loss = losses.astype(loss_dtype)
        else:
            total = losses.sum()
            if reduction == "mean":
                total = total / denominator if denominator else np.float64(np.nan)
            loss = loss_dtype.type(total)
        if not return_grad:
            return loss
        return loss, grad.astype(grad_dtype, copy=False)
