"""The one driver loop: evaluation, counting, the non-finite policy, best-so-far, termination,
callbacks and history, for every method and for ``M`` independent runs at once.
"""

from __future__ import annotations

import time
from typing import Any
from collections.abc import Callable

import numpy as np

from ._backend import namespace
from ._backend import to_numpy as _np
from .methods._base import MethodSpec, Problem
from .numerics import sanitize
from .objectives._wrap import check_energy, validate_energy
from .result import OptimizeResult
from .stopping import MESSAGES, Book, Probe, Status, StopRules, check


class ObjectiveError(RuntimeError):
    """The objective raised; ``.result`` holds the best-so-far result, ``__cause__`` the original error."""

    def __init__(self, message: str, result: OptimizeResult):
        super().__init__(message)
        self.result = result


class _Evaluator:
    """Evaluates the active runs, applies the non-finite policy, counts, and tracks the best point."""

    def __init__(self, fun: Callable[[Any], Any], book: Book):
        self.fun = fun
        self.book = book
        self.failure: BaseException | None = None

    def __call__(self, x: Any, first: bool = False) -> Any:
        book = self.book
        active = book.active
        all_active = bool(active.all())
        xa = x if all_active else x[_mask(active, x)]
        try:
            e = self.fun(xa)
        except Exception as exc:
            self.failure = exc
            raise
        if first:
            e = validate_energy(e, xa)  # a plain ValueError/TypeError before iterating
        else:
            try:
                e = check_energy(e, xa)
            except (TypeError, ValueError) as exc:  # the objective misbehaved mid-run: keep the result
                self.failure = exc
                raise
        e, bad = sanitize(e)
        n = xa.shape[1]
        book.nfev[active] += n
        count = bad.sum(-1)  # stays on the device: no host sync
        if all_active:
            book.n_nonfinite = book.n_nonfinite + count
        else:
            book.n_nonfinite[_mask(active, count)] += count
        self._track_best(xa, e, active, all_active)
        if all_active:
            return e
        full = namespace(e).full(x.shape[:2], float("inf"), dtype=e.dtype)
        full[_mask(active, e)] = e
        return full

    def _track_best(self, xa: Any, e: Any, active: np.ndarray, all_active: bool) -> None:
        book = self.book
        i = e.argmin(-1)
        rows = namespace(e).arange(e.shape[0])
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


def run(
    spec: MethodSpec,
    params: Any,
    problem: Problem,
    fun: Callable[[Any], Any],
    sampler: Any,
    rules: StopRules,
    callback: Callable[[OptimizeResult], Any] | None = None,
    history: bool | str = False,
    on_error: str = "raise",
) -> OptimizeResult:
    """Run ``spec`` until every run has stopped; see :func:`cbopt.minimize` for the arguments."""
    m = problem.n_runs
    t0 = time.perf_counter()
    book = Book(
        nfev=np.zeros(m, dtype=np.int64),
        nit=np.zeros(m, dtype=np.int64),
        n_nonfinite=None,
        best_x=None,
        best_f=None,
        status=np.full(m, Status.RUNNING, dtype=np.int64),
        improved_at=np.zeros(m, dtype=np.int64),
        ref_f=None,
        ref_c=None,
        ref_c_at=np.zeros(m, dtype=np.int64),
        spread0=None,
        t0=t0,
    )
    evaluate = _Evaluator(fun, book)
    record = _History(history) if history else None
    state = None
    error: BaseException | None = None
    try:
        x0 = spec.init_population(params, problem, sampler)
        xp = namespace(x0)
        book.best_x = xp.zeros_like(x0[:, 0])
        book.best_f = xp.full_like(x0[:, 0, 0], float("inf"))
        book.n_nonfinite = xp.zeros_like(book.best_f, dtype=xp.int64)
        e0 = evaluate(x0, first=True)
        state = spec.init(params, problem, x0, e0, sampler)
        book.ref_c = state.consensus
        probe = _probe(rules, book, state)
        book.ref_f = probe.best_f.copy()
        book.spread0 = np.where(probe.spread > 0, probe.spread, 1.0)
        _update_status(rules, book, probe)
        if record is not None:
            record.add(book, state)
        it = 0
        while book.active.any():
            it += 1
            x, aux = spec.ask(state, params, problem, sampler, it)
            over = book.active & (book.nfev + x.shape[1] > _budget(rules))
            book.status[over] = Status.MAX_EVALS
            if not book.active.any():
                break
            e = evaluate(x)
            new, _info = spec.tell(state, params, problem, x, e, aux, it, sampler)
            active = book.active
            old, state = state, (new if active.all() else _select(active, new, state))
            if old.x is not state.x:  # let the sampler reuse the old swarm's memory if nothing else holds it
                x_old = old.x
                del old, new
                sampler.recycle(x_old, refs=1)
                del x_old
            book.nit[active] += 1
            probe = _probe(rules, book, state)
            _track_progress(rules, book, state, active, probe)
            _update_status(rules, book, probe)
            if record is not None:
                record.add(book, state)
            if callback is not None:
                try:
                    callback(_result(spec, params, problem, book, state, record, t0, intermediate=True))
                except StopIteration:
                    book.status[book.active] = Status.CALLBACK
    except KeyboardInterrupt:
        book.status[book.active] = Status.INTERRUPTED
        if state is None:
            raise
    except Exception as exc:
        if evaluate.failure is not exc:
            raise
        error = exc
        book.status[book.active] = Status.OBJECTIVE_ERROR
    res = _result(spec, params, problem, book, state, record, t0)
    if error is not None:
        res.exception = error
        if on_error == "raise":
            where = f"after {int(book.nfev.sum())} evaluations"
            best = f"best so far f={res.fun!r}" if res.get("fun") is not None else "no point was evaluated"
            raise ObjectiveError(
                f"the objective raised {type(error).__name__}: {error} ({where}; {best}); "
                "the partial result is in this exception's .result",
                res,
            ) from error
    return res


