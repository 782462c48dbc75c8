"""The machine-learning functions (DESIGN §1, issue 5): temperature, where= masks,
softmax_backward / log_softmax_backward and cross_entropy.

Three oracles: the wide-precision references of tests/ml_reference.py (checked
against PyTorch here first), fastsoftmax against those references with tight
bounds, and fastsoftmax against PyTorch directly (float64 autograd, masked_fill,
F.cross_entropy with every option).  The torch comparisons skip when torch is
not installed; the reference comparisons always run.
"""

import numpy as np
import pytest

import fastsoftmax as fsm
from fastsoftmax import _reference

from . import ml_reference as ref
from . import util

inf, nan = np.inf, np.nan
MAPS = ("softmax", "log_softmax")
FUNCS = {name: getattr(fsm, name) for name in util.FUNCTIONS}
TEMPERATURES = (0.07, 0.5, 1.0, 3.0, 1e-3)
REDUCTIONS = ("none", "mean", "sum")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed: torch comparisons skipped")


def _F(torch):
    import torch.nn.functional as F
    return F


def _t(torch, a):
    """A torch tensor of a's values (native order, contiguous: torch takes no other)."""
    a = np.asarray(a)
    return torch.from_numpy(np.ascontiguousarray(a.astype(a.dtype.newbyteorder("="))))


def _normal(shape, seed, scale=3.0, dtype=np.float64):
    return np.random.default_rng(seed).normal(0.0, scale, shape).astype(dtype)


def _tol64(x, T=1.0):
    """(rtol, atol) for comparing two float64 computations of f(x / T): torch rounds
    x / T, an error of eps * |x / T| in the exponent (relative in softmax, absolute in
    the logs)."""
    big = 8 * np.finfo(np.float64).eps * max(1.0, float(np.max(np.abs(x), initial=0)) / T)
    return max(1e-12, big), big


# ---- masks ---------------------------------------------------------------------------------

def masks(shape, axis, rng):
    """(name, where) for an array of `shape` and a softmax `axis`: full random masks with
    an all-False and an all-True row, all True / all False, the broadcast shapes of
    attention ((K,), (B,1,K), constant along the axis, 0-d), and non-contiguous
    layouts of a full mask (strided, F, negative stride, stride 0)."""
    nd = len(shape)
    full = rng.random(shape) < 0.6
    if nd and shape[axis] and full.size:
        rows = np.moveaxis(full, axis, -1).reshape(-1, shape[axis])
        rows[0] = False
        if rows.shape[0] > 1:
            rows[-1] = True
        full = np.moveaxis(rows.reshape(np.moveaxis(full, axis, -1).shape), -1, axis)
    yield "full random", full
    yield "all True", np.ones(shape, bool)
    yield "all False", np.zeros(shape, bool)
    yield "0-d True", np.array(True)
    if nd:
        yield "last axis (K,)", rng.random(shape[-1:]) < 0.7
        keep = rng.random(shape[:-1] + (1,)) < 0.5
        yield "constant along last axis (...,1)", keep
    if nd == 3:
        yield "(B,1,K)", rng.random((shape[0], 1, shape[2])) < 0.6
        yield "(1,Q,1)", rng.random((1, shape[1], 1)) < 0.6
    if nd >= 1 and full.size:
        yield "strided", util._spread(full, -1)
        yield "negative stride", np.ascontiguousarray(full[..., ::-1])[..., ::-1]
        if nd >= 2:
            yield "F", np.asfortranarray(full)
            yield "stride 0 (broadcast_to)", np.broadcast_to(full[:1], shape)


def _hide(x, where, value):
    """x with `value` written at every position where the mask is False."""
    x = np.array(x)
    x[~np.broadcast_to(where, x.shape)] = value
    return x


# =============================================================================================
# 1. The references against PyTorch (float64)
# =============================================================================================

@pytest.mark.parametrize("T", TEMPERATURES)
def test_reference_temperature_against_torch(torch, T):
    x = _normal((4, 7, 9), 1)
    for axis in range(3):
        tx = _t(torch, x) / T
        rtol, atol = _tol64(x, T)
        np.testing.assert_allclose(ref.softmax(x, axis, T), torch.softmax(tx, axis).numpy(),
                                   rtol=rtol, atol=1e-300)
        np.testing.assert_allclose(ref.log_softmax(x, axis, T), torch.log_softmax(tx, axis).numpy(),
                                   rtol=1e-12, atol=atol)
        np.testing.assert_allclose(ref.logsumexp(x, axis, temperature=T),
                                   torch.logsumexp(tx, axis).numpy(), rtol=1e-12, atol=atol)


def test_reference_masks_against_torch(torch):
    rng = np.random.default_rng(2)
    x = _normal((3, 5, 8), 2)
    for axis in (-1, 1):
        for name, w in masks(x.shape, axis, rng):
            wb = np.broadcast_to(w, x.shape)
            tx = _t(torch, x).masked_fill(~_t(torch, wb), -inf)
            any_true = wb.any(axis=axis, keepdims=True)
            rtol, atol = _tol64(x, 0.5)
            for func in MAPS:
                got = getattr(ref, func)(x, axis, 0.5, w)
                expected = getattr(torch, func)(tx / 0.5, axis).numpy()
                # torch gives NaN on rows with no True entry; the contract is 0 / -inf there.
                expected = np.where(any_true, expected, 0.0 if func == "softmax" else -inf)
                np.testing.assert_allclose(got, expected, rtol=rtol,
                                           atol=1e-300 if func == "softmax" else atol,
                                           err_msg=f"{func} {name} axis={axis}")
            np.testing.assert_allclose(ref.logsumexp(x, axis, temperature=0.5, where=w),
                                       torch.logsumexp(tx / 0.5, axis).numpy(), rtol=1e-12, atol=atol,
                                       err_msg=f"logsumexp {name} axis={axis}")


@pytest.mark.parametrize("T", [1.0, 0.07, 3.0])
def test_reference_backward_against_torch_autograd(torch, T):
    x, g = _normal((4, 6, 7), 3), _normal((4, 6, 7), 4, 1.0)
    for axis in range(3):
        for func, back in (("softmax", ref.softmax_backward), ("log_softmax", ref.log_softmax_backward)):
            tx = _t(torch, x).requires_grad_(True)
            y = getattr(torch, func)(tx / T, axis)
            (y * _t(torch, g)).sum().backward()
            got = back(getattr(ref, func)(x, axis, T), g, axis, T)
            np.testing.assert_allclose(got, tx.grad.numpy(), rtol=1e-10, atol=1e-14,
                                       err_msg=f"{func} axis={axis}")


def _torch_cross_entropy(torch, logits, target, axis=-1, temperature=1.0, weight=None,
                         ignore_index=None, label_smoothing=0.0, reduction="mean"):
    """F.cross_entropy in float64 with the class axis moved to torch's dim 1; (loss, grad)
    with grad = d loss / d logits (of the sum for reduction='none')."""
    F = _F(torch)
    logits = np.asarray(logits, np.float64)
    target = np.asarray(target)
    prob = target.shape == logits.shape
    if logits.ndim == 1:    # unbatched: as a batch of one (torch's own unbatched path is buggy)
        loss, grad = _torch_cross_entropy(torch, logits[None], target[None], -1, temperature, weight,
                                          ignore_index, label_smoothing, reduction)
        return (loss[0] if reduction == "none" else loss), grad[0]
    ax = axis % logits.ndim
    moved = np.moveaxis(logits, ax, 1) if logits.ndim > 1 else logits
    tl = _t(torch, moved).requires_grad_(True)
    if prob:
        tt = _t(torch, (np.moveaxis(target, ax, 1) if logits.ndim > 1 else target).astype(np.float64))
    else:
        tt = _t(torch, target.astype(np.int64))
    tw = None if weight is None else _t(torch, np.asarray(weight, np.float64))
    loss = F.cross_entropy(tl / temperature, tt, weight=tw,
                           ignore_index=-100 if ignore_index is None else ignore_index,
                           reduction=reduction, label_smoothing=label_smoothing)
    loss.sum().backward()
    grad = tl.grad.numpy()
    grad = np.moveaxis(grad, 1, ax) if logits.ndim > 1 else grad
    return loss.detach().numpy(), grad


