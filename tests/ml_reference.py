"""Wide-precision NumPy references of the machine-learning functions (DESIGN §1,
issue 5), written from the definitions and independently of fastsoftmax, and the
error bounds the tests hold fastsoftmax to.

Every reference computes in the dtype it is given: call it through ``wide()``,
which applies the dtype policy's cast and then widens (float64 for float32
arithmetic, long double for float64, as ``util.reference`` does).  Nothing here
calls fastsoftmax.  tests/test_ml.py checks each reference against PyTorch, so
the reference and fastsoftmax are both held to torch.

Semantics written down here (the contract of the tests):

- ``temperature`` T: f(x / T).  The shift is taken before dividing,
  ((x - max) / T), so the reference is the exact value even where x / T itself
  would overflow (T -> 0 is the one-hot argmax, ties sharing equally).
- ``where``: False entries take no part; softmax gives them 0, log_softmax
  -inf, logsumexp ignores them.  A row with no True entry: 0 / -inf / -inf.
  Among the True entries the policy of DESIGN §1 holds as without a mask (NaN
  gives NaN, +inf is the limit, only -inf is 0/0 = NaN); the False entries
  still get 0 / -inf then.
- ``cross_entropy``: torch.nn.functional.cross_entropy (see the function).
"""
import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from . import util


def _quiet():
    return np.errstate(all="ignore")


def wide(a):
    """The values fastsoftmax computes on (after the policy's cast), in a wider dtype."""
    a = np.asarray(a)
    return a.astype(util.compute_dtype(a.dtype)).astype(util.reference_dtype(a.dtype))


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return normalize_axis_tuple(axis, ndim)


def _valid(x, where):
    """The entries that take part: a full-shape bool array."""
    if where is None:
        return np.ones(x.shape, bool)
    where = np.asarray(where)
    assert where.dtype == bool
    return np.broadcast_to(where, x.shape)


def _row_stats(x, axes, temperature, where):
    """(valid, max over valid, d = (x - max) / T on valid entries (else -inf),
    per-row: any NaN, count of valid, count of valid +inf) with keepdims."""
    valid = _valid(x, where)
    with _quiet():
        xm = np.where(valid, x, -np.inf).astype(x.dtype)
        has_nan = np.any(np.isnan(xm), axis=axes, keepdims=True)
        m = np.max(np.where(np.isnan(xm), -np.inf, xm), axis=axes, keepdims=True, initial=-np.inf)
        n_valid = np.sum(valid, axis=axes, keepdims=True)
        at_inf = valid & (x == np.inf)
        n_inf = np.sum(at_inf, axis=axes, keepdims=True)
        finite_m = np.where(np.isfinite(m), m, 0).astype(x.dtype)
        d = np.where(valid, (xm - finite_m) / x.dtype.type(temperature), -np.inf).astype(x.dtype)
    return valid, m, d, has_nan, n_valid, at_inf, n_inf


def softmax(x, axis=-1, temperature=1.0, where=None):
    """softmax(x / T) over the entries where `where` is True; 0 elsewhere."""
    x = np.asarray(x)
    axes = _axes(axis, x.ndim)
    valid, m, d, has_nan, n_valid, at_inf, n_inf = _row_stats(x, axes, temperature, where)
    with _quiet():
        e = np.exp(d)
        y = e / np.sum(e, axis=axes, keepdims=True)
        y = np.where(m == np.inf, at_inf / n_inf, y)                # the limit: +inf share
        y = np.where((m == -np.inf) & valid, np.nan, y)              # only -inf: 0/0
        y = np.where(has_nan & valid, np.nan, y)
        y = np.where(valid & (n_valid > 0), y, 0)
    return y.astype(x.dtype)


