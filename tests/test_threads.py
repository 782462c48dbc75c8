"""Threads: identical results for any thread count, the thread-count settings
(set_num_threads, OMP_NUM_THREADS, threadpoolctl), the GIL released around the
kernels, concurrent calls from Python threads; show_config()."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastsoftmax as fsm
from . import util

FUNCS = {name: getattr(fsm, name) for name in util.FUNCTIONS}
OPENMP = fsm.show_config(mode="dicts")["openmp"]
PARALLEL_MIN_ELEMENTS = fsm._api.PARALLEL_MIN_ELEMENTS   # smaller calls run on one thread


@pytest.fixture(autouse=True)
def _reset_num_threads():
    yield
    fsm.set_num_threads(None)


def _with_specials(x, rng):
    """Sprinkle NaN, +inf and -inf into a few rows so that the special path runs
    inside parallel calls too."""
    x = x.copy()
    flat = x.reshape(-1)
    for value in (np.nan, np.inf, -np.inf):
        flat[rng.integers(0, flat.size, 5)] = value
    return x


# Larger than the threshold (2**17 elements) below which calls run on one thread.
BIG = [((4096, 100), -1), ((100, 4096), 0), ((3, 100000), -1), ((40, 30, 150), 1),
       ((500, 300), None), ((64, 4, 600), (0, 2)), ((900, 2500), 0)]


@pytest.mark.parametrize("shape,axis", BIG, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_one_and_two_threads_bitwise_identical(func, shape, axis):
    assert np.prod(shape) > PARALLEL_MIN_ELEMENTS
    rng = np.random.default_rng(0)
    for dtype in util.FLOATS:
        x = _with_specials(rng.normal(0, 4, shape).astype(dtype), rng)
        one = FUNCS[func](x, axis=axis, num_threads=1)
        for n in (2, 3):
            many = FUNCS[func](x, axis=axis, num_threads=n)
            assert one.tobytes() == many.tobytes(), f"{func}{shape} axis={axis} {dtype}: 1 vs {n} threads"
        util.ASSERT_CLOSE[func](one, util.reference(func, x, axis), dtype, f"{func}{shape}")


def test_set_num_threads_and_reset():
    default = fsm.get_num_threads()
    assert default >= 1
    fsm.set_num_threads(1)
    assert fsm.get_num_threads() == 1
    fsm.set_num_threads(3)
    assert fsm.get_num_threads() == 3
    fsm.set_num_threads(np.int64(2))
    assert fsm.get_num_threads() == 2 and type(fsm.get_num_threads()) is int
    fsm.set_num_threads(None)
    assert fsm.get_num_threads() == default


def test_set_num_threads_does_not_change_results():
    x = np.random.default_rng(1).normal(size=(500, 300))
    fsm.set_num_threads(1)
    one = fsm.softmax(x)
    fsm.set_num_threads(2)
    assert fsm.softmax(x).tobytes() == one.tobytes()


def _subprocess_num_threads(env_update):
    env = dict(os.environ, **env_update)
    code = "import fastsoftmax as f; print(f.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(fsm.__file__)))
    return int(out.stdout.strip())


@pytest.mark.skipif(not OPENMP, reason="built without OpenMP")
def test_omp_num_threads_is_followed():
    assert _subprocess_num_threads({"OMP_NUM_THREADS": "1"}) == 1
    assert _subprocess_num_threads({"OMP_NUM_THREADS": "3"}) == 3


@pytest.mark.skipif(not OPENMP, reason="built without OpenMP")
def test_threadpoolctl_limits_are_followed():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    fsm.set_num_threads(None)
    before = fsm.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1):
        assert fsm.get_num_threads() == 1
        # Calls still work (and give the same result) under the limit.
        x = np.random.default_rng(2).normal(size=(300, 300))
        assert fsm.softmax(x).tobytes() == fsm.softmax(x, num_threads=2).tobytes()
    assert fsm.get_num_threads() == before
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert fsm.get_num_threads() == 1


@pytest.mark.skipif(not OPENMP, reason="built without OpenMP")
def test_set_num_threads_overrides_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    fsm.set_num_threads(2)
    with threadpoolctl.threadpool_limits(limits=1):
        assert fsm.get_num_threads() == 2


def test_without_openmp_one_thread():
    if OPENMP:
        pytest.skip("built with OpenMP")
    assert fsm.get_num_threads() == 1


# ---- the GIL ----------------------------------------------------------------------------------

@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_gil_released_during_the_kernel(func):
    """A Python thread that only counts makes progress while the kernel runs.

    The switch interval is set to 0.5 s, longer than the call: a call that held
    the GIL would keep the counting thread from running until it returned, and
    the count read right after the call would be the count read right before."""
    x = np.random.default_rng(3).normal(size=(1000, 4000))
    state = {"count": 0, "stop": False}
    started = threading.Event()

    def count():
        started.set()
        while not state["stop"]:
            state["count"] += 1

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.5)
    t = threading.Thread(target=count)
    try:
        t.start()
        started.wait()
        before = state["count"]
        FUNCS[func](x, num_threads=1)
        after = state["count"]
    finally:
        state["stop"] = True
        sys.setswitchinterval(old)
        t.join()
    assert after > before, f"{func}: no Python code ran during the kernel"


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_concurrent_calls_from_python_threads(func):
    """Two Python threads call the same function at once, on different big arrays
    and thread counts; both finish with the results of a call made alone."""
    rng = np.random.default_rng(4)
    inputs = [_with_specials(rng.normal(0, 4, (2000, 600)), rng),
              _with_specials(rng.normal(0, 4, (600, 2000)).astype(np.float32), rng)]
    axes = [-1, 0]
    expected = [FUNCS[func](x, axis=a, num_threads=1) for x, a in zip(inputs, axes)]
    results, errors = [None, None], []
    barrier = threading.Barrier(2)

    def work(i):
        try:
            barrier.wait()
            for _ in range(3):
                results[i] = FUNCS[func](inputs[i], axis=axes[i], num_threads=1 + i)
                assert results[i].tobytes() == expected[i].tobytes()
        except BaseException as e:  # reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for r, e in zip(results, expected):
        assert r.tobytes() == e.tobytes()


# ---- show_config ------------------------------------------------------------------------------

def test_show_config_prints(capsys):
    assert fsm.show_config() is None
    text = capsys.readouterr().out
    for word in ("openmp", "compiler", "flags", "available_isas", "active_isa", "num_threads"):
        assert word in text


def test_show_config_dicts():
    info = fsm.show_config(mode="dicts")
    assert isinstance(info["openmp"], bool)
    assert isinstance(info["compiler"], str) and info["compiler"]
    assert isinstance(info["flags"], str)
    assert "generic" in info["compiled_isas"]
    assert set(info["available_isas"]) <= set(info["compiled_isas"])
    assert info["active_isa"] in info["available_isas"]
    assert info["num_threads"] == fsm.get_num_threads()


def test_build_flags_are_portable():
    """DESIGN §3: never -march=native or -ffast-math in a default build."""
    flags = fsm.show_config(mode="dicts")["flags"]
    assert "-march=native" not in flags
    assert "-ffast-math" not in flags and "-Ofast" not in flags


# ---- a few long rows, each split across the threads ---------------------------------

LONG_N = 3 * 2**18 + 5        # above the split threshold (2**18), several chunks and a tail


def _long_rows(case, dt, rng):
    """(x, axis) of two long rows: plain, with special values inside one chunk, a
    chunk of only -inf, strided, or along axis 0 (element stride 2)."""
    x = rng.normal(0.0, 4.0, (2, LONG_N)).astype(dt)
    if case == "nan":
        x[0, 70000] = np.nan
    elif case == "posinf":
        x[0, 5] = x[0, 300000] = np.inf
    elif case == "neginf_chunk":
        x[0, :2**17] = -np.inf            # whole chunks of -inf
    elif case == "all_neginf":
        x[1] = -np.inf
    elif case == "offset":
        x[1] += 1000.0                    # the max far from 0, the chunks' maxima differ
    if case == "strided":
        return np.repeat(x, 2, axis=1)[:, ::2], -1
    if case == "axis0":
        return np.ascontiguousarray(x.T), 0
    return x, -1


@pytest.mark.parametrize("case", ["plain", "nan", "posinf", "neginf_chunk", "all_neginf", "offset",
                                  "strided", "axis0"])
@pytest.mark.parametrize("dt", util.FLOATS, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_long_rows_split_across_threads(func, dt, case):
    """Rows too few for one per thread are split into chunks merged in a fixed
    order: the values match the reference and do not depend on the thread count."""
    x, axis = _long_rows(case, dt, np.random.default_rng(7))
    before = x.copy()
    f = FUNCS[func]
    one, two = f(x, axis=axis, num_threads=1), f(x, axis=axis, num_threads=2)
    assert util.digest(one) == util.digest(two)
    assert np.array_equal(x, before, equal_nan=True)
    expected = util.reference(func, x, axis)
    check = util.assert_softmax_close if func == "softmax" else util.assert_log_close
    check(one, expected, x.dtype, f"{func} {case}")


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
def test_long_rows_in_place_and_with_temperature(func):
    x = np.random.default_rng(8).normal(0.0, 4.0, (1, LONG_N)).astype(np.float32)
    f = FUNCS[func]
    expected = f(x, temperature=0.5, num_threads=1)
    y = x.copy()
    assert f(y, temperature=0.5, out=y, num_threads=2) is y
    assert np.array_equal(y, expected)
    check = util.assert_softmax_close if func == "softmax" else util.assert_log_close
    check(expected, util.reference(func, x.astype(np.float64) / 0.5, -1), x.dtype, func)
