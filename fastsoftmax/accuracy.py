"""Accuracy of fastsoftmax (and NumPy, SciPy, PyTorch) against exact math.

Run it as::

    python -m fastsoftmax.accuracy              # the default set (under a minute)
    python -m fastsoftmax.accuracy --full       # adds rows of 10**7 elements
    python -m fastsoftmax.accuracy --all-isas   # one fastsoftmax column per instruction set
    python -m fastsoftmax.accuracy --help

It prints one Markdown table per function (softmax, log_softmax, logsumexp):
a row per dtype x input distribution x shape, a column per implementation, and
the bound that fastsoftmax's tests hold (``tests/test_accuracy.py`` uses the
reference, metrics and bounds of this module, so the script and the tests
agree).  Cells above the bound are shown in bold.

Inputs
------
``N(mu, var)`` is the normal distribution with mean ``mu`` and *variance*
``var`` (so ``N(0,4)`` has standard deviation 2 and ``N(0,30)`` standard
deviation sqrt(30) = 5.48); ``U(a,b)`` is uniform on [a, b).  The values are
drawn in float64 with a fixed seed and rounded to the dtype under test, so the
float32 and float64 inputs of a case hold the same numbers up to rounding.
Shapes: 64 rows of 10**3 along the last axis, the same 10**3 x 64 along axis 0
(a different kernel path: rows side by side in memory), one row of 10**6, and
with ``--full`` one row of 10**7.

Reference
---------
Exact math on the given inputs, rounded once at the end to the output dtype
(DESIGN §5).  It is computed in ``np.longdouble`` (the x87 80-bit format on
x86-64 Linux: a 64-bit significand, 11 more bits than float64) for both
float32 and float64 results:

- ``d = x - max`` with its rounding error ``err`` (TwoSum), so that
  ``x - max == d + err`` exactly;
- ``exp(x - max) = exp(d) * (1 + err)`` (``expl``: error below 1e-19);
- ``s = 1 + t``, where ``t`` is the sum of the other terms than one maximal
  one (exactly 1), with NumPy's pairwise summation over each row (made
  contiguous first), error ``O(log2(n) * 1e-19)``;
- softmax ``exp(x - max) / s``, log_softmax ``(d - log1p(t)) + err``,
  logsumexp ``max + log1p(t)`` (``log1p``: accurate relative to itself also
  when the other terms are tiny, as in ``logsumexp([0, -40]) = 4.2e-18``).

That is within about 1e-18 (relative) of the exact value, 1e-2 of a float64
ulp, so rounding it to float64 gives the correctly rounded result except in
rare near-ties.  mpmath is used to *validate* this reference: the script
compares it with a 40-digit mpmath computation on one float64 row of 10**3 of
every distribution and prints the largest deviation (``reference check`` in
the header).  Where ``np.longdouble`` is no wider than float64 (arm64 macOS,
Windows, ...), float32 results use the same algorithm in float64 (enough for
float32: the reference's error is then 1e-16 against a float32 ulp of 6e-8)
and float64 results are computed with mpmath, element by element (slow: about
10 s per 10**6 elements).

Metrics (per cell: the maximum over all outputs of the case)
-------------------------------------------------------------
``softmax``
    relative error ``|y - ref| / ref`` over the outputs whose reference is at
    least 1e-30 (float32) or 1e-300 (float64); smaller outputs are not
    measured (fastsoftmax flushes terms below the smallest normal number to 0).
``log_softmax``, ``logsumexp``
    ``|y - ref| / ulp(max(1, |ref|))`` with ``ulp(v) = np.spacing(v)`` in the
    output dtype: ulps of the value, or of 1 for values of magnitude below 1
    (which cross 0, where relative error means nothing).

``ref`` is the reference rounded to the output dtype, so a correctly rounded
result has error 0.  A NaN or infinity where the reference is finite counts as
an infinite error.

Implementations
---------------
``fastsoftmax`` (the active instruction set, ``--isa NAME``, or each with
``--all-isas``), and those of ``fastsoftmax.bench`` that are installed: the
hand-written NumPy formula, ``scipy.special`` and ``torch`` (on
``torch.from_numpy(x)``, same dtype).  Results are compared in the input's
dtype.
"""
import argparse
import json
import math
import platform
import sys
import time
from collections import namedtuple

import numpy as np

import fastsoftmax as fsm
from fastsoftmax import _kernels