def log_softmax(x, axis=-1, temperature=1.0, where=None):
    """log_softmax(x / T) over the entries where `where` is True; -inf elsewhere."""
    x = np.asarray(x)
    axes = _axes(axis, x.ndim)
    valid, m, d, has_nan, n_valid, at_inf, n_inf = _row_stats(x, axes, temperature, where)
    with _quiet():
        v = d - np.log(np.sum(np.exp(d), axis=axes, keepdims=True))
        limit = np.where(at_inf, -np.log(n_inf.astype(x.dtype)), -np.inf)
        v = np.where(m == np.inf, limit, v)
        v = np.where((m == -np.inf) & valid, np.nan, v)
        v = np.where(has_nan & valid, np.nan, v)
        v = np.where(valid & (n_valid > 0), v, -np.inf)
    return v.astype(x.dtype)


def logsumexp(x, axis=-1, b=None, keepdims=False, return_sign=False, temperature=1.0, where=None):
    """log(sum(b * exp(x / T))) over the entries where `where` is True (-inf if none).
    With return_sign: (log|sum|, sign(sum))."""
    x = np.asarray(x)
    axes = _axes(axis, x.ndim)
    valid = _valid(x, where)
    with _quiet():
        xm = np.where(valid, x, -np.inf).astype(x.dtype)
        m = np.max(xm, axis=axes, keepdims=True, initial=-np.inf)     # NaN propagates
        shift = np.where(np.isfinite(m), m, 0).astype(x.dtype)
        T = x.dtype.type(temperature)
        terms = np.exp((xm - shift) / T)
        if b is not None:
            bb = np.broadcast_to(np.asarray(b).astype(x.dtype), x.shape)
            terms = np.where(valid & (bb != 0), bb * terms, 0)
        s = np.sum(terms, axis=axes, keepdims=True)
        value = shift / T + np.log(np.abs(s))
        sign = np.sign(s)
    if not keepdims:
        value, sign = np.squeeze(value, axis=axes), np.squeeze(sign, axis=axes)
    value, sign = value.astype(x.dtype), sign.astype(x.dtype)
    return (value, sign) if return_sign else value


def softmax_backward(y, grad_y, axis=-1, temperature=1.0):
    """The vector-Jacobian product of softmax(x / T) at y = softmax(x / T):
    y * (g - sum(g * y)) / T."""
    y, g = np.asarray(y), np.asarray(grad_y)
    s = np.sum(g * y, axis=axis, keepdims=True)
    return y * (g - s) / y.dtype.type(temperature)


def log_softmax_backward(logp, grad_logp, axis=-1, temperature=1.0):
    """The vector-Jacobian product of log_softmax(x / T) at logp:
    (g - exp(logp) * sum(g)) / T."""
    logp, g = np.asarray(logp), np.asarray(grad_logp)
    s = np.sum(g, axis=axis, keepdims=True)
    return (g - np.exp(logp) * s) / logp.dtype.type(temperature)


# ---- cross-entropy -------------------------------------------------------------------

def _ce_parts(logits, target, axis, temperature, weight, ignore_index, label_smoothing):
    """Everything cross_entropy's value, gradient and error bound are made of, with
    the class axis moved last: (coef, L, logp, p, lse, keep, is_prob, n_samples)
    where the per-sample loss is -sum_c coef[..., c] * logp[..., c] and
    keep[...] is the weight the sample adds to the 'mean' denominator."""
    logits = np.asarray(logits)
    dt = logits.dtype
    axis = axis % logits.ndim
    L = np.moveaxis(logits, axis, -1)
    C = L.shape[-1]
    w = np.ones(C, dt) if weight is None else np.asarray(weight).astype(dt)
    eps = dt.type(label_smoothing)
    T = dt.type(temperature)
    with _quiet():
        logp = log_softmax(L, -1, temperature)
        p = softmax(L, -1, temperature)
        m = np.max(L, axis=-1, keepdims=True)
        lse = m / T + np.log(np.sum(np.exp((L - m) / T), axis=-1, keepdims=True))
    target = np.asarray(target)
    is_prob = target.shape == logits.shape
    if is_prob:
        q = np.moveaxis(target, axis, -1).astype(dt)
        q = q * (1 - eps) + eps / C
        coef = q * w
        keep = np.ones(L.shape[:-1], dt)
    else:
        t = target.astype(np.int64)
        ignored = np.zeros(t.shape, bool) if ignore_index is None else t == ignore_index
        t_safe = np.where(ignored, 0, t)
        assert np.all((t_safe >= 0) & (t_safe < C)), "labels out of range"
        onehot = (np.arange(C) == t_safe[..., None]).astype(dt)
        coef = (1 - eps) * onehot * w + eps / C * w
        coef = np.where(ignored[..., None], 0, coef).astype(dt)
        keep = np.where(ignored, 0, w[t_safe]).astype(dt)
    return coef, L, logp, p, lse, keep, is_prob, int(np.prod(L.shape[:-1]))


