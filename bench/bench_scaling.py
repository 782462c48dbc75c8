"""Thread scaling of fastsoftmax, beside torch.softmax when PyTorch is installed.

    python bench/bench_scaling.py [--threads 1,2,4,8,16] [--quick] [--json PATH] [--md PATH]

For every case (``CASES``) and thread count t: the median time of
``fastsoftmax.<op>(x, axis, num_threads=t)`` (``out=`` a preallocated array
for the ``out=`` case) and its speedup over t = 1; for the softmax cases,
when PyTorch imports, the same for ``torch.softmax(torch.from_numpy(x), axis)``
under ``torch.set_num_threads(t)`` (set around each sample, outside the timer,
and restored), and a last column: torch's time / fastsoftmax's at the largest
thread count (> 1: fastsoftmax is faster).

Default thread counts: the powers of two up to ``os.cpu_count()``, and
``os.cpu_count()`` itself.  Counts above ``os.cpu_count()`` are skipped (the
header says so); 1 is always run, as the baseline of the speedups.

Checks, before timing: fastsoftmax's result on every thread count must be
bitwise identical to its result on one thread, and torch's result (on the
largest thread count) must match ours to rtol 1e-5 (float32) / 1e-12
(float64).  A failed check prints a FAIL line and makes the script exit with
status 1 after the table.

Method: input ``np.random.default_rng(0).standard_normal(shape, dtype)``.
Every (library, thread count) is warmed up and calibrated first
(``fastsoftmax.bench._calibrate``: calls per sample so that a sample lasts at
least 20 ms; the check calls have already page-faulted the output buffers);
then in each of R rounds every (library, thread count) takes one sample,
round-robin over the thread counts, starting one step further each round, so
that slow drifts of the machine hit every thread count alike.  The table
shows medians.  Progress goes to stderr; ``--json`` writes every sample.
``--quick``: 3 rounds instead of 7, without the float64, 16384x128 and
logsumexp 1x10000000 cases (well under a minute on 16 cores).
"""
import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

import fastsoftmax as fsm
from fastsoftmax.bench import (ATOL, RTOL, Case, _calibrate, _field, _sample, _shape_label,
                               _thread_count, cpu_model, fmt_time, format_table)

CASES = (
    Case("softmax", (64, 1000), -1, "float32"),
    Case("softmax", (4096, 1000), -1, "float32"),
    Case("softmax", (4096, 1000), -1, "float64"),
    Case("softmax", (16384, 128), -1, "float32"),
    Case("softmax", (1000000, 10), -1, "float32"),
    Case("softmax", (8192, 8192), -1, "float32", True),
    Case("softmax", (1000, 4096), 0, "float32"),
    Case("softmax", (1, 10**7), -1, "float32"),
    Case("logsumexp", (4096, 1000), -1, "float32"),
    Case("logsumexp", (1, 10**7), -1, "float32"),
    Case("log_softmax", (4096, 1000), -1, "float32"),
)
QUICK_DROPS = {CASES[2], CASES[3], CASES[9]}    # float64, 16384x128, logsumexp 1x10000000
ROUNDS, QUICK_ROUNDS = 7, 3
TARGET_SAMPLE_S = 0.02
SEED = 0


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def import_torch():
    """(torch, None), or (None, why not)."""
    try:
        import torch
        return torch, None
    except Exception as e:          # ImportError, or a broken install (OSError)
        return None, f"{type(e).__name__}: {e}"


def thread_counts(text, cores):
    """(counts to run, counts skipped as above `cores`)."""
    if text:
        wanted = {int(s) for s in text.split(",") if s.strip()}
        if min(wanted, default=0) < 1:
            raise ValueError("thread counts must be >= 1")
    else:
        wanted = {2**k for k in range(cores.bit_length())} | {cores}
    return sorted({1} | {t for t in wanted if t <= cores}), sorted(t for t in wanted if t > cores)


