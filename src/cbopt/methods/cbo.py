"""Consensus-based optimization (CBO) with Euler--Maruyama steps.

Update rule (particles i = 1..N, per run)::

    c_alpha = sum_i x_i exp(-alpha f(x_i)) / sum_j exp(-alpha f(x_j))          (log-sum-exp)
    x_i    <- x_i - lam dt (x_i - c_alpha) + sigma sqrt(dt) D(x_i - c_alpha) xi_i,   xi_i ~ N(0, I_d)

``D(v) = diag(v)`` (anisotropic, default) or ``|v| I`` (isotropic). Multiplicative noise lets the swarm
collapse onto the consensus; with ``kick = eps`` a step after which the consensus moved less than ``eps``
(max-norm) adds ``sigma sqrt(dt) N(0, I)`` to every particle, so a collapsed swarm explores again (the
Brownian kick of Carrillo, Jin, Li, Zhu; what lets CBO train neural networks, see :mod:`cbopt.nn`).
Random-batch interaction
(Carrillo, Jin, Li, Zhu) with ``batch_size = B``: ``batch_mode="full"`` splits the swarm at random into
batches of B each step and moves every particle towards its own batch's consensus; ``"partial"`` draws
one batch of B, moves (and re-evaluates) only those particles towards their consensus.

Reference: Pinnau, Totzeck, Tse, Martin (2017), arXiv:1604.05648; anisotropic noise: Carrillo, Jin,
Li, Zhu (2021), arXiv:1909.09249; as a stochastic relaxation of gradient descent: Riedl, Klock,
Geldhauser, Fornasier (2023), arXiv:2306.09778. Comparable to ``cbx.dynamics.CBO``.

Example
-------
>>> import cbopt
>>> from cbopt.objectives import rastrigin
>>> res = cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 4, rng=0, max_evals=20_000)
>>> bool(abs(res.x).max() < 0.25)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

from .._backend import PARALLEL_MIN, RNG_THREADS, Sampler, amax, fused, in_parallel, namespace, put_along, take_along
from ..noise import NoiseModel, anisotropic, get_noise
from ..numerics import consensus, spread
from ..schedules import Geometric, Schedule, as_schedule
from ..validation import choice, number
from ._base import (
    Boundary,
    MethodSpec,
    Problem,
    apply_boundary,
    check_boundary,
    fold_expr,
    initial_population,
    reflect,
    register,
)

#: the largest ``sigma * sqrt(dt)`` accepted: a step's noise of this many times the distance to the consensus
MAX_NOISE = 1e3
#: default ``sigma * sqrt(dt)`` for anisotropic noise: exploratory yet contracting almost surely
NOISE_LEVEL = 1.1


@dataclass(frozen=True)
class MoveParams:
    """The fields of CBO's move, as given: shared by the options of cbo, cbo-memory and cbo-polarized.
    :meth:`resolve_move` checks them and fills the ``None`` entries from the dimension, into the
    :class:`Move` the kernels read; each variant's ``resolved`` composes that move with its own terms."""

    n_particles: int | None = None  # N; default 40
    dt: float = 0.01  # Δt, time step
    lam: float = 1.0  # λ, drift towards the consensus
    sigma: float | Schedule | None = None  # σ; default 1.1/sqrt(Δt) (anisotropic), sqrt(λ/d) (isotropic)
    noise: str | NoiseModel = "anisotropic"  # D(v): "anisotropic" | "isotropic" | callable
    alpha: float | Schedule = Geometric(30.0, 1.05, cap=1e15)  # α, inverse temperature of the consensus
    batch_size: int | None = None  # random-batch interaction: consensus over this many particles
    batch_mode: Literal["full", "partial"] = "full"  # "full": all move, per batch; "partial": one batch moves
    boundary: Boundary = "reflect"  # box handling after each move (needs bounds)
    kick: float | None = None  # ε: consensus moved < ε (max-norm) last step -> add σ√Δt N(0, I) to all

    def resolve_move(self, dim: int) -> Move:
        """Validate and fill dimension-aware defaults."""
        # one particle is its own consensus: no search
        n = number("n_particles", 40 if self.n_particles is None else self.n_particles, at_least=2, integer=True)
        for name in ("dt", "lam"):
            number(name, getattr(self, name), above=0)
        if self.lam * self.dt > 2:
            raise ValueError(f"lam * dt = {self.lam * self.dt:g} > 2: the explicit step x - lam dt (x - c) overshoots "
                             "the consensus and diverges; lower lam or dt (lam dt = 1 jumps onto it)")
        noise = get_noise(self.noise)
        if self.sigma is None:  # anisotropic: sigma sqrt(dt) = 1.1; isotropic: sigma^2 d = lam < 2 lam
            iso = noise is get_noise("isotropic")
            sigma: float | Schedule = math.sqrt(self.lam / dim) if iso else NOISE_LEVEL / math.sqrt(self.dt)
        else:
            sigma = self.sigma
        if isinstance(sigma, (int, float)) and sigma * math.sqrt(self.dt) > MAX_NOISE:
            raise ValueError(f"sigma * sqrt(dt) = {sigma * math.sqrt(self.dt):.3g} > {MAX_NOISE:g}: each step would "
                             "throw the particles that many times their distance to the consensus away (a box "
                             "folds them onto a lattice of a few points); the default is 1.1")
        number("batch_size", self.batch_size, at_least=1, at_most=n, integer=True, none=True)
        choice("batch_mode", self.batch_mode, ("full", "partial"))
        check_boundary(self.boundary)
        number("kick", self.kick, at_least=0, none=True)
        return Move(
            n_particles=n,
            dt=self.dt,
            lam=self.lam,
            sigma=as_schedule("sigma", sigma),
            noise=noise,
            alpha=as_schedule("alpha", self.alpha),
            batch_size=self.batch_size,
            batch_mode=self.batch_mode,
            boundary=self.boundary,
            kick=self.kick,
        )


