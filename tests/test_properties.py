"""Property tests (issue 4, part 3): mathematical identities of softmax,
log_softmax and logsumexp, checked with hypothesis on float32 and float64
arrays of any shape and axis, with the accuracy bounds of the issue as the
tolerance:

- softmax: max relative error 4e-7 (float32) / 8e-16 (float64) on outputs
  >= 1e-30 / 1e-300;
- logsumexp: 2 ulp (float32) / 4 ulp (float64) of max(1, |result|);
- log_softmax: 4 ulp of max(1, |value|).

Here "k ulp of v" is k * np.spacing(v) in the result dtype.  The identities:
rows sum to 1 within n*eps; shifting by an exactly representable constant
changes nothing beyond the bound; order is preserved; softmax = exp(log_softmax)
where it does not underflow; max(x) <= logsumexp(x) <= max(x) + log(n); the
two-class softmax is the logistic sigmoid (scipy.special.expit).

The examples are derandomized (the "ci" profile of tests/conftest.py).
"""
import math

import numpy as np
import pytest

import fastsoftmax as fsm

from . import util

hypothesis = pytest.importorskip("hypothesis")
special = pytest.importorskip("scipy.special")
from hypothesis import given, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

F32, F64 = util.F32, util.F64
WIDE = {F32: F64, F64: util.LONGDOUBLE}

# The accuracy bounds of issue 4.
SOFTMAX_RTOL = {F32: 4e-7, F64: 8e-16}
SOFTMAX_TINY = {F32: 1e-30, F64: 1e-300}
LOGSUMEXP_ULPS = {F32: 2, F64: 4}
LOG_SOFTMAX_ULPS = {F32: 4, F64: 4}



def ulp(value, dt):
    """np.spacing(max(1, |value|)) in dtype dt, as a wide float array."""
    v = np.maximum(1, np.abs(np.asarray(value, dtype=WIDE[dt])))
    with np.errstate(over="ignore", invalid="ignore"):
        return np.spacing(v.astype(dt)).astype(WIDE[dt])


# ---- strategies ----------------------------------------------------------------

ROW_LENGTHS = st.one_of(st.integers(1, 20),
                        st.sampled_from([31, 32, 33, 63, 64, 65, 127, 129, 1000, 1023, 1025, 2100]))


@st.composite
def problems(draw, dtypes=(F32, F64), finite=True):
    """(x, axis, n): a float array, an axis (int, maybe negative) and the length n
    of that axis.  Small arrays take their elements from hypothesis itself;
    larger ones from a seeded generator with a drawn distribution."""
    dt = draw(st.sampled_from(dtypes))
    ndim = draw(st.integers(1, 3))
    pos = draw(st.integers(0, ndim - 1))
    n = draw(ROW_LENGTHS)
    shape = [draw(st.integers(1, 4)) for _ in range(ndim)]
    shape[pos] = n
    shape = tuple(shape)
    axis = draw(st.sampled_from([pos, pos - ndim]))
    size = math.prod(shape)
    if size <= 64 and draw(st.booleans()):
        bound = draw(st.sampled_from([1.0, 30.0, 1e3, 1e4]))
        elements = st.floats(-bound, bound, width=8 * dt.itemsize, allow_nan=False,
                             allow_infinity=False)
        x = draw(hnp.arrays(dt, shape, elements=elements))
    else:
        seed = draw(st.integers(0, 2**32 - 1))
        scale = draw(st.sampled_from([1e-3, 1.0, 4.0, 30.0, 300.0]))
        offset = draw(st.sampled_from([0.0, 1.0, -50.0, 1000.0, -1e4]))
        rng = np.random.default_rng(seed)
        if draw(st.booleans()):
            x = rng.normal(offset, scale, shape)
        else:
            x = rng.uniform(offset - scale, offset + scale, shape)
        x = x.astype(dt)
    if not finite and draw(st.booleans()):
        # A few -inf entries (never a whole row: the identities are about finite rows).
        flat = np.moveaxis(x, axis, -1).copy()
        k = draw(st.integers(0, n - 1))
        flat[..., :k] = -np.inf
        x = np.ascontiguousarray(np.moveaxis(flat, -1, axis))
    return x, axis, n


