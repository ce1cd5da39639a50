"""Benchmark problems: cbopt's test functions (shifted instances) and COCO's BBOB (through ``cocoex``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._extras import load_function, require
from ..objectives import get_function


@dataclass(frozen=True)
class BenchProblem:
    """One (problem, dimension, instance): a batched and a per-point objective, the box and the optimum."""

    name: str
    dim: int
    instance: int
    batched: Callable[[Any], Any]
    point: Callable[[Any], float]
    bounds: np.ndarray  # (d, 2)
    fopt: float
    #: a noisy problem's noise-free record: ``(evaluations, min f_true - fopt)`` at its last improvement
    #: (None: a noiseless problem, scored on the values its solvers see)
    truth: Callable[[], tuple[int, float]] | None = None
    #: frees what the problem holds once its run is scored (a noisy problem's temporary logger folder)
    close: Callable[[], None] | None = None


def _user_problem(name: str, dim: int, instance: int, spec: dict[str, Any]) -> BenchProblem:
    """``module:function`` from a user's suite: ``spec`` holds the suite's ``bounds``, ``fopt`` and
    ``vectorized``; a function with an ``instance`` keyword gets the instance number."""
    import inspect

    try:
        fn = load_function(name)
    except ValueError as e:
        raise ValueError(f"problem {e}; a module must be importable where the runs execute (the suite file's "
                         "folder is on the path)") from e
    try:
        takes_instance = "instance" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_instance = False
    kw = {"instance": instance} if takes_instance else {}
    lo, hi = spec["bounds"]
    bounds = np.tile(np.array([[float(lo), float(hi)]]), (dim, 1))

    def point(x: Any) -> float:
        return float(fn(np.asarray(x, dtype=float), **kw))

    def batched(x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        flat = x.reshape(-1, x.shape[-1])
        if spec.get("vectorized", False):
            e = np.asarray(fn(flat, **kw), dtype=float).reshape(-1)
            if e.shape != (len(flat),):
                raise ValueError(f"problem {name!r} is marked vectorized: on ({len(flat)}, {dim}) points it must "
                                 f"return {len(flat)} values, got shape {np.shape(e)}")
        else:
            e = np.array([point(p) for p in flat])
        return e.reshape(x.shape[:-1])

    return BenchProblem(name, dim, instance, batched, point, bounds, float(spec.get("fopt", 0.0)))


#: the COCO suites whose problems the harness builds (``"<suite>:f<k>"``), and every built-in family
COCO_FAMILIES = ("bbob", "bbob-largescale", "bbob-noisy")
BUILTIN_FAMILIES = ("cbopt", *COCO_FAMILIES)


def make_problem(name: str, dim: int, instance: int, spec: dict[str, Any] | None = None) -> BenchProblem:
    """``"cbopt:<function>"``: the function shifted by a draw seeded with ``instance`` (minimiser within
    0.4 of the box width of the centre); ``"bbob:f<k>"``: BBOB function k, instance ``instance`` (through
    ``ioh``, whose instances are COCO's); ``"bbob-largescale:f<k>"``: function k of COCO's large-scale suite
    (through ``cocoex``; permuted block-diagonal rotations, d = 20 ... 640); ``"bbob-noisy:f<k>"``: COCO's
    noisy function k = 101 ... 130 (scored on its noise-free value, which COCO's logger records);
    ``"module:function"``: a user's
    function, with the ``bounds``, ``fopt`` and ``vectorized`` of its suite in ``spec``."""
    family, _, rest = name.partition(":")
    if family == "bbob-largescale":
        return _largescale(name, rest, dim, instance)
    if family == "bbob-noisy":
        spec = spec or {}
        return _noisy(name, rest, dim, instance, spec.get("coco"), spec.get("algorithm", "cbopt-bench"))
    if family not in BUILTIN_FAMILIES and rest:
        if spec is None or "bounds" not in spec:
            raise ValueError(f"problem {name!r}: a module:function problem needs the suite's bounds = [lo, hi]")
        return _user_problem(name, dim, instance, spec)
    if family == "cbopt":
        fn = get_function(rest)
        inst = fn.instance(dim, shift=True, rng=instance)
        return BenchProblem(name, dim, instance, inst, lambda x: float(inst(np.asarray(x, dtype=float))),
                            np.asarray(inst.bounds, dtype=float), float(inst.f_min))
    if family == "bbob":
        # IOHprofiler's BBOB: the same instances as COCO's (values, f_opt, x_opt), batched, with f_opt visible
        ioh = require("ioh", "BBOB problems (the same instances as COCO's cocoex, with f_opt visible)")
        k = int(rest.lstrip("f"))
        problem = ioh.get_problem(k, instance, dim, ioh.ProblemClass.BBOB)

        def batched(x: Any, p: Any = problem) -> np.ndarray:
            x = np.asarray(x, dtype=float)
            flat = x.reshape(-1, x.shape[-1])
            return np.asarray(p(flat), dtype=float).reshape(x.shape[:-1])

        bounds = np.stack([problem.bounds.lb, problem.bounds.ub], axis=-1).astype(float)
        def single(v: Any, p: Any = problem) -> float:
            return float(p(np.asarray(v, dtype=float)))

        return BenchProblem(name, dim, instance, batched, single, bounds, float(problem.optimum.y))
    raise ValueError(f"unknown problem {name!r}: expected 'cbopt:<function>', 'bbob:f<k>', "
                     "'bbob-largescale:f<k>' or 'module:function'")


def _point_by_point(problem: Any, keep: Any = None) -> Callable[[Any], np.ndarray]:
    """A batched objective ``X (..., d) -> (...)`` over a cocoex problem, which takes one point at a time
    (``keep``: what must stay alive while it is used, e.g. the suite and an observer)."""

    def batched(x: Any, p: Any = problem, held: Any = keep) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        flat = x.reshape(-1, x.shape[-1])
        return np.array([p(v) for v in flat], dtype=float).reshape(x.shape[:-1])

    return batched


#: the dimensions COCO's ``bbob-largescale`` suite defines
LARGESCALE_DIMS = (20, 40, 80, 160, 320, 640)


def _largescale(name: str, rest: str, dim: int, instance: int) -> BenchProblem:
    """COCO's ``bbob-largescale`` function ``rest`` (``f<k>``, k = 1 ... 24) through ``cocoex``. Its f_opt is
    BBOB's for the same (function, instance), which ``ioh`` exposes (cocoex does not)."""
    cocoex = require("cocoex", "COCO's bbob-largescale problems")
    ioh = require("ioh", "the f_opt of COCO's bbob-largescale problems")
    k = int(rest.lstrip("f")) if rest.lstrip("f").isdigit() else 0
    if not 1 <= k <= 24:
        raise ValueError(f"problem {name!r}: expected bbob-largescale:f<k> with k = 1 ... 24")
    if dim not in LARGESCALE_DIMS:
        raise ValueError(f"problem {name!r}: COCO's bbob-largescale suite has d in {LARGESCALE_DIMS}, not {dim}")
    suite = cocoex.Suite("bbob-largescale", "", f"function_indices:{k} dimensions:{dim} instance_indices:{instance}")
    problem = next(iter(suite))

    def single(v: Any, p: Any = problem, keep: Any = suite) -> float:
        return float(p(np.asarray(v, dtype=float)))

    batched = _point_by_point(problem)

    bounds = np.stack([problem.lower_bounds, problem.upper_bounds], axis=-1).astype(float)
    fopt = float(ioh.get_problem(k, instance, dim, ioh.ProblemClass.BBOB).optimum.y)
    return BenchProblem(name, dim, instance, batched, single, bounds, fopt)


def _noisy(name: str, rest: str, dim: int, instance: int, folder: str | None = None,
           algorithm: str = "cbopt-bench") -> BenchProblem:
    """COCO's ``bbob-noisy`` function ``rest`` (``f<k>``, k = 101 ... 130) through ``cocoex``, observed by COCO's
    ``bbob`` logger, whose ``.dat`` file records the best *noise-free* value so far: that is what the run is
    scored on (``truth``), as COCO scores it. The logger writes under ``folder`` (for ``cocopp``), else a
    temporary folder."""
    cocoex = require("cocoex", "COCO's bbob-noisy problems")
    k = int(rest.lstrip("f")) if rest.lstrip("f").isdigit() else 0
    if not 101 <= k <= 130:
        raise ValueError(f"problem {name!r}: expected bbob-noisy:f<k> with k = 101 ... 130")
    suite = cocoex.Suite("bbob-noisy", "", f"function_indices:{k - 100} dimensions:{dim} instance_indices:{instance}")
    problem = next(iter(suite))
    scratch = None if folder else tempfile.mkdtemp(prefix="cbopt-bbob-noisy-")
    where = os.path.join(os.path.abspath(folder) if folder else str(scratch),
                         f"f{k}-d{dim}-i{instance}-p{os.getpid()}-{id(problem):x}")
    # cocoex writes under ./exdata/<result_folder>, resolved when the first point is evaluated: a relative path
    exdata = os.path.join(os.getcwd(), "exdata")
    made = not os.path.exists(exdata)  # cocoex makes ./exdata even when it writes elsewhere
    rel = os.path.relpath(where, exdata)
    observer = cocoex.Observer("bbob", f"result_folder: {rel} algorithm_name: {algorithm}")
    problem.observe_with(observer)
    dat = os.path.join(where, f"data_f{k}", f"bbobexp_f{k}_DIM{dim}.dat")

    def truth(path: str = dat) -> tuple[int, float]:
        """The last line of the ``.dat`` file: evaluations, g-evaluations, best noise-free f - fopt, ..."""
        try:
            with open(path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 4096))
                lines = [ln for ln in fh.read().splitlines() if ln and not ln.startswith(b"%")]
        except FileNotFoundError:
            return 0, float("inf")
        if not lines:
            return 0, float("inf")
        cols = lines[-1].split()
        return int(cols[0]), float(cols[2])

    def single(v: Any, p: Any = problem, keep: Any = (suite, observer)) -> float:
        return float(p(np.asarray(v, dtype=float)))

    batched = _point_by_point(problem, keep=(suite, observer))

    def close(p: Any = problem) -> None:
        """Close COCO's files and, when they went to a temporary folder, remove it (the score is taken)."""
        p.free()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        if made:
            with contextlib.suppress(OSError):  # only if still empty: nothing of anyone else's is removed
                os.rmdir(exdata)

    bounds = np.stack([problem.lower_bounds, problem.upper_bounds], axis=-1).astype(float)
    return BenchProblem(name, dim, instance, batched, single, bounds, 0.0, truth, close)
