"""Values of softmax, log_softmax and logsumexp against the reference, over the
whole array generator (every dtype, shape, layout and special value) and every
way of naming axes; the long row and the many tiny rows; inputs never modified."""
import numpy as np
import pytest

import fastsoftmax as fsm

from . import util

FUNCS = {name: getattr(fsm, name) for name in util.FUNCTIONS}


@pytest.mark.parametrize("dtype", util.DTYPES, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_against_reference(func, dtype):
    """Every generated array, every axis (int, negative int, tuple, None); the
    input (and the memory around it) is never written."""
    f, check, reference = FUNCS[func], util.ASSERT_CLOSE[func], util.CachedReference()
    n = 0
    for desc, x in util.arrays(dtypes=[dtype]):
        before = util.digest(x)
        for axis in util.axes_for(x.ndim):
            what = f"{func}({desc}, axis={axis})"
            check(f(x, axis=axis), reference(func, x, axis), x.dtype, what)
            n += 1
        assert util.digest(x) == before, f"{func} modified its input {desc}"
    assert n > 100


@pytest.mark.parametrize("dtype", util.FLOATS + util.HALFS + (np.dtype(np.int8),), ids=str)
def test_logsumexp_keepdims_against_reference(dtype):
    reference = util.CachedReference()
    for desc, x in util.arrays(dtypes=[dtype], shapes=[(), (0,), (3, 0), (1,), (5, 13), (3, 4, 5)]):
        for axis in util.axes_for(x.ndim):
            what = f"logsumexp({desc}, axis={axis}, keepdims=True)"
            expected = reference("logsumexp", x, axis, keepdims=True)
            util.assert_log_close(fsm.logsumexp(x, axis=axis, keepdims=True), expected, x.dtype, what)


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_default_axis_is_last(func):
    x = np.random.default_rng(2).normal(size=(3, 4, 5))
    np.testing.assert_array_equal(FUNCS[func](x), FUNCS[func](x, axis=2))
    np.testing.assert_array_equal(FUNCS[func](x), FUNCS[func](x, axis=-1))


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_list_input(func):
    """array_like: a nested list is taken as np.asarray would (float64)."""
    x = [[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]]
    got = FUNCS[func](x)
    util.ASSERT_CLOSE[func](got, util.reference(func, np.array(x), -1), np.float64, func)


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_large_arrays(func):
    """The long row (10**6) and 10**5 rows of 3, float32 and float64."""
    f, check = FUNCS[func], util.ASSERT_CLOSE[func]
    for desc, x in util.large_arrays():
        check(f(x), util.reference(func, x, -1), x.dtype, f"{func}({desc})")


@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
def test_long_row_sums_to_one(dtype):
    x = np.random.default_rng(3).normal(0.0, 4.0, 10**6).astype(dtype)
    y = fsm.softmax(x)
    assert y.dtype == dtype
    assert abs(np.sum(y, dtype=np.float64) - 1.0) <= 1e-5
    assert np.all(y >= 0)


@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_3d_every_axis_above_parallel_threshold(func, dtype):
    """A 3-D array of 60000 elements (threaded) along each axis and axis pairs."""
    x = np.random.default_rng(4).normal(0.0, 5.0, (40, 30, 50)).astype(dtype)
    for axis in util.axes_for(3):
        what = f"{func}({dtype} (40, 30, 50), axis={axis})"
        util.ASSERT_CLOSE[func](FUNCS[func](x, axis=axis), util.reference(func, x, axis), dtype, what)


@pytest.mark.parametrize("n", [1, 2, 3, 15, 16, 17, 63, 64, 65, 1023, 1024, 1025, 4099])
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_row_lengths_around_vector_and_block_sizes(func, n):
    """Rows whose length is just below, at and above vector and block boundaries,
    contiguous and strided (the kernels gather strided rows block by block)."""
    rng = np.random.default_rng(n)
    for dtype in util.FLOATS:
        x = rng.normal(0.0, 10.0, (2, 2 * n)).astype(dtype)
        for desc, a in (("contiguous", x[:, :n]), ("strided", x[:, ::2]), ("reversed", x[:, ::-1])):
            what = f"{func}({dtype} {a.shape} {desc})"
            util.ASSERT_CLOSE[func](FUNCS[func](a), util.reference(func, a, -1), dtype, what)


@pytest.mark.parametrize("n", [1, 7, 100, 1024])
@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_special_rows_among_plain_rows(func, dtype, n):
    """Rows are computed a few at a time, each row's last step after the next
    row's first (the kernels' plain_rows): a NaN, +inf, all -inf or all-equal
    row among ordinary rows, first, last or in the middle, gives exactly what
    the row gives alone, also in place."""
    f = FUNCS[func]
    x = np.random.default_rng(n).normal(0.0, 3.0, (12, n)).astype(dtype)
    x[0, n // 2] = np.nan
    x[3, :] = -np.inf
    x[5, n - 1] = np.inf
    x[7, :] = 1.5
    x[11, 0] = np.nan
    alone = np.stack([f(x[r:r + 1], axis=-1)[0] for r in range(x.shape[0])])
    together = f(x, axis=-1)
    assert together.tobytes() == alone.tobytes()
    if func != "logsumexp":
        y = x.copy()
        assert f(y, axis=-1, out=y) is y
        assert y.tobytes() == alone.tobytes()


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_input_never_modified_with_dtype(func):
    """The dtype= path (a cast before the kernels) does not write the input either
    (test_against_reference checks the default path on every array)."""
    f = FUNCS[func]
    for desc, x in util.arrays(dtypes=util.FLOATS + util.HALFS, shapes=[(7,), (5, 13), (3, 4, 5)]):
        before = util.digest(x)
        f(x, axis=0, dtype=np.float64)
        f(x, axis=None, dtype=np.float32)
        assert util.digest(x) == before, f"{func} modified its input {desc}"


def test_input_never_modified_logsumexp_b_and_sign():
    """logsumexp's b=/return_sign= path neither writes x nor b."""
    for desc, x in util.arrays(dtypes=util.FLOATS, shapes=[(5, 13), (3, 4, 5)]):
        b = np.linspace(-1, 1, x.shape[-1])[::-1]
        before_x, before_b = util.digest(x), util.digest(b)
        fsm.logsumexp(x, b=b, return_sign=True)
        fsm.logsumexp(x, axis=None, b=b)
        assert util.digest(x) == before_x, desc
        assert util.digest(b) == before_b, desc


@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
def test_log_softmax_accurate_far_below_the_max(dtype):
    """log_softmax stays accurate where softmax underflows to 0."""
    x = np.array([0.0, -50.0, -200.0, -1e4, -3e4], dtype=dtype)
    util.assert_log_close(fsm.log_softmax(x), util.reference("log_softmax", x, -1), dtype)
    y = fsm.softmax(x)
    assert y[-1] == 0 and y[0] == 1


@pytest.mark.parametrize("layout", ["rows (16, n), axis -1", "columns (n, 16), axis 0"])
@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_error_does_not_grow_with_n(func, dtype, layout):
    """DESIGN §5: sums are blocked, so the error does not grow with the length of
    the softmax axis, whether it is the last axis or rows lie side by side."""
    for n in (1000, 30000):
        shape, axis = ((16, n), -1) if layout.startswith("rows") else ((n, 16), 0)
        x = np.random.default_rng(n).normal(0.0, 4.0, shape).astype(dtype)
        util.ASSERT_CLOSE[func](FUNCS[func](x, axis=axis), util.reference(func, x, axis), dtype,
                                f"{func} {dtype} {layout}, n={n}")


@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
def test_softmax_accuracy_on_hard_rows(dtype):
    """The input families of DESIGN §5 (N(0,1), N(0,4), N(0,30), U(-100,100),
    N(0,4)+1000), 64 rows of 1000."""
    rng = np.random.default_rng(5)
    families = [rng.normal(0, 1, (64, 1000)), rng.normal(0, 4, (64, 1000)),
                rng.normal(0, 30, (64, 1000)), rng.uniform(-100, 100, (64, 1000)),
                rng.normal(0, 4, (64, 1000)) + 1000]
    for i, x in enumerate(families):
        x = x.astype(dtype)
        for func in util.FUNCTIONS:
            util.ASSERT_CLOSE[func](FUNCS[func](x), util.reference(func, x, -1), dtype,
                                    f"{func} family {i}")


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_no_reference_or_memory_leak(func):
    """Many calls, on every path (kernels, out=, dtype=, tuple axes, errors), keep
    no reference to their arguments and no memory."""
    import gc
    import sys
    import tracemalloc

    f = FUNCS[func]
    x = np.random.default_rng(6).normal(size=(20, 30))
    out = np.empty(f(x).shape)

    def calls():
        f(x)
        f(x, out=out)
        f(x, axis=(0, 1), dtype=np.float32)
        f(x.astype(np.float16), axis=0)
        with pytest.raises(np.exceptions.AxisError):
            f(x, axis=5)
        if func == "logsumexp":
            f(x, b=x, return_sign=True)

    for _ in range(50):
        calls()
    gc.collect()
    refs = sys.getrefcount(x), sys.getrefcount(out)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(500):
            calls()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert (sys.getrefcount(x), sys.getrefcount(out)) == refs
    assert grown < 100_000, f"{func}: {grown} bytes more after 500 rounds of calls"