def rows(a, axis):
    """a with `axis` last, as a 2-D array of rows."""
    a = np.asarray(a)
    return np.moveaxis(a, axis, -1).reshape(-1, a.shape[axis])


# ---- checks against a bound ------------------------------------------------------

def assert_softmax_within(actual, expected, dt, factor=1.0, what=""):
    """|actual - expected| <= factor * rtol * expected where expected >= tiny, and
    <= factor * tiny below."""
    a = np.asarray(actual, dtype=WIDE[dt])
    e = np.asarray(expected, dtype=WIDE[dt])
    tiny, rtol = SOFTMAX_TINY[dt], SOFTMAX_RTOL[dt]
    big = e >= tiny
    err = np.abs(a - e)
    rel = np.where(big, err / np.where(big, e, 1), 0)
    assert not (rel > factor * rtol).any(), (
        f"{what}: relative error {float(rel.max()):.3g} > {factor * rtol:.3g} "
        f"(= {float(rel.max()) / rtol:.3g} x the bound) at {np.argwhere(rel > factor * rtol)[:3].tolist()}: "
        f"got {a[rel > factor * rtol][:3]}, expected {e[rel > factor * rtol][:3]}")
    small_err = np.where(big, 0, err)
    assert not (small_err > factor * tiny).any(), f"{what}: absolute error {small_err.max():.3g} below tiny"


def assert_log_within(actual, expected, dt, ulps, what=""):
    """|actual - expected| <= ulps * spacing(max(1, |expected|)) in dt."""
    a = np.asarray(actual, dtype=WIDE[dt])
    e = np.asarray(expected, dtype=WIDE[dt])
    assert np.array_equal(np.isnan(a), np.isnan(e)), f"{what}: NaN pattern differs"
    inf = np.isinf(e)
    assert np.array_equal(a[inf], e[inf]), f"{what}: infinities differ"
    ok = np.isfinite(e)
    err = np.abs(a[ok] - e[ok]) / ulp(e[ok], dt)
    assert not (err > ulps).any(), (
        f"{what}: error {float(err.max()):.3g} ulp > {ulps} ulp "
        f"(got {a[ok][err > ulps][:3]}, expected {e[ok][err > ulps][:3]})")


# ---- the properties -------------------------------------------------------------------

@given(problems(finite=False))
def test_softmax_rows_sum_to_one(problem):
    x, axis, n = problem
    dt = x.dtype
    y = fsm.softmax(x, axis=axis)
    assert y.dtype == dt and y.shape == x.shape
    total = rows(y, axis).astype(util.LONGDOUBLE).sum(axis=-1)
    err = np.abs(total - 1)
    eps = float(np.finfo(dt).eps)
    assert not (err > n * eps).any(), (
        f"softmax rows of {n} ({dt}) sum to 1 +- {float(err.max()) / eps:.3g} eps > n * eps = {n} eps")


def _shift(x, c):
    """x rounded onto a grid on which x, c and x + c are all exact in x.dtype."""
    dt = x.dtype
    p = np.finfo(dt).nmant + 1
    top = float(np.max(np.abs(x))) + abs(c)
    e = math.frexp(top)[1] + 1                       # |x|, |c|, |x + c| < 2**e
    q = 2.0 ** (e - p)
    xq = (np.round(x.astype(np.float64) / q) * q).astype(dt)
    shifted = xq + dt.type(c)
    wide = WIDE[dt]
    assert np.array_equal(shifted.astype(wide), xq.astype(wide) + wide.type(c)), "shift not exact"
    assert np.array_equal(shifted - dt.type(c), xq)
    return xq, shifted


