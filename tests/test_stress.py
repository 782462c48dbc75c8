"""Stress (issue 4, robustness): 8 Python threads calling every function at
once, and 64-bit sizes (rows longer than 2**31 elements, strides wider than
2**31 bytes).

- Eight threads (``threading``), each with its own shapes, dtypes, axes,
  ``out=`` arrays and ``num_threads`` in {1, 2, None}, call every public
  function repeatedly at the same time, one of them also changing the global
  ``set_num_threads``; every result must be bitwise equal to the one computed
  beforehand on one thread (the kernels are deterministic for any thread count).
- A row of 2**31 + 17 elements, as a zero-stride view (no memory needed):
  logsumexp must be x0 + log(2**31 + 17) within the logsumexp bound (2 ulp
  float32, 4 ulp float64), also for a (2, 2**31 + 17) view along axis 1.
- Views with strides of more than 2**31 and 2**32 bytes into a sparse
  memory-mapped file (32 GiB of address space, a few pages of memory).
- softmax of a zero-stride input is 1/n everywhere.
"""
import math
import sys
import tempfile
import threading
import time

import numpy as np
import pytest

import fastsoftmax as fsm

from . import util

PARALLEL_MIN = fsm._api.PARALLEL_MIN_ELEMENTS

# The accuracy bounds of issue 4 (as in tests/test_properties.py).
SOFTMAX_RTOL = {util.F32: 4e-7, util.F64: 8e-16}
LOGSUMEXP_ULPS = {util.F32: 2, util.F64: 4}
LOG_SOFTMAX_ULPS = 4


@pytest.fixture(autouse=True)
def _reset_num_threads():
    yield
    fsm.set_num_threads(None)


def _ulp(value, dt):
    """np.spacing(max(1, |value|)) in dtype dt."""
    return float(np.spacing(dt.type(max(1.0, abs(float(value))))))


# ---- 8 Python threads -----------------------------------------------------------------

def _thread_jobs(t):
    """Thread t's calls: (description, function, x, kwargs, out array or None).
    Shapes, dtypes and axes differ between threads; about half of the arrays are
    above the size at which the kernels go parallel."""
    rng = np.random.default_rng(100 + t)
    dt = (util.F32, util.F64)[t % 2]
    big_rows = 200 + 37 * t                       # big_rows * 700 > PARALLEL_MIN
    jobs = []

    def add(name, f, x, out=None, **kwargs):
        jobs.append((f"thread {t}: {name} {x.dtype}{x.shape} {kwargs}", f, x, kwargs, out))

    x = rng.normal(0, 4, (big_rows, 700)).astype(dt)
    x[rng.integers(0, big_rows, 3), rng.integers(0, 700, 3)] = [np.inf, -np.inf, np.nan]
    assert x.size > PARALLEL_MIN
    y = rng.normal(0, 30, (650 + t, 11, 29)).astype(dt)          # axis 0 / 1 over side-by-side rows
    assert y.size > PARALLEL_MIN
    z = rng.normal(0, 1, (3 + t, 50 + 13 * t)).astype(dt)        # small: one thread
    h = rng.normal(0, 2, (64, 40 + t)).astype(np.float16)
    i = rng.integers(-50, 50, (300, 500 + t)).astype(np.int32)
    xt = np.asfortranarray(x)[:, ::2]                              # F-ordered and strided
    for nt in (1, 2, None):
        add("softmax", fsm.softmax, x, num_threads=nt)
        add("log_softmax", fsm.log_softmax, y, axis=t % 3, num_threads=nt)
        add("logsumexp", fsm.logsumexp, y, axis=(0, 2), num_threads=nt)
        add("logsumexp", fsm.logsumexp, xt, axis=0, keepdims=True, num_threads=nt)
    add("softmax", fsm.softmax, xt, axis=None)
    add("log_softmax", fsm.log_softmax, z, axis=0, num_threads=2)
    add("logsumexp", fsm.logsumexp, z, b=np.abs(z), num_threads=1)
    add("logsumexp", fsm.logsumexp, z, return_sign=True)
    add("softmax", fsm.softmax, h, dtype=np.float32)
    add("log_softmax", fsm.log_softmax, i, num_threads=2)
    add("softmax", fsm.softmax, x, out=np.empty_like(x), num_threads=None)
    add("log_softmax", fsm.log_softmax, y, axis=1, out=np.empty_like(y), num_threads=2)
    add("logsumexp", fsm.logsumexp, x, out=np.empty(big_rows, dt), num_threads=2)
    add("special.softmax", fsm.special.softmax, y, axis=t % 3)
    add("special.log_softmax", fsm.special.log_softmax, x)
    add("special.logsumexp", fsm.special.logsumexp, y, axis=1)
    add("special.logsumexp", fsm.special.logsumexp, z, axis=0, b=z * z, keepdims=True, return_sign=True)
    return jobs


