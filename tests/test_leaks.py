"""No reference or memory leak (issue 4, robustness): every public function,
called many times on tiny arrays in each of its modes (fast path, general
path, out=, dtype=, keepdims, b=, return_sign, every input kind) and in calls
that raise (bad axis, bad dtype, bad out=, bad num_threads), leaves

- the reference counts of its arguments unchanged (sys.getrefcount),
- the memory traced by tracemalloc flat,
- the resident set size flat,

measured after a warm-up, so that caches filled on the first calls do not count.

The core functions (softmax, log_softmax, logsumexp) and the thread settings
get CALLS = 10**5 calls each without tracemalloc (which slows Python down
several times), measured by RSS and reference counts, then TRACED_CALLS more
under tracemalloc, whose count is exact to the byte, so that even one leaked
object per call (>= 16 bytes) is far above its threshold.  fastsoftmax.special's
functions, thin wrappers over the same code, get a fifth of CALLS and half of
TRACED_CALLS, which keeps this file near 20 s on a 2-core machine.
"""
import gc
import os
import resource
import sys
import tracemalloc

import numpy as np
import pytest

import fastsoftmax as fsm

CALLS = 10**5
TRACED_CALLS = 2 * 10**4
WARMUP = 2000
TRACED_LIMIT = 32 * 1024          # bytes: under 2 bytes per traced call
RSS_LIMIT = 2 * 1024 * 1024       # bytes: about 20 bytes per call

RNG = np.random.default_rng(0)
X32 = RNG.normal(size=(2, 3)).astype(np.float32)
X64 = RNG.normal(size=(2, 3))
X16 = X64.astype(np.float16)
XI = np.arange(6, dtype=np.int32).reshape(2, 3)
XS = RNG.normal(size=(4, 6))[::2, ::-2]            # strided, negative stride
XF = np.asfortranarray(RNG.normal(size=(3, 4)))
XC = (X64 + 0.5j).astype(np.complex64)
XO = X64.astype(object)
XSTR = np.array(["a", "b"])
X0 = np.array(1.5)
XBIG = RNG.normal(size=(3, 50))
B = np.abs(RNG.normal(size=(2, 3)))
SPECIAL = np.array([[np.inf, 1.0, np.nan], [-np.inf, -np.inf, -np.inf]])
OUT64 = np.empty((2, 3))
OUT32 = np.empty((2, 3), np.float32)
OUT_LSE = np.empty(2)
OUT_LSE_KEEP = np.empty((2, 1))
OUT_BAD_SHAPE = np.empty((3, 2))
OUT_BAD_DTYPE = np.empty((2, 3), np.int64)
OUT_RO = np.empty((2, 3))
OUT_RO.flags.writeable = False
INPLACE = RNG.normal(size=(2, 3))
AXES = (0, 1)
LIST = [[1.0, 2.0], [3.0, 4.0]]
B_BAD = np.ones(5)         # made once: np.ones(5) itself leaks a reference to float64's
B_BAD4 = np.ones(4)        # dtype in NumPy 2.4 (np.empty/np.zeros/np.ones without dtype=)

# Objects whose reference counts must not change.
TRACKED = dict(X32=X32, X64=X64, X16=X16, XI=XI, XS=XS, XF=XF, XC=XC, XO=XO, XSTR=XSTR, X0=X0,
               XBIG=XBIG, B=B, SPECIAL=SPECIAL, OUT64=OUT64, OUT32=OUT32, OUT_LSE=OUT_LSE,
               OUT_LSE_KEEP=OUT_LSE_KEEP, OUT_BAD_SHAPE=OUT_BAD_SHAPE, OUT_BAD_DTYPE=OUT_BAD_DTYPE,
               OUT_RO=OUT_RO, INPLACE=INPLACE, AXES=AXES, LIST=LIST, B_BAD=B_BAD, B_BAD4=B_BAD4,
               dtype_f64=X64.dtype,
               dtype_f32=X32.dtype, float32=np.float32)


def _map_calls(f):
    """(call, exception it raises or None) for softmax / log_softmax."""
    return [
        (lambda: f(X32), None),                                   # the fast path
        (lambda: f(X64, axis=-1, num_threads=1), None),
        (lambda: f(X64, axis=0), None),                           # the general path
        (lambda: f(XS, axis=AXES), None),
        (lambda: f(XF, axis=1), None),
        (lambda: f(XBIG), None),
        (lambda: f(SPECIAL), None),
        (lambda: f(X64, out=OUT64), None),
        (lambda: f(X64, dtype=np.float32, out=OUT32), None),
        (lambda: f(XI, dtype=np.float32), None),
        (lambda: f(X16), None),
        (lambda: f(INPLACE, out=INPLACE), None),
        (lambda: f(LIST), None),
        (lambda: f(X0, axis=None), None),
        (lambda: f(X64, axis=5), np.exceptions.AxisError),
        (lambda: f(X64, axis=(0, 0)), ValueError),
        (lambda: f(X64, axis=1.0), TypeError),
        (lambda: f(XO), TypeError),
        (lambda: f(XSTR), TypeError),
        (lambda: f(XC), TypeError),
        (lambda: f(X64, dtype="i8"), TypeError),
        (lambda: f(X64, out=OUT_BAD_SHAPE), ValueError),
        (lambda: f(X64, out=OUT_BAD_DTYPE), ValueError),
        (lambda: f(X64, out=OUT_RO), ValueError),
        (lambda: f(X64, out=LIST), TypeError),
        (lambda: f(X64, num_threads=0), ValueError),
        (lambda: f(X64, num_threads="2"), TypeError),
    ]


