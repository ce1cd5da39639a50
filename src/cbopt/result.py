"""The result type shared by every method: scipy's field names plus population data."""

from __future__ import annotations

from typing import Any

import numpy as np


class OptimizeResult(dict):
    """Result of :func:`cbopt.minimize`; a dict with attribute access, like ``scipy.optimize.OptimizeResult``.

    Fields
    ------
    x : ndarray (d,)
        Best point found (over every evaluation of every run).
    fun : float
        ``f(x)``.
    success : bool
        Whether the (best) run stopped by convergence, target or stagnation rather than by a budget,
        divergence, an error or an interruption.
    status : int
        A :class:`cbopt.Status` code; ``reason`` holds its name and ``message`` a sentence.
    nit, nfev : int
        Iterations and objective evaluations (summed over runs when ``n_runs > 1``).
    nfev_nonfinite : int
        Evaluations that returned NaN or inf (treated as ``+inf``).
    population, energies : ndarray (N, d), (N,)
        Final particles and energies of the best run.
    consensus : ndarray (d,)
        Final consensus point of the best run.
    runs : list of OptimizeResult
        One result per independent run (present when ``n_runs > 1``).
    history : dict of ndarray
        Per-iteration records when ``history=True`` was asked for.
    checkpoint_error : str
        Present only when a checkpoint could not be written (the run went on; the file keeps the last state
        that was written).
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        del self[name]

    def __dir__(self) -> list[str]:
        return list(self.keys())

    def __repr__(self) -> str:
        if not self:
            return "OptimizeResult()"
        order = ["message", "success", "status", "reason", "fun", "x", "nit", "nfev", "nfev_nonfinite"]
        keys = [k for k in order if k in self] + sorted(k for k in self if k not in order)
        width = max(map(len, keys)) + 1
        lines = []
        for k in keys:
            v = self[k]
            brief = k in ("runs", "history") or (isinstance(v, np.ndarray) and v.size > 12)
            lines.append(f"{k.rjust(width)}: {_brief(v) if brief else repr(v)}")
        return "\n".join(lines)


def _brief(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"<array shape={v.shape} dtype={v.dtype}>"
    if isinstance(v, list):
        return f"<{len(v)} runs>"
    if isinstance(v, dict):
        return f"<history: {', '.join(v)}>"
    return repr(v)