__all__ = ["main", "run", "reference", "reference_mpmath", "error", "softmax_error",
           "log_ulp_error", "make_input", "FUNCTIONS", "DTYPES", "DISTRIBUTIONS", "CASES",
           "FULL_CASES", "BOUNDS", "TINY", "Case"]

FUNCTIONS = ("softmax", "log_softmax", "logsumexp")
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# name -> draw(rng, shape) in float64.  N(mean, variance): N(0,4) has std 2.
DISTRIBUTIONS = {
    "N(0,1)": lambda rng, shape: rng.normal(0.0, 1.0, shape),
    "N(0,4)": lambda rng, shape: rng.normal(0.0, 2.0, shape),
    "N(0,30)": lambda rng, shape: rng.normal(0.0, math.sqrt(30.0), shape),
    "U(-100,100)": lambda rng, shape: rng.uniform(-100.0, 100.0, shape),
    "N(0,4)+1000": lambda rng, shape: rng.normal(1000.0, 2.0, shape),
}

Case = namedtuple("Case", "name shape axis")
CASES = (
    Case("64 rows x 10^3", (64, 1000), -1),
    Case("10^3 x 64, axis 0", (1000, 64), 0),
    Case("1 row x 10^6", (1, 10**6), -1),
)
FULL_CASES = CASES + (Case("1 row x 10^7", (1, 10**7), -1),)
QUICK_CASES = CASES[:2]

# Smallest softmax output whose relative error is measured.
TINY = {np.dtype(np.float32): 1e-30, np.dtype(np.float64): 1e-300}

# What fastsoftmax's tests hold (issue 4): softmax in relative error, the logs
# in ulps of max(1, |value|).
BOUNDS = {
    ("softmax", np.dtype(np.float32)): 4e-7,
    ("softmax", np.dtype(np.float64)): 8e-16,
    ("log_softmax", np.dtype(np.float32)): 4.0,
    ("log_softmax", np.dtype(np.float64)): 4.0,
    ("logsumexp", np.dtype(np.float32)): 2.0,
    ("logsumexp", np.dtype(np.float64)): 4.0,
}
UNITS = {"softmax": "relative error", "log_softmax": "ulps of max(1, |value|)",
         "logsumexp": "ulps of max(1, |value|)"}

SEED = 20240401
MPMATH_DPS = 40

_F64 = np.dtype(np.float64)
_LONGDOUBLE = np.dtype(np.longdouble)
LONGDOUBLE_IS_WIDER = np.finfo(_LONGDOUBLE).eps < np.finfo(_F64).eps
_CHUNK = 1 << 18      # elements per row chunk of the reference's temporaries


# ---- inputs ------------------------------------------------------------------

def make_input(distribution, shape, dtype, seed=SEED):
    """The input of a case: drawn in float64 from `distribution` (a key of
    DISTRIBUTIONS) with a seed fixed by (seed, distribution, shape), then
    rounded to `dtype`.  The same arguments give the same array."""
    names = list(DISTRIBUTIONS)
    shape = tuple(int(s) for s in shape)
    rng = np.random.default_rng([seed, names.index(distribution), *shape])
    return DISTRIBUTIONS[distribution](rng, shape).astype(dtype)


# ---- reference ------------------------------------------------------------------

def _wide_dtype(out_dtype):
    """The dtype the reference computes in, or None for mpmath."""
    if LONGDOUBLE_IS_WIDER:
        return _LONGDOUBLE
    return _F64 if np.dtype(out_dtype) == np.float32 else None


def _as_rows(x, axis):
    """(C-contiguous (rows, n) array, function mapping (rows, n) back to x's layout,
    shape of the reduced result)."""
    x = np.asarray(x)
    axis = axis % x.ndim if x.ndim else 0
    if x.ndim == 0:
        x = x.reshape(1)
    moved = np.moveaxis(x, axis, -1)
    rest = moved.shape[:-1]
    n = moved.shape[-1]
    rows = np.ascontiguousarray(moved).reshape(-1, n)

    def back(y2):
        return np.moveaxis(y2.reshape(rest + (n,)), -1, axis).reshape(np.shape(x))

    return rows, back, rest


