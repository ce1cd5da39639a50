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

Refinement (:func:`refine`): scipy's L-BFGS-B or Nelder--Mead, or consensus hopping with a shrinking sigma,
polishing the best point with evaluations held back for it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._backend import Sampler, as_like, to_numpy
from ._extras import available, require
from .driver import Run, drive
from .methods._base import MethodSpec, Problem, get_method
from .methods.covariance import correlation  # noqa: F401  (the portfolio's measure, re-exported)
from .numerics import sanitize
from .result import OptimizeResult
from .schedules import Geometric
from .stopping import Status, Stop
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
#: statuses of a run after which the sequence ends: the budget, the user or the objective ended the call
#: statuses that end a whole sequence: the target, and whatever ends the call (Status.ends_the_call)
FINAL = frozenset({Status.TARGET} | {s for s in Status if s.ends_the_call})
#: while every value so far was non-finite, the sequence keeps drawing fresh starts (a region where f is
#: defined may lie elsewhere in the box) for a tenth of its budget, at least this many first populations
NONFINITE_SHARE = 0.1
NONFINITE_RUNS = 10
#: stagnation window and tolerances of a run in an IPOP sequence of a method without its own criteria
PATIENCE, FTOL, XTOL = 100, 1e-9, 1e-9


@dataclass(frozen=True)
class Child:
    """One planned run: everything needed to build it again (checkpoints store this, as JSON)."""

    method: str
    options: dict[str, Any]  # JSON-able: numbers, bools, strings, None
    regime: str  # "run", "large", "small", "cbo", "polish"
    x0: list[float] | None = None  # start point (None: the method's own start in the box)
    max_evals: float | None = None  # this run's budget (None: what is left of the sequence's)
    rules: dict[str, Any] = field(default_factory=dict)  # Stop fields that differ from the sequence's


class Planner:
    """Decides the runs of a sequence; subclasses keep JSON-able state in ``self.memo``."""

    def __init__(self, spec: MethodSpec, params: Any, problem: Problem, rules: Stop, sampler: Sampler):
        self.spec, self.params, self.problem, self.rules, self.sampler = spec, params, problem, rules, sampler
        self.memo: dict[str, Any] = {}

    def next(self, left: float, best: float) -> Child | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def done(self, child: Child, res: OptimizeResult, state: Any, params: Any = None) -> None:
        """Note the result of ``child`` (its final method state is ``state``, its parameters ``params``)."""

    def noisy(self) -> None:
        """The objective was found to be noisy (:mod:`cbopt.noisy`): plan the runs that follow for it."""
        self.memo["noisy"] = True


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
        return _PortfolioPlanner(Portfolio(cbo=False, large_share=1.0, adaptive=False, dominated=0.0, agree=0,
                                           restarts=self.restarts, incpopsize=self.incpopsize),
                                 spec, params, problem, rules, sampler)


