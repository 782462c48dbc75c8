"""float16 and bfloat16 (ml_dtypes) through the machine-learning functions: computed
in float32 inside the kernels and returned in the input dtype (cross_entropy's loss
in float32, its gradient in the logits' dtype).  Each result is within one ulp of
the half dtype of the float32 computation rounded, and within float32's bound plus
one half ulp of the exact value; special values, layouts, masks, out=.
"""
import numpy as np
import pytest

import fastsoftmax as fsm
from fastsoftmax import _kernels

from . import ml_reference as ref
from . import util

inf, nan = np.inf, np.nan
F16, F32 = np.dtype(np.float16), np.dtype(np.float32)
BF16 = util.BFLOAT16
HALF = [pytest.param(F16, id="float16"),
        pytest.param(BF16, id="bfloat16",
                     marks=pytest.mark.skipif(BF16 is None, reason="ml_dtypes is not installed"))]
FUNCS = {name: getattr(fsm, name) for name in util.FUNCTIONS}
MAPS = ("softmax", "log_softmax")


def ulp(values, dt):
    """The spacing of the half dtype dt at each value (a float64 array)."""
    info = util.finfo(dt)
    v = np.abs(np.asarray(values, np.float64))
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(np.where(v > 0, v, 1.0)))
    e = np.maximum(e, float(info.minexp))
    return np.exp2(e - float(info.nmant))


def assert_within_one_ulp(actual, expected, dt, what=""):
    """actual (of dtype dt) and expected (rounded to dt) are the same or adjacent
    numbers of dt; NaN and infinities exactly where expected has them."""
    actual = np.asarray(actual)
    assert actual.dtype == dt, f"{what}: dtype {actual.dtype}, expected {dt}"
    with np.errstate(over="ignore"):
        e = np.asarray(expected).astype(dt).astype(np.float64)
    ref.assert_within(actual.astype(np.float64), e, ulp(e, dt), what)


def _float32_path(func, x, **kw):
    """The float32 computation of the same call (on the same values)."""
    return FUNCS[func](np.asarray(x).astype(F32), **kw)


def _normal(shape, seed, scale=3.0):
    return np.random.default_rng(seed).normal(0.0, scale, shape)


# ---- values -----------------------------------------------------------------------------

@pytest.mark.parametrize("dt", HALF)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_half_over_the_generator(func, dt):
    """Every shape, layout (byte-swapped float16 included) and special value of the
    generator, every axis: the input dtype, one ulp of the float32 path, the bound
    of the exact value."""
    f = FUNCS[func]
    n = 0
    for desc, x in util.arrays(dtypes=[dt], shapes=[(), (0,), (3, 0), (1,), (7,), (5, 13), (3, 4, 5), (2, 70)]):
        before = util.digest(x)
        for axis in util.axes_for(x.ndim) if x.ndim < 3 else (-1, 0, 1, None, (0, 2)):
            what = f"{func}({desc}, axis={axis})"
            got = f(x, axis=axis)
            assert_within_one_ulp(got, _float32_path(func, x, axis=axis), dt, what + " vs float32 path")
            ref.check(func, got, x, axis, what=what)
            n += 1
        assert util.digest(x) == before, f"{func} modified {desc}"
    assert n > 300


@pytest.mark.parametrize("T", [0.07, 0.5, 3.0])
@pytest.mark.parametrize("dt", HALF)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_half_with_temperature_and_where(func, dt, T):
    f = FUNCS[func]
    rng = np.random.default_rng(1)
    for shape, axis, wshape in (((6, 40), -1, (6, 40)), ((3, 4, 70), -1, (3, 1, 70)),
                                ((50, 6), 0, (50, 1)), ((4, 9), -1, None)):
        x = _normal(shape, 2).astype(dt)
        w = None if wshape is None else rng.random(wshape) < 0.6
        what = f"{func}({dt}{shape}, axis={axis}, T={T}, where {wshape})"
        got = f(x, axis=axis, temperature=T, where=w)
        assert_within_one_ulp(got, _float32_path(func, x, axis=axis, temperature=T, where=w), dt, what)
        ref.check(func, got, x, axis, T, w, what)