def _reference_rows(x2, funcs, wide, out_dtype):
    """The reference on the rows of x2 (C-contiguous, finite), in dtype `wide`;
    rounded to out_dtype unless out_dtype is None."""
    r, n = x2.shape
    m = x2.max(axis=1, keepdims=True).astype(wide)     # exact

    def reduced(j0, j1):
        """d = x - m and its rounding error (TwoSum): x - m == d + err exactly."""
        xc = x2[:, j0:j1].astype(wide)
        d = xc - m
        x_part = d + m
        m_part = x_part - d
        err = (xc - x_part) - (m - m_part)
        return d, err

    e = np.empty((r, n), wide)
    for j0 in range(0, n, _CHUNK):
        j1 = min(n, j0 + _CHUNK)
        d, err = reduced(j0, j1)
        ec = np.exp(d)
        ec += ec * err                  # exp(d + err) = exp(d) * (1 + err + O(err**2))
        e[:, j0:j1] = ec
    # s = 1 + t, where t sums every term but one maximal one (which is exactly 1):
    # log(s) = log1p(t) is then accurate relative to itself even when the other
    # terms are tiny (logsumexp([0, -40]) = 4.2e-18).  np.sum is pairwise along
    # the contiguous rows.
    first_max = (np.arange(r), np.argmax(x2, axis=1))
    e[first_max] = 0
    t = np.sum(e, axis=1, keepdims=True)
    e[first_max] = 1
    s = 1 + t
    log_s = np.log1p(t)

    def final(v):
        return v if out_dtype is None else v.astype(out_dtype)

    res = {}
    if "softmax" in funcs:
        if out_dtype is None:
            e /= s
            res["softmax"] = e
        else:
            y = np.empty((r, n), out_dtype)
            for j0 in range(0, n, _CHUNK):
                j1 = min(n, j0 + _CHUNK)
                y[:, j0:j1] = e[:, j0:j1] / s
            res["softmax"] = y
    del e
    if "log_softmax" in funcs:
        y = np.empty((r, n), wide if out_dtype is None else out_dtype)
        for j0 in range(0, n, _CHUNK):
            j1 = min(n, j0 + _CHUNK)
            d, err = reduced(j0, j1)
            y[:, j0:j1] = (d - log_s) + err
        res["log_softmax"] = y
    if "logsumexp" in funcs:
        res["logsumexp"] = final((m + log_s)[:, 0])
    return res


def _mpmath_rows(x2, funcs, dps=MPMATH_DPS):
    """The same quantities with mpmath at `dps` digits, as object arrays of mpf."""
    import mpmath

    r, n = x2.shape
    res = {f: np.empty((r, n) if f != "logsumexp" else (r,), dtype=object) for f in funcs}
    with mpmath.workdps(dps):
        for i in range(r):
            xs = [mpmath.mpf(float(v)) for v in x2[i]]
            m = max(xs)
            es = [mpmath.exp(v - m) for v in xs]
            log_s = mpmath.log(mpmath.fsum(es))     # dps digits relative, also near 0
            s = mpmath.exp(log_s) if "softmax" in funcs else None
            if "softmax" in funcs:
                res["softmax"][i] = [v / s for v in es]
            if "log_softmax" in funcs:
                res["log_softmax"][i] = [(v - m) - log_s for v in xs]
            if "logsumexp" in funcs:
                res["logsumexp"][i] = m + log_s
    return res


def _mp_round(a, dtype):
    """Object array of mpf -> dtype, rounded once, to nearest (subnormals aside)."""
    import mpmath

    bits = np.finfo(dtype).nmant + 1
    with mpmath.workprec(bits):
        vals = [float(+v) for v in a.ravel()]     # unary plus rounds to `bits`
    return np.array(vals, dtype=_F64).reshape(a.shape).astype(dtype)


def _to_mpf(v):
    """A float32/float64/longdouble scalar as an mpf, exactly."""
    import mpmath

    hi = float(v)
    lo = float(np.longdouble(v) - np.longdouble(hi))   # exact: the rest fits a double
    with mpmath.workprec(200):
        return mpmath.mpf(hi) + mpmath.mpf(lo)


