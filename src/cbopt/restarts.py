"""IPOP-style restarts for every method, and a final local refinement.

Restarts: when a run stops before the budget is spent (converged, stagnated, diverged), start a fresh one
with ``incpopsize`` times more particles, drawing from the same random stream; keep the best point over all
of them. The evaluation budget is exact over the whole sequence: ``nfev <= max_evals``.

Refinement: from the best point, a local method polishes the last digits with the evaluations that remain
(a share ``refine_budget`` of ``max_evals`` is held back for it): scipy's L-BFGS-B or Nelder--Mead (extra
``scipy``), or consensus hopping with a geometrically shrinking sigma (no extra needed). Reference for the
restart scheme: Auger, Hansen (2005), IPOP-CMA-ES.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any
from collections.abc import Callable

import numpy as np

from ._backend import to_numpy
from ._extras import available, require
from .driver import run
from .methods._base import MethodSpec, Problem, get_method
from .numerics import sanitize
from .result import OptimizeResult
from .schedules import Geometric
from .stopping import Status, StopRules

#: stagnation window (iterations) of each run in a restart sequence: a stuck run gives way early
PATIENCE = 100
#: ...and its stagnation (relative improvement) and convergence (spread) tolerances
FTOL, XTOL = 1e-9, 1e-9
REFINERS = ("auto", "l-bfgs-b", "nelder-mead", "ch")
#: statuses after which a restart is pointless: the budget, the user or the objective ended the call
_FINAL = {Status.TARGET, Status.MAX_EVALS, Status.MAX_TIME, Status.CALLBACK, Status.INTERRUPTED,
          Status.OBJECTIVE_ERROR}


class _Spent(Exception):
    """The refinement's evaluation budget is used up."""


def run_with_restarts(
    spec: MethodSpec,
    params: Any,
    problem: Problem,
    fun: Callable[[Any], Any],
    sampler: Any,
    rules: StopRules,
    *,
    restarts: int,
    incpopsize: float,
    refine: str | None,
    refine_budget: float,
    to_backend: Callable[[np.ndarray], Any],
    callback: Callable[[OptimizeResult], Any] | None = None,
    on_error: str = "raise",
    evaluate: Callable[..., Any] | None = None,
) -> OptimizeResult:
    """Run ``spec`` with up to ``restarts`` IPOP restarts, then ``refine``; see :func:`cbopt.minimize`."""
    t0 = time.perf_counter()
    budget = rules.max_evals
    n0 = params.n_particles
    reserve = int(refine_budget * budget) if (refine and budget is not None) else 0
    if budget is not None:
        reserve = max(0, min(reserve, int(budget) - n0))  # the first run gets at least one population
    best: OptimizeResult | None = None
    total = 0
    log: list[dict[str, Any]] = []
    for k in range(restarts + 1):
        n = max(1, int(round(n0 * incpopsize**k)))
        left = None if budget is None else budget - reserve - total
        if left is not None and left < n:
            break
        max_time = None if rules.max_time is None else rules.max_time - (time.perf_counter() - t0)
        if max_time is not None and max_time <= 0:
            break
        sub = dataclasses.replace(rules, max_evals=left, max_time=max_time, patience=min(rules.patience, PATIENCE),
                                  ftol=max(rules.ftol or 0.0, FTOL), xtol=max(rules.xtol or 0.0, XTOL))
        cb = None if callback is None else _offset(callback, total)
        res = run(spec, dataclasses.replace(params, n_particles=n), problem, fun, sampler, sub, callback=cb,
                  on_error=on_error, evaluate=evaluate)
        total += res.nfev
        log.append({"n_particles": n, "nfev": res.nfev, "fun": res.fun, "reason": res.reason})
        if best is None or (res.fun is not None and (best.fun is None or res.fun < best.fun)):
            best = res
        if Status(res.status) in _FINAL:
            break
    if best is None:  # only a time limit already spent can leave no run at all
        raise ValueError("restarts: no run fitted in the budget (max_evals, max_time)")
    out = OptimizeResult(best)
    out.restarts = len(log) - 1
    out.restart_log = log
    if refine and best.x is not None and (budget is None or total < budget):
        left = None if budget is None else budget - total
        if refine == "auto":
            refine = "l-bfgs-b" if available("scipy") else "ch"
        box = getattr(params, "boundary", None)  # the refinement keeps to the box when the method does
        x, f, used = _refine(refine, fun, best, problem, sampler, rules, left, to_backend, box)
        total += used
        out.refine = {"method": refine, "nfev": used, "improvement": float(best.fun - f) if f < best.fun else 0.0}
        if f < best.fun:
            out.x, out.fun = x, f
            if rules.target is not None and f <= rules.target:
                out.status, out.reason, out.success = int(Status.TARGET), "TARGET", True
    out.nfev = total
    out.time = time.perf_counter() - t0
    return out


def _offset(callback: Callable[[OptimizeResult], Any], done: int) -> Callable[[OptimizeResult], Any]:
    def cb(r: OptimizeResult) -> Any:
        r.nfev += done
        return callback(r)

    return cb


def _refine(
    method: str, fun: Callable[[Any], Any], best: OptimizeResult, problem: Problem, sampler: Any,
    rules: StopRules, budget: int | None, to_backend: Callable[[np.ndarray], Any], box: str | None,
) -> tuple[Any, float, int]:
    """Polish ``best.x`` with at most ``budget`` evaluations; returns ``(x, f, evaluations used)``."""
    if method == "ch":
        # start at the scale that separates the best point from the final consensus: the basin's size
        gap = to_numpy(best.x) - to_numpy(best.consensus) if best.get("consensus") is not None else None
        spread = float(np.linalg.norm(gap)) / np.sqrt(problem.dim) if gap is not None else 1e-3
        sigma = Geometric(max(spread, 1e-8), 0.95, floor=1e-15)
        spec = get_method("ch")
        p = spec.make_params({"sigma": sigma, "alpha": 1e15, "n_particles": 2 * problem.dim + 2, "boundary": box},
                             problem.dim)
        prob = dataclasses.replace(problem, x0=to_backend(to_numpy(best.x)), init_scale=max(spread, 1e-8),
                                   n_runs=1)
        sub = StopRules(max_evals=budget if budget is not None else 1000 * problem.dim, target=rules.target,
                        xtol=None, ftol=rules.ftol, patience=50, divergence=None)
        res = run(spec, p, prob, fun, sampler, sub)
        return res.x, float(res.fun), int(res.nfev)
    opt = require("scipy.optimize", f"refine={method!r}")
    x0 = np.asarray(to_numpy(best.x), dtype=float)
    count = {"n": 0, "x": x0, "f": float(best.fun)}
    cap = budget if budget is not None else 1000 * problem.dim

    def f(x: np.ndarray) -> float:
        if count["n"] >= cap:
            raise _Spent
        count["n"] += 1
        e, _ = sanitize(fun(to_backend(np.asarray(x, dtype=float)[None, None, :])))
        v = float(to_numpy(e).reshape(-1)[0])
        if v < count["f"]:
            count["x"], count["f"] = np.array(x, dtype=float), v
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
    return to_backend(count["x"]), count["f"], count["n"]
