"""Benchmark fastsoftmax against NumPy, SciPy and, when installed, PyTorch,
ONNX Runtime, JAX and Numba.

Run it as::

    python -m fastsoftmax.bench --quick    # a smaller set (under a minute)
    python -m fastsoftmax.bench            # every case (several minutes)
    python -m fastsoftmax.bench --help

It prints a header (CPU, fastsoftmax's instruction-set path, OpenMP, the
thread count of every implementation, versions, which optional libraries were
found and what is timed for each) and a table that is both monospace-aligned
and valid Markdown.  One row per operation, shape and dtype: fastsoftmax's
median time on one thread (``1t``) and on N threads (``Nt``, its default), its
throughput in GB/s on N threads (the input read once plus the output written
once; for cross_entropy, the logits read plus the gradient written), then for
every other implementation the ratio
``their time / fastsoftmax's time`` (above 1: fastsoftmax is faster), taken
against fastsoftmax on as many threads as the other implementation uses: the
one-thread ones (NumPy, SciPy, ``torch-1t``, ONNX Runtime, ``copyto``)
against fastsoftmax 1t, the multi-threaded ones (``torch``, JAX, Numba)
against fastsoftmax Nt.  ``--times`` adds every implementation's time;
``--json`` writes every sample.  An implementation without the operation
shows ``-``.

Operations (``OPS``): ``softmax``, ``log_softmax`` and ``logsumexp`` on
``SHAPES`` in float32 and float64 (and ``OUT_SHAPES`` with ``out=``), then
the machine-learning cases ``ML_CASES``:

``softmax`` in float16 (4096x1000)
    ``fsm.softmax(x16)``; NumPy computes in float32 and casts back, the
    others in float16 as they do; checked with rtol 2e-3, atol 1e-4.
``masked_softmax`` (32x128x256: attention scores, batch x queries x keys)
    ``fsm.softmax(x, where=mask)`` with a key-padding mask of shape
    (32, 1, 256): per batch entry the first 1..256 keys (seeded; never a
    fully masked row, where NumPy and PyTorch give NaN).  NumPy:
    ``np.where(mask, x, -inf)`` then the stable formula; PyTorch:
    ``torch.softmax(t.masked_fill(~mask, -inf), -1)`` (``~mask`` made before
    timing); JAX: ``jnp.where`` then ``jax.nn.softmax``.
``cross_entropy`` (64x1000, 4096x1000, 100000x10)
    The loss and its gradient, mean over int64 labels (seeded):
    ``fsm.cross_entropy(logits, labels, return_grad=True)``; PyTorch:
    ``F.cross_entropy(t, labels)`` and ``.backward()`` on a leaf tensor
    (``t.grad = None`` first), returning the loss and ``t.grad``; NumPy: the
    stable log_softmax, ``-mean(logp[range, labels])`` and
    ``(softmax - onehot) / rows``; JAX: ``jax.jit(jax.value_and_grad(...))``
    of the same loss.  Both the loss and the gradient are checked.

``--quick`` keeps every ML case but the 64x1000 and 100000x10 cross_entropy.
``--ops``, ``--dtypes`` (float16 too) and ``--shapes`` apply to these
operations as to the others; they have no ``out=`` cases.  Their second input
is ``extra_input(op, shape, axis)``: the labels take the shape without the
reduced axis, the mask keeps the reduced axis and the first other one.

Compared implementations (``IMPLEMENTATIONS``, in column order):

``fastsoftmax``, ``fastsoftmax-1t``
    The reference of every check and ratio, with ``num_threads`` = N (the
    ``--threads`` value, else ``fastsoftmax.get_num_threads()``) and 1.
``numpy``
    The hand-written stable formula, e.g. for softmax
    ``e = np.exp(x - x.max(axis, keepdims=True)); e / e.sum(axis, keepdims=True)``
    (with ``out=``: the same in place in ``out``).  NumPy's ufuncs run on one
    thread.
``scipy``
    ``scipy.special.softmax``, ``log_softmax`` and ``logsumexp`` (no ``out=``:
    they allocate their result).
``torch-1t``, ``torch``
    ``torch.softmax``, ``torch.log_softmax`` and ``torch.logsumexp`` on
    ``torch.from_numpy(x)`` (no copy; ``out=`` as ``torch.from_numpy(out)``),
    with ``torch.set_num_threads(1)`` around each sample, and on N threads.
``onnxruntime``
    A one-node ONNX model built in memory (``Softmax``, ``LogSoftmax`` or
    ``ReduceLogSumExp`` with ``keepdims=0``; opset 18), run by an
    ``InferenceSession`` on ``CPUExecutionProvider`` with
    ``intra_op_num_threads=1``; one session per (op, dtype, ndim, axis).
    Timed: ``run_with_iobinding`` alone, the input bound in place, the output
    allocated by ONNX Runtime (with ``out=``: bound to ``out``).  Needs
    ``onnx`` as well.
``copyto``
    ``np.copyto(out, x)``, only for the ``out=`` cases: the memory-traffic
    floor.  Its ratio is the fraction of copy speed fastsoftmax 1t reaches.
``jax``
    ``jax.jit`` of ``jax.nn.softmax``, ``jax.nn.log_softmax`` and
    ``jax.scipy.special.logsumexp`` with the axis fixed, compiled before
    timing, on an array already on the device; timed: the call and
    ``block_until_ready()``.  ``jax_enable_x64`` is switched on so that
    float64 stays float64.  XLA sizes its own thread pool.
``numba``
    A ``@njit(parallel=True, fastmath=False)`` loop over the rows (``prange``)
    that makes the usual three passes per row; compiled before timing (one
    compilation per dtype); ``numba.set_num_threads(N)``.

A library that is not installed (or fails to import) is skipped and named in
the header.  The environment variable ``FASTSOFTMAX_BENCH_HIDE`` (module names,
comma separated, e.g. ``torch,jax``) makes the benchmark treat those as not
installed, to try the fallback paths.

Adding a library: append an ``Implementation`` subclass (``name``,
``module``, ``make``; ``one_thread`` if it runs on one thread) to
``IMPLEMENTATIONS``.  Adding an operation: add it to ``OPS`` and ``OP_INFO``
(output shape, tolerance class per part of its result, out= or not), its
cases to ``ML_CASES`` (or run it on ``SHAPES`` in ``default_cases``), any
second input to ``extra_input``, and to the ``make`` of the implementations
that have it; the others return None from ``make`` and show ``-``.

Method: every implementation runs in this one process, on the same input
array (fixed-seed RNG, normal with mean 0 and variance 4; the same labels or
mask) and, for ``out=`` cases, into the same preallocated output.  Before
timing, each result is compared with fastsoftmax's (rtol 1e-5 for float32,
1e-12 for float64, 2e-3 for float16; every part of a tuple result); a
mismatch is reported loudly and makes the command exit with status 1.  The
number of calls per sample is calibrated so that a sample lasts at least
~2 ms, and the samples are interleaved: in each repetition every
implementation takes one sample, in an order that rotates from one repetition
to the next, so that slow drifts of the machine (frequency, other load) hit
all implementations alike.  Thread settings (``torch.set_num_threads``,
``numba.set_num_threads``) are made around each sample, outside the timer.
The table shows medians.  ``--plot PATH.png`` (needs matplotlib) adds a sweep
over the row length at a fixed array size (``SWEEP_ELEMENTS``) and plots GB/s
against it.

Fair numbers: run on an otherwise idle machine, and unset the OpenBLAS
variables some environments set, which slow NumPy down on some machines::

    unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
    python -m fastsoftmax.bench

(or ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m fastsoftmax.bench``).
The benchmark reads but never changes the environment; the header warns when
these variables are set.  On small virtual machines whose CPUs do not run in
parallel at full speed, read the 1t column and the one-thread ratios.
"""
import argparse
import contextlib
import functools
import gc
import importlib
import json
import math
import os
import platform
import statistics
import sys
import textwrap
import time
from typing import NamedTuple