def reference(x, axis=-1, funcs=FUNCTIONS, rounded=True):
    """Exact softmax / log_softmax / logsumexp of the values of `x` along `axis`.

    Returns {func: array} for the names in `funcs`: softmax and log_softmax with
    x's shape, logsumexp with the shape of x without `axis`.  With
    ``rounded=True`` (the default) the values are rounded once, at the end, to
    x's dtype (float32 or float64); with ``rounded=False`` they are returned in
    the dtype of the computation (np.longdouble where it is wider than float64;
    otherwise float64 for float32 input and mpf objects for float64 input).
    Inputs with NaN or infinities follow fastsoftmax._reference's limits,
    evaluated in the wide dtype.  See the module docstring for the method.
    """
    x = np.asarray(x)
    dtype = x.dtype
    if dtype not in DTYPES:
        raise TypeError(f"reference: float32 or float64 input, not {dtype}")
    funcs = tuple(funcs)
    rows, back, rest = _as_rows(x, axis)
    wide = _wide_dtype(dtype)
    out_dtype = dtype if rounded else None
    if rows.shape[1] == 0 or not np.isfinite(rows).all():
        from fastsoftmax import _reference
        w = wide if wide is not None else _LONGDOUBLE
        xr = rows.astype(w)
        res = {}
        for f in funcs:
            kw = {"axis": -1}
            v = np.asarray(getattr(_reference, f)(xr, **kw))
            res[f] = v if out_dtype is None else v.astype(out_dtype)
    elif wide is None:
        res = _mpmath_rows(rows, funcs)
        if rounded:
            res = {f: _mp_round(v, dtype) for f, v in res.items()}
    else:
        res = _reference_rows(rows, funcs, wide, out_dtype)
    out = {}
    for f in funcs:
        v = res[f]
        out[f] = v.reshape(rest) if f == "logsumexp" else back(v)
    return out


def reference_mpmath(x, axis=-1, funcs=FUNCTIONS, dps=MPMATH_DPS):
    """The reference computed with mpmath at `dps` digits (slow: for samples):
    {func: object array of mpmath.mpf}, shaped as reference()'s."""
    x = np.asarray(x)
    rows, back, rest = _as_rows(x, axis)
    res = _mpmath_rows(rows, tuple(funcs), dps)
    return {f: (v.reshape(rest) if f == "logsumexp" else back(v)) for f, v in res.items()}


def check_reference(x, axis=-1, dps=MPMATH_DPS):
    """Compare reference(x, rounded=False) with mpmath: {func: (largest deviation
    in units of the output dtype's ulp -- relative for softmax, of max(1, |v|)
    for the logs --, number of values whose rounding to x's dtype differs)}.
    Only meaningful where the reference is not itself mpmath."""
    import mpmath

    x = np.asarray(x)
    dtype = x.dtype
    ours = reference(x, axis, rounded=False)
    exact = reference_mpmath(x, axis, dps=dps)
    eps = float(np.finfo(dtype).eps)
    out = {}
    with mpmath.workdps(dps):
        for f in FUNCTIONS:
            o = np.asarray(ours[f]).ravel()
            e = exact[f].ravel()
            worst = 0.0
            for a, b in zip(o, e):
                a = _to_mpf(a)
                if f == "softmax":
                    dev = abs(a - b) / abs(b) / eps if b != 0 else 0.0
                else:
                    dev = abs(a - b) / np.spacing(dtype.type(max(1.0, abs(float(b)))))
                worst = max(worst, float(dev))
            differ = int(np.count_nonzero(np.asarray(o).astype(dtype) != _mp_round(e, dtype)))
            out[f] = (worst, differ)
    return out


# ---- metrics --------------------------------------------------------------------

def _prepare(y, ref, dtype):
    dtype = np.dtype(np.asarray(ref).dtype if dtype is None else dtype)
    y = np.asarray(y)
    ref = np.asarray(ref)
    if y.shape != ref.shape:
        raise ValueError(f"result of shape {y.shape}, reference of shape {ref.shape}")
    # Both in the output dtype, then in float64, where their difference is exact
    # whenever they are within a factor 2 (Sterbenz).
    r = ref.astype(dtype).astype(_F64)
    with np.errstate(over="ignore"):
        a = y.astype(dtype).astype(_F64)
    return a, r, dtype


def _max(v):
    return float(v.max()) if v.size else 0.0


def _nonfinite_errors(a, r):
    """Error of the elements where the result or the reference is not finite: 0 if
    they agree (same infinity, or both NaN), inf otherwise."""
    bad = ~(np.isfinite(a) & np.isfinite(r))
    if not bad.any():
        return 0.0, bad
    ab, rb = a[bad], r[bad]
    agree = (ab == rb) | (np.isnan(ab) & np.isnan(rb))
    return (0.0 if agree.all() else math.inf), bad