def _ce_denominator(reduction, keep, is_prob, n_samples, dt):
    if reduction == "mean":
        return dt.type(n_samples) if is_prob else np.sum(keep, dtype=dt)
    return dt.type(1)


def cross_entropy(logits, target, axis=-1, temperature=1.0, weight=None, ignore_index=None,
                  label_smoothing=0.0, reduction="mean", return_grad=False):
    """torch.nn.functional.cross_entropy(logits / T, target, weight, ignore_index,
    reduction, label_smoothing) with the class axis `axis`, from its definition:

    index targets t (labels), smoothing e, C classes, per sample
        loss = (1 - e) * w[t] * -logp[t] + e / C * sum_c w[c] * -logp[c]   (0 if ignored)
        'mean' divides the sum by sum(w[t]) over the samples not ignored;
    probability targets q:  q' = (1 - e) * q + e / C, loss = -sum_c w[c] q'[c] logp[c],
        'mean' divides by the number of samples.
    The gradient (return_grad) is d loss / d logits (of the sum for 'none'):
        (p * sum_c coef[c] - coef) / (T * denominator).
    With every sample ignored, 'mean' is 0/0 = NaN and the gradient 0 (as in torch:
    no sample contributes)."""
    logits = np.asarray(logits)
    dt = logits.dtype
    coef, L, logp, p, lse, keep, is_prob, n = _ce_parts(
        logits, target, axis, temperature, weight, ignore_index, label_smoothing)
    with _quiet():
        per_sample = -np.sum(np.where(coef != 0, coef * logp, 0), axis=-1)
        denom = _ce_denominator(reduction, keep, is_prob, n, dt)
        if reduction == "none":
            loss = per_sample
        else:
            loss = np.sum(per_sample, dtype=dt) / denom
        if not return_grad:
            return loss
        g = p * np.sum(coef, axis=-1, keepdims=True) - coef
        g = g / dt.type(temperature) / denom if denom != 0 else np.zeros_like(g)
    return loss, np.moveaxis(g, -1, axis % logits.ndim)


def cross_entropy_bounds(logits, target, axis=-1, temperature=1.0, weight=None, ignore_index=None,
                         label_smoothing=0.0, reduction="mean"):
    """Magnitudes the rounding errors of cross_entropy scale with: (loss scale,
    gradient scale, softmax factor).  The loss is a sum of |coef| * (|logits / T| +
    |logsumexp|) terms, each carrying a few ulps; a gradient entry is
    (p * sum|coef| + |coef|) / T, divided like the loss; the softmax factor
    sum|coef| / T (divided likewise, keepdims along the class axis) is what an
    absolute error of p costs the gradient."""
    logits = np.asarray(logits)
    dt = logits.dtype
    coef, L, logp, p, lse, keep, is_prob, n = _ce_parts(
        logits, target, axis, temperature, weight, ignore_index, label_smoothing)
    with _quiet():
        a = np.abs(coef)
        terms = a * (np.abs(L / dt.type(temperature)) + np.abs(lse))
        per_sample = np.sum(np.where(a != 0, terms, 0), axis=-1)
        denom = np.abs(_ce_denominator(reduction, keep, is_prob, n, dt))
        loss = per_sample if reduction == "none" else np.sum(per_sample) / denom
        A = np.sum(a, axis=-1, keepdims=True) / dt.type(temperature)
        g = p * A + a / dt.type(temperature)
        if denom != 0:
            g, A = g / denom, A / denom
        else:
            g, A = np.zeros_like(g), np.zeros_like(A)
    ax = axis % logits.ndim
    return loss, np.moveaxis(g, -1, ax), np.moveaxis(A, -1, ax)


