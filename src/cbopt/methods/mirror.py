"""Mirror CBO: CBO on dual particles ``y``, evaluated at the primal points ``x = grad phi*(y)``.

Update rule (particles i = 1..N, per run; ``phi`` a convex mirror map, :mod:`cbopt.mirror`)::

    c   = sum_i x_i exp(-alpha f(x_i)) / sum_j exp(-alpha f(x_j))          (c_y: the same weights on the y_i)
    y_i <- y_i - lam dt (x_i - c) + sigma sqrt(dt) D(x_i - c) xi_i          (CBO's move, applied to the duals)
           + nu sigma sqrt(dt) 1_dead (y_i - c_y) zeta_i                     (dead coordinates, below)
    x_i  = grad phi*(y_i)

Every evaluated point is an image of ``grad phi*``: soft thresholding for the elastic net (sparse iterates),
``softmax`` for the entropy on the simplex, the projection for a ball or a simplex, so the iterates are
feasible by construction. The duals start at ``grad phi(x0)`` of the initial sample (the sample itself where
``grad phi`` is not defined there). With the identity map this is CBO.

Dead coordinates: where ``grad phi*`` is flat (the elastic net's zero for ``|y| <= lam``, a face of the
projected simplex), a coordinate in which every particle sits exactly on the consensus has no drift and no
noise, so it can never come back, even when the optimum needs it (a support entry lost early in sparse
recovery). In such coordinates, and only there, the duals diffuse with ``nu = dual_noise`` times CBO's
anisotropic noise on the dual deviation ``y_i - c_y``; ``dual_noise=0`` is the dynamics of the reference.
On the sparse problem of ``benchmarks/mirror.py`` it lifts the success rate at the notebook's settings
from 10 of 40 instances to 25.

Reference: Bungert, Hoffmann, Kim, Roith (2025), MirrorCBO: a consensus-based optimization method in the
spirit of mirror descent, arXiv:2501.12189. Comparable to ``cbx.dynamics.MirrorCBO``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._backend import Sampler, namespace
from ..mirror import as_mirror
from ..numerics import consensus, spread
from ..validation import number
from ._base import Boundary, MethodSpec, Problem, apply_boundary, initial_population, register
from .cbo import MoveParams, WithMove, consensus_change, move


@dataclass(frozen=True)
class MirrorParams(MoveParams):
    """CBO's move (the fields of :class:`~cbopt.methods.cbo.MoveParams`) plus the mirror map."""

    mirror: Any = "identity"  # a name of cbopt.mirror.MIRRORS or a map object (ElasticNet(delta, lam), ...)
    dual_noise: float = 0.3  # ν: dual noise in dead coordinates, a multiple of σ (0: none, as in the reference)
    boundary: Boundary = None  # the map keeps the iterates feasible; a box only sets where the swarm starts

    def resolved(self, dim: int) -> MirrorMove:
        move_ = self.resolve_move(dim)
        if self.batch_size is not None:
            raise ValueError("batch_size: mirror CBO moves the whole swarm each step")
        if self.kick is not None:
            raise ValueError("kick: not supported by mirror CBO (a primal kick would leave the feasible set)")
        return MirrorMove(move_, as_mirror(self.mirror), number("dual_noise", self.dual_noise, at_least=0))


@dataclass(frozen=True)
class MirrorMove(WithMove):
    """The resolved parameters: CBO's :class:`~cbopt.methods.cbo.Move`, the mirror map and ``dual_noise``."""

    mirror: Any
    dual_noise: float


class MirrorState(NamedTuple):
    x: Any  # (M, N, d) primal particles grad phi*(y)
    y: Any  # (M, N, d) dual particles
    energy: Any  # (M, N)
    consensus: Any  # (M, d)
    alpha: Any  # (M,)
    sigma: Any  # (M,)
    spread: Any  # (M,)
    moved: Any  # (M,)


def init_population(params: MirrorMove, problem: Problem, sampler: Sampler) -> tuple[Any, Any]:
    y = params.mirror.to_dual(initial_population(problem, params.n_particles, sampler))
    return apply_boundary(params.mirror.to_primal(y), problem, params.move.boundary), y


def init(params: MirrorMove, problem: Problem, sampler: Sampler, x: Any, energy: Any, aux: Any) -> MirrorState:
    m = problem.n_runs
    p = params.move
    alpha = p.alpha.update(p.alpha.init(m, energy), 0, energy)
    sigma = p.sigma.init(m, energy)
    c, _ = consensus(x, energy, alpha)
    moved = namespace(sigma).full_like(sigma, float("inf"))
    return MirrorState(x, aux, energy, c, alpha, sigma, spread(x, c, sampler), moved)


def ask(state: MirrorState, params: MirrorMove, problem: Problem, sampler: Sampler, it: int) -> tuple[Any, Any]:
    # CBO's step from the primal points, applied to the duals: y + (x' - x)
    y = state.y + (move(state.x, state.consensus[:, None, :], state.sigma, params.move, sampler) - state.x)
    if params.dual_noise > 0:
        y = revive(y, state, params, sampler)
    return apply_boundary(params.mirror.to_primal(y), problem, params.move.boundary), y


def revive(y: Any, state: MirrorState, params: MirrorMove, sampler: Sampler) -> Any:
    """Add ``nu sigma sqrt(dt) (y_i - c_y) zeta_i`` to the duals ``y`` in the dead coordinates of each run,
    those where every particle sits exactly on the consensus (no draw when there are none)."""
    dead = (state.x == state.consensus[:, None, :]).all(1)[:, None, :]  # (M, 1, d)
    if not bool(dead.any()):
        return y
    cy, _ = consensus(state.y, state.energy, state.alpha)
    scale = params.dual_noise * math.sqrt(params.move.dt) * state.sigma[:, None, None]
    return y + dead * scale * (state.y - cy[:, None, :]) * sampler.normal(y.shape)


def tell(state: MirrorState, params: MirrorMove, problem: Problem, sampler: Sampler, it: int, x: Any, energy: Any,
         y: Any) -> MirrorState:
    p = params.move
    alpha = p.alpha.update(state.alpha, it, energy)
    sigma = p.sigma.update(state.sigma, it, energy)
    c, _ = consensus(x, energy, alpha)
    return MirrorState(x, y, energy, c, alpha, sigma, spread(x, c, sampler), consensus_change(c, state.consensus))


SPEC = register(
    MethodSpec(
        name="cbo-mirror",
        params=MirrorParams,
        state=MirrorState,
        init_population=init_population,
        init=init,
        ask=ask,
        tell=tell,
        summary="Mirror CBO: CBO on dual particles, x = grad phi*(y) (sparsity, simplex, ball)",
        reference="arXiv:2501.12189",
        supports_constraints=True,  # moves end in apply_boundary: the projection and the penalty apply
    )
)
