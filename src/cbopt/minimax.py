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

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import is_torch, resolve_backend, to_numpy
from .methods._base import Boundary, Problem, apply_boundary, check_boundary, initial_population
from .methods.cbo import Move, move
from .noise import NoiseModel, get_noise
from .numerics import consensus, spread
from .result import OptimizeResult
from .schedules import Schedule, as_schedule
from .stopping import Status, Stop
from .validation import number

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

    def resolved(self, dims: tuple[int, int]) -> tuple[Move, Move]:
        """The two swarms' moves (the x-swarm with alpha, the y-swarm with beta)."""
        n = number("n_particles", self.n_particles, at_least=2, integer=True)
        dt = number("dt", self.dt, above=0)
        lam = number("lam", self.lam, above=0)
        noise = get_noise(self.noise)
        check_boundary(self.boundary)
        sigma = as_schedule("sigma", self.sigma)
        beta = self.alpha if self.beta is None else self.beta
        return tuple(Move(n, dt, lam, sigma, noise, as_schedule(name, a), None, "full", self.boundary, None)
                     for name, a in (("alpha", self.alpha), ("beta", beta)))  # type: ignore[return-value]


def _problem(name: str, bounds: Any, start: Any, scale: Any, backend: Any) -> Problem:
    lo = hi = None
    if bounds is not None:
        b = np.asarray(bounds, dtype=float)
        if b.ndim != 2 or b.shape[1] != 2 or not np.all(np.isfinite(b)) or not np.all(b[:, 0] < b[:, 1]):
            raise ValueError(f"{name}_bounds: expected [(lo, hi), ...] with finite lo < hi, got {bounds!r}")
        lo, hi = b[:, 0], b[:, 1]
    c = None if start is None else np.asarray(start, dtype=float).reshape(-1)
    if c is None and lo is None:
        raise ValueError(f"give {name}0 or {name}_bounds: the {name}-swarm needs to know where to start")
    if c is not None and lo is not None and c.shape != lo.shape:
        raise ValueError(f"{name}0 has length {c.shape[0]} but {name}_bounds describe {lo.shape[0]} dimensions")
    if c is not None and not np.all(np.isfinite(c)):
        raise ValueError(f"{name}0 must be finite, got {start!r}")
    dim = int(c.shape[0]) if c is not None else int(lo.shape[0])  # type: ignore[union-attr]
    if scale is None:
        scale = 0.2 * float(np.max(hi - lo)) if lo is not None and hi is not None else 1.0
    number(f"{name}_scale", scale, above=0)
    a = backend.asarray
    return Problem(dim, 1, a(lo), a(hi), a(c), float(scale), backend.dtype)