# ---- error bounds ------------------------------------------------------------------------

def softmax_conditioning(x, axis=-1, temperature=1.0, where=None):
    """(|d|, sum_j y_j |d_j|, |max / T|) with d = (x - max) / T: what the rounding of
    x / T (unavoidable when T != 1) costs a computed softmax, relatively."""
    x = np.asarray(x)
    axes = _axes(axis, x.ndim)
    valid, m, d, *_ = _row_stats(x, axes, temperature, where)
    y = softmax(x, axis, temperature, where)
    with _quiet():
        ad = np.where(valid & np.isfinite(d), np.abs(d), 0)
        spread = np.sum(np.where(np.isfinite(y), y, 0) * ad, axis=axes, keepdims=True)
        shift = np.where(np.isfinite(m), np.abs(m / x.dtype.type(temperature)), 0)
    return ad, spread, shift


# ulps of the division by T (and of the reciprocal): at most one rounding each of
# (x - max), 1/T and the product, in units of eps (= 2 rounding units).
TEMPERATURE_ULPS = 3


def rounded(expected, dt):
    """The exact value rounded to the output dtype dt, back in a wide dtype (float64
    for float32/halfs, long double for float64): what a correctly rounded result is."""
    wide_dt = util.LONGDOUBLE if dt == util.F64 else util.F64
    with np.errstate(over="ignore"):
        return np.asarray(expected).astype(dt).astype(wide_dt)


