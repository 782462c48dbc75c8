"""pytest-benchmark suite: fastsoftmax beside the NumPy formula, SciPy and
(when installed) PyTorch, ONNX Runtime, JAX and Numba, for softmax,
log_softmax and logsumexp, and the machine-learning cases (softmax in
float16, masked_softmax, cross_entropy with its gradient); one benchmark
group per shape.

The cases are those of ``python -m fastsoftmax.bench``: ``SHAPES`` in
float32 and float64, ``OUT_SHAPES`` in float32 written into a
preallocated ``out=`` array, where ``np.copyto`` of the same arrays (the
``copyto`` implementation) joins the group as the memory-traffic floor, and
``ML_CASES`` (joining the group of their shape).

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

from fastsoftmax.bench import (BASE_OPS, DTYPES, IMPLEMENTATIONS, ML_CASES, OUT_DTYPES,
                               OUT_SHAPES, SHAPES, extra_input, make_input, output_shape)

# Result against the float64 reference computed from the same input.
RTOL = {"float32": 1e-5, "float64": 1e-12, "float16": 2e-3}
# log_softmax and logsumexp values cross 0, where only an absolute bound means
# something; softmax's tiny terms may be flushed to 0 (float16: rounded to 11
# bits).  The cross-entropy gradient, (softmax - onehot) / rows, gets "log"
# divided by the number of rows.
ATOL = {("softmax", "float32"): 1e-37, ("softmax", "float64"): 1e-307,
        ("softmax", "float16"): 1e-4,
        ("log", "float32"): 4e-6, ("log", "float64"): 1e-13, ("log", "float16"): 8e-3}


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
    if op == "masked_softmax":
        x = np.where(extra_input(op, shape, axis), x, -np.inf)
    elif op == "cross_entropy":            # (loss, gradient) of the mean over the labels
        logp = np.moveaxis(_reference("log_softmax", shape, axis, dtype), axis, -1)
        idx = extra_input(op, shape, axis)[..., None]
        grad = np.exp(logp)
        np.put_along_axis(grad, idx, np.take_along_axis(grad, idx, -1) - 1, -1)
        grad /= idx.size
        return -np.take_along_axis(logp, idx, -1).mean(), np.moveaxis(grad, -1, axis)
    m = x.max(axis, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(axis, keepdims=True)
    if op in ("softmax", "masked_softmax"):
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
@pytest.mark.parametrize("op", BASE_OPS)
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


@pytest.mark.parametrize("impl", [im.name for im in IMPLEMENTATIONS])
@pytest.mark.parametrize("op, shape, axis, dtype", [
    pytest.param(c.op, c.shape, c.axis, c.dtype, id=f"{c.op}-{_label(c.shape, c.axis)}-{c.dtype}",
                 marks=pytest.mark.benchmark(group=_label(c.shape, c.axis)))
    for c in ML_CASES])
def test_bench_ml(benchmark, op, shape, axis, dtype, impl):
    im = _implementation(impl)
    if im is None:
        pytest.skip(f"{impl} is not installed")
    f = im.make(op, _input(shape, dtype), axis)
    if f is None:
        pytest.skip(f"{impl} does not support {op} on this case")
    benchmark.extra_info.update(op=op, dtype=dtype, impl=impl, shape=list(shape), axis=axis,
                                out=False)
    with im.context():
        result = benchmark(f)

    ref = _reference(op, shape, axis, dtype)
    rtol = RTOL[dtype]
    if op == "cross_entropy":
        loss, grad = map(im.to_numpy, result)
        rows = grad.size // shape[axis]
        np.testing.assert_allclose(loss, ref[0], rtol=rtol, atol=ATOL["log", dtype])
        assert grad.dtype == np.dtype(dtype)
        np.testing.assert_allclose(grad, ref[1], rtol=rtol, atol=ATOL["log", dtype] / rows
                                   + ATOL["softmax", dtype])
        return
    result = im.to_numpy(result)
    assert result.dtype == np.dtype(dtype)
    np.testing.assert_allclose(result, ref, rtol=rtol, atol=ATOL["softmax", dtype])