@pytest.mark.parametrize("dt", HALF)
def test_half_special_values(dt):
    big = float(util.finfo(dt).max)       # 65504 for float16, 3.39e38 for bfloat16
    x = np.array([[big, big, 0.0], [big, -big, 1.0], [nan, 1.0, 2.0], [inf, 1.0, inf],
                  [-inf, -inf, -inf], [-inf, 0.0, -inf]]).astype(dt)
    y = fsm.softmax(x)
    assert y.dtype == dt
    expected = np.array([[.5, .5, 0], [1, 0, 0], [nan] * 3, [.5, 0, .5], [nan] * 3, [0, 1, 0]])
    np.testing.assert_array_equal(y.astype(np.float64), expected)
    lp = fsm.log_softmax(x).astype(np.float64)
    half_log2 = float(np.float64(-np.log(2)).astype(dt))
    np.testing.assert_array_equal(lp[0, :2], [half_log2] * 2)
    # big - (-big) = 2 * max: -inf in the half dtype (the exact value rounds there)
    np.testing.assert_array_equal(lp[1, :2], [0, -inf])
    assert np.isnan(lp[2]).all() and np.isnan(lp[4]).all()
    np.testing.assert_array_equal(lp[3], [half_log2, -inf, half_log2])
    np.testing.assert_array_equal(lp[5], [-inf, 0, -inf])
    lse = fsm.logsumexp(x).astype(np.float64)
    # max + log 2 rounds back to max (below max + half an ulp)
    assert lse[0] == big and lse[1] == big
    assert np.isnan(lse[2]) and lse[3] == inf and lse[4] == -inf and lse[5] == 0
    # Overflow of the result itself: logsumexp([max, 0]) / T for T = 0.5 is 2 * max: +inf.
    assert fsm.logsumexp(np.array([big, 0.0]).astype(dt), temperature=0.5).astype(np.float64) == inf
    # and a finite result from inputs whose float32 exp would overflow without the shift
    lse = fsm.logsumexp(np.array([big, big]).astype(dt), temperature=2.0)
    assert_within_one_ulp(lse, np.float64(big) / 2 + np.log(2), dt, "logsumexp(max, max, T=2)")


@pytest.mark.parametrize("dt", HALF)
def test_half_subnormal_outputs_and_inputs(dt):
    """float16: softmax outputs below float16's smallest normal (far above float32's) are
    rounded from the float32 value to float16 subnormals.  bfloat16 has float32's range:
    its outputs below float32's smallest normal are 0 (DESIGN §3: flushed)."""
    info = util.finfo(dt)
    tiny = float(info.smallest_normal)
    # exp(-d) just below tiny: d = -log(tiny) + 1
    d = -np.log(tiny) + 1.0
    x = np.array([0.0, -d, -d - 2, -1e4]).astype(dt)
    got = fsm.softmax(x)
    if dt == F16:
        assert_within_one_ulp(got, ref.softmax(ref.wide(x)), dt, "subnormal outputs")
    else:
        ref.assert_within(got.astype(np.float64), ref.softmax(ref.wide(x)), tiny, "flushed outputs")
        assert got[0] == 1
    sub = float(info.smallest_subnormal)
    x = np.array([sub, -sub, 0.0, 2 * sub]).astype(dt)
    assert_within_one_ulp(fsm.softmax(x), np.full(4, 0.25), dt, "subnormal inputs")


@pytest.mark.parametrize("dt", HALF)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_half_layouts(func, dt):
    """Strided, negative stride, axis 0 of C and F arrays, transposed, byte-swapped
    float16: all within one ulp of the C-ordered result (the same values; the kernels
    may sum in another order for another layout)."""
    x = _normal((6, 45), 3).astype(dt)
    for axis in (-1, 0):
        expected = FUNCS[func](x, axis=axis, temperature=0.5)
        for layout, a in util.layouts(x):
            if layout.startswith("broadcast"):
                continue
            got = FUNCS[func](a, axis=axis, temperature=0.5)
            assert got.dtype == dt and got.dtype.isnative, f"{layout}: {got.dtype}"
            assert_within_one_ulp(got, expected.astype(np.float64), dt, f"{func} {dt} {layout} axis={axis}")


def test_byte_swapped_float16_with_mask_and_temperature():
    x = _normal((5, 30), 4).astype(">f2" if np.little_endian else "<f2")
    w = np.random.default_rng(4).random((1, 30)) < 0.5
    for func in util.FUNCTIONS:
        got = FUNCS[func](x, where=w, temperature=0.3)
        assert got.dtype == F16 and got.dtype.isnative
        native = FUNCS[func](x.astype(F16), where=w, temperature=0.3)
        np.testing.assert_array_equal(got, native)


# ---- out= and dtype= ----------------------------------------------------------------------

