"""fastsoftmax.special against scipy.special: SciPy's own documented examples,
then the generator's finite arrays, where the two agree by definition (SciPy
gives NaN for +inf input, fastsoftmax the limit, so those are left out)."""
import inspect

import numpy as np
import pytest

import fastsoftmax as fsm
from fastsoftmax import special

from . import util

scipy_special = pytest.importorskip("scipy.special")

DOC_X = np.array([[1, 0.5, 0.2, 3],
                  [1, -1, 7, 3],
                  [2, 12, 13, 3]])


# ---- the examples of SciPy's docstrings ---------------------------------------------------

def test_softmax_doc_entire_array():
    m = special.softmax(DOC_X)
    printed = [[4.48309e-06, 2.71913e-06, 2.01438e-06, 3.31258e-05],
               [4.48309e-06, 6.06720e-07, 1.80861e-03, 3.31258e-05],
               [1.21863e-05, 2.68421e-01, 7.29644e-01, 3.31258e-05]]
    np.testing.assert_allclose(m, printed, rtol=1e-5)
    np.testing.assert_allclose(m, scipy_special.softmax(DOC_X), rtol=1e-14)
    assert m.sum() == pytest.approx(1.0, rel=1e-15)


def test_softmax_doc_axis_0():
    m = special.softmax(DOC_X, axis=0)
    printed = [[2.11942e-01, 1.01300e-05, 2.75394e-06, 3.33333e-01],
               [2.11942e-01, 2.26030e-06, 2.47262e-03, 3.33333e-01],
               [5.76117e-01, 9.99988e-01, 9.97525e-01, 3.33333e-01]]
    np.testing.assert_allclose(m, printed, rtol=1e-5)
    np.testing.assert_allclose(m, scipy_special.softmax(DOC_X, axis=0), rtol=1e-14)
    np.testing.assert_allclose(m.sum(axis=0), [1.0, 1.0, 1.0, 1.0], rtol=1e-15)


def test_softmax_doc_axis_1():
    m = special.softmax(DOC_X, axis=1)
    printed = [[1.05877e-01, 6.42177e-02, 4.75736e-02, 7.82332e-01],
               [2.42746e-03, 3.28521e-04, 9.79307e-01, 1.79366e-02],
               [1.22094e-05, 2.68929e-01, 7.31025e-01, 3.31885e-05]]
    np.testing.assert_allclose(m, printed, rtol=1e-5)
    np.testing.assert_allclose(m, scipy_special.softmax(DOC_X, axis=1), rtol=1e-14)
    np.testing.assert_allclose(m.sum(axis=1), [1.0, 1.0, 1.0], rtol=1e-15)


def test_log_softmax_doc():
    x = np.array([1000.0, 1.0])
    y = special.log_softmax(x)
    np.testing.assert_array_equal(y, [0.0, -999.0])
    np.testing.assert_array_equal(y, scipy_special.log_softmax(x))


def test_logsumexp_doc():
    a = np.arange(10)
    assert special.logsumexp(a) == pytest.approx(9.4586297444267107, rel=1e-15)
    assert special.logsumexp(a) == pytest.approx(scipy_special.logsumexp(a), rel=1e-15)


def test_logsumexp_doc_with_weights():
    a = np.arange(10)
    b = np.arange(10, 0, -1)
    assert special.logsumexp(a, b=b) == pytest.approx(9.9170178533034665, rel=1e-15)
    assert special.logsumexp(a, b=b) == pytest.approx(scipy_special.logsumexp(a, b=b), rel=1e-15)


def test_logsumexp_doc_return_sign():
    value, sign = special.logsumexp([1, 2], b=[1, -1], return_sign=True)
    assert value == pytest.approx(1.5413248546129181, rel=1e-15)
    assert sign == -1.0
    sv, ss = scipy_special.logsumexp([1, 2], b=[1, -1], return_sign=True)
    assert value == pytest.approx(sv, rel=1e-15) and sign == ss


def test_logsumexp_doc_masked_array_as_weights():
    a = np.ma.array([np.log(2), 2, np.log(3)], mask=[False, True, False])
    b = (~a.mask).astype(int)
    assert special.logsumexp(a.data, b=b) == pytest.approx(np.log(5), rel=1e-15)


# ---- signatures and defaults -------------------------------------------------------------

@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_signatures_are_scipys(func):
    """Same parameter names, kinds and defaults: a line-for-line replacement."""
    ours = inspect.signature(getattr(special, func)).parameters
    theirs = inspect.signature(getattr(scipy_special, func)).parameters
    assert [(p.name, p.kind, p.default) for p in ours.values()] == \
           [(p.name, p.kind, p.default) for p in theirs.values()]


def test_defaults_are_scipys():
    """axis=None by default: all axes, a scalar from logsumexp."""
    x = np.random.default_rng(0).normal(size=(3, 4, 5))
    np.testing.assert_allclose(special.softmax(x), scipy_special.softmax(x), rtol=1e-14)
    np.testing.assert_allclose(special.log_softmax(x), scipy_special.log_softmax(x), rtol=1e-14)
    assert np.ndim(special.logsumexp(x)) == 0
    assert special.logsumexp(x) == pytest.approx(scipy_special.logsumexp(x), rel=1e-15)
    assert special.softmax(x).sum() == pytest.approx(1.0, rel=1e-14)