def _ce_case(kind, shape, axis, seed, ignore_index=None, dtype=np.float64, C=None):
    """(logits, target) of a cross-entropy test: labels (some equal to ignore_index) or
    probability rows (normalized along axis)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, shape).astype(dtype)
    ax = axis % len(shape)
    C = shape[ax]
    if kind == "prob":
        q = rng.random(shape)
        return logits, (q / q.sum(axis=ax, keepdims=True)).astype(dtype)
    label_shape = shape[:ax] + shape[ax + 1:]
    t = np.asarray(rng.integers(0, C, label_shape))
    if ignore_index is not None and t.size:
        t.reshape(-1)[::3] = ignore_index
    return logits, t


# (shape, axis): 2-D rows, torch's (N, C, d1) layout, class axis 0, unbatched (C,).
# The last three have enough short rows for the kernels' transposed tiles (rows
# of at most 48 classes, 64 at a time with AVX-512, 16 with the generic path).
CE_LAYOUTS = [((6, 5), -1), ((4, 5, 3), 1), ((5, 7), 0), ((5,), 0), ((150, 7), -1), ((3, 10, 50), 1),
              ((130, 45), -1)]
CE_OPTIONS = [(kind, weighted, ignore, smoothing)
              for kind in ("index", "prob") for weighted in (False, True)
              for ignore in (None, 2, -100) for smoothing in (0.0, 0.1)
              if not (kind == "prob" and ignore is not None)]


def _ce_ids(p):
    kind, weighted, ignore, smoothing = p
    return f"{kind}-w{int(weighted)}-ign{ignore}-ls{smoothing}"


@pytest.mark.parametrize("layout", CE_LAYOUTS, ids=str)
@pytest.mark.parametrize("options", CE_OPTIONS, ids=_ce_ids)
def test_reference_cross_entropy_against_torch(torch, options, layout):
    kind, weighted, ignore, smoothing = options
    shape, axis = layout
    logits, target = _ce_case(kind, shape, axis, 5, ignore)
    C = shape[axis]
    weight = np.random.default_rng(6).uniform(0.5, 2.0, C) if weighted else None
    for reduction in REDUCTIONS:
        for T in (1.0, 0.5):
            kw = dict(axis=axis, temperature=T, weight=weight, ignore_index=ignore,
                      label_smoothing=smoothing, reduction=reduction)
            loss, grad = ref.cross_entropy(logits, target, return_grad=True, **kw)
            tloss, tgrad = _torch_cross_entropy(torch, logits, target, **kw)
            np.testing.assert_allclose(loss, tloss, rtol=1e-12, atol=1e-15, err_msg=str(kw))
            np.testing.assert_allclose(grad, tgrad, rtol=1e-10, atol=1e-15, err_msg=str(kw))


def test_reference_cross_entropy_edge_cases_against_torch(torch):
    """Label smoothing 1, a zero class weight, unnormalized probabilities, an all-ignored
    batch (mean: NaN, gradient 0) and an empty batch."""
    logits, t = _ce_case("index", (6, 4), -1, 7)
    w = np.array([1.0, 0.0, 2.0, 0.5])
    cases = [(logits, t, dict(label_smoothing=1.0)),
             (logits, t, dict(weight=w, label_smoothing=0.3)),
             (logits, np.random.default_rng(8).random((6, 4)) * 3, dict(weight=w, reduction="sum")),
             (logits, np.full(6, 1), dict(ignore_index=1, reduction="mean")),
             (logits, np.full(6, 1), dict(ignore_index=1, reduction="mean", label_smoothing=0.2)),
             (logits, np.full(6, 1), dict(ignore_index=1, reduction="sum")),
             (np.zeros((0, 4)), np.zeros(0, np.int64), dict(reduction="mean")),
             (np.zeros((0, 4)), np.zeros(0, np.int64), dict(reduction="sum")),
             (np.zeros((0, 4)), np.zeros((0, 4)), dict(reduction="mean"))]
    for x, target, kw in cases:
        for T in (1.0, 0.3):
            loss, grad = ref.cross_entropy(x, target, temperature=T, return_grad=True, **kw)
            tloss, tgrad = _torch_cross_entropy(torch, x, target, temperature=T, **kw)
            np.testing.assert_allclose(loss, tloss, rtol=1e-12, atol=1e-15, err_msg=str(kw))
            np.testing.assert_allclose(grad, tgrad, rtol=1e-10, atol=1e-15, err_msg=str(kw))


def test_reference_cross_entropy_gradient_by_finite_differences():
    """The reference's analytic gradient is the derivative of its loss (no torch needed)."""
    logits, t = _ce_case("index", (3, 4), -1, 9, ignore_index=2)
    w = np.array([0.5, 1.5, 1.0, 2.0])
    for kw in (dict(weight=w, ignore_index=2, label_smoothing=0.2),
               dict(weight=w, reduction="sum", temperature=0.4)):
        loss, grad = ref.cross_entropy(logits, t, return_grad=True, **kw)
        h = 1e-6
        fd = np.empty_like(logits)
        for i in np.ndindex(logits.shape):
            up, down = logits.copy(), logits.copy()
            up[i] += h
            down[i] -= h
            fd[i] = (ref.cross_entropy(up, t, **kw) - ref.cross_entropy(down, t, **kw)) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


# =============================================================================================
# 2. temperature
# =============================================================================================

_CACHE = {}


def _check_map(func, got, x, axis, T=1.0, where=None, what="", out_dtype=None):
    ref.check(func, got, x, axis, T, where, what, out_dtype)


def _check_lse(got, x, axis, T=1.0, where=None, what="", keepdims=False):
    ref.check("logsumexp", got, x, axis, T, where, what, keepdims=keepdims)


def _check(func, got, x, axis, T=1.0, where=None, what=""):
    ref.check(func, got, x, axis, T, where, what)


@pytest.mark.parametrize("T", TEMPERATURES)
@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_temperature_against_reference(func, dtype, T):
    """Random rows of several lengths, every axis; well-conditioned, so the bound is
    util's plus the rounding of x / T."""
    f = FUNCS[func]
    for shape in [(7,), (5, 13), (3, 4, 5), (2, 70), (3, 1030)]:
        x = _normal(shape, len(shape) + shape[-1], 3.0, dtype)
        for axis in util.axes_for(x.ndim):
            _check(func, f(x, axis=axis, temperature=T), x, axis, T, None,
                   f"{func}({dtype}{shape}, axis={axis}, temperature={T})")


@pytest.mark.parametrize("T", [0.07, 3.0])
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_temperature_over_the_array_generator(func, T):
    """Every dtype, layout and special value of the generator, with a temperature."""
    f = FUNCS[func]
    n = 0
    for desc, x in util.arrays(dtypes=util.FLOATS + (np.dtype(np.int32),),
                               shapes=[(), (0,), (3, 0), (1,), (7,), (5, 13), (3, 4, 5)]):
        before = util.digest(x)
        for axis in {0: (None,), 1: (-1,), 2: (-1, 0), 3: (1, None)}[x.ndim]:
            _check(func, f(x, axis=axis, temperature=T), x, axis, T, None,
                   f"{func}({desc}, axis={axis}, temperature={T})")
            n += 1
        assert util.digest(x) == before, f"{func} modified {desc}"
    assert n > 200


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_temperature_where_x_minus_max_overflows(func):
    """Entries near both ends of the dtype's range, so that x - max overflows
    while (x - max) / T, with T a quarter of the largest value, lies in
    [-8, 0]: the result is that of (x - max) / T, not of -inf.  Every path: a
    row, groups of rows, short-row tiles, axis 0 (tiles, and strips with
    AVX-512), a long row split across threads, rows with a mask."""
    f = FUNCS[func]
    rng = np.random.default_rng(11)
    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        if dtype == np.float64 and util.LONGDOUBLE == np.float64:
            continue        # no wider dtype for the reference
        big = float(np.finfo(dtype).max) * 0.9
        T = big / 4
        for shape, axis in (((5,), -1), ((40, 9), -1), ((130, 20), -1), ((30, 700), -1), ((40, 300), 0),
                            ((1000, 70), 0), ((2, 300_000), -1)):
            x = (rng.uniform(-1, 1, shape) * big).astype(dtype)
            x.flat[0], x.flat[-1] = big, -big
            what = f"{func}({dtype}{shape}, axis={axis}, temperature={T:.3g})"
            _check(func, f(x, axis=axis, temperature=T), x, axis, T, None, what)
            if shape[-1] < 1000:
                w = rng.random(shape) < 0.7
                _check(func, f(x, axis=axis, temperature=T, where=w), x, axis, T, w, what + " where=")


def test_cross_entropy_where_x_minus_max_overflows():
    """cross_entropy and its gradient with x - max beyond the dtype's range and
    (x - max) / T moderate: rows one at a time and short rows (whose tiles
    decline them), labels and probabilities."""
    rng = np.random.default_rng(12)
    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        if dtype == np.float64 and util.LONGDOUBLE == np.float64:
            continue
        big = float(np.finfo(dtype).max) * 0.9
        T = big / 4
        for shape in ((5, 40), (130, 10)):
            x = (rng.uniform(-1, 1, shape) * big).astype(dtype)
            x[:, 0], x[:, 1] = big, -big
            labels = rng.integers(0, shape[1], shape[0])
            probs = rng.random(shape)
            for target in (labels, probs / probs.sum(axis=1, keepdims=True)):
                loss, grad = fsm.cross_entropy(x, target, temperature=T, return_grad=True)
                ref.check_cross_entropy(loss, grad, x, target, f"{dtype}{shape} T={T:.3g}", temperature=T)


def test_temperature_one_is_the_plain_function():
    x = _normal((6, 40), 10, 3.0, np.float32)
    for func in util.FUNCTIONS:
        f = FUNCS[func]
        np.testing.assert_array_equal(f(x, temperature=1.0), f(x))
        np.testing.assert_array_equal(f(x, temperature=1), f(x))


@pytest.mark.parametrize("T", [0.5, 2.0, 0.25])
def test_power_of_two_temperature_as_accurate_as_no_temperature(T):
    """x / T is exact for a power-of-two T: held to util's bounds of the plain function
    of x / T, without the allowance for rounding x / T."""
    for dtype in util.FLOATS:
        x = _normal((5, 33), 11, 3.0, dtype)
        for func in util.FUNCTIONS:
            util.ASSERT_CLOSE[func](FUNCS[func](x, temperature=T), util.reference(func, x / dtype.type(T), -1),
                                    dtype, f"{func} {dtype} T={T}")


