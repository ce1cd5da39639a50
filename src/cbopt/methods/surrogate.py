"""ACH's model step: a quadratic model of f fitted to a run's recent evaluations, and its minimiser within a
trust region, sampled as one of the next step's points.

In the run's whitened frame ``u = D^-1 B^T (x - m) / sigma`` (the mean at 0, the sampling distribution
N(0, I)), the least-squares quadratic ``q(u) = c + g.u + 1/2 u.H u`` through the last ``RING * n_terms(d)``
evaluations gives the step::

    u* = argmin q(u)  subject to  |u| <= RADIUS sqrt(d)      (H + mu I) u* = -g,  mu >= 0 on a grid

and ``m + sigma B D u*`` replaces the step's first sample, whitened draw and all, so that the consensus and the
covariance learn from it as from any sample: where the model is good (a smooth valley) it is the step's best
point and pulls the consensus far towards the valley's floor; where it is not, it is one sample among lambda.
A model-based phase of this kind is what the best algorithms of the BBOB archive use on the smooth functions
(NEWUOA, Powell 2006; lq-CMA-ES, Hansen, arXiv:1904.01727). The fit costs O(K p^2) with p = n_terms(d)
~ d^2 / 2 parameters and K = RING p samples, every step, so the default uses it up to SURROGATE_MAX
dimensions (docs/ach.md has what it changed on BBOB and what it costs). The trust region's solution is taken
up to the grid's spacing in mu, and its hard case (g orthogonal to H's most negative direction) is left out:
the step is then the stretched step along the other directions.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from .._backend import amax, amin, namespace, take_along, take_last

#: the default's model step runs up to this many dimensions (BBOB d = 5 and 10: docs/ach.md); p ~ d^2 / 2
SURROGATE_MAX = 10
#: the model is fitted to the evaluations of the last RING * n_terms(d) samples (whole steps)
RING = 2
#: the trust region: |u*| <= RADIUS sqrt(d), about the length of a sample in the whitened frame
RADIUS = 1.0
#: points of the geometric grid on which the trust region's multiplier is searched
GRID = 96


def n_terms(d: int) -> int:
    """Parameters of a quadratic in d variables: 1 + d + d (d + 1) / 2."""
    return (d + 1) * (d + 2) // 2


def ring_steps(d: int, lam: int) -> int:
    """How many steps of lambda samples the ring keeps: at least RING * n_terms(d) samples."""
    return max(1, -(-RING * n_terms(d) // lam))


def quadratic_step(u: Any, f: Any, radius: float) -> tuple[Any, Any]:
    """``(u*, ok)``: for points ``u`` (M, K, d) and values ``f`` (M, K) (non-finite ones left out), the
    minimiser (M, d) of the least-squares quadratic within ``|u*| <= radius``, and (M,) whether it is usable
    (more finite values than parameters, not all equal, a finite step; 0 where not). Batched over M, numpy or
    torch, in ``u``'s dtype, with no data-dependent branch on a device."""
    xp = namespace(u)
    d = u.shape[-1]
    p = n_terms(d)
    # (in u's dtype: a float32 run stays float32; on u's device, placed there once)
    a, b, pair, diag, twice, grid = _placed(d, None if isinstance(u, np.ndarray) else u.device, u.dtype)
    finite = xp.isfinite(f)
    every = isinstance(f, np.ndarray) and bool(finite.all())  # (numpy, the usual case: fewer passes)
    if every:
        lo, hi = f.min(-1), f.max(-1)
    else:
        lo = amin(xp.where(finite, f, xp.full_like(f, float("inf"))), -1)
        hi = amax(xp.where(finite, f, xp.full_like(f, -float("inf"))), -1)
    varied = hi > lo  # (False: all equal, or none finite)
    lo = xp.where(varied, lo, xp.zeros_like(lo))
    target = f - lo[:, None] if every else xp.where(finite, f - lo[:, None], xp.zeros_like(f))
    # the products of [1, u, f - lo] taken pairwise give, in one pass, the quadratic's p features (1, u_i,
    # u_i u_j for i <= j) and the target as a last column (the offset out: a better conditioned solve); a
    # left-out value's row is zeroed
    aug = xp.concatenate([xp.ones_like(u[..., :1]), u, target[..., None]], axis=-1)
    feats = aug[..., a] * aug[..., b]  # (M, K, p + 1)
    if not every:
        feats = feats * finite[..., None]
    normal = feats.swapaxes(-1, -2) @ feats  # [[gram, rhs], [., .]]: one product
    gram = normal[:, :p, :p]
    ridge = 1e-10 * gram[:, diag, diag].sum(-1) / p + 1e-300  # keeps a rank-deficient fit solvable
    gram[:, diag, diag] += ridge[:, None]
    coef = xp.linalg.solve(gram, normal[:, :p, p:])[..., 0]
    lam, vec = xp.linalg.eigh(coef[:, pair] * twice)  # q = c + g.u + sum_{i<=j} h_ij u_i u_j
    g = coef[:, 1 : d + 1]
    gq = (g[:, None, :] @ vec)[:, 0, :]  # g in the eigenbasis
    # the step (H + mu I)^-1 g of the least mu >= max(0, -lam_min) on a geometric grid whose step lies within
    # the radius (|s| falls with mu; the grid ends where every lam_i + mu >= |g| / radius, so its last point
    # is inside), then stretched onto the radius unless it is H's own Newton step (mu = 0 where H is positive
    # definite and that step is inside): the trust region's solution up to the grid's spacing in mu
    least = lam[:, :1]
    lower = xp.where(least < 0, -least, 0 * least)  # (M, 1)
    mu = lower + ((g * g).sum(-1, keepdims=True) ** 0.5 / radius + 1e-200) * grid  # (M, GRID)
    den = lam[:, None, :] + mu[:, :, None]  # (M, GRID, d)
    step = gq[:, None, :] / xp.where(den > 0, den, xp.ones_like(den))
    length = (step * step).sum(-1) ** 0.5
    inside = (den > 0).all(-1) & (length <= radius)
    k = (inside * 1).argmax(-1)[:, None]  # the first grid point inside
    short = take_last(length, k)[:, 0]
    newton = (take_last(mu, k)[:, 0] == 0) | ~(short > 0)
    stretch = radius / xp.where(newton, radius + 0 * short, short)
    ustar = -(vec @ take_along(step, k)[:, 0, :, None])[..., 0] * stretch[:, None]
    ok = (finite.sum(-1) > p) & varied & xp.isfinite(ustar).all(-1)
    return xp.where(ok[:, None], ustar, xp.zeros_like(ustar)), ok


