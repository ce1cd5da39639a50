"""Restart policies: sequences of runs decided online, driven like one run, and a final local refinement.

A policy plans the next run from what the previous ones found; :class:`Sequence` chains the runs behind the
same ask/check/tell interface as one :class:`cbopt.driver.Run`, so :func:`cbopt.minimize`,
:class:`cbopt.Optimizer` and :mod:`cbopt.checkpoint` drive either. The evaluation budget is exact over the
whole sequence (``nfev <= max_evals``); every random draw (start points, regimes) comes from the call's one
random stream.

- :class:`IPOP` (Auger, Hansen 2005): every restart ``incpopsize`` times more particles, any method.
- :class:`BIPOP` (Hansen 2009): large-population runs alternate with short local runs of small, random
  populations and step sizes ``sigma0 * 10**(-2U)``; the regime that has used fewer evaluations runs next.
- :class:`Portfolio` (the default of :func:`cbopt.minimize`): the BIPOP regimes of adaptive consensus hopping,
  with budget shares that follow the regime holding the best value (as NBIPOP, Loshchilov, Schoenauer, Sebag
  2012), runs stopped early when clearly beaten, and coordinate-wise CBO as a third regime when the first run's
  learned covariance says the problem is axis-aligned. Each CBO run ends with a local ACH run from its best
  point, so that it reaches full precision.

The engine that drives the runs is :mod:`cbopt.sequence`; a method takes part in BIPOP and the portfolio
through its restart contract (:class:`cbopt.methods.Restarts`). Refinement: :mod:`cbopt.refine`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import Sampler, to_numpy
from .methods._base import MethodSpec, Problem, get_method
from .methods.covariance import correlation  # noqa: F401  (the portfolio's measure, re-exported)
from .refine import REFINERS, Refine, as_refine, refine  # noqa: F401  (their home before cbopt.refine)
from .result import OptimizeResult
from .sequence import FINAL, Child, Planner, Sequence  # noqa: F401  (the engine, re-exported)
from .stopping import Stop
from .validation import number

#: stagnation window and tolerances of a run in an IPOP sequence of a method without its own criteria
PATIENCE, FTOL, XTOL = 100, 1e-9, 1e-9


def _default_rules(rules: Stop) -> dict[str, Any]:
    """A run inside a sequence of a method without termination criteria of its own: stop when stuck."""
    return {"patience": min(rules.patience, PATIENCE), "ftol": max(rules.ftol or 0.0, FTOL),
            "xtol": max(rules.xtol or 0.0, XTOL)}


@dataclass(frozen=True)
class IPOP:
    """Restart with ``incpopsize`` times more particles, up to ``restarts`` times (Auger, Hansen 2005)."""

    restarts: int = 9
    incpopsize: float = 2.0

    def __post_init__(self) -> None:
        _check_restarts(self.restarts)
        number("incpopsize", self.incpopsize, at_least=1)

    def planner(self, spec: MethodSpec, params: Any, problem: Problem, rules: Stop, sampler: Sampler) -> Planner:
        return _IPOPPlanner(self, spec, params, problem, rules, sampler)


class _IPOPPlanner(Planner):
    def __init__(self, policy: IPOP, *args: Any):
        super().__init__(*args)
        self.policy = policy
        self.memo = {"k": 0}

    def next(self, left: float, best: float) -> Child | None:
        k = self.memo["k"]
        if k > self.policy.restarts:
            return None
        n = max(1, int(round(self.params.n_particles * self.policy.incpopsize**k)))
        if left < n:
            return None
        self.memo["k"] = k + 1
        options = {"n_particles": n}
        if self.spec.stop is not None:  # the method knows when to stop (ACH): start it somewhere new each time
            x0 = to_numpy(self.problem.x0).tolist() if k == 0 and self.problem.x0 is not None else \
                _start(self.problem, self.sampler)
            return Child(self.spec.name, options, "large", x0=x0, rules=_own_rules())
        return Child(self.spec.name, options, "run", rules=_default_rules(self.rules))


def _check_restarts(k: Any) -> None:
    number("restarts", k, at_least=0, integer=True)


def _own_rules() -> dict[str, Any]:
    """A run of a method with its own termination criteria: the generic convergence rules step aside."""
    return {"xtol": None, "ftol": None, "divergence": None}


def _start(problem: Problem, sampler: Sampler) -> list[float] | None:
    """A fresh start: uniform in the central 80 % of the box, or the user's x0 for the first run only."""
    if problem.lo is None:
        return None
    lo, hi = to_numpy(problem.lo), to_numpy(problem.hi)
    u = to_numpy(sampler.uniform((1, problem.dim)))[0]
    return (lo + (hi - lo) * (0.1 + 0.8 * u)).tolist()


