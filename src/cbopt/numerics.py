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

from ._backend import (
    PARALLEL_MIN,
    Sampler,
    amin,
    arange_like,
    cast,
    fused,
    in_parallel,
    maybe,
    median,
    namespace,
    sort,
    where_masked,
)


def sanitize(energy: Any) -> tuple[Any, Any]:
    """Apply the non-finite policy: return ``(energy with non-finite -> +inf, bool mask of non-finite)``."""
    bad = ~namespace(energy).isfinite(energy)
    return where_masked(energy, bad, float("inf")), bad


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
    if maybe(empty):  # exact on numpy; on a device the general path, never a host synchronisation
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


def alpha_for_ess(energy: Any, target: float, alpha_max: float = 1e15) -> Any:
    """Per-run alpha whose weights ``softmax(-alpha f)`` have effective sample size ``target * N``.

    The Laplace principle made scale-free: the weights depend on how the energies spread, not on their
    units, much as rank weights do. ``target`` is a fraction of N in (0, 1]. Returns the largest alpha in
    ``[0, alpha_max]`` with ``ESS >= target * N`` (to about 1e-3 relative ESS); ``alpha_max`` when even that
    keeps the ESS high (many tied minima), 0 when fewer than ``target * N`` energies are finite.
    See :func:`ess_weights` for the weights at that alpha, computed in the same pass.
    """
    return ess_weights(energy, target, alpha_max)[0]


def ess_weights(energy: Any, target: float, alpha_max: float = 1e15) -> tuple[Any, Any]:
    """``(alpha, w)``: :func:`alpha_for_ess` and the normalised weights ``softmax(-alpha f)`` at it.

    The search runs on ``a = alpha * s``, with ``s`` the gap ``f_(k) - f_min`` of the k-th best energy
    (k = target * N), where the answer lies within a few decades of 1: the ESS at 33 points of ``log a`` in
    [-12, 12] (one vectorised pass over (M, 33, N), no loop over runs), again at 33 points inside the cell
    that crosses the target, then a linear interpolation. Rows whose energies are all non-finite get
    uniform weights (the driver stops such runs).
    """
    xp = namespace(energy)
    n = energy.shape[-1]
    goal = target * n
    inf = float("inf")
    fmin = amin(energy, -1)[..., None]
    gap = energy - xp.where(fmin < inf, fmin, 0.0)
    gap = xp.where(gap >= 0, gap, inf)  # >= 0; +inf for non-finite energies: weight 0
    k = int(min(max(round(goal), 1), n - 1)) if n > 1 else 0
    s = sort(gap)[..., k]
    # ties at the minimum: the smallest positive gap instead; no positive finite gap at all: any scale (1)
    s = xp.where(s > 0, s, amin(xp.where(gap > 0, gap, inf), -1))
    s = xp.where(s < inf, s, 1.0)
    u = gap / s[..., None]  # (..., N), the k-th best at 1
    steps = _grid(energy)  # (G,) from 0 to 1
    lo: Any = -12.0  # bracket of log a: [lo, lo + width]
    width = 24.0
    for _ in range(2):
        la = lo + width * steps if isinstance(lo, float) else lo[..., None] + width * steps  # (..., G)
        ess = _ess(xp.exp(-xp.exp(la)[..., None] * u[..., None, :]))  # (..., G), decreasing in a
        above = (ess >= goal).sum(-1)  # grid points at or above the target: the crossing follows them
        j = above - 1
        j = xp.where(j < _GRID - 2, xp.where(j > 0, j, 0), _GRID - 2)
        width = width / (_GRID - 1)
        lo = lo + j * width
    flat = ess.reshape(-1, _GRID)
    rows = arange_like(flat.shape[0], flat)
    jf = j.reshape(-1)
    e0 = flat[rows, jf].reshape(j.shape)
    e1 = flat[rows, jf + 1].reshape(j.shape)
    t = (e0 - goal) / xp.where(e0 > e1, e0 - e1, 1.0)
    a = xp.exp(lo + xp.where(t < 1, xp.where(t > 0, t, 0.0), 1.0) * width)
    # outside the searched range: every grid point at or above the target (ties) -> alpha_max; none -> 0
    a = xp.where(above == _GRID, inf, xp.where((above == 0) & (e0 < goal), 0.0, a))
    alpha = a / s
    alpha = xp.where(alpha < alpha_max, alpha, alpha_max)
    alpha = cast(alpha, energy.dtype)  # the grid's index arithmetic is int64
    finite = u < inf
    w = xp.exp(-(alpha * s)[..., None] * xp.where(finite, u, 0.0))  # the minimum weighs exp(0) = 1
    w = xp.where(finite, w, 0.0)
    total = w.sum(-1)[..., None]
    w = xp.where(total > 0, w / xp.where(total > 0, total, 1.0), 1.0 / n)
    return alpha, w