import numpy as np

import fastsoftmax as fsm

__all__ = ["main", "run", "run_case", "Implementation", "IMPLEMENTATIONS", "OPS", "Case"]

# ---- operations and cases ------------------------------------------------------


class Case(NamedTuple):
    """One row of the table: ``op`` of a ``shape`` array of ``dtype`` along
    ``axis``; with ``out``, into a preallocated output array."""
    op: str
    shape: tuple
    axis: int
    dtype: str
    out: bool = False


# The three reductions, timed on SHAPES in DTYPES; then the machine-learning
# operations, timed on ML_CASES only (unless --shapes says otherwise).
BASE_OPS = ("softmax", "log_softmax", "logsumexp")
OPS = BASE_OPS + ("masked_softmax", "cross_entropy")
# Per operation: whether the output drops the reduced axis, which ATOL
# applies to its values (one per part of a tuple result), and whether it has
# out= cases.  masked_softmax is softmax with where= a key-padding mask;
# cross_entropy returns (loss, gradient), the gradient of the logits' shape.
OP_INFO = {
    "softmax": {"reduces": False, "tol": "softmax"},
    "log_softmax": {"reduces": False, "tol": "log"},
    "logsumexp": {"reduces": True, "tol": "log"},
    "masked_softmax": {"reduces": False, "tol": "softmax", "out": False},
    "cross_entropy": {"reduces": False, "tol": ("log", "grad"), "out": False},
}
# What the ML ops and float16 mean, for the header of a table that has them.
OP_NOTES = {
    "masked_softmax": "softmax(x, where=mask): scores (batch, queries, keys) under a key-padding "
                      "mask (batch, 1, keys), per batch entry the first 1..keys keys (seeded); "
                      "NumPy, PyTorch, JAX: -inf where masked (np.where, masked_fill), then "
                      "softmax",
    "cross_entropy": "the loss and its gradient, mean over int64 labels (seeded): fastsoftmax "
                     "cross_entropy(return_grad=True); PyTorch F.cross_entropy forward + "
                     "backward on a leaf tensor; NumPy: stable log_softmax, -mean(logp[labels]), "
                     "(softmax - onehot) / rows; GB/s: logits read + gradient written",
    "float16": "NumPy computes in float32 and casts back; checked with rtol 2e-3, atol 1e-4",
}
DTYPES = ("float32", "float64")
ALL_DTYPES = DTYPES + ("float16",)      # float16: softmax's ML case, or asked for by --dtypes

# (rows, row length) and the reduced axis.  The last one reduces along axis 0
# of a C-contiguous array: strided rows.
SHAPES = (
    ((1, 1000), -1),
    ((64, 1000), -1),
    ((4096, 1000), -1),
    ((1000000, 10), -1),
    ((1000, 4096), 0),
)
# Timed with out= (into a preallocated array), beside np.copyto of the same
# arrays; float32 only.
OUT_SHAPES = (
    ((16384, 128), -1),
    ((8192, 8192), -1),
)
OUT_DTYPES = ("float32",)
# Machine learning: softmax in float16, softmax of attention scores (batch,
# queries, keys) under a key-padding mask (batch, 1, keys), and cross-entropy
# with its gradient (a classifier's batch of 4096 over 1000 classes, a small
# batch, many rows of 10 classes).
ML_CASES = (
    Case("softmax", (4096, 1000), -1, "float16"),
    Case("masked_softmax", (32, 128, 256), -1, "float32"),
    Case("cross_entropy", (64, 1000), -1, "float32"),
    Case("cross_entropy", (4096, 1000), -1, "float32"),
    Case("cross_entropy", (100000, 10), -1, "float32"),
)
# --quick: every shape for softmax, one for the others, the small out= case,
# the ML cases but the small and the many-short-rows cross_entropy.
QUICK_SHAPES = {"softmax": SHAPES, "log_softmax": (((4096, 1000), -1),),
                "logsumexp": (((4096, 1000), -1),)}
QUICK_OUT_SHAPES = {"softmax": OUT_SHAPES[:1]}
QUICK_ML_CASES = ML_CASES[:2] + ML_CASES[3:4]

# --plot / --sweep: row lengths at a fixed total number of elements.
SWEEP_LENGTHS = (4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)
SWEEP_ELEMENTS = 1 << 20

SEED = 0
SIGMA = 2.0           # N(0, 4): standard deviation 2
RTOL = {"float32": 1e-5, "float64": 1e-12, "float16": 2e-3}
# Absolute tolerance: below the smallest normal number for softmax (whose tiny
# terms fastsoftmax flushes to 0; for float16, whose results are rounded to
# 11 bits from float32, 1e-4); a few ulps of 1 for log_softmax, logsumexp and
# the cross-entropy loss, whose values cross 0 where relative error means
# nothing.  The cross-entropy gradient, (softmax - onehot) / rows, gets the
# "log" tolerance divided by the number of rows (plus softmax's).
ATOL = {
    ("softmax", "float32"): float(np.finfo(np.float32).tiny),
    ("softmax", "float64"): float(np.finfo(np.float64).tiny),
    ("softmax", "float16"): 1e-4,
    ("log", "float32"): 8 * float(np.finfo(np.float32).eps),
    ("log", "float64"): 8 * float(np.finfo(np.float64).eps),
    ("log", "float16"): 8 * float(np.finfo(np.float16).eps),
}

TARGET_SAMPLE_S = 2e-3   # calls per sample are calibrated to last at least this long
CHECK_CHUNK = 1 << 16    # elements per step of the result check
MAX_REPEAT = 25          # samples per implementation and case, without --repeat
HIDE_ENV = "FASTSOFTMAX_BENCH_HIDE"


def output_shape(op, shape, axis):
    if OP_INFO[op]["reduces"]:
        ax = axis % len(shape)
        return tuple(s for i, s in enumerate(shape) if i != ax)
    return tuple(shape)


def make_input(shape, dtype):
    """The benchmark's input: normal(0, SIGMA**2) from a fixed seed."""
    rng = np.random.default_rng(SEED)
    return (rng.standard_normal(shape) * SIGMA).astype(dtype)


@functools.lru_cache(maxsize=4)
def extra_input(op, shape, axis):
    """The second input of `op` on a `shape` array along `axis`, the same
    (read-only) array for every implementation; None for the reductions.

    cross_entropy: int64 labels, uniform over the classes, of the shape
    without `axis` (seed SEED + 1).  masked_softmax: a boolean key-padding
    mask that keeps the reduced axis and the first other axis (the batch) and
    is 1 along the others, e.g. (batch, 1, keys) for (batch, queries, keys):
    per batch entry the first `length` keys, `length` uniform in 1..keys
    (seed SEED + 2), so that no row is masked entirely (NumPy's and PyTorch's
    formulas give NaN there, fastsoftmax zeros)."""
    ax = axis % len(shape)
    n = shape[ax]
    if op == "cross_entropy":
        rng = np.random.default_rng(SEED + 1)
        a = rng.integers(0, n, size=tuple(s for i, s in enumerate(shape) if i != ax),
                         dtype=np.int64)
    elif op == "masked_softmax":
        rng = np.random.default_rng(SEED + 2)
        batch = next((i for i in range(len(shape)) if i != ax), None)
        keys = [1] * len(shape)
        keys[ax] = n
        a = np.arange(n).reshape(keys)
        if batch is not None:
            lengths = [1] * len(shape)
            lengths[batch] = shape[batch]
            a = a < rng.integers(1, n + 1, size=shape[batch]).reshape(lengths)
        else:
            a = a < rng.integers(1, n + 1)
    else:
        return None
    a.flags.writeable = False
    return a