@dataclass(frozen=True)
class CBOParams(MoveParams):
    """Hyper-parameters of CBO (the fields of :class:`MoveParams`)."""

    def resolved(self, dim: int) -> Move:
        return self.resolve_move(dim)


@dataclass(frozen=True)
class Move:
    """CBO's move, resolved: what the kernels of cbo, cbo-memory and cbo-polarized read (fields as in
    :class:`CBOParams`, with the defaults filled, the schedules built and the noise model looked up)."""

    n_particles: int
    dt: float
    lam: float
    sigma: Schedule
    noise: NoiseModel
    alpha: Schedule
    batch_size: int | None
    batch_mode: Literal["full", "partial"]
    boundary: Boundary
    kick: float | None

    @property
    def points_per_step(self) -> int:
        """Points a step evaluates: one batch with ``batch_mode="partial"``, else the whole swarm."""
        if self.batch_mode == "partial" and self.batch_size is not None:
            return int(self.batch_size)
        return self.n_particles


@dataclass(frozen=True)
class WithMove:
    """A variant's resolved parameters: CBO's :class:`Move` as a part (checkpoints fingerprint its fields as
    if they were the variant's own), and, in a subclass, the variant's terms."""

    move: Move = field(metadata={"part": True})

    @property
    def n_particles(self) -> int:
        return self.move.n_particles

    @property
    def points_per_step(self) -> int:
        return self.move.points_per_step


class CBOState(NamedTuple):
    x: Any  # (M, N, d) particles
    energy: Any  # (M, N) f(x), non-finite -> +inf
    consensus: Any  # (M, d) consensus point of the whole swarm at the current alpha
    alpha: Any  # (M,)
    sigma: Any  # (M,)
    spread: Any  # (M,) median |x_i - c|
    moved: Any  # (M,) max-norm change of the consensus in the last step (inf before the first)


def init_population(params: Move, problem: Problem, sampler: Sampler) -> tuple[Any, Any]:
    return initial_population(problem, params.n_particles, sampler), None


def init(params: Move, problem: Problem, sampler: Sampler, x: Any, energy: Any, aux: Any) -> CBOState:
    m = problem.n_runs
    alpha = params.alpha.update(params.alpha.init(m, energy), 0, energy)
    sigma = params.sigma.init(m, energy)
    c, _ = consensus(x, energy, alpha)
    return CBOState(x, energy, c, alpha, sigma, spread(x, c, sampler), namespace(sigma).full_like(sigma, math.inf))


def consensus_change(c: Any, old: Any) -> Any:
    """``max_j |c_j - old_j|`` per run (M,): how far the consensus moved in a step."""
    return amax(abs(c - old), -1)


def kick(x: Any, moved: Any, sigma: Any, params: Move, sampler: Sampler) -> Any:
    """Add ``sigma sqrt(dt) N(0, I)`` to the particles of the runs whose consensus moved less than
    ``params.kick`` in the last step (nothing when ``kick`` is None or no run stalled)."""
    if params.kick is None:
        return x
    stalled = moved < params.kick
    if not bool(stalled.any()):
        return x
    xi = sampler.normal(x.shape)
    scale = namespace(sigma).where(stalled, sigma * math.sqrt(params.dt), 0 * sigma)
    return x + scale[:, None, None] * xi


