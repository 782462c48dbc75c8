"""Benchmark fastsoftmax against NumPy, SciPy and (when installed) PyTorch.

Run it as::

    python -m fastsoftmax.bench            # the default set (a few minutes)
    python -m fastsoftmax.bench --quick    # a smaller set (under a minute)
    python -m fastsoftmax.bench --help

It prints a header (CPU, fastsoftmax's instruction-set path, OpenMP and thread
count, versions) and a table that is both monospace-aligned and valid
Markdown: for each operation, shape and dtype, fastsoftmax's median time and
throughput in GB/s (the input read once plus the output written once), then
for every other implementation its median time and the ratio
``theirs / ours`` (above 1: fastsoftmax is faster).

Compared implementations (see ``IMPLEMENTATIONS``):

``numpy``
    The hand-written stable formula, e.g. for softmax
    ``e = np.exp(x - x.max(axis, keepdims=True)); e / e.sum(axis, keepdims=True)``.
    NumPy's ufuncs run on one thread.
``scipy``
    ``scipy.special.softmax``, ``log_softmax`` and ``logsumexp`` with the same
    ``axis``.
``torch``
    ``torch.softmax``, ``torch.log_softmax`` and ``torch.logsumexp`` on
    ``torch.from_numpy(x)`` (CPU, PyTorch's own thread count, shown in the
    header), only if ``import torch`` works.

Another library is added by appending an ``Implementation`` subclass with
``available()`` and ``make(op, x, axis)`` to ``IMPLEMENTATIONS``.

Method: every implementation runs in this one process, on the same input
array (fixed-seed RNG, normal with mean 0 and variance 4).  Before timing, each
result is compared with fastsoftmax's (rtol 1e-5 for float32, 1e-12 for
float64); a mismatch is reported loudly and makes the command exit with status
1.  The number of calls per sample is calibrated so that a sample lasts at
least ~2 ms, and the samples are interleaved: in each repetition every
implementation takes one sample, in an order that rotates from one repetition
to the next, so that slow drifts of the machine (frequency, other load) hit all
implementations alike.  The table shows medians; ``--json`` writes every sample.
``--plot PATH.png`` (needs matplotlib) adds a sweep over the row length at a
fixed array size (``SWEEP_ELEMENTS``) and plots GB/s against it.

Fair numbers: run on an otherwise idle machine, and unset the OpenBLAS
variables some environments set, which slow NumPy down on some machines::

    unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
    python -m fastsoftmax.bench

(or ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m fastsoftmax.bench``).
The benchmark reads but never changes the environment; the header warns when
these variables are set.  fastsoftmax uses ``get_num_threads()`` threads
(``OMP_NUM_THREADS``) unless ``--threads`` is given, which passes
``num_threads=`` to every call.  On small virtual machines whose CPUs do not
run in parallel at full speed, compare with ``--threads 1`` as well.
"""
import argparse
import gc
import importlib
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

import fastsoftmax as fsm

__all__ = ["main", "run", "Implementation", "IMPLEMENTATIONS"]

OPS = ("softmax", "log_softmax", "logsumexp")
DTYPES = ("float32", "float64")

# (rows, row length) and the reduced axis.  The last one reduces along axis 0
# of a C-contiguous array: strided rows.
SHAPES = (
    ((1, 1000), -1),
    ((64, 1000), -1),
    ((4096, 1000), -1),
    ((1000000, 10), -1),
    ((1000, 4096), 0),
)
DEFAULT_CASES = {op: SHAPES for op in OPS}
QUICK_CASES = {
    "softmax": SHAPES,
    "log_softmax": (((4096, 1000), -1),),
    "logsumexp": (((4096, 1000), -1),),
}
# --plot / --sweep: row lengths at a fixed total number of elements.
SWEEP_LENGTHS = (4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)
SWEEP_ELEMENTS = 1 << 20

SEED = 0
SIGMA = 2.0           # N(0, 4): standard deviation 2
RTOL = {"float32": 1e-5, "float64": 1e-12}
# Absolute tolerance: below the smallest normal number for softmax (whose tiny
# terms fastsoftmax flushes to 0); a few ulps of 1 for log_softmax and
# logsumexp, whose values cross 0 where relative error means nothing.
ATOL = {
    ("softmax", "float32"): float(np.finfo(np.float32).tiny),
    ("softmax", "float64"): float(np.finfo(np.float64).tiny),
    ("log", "float32"): 8 * float(np.finfo(np.float32).eps),
    ("log", "float64"): 8 * float(np.finfo(np.float64).eps),
}

