"""Drop-in replacements for ``scipy.special.softmax``, ``log_softmax`` and ``logsumexp``.

Same signatures and defaults as SciPy (``axis=None`` reduces over all axes), so
``from fastsoftmax import special`` can replace ``from scipy import special``
for these three functions.  Results follow fastsoftmax's edge-case policy,
which differs from SciPy only where SciPy gives NaN for +inf input (softmax
and log_softmax treat +inf as the limit).
"""
from . import _api

__all__ = ["softmax", "log_softmax", "logsumexp"]


def softmax(x, axis=None):
    """``scipy.special.softmax`` on fastsoftmax's kernels (default: all axes)."""
    return _api.softmax(x, axis=axis)


def log_softmax(x, axis=None):
    """``scipy.special.log_softmax`` on fastsoftmax's kernels (default: all axes)."""
    return _api.log_softmax(x, axis=axis)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """``scipy.special.logsumexp`` on fastsoftmax's kernels (default: all axes)."""
    return _api.logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=return_sign)
