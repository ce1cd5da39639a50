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

from ._backend import Sampler, is_torch, repeat, run_backend, to_numpy
from .driver import callback_stops, read_only
from .methods._base import Boundary, Problem, apply_boundary, check_boundary, initial_population
from .methods.cbo import Move, move
from .minimize import check_init_scale, start_region, wing_inputs
from .noise import NoiseModel, get_noise
from .noisy import differ
from .numerics import consensus, sanitize, spread
from .objectives._wrap import real_values
from .progress import Progress
from .result import OptimizeResult
from .schedules import Schedule, as_schedule
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


def _values(f: Callable[[Any, Any], Any], x: Any, y: Any, what: str) -> Any:
    e = real_values(f(read_only(x), read_only(y)), "f")  # f sees the swarms, cannot move them
    shape = np.broadcast_shapes(tuple(x.shape[:-1]), tuple(y.shape[:-1]))
    if tuple(getattr(e, "shape", ())) != shape:
        raise ValueError(f"f: expected values of shape {shape} for {what}, got {getattr(e, 'shape', type(e))}; "
                         "f(X, Y) takes batches X (..., dx) and Y (..., dy) and returns (...)")
    return e if is_torch(e) else e.astype(float, copy=False)


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
) -> OptimizeResult:
    """Find a saddle point ``(x*, y*)`` of ``min_x max_y f(x, y)`` with CBO-SP.

    Parameters
    ----------
    f : batched ``f(X[..., dx], Y[..., dy]) -> E[...]`` (numpy or torch, broadcasting X against Y).
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

    Returns
    -------
    OptimizeResult with ``x``, ``y`` (the consensus points), ``fun = f(x, y)``, ``nit``, ``nfev``, ``status``,
    ``reason``, ``message``, ``success`` and, with ``history=True``, ``history["x"]``, ``history["y"]``.
    """
    options, init_scale = wing_inputs(args, progress, options, init_scale)
    if args:
        f = _with_args(f, args)
    params = build_options(SaddleParams, options, "minimax")
    # the result's f(x_bar, y_bar) is an evaluation too, and so is each callback's: both within the budget
    limit = _Limits(keeps_only(as_stop(stop).with_flat(max_evals=max_evals), _RULES, "minimax"),
                    report=REPORT + (callback is not None or progress))
    shown = Progress(total=limit.rules.max_evals) if progress else None
    be, _ = run_backend(backend, x0, x_bounds, y0, y_bounds)
    if init_scale is None or np.ndim(init_scale) == 0:
        sx = sy = init_scale
    elif isinstance(init_scale, (tuple, list)) and len(init_scale) == 2:
        sx, sy = init_scale
    else:
        raise ValueError(f"init_scale: expected a number or a pair (sx, sy), one per player, got {init_scale!r}")
    px, py = _problem("x", x_bounds, x0, sx, be), _problem("y", y_bounds, y0, sy, be)
    mx, my = params.resolved()
    n = mx.n_particles
    if limit.rules.max_evals is not None and limit.rules.max_evals < 4 * n + limit.report:
        raise ValueError(f"max_evals={limit.rules.max_evals}: one start and one step take "
                         f"{4 * n + limit.report} evaluations (2 N per step, and f at the consensus pair for the "
                         "result and each callback)")
    # two swarms, each with its moved copy, its noise and the f(x, y) pairs: checked before allocating
    fits_in_memory(8 * 6 * n * (px.dim + py.dim), "minimax", f" for its two swarms of {n} particles")
    sampler = be.sampler(rng)
    s = _start(f, px, py, mx, my, sampler)
    announce_default_steps(limit.rules, DEFAULT_STEPS, 2 * n, "minimax")
    spread0, t0 = s.spreads(sampler), time.perf_counter()
    rec: dict[str, list[Any]] = {"x": [], "y": []}
    status = Status.RUNNING if s.any_finite else Status.NONFINITE
    while status is Status.RUNNING and (status := limit.reason(s, sampler, spread0, t0)) is Status.RUNNING:
        s = _step(f, s, px, py, mx, my, sampler)
        if not s.finite() or not s.any_finite:  # a whole swarm without one finite value: nothing to follow
            status = Status.NONFINITE
            break
        if history:
            rec["x"].append(np.asarray(to_numpy(s.xc[0])))
            rec["y"].append(np.asarray(to_numpy(s.yc[0])))
        if callback is not None or shown is not None:
            now = s.result(f, Status.RUNNING, t0, spent=1)
            s = dataclasses.replace(s, nfev=s.nfev + 1)
            if shown is not None:
                shown(now)
            if callback is not None and callback_stops(callback, now):
                status = Status.CALLBACK
                break
    res = s.result(f, status, t0, spent=REPORT)
    if shown is not None:
        shown.close(res)
    if history:
        res.history = {"x": np.array(rec["x"]), "y": np.array(rec["y"])}
    return res


