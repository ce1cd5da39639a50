"""Lazy imports of optional dependencies with an install hint."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

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


@contextlib.contextmanager
def _importing(spec: str, where: str) -> Iterator[None]:
    """A user's module that fails while it is imported: a ValueError that names the module and what it raised
    (a SyntaxError, any exception, or a ``sys.exit`` at import), not the module's own traceback."""
    try:
        yield
    except ImportError:
        raise
    except SystemExit as e:
        raise ValueError(f"{spec!r}: importing {where!r} called sys.exit({e.code!r})") from None
    except Exception as e:
        at = f" (line {e.lineno})" if isinstance(e, SyntaxError) and e.lineno else ""
        raise ValueError(f"{spec!r}: importing {where!r} raised {type(e).__name__}{at}: {e}") from e


def load_function(spec: str) -> Any:
    """The callable named by ``module:function`` (importable) or ``path/to/file.py:function`` (ValueError with
    the reason otherwise): the user's own problems of ``cbopt run`` and of benchmark suites."""
    import importlib.util
    import os
    import sys

    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise ValueError(f"{spec!r}: expected module:function or path/to/file.py:function")
    if where.endswith(".py") or os.sep in where:
        if not os.path.isfile(where):
            raise ValueError(f"{spec!r}: no such file {where!r}")
        mod_spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(where))[0], where)
        if mod_spec is None or mod_spec.loader is None:
            raise ValueError(f"{spec!r}: {where!r} cannot be imported as a module")
        module = importlib.util.module_from_spec(mod_spec)
        sys.path.insert(0, os.path.dirname(os.path.abspath(where)))
        with _importing(spec, where):
            mod_spec.loader.exec_module(module)
    else:
        try:
            with _importing(spec, where):
                module = importlib.import_module(where)
        except ImportError as e:
            raise ValueError(f"{spec!r}: cannot import module {where!r} ({e})") from e
    fun = getattr(module, name, None)
    if not callable(fun):
        raise ValueError(f"{spec!r}: {where} has no function {name!r}")
    return fun
