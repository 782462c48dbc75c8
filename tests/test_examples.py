"""The examples of examples/ run and give the numbers their docstrings promise.

Each example's ``main()`` is imported by path (examples/ is not a package) and
its returned numbers are checked; one example also runs as a script in a
subprocess, the way its docstring tells users to run it.
"""
import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load_example(name):
    """Import examples/<name>.py as a module named example_<name>."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_classifier_digits():
    pytest.importorskip("sklearn")
    accuracy = load_example("classifier_digits").main(verbose=False)
    assert accuracy >= 0.95


def test_attention():
    result = load_example("attention").main(verbose=False)
    assert result["max_padded_weight"] == 0.0          # exactly 0, not merely tiny
    assert result["all_masked_max"] == 0.0             # zeros, not NaN
    assert result["max_row_sum_error"] <= 1e-6         # float32 rows sum to 1
    assert result["max_difference"] <= 1e-6           # agrees with the NumPy formula
    assert result["output_shape"] == (32, 128, 64)


def test_infonce():
    result = load_example("infonce").main(verbose=False)
    assert result["relative_difference"] <= 1e-5
    assert np.isclose(result["loss"], result["loss_numpy"], rtol=1e-5, atol=0)
    losses = result["losses"]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    S, grad_S = result["S"], result["grad_S"]
    assert grad_S.shape == S.shape and grad_S.dtype == S.dtype


def test_infonce_matches_torch():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    example = load_example("infonce")
    result = example.main(steps=0, verbose=False)
    S = torch.from_numpy(result["S"].astype(np.float64)).requires_grad_(True)
    labels = torch.arange(S.shape[0])
    T = example.TEMPERATURE
    loss = (F.cross_entropy(S / T, labels) + F.cross_entropy(S.T / T, labels)) / 2
    loss.backward()
    np.testing.assert_allclose(result["loss"], loss.item(), rtol=1e-5)
    grad = S.grad.numpy()
    np.testing.assert_allclose(result["grad_S"], grad, rtol=1e-5, atol=1e-5 * np.abs(grad).max())


def test_script_form():
    """`python examples/infonce.py`, as a user runs it, with warnings as errors."""
    proc = subprocess.run([sys.executable, "-W", "error", str(EXAMPLES / "infonce.py")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "symmetric InfoNCE loss" in proc.stdout