def _values(f: Callable[[Any, Any], Any], x: Any, y: Any, what: str) -> Any:
    e = f(x, y)
    shape = np.broadcast_shapes(tuple(x.shape[:-1]), tuple(y.shape[:-1]))
    if tuple(getattr(e, "shape", ())) != shape:
        raise ValueError(f"f: expected values of shape {shape} for {what}, got {getattr(e, 'shape', type(e))}; "
                         "f(X, Y) takes batches X (..., dx) and Y (..., dy) and returns (...)")
    if is_torch(e):
        return e.nan_to_num(nan=math.inf)
    e = np.asarray(e, dtype=float)
    return np.where(np.isnan(e), np.inf, e)


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
    init_scale : the standard deviation of the start clouds (a number, or ``(sx, sy)``).
    callback : ``callback(intermediate_result)`` after every step; raise ``StopIteration`` to stop.
    history : keep ``x_bar`` and ``y_bar`` of every step in ``res.history``.

    Returns
    -------
    OptimizeResult with ``x``, ``y`` (the consensus points), ``fun = f(x, y)``, ``nit``, ``nfev``, ``status``,
    ``reason``, ``message``, ``success`` and, with ``history=True``, ``history["x"]``, ``history["y"]``.
    """
    params = SaddleParams(**(options or {})) if not isinstance(options, SaddleParams) else options
    rules = Stop() if stop is None else stop
    if not isinstance(rules, Stop):
        raise TypeError(f"stop: expected a cbopt.Stop, got {type(stop).__name__}")
    budget = number("max_evals", max_evals, at_least=1, integer=True, none=True)
    max_evals = int(budget) if budget is not None else (None if rules.max_evals is None else int(rules.max_evals))
    max_iter = rules.max_iter
    if max_evals is None and max_iter is None and rules.max_time is None:
        max_iter = DEFAULT_STEPS
    ends = ((x0, x_bounds), (y0, y_bounds))
    be = resolve_backend(*[a for pair in ends for a in pair if a is not None])
    sx, sy = (init_scale, init_scale) if np.ndim(init_scale) == 0 else tuple(init_scale)
    px = _problem("x", x_bounds, x0, sx, be)
    py = _problem("y", y_bounds, y0, sy, be)
    mx, my = params.resolved((px.dim, py.dim))
    n = mx.n_particles
    if max_evals is not None and max_evals < 4 * n:
        raise ValueError(f"max_evals={max_evals}: one start and one step take {4 * n} evaluations (2 N per step)")
    sampler = be.sampler(rng)
    x = initial_population(px, n, sampler)
    y = initial_population(py, n, sampler)
    like = x[:, 0, 0]
    a, b = mx.alpha.init(1, like), my.alpha.init(1, like)
    sx_v, sy_v = mx.sigma.init(1, like), my.sigma.init(1, like)
    # the start: x_bar from the y-swarm's mean, then y_bar from that x_bar
    y_mean = y.mean(1)
    ex = _values(f, x, y_mean[:, None, :], "the x-swarm")
    a = mx.alpha.update(a, 0, ex)
    xc, _ = consensus(x, ex, a)
    ey = _values(f, xc[:, None, :], y, "the y-swarm")
    b = my.alpha.update(b, 0, -ey)
    yc, _ = consensus(y, -ey, b)
    nfev, nit = 2 * n, 0

    def spreads() -> float:
        return max(float(to_numpy(spread(x, xc, sampler))[0]), float(to_numpy(spread(y, yc, sampler))[0]))

    spread0 = spreads()
    t0 = time.perf_counter()
    rec: dict[str, list[Any]] = {"x": [], "y": []}
    status = Status.RUNNING

    def result(final: bool) -> OptimizeResult:
        xb, yb = xc[0], yc[0]
        val = _values(f, xb[None], yb[None], "the consensus")
        st = status if final else Status.RUNNING
        res = OptimizeResult(x=xb, y=yb, fun=float(to_numpy(val)[0]), nit=nit, nfev=nfev, status=int(st),
                             reason=st.name, message=st.message, success=st.success, method="cbo-sp",
                             time=time.perf_counter() - t0, population_x=x[0], population_y=y[0])
        if history and final:
            res.history = {"x": np.array(rec["x"]), "y": np.array(rec["y"])}
        return res

    while True:
        if max_iter is not None and nit >= max_iter:
            status = Status.MAX_ITER
        elif max_evals is not None and nfev + 2 * n > max_evals:
            status = Status.MAX_EVALS
        elif rules.max_time is not None and time.perf_counter() - t0 >= rules.max_time:
            status = Status.MAX_TIME
        elif nit > 0:
            now = spreads()
            if rules.xtol is not None and now <= rules.xtol:
                status = Status.CONVERGED
            elif not math.isfinite(now) or (rules.divergence is not None and now > rules.divergence * spread0):
                status = Status.DIVERGED
        if status is not Status.RUNNING:
            break
        x = apply_boundary(move(x, xc[:, None, :], sx_v, mx, sampler), px, mx.boundary)
        y = apply_boundary(move(y, yc[:, None, :], sy_v, my, sampler), py, my.boundary)
        nit += 1
        ex = _values(f, x, yc[:, None, :], "the x-swarm")
        a = mx.alpha.update(a, nit, ex)
        xc_new, _ = consensus(x, ex, a)
        ey = _values(f, xc_new[:, None, :], y, "the y-swarm")
        b = my.alpha.update(b, nit, -ey)
        yc_new, _ = consensus(y, -ey, b)
        nfev += 2 * n
        if not (bool(np.all(np.isfinite(to_numpy(xc_new)))) and bool(np.all(np.isfinite(to_numpy(yc_new))))):
            status = Status.NONFINITE
            break
        xc, yc = xc_new, yc_new
        sx_v, sy_v = mx.sigma.update(sx_v, nit, ex), my.sigma.update(sy_v, nit, ey)
        if history:
            rec["x"].append(np.asarray(to_numpy(xc[0])))
            rec["y"].append(np.asarray(to_numpy(yc[0])))
        if callback is not None:
            try:
                callback(result(False))
            except StopIteration:
                status = Status.CALLBACK
                break
    return result(True)
