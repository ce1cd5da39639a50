"""What handing the objective a protected swarm costs: a read-only numpy view, or a torch copy, against a
whole CBO step, per swarm size (the step is measured in the same run).

    python benchmarks/readonly_cost.py
"""

import time

import numpy as np

import cbopt
from cbopt.driver import read_only
from cbopt.objectives import sphere


def per_call(fn, x, repeats=200):
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(x)
        best = min(best, (time.perf_counter() - t0) / repeats)
    return best


def step_time(n, d, backend):
    kw = dict(bounds=[(-3, 3)] * d, method="cbo", options={"n_particles": n}, rng=0, backend=backend)
    stop = dict(xtol=None, ftol=None, divergence=None)
    t0 = time.perf_counter()
    cbopt.minimize(sphere, stop=cbopt.Stop(max_iter=2, **stop), **kw)
    t1 = time.perf_counter()
    cbopt.minimize(sphere, stop=cbopt.Stop(max_iter=52, **stop), **kw)
    t2 = time.perf_counter()
    return ((t2 - t1) - (t1 - t0)) / 50


def main():
    rows = [("numpy", None, np.random.default_rng(0).standard_normal)]
    try:
        import torch

        rows.append(("torch cpu", "cpu", lambda s: torch.randn(*s, dtype=torch.float64)))
    except ImportError:
        pass
    print(f"{'backend':<10} {'N x d':>12} {'protect us':>11} {'CBO step us':>12} {'share':>7}")
    for label, backend, make in rows:
        for n, d in ((100, 10), (1000, 100), (10_000, 100)):
            x = make((1, n, d))
            t = per_call(read_only, x)
            s = step_time(n, d, backend)
            print(f"{label:<10} {f'{n} x {d}':>12} {1e6 * t:>11.2f} {1e6 * s:>12.1f} {t / s:>7.1%}")


if __name__ == "__main__":
    main()
