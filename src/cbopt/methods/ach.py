"""Adaptive consensus hopping (ACH): consensus hopping that learns its search distribution across steps.

Update rule (per run; ``lambda`` samples per step, dimension ``d``)::

    y_i   = B D z_i,  z_i ~ N(0, I),   x_i = bounce(m + sigma y_i)         C = B D^2 B^T
    w     = softmax(-alpha f(x)),  alpha such that ESS(w) = (sum w)^2 / sum w^2 = mu_eff
    m'    = sum_i w_i x_i                                                  the consensus point
    p_s  <- (1 - c_s) p_s + sqrt(c_s (2 - c_s) mu_w) C^{-1/2} (m' - m) / sigma
    sigma <- sigma exp(min(1, (c_s / d_s) (|p_s| / E|N(0, I)| - 1)))       cumulative step-size adaptation
    p_c  <- (1 - c_c) p_c + h_s sqrt(c_c (2 - c_c) mu_w) (m' - m) / sigma
    C    <- (1 - c_1 - c_mu + c_mu a) C + c_1 p_c p_c^T
            + c_mu sum_i w_i v_i v_i^T - c_mu a sum_i nu_i (d / |C^{-1/2} y_i|^2) y_i y_i^T

with ``v_i = (x_i - m) / sigma`` (the deviation of the point that was evaluated), ``mu_w = 1 / sum w^2`` and
``nu`` CMA-ES's negative weights on the worse half of the samples by rank (``nu_i ∝ ln i - ln((lambda + 1)/2)``,
summing to 1), which actively shrink the covariance along bad directions, scaled by ``a`` so that C stays
positive definite. ``bounce`` keeps the points in the box: reflected at the faces (``boundary="reflect"``, the
default with the full model) or clipped onto them (``"clip"``, the default with sep, where a coordinate whose
consensus is held at a face counts in ``|p_s|`` at its expectation), so every evaluated point, and so every
consensus, lies in the box. Once 30 % of the coordinates' consensus sits at a face, those are drawn around a mean
``face_push`` sds past it and clipped onto it, so that a corner optimum is hit exactly (:func:`_corner`).
The constants (``c_s, d_s, c_c, c_1, c_mu, a``) are those of Hansen's tutorial for a population of ``lambda``
with ``mu_eff`` effective samples; ``sigma_damping=3`` damps ``d_s`` of large populations as pycma 4 does
(the default portfolio's runs after one ended on a plateau). ``sampling="orthogonal"`` makes the ``z_i`` of a
step mutually orthogonal in blocks of d, each keeping its length (:func:`orthogonal`; the default portfolio's
runs on budgets of at most 1000 d evaluations up to d = 50). With ``surrogate`` (the default with the full
model up to d = 10) the first sample of a step is the minimiser, within a trust region, of a quadratic fitted to
the last steps' values, in the frame in which the ``z_i`` are drawn (:mod:`cbopt.methods.surrogate`).

The new point is the softmax(-alpha f) consensus of the samples, and alpha is set by the Laplace principle at a
fixed effective sample size, so the weights are invariant to the scale of ``f``. What differs from consensus
hopping is only what is *learned across steps*: a rotation-invariant covariance ``C`` and a global step size
``sigma`` driven by the path of consensus moves rather than by the swarm's collapse. With ``adapt=False`` both
stay fixed (``C = I``, ``sigma = sigma0``) and the method *is* consensus hopping (:mod:`cbopt.methods.ch`):
``x_i ~ N(m, sigma^2 I)``, ``m' = c_alpha``, a Monte-Carlo proximal step of size ``tau = alpha sigma^2``, so every
tool of :mod:`cbopt.thesis` applies. With softmax weights replaced by rank weights it would be CMA-ES.

The method stops itself, as CMA-ES does, when a step can no longer change anything (``criteria``: tolfun,
tolx, no effect of an axis or a coordinate, condition of C above 1e14, stagnation of the best and median
values), and, inside a restart sequence, when it is clearly beaten by a better value known elsewhere
(``f_ref``) or has used its share of the budget (``max_gen``). With the full covariance (``model="full"``,
the default up to d = 50) a step costs O(lambda d^2), plus an eigendecomposition every
``max(1, 1 / (10 d (c_1 + c_mu)))`` steps; ``model="sep"`` (diagonal C, the default above d = 50, where the
box is handled by clipping and the step size reads only the coordinates not held at a face) and
``model="lm"`` (limited-memory directions) cost O(lambda d) and O(lambda d k): :mod:`cbopt.methods.covariance`.

References: consensus hopping and the Laplace principle, Riedl, Klock, Geldhauser, Fornasier (2023),
arXiv:2306.09778; consensus hopping as a (1, lambda) evolution strategy and delta-CBO, Fornasier, Huang,
Klemenc, Malaspina (2026), arXiv:2602.11677; the covariance, path and step-size updates and the termination
criteria, Hansen, The CMA Evolution Strategy: A Tutorial (2016), arXiv:1604.00772; consensus-based sampling,
Carrillo, Hoffmann, Stuart, Vaes (2022), arXiv:2106.02519. Comparable to ``cma.CMAEvolutionStrategy``
(pycma) with ``CMA_active=True``.

Example
-------
>>> import numpy as np, cbopt
>>> from cbopt.objectives import rosenbrock
>>> res = cbopt.minimize(rosenbrock, bounds=[(-5, 5)] * 5, method="ach", rng=0, max_evals=20_000)
>>> bool(res.fun < 1e-10), res.reason
(True, 'CONVERGED')
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from .._backend import Sampler, amax, amin, arange_like, full_like_shape, median, namespace, ranks, to_numpy
from ..numerics import consensus_weights, ess_weights, row_square_sums, weighted_mean
from ..schedules import Schedule, as_schedule
from ..validation import choice, flag, number
from ._base import Boundary, MethodSpec, Problem, Restarts, apply_boundary, check_boundary, placed, register
from .covariance import BLOCK, MODELS, Constants, cma_constants, get_model
from .surrogate import RADIUS, SURROGATE_MAX, n_terms, quadratic_step, ring_steps

#: the method's own termination criteria: (name, status), code k is CRITERIA[k - 1]
CRITERIA = (
    ("tolfun", "CONVERGED"),  # best values of the recent steps and the current values within tolfun
    ("tolx", "CONVERGED"),  # sigma * max(sqrt(C_ii), |p_c|) below tolx * init_scale
    ("noeffectaxis", "CONVERGED"),  # 0.1 sigma along a principal axis leaves the mean unchanged
    ("noeffectcoord", "CONVERGED"),  # 0.2 sigma sqrt(C_ii) leaves a coordinate of the mean unchanged
    ("conditioncov", "CONVERGED"),  # condition number of C above 1e14 (full and sep)
    ("stagnation", "STAGNATION"),  # median of the best and median values no better than a window ago
    ("tolupsigma", "DIVERGED"),  # sigma grew 1e20 times its start relative to the largest axis
    ("dominated", "STAGNATION"),  # clearly worse than f_ref, with too little progress left to catch up
    ("max_gen", "MAX_ITER"),  # its share of a restart budget is used and it does not hold the best value
)
_CODE = {name: k for k, (name, _) in enumerate(CRITERIA, start=1)}


@dataclass(frozen=True)
class ACHParams:
    """Hyper-parameters of ACH (``None`` entries are filled by :meth:`resolved`)."""

    n_particles: int | None = None  # λ, samples per step; default 4 + ⌊3 ln d⌋
    sigma0: float | None = None  # σ0, initial step size; default: the problem's init_scale (0.2 × box width)
    ess: float | None = None  # μ_eff / λ, target effective sample size of the consensus weights; default that
    #                           of CMA-ES's log-rank weights (about 0.3)
    alpha: float | Schedule | None = None  # α; None: chosen every step for the target ESS (Laplace principle)
    adapt: bool = True  # learn C and σ across steps; False: C = I, σ = σ0 (consensus hopping)
    active: bool = True  # shrink C along the anti-consensus of the worst samples
    boundary: Boundary | Literal["auto"] = "auto"  # box handling of the samples (needs bounds); "auto": see
    #                                               default_boundary ("clip" with the sep model, else "reflect")
    tolx: float = 1e-11  # stop when σ max(sqrt(C_ii), |p_c|) < tolx × init_scale (the problem's scale)
    tolfun: float = 1e-12  # stop when the recent best values and the current values lie within tolfun
    f_ref: float = math.inf  # a value reached elsewhere (restarts): stop once clearly dominated by it
    max_gen: int | None = None  # stop after this many steps unless this run holds a value below f_ref
    model: str | None = None  # the search distribution: "full", "sep" or "lm" (cbopt.methods.covariance);
    #                           None: by dimension, see default_model
    ranks: bool = False  # weigh by rank, softmax(-alpha rank(f)) at the target ESS: blind to outliers (noise)
    sigma_down: float = 1.0  # divide the step size's decreases by this: under noisy selection the evolution
    #                          path shortens and CSA would collapse sigma (noisy objectives: 3)
    sigma_pace: float = 2.0  # sep model: the step size's rate c_s is at least sigma_pace λ / d (LM-MA-ES's
    #                          pace, for short budgets); 0: CMA's own c_s. A restart sequence (the default)
    #                          sets it from the budget (LONG_BUDGET)
    face_push: float = 1.0  # with a box, once at least 30 % of the coordinates' consensus sits at a face:
    #                         sample those from a mean this many sampling sds past their face and clip them
    #                         onto it, so that a corner optimum is hit exactly (see _corner); 0: off
    sigma_damping: float = 1.0  # damp the step size of large populations more (covariance.step_damping):
    #                             1 the tutorial's; the default portfolio sets PLATEAU's (3) once one of its
    #                             runs ended on a plateau
    sampling: Literal["gaussian", "orthogonal"] = "gaussian"  # "orthogonal": the z_i of a step mutually
    #                             orthogonal in blocks of d (see orthogonal); a restart sequence sets it for
    #                             short budgets (SHORT_BUDGET)
    surrogate: bool | None = None  # the model step (cbopt.methods.surrogate): one sample of each step at the
    #                             minimiser of a quadratic fitted to the recent values; None: on with the full
    #                             model up to SURROGATE_MAX (10) dimensions; needs the full model and adapt

    def resolved(self, dim: int) -> ACHConfig:
        lam = 4 + int(3 * math.log(dim)) if self.n_particles is None else self.n_particles
        lam = number("n_particles", lam, at_least=2, integer=True)
        number("sigma0", self.sigma0, above=0, none=True)
        ess = cma_mueff(int(lam)) / lam if self.ess is None else self.ess
        number("ess", ess, above=0, at_most=1)
        for name in ("adapt", "active", "ranks"):
            flag(name, getattr(self, name))
        if self.surrogate is not None:
            flag("surrogate", self.surrogate)
        if self.boundary != "auto":
            check_boundary(self.boundary)
        number("tolx", self.tolx, at_least=0)
        number("tolfun", self.tolfun, at_least=0)
        number("f_ref", self.f_ref, finite=False)  # inf: none
        number("max_gen", self.max_gen, at_least=1, integer=True, none=True)
        number("sigma_down", self.sigma_down, at_least=1)
        number("sigma_pace", self.sigma_pace, at_least=0)
        number("face_push", self.face_push, at_least=0)
        number("sigma_damping", self.sigma_damping, at_least=1)
        choice("sampling", self.sampling, SAMPLINGS)
        alpha = None if self.alpha is None else as_schedule("alpha", self.alpha)
        model = default_model(dim) if self.model is None else self.model
        if not isinstance(model, str) or model.lower() not in MODELS:
            raise ValueError(f"model: expected None or one of {list(MODELS)}, got {self.model!r}")
        model = model.lower()
        boundary = default_boundary(model) if self.boundary == "auto" else self.boundary
        surrogate = self.surrogate
        if surrogate is None:
            surrogate = model == "full" and self.adapt and dim <= SURROGATE_MAX
        elif surrogate and (model != "full" or not self.adapt):
            raise ValueError(f"surrogate=True needs model='full' and adapt=True (got model={model!r}, "
                             f"adapt={self.adapt}): the quadratic is fitted in the learned covariance's frame")
        return ACHConfig(int(lam), self.sigma0, float(ess), alpha, self.adapt, self.active, boundary, self.tolx,
                         self.tolfun, self.f_ref, self.max_gen, model, self.ranks,
                         float(self.sigma_down), float(self.sigma_pace), float(self.face_push),
                         float(self.sigma_damping), self.sampling, bool(surrogate))


@dataclass(frozen=True)
class ACHConfig:
    """The resolved parameters the kernels read (fields as in :class:`ACHParams`; ``sigma0`` None: the
    problem's scale; ``alpha`` None: chosen each step for the target ESS)."""

    n_particles: int
    sigma0: float | None
    ess: float
    alpha: Schedule | None
    adapt: bool
    active: bool
    boundary: Boundary
    tolx: float
    tolfun: float
    f_ref: float
    max_gen: int | None
    model: str = "full"
    ranks: bool = False
    sigma_down: float = 1.0
    sigma_pace: float = 2.0
    face_push: float = 1.0
    sigma_damping: float = 1.0
    sampling: str = "gaussian"
    surrogate: bool = False


#: the largest dimension in which the default search distribution is the full covariance (see default_model)
FULL_MAX = 50


def default_model(dim: int) -> str:
    """The search distribution ``model=None`` picks: the full covariance up to ``FULL_MAX`` dimensions, where
    its O(d^2) cost per sample is small against the objective and it learns every correlation; the diagonal
    (sep) above, whose cost is linear in d (docs/scale.md has the measurements behind the threshold)."""
    return "full" if dim <= FULL_MAX else "sep"


def default_boundary(model: str) -> Boundary:
    """The box handling ``boundary="auto"`` picks: ``"clip"`` with the sep model, ``"reflect"`` with full (the
    measured default on BBOB at d <= 50) and lm. Under clipping a coordinate whose optimum lies on a face is
    held there exactly, and the step size reads only the coordinates still free (:func:`_free`): on an
    optimum at a corner of the box (BBOB f5) at d = 80 ... 640 reflection converges to the corner by a
    shrinking fold, far slower (docs/scale.md)."""
    return "clip" if model == "sep" else "reflect"


#: budgets of at least this many evaluations per dimension are long: a restart sequence runs the sep model
#: at CMA's own step-size rate (``sigma_pace=0``) there, at LM-MA-ES's faster pace below (docs/scale.md: on
#: bbob-largescale d = 160 CMA's rate reaches 0.277 of the targets at 1e3 d against 0.260, and 0.215 against
#: 0.197 at 300 d; at 100 d they tie; at d = 1000 and 10 d or 100 d the fast pace is ahead)
LONG_BUDGET = 200


#: budgets of at most this many evaluations per dimension are short: up to FULL_MAX dimensions a restart
#: sequence samples orthogonally there (docs/ach.md: BBOB instances 1-15 with 100 d evaluations, 0.259 / 0.223 /
#: 0.185 of the targets at d = 5 / 10 / 20 against 0.249 / 0.198 / 0.185 with Gaussian samples; level with
#: 1000 d; behind with 1e4 d)
SHORT_BUDGET = 1000


def budget_options(max_evals: float | None, dim: int) -> dict[str, Any]:
    """The options a restart sequence with ``max_evals`` evaluations gives its runs (Restarts.budget)."""
    opts: dict[str, Any] = {}
    if max_evals is not None and max_evals >= LONG_BUDGET * dim:
        opts["sigma_pace"] = 0.0
    if max_evals is not None and max_evals <= SHORT_BUDGET * dim and dim <= FULL_MAX:
        opts["sampling"] = "orthogonal"
    return opts


#: the values of ACH's ``sampling`` option
SAMPLINGS = ("gaussian", "orthogonal")


def orthogonal(z: Any) -> Any:
    """Orthogonal sampling: the standard normal rows of ``z`` (M, lambda, d) made mutually orthogonal in blocks
    of d rows (a QR factorisation, signs fixed so that the directions are uniform) and given back their own
    lengths. Each row is still N(0, I) (a uniform direction, a chi-distributed length independent of it), but
    within a block no two share any part of a direction: a step of lambda <= d samples explores lambda
    distinct directions instead of lambda random, partly overlapping ones. At d >> lambda independent
    Gaussian rows are nearly orthogonal already (cosines of order 1 / sqrt(d)).

    Reference: Wang, Emmerich, Bäck, Mirrored orthogonal sampling with pairwise selection in evolution
    strategies, SAC 2014."""
    _, lam, d = z.shape
    if lam < 2 or d < 2:
        return z
    xp = namespace(z)
    parts = []
    for a in range(0, lam, d):
        block = z[:, a : a + d, :]
        q, r = xp.linalg.qr(block.swapaxes(-1, -2))  # q (M, d, k): orthonormal columns
        i = arange_like(block.shape[1], z)
        parts.append(q.swapaxes(-1, -2) * xp.sign(r[:, i, i])[:, :, None])
    u = parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=1)
    return u * ((z * z).sum(-1) ** 0.5)[:, :, None]


