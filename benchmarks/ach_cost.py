"""Cost of the default's method (ACH) against pycma's CMA-ES, measured in the same run, objective time excluded.

    python benchmarks/ach_cost.py [--dim 10] [--sweep-budget 1e5] [--big 100,1000]

1. Fixed population: time per step and per evaluation of ``minimize(method="ach")`` and of pycma's
   ``CMAEvolutionStrategy`` ask/tell loop at population sizes 10 … 2560, d = 10, on one cheap objective; the
   time spent inside the objective is measured and subtracted for both.
2. The sweep: the default (``minimize(f, bounds=...)``, restarts and all; again without its model step) and
   IPOP-CMA-ES (pycma ``fmin2``, 9 restarts, population x2; COCO's set-up) on COCO's BBOB f1-f24, instance 1,
   1e4 d evaluations; method time = wall time minus time inside the objective, summed over the 24 problems,
   per evaluation.
   Then where one step goes at the default population: driver, ESS search, eigendecomposition, the rest.
3. Large d: per-step cost of ACH at its default population for d = 100 and 1000, and the share of its
   eigendecomposition (O(d^3), done every ~1 / (10 d (c_1 + c_mu)) steps) and of the sampling and
   covariance products (O(lambda d^2)).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import cbopt
from cbopt._extras import require


class Timed:
    """Wraps an objective and adds up the time spent inside it."""

    def __init__(self, f):
        self.f, self.t, self.n = f, 0.0, 0

    def __call__(self, x):
        t0 = time.perf_counter()
        v = self.f(x)
        self.t += time.perf_counter() - t0
        self.n += int(np.prod(np.shape(v))) if np.ndim(v) else 1
        return v


def sphere(x):
    return ((np.asarray(x) - 0.3) ** 2).sum(-1)


def fixed_population(d, lams):
    cma = require("cma", "the pycma comparison")
    print(f"## fixed population, d = {d}, objective time excluded")
    print(f"{'lambda':>7} {'steps':>6} {'pycma us/step':>14} {'ACH us/step':>12} {'pycma us/eval':>14} "
          f"{'ACH us/eval':>12} {'ACH/pycma':>10}")
    out = {}
    for lam in lams:
        steps = max(40, 40_000 // lam)
        opts = {"popsize": lam, "verbose": -9, "seed": 1, "tolfun": 0, "tolx": 0, "tolfunhist": 0,
                "tolstagnation": 10**9, "tolflatfitness": 10**9, "tolconditioncov": 1e30}
        es = cma.CMAEvolutionStrategy(np.ones(d), 2.0, opts)
        f = Timed(sphere)
        t0 = time.perf_counter()
        for _ in range(steps):
            xs = es.ask()
            es.tell(xs, f(np.array(xs)).tolist())
        t_cma = (time.perf_counter() - t0 - f.t) / steps
        g = Timed(sphere)
        t0 = time.perf_counter()
        res = cbopt.minimize(g, bounds=[(-5, 5)] * d, method="ach", rng=0,
                             stop=cbopt.Stop(max_iter=steps, xtol=None, ftol=None, patience=10**9),
                             options={"n_particles": lam, "tolfun": 0, "tolx": 0})
        t_ach = (time.perf_counter() - t0 - g.t) / res.nit
        out[lam] = t_ach / t_cma
        print(f"{lam:>7} {res.nit:>6} {1e6 * t_cma:>14.1f} {1e6 * t_ach:>12.1f} {1e6 * t_cma / lam:>14.2f} "
              f"{1e6 * t_ach / lam:>12.2f} {t_ach / t_cma:>10.3f}")
    return out


def breakdown(d, lam, steps=500):
    """Where a step of ACH goes at a small population: the driver's share, the ESS search for alpha, the
    eigendecomposition and the model step's fit (each timed alone on arrays of the step's shapes)."""
    from cbopt.methods.surrogate import RADIUS, quadratic_step, ring_steps
    from cbopt.minimize import prepare
    from cbopt.numerics import ess_weights

    s = prepare(bounds=[(-5, 5)] * d, method="ach", rng=0, options={"n_particles": lam, "tolfun": 0, "tolx": 0})
    x, aux = s.spec.init_population(s.params, s.problem, s.sampler)
    st = s.spec.init(s.params, s.problem, s.sampler, x, sphere(x), aux)
    t0 = time.perf_counter()
    for it in range(1, steps + 1):
        x, aux = s.spec.ask(st, s.params, s.problem, s.sampler, it)
        st = s.spec.tell(st, s.params, s.problem, s.sampler, it, x, sphere(x), aux)
    kernel = (time.perf_counter() - t0) / steps
    f = Timed(sphere)
    t0 = time.perf_counter()
    res = cbopt.minimize(f, bounds=[(-5, 5)] * d, method="ach", rng=0,
                         stop=cbopt.Stop(max_iter=steps, xtol=None, ftol=None, patience=10**9),
                         options={"n_particles": lam, "tolfun": 0, "tolx": 0})
    total = (time.perf_counter() - t0 - f.t) / res.nit
    e = sphere(x)
    t0 = time.perf_counter()
    for _ in range(steps):
        ess_weights(e, s.params.ess)
    ess = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()
    for _ in range(steps):
        np.linalg.eigh(st.cov)
    eig = (time.perf_counter() - t0) / steps
    # the model step's fit on a ring of its size (timed at any d; part of the step only where it is on)
    rng = np.random.default_rng(0)
    u = rng.standard_normal((1, ring_steps(d, lam) * lam, d))
    fu = sphere(u) + rng.standard_normal(u.shape[:2])
    t0 = time.perf_counter()
    for _ in range(steps):
        quadratic_step(u, fu, RADIUS * d**0.5)
    fit_alone = (time.perf_counter() - t0) / steps
    fit = fit_alone if s.params.surrogate else 0.0
    print(f"\n## one step at d = {d}, lambda = {lam}: {1e6 * total:.0f} us (objective excluded); the model step's "
          f"fit alone {1e6 * fit_alone:.0f} us ({'on' if s.params.surrogate else 'off by default'} at this d)")
    for name, t in (("driver (bookkeeping, stopping rules, non-finite policy)", total - kernel),
                    ("ESS search for alpha", ess), ("eigendecomposition", eig),
                    ("the model step's fit (surrogate)", fit),
                    ("rest of the kernel (sampling, paths, covariance, criteria)", kernel - ess - eig - fit)):
        print(f"{name:>60}: {1e6 * t:6.0f} us  {t / total:5.0%}")


def sweep(d, budget):
    cma = require("cma", "the pycma comparison")
    from cbopt.bench.problems import make_problem

    print(f"\n## the BBOB sweep, d = {d}, f1-f24 instance 1, {budget:.0f} evaluations, objective time excluded")
    tot = {"default": [0.0, 0], "no model step": [0.0, 0], "pycma IPOP": [0.0, 0]}
    for k in range(1, 25):
        p = make_problem(f"bbob:f{k}", d, 1)
        target = p.fopt + 1e-8
        for name, options in (("default", None), ("no model step", {"surrogate": False})):
            f = Timed(p.batched)
            t0 = time.perf_counter()
            res = cbopt.minimize(f, bounds=p.bounds, rng=0, max_evals=budget, target=target, options=options)
            tot[name][0] += time.perf_counter() - t0 - f.t
            tot[name][1] += res.nfev
        g = Timed(p.point)
        x0 = np.random.default_rng(0).uniform(-4, 4, d)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cma.fmin2(g, x0, 2.0, restarts=9, incpopsize=2,
                      options={"maxfevals": budget, "ftarget": target, "verbose": -9, "seed": 1})
        tot["pycma IPOP"][0] += time.perf_counter() - t0 - g.t
        tot["pycma IPOP"][1] += g.n
    for name, (t, n) in tot.items():
        print(f"{name:>13}: {n:>9} evaluations, method time {t:7.2f} s, {1e6 * t / n:6.2f} us/eval")
    per = {name: t / n for name, (t, n) in tot.items()}
    ratio = per["default"] / per["pycma IPOP"]
    print(f"default/pycma per evaluation: {ratio:.3f} (without the model step "
          f"{per['no model step'] / per['pycma IPOP']:.3f}); method time over the sweep: "
          f"{tot['default'][0] / tot['pycma IPOP'][0]:.3f}")
    return ratio


def large(dims):
    from cbopt.methods.ach import constants

    print("\n## large d: ACH at its default population, per step")
    print(f"{'d':>5} {'lambda':>6} {'us/step':>10} {'eigh ms':>8} {'eigh every':>10} {'eigh/step':>9} "
          f"{'lambda d^2 products ms':>22}")
    for d in dims:
        steps = 30 if d <= 100 else 8
        f = Timed(sphere)
        res = cbopt.minimize(f, bounds=[(-5, 5)] * d, method="ach", rng=0,
                             stop=cbopt.Stop(max_iter=1, xtol=None, ftol=None))
        lam = res.population.shape[-2]
        t0 = time.perf_counter()
        res = cbopt.minimize(f, bounds=[(-5, 5)] * d, method="ach", rng=0,
                             stop=cbopt.Stop(max_iter=steps + 1, xtol=None, ftol=None))
        per = (time.perf_counter() - t0 - f.t) / res.nit
        c = np.cov(np.random.default_rng(0).standard_normal((2 * d, d)), rowvar=False) + np.eye(d)
        t0 = time.perf_counter()
        np.linalg.eigh(c[None])
        t_eig = time.perf_counter() - t0
        k = constants(d, lam, lam / 2, True)
        every = max(1, int(1 / (10 * d * (k.c1 + k.cmu))))
        z = np.random.default_rng(1).standard_normal((1, lam, d))
        t0 = time.perf_counter()
        for _ in range(3):
            y = z @ c  # sampling
            _ = y.swapaxes(-1, -2) @ y  # rank-mu update
        t_prod = (time.perf_counter() - t0) / 3
        print(f"{d:>5} {lam:>6} {1e6 * per:>10.0f} {1e3 * t_eig:>8.1f} {every:>10} {t_eig / every / per:>9.0%} "
              f"{1e3 * t_prod:>22.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--lams", default="10,20,40,160,640,2560")
    ap.add_argument("--sweep-budget", type=float, default=None, help="default 1e4 * dim")
    ap.add_argument("--big", default="100,1000", help="dimensions of part 3 ('' to skip)")
    ap.add_argument("--skip-sweep", action="store_true")
    a = ap.parse_args()
    fixed_population(a.dim, [int(v) for v in a.lams.split(",")])
    breakdown(a.dim, 4 + int(3 * np.log(a.dim)))
    if not a.skip_sweep:
        sweep(a.dim, a.sweep_budget or 1e4 * a.dim)
    if a.big:
        large([int(v) for v in a.big.split(",")])


if __name__ == "__main__":
    main()