TARGET_SAMPLE_S = 2e-3   # calls per sample are calibrated to last at least this long
MAX_REPEAT = 25          # samples per implementation and case, without --repeat


# ---- implementations ---------------------------------------------------------

class Implementation:
    """One library to time.  Subclasses set ``name`` (the column title) and
    ``module`` (imported lazily; its ``__version__`` is reported) and define
    ``make``.

    ``make(op, x, axis)`` returns a callable without arguments that computes
    ``op`` (one of ``OPS``) of the NumPy array ``x`` along ``axis`` and returns
    the finished result (synchronously: block on asynchronous libraries
    inside the callable) as anything ``np.asarray`` accepts; or None when the
    library does not support this op, dtype or axis.  Conversion of ``x`` to
    the library's array type belongs in ``make``, outside the timed callable.
    """

    name = "?"
    module = None

    def available(self):
        """Whether the library can be imported."""
        try:
            self.mod = importlib.import_module(self.module)
        except Exception:        # ImportError, or a broken installation
            return False
        return True

    def version(self):
        return getattr(self.mod, "__version__", "?")

    def threads(self):
        """A note on the thread count, for the header (None: nothing to say)."""
        return None

    def make(self, op, x, axis):
        raise NotImplementedError


class FastSoftmax(Implementation):
    name = "fastsoftmax"
    module = "fastsoftmax"
    num_threads = None           # set by main() from --threads

    def threads(self):
        n = fsm.get_num_threads() if self.num_threads is None else self.num_threads
        below = getattr(fsm._api, "PARALLEL_MIN_ELEMENTS", None)
        return f"{n}" + (f" (arrays under {below} elements run on one)" if below else "")

    def make(self, op, x, axis):
        f = getattr(fsm, op)
        nt = self.num_threads
        return lambda: f(x, axis, num_threads=nt)


class NumPyFormula(Implementation):
    name = "numpy"
    module = "numpy"

    def threads(self):
        return "1 (ufuncs are single-threaded)"

    def make(self, op, x, axis):
        if op == "softmax":
            def f():
                e = np.exp(x - x.max(axis, keepdims=True))
                return e / e.sum(axis, keepdims=True)
        elif op == "log_softmax":
            def f():
                s = x - x.max(axis, keepdims=True)
                return s - np.log(np.exp(s).sum(axis, keepdims=True))
        else:
            def f():
                m = x.max(axis, keepdims=True)
                return np.log(np.exp(x - m).sum(axis)) + m.squeeze(axis)
        return f


class SciPy(Implementation):
    name = "scipy"
    module = "scipy.special"

    def version(self):
        import scipy
        return scipy.__version__

    def threads(self):
        return "1"

    def make(self, op, x, axis):
        f = getattr(self.mod, op)
        return lambda: f(x, axis=axis)


class Torch(Implementation):
    name = "torch"
    module = "torch"

    def threads(self):
        return f"{self.mod.get_num_threads()} (torch.get_num_threads())"

    def make(self, op, x, axis):
        torch = self.mod
        t = torch.from_numpy(x)
        f = {"softmax": torch.softmax, "log_softmax": torch.log_softmax,
             "logsumexp": torch.logsumexp}[op]
        return lambda: f(t, axis)


# The first one is fastsoftmax, the reference of every ratio.  Add ONNX Runtime,
# JAX, Numba, ... here.
IMPLEMENTATIONS = [FastSoftmax(), NumPyFormula(), SciPy(), Torch()]


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


def header_info(impls, num_threads):
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
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE",
                                           "OPENBLAS_L2_SIZE", "FASTSOFTMAX_ISA")
                if k in os.environ},
        "seed": SEED,
        "input": f"normal(0, {SIGMA ** 2:g}) (std {SIGMA:g})",
    }
    return info