@dataclass(frozen=True)
class Portfolio:
    """The default restart policy: ACH in BIPOP regimes with adaptive shares, plus CBO on axis-aligned problems.

    Attributes
    ----------
    cbo : run coordinate-wise CBO (then a local ACH run from its best point) as a third regime once the
        covariance of one of the first three converged ACH runs is axis-aligned: root-mean-square
        off-diagonal correlation below ``separable``.
    cbo_particles, cbo_cap, cbo_share : CBO's first population (doubled at each CBO restart), the most of the
        budget one CBO run may take, and its base share of the budget.
    large_share : base share of the large-population regime against the small one's 1; default
        ``max(1, d / 10)``: in higher dimensions large populations pay more and random local runs less.
    adaptive : the regime that holds the best value so far gets twice its share (NBIPOP's rule).
    dominated : a run stops when its best is worse than the sequence's best by more than this many times
        its recent progress (0: never).
    restarts, incpopsize : the number of large-population restarts and their growth.
    agree : the sequence ends (as its best run did, e.g. CONVERGED) once this many independent runs converged
        by their own criteria to the best value (within 1e-9 relative): the budget is not spent searching a
        minimum that keeps being found (0: always use the whole budget).
    noise_ess : the target effective sample size of the runs planned once the objective is found to be noisy
        (:mod:`cbopt.noisy`); None: the method's default.
    """

    cbo: bool = True
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

    def __post_init__(self) -> None:
        IPOP(self.restarts, self.incpopsize)
        number("Portfolio.noise_ess", self.noise_ess, above=0, at_most=1, none=True)
        if isinstance(self.agree, bool) or not isinstance(self.agree, int) or self.agree < 0:
            raise ValueError(f"Portfolio.agree: must be an integer >= 0, got {self.agree!r}")
        for name in ("cbo", "adaptive"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"Portfolio.{name}: expected True or False, got {getattr(self, name)!r}")
        for name, lo, hi in (("separable", 0, 1), ("cbo_cap", 0, 1), ("cbo_share", 0, math.inf),
                             ("dominated", 0, math.inf)):
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
                     "correlations": [], "finals": [], "last": None, "polish": None, "cbo_off": False}

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
        share = {r: self.base[r] * (2.0 if self.policy.adaptive and r == leader and math.isfinite(best[r])
                                    else 1.0) for r in ("large", "small")}
        if not self.policy.adaptive:
            return "small" if memo["used"]["small"] < memo["used"]["large"] else "large"
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
        regime = "cbo" if child.regime in ("cbo", "polish") else child.regime
        f = math.inf if res.get("fun") is None else float(res.fun)
        prev = min(memo["best"].values())
        improved = f < prev - _noise(prev) if math.isfinite(prev) else f < prev  # by more than noise
        memo["used"][regime] += int(res.nfev)
        memo["best"][regime] = min(memo["best"][regime], f)
        if child.regime == "cbo":
            if res.get("x") is not None and res.get("spread") is not None:
                sigma = max(2.0 * float(res.spread) / math.sqrt(self.problem.dim), 1e-12 * self._sigma0())
                memo["polish"] = (to_numpy(res.x).tolist(), sigma)
            memo["last"] = None
            memo["cbo_improved"] = improved
        elif child.regime == "polish":
            memo["last"] = "cbo" if (improved or memo.pop("cbo_improved", False)) else None
        else:
            memo["last"] = None
        converged = res.get("criterion") in self.contract.converged
        if child.regime in ("large", "small", "polish") and converged and math.isfinite(f):
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


