"""Success of ``minimize`` with default options on shifted Rastrigin and Ackley (d = 20).

Protocol: the minimiser is drawn from [-2, 2]^d, the box is [-5, 5]^d, the
budget 1e5 evaluations; a run succeeds when every coordinate of ``result.x`` lies within 0.25 of the
minimiser. Prints the success count at 5e4 and 1e5 evaluations and the median evaluations to success.

    python benchmarks/defaults.py [--seeds 20] [--dim 20] [--method cbo] [-o KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import cbopt
from cbopt.cli import _options
from cbopt.objectives import ackley, rastrigin


def first_success(fun, x_star, seed, budget, method, options):
    hit = {"nfev": None}

    def watch(intermediate_result):
        r = intermediate_result
        if hit["nfev"] is None and np.abs(r.x - x_star).max() < 0.25:
            hit["nfev"] = r.nfev

    d = x_star.shape[0]
    res = cbopt.minimize(fun, bounds=[(-5, 5)] * d, rng=seed, max_evals=budget, method=method,
                         options=options, callback=watch)
    ok_end = np.abs(res.x - x_star).max() < 0.25
    return hit["nfev"], ok_end, res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--dim", type=int, default=20)
    ap.add_argument("--budget", type=float, default=1e5)
    ap.add_argument("--method", default="auto")
    ap.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                    help="method option instead of its default, e.g. -o sigma=10")
    args = ap.parse_args(argv)
    options = _options(args.option) or None
    print(f"cbopt {cbopt.__version__} | method={args.method} options={options or 'defaults'} | "
          f"d={args.dim} | {args.seeds} seeds")
    print(f"{'function':>10} {'ok@5e4':>7} {'ok@1e5':>7} {'ok@end':>7} {'median evals':>13} {'time':>7}")
    for base in (rastrigin, ackley):
        t = time.perf_counter()
        firsts, ends = [], 0
        for seed in range(args.seeds):
            inst = base.instance(args.dim, shift=np.random.default_rng(10_000 + seed).uniform(-2, 2, args.dim))
            nf, ok, _ = first_success(inst, inst.x_best, seed, args.budget, args.method, options)
            firsts.append(np.inf if nf is None else nf)
            ends += ok
        firsts = np.array(firsts)
        med = np.median(firsts)
        print(f"{base.name:>10} {int((firsts <= 5e4).sum()):>7} {int((firsts <= 1e5).sum()):>7} {ends:>7} "
              f"{med if np.isfinite(med) else float('inf'):>13.0f} {time.perf_counter() - t:>6.1f}s")


if __name__ == "__main__":
    main()