def assert_within(actual, expected, bound, what=""):
    """NaN where and only where expected is NaN, infinities equal, and elsewhere
    |actual - expected| <= bound (arrays of one shape, bound broadcastable)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    a = actual.astype(expected.dtype)
    nan_a, nan_e = np.isnan(a), np.isnan(expected)
    assert np.array_equal(nan_a, nan_e), (
        f"{what}: NaN mismatch at {np.argwhere(nan_a != nan_e)[:5].tolist()} "
        f"(got {a[nan_a != nan_e][:5]}, expected {expected[nan_a != nan_e][:5]})")
    inf = np.isinf(expected) | np.isinf(a)
    bad = inf & (a != expected)
    assert not bad.any(), (f"{what}: got {a[bad][:5]}, expected {expected[bad][:5]} "
                           f"at {np.argwhere(bad)[:5].tolist()}")
    ok = ~(nan_e | inf)
    bound = np.broadcast_to(bound, expected.shape)
    with _quiet():
        err = np.abs(a - expected)
        bad = ok & ~(err <= bound)
    if bad.any():
        i = np.argwhere(bad)[:3]
        ratio = np.max(err[bad] / np.where(bound[bad] > 0, bound[bad], np.finfo(np.float64).tiny))
        raise AssertionError(f"{what}: error above the bound at {i.tolist()}: got {a[bad][:3]}, "
                             f"expected {expected[bad][:3]}, bound {bound[bad][:3]} "
                             f"(worst error/bound {float(ratio):.3g})")


def _check_dtype(actual, out_dtype, what):
    actual = np.asarray(actual)
    assert actual.dtype == out_dtype, f"{what}: dtype {actual.dtype}, expected {out_dtype}"
    return actual


_EXPECTATIONS = {}


def _key(a):
    a = np.asarray(a)
    if a.dtype.kind != "V" and not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    values = a.copy(order="C")     # (np.ascontiguousarray would make 0-d arrays 1-d)
    return (values.dtype.str, values.dtype.name, values.shape, values.tobytes())


def expectation(func, x, axis=-1, temperature=1.0, where=None, out_dtype=None, keepdims=False):
    """(expected value rounded to the output dtype, error bound) of fastsoftmax's
    func(x, axis, temperature=, where=, dtype=out_dtype, keepdims=), remembered by value
    (the layouts of one array share it).

    softmax: util's relative tolerance (float32 1e-6, float64 1e-14, halfs 2 half ulps)
    at or above util.tiny_softmax, that absolute tolerance below.  log_softmax and
    logsumexp: util's 8 ulps of max(1, |value|) (halfs: float32's, then one half ulp).
    With T != 1, what rounding x / T costs on top: TEMPERATURE_ULPS ulps of |d_i| and of
    sum_j y_j |d_j| (d = (x - max) / T), and of |max / T| for logsumexp."""
    key = (func, _key(x), repr(axis), float(temperature),
           None if where is None else _key(where), str(out_dtype), keepdims)
    if key in _EXPECTATIONS:
        return _EXPECTATIONS[key]
    x = np.asarray(x)
    dt = util.result_dtype(x.dtype) if out_dtype is None else np.dtype(out_dtype)
    xr = wide(x) if out_dtype is None else x.astype(util.compute_dtype(dt)).astype(util.reference_dtype(dt))
    eps = float(util.finfo(util.compute_dtype(dt)).eps)
    T = temperature
    if func == "softmax":
        e = softmax(xr, axis, T, where)
        er = rounded(e, dt)
        rtol = util.rtol_softmax(dt)
        if T != 1.0:
            ad, spread, _ = softmax_conditioning(xr, axis, T, where)
            rtol = rtol + TEMPERATURE_ULPS * eps * (ad + spread)
        bound = np.maximum(rtol * np.abs(er), util.tiny_softmax(dt))
    else:
        if func == "log_softmax":
            e = log_softmax(xr, axis, T, where)
        else:
            e = logsumexp(xr, axis, keepdims=keepdims, temperature=T, where=where)
        er = rounded(e, dt)
        if util.is_half(dt):   # float32's bound, then the rounding to half: 1 half ulp
            bound = (util.ulps_log(util.F32) * np.maximum(1, np.abs(er))
                     + float(util.finfo(dt).eps) * np.abs(er) + float(util.finfo(dt).smallest_subnormal))
        else:
            bound = util.ulps_log(dt) * np.maximum(1, np.abs(er))
        if T != 1.0:
            ad, spread, shift = softmax_conditioning(xr, axis, T, where)
            if func == "logsumexp":     # m / T + log(sum)
                extra = TEMPERATURE_ULPS * eps * (spread + shift)
                extra = extra if keepdims else np.squeeze(extra, axis=_axes(axis, x.ndim))
            else:                       # d - log(sum), |d| <= |value|
                extra = TEMPERATURE_ULPS * eps * spread
            bound = bound + extra
    if len(_EXPECTATIONS) > 20000:
        _EXPECTATIONS.clear()
    _EXPECTATIONS[key] = dt, er, bound
    return dt, er, bound


def check(func, actual, x, axis=-1, temperature=1.0, where=None, what="", out_dtype=None,
          keepdims=False):
    """fastsoftmax's func(x, axis, temperature=, where=) against the reference, within
    expectation()'s bound; the result's dtype is the policy's (or out_dtype)."""
    dt, er, bound = expectation(func, x, axis, temperature, where, out_dtype, keepdims)
    actual = _check_dtype(actual, dt, what)
    assert_within(actual, er, bound, what)


