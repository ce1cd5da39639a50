"""The mean-field solver, measured: structure (mass, positivity, alpha = 1e15), grid convergence order, speed,
the contraction rate against theory and particles, propagation of chaos (W1 against N), the consensus of a
hopping step against the prox map, and particle CBS against its moment equations.

    python benchmarks/meanfield.py            # the full study (about 10 minutes on 2 cores)
    python benchmarks/meanfield.py --quick    # fewer seeds and particle counts (about 2 minutes)
"""

import argparse
import cProfile
import pstats
import time

import numpy as np

import cbopt
from cbopt import meanfield
from cbopt.objectives import ackley, rastrigin
from cbopt.thesis.diagnostics import prox_error
from cbopt.thesis.figures import wavy
from cbopt.thesis.prox import prox


def table(title, header, rows):
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")


def structure():
    rows = []
    g1 = meanfield.gaussian([1.0], 2.0)
    g2 = meanfield.gaussian([1.0, 1.0], 1.5)
    cases = [("1-D Rastrigin, 2000 cells, 1e4 steps", rastrigin, [(-6, 6)], g1, 2000, 100.0),
             ("2-D Rastrigin, 256^2 cells, 1e3 steps", rastrigin, [(-6, 6)] * 2, g2, 256, 10.0)]
    for name, f, box, rho0, cells, T in cases:
        for alpha in (30.0, 1e15):
            r = meanfield.solve(f, box, rho0, cells=cells, T=T, dt=0.01, alpha=alpha, sigma=1.0)
            rows.append((name, f"{alpha:g}", f"{np.abs(r.mass - 1).max():.1e}", f"{r.min_density.min():.1e}",
                         f"{np.abs(r.consensus[-1]).max():.4f}", f"{r.elapsed:.2f}"))
    table("Structure: mass error and minimum density over the whole run (dt = 0.01, sigma = 1)",
          ["case", "alpha", "max |mass - 1|", "min rho", "|c(T)|_max", "seconds"], rows)


def order():
    f = lambda x: (x[..., 0] - 1) ** 2 + 0.5 * np.sin(3 * x[..., 0])  # noqa: E731
    rho0 = meanfield.gaussian([-0.5], 1.0)
    kw = dict(T=0.5, dt=2e-3, alpha=5.0, sigma=0.8)
    ref = meanfield.solve(f, [(-6, 6)], rho0, cells=6400, **kw).rho[-1]
    ns = [50, 100, 200, 400, 800, 1600]
    errs = []
    for n in ns:
        r = meanfield.solve(f, [(-6, 6)], rho0, cells=n, **kw)
        errs.append(np.abs(r.rho[-1] - ref.reshape(n, -1).mean(1)).sum() * 12 / n)
    rows = [(str(n), f"{e:.2e}", "" if i == 0 else f"{np.log2(errs[i - 1] / e):.2f}") for i, (n, e) in
            enumerate(zip(ns, errs, strict=True))]
    table("Grid convergence (1-D, smooth case, L1 error at T = 0.5 against 6400 cells, same dt)",
          ["cells", "L1 error", "observed order"], rows)
    return np.polyfit(np.log(ns[2:]), np.log(errs[2:]), 1)[0]


def _top(stats, k=4):
    st = pstats.Stats(stats)
    total = st.total_tt
    rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:k]  # (cc, nc, own time, cumulative, callers)
    return ", ".join(f"{fn[2].strip('<>').replace('built-in method ', '')} {100 * v[2] / total:.0f}%"
                     for fn, v in rows)


def _timed(fn):
    """Seconds of an unprofiled call, then where a profiled call spends its own time (top entries)."""
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    return wall, _top(prof)


