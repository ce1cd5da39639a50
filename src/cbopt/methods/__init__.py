"""The method registry. Importing this package registers every built-in method."""

from ._base import MethodSpec, Problem, get_method, methods, register
from . import cbo, cbs, hopping  # noqa: F401  (register "cbo", "cbs", "ch")

__all__ = ["MethodSpec", "Problem", "get_method", "methods", "register"]
