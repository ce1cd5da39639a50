"""Diagnostics that turn "CBO is a stochastic relaxation of gradient descent" into numbers, for any objective.

Every function takes a batched objective ``f(X[..., d]) -> E[...]`` and an ``rng``, and returns plain
numpy arrays / dicts that :mod:`cbopt.plot` draws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._backend import as_generator
from ..numerics import consensus, log_weights
from .baselines import gradient


def _sigma(tau: float | None, sigma: float | None, alpha: float) -> float:
    if (tau is None) == (sigma is None):
        raise ValueError("give exactly one of tau (then sigma = sqrt(tau / alpha)) and sigma")
    if alpha <= 0:
        raise ValueError(f"alpha: must be > 0, got {alpha}")
    if tau is not None:
        return float(np.sqrt(tau / alpha))
    assert sigma is not None  # exactly one of the two, checked above
    return float(sigma)


def ch_steps(
    f: Callable[[Any], Any],
    x: Any,
    *,
    alpha: float,
    n: int,
    tau: float | None = None,
    sigma: float | None = None,
    reps: int = 1,
    rng: Any = None,
) -> np.ndarray:
    """``reps`` independent consensus-hopping steps from ``x``: the consensus of ``n`` samples ``N(x, sigma^2 I)``.

    Give ``tau`` (``sigma = sqrt(tau / alpha)``, the proximal parametrisation) or ``sigma``. Returns ``(reps, d)``.
    """
    x = np.asarray(x, dtype=float)
    s = _sigma(tau, sigma, alpha)
    gen = as_generator(rng)
    out = np.empty((reps, x.shape[-1]))
    chunk = max(1, int(2e6 // max(1, n * x.shape[-1])))  # bound the memory of one batch of samples
    for i in range(0, reps, chunk):
        m = min(chunk, reps - i)
        xs = x + s * gen.standard_normal((m, n, x.shape[-1]))
        e = np.asarray(f(xs), dtype=float)
        e = np.where(np.isfinite(e), e, np.inf)
        out[i : i + m], _ = consensus(xs, e, np.full(m, float(alpha)))
    return out


def laplace_curve(
    f: Callable[[Any], Any],
    samples: Any,
    alphas: Any,
    x_star: Any,
) -> dict[str, np.ndarray]:
    """The Laplace principle on a fixed sample: ``c_alpha -> argmin`` as ``alpha -> inf``.

    For each alpha: ``dist`` = ``|c_alpha - x*|``, ``softmin`` = ``-(1/alpha) log sum_i exp(-alpha f_i)``,
    and the discrete bounds ``min_i f_i - log(N)/alpha <= softmin <= min_i f_i`` (``lower``, ``upper``);
    ``best_dist`` = distance of the best sample to ``x*`` (the limit of ``dist``).
    """
    xs = np.asarray(samples, dtype=float)
    if xs.ndim != 2:
        raise ValueError(f"samples: expected (N, d), got shape {xs.shape}")
    alphas = np.asarray(alphas, dtype=float)
    e = np.asarray(f(xs), dtype=float)
    e = np.where(np.isfinite(e), e, np.inf)
    fmin = e.min()
    dist, soft = [], []
    for a in alphas:
        c, _ = consensus(xs[None], e[None], np.array([a]))
        dist.append(np.linalg.norm(c[0] - np.asarray(x_star, dtype=float)))
        lw = log_weights(e[None], np.array([a]))[0]  # -a (f_i - fmin)
        top = lw.max()
        soft.append(fmin - (top + np.log(np.exp(lw - top).sum())) / a)
    n = xs.shape[0]
    return {
        "alpha": alphas,
        "dist": np.asarray(dist),
        "softmin": np.asarray(soft),
        "lower": fmin - np.log(n) / alphas,
        "upper": np.full_like(alphas, fmin),
        "best_dist": np.full_like(alphas, np.linalg.norm(xs[np.argmin(e)] - np.asarray(x_star, dtype=float))),
    }


def prox_error(
    f: Callable[[Any], Any],
    x: Any,
    tau: float,
    ns: Any,
    alphas: Any,
    prox_point: Any,
    *,
    reps: int = 20,
    rng: Any = None,
) -> dict[str, np.ndarray]:
    """Distance between consensus-hopping steps (``sigma = sqrt(tau/alpha)``) and ``prox_{tau f}(x)``.

    Returns ``error[i, j]`` = mean over ``reps`` of ``|CH step - prox|`` for ``n = ns[i]``, ``alpha = alphas[j]``,
    its Monte-Carlo standard error ``sem``, and ``bias[i, j]`` = ``|mean CH step - prox|``.
    """
    gen = as_generator(rng)
    ns, alphas = np.asarray(ns, dtype=int), np.asarray(alphas, dtype=float)
    p = np.asarray(prox_point, dtype=float)
    err = np.empty((len(ns), len(alphas)))
    sem = np.empty_like(err)
    bias = np.empty_like(err)
    for i, n in enumerate(ns):
        for j, a in enumerate(alphas):
            steps = ch_steps(f, x, alpha=a, n=int(n), tau=tau, reps=reps, rng=gen)
            dist = np.linalg.norm(steps - p, axis=-1)
            err[i, j], sem[i, j] = dist.mean(), dist.std(ddof=1) / np.sqrt(reps) if reps > 1 else 0.0
            bias[i, j] = np.linalg.norm(steps.mean(0) - p)
    return {"n": ns, "alpha": alphas, "error": err, "sem": sem, "bias": bias}


def stein_step(
    f: Callable[[Any], Any],
    x: Any,
    *,
    alpha: float,
    n: int,
    tau: float | None = None,
    sigma: float | None = None,
    grad: Callable[[np.ndarray], np.ndarray] | None = None,
    rng: Any = None,
) -> dict[str, np.ndarray]:
    """The CH step and its Stein form from the *same* samples.

    Stein's lemma for ``mu ~ e^{-alpha f} N(x, sigma^2 I)``: ``E_mu[X] - x = -tau E_mu[grad f]`` with
    ``tau = alpha sigma^2``.
    Returns ``ch`` (the weighted mean of the samples), ``stein`` (``x - tau sum_i w_i grad f(X_i)``) and
    ``gd`` (``x - tau grad f(x)``, the explicit gradient step of the same size).
    """
    x = np.asarray(x, dtype=float)
    s = _sigma(tau, sigma, alpha)
    t = alpha * s * s
    gen = as_generator(rng)
    xs = x + s * gen.standard_normal((n, x.shape[-1]))
    e = np.asarray(f(xs), dtype=float)
    c, w = consensus(xs[None], e[None], np.array([float(alpha)]))
    gr = gradient(f) if grad is None else grad
    return {
        "ch": c[0],
        "stein": x - t * (w[0] @ gr(xs)),
        "gd": x - t * gr(x[None])[0],
        "tau": np.float64(t),
    }


def alignment(
    f: Callable[[Any], Any],
    consensus_path: Any,
    *,
    grad: Callable[[np.ndarray], np.ndarray] | None = None,
    lag: int = 1,
    away_from: Any = None,
    radius: float = 0.0,
    direction: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Cosine between each consensus displacement ``c_{k+lag} - c_k`` and ``-grad f(c_k)`` along a run.

    ``consensus_path``: ``(K, d)`` or ``(K, M, d)`` (e.g. ``res.history["consensus"]`` of a run with
    ``history=True``). Steps of length 0 and points with zero gradient are dropped, and with ``away_from``
    (a point, e.g. the minimiser) the points ``c_k`` within ``radius`` of it. ``direction(C[..., d])`` replaces
    ``-grad f`` as the reference, e.g. the proximal direction ``prox_{tau f}(c) - c``. Returns the cosines.
    """
    c = np.asarray(consensus_path, dtype=float)
    if c.ndim == 2:
        c = c[:, None, :]
    if c.ndim != 3 or c.shape[0] <= lag or lag < 1:
        raise ValueError(f"consensus_path: expected (K > lag, d) or (K, M, d), got shape {c.shape} (lag {lag})")
    c0 = c[:-lag]
    g = -direction(c0) if direction is not None else (gradient(f) if grad is None else grad)(c0)
    step = c[lag:] - c0
    ns, ng = np.linalg.norm(step, axis=-1), np.linalg.norm(g, axis=-1)
    keep = (ns > 0) & (ng > 0)
    if away_from is not None:
        keep &= np.linalg.norm(c0 - np.asarray(away_from, dtype=float), axis=-1) > radius
    return -(step * g).sum(-1)[keep] / (ns[keep] * ng[keep])