@pytest.mark.parametrize("T", [1e-3, 1e-6, 1e-30, 1e-300, 1e-310])
@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
def test_tiny_temperature_is_argmax(dtype, T):
    """T -> 0: the one-hot argmax, ties sharing equally, also where x / T overflows
    (the exact value of softmax(x / T) is still the one-hot)."""
    x = np.array([[1.0, 3.0, 2.0, -1.0],
                  [1.0, 3.0, 3.0, 2.0],
                  [-5.0, -3.0, -4.0, -3.0],
                  [7.0, 7.0, 7.0, 7.0]], dtype)
    expected = np.array([[0, 1, 0, 0], [0, .5, .5, 0], [0, .5, 0, .5], [.25] * 4])
    got = fsm.softmax(x, temperature=T)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, expected.astype(dtype))
    np.testing.assert_array_equal(fsm.softmax(x.T, axis=0, temperature=T), expected.T.astype(dtype))
    logp = fsm.log_softmax(x, temperature=T)
    np.testing.assert_allclose(logp[expected > 0], np.log(expected[expected > 0]),
                               rtol=4 * np.finfo(dtype).eps)
    # (x - max) / T: huge or -inf, never NaN
    assert np.all(logp[expected == 0] < -1e2)
    _check_map("log_softmax", logp, x, -1, T, None, f"log_softmax T={T}")
    _check_lse(fsm.logsumexp(x, temperature=T), x, -1, T, None, f"logsumexp T={T}")


def test_temperature_where_x_over_T_overflows():
    """(x - max) / T is moderate although x / T overflows: the exact values, not the
    softmax of infinities."""
    for dtype, big in ((np.float32, 3.0e38), (np.float64, 1.6e308)):
        x = np.array([big, big * (1 - 1e-7), 0.0], dtype)
        T = 0.5
        _check_map("softmax", fsm.softmax(x, temperature=T), x, -1, T, None, f"softmax {dtype}")
        _check_map("log_softmax", fsm.log_softmax(x, temperature=T), x, -1, T, None, f"log_softmax {dtype}")
        assert fsm.logsumexp(x, temperature=T) == inf


# T whose reciprocal overflows the kernels' type (float32: T < 2.9e-39; float64: a
# subnormal T < 5.6e-309), the last just below that threshold.  On rows that spread
# over a few T, (x - max) / T is moderate: not the limit T -> 0.
TINY_TEMPERATURES = {np.float32: (1e-40, 2.0**-149, 2.5e-39), np.float64: (1e-320, 2.0**-1074, 5e-309)}
TINY_T_CASES = pytest.mark.parametrize("dtype, T", [(np.dtype(dt), T) for dt, Ts in TINY_TEMPERATURES.items()
                                                    for T in Ts], ids=lambda v: f"{v:.3g}" if isinstance(v, float) else str(v))


def _tiny_T_rows(shape, T, dtype, seed, offset=0.0):
    """(q + offset) * T rounded to dtype, q ~ N(0, 9): (x - max) / T of a few units
    (q rounded to the multiples of the dtype's smallest subnormal / T)."""
    q = np.random.default_rng(seed).normal(0.0, 3.0, shape) + offset
    return (q * T).astype(dtype)


def _tiny_T_paths(T, dtype):
    """(description, x, axis, where) for each path of the kernels."""
    rng = np.random.default_rng(80)
    yield "rows (5, 13)", _tiny_T_rows((5, 13), T, dtype, 81), -1, None
    yield "rows (5, 13), max / T near 8", _tiny_T_rows((5, 13), T, dtype, 82, 8.0), -1, None
    yield "rows (4, 9), max / T near -9", _tiny_T_rows((4, 9), T, dtype, 83, -12.0), -1, None
    yield "short rows (80, 7)", _tiny_T_rows((80, 7), T, dtype, 84, 2.0), -1, None
    yield "axis 0 of (13, 70)", _tiny_T_rows((13, 70), T, dtype, 85, -3.0), 0, None
    # Long columns, their max growing down the rows (axis 0 of long columns
    # goes in strips of runs where the kernels have them: a running max).
    q = rng.uniform(-6.0, 0.0, (2000, 64)) - np.linspace(6.0, 0.0, 2000)[:, None]
    yield "axis 0 of (2000, 64), the max growing along the columns", (q * T).astype(dtype), 0, None
    yield "strided rows (3, 80)[:, ::2]", _tiny_T_rows((3, 80), T, dtype, 86)[:, ::2], -1, None
    yield "masked rows (6, 40)", _tiny_T_rows((6, 40), T, dtype, 87, 1.0), -1, rng.random((6, 40)) < 0.6
    yield "masked short rows (80, 7)", _tiny_T_rows((80, 7), T, dtype, 88), -1, rng.random((80, 7)) < 0.6
    # The max grows from block to block (of 1024): the running sum is rescaled.
    q = rng.uniform(-6.0, 0.0, 3000) - np.repeat([3.0, 1.5, 0.0], 1000)
    yield "a row of 3000, its max in the last block", (q * T).astype(dtype), -1, None
    # Split in chunks of 2^16 whose maxima grow: merged with exp((m_c - m) / T).
    n = 2**18 + 3
    q = rng.uniform(-6.0, 0.0, n) - 1.5 * (4 - np.arange(n) // 2**16)
    q[-1] = 0.0
    yield "a long row of 2^18 + 3, in chunks", (q * T).astype(dtype), -1, None


@TINY_T_CASES
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_temperature_whose_reciprocal_overflows(func, dtype, T):
    """(x - max) / T formed where 1/T overflows (float32 computes in float64 then),
    on every path of the kernels: last axis, short rows, axis 0, strided, masked,
    a row of several blocks, a long row split in chunks; the reference divides by T."""
    f = FUNCS[func]
    for desc, x, axis, where in _tiny_T_paths(T, dtype):
        what = f"{func}({dtype} {desc}, temperature={T})"
        got = f(x, axis=axis, temperature=T, where=where)
        if func != "logsumexp":
            _check_map(func, got, x, axis, T, where, what)
            continue
        _check_lse(got, x, axis, T, where, what)
        got = f(x, axis=axis, temperature=T, where=where, keepdims=True)
        _check_lse(got, x, axis, T, where, what + " keepdims", keepdims=True)


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_half_input_with_temperature_whose_reciprocal_overflows(func):
    """float16 and bfloat16 input compute in float32, which 1/T overflows as for
    float32 input.  bfloat16 differences can be a few T (its subnormals go down to
    9e-41); float16 ones are at least 6e-8, so (x - max) / T is huge: visible in
    a float32 result (dtype=), and +-inf or 0 in float16."""
    f = FUNCS[func]
    T = 1e-40
    x16 = (np.array([[3, 0, -1, -2, 1], [0, 0, -5, -1, -3]]) * 2.0**-24).astype(np.float16)
    cases = [(x16, None), (x16, np.float32)]
    if util.BFLOAT16 is not None:
        xbf = (np.random.default_rng(89).normal(0.0, 3.0, (80, 7)) * T).astype(util.BFLOAT16)
        cases += [(xbf, None), (xbf[:5], np.float32)]
    for x, dtype in cases:
        what = f"{func}({x.dtype}, dtype={dtype}, temperature={T})"
        got = f(x, temperature=T, dtype=dtype)
        ref.check(func, got, x, -1, T, None, what, out_dtype=dtype)


def test_temperature_whose_reciprocal_overflows_out_and_dtype():
    """float32 input computed in float64 at such T: out= (also out=x) receives the
    result in its dtype, dtype= still names the result's dtype."""
    T = 1e-40
    x = _tiny_T_rows((6, 9), T, np.float32, 90)
    for func in MAPS:
        f = FUNCS[func]
        expected = f(x, temperature=T)
        assert expected.dtype == np.float32
        _check_map(func, expected, x, -1, T, None, func)
        out = np.full_like(x, np.nan)
        assert f(x, temperature=T, out=out) is out
        np.testing.assert_array_equal(out, expected)
        y = x.copy()
        assert f(y, temperature=T, out=y) is y
        np.testing.assert_array_equal(y, expected)
        out = np.full((9, 6), np.nan, np.float32).T     # another layout
        assert f(x, temperature=T, out=out) is out
        np.testing.assert_array_equal(out, expected)
        got = f(x, temperature=T, dtype=np.float64)
        _check_map(func, got, x, -1, T, None, f"{func} dtype=float64", out_dtype=np.float64)
        got = f(x, temperature=T, dtype=np.float16)
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, expected.astype(np.float16))
    out = np.full(6, np.nan, np.float32)
    assert fsm.logsumexp(x, temperature=T, out=out) is out
    _check_lse(out, x, -1, T, None, "logsumexp out=")
    out = np.full((6, 1), np.nan, np.float32)
    assert fsm.logsumexp(x, temperature=T, out=out, keepdims=True) is out
    _check_lse(out, x, -1, T, None, "logsumexp out= keepdims", keepdims=True)
    # logsumexp's NumPy path (b=, return_sign=, complex) divides in float64 too
    v, sign = fsm.logsumexp(x, temperature=T, b=np.ones(9), return_sign=True)
    assert v.dtype == np.float32 and sign.dtype == np.float32
    _check_lse(v, x, -1, T, None, "logsumexp b=")
    np.testing.assert_array_equal(sign, 1)
    for t in (T, 1e-46):
        got = fsm.logsumexp(x.astype(np.complex64), temperature=t)
        assert got.dtype == np.complex64
        _check_lse(got.real, x, -1, t, None, f"logsumexp complex64, temperature={t}")
        np.testing.assert_array_equal(got.imag, 0)


