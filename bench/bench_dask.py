"""Softmax of an array larger than a worker's memory, on a LocalCluster.

    python bench/bench_dask.py [--gb 4] [--quick] [--repeat 3] [--memory-limit 2GiB]

A float32 array of ``--gb`` GiB from ``dask.array.random`` (uniform on
[0, 1)), chunked on both axes so that the softmax axis (the last, 32768
long) spans 8 chunks, goes through a softmax on a ``distributed.LocalCluster``
of 2 single-threaded worker processes, each limited to ``--memory-limit``
(the default array is twice one worker's budget).  Three graphs are timed,
interleaved:

* ``generate only``: the random array alone, the cost every graph pays;
* ``NumPy formula``: ``e = exp(x - x.max()); e / e.sum()`` in dask.array ops;
* ``fastsoftmax.dask``: ``fastsoftmax.dask.softmax``.

Each result is consumed by ``dask.array.store`` into a target that discards
the blocks, so nothing is gathered on the client.  The table gives the best and
the median wall time, the input's GB/s, the softmax's own GB/s (net of
generating the input: the graph's best time minus the best ``generate only``
time), the highest RSS of a worker in any run (sampled every 0.1 s through
``client.run``) and the graph's task count.  Before timing, the first row
block of each result is checked against ``fastsoftmax.softmax`` of the same
input; the script exits with status 1 if one disagrees.  ``--quick``: 1/4 GiB,
one repeat (well under a minute).
"""
import argparse
import logging
import platform
import statistics
import sys
import threading
import time

import dask
import dask.array as da
import distributed
import numpy as np
import psutil

import fastsoftmax as fsm
import fastsoftmax.dask as fsd
from fastsoftmax.bench import cpu_model

COLUMNS = 32768               # the softmax axis
CHUNKS = (1024, 4096)         # 16 MiB float32 chunks; 8 along the softmax axis
SEED = 0
RTOL = {"NumPy formula": 1e-5, "fastsoftmax.dask": 2e-6}


class Discard:
    """A ``dask.array.store`` target that drops what it is given."""

    def __setitem__(self, key, value):
        pass


def random_input(gb):
    """U[0, 1) float32 of about `gb` GiB: the cheapest random array dask makes
    (an affine map to a wider range would cost as much as the softmax)."""
    rows = max(1, round(gb * 2**30 / (4 * COLUMNS) / CHUNKS[0])) * CHUNKS[0]
    return da.random.default_rng(SEED).random((rows, COLUMNS), chunks=CHUNKS, dtype=np.float32)


def numpy_formula(x):
    e = da.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


GRAPHS = {
    "generate only": lambda x: x,
    "NumPy formula": numpy_formula,
    "fastsoftmax.dask": lambda x: fsd.softmax(x, axis=-1),
}


def _rss():
    return psutil.Process().memory_info().rss


class PeakRSS:
    """Samples every worker's RSS in a thread while in the ``with`` block."""

    def __init__(self, client, interval=0.1):
        self.client, self.interval = client, interval
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, *self.client.run(_rss).values())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def check(name, x):
    """The first row block of the graph's result against fastsoftmax.softmax."""
    block = x[:CHUNKS[0]]
    got = GRAPHS[name](x)[:CHUNKS[0]].compute()
    want = fsm.softmax(block.compute())
    if not np.allclose(got, want, rtol=RTOL[name], atol=1e-30):
        err = np.max(np.abs(got - want) / want)
        print(f"{name}: result differs from fastsoftmax.softmax (max rel. error {err:.2e})",
              file=sys.stderr)
        return False
    return True


def run(client, name, x):
    """One timed run: (seconds, peak worker RSS in bytes)."""
    y = GRAPHS[name](x)
    with PeakRSS(client) as rss:
        start = time.perf_counter()
        da.store(y, Discard(), lock=False)
        seconds = time.perf_counter() - start
    return seconds, rss.peak


def header(client, x, memory_limit):
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "dask": dask.__version__, "distributed": distributed.__version__,
                "fastsoftmax": fsm.__version__}
    workers = client.scheduler_info()["workers"].values()
    return "\n".join([
        f"CPU      : {cpu_model()} ({psutil.cpu_count()} logical CPUs)",
        f"cluster  : LocalCluster, {len(workers)} worker processes x 1 thread, "
        f"memory limit {memory_limit} each",
        f"input    : float32 {x.shape[0]} x {x.shape[1]} ({x.nbytes / 2**30:.2f} GiB), "
        f"chunks {CHUNKS} ({CHUNKS[0] * CHUNKS[1] * 4 / 2**20:.0f} MiB, "
        f"{x.numblocks[1]} along the softmax axis), {x.npartitions} chunks",
        "versions : " + ", ".join(f"{k} {v}" for k, v in versions.items()),
    ])


def table(results, x):
    """The Markdown table of the runs; GB is 10^9 bytes of input."""
    gb = x.nbytes / 1e9
    gen = min(results["generate only"][0])
    lines = ["| graph | tasks | best wall s | median wall s | input GB/s (best) "
             "| softmax GB/s (best, net of generation) | peak worker RSS GiB |",
             "|:--|--:|--:|--:|--:|--:|--:|"]
    for name, (times, peaks, tasks) in results.items():
        best = min(times)
        net = "" if name == "generate only" or best <= gen else f"{gb / (best - gen):.2f}"
        lines.append(f"| {name} | {tasks} | {best:.2f} | {statistics.median(times):.2f} "
                     f"| {gb / best:.2f} | {net} | {max(peaks) / 2**30:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gb", type=float, default=4.0, help="input size in GiB (default 4)")
    p.add_argument("--quick", action="store_true", help="1/4 GiB, one repeat")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per graph (default 3)")
    p.add_argument("--memory-limit", default="2GiB", help="per worker (default 2GiB)")
    args = p.parse_args(argv)
    if args.quick:
        args.gb, args.repeat = 0.25, 1

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit=args.memory_limit, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        x = random_input(args.gb)
        print(header(client, x, args.memory_limit), flush=True)
        ok = all([check(name, x) for name in GRAPHS if name in RTOL])
        results = {name: ([], [], len(dask.optimize(GRAPHS[name](x))[0].__dask_graph__()))
                   for name in GRAPHS}
        for i in range(args.repeat):
            for name in GRAPHS:
                seconds, peak = run(client, name, x)
                results[name][0].append(seconds)
                results[name][1].append(peak)
                print(f"  run {i + 1}: {name:<17} {seconds:7.2f} s, peak worker RSS "
                      f"{peak / 2**30:.2f} GiB", file=sys.stderr, flush=True)
    print()
    print(table(results, x))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