def _move_expr(x: Any, c: Any, xi: Any, s: Any, lam_dt: float, eps: float, lo: Any = None, hi: Any = None) -> Any:
    """The anisotropic update as one expression, for ``torch.compile`` (``eps > 0``: the float32 floor),
    folded into the box ``[lo, hi]`` in the same loop when given."""
    dev = x - c
    if eps > 0:
        scale = (dev.abs()).maximum(eps * (c.abs() + 1))
        y = x - lam_dt * dev + s[:, None, None] * xi * scale
    else:
        y = x + dev * (s[:, None, None] * xi - lam_dt)
    return y if lo is None else fold_expr(y, lo, hi)


def _move_into(x: Any, c: Any, xi: Any, s: Any, lam_dt: float, eps: float, lo: Any = None, hi: Any = None) -> Any:
    """:func:`_move_expr` written into ``xi``, the step's own draw: the fused loop reads each normal and writes
    the moved coordinate in its place, one buffer of the swarm's size fewer (a CPU step at N d = 1e6 in float64:
    the move 0.34 ms instead of 0.75)."""
    return xi.copy_(_move_expr(x, c, xi, s, lam_dt, eps, lo, hi))


def _batch_indices(sampler: Sampler, m: int, n: int, b: int) -> Any:
    """A random subset of ``b`` particle indices per run (M, b), without replacement."""
    return sampler.uniform((m, n)).argsort(-1)[:, :b]


def move(x: Any, c: Any, sigma: Any, params: Move, sampler: Sampler, box: tuple[Any, Any] | None = None) -> Any:
    """One Euler--Maruyama step of the CBO SDE for particles ``x`` (M, n, d) towards ``c`` (M, 1 or n, d),
    folded into the box ``box = (lo, hi)`` by :func:`reflect` when given (fused into the update's one loop
    when the run is compiled).

    Multiplicative noise has an absorbing state: a coordinate that rounds to exactly ``c`` gets no noise
    until the consensus moves. float64 reaches it only for coordinates already settled (and on separable
    problems that lock-in helps: shifted Rastrigin d = 10, 23/24 seeds solved at 5e4 evaluations against
    20/24 with a floor), but float32 reaches it within a few thousand steps and freezes the search
    (d = 30: 0/10 solved). In float32 the noise is therefore scaled by ``max(|x - c|, eps (1 + |c|))``
    per coordinate (10/10 solved).
    """
    if sampler.compiled and params.noise is anisotropic:  # torch.compile: the whole update in one fused loop
        xi = sampler.normal(x.shape)
        eps = float(namespace(x).finfo(x.dtype).eps) if x.dtype == namespace(x).float32 else 0.0
        return fused(_move_into)(x, c, xi, sigma * math.sqrt(params.dt), params.lam * params.dt, eps, *(box or ()))
    xp = namespace(x)
    xi = sampler.normal(x.shape)
    s = sigma * math.sqrt(params.dt)
    if params.noise is not anisotropic:
        dev = xp.subtract(x, c, out=sampler.scratch("dev", x))
        xi *= s[:, None, None]
        step = params.noise(_noise_scale(dev, c, sampler), xi)
        dev *= -params.lam * params.dt
        step += dev
        step += x
        return step if box is None else reflect(step, box[0], box[1], inplace=True)
    dev = sampler.scratch("dev", x)
    scale = sampler.scratch("scale", x) if x.dtype == xp.float32 else None
    lam_dt = params.lam * params.dt
    if not isinstance(x, np.ndarray) or x.size < PARALLEL_MIN:
        return _anisotropic(x, c, xi, s, dev, scale, lam_dt, box)
    # numpy, a large swarm: the passes over it run on parts of it in threads (each its own rows, or
    # columns when there are few rows), element for element what one thread computes
    axis = 1 if x.shape[1] >= RNG_THREADS else 2

    def part(a: int, b: int) -> None:
        cut = (slice(None),) * axis + (slice(a, b),)
        own_c = c[cut] if axis == 2 or c.shape[1] > 1 else c
        own_box = box if box is None or axis == 1 else tuple(v[..., a:b] if np.ndim(v) else v for v in box)
        mine = xi[cut]
        out = _anisotropic(x[cut], own_c, mine, s, dev[cut], None if scale is None else scale[cut], lam_dt, own_box)
        if out is not mine:  # the fold of many points outside is a new array
            mine[...] = out

    in_parallel(x.shape[axis], part)
    return xi


