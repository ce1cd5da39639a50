"""The one driver loop: evaluation, counting, the non-finite policy, best-so-far, termination,
callbacks and history, for every method and for ``M`` independent runs at once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from ._backend import Sampler, arange_like, cast, full_like_shape, is_torch, namespace
from ._backend import to_numpy as _np
from .checkpoint import CheckpointError, aux_names, check_identity, converter, get_aux, identity, put, put_aux
from .constraints import ConstraintError
from .methods._base import MethodSpec, Problem
from .numerics import sanitize
from .objectives._wrap import check_energy, validate_energy
from .result import OptimizeResult
from .stopping import BEATEN_WINDOW, Book, Probe, Status, Stop, check


class ObjectiveError(RuntimeError):
    """The objective raised; ``.result`` holds the best-so-far result, ``__cause__`` the original error."""

    def __init__(self, message: str, result: OptimizeResult):
        super().__init__(message)
        self.result = result


class EvaluatorError(RuntimeError):
    """The evaluator could not evaluate at all (a shut-down executor, a closed Dask client): not the
    objective's failure. ``.result`` holds the best-so-far result when the run had begun, else None."""

    def __init__(self, message: str, result: OptimizeResult | None = None):
        super().__init__(message)
        self.result = result


class _Ledger:
    """Selects the active runs' points, checks and absorbs their energies: the non-finite policy, the
    counts and the best point. The objective itself is called by whoever drives the loop."""

    def __init__(self, book: Book):
        self.book = book

    def points(self, x: Any) -> Any:
        """The points of the active runs (all of ``x`` when every run is active)."""
        active = self.book.active
        return x if active.all() else x[_mask(active, x)]

    def check(self, e: Any, xa: Any, first: bool) -> Any:
        """Validate the objective's output for ``xa`` (ValueError/TypeError with the reason)."""
        return validate_energy(e, xa) if first else check_energy(e, xa)

    def absorb(self, x: Any, xa: Any, e: Any) -> Any:
        """Apply the policy to checked energies ``e`` of ``xa``; returns energies for all of ``x`` (inactive: inf)."""
        book = self.book
        active = book.active
        all_active = bool(active.all())
        e, bad = sanitize(e)
        book.nfev[active] += xa.shape[1]
        count = bad.sum(-1)  # stays on the device: no host sync
        if all_active:
            book.n_nonfinite = book.n_nonfinite + count
        else:
            book.n_nonfinite[_mask(active, count)] += count
        self._track_best(xa, e, active, all_active)
        if all_active:
            return e
        full = full_like_shape(tuple(x.shape[:2]), float("inf"), e)  # on e's device
        full[_mask(active, e)] = e
        return full

    def _track_best(self, xa: Any, e: Any, active: np.ndarray, all_active: bool) -> None:
        book = self.book
        i = e.argmin(-1)
        rows = arange_like(e.shape[0], e)
        fb = e[rows, i]
        if all_active:
            better = fb < book.best_f
            book.best_f = namespace(fb).where(better, fb, book.best_f)
            book.best_x = namespace(fb).where(better[:, None], xa[rows, i], book.best_x)
            return
        m = _mask(active, e)
        cur = book.best_f[m]
        better = fb < cur
        book.best_f[m] = namespace(fb).where(better, fb, cur)
        book.best_x[m] = namespace(fb).where(better[:, None], xa[rows, i], book.best_x[m])


def _mask(active: np.ndarray, like: Any) -> Any:
    if isinstance(like, np.ndarray):
        return active
    return namespace(like).as_tensor(active, device=like.device)


def _select(active: np.ndarray, new: Any, old: Any) -> Any:
    """Keep the old state for runs that are no longer active (field-wise; arrays carry M first)."""
    fields = []
    for a, b in zip(new, old, strict=True):
        m = _mask(active, a).reshape((-1,) + (1,) * (a.ndim - 1))
        fields.append(namespace(a).where(m, a, b))
    return type(new)(*fields)


class Counts:
    """The bookkeeping callers read of a loop that keeps no per-run :class:`Book` (a restart sequence, a staged
    loop): its evaluations so far, as one run's ``nfev``."""

    def __init__(self, nfev: int):
        self.nfev = np.array([nfev])


