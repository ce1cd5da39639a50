"""Peak memory of one training step, in copies of the parameters, for the in-place zeroth-order step
and its alternatives.

Every mode runs in a fresh process: one step on a tiny model first (so that first-use imports do not
count), then an MLP (8 layers of 2048 x 2048, 33.6M float32 parameters, 128 MiB), one warm-up forward
pass and one step; the extra peak resident memory of that step over the warm-up is reported in copies
of the parameters. On a CUDA device (``--device cuda``) the counts
come from ``torch.cuda.max_memory_allocated`` instead.

    python benchmarks/zo_memory.py [--device cuda]

Modes:
  zo-inplace   cbopt.zo.ModuleEstimator (weights perturbed in place, perturbations regenerated from
               seeds) writing .grad, then torch.optim.SGD.step()
  zo-copy      the same estimate computed on a perturbed copy of the weights (torch.func.functional_call)
  backprop     loss.backward(), then torch.optim.SGD.step()
  particles-4  four particles evaluated at once (cbopt.nn.particle_loss), the way particle methods run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

MODES = ("zo-inplace", "zo-copy", "backprop", "particles-4")


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def _build(width: int, depth: int, device: str):
    import torch

    layers = []
    for _ in range(depth):
        layers += [torch.nn.Linear(width, width), torch.nn.Tanh()]
    model = torch.nn.Sequential(*layers).to(device)
    return model, torch.randn(8, width, device=device), torch.randn(8, width, device=device)


def _step(mode: str, model, X, y) -> None:
    import torch

    import cbopt
    import cbopt.nn

    loss = lambda out: ((out - y) ** 2).mean()
    params = list(model.parameters())
    if mode == "zo-inplace":
        opt = torch.optim.SGD(params, lr=1e-3)
        est = cbopt.zo.ModuleEstimator(params, kind="gaussian", n_directions=1, rng=0)
        est.backward(lambda: loss(model(X)))
        opt.step()
    elif mode == "zo-copy":
        from torch.func import functional_call

        opt = torch.optim.SGD(params, lr=1e-3)
        names = [n for n, _ in model.named_parameters()]
        with torch.no_grad():
            z = [torch.randn_like(p) for p in params]
            plus = {n: p + 1e-3 * zi for n, p, zi in zip(names, params, z, strict=True)}
            minus = {n: p - 1e-3 * zi for n, p, zi in zip(names, params, z, strict=True)}
            d = (loss(functional_call(model, plus, (X,))) - loss(functional_call(model, minus, (X,)))) / 2e-3
            for p, zi in zip(params, z, strict=True):
                p.grad = d * zi
        opt.step()
    elif mode == "backprop":
        opt = torch.optim.SGD(params, lr=1e-3)
        loss(model(X)).backward()
        opt.step()
    elif mode == "particles-4":
        flat = cbopt.nn.FlatParams(model)
        W = flat.vector(model).expand(4, -1).clone()
        cbopt.nn.particle_loss(model, lambda out, t: ((out - t) ** 2).mean())(W, X, y)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


def child(mode: str, device: str) -> dict:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    _step(mode, *_build(16, 2, device))  # load every code path first: first-use imports are not tensors
    model, X, y = _build(2048, 8, device)
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    cuda = device.startswith("cuda")
    with torch.no_grad():
        ((model(X) - y) ** 2).mean()  # warm-up: activations, workspaces
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_peak_mb() * 2**20
    _step(mode, model, X, y)
    if cuda:
        torch.cuda.synchronize()
        extra = torch.cuda.max_memory_allocated() - base
    else:
        extra = _rss_peak_mb() * 2**20 - base
    return {"mode": mode, "param_mb": param_bytes / 2**20, "extra_mb": extra / 2**20,
            "copies": extra / param_bytes}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="peak memory of one step, in copies of the parameters")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.device)))
        return 0
    print(f"{'mode':12s} {'params (MB)':>12s} {'extra peak (MB)':>16s} {'copies of params':>17s}")
    for mode in MODES:
        # glibc's dynamic mmap threshold would keep freed 16 MB blocks on the heap and count them again:
        # a fixed threshold makes the resident peak track live tensors
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--device", args.device],
                             capture_output=True, text=True, check=True, env=env)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{mode:12s} {r['param_mb']:12.1f} {r['extra_mb']:16.1f} {r['copies']:17.2f}")
    print("zo-inplace: the .grad buffers (one copy) plus one temporary of the largest tensor "
          f"(here 1/{8} of the parameters); no copy of the model.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
