"""Multi-objective CBO with adaptive weights (AM-CBO): a Pareto front from one swarm.

Every particle carries a scalarisation weight ``w_i`` on the simplex. Its consensus is the Gibbs average of
the swarm under its own Chebyshev scalarisation, and the weights drift along the repulsion of the particles'
images in objective space (a Morse potential), so that the images spread over the front::

    g_w(x)  = max_k w_k (F_k(x) - z_k)                                  (z: the best value seen per objective)
    c_i     = sum_j x_j exp(-alpha g_{w_i}(x_j)) / sum_j exp(-alpha g_{w_i}(x_j))
    x_i    <- x_i - lam dt (x_i - c_i) + sigma sqrt(dt) D(x_i - c_i) xi_i            (CBO's move towards c_i)
    w_i    <- P_simplex(w_i -+ 2 tau dt (grad U_i - mean_k grad U_i)),  grad U_i = (1/(N-1)) sum_j u(F_i - F_j)
    u(r)    = (l / 2) e^{-l |r|} r / |r|                                         (Morse, length 1/l)

(the sign: the images move apart, along ``w`` with the inverse scalarisation, against it with Chebyshev's).

A step costs N evaluations (the scalarisations reuse them); the consensus of all N weights is an N x N Gibbs
matrix. Reference: Borghi, Herty, Pareschi (2022), An adaptive consensus based method for multi-objective
optimization with uniform Pareto front approximation, arXiv:2208.01362 (and arXiv:2203.16384). From the
authors' test run: N = 100, alpha = 1e6, sigma = 3 (anisotropic), Morse length 1/20, tau = 1e-5. Changed,
measured on ZDT1-3 and DTLZ2 at 1e5 evaluations (benchmarks/multiobjective.py): dt = 0.3 (not 0.01), the
box clipped (not reflected), and by default the inverse Chebyshev scalarisation ``max_k (F_k - z_k) / w_k``,
whose solution lies along ``w`` so that the simplex lattice's boundary weights pick the front's extremes.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import Sampler, amax, amin, is_torch, namespace, on_backend_of, run_backend, to_numpy
from .checkpoint import CheckpointError, as_checkpoint
from .evaluators import as_evaluator
from .methods._base import Boundary, Problem, apply_boundary, check_boundary, initial_population
from .methods.cbo import Move, move
from .minimize import check_init_scale, drive_call, scale_option, start_region, wing_inputs
from .mirror import Simplex
from .noise import NoiseModel, get_noise
from .numerics import consensus_weights, sanitize
from .objectives._wrap import WithArgs, real_values
from .progress import Progress
from .result import OptimizeResult
from .schedules import EffectiveSampleSize, Schedule, as_schedule
from .staged import Staged
from .stopping import Status, Stop, announce_default_steps, as_stop, budget_status, keeps_only
from .validation import build_options, choice, number

#: steps when no budget is given (the authors' test run: 5000 steps of dt = 0.01)
DEFAULT_STEPS = 5000
#: the smallest weight component in the inverse scalarisation (a zero weight: that objective at its best)
FLOOR = 1e-12


@dataclass(frozen=True)
class MultiParams:
    """Hyper-parameters of AM-CBO (``options=`` of :func:`multiobjective`)."""

    n_particles: int = 100  # N: particles, and points of the front
    dt: float = 0.3  # Δt (the authors' 0.01 needs about 5e5 evaluations on ZDT1, d = 30)
    lam: float = 1.0  # λ
    sigma: float | Schedule = 3.0  # σ
    noise: str | NoiseModel = "anisotropic"
    alpha: float | Schedule = 1e6  # α of every particle's Gibbs weights
    tau: float = 1e-5  # τ, speed of the weights' adaptation (0: fixed weights, M-CBO)
    length: float = 20.0  # l, inverse length of the Morse repulsion between images
    scalarization: str = "inverse"  # "inverse": max_k (F_k - z_k) / w_k (the point along w, extreme weights
    #                                   well posed); "chebyshev": max_k w_k (F_k - z_k), the authors' form
    boundary: Boundary = "clip"  # box handling ("clip" lets coordinates sit on a face, where ZDT's fronts are)

    def resolved(self) -> Move:
        n = number("n_particles", self.n_particles, at_least=2, integer=True)
        number("tau", self.tau, at_least=0)
        number("length", self.length, above=0)
        check_boundary(self.boundary)
        choice("scalarization", self.scalarization, ("chebyshev", "inverse"))
        if isinstance(self.alpha, EffectiveSampleSize):
            raise ValueError("alpha: EffectiveSampleSize picks alpha from one energy per particle; AM-CBO has one "
                             "scalarisation per particle (give a number or a step schedule)")
        dt, lam = number("dt", self.dt, above=0), number("lam", self.lam, above=0)
        return Move(n, dt, lam, as_schedule("sigma", self.sigma), get_noise(self.noise),
                    as_schedule("alpha", self.alpha), None, "full", self.boundary, None)


def _lattice(h: int, k: int) -> np.ndarray:
    """The simplex lattice ``{c / h : c in N^k, sum c = h}`` in lexicographic order of ``c``, built from its
    C(h + k - 1, k - 1) points directly (stars and bars), not by filtering the (h + 1)^k grid, which at k = 30
    objectives is 2^30 tuples."""
    rows = [np.diff((-1, *bars, h + k - 1)) - 1 for bars in itertools.combinations(range(h + k - 1), k - 1)]
    c = np.array(rows, dtype=float)
    return c[np.lexsort(c.T[::-1])] / h


def simplex_weights(n: int, k: int) -> np.ndarray:
    """``n`` weight vectors spread over the simplex in ``k`` dimensions: equally spaced for k = 2, a
    simplex lattice (the largest with at most n points, the rest its nearest refinement) otherwise."""
    if k == 1:
        return np.ones((n, 1))
    if k == 2:
        t = np.linspace(0.0, 1.0, n)
        return np.stack([t, 1 - t], axis=1)
    h = 1
    while math.comb(h + 1 + k - 1, k - 1) <= n:
        h += 1
    w = _lattice(h, k)
    if len(w) < n:  # top up from the next lattice, points far from the ones taken first
        finer = _lattice(h + 1, k)
        dist = np.min(np.linalg.norm(finer[:, None] - w[None], axis=-1), axis=1)
        w = np.concatenate([w, finer[np.argsort(-dist)[: n - len(w)]]])
    return w[:n]


def non_dominated(values: Any) -> np.ndarray:
    """Mask of the rows of ``values`` (n, K) that no other row dominates (<= everywhere, < somewhere)."""
    v = np.asarray(to_numpy(values) if is_torch(values) else values)
    le = (v[:, None, :] <= v[None, :, :]).all(-1)
    lt = (v[:, None, :] < v[None, :, :]).any(-1)
    return np.asarray(~(le & lt).any(0), dtype=bool)


def morse_forces(images: Any, length: float) -> Any:
    """``grad U_i = (1/(N-1)) sum_j (l/2) e^{-l |F_i - F_j|} (F_i - F_j) / |F_i - F_j|`` (N, K), numpy or torch."""
    xp = namespace(images)
    ok = xp.isfinite(images).all(-1)  # an image with a non-finite value (a failed point) pushes and feels nothing
    images = xp.where(ok[:, None], images, xp.zeros_like(images))
    diff = images[:, None, :] - images[None, :, :]
    dist = (diff * diff).sum(-1) ** 0.5
    off = (dist > 0) & ok[:, None] & ok[None, :]  # the diagonal, and coinciding images, push nothing
    pull = xp.where(off, 0.5 * length * xp.exp(-length * dist) / xp.where(off, dist, 1.0), xp.zeros_like(dist))
    return (pull[..., None] * diff).sum(1) / (len(images) - 1)


def adapt_weights(w: Any, images: Any, step: float, length: float, scalarization: str) -> Any:
    """One step of the weights ``w`` (N, K) along the Morse repulsion of the ``images`` (N, K), ``step`` being
    ``2 tau dt``, kept on the simplex. The inverse scalarisation's solution lies along ``w``, so the weights
    follow the force; Chebyshev's lies along ``1 / w``, so they go against it. Either way the images part."""
    force = morse_forces(images, length)
    tangent = force - force.mean(-1)[:, None]
    sign = 1.0 if scalarization == "inverse" else -1.0
    return Simplex().to_primal(w + sign * step * tangent)