def test_complex_logsumexp_at_a_subnormal_temperature():
    """complex128 at a subnormal T: each component divided by T (complex division
    by a subnormal number overflows in its scaling and gave inf + nan j)."""
    tiny = np.nextafter(0.0, 1.0)
    x = np.array([6 * tiny + 2j * tiny, 2 * tiny - 4j * tiny, -3 * tiny])
    got = fsm.logsumexp(x, temperature=2 * tiny)      # exactly logsumexp([3 + 1j, 1 - 2j, -1.5])
    expected = _reference.logsumexp(np.array([3 + 1j, 1 - 2j, -1.5]))
    np.testing.assert_allclose(got, expected, rtol=4e-16)
    v, sign = fsm.logsumexp(x.real, temperature=2 * tiny, b=[1.0, -0.5, 2.0], return_sign=True)
    ev, es = _reference.logsumexp(np.array([3.0, 1.0, -1.5]), b=np.array([1.0, -0.5, 2.0]), return_sign=True)
    np.testing.assert_allclose(v, ev, rtol=4e-16)
    assert sign == es


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_temperature_with_offset_rows(func):
    """Rows far from 0 (N(0,4) + 1000): the error is that of the shifted row
    (x - max) / T, as without temperature (DESIGN §5)."""
    for dtype in util.FLOATS:
        x = (_normal((16, 300), 12, 4.0) + 1000).astype(dtype)
        for T in (0.07, 0.5, 3.0):
            _check(func, FUNCS[func](x, temperature=T), x, -1, T, None, f"{func} {dtype} T={T}")


def test_temperature_with_dtype_argument():
    x = _normal((4, 50), 13, 3.0, np.float32)
    for func in MAPS:
        got = FUNCS[func](x, dtype=np.float64, temperature=0.3)
        _check_map(func, got, x, -1, 0.3, None, f"{func} dtype=float64", out_dtype=np.float64)
    got = fsm.logsumexp(x, dtype=np.float64, temperature=0.3)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref.logsumexp(x.astype(np.longdouble), -1, temperature=0.3),
                               rtol=1e-14)


def test_temperature_numpy_scalars_and_ints_accepted():
    x = _normal((3, 9), 14)
    for func in util.FUNCTIONS:
        f = FUNCS[func]
        np.testing.assert_array_equal(f(x, temperature=np.float64(0.5)), f(x, temperature=0.5))
        np.testing.assert_array_equal(f(x, temperature=np.float32(0.5)), f(x, temperature=0.5))
        np.testing.assert_array_equal(f(x, temperature=2), f(x, temperature=2.0))
        np.testing.assert_array_equal(f(x, temperature=np.int64(2)), f(x, temperature=2.0))


@pytest.mark.parametrize("T", [0.07, 1.0, 3.0])
def test_logsumexp_b_and_sign_with_temperature_and_where(T):
    """logsumexp's b= and return_sign= with temperature and a mask."""
    rng = np.random.default_rng(15)
    x = _normal((4, 3, 11), 15)
    b = rng.normal(size=(11,))
    w = rng.random((4, 1, 11)) < 0.7
    for axis in (-1, 1):
        for keepdims in (False, True):
            v, s = fsm.logsumexp(x, axis=axis, b=b if axis == -1 else None, where=w, temperature=T,
                                 keepdims=keepdims, return_sign=True)
            ev, es = ref.logsumexp(ref.wide(x), axis, b=b if axis == -1 else None, keepdims=keepdims,
                                   return_sign=True, temperature=T, where=w)
            np.testing.assert_array_equal(s, es)
            np.testing.assert_allclose(v, ev, rtol=1e-12, atol=1e-12)


# =============================================================================================
# 3. where=
# =============================================================================================

@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_where_against_reference(func, dtype):
    """Every mask shape and layout of masks(), on 1-D, 2-D and 3-D inputs, every int
    axis, with and without temperature."""
    f = FUNCS[func]
    rng = np.random.default_rng(16)
    n = 0
    for shape in [(9,), (6, 13), (3, 5, 8), (2, 3, 70)]:
        x = _normal(shape, 17, 3.0, dtype)
        for axis in range(-1, len(shape) - 1):
            for name, w in masks(shape, axis, rng):
                before = util.digest(w), util.digest(x)
                for T in (1.0, 0.5):
                    what = f"{func}({dtype}{shape}, axis={axis}, where={name}, T={T})"
                    _check(func, f(x, axis=axis, where=w, temperature=T), x, axis, T, w, what)
                    n += 1
                assert (util.digest(w), util.digest(x)) == before, f"{func} modified an input ({name})"
    assert n > 100


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_where_over_the_array_generator(func):
    """A random mask on every dtype, layout and special value of the generator."""
    f = FUNCS[func]
    rng = np.random.default_rng(18)
    for desc, x in util.arrays(dtypes=util.FLOATS + (np.dtype(np.int8),),
                               shapes=[(0,), (3, 0), (1,), (7,), (5, 13), (3, 4, 5)]):
        w = rng.random(x.shape) < 0.6
        for axis in (-1, 0):
            _check(func, f(x, axis=axis, where=w), x, axis, 1.0, w, f"{func}({desc}, axis={axis}, where)")


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_where_exact_values(func):
    """Masked entries: exactly 0 / -inf; rows with no True entry: zeros, -inf, -inf."""
    x = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [5.0, 0.0, 0.0, 1.0]])
    w = np.array([[True, False, True, False], [False] * 4, [True] * 4])
    got = FUNCS[func](x, where=w)
    if func == "softmax":
        e = np.exp([1.0 - 3.0, 0.0])
        expected_row0 = np.array([e[0], 0, e[1], 0]) / e.sum()
        np.testing.assert_allclose(got[0], expected_row0, rtol=1e-14)
        assert got[0, 1] == 0 and got[0, 3] == 0
        np.testing.assert_array_equal(got[1], np.zeros(4))
        np.testing.assert_allclose(got[2], fsm.softmax(x[2]), rtol=1e-14)
    elif func == "log_softmax":
        assert got[0, 1] == -inf and got[0, 3] == -inf
        np.testing.assert_allclose(got[0, [0, 2]], fsm.log_softmax(x[0, [0, 2]]), rtol=1e-14)
        np.testing.assert_array_equal(got[1], np.full(4, -inf))
    else:
        np.testing.assert_allclose(got[0], fsm.logsumexp(x[0, [0, 2]]), rtol=1e-14)
        assert got[1] == -inf
        np.testing.assert_allclose(got[2], fsm.logsumexp(x[2]), rtol=1e-14)


def test_where_on_0d_and_all_false_rows_with_sign():
    """A 0-d input with a 0-d mask (axis=None); logsumexp's sign of an empty row is 0."""
    x = np.float64(2.0)
    assert fsm.softmax(x, axis=None, where=np.array(True)) == 1.0
    assert fsm.softmax(x, axis=None, where=np.array(False)) == 0.0
    assert fsm.log_softmax(x, axis=None, where=np.array(False)) == -inf
    assert fsm.logsumexp(x, axis=None, where=np.array(False)) == -inf
    v, sgn = fsm.logsumexp(np.ones((2, 3)), b=np.array([1.0, -2.0, 0.5]), return_sign=True,
                           where=np.array([[True] * 3, [False] * 3]))
    np.testing.assert_allclose(v, [1 + np.log(0.5), -inf], rtol=1e-14)     # |e * (1 - 2 + 0.5)|
    np.testing.assert_array_equal(sgn, [-1.0, 0.0])