def run_case(case, threads, rounds, torch):
    """Check and time one case on every thread count; a dict with every sample."""
    op, shape, axis, dtype, out = case
    start = time.perf_counter()
    x = np.random.default_rng(SEED).standard_normal(shape, dtype=dtype)
    o = np.empty_like(x) if out else None
    f = getattr(fsm, op)

    def ours(t):
        return lambda: f(x, axis, out=o, num_threads=t)

    ref = np.copy(ours(1)())
    res = {"op": op, "shape": list(shape), "axis": axis, "dtype": dtype, "out": out,
           "not_bitwise": [t for t in threads[1:] if not np.array_equal(ours(t)(), ref)],
           "torch_error": None, "impls": {}}
    calls = {("fastsoftmax", t): (ours(t), contextlib.nullcontext) for t in threads}

    if torch is not None and op == "softmax":
        tx = torch.from_numpy(x)
        to = torch.from_numpy(np.empty_like(x)) if out else None

        def theirs():
            return torch.softmax(tx, axis, out=to) if out else torch.softmax(tx, axis)

        def torch_threads(t):
            return lambda: _thread_count(torch.get_num_threads, torch.set_num_threads, t)

        with torch_threads(threads[-1])():
            got = theirs().numpy()
        try:
            np.testing.assert_allclose(got, ref, rtol=RTOL[dtype], atol=ATOL["softmax", dtype])
        except AssertionError as e:
            res["torch_error"] = str(e).strip()
        del got
        calls.update({("torch", t): (theirs, torch_threads(t)) for t in threads})

    # Round-robin over the thread counts (ours and torch's side by side), from
    # a start that moves one step each round.
    keys = sorted(calls, key=lambda k: (k[1], k[0]))
    number = {}
    for k in keys:
        fn, ctx = calls[k]
        with ctx():
            number[k] = _calibrate(fn, TARGET_SAMPLE_S)[0]
    samples = {k: [] for k in keys}
    step = len(keys) // len(threads)
    for r in range(rounds):
        shift = r * step % len(keys)
        for k in keys[shift:] + keys[:shift]:
            fn, ctx = calls[k]
            with ctx():
                samples[k].append(_sample(fn, number[k]))
    for name in dict.fromkeys(k[0] for k in keys):
        res["impls"][name] = {
            "calls_per_sample": {t: number[name, t] for t in threads},
            "samples_s": {t: samples[name, t] for t in threads},
            "median_s": {t: statistics.median(samples[name, t]) for t in threads},
        }
    res["wall_s"] = time.perf_counter() - start
    return res


