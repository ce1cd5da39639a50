"""The loops of the other problem kinds, on the one driver loop.

:func:`cbopt.minimax` (two players) and :func:`cbopt.multiobjective` (a Pareto archive) advance in stages
(a player's half-step, an evaluation for the report) rather than in one population per step. Each is a
:class:`Staged` loop: the interface of :class:`cbopt.driver.Run` (``ask``, ``check``, ``tell``, ``result``,
``stop_all``, ``snapshot``/``restore``), so :func:`cbopt.driver.drive_loop`, the evaluators, checkpoints and
the ask/tell front doors drive them exactly as they drive :func:`cbopt.minimize`'s runs.

A subclass keeps its state in one frozen dataclass (``self.s``) of arrays and numbers, and says what the
stage under way asks (:meth:`Staged.points`) and does with the values (:meth:`Staged.absorb`). Between a
stage's ask and its tell the state already holds whatever the ask drew (a move), so the asked points follow
from the state and a checkpoint resumes them exactly.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._backend import Sampler, to_numpy
from .checkpoint import CheckpointError, check_identity, converter, identity, put
from .driver import Counts, callback_stops
from .methods._base import Problem
from .result import OptimizeResult
from .stopping import Status, Stop


class Staged:
    """A loop advanced stage by stage (see the module); ``stage`` names what the next :meth:`ask` does, ``"done"``
    once the result is complete. Subclasses set ``KIND``, ``METHOD``, ``FIRST``, ``STAGES`` and ``state_type``
    and implement :meth:`points`, :meth:`validate`, :meth:`absorb` and :meth:`report`."""

    KIND = "staged"
    METHOD = ""
    PER_POINT_HINT = False
    FIRST: tuple[str, ...] = ()  # the stages before the first full step (nothing worth a checkpoint yet)
    STAGES: tuple[str, ...] = ()  # the stages a checkpoint may hold
    state_type: Any = None  # the frozen dataclass of the state

    def __init__(self, problem: Problem, params: Any, sampler: Sampler, rules: Stop,
                 callback: Callable[[OptimizeResult], Any] | None, shown: Any, **identity_more: Any):
        self.problem, self.params, self.sampler, self.rules = problem, params, sampler, rules
        self.callback, self.shown = callback, shown
        self.identity_more = identity_more
        self.s: Any = None  # the state (a frozen dataclass); None before the first ask
        self.stage = self.FIRST[0] if self.FIRST else "done"
        self.status = Status.RUNNING  # why the loop ends, once a stopping rule has fired
        self.broken: Status | None = None  # an interrupt, a failed objective: the loop stopped mid-stage
        self.asked: Any = None  # the points asked and not yet told
        self.busy = False
        self.t0 = time.perf_counter()

    # -- the driver's interface ----------------------------------------------------------------------------
    @property
    def first(self) -> bool:
        return self.stage in self.FIRST

    @property
    def done(self) -> bool:
        return self.stage == "done" or self.broken is not None

    @property
    def it(self) -> int:
        return 0 if self.s is None else int(self.s.nit)

    @property
    def book(self) -> Counts:
        return Counts(0 if self.s is None else int(self.s.nfev))

    def ask(self) -> Any:
        if self.done:
            return None
        if self.asked is None:
            self.busy = True
            self.asked = self.points(fresh=True)
            self.busy = False
        return self.asked

    def check(self, e: Any) -> Any:
        if self.asked is None:
            raise RuntimeError("tell before ask: ask for points first")
        if hasattr(e, "requires_grad") and e.requires_grad:
            e = e.detach()
        e = self.validate(e, self.asked)
        return e.copy() if isinstance(e, np.ndarray) else e.clone()

    def tell(self, e: Any) -> None:
        if self.asked is None:
            raise RuntimeError("tell before ask: ask for points first")
        self.busy = True
        self.asked = None
        self.absorb(e)
        self.busy = False

    def stop_all(self, status: Status) -> None:
        """End the loop with ``status``; an interrupt or a failed objective keeps the asked points (a checkpoint
        written now resumes by evaluating them)."""
        self.broken = status
        if not status.broke_off:
            self.asked = None

    def hold_back(self, n: int) -> None:
        if self.rules.max_evals is not None:
            self.rules = dataclasses.replace(self.rules, max_evals=max(0, self.rules.max_evals - n))

    def result(self, intermediate: bool = False) -> OptimizeResult:
        status = self.broken if self.broken is not None else self.status
        return self.report(None, status)

    # -- what a subclass says ------------------------------------------------------------------------------
    def points(self, fresh: bool) -> Any:  # pragma: no cover - abstract
        """The points the stage under way asks; ``fresh``: a new ask (it may draw and change the state), else the
        same points again from the state (a restored checkpoint)."""
        raise NotImplementedError

    def validate(self, e: Any, asked: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def absorb(self, e: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def report(self, values: Any, status: Status) -> OptimizeResult:  # pragma: no cover - abstract
        """The result with ``status``; ``values``: f at the reported point(s) when evaluated for it, else None."""
        raise NotImplementedError

    def step_done(self, now: OptimizeResult) -> bool:
        """Show ``now`` and ask the callback (its truthy return or StopIteration stops: ``CALLBACK``)."""
        if self.shown is not None:
            self.shown(now)
        if self.callback is not None and callback_stops(self.callback, now):
            self.status = Status.CALLBACK
            return True
        return False

    # -- checkpoints -----------------------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        return identity(self.METHOD, self.problem, self.params, self.sampler, **self.identity_more)

    def snapshot(self, arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
        if self.s is None or self.first:
            return None  # nothing worth resuming before the first full step
        numbers = {}
        for f in dataclasses.fields(self.s):
            v = getattr(self.s, f.name)
            if isinstance(v, (bool, int, float)) or v is None:
                numbers[f.name] = v
            else:
                put(arrays, f"state.{f.name}", v)
        return {"fingerprint": self.identity(), "stage": self.stage, "pending": self.asked is not None,
                "status": int(self.status), "numbers": numbers, "arrays": sorted(
                    f.name for f in dataclasses.fields(self.s) if f.name not in numbers), **self.extra_header()}

    def members(self, header: dict[str, Any]) -> set[str]:
        return {f"state.{name}" for name in header.get("arrays") or [] if isinstance(name, str)}

    def restore(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        check_identity(header["fingerprint"], self.identity())
        stage = header["stage"]
        if stage not in self.STAGES or stage in self.FIRST:
            raise CheckpointError(f"unknown stage {stage!r}")
        to = converter(self.problem)
        fields = {f.name for f in dataclasses.fields(self.state_type)}
        numbers, named = header["numbers"], header["arrays"]
        if not isinstance(numbers, dict) or set(numbers) | set(named) != fields or set(numbers) & set(named):
            raise CheckpointError(f"the state's fields are not those of {self.state_type.__name__}")
        if not all(v is None or isinstance(v, (bool, int, float)) for v in numbers.values()):
            raise CheckpointError("the state's numbers are not all numbers")
        values = {k: to(arrays[f"state.{k}"], float_=arrays[f"state.{k}"].dtype.kind == "f") for k in named}
        for k, v in values.items():
            a = np.asarray(to_numpy(v))
            if a.dtype.kind == "f" and np.isnan(a).any():
                raise CheckpointError(f"state.{k}: NaN in a checkpointed state")
        s = self.state_type(**numbers, **values)
        if not isinstance(s.nfev, int) or not isinstance(s.nit, int) or s.nfev < 0 or s.nit < 0:
            raise CheckpointError("negative or non-integer counts")
        self.check_state(s)
        self.s, self.stage = s, stage
        self.status = Status(int(header["status"]))
        self.restore_extra(header)
        if self.status.resumable or self.status is Status.RUNNING:
            self.status = Status.RUNNING  # the resuming call's budgets apply from here on
            self.stage = self.resume_stage(stage)
        else:
            self.stage = self.settled_stage(stage)
        if header["pending"] and self.stage == stage:
            self.asked = self.points(fresh=False)

    def extra_header(self) -> dict[str, Any]:
        return {}

    def restore_extra(self, header: dict[str, Any]) -> None:
        pass

    def check_state(self, s: Any) -> None:
        """Refuse a restored state that the loop's own steps could not have made (shapes, counts)."""

    def resume_stage(self, stage: str) -> str:
        """Where a loop that stopped for a budget, the user or an interrupt continues."""
        return stage

    def settled_stage(self, stage: str) -> str:
        """Where a loop that ended for good (converged, diverged, nothing finite) resumes: its report."""
        return stage
