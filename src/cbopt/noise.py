"""Noise models ``D(X - c) xi`` of consensus-based dynamics.

Each takes the deviations ``dev`` (M, n, d) and scaled standard normals ``xi`` of the same shape and
returns ``D(dev) xi``. ``dev = X - c``; in float32 runs CBO passes ``max(|X - c|, eps (1 + |c|))`` per
coordinate instead (the noise is symmetric, so the sign does not matter; the floor keeps a coordinate's
noise from vanishing exactly, see :func:`cbopt.methods.cbo.move`). ``xi`` is a fresh temporary owned
by the caller: a model may overwrite it in place (saving an allocation of the size of the swarm);
``dev`` must not be modified.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .validation import number

#: a noise model ``D(dev, xi) -> step``: ``dev = x - c`` and standard normal ``xi``, both (..., d)
NoiseModel = Callable[[Any, Any], Any]


def anisotropic(dev: Any, xi: Any) -> Any:
    """``D(v) = diag(v)``: coordinate-wise noise; stable for ``2 lambda > sigma^2`` in any dimension."""
    xi *= dev
    return xi


def isotropic(dev: Any, xi: Any) -> Any:
    """``D(v) = |v|_2 I``: one noise scale per particle; needs ``2 lambda > d sigma^2`` to contract."""
    xi *= ((dev * dev).sum(-1, keepdims=True) ** 0.5)
    return xi


def truncated(bound: float) -> NoiseModel:
    """``D(v) = min(|v|_2, bound) I``: isotropic noise whose scale never exceeds ``bound``, so far-away particles
    do not explode (Fornasier, Richtárik, Riedl, Sun, arXiv:2310.16610). Use as ``options={"noise":
    cbopt.noise.truncated(1.0)}``."""
    number("truncated bound", bound, above=0)

    def model(dev: Any, xi: Any) -> Any:
        norm = (dev * dev).sum(-1, keepdims=True) ** 0.5
        xi *= norm.clip(None, bound)
        return xi

    model.__name__ = f"truncated({bound:g})"
    return model


def _checked(model: NoiseModel) -> NoiseModel:
    """A user's noise model, with its contract checked where it is called: ``model(dev, xi)`` returns an array of
    ``dev``'s shape (one clear error instead of a broadcasting failure deep inside the update)."""

    @functools.wraps(model)
    def noise(dev: Any, xi: Any) -> Any:
        try:
            out = model(dev, xi)
        except TypeError as exc:
            raise TypeError(f"noise: a noise model is called as noise(dev, xi) with two arrays of shape "
                            f"{tuple(dev.shape)} and returns D(dev) xi ({exc})") from exc
        if tuple(getattr(out, "shape", ())) != tuple(dev.shape):
            raise ValueError(f"noise: the model must return D(dev) xi of shape {tuple(dev.shape)} (that of dev), "
                             f"got {type(out).__name__} of shape {tuple(getattr(out, 'shape', ()))}")
        return out

    noise.checked = True  # type: ignore[attr-defined]
    return noise


NOISE: dict[str, NoiseModel] = {"anisotropic": anisotropic, "isotropic": isotropic}


def get_noise(name: str | NoiseModel) -> NoiseModel:
    if callable(name):
        return name if name in NOISE.values() or getattr(name, "checked", False) else _checked(name)
    try:
        return NOISE[name]
    except KeyError:
        raise ValueError(f"noise: expected one of {sorted(NOISE)} or a callable, got {name!r}") from None
