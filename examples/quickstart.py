"""Minimise a shifted 20-D Rastrigin function with default options, then a per-point objective."""

import numpy as np

import cbopt
from cbopt.objectives import rastrigin

# a batched objective: X has shape (..., d), the result shape (...)
problem = rastrigin.instance(20, shift=True, rng=1)  # minimiser moved away from 0
res = cbopt.minimize(problem, bounds=[(-5, 5)] * 20, rng=0)
print(res.reason, f"f = {res.fun:.3g}", f"max |x - x*| = {np.abs(res.x - problem.x_best).max():.2g}", res.nfev)


# a per-point function (e.g. a simulation) is adapted explicitly
def simulate(x):
    return float(np.sum((x - 0.3) ** 2) + 0.1 * np.sin(5 * x).sum())


res = cbopt.minimize(cbopt.vectorize(simulate), x0=np.zeros(3), options={"init_scale": 1.0}, rng=0, max_evals=5000)
print(res.reason, res.x.round(3), res.fun)

# several independent runs at once, stopped at a target value
res = cbopt.minimize(problem, bounds=[(-5, 5)] * 20, rng=0, n_runs=4, target=1e-6, max_evals=2e5)
print([r.reason for r in res.runs], "best run:", res.best_run)