def default_cases(quick=False):
    """The table's cases: the reductions on SHAPES in every dtype, plus
    OUT_SHAPES with out=, then ML_CASES (fewer with ``quick``)."""
    cases = []
    for op in BASE_OPS:
        shapes = QUICK_SHAPES.get(op, ()) if quick else SHAPES
        out_shapes = QUICK_OUT_SHAPES.get(op, ()) if quick else OUT_SHAPES
        cases += [Case(op, s, a, dt) for s, a in shapes for dt in DTYPES]
        cases += [Case(op, s, a, dt, True) for s, a in out_shapes for dt in OUT_DTYPES]
    return cases + list(QUICK_ML_CASES if quick else ML_CASES)


# ---- implementations ---------------------------------------------------------

@contextlib.contextmanager
def _thread_count(get, set_, n):
    """A library's thread count set to n for the duration, restored after."""
    prev = get()
    if n != prev:
        set_(n)
    try:
        yield
    finally:
        if n != prev:
            set_(prev)


class Implementation:
    """One library to time.

    Subclasses set ``name`` (the column title and the ``--impls`` name),
    ``module`` (imported lazily, with any further ``requires``; its
    ``__version__`` is reported under ``label``) and define ``make``, and
    ``one_thread = True`` if they run on one thread (their ratio is then
    taken against fastsoftmax on one thread).

    ``make(op, x, axis, out=None)`` returns a callable without arguments that
    computes ``op`` (one of ``OPS``) of the NumPy array ``x`` along ``axis`` and
    returns the finished result (synchronously: block on asynchronous
    libraries inside the callable), as anything ``to_numpy`` accepts (for
    cross_entropy: a tuple (loss, gradient), each part converted); or None
    when the library does not support this op, dtype, axis or layout.  The
    op's second input (cross_entropy's labels, masked_softmax's mask) is
    ``extra_input(op, x.shape, axis)``.
    ``out``, when given, is a preallocated NumPy array of the result's shape
    and dtype to write into (a library without ``out=`` may ignore it).
    Conversion of ``x`` to the library's array type belongs in ``make``,
    outside the timed callable.  ``context()`` is entered around every sample
    (and the checking call), outside the timer: thread settings go there.
    """

    name = "?"
    label = None          # the library's name in the header's versions line
    module = None
    requires = ()         # further modules it needs
    reference = False     # fastsoftmax itself: times in the table, not ratios
    one_thread = False    # runs on one thread: compared with fastsoftmax on one thread
    checked = True        # False: not the operation (copyto), its result is not checked
    out_only = False      # True: only for the out= cases (copyto)
    note = None           # what exactly is timed, for the header

    def available(self):
        """Whether the library can be imported (the reason in ``why`` if not)."""
        if getattr(self, "_available", None) is None:
            self._available = self._import()
        return self._available

    def _import(self):
        hidden = set(_split([os.environ.get(HIDE_ENV, "")]))
        for name in (self.module, *self.requires):
            if name.split(".")[0] in hidden:
                self.why = f"hidden by {HIDE_ENV}"
                return False
            try:
                mod = importlib.import_module(name)
            except ModuleNotFoundError as e:
                if e.name and (name + ".").startswith(e.name + "."):    # it, not a dependency
                    self.why = "not installed" if name == self.module else f"needs {name}"
                else:
                    self.why = f"import {name} failed: {e}"[:200]
                return False
            except Exception as e:       # ImportError, or a broken installation
                self.why = f"import {name} failed: {type(e).__name__}: {e}"[:200]
                return False
            if name == self.module:
                self.mod = mod
        try:
            self.setup()
        except Exception as e:
            self.why = f"setup failed: {type(e).__name__}: {e}"[:200]
            return False
        return True

    def setup(self):
        """Called once after the imports succeed."""

    def version(self):
        return getattr(self.mod, "__version__", "?")

    def threads(self):
        """A note on the thread count, for the header (None: nothing to say)."""
        return None

    def context(self):
        """Entered around each sample: thread settings."""
        return contextlib.nullcontext()

    def to_numpy(self, value):
        """The NumPy array of what the callable of ``make`` returned."""
        return np.asarray(value)

    def make(self, op, x, axis, out=None):
        raise NotImplementedError


class FastSoftmax(Implementation):
    name = "fastsoftmax"
    module = "fastsoftmax"
    reference = True
    num_threads = None           # set by main() from --threads

    def nthreads(self):
        return fsm.get_num_threads() if self.num_threads is None else self.num_threads

    def threads(self):
        below = getattr(fsm._api, "PARALLEL_MIN_ELEMENTS", None)
        return f"{self.nthreads()}" + (f" (arrays under {below} elements run on one)"
                                       if below and self.nthreads() > 1 else "")

    def make(self, op, x, axis, out=None):
        nt = self.num_threads
        if op == "cross_entropy":
            labels = extra_input(op, x.shape, axis)
            return lambda: fsm.cross_entropy(x, labels, axis, return_grad=True, num_threads=nt)
        kw = {}
        if op == "masked_softmax":
            op, kw = "softmax", {"where": extra_input(op, x.shape, axis)}
        f = getattr(fsm, op, None) if op in BASE_OPS else None
        if f is None:
            return None
        if out is None:
            return lambda: f(x, axis, num_threads=nt, **kw)
        return lambda: f(x, axis, out=out, num_threads=nt, **kw)


class FastSoftmax1T(FastSoftmax):
    name = "fastsoftmax-1t"
    one_thread = True
    num_threads = 1

    def threads(self):
        return "1 (num_threads=1)"


class NumPyFormula(Implementation):
    name = "numpy"
    label = "NumPy"
    module = "numpy"
    one_thread = True

    def threads(self):
        return "1 (ufuncs are single-threaded)"

    @staticmethod
    def formula(op, axis, extra=None):
        """`op` along `axis` as a function of an array, in the stable formula."""
        def softmax(x):
            e = np.exp(x - x.max(axis, keepdims=True))
            return e / e.sum(axis, keepdims=True)

        def log_softmax(x):
            s = x - x.max(axis, keepdims=True)
            return s - np.log(np.exp(s).sum(axis, keepdims=True))

        def logsumexp(x):
            m = x.max(axis, keepdims=True)
            return np.log(np.exp(x - m).sum(axis)) + m.squeeze(axis)

        def masked_softmax(x):
            return softmax(np.where(extra, x, -np.inf))

        def cross_entropy(x):
            # loss = -mean(logp[label]), grad = (softmax - onehot) / labels.size
            logp = np.moveaxis(log_softmax(x), axis, -1)
            idx = extra[..., None]
            loss = -np.take_along_axis(logp, idx, -1).mean()
            grad = np.exp(logp)
            np.put_along_axis(grad, idx, np.take_along_axis(grad, idx, -1) - 1, -1)
            grad /= extra.size
            return loss, np.moveaxis(grad, -1, axis)

        return {"softmax": softmax, "log_softmax": log_softmax, "logsumexp": logsumexp,
                "masked_softmax": masked_softmax, "cross_entropy": cross_entropy}.get(op)

    def make(self, op, x, axis, out=None):
        if out is None:
            f = self.formula(op, axis, extra_input(op, x.shape, axis))
            if f is None:
                return None
            if x.dtype.itemsize >= 4:
                return lambda: f(x)
            # float16: computed in float32, the result cast back (the loss stays float32)
            low = x.dtype

            def g():
                y = f(x.astype(np.float32))
                return (y[0], y[1].astype(low)) if isinstance(y, tuple) else y.astype(low)
            return g
        if x.dtype.itemsize < 4:
            return None
        # The same formulas, in place in out as far as they allow.
        if op == "softmax":
            def f():
                np.subtract(x, x.max(axis, keepdims=True), out=out)
                np.exp(out, out=out)
                np.divide(out, out.sum(axis, keepdims=True), out=out)
                return out
        elif op == "log_softmax":
            def f():
                np.subtract(x, x.max(axis, keepdims=True), out=out)
                np.subtract(out, np.log(np.exp(out).sum(axis, keepdims=True)), out=out)
                return out
        elif op == "logsumexp":
            def f():
                m = x.max(axis, keepdims=True)
                np.log(np.exp(x - m).sum(axis), out=out)
                np.add(out, m.squeeze(axis), out=out)
                return out
        else:
            return None
        return f