def _budget(rules: StopRules) -> float:
    return np.inf if rules.max_evals is None else rules.max_evals


def _copy(a: Any) -> Any:
    return a.copy() if isinstance(a, np.ndarray) else a.clone()


def _probe(rules: StopRules, book: Book, state: Any) -> Probe:
    """Everything the stopping rules read, computed on the run's device and copied to the host at once."""
    xp = namespace(state.energy)
    dtype = book.best_f.dtype
    finite = (state.energy < float("inf")).any(-1)
    cols = [book.best_f, state.spread, finite.astype(dtype) if xp is np else finite.to(dtype)]
    if rules.ctol is not None:
        c = state.consensus
        dc = c - book.ref_c
        cols += [(dc * dc).sum(-1) ** 0.5, (c * c).sum(-1) ** 0.5]
    host = _np(xp.stack(cols))
    extra = (host[3], host[4]) if rules.ctol is not None else (None, None)
    return Probe(host[0], host[1], host[2] > 0, *extra)


def _track_progress(rules: StopRules, book: Book, state: Any, active: np.ndarray, probe: Probe) -> None:
    if rules.ftol is not None:
        best, ref = probe.best_f, book.ref_f
        improved = active & (best < ref - rules.ftol * (1 + np.abs(ref)))
        if improved.any():
            book.improved_at[improved] = book.nit[improved]
            book.ref_f = np.where(improved, best, ref)
    if rules.ctol is not None:
        moved = active & (probe.c_dist > rules.ctol * (1 + probe.c_norm))
        if moved.any():
            book.ref_c_at[moved] = book.nit[moved]
            book.ref_c = namespace(state.consensus).where(
                _mask(moved, state.consensus)[:, None], state.consensus, book.ref_c
            )


def _update_status(rules: StopRules, book: Book, probe: Probe) -> None:
    active = book.active
    if not active.any():
        return
    for status, fires in check(rules, book, probe, time.perf_counter()):
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
            message=MESSAGES[status], nit=0, nfev=0, nfev_nonfinite=0, method=spec.name, time=elapsed,
        )
    best_f = _np(book.best_f)
    best_x = book.best_x
    nonfinite = _np(book.n_nonfinite)
    spread = _np(state.spread) if state is not None else None
    runs = []
    for r in range(m):
        status = Status(int(book.status[r]))
        res = OptimizeResult(
            x=_copy(best_x[r]),
            fun=float(best_f[r]),
            success=status.success,
            status=int(status),
            reason=status.name,
            message=MESSAGES[status],
            nit=int(book.nit[r]),
            nfev=int(book.nfev[r]),
            nfev_nonfinite=int(nonfinite[r]),
        )
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