def cma_mueff(lam: int) -> float:
    """``mu_eff = (sum w)^2 / sum w^2`` of CMA-ES's default weights ``ln((lam + 1) / 2) - ln i``, i <= lam/2."""
    mu = lam // 2
    w = np.log((lam + 1) / 2) - np.log(np.arange(1, mu + 1))
    return float(w.sum() ** 2 / (w * w).sum())


def constants(dim: int, lam: int, mueff: float, active: bool, model: str = "full", pace: float = 2.0,
              damping: float = 1.0) -> Constants:
    """The learning rates and damping of ``model`` (see :func:`cbopt.methods.covariance.cma_constants`)."""
    return _constants(model, dim, lam, mueff, active, pace, damping)


_constants = functools.lru_cache(maxsize=256)(cma_constants)


def _run_constants(params: ACHConfig, d: int, lam: int, active: bool) -> Constants:
    """:func:`constants` of a run with these params (``active``: its active update, as the caller reads it),
    with its ``sigma_down``."""
    k = constants(d, lam, params.ess * lam, active, params.model, params.sigma_pace, params.sigma_damping)
    return k if params.sigma_down == 1.0 else k._replace(down=params.sigma_down)


#: the criteria after which a run counts as converged for the restart policies (not stopped early, not diverged)
CONVERGED = ("tolfun", "tolx", "noeffectaxis", "noeffectcoord", "conditioncov", "stagnation")
#: the options of a run on a noisy objective (cbopt.noisy, docs/noisy.md): weights by rank (an outlier weighs as
#: one good sample) and decreases of sigma damped three times (noisy selection shortens the evolution path, and
#: CSA would collapse sigma before the population has averaged the noise out)
NOISY = {"ranks": True, "sigma_down": 3.0, "surrogate": False}
#: the options of the runs of a restart sequence after one ended on a plateau (:func:`ended_on_plateau`): the
#: step size of large populations damped as pycma 4 damps it, so that it does not fall below the plateaus'
#: scale before the swarm has found the lower ones (BBOB's step ellipsoid f7, docs/ach.md)
PLATEAU = {"sigma_damping": 3.0}
#: the termination criteria are checked every CHECK steps
CHECK = 5