def _noise_scale(dev: Any, c: Any, sampler: Sampler) -> Any:
    """``dev`` in float64; in float32 ``max(|dev|, eps (1 + |c|))`` (see :func:`move`), in a scratch buffer."""
    xp = namespace(dev)
    return dev if dev.dtype != xp.float32 else _floored(dev, c, sampler.scratch("scale", dev))


def _floored(dev: Any, c: Any, out: Any) -> Any:
    xp = namespace(dev)
    floor = abs(c)
    floor += 1.0
    floor *= xp.finfo(dev.dtype).eps
    return xp.maximum(xp.abs(dev, out=out), floor, out=out)


def _anisotropic(x: Any, c: Any, xi: Any, s: Any, dev: Any, scale: Any, lam_dt: float, box: Any) -> Any:
    """The anisotropic update, written into ``xi`` (the draw) by in-place passes over buffers (at N d = 1e5
    allocations, not arithmetic, dominate a step), then folded into ``box`` (in place on numpy when few
    points are outside); ``scale``: float32's buffer."""
    xp = namespace(x)
    xp.subtract(x, c, out=dev)
    xi *= s[:, None, None]
    if scale is not None:
        xi *= _floored(dev, c, scale)
        dev *= -lam_dt
        xi += dev
    else:  # x + dev (s xi - lam dt): one pass fewer
        xi -= lam_dt
        xi *= dev
    xi += x
    return xi if box is None else reflect(xi, box[0], box[1], inplace=True)


def ask(state: CBOState, params: Move, problem: Problem, sampler: Sampler, it: int) -> tuple[Any, Any]:
    if params.batch_size is None or params.batch_size == state.x.shape[1]:
        c = state.consensus[:, None, :]
        if params.kick is None and params.boundary == "reflect" and problem.lo is not None and problem.project is None:
            return move(state.x, c, state.sigma, params, sampler, box=(problem.lo, problem.hi)), None
        x = move(state.x, c, state.sigma, params, sampler)
        # the moved swarm is a fresh array (a new draw or a recycled buffer no one else holds): fold in place
        return apply_boundary(kick(x, state.moved, state.sigma, params, sampler), problem, params.boundary,
                              inplace=True), None
    m, n, _ = state.x.shape
    b = params.batch_size
    if params.batch_mode == "partial":
        idx = _batch_indices(sampler, m, n, b)
        xb, eb = take_along(state.x, idx), take_along(state.energy, idx)
        cb, _ = consensus(xb, eb, state.alpha)
        xb = kick(move(xb, cb[:, None, :], state.sigma, params, sampler), state.moved, state.sigma, params, sampler)
        return apply_boundary(xb, problem, params.boundary), idx
    # full: a random partition into ceil(N / B) batches (the last one topped up with particles of the first)
    nb = -(-n // b)
    perm = _batch_indices(sampler, m, n, n)
    padded = namespace(perm).concatenate([perm, perm[:, : nb * b - n]], axis=1)
    xb = take_along(state.x, padded).reshape(m, nb, b, -1)
    eb = take_along(state.energy, padded).reshape(m, nb, b)
    cb, _ = consensus(xb, eb, state.alpha[:, None])  # (M, nb, d)
    batch_of = perm.argsort(-1) // b  # batch of particle i
    c = take_along(cb, batch_of)  # (M, N, d)
    x = kick(move(state.x, c, state.sigma, params, sampler), state.moved, state.sigma, params, sampler)
    return apply_boundary(x, problem, params.boundary), None


def tell(
    state: CBOState, params: Move, problem: Problem, sampler: Sampler, it: int, x: Any, energy: Any, idx: Any
) -> CBOState:
    if idx is not None:  # partial batch: scatter the moved particles back
        x, energy = put_along(state.x, idx, x), put_along(state.energy, idx, energy)
    alpha = params.alpha.update(state.alpha, it, energy)
    sigma = params.sigma.update(state.sigma, it, energy)
    c, _ = consensus(x, energy, alpha)
    return CBOState(x, energy, c, alpha, sigma, spread(x, c, sampler), consensus_change(c, state.consensus))


SPEC = register(
    MethodSpec(
        name="cbo",
        params=CBOParams,
        state=CBOState,
        init_population=init_population,
        init=init,
        ask=ask,
        tell=tell,
        summary="Consensus-based optimization (Euler-Maruyama), anisotropic noise, random batches",
        reference="arXiv:1604.05648, arXiv:1909.09249, arXiv:2306.09778",
        supports_constraints=True,  # moves end in apply_boundary: the projection and the penalty apply
    )
)
