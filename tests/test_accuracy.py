"""Accuracy bounds (issue 4), on every instruction-set path, against exact math.

The inputs, the reference (exact math on the given inputs, computed in long
double and rounded once to the output dtype), the metrics and the bounds are
those of ``fastsoftmax.accuracy``, so these tests and ``python -m
fastsoftmax.accuracy`` agree.  N(mean, variance): N(0,4) has standard
deviation 2.

- softmax: max relative error <= 4e-7 (float32), 8e-16 (float64) on outputs
  >= 1e-30 / 1e-300; logsumexp: <= 2 ulp (float32), 4 ulp (float64) of
  max(1, |value|); log_softmax: <= 4 ulp of max(1, |value|).  Every
  distribution of fastsoftmax.accuracy.DISTRIBUTIONS, rows of 7 (many), 10^3
  (many), ~10^5 and 10^6, along the last axis and along axis 0, plus one row
  of 10^7 per dtype.
- The softmax error does not grow with n: at 10^6 (and 10^7) it is at most
  twice the error at 10^3 for the same distribution.
- Tiny tails: logsumexp([0, -40]) == np.logaddexp(0, -40), and the like.
- Temperatures whose reciprocal overflows the dtype, down to the smallest
  subnormal: the bounds above, against mpmath on the exact x and T.
- The long-double reference agrees with mpmath.
"""
import json
import math

import numpy as np
import pytest

import fastsoftmax as fsm
from fastsoftmax import _kernels
from fastsoftmax import accuracy as acc

ISAS = _kernels.available_isas()
F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
DTYPES = acc.DTYPES
DISTRIBUTIONS = tuple(acc.DISTRIBUTIONS)
FUNCS = {name: getattr(fsm, name) for name in acc.FUNCTIONS}

Case = acc.Case
BASELINE = Case("64 rows x 10^3", (64, 1000), -1)
LONG = Case("1 row x 10^6", (1, 10**6), -1)
LENGTHS = (
    BASELINE,
    Case("3 rows x 100003", (3, 100_003), -1),
    LONG,
    Case("10^5 rows x 7", (100_000, 7), -1),        # short rows: a lane per row
    Case("10^3 x 64, axis 0", (1000, 64), 0),
    Case("100003 x 3, axis 0", (100_003, 3), 0),
    Case("10^6 x 2, axis 0", (10**6, 2), 0),
)
# One row of 10^7 per dtype (they dominate the run time): the distribution
# whose terms all count in the sum, the hardest for the summation.
HUGE = Case("1 row x 10^7", (1, 10**7), -1)
HUGE_DISTRIBUTION = {F32: "N(0,1)", F64: "N(0,1)"}

BOUND_CASES = ([(dt, dist, case) for dt in DTYPES for dist in DISTRIBUTIONS for case in LENGTHS]
               + [(dt, HUGE_DISTRIBUTION[dt], HUGE) for dt in DTYPES])
GROWTH_CASES = ([(dt, dist, LONG) for dt in DTYPES for dist in DISTRIBUTIONS]
                + [(dt, HUGE_DISTRIBUTION[dt], HUGE) for dt in DTYPES])


def _case_id(p):
    dt, dist, case = p
    return f"{dt.name}-{dist}-{case.name}".replace(" ", "")


@pytest.fixture(params=ISAS)
def isa(request):
    """Switch the kernels to one instruction set for the test, then back (to the
    best one, unless FASTSOFTMAX_ISA chose another)."""
    before = _kernels.isa()
    _kernels.set_isa(request.param)
    try:
        assert _kernels.isa() == request.param
        yield request.param
    finally:
        _kernels.set_isa(before)


class Data:
    """An input of fastsoftmax.accuracy and its reference (rounded to the dtype)."""

    def __init__(self, dtype, dist, case, funcs=acc.FUNCTIONS):
        self.dtype, self.dist, self.case = dtype, dist, case
        self.x = acc.make_input(dist, case.shape, dtype)
        self.ref = acc.reference(self.x, case.axis, funcs)

    def error(self, func):
        y = FUNCS[func](self.x, axis=self.case.axis)
        assert y.dtype == self.dtype and y.shape == self.ref[func].shape
        return acc.error(func, y, self.ref[func], self.dtype)

    def __str__(self):
        return f"{self.dtype} {self.dist} {self.case.name}"


# Module scope: pytest runs the tests of one case together, and holds one case
# (one reference) at a time.
@pytest.fixture(scope="module", params=BOUND_CASES, ids=_case_id)
def data(request):
    return Data(*request.param)


@pytest.mark.parametrize("func", acc.FUNCTIONS)
def test_bound(data, isa, func):
    bound = acc.BOUNDS[func, data.dtype]
    err = data.error(func)
    assert err <= bound, (f"{func} [{isa}] {data}: {acc.UNITS[func]} {err:.3g} > bound {bound:g}")


