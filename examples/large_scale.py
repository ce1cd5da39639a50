"""The default at d = 10 000: a diagonal search distribution, linear cost per step (docs/scale.md).

    python examples/large_scale.py
"""

import time

import numpy as np

import cbopt
from cbopt.methods.ach import default_model

d = 10_000
shift = np.random.default_rng(1).uniform(-3, 3, d)
scales = 10 ** (3 * np.arange(d) / (d - 1))  # a separable ellipsoid, condition 1e3


def f(X):
    return (scales * (X - shift) ** 2).sum(-1)


t0 = time.perf_counter()
res = cbopt.minimize(f, bounds=[(-5, 5)] * d, rng=0, max_evals=20_000)
print(f"d = {d}: model {default_model(d)!r}, f = {res.fun:.4g} (start ~{f(np.zeros(d)):.3g}) after {res.nfev} "
      f"evaluations, {1e3 * (time.perf_counter() - t0) / res.nfev:.3f} ms per evaluation")
