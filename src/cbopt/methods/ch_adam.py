"""Consensus hopping with Adam on the hop (``ch-adam``): the consensus of fresh samples as a descent direction.

Update rule (one point ``x_k`` per run; antithetic samples, ``N`` even)::

    e_i ~ N(0, I),  X_i = x_k + sigma e_i,  X_{i+N/2} = x_k - sigma e_i        fresh samples every step
    c_k = sum_i X_i exp(-alpha f(X_i)) / sum_j exp(-alpha f(X_j))                 the consensus point
    g_k = (x_k - c_k) / sigma                                                      the hop, reversed
    x_{k+1} = x_k - lr Adam(g_1, ..., g_k)                                         (Kingma & Ba's moments)

Consensus hopping (:mod:`cbopt.methods.ch`) jumps to ``c_k``; here the hop ``c_k - x_k`` is a direction and
Adam takes the step. For small ``sigma`` the hop is ``-alpha sigma^2`` times the gradient of the Gaussian
smoothing of ``f`` (Stein's identity: the paper's reading of CBO as a stochastic relaxation of gradient
descent), so this is a gradient method whose gradient is the consensus of function values: antithetic
pairs cancel the zeroth-order term, ``alpha`` is set every step so that the weights keep an effective
sample size of ``eta N`` (invariant to the loss's scale, robust on mini-batches). It is built for many
dimensions (network weights): a step costs O(N d) and keeps three (d,) vectors beside the samples.

Reference: Riedl, Klock, Geldhauser, Fornasier (2023), arXiv:2306.09778 (consensus hopping, Sec. 3);
Kingma & Ba (2015), arXiv:1412.6980 (Adam); antithetic sampling and Adam on the search distribution's mean
as in OpenAI-ES, Salimans et al. (2017), arXiv:1703.03864, with the softmax(-alpha f) consensus in place of
its rank weights.

Example
-------
With a constant ``sigma`` the samples stay that far from the point (``res.x`` is the best sample, the
point itself is ``res.consensus``); halve both step size and width as it closes in:

>>> import cbopt
>>> from cbopt.objectives import sphere
>>> from cbopt.schedules import StepDecay
>>> res = cbopt.minimize(sphere, x0=[2.0] * 10, method="ch-adam", rng=0, max_evals=20_000,
...                      options={"lr": StepDecay(0.1, 0.5, 50), "sigma": StepDecay(0.1, 0.5, 50)})
>>> bool(res.fun < 1e-5)
True

By default ``sigma`` and ``lr`` are a tenth of the start's scale (``init_scale``: a quarter of the box's
width, or 1 around ``x0``). For networks, :func:`cbopt.nn.train` (``method="ch-adam"``) starts it at the
network's weights with the defaults of :data:`cbopt.nn.NN_DEFAULTS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .._backend import Sampler, namespace, to_numpy
from ..numerics import consensus
from ..schedules import EffectiveSampleSize, Schedule, as_schedule
from ..validation import number
from ._base import Boundary, MethodSpec, Problem, apply_boundary, check_boundary, register
from .ach import start_points


@dataclass(frozen=True)
class CHAdamParams:
    """Hyper-parameters of consensus hopping with Adam (``None`` entries are filled from the problem)."""

    n_particles: int = 50  # N, antithetic samples per step (even)
    sigma: float | Schedule | None = None  # σ, sample width; default: init_scale / 10
    lr: float | Schedule | None = None  # Adam's step size; default: init_scale / 10, as sigma
    eta: float = 0.5  # the consensus weights' effective sample size, as a share of N (sets α every step)
    beta1: float = 0.9  # Adam's first-moment decay
    beta2: float = 0.999  # Adam's second-moment decay
    eps: float = 1e-8  # Adam's floor on the second moment's root
    weight_decay: float = 0.0  # decoupled weight decay (AdamW), per unit of lr
    boundary: Boundary = "reflect"  # box handling of the samples (the point itself is clipped into the box)

    def resolved(self, dim: int) -> CHAdamConfig:
        n = number("n_particles", self.n_particles, at_least=2, integer=True)
        if n % 2:
            raise ValueError(f"n_particles: must be even (antithetic pairs), got {n}")
        for name in ("beta1", "beta2"):
            number(name, getattr(self, name), at_least=0.0, below=1.0)
        number("eps", self.eps, above=0)
        number("weight_decay", self.weight_decay, at_least=0.0)
        check_boundary(self.boundary)
        sigma = None if self.sigma is None else as_schedule("sigma", self.sigma)
        lr = None if self.lr is None else as_schedule("lr", self.lr)
        return CHAdamConfig(int(n), sigma, lr, EffectiveSampleSize(self.eta, monotone=False),
                            float(self.beta1), float(self.beta2), float(self.eps), float(self.weight_decay),
                            self.boundary)


@dataclass(frozen=True)
class CHAdamConfig:
    """The resolved parameters the kernels read (fields as in :class:`CHAdamParams`; ``alpha`` the
    effective-sample-size rule built from ``eta``)."""

    n_particles: int
    sigma: Schedule | None
    lr: Schedule | None
    alpha: Schedule
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    boundary: Boundary


class CHAdamState(NamedTuple):
    x: Any  # (M, N, d) the samples of the last step
    energy: Any  # (M, N)
    consensus: Any  # (M, d) the current point x_k
    alpha: Any  # (M,)
    sigma: Any  # (M,)
    lr: Any  # (M,)
    moment1: Any  # (M, d) Adam's first moment of the hops
    moment2: Any  # (M, d) Adam's second moment
    spread: Any  # (M,) length of the last step (the cloud's radius sigma sqrt(d) before the first)


def _initial(schedule: Schedule | None, problem: Problem, like: Any) -> Any:
    """The first value of ``sigma`` or ``lr`` (M,): the schedule's, or a tenth of the start's scale."""
    if schedule is not None:
        return schedule.init(problem.n_runs, like)
    s0 = problem.init_scale
    s0 = float(s0) if isinstance(s0, (int, float)) else float(to_numpy(s0).mean())
    return namespace(like).full_like(like[:, 0], s0 / 10)


def _samples(centre: Any, sigma: Any, params: CHAdamConfig, problem: Problem, sampler: Sampler) -> Any:
    m, d = centre.shape
    e = sampler.normal((m, params.n_particles // 2, d)) * sigma[:, None, None]
    xp = namespace(e)
    cat = xp.cat if hasattr(xp, "cat") else xp.concatenate
    x = cat([centre[:, None, :] + e, centre[:, None, :] - e], 1)
    return apply_boundary(x, problem, params.boundary)


def init_population(params: CHAdamConfig, problem: Problem, sampler: Sampler) -> tuple[Any, Any]:
    if problem.population is not None:
        raise ValueError("method 'ch-adam' samples its own population: pass x0 (a start point), not population")
    x0 = start_points(problem, sampler)  # x0, or uniform in the box's central 80 %, as ach starts
    sigma = _initial(params.sigma, problem, x0)
    return _samples(x0, sigma, params, problem, sampler), x0


def init(params: CHAdamConfig, problem: Problem, sampler: Sampler, x: Any, energy: Any, aux: Any) -> CHAdamState:
    m = problem.n_runs
    sigma = _initial(params.sigma, problem, energy)
    x0 = aux
    zeros = 0 * x0
    state = CHAdamState(x, energy, x0, params.alpha.init(m, energy), sigma, _initial(params.lr, problem, energy),
                        zeros, zeros, 0 * sigma)
    # the first step, from the first samples; the reference spread is the cloud's radius sigma sqrt(d) (a first
    # step of length 0, at a point of symmetry, would make every later step read as divergence)
    return _step(state, params, problem, sampler, 1, x, energy)._replace(spread=sigma * x0.shape[-1] ** 0.5)


def ask(state: CHAdamState, params: CHAdamConfig, problem: Problem, sampler: Sampler, it: int) -> tuple[Any, Any]:
    return _samples(state.consensus, state.sigma, params, problem, sampler), None


def _step(state: CHAdamState, params: CHAdamConfig, problem: Problem, sampler: Sampler, t: int, x: Any,
          energy: Any) -> CHAdamState:
    alpha = params.alpha.update(state.alpha, t, energy)
    c, _ = consensus(x, energy, alpha)
    g = (state.consensus - c) / state.sigma[:, None]
    b1, b2 = params.beta1, params.beta2
    m1 = b1 * state.moment1 + (1 - b1) * g
    m2 = b2 * state.moment2 + (1 - b2) * g * g
    lr = state.lr if params.lr is None else params.lr.update(state.lr, t, energy)
    step = (m1 / (1 - b1**t)) / ((m2 / (1 - b2**t)) ** 0.5 + params.eps)
    if params.weight_decay:
        step = step + params.weight_decay * state.consensus
    new = state.consensus - lr[:, None] * step
    new = apply_boundary(new[:, None, :], problem, "clip" if problem.lo is not None else params.boundary)[:, 0]
    sigma = state.sigma if params.sigma is None else params.sigma.update(state.sigma, t, energy)
    moved = ((new - state.consensus) ** 2).sum(-1) ** 0.5
    return CHAdamState(x, energy, new, alpha, sigma, lr, m1, m2, moved)


def tell(state: CHAdamState, params: CHAdamConfig, problem: Problem, sampler: Sampler, it: int, x: Any, energy: Any,
         aux: Any) -> CHAdamState:
    return _step(state, params, problem, sampler, it + 1, x, energy)


def _extra_floats(params: CHAdamConfig, d: int) -> int:
    """The current point and Adam's two moments: three (d,) vectors per run beside the samples."""
    return 3 * d


SPEC = register(
    MethodSpec(
        name="ch-adam",
        params=CHAdamParams,
        state=CHAdamState,
        init_population=init_population,
        init=init,
        ask=ask,
        tell=tell,
        summary="Consensus hopping with Adam on the hop: x <- Adam step along the move to the consensus of "
                "N antithetic samples (many dimensions, networks)",
        reference="arXiv:2306.09778",
        supports_constraints=True,  # samples and point end in apply_boundary: the projection and the penalty apply
        extra_floats=_extra_floats,
        samples_population=True,
    )
)