def check_backward(func, got, y, g, axis, T, what, out_dtype=None):
    """The reference VJP from the same (y, g), with a bound of a few ulps of the
    magnitudes that enter each entry: y * (|g| + sum|g y|) (softmax) or
    |g| + p * sum|g| (log_softmax), divided by T."""
    y, g = np.asarray(y), np.asarray(g)
    in_dt = np.result_type(util.result_dtype(y.dtype), util.result_dtype(g.dtype))
    dt = util.result_dtype(in_dt) if out_dtype is None else np.dtype(out_dtype)
    got = np.asarray(got)
    assert got.dtype == dt, f"{what}: dtype {got.dtype}, expected {dt}"
    yw, gw = wide(y), wide(g)
    back = softmax_backward if func == "softmax" else log_softmax_backward
    expected = rounded(back(yw, gw, axis, T), dt)
    eps = float(util.finfo(util.compute_dtype(dt)).eps)
    with np.errstate(all="ignore"):
        if func == "softmax":
            scale = np.abs(yw) * (np.abs(gw) + np.sum(np.abs(gw * yw), axis=axis, keepdims=True))
        else:
            scale = np.abs(gw) + np.exp(yw) * np.sum(np.abs(gw), axis=axis, keepdims=True)
    # Results in the subnormal range carry absolute errors of a subnormal spacing per rounding.
    sub = float(util.finfo(util.compute_dtype(dt)).smallest_subnormal)
    bound = 4 * eps * scale / T + 2 * sub * (1 + 1 / T)
    if util.is_half(dt):
        bound = bound + float(util.finfo(dt).eps) * np.abs(expected) + float(util.finfo(dt).smallest_subnormal)
    assert_within(got, expected, bound, what)


def check_cross_entropy(loss, grad, logits, target, what="", **kw):
    """fastsoftmax's (loss, grad) against the reference: loss within 8 ulps of the sum of
    the magnitudes it is made of, each gradient entry within a few ulps of its terms
    (p * sum|coef| with the softmax's bound, and |coef|), the half-precision rounding of
    the gradient on top."""
    logits = np.asarray(logits)
    in_dt = logits.dtype
    comp = util.compute_dtype(in_dt)
    loss_dt = comp
    grad_dt = util.result_dtype(in_dt)
    lw = wide(logits)
    el, eg = cross_entropy(lw, target, return_grad=True, **kw)
    ls, gs, factor = cross_entropy_bounds(lw, target, **kw)
    eps = float(np.finfo(comp).eps)
    loss = np.asarray(loss)
    assert loss.dtype == loss_dt, f"{what}: loss dtype {loss.dtype}, expected {loss_dt}"
    assert_within(loss, rounded(el, loss_dt), 8 * eps * ls + float(np.finfo(comp).tiny), what + " loss")
    if grad is None:
        return
    grad = np.asarray(grad)
    assert grad.dtype == grad_dt, f"{what}: grad dtype {grad.dtype}, expected {grad_dt}"
    T = kw.get("temperature", 1.0)
    axis = kw.get("axis", -1)
    cond = 1.0
    if T != 1.0:
        ad, spread, _ = softmax_conditioning(np.moveaxis(lw, axis, -1), -1, T)
        cond = 1 + TEMPERATURE_ULPS * (np.moveaxis(ad, -1, axis) + np.moveaxis(spread, -1, axis))
    eg_r = rounded(eg, grad_dt)
    # The softmax's relative bound on p, 4 ulps of the rest, and the softmax's absolute
    # tolerance below util.tiny_softmax (terms below the smallest normal are flushed).
    bound = ((util.rtol_softmax(comp) / eps + 4) * eps * gs * cond
             + util.tiny_softmax(comp) * factor + float(np.finfo(comp).tiny))
    if util.is_half(grad_dt):
        bound = bound + float(util.finfo(grad_dt).eps) * np.abs(eg_r) + float(util.finfo(grad_dt).smallest_subnormal)
    assert_within(grad, eg_r, bound, what + " grad")
