"""pytest-benchmark suite: fastsoftmax beside the NumPy formula, SciPy and
(when installed) PyTorch, for softmax, log_softmax and logsumexp in float32
and float64; one benchmark group per shape.

Run with ``pytest bench --benchmark-only -p no:cacheprovider`` (see
bench/README.md).  Every benchmarked call's result is checked against a
float64 reference computed by NumPy from the same input; timings are never
asserted.

The implementations are those of ``python -m fastsoftmax.bench``
(``fastsoftmax.bench.IMPLEMENTATIONS``), so a library added there is
benchmarked here too.
"""
import functools

import numpy as np
import pytest

from fastsoftmax.bench import IMPLEMENTATIONS, SEED, SHAPES, SIGMA

OPS = ("softmax", "log_softmax", "logsumexp")
DTYPES = ("float32", "float64")

# Result against the float64 reference computed from the same input.
RTOL = {"float32": 1e-5, "float64": 1e-12}
# log_softmax and logsumexp values cross 0, where only an absolute bound means
# something; softmax's tiny terms may be flushed to 0.
ATOL = {("softmax", "float32"): 1e-37, ("softmax", "float64"): 1e-307,
        ("log", "float32"): 4e-6, ("log", "float64"): 1e-13}


def _label(shape, axis):
    return "x".join(map(str, shape)) + ("" if axis == -1 else f" axis {axis}")


@functools.lru_cache(maxsize=None)
def _implementation(name):
    """The implementation called `name`, or None if its library is missing."""
    for im in IMPLEMENTATIONS:
        if im.name == name:
            return im if im.available() else None
    raise LookupError(name)


@functools.lru_cache(maxsize=4)
def _input(shape, dtype):
    x = (np.random.default_rng(SEED).standard_normal(shape) * SIGMA).astype(dtype)
    x.flags.writeable = False          # shared by the benchmarks of one shape
    return x


@functools.lru_cache(maxsize=6)
def _reference(op, shape, axis, dtype):
    """`op` of the input, computed in float64 with the stable NumPy formula."""
    x = _input(shape, dtype).astype(np.float64)
    m = x.max(axis, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(axis, keepdims=True)
    if op == "softmax":
        return e / s
    if op == "log_softmax":
        return (x - m) - np.log(s)
    return (m + np.log(s)).squeeze(axis)


CASES = [pytest.param(shape, axis, id=_label(shape, axis).replace(" ", "-"),
                      marks=pytest.mark.benchmark(group=_label(shape, axis)))
         for shape, axis in SHAPES]


@pytest.mark.parametrize("impl", [im.name for im in IMPLEMENTATIONS])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape, axis", CASES)
def test_bench(benchmark, shape, axis, op, dtype, impl):
    im = _implementation(impl)
    if im is None:
        pytest.skip(f"{impl} is not installed")
    x = _input(shape, dtype)
    if impl == "torch":
        x = x.copy()       # torch.from_numpy warns about read-only arrays
    f = im.make(op, x, axis)
    if f is None:
        pytest.skip(f"{impl} does not support {op} on {dtype}")
    benchmark.extra_info.update(op=op, dtype=dtype, impl=impl, shape=list(shape), axis=axis)
    result = np.asarray(benchmark(f))

    ref = _reference(op, shape, axis, dtype)
    assert result.dtype == np.dtype(dtype)
    atol = ATOL["softmax" if op == "softmax" else "log", dtype]
    np.testing.assert_allclose(result, ref, rtol=RTOL[dtype], atol=atol)
