"""Per-step time of CBO: cbopt vs CBXpy (``cbx``), measured in the same run; prints the ratios.

    python benchmarks/step_time.py [--repeats 5] [--steps 200]

Both libraries run the same dynamics (anisotropic noise, Euler--Maruyama, vectorised objective
f(X[M, N, d]) -> E[M, N]) for a fixed number of steps; the time per step is the best of
``--repeats`` runs divided by the number of steps (set-up and the first evaluation excluded as far
as each API allows). Also shows what the M axis costs: M = 16 runs against one run at N = 100, d = 10.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import cbopt
from cbopt._extras import require
from cbopt.objectives import rastrigin, sphere

NO_STOP = dict(xtol=None, ftol=None, divergence=None)


def t_cbopt(f, m, n, d, steps, seed=0):
    opts = {"n_particles": n, "sigma": 1.0, "alpha": 30.0}
    t0 = time.perf_counter()
    cbopt.minimize(f, bounds=[(-3, 3)] * d, n_runs=m, options=opts, rng=seed, max_iter=1, **NO_STOP)
    t1 = time.perf_counter()
    cbopt.minimize(f, bounds=[(-3, 3)] * d, n_runs=m, options=opts, rng=seed, max_iter=steps + 1, **NO_STOP)
    t2 = time.perf_counter()
    return ((t2 - t1) - (t1 - t0)) / steps


def t_cbx(f, m, n, d, steps, seed=0):
    cbx = require("cbx", "the CBXpy comparison")
    from cbx.dynamics import CBO

    def make():
        x = np.random.default_rng(seed).uniform(-3, 3, (m, n, d))
        return CBO(f, f_dim="3D", x=x, M=m, N=n, d=d, max_it=steps, noise="anisotropic", sigma=1.0, alpha=30.0,
                   verbosity=0, seed=seed)

    dyn = make()
    t0 = time.perf_counter()
    dyn.optimize()
    t1 = time.perf_counter()
    del cbx
    return (t1 - t0) / steps


def best(fn, repeats, *args):
    return min(fn(*args) for _ in range(repeats))


def main(argv=None):
    ap = argparse.ArgumentParser(description="cbopt vs CBXpy: time per CBO step")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args(argv)
    from importlib.metadata import version

    print(f"cbopt {cbopt.__version__}, cbx {version('cbx')}, numpy {np.__version__}")
    print(f"{'objective':>10} {'(M, N, d)':>16} {'cbopt ms':>9} {'cbx ms':>8} {'ratio':>6}")
    for f in (sphere, rastrigin):
        for m, n, d in ((1, 1000, 100), (16, 100, 10)):
            a = best(t_cbopt, args.repeats, f, m, n, d, args.steps) * 1e3
            b = best(t_cbx, args.repeats, f, m, n, d, args.steps) * 1e3
            print(f"{f.name:>10} {str((m, n, d)):>16} {a:9.3f} {b:8.3f} {a / b:6.2f}")
    one = best(t_cbopt, args.repeats, sphere, 1, 100, 10, args.steps)
    many = best(t_cbopt, args.repeats, sphere, 16, 100, 10, args.steps)
    print(f"M axis (sphere, N=100, d=10): M=16 costs {many / one:.2f}x one run (target < 4x)")


if __name__ == "__main__":
    main()
