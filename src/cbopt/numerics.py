"""Numerics in one place: the non-finite energy policy, log-sum-exp consensus, effective sample size.

Non-finite policy
-----------------
An energy that is NaN, +inf or -inf is replaced by ``+inf`` as soon as it is evaluated. Such a
particle is never the best-so-far and gets weight exactly 0 in every consensus; the driver counts
these evaluations (``OptimizeResult.nfev_nonfinite``). A run whose particles all have non-finite
energies stops with status ``NONFINITE``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._backend import amin, namespace


def sanitize(energy: Any) -> tuple[Any, Any]:
    """Apply the non-finite policy: return ``(energy with non-finite -> +inf, bool mask of non-finite)``."""
    xp = namespace(energy)
    bad = ~xp.isfinite(energy)
    if xp is not np:  # no host sync to ask first: the replacement is cheap on the device
        return energy.masked_fill(bad, float("inf")), bad
    if bad.any():
        energy = np.where(bad, np.inf, energy)
    return energy, bad


def log_weights(energy: Any, alpha: Any) -> Any:
    """Unnormalised log-weights ``-alpha * (f_i - min_j f_j)`` over the last axis.

    Finite for any finite ``alpha >= 0`` (up to 1e15 and beyond) and energies up to +-1e300: the best
    particle has log-weight exactly 0, particles with ``+inf`` energy get ``-inf`` (weight 0), and
    ``alpha = 0`` gives equal log-weights to every finite-energy particle.

    Parameters
    ----------
    energy : array (..., N)
        Energies, already sanitised (non-finite values are ``+inf``).
    alpha : array (...,) or float
        Inverse temperature(s) per run.
    """
    xp = namespace(energy)
    if isinstance(alpha, (int, float)):
        alpha = xp.full_like(energy[..., 0], float(alpha))
    fmin = amin(energy, -1)[..., None]
    finite = xp.isfinite(energy)
    # all-inf rows: use 0 as reference so that the difference is inf (weight 0), never nan
    fmin = xp.where(xp.isfinite(fmin), fmin, xp.zeros_like(fmin))
    with np.errstate(over="ignore", invalid="ignore"):
        diff = energy - fmin  # >= 0, may overflow to +inf for spreads beyond 1.8e308
        scaled = alpha[..., None] * diff  # alpha=0 and diff=inf gives nan
    scaled = xp.where(finite, scaled, xp.full_like(scaled, np.inf))
    scaled = xp.where(xp.isnan(scaled), xp.zeros_like(scaled), scaled)  # alpha = 0, overflowed diff
    return -scaled


def consensus_weights(energy: Any, alpha: Any) -> Any:
    """Normalised weights ``softmax(-alpha * f)`` over the last axis (each row sums to 1).

    Rows where every energy is non-finite get uniform weights; the driver stops such runs.
    """
    xp = namespace(energy)
    w = xp.exp(log_weights(energy, alpha))
    total = w.sum(-1)[..., None]
    n = energy.shape[-1]
    empty = total == 0
    if empty.any():
        w = xp.where(empty, xp.ones_like(w), w)
        total = xp.where(empty, xp.full_like(total, n), total)
    return w / total


def consensus(x: Any, energy: Any, alpha: Any) -> tuple[Any, Any]:
    """Consensus point ``c_alpha = sum_i w_i x_i`` with ``w = softmax(-alpha f)``.

    Parameters
    ----------
    x : array (M, N, d)
    energy : array (M, N)
    alpha : array (M,)

    Returns
    -------
    c : array (M, d)
    w : array (M, N)
    """
    w = consensus_weights(energy, alpha)
    return weighted_mean(w, x), w


def weighted_mean(w: Any, x: Any) -> Any:
    """``sum_i w_i x_i`` for weights (..., N) and points (..., N, d): a batched matrix-vector product."""
    return (w[..., None, :] @ x)[..., 0, :]


def effective_sample_size(w: Any) -> Any:
    """``(sum w)^2 / sum w^2`` over the last axis, in [1, N] for normalised non-negative weights."""
    return w.sum(-1) ** 2 / (w * w).sum(-1)


def alpha_for_ess(energy: Any, target: float, alpha_max: float = 1e15, iters: int = 24) -> Any:
    """Per-run alpha whose weights have effective sample size ``target * N`` (bisection on log alpha).

    Returns the largest alpha in ``[0, alpha_max]`` with ``ESS >= target * N`` up to bisection accuracy;
    ``alpha_max`` when even that keeps the ESS high (e.g. many tied energies).
    """
    xp = namespace(energy)
    n = energy.shape[-1]
    goal = target * n
    lo = xp.full_like(energy[..., 0], -12.0)
    hi = xp.full_like(lo, float(np.log10(alpha_max)))
    # each iteration evaluates the ESS at the midpoint in log10(alpha)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        ess = effective_sample_size(consensus_weights(energy, 10.0**mid))
        ok = ess >= goal
        lo = xp.where(ok, mid, lo)
        hi = xp.where(ok, hi, mid)
    return 10.0**lo