SHIFTS = st.sampled_from([1.0, -3.0, 0.5, 64.0, -1000.0, 2.0**20, -(2.0**40), 12345.0])


@given(problems(), SHIFTS)
def test_shift_invariance(problem, c):
    """softmax(x + c) = softmax(x), log_softmax(x + c) = log_softmax(x) and
    logsumexp(x + c) = logsumexp(x) + c, within the bounds (both sides may be off
    by the bound in opposite directions), for c with x + c exact."""
    x, axis, n = problem
    dt = x.dtype
    if dt == F32 and abs(c) > 2.0**20:
        c = math.copysign(2.0**20, c)
    x, xc = _shift(x, c)
    what = f"{dt} shape {x.shape} axis {axis} shift {c}"

    y0, y1 = fsm.softmax(x, axis=axis), fsm.softmax(xc, axis=axis)
    ref = util.reference("softmax", x, axis)
    tiny, rtol = SOFTMAX_TINY[dt], SOFTMAX_RTOL[dt]
    d = np.abs(y1.astype(WIDE[dt]) - y0.astype(WIDE[dt]))
    allowed = np.where(ref >= tiny, 2 * rtol * ref, 2 * tiny)
    bad = d > allowed
    assert not bad.any(), (f"softmax {what}: changed by {float((d / np.maximum(ref, tiny)).max()):.3g} "
                           f"relative > 2 x {rtol} (got {y1[bad][:3]}, before the shift {y0[bad][:3]})")

    ref = util.reference("log_softmax", x, axis)
    l0, l1 = fsm.log_softmax(x, axis=axis), fsm.log_softmax(xc, axis=axis)
    d = np.abs(l1.astype(WIDE[dt]) - l0.astype(WIDE[dt]))
    allowed = 2 * LOG_SOFTMAX_ULPS[dt] * ulp(ref, dt)
    assert not (d > allowed).any(), (
        f"log_softmax {what}: changed by {float((d / ulp(ref, dt)).max()):.3g} ulp "
        f"> 2 x {LOG_SOFTMAX_ULPS[dt]} ulp")

    ref = util.reference("logsumexp", x, axis)
    s0, s1 = fsm.logsumexp(x, axis=axis), fsm.logsumexp(xc, axis=axis)
    w = WIDE[dt]
    d = np.abs(np.asarray(s1, w) - (np.asarray(s0, w) + w.type(c)))
    allowed = LOGSUMEXP_ULPS[dt] * (ulp(ref, dt) + ulp(ref + w.type(c), dt))
    assert not (d > allowed).any(), (
        f"logsumexp {what}: logsumexp(x + c) - c - logsumexp(x) = {float(d.max()):.3g} "
        f"> {float(allowed.max()):.3g}")


@given(problems(finite=False))
def test_order_preserving(problem):
    """x_i <= x_j implies y_i <= y_j along each row (so equal inputs give equal
    outputs), for softmax and log_softmax."""
    x, axis, n = problem
    xr = rows(x, axis)
    order = np.argsort(xr, axis=-1, kind="stable")
    xs = np.take_along_axis(xr, order, axis=-1)
    for func in ("softmax", "log_softmax"):
        y = getattr(fsm, func)(x, axis=axis)
        ys = np.take_along_axis(rows(y, axis), order, axis=-1)
        with np.errstate(invalid="ignore"):          # -inf - -inf
            dy, dx = np.diff(ys, axis=-1), np.diff(xs, axis=-1)
        bad = dy < 0
        assert not bad.any(), (f"{func} ({x.dtype}): larger input gave a smaller output at "
                               f"{np.argwhere(bad)[:3].tolist()}")
        bad = ((dx == 0) | (xs[:, 1:] == xs[:, :-1])) & (ys[:, 1:] != ys[:, :-1])
        where = np.argwhere(bad)[:3].tolist()
        assert not bad.any(), (f"{func} ({x.dtype}, n={n}): equal inputs gave different outputs at "
                               f"{where}: {[(xs[i, j], ys[i, j], ys[i, j + 1]) for i, j in where]}")


