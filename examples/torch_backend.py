"""The same CBO on numpy, on torch (CPU) and, when there is one, on a CUDA GPU.

    python examples/torch_backend.py          # needs torch: pip install 'cbopt[torch]'
"""

import time

import numpy as np
import torch

import cbopt
from cbopt.objectives import rastrigin, sphere

d = 30
f = rastrigin.instance(d, shift=True, rng=1)  # test functions run on numpy arrays and tensors alike
runs = [("numpy float64", {}), ("torch cpu float64", {"backend": "cpu"}),
        ("torch cpu float32", {"backend": cbopt.Torch("cpu", dtype="float32")})]
if torch.cuda.is_available():
    runs.append(("torch cuda float32", {"backend": cbopt.Torch("cuda", dtype="float32")}))

for label, kw in runs:
    t0 = time.perf_counter()
    res = cbopt.minimize(f, bounds=f.bounds, rng=0, max_evals=300_000, method="cbo", options={"n_particles": 100},
                         **kw)
    x = res.x if isinstance(res.x, np.ndarray) else res.x.cpu().numpy()  # torch runs return tensors
    print(f"{label:>20}: f - f_min = {res.fun - f.f_min:9.2e}, max |x - x*| = {np.abs(x - f.x_min).max():.1e}, "
          f"{res.nfev} evaluations, {time.perf_counter() - t0:.1f} s, x is a {type(res.x).__name__}")


# An objective written in torch: batched over the leading axes, evaluated where the swarm lives.
def bumpy(X):
    return (X - 1).pow(2).sum(-1) + 0.5 * torch.sin(4 * X).abs().sum(-1)


res = cbopt.minimize(bumpy, bounds=torch.tensor([[-4.0, 4.0]] * 5), rng=0)  # float32 tensor bounds: float32 run
print("torch objective:", res.x, res.fun)

# A numpy-only objective in a torch run: wrapped explicitly, one host round trip per step.
res = cbopt.minimize(cbopt.on_host(lambda X: np.abs(X - 0.5).sum(-1)), x0=np.zeros(4), backend=cbopt.Torch("cpu"),
                     rng=0)
print("numpy objective on a torch run:", res.x, res.fun)

# Large swarms: the time of one CBO step at N d = 1e6 on numpy, on torch, and on torch with compile=True,
# which fuses the move and the fold at the box into one loop (the first call compiles, 5-20 s). On a CPU with
# few cores export OMP_WAIT_POLICY=PASSIVE first (docs/backends.md).
big = sphere.instance(500, shift=True, rng=1)  # one pass over the swarm: the step's own cost shows
for label, backend in [("numpy", "numpy"), ("torch", cbopt.Torch("cpu")),
                       ("torch compiled", cbopt.Torch("cpu", compile=True))]:
    kw = dict(bounds=big.bounds, method="cbo", options={"n_particles": 2000}, rng=0, backend=backend, restarts=None)
    short = cbopt.Stop(max_iter=3, xtol=None, ftol=None, divergence=None)
    cbopt.minimize(big, stop=short, **kw)  # warm-up (and compilation)
    t0 = time.perf_counter()
    cbopt.minimize(big, stop=short, **kw)
    t1 = time.perf_counter()
    cbopt.minimize(big, stop=cbopt.Stop(max_iter=23, xtol=None, ftol=None, divergence=None), **kw)
    step = (time.perf_counter() - t1 - (t1 - t0)) / 20
    print(f"{label:>15}: {1e3 * step:6.1f} ms per step of 2000 x 500")
