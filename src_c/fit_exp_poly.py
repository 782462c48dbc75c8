"""Fit the exp polynomials of fsm_rows.inc (run: python src_c/fit_exp_poly.py).

exp(r) on [-ln2/2, ln2/2] as 1 + c1 r + ... + cN r^N, the coefficients chosen by
the Remez exchange algorithm to minimise the maximum *relative* error, in
50-digit mpmath arithmetic; printed rounded to the target type (C hex floats).
float uses N = 6 (3.9e-9), double N = 11 (1.8e-17).
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 50


def remez(degree, lo, hi, iterations=30, grid=4000):
    """Coefficients c1..c_degree of the minimax relative approximation, and its error."""
    nodes = [lo + (hi - lo) * (1 - mp.cos(mp.pi * k / degree)) / 2 for k in range(degree + 1)]
    xs = [lo + (hi - lo) * i / grid for i in range(grid + 1)]
    for _ in range(iterations):
        # 1 + sum c_j x^j - e^x = (-1)^k E e^x at the degree + 1 nodes
        a = mp.matrix(degree + 1, degree + 1)
        rhs = mp.matrix(degree + 1, 1)
        for k, x in enumerate(nodes):
            for j in range(1, degree + 1):
                a[k, j - 1] = x ** j
            a[k, degree] = -((-1) ** k) * mp.e ** x
            rhs[k] = mp.e ** x - 1
        sol = mp.lu_solve(a, rhs)
        coeffs = [sol[j] for j in range(degree)]

        def err(x):
            return (1 + sum(c * x ** (j + 1) for j, c in enumerate(coeffs)) - mp.e ** x) / mp.e ** x

        values = [err(x) for x in xs]
        extrema = [0] + [i for i in range(1, grid) if (values[i] - values[i - 1]) * (values[i + 1] - values[i]) <= 0] + [grid]
        if len(extrema) != degree + 1:
            break
        nodes = [xs[i] for i in extrema]
    return coeffs, max(abs(v) for v in values)


def main():
    half_ln2 = mp.log(2) / 2
    for name, degree, cast in (("float", 6, np.float32), ("double", 11, np.float64)):
        coeffs, error = remez(degree, -half_ln2, half_ln2)
        print(f"{name}: degree {degree}, max relative error {mp.nstr(error, 3)}")
        for j, c in enumerate(coeffs, start=1):
            print(f"  c{j} = {float(cast(float(c))).hex()}")


if __name__ == "__main__":
    main()
