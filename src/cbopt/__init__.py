"""cbopt: consensus-based optimization.

A fast, batched global optimizer built on consensus-based optimization (CBO), and the tools to
measure CBO as a stochastic relaxation of gradient descent (Riedl, Klock, Geldhauser, Fornasier,
arXiv:2306.09778).

>>> import cbopt
>>> from cbopt.objectives import rastrigin
>>> res = cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 2, rng=0)
>>> bool(res.fun < 1e-6)
True
"""

import logging as _logging

from . import mirror, objectives, schedules, zo
from ._backend import Numpy, Torch
from .ask_tell import MinimaxOptimizer, Optimizer, ParetoOptimizer
from .checkpoint import Checkpoint
from .constraints import Penalty, Sphere
from .driver import EvaluatorError, ObjectiveError
from .evaluators import Dask, Pool
from .methods import MethodSpec, get_method
from .methods import methods as _registry
from .minimax import minimax
from .minimize import minimize
from .multiobjective import multiobjective
from .noisy import Noisy
from .objectives import on_host, vectorize
from .refine import Refine
from .restarts import BIPOP, IPOP, Portfolio
from .result import OptimizeResult
from .scipy_adapter import scipy_method
from .stopping import Status, Stop

__version__ = "0.1.0"

# a library's logger prints nothing until the application configures logging (logging.basicConfig(...))
_logging.getLogger(__name__).addHandler(_logging.NullHandler())


def methods() -> dict[str, MethodSpec]:
    """The registered methods by name; each :class:`MethodSpec` carries its capability metadata."""
    return _registry()


# ``cbopt.methods`` is this function, and also the name of the subpackage of the methods' kernels: with the
# function's ``__name__`` the package's, ``import cbopt.methods.ach as ach`` finds the submodule (the import
# looks ``<__name__>.ach`` up among the loaded modules) instead of failing on the function
methods.__name__ = "cbopt.methods"


__all__ = [
    "BIPOP", "Checkpoint", "Dask", "EvaluatorError", "IPOP", "MethodSpec", "MinimaxOptimizer", "Noisy", "Numpy",
    "ObjectiveError", "OptimizeResult", "Optimizer", "ParetoOptimizer", "Penalty", "Pool", "Portfolio", "Refine",
    "Sphere", "Status", "Stop", "Torch",
    "__version__", "get_method", "methods", "minimax", "minimize", "mirror", "multiobjective", "objectives",
    "on_host", "schedules", "scipy_method", "vectorize", "zo",
]