def speed():
    rows = []
    wall, where = _timed(lambda: meanfield.solve(rastrigin, [(-6, 6)], meanfield.gaussian([1.0], 2.0), cells=2000,
                                                 T=100.0, dt=0.01, alpha=30.0))
    rows.append(("1-D, 2000 cells, 1e4 steps", "split", f"{wall:.2f}", where))
    for solver, steps in (("split", 200), ("sparse", 5)):
        wall, where = _timed(lambda solver=solver, steps=steps: meanfield.solve(
            rastrigin, [(-6, 6)] * 2, meanfield.gaussian([1.0, 1.0], 1.5), cells=256, T=steps * 0.01, dt=0.01,
            alpha=30.0, solver=solver))
        rows.append((f"2-D, 256^2 cells, per step ({steps} steps)", solver, f"{wall / steps:.4f}", where))
    table("Speed (seconds; where: the share of each function's own time in a profiled run)",
          ["case", "solver", "seconds", "where"], rows)


def contraction(seeds):
    rows = []
    # V(t) weighs the tails, which multiplicative noise makes heavy (1-D: a wide box), and the collapsing core
    # (2-D: fine cells); the box is centred on the consensus
    for d, noise, sigma, box, cells in ((1, "anisotropic", 0.7, [(-6, 7)], 3200),
                                        (2, "isotropic", 0.5, [(-2.5, 3.5)] * 2, 512)):
        lam = 1.0
        theory = 2 * lam - (d if noise == "isotropic" else 1) * sigma**2
        x0 = np.full(d, 0.5)
        pde = meanfield.solve(lambda x: (x * x).sum(-1), box, meanfield.gaussian(x0, 0.5), frozen=x0,
                              cells=cells, T=1.0, dt=1e-3, lam=lam, sigma=sigma, noise=noise)
        rate_pde = -np.polyfit(pde.t, np.log(pde.variance), 1)[0]
        # particles: alpha = 0 makes the consensus the swarm's mean, which the mean-field dynamics keep fixed
        rates = []
        for s in range(seeds):
            laws = meanfield.particle_laws(lambda x: (x * x).sum(-1), x0, 0.5, 10_000, list(range(1, 1001, 50)),
                                           dt=1e-3, lam=lam, sigma=sigma, alpha=0.0, noise=noise, rng=s)
            ks = sorted(laws)
            v = [((laws[k] - laws[k].mean(0)) ** 2).sum(-1).mean() for k in ks]
            rates.append(-np.polyfit(np.array(ks) * 1e-3, np.log(v), 1)[0])
        rows.append((f"d = {d}, {noise}, sigma = {sigma}, {cells} cells", f"{theory:.4f}", f"{rate_pde:.4f}",
                     f"{np.mean(rates):.4f} ± {np.std(rates, ddof=1) / np.sqrt(seeds):.4f}"))
    table(f"Contraction with a fixed consensus: the rate of V(t) (theory 2 lam - k sigma^2; particles N = 1e4, "
          f"{seeds} seeds, mean ± s.e.)", ["case", "theory", "PDE", "particles"], rows)


def chaos(ns, seeds):
    rows = []
    out = {}
    for name, f, box, x0, s0, cells, sigma in (
        ("1-D Rastrigin", rastrigin, [(-8, 8)], [1.0], 1.0, 3200, 0.5),
        ("2-D Ackley", ackley, [(-5, 5)] * 2, [1.0, 1.0], 1.0, 256, 0.5),
    ):
        t0 = time.perf_counter()
        r = meanfield.chaos(f, box, x0, s0, ns, [0.5, 1.0], seeds=seeds, cells=cells, dt=1e-3, alpha=10.0,
                            sigma=sigma, rng=0)
        out[name] = r
        for j, t in enumerate(r["times"]):
            rows.append((name, f"{t:g}", " ".join(f"{m:.2e}" for m in r["mean"][:, j]),
                         f"{r['slope'][j]:.3f} ± {r['slope_sd'][j]:.3f}", f"{time.perf_counter() - t0:.0f}"))
    table(f"Propagation of chaos: mean W1 (sliced in 2-D) between N particles and the PDE, N = "
          f"{', '.join(f'{n:.0e}' for n in ns)}, {seeds} seeds (slope ± spread of per-seed slopes)",
          ["landscape", "t", "mean W1 per N", "slope", "seconds"], rows)
    return out


