"""CBO with personal-best memories and an optional gradient drift.

Update rule (particles x_i with memories y_i, consensus ``y_alpha`` of the memories)::

    x_i <- x_i - lam dt (x_i - y_alpha) + sigma sqrt(dt) D(x_i - y_alpha) xi_i          (CBO move)
              - lam2 dt (x_i - y_i) + sigma2 sqrt(dt) D(x_i - y_i) xi2_i                 (pull to own memory)
              - gamma eta dt grad f(x_i)                                                  (gradient drift)
              (+ CBO's optional ``kick`` when the consensus stalls)
    y_i <- x_i  if f(x_i) < f(y_i)                                                        (kappa = 1/dt, beta = inf)

``gamma`` interpolates CBO (0) and gradient descent. The gradient is ``grad(X)`` when given (e.g. torch
autograd; not counted as evaluations), else central differences ``(f(x + h e_j) - f(x - h e_j)) / 2h``:
the stencil points are asked for together with the particles, so the driver evaluates and counts them
(``N (1 + 2 d)`` evaluations per step). The first step has no gradient (none is known at the start).
With a noisy or changing objective (mini-batches) a memory that was lucky once would keep its low value
for ever; ``reevaluate=True`` evaluates the memories again every step (``N`` more evaluations) so that
they are compared on the same objective as the particles.
With ``memory=False`` and ``gamma=0`` this is exactly CBO (same draws, same trajectory).

Reference: Riedl (2022), Leveraging memory effects and gradient information in consensus-based
optimization, arXiv:2211.12184. Comparable to ``cbx.dynamics.CBOMemory``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._backend import Sampler, eye, namespace
from ..numerics import consensus, spread
from ..validation import flag, number
from ._base import MethodSpec, Problem, apply_boundary, initial_population, register
from .cbo import MoveParams, WithMove, consensus_change, kick, move


@dataclass(frozen=True)
class MemoryParams(MoveParams):
    """CBO's move (the fields of :class:`~cbopt.methods.cbo.MoveParams`) plus the memory and gradient terms."""

    memory: bool = True  # consensus of personal bests (True) or of the current particles (False)
    lam2: float = 0.0  # λ₂, drift towards the own memory
    sigma2: float = 0.0  # σ₂, noise scale of that drift
    gamma: float = 0.0  # γ, weight of the gradient drift (0: derivative-free)
    eta: float = 1.0  # η, gradient step scale
    grad: Callable[[Any], Any] | None = None  # ∇f(X[..., d]); None: central differences
    fd_step: float = 1e-5  # h of the central differences
    reevaluate: bool = False  # re-evaluate the memories every step (2N evaluations): for noisy or mini-batch
    #                           objectives, so that "better than the memory" compares values of one objective

    def resolved(self, dim: int) -> MemoryMove:
        move = self.resolve_move(dim)
        for name in ("lam2", "sigma2", "gamma", "eta"):
            number(name, getattr(self, name), at_least=0)
        flag("memory", self.memory)
        flag("reevaluate", self.reevaluate)
        number("fd_step", self.fd_step, above=0)
        if self.grad is not None and not callable(self.grad):
            raise TypeError(f"grad: expected a callable grad(X[..., d]) -> G[..., d], got {self.grad!r}")
        if self.batch_size is not None and self.batch_size != move.n_particles:
            raise ValueError("batch_size: the memory variant moves the whole swarm each step")
        return MemoryMove(move, self.memory, self.lam2, self.sigma2, self.gamma, self.eta, self.grad, self.fd_step,
                          self.reevaluate)


@dataclass(frozen=True)
class MemoryMove(WithMove):
    """The resolved parameters: CBO's :class:`~cbopt.methods.cbo.Move` and the memory and gradient terms."""

    memory: bool
    lam2: float
    sigma2: float
    gamma: float
    eta: float
    grad: Callable[[Any], Any] | None
    fd_step: float
    reevaluate: bool


class MemoryState(NamedTuple):
    x: Any  # (M, N, d) particles
    energy: Any  # (M, N)
    mem_x: Any  # (M, N, d) personal bests y_i
    mem_energy: Any  # (M, N)
    consensus: Any  # (M, d) consensus of the memories (or of the particles, memory=False)
    alpha: Any  # (M,)
    sigma: Any  # (M,)
    spread: Any  # (M,)
    grad: Any  # (M, N, d) gradient at x (zeros until known)
    moved: Any  # (M,) max-norm change of the consensus in the last step (inf before the first)