def header(threads, skipped, rounds, torch, torch_why):
    cfg = fsm.show_config(mode="dicts")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    versions = (f"Python {platform.python_version()}, NumPy {np.__version__}, fastsoftmax "
                f"{fsm.__version__}, PyTorch "
                + (torch.__version__ if torch is not None else f"not available ({torch_why})"))
    env = {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_", "KMP_"))}
    return {
        "cpu": cpu_model(), "cores": os.cpu_count(), "usable_cpus": usable,
        "isa": cfg["active_isa"], "available_isas": list(cfg["available_isas"]),
        "openmp": cfg["openmp"], "versions": versions, "env": env,
        "threads": threads, "skipped_threads": skipped, "rounds": rounds,
        "target_sample_s": TARGET_SAMPLE_S, "seed": SEED,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def report(info, results):
    """The header and the Markdown table, as text."""
    s = io.StringIO()
    print("fastsoftmax thread scaling", file=s)
    _field("CPU", f"{info['cpu']} ({info['cores']} cores by os.cpu_count(), "
                  f"{info['usable_cpus']} usable)", s)
    _field("fastsoftmax", f"ISA {info['isa']} (available: {', '.join(info['available_isas'])}), "
                          f"OpenMP {'yes' if info['openmp'] else 'NO (one thread whatever t)'}", s)
    _field("versions", info["versions"], s)
    threads, n = info["threads"], info["threads"][-1]
    skipped = (f"; skipped {', '.join(map(str, info['skipped_threads']))} (more than "
               f"{info['cores']} cores)" if info["skipped_threads"] else "")
    _field("threads", ", ".join(map(str, threads)) + skipped, s)
    if info["load_average"]:
        _field("load", "1/5/15-min load average at start: "
                       + ", ".join(f"{v:.2f}" for v in info["load_average"])
                       + " (other work on the cores distorts the many-thread columns)", s)
    if info["env"]:
        _field("env", ", ".join(f"{k}={v}" for k, v in info["env"].items()), s)
    has_torch = any("torch" in r["impls"] for r in results)
    _field("method", f"standard normal input, seed {info['seed']}; median of {info['rounds']} "
                     f"samples of >= {info['target_sample_s'] * 1e3:.0f} ms each, thread counts "
                     "interleaved round-robin" + ("; torch: torch.softmax on torch.from_numpy(x), "
                                                  "torch.set_num_threads(t) around each sample"
                                                  if has_torch else ""), s)
    _field("cells", "median time (speedup over the same library on 1 thread)"
                    + (f"; ours/torch at {n}t: torch's time / fastsoftmax's on {n} threads "
                       "(> 1: fastsoftmax is faster)" if has_torch else ""), s)
    print(file=s)
    head = (["op", "shape", "dtype", "impl"] + [f"{t}t" for t in threads]
            + ([f"ours/torch at {n}t"] if has_torch else []))
    rows = []
    for res in results:
        med = {name: r["median_s"] for name, r in res["impls"].items()}
        for name, m in med.items():
            row = [res["op"], _shape_label(res["shape"], res["axis"], res["out"]), res["dtype"],
                   name] + [f"{fmt_time(m[t])} ({m[1] / m[t]:.2f}×)" for t in threads]
            if has_torch:
                row.append(f"{med['torch'][n] / m[n]:.2f}"
                           if name == "fastsoftmax" and "torch" in med else "")
            rows.append(row)
    print(format_table(head, rows, left=4), file=s)
    return s.getvalue()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", metavar="1,2,4",
                   help="thread counts (default: powers of two up to os.cpu_count(), and it)")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_ROUNDS} rounds, {len(CASES) - len(QUICK_DROPS)} cases")
    p.add_argument("--json", metavar="PATH", help="write the header and every sample to PATH")
    p.add_argument("--md", metavar="PATH", help="write the header and table to PATH")
    args = p.parse_args(argv)
    try:
        threads, skipped = thread_counts(args.threads, os.cpu_count() or 1)
    except ValueError as e:
        p.error(f"--threads {args.threads}: {e}")
    if skipped:
        log(f"note: skipping {', '.join(map(str, skipped))} threads: more than the "
            f"{os.cpu_count()} cores")
    rounds = QUICK_ROUNDS if args.quick else ROUNDS
    cases = [c for c in CASES if not (args.quick and c in QUICK_DROPS)]
    torch, torch_why = import_torch()
    if torch is None:
        log(f"note: PyTorch not available ({torch_why}); timing fastsoftmax alone")
    info = header(threads, skipped, rounds, torch, torch_why)

    t0 = time.perf_counter()
    results, failures = [], []
    for i, case in enumerate(cases, 1):
        label = f"{case.op} {_shape_label(case.shape, case.axis, case.out)} {case.dtype}"
        log(f"[{i}/{len(cases)}] {label} ...")
        res = run_case(case, threads, rounds, torch)
        results.append(res)
        log(f"    {res['wall_s']:.1f} s; " + "; ".join(
            f"{name} " + ", ".join(f"{t}t {fmt_time(m)}" for t, m in r["median_s"].items())
            for name, r in res["impls"].items()))
        failed = ([f"{label}: fastsoftmax on {res['not_bitwise']} threads is not bitwise "
                   "identical to its 1-thread result"] if res["not_bitwise"] else [])
        if res["torch_error"]:
            failed.append(f"{label}: torch differs from fastsoftmax: {res['torch_error']}")
        for msg in failed:
            log(f"!! FAIL {msg}")
        failures += failed
    elapsed = time.perf_counter() - t0

    text = report(info, results)
    print(text, end="", flush=True)
    print(f"\n{len(results)} cases in {elapsed:.0f} s.", flush=True)
    if args.md:
        with open(args.md, "w") as fh:
            fh.write(text)
        print(f"wrote {args.md}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"header": info, "argv": sys.argv[1:] if argv is None else list(argv),
                       "elapsed_s": elapsed, "results": results}, fh, indent=1)
        print(f"wrote {args.json}")
    for msg in failures:
        print(f"!! FAIL {msg}")
    if failures:
        sys.exit(1)
    return results


if __name__ == "__main__":
    main()
