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
    0.4 of the box width of the centre); ``"bbob:f<k>"``: COCO's BBOB function k, instance ``instance``."""
    family, _, rest = name.partition(":")
    if family == "cbopt":
        fn = get_function(rest)
        inst = fn.instance(dim, shift=True, rng=instance)
        return BenchProblem(name, dim, instance, inst, lambda x: float(inst(np.asarray(x, dtype=float))),
                            np.asarray(inst.bounds, dtype=float), float(inst.f_min))
    if family == "bbob":
        cocoex = require("cocoex", "BBOB problems")
        k = int(rest.lstrip("f"))
        suite = cocoex.Suite("bbob", "", f"function_indices:{k} dimensions:{dim} instance_indices:{instance}")
        problem = next(iter(suite))
        fopt = float(problem.final_target_fvalue1) - 1e-8  # COCO's final target is f_opt + 1e-8

        def batched(x: Any, p: Any = problem) -> np.ndarray:
            x = np.asarray(x, dtype=float)
            flat = x.reshape(-1, x.shape[-1])
            return np.array([p(v) for v in flat]).reshape(x.shape[:-1])

        bounds = np.stack([problem.lower_bounds, problem.upper_bounds], axis=-1)
        return BenchProblem(name, dim, instance, batched, lambda v, p=problem: float(p(np.asarray(v))), bounds, fopt)
    raise ValueError(f"unknown problem {name!r}: expected 'cbopt:<function>' or 'bbob:f<k>'")