def _call(f, x, kwargs, out):
    if out is not None:
        kwargs = dict(kwargs, out=out)
    res = f(x, **kwargs)
    if out is not None:
        assert res is out
        res = out.copy()
    return tuple(np.asarray(r) for r in res) if isinstance(res, tuple) else (np.asarray(res),)


def _same(a, b):
    return all(u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes()
               for u, v in zip(a, b)) and len(a) == len(b)


def test_eight_python_threads_bitwise_equal_to_single_threaded():
    jobs = [_thread_jobs(t) for t in range(8)]
    # Expected results, one thread, one call at a time.
    fsm.set_num_threads(1)
    expected = [[_call(f, x, dict(kw, num_threads=1) if "num_threads" in kw else kw, out)
                 for _, f, x, kw, out in js] for js in jobs]
    fsm.set_num_threads(None)
    inputs_before = [[x.tobytes() for _, _, x, _, _ in js] for js in jobs]

    iterations = 6
    barrier = threading.Barrier(8)
    failures = []
    counts = [0] * 8

    def work(t):
        try:
            barrier.wait(timeout=60)
            for it in range(iterations):
                order = np.random.default_rng(t * 1000 + it).permutation(len(jobs[t]))
                for k in order:
                    if t == 7:                         # change the global setting under the others
                        fsm.set_num_threads((it + k) % 3 + 1)
                    what, f, x, kw, out = jobs[t][k]
                    got = _call(f, x, kw, out)
                    if not _same(got, expected[t][k]):
                        failures.append(f"{what}, iteration {it}: differs from the single-threaded result")
                    counts[t] += 1
        except Exception as e:     # noqa: BLE001 (reported below)
            failures.append(f"thread {t}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)              # switch between Python threads often
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=300)
    finally:
        sys.setswitchinterval(switch)
    assert not any(th.is_alive() for th in threads), "a thread did not finish (deadlock?)"
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:20])
    assert counts == [iterations * len(js) for js in jobs]
    for t, js in enumerate(jobs):
        for (what, _, x, _, _), before in zip(js, inputs_before[t]):
            assert x.tobytes() == before, f"{what}: input modified"


# ---- 64-bit sizes -----------------------------------------------------------------------

LONG = 2**31 + 17


def _assert_logsumexp_of_constant(got, x0, n, dt, what):
    """logsumexp of n copies of x0 is x0 + log(n), within the logsumexp bound."""
    exact = np.longdouble(x0) + np.log(np.longdouble(n))
    err = abs(np.longdouble(got) - exact) / np.longdouble(_ulp(exact, dt))
    assert err <= LOGSUMEXP_ULPS[dt], f"{what}: {got!r}, expected {exact} ({float(err):.3g} ulp)"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_of_a_row_longer_than_2_to_31(dtype):
    """A zero-stride view of 2**31 + 17 elements: the length does not fit 32 bits."""
    dt = np.dtype(dtype)
    x0 = {util.F32: 1.5, util.F64: -3.25}[dt]
    x = np.broadcast_to(dt.type(x0), (LONG,))
    assert x.strides == (0,)
    start = time.perf_counter()
    got = fsm.logsumexp(x)
    elapsed = time.perf_counter() - start
    assert np.asarray(got).dtype == dt
    _assert_logsumexp_of_constant(got, x0, LONG, dt, f"logsumexp of {LONG} x {x0} ({dt}, {elapsed:.1f} s)")


def test_logsumexp_of_two_rows_longer_than_2_to_31():
    """(2, 2**31 + 17) view, strides (4, 0), reduced along axis 1, and along axis 0
    of its transpose (strides (0, 4))."""
    x0 = np.array([[0.75], [-20.5]], np.float32)
    x = np.broadcast_to(x0, (2, LONG))
    got = fsm.logsumexp(x, axis=1)
    assert got.shape == (2,) and got.dtype == np.float32
    for k in range(2):
        _assert_logsumexp_of_constant(got[k], x0[k, 0], LONG, util.F32, f"row {k} of (2, 2**31 + 17)")
    got = fsm.logsumexp(x.T, axis=0)            # rows side by side: the non-last-axis kernels
    assert got.shape == (2,) and got.dtype == np.float32
    for k in range(2):
        _assert_logsumexp_of_constant(got[k], x0[k, 0], LONG, util.F32, f"column {k} of (2**31 + 17, 2)")


