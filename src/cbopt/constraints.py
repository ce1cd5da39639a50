"""Constraints for :func:`cbopt.minimize`: a sphere, ball or simplex (projected dynamics) and general
equalities/inequalities (exact penalty), passed the same way for every method::

    minimize(f, bounds=..., constraints=Sphere())                                  # |x - center| = radius
    minimize(f, bounds=..., constraints=cbopt.mirror.Simplex())                    # x >= 0, sum x = 1
    minimize(f, bounds=..., constraints=[{"type": "eq", "fun": g},                 # g(X) = 0
                                         {"type": "ineq", "fun": h}])              # h(X) >= 0 (scipy's sign)

Constraint functions are batched like objectives: ``g(X[..., d]) -> (...)`` or ``(..., k)`` for k constraints.
scipy's ``LinearConstraint(A, lb, ub)`` (batched as ``X @ A.T``) and ``NonlinearConstraint(fun, lb, ub)``
(``fun`` per point, as in scipy, called point by point) are accepted too: rows with ``lb == ub`` become
equalities, finite ``lb``/``ub`` inequalities.

* :class:`Sphere`: after every move (and at the start) each particle is mapped back onto the sphere
  ``x <- center + radius (x - center) / |x - center|``, the retraction of the projected CBO dynamics on
  hypersurfaces (Fornasier, Huang, Pareschi, Sünnen, arXiv:2001.11994). Works with every method.
  :class:`cbopt.mirror.Ball` and :class:`cbopt.mirror.Simplex` are projected the same way (projected CBO);
  any object with ``projector(to_backend)`` and ``violation(x)`` is. One projection per call.
* ``"eq"``/``"ineq"``: the method minimises the exact penalty ``f + w (sum |g| + sum max(0, -h))``,
  whose minimisers are those of the constrained problem once the weight ``w`` exceeds the Lagrange
  multipliers (default 10; another: ``constraints=Penalty(constraints, weight=w)``; Borghi, Herty, Pareschi,
  arXiv:2111.02880, use the same idea with CBO). Raise it if the result violates the constraints; keep it
  modest otherwise: a sharp penalty is a narrow valley that the swarm follows slowly (min x + y on the unit
  circle: max error 0.06 at weight 2, 0.25 at 10, 1.09 at 100 over 5 seeds with 2e4 evaluations; with
  ``refine="nelder-mead"`` below 1e-3 at 2, 10 and 100; ``benchmarks/variants.py`` prints these).
  ``result.fun`` is the penalised value (= f at a feasible point); ``result.constraint_violation`` is
  ``sum |g| + sum max(0, -h)`` at ``result.x`` (0 when feasible); above ``1e-6``
  (``cbopt.minimize.FEASIBLE_TOL``) the result is no success and its message says the constraints are violated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import as_like, namespace, to_numpy
from .validation import number


@dataclass(frozen=True)
class Sphere:
    """The constraint ``|x - center| = radius`` (the unit sphere S^{d-1} by default)."""

    radius: float = 1.0
    center: Any = 0.0

    def __post_init__(self) -> None:
        number("Sphere.radius", self.radius, above=0)

    def projector(self, to_backend: Callable[[Any], Any]) -> Callable[[Any], Any]:
        c = self.center if isinstance(self.center, (int, float)) else to_backend(self.center)

        def project(x: Any) -> Any:
            v = x - c
            norm = (v * v).sum(-1, keepdims=True) ** 0.5
            norm = namespace(norm).where(norm > 0, norm, namespace(norm).ones_like(norm))  # x = center: stays
            return c + self.radius * v / norm

        return project

    def violation(self, x: Any) -> float:
        center = self.center if isinstance(self.center, (int, float)) else to_numpy(self.center)
        v = np.asarray(to_numpy(x), dtype=float) - np.asarray(center, dtype=float)
        return float(abs(np.linalg.norm(v) - self.radius))


def _is_scipy(c: Any, name: str) -> bool:
    return type(c).__name__ == name and type(c).__module__.startswith("scipy.optimize")


def _as_list(constraints: Any) -> list[Any]:
    if constraints is None:
        return []
    if isinstance(constraints, dict) or _is_projection(constraints) or _is_scipy(constraints, "LinearConstraint") \
            or _is_scipy(constraints, "NonlinearConstraint"):
        return [constraints]
    if isinstance(constraints, Sequence):
        return list(constraints)
    raise TypeError("constraints: expected a projection (Sphere, Ball, Simplex), a dict or a list of them, got "
                    f"{type(constraints).__name__}")


def _is_projection(c: Any) -> bool:
    """A set the particles are projected onto: :class:`Sphere`, ``mirror.Ball``, ``mirror.Simplex`` or any
    object with ``projector(to_backend) -> project(X)`` and ``violation(x) -> float``."""
    return callable(getattr(c, "projector", None)) and callable(getattr(c, "violation", None))


@dataclass(frozen=True)
class Parsed:
    projection: Any
    eq: tuple[Callable[[Any], Any], ...]
    ineq: tuple[Callable[[Any], Any], ...]
    penalty: float

    def describe(self) -> str:
        """The constraints as a checkpoint's fingerprint holds them: the projection's value, the functions'
        names and the penalty weight ("" for none)."""
        def name(fn: Any) -> str:
            return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__name__)}"

        parts = [] if self.projection is None else [repr(self.projection)]
        parts += [f"eq {name(g)}" for g in self.eq] + [f"ineq {name(h)}" for h in self.ineq]
        if self.eq or self.ineq:
            parts.append(f"penalty {self.penalty!r}")
        return "; ".join(parts)

    def violation_of(self, x: Any) -> Any:
        """``sum |g| + sum max(0, -h)`` over the last axis of the batched point(s) ``x``."""
        total = 0.0
        for k, g in enumerate(self.eq):
            v = abs(_call_constraint(g, x, "eq", k))
            total = total + (v.sum(-1) if v.ndim > x.ndim - 1 else v)
        for k, h in enumerate(self.ineq):
            v = (-_call_constraint(h, x, "ineq", k)).clip(0.0, None)
            total = total + (v.sum(-1) if v.ndim > x.ndim - 1 else v)
        return total

    def penalise(self, energies: Any, x: Any) -> Any:
        """``energies + penalty * violation(x)``: the one place the penalty is added (minimize's objective,
        the energies an ask/tell user tells)."""
        if not (self.eq or self.ineq):
            return energies
        return energies + self.penalty * self.violation_of(x)

    def penalised(self, fun: Callable[[Any], Any]) -> Callable[[Any], Any]:
        if not (self.eq or self.ineq):
            return fun

        def wrapped(x: Any) -> Any:
            return self.penalise(fun(x), x)

        return wrapped


def _per_point(fun: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """scipy's constraint functions take one point: evaluated point by point on the host."""

    def batched(x: Any) -> Any:
        flat = np.asarray(to_numpy(x), dtype=float).reshape(-1, x.shape[-1])
        vals = np.stack([np.atleast_1d(np.asarray(fun(p), dtype=float)) for p in flat])  # (n, k)
        out = vals.reshape(tuple(x.shape[:-1]) + vals.shape[1:])
        return out if isinstance(x, np.ndarray) else as_like(out, x)

    return batched


