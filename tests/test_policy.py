"""DESIGN §1, the dtype and edge-case policy: one test per line of the table and
per bullet, with the exact values the policy promises."""
import re
import warnings

import numpy as np
import pytest

import fastsoftmax as fsm

from . import util

inf, nan = np.inf, np.nan
FUNCS = {name: getattr(fsm, name) for name in util.FUNCTIONS}
MAPS = ("softmax", "log_softmax")

X = np.array([[0.5, -1.0, 3.0, 2.0], [1.0, 1.0, -4.0, 0.0]])


# ---- the dtype table -----------------------------------------------------------

@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_float32_float64_computed_and_returned_in_same_dtype(func, dtype):
    x = X.astype(dtype)
    got = FUNCS[func](x)
    assert got.dtype == dtype
    # Computed in float32, not float64 rounded: float32 results are within
    # float32's accuracy but generally not equal to the rounded float64 ones.
    util.ASSERT_CLOSE[func](got, util.reference(func, x, -1), dtype, func)


@pytest.mark.parametrize("dtype", util.HALFS, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_half_computed_in_float32_returned_in_input_dtype(func, dtype):
    x = X.astype(dtype)
    got = FUNCS[func](x)
    assert got.dtype == dtype
    via_float32 = FUNCS[func](x.astype(np.float32)).astype(dtype)
    np.testing.assert_array_equal(got.view(np.uint16), via_float32.view(np.uint16))


@pytest.mark.parametrize("dtype", util.INTEGERS, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_bool_and_integers_computed_and_returned_in_float64(func, dtype):
    x = (np.array([[1, 0, 3, 2], [1, 1, 0, 5]]) != 0 if dtype == np.bool_
         else np.array([[1, 0, 3, 2], [1, 1, 0, 5]])).astype(dtype)
    got = FUNCS[func](x)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, FUNCS[func](x.astype(np.float64)))


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_byte_swapped_input_gives_native_result(func):
    x = X.astype(">f8" if np.little_endian else "<f8")
    got = FUNCS[func](x)
    assert got.dtype == np.float64 and got.dtype.isnative
    np.testing.assert_array_equal(got, FUNCS[func](X))


def test_logsumexp_complex_accepted():
    """Complex input: logsumexp only, as in SciPy (principal complex logarithm)."""
    z = np.array([[1 + 1j, 2 - 0.5j, -1 + 3j], [0.5j, 1.0 + 0j, -2 - 2j]])
    for dtype in (np.complex64, np.complex128):
        got = fsm.logsumexp(z.astype(dtype))
        assert got.dtype == dtype
        expected = np.log(np.sum(np.exp(z), axis=-1))
        np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == np.complex64 else 1e-14)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("func", MAPS)
def test_softmax_complex_is_type_error(func, dtype):
    with pytest.raises(TypeError, match=rf"complex.*{np.dtype(dtype)}|{np.dtype(dtype)}.*complex"):
        FUNCS[func](np.ones(3, dtype))


UNSUPPORTED = [np.array([1.0, 2.0], dtype=object),
               np.array(["a", "b"]),
               np.array([b"a", b"b"]),
               np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]"),
               np.array([1, 2], dtype="timedelta64[s]"),
               np.array([1.0, 2.0], dtype=np.longdouble),
               np.zeros(2, dtype=[("a", "f8"), ("b", "f8")])]


@pytest.mark.parametrize("x", UNSUPPORTED, ids=lambda x: str(x.dtype))
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_other_dtypes_are_type_errors_naming_the_dtype(func, x):
    if x.dtype == np.longdouble and np.longdouble == np.float64:
        pytest.skip("long double is double on this platform")
    with pytest.raises(TypeError, match=re.escape(str(x.dtype))):
        FUNCS[func](x)


# ---- dtype= --------------------------------------------------------------------

@pytest.mark.parametrize("in_dtype,dtype", [(np.float16, np.float32), (np.float32, np.float64)],
                         ids=["float32 for float16 input", "float64 for float32 input"])
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_dtype_wider_than_input(func, in_dtype, dtype):
    x = X.astype(in_dtype)
    got = FUNCS[func](x, dtype=dtype)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, FUNCS[func](x.astype(dtype)))


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_dtype_float32_for_integer_input(func):
    x = np.array([[1, 2, 3], [0, 0, 7]], dtype=np.int32)
    got = FUNCS[func](x, dtype="float32")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, FUNCS[func](x.astype(np.float32)))


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_dtype_float16_is_computed_in_float32(func):
    x = X.astype(np.float64)
    got = FUNCS[func](x, dtype=np.float16)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, FUNCS[func](x.astype(np.float32)).astype(np.float16))


