"""Mixed-integer problems: cbopt's ``integrality=`` against scipy's differential evolution (``integrality=``)
and pycma (``integer_variables``), in the same run, at equal evaluation budgets.

    python benchmarks/mixed_integer.py [--dim 10] [--seeds 10] [--budget 20000]

Every solver sees the same objective at the same points: integer coordinates rounded (scipy and cbopt
round them themselves; pycma's integer handling keeps their step size from vanishing, so its points are
rounded in the objective). A run succeeds when its best value is within 1e-8 of the optimum; the table gives
the successes and the median evaluations to success (over the successful runs).
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np

import cbopt


class Budget(Exception):
    pass


class Counted:
    """Counts evaluations, keeps the best value and when it was first within ``tol`` of 0; stops at the budget."""

    def __init__(self, f, budget, tol=1e-8):
        self.f, self.budget, self.tol = f, budget, tol
        self.n, self.best, self.hit = 0, np.inf, None

    def batch(self, X):
        X = np.asarray(X, dtype=float)
        flat = X.reshape(-1, X.shape[-1])
        if self.n + len(flat) > self.budget:
            raise Budget
        e = self.f(flat)
        for v in e:
            self.n += 1
            self.best = min(self.best, float(v))
            if self.hit is None and self.best <= self.tol:
                self.hit = self.n
        return e.reshape(X.shape[:-1])

    def point(self, x):
        return float(self.batch(np.asarray(x, dtype=float)[None])[0])


def problems(d):
    """(name, f, integer mask, bounds): each has f* = 0 at an admissible point."""
    every_other = np.arange(d) % 2 == 1
    first_half = np.arange(d) < d // 2
    shift = np.linspace(-2.6, 2.2, d)
    shift[first_half] = np.round(shift[first_half])
    scale = 10.0 ** (6 * np.arange(d) / (d - 1))

    def ellipsoid(X):
        return ((X - shift) ** 2 * scale).sum(-1)

    def rosenbrock(X):
        return (100 * (X[..., 1:] - X[..., :-1] ** 2) ** 2 + (1 - X[..., :-1]) ** 2).sum(-1)

    def rastrigin(X):
        z = X - shift
        return (z**2 + 10 * (1 - np.cos(2 * np.pi * z))).sum(-1)

    box = [(-5.0, 5.0)] * d
    return [("ellipsoid, half integer", ellipsoid, first_half, box),
            ("rosenbrock, every other integer", rosenbrock, every_other, box),
            ("rastrigin, half integer", rastrigin, first_half, box)]


def rounded(f, mask):
    def g(X):
        return f(np.where(mask, np.round(X), X))

    return g


def run_cbopt(f, mask, bounds, budget, seed):
    c = Counted(f, budget)
    try:
        cbopt.minimize(c.batch, bounds=bounds, integrality=mask, rng=seed, max_evals=budget, target=1e-8)
    except cbopt.ObjectiveError as e:
        if not isinstance(e.__cause__, Budget):
            raise
    return c


def run_de(f, mask, bounds, budget, seed):
    from scipy.optimize import differential_evolution

    c = Counted(f, budget)
    with contextlib.suppress(Budget):
        differential_evolution(c.point, bounds, integrality=mask, seed=seed, maxiter=10**6, tol=0, atol=0,
                               polish=False)
    return c


def run_cma(f, mask, bounds, budget, seed):
    import cma

    c = Counted(rounded(f, mask), budget)
    lo, hi = np.array(bounds).T
    x0 = np.random.default_rng(seed).uniform(lo, hi)
    opts = {"bounds": [list(lo), list(hi)], "integer_variables": list(np.flatnonzero(mask)), "seed": seed + 1,
            "verbose": -9, "maxfevals": budget, "ftarget": 1e-8, "tolfun": 1e-15, "tolx": 1e-15}
    with contextlib.suppress(Budget):
        cma.fmin2(c.point, x0, 0.2 * float(np.mean(hi - lo)), opts, restarts=9, incpopsize=2)
    return c


SOLVERS = {"cbopt (auto)": run_cbopt, "scipy DE": run_de, "pycma IPOP": run_cma}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=20_000)
    a = ap.parse_args(argv)
    print(f"d = {a.dim}, budget {a.budget} evaluations, {a.seeds} seeds; success: f <= 1e-8")
    print(f"{'problem':<32} {'solver':<14} {'solved':>7} {'median evals':>13} {'median best f':>14} {'time s':>7}")
    for name, f, mask, bounds in problems(a.dim):
        for label, solve in SOLVERS.items():
            t0 = time.perf_counter()
            runs = [solve(f, mask, bounds, a.budget, s) for s in range(a.seeds)]
            hits = [r.hit for r in runs if r.hit is not None]
            med = f"{np.median(hits):.0f}" if hits else "-"
            best = np.median([r.best for r in runs])
            print(f"{name:<32} {label:<14} {len(hits):>4}/{a.seeds:<2} {med:>13} {best:>14.3g} "
                  f"{time.perf_counter() - t0:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
