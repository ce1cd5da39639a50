"""The method registry. Importing this package registers every built-in method: each module of this package
whose name does not start with ``_`` is imported, and registers what it defines (so a new method is one file)."""

import importlib
import pkgutil

from ._base import MethodSpec, Problem, Restarts, get_method, methods, register

for _module in pkgutil.iter_modules(__path__):  # sorted by name: the registry's order
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["MethodSpec", "Problem", "Restarts", "get_method", "methods", "register"]