@pytest.fixture(scope="module", params=GROWTH_CASES, ids=_case_id)
def long_softmax(request):
    dt, dist, case = request.param
    return Data(dt, dist, BASELINE, ("softmax",)), Data(dt, dist, case, ("softmax",))


def test_softmax_error_does_not_grow(long_softmax, isa):
    """The error at 10^6 (10^7) is at most twice the error at 10^3.  The errors are
    counted against the reference rounded to the dtype, in steps of an ulp, so
    the baseline is taken as at least one ulp (eps) for the comparison."""
    short, long = long_softmax
    e_short, e_long = short.error("softmax"), long.error("softmax")
    eps = float(np.finfo(short.dtype).eps)
    limit = 2 * max(e_short, eps)
    assert e_long <= limit, (f"softmax [{isa}] {long}: relative error {e_long:.3g} > 2 x "
                             f"{max(e_short, eps):.3g} ({short.case.name}: {e_short:.3g})")


# ---- tiny tails: log(1 + t) with t far below the rounding of 1 -------------------------------

# Rows whose logsumexp must be the correctly rounded exact value, as
# np.logaddexp gives it (SciPy's hard case and the like).
EXACT_TAILS = {
    "[0, -40]": [0.0, -40.0],
    "[-40, 0]": [-40.0, 0.0],
    "[5, 5-45]": [5.0, 5.0 - 45.0],
}
# Tails of many terms: within the logsumexp bound in ulps of the value itself
# (not of max(1, |value|), which would accept 0).
LONG_TAILS = {
    "[0, -30, -50]": [0.0, -30.0, -50.0],
    "[0] + 1000 x [-40]": [0.0] + [-40.0] * 1000,
    "[-40] x 100 + [0] + [-45] x 100": [-40.0] * 100 + [0.0] + [-45.0] * 100,
    "[0] + 63 x [-37]": [0.0] + [-37.0] * 63,
    # A max above 4 skips the count of the max terms (lse_counts_top): the
    # tail still shows in the value's last bits, just above and below 4.
    "[4.5] + 1000 x [4.5-17]": [4.5] + [4.5 - 17.0] * 1000,
    "[4.01] + 1000 x [4.01-40]": [4.01] + [4.01 - 40.0] * 1000,
    "[3.99] + 1000 x [3.99-17]": [3.99] + [3.99 - 17.0] * 1000,
    "[8] x 3 + 1000 x [5]": [8.0] * 3 + [5.0] * 1000,
}


def _exact_logsumexp(x, axis=-1):
    """The exact logsumexp of x (mpmath), rounded once to x's dtype."""
    return acc._mp_round(np.atleast_1d(acc.reference_mpmath(x, axis, ("logsumexp",))["logsumexp"]),
                         x.dtype).reshape(np.delete(x.shape, axis % x.ndim))


def test_logsumexp_0_minus_40_equals_logaddexp(isa):
    """SciPy's hard case: log(1 + e^-40) = 4.2e-18 must not be rounded to 0."""
    x = np.array([0.0, -40.0])
    assert fsm.logsumexp(x) == np.logaddexp(0.0, -40.0) == 4.248354255291589e-18
    x32 = x.astype(np.float32)
    expected = np.float32(np.logaddexp(0.0, -40.0))      # the exact value, rounded to float32
    assert _exact_logsumexp(x32)[()] == expected
    assert fsm.logsumexp(x32) == expected


@pytest.mark.parametrize("kwargs", [{"b": [1.0, 1.0]}, {"return_sign": True}, {"b": [2.0, -1.0], "return_sign": True}],
                         ids=["b", "return_sign", "b and return_sign"])
@pytest.mark.parametrize("dtype", [np.float16, F32, np.complex64], ids=str)
def test_logsumexp_numpy_path_rounds_once(dtype, kwargs):
    """b=, return_sign= and complex input take the NumPy path: it sums in
    double precision, as the kernels do, and rounds once to the result.  In
    float32 arithmetic 1 + e^-20 is 1, and log(2 - e^-20) loses e^-20."""
    x = np.array([0.0, -20.0], dtype)
    b = np.asarray(kwargs.get("b", [1.0, 1.0]), np.float64)
    exact = np.log(b[0] + b[1] * np.exp(-20.0))
    got = fsm.logsumexp(x, **kwargs)
    value = np.asarray(got[0] if kwargs.get("return_sign") else got)
    assert value.dtype == dtype
    assert value.real == exact.astype(value.real.dtype) and value.imag == 0


