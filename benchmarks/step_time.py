"""Per-step time of CBO: cbopt on numpy and on torch (CPU) vs CBXpy (``cbx``), measured in the same run.

    python benchmarks/step_time.py [--repeats 3] [--sizes 1x1000x100,16x100x10,1x10000x1000]

Both libraries run the same dynamics (anisotropic noise, Euler--Maruyama, vectorised objective
f(X[M, N, d]) -> E[M, N], float64) for a fixed number of steps; the time per step is the best of
``--repeats`` runs divided by the number of steps, with set-up and the first evaluation subtracted
(cbopt: a one-step run is timed and subtracted). Prints, per objective and (M, N, d):
``numpy/cbx`` (target <= 1/3) and ``torch/numpy`` (target <= 1.5). Also shows the random-number draw
behind the torch-CPU design, what the M axis costs and, with ``--compile``, torch.compile against eager.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import cbopt
from cbopt._extras import available, require
from cbopt.objectives import rastrigin, sphere

NO_STOP = dict(xtol=None, ftol=None, divergence=None)
SIZES = "1x1000x100,16x100x10,1x10000x1000"


def steps_for(m, n, d):
    """About 2e7 particle-coordinates per timed run, at least 5 steps."""
    return int(min(200, max(5, 2e7 // (m * n * d))))


def t_cbopt(f, m, n, d, steps, seed=0, **kw):
    opts = {"n_particles": n, "sigma": 1.0, "alpha": 30.0}
    bounds = [(-3, 3)] * d
    t0 = time.perf_counter()
    cbopt.minimize(f, bounds=bounds, n_runs=m, method="cbo", options=opts, rng=seed,
                   stop=cbopt.Stop(max_iter=1, **NO_STOP), **kw)
    t1 = time.perf_counter()
    cbopt.minimize(f, bounds=bounds, n_runs=m, method="cbo", options=opts, rng=seed,
                   stop=cbopt.Stop(max_iter=steps + 1, **NO_STOP),
                   **kw)
    t2 = time.perf_counter()
    return ((t2 - t1) - (t1 - t0)) / steps


def t_cbx(f, m, n, d, steps, seed=0):
    require("cbx", "the CBXpy comparison")
    from cbx.dynamics import CBO

    x = np.random.default_rng(seed).uniform(-3, 3, (m, n, d))
    dyn = CBO(f, f_dim="3D", x=x, M=m, N=n, d=d, max_it=steps, noise="anisotropic", sigma=1.0, alpha=30.0,
              verbosity=0, seed=seed)
    t0 = time.perf_counter()
    dyn.optimize()
    return (time.perf_counter() - t0) / steps


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def t_c(f, m, n, d):
    """Trigger the one-off compilation of a size (not timed)."""
    opts = {"n_particles": n, "sigma": 1.0, "alpha": 30.0}
    cbopt.minimize(f, bounds=[(-3, 3)] * d, n_runs=m, method="cbo", options=opts, rng=0,
                   stop=cbopt.Stop(max_iter=3, **NO_STOP), backend=cbopt.Torch("cpu", compile=True))


def best(fn, repeats, *args, **kw):
    return min(fn(*args, **kw) for _ in range(repeats))


def parse_sizes(text):
    return [tuple(int(v) for v in s.split("x")) for s in text.split(",")]


def main(argv=None):
    ap = argparse.ArgumentParser(description="cbopt (numpy, torch-CPU) vs CBXpy: time per CBO step")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default=SIZES, help="comma-separated MxNxd (default: %(default)s)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile against eager torch-CPU")
    args = ap.parse_args(argv)
    from importlib.metadata import version

    has_torch = available("torch")
    if has_torch:
        import torch
    print(f"cbopt {cbopt.__version__}, cbx {version('cbx')}, numpy {np.__version__}"
          + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if has_torch else ", no torch"))
    print(f"{'objective':>10} {'(M, N, d)':>17} {'numpy ms':>9} {'torch ms':>9} {'cbx ms':>9} "
          f"{'numpy/cbx':>9} {'torch/numpy':>11}")
    for f in (sphere, rastrigin):
        for m, n, d in parse_sizes(args.sizes):
            steps = steps_for(m, n, d)
            a = best(t_cbopt, args.repeats, f, m, n, d, steps) * 1e3
            t = best(t_cbopt, args.repeats, f, m, n, d, steps, backend="cpu") * 1e3 if has_torch else float("nan")
            b = best(t_cbx, args.repeats, f, m, n, d, steps) * 1e3
            print(f"{f.name:>10} {str((m, n, d)):>17} {a:9.3f} {t:9.3f} {b:9.3f} {a / b:9.2f} {t / a:11.2f}")
    if has_torch:
        shape = (1, 10_000, 1000)
        from cbopt._backend import NumpySampler

        host = NumpySampler(np.random.default_rng(0))
        out = np.empty(shape)
        gen = torch.Generator().manual_seed(0)
        t_np = best(lambda: _timed(lambda: host.fill_normal(out)), args.repeats)
        t_t = best(lambda: _timed(lambda: torch.randn(shape, generator=gen, dtype=torch.float64)), args.repeats)
        print(f"1e7 float64 normals: cbopt's chunked draws {t_np * 1e3:.1f} ms, torch.randn {t_t * 1e3:.1f} ms "
              f"(ratio {t_t / t_np:.2f}): why torch-CPU runs draw from the host streams")
    if args.compile and has_torch:
        print("torch.compile of the fused update (torch-CPU, float64, sphere), ms per step:")
        for m, n, d in parse_sizes(args.sizes):
            steps = steps_for(m, n, d)
            t_c(sphere, m, n, d)  # compile once, outside the timing
            e = best(t_cbopt, args.repeats, sphere, m, n, d, steps, backend="cpu") * 1e3
            c = best(t_cbopt, args.repeats, sphere, m, n, d, steps, backend=cbopt.Torch("cpu", compile=True)) * 1e3
            print(f"   {str((m, n, d)):>17} eager {e:8.3f}  compiled {c:8.3f}  ratio {c / e:.2f}")
    one = best(t_cbopt, args.repeats, sphere, 1, 100, 10, 200)
    many = best(t_cbopt, args.repeats, sphere, 16, 100, 10, 200)
    print(f"M axis (sphere, N=100, d=10): M=16 costs {many / one:.2f}x one run (target < 4x)")


if __name__ == "__main__":
    main()
