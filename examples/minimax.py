"""A saddle point of a nonconvex-nonconcave landscape with CBO-SP (see docs/variants.md).

    python examples/minimax.py
"""

import numpy as np

import cbopt


def saddle_rastrigin(x, y):
    """min over x, max over y of Rastrigin(x) - Rastrigin(y): the saddle point is (0, 0)."""
    rx = (x * x).sum(-1) + 1.5 * (1 - np.cos(2 * np.pi * x)).sum(-1)
    ry = (y * y).sum(-1) + 1.5 * (1 - np.cos(2 * np.pi * y)).sum(-1)
    return rx - ry


res = cbopt.minimax(saddle_rastrigin, x0=np.ones(5), y0=np.ones(5), init_scale=2.0, rng=0,
                    stop=cbopt.Stop(max_iter=600))
print(f"{res.reason} after {res.nit} steps, {res.nfev} evaluations")
print("x* =", res.x.round(5))
print("y* =", res.y.round(5))
print(f"E(x*, y*) = {res.fun:.2e}")
