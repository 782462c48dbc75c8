"""fastsoftmax: fast, accurate softmax, log_softmax and logsumexp for NumPy arrays.

>>> import numpy as np, fastsoftmax as fsm
>>> fsm.softmax(np.array([[1.0, 2.0], [3.0, 3.0]]))
array([[0.26894142, 0.73105858],
       [0.5       , 0.5       ]])

``fastsoftmax.special`` holds drop-ins for ``scipy.special``'s functions (with
SciPy's ``axis=None`` default); ``fastsoftmax.dask`` the same functions on dask
arrays (optional extra ``dask``).  Set ``FASTSOFTMAX_ISA=generic|avx2|avx512``
to force an instruction-set path.
"""
import os
import pkgutil

# Run from a source checkout after `pip install .`, this directory shadows the
# installed package but lacks the compiled extension: let the package also
# search the installed copy (same source) for its modules.
__path__ = pkgutil.extend_path(__path__, __name__)

from . import _kernels  # noqa: E402
from ._api import (cross_entropy, get_num_threads, log_softmax, log_softmax_backward,  # noqa: E402
                   logsumexp, set_num_threads, softmax, softmax_backward)

__version__ = "0.1.0"
__all__ = ["softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward",
           "cross_entropy", "set_num_threads", "get_num_threads", "show_config", "special"]

if os.environ.get("FASTSOFTMAX_ISA"):
    try:
        _kernels.set_isa(os.environ["FASTSOFTMAX_ISA"])
    except ValueError as e:
        raise ImportError(f"FASTSOFTMAX_ISA={os.environ['FASTSOFTMAX_ISA']!r}: {e}") from None


def show_config(mode="stdout"):
    """Print (or, with ``mode="dicts"``, return) how fastsoftmax was built and runs:
    OpenMP, compiler and flags, the instruction sets compiled in, the one in use,
    and the thread count."""
    info = dict(_kernels.build_info())
    info["available_isas"] = _kernels.available_isas()
    info["active_isa"] = _kernels.isa()
    info["num_threads"] = get_num_threads()
    if mode == "dicts":
        return info
    if mode != "stdout":
        raise ValueError(f"show_config: mode must be 'stdout' or 'dicts', not {mode!r}")
    width = max(len(k) for k in info)
    for key, value in info.items():
        if isinstance(value, tuple):
            value = ", ".join(value)
        print(f"{key:<{width}} : {value}")


from . import special  # noqa: E402  (needs the functions above)


def __getattr__(name):
    """``fastsoftmax.dask`` is imported on first use: dask is an optional extra,
    and ``import fastsoftmax`` must not import it."""
    if name == "dask":
        import importlib
        return importlib.import_module(".dask", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