class ACHState(NamedTuple):
    x: Any  # (M, λ, d) the points evaluated last (in the box)
    energy: Any  # (M, λ)
    consensus: Any  # (M, d) the current point m
    alpha: Any  # (M,)
    sigma: Any  # (M,) global step size
    spread: Any  # (M,) median distance of the samples to m
    cov: Any  # (M, d, d) C
    basis: Any  # (M, d, d) B, eigenvectors of C (columns)
    scale: Any  # (M, d) D, square roots of the eigenvalues of C
    ps: Any  # (M, d) conjugate evolution path (step size)
    pc: Any  # (M, d) evolution path (rank-one update)
    sigma0: Any  # (M,) the problem's initial scale (init_scale): tolx is relative to it, in every run of a sequence
    best: Any  # (M,) best value of this run
    recent: Any  # (M, hist) ring: the best value of each of the last steps (tolfun, dominated)
    block: Any  # (M, 2, BLOCK) the best and median values of the steps of the current block
    blocks: Any  # (M, 2, blocks) ring: medians over each past block of the best and the median values
    stop: Any  # (M,) code of the criterion that fired (0: none)
    ring_x: Any  # (M, G, λ, d) the points of the last G steps (the model step's data; G = 0 without it)
    ring_f: Any  # (M, G, λ) their values (+inf: not yet filled)


