"""Smoke tests of ``python -m fastsoftmax.bench`` on tiny cases (a few seconds):
the table is valid Markdown, ``--json`` holds every sample, every installed
library agrees with fastsoftmax, a disagreeing one makes the command fail,
and a missing one is skipped.  No timing is asserted.

Part of the test suite (``pytest tests/test_bench_cli.py``).
"""
import json

import numpy as np
import pytest

from fastsoftmax import bench

TINY = ["--shapes", "3x40", "40x3:0", "--dtypes", "float32,float64", "--repeat", "2",
        "--no-progress"]


def _tables(text):
    """The Markdown tables of `text`, each a list of rows (lists of cells)."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


def _one_table(text):
    """The header and rows of the one Markdown table in `text`, checked to be
    well formed (as many cells in every row, a separator row)."""
    (table,) = _tables(text)
    head, sep, *rows = table
    assert all(len(r) == len(head) for r in table)
    assert all(set(c) <= set(":-") for c in sep)
    return head, rows



def _fresh(*classes):
    """New instances (available() caches its answer per instance)."""
    return [cls() for cls in classes]


def test_every_installed_library_agrees(capsys, tmp_path):
    path = tmp_path / "bench.json"
    results = bench.main(TINY + ["--ops", "softmax,log_softmax,logsumexp", "--json", str(path)])
    head, rows = _one_table(capsys.readouterr().out)
    assert len(rows) == len(results) == 3 * 2 * 2
    assert head[:3] == ["op", "shape", "dtype"]
    for res in results:
        for name, r in res["impls"].items():
            assert r["status"] in ("ok", "unsupported"), (name, r)
    doc = json.loads(path.read_text())
    assert doc["results"][0]["impls"]["fastsoftmax"]["times"]
    assert "numpy" in doc["method"]["ratio_against"]


def test_out_cases_have_copyto(capsys):
    results = bench.main(TINY + ["--ops", "softmax", "--out", "--impls", "numpy,copyto"])
    (table,) = _tables(capsys.readouterr().out)
    assert "copyto" in table[0]
    assert all(res["impls"]["copyto"]["status"] == "reference" for res in results)


def test_threads_1_has_one_fastsoftmax_column(capsys):
    bench.main(TINY + ["--threads", "1", "--impls", "numpy", "--times"])
    (table,) = _tables(capsys.readouterr().out)
    assert table[0] == ["op", "shape", "dtype", "fastsoftmax 1t", "GB/s", "numpy", "ratio"]


class _Wrong(bench.NumPyFormula):
    name = "wrong"

    def make(self, op, x, axis, out=None):
        f = super().make(op, x, axis, out)
        return lambda: np.asarray(f()) * 1.01


def test_a_mismatch_fails(monkeypatch, capsys):
    monkeypatch.setattr(bench, "IMPLEMENTATIONS", _fresh(bench.FastSoftmax, bench.FastSoftmax1T,
                                                         bench.NumPyFormula, _Wrong))
    with pytest.raises(SystemExit) as e:
        bench.main(TINY + ["--ops", "softmax"])
    assert e.value.code == 1
    captured = capsys.readouterr()
    assert "FAILED CHECK" in captured.out and "MISMATCH: wrong" in captured.err
    assert "(!)" in captured.out


def test_missing_library_is_skipped(monkeypatch, capsys):
    monkeypatch.setenv(bench.HIDE_ENV, "torch,onnxruntime")
    monkeypatch.setattr(bench, "IMPLEMENTATIONS", _fresh(
        bench.FastSoftmax, bench.FastSoftmax1T, bench.NumPyFormula, bench.Torch1T,
        bench.OnnxRuntime, bench.Torch))
    bench.main(TINY + ["--ops", "softmax"])
    out = capsys.readouterr().out
    assert "skipped" in out and "torch-1t (hidden by" in out
    (table,) = _tables(out)
    assert "torch" not in table[0] and "numpy" in table[0]


# ---- the machine-learning ops --------------------------------------------------

ML_TINY = ["--ops", "softmax,masked_softmax,cross_entropy", "--shapes", "3x40", "2x3x40",
           "40x3:0", "--dtypes", "float32,float16", "--repeat", "2", "--no-progress"]


def test_ml_ops_agree(capsys):
    results = bench.main(ML_TINY)
    out = capsys.readouterr().out
    head, rows = _one_table(out)
    assert len(rows) == len(results) == 3 * 3 * 2
    assert {r[0] for r in rows} == {"softmax", "masked_softmax", "cross_entropy"}
    assert {r[2] for r in rows} == {"float32", "float16"}
    for res in results:
        for name, r in res["impls"].items():
            assert r["status"] in ("ok", "unsupported"), (res["op"], res["dtype"], name, r)
        assert res["impls"]["numpy"]["status"] == "ok"
        if res["op"] == "cross_entropy":     # bytes: logits read + gradient written
            assert res["bytes"] == 2 * np.prod(res["shape"]) * np.dtype(res["dtype"]).itemsize
    if "scipy" in head:                       # no masked softmax nor cross-entropy: "-"
        col = head.index("scipy")
        assert {r[col] for r in rows if r[0] != "softmax"} == {"-"}
    assert "cross_entropy: the loss and its gradient" in out and "float16: NumPy" in out


def test_ml_cases_in_default_run():
    quick, full = bench.default_cases(quick=True), bench.default_cases()
    for case in (bench.Case("cross_entropy", (4096, 1000), -1, "float32"),
                 bench.Case("masked_softmax", (32, 128, 256), -1, "float32"),
                 bench.Case("softmax", (4096, 1000), -1, "float16")):
        assert case in quick and case in full
    assert {c.shape for c in full if c.op == "cross_entropy"} == {(64, 1000), (4096, 1000),
                                                                  (100000, 10)}
    assert not any(c.out for c in full if c.op in ("cross_entropy", "masked_softmax"))


def test_ml_inputs():
    mask = bench.extra_input("masked_softmax", (32, 128, 256), -1)
    assert mask.shape == (32, 1, 256) and mask.dtype == bool
    assert mask.any(axis=-1).all() and not mask.all()     # padding, never a fully masked row
    labels = bench.extra_input("cross_entropy", (4096, 1000), -1)
    assert labels.shape == (4096,) and labels.dtype == np.int64
    assert 0 <= labels.min() and labels.max() < 1000
    assert bench.extra_input("cross_entropy", (40, 3), 0).shape == (3,)
    assert bench.extra_input("softmax", (40, 3), -1) is None


class _WrongGrad(bench.NumPyFormula):
    name = "wrong"

    def make(self, op, x, axis, out=None):
        f = super().make(op, x, axis, out)

        def g():
            loss, grad = f()
            return loss, grad * 1.01
        return g


def test_a_wrong_gradient_fails(monkeypatch, capsys):
    monkeypatch.setattr(bench, "IMPLEMENTATIONS", _fresh(bench.FastSoftmax, bench.FastSoftmax1T,
                                                         bench.NumPyFormula, _WrongGrad))
    with pytest.raises(SystemExit) as e:
        bench.main(["--ops", "cross_entropy", "--shapes", "3x40", "--dtypes", "float32",
                    "--repeat", "2", "--no-progress"])
    assert e.value.code == 1
    assert "MISMATCH: wrong" in capsys.readouterr().err


def test_out_is_refused_for_ml_ops(capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--ops", "cross_entropy", "--shapes", "3x40", "--out"])
    assert e.value.code == 2
    assert "has no out=" in capsys.readouterr().err


def _bench_scaling():
    """bench/bench_scaling.py, imported from its path (bench/ is not a package)."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "bench" / "bench_scaling.py"
    spec = importlib.util.spec_from_file_location("bench_scaling", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scaling_script_thread_counts():
    scaling = _bench_scaling()
    assert scaling.thread_counts(None, 16) == ([1, 2, 4, 8, 16], [])
    assert scaling.thread_counts(None, 6) == ([1, 2, 4, 6], [])
    assert scaling.thread_counts("2,64", 2) == ([1, 2], [64])
    with pytest.raises(ValueError):
        scaling.thread_counts("0,2", 2)


def test_scaling_script_on_a_tiny_case():
    """One tiny case on 1 and 2 threads: bitwise identical, and a table with a
    column per thread count."""
    scaling = _bench_scaling()
    case = bench.Case("softmax", (300, 40), -1, "float32")
    res = scaling.run_case(case, [1, 2], 1, None)
    assert res["not_bitwise"] == [] and res["torch_error"] is None
    assert set(res["impls"]) == {"fastsoftmax"}
    text = scaling.report(scaling.header([1, 2], [], 1, None, "not imported"), [res])
    head, rows = _one_table(text)
    assert head == ["op", "shape", "dtype", "impl", "1t", "2t"]
    assert rows[0][:4] == ["softmax", "300x40", "float32", "fastsoftmax"]
