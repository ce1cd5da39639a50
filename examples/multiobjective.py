"""A Pareto front with AM-CBO: ZDT1 in d = 10, one swarm of 100 particles (see docs/variants.md).

    python examples/multiobjective.py
"""

import numpy as np

import cbopt


def zdt1(x):
    """Two objectives; the front is f2 = 1 - sqrt(f1), reached where x_2 = ... = x_d = 0."""
    g = 1 + 9 * x[..., 1:].mean(-1)
    f1 = x[..., 0]
    return np.stack([f1, g * (1 - np.sqrt(f1 / g))], axis=-1)


res = cbopt.multiobjective(zdt1, bounds=[(0, 1)] * 10, rng=0, max_evals=30_000)
print(f"{res.reason}: {len(res.F)} non-dominated points after {res.nfev} evaluations")
gap = np.abs(res.F[:, 1] - (1 - np.sqrt(res.F[:, 0])))
print(f"largest distance to the true front: {gap.max():.2e}; f1 from {res.F[:, 0].min():.3f} to "
      f"{res.F[:, 0].max():.3f}")
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.linspace(0, 1, 200)
    plt.plot(t, 1 - np.sqrt(t), "r-", lw=1, label="true front")
    plt.plot(res.F[:, 0], res.F[:, 1], "k.", label="AM-CBO")
    plt.xlabel("$f_1$")
    plt.ylabel("$f_2$")
    plt.legend()
    plt.savefig("zdt1_front.png", dpi=100)
    print("wrote zdt1_front.png")
except ImportError:
    pass