def _restart_sigma0(params: ACHConfig, problem: Problem) -> float:
    """The initial step size a restart starts from (the restart contract's ``sigma0``; a module-level function,
    so that a method's spec pickles)."""
    return default_sigma0(params, problem)[0]


def default_sigma0(params: ACHConfig, problem: Problem) -> tuple[float, Any]:
    """``(sigma0, per-coordinate scale / sigma0)``: from ``params.sigma0`` or the problem's ``init_scale``."""
    scale = problem.init_scale
    if isinstance(scale, (int, float)):
        s0 = float(scale)
        shape = None
    else:
        s0 = float(namespace(scale).mean(scale))
        shape = scale / s0
    if params.sigma0 is not None:
        s0 = float(params.sigma0)
    return s0, shape


def start_points(problem: Problem, sampler: Sampler) -> Any:
    """The start ``m0`` (M, d): ``x0`` when given, else uniform in the central 80 % of the box."""
    m = problem.n_runs
    if problem.x0 is not None:  # no draw: the same stream as consensus hopping from x0
        x0 = problem.x0[None, :]
        return x0.repeat(m, 0) if isinstance(x0, np.ndarray) else x0.repeat(m, 1)
    if problem.lo is None:
        raise ValueError("give x0 or bounds to define where the search starts")
    width = problem.hi - problem.lo
    return problem.lo + width * (0.1 + 0.8 * sampler.uniform((m, problem.dim)))