@dataclass(frozen=True)
class BIPOP:
    """Large populations (doubling, ``restarts`` times) interleaved with small local runs (Hansen 2009)."""

    restarts: int = 9
    incpopsize: float = 2.0

    def __post_init__(self) -> None:
        IPOP(self.restarts, self.incpopsize)

    def planner(self, spec: MethodSpec, params: Any, problem: Problem, rules: Stop, sampler: Sampler) -> Planner:
        if spec.restarts is None:
            raise ValueError(f"BIPOP needs a method that takes part in restarts (its MethodSpec.restarts: its own "
                             f"termination criteria and step size, e.g. 'ach'), not {spec.name!r}; use IPOP")
        return _PortfolioPlanner(Portfolio(cbo=False, coordinate=False, large_share=1.0, adaptive=False, dominated=0.0,
                                           agree=0, plateau=False, restarts=self.restarts, incpopsize=self.incpopsize),
                                 spec, params, problem, rules, sampler)


@dataclass(frozen=True)
class Portfolio:
    """The default restart policy: ACH in BIPOP regimes with adaptive shares, plus CBO on axis-aligned problems.

    Attributes
    ----------
    cbo : run coordinate-wise CBO (then a local ACH run from its best point) as a third regime once the
        covariance of one of the first three converged ACH runs is axis-aligned: root-mean-square
        off-diagonal correlation below ``separable`` (a run that ended on a plateau has no vote: the
        method's ``axis_correlation`` says None); the regime ends when the coordinate search's separability
        test (below) finds the problem coupled after all.
    cbo_particles, cbo_cap, cbo_share : CBO's first population (doubled at each CBO restart), the most of the
        budget one CBO run may take, and its base share of the budget.
    coordinate, coordinate_cap : after the first CBO run and its polish, one run of the coordinate grid search
        (``method="coordinate"``: every coordinate's basins searched at once from the best point so far, which
        solves a separable function) with at most this share of the budget; skipped when two independent
        runs already converged to the best value.
    large_share : base share of the large-population regime against the small one's 1; default
        ``max(1, d / 10)``: in higher dimensions large populations pay more and random local runs less.
    adaptive : the regime that holds the best value so far gets twice its share (NBIPOP's rule).
    trend : where the large regime's base share is above 1 (d > 10), its share is multiplied by this while
        its last run improved on every earlier large run: its growing populations are paying off, as on a
        rotated Rastrigin, and the small runs would take half of the budget for nothing (1: off; needs
        ``adaptive``).
    dominated : a run stops when its best is worse than the sequence's best by more than this many times
        its recent progress (0: never).
    restarts, incpopsize : the number of large-population restarts and their growth.
    agree : the sequence ends (as its best run did, e.g. CONVERGED) once this many independent runs converged
        by their own criteria to the best value (within 1e-9 relative): the budget is not spent searching a
        minimum that keeps being found (0: always use the whole budget).
    noise_ess : the target effective sample size of the runs planned once the objective is found to be noisy
        (:mod:`cbopt.noisy`); None: the method's default.
    plateau : once a run that converged ended on a plateau (a step function: its last values tie while its
        samples still spread), the later runs take the method's ``plateau`` options (ACH: ``sigma_damping=3``,
        the step size of large populations damped as in pycma 4, so that it stays above the plateaus' scale).
    """

    cbo: bool = True
    coordinate: bool = True
    coordinate_cap: float = 0.2
    separable: float = 0.2
    cbo_particles: int = 40
    cbo_cap: float = 0.8
    cbo_share: float = 0.5
    large_share: float | None = None
    adaptive: bool = True
    dominated: float = 3.0
    restarts: int = 9
    incpopsize: float = 2.0
    agree: int = 5
    noise_ess: float | None = None
    plateau: bool = True
    trend: float = 4.0

    def __post_init__(self) -> None:
        IPOP(self.restarts, self.incpopsize)
        number("Portfolio.noise_ess", self.noise_ess, above=0, at_most=1, none=True)
        if isinstance(self.agree, bool) or not isinstance(self.agree, int) or self.agree < 0:
            raise ValueError(f"Portfolio.agree: must be an integer >= 0, got {self.agree!r}")
        for name in ("cbo", "coordinate", "adaptive", "plateau"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"Portfolio.{name}: expected True or False, got {getattr(self, name)!r}")
        for name, lo, hi in (("separable", 0, 1), ("cbo_cap", 0, 1), ("coordinate_cap", 0, 1),
                             ("cbo_share", 0, math.inf), ("dominated", 0, math.inf), ("trend", 1, math.inf)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise ValueError(f"Portfolio.{name}: must be a number in [{lo}, {hi}], got {v!r}")
        if self.large_share is not None and not (isinstance(self.large_share, (int, float)) and self.large_share > 0):
            raise ValueError(f"Portfolio.large_share: must be None or a number > 0, got {self.large_share!r}")
        if isinstance(self.cbo_particles, bool) or not isinstance(self.cbo_particles, int) or self.cbo_particles < 2:
            raise ValueError(f"Portfolio.cbo_particles: must be an integer >= 2, got {self.cbo_particles!r}")

    def planner(self, spec: MethodSpec, params: Any, problem: Problem, rules: Stop, sampler: Sampler) -> Planner:
        if spec.restarts is None:
            raise ValueError(f"Portfolio needs a method that takes part in restarts (its MethodSpec.restarts: its "
                             f"own termination criteria and step size, e.g. 'ach'), not {spec.name!r}; use IPOP for "
                             "other methods")
        return _PortfolioPlanner(self, spec, params, problem, rules, sampler)


#: the budget share of the regime (large or small runs) that has found the best value so far, times its base
LEADER = 2.0


class _PortfolioPlanner(Planner):
    """Regimes ``large`` (lambda0 2^k, sigma0), ``small`` (BIPOP's random small runs, capped at half the large
    regime's evaluations), ``cbo`` (CBO with 40 2^j particles, then a local ACH ``polish``)."""

    def __init__(self, policy: Portfolio, *args: Any):
        super().__init__(*args)
        self.policy = policy
        assert self.spec.restarts is not None  # (checked by the policies that build this planner)
        self.contract = self.spec.restarts
        d = self.problem.dim
        large = policy.large_share if policy.large_share is not None else max(1.0, d / 10)
        self.base = {"large": float(large), "small": 1.0, "cbo": policy.cbo_share}
        self.memo = {"irun": 0, "k_large": 0, "k_cbo": 0, "used": {"large": 0, "small": 0, "cbo": 0},
                     "best": {"large": math.inf, "small": math.inf, "cbo": math.inf},
                     "correlations": [], "finals": [], "last": None, "polish": None, "cbo_off": False,
                     "best_x": None, "coordinate": False, "plateau": False, "large_improving": False}

    # -- the plan ---------------------------------------------------------------------------------------
    def next(self, left: float, best: float) -> Child | None:
        memo, p = self.memo, self.params
        lam0 = p.n_particles
        if memo.get("noisy"):
            return self._noisy_next(left)
        if self.policy.agree and memo["polish"] is None and _agreeing(memo["finals"], best) >= self.policy.agree:
            return None  # independent runs keep ending at the same best value: the sequence has converged
        if memo["polish"] is not None:  # a CBO run ended: polish its best point locally
            x0, sigma = memo["polish"]
            memo["polish"] = None
            if left >= lam0:
                c = self.contract
                return Child(self.spec.name, {c.step: sigma, c.reference: _json(best)}, "polish", x0=x0,
                             rules=_own_rules())
        if memo["coordinate"] == "due":  # after the first CBO run and its polish: every coordinate's basins
            memo["coordinate"] = True
            # ... unless two independent runs already converged to the best value (the optimum, most likely)
            if _agreeing(memo["finals"], best) < 2:
                cap = self.policy.coordinate_cap * self.rules.max_evals if self.rules.max_evals is not None else None
                return Child("coordinate", {"separable_only": True}, "coordinate", x0=memo["best_x"],
                             max_evals=None if cap is None else min(left, cap), rules=_own_rules())
        regime = self._regime()
        if regime == "cbo":
            n = self.policy.cbo_particles * 2 ** memo["k_cbo"]
            cap = self.policy.cbo_cap * self.rules.max_evals if self.rules.max_evals is not None else None
            if left < 10 * n or (cap is not None and cap < 10 * n):  # not even ten steps fit: the regime is done
                memo["cbo_off"], memo["last"] = True, None
                regime = self._regime()
            else:
                memo["k_cbo"] += 1
                rules = {"xtol": 5e-4 * _spread0(self.problem), "ftol": 1e-12, "patience": 500, "divergence": None}
                if self.policy.dominated and math.isfinite(best):
                    rules["beaten_by"] = best
                return Child("cbo", {"n_particles": n}, "cbo", max_evals=None if cap is None else min(left, cap),
                             rules=rules)
        sigma0, c = self._sigma0(), self.contract
        if regime == "small":
            u = float(to_numpy(self.sampler.uniform((1, 2)))[0, 0])
            v = float(to_numpy(self.sampler.uniform((1, 2)))[0, 1])
            lam = int(lam0 * (self.policy.incpopsize ** memo["k_large"]) ** (v * v))
            used_large = memo["used"]["large"]
            options = {"n_particles": max(lam, 2), c.step: sigma0 * 0.01**u, c.reference: _json(best),
                       c.max_steps: max(1, int(0.5 * used_large / max(lam, 2)))}
        else:
            if memo["k_large"] > self.policy.restarts:
                return None
            lam = int(round(lam0 * self.policy.incpopsize ** memo["k_large"]))
            memo["k_large"] += 1
            options = {"n_particles": lam, c.step: sigma0, c.reference: _json(best) if self.policy.dominated else
                       math.inf}
        if left < options["n_particles"]:
            return None
        if memo.get("plateau"):  # a run ended on a plateau: the step size must not fall below its scale
            options.update(c.plateau)
        if not self.policy.dominated:
            options[c.reference] = math.inf
        x0 = self._x0() if memo["irun"] else self._first_x0()
        return Child(self.spec.name, options, regime, x0=x0, rules=_own_rules())

    def _noisy_next(self, left: float) -> Child | None:
        """On a noisy objective: only large-population runs, each twice the last, none stopped by a value
        reached elsewhere. The lowest values seen are lucky draws, so comparing a run against them (``f_ref``,
        ``beaten_by``) or counting runs that agree on them would stop good runs; small populations average
        too little of the noise."""
        memo = self.memo
        if memo["k_large"] > self.policy.restarts:
            return None
        lam = int(round(self.params.n_particles * self.policy.incpopsize ** memo["k_large"]))
        if left < lam:
            return None
        memo["k_large"] += 1
        c = self.contract
        options = {"n_particles": lam, c.step: self._sigma0(), c.reference: math.inf, **c.noisy}
        if self.policy.noise_ess is not None:
            options["ess"] = self.policy.noise_ess
        return Child(self.spec.name, options, "large", x0=self._x0() if memo["irun"] else self._first_x0(),
                     rules=_own_rules())

    def _regime(self) -> str:
        memo = self.memo
        if memo["irun"] == 0:
            return "large"
        separable = bool(memo["correlations"]) and min(memo["correlations"]) < self.policy.separable
        cbo_ok = self.policy.cbo and separable and not memo["cbo_off"]
        if cbo_ok and memo["k_cbo"] == 0:  # the first run that finds the problem axis-aligned starts the regime
            return "cbo"
        if memo["last"] == "cbo" and cbo_ok:  # CBO just improved on every run before it: give it another go
            return "cbo"
        best = memo["best"]
        leader = min(best, key=lambda r: best[r])
        if not self.policy.adaptive:
            return "small" if memo["used"]["small"] < memo["used"]["large"] else "large"
        share = {r: self.base[r] * (LEADER if r == leader and math.isfinite(best[r]) else 1.0)
                 for r in ("large", "small")}
        if self.base["large"] > 1 and memo.get("large_improving"):  # the trend rule
            share["large"] *= self.policy.trend
        return min(("large", "small"), key=lambda r: memo["used"][r] / share[r])

    def _sigma0(self) -> float:
        return self.contract.sigma0(self.params, self.problem)

    def _first_x0(self) -> list[float] | None:
        if self.problem.x0 is not None:
            return to_numpy(self.problem.x0).tolist()
        return self._x0()

    def _x0(self) -> list[float] | None:
        if self.problem.lo is None:  # no box: around the user's start, within the initial step size
            x0 = to_numpy(self.problem.x0)
            z = to_numpy(self.sampler.normal((1, self.problem.dim)))[0]
            return (x0 + self._sigma0() * z).tolist()
        return _start(self.problem, self.sampler)

    # -- what the runs found ----------------------------------------------------------------------------
    def done(self, child: Child, res: OptimizeResult, state: Any, params: Any = None) -> None:
        memo = self.memo
        regime = "cbo" if child.regime in ("cbo", "polish", "coordinate") else child.regime
        f = math.inf if res.get("fun") is None else float(res.fun)
        prev = min(memo["best"].values())
        if f < prev and res.get("x") is not None:
            memo["best_x"] = [float(v) for v in to_numpy(res.x)]
        improved = f < prev - _noise(prev) if math.isfinite(prev) else f < prev  # by more than noise
        memo["used"][regime] += int(res.nfev)
        if child.regime == "large":  # did it improve on every earlier large run (the trend rule)?
            before = memo["best"]["large"]
            memo["large_improving"] = math.isfinite(before) and f < before - _noise(before)
        memo["best"][regime] = min(memo["best"][regime], f)
        if child.regime == "cbo":
            if res.get("x") is not None and res.get("spread") is not None:
                sigma = max(2.0 * float(res.spread) / math.sqrt(self.problem.dim), 1e-12 * self._sigma0())
                memo["polish"] = (to_numpy(res.x).tolist(), sigma)
            memo["last"] = None
            memo["cbo_improved"] = improved
        elif child.regime == "polish":
            memo["last"] = "cbo" if (improved or memo.pop("cbo_improved", False)) else None
            if self.policy.coordinate and memo["coordinate"] is False:
                memo["coordinate"] = "due"
        elif child.regime != "coordinate":  # (the coordinate run leaves the CBO regime's turn as the polish set it)
            memo["last"] = None
        elif res.get("criterion") == "coupled":  # not axis-aligned after all: the CBO regime's premise is gone
            memo["cbo_off"], memo["last"] = True, None
        converged = res.get("criterion") in self.contract.converged
        if child.regime in ("large", "small", "polish", "coordinate") and converged and math.isfinite(f):
            memo["finals"].append(f)  # a polish ends its CBO run: one independent start either way
        # axis-aligned? The covariance of an ACH run that converged by its own criteria (not one stopped early:
        # its C is still near the identity) approximates the inverse Hessian at its end; one such estimate is
        # noisy (rms correlation 0.14-0.21 on separable Schwefel), so the first SEPARABLE_RUNS of them vote
        learned = get_method(child.method).axis_correlation
        if (child.regime in ("large", "small") and state is not None and learned is not None
                and len(memo["correlations"]) < SEPARABLE_RUNS and converged):
            rho = learned(params, state)
            if rho is not None:  # None: a model that learns no correlations (sep, lm) has no say
                memo["correlations"].append(rho)
        # a step function? A converged run whose last values tie on a plateau: the later runs damp their step size
        on_plateau = self.contract.on_plateau
        if (self.policy.plateau and child.regime in ("large", "small") and converged and state is not None
                and params is not None and on_plateau is not None and on_plateau(params, state)):
            memo["plateau"] = True
        memo["irun"] += 1


#: the converged runs whose learned covariance decides whether the CBO regime runs
SEPARABLE_RUNS = 3


def _agreeing(finals: list[float], best: float) -> int:
    """How many converged runs ended at the best value (within 1e-9 relative, 1e-12 absolute)."""
    if not math.isfinite(best):
        return 0
    return sum(1 for f in finals if f - best <= _noise(best))


def _noise(f: float) -> float:
    """Differences of values near ``f`` below this are not progress (1e-9 relative, 1e-12 absolute)."""
    return 1e-12 + 1e-9 * abs(f)


def _spread0(problem: Problem) -> float:
    """Typical distance of a uniform point in the box to its centre (or of the initial cloud to x0)."""
    if problem.lo is not None:
        w = to_numpy(problem.hi) - to_numpy(problem.lo)
        return float(np.sqrt((w * w).sum() / 12))
    s = problem.init_scale
    s = np.full(problem.dim, float(s)) if isinstance(s, (int, float)) else to_numpy(s)
    return float(np.sqrt((s * s).sum()))


def _json(v: float) -> float:
    return float(v) if math.isfinite(v) else math.inf


def as_policy(restarts: Any) -> Any:
    """``restarts=`` of :func:`cbopt.minimize`: None/0 (one run), an int k (``IPOP(k)``), or a policy object
    (or its name)."""
    if restarts is None:
        return None
    if isinstance(restarts, (IPOP, BIPOP, Portfolio)):
        return restarts
    if isinstance(restarts, str):
        names = {"ipop": IPOP(), "bipop": BIPOP(), "portfolio": Portfolio()}
        try:
            return names[restarts.lower()]
        except KeyError:
            raise ValueError(f"restarts: expected an integer, None or one of {list(names)}, got {restarts!r}") from None
    _check_restarts(restarts)
    return IPOP(int(restarts)) if restarts > 0 else None