class Loop(Protocol):
    """What :func:`drive_loop`, the ask/tell doors, :mod:`cbopt.checkpoint` and :mod:`cbopt.noisy` drive: one
    :class:`Run` (a population of M runs), a :class:`cbopt.sequence.Sequence` of runs, or a loop of another
    problem kind (:mod:`cbopt.staged`), alike."""

    sampler: Sampler
    #: a first batch that fails is diagnosed as a per-point objective (minimize's objectives, not the wings')
    PER_POINT_HINT: bool

    @property
    def first(self) -> bool: ...  # nothing has been told yet

    @property
    def done(self) -> bool: ...

    @property
    def busy(self) -> bool: ...  # inside ask/tell: no consistent state to save

    @property
    def it(self) -> int: ...

    @property
    def book(self) -> Any: ...  # the counts (``book.nfev``: evaluations per run)

    def ask(self) -> Any: ...  # the points to evaluate, or None when every run has stopped

    def check(self, e: Any) -> Any: ...  # the energies of the asked points, validated

    def tell(self, e: Any) -> None: ...

    def stop_all(self, status: Status) -> None: ...

    def hold_back(self, n: int) -> None: ...  # take n evaluations off the budget

    def result(self, intermediate: bool = False) -> OptimizeResult: ...

    # checkpoints (:mod:`cbopt.checkpoint` writes the file; what is in it, the loop says)
    KIND: str

    def snapshot(self, arrays: dict[str, np.ndarray]) -> dict[str, Any] | None: ...  # header part, arrays filled

    def members(self, header: dict[str, Any]) -> set[str]: ...  # the member names the header allows

    def restore(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None: ...


class Run:
    """One call's loop as explicit steps: :meth:`ask` the points to evaluate, :meth:`tell` their energies.

    :func:`drive` (and so :func:`cbopt.minimize`) and :class:`cbopt.Optimizer` drive the same object, so the
    same seed gives the same trajectory either way. The run's whole state lives in ``book``, ``state``,
    ``it`` and the sampler: :mod:`cbopt.checkpoint` saves and restores exactly those.
    """

    PER_POINT_HINT = True

    def __init__(self, spec: MethodSpec, params: Any, problem: Problem, sampler: Sampler, rules: Stop,
                 callback: Callable[[OptimizeResult], Any] | None = None, history: bool | str = False):
        m = problem.n_runs
        self.spec, self.params, self.problem, self.sampler, self.rules = spec, params, problem, sampler, rules
        self.callback = callback
        self.t0 = time.perf_counter()
        self.book = Book(
            nfev=np.zeros(m, dtype=np.int64), nit=np.zeros(m, dtype=np.int64), n_nonfinite=None, best_x=None,
            best_f=None, status=np.full(m, Status.RUNNING, dtype=np.int64), improved_at=np.zeros(m, dtype=np.int64),
            ref_f=None, ref_c=None, ref_c_at=np.zeros(m, dtype=np.int64), spread0=None, t0=self.t0,
        )
        self.ledger = _Ledger(self.book)
        self.record = _History(history) if history else None
        self.state: Any = None
        self.it = 0
        self._pending: tuple[Any, Any, Any] | None = None  # (x, aux, points asked) awaiting energies
        self.busy = False  # inside ask/tell: an interrupt now leaves no consistent state to checkpoint

    @property
    def first(self) -> bool:
        """True until the initial population has been told."""
        return self.state is None

    @property
    def done(self) -> bool:
        return self.state is not None and not self.book.active.any()

    def ask(self) -> Any:
        """The points to evaluate next, ``(M_active, n, d)``; None when every run has stopped."""
        if self.state is not None and not self.book.active.any():
            return None
        if self._pending is not None:
            if self.state is not None:  # asked before (e.g. restored): the budget may have changed since
                x = self._pending[0]
                over = self.book.active & (self.book.nfev + x.shape[1] > _budget(self.rules))
                if over.any():
                    self.book.status[over] = Status.MAX_EVALS
                    if not self.book.active.any():
                        return None
                    self._pending = (x, self._pending[1], self.ledger.points(x))
            return self._pending[2]
        self.busy = True
        xa = self._ask()
        self.busy = False
        return xa

    def _ask(self) -> Any:
        book = self.book
        if self.state is None:
            x, aux = self.spec.init_population(self.params, self.problem, self.sampler)
            xp = namespace(x)
            if book.best_f is None:
                book.best_x = xp.zeros_like(x[:, 0])
                book.best_f = xp.full_like(x[:, 0, 0], float("inf"))
                book.n_nonfinite = xp.zeros_like(book.best_f, dtype=xp.int64)
            self._pending = (x, aux, x)
            return x
        if not book.active.any():
            return None
        x, aux = self.spec.ask(self.state, self.params, self.problem, self.sampler, self.it + 1)
        over = book.active & (book.nfev + x.shape[1] > _budget(self.rules))
        book.status[over] = Status.MAX_EVALS
        # kept even when nothing is left to evaluate: a checkpoint then resumes with a larger budget exactly
        self._pending = (x, aux, self.ledger.points(x) if book.active.any() else x)
        if not book.active.any():
            return None
        return self._pending[2]

    @property
    def pending(self) -> tuple[Any, Any] | None:
        """``(x, aux)`` of the points asked and not yet told (all runs' points, M first), or None."""
        return None if self._pending is None else self._pending[:2]

    def restore_pending(self, x: Any, aux: Any) -> None:
        """Make ``x`` (with its ``aux``) the asked points again, as restored from a checkpoint."""
        self._pending = (x, aux, self.ledger.points(x))

    def check(self, e: Any) -> Any:
        """Validate the energies of the asked points (ValueError/TypeError with the reason); returns cbopt's own
        copy, detached from autograd (the caller may refill its buffer, and a graph is never kept alive)."""
        if self._pending is None:
            raise RuntimeError("tell before ask: ask for points first")
        if hasattr(e, "requires_grad") and e.requires_grad:
            e = e.detach()
        e = self.ledger.check(e, self._pending[2], self.first)
        return e.copy() if isinstance(e, np.ndarray) else e.clone()

    def tell(self, e: Any) -> None:
        """Advance with the (checked) energies of the asked points."""
        if self._pending is None:
            raise RuntimeError("tell before ask: ask for points first")
        self.busy = True
        self._tell(e)
        self.busy = False
        if self.callback is not None and self.it > 0:
            try:
                stop = self.callback(self.result(intermediate=True))
            except StopIteration:
                stop = True
            if asks_to_stop(stop):
                self.book.status[self.book.active] = Status.CALLBACK

    def _tell(self, e: Any) -> None:
        assert self._pending is not None
        x, aux, xa = self._pending
        self._pending = None
        book, rules = self.book, self.rules
        e = self.ledger.absorb(x, xa, e)
        if self.state is None:
            self.state = self.spec.init(self.params, self.problem, self.sampler, x, e, aux)
            book.ref_c = self.state.consensus
            probe = _probe(rules, book, self.state, self.spec, self.params)
            book.ref_f = probe.best_f.copy()
            book.spread0 = np.where(probe.spread > 0, probe.spread, 1.0)
            if rules.beaten_by is not None:
                book.recent_f = np.repeat(probe.best_f[:, None], BEATEN_WINDOW, axis=1)
            _update_status(rules, book, probe, self.spec)
            if self.record is not None:
                self.record.add(book, self.state)
            return
        self.it += 1
        new = self.spec.tell(self.state, self.params, self.problem, self.sampler, self.it, x, e, aux)
        del x, xa, e  # (the asked array may become the next noise buffer)
        active = book.active
        old, self.state = self.state, (new if active.all() else _select(active, new, self.state))
        if old.x is not self.state.x:  # let the sampler reuse the old swarm's memory if nothing else holds it
            x_old = old.x
            del old, new
            self.sampler.recycle(x_old, refs=1)
            del x_old
        book.nit[active] += 1
        probe = _probe(rules, book, self.state, self.spec, self.params)
        _track_progress(rules, book, self.state, active, probe)
        _update_status(rules, book, probe, self.spec)
        if book.recent_f is not None:
            book.recent_f[active, book.nit[active] % BEATEN_WINDOW] = probe.best_f[active]
        if self.record is not None:
            self.record.add(book, self.state)

    def hold_back(self, n: int) -> None:
        """Take ``n`` evaluations off the budget (for a noisy objective's final assessment, see
        :mod:`cbopt.noisy`)."""
        if self.rules.max_evals is not None:
            self.rules = dataclasses.replace(self.rules, max_evals=max(0, self.rules.max_evals - n))

    def stop_all(self, status: Status) -> None:
        """End every active run with ``status`` (objective error, interrupt, a user's stop). An interrupt or an
        objective error keeps the asked points, so that a checkpoint written now resumes by evaluating them."""
        if not status.broke_off:
            self._pending = None
        self.book.status[self.book.active] = status

    def result(self, intermediate: bool = False) -> OptimizeResult:
        return _result(self.spec, self.params, self.problem, self.book, self.state, self.record, self.t0,
                       intermediate=intermediate)

    # -- checkpoints (:mod:`cbopt.checkpoint` keeps the file format; what a run's state is, is the run's) --------
    KIND = "run"

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must share with the run that resumes it (:func:`cbopt.checkpoint.identity`)."""
        return identity(self.spec.name, self.problem, self.params, self.sampler)

    def snapshot(self, arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
        """Put the run's arrays in ``arrays``; returns the header's part, or None before anything was evaluated
        (nothing worth resuming)."""
        return None if self.state is None else self.part(arrays, "")

    def part(self, arrays: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
        """Put the run's arrays (state, book, asked points) in ``arrays`` under ``prefix``; returns its header
        part (a restart sequence keeps its current run's under ``run.``)."""
        if self.state is not None:
            for name, v in zip(self.state._fields, self.state, strict=True):
                put(arrays, f"{prefix}state.{name}", v)
            for name in Book.SAVED:
                if getattr(self.book, name) is not None:
                    put(arrays, f"{prefix}book.{name}", getattr(self.book, name))
        pending = None
        if self._pending is not None:
            x, aux = self._pending[:2]
            put(arrays, f"{prefix}pending.x", x)
            pending = {"aux": put_aux(aux, f"{prefix}pending.aux", arrays)}
        part: dict[str, Any] = {"fingerprint": self.identity(), "it": self.it, "pending": pending,
                                "has_state": self.state is not None}
        if self.state is not None:
            part.update(state_type=type(self.state).__name__, state_fields=list(self.state._fields))
        return part

    def members(self, part: dict[str, Any], prefix: str = "") -> set[str]:
        """The members a file may hold for this run, as its header ``part`` describes it."""
        names = {f"{prefix}state.{f}" for f in part.get("state_fields") or []}
        names |= {f"{prefix}book.{f}" for f in Book.SAVED} | {f"{prefix}pending.x"}
        return names | aux_names((part.get("pending") or {}).get("aux"), f"{prefix}pending.aux")

    def restore(self, part: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str = "") -> None:
        """Continue from a snapshot (``part``: its header part) in this freshly built run; the file is held to the
        run's identity and to what its own steps imply (:class:`~cbopt.checkpoint.CheckpointError` otherwise)."""
        check_identity(part["fingerprint"], self.identity())
        to = converter(self.problem)
        if part.get("has_state", True):
            self._restore_state(part, arrays, prefix, to)
        self.it = int(part["it"])
        pending = part.get("pending")
        if pending:
            x = to(arrays[f"{prefix}pending.x"], float_=True)
            aux = get_aux(pending.get("aux"), f"{prefix}pending.aux", arrays, to)
            if self.state is None:
                m, d = self.problem.n_runs, self.problem.dim
                self.book.best_x = full_like_shape((m, d), 0.0, x)
                self.book.best_f = full_like_shape((m,), float("inf"), x)
                self.book.n_nonfinite = cast(full_like_shape((m,), 0.0, x), namespace(x).int64)
            self._in_box("pending.x", x)
            self.restore_pending(x, aux)

    def _boxed(self) -> bool:
        """The method keeps every point it evaluates in the problem's box (reflection or clipping)."""
        params = self.params
        mode = getattr(params, "boundary", getattr(getattr(params, "move", None), "boundary", None))
        return self.problem.lo is not None and self.problem.project is None and mode in ("reflect", "clip")

    def _in_box(self, name: str, x: Any) -> None:
        """A method that keeps its points in the box never checkpoints one outside it: such a file was edited."""
        if not self._boxed():
            return
        a = np.asarray(_np(x), dtype=float)
        lo, hi = (np.asarray(_np(v), dtype=float) for v in (self.problem.lo, self.problem.hi))
        slack = 1e-9 * np.maximum(hi - lo, 1.0)
        if np.any(a < lo - slack) or np.any(a > hi + slack):
            raise CheckpointError(f"{name}: points outside the box, which this method never evaluates")

    def _counts_agree(self, book: Book) -> None:
        """A method's first population is ``initial_points`` (default ``n_particles``) and every step evaluates
        ``points_per_step`` (default ``n_particles``): a count of evaluations that does not follow from the count
        of steps was edited (a rewound ``nfev`` would silently extend the budget)."""
        size: Any = getattr(self.params, "n_particles", None)
        n: Any = getattr(self.params, "points_per_step", size)
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (size, n)):
            return  # a method of unknown batch: nothing to hold the counts to
        first = self.spec.initial_points if self.spec.initial_points is not None else int(size)
        expected = first + book.nit * int(n)
        if np.any(book.nfev != expected):
            r = int(np.argmax(book.nfev != expected))
            raise CheckpointError(f"book: {int(book.nfev[r])} evaluations do not follow from {int(book.nit[r])} "
                                  f"steps of {int(n)} points ({int(expected[r])}): counts edited")

    def _restore_state(self, part: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str, to: Any) -> None:
        m, d = self.problem.n_runs, self.problem.dim
        # the state: same type and fields as a fresh init of this method would build
        x0 = to(arrays[f"{prefix}state.x"], float_=True)
        if tuple(x0.shape[:1]) != (m,) or x0.shape[-1] != d:
            raise CheckpointError(f"state.x has shape {tuple(x0.shape)}, expected ({m}, N, {d})")
        fields = part["state_fields"]
        state_type: Any = self.spec.state
        if list(state_type._fields) != list(fields) or part["state_type"] != state_type.__name__:
            raise CheckpointError(f"the checkpoint holds a {part['state_type']} state, this method uses "
                                  f"{state_type.__name__}")
        values = [to(arrays[f"{prefix}state.{name}"], float_=arrays[f"{prefix}state.{name}"].dtype.kind == "f")
                  for name in fields]
        for name, v in zip(fields, values, strict=True):
            if v.shape[:1] != x0.shape[:1]:
                raise CheckpointError(f"state.{name} has shape {tuple(v.shape)}: its first axis must be the {m} runs")
        book = self.book
        for name in Book.SAVED:
            if name == "recent_f" and self.rules.beaten_by is None:
                continue  # kept only by runs with that rule
            a = arrays[f"{prefix}book.{name}"]
            if name == "recent_f":
                if a.ndim != 2 or a.shape[0] != m or a.dtype.kind != "f":
                    raise CheckpointError(f"book.recent_f: expected ({m}, W) floats, got {a.dtype} {a.shape}")
                book.recent_f = a.astype(np.float64)
                continue
            if name in ("nfev", "nit", "status", "improved_at", "ref_c_at"):
                if a.shape != (m,) or a.dtype.kind not in "iu":
                    raise CheckpointError(f"book.{name}: expected {m} integers, got {a.dtype} {a.shape}")
                setattr(book, name, a.astype(np.int64))
            elif name in ("ref_f", "spread0"):
                setattr(book, name, a.astype(np.float64))
            else:
                setattr(book, name, to(a, float_=a.dtype.kind == "f"))
        if np.any(book.nfev < 0) or np.any(book.nit < 0) or \
                not np.all(np.isin(book.status, [int(s) for s in Status])):
            raise CheckpointError("book: negative counts or unknown status codes")
        if np.any(book.nfev >= 2**53) or np.any(book.nit > book.nfev):
            raise CheckpointError("book: implausible counts (nfev beyond 2**53, or more iterations than evaluations)")
        self._counts_agree(book)
        best = np.asarray(_np(book.best_f), dtype=float)
        if best.shape != (m,) or np.any(np.isnan(best)) or np.any(best == -np.inf):
            raise CheckpointError("book.best_f: must hold one value per run, none NaN or -inf")
        if "energy" in fields:  # the best-so-far is the least of every evaluated energy, the current ones included
            energy = np.asarray(_np(values[fields.index("energy")]), dtype=float).reshape(m, -1)
            if energy.shape[1] and np.any(best > energy.min(axis=1)):
                raise CheckpointError("book.best_f: above an energy the state holds, which it never is")
        self._in_box("state.x", x0)
        if book.best_x is not None:
            found = np.isfinite(best)  # a run with nothing finite yet keeps a placeholder best_x
            self._in_box("book.best_x", np.asarray(_np(book.best_x))[found])
        for name, v in zip(fields, values, strict=True):
            a = np.asarray(_np(v))
            if a.dtype.kind == "f" and np.isnan(a).any():
                raise CheckpointError(f"state.{name}: NaN in a checkpointed state")
        # runs stopped by an interrupt, a failed objective, the user or a budget continue (re-evaluating the points
        # they were asked); the resuming call's budgets apply from here on. Converged, diverged... runs stay stopped.
        book.status[np.isin(book.status, [int(s) for s in Status if s.resumable])] = Status.RUNNING
        rules = self.rules
        if rules.max_iter is not None:
            book.status[(book.status == Status.RUNNING) & (book.nit >= rules.max_iter)] = Status.MAX_ITER
        if rules.max_evals is not None:
            book.status[(book.status == Status.RUNNING) & (book.nfev >= rules.max_evals)] = Status.MAX_EVALS
        self.state = state_type(*values)


def drive(
    spec: MethodSpec,
    params: Any,
    problem: Problem,
    fun: Callable[[Any], Any],
    sampler: Sampler,
    rules: Stop,
    callback: Callable[[OptimizeResult], Any] | None = None,
    history: bool | str = False,
    evaluate: Callable[[Callable[[Any], Any], Any], Any] | None = None,
) -> OptimizeResult:
    """Run ``spec`` until every run has stopped; see :func:`cbopt.minimize` for the arguments."""
    return drive_loop(Run(spec, params, problem, sampler, rules, callback, history), fun, evaluate=evaluate)


def drive_loop(
    r: Loop,
    fun: Callable[[Any], Any],
    after_step: Callable[[Loop], Any] | None = None,
    evaluate: Callable[[Callable[[Any], Any], Any], Any] | None = None,
) -> OptimizeResult:
    """The loop: ask, evaluate, tell until ``r`` (a :class:`Run`, or a restart sequence of runs, with the same
    interface; fresh or restored from a checkpoint) has stopped. ``after_step(r)`` is called after every told
    step (checkpoints); ``evaluate(fun, X)`` replaces the batched call ``fun(X)`` (see :mod:`cbopt.evaluators`).
    """
    error: BaseException | None = None
    try:
        while (xa := r.ask()) is not None:
            try:
                seen = read_only(xa)
                e = fun(seen) if evaluate is None else evaluate(fun, seen)
            except (ConstraintError, EvaluatorError) as exc:
                if r.first:
                    raise  # a constraint function or the evaluator failed: say so, not "the objective raised"
                error = exc
                break
            except Exception as exc:
                if r.first and evaluate is None and r.PER_POINT_HINT:
                    _per_point_hint(fun, seen, exc)
                error = exc
                break
            try:
                e = r.check(e)
            except (TypeError, ValueError) as exc:
                if r.first:
                    if evaluate is None and r.PER_POINT_HINT:
                        _per_point_hint(fun, seen, exc)
                    raise  # a plain error before iterating: the objective's contract is not met
                error = exc  # the objective misbehaved mid-run: keep the result
                break
            r.tell(e)
            if after_step is not None:
                after_step(r)
    except KeyboardInterrupt:
        if r.first:
            raise
        r.stop_all(Status.INTERRUPTED)
    if error is not None:
        r.stop_all(Status.OBJECTIVE_ERROR)
    res = r.result()
    if error is not None:
        res.exception = error
        where = f"after {int(r.book.nfev.sum())} evaluations"
        best = f"best so far f={res.fun!r}" if res.get("fun") is not None and np.isfinite(res.fun) \
            else "no point was evaluated"
        if isinstance(error, EvaluatorError):
            raise EvaluatorError(f"{error} ({where}; {best}); the partial result is in this exception's .result",
                                 res) from error
        wrote = isinstance(error, ValueError) and "read-only" in str(error)
        hint = " (the objective must not write into its input X: cbopt passes a read-only view; copy it first, " \
            "X = X.copy())" if wrote else ""
        raise ObjectiveError(
            f"the objective raised {type(error).__name__}: {error}{hint} ({where}; {best}); "
            "the partial result is in this exception's .result",
            res,
        ) from error
    return res


def read_only(x: Any) -> Any:
    """What the objective, a callback or an ask/tell user gets of the swarm: a read-only view of a numpy array
    (writing into it raises), a copy of a tensor (torch has no read-only tensors). Never the live array.

    The view stands on a read-only buffer, so neither ``X.flags.writeable = True`` nor writing into ``X.base``
    can reach the swarm (a plain view could be made writeable again)."""
    if isinstance(x, np.ndarray):
        try:
            return np.asarray(memoryview(x).toreadonly())  # type: ignore[arg-type]  # ndarray has the buffer protocol
        except (TypeError, ValueError):  # a dtype the buffer protocol does not carry: a read-only copy
            v = x.copy()
            v.flags.writeable = False
            return v
    return x.clone()


def callback_stops(callback: Callable[[Any], Any], res: OptimizeResult) -> bool:
    """Call a front door's ``callback`` with ``res``, its arrays read-only (:func:`read_only`): True when it
    asks to stop, by ``StopIteration`` or a truthy return (:func:`asks_to_stop`)."""
    shown = OptimizeResult({k: read_only(v) if isinstance(v, np.ndarray) or is_torch(v) else v
                            for k, v in res.items()})
    try:
        said = callback(shown)
    except StopIteration:
        return True
    return asks_to_stop(said)


def asks_to_stop(v: Any) -> bool:
    """A callback's return as one yes or no (scipy's rule: a truthy return stops; None and False go on). An
    array of several values is not one: say so, not numpy. Every front door's callback is read by this."""
    if v is None or v is False:
        return False
    if getattr(v, "ndim", 0) and getattr(v, "size", 1) != 1:
        raise TypeError(f"the callback returned an array of shape {tuple(v.shape)}: return True to stop, "
                        "False or None to go on")
    return bool(v)


def _per_point_hint(fun: Callable[[Any], Any], xa: Any, exc: BaseException) -> None:
    """The first batch failed: if ``fun`` takes one point and returns a number, say how to use it (one line).

    cbopt does not switch to point-by-point calls by itself: a batched objective is its fast path, and a silent
    fallback would hide a cost of one Python call per particle. The diagnosis costs one call on one point."""
    if getattr(fun, "per_point", False) or xa.ndim < 2 or xa.shape[-1] < 1:
        return
    try:
        v = fun(xa.reshape(-1, xa.shape[-1])[0])
        complex_ = v.is_complex() if hasattr(v, "is_complex") else np.iscomplexobj(v)  # real values only
        text = isinstance(v, (str, bytes)) or (isinstance(v, np.ndarray) and v.dtype.kind not in "biuf")
        scalar = getattr(v, "ndim", np.ndim(v)) == 0 and not complex_ and not text and float(v) == float(v)
    except Exception:
        return
    if scalar:
        raise TypeError(
            f"the objective looks like a per-point function f(x[d]) -> float (on a batch of shape {tuple(xa.shape)}: "
            f"{type(exc).__name__}: {str(exc).rstrip('.')}); wrap it: minimize(cbopt.vectorize(f), ...), or write "
            "it over the last axis (X[..., i])"
        ) from exc


def _budget(rules: Stop) -> float:
    return np.inf if rules.max_evals is None else rules.max_evals


def _copy(a: Any) -> Any:
    return a.copy() if isinstance(a, np.ndarray) else a.clone()


def _probe(rules: Stop, book: Book, state: Any, spec: MethodSpec, params: Any) -> Probe:
    """Everything the stopping rules read, computed on the run's device and copied to the host at once."""
    xp = namespace(state.energy)
    dtype = book.best_f.dtype

    def col(a: Any) -> Any:
        return cast(a, dtype)

    finite = (state.energy < float("inf")).any(-1)
    cols = [book.best_f, state.spread, col(finite)]
    if spec.stop is not None:
        cols.append(col(spec.stop(state, params)))
    if rules.ctol is not None:
        c = state.consensus
        dc = c - book.ref_c
        cols += [(dc * dc).sum(-1) ** 0.5, (c * c).sum(-1) ** 0.5]
    host = _np(xp.stack(cols))
    codes = host[3].astype(np.int64) if spec.stop is not None else None
    k = 3 + (codes is not None)
    if rules.ctol is None:
        return Probe(host[0], host[1], host[2] > 0, None, None, codes)
    return Probe(host[0], host[1], host[2] > 0, host[k], host[k + 1], codes)


def _track_progress(rules: Stop, book: Book, state: Any, active: np.ndarray, probe: Probe) -> None:
    if rules.ftol is not None:
        best, ref = probe.best_f, book.ref_f
        improved = active & (best < ref - rules.ftol * (1 + np.abs(ref)))
        if improved.any():
            book.improved_at[improved] = book.nit[improved]
            book.ref_f = np.where(improved, best, ref)
    if rules.ctol is not None:
        assert probe.c_dist is not None and probe.c_norm is not None  # measured whenever ctol is set
        moved = active & (probe.c_dist > rules.ctol * (1 + probe.c_norm))
        if moved.any():
            book.ref_c_at[moved] = book.nit[moved]
            book.ref_c = namespace(state.consensus).where(
                _mask(moved, state.consensus)[:, None], state.consensus, book.ref_c
            )


def _update_status(rules: Stop, book: Book, probe: Probe, spec: MethodSpec) -> None:
    active = book.active
    if not active.any():
        return
    found = check(rules, book, probe, time.perf_counter())
    if probe.codes is not None and probe.codes.any():  # the method's own criteria, right after the target
        own = [(Status[status], probe.codes == k) for k, (_, status) in enumerate(spec.criteria, start=1)]
        found = found[:1] + own + found[1:] if rules.target is not None else own + found
    for status, fires in found:
        hit = active & fires
        if hit.any():
            book.status[hit] = status
            active = active & ~hit
    if rules.max_evals is not None:
        book.status[active & (book.nfev >= rules.max_evals)] = Status.MAX_EVALS


class _History:
    """Per-iteration records: iteration, evaluations, best value, consensus, spread (and particles)."""

    def __init__(self, mode: bool | str):
        if mode not in (True, "particles"):
            raise ValueError(f"history: expected False, True or 'particles', got {mode!r}")
        self.particles = mode == "particles"
        self.rows: dict[str, list[Any]] = {}

    def add(self, book: Book, state: Any) -> None:
        row = {
            "nit": book.nit.copy(),
            "nfev": book.nfev.copy(),
            "best_f": _np(book.best_f).copy(),
            "consensus": _np(state.consensus).copy(),
            "spread": _np(state.spread).copy(),
        }
        for name in ("alpha", "sigma"):
            if name in state._fields:
                row[name] = _np(getattr(state, name)).copy()
        if self.particles:
            row["x"] = _np(state.x).copy()
            row["energy"] = _np(state.energy).copy()
        for k, v in row.items():
            self.rows.setdefault(k, []).append(v)

    def arrays(self, run: int | None = None) -> dict[str, np.ndarray]:
        out = {k: np.stack(v) for k, v in self.rows.items()}
        if run is not None:
            out = {k: v[:, run] for k, v in out.items()}
        return out


def _result(
    spec: MethodSpec,
    params: Any,
    problem: Problem,
    book: Book,
    state: Any,
    record: _History | None,
    t0: float,
    intermediate: bool = False,
) -> OptimizeResult:
    m = problem.n_runs
    elapsed = time.perf_counter() - t0
    if book.best_f is None:  # nothing was evaluated
        status = Status(int(book.status[0]))
        return OptimizeResult(
            x=None, fun=None, success=False, status=int(status), reason=status.name,
            message=status.message, nit=0, nfev=0, nfev_nonfinite=0, method=spec.name, time=elapsed,
        )
    best_f = _np(book.best_f)
    best_x = book.best_x
    nonfinite = _np(book.n_nonfinite)
    spread = _np(state.spread) if state is not None else np.full(m, np.nan)
    codes = _np(spec.stop(state, params)).astype(np.int64) if state is not None and spec.stop is not None else None
    runs = []
    for r in range(m):
        status = Status(int(book.status[r]))
        res = OptimizeResult(
            x=_copy(best_x[r]),
            fun=float(best_f[r]),
            success=status.success,
            status=int(status),
            reason=status.name,
            message=status.message,
            nit=int(book.nit[r]),
            nfev=int(book.nfev[r]),
            nfev_nonfinite=int(nonfinite[r]),
        )
        if codes is not None and codes[r] > 0 and status.name == spec.criteria[codes[r] - 1][1]:
            res.criterion = spec.criteria[codes[r] - 1][0]  # which of the method's own criteria ended it
        if state is not None:  # arrays stay on the run's backend and device
            res.population = _copy(state.x[r])
            res.energies = _copy(state.energy[r])
            res.consensus = _copy(state.consensus[r])
            res.spread = float(spread[r])
            if spec.post is not None and not intermediate:
                res.update(spec.post(state.x[r], state.energy[r], params))
        runs.append(res)
    finite = np.where(np.isfinite(best_f), best_f, np.inf)
    b = int(np.argmin(finite))
    out = OptimizeResult(runs[b])
    if not np.isfinite(best_f[b]):  # nothing finite was ever evaluated
        out.x = None
    out.method = spec.name
    out.params = params
    out.time = elapsed
    if m > 1:
        out.best_run = b
        out.nit = int(book.nit.max())
        out.nfev = int(book.nfev.sum())
        out.nfev_nonfinite = int(nonfinite.sum())
        out.runs = runs
    if record is not None and not intermediate:
        out.history = record.arrays(None if m > 1 else 0)
    return out
