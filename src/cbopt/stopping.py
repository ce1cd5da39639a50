"""Termination: status codes and the stopping rules the driver checks after every step.

Every rule is a pure predicate over the driver's bookkeeping and the method state that returns one
boolean per run; the first rule that fires for a run sets its :class:`Status`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np

from .validation import number

log = logging.getLogger("cbopt")


class Status(IntEnum):
    """Why a run stopped. ``OptimizeResult.status`` holds the integer, ``.message`` the sentence."""

    RUNNING = -1
    CONVERGED = 0
    TARGET = 1
    STAGNATION = 2
    CONSENSUS_STALL = 3
    MAX_EVALS = 4
    MAX_ITER = 5
    MAX_TIME = 6
    DIVERGED = 7
    NONFINITE = 8
    OBJECTIVE_ERROR = 9
    CALLBACK = 10
    INTERRUPTED = 11
    EPOCHS = 12  # cbopt.nn.train ran every epoch it was asked for

    @property
    def success(self) -> bool:
        """The run found what it was looking for (converged, stalled at a value, or reached the target)."""
        return self in (Status.CONVERGED, Status.TARGET, Status.STAGNATION, Status.CONSENSUS_STALL, Status.EPOCHS)

    @property
    def message(self) -> str:
        """The sentence ``OptimizeResult.message`` carries for this status."""
        return MESSAGES[self]

    @property
    def ends_the_call(self) -> bool:
        """The user, the objective or the clock ended the call: no restart or refinement follows."""
        return self in (Status.CALLBACK, Status.INTERRUPTED, Status.OBJECTIVE_ERROR, Status.MAX_TIME)

    @property
    def broke_off(self) -> bool:
        """The step was cut short (an interrupt, a failing objective): its asked points are kept, so that a
        checkpoint resumes by evaluating them."""
        return self in (Status.INTERRUPTED, Status.OBJECTIVE_ERROR)

    @property
    def resumable(self) -> bool:
        """A checkpointed run that ended so continues on resume, under the resuming call's budgets; converged,
        diverged or non-finite runs stay stopped."""
        return self.ends_the_call or self in (Status.MAX_EVALS, Status.MAX_ITER)


_RUNNING = int(Status.RUNNING)  # a plain int: compared every step
#: the beaten_by rule: a run stops when it trails the reference by more than BEATEN times its progress over the
#: last BEATEN_WINDOW iterations (the remaining progress of a linearly converging run is about its recent one)
BEATEN, BEATEN_WINDOW = 3.0, 100

MESSAGES = {
    Status.RUNNING: "Still running.",
    Status.CONVERGED: "Converged: the swarm's spread around the consensus fell below xtol.",
    Status.TARGET: "Reached the target value.",
    Status.STAGNATION: "Stagnation: the best value improved by less than ftol over `patience` iterations.",
    Status.CONSENSUS_STALL: "Stagnation: the consensus point moved less than ctol over `patience` iterations.",
    Status.MAX_EVALS: "Stopped: the next step would exceed max_evals (evaluation budget spent).",
    Status.MAX_ITER: "Stopped: reached max_iter iterations.",
    Status.MAX_TIME: "Stopped: reached max_time seconds of wall time.",
    Status.DIVERGED: "Diverged: the swarm's spread grew beyond `divergence` times its initial spread "
    "(or became non-finite); try a smaller sigma, a smaller dt, or anisotropic noise.",
    Status.NONFINITE: "Every particle of the run has a non-finite energy (NaN/inf from the objective).",
    Status.OBJECTIVE_ERROR: "The objective raised an exception; the result holds the best point found before.",
    Status.CALLBACK: "Stopped by the callback (StopIteration).",
    Status.INTERRUPTED: "Interrupted (KeyboardInterrupt); the result holds the best point found so far.",
    Status.EPOCHS: "Finished: trained for the requested number of epochs.",
}


def _positive(name: str, v: Any, integer: bool = False, allow_zero: bool = False) -> None:
    """A rule's threshold: None (off), or a number > 0 (>= 0 with ``allow_zero``); inf is no limit."""
    v = number(name, v, at_least=0, none=True, finite=False) if allow_zero else \
        number(name, v, above=0, none=True, finite=False)
    if integer and v is not None and math.isfinite(v) and int(v) != v:
        raise ValueError(f"{name}: must be an integer, got {v!r}")


#: the default budget when a call gives none (no max_evals, max_iter or max_time): this many evaluations per dimension
EVALS_PER_DIM = 5000
#: ... but never more than this many: 5000 d is 5e6 evaluations at d = 1000, hours of a cheap objective's time
MAX_DEFAULT_EVALS = 1_000_000


def default_budget(dim: int) -> int:
    """The evaluations per run when no budget is given: ``min(EVALS_PER_DIM * d, MAX_DEFAULT_EVALS)``."""
    return int(min(EVALS_PER_DIM * dim, MAX_DEFAULT_EVALS))