def softmax_error(y, ref, dtype=None):
    """Max relative error of softmax outputs `y` against `ref` (exact or already
    rounded; rounded here to `dtype`, default ref's dtype), over the outputs whose
    reference is >= TINY[dtype]."""
    a, r, dtype = _prepare(y, ref, dtype)
    worst, bad = _nonfinite_errors(a, r)
    keep = ~bad & (r >= TINY[dtype])
    with np.errstate(all="ignore"):
        rel = np.abs(a[keep] - r[keep]) / r[keep]
    return max(worst, _max(rel))


def ulp(v, dtype):
    """np.spacing of |v| in `dtype` (the distance to the next larger number)."""
    return np.spacing(np.abs(np.asarray(v)).astype(dtype)).astype(_F64)


def log_ulp_error(y, ref, dtype=None):
    """Max of |y - ref| / ulp(max(1, |ref|)) in `dtype` (default ref's), for
    log_softmax and logsumexp; ref is rounded to dtype first."""
    a, r, dtype = _prepare(y, ref, dtype)
    worst, bad = _nonfinite_errors(a, r)
    a, r = a[~bad], r[~bad]
    with np.errstate(all="ignore"):
        err = np.abs(a - r) / ulp(np.maximum(1.0, np.abs(r)), dtype)
    return max(worst, _max(err))


def error(func, y, ref, dtype=None):
    """The metric of `func` (softmax_error or log_ulp_error)."""
    return (softmax_error if func == "softmax" else log_ulp_error)(y, ref, dtype)


# ---- implementations -------------------------------------------------------------

def _fastsoftmax(isa):
    def make(func, x, axis):
        f = getattr(fsm, func)

        def call():
            before = _kernels.isa()
            _kernels.set_isa(isa)
            try:
                return f(x, axis=axis)
            finally:
                _kernels.set_isa(before)
        return call
    return make


def _others(wanted=None):
    """(name, version, make) of fastsoftmax.bench's other implementations that import."""
    from fastsoftmax import bench

    out, skipped = [], []
    for im in bench.IMPLEMENTATIONS:
        # fastsoftmax itself (any thread count) is measured per instruction set;
        # out-only entries (np.copyto) compute nothing.
        if im.name.startswith("fastsoftmax") or im.out_only or (wanted is not None and im.name not in wanted):
            continue
        if im.available():
            out.append((im.name, im.version(), _converted(im)))
        else:
            skipped.append(im.name)
    return out, skipped


def _converted(im):
    """im.make, with the result as a NumPy array, computed in im's context."""
    def make(func, x, axis):
        f = im.make(func, x, axis)
        if f is None:
            return None

        def call():
            with im.context():
                return im.to_numpy(f())
        return call
    return make


# ---- the run ---------------------------------------------------------------------

def run(cases=CASES, dtypes=DTYPES, distributions=tuple(DISTRIBUTIONS), funcs=FUNCTIONS,
        isas=None, others=(), log=None):
    """Measure every cell.  `isas`: fastsoftmax instruction sets (default: the
    active one); `others`: (name, version, make) as from _others().  Returns a
    list of records {func, dtype, distribution, case, shape, axis, n, impl, isa,
    value, bound}; value None: unsupported."""
    isas = [_kernels.isa()] if isas is None else list(isas)
    impls = [(f"fastsoftmax[{isa}]", isa, _fastsoftmax(isa)) for isa in isas]
    impls += [(name, None, make) for name, _, make in others]
    records = []
    for dtype in map(np.dtype, dtypes):
        for dist in distributions:
            for case in cases:
                t0 = time.perf_counter()
                x = make_input(dist, case.shape, dtype)
                ref = reference(x, case.axis, funcs)
                for name, isa, make in impls:
                    for func in funcs:
                        rec = {"func": func, "dtype": dtype.name, "distribution": dist,
                               "case": case.name, "shape": list(case.shape), "axis": case.axis,
                               "n": case.shape[case.axis], "impl": name, "isa": isa,
                               "bound": BOUNDS[func, dtype], "value": None}
                        try:
                            f = make(func, x, case.axis)
                            if f is not None:
                                rec["value"] = error(func, np.asarray(f()), ref[func], dtype)
                        except Exception as e:       # report it in the table, go on
                            rec["error"] = f"{type(e).__name__}: {e}"
                        records.append(rec)
                del x, ref
                if log:
                    log(f"{dtype.name} {dist} {case.name}: {time.perf_counter() - t0:.1f} s")
    return records


