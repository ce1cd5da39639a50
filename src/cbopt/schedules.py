"""Schedules for the inverse temperature alpha and the noise level sigma.

A schedule is a small immutable object with two pure methods::

    value = schedule.init(m, dtype)            # per-run values, shape (M,)
    value = schedule.update(value, it, energy)  # after step ``it`` (1, 2, ...), energies (M, N)

Plain numbers are accepted wherever a schedule is expected and mean :class:`Constant`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ._backend import full_like_shape, namespace
from .numerics import alpha_for_ess


@runtime_checkable
class Schedule(Protocol):
    def init(self, m: int, like: Any) -> Any: ...

    def update(self, value: Any, it: int, energy: Any) -> Any: ...


def _full(m: int, v: float, like: Any) -> Any:
    return full_like_shape((m,), float(v), like)


def _check_finite_nonneg(name: str, v: float) -> None:
    if not isinstance(v, (int, float, np.floating, np.integer)) or isinstance(v, bool):
        raise TypeError(f"{name}: expected a number, got {type(v).__name__}")
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name}: must be finite and >= 0, got {v}")


@dataclass(frozen=True)
class Constant:
    """``v_k = value`` for every step."""

    value: float

    def __post_init__(self) -> None:
        _check_finite_nonneg("Constant.value", self.value)

    def init(self, m: int, like: Any) -> Any:
        return _full(m, self.value, like)

    def update(self, value: Any, it: int, energy: Any) -> Any:
        return value


@dataclass(frozen=True)
class Geometric:
    """``v_k = clip(start * factor**k, floor, cap)``: growth (factor > 1) or decay (factor < 1)."""

    start: float
    factor: float
    cap: float = math.inf  # bound for growth
    floor: float = 0.0  # bound for decay

    def __post_init__(self) -> None:
        _check_finite_nonneg("Geometric.start", self.start)
        _check_finite_nonneg("Geometric.factor", self.factor)
        if not self.cap >= self.floor >= 0:
            raise ValueError(f"Geometric: need cap >= floor >= 0, got cap={self.cap}, floor={self.floor}")

    def init(self, m: int, like: Any) -> Any:
        return _full(m, min(max(self.start, self.floor), self.cap), like)

    def update(self, value: Any, it: int, energy: Any) -> Any:
        return (value * self.factor).clip(self.floor, self.cap)


@dataclass(frozen=True)
class StepDecay:
    """``v_k = start * factor**(k // every)``, e.g. sigma x 0.98 every 100 steps."""

    start: float
    factor: float = 0.98
    every: int = 100

    def __post_init__(self) -> None:
        _check_finite_nonneg("StepDecay.start", self.start)
        _check_finite_nonneg("StepDecay.factor", self.factor)
        if int(self.every) < 1:
            raise ValueError(f"StepDecay.every: must be >= 1, got {self.every}")

    def init(self, m: int, like: Any) -> Any:
        return _full(m, self.start, like)

    def update(self, value: Any, it: int, energy: Any) -> Any:
        return value * self.factor if it % self.every == 0 else value


@dataclass(frozen=True)
class EffectiveSampleSize:
    """Adaptive alpha: the alpha at which the consensus weights have ESS ``(sum w)^2 / sum w^2 = eta * N``.

    Invariant to affine rescaling of the objective (alpha adapts to the energy scale). With
    ``monotone=True`` alpha never decreases, so the consensus keeps sharpening as the swarm concentrates.
    """

    eta: float = 0.5
    alpha_max: float = 1e15
    monotone: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.eta <= 1:
            raise ValueError(f"EffectiveSampleSize.eta: must lie in (0, 1], got {self.eta}")
        _check_finite_nonneg("EffectiveSampleSize.alpha_max", self.alpha_max)

    def init(self, m: int, like: Any) -> Any:
        return _full(m, 0.0, like)

    def update(self, value: Any, it: int, energy: Any) -> Any:
        a = alpha_for_ess(energy, self.eta, self.alpha_max)
        return namespace(a).maximum(a, value) if self.monotone else a


def as_schedule(name: str, v: Any) -> Schedule:
    """Coerce a number to :class:`Constant`; validate anything else as a :class:`Schedule`."""
    if isinstance(v, Schedule):
        return v
    if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name}: must be finite and >= 0, got {v}")
        return Constant(float(v))
    raise TypeError(f"{name}: expected a non-negative number or a schedule (cbopt.schedules), got {v!r}")
