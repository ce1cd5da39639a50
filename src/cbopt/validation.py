"""The one home of argument checks: every option, policy field and argument is validated by these helpers,
so that every message has the same form (``name: must be ..., got value``) and numpy scalars count as the
numbers they hold.

>>> from cbopt.validation import number
>>> number("dt", 0.01, above=0)
0.01
>>> number("n_particles", 1, at_least=2, integer=True)
Traceback (most recent call last):
...
ValueError: n_particles: must be an integer >= 2, got 1
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ._names import SCIPY_ARGS, scipy_hint


def number(name: str, v: Any, *, above: float | None = None, at_least: float | None = None,
           at_most: float | None = None, below: float | None = None, integer: bool = False, finite: bool = True,
           none: bool = False) -> Any:
    """``v`` as a Python number after checking it: a real number (not a bool), an integer if ``integer``,
    finite if ``finite``, and within the given bounds; ``None`` passes when ``none``. ValueError otherwise."""
    if v is None and none:
        return None
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(v, bool) or not isinstance(v, kinds) or math.isnan(v) or (finite and not math.isfinite(v)) or (
            integer and int(v) != v) or (above is not None and not v > above) or (
            at_least is not None and not v >= at_least) or (at_most is not None and not v <= at_most) or (
            below is not None and not v < below):
        raise ValueError(f"{name}: must be {_describe(above, at_least, at_most, below, integer, finite, none)}, "
                         f"got {v!r}")
    return int(v) if integer else float(v)


def _describe(above: Any, at_least: Any, at_most: Any, below: Any, integer: bool, finite: bool, none: bool) -> str:
    what = "an integer" if integer else "a finite number" if finite else "a number"
    cond = [f"> {above:g}" if above is not None else "", f">= {at_least:g}" if at_least is not None else "",
            f"<= {at_most:g}" if at_most is not None else "", f"< {below:g}" if below is not None else ""]
    said = " and ".join(c for c in cond if c)
    return ("None or " if none else "") + what + (f" {said}" if said else "")


def flag(name: str, v: Any) -> bool:
    """``v`` must be True or False (not a truthy stand-in); TypeError otherwise."""
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {v!r}")
    return bool(v)


def choice(name: str, v: Any, options: tuple[Any, ...] | list[Any]) -> Any:
    """``v`` must be one of ``options``; ValueError naming them otherwise."""
    if v not in options:
        shown = " or ".join(repr(o) for o in options)
        raise ValueError(f"{name}: expected {shown}, got {v!r}")
    return v


def writable_file(name: str, path: Any) -> None:
    """Before a run: ``path`` can be written when it ends (its folder exists and is writable, and it is not a
    folder or another non-file), so a result is never lost to an unwritable path after the work is done."""
    import os

    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise ValueError(f"{name}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{name}: the folder {folder!r} is not writable")
    if os.path.exists(path) and not os.path.isfile(path):
        raise ValueError(f"{name}: {os.fspath(path)!r} exists and is not a regular file")


def memory_limit() -> int | None:
    """Bytes this process can allocate at most: the physical memory, or an address-space limit (``ulimit -v``)
    when that is smaller; None where the platform does not say (numpy's MemoryError then speaks)."""
    import os

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY and soft > 0:
            total = min(total, soft)
    except (ImportError, ValueError, OSError):
        pass
    return int(total)


def fits_in_memory(nbytes: float, what: str, detail: str = "") -> None:
    """Refuse, before allocating, work that needs more than :func:`memory_limit`: ``"{what} needs at least
    … GiB{detail}; this machine has … GiB"`` (the one message every front door gives)."""
    total = memory_limit()
    if total is not None and nbytes > total:
        raise ValueError(f"{what} needs at least {nbytes / 2**30:.3g} GiB{detail}; this machine has "
                         f"{total / 2**30:.3g} GiB")


def build_options(params: type, options: Any, owner: str) -> Any:
    """``options=`` of a front door or method as its typed ``params``: a dict (or None) whose keys are the
    dataclass's fields, or an instance of it. An unknown key, or one of scipy's names, is a TypeError that lists
    the valid options; numpy scalars become the Python numbers they hold (checks and JSON headers see those)."""
    if isinstance(options, params):
        return options
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options: expected a dict of {owner}'s options, got {type(options).__name__}")
    options = dict(options or {})
    names = sorted(f.name for f in dataclasses.fields(params))
    unknown = sorted(set(options) - set(names), key=str)
    named = [k for k in unknown if isinstance(k, str) and scipy_hint(k) and k != "popsize"]  # popsize: listed below
    if named:
        raise TypeError("options: " + "; ".join(
            f"{k!r} is scipy's option; cbopt takes {scipy_hint(k)} as an argument of minimize" if k in SCIPY_ARGS
            else f"{k!r} is scipy's option; cbopt's is {scipy_hint(k)}" for k in named)
            + f" (the options of {owner}: {names})")
    if unknown:
        raise TypeError(f"options: unknown option(s) {unknown} for {owner}; valid options: {names}")
    return params(**{k: v.item() if isinstance(v, np.generic) else v for k, v in options.items()})
