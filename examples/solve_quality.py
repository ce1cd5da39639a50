"""The default on three kinds of hard problem, with the restart portfolio's log.

    python examples/solve_quality.py

Rosenbrock (a curved valley), a rotated ellipsoid of condition 1e6 (ill-conditioned, not axis-aligned) and a
separable Rastrigin (many local minima along the axes), d = 10, box [-5, 5]^10, 1e5 evaluations: each solved
to 1e-8 by ``minimize(f, bounds=...)``. The log shows which regime did it: ACH's large (IPOP) and small
(BIPOP) runs, and coordinate-wise CBO with its local polish on the axis-aligned problem. At the end: the
evaluations to 1e-8 on the smooth two with and without ACH's model step (``surrogate``, on by default up to
d = 10: one sample of each step at the minimiser of a quadratic fitted to the last steps' values).
"""

import numpy as np

import cbopt
from cbopt.objectives import rastrigin, rosenbrock

d = 10
rng = np.random.default_rng(7)
q, _ = np.linalg.qr(rng.standard_normal((d, d)))
w = 10.0 ** (6 * np.arange(d) / (d - 1))
shift = rng.uniform(-3, 3, d)
problems = {
    "rosenbrock": (rosenbrock, 0.0),
    "rotated ellipsoid": (lambda x: (w * ((x - shift) @ q.T) ** 2).sum(-1), 0.0),
    "separable rastrigin": (lambda x: rastrigin(x - shift), 0.0),
}
for name, (f, fmin) in problems.items():
    res = cbopt.minimize(f, bounds=[(-5, 5)] * d, rng=0, max_evals=1e5, target=fmin + 1e-8)
    print(f"\n{name}: f - f_min = {res.fun - fmin:.2e} after {res.nfev} evaluations ({res.reason})")
    print(f"  {'regime':<7} {'method':<4} {'lambda':>6} {'evals':>6} {'best f':>10}  stopped by")
    for run in res.restart_log:
        why = run.get("criterion") or run["reason"]
        print(f"  {run['regime']:<7} {run['method']:<4} {run['n_particles']:>6} {run['nfev']:>6} "
              f"{run['fun']:>10.3g}  {why}")

print("\nevaluations to 1e-8 with / without the model step (options={'surrogate': False})")
for name in ("rosenbrock", "rotated ellipsoid"):
    f, fmin = problems[name]
    on, off = (cbopt.minimize(f, bounds=[(-5, 5)] * d, rng=0, max_evals=1e5, target=fmin + 1e-8,
                              options=None if model else {"surrogate": False}).nfev for model in (True, False))
    print(f"  {name:<18} {on:>6} / {off:<6}")
