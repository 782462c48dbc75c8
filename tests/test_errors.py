"""Bad input gets a clear exception of the right type whose message names the problem."""
import inspect
import pickle

import numpy as np
import pytest

import fastsoftmax as fsm
from fastsoftmax import _kernels

from . import util

FUNCS = {name: getattr(fsm, name) for name in util.FUNCTIONS}
ALL = pytest.mark.parametrize("func", util.FUNCTIONS)
X = np.arange(12.0).reshape(3, 4)


# ---- axis ---------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [2, -3, 100, (0, 2), (-3,)])
@ALL
def test_axis_out_of_bounds(func, axis):
    with pytest.raises(np.exceptions.AxisError, match="out of bounds"):
        FUNCS[func](X, axis=axis)


@ALL
def test_axis_out_of_bounds_on_an_empty_array(func):
    with pytest.raises(np.exceptions.AxisError, match="out of bounds"):
        FUNCS[func](np.zeros((0, 3)), axis=2)


@pytest.mark.parametrize("axis", [(0, 0), (1, -1), (0, 1, 0), [1, 1]])
@ALL
def test_repeated_axis(func, axis):
    with pytest.raises(ValueError, match="repeated axis"):
        FUNCS[func](X, axis=axis)


@pytest.mark.parametrize("axis", [1.0, "1", (0, 1.0), 1j])
@ALL
def test_axis_not_an_integer(func, axis):
    with pytest.raises(TypeError, match="integer"):
        FUNCS[func](X, axis=axis)


@ALL
def test_numpy_integer_axis_is_accepted(func):
    np.testing.assert_array_equal(FUNCS[func](X, axis=np.int64(0)), FUNCS[func](X, axis=0))
    np.testing.assert_array_equal(FUNCS[func](X, axis=(np.int32(0), 1)), FUNCS[func](X, axis=(0, 1)))


# ---- dtype ---------------------------------------------------------------------------

@pytest.mark.parametrize("x", [np.array(["a"]), np.array([None, 1.0]), np.array([1], "m8[s]")],
                         ids=lambda x: str(x.dtype))
@ALL
def test_unsupported_input_dtype(func, x):
    with pytest.raises(TypeError, match="dtype"):
        FUNCS[func](x)


@pytest.mark.parametrize("dtype", ["not a dtype", np.int32, "i8", bool, np.longdouble, "U3", object])
@ALL
def test_bad_dtype_argument(func, dtype):
    if np.dtype(np.longdouble) == np.float64 and dtype is np.longdouble:
        pytest.skip("long double is double on this platform")
    with pytest.raises(TypeError, match="dtype"):
        FUNCS[func](X, dtype=dtype)


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
def test_complex_dtype_argument_for_real_input(func):
    with pytest.raises(TypeError, match="dtype"):
        FUNCS[func](X, dtype=np.complex128)


def test_real_dtype_argument_for_complex_logsumexp():
    with pytest.raises(TypeError, match="dtype"):
        fsm.logsumexp(X + 1j, dtype=np.float64)


# ---- out -------------------------------------------------------------------------------

def _result_shape(func, shape, axis=-1):
    if func != "logsumexp":
        return shape
    return tuple(s for i, s in enumerate(shape) if i != axis % len(shape))


@pytest.mark.parametrize("func,wrong", [(func, wrong) for func in util.FUNCTIONS
                                        for wrong in [(3,), (4, 3), (3, 4, 1), (1, 4), (4,), ()]
                                        if wrong != _result_shape(func, X.shape)])
def test_out_of_wrong_shape(func, wrong):
    with pytest.raises(ValueError, match=r"shape"):
        FUNCS[func](X, out=np.empty(wrong))


def test_logsumexp_out_shape_must_follow_keepdims():
    """keepdims changes the result's shape; out must have the shape with it."""
    with pytest.raises(ValueError, match="shape"):
        fsm.logsumexp(X, axis=1, keepdims=True, out=np.empty(3))
    with pytest.raises(ValueError, match="shape"):
        fsm.logsumexp(X, axis=1, keepdims=False, out=np.empty((3, 1)))


