"""Particles per second: one CBO training step of an MLP with about 1e5 parameters and N = 256 particles.

A step evaluates every particle (a flattened weight vector) on one mini-batch with
``cbopt.nn.particle_loss`` (``functional_call`` under ``vmap``) and moves the swarm. The anchor measured in
the same run is one backprop step (forward + backward + SGD) of the same network on the same batch, so
the printed ratio says how many particles cost as much as one gradient step.

    python benchmarks/nn_throughput.py [--device cuda] [--batch 60] [--particles 256]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import cbopt.nn
from cbopt.nn import _ParticleStepper


def _timeit(fn, repeats: int, sync) -> float:
    fn()
    sync()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync()
        best = min(best, (time.perf_counter() - t) / repeats)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=60)
    ap.add_argument("--particles", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).to(dev)
    d = sum(p.numel() for p in model.parameters())
    X = torch.rand(args.batch, 784, device=dev)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    n = args.particles
    # exactly the step cbopt.nn.train takes for method="cbo" (its defaults, N particles)
    gen = np.random.default_rng(0)
    stepper = _ParticleStepper(model, cbopt.nn.FlatParams(model), "cbo", torch.nn.functional.cross_entropy,
                               {"n_particles": n}, None, 1.0, gen, gen, None)

    def cbo_step():
        stepper.step(X, y)

    cbo_step()  # the first step evaluates the initial particles; from here on a step moves them

    def evaluate_only():
        stepper.f(stepper.run.state.x, X, y)

    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def backprop_step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        opt.step()

    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    t_cbo = _timeit(cbo_step, args.repeats, sync)
    t_eval = _timeit(evaluate_only, args.repeats, sync)
    t_bp = _timeit(backprop_step, args.repeats * 10, sync)
    print(f"device: {name}; torch {torch.__version__}; MLP 784-128-10, d = {d} parameters, batch {args.batch}")
    print(f"CBO step, N = {n}:     {t_cbo * 1e3:8.2f} ms  -> {n / t_cbo:10.0f} particles/s")
    print(f"  of which evaluation:  {t_eval * 1e3:8.2f} ms  -> {n / t_eval:10.0f} particle evaluations/s")
    print(f"backprop step (anchor): {t_bp * 1e3:8.2f} ms")
    print(f"one CBO step costs {t_cbo / t_bp:.1f} backprop steps, i.e. one particle costs {t_cbo / t_bp / n:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