class SciPy(Implementation):
    name = "scipy"
    label = "SciPy"
    module = "scipy.special"
    one_thread = True

    def version(self):
        import scipy
        return scipy.__version__

    def threads(self):
        return "1"

    def make(self, op, x, axis, out=None):
        f = getattr(self.mod, op, None) if op in BASE_OPS else None
        if f is None:
            return None
        return lambda: f(x, axis=axis)          # no out=: allocates its result


class Torch(Implementation):
    name = "torch"
    label = "PyTorch"
    module = "torch"
    num_threads = None           # set by main() from --threads; None: torch's default

    def setup(self):
        self.default_threads = self.mod.get_num_threads()

    def nthreads(self):
        return self.default_threads if self.num_threads is None else self.num_threads

    def threads(self):
        return (f"{self.nthreads()}" + (" (torch.get_num_threads())" if self.num_threads is None
                                        else " (torch.set_num_threads around each sample)"))

    def context(self):
        return _thread_count(self.mod.get_num_threads, self.mod.set_num_threads, self.nthreads())

    def make(self, op, x, axis, out=None):
        torch = self.mod
        # from_numpy shares the memory; it warns on read-only arrays.
        t = torch.from_numpy(x if x.flags.writeable else x.copy())
        if op == "masked_softmax":
            masked = torch.from_numpy(~extra_input(op, x.shape, axis))
            return None if out is not None else (
                lambda: torch.softmax(t.masked_fill(masked, -math.inf), axis))
        if op == "cross_entropy":
            return None if out is not None else self.cross_entropy(t, axis)
        f = {"softmax": torch.softmax, "log_softmax": torch.log_softmax,
             "logsumexp": torch.logsumexp}.get(op)
        if f is None:
            return None
        if out is None:
            return lambda: f(t, axis)
        o = torch.from_numpy(out)

        def g():
            f(t, axis, out=o)
            return out
        return g

    def cross_entropy(self, t, axis):
        """Forward and backward of F.cross_entropy (mean over the labels) on
        the leaf tensor `t`, classes along `axis`: (loss, t.grad)."""
        torch = self.mod
        F = importlib.import_module("torch.nn.functional")
        labels = torch.from_numpy(extra_input("cross_entropy", tuple(t.shape), axis).copy())
        t.requires_grad_()
        ax = axis % t.ndim
        move = t.ndim > 1 and ax != 1          # PyTorch's classes are along dim 1

        def f():
            t.grad = None                      # as optimizer.zero_grad() does
            loss = F.cross_entropy(t.movedim(ax, 1) if move else t, labels)
            loss.backward()
            return loss.detach(), t.grad
        return f


class Torch1T(Torch):
    name = "torch-1t"
    one_thread = True

    def nthreads(self):
        return 1

    def threads(self):
        return "1 (torch.set_num_threads(1) around each sample)"


class OnnxRuntime(Implementation):
    name = "onnxruntime"
    label = "ONNX Runtime"
    module = "onnxruntime"
    requires = ("onnx",)
    one_thread = True
    OPSET = 18           # ReduceLogSumExp takes its axes as an input from opset 18 on
    IR_VERSION = 8       # the IR version of opset 18, for older runtimes
    NODES = {"softmax": "Softmax", "log_softmax": "LogSoftmax", "logsumexp": "ReduceLogSumExp"}
    note = ("a one-node model (Softmax, LogSoftmax, ReduceLogSumExp; opset 18) on "
            "CPUExecutionProvider; timed: run_with_iobinding alone, input bound in place, "
            "output allocated by ONNX Runtime (out= cases: bound to out)")

    def setup(self):
        self.onnx = importlib.import_module("onnx")
        self.sessions = {}

    def version(self):
        return f"{self.mod.__version__} (onnx {self.onnx.__version__})"

    def threads(self):
        return "1 (intra_op_num_threads=1)"

    def session(self, op, dtype, ndim, axis):
        """The InferenceSession computing `op` along `axis` of any array of
        `ndim` dimensions and `dtype` (the dimensions are symbolic)."""
        key = (op, np.dtype(dtype).str, ndim, axis)
        if key not in self.sessions:
            onnx, ort = self.onnx, self.mod
            helper = onnx.helper
            elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
            dims = [f"d{i}" for i in range(ndim)]
            inits = []
            if OP_INFO[op]["reduces"]:
                inits.append(onnx.numpy_helper.from_array(np.array([axis], np.int64), "axes"))
                node = helper.make_node(self.NODES[op], ["x", "axes"], ["y"], keepdims=0)
                out_dims = dims[:axis] + dims[axis + 1:]
            else:
                node = helper.make_node(self.NODES[op], ["x"], ["y"], axis=axis)
                out_dims = dims
            graph = helper.make_graph(
                [node], op, [helper.make_tensor_value_info("x", elem, dims)],
                [helper.make_tensor_value_info("y", elem, out_dims)], initializer=inits)
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.OPSET)],
                                      ir_version=self.IR_VERSION)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            self.sessions[key] = ort.InferenceSession(model.SerializeToString(), opts,
                                                      providers=["CPUExecutionProvider"])
        return self.sessions[key]

    def make(self, op, x, axis, out=None):
        if op not in self.NODES or x.ndim == 0:
            return None
        x = np.ascontiguousarray(x)      # bound by address: kept alive by f below
        sess = self.session(op, x.dtype, x.ndim, axis % x.ndim)
        io = sess.io_binding()
        io.bind_input("x", "cpu", 0, x.dtype, x.shape, x.ctypes.data)
        if out is None:
            io.bind_output("y", "cpu")
        elif out.flags.c_contiguous:
            io.bind_output("y", "cpu", 0, out.dtype, out.shape, out.ctypes.data)
        else:
            return None
        run = sess.run_with_iobinding

        def f():
            run(io)
            return io if out is None else out
        f.bound = x
        return f

    def to_numpy(self, value):
        if isinstance(value, np.ndarray):
            return value
        return value.copy_outputs_to_cpu()[0]


class CopyTo(Implementation):
    name = "copyto"
    module = "numpy"
    one_thread = True
    checked = False
    out_only = True
    note = "np.copyto(out, x) of the out= cases' arrays: the memory-traffic floor"

    def threads(self):
        return "1"

    def make(self, op, x, axis, out=None):
        if out is None or out.shape != x.shape or out.dtype != x.dtype:
            return None
        return lambda: np.copyto(out, x)


