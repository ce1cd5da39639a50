"""A noisy objective: stock levels of a simulated shop, each evaluation a fresh simulation.

    python examples/noisy.py [--seed 0] [--budget 20000]

Ten products with random daily demand (normal, mean ``mu``, spread ``sd``); an evaluation simulates ten days
with a stock level ``x`` per product and returns the average daily cost: 1 per unit left over, 4 per unit
short. Each call draws new demand, so the same ``x`` gives a different value each time: the objective is
noisy. Its expectation has a closed form (the newsvendor problem), so the example can say how good each
point really is: the minimiser is ``mu + sd * z`` with ``Phi(z) = 4 / (4 + 1)``.

cbopt finds out that the objective is noisy by re-evaluating its best point (``noisy="auto"``, the
default) and then reports as ``res.x`` the candidate with the lowest mean over re-evaluations, with
``res.fun`` that mean (``res.fun_sem`` its standard error); ``res.luckiest`` is the lowest single draw,
whose value is too good to be true. See docs/noisy.md.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import cbopt

D, DAYS, HOLD, SHORT = 10, 10, 1.0, 4.0
MU = np.linspace(20.0, 110.0, D)
SD = np.linspace(3.0, 30.0, D)


def simulate(rng: np.random.Generator):
    """The noisy objective: ``X (..., D)`` stock levels -> average daily cost of DAYS simulated days."""

    def cost(X):
        demand = MU + SD * rng.standard_normal(X.shape[:-1] + (DAYS, D))
        left = np.maximum(X[..., None, :] - demand, 0.0)
        short = np.maximum(demand - X[..., None, :], 0.0)
        return (HOLD * left + SHORT * short).sum(-1).mean(-1)

    return cost


def expected_cost(X) -> np.ndarray:
    """The exact expectation of ``simulate``'s value (normal demand: E(x - D)+ and E(D - x)+ in closed form)."""
    z = (np.asarray(X, dtype=float) - MU) / SD
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2)))
    over = SD * (pdf + z * cdf)
    under = SD * (pdf - z * (1.0 - cdf))
    return (HOLD * over + SHORT * under).sum(-1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=float, default=20000)
    args = ap.parse_args(argv)
    z = 0.8416212335729143  # Phi(z) = SHORT / (SHORT + HOLD) = 0.8
    best = expected_cost(MU + SD * z)
    f = simulate(np.random.default_rng(1000 + args.seed))
    res = cbopt.minimize(f, bounds=[(0.0, 200.0)] * D, rng=args.seed, max_evals=args.budget)
    print(res.message)
    print(f"noisy: {res.get('noisy', False)}, noise sd about {res.get('noise_sd', float('nan')):.3g}, "
          f"{res.nfev} evaluations ({res.get('reevaluations', 0)} to choose and assess res.x)")
    print(f"expected cost at the optimum           {best:8.3f}")
    print(f"res.x ({res.get('chosen', 'best draw')}):  reported {res.fun:8.3f} +- {res.get('fun_sem', 0):.3f}, "
          f"true {expected_cost(res.x):8.3f}")
    if "luckiest" in res:
        lucky = res.luckiest
        print(f"the luckiest draw:          value   {lucky['fun']:8.3f}, true {expected_cost(lucky['x']):8.3f}")
    return res


if __name__ == "__main__":
    main()
