"""The method registry. Importing this package registers every built-in method."""

from ._base import MethodSpec, Problem, get_method, methods, register
from . import ach, cbo, cbs, hopping, memory, polarized, zo  # noqa: F401  (register every built-in method)

__all__ = ["MethodSpec", "Problem", "get_method", "methods", "register"]
