"""Time per step of CBO and ACH (each covariance model) against the step's floor, on numpy and torch (CPU or
CUDA), for swarms of N*d = 1e4 ... 1e9 particle-coordinates, in float32 and float64, in one run.

    python benchmarks/gpu.py                       # CUDA (float32 + float64) and numpy, the default sizes
    python benchmarks/gpu.py --device cpu --sizes 1e4,1e5,1e6,1e7 --dtypes float64   # a CPU-only machine
    python benchmarks/gpu.py --md results.md       # also write the table as Markdown
    python benchmarks/gpu.py --compile             # also torch runs with compile=True (fused update and fold)

What is timed: the method's own kernel step, ``ask`` (draw and move) + the objective (the sphere, one pass)
+ ``tell`` (consensus, learning), on the run's device, between synchronisations; the best of ``--repeats``
blocks of steps. Beside it, in the same run and on the same arrays:

* ``floor``: drawing N*d standard normals with the run's own sampler into a buffer plus one pass over the
  swarm into another (``x + z``) -- what any CBO step must at least do; timed in blocks alternating with
  the step's, the best block of each;
* ``step/floor``: the goals are <= 1.25 for CBO and <= 1.5 for ACH (sep) at N*d >= 1e6;
* ``driver``: the same step through :func:`cbopt.minimize`'s loop (stopping rules, best-so-far, the one small
  host copy per step), from two calls of different length;
* ``evals/s`` and, on CUDA, ``BW share``: the floor's bytes (16 bytes per particle-coordinate in float32, 32
  in float64: read X for f, read X for the consensus, read and write X in the update) over the step time, as a
  share of the device's bandwidth measured here by a device-to-device copy of 2 GiB (and the datasheet value
  where torch reports the memory clock and bus width).

numpy runs up to ``--numpy-max`` particle-coordinates (default 1e8: a numpy step at 1e9 takes seconds and
~50 GB). Without CUDA the script says so and measures the CPU (``--device cpu``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

# torch's idle OpenMP workers otherwise spin on the cores that the normal draws' threads need (on 2 cores
# that made the floor of a torch-CPU step 10.8 ms instead of 5.8 at N*d = 1e6); set before torch loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

import cbopt
from cbopt._extras import available
from cbopt.minimize import prepare

NO_STOP = dict(xtol=None, ftol=None, divergence=None, patience=10**9)
D_FOR = {"cbo": 1000, "ach-sep": 1000, "ach-lm": 1000, "ach-full": 200}


def sphere(x):
    return (x * x).sum(-1)


def setup(method, nd, backend):
    """(spec, params, problem, sampler) for a swarm of about ``nd`` particle-coordinates."""
    d = D_FOR[method]
    n = max(4, int(round(nd / d)))
    name, _, model = method.partition("-")
    opts = {"n_particles": n}
    if name == "cbo":
        opts.update(sigma=1.0, alpha=30.0)
    else:
        opts.update(model=model, alpha=None)
    st = prepare(bounds=[(-3.0, 3.0)] * d, method=name, options=opts, rng=0, backend=backend,
                 stop=cbopt.Stop(max_iter=10, **NO_STOP), restarts=None)
    return st.spec, st.params, st.problem, st.sampler, n, d


def kernel_steps(method, nd, backend, sync, steps, repeats):
    """Seconds per kernel step (ask + f + tell), and the floor's seconds, on the same arrays, timed in
    alternating blocks (the best block of each), so that both see the same machine."""
    spec, params, problem, sampler, n, d = setup(method, nd, backend)
    x, aux = spec.init_population(params, problem, sampler)
    state = spec.init(params, problem, sampler, x, sphere(x), aux)
    it = 1

    def block(k):
        nonlocal state, it
        for _ in range(k):
            xs, a = spec.ask(state, params, problem, sampler, it)
            new = spec.tell(state, params, problem, sampler, it, xs, sphere(xs), a)
            del xs
            old, state = state.x, new
            sampler.recycle(old, refs=1)  # as the driver does: the old swarm's memory takes the next draw
            del old
            it += 1

    shape = tuple(state.x.shape)
    z, y = sampler.normal(shape), sampler.normal(shape)
    xp = np if isinstance(z, np.ndarray) else sys.modules["torch"]

    def floor_block(k):
        nonlocal z
        for _ in range(k):  # the draw into a buffer, then one pass over the swarm into another
            sampler.recycle(z, refs=1)
            z = sampler.normal(shape)
            xp.add(state.x, z, out=y)

    block(2)  # warm-up: kernels, allocator
    floor_block(2)
    best = floor = math.inf
    for _ in range(repeats):
        for timed in (block, floor_block):
            sync()
            t0 = time.perf_counter()
            timed(steps)
            sync()
            sec = (time.perf_counter() - t0) / steps
            if timed is block:
                best = min(best, sec)
            else:
                floor = min(floor, sec)
    return best, floor, n, d


def driver_step(method, nd, backend, sync, steps):
    """Seconds per step through minimize's loop: two calls of different length, the difference."""
    spec, params, problem, sampler, n, d = setup(method, nd, backend)
    name, _, model = method.partition("-")
    opts = {"n_particles": n, **({"sigma": 1.0, "alpha": 30.0} if name == "cbo" else {"model": model})}

    def call(k):
        sync()
        t0 = time.perf_counter()
        cbopt.minimize(sphere, bounds=[(-3.0, 3.0)] * d, method=name, options=opts, rng=0, backend=backend,
                       stop=cbopt.Stop(max_iter=k, **NO_STOP), restarts=None)
        sync()
        return time.perf_counter() - t0

    call(2)
    return (call(steps + 2) - call(2)) / steps


