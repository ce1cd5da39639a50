"""Figures of the mean-field limit: densities over time beside the particles, W1 against N, the hopping
consensus against the prox map. Each function returns a matplotlib Figure."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _plt


def density_1d(res: Any, laws: dict[float, np.ndarray], title: str) -> Any:
    """Left: ``rho(t, x)`` as an image over (t, x) (colour: log10 rho). Right: the particles' histograms at
    the times of ``laws`` ({t: particles (N, 1)}) with the PDE density at those times drawn over them."""
    plt = _plt()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11.5, 4.4), gridspec_kw={"width_ratios": [1.25, 1]})
    x = res.grid.axis(0)
    rho = np.clip(res.rho, 1e-12, None)
    keep = (x > np.quantile(x, 0.05)) & (x < np.quantile(x, 0.95))
    im = ax.imshow(np.log10(rho[:, keep]).T, origin="lower", aspect="auto", cmap="magma", vmin=-6,
                   extent=(res.times[0], res.times[-1], x[keep][0], x[keep][-1]))
    ax.plot(res.t, res.consensus[:, 0], color="c", lw=1.2, label="consensus $c_\\alpha(t)$")
    fig.colorbar(im, ax=ax, label="log$_{10}$ ρ(t, x)")
    ax.set_xlabel("t")
    ax.set_ylabel("x")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=9)
    colours = plt.cm.viridis(np.linspace(0, 0.85, len(laws)))
    for (t, p), col in zip(sorted(laws.items()), colours, strict=True):
        bx.hist(np.asarray(p)[:, 0], bins=120, range=(x[keep][0], x[keep][-1]), density=True, color=col, alpha=0.35,
                label=f"particles, t = {t:g}")
        bx.plot(x[keep], res.at(t)[keep], color=col, lw=1.4, label=f"PDE, t = {t:g}")
    bx.set_yscale("log")
    bx.set_ylim(1e-4, None)
    bx.set_xlabel("x")
    bx.set_ylabel("density")
    n = len(next(iter(laws.values())))
    bx.set_title(f"N = {n} particles against the mean-field density", fontsize=9)
    bx.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def density_2d(res: Any, laws: dict[float, np.ndarray], title: str) -> Any:
    """One panel per time in ``laws``: the PDE density (image) with the particles over it."""
    plt = _plt()
    ts = sorted(laws)
    fig, axes = plt.subplots(1, len(ts), figsize=(4.0 * len(ts), 3.9))
    g = res.grid
    ext = (g.lo[0], g.hi[0], g.lo[1], g.hi[1])
    for ax, t in zip(np.atleast_1d(axes), ts, strict=True):
        rho = res.at(t)
        ax.imshow(np.sqrt(rho).T, origin="lower", extent=ext, cmap="Blues")
        p = np.asarray(laws[t])
        ax.scatter(p[:, 0], p[:, 1], s=1.5, c="tab:orange", alpha=0.5, lw=0)
        top = rho.max()  # contours of the PDE density over the particles: 1%, 10% and 50% of its peak
        ax.contour(g.axis(0), g.axis(1), rho.T, levels=[0.01 * top, 0.1 * top, 0.5 * top], colors="navy",
                   linewidths=0.7)
        c = res.consensus[int(np.argmin(np.abs(res.t - t)))]
        ax.plot(c[0], c[1], "r+", ms=10, mew=1.5)
        ax.set_xlim(g.lo[0], g.hi[0])
        ax.set_ylim(g.lo[1], g.hi[1])
        ax.set_title(f"t = {t:g}", fontsize=9)
        ax.set_xlabel("$x_1$")
    np.atleast_1d(axes)[0].set_ylabel("$x_2$")
    fig.suptitle(title + "  (blue: √ρ of the PDE, with contours at 1, 10, 50 % of its peak; orange: particles; "
                 "red +: mean-field consensus)", fontsize=8)
    fig.tight_layout()
    return fig


def w1_against_n(studies: dict[str, dict[str, Any]]) -> Any:
    """Mean W1 (bars: standard deviation over seeds) against N on log-log axes, per study and time, with the
    fitted slope in the legend and an N^-1/2 guide."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    markers = "os^vD"
    for i, (name, r) in enumerate(studies.items()):
        for j, t in enumerate(r["times"]):
            sd = r["w1"][:, :, j].std(1)
            ax.errorbar(r["n"], r["mean"][:, j], yerr=sd, marker=markers[i % 5], ms=5, capsize=2, lw=1,
                        label=f"{name}, t = {t:g}: slope {r['slope'][j]:.2f} ± {r['slope_sd'][j]:.2f}")
    n = np.array([min(r["n"].min() for r in studies.values()), max(r["n"].max() for r in studies.values())])
    top = max(r["mean"][0].max() for r in studies.values())
    ax.plot(n, top * 1.4 * (n / n[0]) ** -0.5, "k--", lw=0.8, label="$N^{-1/2}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (particles)")
    ax.set_ylabel("W1(empirical law, PDE density)")
    ax.set_title("Propagation of chaos: CBO particles against the mean-field density", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def prox_consensus(alphas: np.ndarray, mean_field: np.ndarray, alphas_n: np.ndarray, particles: np.ndarray,
                   n: int, title: str) -> Any:
    """|consensus - prox| against alpha: the mean-field consensus and the N-particle one."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 4.4))
    ax.loglog(alphas, mean_field, "o-", label="mean field (N = ∞, quadrature)")
    ax.loglog(alphas_n, particles, "s-", label=f"N = {n} particles (mean over repeats)")
    ax.axhline(2e-7, color="0.6", lw=0.8, ls=":", label="accuracy of the reference prox (a refined grid search)")
    ax.set_xlabel("α")
    ax.set_ylabel("|c_α[N(x, τ/α)] - prox_τf(x)|")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
