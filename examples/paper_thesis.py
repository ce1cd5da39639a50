"""CBO as a stochastic relaxation of gradient descent, in numbers (see docs/thesis.md).

    python examples/paper_thesis.py
"""

import numpy as np

import cbopt
from cbopt import thesis
from cbopt.objectives import canyon

# 1. Consensus hopping on a quadratic is (in the mean) the proximal step (I + tau A)^{-1} x.
A = np.array([[1.0, 0.3], [0.3, 0.5]])


def quad(x):
    return 0.5 * np.einsum("...i,ij,...j->...", x, A, x)


x, tau = np.array([2.0, -1.0]), 0.9
steps = thesis.ch_steps(quad, x, alpha=10.0, n=100_000, tau=tau, reps=20, rng=0)
print("mean CH step      ", steps.mean(0).round(4), "+-", (steps.std(0) / np.sqrt(20)).round(4))
print("prox (I+tau A)^-1x", thesis.prox_quadratic(A, x, tau).round(4))

# 2. The same as a registered method: "a proximal step of size tau" per iteration.
res = cbopt.minimize(quad, x0=x, method="ch", options={"tau": 0.5, "alpha": 50.0}, rng=0, stop=cbopt.Stop(max_iter=60),
                     history=True)
print("CH with tau=0.5 after 60 steps:", res.history["consensus"][-1].round(5))

# 3. Barrier crossing: gradient descent stalls in front of the bump; CBO crosses it.
gd = thesis.gradient_descent(canyon, [8.0, 8.0], steps=10_000, dt=1e-3)[-1]
cbo = cbopt.minimize(canyon, x0=[8.0, 8.0],
                     options=dict(n_particles=200, sigma=1.6, alpha=100.0, noise="isotropic",
                                  init_scale=0.5), rng=0, stop=cbopt.Stop(max_iter=250), n_runs=20, method="cbo")
hits = sum(np.linalg.norm(r.consensus) < 0.5 for r in cbo.runs)
print(f"GD from (8, 8) ends at {gd.round(2)} (f = {canyon(gd):.2f}); "
      f"CBO reaches the global minimiser in {hits}/20 runs")

# 4. Alignment of the consensus displacement with -grad f along CBO runs.
res = cbopt.minimize(quad, x0=[8.0, 8.0], options={"n_particles": 200, "init_scale": 0.5}, n_runs=20, rng=0,
                     stop=cbopt.Stop(max_iter=100, xtol=None, ftol=None), history=True, method="cbo")
cos = thesis.alignment(quad, res.history["consensus"], away_from=[0, 0], radius=1.0)
print(f"mean cos(consensus step, -grad f) = {cos.mean():.2f} over {len(cos)} steps")
