"""The one array generator of the test suite, the reference results and the
tolerances every value test shares.

``arrays()`` yields ``(description, array)`` over every dtype of the policy
(DESIGN §1), every shape class (0-d, empty, one element, short rows, rows
longer than a vector block, 3-D), every memory layout the API must accept (C,
F, strided, negative stride, transposed, broadcast, byte-swapped, unaligned)
and the special values (NaN, ±inf, rows of only -inf, huge, denormal).  Every
public function runs through all of it (STYLE practice 5); ``large_arrays()``
adds the long row and the many tiny rows, for a few functions only.

The reference is ``fastsoftmax._reference`` evaluated in float64, or in
np.longdouble where fastsoftmax computes in float64: never fastsoftmax itself.
"""
import hashlib

import numpy as np

from fastsoftmax import _reference

try:
    import ml_dtypes
except ImportError:  # optional
    ml_dtypes = None

BFLOAT16 = np.dtype(ml_dtypes.bfloat16) if ml_dtypes is not None else None

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
FLOATS = (F32, F64)
HALFS = (F16,) + ((BFLOAT16,) if BFLOAT16 is not None else ())
INTEGERS = tuple(np.dtype(t) for t in (np.bool_, np.int8, np.int32, np.int64, np.uint8))
DTYPES = FLOATS + HALFS + INTEGERS

SHAPES = [(), (0,), (3, 0), (0, 3), (1, 1), (1,), (7,), (5, 13), (3, 4, 5),
          (2, 70),       # more than 4 AVX-512 float32 vectors plus a tail
          (2, 2100)]     # more than two 1024-element kernel blocks plus a tail

FUNCTIONS = ("softmax", "log_softmax", "logsumexp")

# Long-double is only worth calling a reference if it is wider than double.
LONGDOUBLE = np.dtype(np.longdouble)
if np.finfo(LONGDOUBLE).eps >= np.finfo(F64).eps:
    LONGDOUBLE = F64


# ---- the dtype policy (DESIGN §1), written independently of _api ---------------

def finfo(dt):
    """np.finfo, or ml_dtypes.finfo for bfloat16."""
    dt = np.dtype(dt)
    return ml_dtypes.finfo(dt) if BFLOAT16 is not None and dt == BFLOAT16 else np.finfo(dt)


def is_half(dt):
    return dt.newbyteorder("=") == F16 or (BFLOAT16 is not None and dt.name == "bfloat16")


def result_dtype(dt):
    """The dtype fastsoftmax returns for input of dtype `dt` (complex: logsumexp only)."""
    dt = np.dtype(dt)
    native = dt.newbyteorder("=")
    if native in FLOATS or is_half(native) or native.kind == "c":
        return native
    if native.kind in "biu":
        return F64
    raise TypeError(dt)


def compute_dtype(dt):
    """The dtype fastsoftmax computes in for input (or dtype=) `dt`."""
    r = result_dtype(dt)
    return F32 if is_half(r) else r


def reference_dtype(dt):
    """Wider than the compute dtype: float64 for float32 arithmetic, long double for float64."""
    c = compute_dtype(dt)
    if c.kind == "c":
        return np.dtype(np.clongdouble) if c == np.complex128 else np.dtype(np.complex128)
    return LONGDOUBLE if c == F64 else F64


# ---- the generator ---------------------------------------------------------

def huge(dt):
    """A huge value whose difference with its negation still fits the dtype."""
    return 1e4 if dt == F16 else 1e30


def denormal(dt):
    """A subnormal number of the dtype."""
    return {F32: 1e-42, F64: 1e-310, F16: 1e-7}.get(dt, 1e-40)


