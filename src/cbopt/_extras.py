"""Lazy imports of optional dependencies with an install hint."""

from __future__ import annotations

import importlib
from types import ModuleType

#: module name -> the extra of ``cbopt`` that installs it
_EXTRA_OF = {
    "matplotlib": "plot",
    "matplotlib.pyplot": "plot",
    "scipy": "scipy",
    "scipy.optimize": "scipy",
    "torch": "torch",
    "cbx": "bench",
    "cma": "bench",
    "dask": "dist",
    "distributed": "dist",
    "sklearn": "nn",
    "tqdm": "nn",
}


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise an ImportError that names the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRA_OF.get(module, _EXTRA_OF.get(module.split(".")[0]))
        hint = f"pip install 'cbopt[{extra}]'" if extra else f"pip install {module.split('.')[0]}"
        what = f" for {purpose}" if purpose else ""
        raise ImportError(f"{module!r} is needed{what} but is not installed; install it with: {hint}") from exc


def available(module: str) -> bool:
    """Whether ``module`` can be imported (without raising)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
