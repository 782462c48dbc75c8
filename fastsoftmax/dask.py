"""fastsoftmax on dask arrays: the same functions, as lazy graphs of kernel calls.

Install with ``pip install "fastsoftmax[dask]"``; ``import fastsoftmax`` does
not import dask, ``import fastsoftmax.dask`` does.  Every function takes the
arguments of its NumPy counterpart (except ``out=``), applies the same dtype
and edge-case policy (DESIGN §1), and returns a lazy ``dask.array.Array``.
Arguments are checked when the graph is built, with the NumPy API's messages.

Each call builds one of two graphs (see docs/dask.md):

* Every reduced axis lies in one chunk: each block holds whole rows, and one
  task per block calls the in-memory function (``map_blocks``).
* A reduced axis spans several chunks: a row is never gathered into one task.
  The structure is the one the C kernels use for rows too long for cache, with
  blocks of the row in place of cache-sized pieces of it:

  1. per block, the kernel's own softmax (or log_softmax) of the block's part
     of each row, ``z``, and the row's (max, sum-of-exp) pair over the block,
     ``(m, s)`` with ``s = sum(exp((x - m) / T))``, read off ``z``: the
     kernel gave the max entry ``exp(0) / s``;
  2. the pairs of a row merged in a tree (``dask.array.reduction``):
     ``M = max m``, ``S = sum s * exp((m - M) / T)``;
  3. per block, ``z`` rescaled to its share of the row:
     ``y = z * s * exp((m - M) / T) / S``
     (log_softmax: ``y = z + (m - M) / T + log(s / S)``).

  logsumexp is steps 1-2 alone, on pairs made from the kernel's logsumexp of
  each block, and returns ``M + log(S)``.

A pair is exact in ``m`` (an input value) and carries ``s`` (between 1 and the
block's length) to the compute dtype's precision, so the rescaling factor
loses nothing however large the values are; it is formed in double (long
double for float64 results) and rounded once.  Pairs are stored in the
compute dtype, so a float32 graph holds float32 data throughout.  The special
values follow the kernels: a block with no entry above -inf (empty, all -inf,
or all masked) gives ``(-inf, 0)``, the identity of the merge; k entries equal
to +inf give ``(inf, k)`` (the limit); a NaN gives NaN.
"""
import functools
import math
import operator

import dask.array as da
import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from . import _api

__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy"]

_F64 = np.dtype(np.float64)
_F64_MAX = float(np.finfo(np.float64).max)


# ---- arguments ---------------------------------------------------------------

def _no_out(func, out):
    if out is not None:
        raise TypeError(f"fastsoftmax.dask.{func} does not support out=: dask arrays are "
                        "immutable; store the lazy result with dask.array.store instead")


def _mask(where, x):
    """`where` as a boolean dask array of x's shape and chunks (None stays None)."""
    if where is None:
        return None
    w = da.asarray(where)
    return da.broadcast_to(w, x.shape).rechunk(x.chunks)


def _check_like_numpy(in_memory, x, mask, **kwargs):
    """Raise what the NumPy API would raise for these arguments, now rather than
    at compute time: call it on a one-element array of x's dtype and ndim."""
    sample = np.zeros((1,) * x.ndim, dtype=x.dtype)
    if mask is not None:
        kwargs["where"] = np.ones((1,) * x.ndim, dtype=mask.dtype)
    in_memory(sample, **kwargs)


def _is_chunked(x, axes):
    return any(len(x.chunks[a]) > 1 for a in axes)


def _wide(compute):
    """The dtype per-row factors are formed in: double, or long double for float64."""
    return np.dtype(np.longdouble) if compute == _F64 else _F64


def _meta(ndim, dtype):
    return np.empty((0,) * ndim, dtype=dtype)


# ---- (max, sum-of-exp) pairs -------------------------------------------------

def _pair_dtype(compute):
    return np.dtype([("m", compute), ("s", compute)])


def _pack(m, s, compute):
    """m and s (arrays of one shape) as one array of (m, s) pairs."""
    pairs = np.empty(m.shape, dtype=_pair_dtype(compute))
    pairs["m"], pairs["s"] = m, s
    return pairs