def _fills(dt, shape, rng):
    """(name, C-ordered array) with the values of each family."""
    size = int(np.prod(shape))
    if dt.kind == "b":
        yield "random", rng.random(shape) < 0.5
        yield "all True", np.ones(shape, dt)
        return
    if dt.kind in "iu":
        info = np.iinfo(dt)
        lo, hi = max(info.min, -100), min(info.max, 100)
        yield "random", rng.integers(lo, hi, shape, endpoint=True).astype(dt)
        ext = np.array([info.min, info.max, 0, 1, info.max - 1], dtype=dt)
        yield "extremes", ext[rng.integers(0, ext.size, shape)] if size else np.zeros(shape, dt)
        return
    h, d = huge(dt), denormal(dt)
    yield "random", rng.normal(0.0, 3.0, shape).astype(dt)
    yield "constant", np.full(shape, 2.5, dt)
    if size == 0:
        return
    x = rng.normal(0.0, 3.0, size)
    u = rng.random(size)
    x[u < 0.2] = np.inf
    x[(u >= 0.2) & (u < 0.4)] = -np.inf
    yield "random with +inf and -inf", x.reshape(shape).astype(dt)
    x = rng.normal(0.0, 3.0, size)
    x[rng.integers(size)] = np.nan
    yield "random with one NaN", x.reshape(shape).astype(dt)
    x = rng.normal(0.0, 3.0, size)
    x[rng.random(size) < 0.3] = np.nan
    x[rng.random(size) < 0.3] = np.inf
    yield "NaN and +inf mixed", x.reshape(shape).astype(dt)
    yield "all -inf", np.full(shape, -np.inf, dt)
    yield "all +inf", np.full(shape, np.inf, dt)
    yield "huge", np.array([h, -h, 0.0, 1.0, h])[rng.integers(0, 5, shape)].astype(dt)
    yield "denormal", np.array([d, -d, 0.0, 2 * d])[rng.integers(0, 4, shape)].astype(dt)
    # One row (along the last axis) of only -inf, one with +inf, the others random.
    x = rng.normal(0.0, 3.0, shape)
    if len(shape) >= 1 and shape[-1]:
        x.reshape(-1, shape[-1])[0] = -np.inf
        x.reshape(-1, shape[-1])[-1, 0] = np.inf
    yield "a row of only -inf", x.astype(dt)


def byteswap(a):
    """The same values with the other byte order (a new array)."""
    return a.astype(a.dtype.newbyteorder("S"))


def unaligned(a):
    """A copy of `a` (C order) whose data pointer is not aligned for its dtype."""
    buf = np.empty(a.nbytes + 1, np.uint8)[1:]
    out = buf.view(a.dtype).reshape(a.shape) if a.size else np.empty(a.shape, a.dtype)
    out[...] = a
    return out


def _poison(dt):
    """What fills the gaps of strided views: it would change any result it leaked into."""
    if dt.kind == "b":
        return True
    if dt.kind in "iu":
        return np.iinfo(dt).max
    return np.nan


def _spread(x, axis):
    """A view of the same values as x, every other element along `axis` of a buffer
    twice as long whose other elements are poison."""
    shape = list(x.shape)
    shape[axis] *= 2
    big = np.full(shape, _poison(x.dtype), dtype=x.dtype)
    index = [slice(None)] * x.ndim
    index[axis] = slice(None, None, 2)
    view = big[tuple(index)]
    view[...] = x
    return view


def layouts(x):
    """(name, array) holding the values of the C-ordered array x in each memory layout."""
    nd = x.ndim
    yield "C", x
    if x.dtype.itemsize > 1:
        yield "byte-swapped", byteswap(x)
        if x.size:
            yield "unaligned", unaligned(x)
    if nd == 0:
        return
    if nd >= 2:
        yield "F", np.asfortranarray(x)
        # Memory order: last axis slowest, then the others in order.
        perm = (nd - 1,) + tuple(range(nd - 1))
        yield "transposed", np.ascontiguousarray(x.transpose(perm)).transpose(np.argsort(perm))
    yield "strided x[::2]", _spread(x, 0)
    yield "strided x[..., ::2]", _spread(x, -1)
    yield "negative stride x[..., ::-1]", np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    if nd >= 2:
        # Stride 0 along axis 0 (a read-only view): other values than x.
        yield "broadcast along axis 0", np.broadcast_to(x[:1], x.shape)