class Sequence:
    """A chain of runs planned online, with the interface of one :class:`cbopt.driver.Run`.

    ``ask`` returns the current run's points; when that run ends, its result is noted, the planner picks the
    next run and ``ask`` continues with it, until the budget, the time, the target, the user or the planner
    ends the sequence. :meth:`result` is the best point over all runs, with ``restart_log``.
    """

    def __init__(self, policy: Any, spec: MethodSpec, params: Any, problem: Problem, sampler: Sampler,
                 rules: Stop, callback: Callable[[OptimizeResult], Any] | None = None,
                 options: dict[str, Any] | None = None, history: bool = False):
        self.policy, self.spec, self.params, self.problem, self.sampler, self.rules = (
            policy, spec, params, problem, sampler, rules)
        self.callback = callback
        self.options = dict(options or {})  # the user's options of the main method (its runs start from them)
        if history not in (False, True):
            raise ValueError("history: a restart sequence records history=True (its runs' populations differ in "
                             "size, so not 'particles')")
        self.history: dict[str, list[Any]] | None = {} if history else None
        self.planner = policy.planner(spec, params, problem, rules, sampler)
        self.t0 = time.perf_counter()
        self.nfev = 0  # evaluations of the finished runs
        self.nit = 0
        self.nonfinite = 0  # ... and how many of them were non-finite
        self.log: list[dict[str, Any]] = []
        self.best: OptimizeResult | None = None
        self.last: OptimizeResult | None = None  # the result of the run that finished last
        self.status: Status | None = None  # why the sequence ended, once it has
        self.child: Child | None = None
        self.run: Run | None = None
        self.plan()

    # -- the Run interface --------------------------------------------------------------------------------
    @property
    def first(self) -> bool:
        return not self.log and (self.run is None or self.run.first)

    @property
    def state(self) -> Any:
        return self.run.state if self.run is not None else None

    @property
    def busy(self) -> bool:
        return self.run is not None and self.run.busy

    @property
    def it(self) -> int:
        return self.nit + (self.run.it if self.run is not None else 0)

    @property
    def done(self) -> bool:
        return self.run is None

    @property
    def book(self) -> Any:
        return _Counts(self.nfev + (int(self.run.book.nfev.sum()) if self.run is not None else 0))

    def ask(self) -> Any:
        while self.run is not None:
            xa = self.run.ask()
            if xa is not None:
                return xa
            self.finish()
        return None

    def check(self, e: Any) -> Any:
        assert self.run is not None
        return self.run.check(e)

    def tell(self, e: Any) -> None:
        assert self.run is not None
        self.run.tell(e)

    def noisy(self) -> None:
        """The objective is noisy: the planner plans the runs that follow for it (:meth:`Planner.noisy`), and
        the current run, when its method weighs by value, weighs by rank from now on and is no longer compared
        with a value reached elsewhere (a lucky draw). Its planned child says so too, so that a checkpoint
        rebuilds it that way."""
        self.planner.noisy()
        run, child = self.run, self.child
        if run is None or child is None:
            return
        spec = get_method(child.method)
        c = spec.restarts
        if c is None or not c.noisy or all(child.options.get(k) == v for k, v in c.noisy.items()):
            return
        options = {**child.options, **c.noisy, c.reference: math.inf}
        self.child = dataclasses.replace(child, options=options)
        run.params = spec.make_params({**self.options, **options} if spec is self.spec else options,
                                      self.problem.dim)

    def hold_back(self, n: int) -> None:
        """Take ``n`` evaluations off the sequence's budget (and its current run's)."""
        if self.rules.max_evals is not None:
            self.rules = dataclasses.replace(self.rules, max_evals=max(0, self.rules.max_evals - n))
            if self.run is not None and self.run.rules.max_evals is not None:
                over = self.run.rules.max_evals - min(self.run.rules.max_evals, self.left())
                self.run.hold_back(int(max(0, over)))

    def stop_all(self, status: Status) -> None:
        if self.run is not None:
            self.run.stop_all(status)
            if not status.broke_off:
                self.finish()
            else:
                self.status = status

    # -- planning -----------------------------------------------------------------------------------------
    def left(self) -> float:
        return math.inf if self.rules.max_evals is None else self.rules.max_evals - self.nfev

    def plan(self) -> None:
        """Start the next run the planner chooses (or end the sequence)."""
        self.run, self.child = None, None
        if self.status is not None:
            return
        if self.rules.max_time is not None and time.perf_counter() - self.t0 >= self.rules.max_time:
            self.status = Status.MAX_TIME
            return
        best = math.inf if self.best is None or self.best.get("fun") is None else float(self.best.fun)
        child = self.planner.next(self.left(), best)
        if child is None:
            return
        self.start(child)

    def start(self, child: Child) -> None:
        """Build the run of ``child`` (fresh, or to be restored from a checkpoint)."""
        spec = get_method(child.method)
        options = {**self.options, **child.options} if spec is self.spec else dict(child.options)
        params = spec.make_params(options, self.problem.dim)
        problem = self.problem
        if child.x0 is not None:
            like = problem.lo if problem.lo is not None else problem.x0
            x0 = np.asarray(child.x0, dtype=float)
            if like is not None:
                x0 = as_like(x0, like)
            problem = dataclasses.replace(problem, x0=x0)
        left = self.left()
        budget = left if child.max_evals is None else min(left, child.max_evals)
        elapsed = time.perf_counter() - self.t0
        rules = dataclasses.replace(
            self.rules, max_evals=None if math.isinf(budget) else budget,
            max_time=None if self.rules.max_time is None else max(self.rules.max_time - elapsed, 1e-9),
            max_iter=None if self.rules.max_iter is None else max(self.rules.max_iter - self.nit, 1),
            **child.rules)
        cb = None if self.callback is None else _offset(self.callback, self.nfev)
        self.child = child
        self.run = Run(spec, params, problem, self.sampler, rules, callback=cb, history=self.history is not None)

    def finish(self) -> None:
        """Note the current run's result and plan the next."""
        assert self.run is not None and self.child is not None
        res = self.run.result()
        self.nfev += int(res.nfev)
        self.nit += int(res.nit)
        self.nonfinite += int(res.get("nfev_nonfinite") or 0)
        status = Status(res.status)
        if self.history is not None and res.get("history") is not None:
            self._record(res.history, self.nfev - int(res.nfev), self.nit - int(res.nit), len(self.log))
        entry = {"method": self.child.method, "regime": self.child.regime,
                 "n_particles": int(self.run.params.n_particles), "nfev": int(res.nfev), "fun": res.fun,
                 "reason": res.reason}
        if res.get("criterion") is not None:
            entry["criterion"] = res.criterion
        self.log.append(entry)
        self.last = res
        if res.get("fun") is not None and (self.best is None or self.best.get("fun") is None or
                                           res.fun < self.best.fun):
            self.best = res
        self.planner.done(self.child, res, self.run.state, self.run.params)
        if status in FINAL:
            self.status = status
        elif status is Status.MAX_EVALS and self.child.max_evals is None:
            self.status = Status.MAX_EVALS  # the sequence's own budget is spent
        elif self.rules.max_iter is not None and self.nit >= self.rules.max_iter:
            self.status = Status.MAX_ITER
        elif status is Status.NONFINITE and (self.best is None or not math.isfinite(self.best.fun)) and \
                self.nfev >= self._nonfinite_patience():
            self.status = Status.NONFINITE  # nothing finite in many fresh starts: the objective, not the start
        self.plan()
        if self.run is None and self.status is None and self.left() < self.params.n_particles:
            self.status = Status.MAX_EVALS  # no further run fits in what is left

    def _nonfinite_patience(self) -> int:
        """Evaluations a sequence spends on fresh starts while every value so far was non-finite: a tenth of the
        budget, at least :data:`NONFINITE_RUNS` first populations (that many without a budget)."""
        floor = NONFINITE_RUNS * int(self.params.n_particles)
        budget = self.rules.max_evals
        return floor if budget is None else max(floor, int(NONFINITE_SHARE * budget))

    def _record(self, h: dict[str, Any], nfev0: int, nit0: int, k: int) -> None:
        """Append one run's history: evaluations and iterations counted over the sequence, best value so far."""
        assert self.history is not None
        prev = self.history["best_f"][-1][-1] if self.history.get("best_f") else np.inf
        rows = {"nit": h["nit"] + nit0, "nfev": h["nfev"] + nfev0,
                "best_f": np.minimum.accumulate(np.minimum(h["best_f"], prev)), "consensus": h["consensus"],
                "spread": h["spread"], "run": np.full(len(h["nit"]), k)}
        for key, v in rows.items():
            self.history.setdefault(key, []).append(np.asarray(v))

    def result(self, intermediate: bool = False) -> OptimizeResult:
        if self.run is not None and not self.log and self.best is None:
            return self.run.result(intermediate)
        best = self.best
        if self.run is not None and self.run.state is not None:
            cur = self.run.result(intermediate=True)
            if cur.get("fun") is not None and (best is None or best.get("fun") is None or cur.fun < best.fun):
                best = cur
        if best is None:
            raise ValueError("restarts: no run fitted in the budget (max_evals, max_time)")
        out = OptimizeResult(best)
        status = self.status
        if status is None:  # running, or the planner ended the sequence (restarts used up): say why the best ended
            status = Status.RUNNING if self.run is not None else Status(best.status)
        out.status, out.reason, out.message = int(status), status.name, status.message
        out.success = bool(best.success or status is Status.TARGET)
        out.nfev = int(self.book.nfev.sum())
        out.nit = self.nit + (self.run.it if self.run is not None else 0)
        current = int(to_numpy(self.run.book.n_nonfinite).sum()) if self.run is not None and \
            self.run.book.n_nonfinite is not None else 0
        out.nfev_nonfinite = self.nonfinite + current
        out.restarts = max(0, len(self.log) - 1)
        out.restart_log = list(self.log)
        out.method = self.spec.name
        out.time = time.perf_counter() - self.t0
        out.pop("history", None)
        if self.history is not None and self.history and not intermediate:
            out.history = {k: np.concatenate(v) for k, v in self.history.items()}
        return out


class _Counts:
    """The one number of a sequence's bookkeeping that callers read (evaluations so far)."""

    def __init__(self, nfev: int):
        self.nfev = np.array([nfev])


def _offset(callback: Callable[[OptimizeResult], Any], done: int) -> Callable[[OptimizeResult], Any]:
    def cb(r: OptimizeResult) -> Any:
        r.nfev += done
        return callback(r)

    return cb


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


class _Spent(Exception):
    """The refinement's evaluation budget is used up."""


def refine(method: str, fun: Callable[[Any], Any], best: OptimizeResult, problem: Problem, sampler: Sampler,
           rules: Stop, budget: int | None, to_backend: Callable[[np.ndarray], Any], box: str | None
           ) -> tuple[Any, float, int]:
    """Polish ``best.x`` with at most ``budget`` evaluations; returns ``(x, f, evaluations used)``."""
    if method == "auto":
        method = "l-bfgs-b" if available("scipy") else "ch"
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