def _layouts(row):
    """(description, array, axis): the row alone, 64 copies as rows, and as columns."""
    rows = np.tile(row, (64, 1))
    return (("1 row", row, -1), ("64 rows", rows, -1),
            ("64 columns, axis 0", np.ascontiguousarray(rows.T), 0))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", EXACT_TAILS)
def test_logsumexp_tiny_tail_exact(isa, name, dtype):
    row = np.array(EXACT_TAILS[name], dtype)
    expected = _exact_logsumexp(row)
    if dtype == F64:
        assert expected == np.logaddexp.reduce(row)
    assert acc.reference(row, funcs=("logsumexp",))["logsumexp"] == expected
    wrong = []
    for desc, x, axis in _layouts(row):
        got = np.atleast_1d(fsm.logsumexp(x, axis=axis))
        if (got != expected).any():
            wrong.append(f"{desc}: {got[got != expected][0]!r}")
    assert not wrong, (f"logsumexp({name}) [{isa}] {dtype}, exact {expected!r}; got "
                       + "; ".join(wrong))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", LONG_TAILS)
def test_logsumexp_tiny_tail_relative(isa, name, dtype):
    row = np.array(LONG_TAILS[name], dtype)
    expected = _exact_logsumexp(row)
    ulps = acc.BOUNDS["logsumexp", dtype]
    wrong = []
    for desc, x, axis in _layouts(row):
        got = np.atleast_1d(fsm.logsumexp(x, axis=axis)).astype(np.float64)
        err = np.abs(got - float(expected)) / float(np.spacing(expected))
        if err.max() > ulps:
            wrong.append(f"{desc}: {got[np.argmax(err)]!r}, {err.max():.3g} ulps")
    assert not wrong, (f"logsumexp({name}) [{isa}] {dtype}, exact {expected!r}, bound {ulps:g} "
                       "ulps of the value; got " + "; ".join(wrong))


# ---- temperatures whose reciprocal overflows -------------------------------------------------

# (dtype, row, T) with 1/T above the dtype's largest number, where (x - max) / T
# is still moderate: x - max can be as small as T.  The first two are the
# float32 and float64 cases of the bug report.
TINY_TEMPERATURE_ROWS = {
    "float32 [0, -1.4e-45], T=1e-40": (F32, [0.0, -1.4e-45], 1e-40),
    "float32 [3, 0, -1, -2, -5, -9] x 2^-149, T=2^-149": (F32, [3.0, 0.0, -1.0, -2.0, -5.0, -9.0], 2.0**-149),
    "float32 [1e-39, 0, -1e-39, -2.5e-39], T=2.5e-39": (F32, [1e-39, 0.0, -1e-39, -2.5e-39], 2.5e-39),
    "float32 [-3e-41, -5e-41, -1e-40], T=1e-40": (F32, [-3e-41, -5e-41, -1e-40], 1e-40),
    "float64 [0, -5e-324], T=1e-320": (F64, [0.0, -5e-324], 1e-320),
    "float64 [2, 0, -1, -3, -7] x 2^-1074, T=2^-1074": (F64, [2.0, 0.0, -1.0, -3.0, -7.0], 2.0**-1074),
    "float64 [1e-308, 0, -5e-309, -2e-308], T=5e-309": (F64, [1e-308, 0.0, -5e-309, -2e-308], 5e-309),
    "float64 [-3e-321, -5e-321], T=1e-320": (F64, [-3e-321, -5e-321], 1e-320),
}


def _tiny_temperature_row(name):
    """The row (the "x 2^-k" ones multiplied out, exactly) and T."""
    dtype, row, T = TINY_TEMPERATURE_ROWS[name]
    if " x 2^-" in name:
        row = [v * T for v in row]
    return np.array(row, dtype), T


def _exact_with_temperature(row, T):
    """softmax, log_softmax and logsumexp of row / T with mpmath, from the exact
    values of row and T, each rounded once to row's dtype."""
    import mpmath

    with mpmath.workdps(acc.MPMATH_DPS):
        q = [mpmath.mpf(float(v)) / mpmath.mpf(T) for v in row]
        m = max(q)
        log_s = mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in q))
        exact = {"softmax": np.array([mpmath.exp(v - m - log_s) for v in q], dtype=object),
                 "log_softmax": np.array([v - m - log_s for v in q], dtype=object),
                 "logsumexp": np.array(m + log_s, dtype=object)}
    return {f: acc._mp_round(v, row.dtype) for f, v in exact.items()}


