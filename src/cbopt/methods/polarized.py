"""Polarized CBO: every particle follows its own, kernel-localised consensus, so the swarm can split and
settle on several minimisers at once.

Update rule (Gaussian kernel of width kappa)::

    m_i  = sum_j k(x_i, x_j) x_j exp(-alpha f_j) / sum_j k(x_i, x_j) exp(-alpha f_j),
           k(x, y) = exp(-|x - y|^2 / (2 kappa^2))                                          (log-sum-exp)
    x_i <- x_i - lam dt (x_i - m_i) + sigma sqrt(dt) D(x_i - m_i) xi_i

O(N^2 d) per step (batched over runs). At the end the particles are clustered (a particle joins the
cluster of the best particle within ``kappa`` of it, else starts one), and ``result.minimizers`` lists
every cluster's best point, its value and its size, best first.

Reference: Bungert, Roith, Wacker (2022), Polarized consensus-based dynamics for optimization and sampling,
arXiv:2211.05238.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .._backend import Sampler, amax, arange_like, median, namespace, to_numpy
from ..numerics import log_weights
from ..schedules import Geometric, Schedule
from ..validation import number
from ._base import MethodSpec, Problem, apply_boundary, initial_population, register
from .cbo import MoveParams, WithMove, move


@dataclass(frozen=True)
class PolarizedParams(MoveParams):
    """CBO's move (defaults here: N = 200, sigma 3 x 0.99 per step, alpha 1 -> 1e10 x 1.02) plus the kernel."""

    n_particles: int | None = 200
    sigma: float | Schedule | None = Geometric(3.0, 0.99)  # σ: gentle (σ√Δt = 0.3), shrinking for precision
    alpha: float | Schedule = Geometric(1.0, 1.02, cap=1e10)
    kappa: float = 1.0  # κ, kernel width: particles farther apart than a few κ do not interact

    def resolved(self, dim: int) -> PolarizedMove:
        number("kappa", self.kappa, above=0)
        if self.batch_size is not None:
            raise ValueError("batch_size: polarized CBO uses every particle's kernel neighbourhood")
        if self.kick is not None:
            raise ValueError("kick: not supported by polarized CBO (its particles follow their own consensus)")
        return PolarizedMove(self.resolve_move(dim), self.kappa)


@dataclass(frozen=True)
class PolarizedMove(WithMove):
    """The resolved parameters: CBO's :class:`~cbopt.methods.cbo.Move` and the kernel width."""

    kappa: float


class PolarizedState(NamedTuple):
    x: Any  # (M, N, d)
    energy: Any  # (M, N)
    local: Any  # (M, N, d) per-particle consensus m_i
    consensus: Any  # (M, d) the best particle's local consensus
    alpha: Any  # (M,)
    sigma: Any  # (M,)
    spread: Any  # (M,) median |x_i - m_i|


def local_consensus(x: Any, energy: Any, alpha: Any, kappa: float) -> Any:
    """``m_i`` for every particle: softmax over j of ``-|x_i - x_j|^2 / (2 kappa^2) - alpha f_j``."""
    xp = namespace(x)
    sq = (x * x).sum(-1)
    d2 = (sq[..., :, None] + sq[..., None, :] - 2 * (x @ x.swapaxes(-1, -2))).clip(0.0, None)
    logits = log_weights(energy, alpha)[..., None, :] - d2 / (2 * kappa * kappa)  # (M, N, N)
    top = amax(logits, -1)[..., None]
    top = xp.where(xp.isfinite(top), top, xp.zeros_like(top))  # rows of +inf energies: weight 0, not nan
    w = xp.exp(logits - top)
    total = w.sum(-1)[..., None]
    empty = total == 0  # no finite energy at all: plain mean (the driver stops such runs)
    w = xp.where(empty, xp.ones_like(w), w)
    total = xp.where(empty, xp.full_like(total, x.shape[-2]), total)
    return (w / total) @ x


def _state(x: Any, energy: Any, alpha: Any, sigma: Any, kappa: float) -> PolarizedState:
    loc = local_consensus(x, energy, alpha, kappa)
    best = energy.argmin(-1)
    rows = arange_like(x.shape[0], x)
    dev = x - loc
    return PolarizedState(x, energy, loc, loc[rows, best], alpha, sigma, median((dev * dev).sum(-1)) ** 0.5)


def init_population(params: PolarizedMove, problem: Problem, sampler: Sampler) -> tuple[Any, Any]:
    return initial_population(problem, params.n_particles, sampler), None


def init(params: PolarizedMove, problem: Problem, sampler: Sampler, x: Any, energy: Any, aux: Any) -> PolarizedState:
    m = problem.n_runs
    alpha = params.move.alpha.update(params.move.alpha.init(m, energy), 0, energy)
    return _state(x, energy, alpha, params.move.sigma.init(m, energy), params.kappa)


def ask(state: PolarizedState, params: PolarizedMove, problem: Problem, sampler: Sampler, it: int) -> tuple[Any, Any]:
    x = move(state.x, state.local, state.sigma, params.move, sampler)
    return apply_boundary(x, problem, params.move.boundary), None


def tell(
    state: PolarizedState, params: PolarizedMove, problem: Problem, sampler: Sampler, it: int, x: Any, energy: Any,
    aux: Any,
) -> PolarizedState:
    alpha = params.move.alpha.update(state.alpha, it, energy)
    return _state(x, energy, alpha, params.move.sigma.update(state.sigma, it, energy), params.kappa)


def clusters(x: Any, energy: Any, radius: float) -> list[dict[str, Any]]:
    """Greedy clustering by value: the best unassigned particle opens a cluster of everything within ``radius``.

    Returns ``[{"x", "fun", "size"}]`` best first (``x``: the cluster's best particle).
    """
    x, e = np.asarray(to_numpy(x), dtype=float), np.asarray(to_numpy(energy), dtype=float)
    order = np.argsort(e)
    free = np.ones(len(e), dtype=bool)
    out = []
    for i in order:
        if not free[i] or not np.isfinite(e[i]):
            continue
        near = free & (np.linalg.norm(x - x[i], axis=-1) <= radius)
        out.append({"x": x[i].copy(), "fun": float(e[i]), "size": int(near.sum())})
        free &= ~near
    return out


def post(x: Any, energy: Any, params: PolarizedMove) -> dict[str, Any]:
    return {"minimizers": clusters(x, energy, params.kappa)}


def _extra_floats(params: Any, d: int) -> int:
    """The kernel's (N, N) distances and log-weights, and their softmax, per run."""
    return 3 * params.n_particles * params.n_particles


SPEC = register(
    MethodSpec(
        name="polarized",
        params=PolarizedParams,
        state=PolarizedState,
        init_population=init_population,
        init=init,
        ask=ask,
        tell=tell,
        summary="Polarized CBO: kernel-localised consensus per particle, finds several minimisers (O(N^2))",
        reference="arXiv:2211.05238",
        supports_constraints=True,  # moves end in apply_boundary: the projection and the penalty apply
        post=post,
        extra_floats=_extra_floats,
    )
)