class _Layout(NamedTuple):
    a: np.ndarray  # (p + 1,) with b: the pairs of [1, u, f] whose products are the features and the target
    b: np.ndarray
    pair: np.ndarray  # (d, d) with twice: H = coef[:, pair] * twice, the symmetric matrix of q's terms
    twice: np.ndarray
    diag: np.ndarray  # arange(p): the Gram matrix's diagonal
    grid: np.ndarray  # the multiplier search's grid (times its span)


@functools.lru_cache(maxsize=64)
def _layout(d: int) -> _Layout:
    """Index arrays of the fit in d variables (the terms 1, u_i, u_i u_j in the order of triu_indices(d + 1)
    over [1, u]) and the grid of the multiplier search."""
    a, b = np.triu_indices(d + 1)
    a, b = np.append(a, 0), np.append(b, d + 1)  # 1 * (f - lo): the target
    where = np.full((d + 1, d + 1), -1)
    where[a[:-1], b[:-1]] = np.arange(len(a) - 1)
    k = np.maximum(where[1:, 1:], where[1:, 1:].T)  # h_ij of the pair {i, j}
    return _Layout(a, b, k, 1.0 + np.eye(d), np.arange(len(a) - 1),
                   np.concatenate([[0.0], np.geomspace(1e-9, 1.0, GRID - 1)]))


@functools.lru_cache(maxsize=64)
def _placed(d: int, device: Any, dtype: Any) -> tuple[Any, ...]:
    """:func:`_layout`'s arrays on a backend (device None: numpy) and device, the floats in ``dtype``: made
    once per (d, device, dtype), so that a step on a device copies nothing from the host."""
    lay = _layout(d)
    if device is None:
        return lay.a, lay.b, lay.pair, lay.diag, lay.twice.astype(dtype), lay.grid.astype(dtype)
    import torch

    ints = [torch.as_tensor(v, device=device) for v in (lay.a, lay.b, lay.pair, lay.diag)]
    return (*ints, *(torch.as_tensor(v, dtype=dtype, device=device) for v in (lay.twice, lay.grid)))
