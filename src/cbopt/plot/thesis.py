"""Figures of the paper's thesis (consensus paths, Laplace curve, prox error, alignment, success rates).

Each function takes arrays/records from :mod:`cbopt.thesis` and returns a matplotlib Figure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _plt


def landscape_paths(
    f: Callable[[Any], Any],
    window: tuple[float, float],
    points: np.ndarray,
    title: str,
    x_min: Any,
    start: Any = None,
    lines: bool = False,
) -> Any:
    """Points ``(K, M, 2)`` (step, run) over the contour of ``f``, coloured by step; minimiser and start marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 5.0))
    g = np.linspace(window[0], window[1], 300)
    gx, gy = np.meshgrid(g, g)
    z = np.asarray(f(np.stack([gx, gy], -1)))
    levels = np.quantile(z, np.linspace(0, 1, 25) ** 2)  # dense near the minima
    ax.contourf(gx, gy, z, levels=np.unique(levels), cmap="Greys", alpha=0.45)
    ax.contour(gx, gy, z, levels=np.unique(levels), colors="0.45", linewidths=0.4)
    k, m = points.shape[:2]
    if lines:
        for r in range(m):
            ax.plot(points[:, r, 0], points[:, r, 1], lw=0.6, alpha=0.6, color="tab:blue")
    steps = np.broadcast_to(np.arange(k)[:, None], (k, m))
    sc = ax.scatter(points[..., 0].ravel(), points[..., 1].ravel(), c=steps.ravel(), s=3, cmap="viridis", zorder=3)
    fig.colorbar(sc, ax=ax, label="step k")
    xm = np.atleast_2d(x_min)
    ax.plot(xm[:, 0], xm[:, 1], "r*", ms=14, mec="k", label="global minimiser", zorder=4)
    if start is not None:
        ax.plot(start[0], start[1], "ko", ms=6, mfc="w", label="start", zorder=4)
    ax.set_xlim(window)
    ax.set_ylim(window)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8, title="grey: contours of f", title_fontsize=7)
    fig.tight_layout()
    return fig


def laplace(curve: dict[str, np.ndarray]) -> Any:
    """Distance of the consensus to the minimiser vs alpha, and the soft-min between its discrete bounds."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a = curve["alpha"]
    a1.loglog(a, curve["dist"], "o-", label=r"$|c_\alpha - x^*|$")
    a1.loglog(a, curve["best_dist"], "k--", label="best sample's distance (the limit)")
    a1.set_xlabel(r"$\alpha$")
    a1.set_ylabel("distance to the global minimiser")
    a1.set_title("Laplace principle: the consensus approaches the argmin", fontsize=10)
    a1.grid(True, which="both", alpha=0.3)
    a1.legend(fontsize=8)
    a2.semilogx(a, curve["softmin"], "o-", label=r"$-\frac{1}{\alpha}\log\sum_i e^{-\alpha f_i}$")
    a2.semilogx(a, curve["upper"], "k--", label=r"$\min_i f_i$")
    a2.semilogx(a, curve["lower"], "k:", label=r"$\min_i f_i - \log N / \alpha$")
    lo = curve["upper"][0] - 3 * max(1e-12, curve["upper"][0] - curve["softmin"].min())
    a2.set_ylim(max(lo, curve["lower"].min()), curve["upper"][0] + 0.1 * abs(curve["upper"][0] - lo) + 1e-12)
    a2.set_xlabel(r"$\alpha$")
    a2.set_ylabel("value")
    a2.set_title("log-sum-exp between its discrete bounds", fontsize=10)
    a2.grid(True, which="both", alpha=0.3)
    a2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def prox_heatmap(rec: dict[str, np.ndarray], title: str) -> Any:
    """``|CH step - prox|`` on the (N, alpha) grid, log colour scale, numbers in the cells."""
    plt = _plt()
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    err = rec["error"]
    im = ax.imshow(err, origin="lower", cmap="magma_r", norm=LogNorm(vmin=max(err.min(), 1e-6), vmax=err.max()),
                   aspect="auto")
    fig.colorbar(im, ax=ax, label=r"mean $|x_{CH} - \mathrm{prox}_{\tau f}(x)|$")
    ax.set_xticks(range(len(rec["alpha"])), [f"{a:g}" for a in rec["alpha"]])
    ax.set_yticks(range(len(rec["n"])), [f"{n:g}" for n in rec["n"]])
    for i in range(err.shape[0]):
        for j in range(err.shape[1]):
            ax.text(j, i, f"{err[i, j]:.2g}", ha="center", va="center", fontsize=7,
                    color="w" if err[i, j] > np.sqrt(err.max() * max(err.min(), 1e-6)) else "k")
    ax.set_xlabel(r"$\alpha$  ($\sigma^2 = \tau / \alpha$)")
    ax.set_ylabel("N (samples per step)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def alignment_hist(cosines: dict[str, np.ndarray]) -> Any:
    """Histograms of the cosine between the consensus displacement and -grad f, one per labelled sample."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4))
    bins = np.linspace(-1, 1, 41)
    for label, c in cosines.items():
        ax.hist(c, bins=bins, alpha=0.55, density=True, label=f"{label} (mean {np.mean(c):.2f}, n={len(c)})")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel(r"cos$\angle(c_{k+1} - c_k,\ -\nabla f(c_k))$")
    ax.set_ylabel("density")
    ax.set_title("Consensus displacement vs the negative gradient", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def success_rates(table: dict[str, dict[str, dict[int, float]]]) -> Any:
    """Success rate vs dimension, one panel per function, one line per method: ``table[fn][method][d]``."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(table), figsize=(5 * len(table), 3.8), squeeze=False)
    styles = [("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", "-"), ("x", "--")]
    for ax, (fname, rows) in zip(axes[0], table.items(), strict=True):
        ds_all: set[int] = set()
        for k, (method, byd) in enumerate(rows.items()):
            ds = sorted(byd)
            ds_all.update(ds)
            marker, line = styles[k % len(styles)]
            # distinct markers and dashes, each later line drawn smaller on top: equal rates (e.g. two methods
            # at 0) show as nested markers instead of one hiding the other
            ax.plot(ds, [byd[d] for d in ds], marker=marker, linestyle=line, label=method,
                    markersize=9 - 1.5 * k, linewidth=2.2 - 0.4 * k, zorder=2 + k)
        ax.set_xticks(sorted(ds_all))  # the measured dimensions, integers only
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("dimension d")
        ax.set_ylabel("success rate")
        ax.set_title(f"shifted {fname}", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
