"""Objectives: the batched contract, the per-point adapter, and test functions with known minima."""

from ._wrap import on_host, vectorize
from .functions import (
    FUNCTIONS,
    Instance,
    Noisy,
    Slow,
    TestFunction,
    ackley,
    canyon,
    get_function,
    griewank,
    himmelblau,
    l1,
    levy,
    linf,
    noisy,
    rastrigin,
    rastrigin_l1,
    rosenbrock,
    schwefel,
    sphere,
    styblinski_tang,
)

__all__ = [
    "FUNCTIONS", "Instance", "Noisy", "TestFunction", "ackley", "canyon", "get_function", "griewank", "himmelblau",
    "l1", "levy", "linf", "noisy", "on_host", "rastrigin", "rastrigin_l1", "rosenbrock", "schwefel", "Slow", "sphere",
    "styblinski_tang", "vectorize",
]
