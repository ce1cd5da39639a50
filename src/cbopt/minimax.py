"""Saddle points and min-max problems by consensus: CBO-SP, two swarms that watch each other.

For ``min_x max_y E(x, y)`` an x-swarm minimises ``E(., y_bar)`` and a y-swarm maximises ``E(x_bar, .)``,
each around its own consensus (``w = softmax(-alpha E)`` for x, ``softmax(+beta E)`` for y)::

    x_bar = sum_i x_i exp(-alpha E(x_i, y_bar)) / sum_j exp(-alpha E(x_j, y_bar))
    y_bar = sum_i y_i exp(+beta E(x_bar, y_i)) / sum_j exp(+beta E(x_bar, y_j))
    x_i <- x_i - lam dt (x_i - x_bar) + sigma sqrt(dt) D(x_i - x_bar) xi_i          (CBO's move)
    y_i <- y_i - lam dt (y_i - y_bar) + sigma sqrt(dt) D(y_i - y_bar) zeta_i

A step evaluates ``E(x_i, y_bar)`` for the x-particles, updates ``x_bar``, then evaluates ``E(x_bar, y_i)``
for the y-particles: ``2 N`` evaluations. Reference: Huang, Qiu, Riedl (2022), Consensus-based optimization
for saddle point problems, arXiv:2212.12334.

With a large alpha each consensus is close to a best response to the other swarm, so the method behaves
like best-response iteration where the swarms are wide. On quadratic games ``x^T A x / 2 + x^T B y -
y^T C y / 2`` it converged in every measured case with ``rho(C^-1 B^T A^-1 B)`` up to 1.25 and diverged at
1.33 (reported as ``DIVERGED``). Where the coupling equals the curvature it can also freeze before the
saddle: on ``|x|^2 + c x.y - |y|^2`` (d = 2 + 2, defaults) the error is below 1e-8 for c <= 1 and 0.1 to
0.35 for c = 2.

Example
-------
>>> import numpy as np, cbopt
>>> f = lambda x, y: (x * x).sum(-1) + (x * y).sum(-1) - (y * y).sum(-1)   # saddle at (0, 0)
>>> res = cbopt.minimax(f, x_bounds=[(-2, 2)] * 2, y_bounds=[(-2, 2)] * 2, rng=0)
>>> bool(np.abs(res.x).max() < 1e-3 and np.abs(res.y).max() < 1e-3)
True
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import Sampler, is_torch, namespace, repeat, run_backend, to_numpy
from .checkpoint import CheckpointError, as_checkpoint, box
from .evaluators import as_evaluator
from .methods._base import Boundary, Problem, apply_boundary, check_boundary, initial_population
from .methods.cbo import Move, move
from .minimize import check_init_scale, drive_call, scale_option, start_region, wing_inputs
from .noise import NoiseModel, get_noise
from .noisy import differ
from .numerics import consensus, sanitize, spread
from .objectives._wrap import real_values
from .progress import Progress
from .result import OptimizeResult
from .schedules import Schedule, as_schedule
from .staged import Staged
from .stopping import Status, Stop, announce_default_steps, as_stop, budget_status, keeps_only
from .validation import build_options, fits_in_memory, number

#: steps when no budget is given (T = 10 at the default dt = 0.01)
DEFAULT_STEPS = 1000


@dataclass(frozen=True)
class SaddleParams:
    """Hyper-parameters of CBO-SP (``options=`` of :func:`minimax`); both swarms share them."""

    n_particles: int = 500  # N per swarm
    dt: float = 0.05  # Δt
    lam: float = 1.0  # λ, drift towards each swarm's consensus
    sigma: float | Schedule = 2.0  # σ (σ sqrt(Δt) = 0.45: contracting almost surely, exploring)
    noise: str | NoiseModel = "anisotropic"  # "anisotropic" | "isotropic" | a noise model
    alpha: float | Schedule = 1e15  # α, inverse temperature of the x-consensus (minimising)
    beta: float | Schedule | None = None  # β, of the y-consensus (maximising); default: alpha
    boundary: Boundary = "reflect"  # box handling of both swarms (needs bounds)

    def resolved(self) -> tuple[Move, Move]:
        """The two swarms' moves (the x-swarm with alpha, the y-swarm with beta)."""
        n = number("n_particles", self.n_particles, at_least=2, integer=True)
        dt = number("dt", self.dt, above=0)
        lam = number("lam", self.lam, above=0)
        noise = get_noise(self.noise)
        check_boundary(self.boundary)
        sigma = as_schedule("sigma", self.sigma)
        beta = self.alpha if self.beta is None else self.beta
        x_move = Move(n, dt, lam, sigma, noise, as_schedule("alpha", self.alpha), None, "full", self.boundary, None)
        return x_move, dataclasses.replace(x_move, alpha=as_schedule("beta", beta))