@pytest.mark.parametrize("value", [nan, inf, -inf, 1e308], ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_where_hides_special_values(func, value):
    """A NaN, +inf or huge value at a masked-out position changes nothing (bitwise)."""
    f = FUNCS[func]
    rng = np.random.default_rng(19)
    for dtype in util.FLOATS:
        for shape, axis in (((6, 40), -1), ((3, 4, 50), 1), ((40, 6), 0)):
            x = _normal(shape, 20, 3.0, dtype)
            for name, w in masks(shape, axis, rng):
                if np.all(w):
                    continue
                with np.errstate(over="ignore"):
                    hidden = _hide(x, w, value)
                clean = f(x, axis=axis, where=w, temperature=0.5)
                got = f(hidden, axis=axis, where=w, temperature=0.5)
                np.testing.assert_array_equal(got, clean, err_msg=f"{func} {dtype} {shape} {name}")


@pytest.mark.parametrize("func", MAPS)
def test_where_special_values_among_the_true_entries(func):
    """DESIGN §1's policy holds among the True entries; False entries stay 0 / -inf."""
    x = np.array([[nan, 1.0, 2.0, 0.0], [inf, 1.0, inf, 0.0], [-inf, -inf, 5.0, 0.0],
                  [inf, 1.0, 2.0, 0.0]])
    w = np.array([[True, True, False, True], [True, True, True, False], [True, True, False, False],
                  [False, True, True, True]])
    got = FUNCS[func](x, where=w)
    zero = 0.0 if func == "softmax" else -inf
    if func == "softmax":
        expected = np.array([[nan, nan, 0, nan], [.5, 0, .5, 0], [nan, nan, 0, 0],
                             [0, *fsm.softmax(np.array([1.0, 2.0, 0.0]))]])
    else:
        expected = np.array([[nan, nan, -inf, nan], [-np.log(2), -inf, -np.log(2), -inf],
                             [nan, nan, -inf, -inf],
                             [-inf, *fsm.log_softmax(np.array([1.0, 2.0, 0.0]))]])
    np.testing.assert_array_equal(got[:3], expected[:3])
    np.testing.assert_allclose(got[3], expected[3], rtol=1e-14)
    assert np.all(got[~w] == zero)
    lse = fsm.logsumexp(x, where=w)
    np.testing.assert_array_equal(lse[:3], [nan, inf, -inf])


def test_where_attention_shapes_against_torch(torch):
    """Attention: scores (B, Q, K), a padding mask (B, 1, K) and a causal mask (Q, K),
    against torch's masked_fill + softmax(x / T)."""
    rng = np.random.default_rng(21)
    B, Q, K = 3, 5, 7
    for dtype in util.FLOATS:
        x = _normal((B, Q, K), 22, 3.0, dtype)
        lengths = np.array([7, 3, 1])
        pad = (np.arange(K) < lengths[:, None])[:, None, :]          # (B, 1, K)
        causal = np.tril(np.ones((Q, K), bool))                       # (Q, K)
        for w in (pad, causal, pad & causal, rng.random((B, Q, K)) < 0.5):
            wb = np.broadcast_to(w, x.shape)
            for T in (1.0, 0.07):
                tx = _t(torch, x).masked_fill(~_t(torch, wb), -inf) / T
                rows = wb.any(-1, keepdims=True)
                if dtype == np.float64:
                    rtol, atol = _tol64(x, T)
                    atol_p = 1e-300
                else:
                    rtol, atol, atol_p = 1e-4, 1e-4, 1e-7
                y = fsm.softmax(x, where=w, temperature=T)
                ty = np.where(rows, torch.softmax(tx, -1).numpy(), 0)
                np.testing.assert_allclose(y, ty, rtol=rtol, atol=atol_p)
                lp = fsm.log_softmax(x, where=w, temperature=T)
                tlp = np.where(rows, torch.log_softmax(tx, -1).numpy(), -inf)
                np.testing.assert_allclose(lp, tlp, rtol=1e-12 if dtype == np.float64 else 1e-5, atol=atol)
                np.testing.assert_allclose(fsm.logsumexp(x, where=w, temperature=T),
                                           torch.logsumexp(tx, -1).numpy(),
                                           rtol=1e-12 if dtype == np.float64 else 1e-5, atol=atol)


def test_where_with_tuple_and_none_axis():
    x = _normal((4, 5, 6), 23)
    w = np.random.default_rng(23).random((4, 5, 6)) < 0.5
    for axis in ((1, 2), None, (0, 2)):
        for func in util.FUNCTIONS:
            _check(func, FUNCS[func](x, axis=axis, where=w), x, axis, 1.0, w, f"{func} axis={axis}")


@pytest.mark.parametrize("func", MAPS)
def test_where_with_out(func):
    """out= (new, in place) with a mask: masked entries of out are written too."""
    x = _normal((5, 20), 24)
    w = np.random.default_rng(24).random((1, 20)) < 0.5
    expected = FUNCS[func](x, where=w)
    out = np.full_like(x, 7.0)
    assert FUNCS[func](x, where=w, out=out) is out
    np.testing.assert_array_equal(out, expected)
    y = x.copy()
    assert FUNCS[func](y, where=w, out=y) is y
    np.testing.assert_array_equal(y, expected)


def test_where_logsumexp_out_and_keepdims():
    x = _normal((5, 20), 25)
    w = np.random.default_rng(25).random((5, 20)) < 0.5
    w[2] = False
    out = np.empty((5, 1))
    assert fsm.logsumexp(x, where=w, keepdims=True, out=out) is out
    np.testing.assert_array_equal(out[:, 0], fsm.logsumexp(x, where=w))
    assert out[2, 0] == -inf


def test_where_all_true_equals_no_mask():
    x = _normal((7, 33), 26, 3.0, np.float32)
    for func in util.FUNCTIONS:
        f = FUNCS[func]
        np.testing.assert_array_equal(f(x, where=np.ones(x.shape, bool)), f(x))
        np.testing.assert_array_equal(f(x, where=True), f(x))


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_where_with_integer_and_dtype(func):
    """Integers are computed in float64 with a mask; dtype= with a mask."""
    x = np.arange(24, dtype=np.int32).reshape(4, 6) % 5
    w = (np.arange(24).reshape(4, 6) % 3) != 0
    _check(func, FUNCS[func](x, where=w), x, -1, 1.0, w, f"{func} int32 where")
    got = FUNCS[func](x, where=w, dtype=np.float32)
    assert got.dtype == np.float32


# =============================================================================================
# 4. softmax_backward / log_softmax_backward
# =============================================================================================

BACKWARDS = {"softmax": ("softmax_backward", ref.softmax_backward),
             "log_softmax": ("log_softmax_backward", ref.log_softmax_backward)}
check_backward = ref.check_backward
check_cross_entropy = ref.check_cross_entropy


def _backward_case(func, shape, axis, T, dtype, seed):
    """(y, g): y = func(x / T) from the reference (rounded to dtype), g ~ N(0, 1)."""
    x = _normal(shape, seed, 3.0)
    y = getattr(ref, func)(x, axis, T).astype(dtype)
    g = _normal(shape, seed + 1, 1.0, dtype)
    return y, g


@pytest.mark.parametrize("T", [1.0, 0.07, 3.0])
@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
@pytest.mark.parametrize("func", MAPS)
def test_backward_against_reference(func, dtype, T):
    name = BACKWARDS[func][0]
    f = getattr(fsm, name)
    for shape in [(7,), (5, 13), (3, 4, 5), (2, 1030)]:
        for axis in range(-len(shape), len(shape)):
            y, g = _backward_case(func, shape, axis, T, dtype, 30 + len(shape))
            before = util.digest(y), util.digest(g)
            got = f(y, g, axis=axis, temperature=T)
            check_backward(func, got, y, g, axis, T, f"{name}({dtype}{shape}, axis={axis}, T={T})")
            assert (util.digest(y), util.digest(g)) == before, f"{name} modified an input"


@TINY_T_CASES
@pytest.mark.parametrize("func", MAPS)
def test_backward_temperature_whose_reciprocal_overflows(func, dtype, T):
    """Divided by a T whose reciprocal overflows: exact zeros stay 0 (not 0 * inf =
    NaN), entries beyond the dtype's range are +-inf as the exact values, and the
    third row's are moderate (powers of two: exact products, subnormal ones)."""
    name = BACKWARDS[func][0]
    a, b = (-100.0, -40.0) if dtype == np.float32 else (-1000.0, -60.0)
    if func == "softmax":
        y = [[1, 0, 0], [0.5, 0.5, 0], [2**a, 1, 0]]
        g = [[1, 2, 3], [1, 2, 3], [2**b, 0, 5]]
    else:
        y = [[0, -inf, -inf], [-np.log(2), -np.log(2), -inf], [-inf, 0, -inf]]
        g = [[1, 0, 0], [1, 2, 3], [2**(a + b), 0, 0]]
    y, g = np.array(y, dtype), np.array(g, dtype)
    for axis, (ya, ga) in ((-1, (y, g)), (0, (y.T.copy(), g.T.copy()))):
        got = getattr(fsm, name)(ya, ga, axis=axis, temperature=T)
        check_backward(func, got, ya, ga, axis, T, f"{name}({dtype}, axis={axis}, temperature={T})")
    assert np.all(got.T[0] == 0) and 0 < abs(got.T[2, 0]) < np.finfo(dtype).max


@pytest.mark.parametrize("func", MAPS)
def test_backward_layouts(func):
    """y and g in every layout of the generator (independently of each other)."""
    name = BACKWARDS[func][0]
    f = getattr(fsm, name)
    for dtype in util.FLOATS:
        for shape in [(9,), (5, 13), (3, 4, 5)]:
            for axis in (-1, 0):
                y, g = _backward_case(func, shape, axis, 0.5, dtype, 40)
                for (ly, ya), (lg, ga) in zip(util.layouts(y), list(util.layouts(g))[::-1]):
                    before = util.digest(ya), util.digest(ga)
                    got = f(ya, ga, axis=axis, temperature=0.5)
                    check_backward(func, got, ya, ga, axis, 0.5,
                                   f"{name}({dtype}{shape}, axis={axis}, y {ly}, g {lg})")
                    assert (util.digest(ya), util.digest(ga)) == before, f"{name} modified an input"


@pytest.mark.parametrize("T", [1.0, 0.07])
@pytest.mark.parametrize("func", MAPS)
def test_backward_against_torch_autograd(torch, func, T):
    """fastsoftmax's y and VJP against torch.autograd of softmax(x / T), float64 and float32."""
    name = BACKWARDS[func][0]
    for dtype, rtol, atol in ((np.float64, 1e-11, 1e-14), (np.float32, 2e-4, 2e-5)):
        x, g = _normal((4, 6, 9), 50, 3.0, dtype), _normal((4, 6, 9), 51, 1.0, dtype)
        for axis in range(3):
            tx = _t(torch, x).requires_grad_(True)
            ty = getattr(torch, func)(tx / T, axis)
            (ty * _t(torch, g)).sum().backward()
            y = FUNCS[func](x, axis=axis, temperature=T)
            got = getattr(fsm, name)(y, g, axis=axis, temperature=T)
            assert got.dtype == dtype
            np.testing.assert_allclose(got, tx.grad.numpy(), rtol=rtol, atol=atol * max(1, 1 / T),
                                       err_msg=f"{name} {dtype} axis={axis} T={T}")


@pytest.mark.parametrize("func", MAPS)
def test_backward_out(func):
    """out=: a new array, out aliasing y or g (in place), out in another layout, a strided
    view of a larger buffer; all equal to the result without out."""
    name = BACKWARDS[func][0]
    f = getattr(fsm, name)
    for dtype in util.FLOATS:
        for axis in (-1, 0):
            y, g = _backward_case(func, (6, 35), axis, 0.5, dtype, 52)
            expected = f(y, g, axis=axis, temperature=0.5)
            out = np.empty_like(y)
            assert f(y, g, axis=axis, temperature=0.5, out=out) is out
            np.testing.assert_array_equal(out, expected)
            for which in ("y", "g"):
                yy, gg = y.copy(), g.copy()
                target = yy if which == "y" else gg
                assert f(yy, gg, axis=axis, temperature=0.5, out=target) is target
                np.testing.assert_array_equal(target, expected, err_msg=f"{name} out={which}")
            out = np.empty(y.shape, dtype, order="F")
            f(y, g, axis=axis, temperature=0.5, out=out)
            np.testing.assert_array_equal(out, expected)
            big = np.full((6, 70), 7.0, dtype)
            f(y, g, axis=axis, temperature=0.5, out=big[:, ::2])
            np.testing.assert_array_equal(big[:, ::2], expected)
            assert np.all(big[:, 1::2] == 7.0), "wrote between the elements of a strided out"
            # out overlapping y partially (shifted by one row): handled, never silently wrong.
            buf = np.concatenate([y, y[:1]], axis=0)
            yv, ov = buf[:6], buf[1:]
            expected_shift = f(yv.copy(), g, axis=axis, temperature=0.5)
            f(yv, g, axis=axis, temperature=0.5, out=ov)
            np.testing.assert_array_equal(ov, expected_shift, err_msg=f"{name} partial overlap")


@pytest.mark.parametrize("func", MAPS)
def test_backward_integers_and_defaults(func):
    """ints -> float64; the default axis is the last and the default temperature 1."""
    name = BACKWARDS[func][0]
    f = getattr(fsm, name)
    y, g = _backward_case(func, (4, 6), -1, 1.0, np.float64, 53)
    np.testing.assert_array_equal(f(y, g), f(y, g, axis=-1, temperature=1.0))
    yi, gi = np.arange(24).reshape(4, 6) % 3, np.arange(24).reshape(4, 6) % 5 - 2
    got = f(yi, gi)
    assert got.dtype == np.float64
    check_backward(func, got, yi.astype(np.float64), gi.astype(np.float64), -1, 1.0, f"{name} int")
    # lists are array_like
    np.testing.assert_array_equal(f(y.tolist(), g.tolist()), f(y, g))


@pytest.mark.parametrize("func", MAPS)
def test_backward_empty_and_one_element(func):
    f = getattr(fsm, BACKWARDS[func][0])
    for shape in [(0,), (3, 0), (0, 4), (1, 1)]:
        y, g = np.zeros(shape), np.ones(shape)
        got = f(y, g)
        assert got.shape == shape and got.dtype == np.float64
    y = np.array([[1.0]]) if func == "softmax" else np.array([[0.0]])
    np.testing.assert_array_equal(f(y, np.array([[3.0]])), [[0.0]])


@pytest.mark.parametrize("func", MAPS)
def test_backward_errors(func):
    f = getattr(fsm, BACKWARDS[func][0])
    y, g = np.ones((3, 4)) / 4, np.ones((3, 4))
    with pytest.raises(ValueError, match="shape"):
        f(y, np.ones((3, 5)))
    with pytest.raises(ValueError, match="shape"):
        f(y, np.ones((4,)))          # broadcastable is not enough: same shape required
    with pytest.raises(np.exceptions.AxisError):
        f(y, g, axis=2)
    for T in (0.0, -1.0, nan, inf):
        with pytest.raises(ValueError, match="temperature"):
            f(y, g, temperature=T)
    for T in (True, "1", 1j):
        with pytest.raises(TypeError, match="temperature"):
            f(y, g, temperature=T)
    with pytest.raises(ValueError, match="shape"):
        f(y, g, out=np.empty((4, 3)))
    with pytest.raises(ValueError, match="dtype"):
        f(y, g, out=np.empty((3, 4), np.float32))
    ro = np.empty((3, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        f(y, g, out=ro)
    with pytest.raises(TypeError):
        f(np.array([["a"] * 4] * 3), g)


# =============================================================================================
# 5. cross_entropy
# =============================================================================================

def _ce_kw(axis, T, weight, ignore, smoothing, reduction):
    return dict(axis=axis, temperature=T, weight=weight, ignore_index=ignore,
                label_smoothing=smoothing, reduction=reduction)


@pytest.mark.parametrize("layout", CE_LAYOUTS, ids=str)
@pytest.mark.parametrize("options", CE_OPTIONS, ids=_ce_ids)
def test_cross_entropy_against_reference(options, layout):
    """Every option combination: target kind x weight x ignore_index x label smoothing
    (parametrized), x every reduction x temperature x return_grad x dtype (inside)."""
    kind, weighted, ignore, smoothing = options
    shape, axis = layout
    for dtype in util.FLOATS:
        logits, target = _ce_case(kind, shape, axis, 60, ignore, dtype)
        weight = (np.random.default_rng(61).uniform(0.5, 2.0, shape[axis]).astype(dtype)
                  if weighted else None)
        before = [util.digest(a) for a in (logits, target) + ((weight,) if weighted else ())]
        for reduction in REDUCTIONS:
            for T in (1.0, 0.5, 0.07):
                kw = _ce_kw(axis, T, weight, ignore, smoothing, reduction)
                what = f"cross_entropy({dtype}{shape}, {kind}, {kw})"
                loss, grad = fsm.cross_entropy(logits, target, return_grad=True, **kw)
                check_cross_entropy(loss, grad, logits, target, what, **kw)
                loss_only = fsm.cross_entropy(logits, target, **kw)
                np.testing.assert_array_equal(loss_only, loss, err_msg=what + ": return_grad changed the loss")
                if reduction == "none":
                    assert np.shape(loss) == (target.shape if kind == "index"
                                              else shape[:axis % len(shape)] + shape[axis % len(shape) + 1:])
                else:
                    assert np.ndim(loss) == 0
        after = [util.digest(a) for a in (logits, target) + ((weight,) if weighted else ())]
        assert after == before, "cross_entropy modified an input"


@pytest.mark.parametrize("layout", CE_LAYOUTS, ids=str)
@pytest.mark.parametrize("options", CE_OPTIONS, ids=_ce_ids)
def test_cross_entropy_against_torch(torch, options, layout):
    """fastsoftmax against F.cross_entropy + autograd (float64), every option."""
    kind, weighted, ignore, smoothing = options
    shape, axis = layout
    logits, target = _ce_case(kind, shape, axis, 62, ignore)
    weight = np.random.default_rng(63).uniform(0.5, 2.0, shape[axis]) if weighted else None
    for reduction in REDUCTIONS:
        for T in (1.0, 0.3):
            kw = _ce_kw(axis, T, weight, ignore, smoothing, reduction)
            loss, grad = fsm.cross_entropy(logits, target, return_grad=True, **kw)
            tloss, tgrad = _torch_cross_entropy(torch, logits, target, **kw)
            np.testing.assert_allclose(loss, tloss, rtol=1e-12, atol=1e-14, err_msg=str(kw))
            np.testing.assert_allclose(grad, tgrad, rtol=1e-10, atol=1e-14, err_msg=str(kw))


def test_cross_entropy_float32_against_torch(torch):
    """float32 logits: loss and grad in float32, close to torch's float32 results."""
    F = _F(torch)
    logits, target = _ce_case("index", (64, 10), -1, 64, dtype=np.float32)
    tl = _t(torch, logits).requires_grad_(True)
    tloss = F.cross_entropy(tl / 0.5, _t(torch, target), label_smoothing=0.1)
    tloss.backward()
    loss, grad = fsm.cross_entropy(logits, target, temperature=0.5, label_smoothing=0.1, return_grad=True)
    assert np.asarray(loss).dtype == np.float32 and grad.dtype == np.float32
    np.testing.assert_allclose(loss, tloss.item(), rtol=1e-5)
    np.testing.assert_allclose(grad, tl.grad.numpy(), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("kind", ["index", "prob"])
def test_cross_entropy_layouts(kind):
    """Logits and target in every layout of the generator (C, byte-swapped, unaligned,
    F, transposed, strided, negative stride, broadcast)."""
    for dtype in util.FLOATS:
        for shape, axis in (((8, 5), -1), ((4, 5, 3), 1), ((5, 6), 0)):
            logits, target = _ce_case(kind, shape, axis, 65, None, dtype)
            targets = list(util.layouts(target))
            for i, (ll, la) in enumerate(util.layouts(logits)):
                lt, ta = targets[i % len(targets)]
                for reduction in ("none", "mean"):
                    kw = _ce_kw(axis, 0.5, None, None, 0.1, reduction)
                    loss, grad = fsm.cross_entropy(la, ta, return_grad=True, **kw)
                    check_cross_entropy(loss, grad, la, ta,
                                        f"cross_entropy({dtype}{shape} {kind}, logits {ll}, target {lt}, {reduction})",
                                        **kw)


@pytest.mark.parametrize("dtype", util.FLOATS, ids=str)
def test_cross_entropy_temperature_whose_reciprocal_overflows(dtype):
    """Loss and gradient where 1/T overflows (float32 computes in float64 then), and
    where it nearly does and class weights up to 50 make weight / T overflow: short
    rows (a lane each) and longer rows; labels, with weights and smoothing, and
    probabilities; a row with +inf; every reduction."""
    rng = np.random.default_rng(91)
    Ts = TINY_TEMPERATURES[dtype.type] + ({np.float32: 1e-38, np.float64: 1e-307}[dtype.type],)
    for T in Ts:
        for shape in ((80, 7), (6, 40)):
            C = shape[-1]
            logits = _tiny_T_rows(shape, T, dtype, 92)
            logits[2, 3] = inf                  # special_row's limits
            labels = rng.integers(0, C, shape[0])
            labels[2] = 0       # not the +inf's class: a loss of +inf (at -0, the bound is NaN)
            probs = ref.softmax(rng.normal(size=shape)).astype(dtype)
            weight = np.linspace(0.5, 50.0, C).astype(dtype)
            for target, kw in ((labels, {}), (labels, dict(weight=weight, label_smoothing=0.1)),
                               (probs, dict(weight=weight))):
                for reduction in REDUCTIONS:
                    kw = dict(kw, temperature=T, reduction=reduction)
                    what = f"cross_entropy({dtype}{shape}, {'labels' if target is labels else 'probs'}, {kw})"
                    loss, grad = fsm.cross_entropy(logits, target, return_grad=True, **kw)
                    check_cross_entropy(loss, grad, logits, target, what, **kw)


@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.int16, np.uint8, np.intp], ids=str)
def test_cross_entropy_label_dtypes(label_dtype):
    logits, t = _ce_case("index", (7, 5), -1, 66)
    expected = fsm.cross_entropy(logits, t, return_grad=True, reduction="none")
    got = fsm.cross_entropy(logits, t.astype(label_dtype), return_grad=True, reduction="none")
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_cross_entropy_exact_small_case():
    """Hand-computed: logits [[0, ln 3]] (p = [1/4, 3/4]) and label 1: loss ln(4/3)."""
    logits = np.array([[0.0, np.log(3.0)], [0.0, 0.0]])
    loss, grad = fsm.cross_entropy(logits, np.array([1, 0]), reduction="none", return_grad=True)
    np.testing.assert_allclose(loss, [np.log(4 / 3), np.log(2)], rtol=1e-14)
    np.testing.assert_allclose(grad, [[0.25, -0.25], [-0.5, 0.5]], rtol=1e-14)


def test_cross_entropy_defaults():
    """axis=-1, mean, no weight, no ignored label, T = 1, no smoothing; the gradient is
    (softmax - onehot) / N."""
    logits, t = _ce_case("index", (5, 4), -1, 67)
    loss = fsm.cross_entropy(logits, t)
    p = ref.softmax(logits)
    onehot = np.eye(4)[t]
    np.testing.assert_allclose(loss, -np.mean(np.log(p[np.arange(5), t])), rtol=1e-14)
    _, grad = fsm.cross_entropy(logits, t, return_grad=True)
    np.testing.assert_allclose(grad, (p - onehot) / 5, rtol=1e-13, atol=1e-17)
    # A label -100 is a label like any other without ignore_index: out of range.
    with pytest.raises(ValueError, match="-100"):
        fsm.cross_entropy(logits, np.array([0, 1, -100, 2, 3]))


def test_cross_entropy_all_ignored_and_empty():
    """Mean over no sample is 0/0 = NaN (as torch), the gradient zeros; sum is 0;
    'none' gives zeros / an empty array.  No warning either way."""
    logits = _normal((4, 3), 68)
    t = np.full(4, 1)
    for smoothing in (0.0, 0.2):
        loss, grad = fsm.cross_entropy(logits, t, ignore_index=1, label_smoothing=smoothing,
                                       return_grad=True)
        assert np.isnan(loss)
        np.testing.assert_array_equal(grad, np.zeros_like(logits))
        loss, grad = fsm.cross_entropy(logits, t, ignore_index=1, reduction="sum",
                                       label_smoothing=smoothing, return_grad=True)
        assert loss == 0
        np.testing.assert_array_equal(grad, np.zeros_like(logits))
        loss = fsm.cross_entropy(logits, t, ignore_index=1, reduction="none", label_smoothing=smoothing)
        np.testing.assert_array_equal(loss, np.zeros(4))
    for dtype in util.FLOATS:
        empty = np.zeros((0, 3), dtype)
        for target in (np.zeros(0, np.int64), np.zeros((0, 3), dtype)):
            loss, grad = fsm.cross_entropy(empty, target, return_grad=True)
            assert np.isnan(loss) and np.asarray(loss).dtype == dtype
            assert grad.shape == (0, 3) and grad.dtype == dtype
            assert fsm.cross_entropy(empty, target, reduction="sum") == 0
            none = fsm.cross_entropy(empty, target, reduction="none")
            assert none.shape == (0,) and none.dtype == dtype


def test_cross_entropy_nan_logits():
    logits = _normal((3, 4), 69)
    logits[1, 2] = nan
    loss = fsm.cross_entropy(logits, np.array([0, 1, 2]), reduction="none")
    assert np.isnan(loss[1]) and np.all(np.isfinite(loss[[0, 2]]))
    assert np.isnan(fsm.cross_entropy(logits, np.array([0, 1, 2])))
    # An ignored sample's NaN does not count (torch: masked out of the sum).
    loss = fsm.cross_entropy(logits, np.array([0, 1, 2]), ignore_index=1, reduction="none")
    np.testing.assert_array_equal(loss[1], 0.0)


def test_cross_entropy_infonce():
    """InfoNCE: similarity logits (N, N) with labels arange(N), a temperature of 0.07,
    along both axes (rows: image -> text, columns: text -> image)."""
    rng = np.random.default_rng(70)
    a = rng.normal(size=(32, 16))
    b = a + 0.3 * rng.normal(size=(32, 16))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    S = a @ b.T
    labels = np.arange(32)
    for axis in (-1, 0):
        kw = _ce_kw(axis, 0.07, None, None, 0.0, "mean")
        loss, grad = fsm.cross_entropy(S, labels, return_grad=True, **kw)
        check_cross_entropy(loss, grad, S, labels, f"InfoNCE axis={axis}", **kw)
    rows = fsm.cross_entropy(S, labels, temperature=0.07, return_grad=True)
    cols = fsm.cross_entropy(S.T, labels, temperature=0.07, return_grad=True)
    via_axis0 = fsm.cross_entropy(S, labels, axis=0, temperature=0.07, return_grad=True)
    np.testing.assert_allclose(via_axis0[0], cols[0], rtol=1e-14)
    np.testing.assert_allclose(via_axis0[1], cols[1].T, rtol=1e-13, atol=1e-17)
    assert rows[1].shape == S.shape


def test_cross_entropy_large_batch_accuracy():
    """A large batch (4096 x 100, float32, mean): the summed loss is accurate to a few
    ulps of its magnitude, not degraded by the batch size."""
    logits, t = _ce_case("index", (4096, 100), -1, 71, dtype=np.float32)
    for kw in (dict(), dict(temperature=0.5, label_smoothing=0.1),
               dict(weight=np.linspace(0.5, 2, 100).astype(np.float32), reduction="sum")):
        loss, grad = fsm.cross_entropy(logits, t, return_grad=True, **kw)
        check_cross_entropy(loss, grad, logits, t, f"large batch {kw}", **kw)


# ---- cross_entropy errors --------------------------------------------------------------------

X = _normal((3, 4), 80)
T3 = np.array([0, 3, 1])


@pytest.mark.parametrize("bad", [37, -5, 4])
def test_cross_entropy_label_out_of_range(bad):
    t = np.array([0, bad, 1])
    with pytest.raises(ValueError, match=str(bad)):
        fsm.cross_entropy(X, t)
    with pytest.raises(ValueError, match=str(bad)):
        fsm.cross_entropy(X, t, ignore_index=2, return_grad=True, reduction="none")
    with pytest.raises(ValueError, match=str(bad)):
        fsm.cross_entropy(X.T, t, axis=0)


def test_cross_entropy_label_out_of_range_with_extra_dims():
    logits = _normal((2, 4, 3), 81)
    t = np.zeros((2, 3), np.int64)
    t[1, 2] = 11
    with pytest.raises(ValueError, match="11"):
        fsm.cross_entropy(logits, t, axis=1)


@pytest.mark.parametrize("target", [np.array([0, 1]), np.array([[0, 1, 2]]), np.zeros((3, 1), np.int64),
                                    np.zeros((3, 5)), np.zeros((4, 3)), np.array(1)],
                         ids=lambda t: f"{t.dtype}{t.shape}")
def test_cross_entropy_target_of_wrong_shape(target):
    with pytest.raises(ValueError, match="shape"):
        fsm.cross_entropy(X, target)


@pytest.mark.parametrize("target", [np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.0, 2.0], np.float32),
                                    np.zeros((3, 4), np.int64), np.array(["a", "b", "c"]),
                                    np.array([0, 1, 2], np.complex128)],
                         ids=lambda t: f"{t.dtype}{t.shape}")
