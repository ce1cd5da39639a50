"""Benchmark problems: cbopt's test functions (shifted instances) and COCO's BBOB (through ``cocoex``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

import numpy as np

from .._extras import require
from ..objectives import get_function


@dataclass(frozen=True)
class BenchProblem:
    """One (problem, dimension, instance): a batched and a per-point objective, the box and the optimum."""

    name: str
    dim: int
    instance: int
    batched: Callable[[Any], Any]
    point: Callable[[Any], float]
    bounds: np.ndarray  # (d, 2)
    fopt: float


def make_problem(name: str, dim: int, instance: int) -> BenchProblem:
    """``"cbopt:<function>"``: the function shifted by a draw seeded with ``instance`` (minimiser within
    0.4 of the box width of the centre); ``"bbob:f<k>"``: BBOB function k, instance ``instance`` (through
    ``ioh``, whose instances are COCO's)."""
    family, _, rest = name.partition(":")
    if family == "cbopt":
        fn = get_function(rest)
        inst = fn.instance(dim, shift=True, rng=instance)
        return BenchProblem(name, dim, instance, inst, lambda x: float(inst(np.asarray(x, dtype=float))),
                            np.asarray(inst.bounds, dtype=float), float(inst.f_min))
    if family == "bbob":
        # IOHprofiler's BBOB: the same instances as COCO's (values, f_opt, x_opt), batched, with f_opt visible
        ioh = require("ioh", "BBOB problems (the same instances as COCO's cocoex, with f_opt visible)")
        k = int(rest.lstrip("f"))
        problem = ioh.get_problem(k, instance, dim, ioh.ProblemClass.BBOB)

        def batched(x: Any, p: Any = problem) -> np.ndarray:
            x = np.asarray(x, dtype=float)
            flat = x.reshape(-1, x.shape[-1])
            return np.asarray(p(flat), dtype=float).reshape(x.shape[:-1])

        bounds = np.stack([problem.bounds.lb, problem.bounds.ub], axis=-1).astype(float)
        return BenchProblem(name, dim, instance, batched, lambda v, p=problem: float(p(np.asarray(v, dtype=float))),
                            bounds, float(problem.optimum.y))
    raise ValueError(f"unknown problem {name!r}: expected 'cbopt:<function>' or 'bbob:f<k>'")
