"""out=: in place (out=x), layouts different from the input's, partial overlap
with the input, non-native byte order, logsumexp's keepdims."""
import tracemalloc

import numpy as np
import pytest

import fastsoftmax as fsm

from . import util

FUNCS = {name: getattr(fsm, name) for name in util.FUNCTIONS}
MAPS = ("softmax", "log_softmax")


def _floats(shapes=((7,), (5, 13), (3, 4, 5), (2, 2100)), families=None):
    """Float arrays of the generator (all value families, or those named), every
    layout except the read-only ones."""
    for desc, x in util.arrays(dtypes=util.FLOATS, shapes=shapes):
        if x.flags.writeable and (families is None or any(f" {fam}," in desc for fam in families)):
            yield desc, x


def _logsumexp_shape(shape, axis, keepdims=False):
    axes = range(len(shape)) if axis is None else np.atleast_1d(axis) % len(shape)
    if keepdims:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


# ---- out=x ---------------------------------------------------------------------------------

@pytest.mark.parametrize("func", MAPS)
def test_in_place_equals_out_of_place(func):
    f = FUNCS[func]
    for desc, x in _floats(shapes=((7,), (5, 13), (3, 4, 5), (2, 2100))):
        for axis in util.axes_for(x.ndim) if x.size < 1000 else (-1, 0, None):
            expected = f(x, axis=axis)
            work = _same_layout_copy(x)
            r = f(work, axis=axis, out=work)
            assert r is work, f"{func}({desc}, axis={axis}, out=x) did not return out"
            np.testing.assert_array_equal(work, expected, err_msg=f"{func}({desc}, axis={axis}, out=x)")
            # Nothing around the view was written (the gaps of strided views).
            work[...] = x
            assert util.root_buffer(work).tobytes() == util.root_buffer(x).tobytes(), desc


def _same_layout_copy(x):
    """A writeable array of x's values with x's strides pattern (views of a fresh buffer)."""
    root = util.root_buffer(x).copy(order="K")
    offset = x.__array_interface__["data"][0] - util.root_buffer(x).__array_interface__["data"][0]
    return np.ndarray(x.shape, x.dtype, buffer=root, offset=offset, strides=x.strides)


@pytest.mark.parametrize("func", MAPS)
def test_in_place_half_input(func):
    """out=x for float16 (computed in float32): the same result as out of place."""
    x = np.random.default_rng(0).normal(0, 3, (4, 33)).astype(np.float16)
    expected = FUNCS[func](x)
    assert FUNCS[func](x, out=x) is x
    np.testing.assert_array_equal(x, expected)


