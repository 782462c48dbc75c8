"""fastsoftmax.dask against the in-memory functions, on a real distributed scheduler.

The values are computed on a ``distributed.LocalCluster`` of two worker
processes (one module-scoped fixture starts and closes it), so every graph
is pickled, shipped and run as a user's would be.  The graph-shape tests
(task count, chunk sizes, dtypes of every task's result) run on the
synchronous scheduler, where a callback sees each task's result.

The inputs hold the special values of DESIGN §1 inside one chunk (NaN, +inf,
two +inf, -inf), a chunk full of -inf in an otherwise finite row, a row of only
-inf and a row shifted by 1000, so that both graphs (reduced axis in one chunk,
or spanning several) meet every case of the (max, sum-of-exp) merge.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from dask.callbacks import Callback  # noqa: E402

import fastsoftmax as fsm  # noqa: E402
import fastsoftmax.dask as fsd  # noqa: E402

from . import ml_reference as ref  # noqa: E402

FUNCTIONS = ("softmax", "log_softmax", "logsumexp")
ALL = pytest.mark.parametrize("func", FUNCTIONS)
# float32 results within a few ulps of the in-memory function (the chunked
# graph rounds once more when it rescales a block); float64 likewise.
RTOL = {np.float32: 2e-6, np.float64: 1e-14}
ATOL = {np.float32: 1e-6, np.float64: 1e-14}     # log values near 0

ROWS, N, CHUNK = 8, 40, 10
LAYOUTS = {                       # chunks of the softmax axis
    "one-chunk": (N,),
    "chunked": (CHUNK,) * (N // CHUNK),
    "uneven": (7, 13, 20),
}


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of two single-threaded worker processes, and a client on it.

    Started once and closed when this module's tests are done (module scope:
    alive through the rest of the session, the scheduler's event loop in this
    process would disturb the memory measurements of tests/test_leaks.py)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


def rows(dtype):
    """ROWS x N input: N(0, 9) with the special values, each inside one chunk of
    the chunked layout (columns 10-19) unless said otherwise."""
    x = np.random.default_rng(6).normal(0.0, 3.0, (ROWS, N))
    x[0, 12] = np.nan
    x[1, 15] = np.inf
    x[2, [11, 17]] = np.inf
    x[3, 13:16] = -np.inf
    x[4, :CHUNK] = -np.inf             # a chunk full of -inf in a finite row
    x[5, :] = -np.inf                  # a row of only -inf
    x[6] += 1000.0                     # far from 0: the merge must not lose digits
    return x.astype(dtype)


def arrays(dtype, layout, axis):
    """(NumPy input, dask input) with the softmax axis `axis` chunked as `layout`."""
    x = rows(dtype)
    chunks = ((4, 4), LAYOUTS[layout])
    if axis == 0:
        x, chunks = x.T.copy(), chunks[::-1]
    return x, da.from_array(x, chunks=chunks)


def compute(client, y):
    """A lazy result computed on the cluster."""
    assert isinstance(y, da.Array)
    return client.compute(y, sync=True)


def assert_matches(got, want, dtype, rtol=None, atol=None):
    """got equals want within the tolerances of `dtype`, and has its dtype."""
    want = np.asarray(want)
    assert got.dtype == want.dtype
    rtol = RTOL[np.dtype(dtype).type] if rtol is None else rtol
    atol = ATOL[np.dtype(dtype).type] if atol is None else atol
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   rtol=rtol, atol=atol)


def check_functions(client, x, dx, kwargs=None, dask_kwargs=None, tol=np.float64):
    """softmax, log_softmax and logsumexp of dx, computed together on the cluster,
    against the in-memory functions of x (kwargs for both, dask_kwargs for
    fastsoftmax.dask only); tolerances of dtype `tol`, or a (rtol, atol) pair."""
    kwargs = kwargs or {}
    lazy = [getattr(fsd, f)(dx, **dict(kwargs, **(dask_kwargs or {}))) for f in FUNCTIONS]
    tol = (None, None) if not isinstance(tol, tuple) else tol
    for func, y, got in zip(FUNCTIONS, lazy, client.compute(lazy, sync=True)):
        want = getattr(fsm, func)(x, **kwargs)
        assert y.dtype == np.asarray(want).dtype and y.shape == np.shape(want), func
        assert_matches(got, want, x.dtype if tol == (None, None) else np.float64, *tol)


# ---- values -----------------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_in_memory(client, dtype, axis, layout):
    x, dx = arrays(dtype, layout, axis)
    check_functions(client, x, dx, dict(axis=axis))


@pytest.mark.parametrize("axis", [(0, 1), None, (0, 2), 1])
def test_several_axes(client, axis):
    x = np.random.default_rng(1).normal(size=(6, 5, 8))
    check_functions(client, x, da.from_array(x, chunks=(4, 2, 3)), dict(axis=axis))


@pytest.mark.parametrize("layout", ["one-chunk", "chunked"])
def test_logsumexp_keepdims(client, layout):
    x, dx = arrays(np.float64, layout, -1)
    for axis in (-1, (0, 1)):
        y = fsd.logsumexp(dx, axis=axis, keepdims=True)
        want = fsm.logsumexp(x, axis=axis, keepdims=True)
        assert y.shape == want.shape
        assert_matches(compute(client, y), want, np.float64)


@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.bool_])
def test_dtype_policy(client, dtype):
    x = (np.random.default_rng(2).normal(size=(4, 12)) * 3).astype(dtype)
    tol = (2e-3, 0) if dtype == np.float16 else (1e-14, 0)
    check_functions(client, x, da.from_array(x, chunks=(2, 5)), tol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_dtype_argument(client, dtype):
    x, dx = arrays(np.float32, "chunked", -1)
    tol = (1e-3, 1e-3) if dtype == np.float16 else (2e-6, 1e-6)
    check_functions(client, x, dx, dict(dtype=dtype), tol=tol)


@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("shape, chunks", [((3, 0), (2, 1)), ((0, 5), (1, 2)), ((4, 6), (4, 6))])
def test_empty_and_one_block(client, shape, chunks, axis):
    x = np.random.default_rng(3).normal(size=shape)
    check_functions(client, x, da.from_array(x, chunks=chunks), dict(axis=axis))


def test_zero_d(client):
    x = np.array(3.0)
    check_functions(client, x, da.from_array(x), dict(axis=None))


def test_num_threads_is_passed_per_block(client):
    x, dx = arrays(np.float64, "chunked", -1)
    check_functions(client, x, dx, dict(num_threads=1))


def test_numpy_input_becomes_one_chunk(client):
    x = rows(np.float64)
    check_functions(client, x, x)


# ---- temperature and where ------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.05, 3.0])
@pytest.mark.parametrize("layout", ["one-chunk", "chunked"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_temperature(client, dtype, layout, temperature):
    x, dx = arrays(dtype, layout, -1)
    check_functions(client, x, dx, dict(temperature=temperature))


@pytest.mark.parametrize("layout", ["one-chunk", "chunked"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_temperature_whose_reciprocal_overflows(client, dtype, layout):
    """A T whose reciprocal overflows the dtype (1/T of a subnormal T overflows the
    double of the chunks' merge too), on rows spread over a few T whose chunks'
    maxima differ: the exact values, as the in-memory functions give them."""
    T = {np.float32: 1e-40, np.float64: 1e-320}[dtype]
    q = np.random.default_rng(8).normal(0.0, 3.0, (ROWS, N)) - np.repeat([3.0, 2.0, 1.0, 0.0], CHUNK)
    x = (q * T).astype(dtype)
    dx = da.from_array(x, chunks=((4, 4), LAYOUTS[layout]))
    check_functions(client, x, dx, dict(temperature=T))
    for func in FUNCTIONS:
        ref.check(func, compute(client, getattr(fsd, func)(dx, temperature=T)), x, -1, T, None,
                  f"{func} {dtype} {layout}")


def masks():
    """Masks of rows() (axis -1): one of x's shape with a row of no True entry,
    a chunk of no True entry, the -inf row partly unmasked and the NaN masked
    away; and a row-broadcast one."""
    full = np.random.default_rng(4).random((ROWS, N)) < 0.7
    full[7] = False
    full[1, CHUNK:2 * CHUNK] = False   # the +inf's chunk masked away
    full[5, 3] = True
    full[:, 12] = False                # the NaN takes no part
    return {"full": full, "broadcast": full[2:3]}


@pytest.mark.parametrize("as_dask", [False, True], ids=["numpy-mask", "dask-mask"])
@pytest.mark.parametrize("mask", ["full", "broadcast"])
@pytest.mark.parametrize("layout", ["one-chunk", "chunked"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_where(client, dtype, layout, mask, as_dask):
    x, dx = arrays(dtype, layout, -1)
    where = masks()[mask]
    dask_where = da.from_array(where, chunks=(1, 15)) if as_dask else where  # chunks unlike x's
    check_functions(client, x, dx, dict(where=where, temperature=0.5), dict(where=dask_where))


@pytest.mark.parametrize("layout", ["one-chunk", "chunked"])
@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
def test_where_on_a_nan_row(client, func, layout):
    """A NaN row is NaN where the mask is True; masked entries get 0 / -inf (DESIGN §1)."""
    x, dx = arrays(np.float64, layout, -1)
    where = masks()["full"]
    where[0, 12] = True
    got = compute(client, getattr(fsd, func)(dx, where=where))[0]
    absent = 0 if func == "softmax" else -np.inf
    np.testing.assert_array_equal(got, np.where(where[0], np.nan, absent))


# ---- cross_entropy ---------------------------------------------------------------------

C = 7


def logits_and_targets(dtype):
    """(logits (12, C) with a +inf and a -inf, {target kind: (target, ignore_index)})."""
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(12, C)) * 2).astype(dtype)
    x[1, 2], x[4, 0] = np.inf, -np.inf
    labels = rng.integers(0, C, 12)
    ignored = labels.copy()
    ignored[[2, 5]] = -100
    targets = {"labels": (labels, None), "ignored-labels": (ignored, -100),
               "probabilities": (fsm.softmax(rng.normal(size=(12, C))).astype(dtype), None)}
    return x, targets


def check_cross_entropy(client, x, target, ignore_index, class_chunks, weighted):
    """Every reduction, with the gradient, computed together on the cluster,
    against fastsoftmax.cross_entropy."""
    dx = da.from_array(x, chunks=(4, class_chunks))
    dtarget = da.from_array(target, chunks=5)      # chunks unlike the logits'
    lazy, want = [], []
    for reduction in ("none", "sum", "mean"):
        kwargs = dict(ignore_index=ignore_index, reduction=reduction, return_grad=True,
                      weight=np.linspace(0.5, 2.0, C) if weighted else None,
                      label_smoothing=0.1, temperature=0.7)
        lazy += fsd.cross_entropy(dx, dtarget, **kwargs)
        want += fsm.cross_entropy(x, target, **kwargs)
    for y, got, expected in zip(lazy, client.compute(lazy, sync=True), want):
        assert y.shape == np.shape(expected)
        assert_matches(got, expected, x.dtype)


@pytest.mark.parametrize("weighted", [False, True], ids=["", "weight"])
@pytest.mark.parametrize("kind", ["labels", "ignored-labels", "probabilities"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy(client, dtype, kind, weighted):
    x, targets = logits_and_targets(dtype)
    check_cross_entropy(client, x, *targets[kind], class_chunks=C, weighted=weighted)


@pytest.mark.parametrize("kind", ["ignored-labels", "probabilities"])
def test_cross_entropy_rechunks_a_chunked_class_axis(client, kind):
    x, targets = logits_and_targets(np.float32)
    check_cross_entropy(client, x, *targets[kind], class_chunks=3, weighted=True)


@pytest.mark.parametrize("dtype", [np.float16, np.int32])
def test_cross_entropy_dtype_policy(client, dtype):
    x, targets = logits_and_targets(np.float64)
    x = np.nan_to_num(x * 3, posinf=30, neginf=-30).astype(dtype)
    labels, _ = targets["labels"]
    loss, grad = fsd.cross_entropy(da.from_array(x, chunks=(4, 3)), labels, return_grad=True)
    want_loss, want_grad = fsm.cross_entropy(x, labels, return_grad=True)
    assert loss.dtype == want_loss.dtype and grad.dtype == want_grad.dtype
    got_loss, got_grad = compute(client, loss), compute(client, grad)
    assert got_loss.dtype == want_loss.dtype and got_grad.dtype == want_grad.dtype
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-6)
    np.testing.assert_allclose(got_grad.astype(float), want_grad.astype(float),
                               rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("weight", [None, np.zeros(C)], ids=["all-ignored", "zero-weight"])
def test_cross_entropy_mean_over_no_weight(client, weight):
    """NaN loss; NaN gradient for the counted samples, 0 for the ignored (PyTorch)."""
    x, _ = logits_and_targets(np.float64)
    target = np.full(12, -100)
    if weight is not None:
        target[3] = 1
    kwargs = dict(ignore_index=-100, weight=weight, return_grad=True)
    loss, grad = fsd.cross_entropy(da.from_array(x, chunks=(5, C)), target, **kwargs)
    want_loss, want_grad = fsm.cross_entropy(x, target, **kwargs)
    np.testing.assert_array_equal(compute(client, loss), want_loss)
    np.testing.assert_array_equal(compute(client, grad), want_grad)


def test_cross_entropy_class_axis_1(client):
    rng = np.random.default_rng(7)
    x, labels = rng.normal(size=(4, C, 5)), rng.integers(0, C, (4, 5))
    loss = fsd.cross_entropy(da.from_array(x, chunks=(2, C, 2)), labels, axis=1, reduction="none")
    assert_matches(compute(client, loss), fsm.cross_entropy(x, labels, axis=1, reduction="none"),
                   np.float64)


def test_cross_entropy_without_grad_is_one_lazy_array(client):
    x, targets = logits_and_targets(np.float64)
    labels, _ = targets["labels"]
    loss = fsd.cross_entropy(da.from_array(x, chunks=(4, C)), labels)
    assert isinstance(loss, da.Array) and loss.shape == ()
    assert_matches(compute(client, loss), fsm.cross_entropy(x, labels), np.float64)


def test_cross_entropy_keeps_the_chunks_of_a_class_axis_in_one_chunk():
    x = da.zeros((12, C), chunks=(4, C))
    _, grad = fsd.cross_entropy(x, np.zeros(12, int), return_grad=True)
    assert grad.chunks == x.chunks


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(target=np.zeros(5, int)), ValueError, "shape"),
    (dict(target=np.zeros((12, 3))), ValueError, "shape"),
    (dict(reduction="avg"), ValueError, "reduction"),
    (dict(weight=np.ones(3)), ValueError, "weight"),
    (dict(target=np.zeros(12, "U1")), TypeError, "target"),
    (dict(temperature=0), ValueError, "temperature"),
])
def test_cross_entropy_errors_are_raised_eagerly(kwargs, error, match):
    kwargs = dict(dict(target=np.zeros(12, int)), **kwargs)
    with pytest.raises(error, match=match):
        fsd.cross_entropy(da.zeros((12, C), chunks=4), **kwargs)


def test_cross_entropy_label_out_of_range_raises_at_compute_time(client):
    loss = fsd.cross_entropy(da.zeros((12, C), chunks=4), np.full(12, C))
    with pytest.raises(ValueError, match="outside"):
        compute(client, loss)


# ---- the graph ------------------------------------------------------------------------

class TaskResults(Callback):
    """Records (layer name, shape, dtype) of every array a task returns."""

    def __init__(self):
        super().__init__()
        self.results = []

    def _posttask(self, key, result, dsk, state, worker_id):
        if isinstance(result, np.ndarray):
            self.results.append((key[0] if isinstance(key, tuple) else key, result.shape,
                                 result.dtype))


def task_results(y):
    """What each task of y's graph returns, on the synchronous scheduler, less the
    final task that concatenates the blocks for the caller."""
    with TaskResults() as cb:
        y.compute(scheduler="sync")
    return [r for r in cb.results if not r[0].startswith("finalize")]


@ALL
def test_no_task_holds_a_whole_row(func):
    x, dx = arrays(np.float32, "chunked", -1)
    y = getattr(fsd, func)(dx)
    if func != "logsumexp":
        assert y.chunks == dx.chunks
    results = task_results(y)
    assert len(results) >= dx.npartitions
    for name, shape, _ in results:
        assert len(shape) < 2 or shape[-1] <= CHUNK, (name, shape)


@ALL
def test_float32_stays_float32(func):
    x, dx = arrays(np.float32, "chunked", 0)
    dtypes = {dt for _, _, dt in task_results(getattr(fsd, func)(dx, axis=0))}
    # data blocks and the (max, sum-of-exp) pairs: float32 fields
    assert all(dt == np.float32 or dt.fields and all(f[0] == np.float32 for f in dt.fields.values())
               for dt in dtypes), dtypes


# Tasks per chunk of the input, bounds for any number of chunks: softmax and
# log_softmax run four per chunk (the block's kernel call, its pair, the
# reduction's first step, the rescaling) plus the merge tree (at most 1/3 per
# chunk with dask's split_every=4); logsumexp two per chunk plus the tree and
# one per row block.
TASKS_PER_CHUNK = {"softmax": (4, 5), "log_softmax": (4, 5), "logsumexp": (2, 3)}


@ALL
def test_task_count_is_linear_in_chunks(func):
    low, high = TASKS_PER_CHUNK[func]
    for blocks in (2, 4, 16, 64):
        x = da.zeros((6, CHUNK * blocks), chunks=(3, CHUNK), dtype=np.float32)
        tasks = len(getattr(fsd, func)(x).__dask_graph__()) - len(x.__dask_graph__())
        assert low * x.npartitions <= tasks <= high * x.npartitions, (blocks, tasks)


def test_axis_in_one_chunk_is_one_task_per_block():
    x = da.zeros((6, 40), chunks=(3, 40))
    for func in FUNCTIONS:
        assert len(getattr(fsd, func)(x).__dask_graph__()) - len(x.__dask_graph__()) == 2


def test_results_are_lazy():
    x = da.from_delayed(_explode(), shape=(3, 4), dtype=np.float64)
    for func in FUNCTIONS:
        assert isinstance(getattr(fsd, func)(x), da.Array)


def _explode():
    import dask

    @dask.delayed
    def explode():
        raise AssertionError("computed")
    return explode()


# ---- errors, checked when the graph is built ---------------------------------------------

@ALL
def test_out_is_a_type_error(func):
    with pytest.raises(TypeError, match="does not support out="):
        getattr(fsd, func)(da.zeros(4), out=np.zeros(4))


@pytest.mark.parametrize("kwargs", [{"b": np.ones(4)}, {"return_sign": True}])
def test_logsumexp_b_and_return_sign_are_not_implemented(kwargs):
    with pytest.raises(NotImplementedError, match="b= or return_sign="):
        fsd.logsumexp(da.zeros(4), **kwargs)


def test_logsumexp_complex_is_not_implemented():
    with pytest.raises(NotImplementedError, match="complex"):
        fsd.logsumexp(da.zeros(4, dtype=np.complex128))


@pytest.mark.parametrize("call, error, match", [
    (lambda f, x: f(x.astype(object)), TypeError, "dtype"),
    (lambda f, x: f(x, axis=2), np.exceptions.AxisError, "out of bounds"),
    (lambda f, x: f(x, axis=(1, 1)), ValueError, "repeated axis"),
    (lambda f, x: f(x, dtype=np.int32), TypeError, "dtype"),
    (lambda f, x: f(x, num_threads=0), ValueError, "num_threads"),
])
@ALL
def test_errors_are_raised_eagerly_as_in_numpy(func, call, error, match):
    with pytest.raises(error, match=match):
        call(getattr(fsd, func), da.zeros((3, 4), chunks=2))
    with pytest.raises(error, match=match):
        call(getattr(fsm, func), np.zeros((3, 4)))


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
def test_complex_softmax_is_a_type_error(func):
    with pytest.raises(TypeError, match="complex"):
        getattr(fsd, func)(da.zeros(4, dtype=np.complex64))


# ---- packaging -----------------------------------------------------------------------------

def test_importing_fastsoftmax_does_not_import_dask():
    code = ("import sys, fastsoftmax; "
            "assert not {'dask', 'distributed'} & set(sys.modules), 'dask imported'")
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=os.path.dirname(os.path.dirname(fsm.__file__)))


@ALL
def test_numpy_api_hands_dask_arrays_to_fastsoftmax_dask(client, func):
    x, dx = arrays(np.float64, "chunked", -1)
    y = getattr(fsm, func)(dx, axis=-1)
    assert isinstance(y, da.Array)
    assert_matches(compute(client, y), getattr(fsm, func)(x), np.float64)


def test_numpy_api_hands_dask_logits_to_fastsoftmax_dask(client):
    x, targets = logits_and_targets(np.float64)
    labels, _ = targets["labels"]
    loss, grad = fsm.cross_entropy(da.from_array(x, chunks=(4, C)), labels, return_grad=True)
    assert isinstance(loss, da.Array) and isinstance(grad, da.Array)
    assert_matches(compute(client, grad), fsm.cross_entropy(x, labels, return_grad=True)[1],
                   np.float64)