def _logsumexp_calls(f):
    return [
        (lambda: f(X32), None),
        (lambda: f(X64, axis=-1, num_threads=1), None),
        (lambda: f(X64, axis=0), None),
        (lambda: f(XS, axis=AXES), None),
        (lambda: f(XF, axis=None), None),
        (lambda: f(XBIG), None),
        (lambda: f(SPECIAL), None),
        (lambda: f(X64, out=OUT_LSE), None),
        (lambda: f(X64, keepdims=True, out=OUT_LSE_KEEP), None),
        (lambda: f(X64, b=B), None),
        (lambda: f(X64, b=-B, return_sign=True), None),
        (lambda: f(XC), None),
        (lambda: f(XI, dtype=np.float32), None),
        (lambda: f(X16, keepdims=True), None),
        (lambda: f(LIST), None),
        (lambda: f(X0, axis=None), None),
        (lambda: f(X64, axis=-3), np.exceptions.AxisError),
        (lambda: f(X64, axis=(1, -1)), ValueError),
        (lambda: f(X64, axis="0"), TypeError),
        (lambda: f(XO), TypeError),
        (lambda: f(XSTR), TypeError),
        (lambda: f(X64, dtype=object), TypeError),
        (lambda: f(X64, b=B_BAD), ValueError),
        (lambda: f(X64, out=OUT64), ValueError),
        (lambda: f(X64, out=OUT_RO), ValueError),
        (lambda: f(X64, num_threads=-1), ValueError),
        (lambda: f(X64, num_threads=1.5), TypeError),
    ]


def _special_calls(name):
    f = getattr(fsm.special, name)
    calls = [
        (lambda: f(X64), None),
        (lambda: f(X32, axis=-1), None),
        (lambda: f(X64, 0), None),
        (lambda: f(XS, axis=AXES), None),
        (lambda: f(SPECIAL, axis=1), None),
        (lambda: f(XI), None),
        (lambda: f(LIST), None),
        (lambda: f(X0), None),
        (lambda: f(X64, axis=2), np.exceptions.AxisError),
        (lambda: f(X64, axis=(0, 0)), ValueError),
        (lambda: f(XO), TypeError),
        (lambda: f(XSTR, axis=0), TypeError),
    ]
    if name == "logsumexp":
        calls += [(lambda: f(X64, 1, B, True), None),
                  (lambda: f(X64, b=-B, return_sign=True), None),
                  (lambda: f(XC, axis=1), None),
                  (lambda: f(X64, b=B_BAD4), ValueError)]
    else:
        calls += [(lambda: f(XC), TypeError)]
    return calls


def _threads_calls():
    return [
        (lambda: fsm.set_num_threads(1), None),
        (lambda: fsm.get_num_threads(), None),
        (lambda: fsm.set_num_threads(np.int64(2)), None),
        (lambda: fsm.set_num_threads(None), None),
        (lambda: fsm.show_config(mode="dicts"), None),
        (lambda: fsm.set_num_threads(0), ValueError),
        (lambda: fsm.set_num_threads("1"), TypeError),
        (lambda: fsm.show_config(mode="yaml"), ValueError),
    ]


GROUPS = {
    "softmax": lambda: _map_calls(fsm.softmax),
    "log_softmax": lambda: _map_calls(fsm.log_softmax),
    "logsumexp": lambda: _logsumexp_calls(fsm.logsumexp),
    "special.softmax": lambda: _special_calls("softmax"),
    "special.log_softmax": lambda: _special_calls("log_softmax"),
    "special.logsumexp": lambda: _special_calls("logsumexp"),
    "set_num_threads/get_num_threads/show_config": _threads_calls,
}


def _run(calls, n):
    k = len(calls)
    for i in range(n):
        call, _ = calls[i % k]
        try:
            call()
        except (TypeError, ValueError):
            pass


def _rss():
    """Resident set size in bytes."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):   # not Linux: the peak (flat too if nothing leaks)
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _refcounts():
    return {name: sys.getrefcount(obj) for name, obj in TRACKED.items()}


@pytest.fixture(autouse=True)
def _reset_threads():
    yield
    fsm.set_num_threads(None)


@pytest.mark.parametrize("group", list(GROUPS))
def test_no_leak(group):
    calls = GROUPS[group]()
    if group.startswith("special."):
        n_calls, n_traced = CALLS // 5, TRACED_CALLS // 2
    else:
        n_calls, n_traced = CALLS, TRACED_CALLS
    # Each call does what it is meant to: returns, or raises the expected error.
    for i, (call, error) in enumerate(calls):
        if error is None:
            call()
        else:
            with pytest.raises(error):
                call()

    _run(calls, WARMUP)
    gc.collect()
    refs, rss = _refcounts(), _rss()
    _run(calls, n_calls)
    gc.collect()
    rss_growth = _rss() - rss
    refs_after = _refcounts()
    changed = {k: (refs[k], refs_after[k]) for k in refs if refs[k] != refs_after[k]}
    assert not changed, f"{group}: reference counts changed over {n_calls} calls: {changed}"
    assert rss_growth < RSS_LIMIT, f"{group}: RSS grew by {rss_growth} bytes over {n_calls} calls"

    tracemalloc.start()
    try:
        _run(calls, WARMUP)
        gc.collect()
        before = tracemalloc.take_snapshot()
        traced = tracemalloc.get_traced_memory()[0]
        _run(calls, n_traced)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - traced
        if growth >= TRACED_LIMIT:
            top = tracemalloc.take_snapshot().compare_to(before, "lineno")[:5]
            pytest.fail(f"{group}: traced memory grew by {growth} bytes over {n_traced} calls; "
                        f"largest growth at: " + "; ".join(str(s) for s in top))
    finally:
        tracemalloc.stop()