@pytest.mark.parametrize("func", acc.FUNCTIONS)
@pytest.mark.parametrize("name", TINY_TEMPERATURE_ROWS)
def test_temperature_whose_reciprocal_overflows(isa, name, func):
    """Within the bounds of the plain functions (the rows' |x - max| / T are a few
    units: the rounding of (x - max) / T costs nothing measurable), alone, as 64
    short rows (a lane each) and as 64 columns; not the limit T -> 0."""
    row, T = _tiny_temperature_row(name)
    expected = _exact_with_temperature(row, T)[func]
    bound = acc.BOUNDS[func, row.dtype]
    wrong = []
    for desc, x, axis in _layouts(row):
        got = FUNCS[func](x, axis=axis, temperature=T)
        ref = np.broadcast_to(expected if axis == -1 or func == "logsumexp" else expected[:, None], got.shape)
        err = acc.error(func, got, ref, row.dtype)
        if not err <= bound:
            wrong.append(f"{desc}: {acc.UNITS[func]} {err:.3g}, got {np.asarray(got).ravel()[:6]}")
    assert not wrong, (f"{func}({name}) [{isa}], exact {expected!r}, bound {bound:g}: "
                       + "; ".join(wrong))


# ---- the reference itself -------------------------------------------------------------------

@pytest.mark.skipif(not acc.LONGDOUBLE_IS_WIDER,
                    reason="the reference is mpmath itself where long double is double")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_reference_agrees_with_mpmath(dist, dtype):
    """The long-double reference is within 1e-2 ulp of the 40-digit mpmath values
    (a row of 10^3, first row of the bound tests' input)."""
    x = acc.make_input(dist, BASELINE.shape, dtype)[:1]
    for func, (dev, _) in acc.check_reference(x).items():
        assert dev <= 1e-2, f"reference {func} {dtype} {dist}: {dev:.3g} ulp from mpmath"


@pytest.mark.skipif(not acc.LONGDOUBLE_IS_WIDER,
                    reason="the reference is mpmath itself where long double is double")
def test_reference_long_row_agrees_with_mpmath():
    """The pairwise long-double sum of a long row: logsumexp and softmax's scale."""
    import mpmath

    x = acc.make_input("N(0,1)", (1, 30_000), F64)
    ours = acc.reference(x, funcs=("logsumexp", "softmax"), rounded=False)
    with mpmath.workdps(40):
        xs = [mpmath.mpf(float(v)) for v in x[0]]
        m = max(xs)
        s = mpmath.fsum(mpmath.exp(v - m) for v in xs)
        lse = m + mpmath.log(s)
        dev = abs(acc._to_mpf(ours["logsumexp"][0]) - lse) / float(np.spacing(float(lse)))
        assert dev <= 1e-2, f"logsumexp: {float(dev):.3g} ulp from mpmath"
        for j in (0, 1, 12345, 29999):
            exact = mpmath.exp(xs[j] - m) / s
            rel = abs(acc._to_mpf(ours["softmax"][0, j]) - exact) / exact / np.finfo(F64).eps
            assert rel <= 1e-2, f"softmax[{j}]: {float(rel):.3g} ulp from mpmath"


def test_metrics():
    """The metrics on hand-made errors."""
    ref = np.array([0.5, 0.25, 1e-31, 0.25], np.float32)
    y = ref.copy()
    assert acc.softmax_error(y, ref) == 0
    y[0] = np.nextafter(np.float32(0.5), np.float32(1))
    assert acc.softmax_error(y, ref) == pytest.approx(2.0**-23)
    y[2] = 1.0       # below TINY: not measured
    assert acc.softmax_error(y, ref) == pytest.approx(2.0**-23)
    y[3] = np.nan
    assert acc.softmax_error(y, ref) == math.inf
    ref = np.array([100.0, 0.001, -1.0])
    y = ref + np.array([2 * np.spacing(100.0), np.spacing(1.0), 0.0])
    assert acc.log_ulp_error(y, ref) == pytest.approx(2.0)
    assert acc.log_ulp_error(np.array([np.inf]), np.array([np.inf])) == 0
    assert acc.log_ulp_error(np.array([np.inf]), np.array([1.0])) == math.inf


def test_script(tmp_path, capsys):
    """python -m fastsoftmax.accuracy, on a small selection."""
    path = tmp_path / "acc.json"
    rc = acc.main(["--quick", "--all-isas", "--impls", "numpy", "--dtypes", "float32",
                   "--distributions", "N(0,1)", "N(0,4)+1000", "--json", str(path)])
    out = capsys.readouterr().out
    assert rc == 0
    for func in acc.FUNCTIONS:
        assert f"### {func}" in out
    for name in ISAS:
        assert f"fastsoftmax[{name}]" in out
    assert "reference check" in out or not acc.LONGDOUBLE_IS_WIDER
    data = json.loads(path.read_text())
    results = data["results"]
    assert len(results) == 3 * 2 * len(acc.QUICK_CASES) * (len(ISAS) + 1)
    assert {r["impl"] for r in results} == {f"fastsoftmax[{n}]" for n in ISAS} | {"numpy"}
    assert all(r["value"] is not None for r in results)
