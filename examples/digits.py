"""Gradient-free training of a small MLP on scikit-learn's bundled digits (no download).

CH-Adam (consensus hopping with Adam on the hop: particles around the network, the move towards their
softmax(-alpha f) consensus taken by Adam), CBO (a swarm of networks), ZO-SGD (two-point Gaussian
estimates, weights perturbed in place) and the two gradient baselines SGD and Adam train the same 64-32-10
network on the same split and mini-batches of 20. Every epoch is logged (CSV); a summary compares test
accuracy against forward evaluations and wall time.

    python examples/digits.py                          # one seed, under 2 minutes on 2 CPU cores
    python examples/digits.py --seeds 5 --csv benchmarks/results/digits.csv \
        --table benchmarks/results/digits.md            # the published table (about 9 minutes)

Needs ``pip install 'cbopt[nn]'`` (torch and scikit-learn).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time

import numpy as np
import torch

import cbopt.nn

METHODS = {  # name -> (method, keyword arguments of cbopt.nn.train)
    "CH-Adam": ("ch-adam", {}),
    "CBO": ("cbo", {}),
    "ZO-SGD": ("zo-gaussian", dict(options={"n_directions": 10},
                                   optimizer=lambda p: torch.optim.SGD(p, lr=0.02))),
    "SGD": ("backprop", dict(optimizer=lambda p: torch.optim.SGD(p, lr=0.1))),
    "Adam": ("backprop", dict(optimizer=lambda p: torch.optim.Adam(p, lr=1e-3))),
}
FORWARD_BUDGETS = (1e5, 1e6, 1e7)
TIME_BUDGETS = (2.0, 10.0, 30.0)


def digits(seed: int = 0):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(seed).permutation(len(X))
    X = torch.tensor(X[perm] / 16.0, dtype=torch.float32)
    y = torch.tensor(y[perm])
    n = int(0.8 * len(X))
    return (X[:n], y[:n]), (X[n:], y[n:])


def mlp(seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    with torch.no_grad():  # PyTorch's default initialisation, drawn from a seeded generator
        for layer in (model[0], model[2]):
            bound = layer.in_features ** -0.5
            layer.weight.uniform_(-bound, bound, generator=g)
            layer.bias.uniform_(-bound, bound, generator=g)
    return model


def run(name: str, seed: int, epochs: int, train, test, no_kick: bool = False) -> dict:
    method, kw = METHODS[name]
    if no_kick and method == "cbo":  # CBO without its Brownian kick: the swarm collapses (docs/nn.md)
        kw = dict(kw, options={"kick": None})
    res = cbopt.nn.train(mlp(seed), train, method=method, epochs=epochs, batch_size=20, test_data=test,
                         rng=seed, progress=None, **kw)
    return res


def at_budget(h: dict, key: str, budget: float) -> float:
    """Test accuracy of the last epoch that ended within ``budget`` (NaN if none did)."""
    ok = [a for a, v in zip(h["test_accuracy"], h[key], strict=True) if v <= budget]
    return ok[-1] if ok else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--csv", default="digits.csv", help="per-epoch log")
    ap.add_argument("--table", default=None, help="write the markdown summary here too")
    ap.add_argument("--no-kick", action="store_true", help="CBO without the kick (to see the swarm collapse)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # one core per run: comparable wall times
    train, test = digits()
    known = {k.lower(): k for k in METHODS}  # names in any case; an unknown one is one line, not a traceback
    names = []
    for n in args.methods.split(","):
        if n.strip().lower() not in known:
            ap.error(f"unknown method {n.strip()!r}; choose from {', '.join(METHODS)}")
        names.append(known[n.strip().lower()])
    rows, summary = [], {n: [] for n in names}
    for seed in range(args.seeds):
        for name in names:
            res = run(name, seed, args.epochs, train, test, args.no_kick)
            h = res.history
            for i in range(len(h["epoch"])):
                rows.append(dict(method=name, seed=seed, epoch=h["epoch"][i], train_loss=h["loss"][i],
                                 train_accuracy=h["accuracy"][i], test_loss=h["test_loss"][i],
                                 test_accuracy=h["test_accuracy"][i], forward_samples=h["forward_samples"][i],
                                 time=h["time"][i]))
            summary[name].append(res)
            print(f"{name:7s} seed {seed}: test accuracy {res.test_accuracy:.3f} (epoch {res.best_epoch}), "
                  f"{res.forward_samples:.2e} forward samples, {res.time:.1f} s", file=sys.stderr)
    with open(args.csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    table = render(summary, args, logistic_regression(train, test))
    print(table)
    if args.table:
        with open(args.table, "w") as fh:
            fh.write(table)
    return 0


def _ms(v) -> str:
    v = np.asarray(v, dtype=float)
    if np.isnan(v).all():
        return "—"
    return f"{np.nanmean(v):.3f} ± {np.nanstd(v, ddof=1) if np.sum(~np.isnan(v)) > 1 else 0:.3f}"


def logistic_regression(train, test) -> float:
    """Test accuracy of a (convex, deterministic) multinomial logistic regression on the same split: the bar a
    trained network should clear."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=5000).fit(train[0].numpy(), train[1].numpy())
    return float(clf.score(test[0].numpy(), test[1].numpy()))


def result_rows(summary: dict) -> list[str]:
    """The markdown table of the results, one row per method (mean ± sd over seeds)."""
    out = ["| method | test accuracy | train accuracy | forward samples | backward samples | wall time (s) |",
           "|---|---|---|---|---|---|"]
    for name, runs in summary.items():
        out.append(f"| {name} | {_ms([r.test_accuracy for r in runs])} | {_ms([r.accuracy for r in runs])} | "
                   f"{np.mean([r.forward_samples for r in runs]):.2e} | "
                   f"{np.mean([r.backward_samples for r in runs]):.2e} | {_ms([r.time for r in runs])} |")
    return out


def render(summary: dict, args, logreg: float) -> str:
    seeds = args.seeds
    out = [f"# Digits: gradient-free vs gradient training of a 64-32-10 MLP ({seeds} seeds, mean ± sd)", "",
           f"Command: `python examples/digits.py --seeds {seeds} --epochs {args.epochs} --methods {args.methods}"
           f"{' --no-kick' if args.no_kick else ''} --csv ... --table ...`; "
           f"{time.strftime('%Y-%m-%d')}; torch {torch.__version__}, 1 thread per run, CPU.", "",
           "sklearn digits, 1437 train / 360 test, mini-batches of 20, the same initial network per seed "
           "(CH-Adam, ZO-SGD, SGD, Adam; CBO starts from N(0, 1) particles). The network reported is the epoch with "
           "the lowest training loss (the test set never selects). Forward samples: examples pushed through "
           "a network by the training steps (one per particle or perturbation per example); backprop adds "
           "as many backward passes.", "",
           *result_rows(summary)]
    out += ["", f"Logistic regression (scikit-learn, the same split): test accuracy {logreg:.3f}.", "",
            "Test accuracy at a budget (the last epoch that ended within it):", "",
            "| method | " + " | ".join(f"≤ {b:.0e} forward" for b in FORWARD_BUDGETS) + " | "
            + " | ".join(f"≤ {b:g} s" for b in TIME_BUDGETS) + " |",
            "|---|" + "---|" * (len(FORWARD_BUDGETS) + len(TIME_BUDGETS))]
    for name, runs in summary.items():
        cells = [_ms([at_budget(r.history, "forward_samples", b) for r in runs]) for b in FORWARD_BUDGETS]
        cells += [_ms([at_budget(r.history, "time", b) for r in runs]) for b in TIME_BUDGETS]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
