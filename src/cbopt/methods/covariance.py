"""The search distributions of ACH: how a step samples, whitens and learns ``N(m, sigma^2 C)``.

:mod:`cbopt.methods.ach` holds what every model shares (the softmax consensus at a target effective sample
size, the rings of past values, the termination criteria); a *model* holds what depends on how ``C`` is
represented. Three models, one seam (``ACHParams.model``):

``"full"``
    ``C`` is a dense d x d matrix with its eigendecomposition ``C = B D^2 B^T``: rotation invariant, learns any
    correlation. Cost per step O(lambda d^2) plus an eigendecomposition every ``1 / (10 d (c_1 + c_mu))`` steps;
    d^2 floats per run. Hansen's tutorial, arXiv:1604.00772.
``"sep"``
    ``C = diag(c)`` (sep-CMA, Ros & Hansen, PPSN 2008): the same paths and rank-one/rank-mu/active updates
    restricted to the diagonal, with the learning rates ``c_1, c_mu`` raised by ``(d + 2) / 3`` because only d
    numbers are learned. Cost O(lambda d), memory O(d): learns the scales of the coordinates, not their
    correlations.
``"lm"``
    Limited-memory matrix adaptation (LM-MA-ES, Loshchilov, Glasmachers & Beyer, IEEE TEVC 2019,
    arXiv:1705.06693): ``y = D A z`` with ``A = prod_j ((1 - c_d,j) I + c_d,j v_j v_j^T)`` built from k
    direction vectors ``v_j``, each an exponentially smoothed step at its own time scale (``c_c,j = lambda /
    (4^j d)``), and the step size from a fast path (``c_s = 2 lambda / d``). The step is the consensus' move in
    the drawn frame, ``A^-1 D^-1 (m' - m) / sigma``: LM-MA-ES's ``sum_i w_i z_i`` where no point was folded
    back at the box. Cost O(lambda d k), memory O(d k), ``k = 4 + floor(3 ln d)``: learns a few dominant
    directions of any rotation.

A model is a final class with these methods and no state of its own: its arrays live in the ``cov``,
``basis`` and ``scale`` fields of :class:`cbopt.methods.ach.ACHState`, whose shapes it decides:

========  ====================  =====================  ========================================
model     ``cov``               ``basis``              ``scale``
========  ====================  =====================  ========================================
full      C (M, d, d)           B (M, d, d)            D (M, d), square roots of C's eigenvalues
sep       diag C (M, d)         (M, 0), unused         sqrt(diag C) (M, d)
lm        v_j (M, k, d)         (M, 0), unused         D (M, d), the fixed per-coordinate start scale
========  ====================  =====================  ========================================
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .._backend import cast, diagonal, eye_like, maybe, namespace, to_numpy
from ..numerics import row_square_sums, weighted_square_sums

#: the models by name, in the order the docs list them
MODELS = ("full", "sep", "lm")


class Constants(NamedTuple):
    """The learning rates and damping of one (model, d, lambda, mu_eff): Hansen's tutorial, with active
    weights; sep-CMA's and LM-MA-ES's rates where they differ."""

    cs: float
    ds: float
    cc: float
    c1: float
    cmu: float
    chin: float  # E|N(0, I)|
    neg: Any  # (lambda,) negative weights by rank (0 for the better half), summing to 1
    a_neg: float  # total weight of the negative (active) update
    hist: int  # window of the tolfun and dominated criteria (steps)
    blocks: int  # window of the stagnation criterion, in blocks of BLOCK steps
    eig_every: int  # steps between eigendecompositions of C (full)
    cd: tuple[float, ...] = ()  # lm: c_d,j, how far vector j pulls a sample
    cv: Any = None  # lm: (k,) c_c,j, the learning rate of vector j
    down: float = 1.0  # the step size's decreases are divided by this (ACH's sigma_down; > 1 on noisy objectives)


def step_damping(n: int, mueff: float, cs: float, damping: float = 1.0) -> float:
    """CSA's damping ``d_s = 1 + 2 max(0, g sqrt((mueff - 1) / (n + 1)) - 1) + c_s`` with
    ``g = max(1, damping (1 - 2^(-n / 9)))``: ``damping = 1`` gives ``g = 1`` (the tutorial's); larger values
    damp the step size of large populations (mueff a sizeable share of n) more, as pycma 4's defaults do
    (with 3): on a step function their step size then stays above the plateaus' scale while the swarm
    still finds lower ones."""
    g = max(1.0, damping * (1 - 0.5 ** (n / 9)))
    return 1 + 2 * max(0.0, g * math.sqrt((mueff - 1) / (n + 1)) - 1) + cs


#: the stagnation criterion compares medians over blocks of this many steps
BLOCK = 20


def cma_constants(model: str, dim: int, lam: int, mueff: float, active: bool, pace: float = 2.0,
                  damping: float = 1.0) -> Constants:
    """The constants of ``model`` for dimension ``dim``, ``lam`` samples and ``mueff`` effective ones;
    ``pace``: sep's step-size rate is at least ``pace * lam / dim`` (0: CMA's own); ``damping``: the factor
    ``g`` of the step size's damping for large ``mueff`` (:func:`step_damping`)."""
    n = dim
    cs = (mueff + 2) / (n + mueff + 5)
    ds = step_damping(n, mueff, cs, damping)
    cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n)
    c1 = 2 / ((n + 1.3) ** 2 + mueff)
    cmu = min(1 - c1, 2 * (0.25 + mueff - 2 + 1 / mueff) / ((n + 2) ** 2 + mueff))
    cmu = max(cmu, 0.0)
    if model == "sep":  # d numbers to learn instead of d^2 / 2: Ros & Hansen's faster rates
        c1 = min(1.0, c1 * (n + 2) / 3)
        cmu = min(1 - c1, cmu * (n + 2) / 3)
        # and the step size at LM-MA-ES's pace 2 lambda / d where that is faster: CMA's c_s ~ mu_eff / d needs
        # ~ d / mu_eff steps to shrink sigma by e, most of a 1e4-evaluation budget at d = 1000 (f = 258 against
        # 780 on the shifted sphere, d = 1000, 1e4 evaluations). On long budgets CMA's own rate is better
        # (it learns the scales before sigma falls): ACH's sigma_pace, set by the budget (docs/scale.md)
        cs = max(cs, min(pace * lam / n, 0.5))
        ds = step_damping(n, mueff, cs, damping)
    chin = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))
    raw = np.log((lam + 1) / 2) - np.log(np.arange(1, lam + 1))
    neg = np.where(raw < 0, -raw, 0.0)
    mueff_neg = float(neg.sum() ** 2 / (neg * neg).sum()) if neg.any() else 1.0
    neg = neg / neg.sum() if neg.any() else neg
    a_neg = 0.0
    if active and cmu > 0 and model != "lm":
        a_neg = min(1 + c1 / cmu, 1 + 2 * mueff_neg / (mueff + 2), (1 - c1 - cmu) / (n * cmu))
    hist = 10 + math.ceil(30 * n / lam)
    stag = min(20_000, int(100 + 100 * n**1.5 / lam))  # pycma's and the tutorial's window
    eig_every = max(1, int(1 / (10 * n * (c1 + cmu))))
    cd: tuple[float, ...] = ()
    cv = None
    if model == "lm":
        k = lm_vectors(n)
        cs = min(2 * lam / n, 0.9)
        cd = tuple(1 / (1.5**j * n) for j in range(k))
        cv = np.minimum(lam / (4.0 ** np.arange(k) * n), 1.0)
    return Constants(cs, ds, cc, c1, cmu, chin, neg, a_neg, hist, stag // BLOCK + 1, eig_every, cd, cv)


def lm_vectors(dim: int) -> int:
    """LM-MA-ES's number of direction vectors, ``4 + floor(3 ln d)``."""
    return 4 + int(3 * math.log(dim))


class Paths(NamedTuple):
    ps: Any  # (M, d)
    psn: Any  # (M,) |ps|
    pc: Any  # (M, d)
    hs: Any  # (M,) 1.0 where the rank-one path is not stalled, else 0.0


def cma_paths(state: Any, k: Constants, dm: Any, inv_dm: Any, mu_w: Any, it: int, free: Any = None) -> Paths:
    """The conjugate path (step size) and the evolution path (rank-one update) of CMA-ES.

    ``free`` (M, d), or None for all: the coordinates the box does not hold at a face. A held coordinate's
    consensus cannot move, so its share of the conjugate path is zero instead of N(0, 1), and CSA, which
    compares |p_s| with E|N(0, I_d)|, would shrink sigma for every held coordinate while the free ones still
    have far to go. With ``free``, a held coordinate counts at its expectation (:func:`_held`)."""
    d = dm.shape[-1]
    ps = (1 - k.cs) * state.ps + ((k.cs * (2 - k.cs) * mu_w) ** 0.5)[:, None] * inv_dm
    psn = (ps * ps).sum(-1) ** 0.5
    if free is not None:
        ps, psn = _held(ps, free, k.chin)
    norm = (1 - (1 - k.cs) ** (2 * (it + 1))) ** 0.5
    hs = cast(psn < norm * (1.4 + 2 / (d + 1)) * k.chin, dm.dtype)
    pc = (1 - k.cc) * state.pc + (hs * (k.cc * (2 - k.cc) * mu_w) ** 0.5)[:, None] * dm
    return Paths(ps, psn, pc, hs)


def _held(ps: Any, free: Any, chin: float) -> tuple[Any, Any]:
    """The conjugate path without the held coordinates, and its norm with each held coordinate counted at
    its share of E|N(0, I_d)|^2 under random selection (``chin^2 / d``): sigma then moves as far as the free
    coordinates ask, and does not move when all are held."""
    xp = namespace(ps)
    ps = xp.where(free, ps, 0.0)
    d = free.shape[-1]
    held = cast(d - free.sum(-1), ps.dtype)  # in the run's dtype: an integer count must not make sigma float64
    return ps, ((ps * ps).sum(-1) + held * (chin * chin / d)) ** 0.5


def csa(sigma: Any, k: Constants, psn: Any) -> Any:
    """Cumulative step-size adaptation, one step capped at a factor e; decreases divided by ``k.down``."""
    xp = namespace(sigma)
    step = (k.cs / k.ds) * (psn / k.chin - 1)
    if k.down != 1.0:
        step = xp.where(step < 0, step / k.down, step)
    return sigma * xp.exp(xp.where(step < 1, step, 1.0))


def active_weights(k: Constants, energy: Any, y: Any, nrm: Any) -> Any:
    """(M, lambda) the negative weights ``a d nu_i / |C^{-1/2} y_i|^2`` of the worse half by rank, where
    ``nrm`` holds ``|C^{-1/2} y_i|^2``: on the drawn deviations (a bounced point's deviation is shortened by
    the face; its drawn one keeps the Mahalanobis norm that the positive-definiteness bound relies on)."""
    xp = namespace(energy)
    rank = energy.argsort(-1).argsort(-1)
    nu = table(k.neg, energy)[rank]
    d = y.shape[-1]
    return xp.where(nrm > 0, (k.a_neg * d) * nu / xp.where(nrm > 0, nrm, 1.0), 0.0)


def table(values: np.ndarray, like: Any) -> Any:
    """A constant table on ``like``'s backend, dtype and device (cached)."""
    key = (id(values), like.dtype, getattr(like, "device", None))
    hit = _TABLES.get(key)
    if hit is not None and hit[0] is values:  # the entry holds its source, so an id is never reused under it
        return hit[1]
    t = values.astype(like.dtype) if isinstance(like, np.ndarray) else namespace(like).as_tensor(
        values, dtype=like.dtype, device=like.device)
    _TABLES[key] = (values, t)
    return t


_TABLES: dict[Any, Any] = {}


class Adapted(NamedTuple):
    """What a model's step learned (fields of :class:`cbopt.methods.ach.ACHState`)."""

    cov: Any
    basis: Any
    scale: Any
    ps: Any
    pc: Any
    sigma: Any


def _empty(m0: Any) -> Any:
    """(M, 0): the placeholder of a field a model does not use (a checkpoint still stores one array)."""
    return m0[:, :0] * 1


class Full:
    """Dense C with its eigendecomposition (CMA-ES)."""

    name = "full"

    @staticmethod
    def floats(d: int, lam: int) -> int:
        return 3 * d * d  # C, its eigenbasis, a scratch product

    @staticmethod
    def init(m0: Any, diag: Any) -> tuple[Any, Any, Any]:
        basis = eye_like(m0)
        return basis * (diag * diag)[:, None, :], basis, diag

    @staticmethod
    def sample(state: Any, k: Constants, z: Any, it: int) -> tuple[Any, Any]:
        y = (z * state.scale[:, None, :]) @ state.basis.swapaxes(-1, -2)  # rows (B D z_i)^T
        return y, y

    @staticmethod
    def drawn(y: Any, scale: Any) -> Any:
        """The aux of the first population, whose deviations ``y`` were drawn as ``scale * z``."""
        return y

    @staticmethod
    def adapt(state: Any, k: Constants, x: Any, energy: Any, aux: Any, w: Any, new_m: Any, it: int,
              free: Any = None) -> Adapted:
        y = aux
        m, sigma, basis, scale = state.consensus, state.sigma, state.basis, state.scale
        s = sigma[:, None]
        v = (x - m[:, None, :]) / s[..., None]  # deviations of the evaluated points, in units of sigma
        dm = (new_m - m) / s
        mu_w = 1.0 / (w * w).sum(-1)
        inv_dm = (((dm[:, None, :] @ basis)[:, 0, :] / scale)[:, None, :] @ basis.swapaxes(-1, -2))[:, 0, :]
        p = cma_paths(state, k, dm, inv_dm, mu_w, it, free)
        rank_mu = (v * w[..., None]).swapaxes(-1, -2) @ v  # (M, d, d)
        decay = 1 - k.c1 - k.cmu + (1 - p.hs) * k.c1 * k.cc * (2 - k.cc)
        if k.a_neg > 0:
            wn = active_weights(k, energy, y, row_square_sums((y @ basis) / scale[:, None, :]))  # |B^T y / D|^2
            rank_mu = rank_mu - (y * wn[..., None]).swapaxes(-1, -2) @ y
            decay = decay + k.cmu * k.a_neg
        cov = decay[:, None, None] * state.cov + k.c1 * p.pc[:, :, None] * p.pc[:, None, :] + k.cmu * rank_mu
        cov = 0.5 * (cov + cov.swapaxes(-1, -2))
        if it % k.eig_every == 0:
            cov, basis, scale = _eigen(cov)
        return Adapted(cov, basis, scale, p.ps, p.pc, csa(sigma, k, p.psn))

    @staticmethod
    def sd(state: Any) -> Any:
        """(M, d) the standard deviations sqrt(C_ii) of the coordinates (in units of sigma)."""
        return namespace(state.cov).abs(diagonal(state.cov)) ** 0.5

    @staticmethod
    def variance(state: Any) -> Any:
        """(M, d) the variances the samples are drawn with, from B and D (C runs ahead of them between
        eigendecompositions)."""
        return ((state.basis * state.scale[:, None, :]) ** 2).sum(-1)

    @staticmethod
    def axis(state: Any, i: int) -> Any:
        return state.scale[:, i:i + 1] * state.basis[:, :, i]

    @staticmethod
    def condition(state: Any) -> Any:
        return state.scale.amax(-1) / state.scale.amin(-1) if not isinstance(state.scale, np.ndarray) else \
            state.scale.max(-1) / state.scale.min(-1)

    @staticmethod
    def correlation(state: Any) -> float | None:
        return correlation(to_numpy(state.cov)[0])


def correlation(cov: np.ndarray) -> float:
    """Root-mean-square off-diagonal correlation of a covariance: 0 for an axis-aligned one."""
    d = cov.shape[0]
    if d < 2:
        return 0.0
    sd = np.sqrt(np.abs(np.diag(cov)))
    corr = cov / np.outer(sd, sd)
    off = corr[~np.eye(d, dtype=bool)]
    return float(np.sqrt(np.mean(off * off)))


def _eigen(cov: Any) -> tuple[Any, Any, Any]:
    """``(C, B, D)`` with ``C = B D^2 B^T``; a non-finite C is reset to I and eigenvalues are floored at
    1e-14 of the largest (rounding, or an active update on a degenerate swarm), so C stays positive definite."""
    xp = namespace(cov)
    bad = ~xp.isfinite(cov).all(-1).all(-1)
    if maybe(bad):
        cov = xp.where(bad[:, None, None], eye_like(cov[:, 0, :]), cov)
    vals, vecs = xp.linalg.eigh(cov)
    floor = 1e-14 * xp.abs(vals[..., -1:])
    low = vals < floor
    if maybe(low):
        vals = xp.where(low, floor, vals)
        cov = xp.where(low.any(-1)[:, None, None], (vecs * vals[:, None, :]) @ vecs.swapaxes(-1, -2), cov)
    return cov, vecs, vals**0.5


class Sep:
    """Diagonal C (sep-CMA-ES)."""

    name = "sep"

    @staticmethod
    def floats(d: int, lam: int) -> int:
        return 4 * d

    @staticmethod
    def init(m0: Any, diag: Any) -> tuple[Any, Any, Any]:
        return diag * diag, _empty(m0), diag

    @staticmethod
    def sample(state: Any, k: Constants, z: Any, it: int) -> tuple[Any, Any]:
        z *= state.scale[:, None, :]  # z: the step's own fresh draw
        return z, z

    drawn = Full.drawn  # the deviations y are what was drawn, as for the full model

    @staticmethod
    def adapt(state: Any, k: Constants, x: Any, energy: Any, aux: Any, w: Any, new_m: Any, it: int,
              free: Any = None) -> Adapted:
        xp = namespace(x)
        y = aux
        m, sigma, scale = state.consensus, state.sigma, state.scale
        s = sigma[:, None]
        dm = (new_m - m) / s
        mu_w = 1.0 / (w * w).sum(-1)
        p = cma_paths(state, k, dm, dm / scale, mu_w, it, free)
        rank_mu = weighted_square_sums(x, w, m, sigma)  # (M, d): the diagonal of sum_i w_i v_i v_i^T
        decay = 1 - k.c1 - k.cmu + (1 - p.hs) * k.c1 * k.cc * (2 - k.cc)
        if k.a_neg > 0:
            wn = active_weights(k, energy, y, row_square_sums(y, div=scale))
            rank_mu = rank_mu - weighted_square_sums(y, wn)
            decay = decay + k.cmu * k.a_neg
        cov = decay[:, None] * state.cov + k.c1 * p.pc * p.pc + k.cmu * rank_mu
        ok = xp.isfinite(cov).all(-1)
        if maybe(~ok):
            cov = xp.where(ok[:, None], cov, 1.0)
        top = cov.max(-1, keepdims=True) if isinstance(cov, np.ndarray) else cov.amax(-1, keepdim=True)
        floor = 1e-14 * top
        cov = xp.where(cov > floor, cov, floor)
        return Adapted(cov, state.basis, cov**0.5, p.ps, p.pc, csa(sigma, k, p.psn))

    @staticmethod
    def sd(state: Any) -> Any:
        return state.scale

    @staticmethod
    def variance(state: Any) -> Any:
        return state.scale * state.scale

    @staticmethod
    def axis(state: Any, i: int) -> Any:
        xp = namespace(state.scale)
        e = xp.zeros_like(state.scale)
        e[:, i] = state.scale[:, i]
        return e

    condition = Full.condition

    @staticmethod
    def correlation(state: Any) -> float | None:
        return None  # a diagonal model knows nothing of correlations


class LM:
    """Limited-memory matrix adaptation (LM-MA-ES): k direction vectors."""

    name = "lm"

    @staticmethod
    def floats(d: int, lam: int) -> int:
        return (lm_vectors(d) + 4) * d

    @staticmethod
    def init(m0: Any, diag: Any) -> tuple[Any, Any, Any]:
        xp = namespace(m0)
        k = lm_vectors(m0.shape[-1])
        vecs = xp.zeros_like(m0)[:, None, :].repeat(1, k, 1) if not isinstance(m0, np.ndarray) else \
            np.zeros((m0.shape[0], k, m0.shape[1]), dtype=m0.dtype)
        return vecs, _empty(m0), diag

    @staticmethod
    def sample(state: Any, k: Constants, z: Any, it: int) -> tuple[Any, Any]:
        y = z
        for j in range(min(it, len(k.cd))):  # A z: the oldest-first product of LM-MA-ES
            v = state.cov[:, j, :]
            y = (1 - k.cd[j]) * y + k.cd[j] * (y @ v[:, :, None]) * v[:, None, :]
        return y * state.scale[:, None, :], z

    @staticmethod
    def drawn(y: Any, scale: Any) -> Any:
        return y / scale[:, None, :]

    @staticmethod
    def adapt(state: Any, k: Constants, x: Any, energy: Any, aux: Any, w: Any, new_m: Any, it: int,
              free: Any = None) -> Adapted:
        xp = namespace(x)
        sigma = state.sigma
        mu_w = 1.0 / (w * w).sum(-1)
        dm = (new_m - state.consensus) / sigma[:, None]
        # (M, d): the consensus move in the drawn coordinates, A^-1 dm / scale, from where the points landed:
        # without a box it is the weighted mean of the drawn z, but a point folded back at a face moved less
        # than it was drawn to, and the drawn z would tell the step size to grow
        zbar = LM.unmixed(state, k, dm / state.scale, it)
        ps = (1 - k.cs) * state.ps + ((k.cs * (2 - k.cs) * mu_w) ** 0.5)[:, None] * zbar
        d = x.shape[-1]
        step = (k.cs / 2) * ((ps * ps).sum(-1) / d - 1)  # (free: not read; the path lives in the drawn frame)
        sigma = sigma * xp.exp(xp.where(step < 1, step, 1.0))
        rates = table(k.cv, x)[None, :, None]  # (1, k, 1)
        gain = ((mu_w[:, None] * rates[..., 0] * (2 - rates[..., 0])) ** 0.5)[..., None]  # (M, k, 1)
        vecs = (1 - rates) * state.cov + gain * zbar[:, None, :]
        ok = xp.isfinite(vecs).all(-1).all(-1)
        if maybe(~ok):
            vecs = xp.where(ok[:, None, None], vecs, 0.0)
        return Adapted(vecs, state.basis, state.scale, ps, dm, sigma)

    @staticmethod
    def unmixed(state: Any, k: Constants, y: Any, it: int) -> Any:
        """``A^-1 y`` for vectors ``y`` (M, d), A the product that :meth:`sample` applied at step ``it``: each
        factor ``(1 - c) I + c v v^T`` undone newest-first by Sherman-Morrison, O(k d)."""
        for j in reversed(range(min(it, len(k.cd)))):
            v, c = state.cov[:, j, :], k.cd[j]
            along = (y * v).sum(-1, keepdims=True) / ((1 - c) + c * (v * v).sum(-1, keepdims=True))
            y = (y - c * along * v) / (1 - c)
        return y

    @staticmethod
    def sd(state: Any) -> Any:
        return state.scale  # the fixed start scale: the learned directions stretch it by O(1)

    variance = Sep.variance
    axis = Sep.axis

    @staticmethod
    def condition(state: Any) -> Any:
        return None

    @staticmethod
    def correlation(state: Any) -> float | None:
        return None


_BY_NAME = {"full": Full, "sep": Sep, "lm": LM}


def get_model(name: str) -> Any:
    return _BY_NAME[name]