def print_header(info, impls, out):
    cfg = info["fastsoftmax_config"]
    w = 12
    print("fastsoftmax benchmark", file=out)
    print(f"{'CPU':<{w}}: {info['cpu']} ({info['logical_cpus']} logical CPUs, "
          f"{info['usable_cpus']} usable)", file=out)
    print(f"{'fastsoftmax':<{w}}: {info['versions']['fastsoftmax']}, ISA {cfg['active_isa']} "
          f"(available: {', '.join(cfg['available_isas'])}), "
          f"OpenMP {'yes' if cfg['openmp'] else 'no'}, {cfg['compiler']} {cfg['flags']}", file=out)
    print(f"{'threads':<{w}}: " + "; ".join(f"{im.name} {info['threads'][im.name]}"
                                             for im in impls if info["threads"][im.name]),
          file=out)
    versions = [f"Python {info['python']}"] + [
        f"{'NumPy' if im.name == 'numpy' else 'SciPy' if im.name == 'scipy' else im.name} "
        f"{info['versions'][im.name]}" for im in impls if im.name != "fastsoftmax"]
    print(f"{'versions':<{w}}: " + ", ".join(versions), file=out)
    print(f"{'input':<{w}}: {info['input']}, seed {info['seed']}; "
          "times are medians of interleaved samples", file=out)
    print(f"{'ratio':<{w}}: their time / fastsoftmax's time (> 1: fastsoftmax is faster); "
          "GB/s: (input + output bytes) / fastsoftmax's time", file=out)
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in info["env"]:
            print(f"{'note':<{w}}: {var}={info['env'][var]} is set; it can slow NumPy down: "
                  f"unset it for fair numbers", file=out)


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


def _shape_label(shape):
    return "x".join(map(str, shape))


def _check(op, dtype, ours, theirs):
    """(ok, max abs error, max rel error, remark) of `theirs` against fastsoftmax's result."""
    theirs = np.asarray(theirs)
    if theirs.shape != ours.shape:
        return False, math.inf, math.inf, f"shape {theirs.shape} != {ours.shape}"
    a = ours.astype(np.float64)
    b = theirs.astype(np.float64)
    rtol = RTOL[dtype]
    atol = ATOL["softmax" if op == "softmax" else "log", dtype]
    with np.errstate(all="ignore"):
        diff = np.abs(a - b)
        same_nan = np.array_equal(np.isnan(a), np.isnan(b))
        finite = np.isfinite(a) & np.isfinite(b)
        ok = same_nan and bool(np.all((diff <= atol + rtol * np.abs(a)) | (a == b)))
        abs_err = float(diff[finite].max()) if finite.any() else 0.0
        rel = diff[finite] / np.maximum(np.abs(a[finite]), atol)
        rel_err = float(rel.max()) if rel.size else 0.0
    return ok, abs_err, rel_err, "" if same_nan else "NaNs at different places"