def arrays(dtypes=DTYPES, shapes=SHAPES, seed=0):
    """Yield (description, array) over dtypes x shapes x value families x layouts.

    The same seed gives the same arrays.  Integer inputs are exact in float64
    and half-precision inputs in float32.  Every layout of a (dtype, shape,
    family) holds the same values, except "broadcast" (stride 0)."""
    rng = np.random.default_rng(seed)
    for dt in map(np.dtype, dtypes):
        for shape in shapes:
            for fill_name, x in _fills(dt, shape, rng):
                x = np.asarray(x)   # fancy indexing with a 0-d index gives a scalar
                assert x.dtype == dt and x.shape == shape
                for layout, a in layouts(x):
                    assert a.shape == shape, (layout, a.shape, shape)
                    yield f"{dt} {shape} {fill_name}, {layout}", a


def large_arrays(dtypes=FLOATS, seed=1):
    """The long row (10**6) and the many tiny rows (10**5 x 3): float32/float64 only."""
    rng = np.random.default_rng(seed)
    for dt in map(np.dtype, dtypes):
        yield f"{dt} long row (10**6,)", rng.normal(0.0, 4.0, 10**6).astype(dt)
        yield f"{dt} many tiny rows (10**5, 3)", rng.normal(0.0, 4.0, (10**5, 3)).astype(dt)


def axes_for(ndim):
    """Every way to name axes of an ndim-array: each int, each negative int,
    None, the empty tuple and some tuples (in and out of order)."""
    axes = [None, ()]
    axes += list(range(ndim)) + list(range(-ndim, 0))
    if ndim >= 2:
        axes += [(0, ndim - 1), (-1, 0), tuple(range(ndim))]
    if ndim >= 3:
        axes += [(2, 1), (0, -2)]
    return axes


# ---- the reference ------------------------------------------------------------

def reference(func, x, axis, **kwargs):
    """fastsoftmax._reference.<func> in a wider dtype than fastsoftmax computes in,
    on exactly the values fastsoftmax sees (after the dtype policy's cast)."""
    x = np.asarray(x)
    xr = x.astype(compute_dtype(x.dtype)).astype(reference_dtype(x.dtype))
    return np.asarray(getattr(_reference, func)(xr, axis=axis, **kwargs))


class CachedReference:
    """reference(), remembered by value: the layouts of one array share a result."""

    def __init__(self):
        self._results = {}

    def __call__(self, func, x, axis, **kwargs):
        x = np.asarray(x)
        values = x.astype(x.dtype.newbyteorder("="), order="C")
        key = (func, values.dtype.str, values.shape, repr(axis), repr(sorted(kwargs.items())),
               values.tobytes())
        if key not in self._results:
            self._results[key] = reference(func, x, axis, **kwargs)
        return self._results[key]


def rtol_softmax(dt):
    """Relative tolerance of softmax outputs at or above tiny_softmax(dt)."""
    dt = result_dtype(dt)
    return {F32: 1e-6, F64: 1e-14}.get(dt, None) or 2 * float(finfo(dt).eps)


def tiny_softmax(dt):
    """Below this, softmax outputs are compared with an absolute tolerance of this."""
    dt = result_dtype(dt)
    return {F32: 1e-30, F64: 1e-300, F16: float(np.finfo(F16).smallest_normal)}.get(dt, 1e-30)


def ulps_log(dt):
    """Absolute tolerance of log_softmax/logsumexp, in units of max(1, |value|):
    8 ulps.  Measured worst cases (against the exact value rounded to the
    output dtype): 1 ulp in float32; 3-5 ulps for float64 log_softmax near 0 on
    rows of ~1000, the error of log(sum) from plain lane sums in double."""
    return 8 * float(finfo(result_dtype(dt)).eps)


