"""Gradient baselines, kept thin: gradients, gradient descent and annealed Langevin dynamics.

All are batched over leading axes: ``x0`` of shape ``(d,)`` or ``(M, d)`` gives ``M`` runs at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._backend import as_generator
from .._extras import available


def gradient(f: Callable[[Any], Any], method: str = "auto", h: float = 1e-5) -> Callable[[np.ndarray], np.ndarray]:
    """A batched gradient ``g(X[..., d]) -> G[..., d]`` of ``f``.

    ``"autograd"``: torch autograd on a float64 copy (``f`` must accept tensors); ``"central"``: central
    differences ``(f(x + h e_j) - f(x - h e_j)) / 2h`` (2 d evaluations per point); ``"auto"``: autograd when
    torch is installed and ``f`` works on tensors, else central differences.
    """
    if method not in ("auto", "autograd", "central"):
        raise ValueError(f"gradient: method must be 'auto', 'autograd' or 'central', got {method!r}")

    def central(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        d = x.shape[-1]
        eye = np.eye(d) * h
        xs = np.concatenate([x[..., None, :] + eye, x[..., None, :] - eye], axis=-2)  # (..., 2d, d)
        e = np.asarray(f(xs), dtype=float)
        return (e[..., :d] - e[..., d:]) / (2 * h)

    def autograd(x: np.ndarray) -> np.ndarray:
        import torch

        t = torch.as_tensor(np.asarray(x, dtype=float)).requires_grad_(True)
        (g,) = torch.autograd.grad(f(t).sum(), t)
        return g.numpy()

    if method == "central":
        return central
    if method == "autograd":
        return autograd
    choice: list[Callable[[np.ndarray], np.ndarray]] = []

    def auto(x: np.ndarray) -> np.ndarray:
        if not choice:
            use = central
            if available("torch"):
                try:
                    autograd(x)
                    use = autograd
                except Exception:  # f does not take tensors (or is not differentiable by torch): fall back
                    use = central
            choice.append(use)
        return choice[0](x)

    return auto


def gradient_descent(
    f: Callable[[Any], Any],
    x0: Any,
    *,
    steps: int,
    dt: float = 1e-3,
    eta: float = 1.0,
    grad: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Explicit gradient descent ``x <- x - eta grad f(x) dt``. Returns the path ``(steps + 1, *x0.shape)``."""
    return annealed_langevin(f, x0, steps=steps, dt=dt, eta=eta, sigma=0.0, grad=grad, rng=0)


def annealed_langevin(
    f: Callable[[Any], Any],
    x0: Any,
    *,
    steps: int,
    dt: float = 1e-3,
    eta: float = 1.0,
    sigma: float = 10.0,
    grad: Callable[[np.ndarray], np.ndarray] | None = None,
    rng: Any = None,
) -> np.ndarray:
    """Annealed Langevin dynamics ``x <- x - eta grad f(x) dt + sigma / log(k + 1) sqrt(dt) xi`` (k = 1, 2, ...).

    ``sigma = 0`` is gradient descent. Returns the path ``(steps + 1, *x0.shape)``.
    """
    x = np.array(x0, dtype=float)
    if x.ndim not in (1, 2):
        raise ValueError(f"x0: expected (d,) or (M, d), got shape {x.shape}")
    if int(steps) < 0:
        raise ValueError(f"steps: must be >= 0, got {steps}")
    for name, val in (("dt", dt), ("eta", eta), ("sigma", sigma)):
        if not np.isfinite(val) or val < 0 or (name == "dt" and val == 0):
            raise ValueError(f"{name}: must be finite and {'> 0' if name == 'dt' else '>= 0'}, got {val}")
    g = gradient(f) if grad is None else grad
    gen = as_generator(rng)
    path = np.empty((int(steps) + 1,) + x.shape)
    path[0] = x
    for k in range(1, int(steps) + 1):
        x = x - eta * dt * g(x)
        if sigma > 0:
            x = x + sigma / math.log(k + 1) * math.sqrt(dt) * gen.standard_normal(x.shape)
        path[k] = x
    return path
