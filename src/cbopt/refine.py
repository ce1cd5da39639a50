"""Refinement: polish the best point of a call with a local method and the evaluations held back for it.

scipy's L-BFGS-B or Nelder--Mead (when scipy is installed), or consensus hopping with a shrinking sigma
(``"ch"``, numpy only); :func:`cbopt.minimize` calls :func:`refine` after its loop (``refine=``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import Sampler, to_numpy
from ._extras import available, require
from .driver import drive
from .methods._base import Problem, get_method
from .numerics import sanitize
from .result import OptimizeResult
from .schedules import Geometric
from .stopping import Stop
from .validation import number

REFINERS = ("auto", "l-bfgs-b", "nelder-mead", "ch")


@dataclass(frozen=True)
class Refine:
    """``refine=`` of :func:`cbopt.minimize`: polish the best point with a local method (``"auto"``:
    scipy's L-BFGS-B when scipy is installed, else consensus hopping; ``"l-bfgs-b"``, ``"nelder-mead"``,
    ``"ch"``; any case), with ``budget`` times ``max_evals`` evaluations held back for it."""

    method: str = "auto"
    budget: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or self.method.lower() not in REFINERS:
            raise ValueError(f"refine: expected None or one of {list(REFINERS)}, got {self.method!r}")
        object.__setattr__(self, "method", self.method.lower())
        number("refine budget", self.budget, at_least=0, below=1)


def as_refine(refine: Any) -> Refine | None:
    """``refine=``: None, a refiner's name, or :class:`Refine`."""
    if refine is None or isinstance(refine, Refine):
        return refine
    if isinstance(refine, str):
        return Refine(refine)
    raise TypeError(f"refine: expected None, a name in {list(REFINERS)} or cbopt.Refine(...), got {refine!r}")


class _Spent(Exception):
    """The refinement's evaluation budget is used up."""


def refine(method: str, fun: Callable[[Any], Any], best: OptimizeResult, problem: Problem, sampler: Sampler,
           rules: Stop, budget: int | None, to_backend: Callable[[np.ndarray], Any], box: str | None
           ) -> tuple[Any, float, int]:
    """Polish ``best.x`` with at most ``budget`` evaluations; returns ``(x, f, evaluations used)``."""
    if method == "auto":
        method = "l-bfgs-b" if available("scipy") else "ch"
    if method == "ch":
        n = 2 * problem.dim + 2
        if budget is not None and budget < n:  # not even its first samples fit in what is left
            return best.x, float(best.fun), 0
        # start at the scale that separates the best point from the final consensus: the basin's size
        gap = to_numpy(best.x) - to_numpy(best.consensus) if best.get("consensus") is not None else None
        spread = float(np.linalg.norm(gap)) / np.sqrt(problem.dim) if gap is not None else 1e-3
        sigma = Geometric(max(spread, 1e-8), 0.95, floor=1e-15)
        spec = get_method("ch")
        p = spec.make_params({"sigma": sigma, "alpha": 1e15, "n_particles": n, "boundary": box},
                             problem.dim)
        prob = dataclasses.replace(problem, x0=to_backend(to_numpy(best.x)), init_scale=max(spread, 1e-8),
                                   n_runs=1)
        sub = Stop(max_evals=budget if budget is not None else 1000 * problem.dim, target=rules.target,
                        xtol=None, ftol=rules.ftol, patience=50, divergence=None)
        res = drive(spec, p, prob, fun, sampler, sub)
        return res.x, float(res.fun), int(res.nfev)
    opt = require("scipy.optimize", f"refine={method!r}")
    x0 = np.asarray(to_numpy(best.x), dtype=float)
    n_used, best_x, best_v = 0, x0, float(best.fun)
    cap = budget if budget is not None else 1000 * problem.dim

    def f(x: np.ndarray) -> float:
        nonlocal n_used, best_x, best_v
        if n_used >= cap:
            raise _Spent
        n_used += 1
        e, _ = sanitize(fun(to_backend(np.asarray(x, dtype=float)[None, None, :])))
        v = float(to_numpy(e).reshape(-1)[0])
        if v < best_v:
            best_x, best_v = np.array(x, dtype=float), v
        if rules.target is not None and v <= rules.target:
            raise _Spent
        return v

    bounds = None
    if box is not None and problem.lo is not None:
        bounds = list(zip(to_numpy(problem.lo).tolist(), to_numpy(problem.hi).tolist(), strict=True))
        x0 = np.clip(x0, *np.asarray(bounds).T)
    try:
        if method == "l-bfgs-b":
            opt.minimize(f, x0, method="L-BFGS-B", bounds=bounds, options={"maxfun": cap, "ftol": 1e-15,
                                                                            "gtol": 1e-12})
        elif method == "nelder-mead":
            opt.minimize(f, x0, method="Nelder-Mead", bounds=bounds, options={"maxfev": cap, "xatol": 1e-12,
                                                                               "fatol": 1e-15})
    except _Spent:
        pass
    return to_backend(best_x), best_v, n_used
