"""``cbopt paper``: the paper's numerical illustrations and our additions, as PNG files and a table of numbers.

Figures (parameters of arXiv:2306.09778, Sec. 4, on our :func:`~cbopt.objectives.canyon` landscape):

* ``fig1b_cbo_consensus.png`` — CBO consensus points of 50 runs, every step, coloured by step;
* ``fig2a_ch_consensus.png`` — consensus-hopping points of 50 runs;
* ``fig2b_gd.png``, ``fig2c_langevin.png`` — gradient descent and annealed Langevin from (8, 8);
* ``laplace.png`` — the Laplace principle on 1000 samples of the landscape;
* ``prox_error.png`` — mean |CH step - prox| over (N, alpha) on a smooth nonconvex 2-D function;
* ``alignment.png`` — cosine of the consensus displacement with -grad f (quadratic and canyon);
* ``success.png`` — success rates of CBO / CH / GD / Langevin on shifted Rastrigin and Ackley, d = 2..20;
* ``meanfield_1d.png`` — the mean-field density rho(t, x) on 1-D Rastrigin, beside the particles' histograms;
* ``meanfield_2d.png`` — 2-D mean-field snapshots on Ackley with the particles over them;
* ``meanfield_w1.png`` — W1 between N particles and the mean-field density against N (log-log);
* ``meanfield_prox.png`` — the mean-field consensus of a hopping step against the prox map, alpha up to 1e6.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import as_generator
from ..minimize import minimize
from ..objectives import ackley, canyon, rastrigin
from ..stopping import Stop
from .baselines import annealed_langevin, gradient, gradient_descent
from .diagnostics import alignment, laplace_curve, prox_error
from .prox import prox

START = np.array([8.0, 8.0])
WINDOW = (-2.0, 8.0)
NO_STOP: dict[str, Any] = dict(xtol=None, ftol=None, divergence=None)


def wavy(x: Any) -> Any:
    """Smooth nonconvex test function of the prox study: ``sum_j x_j^2 / 10 + 1 - cos(2 pi x_j)``."""
    return (x * x / 10 + 1 - np.cos(2 * np.pi * x)).sum(-1)


def quadratic(x: Any) -> Any:
    """``x^T A x / 2`` with ``A = diag(1, 1/2)``."""
    return 0.5 * (x[..., 0] ** 2 + 0.5 * x[..., 1] ** 2)


def _dist(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x, axis=-1)


@dataclass
class Figures:
    """What every figure of :func:`paper` shares: where to write, the mode, the one random stream (drawn in the
    figures' fixed order, so the numbers depend on the seed only), the plotting module and the canyon's data."""

    out: pathlib.Path
    quick: bool
    gen: np.random.Generator
    plots: Any  # cbopt.plot.thesis
    runs: int = 50
    x_min: Any = None
    grad: Any = None  # central-difference gradient of the canyon (Fig. 2(b), 2(c), alignment)
    steps: int = 10_000  # K of the gradient baselines

    def save(self, fig: Any, name: str) -> None:
        import matplotlib.pyplot as plt

        fig.savefig(self.out / name, dpi=110)
        plt.close(fig)


def paper(out: str | pathlib.Path = "cbopt-paper", *, quick: bool = False, seed: int = 0,
          log: Callable[[str], Any] = print) -> dict[str, dict[str, float]]:
    """Compute every figure, write the PNGs to ``out`` and return ``{figure: {number: value}}``."""
    import matplotlib

    matplotlib.use("Agg")
    from ..plot import thesis as tplot

    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Figures(out, quick, as_generator(seed), tplot, runs=10 if quick else 50, x_min=canyon.minimizers(2),
                  grad=gradient(canyon, method="central", h=1e-5), steps=2000 if quick else 10_000)
    log(f"cbopt paper: writing figures to {out}/ ({'quick' if quick else 'full'} mode, seed {seed})")
    table: dict[str, dict[str, float]] = {}
    for name, fn in FIGURES:
        t0 = time.perf_counter()
        table[name] = fn(ctx)
        log(f"  {name:<24} {time.perf_counter() - t0:6.1f} s")
    return table


def _canyon_consensus(ctx: Figures, method: str, options: dict[str, Any], title: str, name: str,
                      point: str) -> dict[str, float]:
    """Fig. 1(b) and 2(a): ``ctx.runs`` runs of ``method`` from N((8, 8), s^2 I) on the canyon for K = 250 steps,
    their consensus paths drawn over the landscape, and how many end in the global basin."""
    res = minimize(canyon, x0=START, options=options, n_runs=ctx.runs, rng=ctx.gen,
                   stop=Stop(max_iter=250, **NO_STOP), history=True, method=method)
    c = res.history["consensus"]  # (K, M, 2)
    ctx.save(ctx.plots.landscape_paths(canyon, WINDOW, c, title, ctx.x_min, START), name)
    d = _dist(c[-1])
    return {"runs": ctx.runs, f"reached global basin (|{point}|<0.5)": float((d < 0.5).mean()),
            f"median final |{point} - x*|": float(np.median(d))}


# Fig. 1(b): CBO, K=250, dt=0.01, N=200, lam=1, sigma=1.6, alpha=100, isotropic, X0 ~ N((8, 8), 0.5^2 I)
def fig1b(ctx: Figures) -> dict[str, float]:
    options = dict(n_particles=200, dt=0.01, lam=1.0, sigma=1.6, alpha=100.0, noise="isotropic", init_scale=0.5)
    title = f"Fig. 1(b): CBO consensus points, {ctx.runs} runs\nN=200, Δt=0.01, λ=1, σ=1.6, α=100, isotropic"
    return _canyon_consensus(ctx, "cbo", options, title, "fig1b_cbo_consensus.png", "c")


# Fig. 2(a): CH, K=250, N=200, sigma=0.7, alpha=100, start N((8, 8), sigma^2 I)
def fig2a(ctx: Figures) -> dict[str, float]:
    options = dict(n_particles=200, sigma=0.7, alpha=100.0, init_scale=0.7)
    title = f"Fig. 2(a): consensus hopping, {ctx.runs} runs\nN=200, σ=0.7, α=100"
    return _canyon_consensus(ctx, "ch", options, title, "fig2a_ch_consensus.png", "x")


# Fig. 2(b), 2(c): GD and annealed Langevin, K=1e4, dt=1e-3, eta=1, sigma=10, central differences h=1e-5
def fig2b(ctx: Figures) -> dict[str, float]:
    k = ctx.steps
    path = gradient_descent(canyon, np.tile(START, (ctx.runs, 1)), steps=k, dt=1e-3, eta=1.0, grad=ctx.grad)
    title = f"Fig. 2(b): gradient descent, {ctx.runs} runs\nK={k}, Δt=1e-3, η=1"
    ctx.save(ctx.plots.landscape_paths(canyon, WINDOW, path[:: max(1, k // 250)], title, ctx.x_min, START,
                                       lines=True), "fig2b_gd.png")
    end = path[-1]
    return {"runs": ctx.runs, "reached global basin": float((_dist(end) < 0.5).mean()),
            "final x1": float(end[0, 0]), "final x2": float(end[0, 1]), "final f": float(canyon(end[0]))}


def fig2c(ctx: Figures) -> dict[str, float]:
    k = ctx.steps
    path = annealed_langevin(canyon, np.tile(START, (ctx.runs, 1)), steps=k, dt=1e-3, eta=1.0, sigma=10.0,
                             grad=ctx.grad, rng=ctx.gen)
    title = f"Fig. 2(c): annealed Langevin, {ctx.runs} runs\nK={k}, Δt=1e-3, η=1, σ=10/log(k+1)"
    ctx.save(ctx.plots.landscape_paths(canyon, WINDOW, path[:: max(1, k // 250)], title, ctx.x_min, START,
                                       lines=True), "fig2c_langevin.png")
    end = path[-1]
    return {"runs": ctx.runs, "reached global basin": float((_dist(end) < 0.5).mean()),
            "median final |x - x*|": float(np.median(_dist(end)))}


def laplace(ctx: Figures) -> dict[str, float]:
    lo, hi = WINDOW
    xs = lo + (hi - lo) * ctx.gen.random((1000, 2))
    alphas = np.logspace(-2, 4, 25)
    curve = laplace_curve(canyon, xs, alphas, ctx.x_min[0])
    ctx.save(ctx.plots.laplace(curve), "laplace.png")
    ok = bool(np.all(curve["lower"] <= curve["softmin"] + 1e-12) and np.all(curve["softmin"] <= curve["upper"]))
    return {"|c - x*| at alpha=0.01": float(curve["dist"][0]), "|c - x*| at alpha=1e4": float(curve["dist"][-1]),
            "best sample |x - x*|": float(curve["best_dist"][0]), "bounds hold (1 = yes)": float(ok)}


def prox_map(ctx: Figures) -> dict[str, float]:
    x, tau = np.array([1.4, -0.7]), 0.5
    p = prox(wavy, x, tau, method="grid")
    ns = [10, 100, 1000] if ctx.quick else [10, 100, 1000, 10_000]
    alphas = [1, 10, 100, 1000] if ctx.quick else [1, 3, 10, 30, 100, 300, 1000]
    rec = prox_error(wavy, x, tau, ns, alphas, p, reps=5 if ctx.quick else 20, rng=ctx.gen)
    title = f"|CH step - prox| at x=(1.4, -0.7), τ={tau}: f = Σ x²/10 + 1 - cos 2πx"
    ctx.save(ctx.plots.prox_heatmap(rec, title), "prox_error.png")
    e = rec["error"]
    return {"prox x1": float(p[0]), "prox x2": float(p[1]), "error N=10, alpha=10": float(e[0, alphas.index(10)]),
            f"error N={ns[-1]}, alpha=10": float(e[-1, alphas.index(10)]),
            f"error N={ns[-1]}, alpha=1000": float(e[-1, -1])}


def align(ctx: Figures) -> dict[str, float]:
    res_q = minimize(quadratic, x0=START, options=dict(n_particles=200, init_scale=0.5), n_runs=20, rng=ctx.gen,
                     stop=Stop(max_iter=100, **NO_STOP), history=True, method="cbo")
    cos_q = alignment(quadratic, res_q.history["consensus"], away_from=[0, 0], radius=1.0,
                      grad=lambda x: np.stack([x[..., 0], 0.5 * x[..., 1]], -1))
    res_c = minimize(canyon, x0=START,
                     options=dict(n_particles=200, sigma=1.6, alpha=100.0, noise="isotropic",
                                  init_scale=0.5),
                     n_runs=20, rng=ctx.gen, stop=Stop(max_iter=250, **NO_STOP), history=True, method="cbo")
    cos_c = alignment(canyon, res_c.history["consensus"], away_from=ctx.x_min[0], radius=0.5, grad=ctx.grad)
    cos_c20 = alignment(canyon, res_c.history["consensus"], away_from=ctx.x_min[0], radius=0.5, grad=ctx.grad, lag=20)
    ctx.save(ctx.plots.alignment_hist({"quadratic, default CBO": cos_q, "canyon, Fig. 1(b) CBO": cos_c,
                               "canyon, Fig. 1(b) CBO, 20-step displacement": cos_c20}), "alignment.png")
    return {"mean cos, quadratic": float(cos_q.mean()), "mean cos, canyon (1 step)": float(cos_c.mean()),
            "mean cos, canyon (20 steps)": float(cos_c20.mean())}


def success(ctx: Figures) -> dict[str, float]:
    dims = [2, 5] if ctx.quick else [2, 5, 10, 20]
    seeds = 3 if ctx.quick else 10
    rates: dict[str, dict[str, dict[int, float]]] = {}
    numbers: dict[str, float] = {}
    for base in (rastrigin, ackley):
        rows: dict[str, dict[int, float]] = {m: {} for m in ("CBO", "CH", "GD", "Langevin")}
        for d in dims:
            budget = 5000 * d
            hits = {m: 0 for m in rows}
            for s in range(seeds):
                g = np.random.default_rng(10_000 + s)
                inst = base.instance(d, shift=g.uniform(-2, 2, d))
                box = [(-5.0, 5.0)] * d

                def ok(x: Any, best: np.ndarray = inst.x_best) -> bool:
                    return bool(np.abs(np.asarray(x) - best).max() < 0.25)

                hits["CBO"] += ok(minimize(inst, bounds=box, rng=s, max_evals=budget, method="cbo").x)
                hits["CH"] += ok(minimize(inst, bounds=box, rng=s, max_evals=budget, method="ch").x)
                start = g.uniform(-5, 5, d)
                gsteps = budget // (2 * d)  # central differences: 2 d evaluations per gradient
                gr = gradient(inst, method="central")
                hits["GD"] += ok(gradient_descent(inst, start, steps=gsteps, dt=1e-3, grad=gr)[-1])
                hits["Langevin"] += ok(annealed_langevin(inst, start, steps=gsteps, dt=1e-3, sigma=10.0, grad=gr,
                                                         rng=s)[-1])
            for m in rows:
                rows[m][d] = hits[m] / seeds
                numbers[f"{base.name} d={d} {m}"] = hits[m] / seeds
        rates[base.name] = rows
    fig = ctx.plots.success_rates(rates)
    fig.suptitle(f"success (every coordinate within 0.25 of the minimiser), {seeds} seeds, budget 5000 d "
                 "evaluations, box [-5, 5]^d; GD/Langevin: central differences, Δt=1e-3", fontsize=9)
    fig.tight_layout()
    ctx.save(fig, "success.png")
    return numbers


#: the figures of ``cbopt paper``, in the order they draw from the random stream
def _seed(ctx: Figures) -> int:
    return int(ctx.gen.integers(2**62))


def meanfield_1d(ctx: Figures) -> dict[str, float]:
    """rho(t, x) of the CBO mean-field equation on 1-D Rastrigin over (t, x), beside the histograms of N
    particles of cbopt's CBO at three times."""
    from .. import meanfield
    from ..plot import meanfield as mplot

    kw: dict[str, Any] = dict(dt=2e-3 if ctx.quick else 1e-3, lam=1.0, sigma=0.5, alpha=10.0)
    T, n = 2.0, 5000 if ctx.quick else 20_000
    res = meanfield.solve(rastrigin, [(-8, 8)], meanfield.gaussian([1.0], 1.0), cells=1600 if ctx.quick else 3200,
                          T=T, save=np.linspace(0, T, 101), **kw)
    times = [0.0, 0.5, T]
    steps = {t: max(1, int(round(t / kw["dt"]))) for t in times}
    got = meanfield.particle_laws(rastrigin, [1.0], 1.0, n, sorted(set(steps.values())), noise="anisotropic",
                                  rng=_seed(ctx), **kw)
    laws = {t: got[k] for t, k in steps.items()}
    ctx.save(mplot.density_1d(res, laws, "CBO mean field on Rastrigin (1-D): λ = 1, σ = 0.5, α = 10, ρ0 = N(1, 1)"),
             "meanfield_1d.png")
    return {"max |mass - 1|": float(np.abs(res.mass - 1).max()), "min density": float(res.min_density.min()),
            "consensus at T": float(res.consensus[-1, 0]),
            f"W1 particles vs PDE at t = {T:g} (N = {n})": meanfield.w1(laws[T], res.at(T), res.grid)}


def meanfield_2d(ctx: Figures) -> dict[str, float]:
    """Snapshots of the 2-D mean-field density on Ackley with cbopt's CBO particles drawn over it."""
    from .. import meanfield
    from ..objectives import ackley
    from ..plot import meanfield as mplot

    kw: dict[str, Any] = dict(dt=0.005 if ctx.quick else 1e-3, lam=1.0, sigma=0.5, alpha=10.0)
    times = [0.0, 0.3, 1.0]
    res = meanfield.solve(ackley, [(-5, 5)] * 2, meanfield.gaussian([1.5, 1.0], 1.2),
                          cells=128 if ctx.quick else 256, T=1.0, save=times, **kw)
    steps = {t: max(1, int(round(t / kw["dt"]))) for t in times}
    got = meanfield.particle_laws(ackley, [1.5, 1.0], 1.2, 2000, sorted(set(steps.values())), noise="anisotropic",
                                  rng=_seed(ctx), **kw)
    laws = {t: got[k] for t, k in steps.items()}
    ctx.save(mplot.density_2d(res, laws, "Ackley (2-D), λ = 1, σ = 0.5, α = 10, ρ0 = N((1.5, 1), 1.2²)"),
             "meanfield_2d.png")
    return {"max |mass - 1|": float(np.abs(res.mass - 1).max()), "min density": float(res.min_density.min()),
            "|consensus| at t = 1": float(np.linalg.norm(res.consensus[-1])),
            "sliced W1 at t = 1 (N = 2000)": meanfield.sliced_w1(laws[1.0], res.at(1.0), res.grid)}


def meanfield_w1(ctx: Figures) -> dict[str, float]:
    """W1 between N particles and the mean-field density against N (1-D Rastrigin; sliced W1 on 2-D Ackley)."""
    from .. import meanfield
    from ..objectives import ackley
    from ..plot import meanfield as mplot

    ns = [100, 1000, 10_000] if ctx.quick else [100, 300, 1000, 3000, 10_000, 30_000, 100_000]
    seeds = 3 if ctx.quick else 10
    dt = 2e-3 if ctx.quick else 1e-3
    studies = {
        "1-D Rastrigin": meanfield.chaos(rastrigin, [(-8, 8)], [1.0], 1.0, ns, [0.5, 1.0], seeds=seeds,
                                         cells=1600 if ctx.quick else 3200, dt=dt, sigma=0.5, rng=_seed(ctx)),
        "2-D Ackley (sliced)": meanfield.chaos(ackley, [(-5, 5)] * 2, [1.0, 1.0], 1.0, ns, [1.0], seeds=seeds,
                                               cells=128 if ctx.quick else 256, dt=0.005 if ctx.quick else dt,
                                               sigma=0.5, rng=_seed(ctx)),
    }
    ctx.save(mplot.w1_against_n(studies), "meanfield_w1.png")
    out = {}
    for name, r in studies.items():
        for j, t in enumerate(r["times"]):
            out[f"{name} slope, t = {t:g}"] = float(r["slope"][j])
    return out


def meanfield_prox(ctx: Figures) -> dict[str, float]:
    """The consensus of N(x, tau/alpha) against prox_(tau f)(x): the mean-field quadrature converges as alpha
    grows, where N = 1000 particles degenerate (the prox_error figure's setting)."""
    from .. import meanfield
    from ..plot import meanfield as mplot

    x, tau = np.array([1.4, -0.7]), 0.5
    p = prox(wavy, x, tau, method="grid")
    alphas = np.array([1, 10, 100, 1000, 1e4, 1e5, 1e6])
    mf = np.array([np.linalg.norm(meanfield.prox_consensus(wavy, x, tau, a) - p) for a in alphas])
    small = [1, 10, 100, 1000]
    part = prox_error(wavy, x, tau, [1000], small, p, reps=5 if ctx.quick else 20, rng=ctx.gen)["error"][0]
    ctx.save(mplot.prox_consensus(alphas, mf, np.array(small), part, 1000,
                                  "hopping consensus vs prox at x = (1.4, -0.7), τ = 0.5 (f = Σ x²/10 + 1 - cos 2πx)"),
             "meanfield_prox.png")
    return {"mean field, alpha = 1000": float(mf[3]), "mean field, alpha = 1e6": float(mf[-1]),
            "N = 1000, alpha = 1000": float(part[-1])}


FIGURES: tuple[tuple[str, Callable[[Figures], dict[str, float]]], ...] = (
    ("fig1b_cbo_consensus", fig1b), ("fig2a_ch_consensus", fig2a), ("fig2b_gd", fig2b), ("fig2c_langevin", fig2c),
    ("laplace", laplace), ("prox_error", prox_map), ("alignment", align), ("success", success),
    ("meanfield_1d", meanfield_1d), ("meanfield_2d", meanfield_2d), ("meanfield_w1", meanfield_w1),
    ("meanfield_prox", meanfield_prox))


def format_table(table: dict[str, dict[str, float]]) -> str:
    """The numbers behind every figure, one block per figure."""
    lines = []
    for fig, nums in table.items():
        lines.append(f"{fig}.png")
        for k, v in nums.items():
            lines.append(f"    {k:<40} {v:.4g}")
    return "\n".join(lines)
