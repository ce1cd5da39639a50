"""The mean-field limit of CBO, computed beside the particles (see docs/meanfield.md).

    python examples/meanfield.py
"""

import numpy as np

from cbopt import meanfield
from cbopt.objectives import rastrigin

# 1. The CBO Fokker-Planck equation on 1-D Rastrigin from N(1, 1): mass exact, density >= 0, alpha = 1e15.
res = meanfield.solve(rastrigin, [(-8, 8)], meanfield.gaussian([1.0], 1.0), cells=2000, T=5.0, dt=0.01,
                      sigma=0.5, alpha=1e15, save=[0.0, 1.0, 5.0])
print(f"mass error {np.abs(res.mass - 1).max():.1e}, min density {res.min_density.min():.1e}, "
      f"consensus at T: {res.consensus[-1, 0]:.4f}, {res.elapsed:.2f} s")

# 2. N particles of cbopt's CBO against the density: W1 shrinks like N^(-1/2).
study = meanfield.chaos(rastrigin, [(-8, 8)], [1.0], 1.0, [100, 1000, 10_000], [0.5], seeds=10, cells=1600,
                        dt=2e-3, sigma=0.5, alpha=10.0, rng=0)
print("mean W1 per N:", study["mean"][:, 0].round(4), f"slope {study['slope'][0]:.2f} ± {study['slope_sd'][0]:.2f}")

# 3. A hopping step's consensus as N -> infinity: the prox map, for alpha far beyond what particles reach.
f = lambda x: (x * x / 10 + 1 - np.cos(2 * np.pi * x)).sum(-1)  # noqa: E731
x, tau = np.array([1.4, -0.7]), 0.5
for alpha in (10.0, 1e3, 1e6):
    print(f"alpha = {alpha:g}: mean-field consensus {meanfield.prox_consensus(f, x, tau, alpha).round(6)}")

# 4. CBS on a quadratic: the moments of a Gaussian law, exactly.
m = meanfield.cbs_moments(np.diag([1.0, 4.0]), [0.5, -0.3], [2.0, 1.0], np.eye(2), alpha=1.0, T=5.0, times=[5.0])
print("CBS mean at t = 5:", m["mean"][-1].round(4), " covariance diagonal:", np.diag(m["cov"][-1]).round(4))