def run_case(impls, op, shape, axis, dtype, *, repeat, min_repeat, budget, target, log):
    """Check and time every implementation on one case; returns a result dict."""
    rng = np.random.default_rng(SEED)
    x = (rng.standard_normal(shape) * SIGMA).astype(dtype)
    n = shape[axis]
    out_size = x.size // n if op == "logsumexp" else x.size
    res = {"op": op, "shape": list(shape), "axis": axis, "dtype": dtype, "row_length": n,
           "bytes": int(x.nbytes + out_size * x.itemsize), "impls": {}}
    calls = []
    ours = None              # fastsoftmax's result, the reference of the checks
    for i, im in enumerate(impls):
        r = res["impls"][im.name] = {}
        try:
            f = im.make(op, x, axis)
            if f is None:
                r["status"] = "unsupported"
                continue
            out = np.asarray(f())
        except Exception as e:       # report and go on with the others
            r.update(status="error", error=f"{type(e).__name__}: {e}")
            log(f"!! ERROR: {im.name} {op} {_shape_label(shape)} axis={axis} {dtype}: "
                f"{type(e).__name__}: {e}")
            continue
        if i == 0:
            ours = out
            r["status"] = "ok"
        elif ours is None:
            r["status"] = "unchecked"
        else:
            ok, abs_err, rel_err, why = _check(op, dtype, ours, out)
            r.update(status="ok" if ok else "mismatch", max_abs_err=abs_err, max_rel_err=rel_err)
            if not ok:
                log(f"!! MISMATCH: {im.name} differs from fastsoftmax on {op} "
                    f"{_shape_label(shape)} axis={axis} {dtype}: max abs err {abs_err:.3g}, "
                    f"max rel err {rel_err:.3g} (rtol {RTOL[dtype]:g}) {why}")
        del out
        number, t1 = _calibrate(f, target)
        r["number"] = number
        calls.append((im.name, f, number, t1))
    del ours
    if not calls:
        return res

    # Repetitions: the given count, or as many as fit the time budget per
    # implementation (at least min_repeat).
    if repeat is None:
        slowest = max(t * number for _, _, number, t in calls)
        repeat = int(min(max(MAX_REPEAT, min_repeat), max(min_repeat, budget // slowest)))
    samples = {name: [] for name, *_ in calls}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(repeat):
            k = i % len(calls)
            for name, f, number, _ in calls[k:] + calls[:k]:
                samples[name].append(_sample(f, number))
    finally:
        if gc_was_enabled:
            gc.enable()
    for name, ts in samples.items():
        res["impls"][name].update(times=ts, median=statistics.median(ts))
    res["repeat"] = repeat
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


def table_rows(results, impls):
    head = ["op", "shape", "axis", "dtype", "fastsoftmax", "GB/s"]
    for im in impls[1:]:
        head += [im.name, "ratio"]
    rows = []
    for res in results:
        ours = res["impls"].get(impls[0].name, {})
        t0 = ours.get("median")
        row = [res["op"], _shape_label(res["shape"]), str(res["axis"]), res["dtype"],
               fmt_time(t0) if t0 else ours.get("status", "n/a"),
               f"{res['bytes'] / t0 / 1e9:.2f}" if t0 else ""]
        for im in impls[1:]:
            r = res["impls"].get(im.name, {})
            t = r.get("median")
            if t is None:
                row += [r.get("status", "n/a"), ""]
                continue
            flag = " (!)" if r.get("status") == "mismatch" else ""
            row += [fmt_time(t) + flag, f"{t / t0:.2f}" if t0 else ""]
        rows.append(row)
    return head, rows


def format_table(head, rows):
    widths = [max(len(c) for c in col) for col in zip(head, *rows)]
    left = {0, 1, 3}      # op, shape, dtype; the rest is right-aligned

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if i in left else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    sep = "|" + "|".join((":" + "-" * (w + 1)) if i in left else ("-" * (w + 1) + ":")
                         for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), sep] + [line(r) for r in rows])


class Progress:
    """A counter line on stderr, shown once a run has lasted a few seconds
    (tqdm's bar when tqdm is installed)."""

    DELAY = 2.0

    def __init__(self, total, enabled=True):
        self.total, self.i, self.enabled = total, 0, enabled
        self.start = time.perf_counter()
        self.last = 0.0
        self.shown = False
        self.tty = sys.stderr.isatty()
        self.bar = None
        if enabled:
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
    """Check and time `cases` (a list of (op, shape, axis, dtype)); a list of results."""
    prog = Progress(len(cases), enabled=progress)
    results = []
    try:
        for op, shape, axis, dtype in cases:
            prog.step(f"{op} {_shape_label(shape)} {dtype}")
            results.append(run_case(impls, op, shape, axis, dtype, repeat=repeat,
                                    min_repeat=min_repeat, budget=budget, target=target,
                                    log=prog.log))
    finally:
        prog.close()
    return results


def _split(values):
    return [v for item in values for v in item.split(",") if v]


def _parse_shape(text):
    """'64x1000' (last axis) or '1000x4096:0' (axis 0)."""
    shape, _, axis = text.partition(":")
    return tuple(int(s) for s in shape.lower().split("x")), int(axis) if axis else -1


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m fastsoftmax.bench",
        description="Time fastsoftmax beside NumPy, SciPy and PyTorch (when installed) and "
                    "print a Markdown table of medians and ratios (theirs / ours). For fair "
                    "NumPy numbers: unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE.")
    p.add_argument("--quick", action="store_true",
                   help="fewer cases and samples (under a minute)")
    p.add_argument("--ops", nargs="+", metavar="OP",
                   help=f"operations to time (comma or space separated; default: all of "
                        f"{', '.join(OPS)})")
    p.add_argument("--dtypes", nargs="+", metavar="DTYPE",
                   help="dtypes (default: float32,float64)")
    p.add_argument("--shapes", nargs="+", metavar="SHAPE",
                   help="shapes such as 64x1000 (reduced along the last axis) or 1000x4096:0 "
                        "(along axis 0), for every op (default: a fixed set)")
    p.add_argument("--impls", nargs="+", metavar="NAME",
                   help="implementations to compare with fastsoftmax (default: all available: "
                        + ", ".join(im.name for im in IMPLEMENTATIONS[1:]) + ")")
    p.add_argument("--threads", type=int, metavar="N",
                   help="num_threads for fastsoftmax (default: fastsoftmax.get_num_threads())")
    p.add_argument("--repeat", type=int, metavar="N",
                   help="samples per implementation and case (default: as many as fit a time "
                        "budget, 5 to 25; 3 to 25 with --quick)")
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
        if dt not in DTYPES:
            parser.error(f"unsupported dtype {dt!r}; choose from {', '.join(DTYPES)}")
    if args.shapes:
        try:
            shapes = tuple(_parse_shape(s) for s in _split(args.shapes))
        except ValueError:
            parser.error(f"bad --shapes {' '.join(args.shapes)}; use e.g. 64x1000 or 1000x4096:0")
        table = {op: shapes for op in OPS}
    else:
        table = QUICK_CASES if args.quick else DEFAULT_CASES
    return [(op, shape, axis, dt) for op in ops for (shape, axis) in table[op] for dt in dtypes]