@pytest.mark.skipif(util.BFLOAT16 is None, reason="ml_dtypes is not installed")
@pytest.mark.parametrize("in_dtype", [np.float32, np.float16, "bfloat16"])
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_dtype_bfloat16(func, in_dtype):
    """dtype=bfloat16 is accepted like dtype=float16 (DESIGN §1: float16,
    bfloat16 computed in float32, returned as requested)."""
    in_dtype = util.BFLOAT16 if in_dtype == "bfloat16" else np.dtype(in_dtype)
    x = X.astype(in_dtype)
    got = FUNCS[func](x, dtype=util.BFLOAT16)
    assert got.dtype == util.BFLOAT16
    expected = FUNCS[func](x.astype(np.float32)).astype(util.BFLOAT16)
    np.testing.assert_array_equal(got.view(np.uint16), expected.view(np.uint16))


def test_logsumexp_dtype_complex128_for_complex64():
    z = np.array([1 + 1j, 2 - 1j], dtype=np.complex64)
    got = fsm.logsumexp(z, dtype=np.complex128)
    assert got.dtype == np.complex128
    np.testing.assert_allclose(got, np.log(np.sum(np.exp(z.astype(np.complex128)))), rtol=1e-14)


# ---- special values ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", util.FLOATS + util.HALFS, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_nan_row_is_nan(func, dtype):
    """A row containing NaN gives NaN everywhere in that row (and a NaN logsumexp);
    other rows are unaffected."""
    x = np.array([[1.0, nan, 2.0], [nan, inf, 0.0], [-inf, nan, -inf], [1.0, 2.0, 3.0]], dtype)
    got = FUNCS[func](x)
    assert np.isnan(got[:3]).all()
    assert not np.isnan(got[3]).any()
    got0 = FUNCS[func](x.T, axis=0)
    assert np.isnan(got0[..., :3]).all() and not np.isnan(got0[..., 3]).any()


@pytest.mark.parametrize("dtype", util.FLOATS + util.HALFS, ids=str)
def test_posinf_is_the_limit_softmax(dtype):
    x = np.array([[inf, 1.0], [1.0, inf], [inf, inf], [inf, -inf], [inf, 1e30 if dtype != np.float16 else 6e4]],
                 dtype)
    expected = np.array([[1, 0], [0, 1], [0.5, 0.5], [1, 0], [1, 0]], dtype)
    np.testing.assert_array_equal(fsm.softmax(x), expected)
    np.testing.assert_array_equal(fsm.softmax(np.array([inf, inf, 1.0], dtype)),
                                  np.array([0.5, 0.5, 0], dtype))
    row = np.array([inf, 2.0, inf, -inf, inf, 0.0], dtype)
    np.testing.assert_array_equal(fsm.softmax(row), np.array([1, 0, 1, 0, 1, 0], dtype) / np.asarray(3, dtype))


@pytest.mark.parametrize("dtype", util.FLOATS + util.HALFS, ids=str)
def test_posinf_is_the_limit_log_softmax(dtype):
    """log(1/k) at the k infinite entries, -inf elsewhere."""
    np.testing.assert_array_equal(fsm.log_softmax(np.array([inf, 1.0], dtype)), np.array([0, -inf], dtype))
    for k in (2, 3, 5):
        row = np.concatenate([np.full(k, inf), [1.0, -inf, -3.0]]).astype(dtype)
        got = fsm.log_softmax(row)
        np.testing.assert_allclose(got[:k].astype(np.float64), np.log(1 / k),
                                   rtol=4 * float(util.finfo(dtype).eps))
        np.testing.assert_array_equal(got[k:], np.array([-inf] * 3, dtype))


@pytest.mark.parametrize("dtype", util.FLOATS + util.HALFS, ids=str)
def test_posinf_is_the_limit_logsumexp(dtype):
    x = np.array([[inf, 1.0], [inf, inf], [inf, -inf], [-inf, inf]], dtype)
    np.testing.assert_array_equal(fsm.logsumexp(x), np.array([inf] * 4, dtype))


@pytest.mark.parametrize("dtype", util.FLOATS + util.HALFS, ids=str)
def test_row_of_only_neginf(dtype):
    """0/0: NaN for softmax and log_softmax, -inf for logsumexp (SciPy's value)."""
    x = np.array([[-inf, -inf, -inf], [0.0, -inf, 1.0]], dtype)
    for func in MAPS:
        got = FUNCS[func](x)
        assert np.isnan(got[0]).all(), func
        assert not np.isnan(got[1]).any(), func
    np.testing.assert_array_equal(fsm.logsumexp(x)[0], np.asarray(-inf, dtype))
    assert np.isnan(fsm.softmax(np.array([-inf], dtype))).all()


