"""Proximal maps ``prox_{tau f}(v) = argmin_x f(x) + |x - v|^2 / (2 tau)`` and the minimizing movement.

Closed forms where they exist (quadratic, l1), a scipy solve for smooth ``f``, and a brute-force grid in
one or two dimensions for nonsmooth or nonconvex ``f`` (where a local solver may miss the global argmin of
the prox objective).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._extras import require


def prox_quadratic(a: Any, v: Any, tau: float) -> np.ndarray:
    """``prox_{tau f}(v) = (I + tau A)^{-1} v`` for ``f(x) = x^T A x / 2`` (A symmetric positive semidefinite).

    >>> prox_quadratic([[2.0, 0.0], [0.0, 1.0]], [2.0, -1.0], 0.5).tolist()
    [1.0, -0.6666666666666666]
    """
    a = np.asarray(a, dtype=float)
    v = np.asarray(v, dtype=float)
    _check_tau(tau)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] != v.shape[-1]:
        raise ValueError(f"prox_quadratic: A must be (d, d) with d = len(v) = {v.shape[-1]}, got {a.shape}")
    return np.linalg.solve(np.eye(len(a)) + tau * a, v[..., None])[..., 0]


def prox_l1(v: Any, tau: float) -> np.ndarray:
    """Soft thresholding ``sign(v) max(|v| - tau, 0)``: the prox of ``f(x) = |x|_1``.

    >>> prox_l1([2.0, -0.3, 0.5], 0.5).tolist()
    [1.5, -0.0, 0.0]
    """
    v = np.asarray(v, dtype=float)
    _check_tau(tau)
    return np.sign(v) * np.maximum(np.abs(v) - tau, 0.0)


def prox(
    f: Callable[[Any], Any],
    v: Any,
    tau: float,
    *,
    method: str = "auto",
    window: float | None = None,
    grid_size: int = 801,
    starts: Any = None,
) -> np.ndarray:
    """``prox_{tau f}(v)`` for a batched objective ``f(X[..., d]) -> E[...]``.

    Parameters
    ----------
    method : "auto", "grid" or "scipy"
        ``"grid"``: exhaustive search on a ``grid_size``-point grid per axis over ``v +- window`` (d <= 2),
        refined twice around the best point: the global argmin of the prox objective up to the grid
        resolution, for nonsmooth and nonconvex f. ``"scipy"``: L-BFGS-B from ``v`` (and from ``starts``),
        for smooth f. ``"auto"``: grid in d <= 2, scipy otherwise.
    window : half-width of the grid (default ``4 sqrt(tau) + 2``).
    starts : extra starting points (k, d) for the scipy solve.
    """
    v = np.asarray(v, dtype=float)
    _check_tau(tau)
    if v.ndim != 1:
        raise ValueError(f"prox: v must be a point (d,), got shape {v.shape}")
    d = v.shape[0]
    if method == "auto":
        method = "grid" if d <= 2 else "scipy"

    def objective(x: np.ndarray) -> np.ndarray:
        return np.asarray(f(x), dtype=float) + ((x - v) ** 2).sum(-1) / (2 * tau)

    if method == "grid":
        if d > 2:
            raise ValueError(f"prox: the grid method works in 1-D and 2-D, got d = {d}")
        w = 4 * np.sqrt(tau) + 2 if window is None else float(window)
        centre = v
        for _ in range(3):  # coarse grid, then two refinements around the best point
            axes = [np.linspace(c - w, c + w, grid_size) for c in centre]
            pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
            centre = pts[np.argmin(objective(pts))]
            w = 4 * w / (grid_size - 1)
        return centre
    if method == "scipy":
        opt = require("scipy.optimize", "prox(method='scipy')")
        x0s = [v] + ([] if starts is None else list(np.atleast_2d(np.asarray(starts, dtype=float))))
        best: Any = None
        for x0 in x0s:
            r = opt.minimize(lambda x: float(objective(x)), x0, method="L-BFGS-B",
                             options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10_000})
            if best is None or r.fun < best.fun:
                best = r
        return np.asarray(best.x)
    raise ValueError(f"prox: method must be 'auto', 'grid' or 'scipy', got {method!r}")


def minimizing_movement(
    f: Callable[[Any], Any], x0: Any, tau: float, steps: int, prox_fn: Callable[..., Any] | None = None, **kw: Any
) -> np.ndarray:
    """The minimizing-movement (proximal point) iteration ``x_{k+1} = prox_{tau f}(x_k)``: the implicit
    Euler scheme of the gradient flow. Returns the path, shape ``(steps + 1, d)``.

    ``prox_fn(v, tau)`` overrides the generic :func:`prox` (e.g. ``prox_l1``); ``kw`` goes to :func:`prox`.
    """
    x = np.asarray(x0, dtype=float)
    path = [x]
    for _ in range(int(steps)):
        x = np.asarray(prox_fn(x, tau) if prox_fn is not None else prox(f, x, tau, **kw), dtype=float)
        path.append(x)
    return np.stack(path)


def _check_tau(tau: float) -> None:
    if not isinstance(tau, (int, float, np.floating)) or isinstance(tau, bool) or not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau: must be a finite number > 0, got {tau!r}")