@pytest.mark.parametrize("dt", HALF)
@pytest.mark.parametrize("func", MAPS)
def test_half_out(func, dt):
    """out of the half dtype: new, in place, strided, with a mask and a temperature."""
    x = _normal((6, 33), 5).astype(dt)
    w = np.random.default_rng(5).random((6, 33)) < 0.7
    kw = dict(temperature=0.5, where=w)
    expected = FUNCS[func](x, **kw)
    out = np.empty(x.shape, dt)
    assert FUNCS[func](x, out=out, **kw) is out
    np.testing.assert_array_equal(out.view(np.uint16), expected.view(np.uint16))
    y = x.copy()
    assert FUNCS[func](y, out=y, **kw) is y
    np.testing.assert_array_equal(y.view(np.uint16), expected.view(np.uint16))
    big = np.zeros((6, 66), dt)
    FUNCS[func](x, out=big[:, ::2], **kw)
    np.testing.assert_array_equal(big[:, ::2].view(np.uint16), expected.view(np.uint16))
    assert not big[:, 1::2].view(np.uint16).any()
    with pytest.raises(ValueError, match="dtype"):
        FUNCS[func](x, out=np.empty(x.shape, np.float32), **kw)


@pytest.mark.parametrize("dt", HALF)
def test_half_logsumexp_out(dt):
    x = _normal((6, 33), 6).astype(dt)
    out = np.empty(6, dt)
    assert fsm.logsumexp(x, out=out, temperature=2.0) is out
    np.testing.assert_array_equal(out.view(np.uint16), fsm.logsumexp(x, temperature=2.0).view(np.uint16))


@pytest.mark.parametrize("dt", HALF)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_half_dtype_argument_with_temperature_and_mask(func, dt):
    """dtype=float32 from half input: the float32 computation itself; half from float32."""
    x = _normal((4, 50), 7).astype(dt)
    w = np.random.default_rng(7).random((4, 50)) < 0.6
    got = FUNCS[func](x, dtype=np.float32, temperature=0.3, where=w)
    assert got.dtype == F32
    np.testing.assert_array_equal(got, FUNCS[func](x.astype(F32), temperature=0.3, where=w))
    x32 = _normal((4, 50), 8).astype(F32)
    got = FUNCS[func](x32, dtype=dt, temperature=0.3, where=w)
    assert got.dtype == dt
    assert_within_one_ulp(got, FUNCS[func](x32, temperature=0.3, where=w), dt, f"{func} dtype={dt}")


# ---- backward passes --------------------------------------------------------------------

@pytest.mark.parametrize("dt", HALF)
@pytest.mark.parametrize("func", MAPS)
def test_half_backward(func, dt):
    """Half y and g: computed in float32, returned in the half dtype; out= in it."""
    name = f"{func}_backward"
    f = getattr(fsm, name)
    for axis in (-1, 0):
        x = _normal((5, 24), 9)
        y = getattr(ref, func)(x, axis, 0.5).astype(dt)
        g = _normal((5, 24), 10, 1.0).astype(dt)
        got = f(y, g, axis=axis, temperature=0.5)
        ref.check_backward(func, got, y, g, axis, 0.5, f"{name} {dt} axis={axis}")
        via32 = f(y.astype(F32), g.astype(F32), axis=axis, temperature=0.5)
        assert_within_one_ulp(got, via32, dt, f"{name} {dt} vs float32 path")
        out = np.empty(y.shape, dt)
        assert f(y, g, axis=axis, temperature=0.5, out=out) is out
        np.testing.assert_array_equal(out.view(np.uint16), got.view(np.uint16))


# ---- cross_entropy -----------------------------------------------------------------------

@pytest.mark.parametrize("dt", HALF)
@pytest.mark.parametrize("kind", ["index", "prob"])
def test_half_cross_entropy(kind, dt):
    """Loss in float32, gradient in the logits' dtype; the loss equals the float32
    computation's (to float32 accuracy) and the gradient is it rounded."""
    rng = np.random.default_rng(11)
    for shape, axis in (((16, 10), -1), ((4, 10, 3), 1), ((10, 8), 0)):
        logits = rng.normal(0, 3, shape).astype(dt)
        ax = axis % len(shape)
        if kind == "index":
            targets = [rng.integers(0, shape[ax], shape[:ax] + shape[ax + 1:])]
        else:
            q = rng.random(shape)
            q /= q.sum(axis=ax, keepdims=True)
            targets = [q.astype(F32), q.astype(dt)]
        for target in targets:
            for reduction in ("none", "mean", "sum"):
                for T in (1.0, 0.5):
                    kw = dict(axis=axis, temperature=T, label_smoothing=0.1, reduction=reduction,
                              weight=np.linspace(0.5, 2, shape[ax]).astype(F32))
                    what = f"cross_entropy({dt}{shape} {kind} {np.asarray(target).dtype}, {reduction}, T={T})"
                    loss, grad = fsm.cross_entropy(logits, target, return_grad=True, **kw)
                    assert np.asarray(loss).dtype == F32, what
                    assert grad.dtype == dt, what
                    ref.check_cross_entropy(loss, grad, logits, target, what, **kw)
                    loss32, grad32 = fsm.cross_entropy(logits.astype(F32), target, return_grad=True, **kw)
                    np.testing.assert_allclose(loss, loss32, rtol=4 * np.finfo(F32).eps, err_msg=what)
                    assert_within_one_ulp(grad, grad32, dt, what + " grad vs float32 path")


