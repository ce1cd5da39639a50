"""Ask/tell: drive any method yourself, evaluating the points wherever and however you like.

>>> import numpy as np, cbopt
>>> opt = cbopt.Optimizer(bounds=[(-3, 3)] * 2, rng=0, max_evals=2000)
>>> while not opt.stop():
...     X = opt.ask()                          # (n, d) points (n_runs=1) or (M_active, n, d)
...     opt.tell(X, ((X - 1) ** 2).sum(-1))     # energies of exactly those points
>>> res = opt.result()
>>> bool(np.abs(res.x - 1).max() < 1e-3), res.reason
(True, 'MAX_EVALS')

The same kernels, driver and stopping rules as :func:`cbopt.minimize`: the same seed gives the same
trajectory either way. Missing evaluations: tell NaN for them; they count as evaluations, get weight 0
and are reported in ``nfev_nonfinite`` (the non-finite policy). Tell the whole batch you were asked, once.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._backend import on_backend_of, to_numpy
from .driver import read_only
from .minimize import make_loop, prepare
from .result import OptimizeResult
from .stopping import Stop
from .validation import number, writable_file


def _unchanged(x: Any, given: Any, asked: Any) -> None:
    """Refuse a tell of other points than those asked (``given``: what the user got of ``asked``)."""
    untouched = x is given and isinstance(x, np.ndarray) and not x.flags.writeable
    same = untouched or (tuple(getattr(x, "shape", ())) == tuple(asked.shape)
                         and np.array_equal(to_numpy(x), to_numpy(asked)))
    if not same:
        raise ValueError(f"tell the points you were asked (shape {tuple(asked.shape)}), unchanged")


class Optimizer:
    """Ask/tell front door; the keywords are those of :func:`cbopt.minimize` (no objective, no callback)."""

    def __init__(
        self, method: str = "auto", x0: Any = None, *, bounds: Any = None, constraints: Any = None,
        integrality: Any = None, options: dict[str, Any] | None = None, rng: Any = None,
        max_evals: float | None = None, target: float | None = None, stop: Stop | None = None,
        restarts: Any = "auto", n_runs: int = 1, backend: Any = None, history: bool | str = False,
    ):
        self._setup = prepare(
            x0=x0, bounds=bounds, method=method, options=options, rng=rng, max_evals=max_evals, target=target,
            stop=stop, n_runs=n_runs, history=history, backend=backend, constraints=constraints,
            integrality=integrality, restarts=restarts,
        )
        self.run = make_loop(self._setup, history=history)  # one Run, or a restart Sequence (same interface)
        self._asked: Any = None
        self._given: Any = None
        self._single = self._setup.problem.n_runs == 1
        self._started = False  # something told (or loaded): there is a state to save
        self._candidates: Any = None  # (candidates, points) asked by ask_candidates
        self._assessed: Any = None  # (candidates, values) told by tell_candidates

    def ask(self) -> Any:
        """The next points to evaluate: ``(n, d)`` for one run, ``(M_active, n, d)`` for several."""
        if self._asked is not None:
            raise RuntimeError("ask twice without tell: tell the energies of the points already asked")
        xa = self.run.ask()
        if xa is None:
            raise RuntimeError(f"the optimizer has stopped: {self.stop()}")
        self._asked = xa
        if self._setup.integers is not None:  # the user evaluates admissible points only
            xa = self._setup.integers(xa)
        self._points = xa
        self._given = read_only(xa[0] if self._single else xa)  # the user's: a read-only view, or a copy
        return self._given

    def tell(self, x: Any, energies: Any) -> None:
        """Report ``energies`` for the points ``x`` returned by the last :meth:`ask` (NaN marks a failed one)."""
        if self._asked is None:
            raise RuntimeError("tell before ask: ask for points first")
        asked = self._points[0] if self._single else self._points  # cbopt's own, never handed out
        if isinstance(x, (list, tuple)):  # the points one by one, as a list of arrays (or tensors)
            try:
                x = np.asarray([np.asarray(to_numpy(p), dtype=float) for p in x])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"tell: x must be the asked points, as one array or a list of them ({exc})") from None
        _unchanged(x, self._given, asked)
        e = energies
        if self._single:
            e = on_backend_of(e, self._asked)[None]
        e = self._setup.cons.penalise(e, self._points)
        e = self.run.check(e)  # ValueError/TypeError before anything changes
        self._asked = None
        self.run.tell(e)
        self._started = True

    def stop(self) -> dict[str, str]:
        """``{}`` while running; else the rule(s) that stopped the runs, ``{reason: message}``."""
        if self._asked is None and not self.run.done:
            self.run.ask()  # prefetch (cached until told): a step that would exceed the budget ends the runs here
        if not self.run.done:
            return {}
        res = self.run.result()
        if res.get("runs"):
            return {r.reason: r.message for r in res.runs}
        return {res.reason: res.message}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the optimizer's state to ``path``, in the checkpoint format of ``minimize(checkpoint=...)``
        (plain arrays, atomic, never pickled). Points asked but not yet told are kept: after :meth:`load` they
        are asked again. An optimizer also pickles (``pickle.dumps(opt)``), for a copy in memory."""
        from . import checkpoint

        writable_file("path", path)
        if self._started is False:
            raise ValueError("save: nothing to save before the first tell")
        checkpoint.save(path, self.run)

    def load(self, path: str | os.PathLike[str]) -> Optimizer:
        """Continue from ``path`` (written by :meth:`save`) in this freshly built optimizer, which must have the
        arguments of the one that saved it (method, options, bounds, seed...: otherwise
        :class:`~cbopt.checkpoint.CheckpointError`). Returns ``self``."""
        from . import checkpoint

        if self._started or self._asked is not None:
            raise RuntimeError("load into a fresh Optimizer (built with the same arguments), before any ask/tell")
        checkpoint.load(path, self.run)
        self._started = True
        return self

    def result(self) -> OptimizeResult:
        """The result so far (best point, status, counts), as :func:`cbopt.minimize` returns it; after
        :meth:`tell_candidates`, the result under noise (the candidate chosen as :func:`cbopt.minimize` does).
        On a noisy objective ``fun`` is otherwise the lowest value told, a lucky draw: see :meth:`ask_candidates`
        (the optimizer cannot re-evaluate, so it cannot find out by itself)."""
        res = self.run.result()
        self._setup.settle(res)
        if self._assessed is not None:
            from .noisy import report

            cands, values = self._assessed
            report(res, cands, values, None, self._setup.rules.target)
            res.nfev = int(res.nfev) + int(res.reevaluations)
        return res

    def ask_candidates(self, k: int = 30) -> Any:
        """On a noisy objective (:mod:`cbopt.noisy`): the candidates for ``res.x`` (the best draw, the best run's
        consensus, the last run's consensus), each ``k`` times, ``(c, k, d)``, to evaluate and give to
        :meth:`tell_candidates`. ask/tell re-evaluates nothing itself: this is how it learns what the lowest
        value told (a lucky draw) cannot say."""
        from .noisy import candidates, points

        number("k", k, at_least=2, integer=True)
        if not self._started:
            raise RuntimeError("ask_candidates: nothing has been told yet")
        if self._asked is not None:
            raise RuntimeError("ask_candidates: tell the energies of the points already asked first")
        res = self.run.result()
        if res.get("x") is None:
            raise RuntimeError("ask_candidates: no finite value has been told yet")
        cands = candidates(res, getattr(self.run, "last", None))
        X = points(cands, int(k))
        self._candidates = (cands, X)
        return read_only(X)

    def tell_candidates(self, X: Any, energies: Any) -> OptimizeResult:
        """The values of the points of :meth:`ask_candidates` (same shape ``(c, k)``); returns :meth:`result`,
        which from now on reports the candidate chosen as :func:`cbopt.minimize` does (``res.fun``, ``res.fun_sem``,
        ``res.luckiest``, ``res.noisy``)."""
        if self._candidates is None:
            raise RuntimeError("tell_candidates before ask_candidates")
        cands, asked = self._candidates
        if tuple(getattr(X, "shape", ())) != tuple(asked.shape) or not np.array_equal(to_numpy(X), to_numpy(asked)):
            raise ValueError(f"tell_candidates: the points you were asked (shape {tuple(asked.shape)}), unchanged")
        e = np.asarray(to_numpy(on_backend_of(energies, asked)), dtype=float)
        if e.shape != tuple(asked.shape[:-1]):
            raise ValueError(f"tell_candidates: expected energies of shape {tuple(asked.shape[:-1])}, got {e.shape}")
        self._assessed = (cands, e)
        self._candidates = None
        return self.result()