def _problem(name: str, bounds: Any, start: Any, scale: Any, backend: Any) -> Problem:
    """One player's start region, by :func:`cbopt.minimize`'s rules (its argument names in the messages)."""
    lo, hi, c, dim = start_region(bounds, start, x_name=f"{name}0", bounds_name=f"{name}_bounds")
    s = check_init_scale(scale, dim, lo, hi)
    a = backend.asarray
    return Problem(dim, 1, a(lo), a(hi), a(c), s if isinstance(s, float) else a(s), backend.dtype)


#: evaluations of f at the consensus pair for the result: two, so that a noisy f is seen (and averaged)
REPORT = 2


class Pair:
    """``f(X, Y, *args)`` as an objective of the joint points ``Z = [X, Y]`` (..., dx + dy) that the loop asks
    (picklable when ``f`` is, so a process pool can evaluate it point by point)."""

    def __init__(self, f: Callable[..., Any], dx: int, args: tuple = ()):
        self.f, self.dx, self.args = f, dx, args

    def __call__(self, z: Any) -> Any:
        return self.f(z[..., : self.dx], z[..., self.dx:], *self.args)


def _joint(x: Any, y: Any) -> Any:
    """The joint points ``[x, y]`` of two batches that broadcast against each other: (1, n, dx + dy)."""
    xp = namespace(x)
    n = max(x.shape[-2], y.shape[-2])
    return xp.concatenate([xp.broadcast_to(x, (1, n, x.shape[-1])), xp.broadcast_to(y, (1, n, y.shape[-1]))], -1)