def scalarize(values: Any, ideal: Any, w: Any, scalarization: str) -> Any:
    """``g[i, j]``: the values ``F_j`` (N, K) under particle i's scalarisation with weight ``w_i`` (N, K)."""
    gap = values[None, :, :] - ideal
    if scalarization == "chebyshev":
        return amax(w[:, None, :] * gap, -1)
    # the point whose gap to the ideal point lies along w (zero weights: that objective at its best)
    return amax(gap / w.clip(FLOOR, None)[:, None, :], -1)


def _some_point_finite(values: Any) -> bool:
    """Whether some point has every objective finite (the others, failed points, are the worst there is)."""
    return bool(np.isfinite(to_numpy(values)).all(-1).any())


def multiobjective(
    f: Callable[[Any], Any],
    bounds: Any = None,
    *,
    x0: Any = None,
    options: dict[str, Any] | None = None,
    rng: Any = None,
    max_evals: int | None = None,
    stop: Stop | None = None,
    init_scale: float | None = None,
    backend: Any = None,
    callback: Callable[[OptimizeResult], Any] | None = None,
    args: tuple = (),
    progress: bool = False,
    checkpoint: Any = None,
    evaluator: Any = None,
) -> OptimizeResult:
    """Approximate the Pareto front of ``min_x (F_1(x), ..., F_K(x))`` with AM-CBO.

    Parameters
    ----------
    f : batched ``f(X[..., d]) -> F[..., K]``.
    bounds, x0, init_scale : where the swarm starts (uniform in the box, or ``N(x0, init_scale^2 I)``); the
        swarm stays in the box (``boundary="clip"``, the default, or ``"reflect"``; None: free).
    options : :class:`MultiParams` fields, and ``init_scale`` as :func:`cbopt.minimize` spells it.
    max_evals, stop : the budget (``stop`` honours ``max_iter``, ``max_evals`` and ``max_time``); without one,
        5000 steps.
    backend : as in :func:`cbopt.minimize` (``"numpy"``, ``"torch"``, ``"cuda"``, ``cbopt.Torch(...)``); by
        default from the inputs. A torch run calls ``f`` with tensors.
    callback : ``callback(intermediate_result)`` after every step (its arrays read-only); a truthy return or
        ``StopIteration`` stops (status ``CALLBACK``), as for :func:`cbopt.minimize`.
    args : extra arguments, ``f(X, *args)``, as ``minimize``'s.
    progress : show progress on stderr as :func:`cbopt.minimize` does (the front's size in place of a best value).
    checkpoint : as :func:`cbopt.minimize`'s (a path, or ``cbopt.Checkpoint(path, every, resume)``): the swarm,
        its values and weights, resumed bit for bit.
    evaluator : as :func:`cbopt.minimize`'s: evaluate point by point in parallel (``f(x)`` of one point returns
        its K values).

    Returns
    -------
    OptimizeResult with ``x`` (the non-dominated particles, (P, d)), ``F`` (their values, (P, K)),
    ``population``, ``population_F`` and ``weights`` (every particle), ``nit``, ``nfev``, ``status``,
    ``reason``, ``message``; arrays on the run's backend.

    Raises
    ------
    cbopt.ObjectiveError
        When ``f`` raises after the first population, with the result so far in ``.result``.
    """
    wing_inputs(args, progress)
    if args:
        f = WithArgs(f, args)
    ckpt = as_checkpoint(checkpoint)
    loop = pareto_loop(bounds, x0=x0, options=options, rng=rng, max_evals=max_evals, stop=stop, init_scale=init_scale,
                       backend=backend, callback=callback, progress=progress)
    ev = as_evaluator(evaluator)
    res = drive_call(loop, f, ckpt, ev, evaluator, loop.rules.max_time, vector=True, who="cbopt.multiobjective")
    if loop.shown is not None:
        loop.shown.close(res)
    return res