def reference_check(distributions=tuple(DISTRIBUTIONS), n=1000):
    """check_reference() on one float64 row of n of each distribution: the worst
    deviation (in float64 ulps) per function and the count of differently rounded
    values, over all distributions."""
    worst = {f: [0.0, 0, 0] for f in FUNCTIONS}
    for dist in distributions:
        x = make_input(dist, (64, n), _F64)[:1]
        for f, (dev, differ) in check_reference(x).items():
            w = worst[f]
            w[0] = max(w[0], dev)
            w[1] += differ
            w[2] += 1 if f == "logsumexp" else n
    return {f: tuple(v) for f, v in worst.items()}


# ---- output ----------------------------------------------------------------------

def _fmt(func, rec):
    v = rec["value"]
    if v is None:
        return "error" if "error" in rec else "n/a"
    if func == "softmax":
        s = "0" if v == 0 else ("inf" if math.isinf(v) else f"{v:.2e}")
    else:
        s = "inf" if math.isinf(v) else f"{v:.2f}"
    return f"**{s}**" if v > rec["bound"] else s


def _fmt_bound(func, b):
    return f"{b:.0e}" if func == "softmax" else f"{b:g}"


def format_tables(records):
    """One monospace-aligned Markdown table per function."""
    blocks = []
    impls = list(dict.fromkeys(r["impl"] for r in records))
    for func in dict.fromkeys(r["func"] for r in records):
        recs = [r for r in records if r["func"] == func]
        rows = {}
        for r in recs:
            key = (r["dtype"], r["distribution"], r["case"])
            rows.setdefault(key, {"bound": r["bound"]})[r["impl"]] = _fmt(func, r)
        head = ["dtype", "input", "shape"] + impls + ["bound"]
        body = [[dt, dist, case] + [cells.get(im, "") for im in impls]
                + [_fmt_bound(func, cells["bound"])]
                for (dt, dist, case), cells in rows.items()]
        widths = [max(len(c) for c in col) for col in zip(head, *body)]

        def line(cells):
            return "| " + " | ".join(c.ljust(w) if i < 3 else c.rjust(w)
                                     for i, (c, w) in enumerate(zip(cells, widths))) + " |"

        sep = "|" + "|".join((":" + "-" * (w + 1)) if i < 3 else ("-" * (w + 1) + ":")
                             for i, w in enumerate(widths)) + "|"
        title = (f"### {func}: max relative error on outputs >= 1e-30 (float32) / "
                 "1e-300 (float64)" if func == "softmax" else
                 f"### {func}: max error in ulps of max(1, |value|)")
        blocks.append("\n".join([title, "", line(head), sep] + [line(b) for b in body]))
    return "\n\n".join(blocks)


def _cpu():
    try:
        from fastsoftmax.bench import cpu_model
        return cpu_model()
    except Exception:
        return platform.processor() or platform.machine()