def init_population(params: ACHConfig, problem: Problem, sampler: Sampler) -> tuple[Any, Any]:
    if problem.population is not None:
        raise ValueError("method 'ach' samples its own population: pass x0 (a start point), not population")
    m0 = start_points(problem, sampler)
    s0, shape = default_sigma0(params, problem)
    y = sampler.normal((problem.n_runs, params.n_particles, problem.dim))
    if params.sampling == "orthogonal":
        y = orthogonal(y)
    if shape is not None:
        y = y * shape
    x = apply_boundary(m0[:, None, :] + s0 * y, problem, params.boundary)
    return x, (m0, y)


def init(params: ACHConfig, problem: Problem, sampler: Sampler, x: Any, energy: Any, aux: Any) -> ACHState:
    m0, y = aux
    xp = namespace(x)
    mr, lam, d = x.shape
    s0, shape = default_sigma0(params, problem)
    scale0 = default_sigma0(dataclasses.replace(params, sigma0=None), problem)[0]  # the problem's, not this run's
    like = energy[:, 0]
    diag = xp.ones_like(m0) if shape is None else shape + 0 * m0
    model = get_model(params.model)
    cov, basis, scale = model.init(m0, diag)
    k = _run_constants(params, d, lam, params.active and params.adapt)
    inf = float("inf")
    zeros = xp.zeros_like(m0)
    sigma = xp.full_like(like, s0)
    alpha = params.alpha.init(mr, energy) if params.alpha is not None else xp.zeros_like(like)
    state = ACHState(
        x=x, energy=energy, consensus=m0, alpha=alpha, sigma=sigma, spread=xp.zeros_like(like), cov=cov,
        basis=basis, scale=scale, ps=zeros, pc=zeros, sigma0=xp.full_like(like, scale0), best=xp.full_like(like, inf),
        recent=full_like_shape((mr, k.hist), inf, x), block=full_like_shape((mr, 2, BLOCK), inf, x),
        blocks=full_like_shape((mr, 2, k.blocks), inf, x), stop=xp.zeros_like(like, dtype=xp.int64),
        **_ring(params, x, energy),
    )
    return _update(state, params, problem, x, energy, model.drawn(y, diag) if params.adapt else y, 0)


def _ring(params: ACHConfig, x: Any, energy: Any) -> dict[str, Any]:
    """The model step's fields of a first state: the ring holding the first population (no ring without it)."""
    mr, lam, d = x.shape
    g = ring_steps(d, lam) if params.surrogate else 0
    ring_x = full_like_shape((mr, g, lam, d), 0.0, x)
    ring_f = full_like_shape((mr, g, lam), float("inf"), energy)
    if g:
        ring_x[:, 0], ring_f[:, 0] = x, energy
    return dict(ring_x=ring_x, ring_f=ring_f)


def _fits(state: ACHState, params: ACHConfig, problem: Problem, it: int) -> bool:
    """Whether step ``it`` may place a model point: the model step is on, the ring holds more samples than the
    quadratic has parameters, and the problem has no integer coordinates (its plateaus defeat a quadratic)."""
    if not params.surrogate or problem.integers is not None:
        return False
    g, lam, d = state.ring_x.shape[1:]
    return min(it, g) * lam > n_terms(d)