def pareto_loop(bounds: Any = None, *, x0: Any = None, options: dict[str, Any] | None = None, rng: Any = None,
                max_evals: int | None = None, stop: Stop | None = None, init_scale: float | None = None,
                backend: Any = None, callback: Callable[[OptimizeResult], Any] | None = None,
                progress: bool = False) -> ParetoLoop:
    """The checked arguments of :func:`multiobjective` (and of its ask/tell door, :class:`cbopt.ParetoOptimizer`)
    as the loop the driver runs."""
    options, init_scale = scale_option(options, init_scale)
    params = build_options(MultiParams, options, "multiobjective")
    rules = keeps_only(as_stop(stop).with_flat(max_evals=max_evals), ("max_evals", "max_iter", "max_time"),
                       "multiobjective")
    be, _ = run_backend(backend, x0, bounds)
    lo, hi, c0, dim = start_region(bounds, x0)
    scale = check_init_scale(init_scale, dim, lo, hi)
    a_ = be.asarray
    problem = Problem(dim, 1, a_(lo), a_(hi), a_(c0), scale if isinstance(scale, float) else a_(scale), be.dtype)
    n = params.resolved().n_particles
    if rules.max_evals is not None and rules.max_evals < 2 * n:
        raise ValueError(f"max_evals={rules.max_evals}: the start and one step take {2 * n} evaluations")
    shown = Progress(total=rules.max_evals) if progress else None
    loop = ParetoLoop(params, problem, be.sampler(rng), rules, a_, callback, shown)
    announce_default_steps(rules, DEFAULT_STEPS, n, "multiobjective")
    return loop


