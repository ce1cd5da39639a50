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
    g0, g1 = np.linspace(b[0, 0], b[0, 1], resolution), np.linspace(b[1, 0], b[1, 1], resolution)
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


class SwarmRecorder:
    """A callback that keeps, for a 2-D run, each iteration's particles, consensus and best point (for
    :func:`animate_2d`); works for restart sequences too, whose runs then follow one another in the frames."""

    def __init__(self, every: int = 1, then: Any = None):
        self.every, self.then = max(1, int(every)), then
        self.frames: list[dict[str, Any]] = []
        self._calls = 0

    def __call__(self, intermediate_result: Any) -> Any:
        r = intermediate_result
        self._calls += 1
        if self._calls % self.every == 0 and r.get("population") is not None:
            from .._backend import to_numpy

            pop = np.asarray(to_numpy(r.population), dtype=float).reshape(-1, 2)
            c = r.get("consensus")
            x, f = np.asarray(to_numpy(r.x), dtype=float).reshape(-1)[:2], float(r.fun)
            if self.frames and not f < self.frames[-1]["fun"]:  # a restart's run reports its own best: keep ours
                x, f = self.frames[-1]["best"], self.frames[-1]["fun"]
            self.frames.append({"x": pop, "consensus": None if c is None else
                                np.asarray(to_numpy(c), dtype=float).reshape(-1)[:2],
                                "best": x, "nfev": int(r.nfev), "fun": f})
        return None if self.then is None else self.then(r)


def animate_2d(fun: Any, frames: list[dict[str, Any]], bounds: Any, path: str, x_min: Any = None,
               max_frames: int = 120, fps: int = 12, resolution: int = 160) -> str:
    """Write a GIF of a 2-D swarm over the objective's contours (matplotlib's animation, Pillow's writer);
    returns the path. ``frames`` from :class:`SwarmRecorder`; at most ``max_frames`` of them are drawn."""
    plt = _plt()
    from matplotlib.animation import FuncAnimation, PillowWriter

    if not frames:
        raise ValueError("animate_2d: no frames recorded (did the run take a step?)")
    b = np.asarray(bounds, dtype=float)
    if b.shape != (2, 2):
        raise ValueError(f"animate_2d: a 2-D problem is needed, got bounds of shape {b.shape}")
    idx = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    g0, g1 = np.linspace(b[0, 0], b[0, 1], resolution), np.linspace(b[1, 0], b[1, 1], resolution)
    z = np.asarray(fun(np.stack(np.meshgrid(g0, g1), axis=-1)), dtype=float)
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.contourf(g0, g1, z, levels=30, cmap="viridis")
    swarm = ax.scatter([], [], s=10, c="white", edgecolors="black", linewidths=0.3, label="particles")
    cons = ax.scatter([], [], marker="x", s=70, c="red", label="consensus")
    best = ax.scatter([], [], marker="o", s=50, facecolors="none", edgecolors="orange", linewidths=1.5,
                      label="best so far")
    if x_min is not None:
        xm = np.atleast_2d(x_min)
        ax.scatter(xm[:, 0], xm[:, 1], marker="*", s=120, c="gold", edgecolors="black", label="minimiser")
    ax.set_xlim(*b[0])
    ax.set_ylim(*b[1])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.legend(loc="lower left", fontsize=7)
    title = ax.set_title("00000000 evaluations, best f 0.000e+00", fontsize=9)  # room for the text
    fig.tight_layout()

    def draw(k: int) -> Any:
        f = frames[idx[k]]
        swarm.set_offsets(f["x"])
        cons.set_offsets(np.empty((0, 2)) if f["consensus"] is None else f["consensus"][None])
        best.set_offsets(f["best"][None])
        title.set_text(f"{f['nfev']} evaluations, best f {f['fun']:.3g}")
        return swarm, cons, best, title

    anim = FuncAnimation(fig, draw, frames=len(idx), blit=False)
    anim.save(path, writer=PillowWriter(fps=fps))
    plt.close(fig)
    return path
