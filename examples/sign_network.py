"""Where gradients do not exist: a network of sign neurons on the digits, particles against backprop.

The 64-32-10 network of ``examples/digits.py`` with ``sign`` as its activation: every hidden unit outputs
±1, so the loss is piecewise constant in the first layer's weights and its gradient there is zero wherever
it exists. Backprop needs a surrogate: the straight-through estimator (STE) passes the gradient through
``sign`` as if it were the identity on [-1, 1] (Bengio, Léonard & Courville 2013, arXiv:1308.3432) —
a gradient of another network. Consensus hopping with Adam (``ch-adam``) only evaluates the sign network
itself: its hop is the gradient of the loss smoothed by its Gaussian samples, which exists.

Both train the same initial network on the same mini-batches for the same number of epochs; the table
gives test accuracy, forward samples and wall time (mean ± sd over seeds).

    python examples/sign_network.py                       # one seed, about 30 s on 2 CPU cores
    python examples/sign_network.py --seeds 5 --table benchmarks/results/sign_network.md

Needs ``pip install 'cbopt[nn]'`` (torch and scikit-learn).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import torch

import cbopt.nn

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from digits import digits, result_rows  # noqa: E402  (the same split and table as examples/digits.py)


class SignSTE(torch.autograd.Function):
    """``sign(x)`` forward; backward the straight-through estimate ``grad * 1{|x| <= 1}``."""

    generate_vmap_rule = True  # the particles evaluate it under torch.func.vmap

    @staticmethod
    def forward(x):
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class Sign(torch.nn.Module):
    """The activation: ±1 (the straight-through estimator is its backward, used only by backprop)."""

    def forward(self, x):
        return SignSTE.apply(x)


def sign_mlp(seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), Sign(), torch.nn.Linear(32, 10))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            bound = layer.in_features ** -0.5
            layer.weight.uniform_(-bound, bound, generator=g)
            layer.bias.uniform_(-bound, bound, generator=g)
    return model


METHODS = {  # name -> (method, keyword arguments of cbopt.nn.train)
    "CH-Adam (sign network)": ("ch-adam", {}),
    "backprop + STE (Adam)": ("backprop", dict(optimizer=lambda p: torch.optim.Adam(p, lr=1e-3))),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--table", default=None, help="write the markdown table here too")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    train, test = digits()
    summary = {name: [] for name in METHODS}
    for seed in range(args.seeds):
        for name, (method, kw) in METHODS.items():
            res = cbopt.nn.train(sign_mlp(seed), train, method=method, epochs=args.epochs, batch_size=20,
                                 test_data=test, rng=seed, progress=None, **kw)
            summary[name].append(res)
            print(f"{name} seed {seed}: test accuracy {res.test_accuracy:.3f} (epoch {res.best_epoch}), "
                  f"{res.forward_samples:.2e} forward samples, {res.time:.1f} s", file=sys.stderr)
    out = [f"# A network of sign neurons on the digits: particles vs backprop with the straight-through "
           f"estimator ({args.seeds} seed(s), mean ± sd)", "",
           f"Command: `python examples/sign_network.py --seeds {args.seeds} --epochs {args.epochs} --table ...`; "
           f"{time.strftime('%Y-%m-%d')}; torch {torch.__version__}, 1 thread per run, CPU.", "",
           "64-32-10 MLP with sign activations (hidden units are ±1), sklearn digits (1437 train / 360 test), "
           "mini-batches of 20, the same initial network per seed. The network reported is the epoch's with the "
           "lowest training loss; the test set never selects.", "",
           *result_rows(summary)]
    table = "\n".join(out) + "\n"
    print(table)
    if args.table:
        pathlib.Path(args.table).write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