class Jax(Implementation):
    name = "jax"
    label = "JAX"
    module = "jax"
    note = ("jax.jit(jax.nn.softmax, jax.nn.log_softmax, jax.scipy.special.logsumexp) with "
            "the axis fixed (masked_softmax: jnp.where(mask, x, -inf) then softmax; "
            "cross_entropy: jax.value_and_grad of -mean(take_along_axis(log_softmax))), "
            "compiled before timing, jax_enable_x64 on; timed: the call and "
            "block_until_ready() on arrays already on the device; no out=")

    def setup(self):
        self.mod.config.update("jax_enable_x64", True)      # float64 stays float64
        importlib.import_module("jax.scipy.special")
        self.jitted = {}

    def version(self):
        try:
            import jaxlib
            return f"{self.mod.__version__} (jaxlib {jaxlib.__version__})"
        except Exception:
            return self.mod.__version__

    def threads(self):
        return "XLA's own CPU thread pool"

    def function(self, op, axis):
        """`op` along `axis` as a function of (x, extra input) for jax.jit."""
        jax, jnp = self.mod, self.mod.numpy
        fs = {"softmax": jax.nn.softmax, "log_softmax": jax.nn.log_softmax,
              "logsumexp": jax.scipy.special.logsumexp}
        if op in fs:
            f = functools.partial(fs[op], axis=axis)
            return lambda x, extra: f(x)
        if op == "masked_softmax":
            return lambda x, mask: jax.nn.softmax(jnp.where(mask, x, -jnp.inf), axis=axis)
        if op == "cross_entropy":
            def loss(x, labels):
                logp = jax.nn.log_softmax(x, axis=axis)
                return -jnp.mean(jnp.take_along_axis(logp, jnp.expand_dims(labels, axis), axis))
            return jax.value_and_grad(loss)
        return None

    def make(self, op, x, axis, out=None):
        jax = self.mod
        key = (op, axis)
        if key not in self.jitted:
            f = self.function(op, axis)
            self.jitted[key] = f and jax.jit(f)
        f = self.jitted[key]
        if f is None:
            return None
        xj = jax.device_put(x)
        extra = extra_input(op, x.shape, axis)
        ej = None if extra is None else jax.device_put(extra)
        block = jax.block_until_ready
        block(f(xj, ej))                 # compiles for this shape and dtype
        return lambda: block(f(xj, ej))


class Numba(Implementation):
    name = "numba"
    label = "Numba"
    module = "numba"
    num_threads = None           # set by main() from --threads; None: Numba's default
    CODES = {"softmax": 0, "log_softmax": 1, "logsumexp": 2}
    note = ("@njit(parallel=True, fastmath=False): prange over rows, three passes per row "
            "(max, sum of exp, write), compiled before timing")

    def setup(self):
        self.kernels = {}
        self.default_threads = self.mod.get_num_threads()

    def nthreads(self):
        n = self.default_threads if self.num_threads is None else self.num_threads
        return min(n, self.mod.config.NUMBA_NUM_THREADS)

    def threads(self):
        return f"{self.nthreads()} (numba.set_num_threads around each sample)"

    def context(self):
        return _thread_count(self.mod.get_num_threads, self.mod.set_num_threads, self.nthreads())

    def kernel(self, dtype):
        """The row loop compiled for `dtype` (any strides): x (rows, n) in,
        y (rows, n), or (rows, 1) for logsumexp, out."""
        if dtype not in self.kernels:
            numba = self.mod
            from numba import prange, types

            def rows(x, y, op):
                n = x.shape[1]
                for i in prange(x.shape[0]):
                    m = -np.inf
                    for j in range(n):
                        if x[i, j] > m:
                            m = x[i, j]
                    s = 0.0                       # float64 sums
                    if op == 0:
                        for j in range(n):
                            e = np.exp(x[i, j] - m)
                            y[i, j] = e
                            s += e
                        r = 1.0 / s
                        for j in range(n):
                            y[i, j] *= r
                    else:
                        for j in range(n):
                            s += np.exp(x[i, j] - m)
                        lse = m + np.log(s)
                        if op == 1:
                            for j in range(n):
                                y[i, j] = x[i, j] - lse
                        else:
                            y[i, 0] = lse

            t = types.float32 if dtype == np.float32 else types.float64
            sig = types.void(types.Array(t, 2, "A", readonly=True), types.Array(t, 2, "A"),
                             types.int64)
            self.kernels[dtype] = numba.njit(sig, parallel=True, fastmath=False, nogil=True)(rows)
        return self.kernels[dtype]

    def make(self, op, x, axis, out=None):
        code = self.CODES.get(op)
        if code is None or x.ndim == 0 or x.size == 0 or x.dtype not in (np.float32, np.float64):
            return None
        xv = np.moveaxis(x, axis, -1)
        n = xv.shape[-1]
        try:
            x2 = xv.reshape(-1, n, copy=False)
        except ValueError:                      # would need a copy: not this simple loop
            return None
        k = self.kernel(x.dtype.type)
        width = 1 if OP_INFO[op]["reduces"] else n
        if out is not None:
            try:
                y2 = (out if width == 1 else np.moveaxis(out, axis, -1)).reshape(-1, width,
                                                                                copy=False)
            except ValueError:
                return None

            def f():
                k(x2, y2, code)
                return out
            return f
        shape = xv.shape[:-1] if width == 1 else xv.shape

        def g():
            y = np.empty(shape, x.dtype)
            k(x2, y.reshape(-1, width), code)
            return y if width == 1 else np.moveaxis(y, -1, axis)
        return g


# The first one is fastsoftmax, the reference of every check; the others are in
# column order: fastsoftmax on one thread, the one-thread implementations, the
# multi-threaded ones.
IMPLEMENTATIONS = [FastSoftmax(), FastSoftmax1T(), NumPyFormula(), SciPy(), Torch1T(),
                   OnnxRuntime(), CopyTo(), Torch(), Jax(), Numba()]


# ---- environment -------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def header_info(impls, num_threads, skipped=(), cases=()):
    cfg = fsm.show_config(mode="dicts")
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {im.name: im.version() for im in impls},
        "fastsoftmax_config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
        "num_threads": num_threads,
        "threads": {im.name: im.threads() for im in impls},
        "one_thread": [im.name for im in impls if im.one_thread],
        "notes": {im.name: im.note for im in impls if im.note},
        "skipped": {im.name: im.why for im in skipped},
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE",
                                           "OPENBLAS_L2_SIZE", "FASTSOFTMAX_ISA", HIDE_ENV)
                if k in os.environ},
        "seed": SEED,
        "input": f"normal(0, {SIGMA ** 2:g}) (std {SIGMA:g})",
        "op_notes": {k: v for k, v in OP_NOTES.items()
                     if any(k in (c[0], c[3]) for c in cases)},
    }
    return info


def _field(label, text, out, width=100):
    """`label: text`, wrapped to `width` with the continuation lines indented."""
    lead = f"{label:<12}: "
    print(textwrap.fill(text, width, initial_indent=lead, subsequent_indent=" " * len(lead),
                        break_on_hyphens=False, break_long_words=False), file=out)


def print_header(info, impls, out):
    cfg = info["fastsoftmax_config"]
    print("fastsoftmax benchmark", file=out)
    _field("CPU", f"{info['cpu']} ({info['logical_cpus']} logical CPUs, "
                  f"{info['usable_cpus']} usable)", out)
    _field("fastsoftmax", f"{info['versions']['fastsoftmax']}, ISA {cfg['active_isa']} "
                          f"(available: {', '.join(cfg['available_isas'])}), "
                          f"OpenMP {'yes' if cfg['openmp'] else 'no'}, {cfg['compiler']} "
                          f"{cfg['flags']}", out)
    _field("threads", "; ".join(f"{im.name} {info['threads'][im.name]}"
                                for im in impls if info["threads"][im.name]), out)
    versions, seen = [f"Python {info['python']}"], set()
    for im in impls:
        if im.label and im.label not in seen:
            seen.add(im.label)
            versions.append(f"{im.label} {info['versions'][im.name]}")
    _field("versions", ", ".join(versions), out)
    if info["skipped"]:
        _field("skipped", "; ".join(f"{name} ({why})" for name, why in info["skipped"].items()),
               out)
    for name, note in info["notes"].items():
        _field("timed", f"{name}: {note}", out)
    _field("input", f"{info['input']}, seed {info['seed']}; times are medians of interleaved "
                    "samples", out)
    for name, note in info.get("op_notes", {}).items():
        _field("op", f"{name}: {note}", out)
    n = info["num_threads"]
    peers = [im for im in impls if not im.reference]
    one = [im.name for im in peers if im.one_thread]
    many = [im.name for im in peers if not im.one_thread]
    if n > 1:
        against = "; ".join(
            ([f"{', '.join(one)} against fastsoftmax 1t"] if one else [])
            + ([f"{', '.join(many)} against fastsoftmax {n}t"] if many else []))
    else:
        against = "all against fastsoftmax 1t"
    _field("ratio", f"their time / fastsoftmax's time on as many threads (> 1: fastsoftmax "
                    f"is faster): {against}. GB/s: (input + output bytes) / fastsoftmax "
                    f"{n}t's time. Shape RxN: reduced along the last axis, RxN:0 along axis "
                    "0; out=: into a preallocated array", out)
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in info["env"]:
            _field("note", f"{var}={info['env'][var]} is set; it can slow NumPy down: unset "
                           "it for fair numbers", out)