def describe_reference():
    if LONGDOUBLE_IS_WIDER:
        return (f"exact math on the inputs in np.longdouble ({np.finfo(_LONGDOUBLE).nmant + 1}-bit "
                "significand), rounded once to the output dtype")
    return ("exact math on the inputs: float64 for float32 outputs, mpmath for float64 "
            "outputs, rounded once to the output dtype")


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m fastsoftmax.accuracy",
        description="Accuracy of fastsoftmax, NumPy, SciPy and PyTorch against exact math "
                    "(see the module docstring for the reference and the metrics).")
    p.add_argument("--full", action="store_true", help="also rows of 10**7 elements")
    p.add_argument("--quick", action="store_true",
                   help="only the 10**3-element rows (a few seconds)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--isa", metavar="NAME",
                   help=f"fastsoftmax instruction set (default: the active one; "
                        f"available: {', '.join(_kernels.available_isas())})")
    g.add_argument("--all-isas", action="store_true",
                   help="one fastsoftmax column per available instruction set")
    p.add_argument("--funcs", nargs="+", metavar="FUNC", choices=FUNCTIONS,
                   help="functions (default: all)")
    p.add_argument("--dtypes", nargs="+", metavar="DTYPE", choices=[d.name for d in DTYPES],
                   help="dtypes (default: float32 float64)")
    p.add_argument("--distributions", nargs="+", metavar="DIST", choices=list(DISTRIBUTIONS),
                   help="input distributions (default: all)")
    p.add_argument("--impls", nargs="+", metavar="NAME",
                   help="other implementations to compare (default: numpy scipy torch, "
                        "those installed)")
    p.add_argument("--no-reference-check", action="store_true",
                   help="skip the mpmath validation of the reference")
    p.add_argument("--json", metavar="PATH", help="write the header and every cell to PATH")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 if a fastsoftmax cell is above its bound")
    p.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.full and args.quick:
        parser.error("--full and --quick exclude each other")
    available = _kernels.available_isas()
    if args.isa is not None and args.isa not in available:
        parser.error(f"--isa {args.isa}: not available on this CPU/build "
                     f"(available: {', '.join(available)})")
    isas = list(available) if args.all_isas else [args.isa or _kernels.isa()]
    cases = FULL_CASES if args.full else QUICK_CASES if args.quick else CASES
    dtypes = [np.dtype(d) for d in args.dtypes] if args.dtypes else DTYPES
    dists = args.distributions or list(DISTRIBUTIONS)
    funcs = args.funcs or FUNCTIONS
    others, skipped = _others(set(args.impls) if args.impls else None)
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if args.verbose else None

    out = sys.stdout
    t0 = time.perf_counter()
    header = {
        "cpu": _cpu(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {"fastsoftmax": fsm.__version__, "numpy": np.__version__,
                     **{name: v for name, v, _ in others}},
        "isas": isas,
        "reference": describe_reference(),
        "inputs": "N(mean, variance), U(low, high); drawn in float64 (seed "
                  f"{SEED}), rounded to the dtype",
    }
    w = 16
    print("fastsoftmax accuracy", file=out)
    print(f"{'CPU':<{w}}: {header['cpu']}", file=out)
    print(f"{'versions':<{w}}: Python {header['python']}, "
          + ", ".join(f"{k} {v}" for k, v in header["versions"].items()), file=out)
    print(f"{'fastsoftmax ISA':<{w}}: {', '.join(isas)} (available: {', '.join(available)})",
          file=out)
    if skipped:
        print(f"{'skipped':<{w}}: {', '.join(skipped)} (not installed)", file=out)
    print(f"{'inputs':<{w}}: {header['inputs']}", file=out)
    print(f"{'reference':<{w}}: {header['reference']}", file=out)
    if LONGDOUBLE_IS_WIDER and not args.no_reference_check:
        chk = reference_check(dists)
        header["reference_check"] = {f: {"max_dev_ulps": d, "rounded_differently": k,
                                         "values": n} for f, (d, k, n) in chk.items()}
        worst = max(d for d, _, _ in chk.values())
        differ = sum(k for _, k, _ in chk.values())
        total = sum(n for _, _, n in chk.values())
        print(f"{'reference check':<{w}}: against mpmath ({MPMATH_DPS} digits) on one float64 "
              f"row of 10^3 per input: max deviation {worst:.1e} float64 ulp; "
              f"{differ} of {total} values round differently", file=out)
    print(f"{'metrics':<{w}}: softmax: max |y - ref| / ref over ref >= 1e-30 (float32), "
          "1e-300 (float64); log_softmax, logsumexp: max |y - ref| / ulp(max(1, |ref|)) in "
          "the output dtype; ref: the reference rounded to the output dtype; bold: above "
          "fastsoftmax's bound", file=out)
    print(file=out, flush=True)

    records = run(cases, dtypes, dists, funcs, isas, others, log)
    print(format_tables(records), file=out)
    elapsed = time.perf_counter() - t0
    above = [r for r in records if r["impl"].startswith("fastsoftmax")
             and (r["value"] is None or r["value"] > r["bound"])]
    print(f"\n{len(records)} cells in {elapsed:.0f} s; fastsoftmax above its bound in "
          f"{len(above)}.", file=out)
    for r in above:
        v = "error" if r["value"] is None else f"{r['value']:.3g}"
        print(f"  {r['func']} {r['dtype']} {r['distribution']} {r['case']} [{r['isa']}]: "
              f"{v} > {r['bound']:g}", file=out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "units": UNITS,
                       "bounds": {f"{k[0]} {k[1].name}": v for k, v in BOUNDS.items()},
                       "results": records}, f, indent=1, default=float)
        print(f"wrote {args.json}", file=out)
    return 1 if (args.check and above) else 0


if __name__ == "__main__":
    sys.exit(main())