@pytest.fixture
def sparse_buffer():
    """A 32 GiB writable memory map of a sparse, already unlinked temporary file:
    address space, not memory or disk (only the pages written are stored)."""
    if sys.platform == "win32":
        pytest.skip("needs a sparse file (not on Windows)")
    size = 2**35
    with tempfile.TemporaryFile() as f:
        f.truncate(size)
        try:
            mm = np.memmap(f, dtype=np.uint8, mode="r+", shape=(size,))
        except (OSError, ValueError, OverflowError) as e:
            pytest.skip(f"cannot map 32 GiB of address space here: {e}")
        yield mm


# Strides over 2**31 and over 2**32 bytes (multiples of 8: aligned for both dtypes).
WIDE_STRIDES = [(2**32 + 8, 2**31 + 16), (2**31 + 8, 8), (8 * 7, 2**32 + 24)]


@pytest.mark.parametrize("strides", WIDE_STRIDES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strides_wider_than_2_to_31_bytes(sparse_buffer, dtype, strides):
    """A (3, 4) input and an out= array whose strides do not fit 32 bits, in a
    sparse 32 GiB map: every function along both axes, against the same values
    in a compact array."""
    dt = np.dtype(dtype)
    shape = (3, 4)
    span = sum((n - 1) * s for n, s in zip(shape, strides)) + dt.itemsize
    assert span < 2**34
    x = np.ndarray(shape, dt, buffer=sparse_buffer, offset=64, strides=strides)
    out = np.ndarray(shape, dt, buffer=sparse_buffer, offset=2**34 + 4096, strides=strides)
    values = np.random.default_rng(7).normal(0, 3, shape).astype(dt)
    x[...] = values
    assert np.array_equal(x, values)
    for axis in (0, 1, -1, None):
        for func in util.FUNCTIONS:
            f = getattr(fsm, func)
            what = f"{func} axis={axis}, strides {strides}"
            expected = util.reference(func, values, axis)
            got = f(x, axis=axis)
            util.ASSERT_CLOSE[func](got, expected, dt, what)
            assert np.array_equal(np.asarray(got), np.asarray(f(values, axis=axis)), equal_nan=True), what
            if func != "logsumexp":
                res = f(x, axis=axis, out=out)
                assert res is out
                util.ASSERT_CLOSE[func](out.copy(), expected, dt, what + ", out=")
    assert np.array_equal(x, values), "input modified"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_of_a_zero_stride_input(dtype):
    """Broadcast (zero-stride) inputs of moderate size: softmax is 1/n everywhere,
    log_softmax -log(n), along the broadcast axis and across it."""
    dt = np.dtype(dtype)
    rtol = SOFTMAX_RTOL[dt]
    cases = [(np.broadcast_to(dt.type(3.7), (10**6,)), -1),
             (np.broadcast_to(dt.type(-2.0), (300, 5000)), 1),
             (np.broadcast_to(dt.type(-2.0), (300, 5000)), 0),
             (np.broadcast_to(np.linspace(-5, 5, 256, dtype=dt), (4096, 256)), 0),
             (np.broadcast_to(np.linspace(-5, 5, 256, dtype=dt)[:, None], (256, 3000)), 1)]
    for x, axis in cases:
        n = x.shape[axis]
        what = f"{dt} broadcast {x.shape} strides {x.strides} axis {axis}"
        y = fsm.softmax(x, axis=axis)
        assert y.shape == x.shape and y.dtype == dt
        rel = np.abs(y.astype(np.longdouble) * n - 1)
        assert rel.max() <= rtol, f"softmax {what}: {float(rel.max()):.3g} relative error > {rtol}"
        ls = fsm.log_softmax(x, axis=axis)
        err = np.abs(ls.astype(np.longdouble) + np.log(np.longdouble(n)))
        bound = LOG_SOFTMAX_ULPS * _ulp(math.log(n), dt)
        assert err.max() <= bound, f"log_softmax {what}: error {float(err.max()):.3g} > {bound:.3g}"
