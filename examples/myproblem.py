"""Your own objective from the command line:

    cbopt run examples/myproblem.py:f --dim 5
    cbopt run examples/myproblem.py:f_batched --dim 5 --bounds=-3,3 --max-evals 20000 --json

``f`` takes one point and returns a number (the CLI wraps it with ``cbopt.vectorize``); ``f_batched`` takes
points ``X[..., d]`` and returns ``E[...]``, the fast form. Both have their minimum 0 at x = (1, 2, ..., d) / d.
"""

import numpy as np


def f(x):
    target = np.arange(1, len(x) + 1) / len(x)
    return float(np.sum((x - target) ** 2) + 0.5 * np.sum(1 - np.cos(4 * np.pi * (x - target))))


def f_batched(X):
    d = X.shape[-1]
    z = X - np.arange(1, d + 1) / d
    return (z ** 2).sum(-1) + 0.5 * (1 - np.cos(4 * np.pi * z)).sum(-1)