def bandwidth(torch, device):
    """(measured copy bandwidth, datasheet bandwidth or None) in bytes/s."""
    a = torch.empty(2**29, dtype=torch.float32, device=device)  # 2 GiB
    b = torch.empty_like(a)
    b.copy_(a)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        b.copy_(a)
    torch.cuda.synchronize()
    measured = 10 * 2 * a.numel() * 4 / (time.perf_counter() - t0)
    p = torch.cuda.get_device_properties(device)
    clock, bus = getattr(p, "memory_clock_rate", None), getattr(p, "memory_bus_width", None)
    sheet = 2 * clock * 1e3 * bus / 8 if clock and bus else None  # kHz, bits; double data rate
    del a, b
    torch.cuda.empty_cache()
    return measured, sheet


def _pct(v):
    return "" if math.isnan(v) else f"{v:.1%}"


def parse(text):
    return [int(float(v)) for v in text.split(",")]


def main(argv=None):
    ap = argparse.ArgumentParser(description="CBO and ACH step time against its floor, numpy/torch, CPU/CUDA")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--sizes", default="1e4,1e5,1e6,1e7,1e8,1e9", help="N*d values")
    ap.add_argument("--methods", default="cbo,ach-sep,ach-lm,ach-full")
    ap.add_argument("--numpy-max", type=float, default=1e8, help="largest N*d timed on numpy")
    ap.add_argument("--torch-max", type=float, default=1e9, help="largest N*d timed on torch")
    ap.add_argument("--full-max", type=float, default=1e7, help="largest N*d for ach-full")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-driver", action="store_true", help="skip the timing through minimize's loop")
    ap.add_argument("--compile", action="store_true",
                    help="also time torch runs with compile=True (the update and the fold in one fused loop)")
    ap.add_argument("--md", help="also write the table to this Markdown file")
    args = ap.parse_args(argv)
    rows = []
    torch = None
    if available("torch"):
        import torch
    dev = args.device
    cuda = dev.startswith("cuda")
    if cuda and (torch is None or not torch.cuda.is_available()):
        print("no CUDA device here: run with --device cpu to measure the CPU; nothing measured on a GPU")
        if argv is None:
            return 0
    bw = sheet = None
    if cuda and torch is not None and torch.cuda.is_available():
        bw, sheet = bandwidth(torch, dev)
        print(f"device: {torch.cuda.get_device_name(dev)}, torch {torch.__version__}, copy bandwidth "
              f"{bw / 1e12:.2f} TB/s" + (f" (datasheet {sheet / 1e12:.2f} TB/s)" if sheet else ""))
    print(f"cbopt {cbopt.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    head = (f"{'method':>9} {'backend':>14} {'dtype':>7} {'N*d':>7} {'(N, d)':>13} {'step ms':>9} {'floor ms':>9} "
            f"{'step/floor':>10} {'driver ms':>9} {'evals/s':>9} {'coord/s':>9} {'BW share':>8}")
    print(head, flush=True)
    backends = []
    for dt in args.dtypes.split(","):
        if torch is not None and (not cuda or torch.cuda.is_available()):
            backends.append((f"torch-{dev}", cbopt.Torch(dev, dtype=dt), dt, args.torch_max))
            if args.compile:
                backends.append((f"torch-{dev}+c", cbopt.Torch(dev, dtype=dt, compile=True), dt, args.torch_max))
        backends.append(("numpy", cbopt.Numpy(dt), dt, args.numpy_max))
    for label, backend, dt, top in backends:
        on_cuda = label.startswith("torch-cuda")
        sync = torch.cuda.synchronize if on_cuda else (lambda: None)
        item = 4 if dt == "float32" else 8
        for method in args.methods.split(","):
            for nd in parse(args.sizes):
                if nd > top or (method == "ach-full" and nd > args.full_max):
                    continue
                steps = int(min(100, max(3, 3e8 / nd))) if on_cuda else int(min(50, max(2, 2e7 / nd)))
                try:
                    step, floor, n, d = kernel_steps(method, nd, backend, sync, steps, args.repeats)
                    drv = math.nan if args.no_driver else driver_step(method, nd, backend, sync, steps)
                except (MemoryError, RuntimeError, ValueError) as exc:  # out of memory on the device or host
                    print(f"{method:>9} {label:>14} {dt:>7} {nd:7.0e}  skipped: {str(exc).splitlines()[0][:80]}")
                    if on_cuda:
                        torch.cuda.empty_cache()
                    continue
                share = (4 * n * d * item / step) / bw if on_cuda and bw else math.nan
                row = dict(method=method, backend=label, dtype=dt, nd=n * d, n=n, d=d, step_ms=1e3 * step,
                           floor_ms=1e3 * floor, ratio=step / floor, driver_ms=1e3 * drv, evals=n / step,
                           coords=n * d / step, share=share)
                rows.append(row)
                print(f"{method:>9} {label:>14} {dt:>7} {n * d:7.0e} {f'({n}, {d})':>13} {row['step_ms']:9.3f} "
                      f"{row['floor_ms']:9.3f} {row['ratio']:10.2f} {row['driver_ms']:9.3f} {row['evals']:9.3g} "
                      f"{row['coords']:9.3g} {share:8.1%}", flush=True)
                if on_cuda:
                    torch.cuda.empty_cache()
    if args.md:
        with open(args.md, "w") as fh:
            fh.write("| method | backend | dtype | N·d | (N, d) | step ms | floor ms | step/floor | driver ms | "
                     "evals/s | BW share |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
            for r in rows:
                fh.write(f"| {r['method']} | {r['backend']} | {r['dtype']} | {r['nd']:.0e} | ({r['n']}, {r['d']}) | "
                         f"{r['step_ms']:.3f} | {r['floor_ms']:.3f} | {r['ratio']:.2f} | {r['driver_ms']:.3f} | "
                         f"{r['evals']:.3g} | {_pct(r['share'])} |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