def test_cross_entropy_target_of_wrong_dtype(target):
    """Float labels, integer probabilities, strings, complex, bool."""
    with pytest.raises((TypeError, ValueError), match="target|dtype"):
        fsm.cross_entropy(X, target)


@pytest.mark.parametrize("reduction", ["avg", "Mean", "", None, 1])
def test_cross_entropy_bad_reduction(reduction):
    with pytest.raises((ValueError, TypeError), match="reduction"):
        fsm.cross_entropy(X, T3, reduction=reduction)


@pytest.mark.parametrize("smoothing", [-0.1, 1.5, nan, inf])
def test_cross_entropy_bad_label_smoothing(smoothing):
    with pytest.raises(ValueError, match="label_smoothing"):
        fsm.cross_entropy(X, T3, label_smoothing=smoothing)


def test_cross_entropy_label_smoothing_not_a_number():
    with pytest.raises(TypeError, match="label_smoothing"):
        fsm.cross_entropy(X, T3, label_smoothing="0.1")


def test_cross_entropy_ignore_index_with_prob_targets():
    q = np.full((3, 4), 0.25)
    for ignore in (0, 2, 5):
        with pytest.raises(ValueError, match="ignore_index"):
            fsm.cross_entropy(X, q, ignore_index=ignore)


def test_cross_entropy_ignore_index_numpy_integer():
    t = np.array([0, 2, 1])
    np.testing.assert_array_equal(fsm.cross_entropy(X, t, ignore_index=np.int64(2), reduction="none"),
                                  fsm.cross_entropy(X, t, ignore_index=2, reduction="none"))