# ---- timing --------------------------------------------------------------------

def _sample(f, number):
    """Seconds per call over `number` back-to-back calls."""
    t0 = time.perf_counter()
    for _ in range(number):
        f()
    return (time.perf_counter() - t0) / number


def _calibrate(f, target):
    """(calls per sample so that a sample lasts >= target, seconds per call);
    the trial calls also warm f up."""
    number = 1
    while True:
        t = _sample(f, number)
        if t * number >= target / 5 or number >= 10**6:
            return max(1, math.ceil(target / t)), t
        number *= 10


def _shape_label(shape, axis=-1, out=False):
    """'4096x1000', '1000x4096:0' (reduced along axis 0), '... out='."""
    label = "x".join(map(str, shape))
    if axis != -1 and axis != len(shape) - 1:
        label += f":{axis}"
    return label + (" out=" if out else "")


def _case_label(res):
    return (f"{res['op']} {_shape_label(res['shape'], res['axis'], res.get('out'))} "
            f"{res['dtype']}")


def _check(op, dtype, ours, theirs, row_length=1):
    """(ok, max abs error, max rel error, remark) of `theirs` against fastsoftmax's result
    (for a tuple result, of every part: the worst errors, the first remark)."""
    tol = OP_INFO[op]["tol"]
    if not isinstance(tol, tuple):
        return _compare(ours, theirs, RTOL[dtype], ATOL[tol, dtype])
    if not isinstance(theirs, tuple) or len(theirs) != len(tol):
        return False, math.inf, math.inf, f"not a tuple of {len(tol)}"
    checks = []
    for a, b, part in zip(ours, theirs, tol):
        if part == "grad":      # (softmax - onehot) / rows, and softmax's tiny terms
            atol = ATOL["log", dtype] * row_length / max(a.size, 1) + ATOL["softmax", dtype]
        else:
            atol = ATOL[part, dtype]
        checks.append(_compare(a, b, RTOL[dtype], atol))
    return (all(c[0] for c in checks), max(c[1] for c in checks), max(c[2] for c in checks),
            next((c[3] for c in checks if c[3]), ""))


def _compare(ours, theirs, rtol, atol):
    """_check of one array.

    In chunks of CHECK_CHUNK elements, which keeps the float64 temporaries in
    cache: a whole-array check of a large case would take longer than timing it."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if theirs.shape != ours.shape:
        return False, math.inf, math.inf, f"shape {theirs.shape} != {ours.shape}"
    ours, theirs = ours.reshape(-1), theirs.reshape(-1)
    ok = same_nan = True
    abs_err = rel_err = 0.0
    with np.errstate(all="ignore"):
        for i in range(0, ours.size, CHECK_CHUNK):
            a = ours[i:i + CHECK_CHUNK].astype(np.float64)
            b = theirs[i:i + CHECK_CHUNK].astype(np.float64)
            diff = np.abs(np.subtract(a, b, out=b), out=b)
            mag = np.abs(a)
            close = diff <= mag * rtol + atol
            if not close.all():            # the slow path: NaNs, infinities, or a mismatch
                b = theirs[i:i + CHECK_CHUNK].astype(np.float64)
                nan_a, nan_b = np.isnan(a), np.isnan(b)
                same_nan = same_nan and np.array_equal(nan_a, nan_b)
                ok = ok and bool(np.all(close | (a == b) | (nan_a & nan_b)))
                finite = np.isfinite(diff)
                diff, mag = diff[finite], mag[finite]
            if diff.size:
                abs_err = max(abs_err, float(diff.max()))
                rel_err = max(rel_err, float((diff / np.maximum(mag, atol, out=mag)).max()))
    return ok and same_nan, abs_err, rel_err, "" if same_nan else "NaNs at different places"


def _to_numpy(im, value):
    """`im`'s result as NumPy array(s) (a tuple result part by part); `im` is an
    Implementation or a function."""
    convert = getattr(im, "to_numpy", im)
    return tuple(map(convert, value)) if isinstance(value, tuple) else convert(value)


def run_case(impls, op, shape, axis, dtype, *, out=False, repeat, min_repeat, budget, target,
             log):
    """Check and time every implementation on one case; returns a result dict.

    With `out`, every implementation that can writes into one preallocated
    output array, the same for all."""
    start = time.perf_counter()
    if out and not OP_INFO[op].get("out", True):
        raise ValueError(f"{op} has no out= cases")
    x = make_input(shape, dtype)
    n = shape[axis]
    # bytes: the input read and the output written (cross_entropy: the logits and
    # the gradient; masked_softmax: the scores and the result, not the small mask)
    out_size = math.prod(output_shape(op, shape, axis))
    res = {"op": op, "shape": list(shape), "axis": axis, "dtype": dtype, "out": bool(out),
           "row_length": n, "bytes": int(x.nbytes + out_size * x.itemsize), "impls": {}}
    y = np.zeros(output_shape(op, shape, axis), dtype) if out else None
    label = _case_label(res)
    calls = []
    ours = None              # fastsoftmax's result, the reference of the checks
    for i, im in enumerate(impls):
        r = res["impls"][im.name] = {}
        try:
            with im.context():
                f = im.make(op, x, axis) if y is None else im.make(op, x, axis, out=y)
                if f is None:
                    r["status"] = "unsupported"
                    continue
                t = time.perf_counter()
                value = f()
                t_first = time.perf_counter() - t
                value = _to_numpy(im, value) if im.checked else None
        except Exception as e:       # report and go on with the others
            r.update(status="error", error=f"{type(e).__name__}: {e}")
            log(f"!! ERROR: {im.name} {label}: {type(e).__name__}: {e}")
            continue
        if i == 0:
            ours = _to_numpy(np.array, value)    # a copy (out= cases: y is overwritten next)
            r["status"] = "ok"
        elif not im.checked:
            r["status"] = "reference"
        elif ours is None:
            r["status"] = "unchecked"
        else:
            ok, abs_err, rel_err, why = _check(op, dtype, ours, value, n)
            r.update(status="ok" if ok else "mismatch", max_abs_err=abs_err, max_rel_err=rel_err)
            if not ok:
                log(f"!! MISMATCH: {im.name} differs from fastsoftmax on {label}: "
                    f"max abs err {abs_err:.3g}, max rel err {rel_err:.3g} "
                    f"(rtol {RTOL[dtype]:g}) {why}")
        del value
        if t_first >= 10 * target:       # one call per sample whatever the warm-up saves
            number, t1 = 1, t_first
        else:
            with im.context():
                number, t1 = _calibrate(f, target)
        r["number"] = number
        calls.append((im, f, number, t1))
    del ours
    if not calls:
        res["wall_s"] = time.perf_counter() - start
        return res

    # Repetitions: the given count, or as many as fit the time budget per
    # implementation (at least min_repeat).
    if repeat is None:
        slowest = max(t * number for _, _, number, t in calls)
        repeat = int(min(max(MAX_REPEAT, min_repeat), max(min_repeat, budget // slowest)))
    samples = {im.name: [] for im, *_ in calls}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(repeat):
            k = i % len(calls)
            for im, f, number, _ in calls[k:] + calls[:k]:
                with im.context():
                    samples[im.name].append(_sample(f, number))
    finally:
        if gc_was_enabled:
            gc.enable()
    for name, ts in samples.items():
        res["impls"][name].update(times=ts, median=statistics.median(ts))
    res["repeat"] = repeat
    res["wall_s"] = time.perf_counter() - start
    return res


# ---- output ----------------------------------------------------------------------

def fmt_time(t):
    if t is None:
        return "n/a"
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    if t < 1:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def _baseline(impls, im):
    """The fastsoftmax implementation `im`'s ratio is taken against."""
    if im.one_thread:
        for ref in impls:
            if ref.reference and ref.one_thread:
                return ref
    return impls[0]