@pytest.mark.parametrize("x_dtype,out_dtype", [(np.float64, np.float32), (np.float32, np.float64),
                                               (np.float64, np.int64), (np.float16, np.float32),
                                               (np.int32, np.int32), (np.float64, np.complex128)])
@ALL
def test_out_of_wrong_dtype(func, x_dtype, out_dtype):
    x = X.astype(x_dtype)
    with pytest.raises(ValueError, match="dtype"):
        FUNCS[func](x, out=np.empty(_result_shape(func, x.shape), out_dtype))


@ALL
def test_out_of_wrong_dtype_given_dtype_argument(func):
    """With dtype=, out must have that dtype."""
    with pytest.raises(ValueError, match="dtype"):
        FUNCS[func](X, dtype=np.float32, out=np.empty(_result_shape(func, X.shape)))


@ALL
def test_read_only_out(func):
    out = np.empty(_result_shape(func, X.shape))
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        FUNCS[func](X, out=out)


@pytest.mark.parametrize("out", [[0.0] * 12, 3.0, "out"], ids=["list", "float", "str"])
@ALL
def test_out_not_an_ndarray(func, out):
    with pytest.raises(TypeError, match="ndarray"):
        FUNCS[func](X, out=out)


@ALL
def test_out_not_written_on_error(func):
    """Validation comes before any work: a rejected call leaves out alone."""
    out = np.full(_result_shape(func, X.shape), 7.0)
    with pytest.raises(TypeError):
        FUNCS[func](X, out=out, num_threads="2")
    assert (out == 7.0).all()


# ---- threads ------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, -1, -100])
@ALL
def test_num_threads_not_positive(func, n):
    with pytest.raises(ValueError, match="num_threads"):
        FUNCS[func](X, num_threads=n)


@pytest.mark.parametrize("n", ["2", 2.0, 1.5, True, [2]])
@ALL
def test_num_threads_not_an_int(func, n):
    with pytest.raises(TypeError, match="num_threads"):
        FUNCS[func](X, num_threads=n)


@ALL
def test_num_threads_numpy_integer_accepted(func):
    np.testing.assert_array_equal(FUNCS[func](X, num_threads=np.int64(2)), FUNCS[func](X))


@pytest.mark.parametrize("n,exc", [(0, ValueError), (-2, ValueError), ("2", TypeError), (2.0, TypeError)])
def test_set_num_threads_bad_values(n, exc):
    before = fsm.get_num_threads()
    with pytest.raises(exc, match="num_threads"):
        fsm.set_num_threads(n)
    assert fsm.get_num_threads() == before


# ---- logsumexp's b and the rest -------------------------------------------------------

# ---- the call itself ------------------------------------------------------------------
# softmax, log_softmax and logsumexp are compiled entries (_kernels.fast_path)
# wrapping the functions of _api.py: they must still read as those functions.

@ALL
def test_unknown_keyword_names_the_function(func):
    with pytest.raises(TypeError, match=rf"^{func}\(\) got an unexpected keyword argument 'axes'"):
        FUNCS[func](X, axes=0)


@ALL
def test_too_many_positional_arguments(func):
    with pytest.raises(TypeError, match=rf"^{func}\(\) takes at most 2 positional arguments"):
        FUNCS[func](X, -1, None)


@ALL
def test_public_function_reads_as_the_documented_one(func):
    f = FUNCS[func]
    general = f.__wrapped__
    assert (f.__name__, f.__module__, f.__doc__) == (func, "fastsoftmax._api", general.__doc__)
    assert inspect.signature(f) == inspect.signature(general)
    assert pickle.loads(pickle.dumps(f)) is f


def test_logsumexp_b_not_broadcastable():
    with pytest.raises(ValueError, match="broadcast"):
        fsm.logsumexp(X, b=np.ones(3))


def test_show_config_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        fsm.show_config(mode="yaml")


def test_set_isa_unknown_name():
    with pytest.raises(ValueError, match="sse9"):
        _kernels.set_isa("sse9")
