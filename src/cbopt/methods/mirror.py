"""Mirror CBO: CBO on dual particles ``y``, evaluated at the primal points ``x = grad phi*(y)``.

Update rule (particles i = 1..N, per run; ``phi`` a convex mirror map, :mod:`cbopt.mirror`)::

    c   = sum_i x_i exp(-alpha f(x_i)) / sum_j exp(-alpha f(x_j))
    y_i <- y_i - lam dt (x_i - c) + sigma sqrt(dt) D(x_i - c) xi_i          (CBO's move, applied to the duals)
    x_i  = grad phi*(y_i)

Every evaluated point is an image of ``grad phi*``: soft thresholding for the elastic net (sparse iterates),
``softmax`` for the entropy on the simplex, the projection for a ball or a simplex, so the iterates are
feasible by construction. The duals start at ``grad phi(x0)`` of the initial sample (the sample itself where
``grad phi`` is not defined there). With the identity map this is CBO.

Reference: Bungert, Hoffmann, Kim, Roith (2025), MirrorCBO: a consensus-based optimization method in the
spirit of mirror descent, arXiv:2501.12189. Comparable to ``cbx.dynamics.MirrorCBO``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .._backend import Sampler, namespace
from ..mirror import as_mirror
from ..numerics import consensus, spread
from ._base import Boundary, MethodSpec, Problem, apply_boundary, initial_population, register
from .cbo import MoveParams, WithMove, consensus_change, move


@dataclass(frozen=True)
class MirrorParams(MoveParams):
    """CBO's move (the fields of :class:`~cbopt.methods.cbo.MoveParams`) plus the mirror map."""

    mirror: Any = "identity"  # a name of cbopt.mirror.MIRRORS or a map object (ElasticNet(delta, lam), ...)
    boundary: Boundary = None  # the map keeps the iterates feasible; a box only sets where the swarm starts

    def resolved(self, dim: int) -> MirrorMove:
        move_ = self.resolve_move(dim)
        if self.batch_size is not None:
            raise ValueError("batch_size: mirror CBO moves the whole swarm each step")
        if self.kick is not None:
            raise ValueError("kick: not supported by mirror CBO (a primal kick would leave the feasible set)")
        return MirrorMove(move_, as_mirror(self.mirror))


@dataclass(frozen=True)
class MirrorMove(WithMove):
    """The resolved parameters: CBO's :class:`~cbopt.methods.cbo.Move` and the mirror map."""

    mirror: Any


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
    return apply_boundary(params.mirror.to_primal(y), problem, params.move.boundary), y


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
