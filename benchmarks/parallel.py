"""Wall time of a CBO run whose objective takes 50 ms per evaluation: 1, 2 and 4 processes, and a local Dask
cluster of 1, 2 and 4 single-threaded workers, measured in the same run (results are identical throughout).

    python benchmarks/parallel.py [--seconds 0.05] [--evals 160]

The objective sleeps, so even a 2-core machine shows the scaling of the evaluation seam itself.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import cbopt
from cbopt._extras import available
from cbopt.objectives import Slow, rastrigin


def timed(evaluator, f, evals, n):
    t0 = time.perf_counter()
    res = cbopt.minimize(f, bounds=[(-5, 5)] * 4, rng=0, max_evals=evals, options={"n_particles": n},
                         evaluator=evaluator)
    return time.perf_counter() - t0, res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.05)
    ap.add_argument("--evals", type=int, default=160)
    ap.add_argument("--particles", type=int, default=16)
    args = ap.parse_args(argv)
    f = Slow(rastrigin, args.seconds)
    serial = args.evals * args.seconds
    print(f"objective: {args.seconds * 1e3:.0f} ms per evaluation, {args.evals} evaluations "
          f"(serial lower bound {serial:.1f} s), N = {args.particles}")
    print(f"{'evaluator':<24} {'wall s':>7} {'speed-up':>9}")
    ref = None
    base = None
    for k in (1, 2, 4):
        t, res = timed(k, f, args.evals, args.particles)
        base = base or t
        ref = ref if ref is not None else res.x
        assert np.array_equal(res.x, ref)
        print(f"{f'{k} process(es)':<24} {t:7.2f} {base / t:9.2f}")
    if not available("distributed"):
        print("dask not installed: pip install 'cbopt[dist]' for the Dask rows")
        return
    from distributed import Client, LocalCluster

    for k in (1, 2, 4):
        with LocalCluster(n_workers=k, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            client.run(lambda: None)  # workers up
            t, res = timed(cbopt.Dask(client), f, args.evals, args.particles)
            assert np.array_equal(res.x, ref)
            print(f"{f'{k} Dask worker(s)':<24} {t:7.2f} {base / t:9.2f}")


if __name__ == "__main__":
    main()