@pytest.mark.parametrize("dt", HALF)
def test_half_cross_entropy_special_values_and_layouts(dt):
    big = float(util.finfo(dt).max)
    logits = np.array([[big, 0.0, -big], [1.0, 2.0, 3.0], [nan, 0.0, 1.0]]).astype(dt)
    loss = fsm.cross_entropy(logits, np.array([0, 2, 1]), reduction="none")
    assert loss.dtype == F32
    assert loss[0] == 0.0                         # the target class holds all the mass
    np.testing.assert_allclose(loss[1], -np.log(np.exp(3) / np.exp([1, 2, 3]).sum()), rtol=1e-6)
    assert np.isnan(loss[2])
    loss = fsm.cross_entropy(logits[:2], np.array([2, 0]), reduction="none")
    assert loss[0] == np.float32(2 * big) if dt == F16 else loss[0] == inf
    x = np.random.default_rng(12).normal(0, 3, (8, 12)).astype(dt)
    t = np.arange(8) % 12
    expected = fsm.cross_entropy(x, t, return_grad=True, temperature=0.5)
    for layout, a in util.layouts(x):
        if layout.startswith("broadcast"):
            continue
        loss, grad = fsm.cross_entropy(a, t, return_grad=True, temperature=0.5)
        np.testing.assert_allclose(loss, expected[0], rtol=4 * np.finfo(F32).eps, err_msg=layout)
        assert_within_one_ulp(grad, expected[1].astype(np.float64), dt, f"grad {layout}")


# ---- the conversions, on every instruction-set path ---------------------------------------
# x86 converts float16 in hardware (F16C, AVX-512F) and elsewhere in portable C:
# both must give exactly NumPy's conversions (round to nearest even), NaN aside.

@pytest.fixture(params=_kernels.available_isas())
def isa(request):
    before = _kernels.isa()
    _kernels.set_isa(request.param)
    try:
        yield request.param
    finally:
        _kernels.set_isa(before)


@pytest.mark.parametrize("dt", HALF)
def test_every_half_value_converts_exactly(isa, dt):
    """logsumexp of one element is the element: every bit pattern in, and out."""
    x = np.arange(1 << 16, dtype=np.uint16).view(dt).reshape(-1, 1)
    got = fsm.logsumexp(x, axis=1)
    assert got.dtype == dt
    with np.errstate(invalid="ignore"):           # signalling NaNs among the patterns
        nan_ = np.isnan(x[:, 0].astype(np.float32))
        zero = x[:, 0].astype(np.float32) == 0
    assert (np.isnan(got.astype(np.float32)) == nan_).all()
    # bit for bit, but -0 gives +0 (-0 + log(1)) as in IEEE arithmetic
    same = ~nan_ & ~zero
    assert (got[same].view(np.uint16) == x[same, 0].view(np.uint16)).all()
    assert (got[zero].view(np.uint16) == 0).all()


@pytest.mark.parametrize("dt", HALF)
@pytest.mark.parametrize("func", MAPS)
def test_half_results_are_the_float32_results_rounded(isa, func, dt):
    """The half result is the float32 computation of the same call rounded to
    nearest even, as NumPy rounds it, bit for bit: outputs from the largest to
    subnormals and 0 (rows of 1000 and of 7, N(0, 30))."""
    for shape in ((64, 1000), (300, 7)):
        x = _normal(shape, 5, scale=np.sqrt(30.0)).astype(dt)
        got = FUNCS[func](x)
        want = FUNCS[func](x, dtype=F32).astype(dt)
        assert got.dtype == dt
        assert (got.view(np.uint16) == want.view(np.uint16)).all(), \
            f"{func} {shape}: {np.count_nonzero(got.view(np.uint16) != want.view(np.uint16))} differ"