def _model_step(state: ACHState, z: Any) -> None:
    """Replace the first row of the fresh draw ``z``, in place, by the model step
    (:func:`cbopt.methods.surrogate.quadratic_step`, in the whitened frame in which ``z`` is drawn) in the runs
    whose model is usable."""
    xp = namespace(z)
    mr, g, lam, d = state.ring_x.shape
    dev = (state.ring_x.reshape(mr, g * lam, d) - state.consensus[:, None, :]) / state.sigma[:, None, None]
    u = (dev @ state.basis) / state.scale[:, None, :]  # D^-1 B^T (x - m) / sigma
    step, ok = quadratic_step(u, state.ring_f.reshape(mr, g * lam), RADIUS * math.sqrt(d))
    z[:, 0, :] = xp.where(ok[:, None], step, z[:, 0, :])


def _remember(state: ACHState, x: Any, energy: Any, it: int) -> ACHState:
    """The state with step ``it``'s points in the model step's ring (new arrays; the state's are left as they are)."""
    g = state.ring_x.shape[1]
    ring_x, ring_f = _copy(state.ring_x), _copy(state.ring_f)
    ring_x[:, it % g], ring_f[:, it % g] = x, energy
    return state._replace(ring_x=ring_x, ring_f=ring_f)


def ask(state: ACHState, params: ACHConfig, problem: Problem, sampler: Sampler, it: int) -> tuple[Any, Any]:
    mr, lam, d = state.x.shape
    z = sampler.normal((mr, lam, d))
    if params.sampling == "orthogonal":
        z = orthogonal(z)
    if _fits(state, params, problem, it):
        _model_step(state, z)  # z is this step's own draw
    if params.adapt:
        k = _run_constants(params, d, lam, params.active)
        y, aux = get_model(params.model).sample(state, k, z, it)
    else:
        y = aux = z
    m = state.consensus
    corner = _corner(state, params, problem)
    if corner is not None:
        m = m + corner * (state.sigma[:, None] * get_model(params.model).sd(state))  # past the faces
    if problem.integers is None and (corner is None or params.boundary != "reflect"):
        return placed(m, state.sigma, y, problem, params.boundary), aux
    x = state.sigma[:, None, None] * y
    x += m[:, None, :]  # x is the step's own array: the box handling may write into it, unless it needs x after
    if problem.integers is not None:
        x = x + _integer_floor(state, problem, params, lam) * sampler.normal((mr, lam, d))
    out = apply_boundary(x, problem, params.boundary, inplace=corner is None or params.boundary != "reflect")
    if corner is not None and params.boundary == "reflect":  # the pushed coordinates land on their face
        out = namespace(x).where(corner[:, None, :] != 0, x.clip(problem.lo, problem.hi), out)
    return out, aux


#: the share of the coordinates whose consensus must sit at a face before _corner pushes them past it
CORNER_SHARE = 0.3
#: a consensus within this share of the box's width (and 1.5 sampling sds) of a face sits at it (_at_faces)
FACE_REACH = 1e-2


def _corner(state: ACHState, params: ACHConfig, problem: Problem) -> Any:
    """(M, d): how far past its face (in sampling sds, negative at the lower face) each coordinate's samples
    are centred: ``face_push`` for the coordinates whose consensus sits at a face (within 1.5 sampling sds
    and 1 % of the width) in runs where at least CORNER_SHARE of them do, 0 elsewhere; None when the rule does
    not apply (no box, free dynamics, lm, ``face_push=0``).

    Reflection folds a sample that overshoots a face back inside, so a coordinate whose optimum is on the face
    is never sampled there, and its folds add noise to every value: when many coordinates sit at their faces
    (an optimum at a corner of the box, like BBOB's linear slope f5) the free ones drown in it and sigma
    shrinks before they arrive. Pushed one sd past the face and clipped, 84 % of a coordinate's samples lie
    exactly on it (f5: all of its targets within 1e2·d at d = 5 and 10, 0.83 at d = 20, where reflection
    reached 0.1-0.3 of them). A push of 2 (98 %) held optima 0.5-1 % inside the box at the face, and so did a
    push growing with the number of coordinates at faces; a push of 1 solved every such case tried (d = 3 to
    20). A few coordinates at a face (an ill-conditioned function's weak ones wandering there) leave
    reflection in charge: pushed by 2, they were held at the face (f10 at d = 20). Under clipping (the
    sep model) half of a held coordinate's samples land on its face; pushed, 84 % do (bbob-largescale f5 at
    d = 80 and 160: 0.43 and 0.41 of its targets within 1e2·d instead of 0.22 and 0.20)."""
    if (params.face_push == 0 or not params.adapt or params.boundary not in ("reflect", "clip")
            or params.model == "lm"
            or problem.lo is None or problem.project is not None):
        return None
    xp = namespace(state.consensus)
    m = state.consensus
    low, high = _at_faces(state, problem, get_model(params.model), m)
    many = ((low | high).sum(-1) >= CORNER_SHARE * m.shape[-1])[:, None]
    push = xp.where(many, 0 * m + params.face_push, 0 * m)  # in m's dtype and device
    return xp.where(low, -push, xp.where(high, push, 0 * m))