class _StagedOptimizer:
    """Ask/tell over the loop of another problem kind (:mod:`cbopt.staged`): the same loop, stages and random
    stream as its front door, so the same seed gives the same trajectory either way."""

    def __init__(self, loop: Any):
        self.run = loop
        self._asked: Any = None
        self._given: Any = None

    def _show(self, z: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_points(self, points: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def ask(self) -> Any:
        if self._asked is not None:
            raise RuntimeError("ask twice without tell: tell the values of the points already asked")
        z = self.run.ask()
        if z is None:
            raise RuntimeError(f"the optimizer has stopped: {self.stop()}")
        self._asked = z
        self._given = self._show(z)
        return self._given

    def _tell(self, points: Any, values: Any) -> None:
        if self._asked is None:
            raise RuntimeError("tell before ask: ask for points first")
        self._check_points(points)
        e = self.run.check(on_backend_of(values, self._asked))  # ValueError/TypeError before anything changes
        self._asked = None
        self.run.tell(e)

    def stop(self) -> dict[str, str]:
        """``{}`` while running; else ``{reason: message}``."""
        if self._asked is None and not self.run.done:
            self.run.ask()  # prefetch (cached until told): a budget that is spent ends the loop here
        if not self.run.done:
            return {}
        res = self.run.result()
        return {res.reason: res.message}

    def result(self) -> OptimizeResult:
        """The result so far, as the front door returns it."""
        return self.run.result()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state to ``path`` in the checkpoint format (points asked and not told are asked again after
        :meth:`load`)."""
        from . import checkpoint

        writable_file("path", path)
        if self.run.first:
            raise ValueError("save: nothing to save before the first step has been told")
        checkpoint.save(path, self.run)

    def load(self, path: str | os.PathLike[str]) -> _StagedOptimizer:
        """Continue from ``path`` in this freshly built optimizer (same arguments as the one that saved it)."""
        from . import checkpoint

        if not self.run.first or self._asked is not None or self.run.s is not None:
            raise RuntimeError("load into a fresh optimizer (built with the same arguments), before any ask/tell")
        checkpoint.load(path, self.run)
        return self


class MinimaxOptimizer(_StagedOptimizer):
    """Ask/tell for :func:`cbopt.minimax`; the keywords are its own (no objective, callback or progress).

    >>> import numpy as np, cbopt
    >>> opt = cbopt.MinimaxOptimizer([(-2, 2)] * 2, [(-2, 2)] * 2, rng=0, max_evals=20_000)
    >>> while not opt.stop():
    ...     X, Y = opt.ask()                          # pairs (n, dx), (n, dy)
    ...     opt.tell((X, Y), (X * X).sum(-1) + (X * Y).sum(-1) - (Y * Y).sum(-1))
    >>> res = opt.result()
    >>> bool(np.abs(res.x).max() < 1e-3 and np.abs(res.y).max() < 1e-3)
    True
    """

    def __init__(self, x_bounds: Any = None, y_bounds: Any = None, *, x0: Any = None, y0: Any = None,
                 options: dict[str, Any] | None = None, rng: Any = None, max_evals: int | None = None,
                 stop: Stop | None = None, init_scale: Any = None, backend: Any = None, history: bool = False):
        from .minimax import saddle_loop

        super().__init__(saddle_loop(x_bounds, y_bounds, x0=x0, y0=y0, options=options, rng=rng,
                                     max_evals=max_evals, stop=stop, init_scale=init_scale, backend=backend,
                                     history=history))

    def _show(self, z: Any) -> Any:
        dx = self.run.px.dim
        seen = read_only(z[0])
        return seen[:, :dx], seen[:, dx:]

    def _check_points(self, points: Any) -> None:
        if not isinstance(points, tuple) or len(points) != 2:
            raise ValueError("tell: give the asked pairs back as (X, Y)")
        dx = self.run.px.dim
        for p, g, a in zip(points, self._given, (self._asked[0, :, :dx], self._asked[0, :, dx:]), strict=True):
            _unchanged(p, g, a)

    def tell(self, points: tuple[Any, Any], values: Any) -> None:
        """Report ``f(X, Y)`` (n,) for the pairs ``(X, Y)`` of the last :meth:`ask` (NaN marks a failed one)."""
        self._tell(points, values[None] if getattr(values, "ndim", 1) == 1 else values)


class ParetoOptimizer(_StagedOptimizer):
    """Ask/tell for :func:`cbopt.multiobjective`; the keywords are its own (no objective, callback or progress).
    :meth:`ask` returns the points ``X`` (N, d); :meth:`tell` takes their values ``F`` (N, K)."""

    def __init__(self, bounds: Any = None, *, x0: Any = None, options: dict[str, Any] | None = None,
                 rng: Any = None, max_evals: int | None = None, stop: Stop | None = None, init_scale: Any = None,
                 backend: Any = None):
        from .multiobjective import pareto_loop

        super().__init__(pareto_loop(bounds, x0=x0, options=options, rng=rng, max_evals=max_evals, stop=stop,
                                     init_scale=init_scale, backend=backend))

    def _show(self, z: Any) -> Any:
        return read_only(z)

    def _check_points(self, points: Any) -> None:
        _unchanged(points, self._given, self._asked)

    def tell(self, x: Any, values: Any) -> None:
        """Report the values ``F`` (N, K) of the points ``x`` of the last :meth:`ask` (NaN marks a failed one)."""
        self._tell(x, values)