def _peak_allocation(call):
    """Peak bytes traced by tracemalloc while `call()` runs."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        call()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("layout", ["C", "F", "strided x[..., ::2]", "strided x[::2]",
                                    "negative stride x[..., ::-1]"])
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("func", MAPS)
def test_in_place_does_not_allocate(func, axis, layout):
    """DESIGN §1: out=x must not allocate a second array (only a few bytes for
    views; the array is 8 MB)."""
    x = dict(util.layouts(np.random.default_rng(1).normal(0, 3, (1000, 1000))))[layout]
    peak = _peak_allocation(lambda: FUNCS[func](x, axis=axis, out=x))
    assert peak < x.nbytes // 8, f"{func}(x, axis={axis}, out=x) allocated {peak} bytes on {layout} x"


@pytest.mark.parametrize("axis", [None, (0, 1)])
@pytest.mark.parametrize("func", MAPS)
def test_in_place_over_all_axes_of_c_array_does_not_allocate(func, axis):
    """All axes of a C-contiguous array are one contiguous row: out=x needs no
    second array there either."""
    x = np.random.default_rng(2).normal(0, 3, (1000, 1000))
    expected = FUNCS[func](x, axis=axis)
    peak = _peak_allocation(lambda: FUNCS[func](x, axis=axis, out=x))
    np.testing.assert_array_equal(x, expected)
    assert peak < x.nbytes // 8, f"{func}(x, axis={axis}, out=x) allocated {peak} bytes"


# ---- out of another layout ------------------------------------------------------------------

@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_out_with_another_layout(func):
    """C input into F out and F input into C out (and the other layouts), every axis."""
    f = FUNCS[func]
    for desc, x in _floats(shapes=((5, 13), (3, 4, 5), (2, 3, 4, 5)),
                           families=("random", "random with +inf and -inf")):
        for axis in util.axes_for(x.ndim):
            expected = f(x, axis=axis)
            for order in "CF":
                out = np.full(np.shape(expected), 99.0, dtype=expected.dtype, order=order)
                r = f(x, axis=axis, out=out)
                assert r is out
                np.testing.assert_array_equal(out, expected, err_msg=f"{func}({desc}, axis={axis}, {order} out)")


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_out_strided_view(func):
    x = np.random.default_rng(3).normal(0, 3, (6, 20))
    expected = FUNCS[func](x)
    buf = np.full((12, 40), 5.0)
    out = buf[::2, ::2] if func != "logsumexp" else buf[::2, 3]
    assert FUNCS[func](x, out=out) is out
    np.testing.assert_array_equal(out, expected)
    untouched = np.ones(buf.shape, bool)
    untouched[::2, ::2 if func != "logsumexp" else 3] = False
    assert (buf[untouched] == 5.0).all(), "wrote outside out"


# ---- overlap with the input ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
@pytest.mark.parametrize("func", MAPS)
def test_out_partially_overlapping_input(func, dtype):
    """x = buf[:, :-1], out = buf[:, 1:]: NumPy's rule, as if x were copied first."""
    for axis in (-1, 0, None):
        buf = np.random.default_rng(4).normal(0, 3, (40, 1001)).astype(dtype)
        x, out = buf[:, :-1], buf[:, 1:]
        expected = FUNCS[func](x.copy(), axis=axis)
        assert FUNCS[func](x, axis=axis, out=out) is out
        np.testing.assert_array_equal(out, expected, err_msg=f"axis={axis}")


@pytest.mark.parametrize("make_out", [lambda b: b[:, ::-1], lambda b: b.T, lambda b: b[::-1]],
                         ids=["reversed", "transposed", "rows reversed"])
@pytest.mark.parametrize("func", MAPS)
def test_out_same_memory_other_mapping(func, make_out):
    """out holds exactly x's elements, but not in the same places."""
    for axis in (-1, 0):
        buf = np.random.default_rng(5).normal(0, 3, (300, 300))
        expected = FUNCS[func](buf.copy(), axis=axis)
        out = make_out(buf)
        assert FUNCS[func](buf, axis=axis, out=out) is out
        np.testing.assert_array_equal(out, expected, err_msg=f"axis={axis}")


@pytest.mark.parametrize("axis", [0, 1])
def test_logsumexp_out_inside_input(axis):
    """logsumexp's out is a row or column of x itself."""
    x = np.random.default_rng(6).normal(0, 3, (50, 50))
    expected = fsm.logsumexp(x.copy(), axis=axis)
    out = x[:, 7] if axis == 1 else x[3]
    assert fsm.logsumexp(x, axis=axis, out=out) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("gap", [-7, -1, 0, 1, 7], ids=lambda g: f"gap{g}")
@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_contiguous_out_around_contiguous_input(func, dtype, gap):
    """C-contiguous x and out in one buffer (the fast path's own overlap test):
    out starts `gap` elements after x ends (negative: overlapping x's tail) or,
    mirrored, ends `gap` elements before x starts."""
    shape = (6, 50)
    n_out = 6 if func == "logsumexp" else 300
    out_shape = shape[:-1] if func == "logsumexp" else shape
    for out_first in (False, True):
        buf = np.random.default_rng(7).normal(0, 3, 300 + n_out + 20).astype(dtype)
        if out_first:      # out, gap, x
            start = max(0, -gap) + 10
            out, x = buf[start - 10:start - 10 + n_out], buf[start - 10 + n_out + gap:][:300]
        else:              # x, gap, out
            x, out = buf[:300], buf[300 + gap:300 + gap + n_out]
        x, out = x.reshape(shape), out.reshape(out_shape)
        expected = FUNCS[func](x.copy(), axis=-1)
        assert FUNCS[func](x, axis=-1, out=out) is out
        np.testing.assert_array_equal(out, expected, err_msg=f"out_first={out_first}")