def _fd(params: MemoryMove) -> bool:
    return params.gamma > 0 and params.grad is None


def init_population(params: MemoryMove, problem: Problem, sampler: Sampler) -> tuple[Any, Any]:
    return initial_population(problem, params.n_particles, sampler), None


def _consensus(params: MemoryMove, x: Any, e: Any, mx: Any, me: Any, alpha: Any) -> Any:
    c, _ = consensus(mx, me, alpha) if params.memory else consensus(x, e, alpha)
    return c


def init(params: MemoryMove, problem: Problem, sampler: Sampler, x: Any, energy: Any, aux: Any) -> MemoryState:
    m = problem.n_runs
    alpha = params.move.alpha.update(params.move.alpha.init(m, energy), 0, energy)
    sigma = params.move.sigma.init(m, energy)
    c = _consensus(params, x, energy, x, energy, alpha)
    xp = namespace(x)
    grad = params.grad(x) if (params.grad is not None and params.gamma > 0) else xp.zeros_like(x)
    moved = xp.full_like(sigma, float("inf"))
    return MemoryState(x, energy, x, energy, c, alpha, sigma, spread(x, c, sampler), grad, moved)


def ask(state: MemoryState, params: MemoryMove, problem: Problem, sampler: Sampler, it: int) -> tuple[Any, Any]:
    x = move(state.x, state.consensus[:, None, :], state.sigma, params.move, sampler)
    if params.lam2 > 0 or params.sigma2 > 0:
        dev = state.x - state.mem_x
        x = x - params.lam2 * params.move.dt * dev
        if params.sigma2 > 0:
            x = x + params.sigma2 * math.sqrt(params.move.dt) * params.move.noise(dev, sampler.normal(dev.shape))
    if params.gamma > 0:
        x = x - params.gamma * params.eta * params.move.dt * state.grad
    x = apply_boundary(kick(x, state.moved, state.sigma, params.move, sampler), problem, params.move.boundary)
    m, n, d = x.shape
    xp = namespace(x)
    parts = [x]
    if params.reevaluate and params.memory:  # the memories again, on the objective of this step
        parts.append(state.mem_x)
    if _fd(params):  # central-difference stencil around the new positions, evaluated (and counted) with them
        h = params.fd_step * eye(d, x)
        stencil = xp.concatenate([x[:, :, None, :] + h, x[:, :, None, :] - h], axis=2)  # (M, N, 2d, d)
        parts.append(stencil.reshape(m, n * 2 * d, d))
    if len(parts) == 1:
        return x, None
    return xp.concatenate(parts, axis=1), n


def tell(
    state: MemoryState, params: MemoryMove, problem: Problem, sampler: Sampler, it: int, x: Any, energy: Any, n: Any
) -> MemoryState:
    xp = namespace(x)
    mem_energy = state.mem_energy
    grad = state.grad
    if n is not None:  # split the particles from the memories and the stencil
        m, _, d = x.shape
        rest = energy[:, n:]
        if params.reevaluate and params.memory:
            mem_energy, rest = rest[:, :n], rest[:, n:]
        if _fd(params):  # differences of +inf energies give no drift
            ef = rest.reshape(m, n, 2, d)
            grad = (ef[:, :, 0] - ef[:, :, 1]) / (2 * params.fd_step)
            grad = xp.where(xp.isfinite(grad), grad, xp.zeros_like(grad))
        x, energy = x[:, :n], energy[:, :n]
    if params.grad is not None and params.gamma > 0:
        grad = params.grad(x)
    better = energy < mem_energy
    mem_x = xp.where(better[..., None], x, state.mem_x) if params.memory else x
    mem_e = xp.where(better, energy, mem_energy) if params.memory else energy
    alpha = params.move.alpha.update(state.alpha, it, mem_e if params.memory else energy)
    sigma = params.move.sigma.update(state.sigma, it, energy)
    c = _consensus(params, x, energy, mem_x, mem_e, alpha)
    moved = consensus_change(c, state.consensus)
    return MemoryState(x, energy, mem_x, mem_e, c, alpha, sigma, spread(x, c, sampler), grad, moved)


SPEC = register(
    MethodSpec(
        name="cbo-memory",
        params=MemoryParams,
        state=MemoryState,
        init_population=init_population,
        init=init,
        ask=ask,
        tell=tell,
        summary="CBO with personal-best memories and an optional gradient drift (gamma: CBO <-> GD)",
        reference="arXiv:2211.12184",
        supports_constraints=True,  # moves end in apply_boundary: the projection and the penalty apply
    )
)