@dataclass(frozen=True)
class Stop:
    """The stopping rules of a call (``minimize(..., stop=cbopt.Stop(...))``); ``None`` switches a rule off.

    Every default of every front door (``minimize``, ``Optimizer``, the CLI) is the default written here.
    ``max_evals`` and ``target`` are also flat arguments of ``minimize``.

    Attributes
    ----------
    max_evals : per-run evaluation budget; a step that would exceed it is not taken (``nfev <= max_evals``).
        Without any budget (``max_evals``, ``max_iter``, ``max_time`` all None) a call gets
        ``min(EVALS_PER_DIM * d, MAX_DEFAULT_EVALS)`` = ``min(5000 d, 1e6)`` evaluations (see :meth:`budgeted`),
        and a run expected to take more than a minute says so in a warning after its first steps.
    max_iter : per-run iteration limit.
    max_time : wall-clock seconds for the whole call.
    target : stop a run when its best value is ``<= target``.
    xtol : stop when the median distance of the particles to the consensus is ``<= xtol`` (converged).
    ftol : stop when the best value improved by less than ``ftol * (1 + |best|)`` in ``patience`` iterations.
    ctol : stop when the consensus moved less than ``ctol * (1 + |c|)`` in ``patience`` iterations.
    patience : the window of the two stagnation rules, in iterations.
    divergence : stop as diverged when the spread exceeds ``divergence * initial spread``.
    beaten_by : a value known from elsewhere (a restart sequence's best so far): stop a run once its best is
        worse than it by more than ``BEATEN`` times its improvement over the last ``BEATEN_WINDOW`` iterations.
    """

    max_evals: float | None = None
    max_iter: int | None = None
    max_time: float | None = None
    target: float | None = None
    xtol: float | None = 1e-12
    ftol: float | None = 1e-12
    ctol: float | None = None
    patience: int = 500
    divergence: float | None = 1e4
    beaten_by: float | None = None

    def __post_init__(self) -> None:
        _positive("max_evals", self.max_evals)
        _positive("max_iter", self.max_iter, integer=True)
        _positive("max_time", self.max_time)
        _positive("xtol", self.xtol, allow_zero=True)
        _positive("ftol", self.ftol, allow_zero=True)
        _positive("ctol", self.ctol, allow_zero=True)
        if self.patience is None:
            raise ValueError("patience: must be an integer >= 1 (switch the stagnation rules off with ftol=None, "
                             "ctol=None)")
        _positive("patience", self.patience, integer=True)
        _positive("divergence", self.divergence)
        v = self.beaten_by
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or math.isnan(v)):
            raise ValueError(f"beaten_by: must be None or a number, got {v!r}")
        if self.target is not None:
            if isinstance(self.target, bool) or not isinstance(self.target, (int, float, np.number)):
                raise TypeError(f"target: expected a number, got {type(self.target).__name__}")
            if math.isnan(self.target):
                raise ValueError("target: must not be NaN")

    @property
    def has_budget(self) -> bool:
        """Whether some rule bounds the call (evaluations, iterations or time)."""
        return self.max_evals is not None or self.max_iter is not None or self.max_time is not None

    def budgeted(self, dim: int) -> Stop:
        """These rules, with the default budget :func:`default_budget` when none is given."""
        if self.has_budget:
            return self
        n = default_budget(dim)
        log.info("no budget given: max_evals = min(%d * d, %d) = %d evaluations per run", EVALS_PER_DIM,
                 MAX_DEFAULT_EVALS, n)
        return replace(self, max_evals=n)

    def with_flat(self, **flat: Any) -> Stop:
        """These rules with the flat shorthands of ``minimize`` (``max_evals=``, ``target=``) filled in; a rule
        given both ways is refused."""
        given = {k: v for k, v in flat.items() if v is not None}
        twice = [k for k in given if getattr(self, k) is not None]
        if twice:
            raise ValueError(f"{', '.join(twice)}: given both as an argument and in stop=; give it once")
        return replace(self, **given) if given else self


def keeps_only(rules: Stop, supported: tuple[str, ...], who: str) -> Stop:
    """``rules`` for a front door whose loop implements only the ``supported`` rules: one set to anything but
    its default is refused by name (never silently ignored)."""
    fields = {f.name: f.default for f in dataclasses.fields(Stop)}
    other = [k for k in fields if k not in supported and getattr(rules, k) != fields[k]]
    if other:
        shown = ", ".join(f"{k}={getattr(rules, k)!r}" for k in other)
        raise ValueError(f"{who}: stop=cbopt.Stop({shown}) is not a rule it has; it stops on "
                         f"{', '.join(supported)}")
    return rules


def as_stop(stop: Any) -> Stop:
    """``stop=`` of a front door: None (the defaults) or a :class:`Stop`."""
    if stop is None:
        return Stop()
    if not isinstance(stop, Stop):
        raise TypeError(f"stop: expected cbopt.Stop(...) or None, got {type(stop).__name__}"
                        + (" (write stop=cbopt.Stop(**rules))" if isinstance(stop, dict) else ""))
    return stop


