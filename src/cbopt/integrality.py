"""Integer variables (``integrality=`` of :func:`cbopt.minimize`, as in scipy's ``differential_evolution``).

The search runs in the continuous space; wherever the objective is evaluated, the integer coordinates are
rounded to the nearest integer inside the bounds. The objective therefore only ever sees admissible points,
the method sees a piecewise-constant landscape along those coordinates, and ``res.x`` (the point whose value
is ``res.fun``) is integral there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._backend import to_numpy
from .objectives._wrap import like_fun


class Integers:
    """The integer coordinates of a problem and the map that rounds them (on any backend)."""

    def __init__(self, mask: np.ndarray, lo: np.ndarray | None, hi: np.ndarray | None, asarray: Callable[..., Any]):
        self.mask = mask
        d = mask.shape[0]
        ilo = np.full(d, -np.inf) if lo is None else np.where(mask, np.ceil(lo), -np.inf)
        ihi = np.full(d, np.inf) if hi is None else np.where(mask, np.floor(hi), np.inf)
        self._m, self._lo, self._hi = asarray(mask.astype(float)), asarray(ilo), asarray(ihi)

    def __call__(self, x: Any) -> Any:
        """``x`` (..., d) with the integer coordinates rounded into the box."""
        return x + self._m * ((x.round()).clip(self._lo, self._hi) - x)

    def rounded(self, fun: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``fun`` evaluated at rounded points."""

        def at_integers(x: Any) -> Any:
            return fun(self(x))

        return like_fun(at_integers, fun)

    def round_result(self, res: Any) -> None:
        """Round ``x`` of a result (and of its runs) in place: the point that was evaluated."""
        for r in [res] + list(res.get("runs", []) or []):
            if r.get("x") is not None:
                r.x = self(r.x)


def parse(integrality: Any, dim: int, lo: np.ndarray | None, hi: np.ndarray | None,
          asarray: Callable[..., Any]) -> Integers | None:
    """Validate ``integrality`` (a bool, or ``dim`` bools / 0-1 values) into :class:`Integers`, or None."""
    if integrality is None:
        return None
    try:
        a = np.asarray(to_numpy(integrality) if hasattr(integrality, "detach") else integrality)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"integrality: expected booleans, got {integrality!r}") from exc
    if a.ndim == 0:
        a = np.full(dim, a)
    if a.ndim != 1 or a.shape[0] != dim:
        raise ValueError(f"integrality: expected one boolean per coordinate ({dim}), got shape {a.shape}")
    if a.dtype != bool:
        if a.dtype.kind not in "iuf" or not np.all((a == 0) | (a == 1)):
            raise TypeError(f"integrality: expected booleans (or 0/1), got {integrality!r}")
        a = a.astype(bool)
    if not a.any():
        return None
    if lo is not None and hi is not None:
        empty = a & (np.ceil(lo) > np.floor(hi))
        if empty.any():
            i = int(np.argmax(empty))
            raise ValueError(f"integrality: coordinate {i} is integer but its bounds ({lo[i]}, {hi[i]}) hold no "
                             "integer")
    return Integers(a, lo, hi, asarray)
