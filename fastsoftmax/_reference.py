"""Pure-NumPy specification of every public function.

These are the readable definitions the C kernels are held to: the dtype-free
math plus the edge-case policy of DESIGN §1 (+inf as the limit, NaN rows, rows
of only -inf, empty axes).  They compute in the dtype they are given (use
float64 or longdouble as a test oracle) and serve as the fallback for what the
kernels do not take (complex input, logsumexp's ``b=`` and ``return_sign=``).
They allocate temporaries freely; speed is not their job.
"""
import numpy as np

__all__ = ["softmax", "log_softmax", "logsumexp"]


def _quiet():
    return np.errstate(all="ignore")


def _as_inexact(x):
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.inexact) else x.astype(np.float64)


def _max_keepdims(x, axis):
    """max over `axis` (NaN propagates; real part for complex); -inf over an empty axis."""
    return np.max(x.real, axis=axis, keepdims=True, initial=-np.inf)


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along `axis`; +inf entries share the mass equally."""
    x = _as_inexact(x)
    m = _max_keepdims(x, axis)
    with _quiet():
        e = np.where(m == np.inf, (x == np.inf).astype(x.dtype), np.exp(x - m))
        return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along `axis`, with the same limits as softmax."""
    x = _as_inexact(x)
    m = _max_keepdims(x, axis)
    with _quiet():
        at_inf = x == np.inf
        n_inf = np.sum(at_inf, axis=axis, keepdims=True)
        d = x - m
        regular = d - np.log(np.sum(np.exp(d), axis=axis, keepdims=True))
        limit = np.where(at_inf, -np.log(n_inf.astype(x.dtype)), -np.inf).astype(x.dtype)
        return np.where(m == np.inf, limit, regular)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """log(sum(b * exp(a))) along `axis`, SciPy's definition and defaults.

    With return_sign=True returns (log|s|, sign(s)); complex input gives the
    principal complex logarithm.
    """
    a = _as_inexact(a)
    if b is not None:
        a, b = np.broadcast_arrays(a, np.asarray(b))
        # b * exp(a) = sign(b) * exp(a + log|b|): the shift is the max of the
        # exponents themselves, so neither a tiny nor a huge weight loses bits
        # to cancellation or to subnormal products.  Weight-0 terms take no part.
        with _quiet():
            log_b = np.log(np.abs(b))
            a = a + log_b.astype(a.real.dtype, copy=False)
            # b / |b|, without dividing (NumPy's complex division overflows
            # for subnormal |b|).
            unit_b = np.exp(1j * np.angle(b)) if np.iscomplexobj(b) else np.sign(b)
    m = _max_keepdims(a, axis)
    with _quiet():
        m = np.where(np.isfinite(m), m, 0)
        tmp = np.exp(a - m)
        if b is not None:
            tmp = np.where(b != 0, unit_b * tmp, 0)
        s = np.sum(tmp, axis=axis, keepdims=True)
        sign = None
        if return_sign:
            if np.iscomplexobj(s):
                sign = np.where(s == 0, 0, s / np.abs(s))
            else:
                sign = np.sign(s)
            s = np.abs(s)
        out = np.log(s) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis)
        if sign is not None:
            sign = np.squeeze(sign, axis=axis)
    if out.ndim == 0:
        out = out[()]
        if sign is not None:
            sign = sign[()]
    return (out, sign) if return_sign else out