def sweep_cases(args):
    ops = _split(args.ops) if args.ops else list(OPS)
    dtypes = _split(args.dtypes) if args.dtypes else list(DTYPES)
    lengths = SWEEP_LENGTHS[::2] + SWEEP_LENGTHS[-1:] if args.quick else SWEEP_LENGTHS
    return [(op, (SWEEP_ELEMENTS // n, n), -1, dt) for op in ops for n in lengths for dt in dtypes]


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
                    ax.plot(*zip(*pts), marker="o", label=im.name)
            ax.set_xscale("log", base=2)
            ax.set_title(f"{op}, {dt}")
            ax.set_xlabel(f"row length (rows x length = {SWEEP_ELEMENTS} elements)")
            ax.set_ylabel("GB/s (in + out)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize="small")
    cfg = info["fastsoftmax_config"]
    fig.suptitle(f"fastsoftmax {info['versions']['fastsoftmax']} ({cfg['active_isa']}, "
                 f"{info['num_threads']} threads), NumPy {np.__version__}\n{info['cpu']}",
                 fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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

    FastSoftmax.num_threads = args.threads
    wanted = set(_split(args.impls)) if args.impls else None
    if wanted is not None:
        unknown = wanted - {im.name for im in IMPLEMENTATIONS}
        if unknown:
            parser.error(f"unknown implementation(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(im.name for im in IMPLEMENTATIONS[1:])}")
    IMPLEMENTATIONS[0].available()
    impls = [IMPLEMENTATIONS[0]]
    skipped = []
    for im in IMPLEMENTATIONS[1:]:
        if wanted is not None and im.name not in wanted:
            continue
        if im.available():
            impls.append(im)
        else:
            skipped.append(im.name)

    num_threads = fsm.get_num_threads() if args.threads is None else args.threads
    info = header_info(impls, num_threads)
    out = sys.stdout
    print_header(info, impls, out)
    if skipped:
        print(f"{'skipped':<12}: {', '.join(skipped)} (not installed)", file=out)
    print(file=out, flush=True)

    opts = dict(repeat=args.repeat, min_repeat=3 if args.quick else 5,
                budget=0.3 if args.quick else 1.5, progress=not args.no_progress)
    t0 = time.perf_counter()
    results = run(cases, impls, **opts)
    print(format_table(*table_rows(results, impls)), file=out, flush=True)

    sweep = []
    if args.sweep or args.plot:
        sweep = run(sweep_cases(args), impls, **opts)
        print(f"\nRow-length sweep ({SWEEP_ELEMENTS} elements per array):", file=out)
        print(format_table(*table_rows(sweep, impls)), file=out, flush=True)
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
            print(f"!!   {name}: {res['op']} {_shape_label(res['shape'])} axis={res['axis']} "
                  f"{res['dtype']}: {r['status']}: {what}", file=out)

    if args.json:
        doc = {"header": info, "argv": sys.argv[1:] if argv is None else list(argv),
               "method": {"target_sample_s": TARGET_SAMPLE_S, "rtol": RTOL,
                          "interleaved": True, "times": "seconds per call, one per sample"},
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
