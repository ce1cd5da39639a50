"""GPU throughput of cbopt's CBO (torch, float32) vs CBXpy on numpy, on the same machine, in one run.

    python benchmarks/gpu_throughput.py [--device cuda] [--sizes 1x10000x1000,1x100000x1000]

Throughput = particle coordinates updated per second (M N d x steps / time), sphere and Rastrigin
objectives written in torch, evaluated on the device. The timed cbopt run includes the one small
host transfer per step that the stopping rules need and the final copy of the result. CBXpy runs
its numpy backend (float64, its default) on the CPU cores of the same machine. Target: >= 100x at
M N d = 1e7. Without CUDA the script says so and exits (use ``--device cpu`` to try it on the CPU).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import cbopt
from cbopt._extras import require
from cbopt.objectives import rastrigin, sphere

NO_STOP = dict(xtol=None, ftol=None, divergence=None)


def cbopt_rate(f, m, n, d, steps, device, dtype):
    torch = require("torch", "the GPU benchmark")
    opts = {"n_particles": n, "sigma": 1.0, "alpha": 30.0}
    kw = dict(bounds=[(-3, 3)] * d, n_runs=m, method="cbo", options=opts, rng=0, backend=cbopt.Torch(device, dtype))
    cbopt.minimize(f, stop=cbopt.Stop(max_iter=2, **NO_STOP), **kw)  # warm-up: CUDA context, kernels, allocator
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    best = np.inf
    for _ in range(2):
        sync()
        t0 = time.perf_counter()
        cbopt.minimize(f, stop=cbopt.Stop(max_iter=1, **NO_STOP), **kw)
        sync()
        t1 = time.perf_counter()
        cbopt.minimize(f, stop=cbopt.Stop(max_iter=steps + 1, **NO_STOP), **kw)
        sync()
        t2 = time.perf_counter()
        best = min(best, ((t2 - t1) - (t1 - t0)) / steps)
    return m * n * d / best, best


def cbx_rate(f, m, n, d, steps):
    require("cbx", "the CBXpy comparison")
    from cbx.dynamics import CBO

    x = np.random.default_rng(0).uniform(-3, 3, (m, n, d))
    dyn = CBO(f, f_dim="3D", x=x, M=m, N=n, d=d, max_it=steps, noise="anisotropic", sigma=1.0, alpha=30.0,
              verbosity=0, seed=0)
    t0 = time.perf_counter()
    dyn.optimize()
    per = (time.perf_counter() - t0) / steps
    return m * n * d / per, per


def main(argv=None):
    ap = argparse.ArgumentParser(description="cbopt on a GPU vs CBXpy-numpy: CBO throughput")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--sizes", default="1x10000x1000,1x100000x1000", help="comma-separated MxNxd")
    ap.add_argument("--steps", type=int, default=50, help="timed cbopt steps per size")
    ap.add_argument("--cbx-steps", type=int, default=3, help="timed CBXpy steps per size")
    args = ap.parse_args(argv)
    torch = require("torch", "the GPU benchmark")
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: nothing measured (run this on a machine with an NVIDIA GPU)")
        return 0
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    from importlib.metadata import version

    print(f"cbopt {cbopt.__version__}, torch {torch.__version__}, cbx {version('cbx')}, device: {name}")
    print(f"{'objective':>10} {'(M, N, d)':>18} {'MNd':>8} {'cbopt ms':>9} {'cbx ms':>9} "
          f"{'cbopt coord/s':>13} {'cbx coord/s':>12} {'speed-up':>8}")
    for f in (sphere, rastrigin):
        for s in args.sizes.split(","):
            m, n, d = (int(v) for v in s.split("x"))
            r_ours, t_ours = cbopt_rate(f, m, n, d, args.steps, args.device, args.dtype)
            r_cbx, t_cbx = cbx_rate(f, m, n, d, args.cbx_steps)
            print(f"{f.name:>10} {str((m, n, d)):>18} {m * n * d:8.0e} {t_ours * 1e3:9.3f} {t_cbx * 1e3:9.1f} "
                  f"{r_ours:13.3e} {r_cbx:12.3e} {r_ours / r_cbx:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