def _integer_floor(state: ACHState, problem: Problem, params: ACHConfig, lam: int) -> Any:
    """(M, 1, d) the extra standard deviation that keeps the sampling std of every integer coordinate at
    ``min(0.2, mueff / d)`` at least (the lower bound of LB-CMA-ES, Marty et al., PPSN 2024): rounding makes
    the landscape flat between integers, and a distribution narrower than that never leaves the current one."""
    floor = min(0.2, params.ess * lam / problem.dim)
    # the variance the samples are drawn with (for the full model (B D)^2 summed over j, not diag(C), which runs
    # ahead of B and D between eigendecompositions); without adaptation the samples are sigma N(0, I)
    var = get_model(params.model).variance(state) if params.adapt else 1.0
    extra = (floor * floor - state.sigma[:, None] ** 2 * var).clip(min=0.0) ** 0.5
    return (extra * problem.integers)[:, None, :]


def tell(state: ACHState, params: ACHConfig, problem: Problem, sampler: Sampler, it: int, x: Any, energy: Any,
         aux: Any) -> ACHState:
    if params.surrogate:
        state = _remember(state, x, energy, it)
    return _update(state, params, problem, x, energy, aux, it)


def _weights(state: ACHState, params: ACHConfig, energy: Any, it: int) -> tuple[Any, Any]:
    """``(alpha, w)``: alpha at the target ESS (or from the schedule) and the consensus weights."""
    if params.ranks:  # a value's size no longer counts, only its place: an outlier weighs as the best point
        energy = ranks(energy)
    if params.alpha is None:
        return ess_weights(energy, params.ess)
    alpha = params.alpha.update(state.alpha, it, energy)
    return alpha, consensus_weights(energy, alpha)


def _update(state: ACHState, params: ACHConfig, problem: Problem, x: Any, energy: Any, y: Any,
            it: int) -> ACHState:
    """One step's update from the evaluated points ``x`` (M, λ, d), their energies and what the model drew
    (``y``: the deviations for the full and sep models, the standard normals for lm)."""
    xp = namespace(x)
    mr, lam, d = x.shape
    k = _run_constants(params, d, lam, params.active and params.adapt)
    alpha, w = _weights(state, params, energy, it)  # w: (M, λ)
    new_m = weighted_mean(w, x)  # the consensus point
    fbest = amin(energy, -1)
    best = xp.minimum(state.best, fbest)
    recent, block, blocks = _record(state, it, fbest, _median(energy))
    spread = _median(row_square_sums(x, shift=new_m)) ** 0.5
    rings = dict(best=best, recent=recent, block=block, blocks=blocks)
    if not params.adapt:  # consensus hopping: nothing is learned across steps
        new = state._replace(x=x, energy=energy, consensus=new_m, alpha=alpha, spread=spread, **rings)
        return new._replace(stop=_criteria(new, params, k, energy, it))
    model = get_model(params.model)
    a = model.adapt(state, k, x, energy, y, w, new_m, it, _free(state, params, problem, model, new_m))
    new = state._replace(x=x, energy=energy, consensus=new_m, alpha=alpha, sigma=a.sigma, spread=spread, cov=a.cov,
                         basis=a.basis, scale=a.scale, ps=a.ps, pc=a.pc, **rings)
    return new._replace(stop=_criteria(new, params, k, energy, it))


def _free(state: ACHState, params: ACHConfig, problem: Problem, model: Any, new_m: Any) -> Any:
    """(M, d) the coordinates that clipping does not hold at a face (None: every one, or no clipping): those
    whose consensus lies more than 1.5 sampling standard deviations, or more than 1 % of the box's width,
    inside the box (the second: early on, when the samples spread wider than the box, a consensus near a face
    is not held by it, and its moves still tell the step size to shrink). Under ``"clip"`` a
    held coordinate's outward samples all land on the face, so the consensus stays there and step-size
    control must not read its zero move as a reason to shrink (:func:`cbopt.methods.covariance.cma_paths`)."""
    if params.boundary != "clip" or problem.lo is None or params.model == "lm":  # lm's path is in the drawn frame
        return None
    low, high = _at_faces(state, problem, model, new_m)
    return ~(low | high)


def _at_faces(state: ACHState, problem: Problem, model: Any, m: Any) -> tuple[Any, Any]:
    """(M, d) twice: the coordinates of ``m`` at the box's lower / upper face, i.e. within 1.5 sampling
    standard deviations and FACE_REACH of the box's width of it (the one test of :func:`_free` and
    :func:`_corner`)."""
    reach = namespace(m).minimum((1.5 * state.sigma)[:, None] * model.sd(state), FACE_REACH * (problem.hi - problem.lo))
    return (m - problem.lo) <= reach, (problem.hi - m) <= reach


def _median(e: Any) -> Any:
    """Median over the last axis (non-finite energies are +inf, so they sort last)."""
    return median(e)


def _copy(a: Any) -> Any:
    return a.copy() if isinstance(a, np.ndarray) else a.clone()