@dataclass(frozen=True)
class _Front:
    """The swarm and its images: the evaluated particles ``x`` (1, N, d), their values (N, K), the weights (N, K),
    the ideal point (K,), alpha and sigma, counts; between a step's ask and its tell, the moved swarm ``xn``."""

    x: Any
    values: Any
    w: Any
    ideal: Any
    a: Any
    s: Any
    nfev: int
    nit: int
    xn: Any = None


class ParetoLoop(Staged):
    """AM-CBO as a loop of the driver: ``"start"`` evaluates the first swarm, each ``"step"`` moves it towards
    every particle's own consensus, adapts the weights and evaluates the moved swarm (N points)."""

    KIND = "multiobjective"
    METHOD = "am-cbo"
    FIRST = ("start",)
    STAGES = ("step", "done")
    state_type = _Front

    def __init__(self, params: MultiParams, problem: Problem, sampler: Sampler, rules: Stop,
                 asarray: Callable[[Any], Any], callback: Callable[[OptimizeResult], Any] | None = None,
                 shown: Any = None):
        super().__init__(problem, params, sampler, rules, callback, shown)
        self.mv = params.resolved()
        self.asarray = asarray  # values onto the run's backend

    def points(self, fresh: bool) -> Any:
        p, mv = self.params, self.mv
        if self.stage == "start":
            if fresh:
                x = initial_population(self.problem, mv.n_particles, self.sampler)  # (1, N, d)
                self.s = _Front(x, None, None, None, None, None, 0, 0)
            return self.s.x[0]
        s = self.s
        if fresh:
            status = budget_status(self.rules, s.nit, s.nfev, mv.n_particles, self.t0, DEFAULT_STEPS)
            if status is not Status.RUNNING:
                self.status, self.stage = status, "done"
                return None
            g = scalarize(s.values, s.ideal, s.w, p.scalarization)  # (N, N): particle j under particle i's weight
            c = consensus_weights(g, s.a) @ s.x[0]  # (N, d): one alpha (shape (1,)) for every row
            xn = apply_boundary(move(s.x, c[None], s.s, mv, self.sampler), self.problem, mv.boundary)
            w = s.w
            if p.tau > 0:  # along the repulsion of the images before this move
                w = adapt_weights(w, s.values, 2 * p.tau * mv.dt, p.length, p.scalarization)
            self.s = s = dataclasses.replace(s, w=w, xn=xn)
        return s.xn[0]

    def validate(self, e: Any, asked: Any) -> Any:
        v = real_values(e, "f")
        shape, k = tuple(v.shape), None if self.s.values is None else self.s.values.shape[-1]
        if shape[:-1] != tuple(asked.shape[:-1]) or len(shape) != asked.ndim or (k is not None and shape[-1] != k) \
                or shape[-1] < 1:
            raise ValueError(f"f: expected values of shape {tuple(asked.shape[:-1])} + (K,), K >= 1, for points "
                             f"{tuple(asked.shape)}, got {shape}; a multi-objective f maps X (..., d) to F (..., K)")
        return self.asarray(v)

    def absorb(self, e: Any) -> None:
        values = sanitize(e)[0]  # NaN or inf: the worst value, as for every method (then left out of the front)
        mv, s, n = self.mv, self.s, self.mv.n_particles
        if self.stage == "start":
            x = s.x
            w = self.asarray(simplex_weights(n, values.shape[-1]))
            a = mv.alpha.update(mv.alpha.init(1, x[:, 0, 0]), 0, values[None, :, 0])
            self.s = _Front(x, values, w, amin(values, 0), a, mv.sigma.init(1, x[:, 0, 0]), n, 0)
            self.t0 = time.perf_counter()
            ok = _some_point_finite(values)
            self.status, self.stage = (Status.RUNNING, "step") if ok else (Status.NONFINITE, "done")
            return
        it = s.nit + 1
        self.s = s = dataclasses.replace(s, x=s.xn, xn=None, values=values, nfev=s.nfev + n, nit=it,
                                         ideal=namespace(s.ideal).minimum(s.ideal, amin(values, 0)))
        if not _some_point_finite(values):  # every point failed: no front to follow
            self.status, self.stage = Status.NONFINITE, "done"
            return
        self.s = s = dataclasses.replace(s, a=mv.alpha.update(s.a, it, values[None, :, 0]),
                                         s=mv.sigma.update(s.s, it, values[None, :, 0]))
        if (self.callback is not None or self.shown is not None) and self.step_done(
                self.report(None, Status.RUNNING)):
            self.stage = "done"

    def report(self, values: Any, status: Status) -> OptimizeResult:
        s = self.s
        if s is None or s.values is None:
            raise ValueError("multiobjective: no point was evaluated")
        v = to_numpy(s.values)
        keep = on_backend_of(non_dominated(v) & np.isfinite(v).all(-1), s.values)
        return OptimizeResult(x=s.x[0][keep], F=s.values[keep], population=s.x[0], population_F=s.values,
                              weights=s.w, nit=s.nit, nfev=s.nfev, status=int(status), reason=status.name,
                              message=status.message, success=status.success, method=self.METHOD,
                              time=time.perf_counter() - self.t0)

    def check_state(self, s: Any) -> None:
        n, d = self.mv.n_particles, self.problem.dim
        if tuple(s.x.shape) != (1, n, d) or s.values is None or s.values.ndim != 2 or s.values.shape[0] != n \
                or tuple(s.w.shape) != tuple(s.values.shape):
            raise CheckpointError(f"state: a swarm of shape {tuple(s.x.shape)} and images "
                                  f"{tuple(getattr(s.values, 'shape', ()))}, expected (1, {n}, {d}) and ({n}, K)")
        if s.nfev != n * (s.nit + 1):
            raise CheckpointError(f"state: {s.nfev} evaluations do not follow from {s.nit} steps of {n} points")

    def resume_stage(self, stage: str) -> str:
        return "step"