def _ess(e: Any) -> Any:
    """``(sum e)^2 / sum e^2`` over the last axis for unnormalised weights ``e`` (0 when all are 0)."""
    s1 = e.sum(-1)
    s2 = (e * e).sum(-1)
    return s1 * s1 / namespace(e).where(s2 > 0, s2, 1.0)


_GRID = 33


def _grid(like: Any) -> Any:
    """The points of [0, 1] at which the ESS search evaluates a bracket, on ``like``'s backend (cached)."""
    key = (like.dtype, getattr(like, "device", None))
    g = _GRIDS.get(key)
    if g is None:
        g = np.linspace(0.0, 1.0, _GRID)
        g = g.astype(like.dtype) if isinstance(like, np.ndarray) else namespace(like).as_tensor(
            g, dtype=like.dtype, device=like.device)
        _GRIDS[key] = g
    return g


_GRIDS: dict[Any, Any] = {}


def spread(x: Any, c: Any, sampler: Sampler) -> Any:
    """Median distance of the particles to the consensus: robust to the few far explorers that
    multiplicative noise produces, so it tracks the bulk of the swarm (convergence, divergence)."""
    if sampler.compiled:
        return median(fused(_squared_distances)(x, c[..., None, :])) ** 0.5
    xp = namespace(x)
    dev = sampler.scratch("dev", x)
    if not isinstance(x, np.ndarray) or x.size < PARALLEL_MIN:
        xp.subtract(x, c[..., None, :], out=dev)
        return median(xp.einsum("...i,...i->...", dev, dev)) ** 0.5
    sq = np.empty(x.shape[:-1], dtype=np.result_type(x, c))

    def rows(a: int, b: int) -> None:  # on threads, rows apart: each row's value as one thread computes it
        part = np.subtract(x[..., a:b, :], c[..., None, :], out=dev[..., a:b, :])
        sq[..., a:b] = np.einsum("...i,...i->...", part, part)

    in_parallel(x.shape[-2], rows)
    return median(sq) ** 0.5


def _squared_distances(x: Any, c: Any) -> Any:
    dev = x - c
    return (dev * dev).sum(-1)


def row_square_sums(a: Any, shift: Any = None, div: Any = None) -> Any:
    """``sum_j v_ij^2`` over the last axis of (..., n, d) for ``v = shift - a`` (``shift`` (..., d)), ``v = a / div``
    (``div`` (..., d)) or ``v = a``. A large numpy array is summed on threads, rows apart: each row's sum is
    the one a single thread computes (the same passes in the same order), so results never depend on them."""

    def rows(r: Any) -> Any:
        part = a[..., r, :]
        if shift is not None:
            v = shift[..., None, :] - part
            v *= v
        elif div is not None:
            v = part / div[..., None, :]
            v *= v
        else:
            v = part * part
        return v.sum(-1)

    if not isinstance(a, np.ndarray) or a.size < PARALLEL_MIN:
        return rows(slice(None))
    out = np.empty(a.shape[:-1], dtype=np.result_type(*(t for t in (a, shift, div) if t is not None)))

    def work(lo: int, hi: int) -> None:
        out[..., lo:hi] = rows(slice(lo, hi))

    in_parallel(a.shape[-2], work)
    return out


def weighted_square_sums(a: Any, w: Any, shift: Any = None, div: Any = None) -> Any:
    """``sum_i w_i v_ij^2`` over axis -2 of (..., n, d), weights (..., n), for ``v = (a - shift) / div``
    (``shift`` (..., d), ``div`` (...,); None: left out). A large numpy array is summed on threads, columns
    apart, each column as a single thread sums it."""

    def columns(c: slice) -> Any:
        part = a[..., c]
        if shift is None:
            v = part * part
        else:
            v = part - shift[..., None, c]
            if div is not None:
                v /= div[..., None, None]
            v *= v
        v *= w[..., None]
        return v.sum(-2)

    if not isinstance(a, np.ndarray) or a.size < PARALLEL_MIN:
        return columns(slice(None))
    kinds = (t for t in (a, w, shift, div) if t is not None)
    out = np.empty(a.shape[:-2] + a.shape[-1:], dtype=np.result_type(*kinds))

    def work(lo: int, hi: int) -> None:
        out[..., lo:hi] = columns(slice(lo, hi))

    in_parallel(a.shape[-1], work)
    return out
