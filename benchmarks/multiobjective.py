"""AM-CBO (cbopt.multiobjective) against pymoo's NSGA-II at equal evaluations, in the same run.

ZDT1, ZDT2, ZDT3 (d = 30) and DTLZ2 (d = 12, K = 3); population 100 for both, 1e5 evaluations, 10 seeds;
IGD against pymoo's reference fronts and hypervolume (reference point 1.1 per objective), both with
pymoo's indicators; the distinct points of each final population (values rounded to 1e-3). Needs pymoo
(pip install pymoo).

    python benchmarks/multiobjective.py [--seeds 10] [--evals 100000] [--chebyshev] [--interior]

``--interior`` adds AM-CBO with less noise and a rising alpha (sigma = 2, alpha = 10 * 1.01^k), the setting
for fronts inside the box (DTLZ2's): the default's large noise suits fronts on a face of the box (ZDT's).
"""

import argparse
import time

import numpy as np

import cbopt
from cbopt.multiobjective import simplex_weights
from cbopt.schedules import Geometric

PROBLEMS = [("zdt1", dict(n_var=30)), ("zdt2", dict(n_var=30)), ("zdt3", dict(n_var=30)),
            ("dtlz2", dict(n_var=12, n_obj=3))]


def batched(p):
    d, k = p.n_var, p.n_obj
    return lambda x: p.evaluate(np.asarray(x).reshape(-1, d)).reshape(x.shape[:-1] + (k,))


def distinct(values):
    """Distinct points of a population (values rounded to 1e-3)."""
    return len(np.unique(np.round(values, 3), axis=0))


def radius_gap(values):
    return float(np.median(np.linalg.norm(values, axis=1) - 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--evals", type=int, default=100_000)
    ap.add_argument("--chebyshev", action="store_true", help="also run the authors' Chebyshev scalarisation")
    ap.add_argument("--interior", action="store_true", help="also run sigma = 2, alpha = 10 * 1.01^k")
    a = ap.parse_args()
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.indicators.hv import HV
    from pymoo.indicators.igd import IGD
    from pymoo.optimize import minimize
    from pymoo.problems import get_problem

    variants = [("AM-CBO", {})] + ([("AM-CBO (Chebyshev)", {"scalarization": "chebyshev"})] if a.chebyshev else [])
    if a.interior:
        variants.append(("AM-CBO (sigma 2, alpha 10 x 1.01^k)", dict(sigma=2.0, alpha=Geometric(10.0, 1.01, cap=1e6))))
    print(f"{a.evals:,} evaluations, population 100, {a.seeds} seeds; median (and interquartile range)\n")
    print("| problem | solver | IGD | hypervolume | distinct points | seconds/run |")
    print("|---|---|---|---|---|---|")
    wins = 0
    for name, kw in PROBLEMS:
        p = get_problem(name, **kw)
        igd, hv = IGD(p.pareto_front()), HV(ref_point=np.full(p.n_obj, 1.1))
        rows = {}
        for label, opts in variants:
            vals, t0 = [], time.perf_counter()
            for s in range(a.seeds):
                box = list(zip(p.xl, p.xu, strict=True))
                r = cbopt.multiobjective(batched(p), bounds=box, rng=s, max_evals=a.evals, options=opts)
                vals.append((igd(r.F), hv(r.F), distinct(r.population_F), radius_gap(r.population_F)))
            rows[label] = (np.array(vals), (time.perf_counter() - t0) / a.seeds)
        vals, t0 = [], time.perf_counter()
        for s in range(a.seeds):
            r = minimize(p, NSGA2(pop_size=100), ("n_gen", a.evals // 100), seed=s, verbose=False)
            pop = r.pop.get("F")
            vals.append((igd(r.F), hv(r.F), distinct(pop), radius_gap(pop)))
        rows["NSGA-II (pymoo)"] = (np.array(vals), (time.perf_counter() - t0) / a.seeds)
        for label, (v, sec) in rows.items():
            q = np.percentile(v, [25, 50, 75], axis=0)
            print(f"| {name} | {label} | {q[1, 0]:.4f} ({q[0, 0]:.4f}-{q[2, 0]:.4f}) | "
                  f"{q[1, 1]:.4f} ({q[0, 1]:.4f}-{q[2, 1]:.4f}) | {q[1, 2]:.0f} | {sec:.1f} |")
        if name == "dtlz2":  # its front is the unit sphere: |F| - 1 is the distance term g of DTLZ2
            w = simplex_weights(100, 3)
            lattice = w / np.linalg.norm(w, axis=1)[:, None]
            print("\nDTLZ2: median |F| - 1 over the final population (the distance term): "
                  + ", ".join(f"{label} {np.median(v[:, 3]):.4f}" for label, (v, _) in rows.items())
                  + f"; IGD of AM-CBO's weight lattice on the front itself: {igd(lattice):.4f}"
                  + "\n")
        wins += np.median(rows["AM-CBO"][0][:, 0]) < np.median(rows["NSGA-II (pymoo)"][0][:, 0])
    print(f"\nAM-CBO has the better median IGD on {wins} of {len(PROBLEMS)} problems")


if __name__ == "__main__":
    main()
