"""Noise models ``D(X - c) xi`` of consensus-based dynamics.

Each takes the deviations ``dev = X - c`` (M, n, d) and standard normals ``xi`` of the same shape and
returns the noise increment before the ``sigma * sqrt(dt)`` factor.
"""

from __future__ import annotations

from typing import Any, Callable


def anisotropic(dev: Any, xi: Any) -> Any:
    """``D(v) = diag(v)``: coordinate-wise noise; stable for ``2 lambda > sigma^2`` in any dimension."""
    return dev * xi


def isotropic(dev: Any, xi: Any) -> Any:
    """``D(v) = |v|_2 I``: one noise scale per particle; needs ``2 lambda > d sigma^2`` to contract."""
    return ((dev * dev).sum(-1, keepdims=True) ** 0.5) * xi


NOISE: dict[str, Callable[[Any, Any], Any]] = {"anisotropic": anisotropic, "isotropic": isotropic}


def get_noise(name: str | Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    if callable(name):
        return name
    try:
        return NOISE[name]
    except KeyError:
        raise ValueError(f"noise: expected one of {sorted(NOISE)} or a callable, got {name!r}") from None