def minimax(
    f: Callable[[Any, Any], Any],
    x_bounds: Any = None,
    y_bounds: Any = None,
    *,
    x0: Any = None,
    y0: Any = None,
    options: dict[str, Any] | None = None,
    rng: Any = None,
    max_evals: int | None = None,
    stop: Stop | None = None,
    init_scale: Any = None,
    backend: Any = None,
    callback: Callable[[OptimizeResult], Any] | None = None,
    history: bool = False,
    args: tuple = (),
    progress: bool = False,
    checkpoint: Any = None,
    evaluator: Any = None,
) -> OptimizeResult:
    """Find a saddle point ``(x*, y*)`` of ``min_x max_y f(x, y)`` with CBO-SP.

    Parameters
    ----------
    f : batched ``f(X[..., dx], Y[..., dy]) -> E[...]`` (numpy or torch); X and Y have the same leading shape.
    x_bounds, y_bounds : boxes ``[(lo, hi), ...]`` for the two players; the swarms start uniformly in them
        (or from ``N(x0, init_scale^2 I)`` / ``N(y0, ...)`` when a start is given) and stay in them
        (``boundary="reflect"``).
    options : :class:`SaddleParams` fields: ``n_particles``, ``dt``, ``lam``, ``sigma``, ``noise``,
        ``alpha``, ``beta``, ``boundary``.
    max_evals, stop : the budget; ``stop`` honours ``max_iter``, ``max_evals``, ``max_time``, ``xtol`` (both
        swarms' median distance to their consensus below it: ``CONVERGED``) and ``divergence`` (either spread
        beyond that multiple of its start: ``DIVERGED``). Without any budget: 1000 steps.
    init_scale : the standard deviation of the start clouds (a number, or ``(sx, sy)``); also accepted as
        ``options={"init_scale": ...}``, as :func:`cbopt.minimize` spells it.
    backend : as in :func:`cbopt.minimize` (``"numpy"``, ``"torch"``, ``"cuda"``, ``cbopt.Torch(...)``); by
        default from the inputs.
    callback : ``callback(intermediate_result)`` after every step (its arrays read-only); a truthy return or
        ``StopIteration`` stops (status ``CALLBACK``), as for :func:`cbopt.minimize`.
    history : keep ``x_bar`` and ``y_bar`` of every step in ``res.history``.
    args : extra arguments, ``f(X, Y, *args)``, as ``minimize``'s.
    progress : show progress on stderr as :func:`cbopt.minimize` does (a bar over ``max_evals``, or a line);
        like a callback, it costs one evaluation of f at the consensus pair per step, counted in ``nfev``.
    checkpoint : as :func:`cbopt.minimize`'s (a path, or ``cbopt.Checkpoint(path, every, resume)``): the whole
        state of both swarms, resumed bit for bit (not with ``history``).
    evaluator : as :func:`cbopt.minimize`'s: evaluate point by point in parallel (``f(x, y)`` of one pair).

    Returns
    -------
    OptimizeResult with ``x``, ``y`` (the consensus points), ``fun = f(x, y)``, ``nit``, ``nfev``, ``status``,
    ``reason``, ``message``, ``success`` and, with ``history=True``, ``history["x"]``, ``history["y"]``.

    Raises
    ------
    cbopt.ObjectiveError
        When ``f`` raises after the start, with the result so far in ``.result`` (as :func:`cbopt.minimize`).
    """
    wing_inputs(args, progress)
    ckpt = as_checkpoint(checkpoint)
    if ckpt is not None and history:
        raise ValueError("checkpoint: not available with history (the history is not part of a checkpoint)")
    loop = saddle_loop(x_bounds, y_bounds, x0=x0, y0=y0, options=options, rng=rng, max_evals=max_evals, stop=stop,
                       init_scale=init_scale, backend=backend, callback=callback, progress=progress, history=history)
    ev = as_evaluator(evaluator)
    res = drive_call(loop, Pair(f, loop.px.dim, args), ckpt, ev, evaluator, loop.rules.max_time, who="cbopt.minimax")
    if loop.shown is not None:
        loop.shown.close(res)
    return res


def saddle_loop(x_bounds: Any = None, y_bounds: Any = None, *, x0: Any = None, y0: Any = None,
                options: dict[str, Any] | None = None, rng: Any = None, max_evals: int | None = None,
                stop: Stop | None = None, init_scale: Any = None, backend: Any = None,
                callback: Callable[[OptimizeResult], Any] | None = None, progress: bool = False,
                history: bool = False) -> SaddleLoop:
    """The checked arguments of :func:`minimax` (and of its ask/tell door, :class:`cbopt.MinimaxOptimizer`) as
    the loop the driver runs."""
    options, init_scale = scale_option(options, init_scale)
    params = build_options(SaddleParams, options, "minimax")
    # the result's f(x_bar, y_bar) is an evaluation too, and so is each callback's: both within the budget
    limit = _Limits(keeps_only(as_stop(stop).with_flat(max_evals=max_evals), _RULES, "minimax"),
                    report=REPORT + (callback is not None or progress))
    be, _ = run_backend(backend, x0, x_bounds, y0, y_bounds)
    if init_scale is None or np.ndim(init_scale) == 0:
        sx = sy = init_scale
    elif isinstance(init_scale, (tuple, list)) and len(init_scale) == 2:
        sx, sy = init_scale
    else:
        raise ValueError(f"init_scale: expected a number or a pair (sx, sy), one per player, got {init_scale!r}")
    px, py = _problem("x", x_bounds, x0, sx, be), _problem("y", y_bounds, y0, sy, be)
    n = params.resolved()[0].n_particles
    if limit.rules.max_evals is not None and limit.rules.max_evals < 4 * n + limit.report:
        raise ValueError(f"max_evals={limit.rules.max_evals}: one start and one step take "
                         f"{4 * n + limit.report} evaluations (2 N per step, and f at the consensus pair for the "
                         "result and each callback)")
    # two swarms, each with its moved copy, its noise and the f(x, y) pairs: checked before allocating
    fits_in_memory(8 * 6 * n * (px.dim + py.dim), "minimax", f" for its two swarms of {n} particles")
    shown = Progress(total=limit.rules.max_evals) if progress else None
    loop = SaddleLoop(params, px, py, be.sampler(rng), limit, callback, shown, history)
    announce_default_steps(limit.rules, DEFAULT_STEPS, 2 * n, "minimax")
    return loop


