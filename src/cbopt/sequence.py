"""The restart engine: a chain of runs planned online, driven like one run.

A :class:`Planner` (made by a restart policy of :mod:`cbopt.restarts`) decides each next run as a
:class:`Child`, from what the previous ones found; :class:`Sequence` chains the runs behind the same
ask/check/tell interface as one :class:`cbopt.driver.Run`, so :func:`cbopt.minimize`, :class:`cbopt.Optimizer`
and :mod:`cbopt.checkpoint` drive either (each saves and restores its own state). The evaluation budget is
exact over the whole sequence (``nfev <= max_evals``); every random draw comes from the call's one random stream.
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
from .checkpoint import CheckpointError, check_identity, converter, identity, put
from .driver import Counts, Run
from .methods._base import MethodSpec, Problem, get_method
from .result import OptimizeResult
from .stopping import Status, Stop

#: statuses of a run after which the sequence ends: the budget, the user or the objective ended the call
#: statuses that end a whole sequence: the target, and whatever ends the call (Status.ends_the_call)
FINAL = frozenset({Status.TARGET} | {s for s in Status if s.ends_the_call})
#: while every value so far was non-finite, the sequence keeps drawing fresh starts (a region where f is
#: defined may lie elsewhere in the box) for a tenth of its budget, at least this many first populations
NONFINITE_SHARE = 0.1
NONFINITE_RUNS = 10


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


class Sequence:
    """A chain of runs planned online, with the interface of one :class:`cbopt.driver.Run`.

    ``ask`` returns the current run's points; when that run ends, its result is noted, the planner picks the
    next run and ``ask`` continues with it, until the budget, the time, the target, the user or the planner
    ends the sequence. :meth:`result` is the best point over all runs, with ``restart_log``.
    """

    PER_POINT_HINT = True

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
        # what the method's runs set for this budget (Restarts.budget), under the user's options
        by_budget = spec.restarts.budget if spec.restarts is not None else None
        self.for_budget = {} if by_budget is None else dict(by_budget(rules.max_evals, problem.dim))
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
        return Counts(self.nfev + (int(self.run.book.nfev.sum()) if self.run is not None else 0))

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
        run.params = self._params(spec, options)

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
        params = self._params(spec, child.options)
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

    def _params(self, spec: MethodSpec, options: dict[str, Any]) -> Any:
        """A child's parameters: its options over the user's over the budget's, when it runs the sequence's own
        method."""
        own = {**self.for_budget, **self.options, **options}
        # by name: a pickled sequence holds a copy of its spec, not the registry's object
        return spec.make_params(own if spec.name == self.spec.name else dict(options), self.problem.dim)

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

    # -- checkpoints (:mod:`cbopt.checkpoint` keeps the file format; what a sequence's state is, is its own) ------
    KIND = "sequence"
    #: what a finished run's result keeps in a checkpoint: its numbers (in the header) and its arrays
    BEST_NUMBERS = ("fun", "success", "status", "reason", "message", "nit", "nfev", "nfev_nonfinite", "spread",
                    "criterion")
    BEST_ARRAYS = ("x", "population", "energies", "consensus")

    def identity(self) -> dict[str, Any]:
        """The run's identity (:func:`cbopt.checkpoint.identity`) plus the policy. Checked before anything else,
        so a finished sequence extended with a larger budget is held to it as well as one interrupted mid-run."""
        return identity(self.spec.name, self.problem, self.params, self.sampler, policy=repr(self.policy))

    def snapshot(self, arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
        """Put the sequence's arrays in ``arrays`` (its best run's, the last consensus, the current run's under
        ``run.``); returns the header's part, or None before anything was evaluated."""
        if self.run is None and not self.log:
            return None
        best = None
        if self.best is not None:
            b = self.best
            best = {k: b.get(k) for k in self.BEST_NUMBERS}
            for k in self.BEST_ARRAYS:
                if b.get(k) is not None:
                    put(arrays, f"best.{k}", b[k])
        last = self.last.get("consensus") if self.last is not None else None
        if last is not None:  # the last finished run's consensus: a candidate for res.x on a noisy objective
            put(arrays, "last.consensus", last)
        child = dataclasses.asdict(self.child) if self.child is not None else None
        seq = {**self.identity(), "memo": self.planner.memo, "nfev": self.nfev, "nit": self.nit,
               "nonfinite": self.nonfinite, "log": self.log, "best": best, "child": child,
               "status": None if self.status is None else int(self.status), "for_budget": self.for_budget}
        out: dict[str, Any] = {"sequence": seq}
        if self.run is not None:
            out["run"] = self.run.part(arrays, "run.")
        return out

    def members(self, header: dict[str, Any]) -> set[str]:
        names = {f"best.{k}" for k in self.BEST_ARRAYS} | {"last.consensus"}
        part = header.get("run")
        if isinstance(part, dict) and self.run is not None:
            names |= self.run.members(part, "run.")
        return names

    def restore(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Continue from a snapshot in this freshly built sequence (its current run restored by that run)."""
        h = header["sequence"]
        check_identity(h, self.identity())
        if not isinstance(h["memo"], dict) or not isinstance(h["log"], list):
            raise CheckpointError("sequence: malformed planner state")
        self.planner.memo = h["memo"]
        self.nfev, self.nit, self.nonfinite, self.log = int(h["nfev"]), int(h["nit"]), int(h["nonfinite"]), \
            list(h["log"])
        if self.nfev < 0 or self.nit < 0:
            raise CheckpointError("sequence: negative counts")
        _agrees(h)
        planned = h.get("for_budget", self.for_budget)  # the runs go on as planned for the budget they began with
        fields = {f.name for f in dataclasses.fields(self.spec.params)}
        if not isinstance(planned, dict) or not set(planned) <= fields:
            raise CheckpointError("sequence: malformed budget options")
        self.for_budget = dict(planned)
        self.status = None if h["status"] is None else Status(int(h["status"]))
        if self.status is not None and self.status.resumable:
            self.status = None  # the resuming call's budgets apply from here on
        to = converter(self.problem)
        self.best = None
        if h["best"] is not None:
            best = OptimizeResult(h["best"])
            for k in self.BEST_ARRAYS:
                if f"best.{k}" in arrays:
                    best[k] = to(arrays[f"best.{k}"], float_=True)
            self.best = best
        self.last = None
        if "last.consensus" in arrays:
            self.last = OptimizeResult(consensus=to(arrays["last.consensus"], float_=True))
        self.run, self.child = None, None
        if h["child"] is not None:
            self.start(Child(**h["child"]))
            part = header.get("run")
            if part is None:
                raise CheckpointError("sequence: the current run's state is missing")
            assert self.run is not None
            self.run.restore(part, arrays, "run.")
        elif header.get("run") is not None:
            raise CheckpointError("sequence: a run's state without the run it belongs to")
        elif self.status is None:
            self.plan()  # it had ended for lack of budget: a larger budget may continue it


def _agrees(h: dict[str, Any]) -> None:
    """A sequence's count of evaluations is the sum of its finished runs' and its best is the least of their
    results: a count rewound (which would extend the budget) or a best put in by hand contradicts its log."""
    try:
        logged = sum(int(e["nfev"]) for e in h["log"])
        funs = [float(e["fun"]) for e in h["log"] if e.get("fun") is not None]
    except (TypeError, KeyError, ValueError):
        raise CheckpointError("sequence: malformed log of finished runs") from None
    if logged != int(h["nfev"]):
        raise CheckpointError(f"sequence: {int(h['nfev'])} evaluations, but its finished runs made {logged}: "
                              "counts edited")
    best = h["best"]
    if best is not None and best.get("fun") is not None and funs and float(best["fun"]) != min(funs):
        raise CheckpointError(f"sequence: best f = {best['fun']!r}, but its finished runs' least is {min(funs)!r}")


def _offset(callback: Callable[[OptimizeResult], Any], done: int) -> Callable[[OptimizeResult], Any]:
    def cb(r: OptimizeResult) -> Any:
        r.nfev += done
        return callback(r)

    return cb
