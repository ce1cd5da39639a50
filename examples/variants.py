"""The CBO family: memory + gradient drift, polarized CBO, consensus-based sampling, restarts + refinement.

    python examples/variants.py
"""

import numpy as np

import cbopt
from cbopt.objectives import himmelblau, rastrigin, schwefel

# Polarized CBO: all four global minima of Himmelblau in one run.
res = cbopt.minimize(himmelblau, bounds=himmelblau.bounds(2), method="polarized", rng=0, max_evals=40_000)
print("polarized: minimisers found")
for m in res.minimizers[:4]:
    print(f"   x = {m['x'].round(3)}, f = {m['fun']:.2e}, {m['size']} particles")

# Gradient drift: gamma > 0 with an analytic gradient converges in fewer evaluations.
A = np.diag(np.linspace(1, 10, 5))
f = lambda X: 0.5 * np.einsum("...i,ij,...j->...", X - 1, A, X - 1)  # noqa: E731
for gamma in (0.0, 1.0):
    r = cbopt.minimize(f, bounds=[(-5, 5)] * 5, method="cbo-memory", rng=0, target=1e-10, max_evals=2e5,
                       options={"gamma": gamma, "eta": 10.0, "grad": lambda X: (X - 1) @ A})
    print(f"cbo-memory gamma={gamma}: {r.nfev} evaluations to f < 1e-10")

# CBS sampling: the particles are samples of exp(-f) for a Gaussian f.
mean, cov = np.array([1.0, -2.0]), np.array([[2.0, 0.6], [0.6, 1.0]])
prec = np.linalg.inv(cov)
g = lambda X: 0.5 * np.einsum("...i,ij,...j->...", X - mean, prec, X - mean)  # noqa: E731
r = cbopt.minimize(g, bounds=[(-6, 6)] * 2, method="cbs", rng=0,
                   stop=cbopt.Stop(max_iter=300, xtol=None, ftol=None, divergence=None),
                   options={"mode": "sample", "n_particles": 2000, "dt": 0.1})
print("cbs samples: mean", r.population.mean(0).round(2), "cov", np.cov(r.population.T).round(2).tolist())

# Restarts + refinement: high precision on Schwefel (box enforced by reflection), rotated Rastrigin with CBS.
r = cbopt.minimize(schwefel, bounds=schwefel.bounds(10), method="cbo", rng=0, max_evals=1e5, restarts=9,
                   refine="auto", options={"boundary": "reflect"})
print(f"schwefel d=10: f = {r.fun:.1e} after {r.restarts} restarts, {r.nfev} evaluations")
inst = rastrigin.instance(10, shift=True, rotate=True, rng=100)
r = cbopt.minimize(inst, bounds=[(-5, 5)] * 10, method="cbs", rng=0, max_evals=1e5, restarts=9, refine="auto",
                   options={"boundary": "reflect"})
print(f"rotated rastrigin d=10 with CBS: f - f_min = {r.fun - inst.f_min:.1e}")