def test_cross_entropy_ignore_index_not_an_int():
    for ignore in (1.5, "1", [1]):
        with pytest.raises(TypeError, match="ignore_index"):
            fsm.cross_entropy(X, T3, ignore_index=ignore)


@pytest.mark.parametrize("weight", [np.ones(3), np.ones(5), np.ones((4, 1)), np.ones((1, 4)), np.float64(1.0)],
                         ids=lambda w: str(np.shape(w)))
def test_cross_entropy_weight_of_wrong_shape(weight):
    with pytest.raises(ValueError, match="weight"):
        fsm.cross_entropy(X, T3, weight=weight)
    with pytest.raises(ValueError, match="weight"):
        fsm.cross_entropy(X, np.full((3, 4), 0.25), weight=weight)


def test_cross_entropy_weight_of_wrong_dtype():
    with pytest.raises(TypeError, match="weight"):
        fsm.cross_entropy(X, T3, weight=np.array(["a"] * 4))


@pytest.mark.parametrize("T,exc", [(0.0, ValueError), (-0.5, ValueError), (nan, ValueError), (inf, ValueError),
                                   (-inf, ValueError), (True, TypeError), ("1", TypeError), (1j, TypeError)],
                         ids=repr)
def test_cross_entropy_bad_temperature(T, exc):
    with pytest.raises(exc, match="temperature"):
        fsm.cross_entropy(X, T3, temperature=T)


