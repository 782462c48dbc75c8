"""pytest-benchmark suite: fastsoftmax beside the NumPy formula, SciPy and
(when installed) PyTorch, ONNX Runtime, JAX and Numba, for softmax,
log_softmax and logsumexp; one benchmark group per shape.

The shapes are those of ``python -m fastsoftmax.bench``: ``SHAPES`` in
float32 and float64, and ``OUT_SHAPES`` in float32 written into a
preallocated ``out=`` array, where ``np.copyto`` of the same arrays (the
``copyto`` implementation) joins the group as the memory-traffic floor.

Run with ``pytest bench --benchmark-only -p no:cacheprovider`` (see
bench/README.md).  Every benchmarked call's result is checked against a
float64 reference computed by NumPy from the same input (copyto's against
the input); timings are never asserted.

The implementations are those of ``python -m fastsoftmax.bench``
(``fastsoftmax.bench.IMPLEMENTATIONS``), so a library added there is
benchmarked here too; a library that is not installed is skipped.
"""
import functools

import numpy as np
import pytest

from fastsoftmax.bench import (DTYPES, IMPLEMENTATIONS, OPS, OUT_DTYPES, OUT_SHAPES, SHAPES,
                               make_input, output_shape)

# Result against the float64 reference computed from the same input.
RTOL = {"float32": 1e-5, "float64": 1e-12}
# log_softmax and logsumexp values cross 0, where only an absolute bound means
# something; softmax's tiny terms may be flushed to 0.
ATOL = {("softmax", "float32"): 1e-37, ("softmax", "float64"): 1e-307,
        ("log", "float32"): 4e-6, ("log", "float64"): 1e-13}


def _label(shape, axis, out=False):
    return ("x".join(map(str, shape)) + ("" if axis == -1 else f" axis {axis}")
            + (" out=" if out else ""))


@functools.lru_cache(maxsize=None)
def _implementation(name):
    """The implementation called `name`, or None if its library is missing."""
    for im in IMPLEMENTATIONS:
        if im.name == name:
            return im if im.available() else None
    raise LookupError(name)


@functools.lru_cache(maxsize=2)
def _input(shape, dtype):
    x = make_input(shape, dtype)
    x.flags.writeable = False          # shared by the benchmarks of one shape
    return x


@functools.lru_cache(maxsize=3)
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


# One group per shape (and out=): every op, dtype and implementation in it.
CASES = [pytest.param(shape, axis, dtype, out,
                      id=f"{_label(shape, axis, out)}-{dtype}".replace(" ", "-"),
                      marks=pytest.mark.benchmark(group=_label(shape, axis, out)))
         for shapes, dtypes, out in ((SHAPES, DTYPES, False), (OUT_SHAPES, OUT_DTYPES, True))
         for shape, axis in shapes for dtype in dtypes]


@pytest.mark.parametrize("impl", [im.name for im in IMPLEMENTATIONS])
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape, axis, dtype, out", CASES)
def test_bench(benchmark, shape, axis, dtype, out, op, impl):
    im = _implementation(impl)
    if im is None:
        pytest.skip(f"{impl} is not installed")
    x = _input(shape, dtype)
    y = np.empty(output_shape(op, shape, axis), dtype) if out else None
    f = im.make(op, x, axis) if y is None else im.make(op, x, axis, out=y)
    if f is None:
        pytest.skip(f"{impl} does not support {op} on this case")
    benchmark.extra_info.update(op=op, dtype=dtype, impl=impl, shape=list(shape), axis=axis,
                                out=out)
    with im.context():                 # thread settings (torch-1t, numba)
        result = benchmark(f)

    if not im.checked:                 # copyto: the input, copied
        np.testing.assert_array_equal(y, x)
        return
    result = im.to_numpy(result)
    ref = _reference(op, shape, axis, dtype)
    assert result.dtype == np.dtype(dtype)
    atol = ATOL["softmax" if op == "softmax" else "log", dtype]
    np.testing.assert_allclose(result, ref, rtol=RTOL[dtype], atol=atol)
