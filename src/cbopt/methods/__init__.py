"""The method registry. Importing this package registers every built-in method."""

from ._base import MethodSpec, Problem, get_method, methods, register
from . import cbo  # noqa: F401  (registers "cbo")

__all__ = ["MethodSpec", "Problem", "get_method", "methods", "register"]
