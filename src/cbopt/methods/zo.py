"""Zeroth-order gradient estimators as methods: ZO-SGD with Gaussian smoothing, SPSA, coordinate-wise
finite differences (CGE) or a ranking oracle.

Update rule (one iterate ``x_k`` per run; ``q`` directions ``u_i``, smoothing radius ``mu``)::

    gaussian  u_i ~ N(0, I)             g = 1/q sum_i (f(x + mu u_i) - f(x - mu u_i)) / (2 mu) u_i
    spsa      u_i ~ Rademacher (+-1)    same two-point formula
    cge       u_j = e_j, j in a subset  g_j = (f(x + mu e_j) - f(x - mu e_j)) / (2 mu)   (0 off the subset)
    rank      u_i ~ N(0, I), m points   g = 1/P sum over pairs (i better than j) (u_j - u_i),  P = m (m - 1) / 2
    x_{k+1} = x_k - lr g

The two-point Gaussian estimate is unbiased for the gradient of the smoothed objective
``f_mu(x) = E f(x + mu u)`` (exactly the gradient for quadratics); SPSA is unbiased for quadratics too;
CGE is the exact central difference on its coordinates. The rank estimator reads only the *order* of
the ``m`` values (strictly monotone transforms of ``f`` leave the run unchanged): its mean is a positive
multiple of the smoothed gradient direction (ZO-RankSGD). The iterate itself is not evaluated: the
result's ``x`` is the best evaluated point, its ``consensus`` the last iterate. Every step evaluates the
same number of points (``n_particles``: 2q, 2k or m); before the first step the stencil is the start
point (``x0`` exactly, or a uniform draw in the box).

References: Nesterov, Spokoiny (2017) random gradient-free minimization (Gaussian smoothing); Spall
(1992) SPSA; Chen et al. (2023) DeepZero, arXiv:2310.02025 (CGE); Tang et al. (2023) ZO-RankSGD,
arXiv:2303.03751. Comparable to ``torch.optim.SGD`` driven by a gradient estimate; for torch modules
see :class:`cbopt.zo.ModuleEstimator` (in-place, no copy of the model).

Example
-------
>>> import cbopt
>>> res = cbopt.minimize(lambda X: ((X - 1) ** 2).sum(-1), x0=[0.0] * 3, method="zo-gaussian", rng=0,
...                      max_evals=4000)
>>> bool(abs(res.consensus - 1).max() < 1e-3)
True
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from .._backend import Sampler, namespace, repeat
from ..estimators import ESTIMATORS, Estimator
from ..schedules import Schedule, as_schedule
from ..validation import number
from ._base import Boundary, MethodSpec, Problem, apply_boundary, check_boundary, initial_population, register


@dataclass(frozen=True)
class ZOParams:
    """Hyper-parameters shared by the zeroth-order methods (``None``: the method's default)."""

    kind: ClassVar[str] = "gaussian"  # the estimator: a row of cbopt.estimators.ESTIMATORS

    lr: float | Schedule = 0.01  # η, step size of x <- x - η g (a schedule: per step)
    mu: float = 1e-3  # μ, smoothing radius / finite-difference step
    n_directions: int | None = None  # q directions (gaussian, spsa), m points (rank), k coordinates (cge)
    boundary: Boundary = "reflect"  # box handling of the iterate and the points

    @property
    def estimator(self) -> Estimator:
        return ESTIMATORS[self.kind]

    def resolved(self, dim: int) -> ZOConfig:
        est = self.estimator
        q = self.n_directions
        if q is None:
            q = dim if est.every_coordinate else est.default_directions
        q = number("n_directions", q, at_least=est.fewest, at_most=dim if est.every_coordinate else None,
                   integer=True)
        number("mu", self.mu, above=0)
        check_boundary(self.boundary)
        return ZOConfig(self.kind, as_schedule("lr", self.lr), self.mu, q, self.boundary)


@dataclass(frozen=True)
class GaussianParams(ZOParams):
    kind: ClassVar[str] = "gaussian"


@dataclass(frozen=True)
class SPSAParams(ZOParams):
    kind: ClassVar[str] = "spsa"


@dataclass(frozen=True)
class CGEParams(ZOParams):
    kind: ClassVar[str] = "cge"


@dataclass(frozen=True)
class RankParams(ZOParams):
    kind: ClassVar[str] = "rank"

    lr: float | Schedule = 0.05  # η: the rank estimate has no gradient scale, |g| = O(1)


@dataclass(frozen=True)
class ZOConfig:
    """The resolved parameters the kernels read: the estimator, the schedule, the direction count."""

    kind: str = field(metadata={"fingerprint": False})  # the estimator's row (the method's name says it)
    lr: Schedule
    mu: float
    n_directions: int
    boundary: Boundary

    @property
    def estimator(self) -> Estimator:
        return ESTIMATORS[self.kind]

    @property
    def n_particles(self) -> int:
        """Points evaluated per step."""
        return self.estimator.points(self.n_directions)


class ZOState(NamedTuple):
    x: Any  # (M, n, d) the points evaluated last
    energy: Any  # (M, n)
    consensus: Any  # (M, d) the iterate x_k
    lr: Any  # (M,)
    spread: Any  # (M,) length of the last step (mu sqrt(d) before the first)


# -- the kernel -----------------------------------------------------------------------------------------


def init_population(params: ZOConfig, problem: Problem, sampler: Sampler) -> tuple[Any, Any]:
    # one point per run: exactly x0 (no spread around it), or a uniform draw in the box
    return initial_population(dataclasses.replace(problem, init_scale=0.0), 1, sampler), None


def init(params: ZOConfig, problem: Problem, sampler: Sampler, x: Any, energy: Any, aux: Any) -> ZOState:
    m, _, d = x.shape
    n = params.n_particles
    xp = namespace(x)
    xs, es = repeat(x, n, 1), repeat(energy, n, 1)
    lr = params.lr.init(m, energy)
    spread = xp.full_like(lr, params.mu * math.sqrt(d))
    return ZOState(xs, es, x[:, 0], lr, spread)


def ask(state: ZOState, params: ZOConfig, problem: Problem, sampler: Sampler, it: int) -> tuple[Any, Any]:
    m, d = state.consensus.shape
    est = params.estimator
    u = est.directions(sampler, m, params.n_directions, d, state.consensus)
    return apply_boundary(est.stencil(state.consensus, u, params.mu), problem, params.boundary), u


def tell(
    state: ZOState, params: ZOConfig, problem: Problem, sampler: Sampler, it: int, x: Any, energy: Any, u: Any
) -> ZOState:
    g = params.estimator.combine(u, energy, params.mu)
    lr = params.lr.update(state.lr, it, energy)
    c = apply_boundary((state.consensus - lr[:, None] * g)[:, None, :], problem, params.boundary)[:, 0]
    step = ((c - state.consensus) ** 2).sum(-1) ** 0.5
    return ZOState(x, energy, c, lr, step)


_SUMMARY = {
    "gaussian": "ZO-SGD, two-point Gaussian-smoothing gradient estimate (q directions)",
    "spsa": "ZO-SGD, SPSA: two-point estimate along Rademacher directions",
    "cge": "ZO-SGD, coordinate-wise central differences (DeepZero's CGE), all or k random coordinates",
    "rank": "ZO-RankSGD: descends using only the order of m perturbed points",
}
_REFERENCE = {
    "gaussian": "Nesterov & Spokoiny 2017 (doi:10.1007/s10208-015-9296-2)",
    "spsa": "Spall 1992 (doi:10.1109/9.119632)",
    "cge": "arXiv:2310.02025",
    "rank": "arXiv:2303.03751",
}

SPECS = {
    p.kind: register(
        MethodSpec(
            name=f"zo-{p.kind}",
            params=p,
            state=ZOState,
            init_population=init_population,
            init=init,
            ask=ask,
            tell=tell,
            summary=_SUMMARY[p.kind],
            reference=_REFERENCE[p.kind],
            supports_constraints=True,  # points and iterate end in apply_boundary: projection and penalty apply
            resizable=False,  # n_particles follows from n_directions
            initial_points=1,
        )
    )
    for p in (GaussianParams, SPSAParams, CGEParams, RankParams)
}
