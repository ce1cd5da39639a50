"""Particles against densities: Wasserstein-1 distances, and the mean-field consensus of a hopping step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._extras import require
from ..driver import read_only
from ..objectives._wrap import real_values
from ..validation import number
from .solver import Grid


def _cells_as_points(density: np.ndarray, grid: Grid, sub: int) -> tuple[np.ndarray, np.ndarray]:
    """Each cell as ``sub`` equal sub-cells per axis, each a point mass at its centre: the piecewise-constant
    density up to ``h / (4 sub)`` in W1."""
    axes = []
    for k in range(grid.dim):
        frac = (np.arange(sub) + 0.5) / sub - 0.5
        axes.append((grid.axis(k)[:, None] + frac[None, :] * grid.h[k]).reshape(-1))
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, grid.dim)
    w = density
    for k in range(grid.dim):
        w = np.repeat(w, sub, axis=k)
    w = np.clip(w.reshape(-1), 0.0, None)
    return pts, w / w.sum()


def _particles(x: Any, dim: int) -> np.ndarray:
    p = np.asarray(x, dtype=float)
    if dim == 1 and p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2 or p.shape[1] != dim or len(p) == 0:
        raise ValueError(f"particles: expected an array (N, {dim}), got shape {p.shape}")
    return p


def w1(particles: Any, density: np.ndarray, grid: Grid, *, sub: int = 8) -> float:
    """Wasserstein-1 distance between the empirical measure of ``particles`` (N,) or (N, 1) and a 1-D grid
    ``density`` (piecewise constant on the cells), by ``scipy.stats.wasserstein_distance``."""
    if grid.dim != 1:
        raise ValueError("w1: a 1-D grid is needed (use sliced_w1 in 2-D)")
    stats = require("scipy.stats", "cbopt.meanfield.w1")
    p = _particles(particles, 1)[:, 0]
    pts, w = _cells_as_points(np.asarray(density, dtype=float), grid, int(number("sub", sub, at_least=1, integer=True)))
    return float(stats.wasserstein_distance(p, pts[:, 0], v_weights=w))


def sliced_w1(particles: Any, density: np.ndarray, grid: Grid, *, directions: int = 32, bins: int = 1 << 15) -> float:
    """Sliced Wasserstein-1 distance between ``particles`` (N, 2) and a 2-D grid ``density`` (piecewise constant
    on the cells): the mean over ``directions`` equally spaced directions of the 1-D W1 of the projections.

    Each projection of the density is exact up to the ``bins`` resolution: the cell centres' projected masses,
    binned, convolved with the projection of one cell (the law of a sum of two uniforms); the 1-D distances
    are scipy's ``wasserstein_distance`` of the binned laws, so the result is within one bin width of the
    sliced W1 of the two measures.
    """
    if grid.dim != 2:
        raise ValueError("sliced_w1: a 2-D grid is needed (use w1 in 1-D)")
    stats = require("scipy.stats", "cbopt.meanfield.sliced_w1")
    p = _particles(particles, 2)
    k = int(number("directions", directions, at_least=1, integer=True))
    nb = int(number("bins", bins, at_least=16, integer=True))
    rho = np.clip(np.asarray(density, dtype=float), 0.0, None)
    if rho.shape != grid.cells:
        raise ValueError(f"density: expected the grid's shape {grid.cells}, got {rho.shape}")
    centres = grid.points.reshape(-1, 2)
    w = rho.reshape(-1) / rho.sum()
    out = 0.0
    for a in np.pi * (np.arange(k) + 0.5) / k:
        u = np.array([np.cos(a), np.sin(a)])
        pc, pp = centres @ u, p @ u
        reach = 0.5 * float(np.abs(u) @ grid.h)  # half the width of a cell's projection
        lo, hi = min(pc.min() - reach, pp.min()), max(pc.max() + reach, pp.max())
        step = (hi - lo) / nb
        edges = lo + step * np.arange(nb + 1)
        mass, _ = np.histogram(pc, bins=edges, weights=w)
        kernel = np.ones(1)
        for width in np.abs(u) * grid.h:  # one cell projects to box(|u1| h1) * box(|u2| h2)
            kernel = np.convolve(kernel, np.ones(max(1, int(round(width / step)))))
        mass = np.convolve(mass, kernel / kernel.sum(), mode="same")
        count, _ = np.histogram(pp, bins=edges)
        mids = edges[:-1] + step / 2
        out += stats.wasserstein_distance(mids, mids, u_weights=count + 0.0, v_weights=np.clip(mass, 0.0, None))
    return float(out / k)


def prox_consensus(f: Callable[[Any], Any], x: Any, tau: float, alpha: float, *, cells: int = 201,
                   window: float | None = None, levels: int = 40) -> np.ndarray:
    """The mean-field consensus of a Gaussian ``N(x, tau/alpha I)`` (d = 1 or 2)::

        c = int y g(y) dy / int g(y) dy,   g(y) = exp(-alpha f(y) - alpha |y - x|^2 / (2 tau))

    the N -> infinity limit of a consensus-hopping step from ``x``, which tends to ``prox_{tau f}(x)`` as
    alpha grows (Laplace). A log-sum-exp quadrature on a grid of ``cells`` points per axis over
    ``x +- window`` (default ``4 sqrt(tau) + 2``), zoomed onto the weights' support until the weights
    spread over many cells, so the peak of width ``O(alpha^-1/2)`` is resolved at any alpha.
    """
    x = np.asarray(x, dtype=float).reshape(-1)
    if x.shape[0] not in (1, 2):
        raise ValueError(f"prox_consensus: x must be a point in 1-D or 2-D, got shape {x.shape}")
    tau = number("tau", tau, above=0)
    alpha = number("alpha", alpha, above=0)
    n = int(number("cells", cells, at_least=11, integer=True))
    half = np.full(x.shape, 4 * np.sqrt(tau) + 2 if window is None else float(number("window", window, above=0)))
    centre = x.copy()
    mean = centre
    for _ in range(int(levels)):
        axes = [np.linspace(c - w, c + w, n) for c, w in zip(centre, half, strict=True)]
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(x))
        logw = -alpha * (np.asarray(real_values(f(read_only(pts)), "f"), dtype=float)
                         + ((pts - x) ** 2).sum(-1) / (2 * tau))
        logw = np.where(np.isnan(logw), -np.inf, logw)
        w = np.exp(logw - logw.max())
        w /= w.sum()
        mean = w @ pts
        std = np.sqrt(np.clip(w @ (pts - mean) ** 2, 0.0, None))
        h = 2 * half / (n - 1)
        if np.all(std > 8 * h):  # the weights cover many cells: the quadrature is resolved
            return mean
        centre = mean
        half = np.maximum(np.minimum(half, 10 * std), 4 * h / 2)  # zoom onto the support, at least two cells
    return mean


def gaussian(x0: Any, scale: float) -> Callable[[np.ndarray], np.ndarray]:
    """The (unnormalised) density of ``N(x0, scale^2 I)``: the law CBO's particles start from with
    ``x0=`` and ``options={"init_scale": scale}``."""
    c = np.asarray(x0, dtype=float).reshape(-1)
    return lambda pts: np.exp(-((pts - c) ** 2).sum(-1) / (2 * scale * scale))


def particle_laws(f: Callable[[Any], Any], x0: Any, init_scale: float, n: int, steps: list[int], *, dt: float,
                  lam: float, sigma: float, alpha: float, noise: str, rng: Any) -> dict[int, np.ndarray]:
    """Run cbopt's CBO with ``n`` particles from ``N(x0, init_scale^2 I)`` (no box, no stopping rule but the
    step count) and return its particles after each of ``steps``."""
    from ..minimize import minimize
    from ..stopping import Stop

    keep = set(steps)
    out: dict[int, np.ndarray] = {}

    def record(intermediate_result: Any) -> None:
        if intermediate_result.nit in keep:
            out[int(intermediate_result.nit)] = np.array(intermediate_result.population)

    minimize(f, x0=np.asarray(x0, dtype=float), method="cbo", rng=rng, callback=record,
             options=dict(n_particles=n, dt=dt, lam=lam, sigma=sigma, alpha=alpha, noise=noise, boundary=None,
                          init_scale=init_scale),
             stop=Stop(max_iter=max(steps), xtol=None, ftol=None, divergence=None))
    return out


def chaos(f: Callable[[Any], Any], bounds: Any, x0: Any, init_scale: float, ns: Any, times: Any, *,
          seeds: int = 10, cells: Any = 2000, dt: float = 1e-3, lam: float = 1.0, sigma: float = 1.0,
          alpha: float = 10.0, noise: str = "anisotropic", rng: Any = 0) -> dict[str, Any]:
    """Propagation of chaos, measured: the W1 distance (1-D; sliced W1 in 2-D) between the empirical law of N
    CBO particles and the mean-field density at ``times``, for each N in ``ns`` over ``seeds`` runs.

    Returns ``{"n", "times", "w1" (len(ns), seeds, len(times)), "mean" (len(ns), len(times)), "slope"
    (per time: the fitted slope of log mean W1 against log N), "slope_sd" (per time: the spread of the
    slopes fitted to each seed's row), "pde" (the :class:`MeanFieldResult`)}``.
    """
    from .._backend import as_generator
    from .solver import solve

    gen = as_generator(rng)
    times = [float(t) for t in np.atleast_1d(times)]
    steps = [max(1, int(round(t / dt))) for t in times]
    ns = sorted({int(number("ns", n, at_least=2, integer=True)) for n in np.atleast_1d(ns)})
    if len(ns) < 2:
        raise ValueError("ns: give at least two particle counts (the slope is fitted against log N)")
    seeds = int(number("seeds", seeds, at_least=1, integer=True))
    pde = solve(f, bounds, gaussian(x0, init_scale), cells=cells, T=max(steps) * dt, dt=dt, lam=lam, sigma=sigma,
                alpha=alpha, noise=noise, save=[k * dt for k in steps])
    dist = w1 if pde.grid.dim == 1 else sliced_w1
    table = np.zeros((len(ns), seeds, len(times)))
    for i, n in enumerate(ns):
        for s in range(seeds):
            laws = particle_laws(f, x0, init_scale, n, steps, dt=dt, lam=lam, sigma=sigma, alpha=alpha, noise=noise,
                                 rng=int(gen.integers(2**62)))
            for j, k in enumerate(steps):
                table[i, s, j] = dist(laws[k], pde.at(k * dt), pde.grid)
    logn = np.log(ns)
    mean = table.mean(1)
    slope = np.array([np.polyfit(logn, np.log(mean[:, j]), 1)[0] for j in range(len(times))])
    per_seed = np.array([[np.polyfit(logn, np.log(table[:, s, j]), 1)[0] for s in range(seeds)]
                         for j in range(len(times))])
    return {"n": np.array(ns), "times": np.array(times), "w1": table, "mean": mean, "slope": slope,
            "slope_sd": per_seed.std(1, ddof=1) if seeds > 1 else np.zeros(len(times)), "pde": pde}
