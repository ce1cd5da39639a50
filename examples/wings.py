"""minimax and multiobjective on the driver's loop: ask/tell, checkpoints and evaluators, as minimize has them.

    python examples/wings.py
"""

import pathlib
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import cbopt


def game(x, y):
    """A convex-concave game with its saddle point at (0, 0)."""
    return (x * x).sum(-1) + (x * y).sum(-1) - (y * y).sum(-1)


def two_objectives(x):
    """One point's two objectives (a ZDT1 front), as a per-point simulator would return them."""
    g = 1 + 9 * x[1:].mean()
    return np.array([x[0], g * (1 - np.sqrt(x[0] / g))])


# ask/tell: evaluate the pairs wherever you like; save mid-run and load into a fresh optimizer
with tempfile.TemporaryDirectory() as tmp:
    path = pathlib.Path(tmp) / "game.npz"
    opt = cbopt.MinimaxOptimizer([(-2, 2)] * 3, [(-2, 2)] * 3, rng=0, max_evals=40_000)
    for _ in range(20):
        X, Y = opt.ask()
        opt.tell((X, Y), game(X, Y))
    opt.save(path)
    opt = cbopt.MinimaxOptimizer([(-2, 2)] * 3, [(-2, 2)] * 3, rng=0, max_evals=40_000).load(path)
    while not opt.stop():
        X, Y = opt.ask()
        opt.tell((X, Y), game(X, Y))
    res = opt.result()
    print(f"minimax by ask/tell: {res.reason}, |x| + |y| = {np.abs(res.x).sum() + np.abs(res.y).sum():.1e}, "
          f"{res.nfev} evaluations")

    # a per-point objective on a pool of workers, with a checkpoint every 10 steps (resume=True continues it)
    with ThreadPoolExecutor(2) as pool:
        front = cbopt.multiobjective(two_objectives, [(0, 1)] * 5, rng=0, max_evals=5_000, evaluator=pool,
                                     checkpoint=cbopt.Checkpoint(pathlib.Path(tmp) / "front.npz", every=10))
    print(f"multiobjective on a pool: {len(front.x)} non-dominated points after {front.nfev} evaluations, "
          f"f1 from {front.F[:, 0].min():.2f} to {front.F[:, 0].max():.2f}")