def _from_scipy(c: Any) -> tuple[list[Callable[[Any], Any]], list[Callable[[Any], Any]]]:
    """scipy's ``LinearConstraint(A, lb, ub)`` / ``NonlinearConstraint(fun, lb, ub)`` as batched equalities
    (rows with ``lb == ub``) and inequalities ``v - lb >= 0``, ``ub - v >= 0`` (rows with finite bounds)."""
    if _is_scipy(c, "LinearConstraint"):
        a = np.atleast_2d(np.asarray(c.A, dtype=float))

        def linear(x: Any, a: np.ndarray = a) -> Any:
            return x @ as_like(a, x).T  # (..., k)

        value: Callable[[Any], Any] = linear
    else:
        if not callable(c.fun):
            raise TypeError(f"constraints: NonlinearConstraint.fun must be callable, got {c.fun!r}")
        value = _per_point(c.fun)
    lb = np.atleast_1d(np.asarray(c.lb, dtype=float))
    ub = np.atleast_1d(np.asarray(c.ub, dtype=float))
    if np.any(lb > ub):
        raise ValueError(f"constraints: {type(c).__name__} has lb > ub ({lb} > {ub})")
    eq, ineq = [], []
    same = lb == ub
    if same.any():
        eq.append(_rows(value, same, lambda v, lo, hi: v - lo, lb, ub))
    low = ~same & np.isfinite(lb)
    if low.any():
        ineq.append(_rows(value, low, lambda v, lo, hi: v - lo, lb, ub))
    high = ~same & np.isfinite(ub)
    if high.any():
        ineq.append(_rows(value, high, lambda v, lo, hi: hi - v, lb, ub))
    return eq, ineq