@dataclass(frozen=True)
class _Swarms:
    """Both swarms after a step: particles, consensus points, temperatures and noise levels, counts."""

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

    def spreads(self, sampler: Sampler) -> float:
        return max(float(to_numpy(spread(self.x, self.xc, sampler))[0]),
                   float(to_numpy(spread(self.y, self.yc, sampler))[0]))

    def finite(self) -> bool:
        return bool(np.all(np.isfinite(to_numpy(self.xc)))) and bool(np.all(np.isfinite(to_numpy(self.yc))))

    def result(self, f: Callable[[Any, Any], Any], status: Status, t0: float, spent: int = 1) -> OptimizeResult:
        """The result at the consensus pair, where f is evaluated ``spent`` times (counted in ``nfev``). With two
        evaluations or more, values that differ mean a noisy f: ``fun`` is their mean (``fun_sem`` its
        standard error, ``noisy`` True), never one draw (:mod:`cbopt.noisy`)."""
        xb, yb = self.xc[0], self.yc[0]
        xs, ys = repeat(xb[None], spent, 0), repeat(yb[None], spent, 0)
        vals = np.asarray(to_numpy(_values(f, xs, ys, "the consensus")), dtype=float)
        res = OptimizeResult(x=xb, y=yb, fun=float(vals[0]), nit=self.nit, nfev=self.nfev + spent,
                             status=int(status), reason=status.name, message=status.message, success=status.success,
                             method="cbo-sp", time=time.perf_counter() - t0, population_x=self.x[0],
                             population_y=self.y[0])
        if spent > 1 and any(differ(float(v), float(vals[0])) for v in vals[1:]):
            res.fun = float(vals.mean())
            res.fun_sem = float(vals.std(ddof=1) / np.sqrt(len(vals)))
            res.noisy = True
            res.message = (f"{res.message} Noisy objective: fun is the mean of {len(vals)} evaluations at the "
                           f"consensus pair (standard error {res.fun_sem:.2g}).")
        return res


def _with_args(f: Callable[..., Any], args: tuple) -> Callable[[Any, Any], Any]:
    def bound(x: Any, y: Any) -> Any:
        return f(x, y, *args)

    return bound


#: the rules of Stop that minimax implements (the others are refused)
_RULES = ("max_evals", "max_iter", "max_time", "xtol", "divergence")


@dataclass(frozen=True)
class _Limits:
    """The stopping rules minimax honours: the budget (``budget_status``; 1000 steps without one), then
    ``xtol`` and ``divergence`` on the larger of the two swarms' spreads."""

    rules: Stop
    report: int = 1  # evaluations a step adds beyond its 2 N: the result's, and the callback's

    def reason(self, s: _Swarms, sampler: Sampler, spread0: float, t0: float) -> Status:
        status = budget_status(self.rules, s.nit, s.nfev, 2 * s.x.shape[1] + self.report, t0, DEFAULT_STEPS)
        if status is not Status.RUNNING or s.nit == 0:
            return status
        now = s.spreads(sampler)
        if self.rules.xtol is not None and now <= self.rules.xtol:
            return Status.CONVERGED
        if not math.isfinite(now) or (self.rules.divergence is not None and now > self.rules.divergence * spread0):
            return Status.DIVERGED
        return Status.RUNNING


def _consensus_pair(f: Callable[[Any, Any], Any], x: Any, y: Any, yc_old: Any, mx: Move, my: Move, a: Any, b: Any,
                    it: int) -> tuple[Any, Any, Any, Any, Any]:
    """``x_bar`` against the y-swarm's last consensus, then ``y_bar`` against the new ``x_bar`` (2 N values).
    Each swarm minimises its energy (``E`` for x, ``-E`` for y) under the non-finite policy of every method:
    a NaN or infinite value is the worst there is for the player who drew it."""
    ex, _ = sanitize(_values(f, x, yc_old[:, None, :], "the x-swarm"))
    a = mx.alpha.update(a, it, ex)
    xc, _ = consensus(x, ex, a)
    ey, _ = sanitize(-_values(f, xc[:, None, :], y, "the y-swarm"))
    b = my.alpha.update(b, it, ey)
    yc, _ = consensus(y, ey, b)
    return xc, yc, a, b, (ex, ey)


def _start(f: Callable[[Any, Any], Any], px: Problem, py: Problem, mx: Move, my: Move, sampler: Sampler) -> _Swarms:
    x = initial_population(px, mx.n_particles, sampler)
    y = initial_population(py, my.n_particles, sampler)
    like = x[:, 0, 0]
    a, b = mx.alpha.init(1, like), my.alpha.init(1, like)
    xc, yc, a, b, (ex, ey) = _consensus_pair(f, x, y, y.mean(1), mx, my, a, b, 0)  # x_bar against the y-swarm's mean
    return _Swarms(x, y, xc, yc, a, b, mx.sigma.init(1, like), my.sigma.init(1, like), 2 * mx.n_particles, 0,
                   _some_finite(ex, ey))


def _some_finite(*energies: Any) -> bool:
    return all(bool(np.isfinite(to_numpy(e)).any()) for e in energies)


def _step(f: Callable[[Any, Any], Any], s: _Swarms, px: Problem, py: Problem, mx: Move, my: Move,
          sampler: Sampler) -> _Swarms:
    x = apply_boundary(move(s.x, s.xc[:, None, :], s.sx, mx, sampler), px, mx.boundary)
    y = apply_boundary(move(s.y, s.yc[:, None, :], s.sy, my, sampler), py, my.boundary)
    it = s.nit + 1
    xc, yc, a, b, (ex, ey) = _consensus_pair(f, x, y, s.yc, mx, my, s.a, s.b, it)
    return _Swarms(x, y, xc, yc, a, b, mx.sigma.update(s.sx, it, ex), my.sigma.update(s.sy, it, ey),
                   s.nfev + 2 * mx.n_particles, it, _some_finite(ex, ey))
