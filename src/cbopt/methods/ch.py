"""Consensus hopping (CH): the paper's bridge from CBO to (implicit) gradient descent.

Update rule (one point ``x_k`` per run)::

    X_i ~ N(x_k, sigma^2 I),  i = 1..N            fresh samples every step
    x_{k+1} = c_alpha(X) = sum_i X_i exp(-alpha f(X_i)) / sum_j exp(-alpha f(X_j))

CBO with ``lam dt = 1`` and Gaussian noise of fixed width. In the mean-field limit (N -> inf),
``e^{-alpha f} N(x_k, sigma^2 I)`` is proportional to ``exp(-alpha [f(x) + |x - x_k|^2 / (2 tau)])`` with
``tau = alpha sigma^2``: as ``alpha -> inf`` with ``tau`` fixed, ``x_{k+1} -> prox_{tau f}(x_k)``, one
minimizing-movement (implicit gradient) step; for every alpha, ``x_{k+1} - x_k = -tau <grad f>_mu`` (Stein).
Pass ``tau=`` to ask for "a proximal step of size tau": ``sigma = sqrt(tau / alpha)`` at every step.

Default sigma: the initial spread (``init_scale``) shrinking by 0.98 every 100 steps, as in the paper's code.

Reference: Riedl, Klock, Geldhauser, Fornasier (2023), arXiv:2306.09778, Sec. 3. Comparable to a
(1, N) evolution strategy with weighted recombination.

Example
-------
>>> import cbopt
>>> from cbopt.objectives import sphere
>>> res = cbopt.minimize(sphere, x0=[2.0, -1.0], method="ch", rng=0, max_evals=20_000)
>>> bool(res.fun < 1e-3)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .._backend import Sampler, namespace, to_numpy
from ..numerics import consensus, spread
from ..schedules import Schedule, StepDecay, as_schedule
from ..validation import number
from ._base import Boundary, MethodSpec, Problem, apply_boundary, check_boundary, initial_population, register

#: default sigma decay: x 0.98 every 100 steps
DEFAULT_DECAY = StepDecay(1.0, 0.98, 100)


@dataclass(frozen=True)
class CHParams:
    """Hyper-parameters of consensus hopping (``None`` entries are filled from the problem)."""

    n_particles: int | None = None  # N, fresh samples per step; default 100
    sigma: float | Schedule | None = None  # σ, sample width; default: init_scale, x0.98 every 100 steps
    alpha: float | Schedule = 100.0  # α, inverse temperature
    tau: float | None = None  # τ = α σ², the proximal step size; when given, σ = sqrt(τ/α) every step
    boundary: Boundary = "reflect"  # box handling of the samples (needs bounds)

    def resolved(self, dim: int) -> CHConfig:
        n = number("n_particles", 100 if self.n_particles is None else self.n_particles, at_least=2, integer=True)
        if self.tau is not None:
            number("tau", self.tau, above=0)
            if self.sigma is not None:
                raise ValueError("give sigma or tau, not both: tau fixes sigma = sqrt(tau / alpha)")
        check_boundary(self.boundary)
        sigma = None if self.sigma is None else as_schedule("sigma", self.sigma)
        return CHConfig(n, sigma, as_schedule("alpha", self.alpha), self.tau, self.boundary)


@dataclass(frozen=True)
class CHConfig:
    """The resolved parameters the kernels read (fields as in :class:`CHParams`; ``sigma`` None: from the
    problem's scale)."""

    n_particles: int
    sigma: Schedule | None
    alpha: Schedule
    tau: float | None
    boundary: Boundary


class CHState(NamedTuple):
    x: Any  # (M, N, d) the samples of the last step
    energy: Any  # (M, N)
    consensus: Any  # (M, d) the current point x_k
    alpha: Any  # (M,)
    sigma: Any  # (M,)
    spread: Any  # (M,) median distance of the samples to x_k


def init_population(params: CHConfig, problem: Problem, sampler: Sampler) -> tuple[Any, Any]:
    return initial_population(problem, params.n_particles, sampler), None


def _sigma_from_tau(params: CHConfig, alpha: Any) -> Any:
    return (params.tau / alpha) ** 0.5


def init(params: CHConfig, problem: Problem, sampler: Sampler, x: Any, energy: Any, aux: Any) -> CHState:
    m = problem.n_runs
    alpha = params.alpha.update(params.alpha.init(m, energy), 0, energy)
    if params.tau is not None:
        sigma = _sigma_from_tau(params, alpha)
    elif params.sigma is not None:
        sigma = params.sigma.init(m, energy)
    else:  # the initial spread: a quarter of the box width, or init_scale around x0
        s0 = problem.init_scale
        s0 = float(s0) if isinstance(s0, (int, float)) else float(to_numpy(s0).mean())
        sigma = namespace(energy).full_like(energy[:, 0], s0)
    c, _ = consensus(x, energy, alpha)
    return CHState(x, energy, c, alpha, sigma, spread(x, c, sampler))


def ask(state: CHState, params: CHConfig, problem: Problem, sampler: Sampler, it: int) -> tuple[Any, Any]:
    m, n, d = state.x.shape
    xi = sampler.normal((m, n, d))
    xi *= state.sigma[:, None, None]
    xi += state.consensus[:, None, :]
    return apply_boundary(xi, problem, params.boundary), None


def tell(
    state: CHState, params: CHConfig, problem: Problem, sampler: Sampler, it: int, x: Any, energy: Any, aux: Any
) -> CHState:
    alpha = params.alpha.update(state.alpha, it, energy)
    if params.tau is not None:
        sigma = _sigma_from_tau(params, alpha)
    else:
        sigma = (params.sigma or DEFAULT_DECAY).update(state.sigma, it, energy)
    c, _ = consensus(x, energy, alpha)
    return CHState(x, energy, c, alpha, sigma, spread(x, c, sampler))


SPEC = register(
    MethodSpec(
        name="ch",
        params=CHParams,
        state=CHState,
        init_population=init_population,
        init=init,
        ask=ask,
        tell=tell,
        summary="Consensus hopping: x <- consensus of N fresh Gaussian samples (a Monte-Carlo proximal step)",
        reference="arXiv:2306.09778",
        supports_constraints=True,  # moves end in apply_boundary: the projection and the penalty apply
    )
)
