"""Mirror maps for mirror CBO (``method="cbo-mirror"``): a convex ``phi`` whose conjugate's gradient maps dual
particles ``y`` to primal points ``x = grad phi*(y)``, and projections for projected CBO.

Each map has ``to_primal(y)`` (``grad phi*``, batched over the last axis, numpy or torch) and ``to_dual(x)``
(``grad phi`` where it exists, used once to start the dual particles). Feasibility is by construction:
every primal point the method evaluates is an image of ``to_primal``.

* :class:`Identity` -- ``phi(x) = |x|^2 / 2``: CBO itself (the default of ``method="cbo-mirror"``);
* :class:`ElasticNet` -- ``phi(x) = |x|^2 / (2 delta) + lam |x|_1``: soft thresholding, sparse iterates;
* :class:`EntropySimplex` -- the negative entropy on the probability simplex: ``softmax``;
* :class:`Ball`, :class:`Simplex` -- Euclidean projections (``phi = |x|^2 / 2`` plus the indicator), also
  usable as ``constraints=`` of :func:`cbopt.minimize` for projected CBO.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import amax, arange_like, namespace, on_backend_of, sort, take_last, to_numpy
from .validation import number


@dataclass(frozen=True)
class Identity:
    """``phi(x) = |x|^2 / 2``: the duals are the particles; mirror CBO is CBO."""

    def to_primal(self, y: Any) -> Any:
        return y

    def to_dual(self, x: Any) -> Any:
        return x


@dataclass(frozen=True)
class ElasticNet:
    """``phi(x) = |x|^2 / (2 delta) + lam |x|_1``; ``grad phi*(y) = delta sign(y) max(|y| - lam, 0)``."""

    delta: float = 1.0
    lam: float = 1.0

    def __post_init__(self) -> None:
        number("ElasticNet.delta", self.delta, above=0)
        number("ElasticNet.lam", self.lam, at_least=0)

    def to_primal(self, y: Any) -> Any:
        xp = namespace(y)
        return self.delta * xp.sign(y) * (abs(y) - self.lam).clip(0.0, None)

    def to_dual(self, x: Any) -> Any:
        return x / self.delta + self.lam * namespace(x).sign(x)


@dataclass(frozen=True)
class EntropySimplex:
    """The negative entropy ``phi(x) = sum x_i log x_i`` on the simplex ``{x >= 0, sum x = 1}``;
    ``grad phi*(y) = softmax(y)``. The dual start is the initial sample itself (any point maps inside)."""

    def to_primal(self, y: Any) -> Any:
        e = namespace(y).exp(y - amax(y, -1)[..., None])
        return e / e.sum(-1)[..., None]

    def to_dual(self, x: Any) -> Any:
        return x


@dataclass(frozen=True)
class Ball:
    """The ball ``|x - center| <= radius``: the Euclidean projection (a constraint for projected CBO, and the
    projection mirror map of mirror CBO)."""

    radius: float = 1.0
    center: Any = 0.0

    def __post_init__(self) -> None:
        number("Ball.radius", self.radius, above=0)

    def to_primal(self, y: Any) -> Any:
        c = self.center if isinstance(self.center, (int, float)) else on_backend_of(self.center, y)
        return _into_ball(y, c, self.radius)

    def to_dual(self, x: Any) -> Any:
        return x

    def projector(self, to_backend: Any) -> Any:
        c = self.center if isinstance(self.center, (int, float)) else to_backend(self.center)  # once, not per step
        return lambda x: _into_ball(x, c, self.radius)

    def violation(self, x: Any) -> float:
        c = np.asarray(to_numpy(self.center) if not isinstance(self.center, (int, float)) else self.center)
        dist = float(np.linalg.norm(np.asarray(to_numpy(x), dtype=float) - c))
        return max(0.0, dist - self.radius)


def _into_ball(y: Any, c: Any, radius: float) -> Any:
    v = y - c
    norm = (v * v).sum(-1)[..., None] ** 0.5
    return c + v / (norm / radius).clip(1.0, None)


@dataclass(frozen=True)
class Simplex:
    """The simplex ``{x >= 0, sum x = total}``: the Euclidean projection (sort-based, batched)."""

    total: float = 1.0

    def __post_init__(self) -> None:
        number("Simplex.total", self.total, above=0)

    def to_primal(self, y: Any) -> Any:
        d = y.shape[-1]
        u = -sort(-y)  # descending
        css = u.cumsum(-1) - self.total
        k = arange_like(d, y) + 1
        count = (u - css / k > 0).sum(-1)[..., None]  # the support size rho (>= 1)
        idx = count - 1
        theta = take_last(css, idx) / count
        return (y - theta).clip(0.0, None)

    def to_dual(self, x: Any) -> Any:
        return x

    def projector(self, to_backend: Any) -> Any:
        return self.to_primal

    def violation(self, x: Any) -> float:
        v = np.asarray(to_numpy(x), dtype=float)
        return float(abs(v.sum() - self.total) + np.clip(-v, 0.0, None).sum())


#: the maps by name (``options={"mirror": "elastic-net"}``); objects carry their own parameters
MIRRORS: dict[str, Any] = {"identity": Identity, "elastic-net": ElasticNet, "entropy-simplex": EntropySimplex,
                           "ball": Ball, "simplex": Simplex}


def as_mirror(m: Any) -> Any:
    """A mirror map from a name of :data:`MIRRORS` or an object with ``to_primal`` and ``to_dual``."""
    if isinstance(m, str):
        if m not in MIRRORS:
            raise ValueError(f"mirror: unknown map {m!r}; expected one of {sorted(MIRRORS)} or a map object")
        return MIRRORS[m]()
    if not (callable(getattr(m, "to_primal", None)) and callable(getattr(m, "to_dual", None))):
        raise TypeError(f"mirror: expected a name {sorted(MIRRORS)} or an object with to_primal(y) and to_dual(x), "
                        f"got {m!r}")
    return m
