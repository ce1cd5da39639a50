"""Zeroth-order gradient estimators, as one table: each kind says how it draws its directions, whether its
stencil is two-point, and how many directions it takes. Shared by the ZO methods (:mod:`cbopt.methods.zo`)
and the standalone estimators (:mod:`cbopt.zo`), which both import from here.

Estimate ``g = sum_i c_i u_i`` from the directions ``u_i`` and the energies of the stencil:

    gaussian  u_i ~ N(0, I)             c_i = (f(x + mu u_i) - f(x - mu u_i)) / (2 mu q)
    spsa      u_i ~ Rademacher (+-1)    the same
    cge       u_j = e_j, j in a subset  c_j = (f(x + mu e_j) - f(x - mu e_j)) / (2 mu)
    rank      u_i ~ N(0, I), m points   c_i = (2 rank_i - (m - 1)) / (m (m - 1) / 2)   (only the order of f)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import Sampler, cast, eye, eye_like, namespace


def _normal(sampler: Sampler, m: int, q: int, d: int, like: Any) -> Any:
    return sampler.normal((m, q, d))


def _rademacher(sampler: Sampler, m: int, q: int, d: int, like: Any) -> Any:
    u = namespace(like).sign(sampler.uniform((m, q, d)) - 0.5)
    u[u == 0] = 1.0  # a draw of exactly 0.5
    return u


def _coordinates(sampler: Sampler, m: int, q: int, d: int, like: Any) -> Any:
    if q == d:  # every coordinate: no draw
        return eye_like(like)
    unit = eye(d, like)
    idx = sampler.uniform((m, d)).argsort(-1)[:, :q]
    return unit[idx]


@dataclass(frozen=True)
class Estimator:
    """One kind of zeroth-order estimate."""

    kind: str
    draw: Callable[[Any, int, int, int, Any], Any]  # (sampler, M, q, d, like) -> directions (M, q, d)
    two_point: bool  # stencil x +- mu u (else x + mu u, read by rank only)
    default_directions: int  # q when not given (cge resolves to every coordinate instead)
    fewest: int = 1  # the smallest q
    averaged: bool = True  # divide the two-point coefficients by q (cge: each coordinate is its own estimate)
    every_coordinate: bool = False  # cge: q defaults to d and is at most d
    signs: bool = False  # directions of +-1 entries (spsa), for estimators that draw them elsewhere (torch modules)

    def directions(self, sampler: Sampler, m: int, q: int, d: int, like: Any) -> Any:
        """``q`` directions per run, (M, q, d)."""
        return self.draw(sampler, m, q, d, like)

    def stencil(self, x: Any, u: Any, mu: float) -> Any:
        """The points to evaluate around ``x`` (M, d): ``x + mu u`` then, for two-point kinds, ``x - mu u``."""
        plus = x[:, None, :] + mu * u
        if not self.two_point:
            return plus
        return namespace(x).concatenate([plus, x[:, None, :] - mu * u], axis=1)

    def points(self, q: int) -> int:
        """Points evaluated per estimate with ``q`` directions."""
        return 2 * q if self.two_point else q

    def coefficients(self, energy: Any, mu: float) -> Any:
        """The weight of each direction (M, q), from the stencil's energies (two-point: the q ``+`` values, then
        the q ``-`` values; rank: m values, of which only their order is read)."""
        xp = namespace(energy)
        if not self.two_point:
            q = energy.shape[1]
            rank = cast(energy.argsort(-1).argsort(-1), energy.dtype)  # 0: the best point
            return (2 * rank - (q - 1)) / (q * (q - 1) / 2)
        q = energy.shape[1] // 2
        with np.errstate(invalid="ignore"):  # inf - inf: a failed evaluation or a stopped run
            coef = (energy[:, :q] - energy[:, q:]) / (2 * mu)
        coef = xp.where(xp.isfinite(coef), coef, xp.zeros_like(coef))  # a failed evaluation gives no signal
        return coef / q if self.averaged else coef

    def combine(self, u: Any, energy: Any, mu: float) -> Any:
        """The gradient estimate (M, d) from the directions ``u`` (M, q, d) and the stencil's energies."""
        return namespace(u).einsum("mq,mqd->md", self.coefficients(energy, mu), u)


ESTIMATORS = {e.kind: e for e in (
    Estimator("gaussian", _normal, two_point=True, default_directions=4),
    Estimator("spsa", _rademacher, two_point=True, default_directions=4, signs=True),
    Estimator("cge", _coordinates, two_point=True, default_directions=4, averaged=False, every_coordinate=True),
    Estimator("rank", _normal, two_point=False, default_directions=10, fewest=2),
)}
