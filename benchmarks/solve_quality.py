"""Solve quality with restarts and refinement: cbopt vs IPOP-CMA-ES (pycma), measured in the same run.

    python benchmarks/solve_quality.py [--seeds 20] [--dim 10] [--budget 1e5]

Counts the seeds in which the best value found within the budget is within 1e-8 of the minimum, on
shifted+rotated Rastrigin (box [-5, 5]^d, instance seed = 100 + seed) and on Schwefel 2.26 (box
[-500, 500]^d). cbopt: the default, ``minimize(f, bounds=..., max_evals=...)`` (ACH in the restart
portfolio, whose CBO regime takes the separable Schwefel), and ``minimize(..., restarts=9, refine="auto")``
with the box enforced by reflection,
for CBO (coordinate-wise noise) and CBS (weighted-covariance noise, rotation invariant). IPOP-CMA-ES:
``cma.fmin2(f, x0, 0.3 * width, restarts=9, incpopsize=2)`` with the same box and budget; evaluations past
the budget (pycma finishes its generation) are not credited.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import cbopt
from cbopt._extras import require
from cbopt.objectives import rastrigin, schwefel

TOL = 1e-8


def problems(d, seed):
    r = rastrigin.instance(d, shift=True, rotate=True, rng=100 + seed)
    return {"rastrigin (shifted+rotated)": (r, r.f_min, [(-5.0, 5.0)] * d),
            "schwefel": (schwefel, 0.0, schwefel.bounds(d).tolist())}


def run_cbopt(f, bounds, seed, budget, method, options):
    res = cbopt.minimize(f, bounds=bounds, rng=seed, max_evals=budget, method=method, options=options,
                         restarts=9, refine="auto")
    return float(res.fun), res.nfev


def run_default(f, bounds, seed, budget):
    res = cbopt.minimize(f, bounds=bounds, rng=seed, max_evals=budget)
    return float(res.fun), res.nfev


def run_cma(f, bounds, seed, budget):
    cma = require("cma", "the IPOP-CMA-ES comparison")
    lo, hi = np.asarray(bounds).T
    seen = {"n": 0, "best": np.inf}

    def g(x):
        v = float(f(np.asarray(x)))
        seen["n"] += 1
        if seen["n"] <= budget:
            seen["best"] = min(seen["best"], v)
        return v

    x0 = np.random.default_rng(seed).uniform(lo, hi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cma.fmin2(g, x0, 0.3 * float(np.mean(hi - lo)), restarts=9, incpopsize=2,
                  options={"maxfevals": budget, "bounds": [lo.tolist(), hi.tolist()], "verbose": -9,
                           "seed": seed + 1, "tolfun": 1e-12})
    return seen["best"], min(seen["n"], budget)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--budget", type=float, default=1e5)
    ap.add_argument("--only", help="comma-separated solver name prefixes to run (e.g. 'cbopt default,IPOP')")
    args = ap.parse_args(argv)
    budget, d = int(args.budget), args.dim
    cma = require("cma", "the IPOP-CMA-ES comparison")
    print(f"cbopt {cbopt.__version__}, pycma {cma.__version__}; d = {d}, budget {budget}, {args.seeds} seeds, "
          f"success: f - f_min < {TOL:g}")
    solvers = {
        "cbopt default (minimize(f, bounds))": lambda f, b, s: run_default(f, b, s, budget),
        "cbopt CBO + restarts + L-BFGS-B": lambda f, b, s: run_cbopt(f, b, s, budget, "cbo", {"boundary": "reflect"}),
        "cbopt CBS + restarts + L-BFGS-B": lambda f, b, s: run_cbopt(f, b, s, budget, "cbs", {"boundary": "reflect"}),
        "IPOP-CMA-ES (pycma)": lambda f, b, s: run_cma(f, b, s, budget),
    }
    if args.only:
        keep = [p.strip() for p in args.only.split(",")]
        solvers = {k: v for k, v in solvers.items() if any(k.startswith(p) for p in keep)}
    for pname in problems(d, 0):
        print(f"\n{pname}")
        print(f"{'solver':<34} {'solved':>7} {'median f - f_min':>17} {'time s':>7}")
        for sname, solve in solvers.items():
            t0 = time.perf_counter()
            errs = []
            for seed in range(args.seeds):
                f, fmin, bounds = problems(d, seed)[pname]
                fbest, _ = solve(f, bounds, seed)
                errs.append(fbest - fmin)
            errs = np.asarray(errs)
            print(f"{sname:<34} {int((errs < TOL).sum()):>3} / {args.seeds:<2} {np.median(errs):17.3g} "
                  f"{time.perf_counter() - t0:7.1f}", flush=True)


if __name__ == "__main__":
    main()
