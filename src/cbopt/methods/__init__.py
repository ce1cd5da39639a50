"""The method registry. Importing this package registers every built-in method."""

from . import ach, cbo, cbs, ch, ch_adam, memory, mirror, polarized, zo  # noqa: F401  (register every built-in method)
from ._base import MethodSpec, Problem, Restarts, get_method, methods, register

__all__ = ["MethodSpec", "Problem", "Restarts", "get_method", "methods", "register"]