def _log_weight(m, M, temperature):
    """``(m - M) / T`` in double (long double for float64), and 0 where m == M
    (also where both are +inf or both -inf): the log of the weight that takes
    a sum of exps relative to m to one relative to M.  As in the kernels, the
    difference is multiplied by 1 / T rounded to double, or divided by T where
    1 / T overflows double (a subnormal T)."""
    wide = _wide(m.dtype)
    inv = 1.0 / float(temperature)
    with np.errstate(invalid="ignore", over="ignore"):
        d = m.astype(wide) - M
        return np.where(m == M, 0, d * inv if inv <= _F64_MAX else d / wide.type(temperature))


def _merge(pairs, axis, keepdims, temperature=1.0):
    """Merge the pairs along `axis`: ``M = max m``, ``S = sum s * exp((m - M) / T)``.

    The steps of the tree reduction; (-inf, 0) is the identity, a NaN
    propagates and +inf pairs add their counts."""
    m, s = pairs["m"], pairs["s"]
    M = np.max(m, axis=axis, keepdims=True)
    S = np.sum(s * np.exp(_log_weight(m, M, temperature)), axis=axis, keepdims=True)
    merged = _pack(M, S, m.dtype)
    return merged if keepdims else np.squeeze(merged, axis=axis)


def _lse_of_merged(merged, result):
    """logsumexp of rows from their merged pairs: ``M + log(S)``, in result's dtype."""
    M, S = merged["m"], merged["s"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.asarray(M.astype(_wide(M.dtype)) + np.log(S)).astype(result)


def _pair_of_block(x, z, mask=None, *, axes, log, compute):
    """The pair of the block's part of each row, from the input block x and the
    kernel's softmax (``log``: log_softmax) of it, z.

    m is the max of the participating entries of x (not divided by T: the
    kernels scale ``x - m``, and so do the merge and the rescaling); s is
    ``1 / max z`` (``exp(-max z)`` for log_softmax), the value at which the
    kernel divided the row's max term by its sum of exps."""
    xc = x.astype(compute, copy=False)
    m = np.max(xc, axis=axes, keepdims=True, initial=-np.inf,
               where=True if mask is None else mask)
    zmax = np.max(z, axis=axes, keepdims=True, initial=-np.inf)
    with np.errstate(divide="ignore", over="ignore"):
        s = np.exp(-zmax) if log else 1 / zmax
    s = np.where(m == -np.inf, 0, s)      # no entry above -inf: the merge's identity
    return _pack(m, s, compute)


def _pair_of_logsumexp(x, mask=None, *, axes, options, compute):
    """The pair of the block's part of each row for logsumexp: (lse, 1) from
    the kernel's logsumexp of the block, (-inf, 0) where that is -inf."""
    kwargs = dict(options) if mask is None else dict(options, where=mask)
    lse = np.asarray(_api.logsumexp(x, axis=axes, keepdims=True, dtype=compute, **kwargs))
    return _pack(lse, np.where(lse == -np.inf, 0, 1), compute)


# ---- per-block calls ---------------------------------------------------------

def _call(in_memory, x, mask=None, **kwargs):
    """One block through the in-memory function, as an array (never a scalar)."""
    if mask is not None:
        kwargs["where"] = mask
    return np.asarray(in_memory(x, **kwargs))


def _rescale(z, pairs, merged, mask=None, *, axes, log, temperature, result):
    """Step 3: a block's own softmax (log_softmax) z, rescaled to its share of the
    row: ``z * s * exp((m - M) / T) / S`` (``z + (m - M) / T + log(s / S)``).

    The fixes of special rows below cost a pass over the block, so they are
    made only in blocks that have such rows."""
    m, s = pairs["m"], pairs["s"]
    M, S = np.expand_dims(merged["m"], axes), np.expand_dims(merged["s"], axes)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_factor = _log_weight(m, M, temperature) + np.log(s.astype(_wide(s.dtype)) / S)
        # A row with no entry above -inf anywhere (all -inf, all masked): each
        # block already holds the row's result (NaN on -inf entries, 0 or -inf
        # on masked ones); leave it as it is.
        log_factor = np.where(M == -np.inf, 0, log_factor)
        y = z + log_factor.astype(z.dtype) if log else z * np.exp(log_factor).astype(z.dtype)
    absent = -np.inf if log else 0
    # A block with no entry above -inf in a row that has one: all its entries
    # vanish, also where the block's own result is 0/0 (a block of only -inf).
    vanishing = (s == 0) & (M > -np.inf)
    if vanishing.any():
        np.copyto(y, absent, where=vanishing)
    # Masked entries of a row with a NaN: the factor is NaN, the entries keep 0 / -inf.
    nan_rows = np.isnan(M)
    if mask is not None and nan_rows.any():
        np.copyto(y, absent, where=nan_rows & ~mask)
    with np.errstate(over="ignore"):
        return y.astype(result, copy=False)


# ---- graphs ------------------------------------------------------------------

def _per_block(in_memory, x, mask, result, call_kwargs, **map_kwargs):
    """One task per block: `in_memory` (block, **call_kwargs), an array of dtype
    `result`; a reduction passes its output's ``drop_axis`` or ``chunks``."""
    ndim = x.ndim - len(map_kwargs.get("drop_axis", ()))
    args = (x,) if mask is None else (x, mask)
    return da.map_blocks(functools.partial(_call, in_memory, **call_kwargs), *args,
                         dtype=result, meta=_meta(ndim, result), **map_kwargs)


def _pairs(func, x, *others, axes, compute):
    """Per block, the pairs `func` makes of the blocks of x and `others` (arrays of
    x's chunks, or None): one pair per row, so a chunk of 1 along each of `axes`."""
    ind = tuple(range(x.ndim))
    args = [a for arr in (x,) + others if arr is not None for a in (arr, ind)]
    return da.blockwise(func, ind, *args, adjust_chunks=dict.fromkeys(axes, 1),
                        dtype=_pair_dtype(compute), meta=_meta(x.ndim, _pair_dtype(compute)))


def _merged(pairs, axes, keepdims=False, temperature=1.0):
    """Step 2: the pairs of each row merged in a tree reduction."""
    ndim = pairs.ndim if keepdims else pairs.ndim - len(axes)
    merge = functools.partial(_merge, temperature=temperature)
    return da.reduction(pairs, chunk=merge, combine=merge, aggregate=merge, axis=axes,
                        keepdims=keepdims, dtype=pairs.dtype, meta=_meta(ndim, pairs.dtype))


def _normalize(func, in_memory, x, axis, *, dtype, temperature, where, out, num_threads):
    """softmax and log_softmax on a dask array: one of the two graphs."""
    _no_out(func, out)
    x = da.asarray(x)
    mask = _mask(where, x)
    options = dict(temperature=temperature, num_threads=num_threads)     # for every block
    _check_like_numpy(in_memory, x, mask, axis=axis, dtype=dtype, **options)
    compute, result = _api._dtypes(func, x.dtype, dtype)
    axes = _api._axes(axis, x.ndim)
    if not _is_chunked(x, axes):
        return _per_block(in_memory, x, mask, result, dict(options, axis=axes, dtype=dtype))

    log = func == "log_softmax"
    z = _per_block(in_memory, x, mask, compute, dict(options, axis=axes, dtype=compute))
    pairs = _pairs(functools.partial(_pair_of_block, axes=axes, log=log, compute=compute),
                   x, z, mask, axes=axes, compute=compute)
    merged = _merged(pairs, axes, temperature=temperature)
    ind = tuple(range(x.ndim))
    row_ind = tuple(i for i in ind if i not in axes)
    rescale = functools.partial(_rescale, axes=axes, log=log, temperature=temperature,
                                result=result)
    masks = () if mask is None else (mask, ind)
    # align_arrays=False: blocks are matched by index (pairs have one element
    # per block along axes); the output takes z's chunks.
    return da.blockwise(rescale, ind, z, ind, pairs, ind, merged, row_ind, *masks,
                        align_arrays=False, dtype=result, meta=_meta(x.ndim, result))


def softmax(x, axis=-1, *, dtype=None, temperature=1.0, where=None, out=None, num_threads=None):
    """Softmax along an axis of a dask array, as a lazy dask array.

    Parameters
    ----------
    x : dask.array.Array or array_like
        Input (anything else goes through ``dask.array.asarray``).  Same dtype
        policy as :func:`fastsoftmax.softmax`.
    axis : int, tuple of ints or None, optional
        Axis along which the entries sum to 1 (default: the last).  It may span
        several chunks: the graph then never gathers a row (see Notes).
    dtype : dtype, optional
        Compute and return in this floating dtype.
    temperature : float, optional
        T > 0: computes ``softmax(x / T)``.
    where : array_like of bool or dask.array.Array, optional
        Mask broadcastable to ``x``; False entries take no part and get 0.  It is
        broadcast and rechunked to ``x``'s chunks.
    out : None
        Not supported (dask arrays are immutable): TypeError if given.
    num_threads : int, optional
        Threads for each block's kernel call (default: each worker's
        ``fastsoftmax.get_num_threads()``).

    Returns
    -------
    dask.array.Array
        Lazy result of ``x``'s shape and chunks.

    See Also
    --------
    fastsoftmax.softmax : the in-memory function, applied per block.
    log_softmax, logsumexp

    Notes
    -----
    When the axis lies in one chunk, each block is one call of
    :func:`fastsoftmax.softmax`.  Otherwise each block's softmax and its
    (max, sum-of-exp) pair are computed, the pairs of a row are merged in a
    tree reduction, and each block is rescaled by ``s * exp((m - M) / T) / S``:
    four tasks per chunk plus the merge tree, none holding more than a chunk
    (a chunked axis is never rechunked).  The results agree
    with :func:`fastsoftmax.softmax` to a few ulps in both graphs, including
    the special values (NaN rows, +inf as the limit, rows of only -inf, rows
    with no True entry in ``where``).  One difference: where the kernels flush
    terms below the smallest normal number (1.2e-38 in float32) to 0, a
    rescaled block may hold a subnormal value instead.

    Examples
    --------
    >>> import dask.array as da, fastsoftmax.dask as fsd
    >>> x = da.arange(6.0, chunks=3).reshape(2, 3)
    >>> fsd.softmax(x, axis=0).compute()
    array([[0.04742587, 0.04742587, 0.04742587],
           [0.95257413, 0.95257413, 0.95257413]])
    """
    return _normalize("softmax", _api.softmax, x, axis, dtype=dtype, temperature=temperature,
                      where=where, out=out, num_threads=num_threads)


def log_softmax(x, axis=-1, *, dtype=None, temperature=1.0, where=None, out=None,
                num_threads=None):
    """Log-softmax along an axis of a dask array, as a lazy dask array.

    Parameters and graphs are those of :func:`softmax`; masked entries get -inf.

    Returns
    -------
    dask.array.Array
        Lazy result of ``x``'s shape and chunks.

    See Also
    --------
    fastsoftmax.log_softmax : the in-memory function, applied per block.
    softmax, logsumexp

    Notes
    -----
    On a chunked axis each block's log_softmax is shifted by
    ``(m - M) / T + log(s / S)``, formed in extended precision, so values far
    below the row's max keep their accuracy, as in the in-memory function.

    Examples
    --------
    >>> import dask.array as da, fastsoftmax.dask as fsd
    >>> fsd.log_softmax(da.zeros(4, chunks=2)).compute()
    array([-1.38629436, -1.38629436, -1.38629436, -1.38629436])
    """
    return _normalize("log_softmax", _api.log_softmax, x, axis, dtype=dtype,
                      temperature=temperature, where=where, out=out, num_threads=num_threads)


def logsumexp(x, axis=-1, *, b=None, keepdims=False, return_sign=False, dtype=None,
              temperature=1.0, where=None, out=None, num_threads=None):
    """``log(sum(exp(x), axis))`` of a dask array, as a lazy dask array.

    Parameters
    ----------
    x : dask.array.Array or array_like
        Input; same dtype policy as :func:`fastsoftmax.softmax` (complex input,
        which the in-memory function takes, is not supported here).
    axis : int, tuple of ints or None, optional
        Axes to reduce (default: the last); they may span several chunks.
    b : None
        Weights are not supported: NotImplementedError if given.  For weights
        ``b >= 0``, ``logsumexp(x + da.log(b))`` is the same value.
    keepdims : bool, optional
        Keep the reduced axes with length one.
    return_sign : False
        Not supported: NotImplementedError if True.
    dtype, temperature, where, num_threads
        As in :func:`softmax`; a row with no True entry in ``where`` gives -inf.
    out : None
        Not supported: TypeError if given.

    Returns
    -------
    dask.array.Array
        Lazy reduced array; 0-d when every axis is reduced.

    See Also
    --------
    fastsoftmax.logsumexp : the in-memory function, applied per block.
    softmax, log_softmax

    Notes
    -----
    When the reduced axes lie in one chunk, each block is one call of
    :func:`fastsoftmax.logsumexp`.  Otherwise each block's logsumexp becomes a
    pair (value, 1), the pairs are merged in a tree reduction and the result is
    ``M + log(S)``: within an ulp or two of the in-memory function.

    Examples
    --------
    >>> import dask.array as da, fastsoftmax.dask as fsd
    >>> float(fsd.logsumexp(da.zeros(4, chunks=2)).compute())
    1.3862943611198906
    """
    func = "logsumexp"
    _no_out(func, out)
    if b is not None or return_sign:
        raise NotImplementedError("fastsoftmax.dask.logsumexp does not support b= or "
                                  "return_sign=; for weights b >= 0 use "
                                  "logsumexp(x + dask.array.log(b))")
    x = da.asarray(x)
    if x.dtype.kind == "c":
        raise NotImplementedError(f"fastsoftmax.dask.logsumexp does not support complex input "
                                  f"(dtype {x.dtype}); use fastsoftmax.logsumexp on each block")
    mask = _mask(where, x)
    options = dict(temperature=temperature, num_threads=num_threads)     # for every block
    _check_like_numpy(_api.logsumexp, x, mask, axis=axis, keepdims=keepdims, dtype=dtype,
                      **options)
    compute, result = _api._dtypes(func, x.dtype, dtype)
    axes = _api._axes(axis, x.ndim)
    if not _is_chunked(x, axes):
        if keepdims:
            shape = dict(chunks=tuple((1,) if i in axes else c for i, c in enumerate(x.chunks)))
        else:
            shape = dict(drop_axis=axes)
        return _per_block(_api.logsumexp, x, mask, result,
                          dict(options, axis=axes, keepdims=keepdims, dtype=dtype), **shape)
    pairs = _pairs(functools.partial(_pair_of_logsumexp, axes=axes, options=options,
                                     compute=compute),
                   x, mask, axes=axes, compute=compute)
    merged = _merged(pairs, axes, keepdims)
    return merged.map_blocks(_lse_of_merged, result, dtype=result, meta=_meta(merged.ndim, result))


# ---- cross-entropy -----------------------------------------------------------

def _check_cross_entropy(logits, target, axis, kwargs):
    """Raise, now, what fastsoftmax.cross_entropy would raise for these arguments
    (labels outside [0, C) can only be found per block, at compute time)."""
    if logits.ndim == 0:
        raise ValueError("cross_entropy: logits must have a class axis, got a 0-d array")
    ax = normalize_axis_index(operator.index(axis), logits.ndim)
    sample_shape = logits.shape[:ax] + logits.shape[ax + 1:]
    is_labels = target.dtype.kind in "iu"
    # One sample with all C classes (label 0 is always valid).
    one = tuple(n if i == ax else 1 for i, n in enumerate(logits.shape))
    t_one = one[:ax] + one[ax + 1:] if is_labels else one
    _api.cross_entropy(np.zeros(one, logits.dtype), np.zeros(t_one, target.dtype), axis=ax,
                       **kwargs)
    want = sample_shape if is_labels else logits.shape
    if target.shape != want:
        kind = "integer target" if is_labels else "a probability target"
        raise ValueError(f"cross_entropy: {kind} must have the shape {want}, not {target.shape}")
    return ax, is_labels, math.prod(sample_shape)


def _cross_entropy_block(logits, target, *, compute, **kwargs):
    """fastsoftmax.cross_entropy of a block whose class axis is the last, computed
    and returned in the compute dtype (per-sample losses, and the gradient of their
    sum with return_grad)."""
    return _api.cross_entropy(logits.astype(compute, copy=False), target, axis=-1,
                              reduction="none", **kwargs)


def _sample_weights(labels, *, weight, ignore_index):
    """Each sample's weight in the 'mean' denominator, in float64: weight[label]
    (1 without weight), 0 if ignored.  (A label outside [0, C) is reported by
    the cross-entropy block.)"""
    if weight is None:
        w = np.ones(labels.shape)
    else:
        w = weight[np.clip(labels, 0, len(weight) - 1)].astype(np.float64)
    return w if ignore_index is None else np.where(labels == ignore_index, 0.0, w)


def _divide(a, b, *, result):
    """a / b in `result`'s dtype; no warning for x / 0 (a 'mean' over no weight)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(a, b, dtype=result)


def _divided(a, b, result):
    """The lazy a / b (b a 0-d dask array or a number) in `result`'s dtype."""
    return da.map_blocks(functools.partial(_divide, result=result), a, b, dtype=result,
                         meta=_meta(a.ndim, result))


def _mean_denominator(target, is_labels, weight, ignore_index, n_samples):
    """What 'mean' divides by: the number of samples, or with labels and a weight
    or an ignore_index, the lazy total weight of the samples not ignored."""
    if not is_labels or (weight is None and ignore_index is None):
        return n_samples
    return target.map_blocks(_sample_weights, weight=weight, ignore_index=ignore_index,
                             dtype=np.float64).sum()


def cross_entropy(logits, target, axis=-1, *, temperature=1.0, weight=None, ignore_index=None,
                  label_smoothing=0.0, reduction="mean", return_grad=False, num_threads=None):
    """Cross-entropy loss of a dask array of logits, as ``torch.nn.functional.cross_entropy``.

    Parameters
    ----------
    logits : dask.array.Array or array_like
        Unnormalised scores, classes along ``axis``.  The class axis is
        rechunked into one chunk if it spans several (the other axes' chunks
        shrink to keep the chunk size); keep it in one chunk to avoid that.
    target : dask.array.Array or array_like
        Integer labels (the logits' shape without ``axis``) or class
        probabilities (the logits' shape); aligned to the logits' chunks.
    axis, temperature, weight, ignore_index, label_smoothing, num_threads
        As in :func:`fastsoftmax.cross_entropy`; ``weight`` is a NumPy
        array_like of length C.
    reduction : {'mean', 'sum', 'none'}, optional
        'none': a lazy array of per-sample losses; 'sum' and 'mean': a 0-d
        lazy array.  'mean' with labels divides by the total weight of the
        samples not ignored (PyTorch), found from the target lazily.
    return_grad : bool, optional
        Also return d loss / d logits, a lazy array of the logits' shape and
        chunks (after the class axis's rechunk, if any).

    Returns
    -------
    loss : dask.array.Array
    grad : dask.array.Array
        Only with ``return_grad=True``.

    See Also
    --------
    fastsoftmax.cross_entropy : the in-memory function, applied per block.

    Notes
    -----
    Each block is one call of :func:`fastsoftmax.cross_entropy` with
    ``reduction='none'`` (and ``return_grad``): per-sample losses, summed in
    float64 for 'sum' and 'mean', and the gradient of their sum, divided by the
    global denominator for 'mean'.  Arguments are checked when the graph is
    built; a label outside [0, C) raises ValueError at compute time.

    Examples
    --------
    >>> import dask.array as da, numpy as np, fastsoftmax.dask as fsd
    >>> logits = da.from_array(np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), chunks=(1, 3))
    >>> round(float(fsd.cross_entropy(logits, np.array([0, 2])).compute()), 6)
    0.669079
    """
    logits, target = da.asarray(logits), da.asarray(target)
    kwargs = dict(temperature=temperature, weight=weight, ignore_index=ignore_index,
                  label_smoothing=label_smoothing, num_threads=num_threads)
    ax, is_labels, n_samples = _check_cross_entropy(
        logits, target, axis, dict(kwargs, reduction=reduction, return_grad=return_grad))
    compute, grad_dtype = _api._dtypes("cross_entropy", logits.dtype, None)
    weight = None if weight is None else np.asarray(weight, dtype=compute)

    core = "()" if is_labels else "(c)"
    outputs = "(),(c)" if return_grad else "()"
    parts = da.apply_gufunc(
        functools.partial(_cross_entropy_block, compute=compute, return_grad=return_grad,
                          **dict(kwargs, weight=weight)),
        f"(c),{core}->{outputs}", logits, target,
        axes=[(ax,), (ax,) if not is_labels else (), ()] + ([(ax,)] if return_grad else []),
        output_dtypes=[compute, compute] if return_grad else compute, allow_rechunk=True)
    losses, grad = parts if return_grad else (parts, None)

    if reduction == "none":
        loss = losses
    elif reduction == "sum":
        loss = losses.sum(dtype=np.float64).astype(compute)
    else:
        denominator = _mean_denominator(target, is_labels, weight, ignore_index, n_samples)
        loss = _divided(losses.sum(dtype=np.float64), denominator, np.float64).astype(compute)
    if not return_grad:
        return loss
    if reduction == "mean":
        grad = _divided(grad, denominator, compute)
        if ignore_index is not None:   # 0, also where a mean over no weight is NaN
            grad = da.where(da.expand_dims(target == ignore_index, ax), 0, grad)
    return loss, grad.astype(grad_dtype)