def test_positional_arguments_in_scipys_order():
    x = np.random.default_rng(1).normal(size=(3, 4))
    b = np.random.default_rng(2).random((3, 4))
    np.testing.assert_allclose(special.logsumexp(x, 1, b, True, True)[0],
                               scipy_special.logsumexp(x, 1, b, True, True)[0], rtol=1e-14)
    np.testing.assert_allclose(special.softmax(x, 0), scipy_special.softmax(x, 0), rtol=1e-14)
    np.testing.assert_allclose(special.log_softmax(x, 1), scipy_special.log_softmax(x, 1), rtol=1e-14)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1), (1, 2)])
def test_logsumexp_keepdims(axis):
    x = np.random.default_rng(3).normal(size=(2, 3, 4))
    got = special.logsumexp(x, axis=axis, keepdims=True)
    expected = scipy_special.logsumexp(x, axis=axis, keepdims=True)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-14)


@pytest.mark.parametrize("axis", [None, 0, -1])
def test_logsumexp_b_and_return_sign(axis):
    rng = np.random.default_rng(4)
    x, b = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    got, sgot = special.logsumexp(x, axis=axis, b=b, return_sign=True)
    expected, sexp = scipy_special.logsumexp(x, axis=axis, b=b, return_sign=True)
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    np.testing.assert_array_equal(sgot, sexp)


def test_logsumexp_b_zero_sum():
    """b cancels the sum exactly: -inf with sign 0, as SciPy."""
    got, sign = special.logsumexp([1.0, 1.0], b=[1.0, -1.0], return_sign=True)
    expected, esign = scipy_special.logsumexp([1.0, 1.0], b=[1.0, -1.0], return_sign=True)
    assert got == expected == -np.inf and sign == esign == 0


@pytest.mark.parametrize("axis", [None, -1])
def test_logsumexp_b_broadcasting_x(axis):
    """b may have more dimensions than a: the result is that of the broadcast."""
    a, b = np.zeros(3), np.ones((2, 3))
    got = special.logsumexp(a, axis=axis, b=b)
    expected = scipy_special.logsumexp(a, axis=axis, b=b)
    assert np.shape(got) == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-15)


def test_logsumexp_b_scalar():
    x = np.array([0.5, 1.5, -2.0])
    np.testing.assert_allclose(special.logsumexp(x, b=2.0), scipy_special.logsumexp(x, b=2.0), rtol=1e-15)


# ---- complex logsumexp -----------------------------------------------------------------------

@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_logsumexp_complex(dtype, axis):
    rng = np.random.default_rng(5)
    z = (rng.normal(size=(3, 5)) + 1j * rng.normal(size=(3, 5))).astype(dtype)
    got = special.logsumexp(z, axis=axis)
    expected = scipy_special.logsumexp(z, axis=axis)
    assert np.asarray(got).dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == np.complex64 else 1e-13)


def test_logsumexp_complex_return_sign_and_b():
    rng = np.random.default_rng(6)
    z = rng.normal(size=(2, 4)) + 1j * rng.normal(size=(2, 4))
    b = rng.normal(size=(2, 4))
    got, sgot = special.logsumexp(z, axis=1, b=b, return_sign=True)
    expected, sexp = scipy_special.logsumexp(z, axis=1, b=b, return_sign=True)
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    np.testing.assert_allclose(sgot, sexp, rtol=1e-13)
    # The sign times exp of the value is the sum.
    np.testing.assert_allclose(sgot * np.exp(got), np.sum(b * np.exp(z), axis=1), rtol=1e-13)


def test_logsumexp_complex_doc_like():
    """log(e^(1+1j) + e^2): the principal logarithm, as SciPy."""
    z = np.array([1 + 1j, 2 + 0j])
    assert special.logsumexp(z) == pytest.approx(complex(scipy_special.logsumexp(z)), rel=1e-15)
    assert special.logsumexp(z) == pytest.approx(complex(np.log(np.exp(1 + 1j) + np.exp(2))), rel=1e-15)


# ---- the generator's finite arrays ------------------------------------------------------------

def _finite_cases(dtypes):
    """Non-empty finite arrays; for integers only small values (SciPy subtracts the
    max in the integer dtype, which wraps around for the extremes)."""
    for desc, x in util.arrays(dtypes=dtypes, shapes=[(1,), (7,), (1, 1), (5, 13), (3, 4, 5), (2, 70)]):
        if x.dtype.kind in "iu" and " random," not in desc:
            continue
        if x.size and np.isfinite(x.astype(np.float64)).all():
            yield desc, x


SCIPY_RTOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_against_scipy_on_finite_arrays(func, dtype):
    ours, theirs = getattr(special, func), getattr(scipy_special, func)
    for desc, x in _finite_cases([dtype]):
        rdt = util.result_dtype(x.dtype)
        rtol = SCIPY_RTOL[rdt]
        for axis in [None] + list(range(x.ndim)) + list(range(-x.ndim, 0)) + ([(0, 1)] if x.ndim > 1 else []):
            what = f"{func}({desc}, axis={axis})"
            got = np.asarray(ours(x, axis=axis))
            expected = np.asarray(theirs(x, axis=axis))
            assert got.shape == expected.shape, what
            assert got.dtype == rdt, what
            if func == "softmax":
                # SciPy keeps subnormal terms that fastsoftmax flushes to 0.
                np.testing.assert_allclose(got, expected, rtol=rtol, atol=util.tiny_softmax(rdt), err_msg=what)
            else:
                np.testing.assert_allclose(got, expected, rtol=0,
                                           atol=rtol * max(1.0, float(np.max(np.abs(expected)))), err_msg=what)


def test_main_api_is_special_with_last_axis_default():
    x = np.random.default_rng(7).normal(size=(3, 4))
    for name in util.FUNCTIONS:
        np.testing.assert_array_equal(getattr(fsm, name)(x), getattr(special, name)(x, axis=-1))