def test_cross_entropy_bad_axis_and_logits():
    with pytest.raises(np.exceptions.AxisError):
        fsm.cross_entropy(X, T3, axis=2)
    with pytest.raises(TypeError, match="dtype"):
        fsm.cross_entropy(np.array([["a"] * 4] * 3), T3)
    with pytest.raises(TypeError, match="num_threads"):
        fsm.cross_entropy(X, T3, num_threads="2")
    with pytest.raises(ValueError, match="num_threads"):
        fsm.cross_entropy(X, T3, num_threads=0)


# =============================================================================================
# 6. temperature / where errors of softmax, log_softmax, logsumexp
# =============================================================================================

@pytest.mark.parametrize("T", [0.0, -0.0, -1.0, nan, inf, -inf], ids=repr)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_bad_temperature_value(func, T):
    with pytest.raises(ValueError, match="temperature"):
        FUNCS[func](X, temperature=T)


@pytest.mark.parametrize("T", [True, False, "1", 1j, [1.0], np.complex128(1)], ids=repr)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_bad_temperature_type(func, T):
    with pytest.raises(TypeError, match="temperature"):
        FUNCS[func](X, temperature=T)


@pytest.mark.parametrize("where", [np.ones((3, 4), np.int64), np.ones((3, 4)), np.array([[1, 0, 1, 0]]),
                                   "yes", [[1.0] * 4] * 3], ids=["int64", "float64", "int row", "str", "list"])
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_where_not_boolean(func, where):
    with pytest.raises(TypeError, match="where"):
        FUNCS[func](X, where=where)


@pytest.mark.parametrize("shape", [(3,), (4, 4), (2, 3, 4), (3, 2)], ids=str)
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_where_not_broadcastable(func, shape):
    """(3, 4, ...) masks that broadcast to more than x's shape are as wrong as
    incompatible ones: the mask broadcasts to x, not x to the mask."""
    with pytest.raises(ValueError, match="where|broadcast"):
        FUNCS[func](X, where=np.ones(shape, bool))


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_where_bool_list_accepted(func):
    w = [[True, False, True, True]] * 3
    np.testing.assert_array_equal(FUNCS[func](X, where=w), FUNCS[func](X, where=np.array(w)))


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_errors_leave_out_unwritten(func):
    out = np.full(X.shape if func != "logsumexp" else (3,), 7.0)
    with pytest.raises(ValueError):
        FUNCS[func](X, temperature=0.0, out=out)
    with pytest.raises((TypeError, ValueError)):
        FUNCS[func](X, where=np.ones((5, 4), bool), out=out)
    assert np.all(out == 7.0)


# =============================================================================================
# 7. threads: bitwise identical for 1 and 2 threads
# =============================================================================================

@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_one_and_two_threads_identical_with_temperature_and_where(func):
    rng = np.random.default_rng(90)
    f = FUNCS[func]
    for shape, axis, wshape in (((64, 4096), -1, (64, 4096)), ((16, 32, 512), -1, (16, 1, 512)),
                                ((3000, 64), 0, (64,)), ((1, 600000), -1, (600000,))):
        for dtype in util.FLOATS:
            x = rng.normal(0, 4, shape).astype(dtype)
            w = rng.random(wshape) < 0.8
            one = f(x, axis=axis, temperature=0.3, where=w, num_threads=1)
            two = f(x, axis=axis, temperature=0.3, where=w, num_threads=2)
            assert np.asarray(one).tobytes() == np.asarray(two).tobytes(), f"{func}{shape} {dtype}"


def test_cross_entropy_one_and_two_threads_identical():
    rng = np.random.default_rng(91)
    for shape, axis in (((8192, 50), -1), ((64, 50, 40), 1), ((2, 200000), -1)):
        logits = rng.normal(0, 3, shape).astype(np.float32)
        ax = axis % len(shape)
        C = shape[ax]
        t = rng.integers(0, C, shape[:ax] + shape[ax + 1:])
        q = rng.random(shape).astype(np.float32)
        w = rng.uniform(0.5, 2, C).astype(np.float32)
        for target in (t, q):
            for reduction in REDUCTIONS:
                kw = dict(axis=axis, temperature=0.5, weight=w, label_smoothing=0.1, reduction=reduction,
                          return_grad=True)
                l1, g1 = fsm.cross_entropy(logits, target, num_threads=1, **kw)
                l2, g2 = fsm.cross_entropy(logits, target, num_threads=2, **kw)
                assert np.asarray(l1).tobytes() == np.asarray(l2).tobytes(), f"loss {shape} {reduction}"
                assert g1.tobytes() == g2.tobytes(), f"grad {shape} {reduction}"


def test_large_where_against_reference():
    """A threaded call with a mask (above the parallel threshold) is still right."""
    rng = np.random.default_rng(92)
    x = rng.normal(0, 4, (64, 2048)).astype(np.float32)
    w = rng.random((64, 2048)) < 0.5
    w[3] = False
    for func in util.FUNCTIONS:
        _check(func, FUNCS[func](x, where=w, temperature=0.7), x, -1, 0.7, w, f"{func} large masked")


def test_cross_entropy_short_rows_special_values_and_ignored_rows():
    """Inside one tile of short rows: a NaN row gives NaN, a NaN in an ignored row
    gives 0 (as in PyTorch), a +inf row its limit; the other rows are unaffected."""
    rng = np.random.default_rng(70)
    logits = rng.normal(0.0, 3.0, (200, 10))
    target = rng.integers(0, 10, 200)
    target[[5, 6]] = 3
    logits[5, 0] = logits[7, 2] = nan
    logits[9, 4] = inf
    loss, grad = fsm.cross_entropy(logits, target, ignore_index=3, reduction="none", return_grad=True)
    assert loss[5] == 0 and loss[6] == 0 and not grad[5].any() and not grad[6].any()
    assert np.isnan(loss[7]) and np.isnan(grad[7]).all()
    assert loss[9] == (0.0 if target[9] == 4 else inf)
    ok = np.ones(200, bool)
    ok[[5, 6, 7, 9]] = False
    clean = fsm.cross_entropy(logits[ok], target[ok], ignore_index=3, reduction="none", return_grad=True)
    np.testing.assert_allclose(loss[ok], clean[0], rtol=1e-14)
    np.testing.assert_allclose(grad[ok], clean[1], rtol=1e-13, atol=1e-16)