def table_rows(results, impls, times=False):
    """(head, rows) of the table: fastsoftmax's times and GB/s, then one ratio
    column per other implementation (with `times`: a time and a ratio column)."""
    refs = [im for im in impls if im.reference]
    if len(refs) > 1:                     # 1t first
        refs.sort(key=lambda im: not im.one_thread)
    n = impls[0].nthreads() if hasattr(impls[0], "nthreads") else None
    # Columns for the implementations with anything to show in some row.
    peers = [im for im in impls if not im.reference
             and any(res["impls"].get(im.name, {}).get("status", "unsupported") != "unsupported"
                     for res in results)]
    head = ["op", "shape", "dtype"]
    for ref in refs:
        head.append("fastsoftmax 1t" if ref.one_thread else
                    f"fastsoftmax {n}t" if n else "fastsoftmax")
    head.append("GB/s")
    for im in peers:
        head += [im.name, "ratio"] if times else [im.name]
    rows = []
    for res in results:
        row = [res["op"], _shape_label(res["shape"], res["axis"], res.get("out")), res["dtype"]]
        for ref in refs:
            r = res["impls"].get(ref.name, {})
            row.append(fmt_time(r["median"]) if r.get("median") else r.get("status", "n/a"))
        t0 = res["impls"].get(impls[0].name, {}).get("median")
        row.append(f"{res['bytes'] / t0 / 1e9:.2f}" if t0 else "")
        for im in peers:
            r = res["impls"].get(im.name, {})
            t = r.get("median")
            base = res["impls"].get(_baseline(impls, im).name, {}).get("median")
            if t is None:
                status = r.get("status", "n/a")
                cell = "-" if status == "unsupported" else status
                row += [cell, ""] if times else [cell]
                continue
            flag = " (!)" if r.get("status") == "mismatch" else ""
            ratio = f"{t / base:.2f}" if base else ""
            row += [fmt_time(t) + flag, ratio] if times else [ratio + flag]
        rows.append(row)
    return head, rows


def format_table(head, rows, left=3):
    """A Markdown table, aligned; the first `left` columns left-aligned, the
    others right-aligned."""
    widths = [max(len(c) for c in col) for col in zip(head, *rows)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if i < left else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    sep = "|" + "|".join((":" + "-" * (w + 1)) if i < left else ("-" * (w + 1) + ":")
                         for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), sep] + [line(r) for r in rows])


class Progress:
    """A counter line on stderr, shown once a run has lasted a few seconds
    (tqdm's bar when tqdm is installed); a line every 10 s when stderr is not
    a terminal."""

    DELAY = 2.0

    def __init__(self, total, enabled=True):
        self.total, self.i, self.enabled = total, 0, enabled
        self.start = time.perf_counter()
        self.last = 0.0
        self.shown = False
        self.tty = sys.stderr.isatty()
        self.bar = None
        if enabled and self.tty:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, file=sys.stderr, delay=self.DELAY, leave=False,
                                unit="case")
            except Exception:
                self.bar = None

    def step(self, label):
        """Announce the case about to run."""
        if not self.enabled:
            return
        self.i += 1
        if self.bar is not None:
            self.bar.set_description(label, refresh=False)
            if self.i > 1:
                self.bar.update(1)
            return
        now = time.perf_counter() - self.start
        if now < self.DELAY:
            return
        text = f"[{self.i}/{self.total}] {label}  ({now:.0f} s)"
        if self.tty:
            sys.stderr.write("\r" + text.ljust(72)[:100])
            sys.stderr.flush()
            self.shown = True
        elif now - self.last >= 10:           # a log file: a line every 10 s at most
            print(text, file=sys.stderr, flush=True)
            self.last = now

    def log(self, msg):
        """Print a message without garbling the progress line."""
        self.clear()
        print(msg, file=sys.stderr, flush=True)

    def clear(self):
        if self.bar is not None:
            self.bar.clear()
        elif self.shown:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()
            self.shown = False

    def close(self):
        if self.bar is not None:
            self.bar.close()
        else:
            self.clear()


# ---- the runs ---------------------------------------------------------------------

def run(cases, impls, *, repeat=None, min_repeat=5, budget=2.0, target=TARGET_SAMPLE_S,
        progress=True):
    """Check and time `cases` (``Case`` tuples, or (op, shape, axis, dtype)); a
    list of results."""
    prog = Progress(len(cases), enabled=progress)
    results = []
    try:
        for case in cases:
            op, shape, axis, dtype, *rest = case
            out = bool(rest and rest[0])
            prog.step(f"{op} {_shape_label(shape, axis, out)} {dtype}")
            results.append(run_case(impls, op, shape, axis, dtype, out=out, repeat=repeat,
                                    min_repeat=min_repeat, budget=budget, target=target,
                                    log=prog.log))
    finally:
        prog.close()
    return results


def _split(values):
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _parse_shape(text):
    """'64x1000' (last axis) or '1000x4096:0' (axis 0)."""
    shape, _, axis = text.partition(":")
    return tuple(int(s) for s in shape.lower().split("x")), int(axis) if axis else -1


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m fastsoftmax.bench",
        description="Time fastsoftmax beside NumPy, SciPy and, when installed, PyTorch, ONNX "
                    "Runtime, JAX and Numba, check every result against fastsoftmax's, and "
                    "print a Markdown table of medians and ratios (theirs / ours, on as many "
                    "threads). For fair NumPy numbers: unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE.",
        epilog=f"{HIDE_ENV}=torch,jax (module names) treats those libraries as not installed.")
    p.add_argument("--quick", action="store_true",
                   help="fewer cases and samples (under a minute)")
    p.add_argument("--ops", nargs="+", metavar="OP",
                   help=f"operations to time (comma or space separated; default: all of "
                        f"{', '.join(OPS)})")
    p.add_argument("--dtypes", nargs="+", metavar="DTYPE",
                   help=f"dtypes, of {', '.join(ALL_DTYPES)} (default: float32,float64 for "
                        "softmax, log_softmax and logsumexp, and the ML cases' own; the out= "
                        "cases are float32)")
    p.add_argument("--shapes", nargs="+", metavar="SHAPE",
                   help="shapes such as 64x1000 (reduced along the last axis) or 1000x4096:0 "
                        "(along axis 0), for every op (default: a fixed set)")
    p.add_argument("--out", action="store_true",
                   help="with --shapes: write into a preallocated out= array")
    p.add_argument("--impls", nargs="+", metavar="NAME",
                   help="implementations to compare with fastsoftmax (default: all available: "
                        + ", ".join(im.name for im in IMPLEMENTATIONS if not im.reference) + ")")
    p.add_argument("--threads", type=int, metavar="N",
                   help="N: num_threads for fastsoftmax, torch.set_num_threads and "
                        "numba.set_num_threads (default: each library's default; fastsoftmax's "
                        "is fastsoftmax.get_num_threads())")
    p.add_argument("--repeat", type=int, metavar="N",
                   help="samples per implementation and case (default: as many as fit a time "
                        "budget, 5 to 25; 3 to 25 with --quick)")
    p.add_argument("--times", action="store_true",
                   help="show every implementation's median time beside its ratio")
    p.add_argument("--json", metavar="PATH", help="write the header and every sample to PATH")
    p.add_argument("--plot", metavar="PATH.png",
                   help="also sweep the row length at a fixed array size and plot GB/s against "
                        "it, per implementation (needs matplotlib)")
    p.add_argument("--sweep", action="store_true",
                   help="run and print the row-length sweep (implied by --plot)")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    return p