def prox_study(quick):
    x, tau = np.array([1.4, -0.7]), 0.5
    p = prox(wavy, x, tau, method="grid")
    alphas = [1, 10, 100, 1000, 1e4, 1e5, 1e6]
    mf = [np.linalg.norm(meanfield.prox_consensus(wavy, x, tau, a) - p) for a in alphas]
    part = prox_error(wavy, x, tau, [1000], [a for a in alphas if a <= 1000], p, reps=5 if quick else 20,
                      rng=np.random.default_rng(0))["error"][0]
    rows = [(f"{a:g}", f"{e:.2e}", f"{part[i]:.2e}" if i < len(part) else "") for i, (a, e) in
            enumerate(zip(alphas, mf, strict=True))]
    table("Consensus of N(x, tau/alpha) against prox_(tau f)(x), x = (1.4, -0.7), tau = 0.5, f = wavy: "
          "mean field against N = 1000 particles", ["alpha", "|c_mf - prox|", "|c_N - prox| (N = 1000)"], rows)


def _cbs_moments_of_particles(f, m0, n, dt, alpha, s0, steps, seed):
    ms, cs = [], []

    def record(intermediate_result):
        x = np.asarray(intermediate_result.population)
        ms.append(x.mean(0))
        cs.append(np.cov(x.T))

    cbopt.minimize(f, x0=m0, method="cbs", rng=seed, callback=record,
                   options=dict(n_particles=n, dt=dt, alpha=alpha, boundary=None, init_scale=s0),
                   stop=cbopt.Stop(max_iter=steps, xtol=None, ftol=None, divergence=None))
    return np.array(ms), np.array(cs)


def cbs(ns, seeds):
    a_mat = np.diag([1.0, 4.0])
    a = np.array([0.5, -0.3])
    m0, s0 = np.array([2.0, 1.0]), 1.0
    alpha, dt, steps = 1.0, 0.05, 40
    exact = meanfield.cbs_moments(a_mat, a, m0, s0**2 * np.eye(2), alpha=alpha, T=steps * dt, step=dt)
    ode = meanfield.cbs_moments(a_mat, a, m0, s0**2 * np.eye(2), alpha=alpha, T=steps * dt, times=exact["t"])
    f = lambda x: 0.5 * (((x - a) @ a_mat) * (x - a)).sum(-1)  # noqa: E731
    rows = []
    for n in ns:
        errs_m, errs_c = [], []
        for s in range(seeds):
            ms, cs = _cbs_moments_of_particles(f, m0, n, dt, alpha, s0, steps, s)
            errs_m.append(np.abs(ms - exact["mean"][1:]).max())
            errs_c.append(np.abs(cs - exact["cov"][1:]).max())
        rows.append((f"{n:.0e}", f"{np.mean(errs_m):.2e}", f"{np.mean(errs_m) * np.sqrt(n):.2f}",
                     f"{np.mean(errs_c):.2e}", f"{np.mean(errs_c) * np.sqrt(n):.2f}"))
    gap = max(np.abs(exact["mean"] - ode["mean"]).max(), np.abs(exact["cov"] - ode["cov"]).max())
    table(f"Particle CBS against its moment equations (quadratic, A = diag(1, 4), alpha = 1, dt = {dt}, {steps} "
          f"steps, {seeds} seeds; max over steps of the entrywise error; the step map differs from the ODEs by "
          f"{gap:.1e})", ["N", "mean error", "× sqrt(N)", "cov error", "× sqrt(N)"], rows)


SECTIONS = ["structure", "order", "speed", "contraction", "chaos", "prox", "cbs"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS, help="run these sections only")
    a = ap.parse_args()
    seeds = 4 if a.quick else 10
    if "structure" in a.only:
        structure()
    if "order" in a.only:
        slope = order()
        print(f"\nfitted order (200..1600 cells): {-slope:.2f}")
    if "speed" in a.only:
        speed()
    if "contraction" in a.only:
        contraction(seeds)
    if "chaos" in a.only:
        chaos([100, 1000, 10_000] if a.quick else [100, 300, 1000, 3000, 10_000, 30_000, 100_000], seeds)
    if "prox" in a.only:
        prox_study(a.quick)
    if "cbs" in a.only:
        cbs([1000, 10_000] if a.quick else [1000, 10_000, 100_000], seeds)


if __name__ == "__main__":
    main()