def _check_specials(actual, expected, what):
    nan_a, nan_e = np.isnan(actual), np.isnan(expected)
    assert np.array_equal(nan_a, nan_e), f"{what}: NaN at {np.argwhere(nan_a != nan_e)[:5].tolist()}"
    inf_e = np.isinf(expected)
    bad = inf_e & (actual != expected)
    assert not bad.any(), (f"{what}: expected {expected[bad][:5]} (infinite), "
                           f"got {actual[bad][:5]} at {np.argwhere(bad)[:5].tolist()}")
    bad = np.isinf(actual) & ~inf_e
    assert not bad.any(), f"{what}: got {actual[bad][:5]} where {expected[bad][:5]} expected"
    return ~(nan_e | inf_e)


def _rounded(expected, dt):
    """The exact result rounded to the output dtype (DESIGN §5), back in a wide dtype."""
    if dt.kind == "c":
        wide = np.dtype(np.clongdouble) if dt == np.complex128 else np.dtype(np.complex128)
    else:
        wide = LONGDOUBLE if dt == F64 else F64
    return np.asarray(expected).astype(dt).astype(wide), wide


def _checked(actual, expected, in_dtype, what):
    """Check actual's dtype and shape; return (result dtype, actual, actual and the
    rounded expected value in a wide dtype)."""
    dt = result_dtype(in_dtype)
    actual = np.asarray(actual)
    assert actual.dtype == dt, f"{what}: dtype {actual.dtype}, expected {dt}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    e, wide = _rounded(expected, dt)
    return dt, actual, actual.astype(wide), e


def assert_softmax_close(actual, expected, in_dtype, what=""):
    """softmax/probability outputs: relative error where the exact value is >= tiny."""
    dt, actual, a, e = _checked(actual, expected, in_dtype, what)
    ok = _check_specials(a, e, what)
    a, e = a[ok], e[ok]
    tiny, rtol = tiny_softmax(dt), rtol_softmax(dt)
    big = np.abs(e) >= tiny
    err = np.abs(a - e)
    rel = err[big] / np.abs(e[big])
    bad = rel > rtol
    assert not bad.any(), (f"{what}: relative error {rel.max():.3g} > {rtol:.3g} "
                           f"(got {a[big][bad][:3]}, expected {e[big][bad][:3]})")
    assert not (err[~big] > tiny).any(), f"{what}: absolute error {err[~big].max():.3g} on tiny outputs"


def assert_log_close(actual, expected, in_dtype, what=""):
    """log_softmax/logsumexp outputs: |error| <= a few ulp * max(1, |value|)."""
    dt, actual, a, e = _checked(actual, expected, in_dtype, what)
    if dt.kind == "c":
        for part in (np.real, np.imag):
            assert_log_close(part(actual), part(expected), actual.real.dtype, what + f" ({part.__name__})")
        return
    ok = _check_specials(a, e, what)
    a, e = a[ok], e[ok]
    scale = np.maximum(1, np.abs(e))
    err = np.abs(a - e) / scale
    bad = err > ulps_log(dt)
    eps = float(finfo(dt).eps)
    assert not bad.any(), (f"{what}: error {err.max() / eps:.3g} ulps of max(1, |value|) > "
                           f"{ulps_log(dt) / eps:.3g} (got {a[bad][:3]}, expected {e[bad][:3]})")


ASSERT_CLOSE = {"softmax": assert_softmax_close, "log_softmax": assert_log_close,
                "logsumexp": assert_log_close}


# ---- inputs never modified --------------------------------------------------------

def root_buffer(a):
    """The ndarray that owns a's memory (so that bytes around a view are seen too)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def digest(a):
    """A hash of every byte of the memory `a` lives in, and of a's own view of it."""
    h = hashlib.sha256(root_buffer(a).tobytes())
    h.update(repr((a.shape, a.strides, a.dtype.str)).encode())
    return h.hexdigest()