@given(problems(finite=False))
def test_softmax_is_exp_of_log_softmax(problem):
    """softmax(x) = exp(log_softmax(x)) where it does not underflow: the relative
    difference is at most the softmax bound plus the log_softmax error (an
    absolute error d of log_softmax is a relative error of about d in exp)."""
    x, axis, n = problem
    dt, w = x.dtype, WIDE[x.dtype]
    y = fsm.softmax(x, axis=axis).astype(w)
    ls = fsm.log_softmax(x, axis=axis).astype(w)
    e = np.exp(ls)
    ok = e >= SOFTMAX_TINY[dt]
    d = LOG_SOFTMAX_ULPS[dt] * ulp(ls, dt)
    allowed = (SOFTMAX_RTOL[dt] + np.expm1(d)) * e
    err = np.abs(y - e)
    bad = ok & (err > allowed)
    assert not bad.any(), (f"{dt} n={n}: softmax {y[bad][:3]} != exp(log_softmax) {e[bad][:3]} "
                           f"(ratio to the allowed error {float((err[bad] / allowed[bad]).max()):.3g})")


@given(problems())
def test_logsumexp_between_max_and_max_plus_log_n(problem):
    """max(x) <= logsumexp(x) <= max(x) + log(n).  The lower bound is exact (max(x)
    is representable); the upper one is the exact max(x) + log(n) plus the
    logsumexp bound (it is not representable)."""
    x, axis, n = problem
    dt, w = x.dtype, WIDE[x.dtype]
    s = np.asarray(fsm.logsumexp(x, axis=axis))
    m = np.max(x, axis=axis)
    assert s.dtype == dt and s.shape == m.shape
    bad = s < m
    assert not bad.any(), (f"{dt} n={n}: logsumexp {s[bad][:3]} < max {m[bad][:3]} "
                           f"(by {((m[bad] - s[bad]) / np.spacing(np.abs(m[bad])))[:3]} ulp)")
    upper = m.astype(w) + np.log(w.type(n))
    over = s.astype(w) - upper
    bad = over > LOGSUMEXP_ULPS[dt] * ulp(upper, dt)
    assert not bad.any(), (f"{dt} n={n}: logsumexp {s[bad][:3]} > max + log(n) = {upper[bad][:3]} "
                           f"by {(over[bad] / ulp(upper[bad], dt))[:3]} ulp")


@given(st.sampled_from([F32, F64]), st.data())
def test_two_class_softmax_is_the_sigmoid(dt, data):
    """softmax([z, 0]) = [expit(z), expit(-z)] and log_softmax([z, 0]) =
    [log_expit(z), log_expit(-z)], along the last axis and along axis 0; the
    sigmoid is evaluated one precision wider (SciPy's long double loop for float64)."""
    w = WIDE[dt]
    z = data.draw(hnp.arrays(dt, st.integers(1, 40),
                             elements=st.floats(width=8 * dt.itemsize, allow_nan=False,
                                                allow_infinity=False)
                             | st.floats(-120, 120, width=8 * dt.itemsize)))
    pair = np.stack([z, np.zeros_like(z)], axis=-1)
    zw = z.astype(w)
    expected = np.stack([special.expit(zw), special.expit(-zw)], axis=-1)
    log_expected = np.stack([special.log_expit(zw), special.log_expit(-zw)], axis=-1)
    for axis, x, e, le in ((-1, pair, expected, log_expected),
                           (0, np.ascontiguousarray(pair.T), expected.T, log_expected.T)):
        what = f"{dt} axis {axis}, z = {z[:4]}"
        assert_softmax_within(fsm.softmax(x, axis=axis), e, dt, what="softmax([z, 0]) vs expit " + what)
        assert_log_within(fsm.log_softmax(x, axis=axis), le, dt, LOG_SOFTMAX_ULPS[dt],
                          what="log_softmax([z, 0]) vs log_expit " + what)