@dataclass(frozen=True)
class _Swarms:
    """Both swarms: particles, consensus points, temperatures and noise levels, counts; between the two halves
    of a step, the x-swarm's values (``ex``). Before the start is told, ``xc`` and ``yc`` are the swarms' means."""

    x: Any
    y: Any
    xc: Any
    yc: Any
    a: Any
    b: Any
    sx: Any
    sy: Any
    nfev: int
    nit: int
    any_finite: bool  # each swarm drew at least one finite value in the last step
    spread0: float = 1.0  # the larger spread after the start (the divergence rule's reference)
    ex: Any = None

    def spreads(self, sampler: Sampler) -> float:
        return max(float(to_numpy(spread(self.x, self.xc, sampler))[0]),
                   float(to_numpy(spread(self.y, self.yc, sampler))[0]))

    def finite(self) -> bool:
        return bool(np.all(np.isfinite(to_numpy(self.xc)))) and bool(np.all(np.isfinite(to_numpy(self.yc))))


class SaddleLoop(Staged):
    """CBO-SP as a loop of the driver. The stages of a step: ``"x"`` (move both swarms, evaluate the x-swarm
    against ``y_bar``: N points), ``"y"`` (the y-swarm against the new ``x_bar``: N points) and, with a callback
    or progress, ``"report"`` (f at the consensus pair: 1 point); the start is ``"start-x"``, ``"start-y"``; the
    end is ``"final"`` (f at the consensus pair, ``REPORT`` times), then ``"done"``."""

    KIND = "minimax"
    METHOD = "cbo-sp"
    FIRST = ("start-x", "start-y")
    STAGES = ("x", "y", "report", "final", "done")
    state_type = _Swarms

    def __init__(self, params: SaddleParams, px: Problem, py: Problem, sampler: Sampler, limit: _Limits,
                 callback: Callable[[OptimizeResult], Any] | None = None, shown: Any = None, history: bool = False):
        joint = dataclasses.replace(px, dim=px.dim + py.dim)
        super().__init__(joint, params, sampler, limit.rules, callback, shown, players=[px.dim, py.dim],
                         bounds=[box(px), box(py)])
        self.mx, self.my = params.resolved()
        self.px, self.py, self.limit = px, py, limit
        self.rec: dict[str, list[Any]] | None = {"x": [], "y": []} if history else None
        self.final: Any = None  # f at the consensus pair, REPORT values

    def points(self, fresh: bool) -> Any:
        st = self.stage
        if st == "start-x" and fresh:
            x = initial_population(self.px, self.mx.n_particles, self.sampler)
            y = initial_population(self.py, self.my.n_particles, self.sampler)
            like = x[:, 0, 0]
            self.s = _Swarms(x, y, x.mean(1), y.mean(1), self.mx.alpha.init(1, like), self.my.alpha.init(1, like),
                             self.mx.sigma.init(1, like), self.my.sigma.init(1, like), 0, 0, True)
        s = self.s
        if st == "x" and fresh:
            reason = self.limit.reason(s, self.sampler, s.spread0, self.t0, self.rules)
            if reason is not Status.RUNNING:
                self.status, self.stage = reason, "final"
                return self.points(fresh)
            x = apply_boundary(move(s.x, s.xc[:, None, :], s.sx, self.mx, self.sampler), self.px, self.mx.boundary)
            y = apply_boundary(move(s.y, s.yc[:, None, :], s.sy, self.my, self.sampler), self.py, self.my.boundary)
            self.s = s = dataclasses.replace(s, x=x, y=y)
        if st in ("start-x", "x"):
            return _joint(s.x, s.yc[:, None, :])  # x_bar against the y-swarm's consensus (at the start: its mean)
        if st in ("start-y", "y"):
            return _joint(s.xc[:, None, :], s.y)
        count = 1 if st == "report" else REPORT
        return _joint(repeat(s.xc[:, None, :], count, 1), s.yc[:, None, :])

    def validate(self, e: Any, asked: Any) -> Any:
        e = real_values(e, "f")
        shape = tuple(asked.shape[:-1])
        if tuple(getattr(e, "shape", ())) != shape:
            what = {"start-x": "the x-swarm", "x": "the x-swarm", "start-y": "the y-swarm", "y": "the y-swarm"}
            raise ValueError(f"f: expected values of shape {shape} for {what.get(self.stage, 'the consensus')}, "
                             f"got {getattr(e, 'shape', type(e))}; f(X, Y) takes batches X (..., dx) and Y (..., dy) "
                             "and returns (...)")
        return e if is_torch(e) else e.astype(float, copy=False)

    def absorb(self, e: Any) -> None:
        s, st, mx, my = self.s, self.stage, self.mx, self.my
        n = mx.n_particles
        it = 0 if st in self.FIRST else s.nit + 1
        if st in ("start-x", "x"):
            # each swarm minimises its energy (E for x, -E for y) under the non-finite policy of every method:
            # a NaN or infinite value is the worst there is for the player who drew it
            ex, _ = sanitize(e)
            a = mx.alpha.update(s.a, it, ex)
            self.s = dataclasses.replace(s, xc=consensus(s.x, ex, a)[0], a=a, ex=ex)
            self.stage = "start-y" if st == "start-x" else "y"
        elif st in ("start-y", "y"):
            ey, _ = sanitize(-e)
            b = my.alpha.update(s.b, it, ey)
            yc = consensus(s.y, ey, b)[0]
            finite = _some_finite(s.ex, ey)
            if st == "start-y":
                s = dataclasses.replace(s, yc=yc, b=b, nfev=2 * n, nit=0, any_finite=finite, ex=None)
                self.s = s = dataclasses.replace(s, spread0=s.spreads(self.sampler))
                self.t0 = time.perf_counter()
                self.status = Status.RUNNING if finite else Status.NONFINITE
                self.stage = "x" if finite else "final"
                return
            self.s = s = dataclasses.replace(s, yc=yc, b=b, sx=mx.sigma.update(s.sx, it, s.ex),
                                             sy=my.sigma.update(s.sy, it, ey), nfev=s.nfev + 2 * n, nit=it,
                                             any_finite=finite, ex=None)
            if not s.finite() or not finite:  # a whole swarm without one finite value: nothing to follow
                self.status, self.stage = Status.NONFINITE, "final"
                return
            if self.rec is not None:
                self.rec["x"].append(np.asarray(to_numpy(s.xc[0])))
                self.rec["y"].append(np.asarray(to_numpy(s.yc[0])))
            self.stage = "report" if self.callback is not None or self.shown is not None else "x"
        elif st == "report":
            now = self.report(e, Status.RUNNING)
            self.s = dataclasses.replace(s, nfev=s.nfev + 1)
            self.stage = "final" if self.step_done(now) else "x"
        else:  # "final"
            self.final = e
            self.stage = "done"

    def result(self, intermediate: bool = False) -> OptimizeResult:
        if self.stage == "done" and self.broken is None and self.final is not None:
            res = self.report(self.final, self.status)
        else:
            res = super().result(intermediate)
        if self.rec is not None and not intermediate:
            res.history = {"x": np.array(self.rec["x"]), "y": np.array(self.rec["y"])}
        return res

    def report(self, values: Any, status: Status) -> OptimizeResult:
        """The result at the consensus pair, where f was evaluated ``len(values)`` times (counted in ``nfev``),
        or not at all (``values`` None: an interrupted or failed loop; ``fun`` is then NaN). With two
        evaluations or more, values that differ mean a noisy f: ``fun`` is their mean (``fun_sem`` its
        standard error, ``noisy`` True), never one draw (:mod:`cbopt.noisy`)."""
        s = self.s
        vals = np.full(1, np.nan) if values is None else np.asarray(to_numpy(values), dtype=float).reshape(-1)
        spent = 0 if values is None else len(vals)
        res = OptimizeResult(x=s.xc[0], y=s.yc[0], fun=float(vals[0]), nit=s.nit, nfev=s.nfev + spent,
                             status=int(status), reason=status.name, message=status.message, success=status.success,
                             method=self.METHOD, time=time.perf_counter() - self.t0, population_x=s.x[0],
                             population_y=s.y[0])
        if values is None:
            res.message = f"{res.message} f was not evaluated at the consensus pair (fun is NaN)."
        if spent > 1 and any(differ(float(v), float(vals[0])) for v in vals[1:]):
            res.fun = float(vals.mean())
            res.fun_sem = float(vals.std(ddof=1) / np.sqrt(len(vals)))
            res.noisy = True
            res.message = (f"{res.message} Noisy objective: fun is the mean of {len(vals)} evaluations at the "
                           f"consensus pair (standard error {res.fun_sem:.2g}).")
        return res

    def check_state(self, s: Any) -> None:
        n, dx, dy = self.mx.n_particles, self.px.dim, self.py.dim
        if tuple(s.x.shape) != (1, n, dx) or tuple(s.y.shape) != (1, n, dy) or tuple(s.xc.shape) != (1, dx) \
                or tuple(s.yc.shape) != (1, dy):
            raise CheckpointError(f"state: swarms of shapes {tuple(s.x.shape)}, {tuple(s.y.shape)}, expected "
                                  f"(1, {n}, {dx}) and (1, {n}, {dy})")
        if not 0 <= s.nfev - 2 * n * (s.nit + 1) <= s.nit:  # 2 N a step, and at most one report each
            raise CheckpointError(f"state: {s.nfev} evaluations do not follow from {s.nit} steps of {2 * n} points")

    def resume_stage(self, stage: str) -> str:
        return "x" if stage in ("final", "done") else stage

    def settled_stage(self, stage: str) -> str:
        return "final"


#: the rules of Stop that minimax implements (the others are refused)
_RULES = ("max_evals", "max_iter", "max_time", "xtol", "divergence")


@dataclass(frozen=True)
class _Limits:
    """The stopping rules minimax honours: the budget (``budget_status``; 1000 steps without one), then
    ``xtol`` and ``divergence`` on the larger of the two swarms' spreads."""

    rules: Stop
    report: int = 1  # evaluations a step adds beyond its 2 N: the result's, and the callback's

    def reason(self, s: _Swarms, sampler: Sampler, spread0: float, t0: float, rules: Stop | None = None) -> Status:
        rules = self.rules if rules is None else rules
        status = budget_status(rules, s.nit, s.nfev, 2 * s.x.shape[1] + self.report, t0, DEFAULT_STEPS)
        if status is not Status.RUNNING or s.nit == 0:
            return status
        now = s.spreads(sampler)
        if rules.xtol is not None and now <= rules.xtol:
            return Status.CONVERGED
        if not math.isfinite(now) or (rules.divergence is not None and now > rules.divergence * spread0):
            return Status.DIVERGED
        return Status.RUNNING


def _some_finite(*energies: Any) -> bool:
    return all(bool(np.isfinite(to_numpy(e)).any()) for e in energies)
