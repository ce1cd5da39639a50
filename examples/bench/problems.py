"""Objectives for the user suite in ``suite.toml`` (``cbopt bench run --suite examples/bench/suite.toml``).

A problem is any importable ``module:function``. Per point (``f(x) -> float``) by default; with
``vectorized = true`` in the suite, ``f`` takes an ``(n, d)`` array and returns ``n`` values. A function with
an ``instance`` keyword gets the instance number, so each instance can be a different problem.
"""

import numpy as np


def rotated_ellipsoid(x, instance=1):
    """A rotated ellipsoid with condition number 1e6, its rotation and shift drawn from the instance."""
    d = x.shape[-1]
    rng = np.random.default_rng(instance)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    z = q @ (x - rng.uniform(-2, 2, d))
    return float(np.sum(10.0 ** (6 * np.arange(d) / max(1, d - 1)) * z**2))


def styblinski_tang(x):
    """Styblinski-Tang: minimum -39.16617 d at x_i = -2.903534, raised here to 0. One point (d,) or a batch
    (n, d) alike, so the suite may mark it vectorized."""
    return 0.5 * np.sum(x**4 - 16 * x**2 + 5 * x, axis=-1) + 39.16616570377142 * x.shape[-1]