# ---- byte order, dtypes, keepdims ----------------------------------------------------------

@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_out_non_native_byte_order(func, dtype):
    x = np.random.default_rng(7).normal(0, 3, (9, 17)).astype(dtype)
    expected = FUNCS[func](x)
    out = np.empty(expected.shape, np.dtype(dtype).newbyteorder("S"))
    assert FUNCS[func](x, out=out) is out
    assert not out.dtype.isnative
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("func", MAPS)
def test_in_place_non_native_byte_order(func):
    x = np.random.default_rng(8).normal(0, 3, (9, 17))
    expected = FUNCS[func](x)
    xs = util.byteswap(x)
    assert FUNCS[func](xs, out=xs) is xs
    assert not xs.dtype.isnative
    np.testing.assert_array_equal(xs, expected)


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_out_half(func):
    x = np.random.default_rng(8).normal(0, 3, (5, 40)).astype(np.float16)
    expected = FUNCS[func](x)
    out = np.empty(expected.shape, np.float16)
    assert FUNCS[func](x, out=out) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_out_with_dtype_argument(func):
    x = np.random.default_rng(9).normal(0, 3, (5, 40)).astype(np.float32)
    expected = FUNCS[func](x, dtype=np.float64)
    out = np.empty(expected.shape, np.float64)
    assert FUNCS[func](x, dtype=np.float64, out=out) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, (0, 2), None])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_out_with_keepdims(axis, keepdims):
    x = np.random.default_rng(10).normal(0, 3, (3, 4, 5))
    expected = fsm.logsumexp(x, axis=axis, keepdims=keepdims)
    out = np.empty(_logsumexp_shape(x.shape, axis, keepdims))
    r = fsm.logsumexp(x, axis=axis, keepdims=keepdims, out=out)
    assert r is out
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_allclose(out, util.reference("logsumexp", x, axis, keepdims=keepdims), rtol=1e-15)


def test_logsumexp_out_with_return_sign_and_b():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    b = np.array([1.0, -1.0, -1.0])
    out = np.empty(2)
    value, sign = fsm.logsumexp(x, b=b, return_sign=True, out=out)
    assert value is out
    expected = np.sum(b * np.exp(x), axis=-1)
    np.testing.assert_allclose(out, np.log(np.abs(expected)), rtol=1e-14)
    np.testing.assert_array_equal(sign, np.sign(expected))


def test_logsumexp_out_with_b_broadcasting_x():
    """b may broadcast x to a larger shape; the result (and out) has the broadcast
    shape reduced along axis, as in scipy.special.logsumexp."""
    x, b = np.zeros(3), np.ones((2, 3))
    out = np.empty(2)
    assert fsm.logsumexp(x, b=b, out=out) is out
    np.testing.assert_allclose(out, [np.log(3)] * 2, rtol=1e-15)


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_out_zero_d(func):
    out = np.empty(())
    r = FUNCS[func](np.float64(2.0), axis=None, out=out)
    assert r is out
    assert float(out) == {"softmax": 1.0, "log_softmax": 0.0, "logsumexp": 2.0}[func]


@pytest.mark.parametrize("func", MAPS)
def test_out_empty(func):
    x = np.zeros((3, 0))
    out = np.empty((3, 0))
    assert FUNCS[func](x, out=out) is out
    out = np.empty(3)
    assert fsm.logsumexp(x, out=out) is out
    np.testing.assert_array_equal(out, [-np.inf] * 3)
