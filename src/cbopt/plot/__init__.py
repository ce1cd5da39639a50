"""Plots of results and histories (matplotlib, imported lazily: ``pip install 'cbopt[plot]'``).

Functions take results and histories, never a solver object, and return the matplotlib Figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._extras import require


def _plt() -> Any:
    return require("matplotlib.pyplot", "plotting")


def convergence(results: dict[str, Any], ax: Any = None, f_min: float = 0.0) -> Any:
    """Best value minus ``f_min`` against evaluations, one line per labelled result (needs ``history=True``)."""
    plt = _plt()
    fig = ax.figure if ax is not None else plt.figure(figsize=(5.5, 4))
    ax = ax or fig.add_subplot()
    for label, res in results.items():
        h = res.history
        ax.semilogy(h["nfev"], np.maximum(h["best_f"] - f_min, 1e-16), label=label)
    ax.set_xlabel("objective evaluations")
    ax.set_ylabel("best f - f_min")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig


def swarm_2d(fun: Any, res: Any, bounds: Any, x_min: Any = None, snapshots: int = 4, resolution: int = 200) -> Any:
    """Particles of a 2-D run over the objective's contours at a few iterations (needs ``history="particles"``)."""
    plt = _plt()
    h = res.history
    b = np.asarray(bounds, dtype=float)
    g0, g1 = np.linspace(*b[0], resolution), np.linspace(*b[1], resolution)
    grid = np.stack(np.meshgrid(g0, g1), axis=-1)
    z = np.asarray(fun(grid))
    n = len(h["x"])
    idx = np.unique(np.geomspace(1, n, snapshots).round().astype(int) - 1)  # early steps matter most
    fig, axes = plt.subplots(1, len(idx), figsize=(3.2 * len(idx), 3.4), sharey=True)
    for ax, k in zip(np.atleast_1d(axes), idx, strict=True):
        ax.contourf(g0, g1, z, levels=30, cmap="viridis")
        x = h["x"][k]
        ax.scatter(x[:, 0], x[:, 1], s=8, c="white", edgecolors="black", linewidths=0.3, label="particles")
        c = h["consensus"][k]
        ax.scatter([c[0]], [c[1]], marker="x", s=60, c="red", label="consensus")
        if x_min is not None:
            xm = np.atleast_2d(x_min)
            ax.scatter(xm[:, 0], xm[:, 1], marker="*", s=120, c="gold", edgecolors="black", label="global minimiser")
        ax.set_xlim(*b[0])
        ax.set_ylim(*b[1])
        ax.set_title(f"iteration {int(h['nit'][k])}, {int(h['nfev'][k])} evals", fontsize=9)
        ax.set_xlabel("x1")
    np.atleast_1d(axes)[0].set_ylabel("x2")
    np.atleast_1d(axes)[0].legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    return fig