def select_cases(args, parser):
    ops = _split(args.ops) if args.ops else list(OPS)
    dtypes = _split(args.dtypes) if args.dtypes else list(DTYPES)
    for op in ops:
        if op not in OPS:
            parser.error(f"unknown op {op!r}; choose from {', '.join(OPS)}")
    for dt in dtypes:
        if dt not in ALL_DTYPES:
            parser.error(f"unsupported dtype {dt!r}; choose from {', '.join(ALL_DTYPES)}")
    if args.out:
        no_out = [op for op in ops if not OP_INFO[op].get("out", True)]
        if no_out:
            parser.error(f"--out: {', '.join(no_out)} has no out= (choose --ops from "
                         f"{', '.join(op for op in OPS if OP_INFO[op].get('out', True))})")
    if args.shapes:
        try:
            shapes = [_parse_shape(s) for s in _split(args.shapes)]
            for shape, axis in shapes:
                if not shape or min(shape) < 1 or not -len(shape) <= axis < len(shape):
                    raise ValueError
        except ValueError:
            parser.error(f"bad --shapes {' '.join(args.shapes)}; use e.g. 64x1000 or 1000x4096:0")
        return [Case(op, shape, axis, dt, args.out)
                for op in ops for shape, axis in shapes for dt in dtypes]
    if args.out:
        parser.error("--out goes with --shapes")
    return [c for c in default_cases(args.quick)
            if c.op in ops and (not args.dtypes or c.dtype in dtypes)]


def sweep_cases(args):
    ops = _split(args.ops) if args.ops else list(BASE_OPS)
    dtypes = _split(args.dtypes) if args.dtypes else list(DTYPES)
    lengths = SWEEP_LENGTHS[::2] + SWEEP_LENGTHS[-1:] if args.quick else SWEEP_LENGTHS
    return [Case(op, (SWEEP_ELEMENTS // n, n), -1, dt)
            for op in ops for n in lengths for dt in dtypes]


def plot(path, results, impls, info):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(r["op"], r["dtype"]) for r in results},
                  key=lambda k: (OPS.index(k[0]), k[1]))
    ops = sorted({k[0] for k in keys}, key=OPS.index)
    dtypes = sorted({k[1] for k in keys})
    fig, axes = plt.subplots(len(ops), len(dtypes), squeeze=False,
                             figsize=(max(7.0, 5.5 * len(dtypes)), 0.6 + 3.6 * len(ops)))
    for i, op in enumerate(ops):
        for j, dt in enumerate(dtypes):
            ax = axes[i][j]
            rs = sorted((r for r in results if r["op"] == op and r["dtype"] == dt),
                        key=lambda r: r["row_length"])
            for im in impls:
                pts = [(r["row_length"], r["bytes"] / r["impls"][im.name]["median"] / 1e9)
                       for r in rs if r["impls"].get(im.name, {}).get("median")]
                if pts:
                    ax.plot(*zip(*pts), marker="o", label=im.name,
                            linestyle="--" if im.one_thread else "-",
                            linewidth=2.5 if im.reference else 1.5)
            ax.set_xscale("log", base=2)
            ax.set_title(f"{op}, {dt}")
            ax.set_xlabel(f"row length (rows x length = {SWEEP_ELEMENTS} elements)")
            ax.set_ylabel("GB/s (in + out)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize="small")
    cfg = info["fastsoftmax_config"]
    fig.suptitle(f"fastsoftmax {info['versions']['fastsoftmax']} ({cfg['active_isa']}, "
                 f"{info['num_threads']} threads; dashed: one thread), NumPy {np.__version__}"
                 f"\n{info['cpu']}", fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def choose_implementations(args, parser, cases=None):
    """(implementations to run, the skipped ones): fastsoftmax first, fastsoftmax
    on one thread if fastsoftmax runs on more, then the available others (the
    out=-only ones if some of `cases` have out=)."""
    refs = [im for im in IMPLEMENTATIONS if im.reference]
    others = [im for im in IMPLEMENTATIONS if not im.reference]
    wanted = set(_split(args.impls)) if args.impls else None
    if wanted is not None:
        unknown = wanted - {im.name for im in IMPLEMENTATIONS}
        if unknown:
            parser.error(f"unknown implementation(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(im.name for im in others)}")
    FastSoftmax.num_threads = Torch.num_threads = Numba.num_threads = args.threads
    refs[0].available()
    impls = [refs[0]]
    if refs[0].nthreads() > 1:
        impls += [im for im in refs[1:] if im.available()]
    skipped = []
    with_out = cases is None or any(len(c) > 4 and c[4] for c in cases)
    for im in others:
        if (wanted is not None and im.name not in wanted) or (im.out_only and not with_out):
            continue
        if im.available():
            impls.append(im)
        else:
            skipped.append(im)
    return impls, skipped


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    cases = select_cases(args, parser)
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib, which is not installed "
                         "(pip install matplotlib, or pip install 'fastsoftmax[bench]')")

    t0 = time.perf_counter()
    impls, skipped = choose_implementations(args, parser, cases)
    num_threads = impls[0].nthreads()
    info = header_info(impls, num_threads, skipped, cases)
    out = sys.stdout
    print_header(info, impls, out)
    print(file=out, flush=True)

    opts = dict(repeat=args.repeat, min_repeat=3 if args.quick else 5,
                budget=0.3 if args.quick else 1.5, progress=not args.no_progress)
    results = run(cases, impls, **opts)
    print(format_table(*table_rows(results, impls, args.times)), file=out, flush=True)

    sweep = []
    if args.sweep or args.plot:
        sweep = run(sweep_cases(args), impls, **opts)
        print(f"\nRow-length sweep ({SWEEP_ELEMENTS} elements per array):", file=out)
        print(format_table(*table_rows(sweep, impls, args.times)), file=out, flush=True)
    elapsed = time.perf_counter() - t0

    failures = [(res, name, r) for res in results + sweep for name, r in res["impls"].items()
                if r.get("status") in ("mismatch", "error")]
    print(f"\n{len(results) + len(sweep)} cases in {elapsed:.0f} s.", file=out)
    if failures:
        print(f"\n!! {len(failures)} FAILED CHECK(S) (results differ from fastsoftmax's or "
              "the call raised):", file=out)
        for res, name, r in failures:
            what = r.get("error") or (f"max abs err {r['max_abs_err']:.3g}, "
                                      f"max rel err {r['max_rel_err']:.3g}")
            print(f"!!   {name}: {_case_label(res)}: {r['status']}: {what}", file=out)

    if args.json:
        doc = {"header": info, "argv": sys.argv[1:] if argv is None else list(argv),
               "method": {"target_sample_s": TARGET_SAMPLE_S, "rtol": RTOL,
                          "interleaved": True, "times": "seconds per call, one per sample",
                          "ratio_against": {im.name: _baseline(impls, im).name
                                            for im in impls if not im.reference}},
               "results": results, "sweep": sweep}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {args.json}", file=out)
    if args.plot:
        plot(args.plot, sweep, impls, info)
        print(f"wrote {args.plot}", file=out)
    out.flush()
    if failures:
        sys.exit(1)
    return results


if __name__ == "__main__":
    main()