@pytest.mark.parametrize("shape,axis", [((0,), -1), ((3, 0), -1), ((0, 3), 0), ((2, 0, 3), 1),
                                        ((0,), None), ((2, 0), None), ((3, 0), (0, 1))])
@pytest.mark.parametrize("func", MAPS)
def test_empty_axis_gives_empty_result(func, shape, axis):
    x = np.zeros(shape)
    got = FUNCS[func](x, axis=axis)
    assert got.shape == shape and got.dtype == np.float64


@pytest.mark.parametrize("shape,axis,result_shape", [((0,), -1, ()), ((3, 0), -1, (3,)),
                                                     ((0, 3), 0, (3,)), ((2, 0, 3), 1, (2, 3)),
                                                     ((2, 0), None, ()), ((3, 0), (0, 1), ())])
def test_logsumexp_over_empty_axis_is_neginf(shape, axis, result_shape):
    got = fsm.logsumexp(np.zeros(shape, np.float32), axis=axis)
    assert np.shape(got) == result_shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, np.full(result_shape, -inf, np.float32))


def test_logsumexp_over_a_non_empty_axis_of_an_empty_array():
    got = fsm.logsumexp(np.zeros((0, 3)), axis=-1)
    assert got.shape == (0,)


@pytest.mark.parametrize("dtype", util.DTYPES, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_zero_d_with_axis_none(func, dtype):
    x = np.array(3, dtype=dtype)
    got = FUNCS[func](x, axis=None)
    assert np.ndim(got) == 0 and got.dtype == util.result_dtype(dtype)
    expected = {"softmax": 1.0, "log_softmax": 0.0, "logsumexp": float(x.astype(np.float64))}[func]
    assert float(got) == expected


@pytest.mark.parametrize("axis", [0, -1, 1, (0,)])
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_zero_d_with_an_int_axis_is_axis_error(func, axis):
    with pytest.raises(np.exceptions.AxisError, match="dimension 0"):
        FUNCS[func](np.float64(3.0), axis=axis)


def test_zero_d_default_axis_is_axis_error():
    """The default axis=-1 is an int axis too."""
    for func in util.FUNCTIONS:
        with pytest.raises(np.exceptions.AxisError):
            FUNCS[func](np.array(1.0))


# ---- no warnings ---------------------------------------------------------------------

ORDINARY = [np.array([0.0, -1000.0, -1e30]),               # exp underflow
            np.array([1e30, -1e30], np.float32),
            np.array([88.0, 89.0, -200.0], np.float32),       # exp would overflow without the max
            np.array([1e-310, -1e-310, 0.0]),               # denormal inputs
            np.array([1e-42, 0.0], np.float32),
            np.array([[-inf, -inf], [inf, 1.0]]),             # 0/0 and inf/inf rows
            np.array([nan, 1.0]),
            np.array([-inf, 0.0]),
            np.zeros((3, 0)),
            np.array([30000.0, -30000.0], np.float16),
            np.array([1, 200, -100], np.int64)]


@pytest.mark.parametrize("x", ORDINARY, ids=lambda x: f"{x.dtype}-{x.ravel()[:3]}")
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_no_warning(func, x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            FUNCS[func](x)
            FUNCS[func](x, axis=None)


def test_no_warning_logsumexp_b_and_sign():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fsm.logsumexp(np.array([0.0, -1000.0, -inf]), b=np.array([1.0, 0.0, -1.0]), return_sign=True)
        fsm.logsumexp(np.array([-inf, -inf]), b=np.array([1.0, 1.0]))
        fsm.logsumexp(np.array([1.0, 1.0]), b=np.array([1.0, -1.0]), return_sign=True)
        fsm.logsumexp(np.array([1 + 1j, -inf + 0j]))


def test_no_warning_when_a_half_result_rounds_to_inf():
    """log_softmax([6e4, -6e4]) in float16 is [0, -1.2e5], which rounds to
    [0, -inf] in the float16 result: the correct rounding, computed from finite
    input, without a RuntimeWarning about the cast (DESIGN §1: no warning for
    ordinary cases)."""
    x = np.array([60000.0, -60000.0], np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = fsm.log_softmax(x)
    np.testing.assert_array_equal(got, np.array([0.0, -inf], np.float16))