def _record(state: ACHState, it: int, fbest: Any, fmed: Any) -> tuple[Any, Any, Any]:
    """The rings after step ``it`` (0 for the first population): new arrays, the state's are left as they are."""
    recent = _copy(state.recent)
    recent[:, it % recent.shape[1]] = fbest
    block = _copy(state.block)
    block[:, 0, it % BLOCK] = fbest
    block[:, 1, it % BLOCK] = fmed
    blocks = state.blocks
    if (it + 1) % BLOCK == 0:  # a block is complete: keep the medians of its best and median values
        blocks = _copy(blocks)
        blocks[:, :, ((it + 1) // BLOCK - 1) % blocks.shape[-1]] = _median(block)
    return recent, block, blocks


def _criteria(state: ACHState, params: ACHConfig, k: Constants, energy: Any, it: int) -> Any:
    """The code (M,) of the first termination criterion that holds for each run after step ``it``, 0 if none.

    Checked every CHECK steps (and at the ends of stagnation blocks): a stop comes at most CHECK - 1 steps
    late, and the checks cost a fraction of a step instead of a third of it."""
    xp = namespace(energy)
    steps = it + 1
    if steps % CHECK and steps % BLOCK:
        return state.stop
    sigma = state.sigma
    conds = []
    if steps >= k.hist:
        finite = energy < float("inf")
        worst = xp.where(finite, energy, -float("inf"))
        now_range = amax(worst, -1) - amin(energy, -1)
        now_range = xp.where(finite.any(-1), now_range, float("inf"))
        r = state.recent
        past_range = amax(r, -1) - amin(r, -1)
        conds.append(("tolfun", (past_range < params.tolfun) & (now_range < params.tolfun)))
    model = get_model(params.model)
    if params.adapt:
        sd = model.sd(state)
        reach = xp.maximum(sd, xp.abs(state.pc))
        conds.append(("tolx", sigma * amax(reach, -1) < params.tolx * state.sigma0))
        m = state.consensus
        i = (it // CHECK) % m.shape[-1]  # one principal axis per check, in turn
        axis = (0.1 * sigma)[:, None] * model.axis(state, i)
        conds.append(("noeffectaxis", ((m + axis) == m).all(-1)))
        conds.append(("noeffectcoord", ((m + (0.2 * sigma)[:, None] * sd) == m).any(-1)))
        ratio = model.condition(state)
        if ratio is not None:
            conds.append(("conditioncov", ratio > 1e7))
    done = (it + 1) // BLOCK  # complete blocks
    if (it + 1) % BLOCK == 0 and done >= k.blocks:  # newest block against the oldest kept one
        b = state.blocks.shape[-1]
        newest, oldest = state.blocks[..., (done - 1) % b], state.blocks[..., done % b]
        conds.append(("stagnation", (newest >= oldest).all(-1)))
    if params.adapt:
        top = amax(state.scale, -1)
        conds.append(("tolupsigma", sigma > 1e20 * state.sigma0 * top))
    if math.isfinite(params.f_ref) and steps >= k.hist:
        gap = state.best - params.f_ref
        conds.append(("dominated", (gap > 0) & (gap > 3.0 * (past_range + now_range))))
    if params.max_gen is not None and steps >= params.max_gen:
        conds.append(("max_gen", ~(state.best < params.f_ref)))
    code = xp.zeros_like(state.stop)
    for name, hit in reversed(conds):  # the first criterion in CRITERIA order wins
        code = xp.where(hit, _CODE[name], code)
    return code


def stop(state: ACHState, params: ACHConfig) -> Any:
    return state.stop


def _extra_floats(params: ACHConfig, d: int) -> int:
    ring = ring_steps(d, params.n_particles) * params.n_particles * (d + 1) if params.surrogate else 0
    return get_model(params.model).floats(d, params.n_particles) + ring


def ended_on_plateau(params: ACHConfig, state: ACHState) -> bool:
    """Whether run 0 (a sequence runs one) ended on a plateau: fewer than half of its last values distinct
    while its samples still spread wider than 1e-4 of the initial step (a run that converged ties its values
    too, but at a step size near zero)."""
    e = to_numpy(state.energy)[0]
    width = to_numpy(state.sigma)[0] * to_numpy(get_model(params.model).sd(state))[0].max()
    return bool(len(np.unique(e[np.isfinite(e)])) < len(e) / 2 and width > 1e-4 * to_numpy(state.sigma0)[0])


def _axis_correlation(params: ACHConfig, state: ACHState) -> float | None:
    """The rms off-diagonal correlation of run 0's learned covariance (a sequence runs one); None for a model
    that learns none, and for a run that :func:`ended_on_plateau`: on a step function C learned nothing of the
    curvature, it looks axis-aligned and would start the CBO regime for nothing (BBOB's step ellipsoid f7 at
    d = 20)."""
    if ended_on_plateau(params, state):
        return None
    return get_model(params.model).correlation(state)


SPEC = register(
    MethodSpec(
        name="ach",
        params=ACHParams,
        state=ACHState,
        init_population=init_population,
        init=init,
        ask=ask,
        tell=tell,
        summary="Adaptive consensus hopping: softmax consensus, learned covariance and step size (CMA-like)",
        reference="arXiv:2306.09778, arXiv:2602.11677, arXiv:1604.00772",
        supports_constraints=True,  # samples end in apply_boundary: the projection and the penalty apply
        stop=stop,
        criteria=CRITERIA,
        extra_floats=_extra_floats,
        samples_population=True,
        axis_correlation=_axis_correlation,
        restarts=Restarts(
            sigma0=_restart_sigma0,
            converged=CONVERGED,
            noisy=NOISY,
            budget=budget_options,
            plateau=PLATEAU,
            on_plateau=ended_on_plateau,
        ),
    )
)