def announce_default_steps(rules: Stop, default_steps: int, step_cost: int, who: str) -> None:
    """Say on the ``cbopt`` log (info, as :meth:`Stop.budgeted` does for minimize) what a call without a budget
    will run: ``default_steps`` steps of ``step_cost`` evaluations."""
    if not rules.has_budget:
        log.info("no budget given: %s runs %d steps, about %d evaluations; bound it with max_evals= or stop=",
                 who, default_steps, default_steps * step_cost)


def budget_status(rules: Stop, nit: int, nfev: int, step_cost: int, t0: float, default_steps: int) -> Status:
    """The budget rules (``max_iter``, ``max_evals``, ``max_time``) for the front doors that run loops of their
    own (:func:`cbopt.minimax`, :func:`cbopt.multiobjective`): ``MAX_EVALS`` when the next step's
    ``step_cost`` evaluations would not fit; without any budget, ``default_steps`` steps. ``RUNNING``
    when none fires."""
    no_budget = rules.max_evals is None and rules.max_iter is None and rules.max_time is None
    steps = default_steps if no_budget else rules.max_iter
    if steps is not None and nit >= steps:
        return Status.MAX_ITER
    if rules.max_evals is not None and nfev + step_cost > rules.max_evals:
        return Status.MAX_EVALS
    if rules.max_time is not None and time.perf_counter() - t0 >= rules.max_time:
        return Status.MAX_TIME
    return Status.RUNNING


@dataclass
class Book:
    """The driver's per-run bookkeeping (mutable, owned by the driver alone)."""

    nfev: np.ndarray  # (M,) evaluations
    nit: np.ndarray  # (M,) iterations
    n_nonfinite: Any  # (M,) evaluations that returned NaN/inf (on the run's backend)
    best_x: Any  # (M, d)
    best_f: Any  # (M,)
    status: np.ndarray  # (M,) Status codes, RUNNING while active
    improved_at: np.ndarray  # (M,) iteration of the last improvement by more than ftol
    ref_f: Any  # (M,) best value at that iteration (host)
    ref_c: Any  # (M, d) consensus at the start of the current ctol window
    ref_c_at: np.ndarray  # (M,) iteration that window started
    spread0: Any  # (M,) initial spread
    t0: float
    recent_f: Any = None  # (M, BEATEN_WINDOW) host ring of the best value at each iteration (beaten_by rule)

    #: the fields a checkpoint holds (all but the clock)
    SAVED = ("nfev", "nit", "n_nonfinite", "best_x", "best_f", "status", "improved_at", "ref_f", "ref_c", "ref_c_at",
             "spread0", "recent_f")

    @property
    def active(self) -> np.ndarray:
        return self.status == _RUNNING


class Probe(NamedTuple):
    """The few per-run numbers the rules read, copied to the host in one transfer per step."""

    best_f: np.ndarray  # (M,) best value so far
    spread: np.ndarray  # (M,) median distance to the consensus
    any_finite: np.ndarray  # (M,) bool: some particle has a finite energy
    c_dist: np.ndarray | None  # (M,) |c - ref_c| (ctol rule only)
    c_norm: np.ndarray | None  # (M,) |c|
    codes: np.ndarray | None = None  # (M,) the method's own termination codes (0: none fired)


def check(rules: Stop, book: Book, probe: Probe, now: float) -> list[tuple[Status, np.ndarray]]:
    """Evaluate every rule; returns ``(status, fires[M])`` in priority order (first match wins)."""
    out: list[tuple[Status, np.ndarray]] = []
    spread = probe.spread
    if rules.target is not None:
        out.append((Status.TARGET, probe.best_f <= rules.target))
    if rules.xtol is not None:
        out.append((Status.CONVERGED, spread <= rules.xtol))
    if rules.ftol is not None:
        out.append((Status.STAGNATION, book.nit - book.improved_at >= rules.patience))
    if rules.ctol is not None:
        assert probe.c_dist is not None and probe.c_norm is not None  # measured whenever ctol is set
        still = probe.c_dist <= rules.ctol * (1 + probe.c_norm)
        out.append((Status.CONSENSUS_STALL, still & (book.nit - book.ref_c_at >= rules.patience)))
    out.append((Status.NONFINITE, ~probe.any_finite))
    if rules.divergence is not None:
        out.append((Status.DIVERGED, ~(spread <= rules.divergence * book.spread0)))
    else:
        out.append((Status.DIVERGED, ~np.isfinite(spread)))
    if rules.beaten_by is not None and book.recent_f is not None:
        w = book.recent_f.shape[1]
        then = book.recent_f[np.arange(len(book.nit)), book.nit % w]  # the best value BEATEN_WINDOW steps ago
        gap = probe.best_f - rules.beaten_by
        out.append((Status.STAGNATION, (book.nit >= w) & (gap > 0) & (gap > BEATEN * (then - probe.best_f))))
    if rules.max_iter is not None:
        out.append((Status.MAX_ITER, book.nit >= rules.max_iter))
    if rules.max_time is not None:
        out.append((Status.MAX_TIME, np.full(book.nit.shape, now - book.t0 >= rules.max_time)))
    return out