def _rows(value: Callable[[Any], Any], rows: np.ndarray, form: Callable[..., Any], lb: np.ndarray,
          ub: np.ndarray) -> Callable[[Any], Any]:
    def g(x: Any) -> Any:
        v = value(x)
        k = v.shape[-1]
        lo, hi, keep = (np.broadcast_to(a, (k,)) for a in (lb, ub, rows))
        idx = np.flatnonzero(keep)
        return form(v[..., idx], as_like(lo[idx], x), as_like(hi[idx], x))  # (..., rows)

    g.__name__ = getattr(value, "__name__", "scipy constraint")
    return g


class ConstraintError(TypeError):
    """A constraint function failed or broke the batched contract ``g(X[..., d]) -> G[...]`` (or ``G[..., k]``)."""


def _call_constraint(g: Callable[[Any], Any], x: Any, kind: str, k: int) -> Any:
    name = f"constraint {kind} #{k} ({getattr(g, '__name__', type(g).__name__)})"
    hint = ("constraint functions take the batch like the objective, g(X[..., d]) -> G[...]: wrap a per-point "
            "one as cbopt.vectorize(g)")
    try:
        v = g(x)
    except Exception as e:
        raise ConstraintError(f"{name} raised {type(e).__name__}: {e} on points of shape {tuple(x.shape)}; "
                              f"{hint}") from e
    if not hasattr(v, "ndim"):
        v = np.asarray(v, dtype=float)
    if tuple(v.shape[: x.ndim - 1]) != tuple(x.shape[:-1]):
        raise ConstraintError(f"{name} returned shape {tuple(v.shape)} for points of shape {tuple(x.shape)}; "
                              f"{hint}")
    return v


@dataclass(frozen=True)
class Penalty:
    """``constraints=cbopt.Penalty(constraints, weight)``: the constraints with another weight of the exact
    penalty ``f + weight * violation`` (default 10)."""

    constraints: Any
    weight: float = 10.0


def parse(constraints: Any, penalty: float = 10.0) -> Parsed:
    """Validate ``constraints`` into a :class:`Parsed` (clear errors for anything else)."""
    if isinstance(constraints, Penalty):
        constraints, penalty = constraints.constraints, constraints.weight
    number("Penalty weight", penalty, above=0)
    projection, eq, ineq = None, [], []
    for c in _as_list(constraints):
        if _is_projection(c):
            if projection is not None:
                raise ValueError("constraints: at most one projection (Sphere, Ball or Simplex)")
            projection = c
            continue
        if _is_scipy(c, "LinearConstraint") or _is_scipy(c, "NonlinearConstraint"):
            e, i = _from_scipy(c)
            eq += e
            ineq += i
            continue
        if not isinstance(c, dict) or set(c) - {"type", "fun"} or "type" not in c or "fun" not in c:
            raise TypeError(f"constraints: expected {{'type': 'eq'|'ineq', 'fun': callable}}, Sphere(), or "
                            f"scipy's LinearConstraint / NonlinearConstraint, got {c!r}")
        if not callable(c["fun"]):
            raise TypeError(f"constraints: 'fun' must be callable, got {c['fun']!r}")
        if c["type"] == "eq":
            eq.append(c["fun"])
        elif c["type"] == "ineq":
            ineq.append(c["fun"])
        else:
            raise ValueError(f"constraints: 'type' must be 'eq' or 'ineq', got {c['type']!r}")
    return Parsed(projection, tuple(eq), tuple(ineq), float(penalty))
