"""Per-point objectives that misbehave, importable by process-pool workers (test helpers, not tests)."""

import os
import time

import numpy as np


def killer(x):
    """Kills its own worker process on some points."""
    if x[0] > 2.5:
        os._exit(3)
    return float(np.sum(x**2))


def hang(x):
    """Never returns on some points."""
    if x[0] > 2.8:
        time.sleep(600)
    return float(np.sum(x**2))


def square(x):
    return float(np.sum(x**2))


def all_nan(x):
    """Non-finite everywhere: a run ends with fun = inf."""
    return float("nan")


def exits(x):
    """Calls sys.exit on some points (a script's habit, inside a worker)."""
    import sys

    if x[0] > 2.0:
        sys.exit(3)
    return float(np.sum(x**2))


def slow_or_hung(x):
    """Takes 20 ms, and never returns on some points (x[0] > 4.6)."""
    time.sleep(600 if x[0] > 4.6 else 0.02)
    return float(np.sum(x**2))
