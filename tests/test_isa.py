"""Every instruction-set path (generic, AVX2, AVX-512 where the CPU has them) on
a core set of value and special-value cases; FASTSOFTMAX_ISA at import."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastsoftmax as fsm
from fastsoftmax import _kernels

from . import ml_reference as ref
from . import util

FUNCS = {name: getattr(fsm, name) for name in util.FUNCTIONS}
ISAS = _kernels.available_isas()
inf, nan = np.inf, np.nan


@pytest.fixture(params=ISAS)
def isa(request):
    """Switch the kernels to one instruction set for the test, then back."""
    before = _kernels.isa()
    _kernels.set_isa(request.param)
    try:
        assert _kernels.isa() == request.param
        assert fsm.show_config(mode="dicts")["active_isa"] == request.param
        yield request.param
    finally:
        _kernels.set_isa(before)


def test_isas():
    assert "generic" in ISAS
    assert set(ISAS) <= set(fsm.show_config(mode="dicts")["compiled_isas"])
    assert _kernels.isa() == ISAS[-1], "the best instruction set is the default"


LENGTHS = list(range(1, 71)) + [127, 128, 129, 1023, 1024, 1025, 2049, 4100]


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_row_lengths(isa, func):
    """Every row length up to 70 (vector bodies and every tail) and block edges,
    contiguous, strided and along axis 0 (rows side by side)."""
    rng = np.random.default_rng(0)
    for dtype in util.FLOATS:
        for n in LENGTHS:
            x = rng.normal(0, 8, (3, 2 * n)).astype(dtype)
            for desc, a, axis in (("contiguous", x[:, :n], -1), ("strided", x[:, ::2], -1),
                                  ("axis 0", np.ascontiguousarray(x[:, :n].T), 0)):
                what = f"{func} [{isa}] {dtype} n={n} {desc}"
                util.ASSERT_CLOSE[func](FUNCS[func](a, axis=axis), util.reference(func, a, axis), dtype, what)


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_columns_many_rows_side_by_side(isa, func):
    """Axis 0 of wide C arrays (rows adjacent in memory), widths around the vector sizes."""
    rng = np.random.default_rng(1)
    for dtype in util.FLOATS:
        for width in (1, 7, 8, 15, 16, 17, 33, 64, 100, 257):
            for n in (1, 3, 50):
                x = rng.normal(0, 8, (n, width)).astype(dtype)
                what = f"{func} [{isa}] {dtype} ({n}, {width}) axis 0"
                util.ASSERT_CLOSE[func](FUNCS[func](x, axis=0), util.reference(func, x, 0), dtype, what)


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_column_tiles_every_run_count(isa, func):
    """Axis 0 through the packed column tiles, which take four runs at a time:
    run counts of every remainder mod 4, around the prefetch distance and the
    1024-run blocks, tiles of one and of several vectors, with the max
    repeated (the counted terms), with and without a temperature."""
    rng = np.random.default_rng(2)
    for dtype in util.FLOATS:
        for n in (4, 5, 6, 7, 19, 21, 22, 23, 1023, 1025, 1026, 2051):
            for width in (16, 48, 67):
                x = rng.normal(0, 8, (n, width)).astype(dtype)
                x[n // 2, ::3] = x.max()
                what = f"{func} [{isa}] {dtype} ({n}, {width}) axis 0"
                util.ASSERT_CLOSE[func](FUNCS[func](x, axis=0), util.reference(func, x, 0), dtype, what)
                # T = 0.5: x / T is exact, so the reference takes it as given
                util.ASSERT_CLOSE[func](FUNCS[func](x, axis=0, temperature=0.5),
                                        util.reference(func, x * 2, 0), dtype, what + " T=0.5")


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_narrow_column_tiles(isa, func):
    """Fewer rows side by side than a vector holds, along axis 1 of
    (outer, n, inner): an inner dimension under a vector's width, or the rows
    that the tiles and strips leave, computed in one vector's width with the
    spare lanes filled.  Into out= rows padded with a sentinel (nothing may be
    written past them), in place, with a temperature, and with non-finite
    rows (which the tile declines and leaves to the rows one at a time)."""
    rng = np.random.default_rng(11)
    for dtype in util.FLOATS:
        for inner in (2, 3, 4, 5, 7, 8, 10, 15, 17, 20, 24, 40):
            for n in (1, 3, 10, 50, 1000):
                x = rng.normal(0, 6, (3, n, inner)).astype(dtype)
                x[1, n // 2, ::2] = x.max()
                what = f"{func} [{isa}] {dtype} (3, {n}, {inner}) axis 1"
                expected = FUNCS[func](x, axis=1)
                util.ASSERT_CLOSE[func](expected, util.reference(func, x, 1), dtype, what)
                util.ASSERT_CLOSE[func](FUNCS[func](x, axis=1, temperature=0.5), util.reference(func, x * 2, 1),
                                        dtype, what + " T=0.5")
                shape = expected.shape
                padded = np.full(shape[:-1] + (shape[-1] + 3,), 7, dtype)
                FUNCS[func](x, axis=1, out=padded[..., :inner])
                np.testing.assert_array_equal(padded[..., :inner], expected, err_msg=what + " out=")
                assert (padded[..., inner:] == 7).all(), what + ": wrote past the rows of out"
                if func != "logsumexp":
                    y = x.copy()
                    FUNCS[func](y, axis=1, out=y)
                    np.testing.assert_array_equal(y, expected, err_msg=what + " in place")
            z = rng.normal(0, 6, (2, 10, inner)).astype(dtype)
            z[0, 3, 0], z[1, 4, -1], z[1, :, 1 % inner] = np.nan, np.inf, -np.inf
            what = f"{func} [{isa}] {dtype} (2, 10, {inner}) axis 1, NaN, inf and -inf rows"
            util.ASSERT_CLOSE[func](FUNCS[func](z, axis=1), util.reference(func, z, 1), dtype, what)


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_staged_rows(isa, func):
    """Rows that plain_rows cannot take as they are (float16 x or y, strided
    rows or out=) go through a contiguous float32 copy, 16 KB of rows at a
    time: the same bits as the contiguous float32 rows (rounded once to
    float16), at row lengths around the vector widths and the 1024-element
    block, 70 rows crossing the stages, with counted max terms, NaN and +inf
    rows, in place, and into strided out= without writing between its rows."""
    rng = np.random.default_rng(12)
    f = FUNCS[func]
    reduce = func == "logsumexp"
    for n in (0, 1, 65, 100, 257, 1000, 1024):
        x = rng.normal(0, 6, (70, n)).astype(np.float32)
        if n:
            x[5, : n // 2 + 1] = x.max()
            x[7, n // 2], x[8, -1] = np.nan, np.inf
        what = f"{func} [{isa}] (70, {n})"
        expected = f(x)
        util.ASSERT_CLOSE[func](expected, util.reference(func, x, -1), np.float32, what)
        np.testing.assert_array_equal(f(x, dtype=np.float16), expected.astype(np.float16), err_msg=what + " to float16")
        wide = np.zeros((70, 2 * n), np.float32)
        wide[:, ::2] = x
        np.testing.assert_array_equal(f(wide[:, ::2]), expected, err_msg=what + " strided rows")
        out = np.full((70, 2) if reduce else (70, 2 * n), 7, np.float32)
        f(x, out=out[:, 0] if reduce else out[:, ::2])
        np.testing.assert_array_equal(out[:, 0] if reduce else out[:, ::2], expected, err_msg=what + " strided out=")
        assert (out[:, 1::2] == 7).all(), what + ": wrote between the rows of out="
        x16 = x.astype(np.float16)
        expected16 = f(x16.astype(np.float32)).astype(np.float16)
        np.testing.assert_array_equal(f(x16), expected16, err_msg=what + " float16")
        if not reduce:
            y16 = x16.copy()
            f(y16, out=y16)
            np.testing.assert_array_equal(y16, expected16, err_msg=what + " float16 in place")


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_row_groups(isa, func):
    """Rows of up to 1024 elements go in groups of up to a vector's lanes,
    whose sums and max-term counts are added up across the rows together:
    every row the same bits as computed alone, in groups of every size, with
    rows that count their max terms (ties, a max under 4), NaN, +inf and
    all -inf rows among them, with and without a temperature."""
    rng = np.random.default_rng(21)
    f = FUNCS[func]
    for dtype in (np.float32, np.float64):
        for n in (64, 65, 100, 128, 256, 512):
            for rows in (2, 3, 5, 8, 9, 16, 19):
                x = rng.normal(0, 3, (rows, n))
                x[1::4] = rng.integers(-2, 3, (len(x[1::4]), n))
                x[2::5] *= 0.1
                if rows > 4:
                    x[3, 5], x[4, 9], x[rows - 1] = nan, inf, -inf
                x = x.astype(dtype)
                for temperature in (1.0, 0.5):
                    what = f"{func} [{isa}] {np.dtype(dtype).name} ({rows}, {n}) T={temperature}"
                    got = f(x, temperature=temperature)
                    for r in range(rows):
                        alone = f(x[r : r + 1], temperature=temperature)[0]
                        np.testing.assert_array_equal(got[r], alone, err_msg=f"{what} row {r}")
                    util.ASSERT_CLOSE[func](got, util.reference(func, x / temperature, -1), dtype, what)


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_masked_row_groups(isa, func):
    """Masked rows of 64 to 1024 elements go masked into contiguous rows and
    through the row groups (rows of 40: the first 64 through a short-row
    tile, masked as it is filled): each row as its True entries alone and as
    the wider reference of them, its False entries 0 (softmax) or -inf, also
    in a row with a NaN or +inf among its True entries, a NaN among its False
    ones, or no True entry at all."""
    rng = np.random.default_rng(22)
    f = FUNCS[func]
    zero = 0.0 if func == "softmax" else -inf
    for dtype in (np.float32, np.float64, np.float16):
        for n in (40, 64, 100, 257, 1024):
            rows = 19 if n >= 64 else 64 + 19     # the special rows after the tile's
            s0 = rows - 19
            x = rng.normal(0, 3, (rows, n))
            w = rng.random((rows, n)) < 0.7
            w[:, 0] = True
            x[s0 + 2, 0] = nan                  # NaN among the True entries
            x[s0 + 3, 0] = inf                  # +inf among them
            x[s0 + 4, 1], w[s0 + 4, 1] = nan, False     # NaN hidden by the mask
            w[s0 + 5] = False                   # no True entry
            x = x.astype(dtype)
            for temperature in (1.0, 0.5):
                what = f"{func} [{isa}] {np.dtype(dtype).name} ({rows}, {n}) T={temperature}"
                with np.errstate(invalid="ignore"):
                    got = f(x, where=w, temperature=temperature)
                    for r in range(rows):
                        alone = f(x[r][w[r]], temperature=temperature)
                        if func == "logsumexp":
                            np.testing.assert_allclose(got[r], alone, rtol=4 * np.finfo(dtype).eps,
                                                       err_msg=f"{what} row {r}")
                        else:
                            np.testing.assert_allclose(got[r][w[r]], alone, rtol=4 * np.finfo(dtype).eps,
                                                       atol=0, err_msg=f"{what} row {r}")
                            np.testing.assert_array_equal(got[r][~w[r]], zero, err_msg=f"{what} row {r}")
                        if r - s0 not in (2, 3, 5):     # and the ordinary rows against the wider reference
                            expected = util.reference(func, x[r][w[r]] / dtype(temperature), -1)
                            util.ASSERT_CLOSE[func](got[r] if func == "logsumexp" else got[r][w[r]], expected,
                                                    dtype, f"{what} row {r}")


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_short_row_tiles(isa, func):
    """Rows of up to 64 elements (63 for float64), 64 at a time through the
    transposed tile, which moves contiguous rows in and out a vector block at
    a time: every length around the vector widths, rows padded (a view of
    wider rows), overlapping (as_strided, read only), ending exactly at the
    end of the array, reversed, into padded out= rows, and in place."""
    rng = np.random.default_rng(7)
    for dtype in util.FLOATS:
        for n in (1, 2, 3, 4, 5, 8, 9, 10, 15, 16, 17, 24, 31, 32, 33, 40, 47, 48, 49, 63, 64):
            rows = 3 * 64 + 5
            wide = rng.normal(0, 6, (rows, n + 3)).astype(dtype)
            x = np.ascontiguousarray(wide[:, :n])
            flat = np.ascontiguousarray(wide).ravel()
            overlap = np.lib.stride_tricks.as_strided(flat, (rows, n), (2 * wide.itemsize, wide.itemsize),
                                                      writeable=False)
            for desc, a in (("contiguous", x), ("padded rows", wide[:, :n]), ("overlapping rows", overlap),
                            ("reversed rows", x[::-1])):
                what = f"{func} [{isa}] {dtype} ({rows}, {n}) {desc}"
                util.ASSERT_CLOSE[func](FUNCS[func](a, axis=-1), util.reference(func, a, -1), dtype, what)
            if func == "logsumexp":
                continue
            expected = FUNCS[func](x, axis=-1)
            padded = np.full((rows, n + 3), 7, dtype)
            FUNCS[func](x, axis=-1, out=padded[:, :n])
            np.testing.assert_array_equal(padded[:, :n], expected, err_msg=f"{func} [{isa}] {dtype} n={n} out=")
            assert (padded[:, n:] == 7).all(), f"{func} [{isa}] {dtype} n={n}: wrote past the rows of out"
            y = x.copy()
            FUNCS[func](y, axis=-1, out=y)
            np.testing.assert_array_equal(y, expected, err_msg=f"{func} [{isa}] {dtype} n={n} in place")


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_short_row_tiles_uncached(isa, func):
    """Short rows of arrays too large to stay cached (x and y together 16 MB or
    more), where each tile fetches the next one's rows ahead: the same bits as
    the same rows in small calls, contiguous, reversed, padded rows, into padded
    out= rows and in place.  Whole tiles only, so that every row takes the
    tile path in both."""
    rng = np.random.default_rng(8)
    for dtype in util.FLOATS:
        for n in (10, 33):
            rows = -(-(16 << 20) // (2 * n * np.dtype(dtype).itemsize) // 64) * 64
            wide = rng.normal(0, 6, (rows, n + 3)).astype(dtype)
            x = np.ascontiguousarray(wide[:, :n])
            expected = np.concatenate([FUNCS[func](x[i:i + 4096], axis=-1) for i in range(0, rows, 4096)])
            what = f"{func} [{isa}] {dtype} ({rows}, {n})"
            util.ASSERT_CLOSE[func](FUNCS[func](x, axis=-1), util.reference(func, x, -1), dtype, what)
            for desc, a, want in (("contiguous", x, expected), ("reversed rows", x[::-1], expected[::-1]),
                                  ("padded rows", wide[:, :n], expected)):
                np.testing.assert_array_equal(FUNCS[func](a, axis=-1), want, err_msg=f"{what} {desc}")
            if func == "logsumexp":
                continue
            padded = np.full((rows, n + 3), 7, dtype)
            FUNCS[func](x, axis=-1, out=padded[:, :n])
            np.testing.assert_array_equal(padded[:, :n], expected, err_msg=f"{what} out=")
            assert (padded[:, n:] == 7).all(), f"{what}: wrote past the rows of out"
            FUNCS[func](x, axis=-1, out=x)
            np.testing.assert_array_equal(x, expected, err_msg=f"{what} in place")


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
def test_rows_uncached(isa, func):
    """Rows of hundreds of elements in arrays too large to stay cached (x and
    y together 16 MB or more), where softmax prefetches the next row and
    log_softmax writes whole cache lines of y by non-temporal stores, the
    partial lines at each row's ends one element at a time: the same bits as
    the same rows in small calls, with and without a temperature (0.5: x / T
    is exact for the reference), on 1 and 2 threads, into padded out= rows
    (every alignment of a row's start) and in place; and special values in a
    few rows."""
    rng = np.random.default_rng(9)
    for dtype in util.FLOATS:
        for n in (300, 600, 1000):
            rows = -(-(16 << 20) // (2 * n * np.dtype(dtype).itemsize))
            x = rng.normal(0, 6, (rows, n)).astype(dtype)
            x[[5, rows // 2], [0, n - 1]] = [np.nan, np.inf]
            x[rows - 1] = -np.inf
            for t in (1.0, 0.5):
                what = f"{func} [{isa}] {dtype} ({rows}, {n}) T={t}"
                expected = np.concatenate([FUNCS[func](x[i:i + 256], axis=-1, temperature=t)
                                           for i in range(0, rows, 256)])
                assert np.isnan(expected[5]).all() and np.isnan(expected[rows - 1]).all(), what
                for threads in (1, 2):
                    got = FUNCS[func](x, axis=-1, temperature=t, num_threads=threads)
                    np.testing.assert_array_equal(got, expected, err_msg=f"{what} {threads} threads")
                padded = np.full((rows, n + 3), 7, dtype)
                FUNCS[func](x, axis=-1, temperature=t, out=padded[:, :n])
                np.testing.assert_array_equal(padded[:, :n], expected, err_msg=f"{what} out=")
                assert (padded[:, n:] == 7).all(), f"{what}: wrote past the rows of out"
                y = x.copy()
                FUNCS[func](y, axis=-1, temperature=t, out=y)
                np.testing.assert_array_equal(y, expected, err_msg=f"{what} in place")
                ok = np.isfinite(x).all(axis=-1)
                util.ASSERT_CLOSE[func](expected[ok][:2000], util.reference(func, x[ok][:2000] / t, -1),
                                        dtype, what)


# Columns long enough for the strips on every instruction set (a column tile
# would be under 5 vectors wide: n > 3276 for 16-byte vectors): 52 blocks of
# 64 runs, and one run.
STRIP_N = 3329


def _strip_columns(rng):
    """(name, x): axis-0 cases of the strips, special values in a few columns."""
    n = STRIP_N
    base = rng.normal(0, 4, (n, 70))
    yield "normal", base
    yield "max growing in every block", base + np.linspace(0, 80, n)[:, None]
    x = base.copy()
    x[n - 1, ::4] = 30                          # a new max in the last run
    x[[n // 2, n // 2 + 1, n // 2 + 64], 1::4] = 30   # repeated, in two blocks
    yield "late and repeated max", x
    x = base.copy()
    x[:70, 5] = -inf                            # a first block of -inf: tiles
    x[2000:2100, 6] = -inf
    x[:64, 9] = nan
    yield "-inf and NaN blocks", x
    x = base.copy()
    x[3000, 7] = inf
    x[3100, 8] = nan
    x[3200, 10:12] = -inf
    yield "+inf, NaN, -inf late", x


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_column_strips(isa, func):
    """Axis 0 through the strips (log_softmax and logsumexp: two reads of
    whole runs, a running max and sum per lane, a block of runs at a time;
    softmax: three passes run by run), with rescales when a lane's max
    grows, the max terms counted across blocks, columns that fall back to
    tiles, and in place; then a strip too wide for one pass."""
    rng = np.random.default_rng(5)
    for dtype in util.FLOATS:
        for name, x in _strip_columns(rng):
            x = x.astype(dtype)
            what = f"{func} [{isa}] {dtype} {name}"
            expected = util.reference(func, x, 0)
            util.ASSERT_CLOSE[func](FUNCS[func](x, axis=0), expected, dtype, what)
            util.ASSERT_CLOSE[func](FUNCS[func](x, axis=0, temperature=0.5),
                                    util.reference(func, x * 2, 0), dtype, what + " T=0.5")
            if func != "logsumexp":
                y = x.copy()
                FUNCS[func](y, axis=0, out=y)
                util.ASSERT_CLOSE[func](y, expected, dtype, what + " in place")
    x = rng.normal(0, 4, (STRIP_N, 1030))
    util.ASSERT_CLOSE[func](FUNCS[func](x, axis=0), util.reference(func, x, 0), np.dtype(np.float64),
                            f"{func} [{isa}] float64 ({STRIP_N}, 1030)")


def test_column_strips_softmax_as_tiles(isa):
    """Softmax's strips take a tile's three passes (max, exponentials stored
    and summed, scaled), run by run: the same bits as the column tiles that
    the strip falls back to when one of its columns starts with -inf."""
    rng = np.random.default_rng(6)
    for dtype in util.FLOATS:
        x = rng.normal(0, 4, (STRIP_N, 70)).astype(dtype)
        fallback = x.copy()
        fallback[:70, 5] = -inf                 # this strip goes by tiles
        for t in (1.0, 0.5):
            strips = fsm.softmax(x, axis=0, temperature=t)
            tiles = fsm.softmax(fallback, axis=0, temperature=t)
            # columns 0-15 share a vector with column 5 on every instruction set
            np.testing.assert_array_equal(tiles[:, 16:64], strips[:, 16:64],
                                          err_msg=f"softmax [{isa}] {dtype} T={t}")
            util.ASSERT_CLOSE["softmax"](tiles, util.reference("softmax", fallback / t, 0), dtype,
                                         f"softmax [{isa}] {dtype} T={t}, the fallback's tiles")


def _special_matrices(n, dtype):
    """(name, matrix): row k has its special value(s) at position k."""
    rng = np.random.default_rng(n)
    base = rng.normal(0, 3, (n, n))
    eye = np.eye(n, dtype=bool)
    yield "NaN at k", np.where(eye, nan, base).astype(dtype)
    yield "+inf at k", np.where(eye, inf, base).astype(dtype)
    yield "-inf at k", np.where(eye, -inf, base).astype(dtype)
    yield "only -inf but k", np.where(eye, base, -inf).astype(dtype)
    yield "+inf at k and k+1", np.where(eye | np.roll(eye, 1, axis=1), inf, base).astype(dtype)
    yield "+inf at k, NaN at k+1", np.where(eye, inf, np.where(np.roll(eye, 1, axis=1), nan, base)).astype(dtype)
    yield "max at k, huge below", np.where(eye, 1e30, -1e30).astype(dtype)
    d = util.denormal(np.dtype(dtype))
    yield "denormals", np.where(eye, d, -d).astype(dtype)
    yield "all -inf", np.full((n, n), -inf, dtype)
    yield "all +inf", np.full((n, n), inf, dtype)


@pytest.mark.parametrize("n", [2, 5, 17, 37, 67, 130])
@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_special_values_at_every_position(isa, func, n):
    for dtype in util.FLOATS:
        for name, x in _special_matrices(n, dtype):
            for axis, a in ((-1, x), (0, np.ascontiguousarray(x.T)), (-1, np.asfortranarray(x))):
                what = f"{func} [{isa}] {dtype} n={n} {name}, axis={axis}"
                util.ASSERT_CLOSE[func](FUNCS[func](a, axis=axis), util.reference(func, a, axis), dtype, what)


def test_limits_exact(isa):
    for dtype in util.FLOATS:
        np.testing.assert_array_equal(fsm.softmax(np.array([inf, 1.0], dtype)), [1, 0])
        np.testing.assert_array_equal(fsm.softmax(np.array([inf, inf, 1.0], dtype)), [0.5, 0.5, 0])
        np.testing.assert_array_equal(fsm.log_softmax(np.array([inf, 1.0], dtype)), [0, -inf])
        assert fsm.logsumexp(np.array([inf, 1.0], dtype)) == inf
        assert np.isnan(fsm.softmax(np.array([-inf, -inf], dtype))).all()
        assert np.isnan(fsm.log_softmax(np.array([-inf, -inf], dtype))).all()
        assert fsm.logsumexp(np.array([-inf, -inf], dtype)) == -inf
        assert fsm.logsumexp(np.zeros(0, dtype)) == -inf


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_generator_sample(isa, func):
    """A sample of the generator (floats, a few shapes, all families and layouts)."""
    for desc, x in util.arrays(dtypes=util.FLOATS + (util.F16,), shapes=[(7,), (5, 13), (3, 4, 5)]):
        for axis in (-1, 0, None):
            what = f"{func} [{isa}] ({desc}, axis={axis})"
            util.ASSERT_CLOSE[func](FUNCS[func](x, axis=axis), util.reference(func, x, axis), x.dtype, what)


@pytest.mark.parametrize("func", util.FUNCTIONS)
def test_large(isa, func):
    for desc, x in util.large_arrays():
        util.ASSERT_CLOSE[func](FUNCS[func](x), util.reference(func, x, -1), x.dtype, f"{func} [{isa}] {desc}")


@pytest.mark.parametrize("kind", ["index", "prob"])
def test_cross_entropy(isa, kind):
    """cross_entropy's kernels, short rows (a transposed tile) and long rows, against
    the wide-precision reference: weights, label smoothing, ignore_index, temperature."""
    rng = np.random.default_rng(3)
    for dtype in util.FLOATS:
        for shape in ((150, 7), (300, 32), (20, 1000)):
            logits = rng.normal(0.0, 3.0, shape).astype(dtype)
            if kind == "index":
                target = rng.integers(0, shape[1], shape[0])
                target[::5] = 2
                ignore = dict(ignore_index=2)
            else:
                q = rng.random(shape)
                target, ignore = (q / q.sum(axis=1, keepdims=True)).astype(dtype), {}
            weight = rng.uniform(0.5, 2.0, shape[1]).astype(dtype)
            for T in (1.0, 0.5):
                kw = dict(temperature=T, weight=weight, label_smoothing=0.1, reduction="none", **ignore)
                loss, grad = fsm.cross_entropy(logits, target, return_grad=True, **kw)
                ref.check_cross_entropy(loss, grad, logits, target,
                                        f"cross_entropy [{isa}] {dtype} {shape} {kind} T={T}", **kw)


def test_cross_entropy_uncached(isa):
    """Short rows of logits and gradient too large to stay cached (16 MB or more
    together), where each tile fetches the next one's rows ahead: the same bits as
    the same rows in small calls (whole tiles), with label smoothing, ignored rows
    (one holding a NaN, whose gradient is still 0) and padded rows; rows past the
    NaN against the wide-precision reference."""
    rng = np.random.default_rng(9)
    for dtype in util.FLOATS:
        for n in (10, 33):
            rows = -(-(16 << 20) // (2 * n * np.dtype(dtype).itemsize) // 64) * 64
            wide = rng.normal(0, 3, (rows, n + 1)).astype(dtype)
            wide[70, 1] = nan
            target = rng.integers(0, n, rows)
            target[::7] = 1
            kw = dict(ignore_index=1, label_smoothing=0.1, reduction="none", return_grad=True)
            what = f"cross_entropy [{isa}] {dtype} ({rows}, {n})"
            for desc, logits in (("contiguous", np.ascontiguousarray(wide[:, :n])), ("padded rows", wide[:, :n])):
                loss, grad = fsm.cross_entropy(logits, target, **kw)
                parts = [fsm.cross_entropy(logits[i:i + 4096], target[i:i + 4096], **kw) for i in range(0, rows, 4096)]
                np.testing.assert_array_equal(loss, np.concatenate([p[0] for p in parts]), err_msg=f"{what} {desc} loss")
                np.testing.assert_array_equal(grad, np.concatenate([p[1] for p in parts]), err_msg=f"{what} {desc} grad")
                assert loss[70] == 0 and not grad[70].any(), f"{what} {desc}: an ignored row with a NaN"
            kw.pop("return_grad")
            rest = slice(128, 768)      # past the NaN, which the reference would spread
            ref.check_cross_entropy(loss[rest], grad[rest], logits[rest], target[rest], what, **kw)


def test_threads_identical(isa):
    x = np.random.default_rng(2).normal(0, 4, (512, 300)).astype(np.float32)
    for func in util.FUNCTIONS:
        for axis in (-1, 0):
            one = FUNCS[func](x, axis=axis, num_threads=1)
            assert one.tobytes() == FUNCS[func](x, axis=axis, num_threads=2).tobytes()


# ---- FASTSOFTMAX_ISA ----------------------------------------------------------------------------

def _run_with_isa(value, code):
    env = dict(os.environ, FASTSOFTMAX_ISA=value)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(fsm.__file__)))


@pytest.mark.parametrize("name", ISAS)
def test_environment_variable_forces_the_isa(name):
    code = ("import numpy as np, fastsoftmax as f; "
            "print(f.show_config(mode='dicts')['active_isa']); "
            "print(float(f.softmax(np.array([0.0, np.log(3.0)]))[1]))")
    r = _run_with_isa(name, code)
    assert r.returncode == 0, r.stderr
    active, value = r.stdout.split()
    assert active == name
    assert float(value) == pytest.approx(0.75, rel=1e-15)


def test_environment_variable_unknown_name_is_import_error():
    r = _run_with_isa("sse9", "import fastsoftmax")
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "sse9" in r.stderr and "FASTSOFTMAX_ISA" in r.stderr
