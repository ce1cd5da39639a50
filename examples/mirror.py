"""Mirror CBO: sparse recovery with an elastic-net map, and optimisation on the simplex (docs/variants.md).

    python examples/mirror.py
"""

import numpy as np

import cbopt
from cbopt.mirror import ElasticNet, EntropySimplex

# the notebook's problem: A ~ N(0, 1), a 3-sparse signal, noise 0.01 (one instance; over 40 instances these
# settings solve 39, see docs/variants.md)
g = np.random.default_rng(0)
A = g.standard_normal((30, 30))
x_true = np.zeros(30)
support = g.permutation(30)[:3]
x_true[support] = g.standard_normal(3)
b = A @ x_true + 0.01 * g.standard_normal(30)


def loss(x):
    return 0.5 * ((x @ A.T - b) ** 2).sum(-1)


res = cbopt.minimize(loss, bounds=[(-1, 1)] * 30, method="cbo-mirror", rng=0, max_evals=11_000,
                     stop=cbopt.Stop(xtol=None, ftol=None),
                     options=dict(mirror=ElasticNet(delta=1.9), n_particles=50, sigma=2.0, dt=0.1,
                                  alpha=cbopt.schedules.Geometric(1.0, 1.4, cap=1e5)))
print(f"loss {res.fun:.2e} (truth {loss(x_true):.2e}); non-zero coordinates: {np.flatnonzero(res.x).tolist()}, "
      f"truth's: {sorted(support.tolist())}")

# a portfolio-like problem on the simplex: every evaluated point has x >= 0 and sum x = 1
w = g.uniform(0.5, 2.0, 8)
best = 1 / w / (1 / w).sum()  # the minimiser of sum w x^2 on the simplex
for label, kw in (("mirror CBO", dict(method="cbo-mirror", options=dict(mirror=EntropySimplex()))),
                  ("projected CBO", dict(method="cbo", constraints=cbopt.mirror.Simplex()))):
    res = cbopt.minimize(lambda x: (w * x * x).sum(-1), bounds=[(0, 1)] * 8, rng=0, max_evals=8000, **kw)
    print(f"{label}: |x - x*|_max = {np.abs(res.x - best).max():.1e}, sum x = {res.x.sum():.15f}, "
          f"min x = {res.x.min():.3f}")
