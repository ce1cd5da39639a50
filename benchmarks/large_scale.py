"""cbopt's default at d = 1000 ... 100 000 against pycma's sep-CMA (``CMA_diagonal``) and full CMA-ES, in one run.

    OPENBLAS_NUM_THREADS=1 python benchmarks/large_scale.py                       # the docs' table
    OPENBLAS_NUM_THREADS=1 python benchmarks/large_scale.py --dims 1000 --budget 1e4   # one row group

Problems (box [-5, 5]^d, minimiser drawn from [-3, 3]^d with seed 1, f* = 0): sphere, the separable ellipsoid
(condition 1e6), Rastrigin and, up to d = 1000, the rotated ellipsoid (the same scales after a random rotation;
at d = 1e4 the rotation alone would be 800 MB).
Every solver gets the same budget of evaluations and starts from the same x0 ~ U[-4, 4]^d with step 2.5
(cbopt: its default start, uniform in the central 80 % of the box, step 0.25 of the width). Prints the final f
and the time per evaluation (the solver's own cost: the objectives are one vectorised pass), and the ratio
cbopt / sep-CMA of both. Full CMA-ES runs where ``--full-max`` allows (its d x d covariance).

Where evosax is installed (``pip install evosax``, which brings JAX), its large-scale strategies run too
(``--evosax``: Sep_CMA_ES, LM_MA_ES, CR_FM_NES by default) in float64 on the CPU, with their default population
4 + floor(3 ln d) (CR_FM_NES: the next even number), the same x0 and step 2.5, each generation one jitted ask,
objective and tell (the objective written in JAX). evosax has no box handling, so its strategies run
unbounded (scoring them at their points clipped to the box, while they learn from the unclipped ones, stalled
them: sphere d = 1000, 1e4 evaluations, 6.8e3 for Sep_CMA_ES against 2.0e3 unbounded). Their time per
evaluation excludes the first generation, which compiles.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import cbopt
from cbopt._extras import available, require

#: the rotated ellipsoid runs up to this d (its rotation is a d x d matrix: 8 MB at d = 1000, 800 MB at 1e4)
ROTATED_MAX = 1000


def rotation(d):
    """A random rotation of R^d (seed 2): Q of a Gaussian matrix's QR, signs fixed."""
    q, r = np.linalg.qr(np.random.default_rng(2).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def problems(d, rotated_max=ROTATED_MAX):
    shift = np.random.default_rng(1).uniform(-3, 3, d)
    scales = 10 ** (6 * np.arange(d) / max(d - 1, 1))
    fs = {
        "sphere": lambda x: ((x - shift) ** 2).sum(-1),
        "ellipsoid": lambda x: (scales * (x - shift) ** 2).sum(-1),
        "rastrigin": lambda x: 10 * d + ((x - shift) ** 2 - 10 * np.cos(2 * np.pi * (x - shift))).sum(-1),
    }
    if d <= rotated_max:
        rot = rotation(d)
        fs["rotated"] = lambda x: (scales * ((x - shift) @ rot.T) ** 2).sum(-1)
    return fs


def run_cbopt(f, d, budget):
    t0 = time.perf_counter()
    res = cbopt.minimize(f, bounds=[(-5, 5)] * d, rng=0, max_evals=budget)
    return float(res.fun), res.nfev, time.perf_counter() - t0


def run_cma(f, d, budget, diagonal):
    cma = require("cma", "the pycma anchor")
    opts = {"bounds": [-5, 5], "maxfevals": budget, "verbose": -9, "seed": 1, "tolfun": 0, "tolx": 0,
            "tolfunhist": 0, "CMA_diagonal": diagonal}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        es = cma.CMAEvolutionStrategy(np.random.default_rng(0).uniform(-4, 4, d), 2.5, opts)
        while not es.stop():
            xs = es.ask()
            es.tell(xs, list(f(np.asarray(xs))))
    return float(es.result.fbest), es.countevals, time.perf_counter() - t0


EVOSAX = "Sep_CMA_ES,LM_MA_ES,CR_FM_NES"


def jax_problems(jnp, d):
    """:func:`problems` written in JAX (the same minimiser, scales and rotation)."""
    shift = jnp.asarray(np.random.default_rng(1).uniform(-3, 3, d))
    scales = jnp.asarray(10 ** (6 * np.arange(d) / max(d - 1, 1)))
    fs = {
        "sphere": lambda x: ((x - shift) ** 2).sum(-1),
        "ellipsoid": lambda x: (scales * (x - shift) ** 2).sum(-1),
        "rastrigin": lambda x: 10 * d + ((x - shift) ** 2 - 10 * jnp.cos(2 * jnp.pi * (x - shift))).sum(-1),
    }
    if d <= ROTATED_MAX:
        rot = jnp.asarray(rotation(d))
        fs["rotated"] = lambda x: (scales * ((x - shift) @ rot.T) ** 2).sum(-1)
    return fs


def run_evosax(strategy, name, d, budget):
    """(best f, evaluations, seconds) of one evosax strategy: ``(budget // lam)`` jitted generations."""
    jax = require("jax", "the evosax anchor")
    jax.config.update("jax_enable_x64", True)  # float64, as the other solvers
    jnp = jax.numpy
    algorithms = require("evosax.algorithms", "the evosax anchor")
    f = jax_problems(jnp, d)[name]
    lam = 4 + int(3 * np.log(d))
    lam += lam % 2 if strategy == "CR_FM_NES" else 0  # (it needs an even population)
    es = getattr(algorithms, strategy)(population_size=lam, solution=jnp.zeros(d))
    params = es.default_params.replace(std_init=2.5)
    key, sub = jax.random.split(jax.random.key(0))
    state = es.init(sub, jnp.asarray(np.random.default_rng(0).uniform(-4, 4, d)), params)

    @jax.jit
    def generation(key, state):
        k1, k2 = jax.random.split(key)
        x, state = es.ask(k1, state, params)
        fit = f(x)
        state, _ = es.tell(k2, x, fit, state, params)
        return state, fit.min()

    steps = budget // lam
    key, sub = jax.random.split(key)
    state, fmin = generation(sub, state)  # compiles
    mins = [fmin]
    t0 = time.perf_counter()
    for _ in range(steps - 1):
        key, sub = jax.random.split(key)
        state, fmin = generation(sub, state)
        mins.append(fmin)
    best = float(jnp.min(jnp.stack(mins)))  # (waits for the last generation: inside the timing)
    return best, (steps - 1) * lam, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", default="1000,10000,100000")
    ap.add_argument("--budget", default="1e5,2e4,5e3", help="evaluations per dimension in --dims (one or one each)")
    ap.add_argument("--functions", default="sphere,ellipsoid,rastrigin,rotated")
    ap.add_argument("--full-max", type=int, default=1000, help="largest d for full CMA-ES")
    ap.add_argument("--full-budget", type=float, default=1e4, help="full CMA-ES's budget cap (its cost is O(d^2))")
    ap.add_argument("--evosax", default=EVOSAX, help="evosax strategies to run where evosax is installed ('' for none)")
    args = ap.parse_args(argv)
    evosax = [v for v in args.evosax.split(",") if v] if available("evosax") else []
    if args.evosax and not evosax:
        print("evosax is not installed (pip install evosax): its strategies are left out")
    dims = [int(float(v)) for v in args.dims.split(",")]
    budgets = [int(float(v)) for v in args.budget.split(",")]
    budgets = budgets * len(dims) if len(budgets) == 1 else budgets
    print(f"cbopt {cbopt.__version__}, pycma {require('cma', 'the pycma anchor').__version__}")
    print(f"{'problem':>10} {'d':>7} {'budget':>7} {'solver':>20} {'f':>10} {'ms/eval':>8} {'f / sep':>9} "
          f"{'time / sep':>10}", flush=True)
    for d, budget in zip(dims, budgets, strict=True):
        fs = problems(d)
        for name in args.functions.split(","):
            if name not in fs:
                continue  # (the rotated ellipsoid above ROTATED_MAX)
            f = fs[name]
            sep = run_cma(f, d, budget, True)
            rows = [("cbopt default", run_cbopt(f, d, budget)), ("pycma sep-CMA", sep)]
            if d <= args.full_max:
                b = int(min(budget, args.full_budget))
                rows.append((f"pycma full@{b:.0e}", run_cma(f, d, b, False)))
            rows += [(f"evosax {strategy}", run_evosax(strategy, name, d, budget)) for strategy in evosax]
            for solver, (fv, n, t) in rows:
                ratio_f = fv / sep[0] if sep[0] > 0 else float("nan")
                ratio_t = (t / n) / (sep[2] / sep[1])
                print(f"{name:>10} {d:7d} {budget:7.0e} {solver:>20} {fv:10.3g} {1e3 * t / n:8.3f} {ratio_f:9.3g} "
                      f"{ratio_t:10.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
