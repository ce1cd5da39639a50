"""Sweeps: suites from ``suites.toml``, every (solver, problem, dim, instance, seed) run in parallel worker
processes, each completed run stored at once by the parent (the only writer)."""

from __future__ import annotations

import concurrent.futures as cf
import importlib.resources
import os
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .problems import make_problem
from .solvers import applicable, missing, solve
from .store import Key, Store


def load_suites() -> dict[str, dict[str, Any]]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from .._extras import require

        tomllib = require("tomli", "reading the benchmark suites on Python 3.10")
    text = importlib.resources.files("cbopt.bench").joinpath("suites.toml").read_text()
    return tomllib.loads(text)


def budget_of(spec: Any, dim: int) -> int:
    if isinstance(spec, (int, float)):
        return int(spec)
    k, _, per = str(spec).partition("*")
    if per != "d":
        raise ValueError(f"budget: expected a number or '<k>*d', got {spec!r}")
    return int(float(k) * dim)


def tasks(suite: str, cfg: dict[str, Any]) -> list[tuple[Key, float]]:
    out = []
    for solver in cfg["solvers"]:
        for problem in cfg["problems"]:
            for dim in cfg["dims"]:
                for instance in cfg["instances"]:
                    for seed in cfg["seeds"]:
                        out.append((Key(suite, solver, problem, dim, instance, seed, budget_of(cfg["budget"], dim)),
                                    float(cfg["target"])))
    return out


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in ("cbopt", "numpy", "scipy", "cma", "cbx", "torch", "coco-experiment"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _coco_mirror(key: Key, folder: str) -> tuple[Any, Any]:
    """A cocoex problem with an Observer writing COCO's .info/.dat files (for ``cocopp``) for this run."""
    from .._extras import require

    cocoex = require("cocoex", "COCO-format output (--coco)")
    k = int(key.problem.split(":f")[-1])
    suite = cocoex.Suite("bbob", "", f"function_indices:{k} dimensions:{key.dim} instance_indices:{key.instance}")
    problem = next(iter(suite))
    name = key.solver.replace(":", "-")
    # cocoex writes under ./exdata/<result_folder>: work from DIR (runs execute in worker processes)
    os.makedirs(folder, exist_ok=True)
    os.chdir(folder)
    observer = cocoex.Observer("bbob", f"result_folder: {name}/f{k}-d{key.dim}-i{key.instance}-s{key.seed} "
                                       f"algorithm_name: {name}")
    problem.observe_with(observer)
    return problem, observer  # keep the observer referenced while the problem is used


def run_one(key: Key, target: float, coco: str | None = None) -> dict[str, Any]:
    """Run one task (in a worker process); returns the row to store."""
    problem = make_problem(key.problem, key.dim, key.instance)
    mirror = keep = None
    if coco and key.problem.startswith("bbob:"):
        mirror, keep = _coco_mirror(key, os.path.abspath(coco))
    t0 = time.perf_counter()
    rec = solve(key.solver, problem, key.budget, target, key.seed, mirror)
    if mirror is not None:
        mirror.free()
        del keep
    hit = next((n for n, f in rec.trace if f - problem.fopt <= target), None)
    return {"target": target, "fopt": problem.fopt, "best": rec.best, "nfev": rec.n, "evals_to_target": hit,
            "trace": rec.trace, "wall": time.perf_counter() - t0, "versions": _versions()}


def run_suite(name: str, db: str, jobs: int = 1, log: Any = print, dims: list[int] | None = None,
              solvers: list[str] | None = None, coco: str | None = None) -> dict[str, int]:
    """Run suite ``name`` into the store ``db``, skipping completed runs; ``dims``/``solvers`` restrict it."""
    suites = load_suites()
    if name not in suites:
        raise ValueError(f"unknown suite {name!r}; available: {sorted(suites)}")
    cfg = dict(suites[name])
    if dims:
        cfg["dims"] = [d for d in cfg["dims"] if d in dims] or dims
    if solvers:
        cfg["solvers"] = solvers
    store = Store(db)
    todo, skipped = [], {}
    done = store.done(name)
    for key, target in tasks(name, cfg):
        why = missing(key.solver)
        if why is not None:
            skipped[key.solver] = why
        elif not applicable(key.solver, key.problem):
            skipped[f"{key.solver}/{key.problem}"] = f"{key.solver} needs a differentiable problem: not {key.problem}"
        elif key not in done:
            todo.append((key, target))
    for why in skipped.values():
        log(f"skipped: {why}")
    total = len(todo)
    log(f"suite {name}: {total} runs to do, {len(done)} already stored in {db}")
    finished = 0
    t0 = time.perf_counter()
    bar = None
    if log is print and sys.stderr.isatty() and total:
        try:  # a progress bar when tqdm is installed and someone watches
            from tqdm import tqdm

            bar = tqdm(total=total, unit="run", desc=name)
        except ImportError:
            bar = None
    try:
        with cf.ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(run_one, key, target, coco): key for key, target in todo}
            for fut in cf.as_completed(futures):
                key = futures[fut]
                store.add(key, **fut.result())
                finished += 1
                if bar is not None:
                    bar.set_postfix_str(f"{key.solver} {key.problem} d={key.dim}", refresh=False)
                    bar.update()
                elif finished == total or finished % max(1, total // 10) == 0:
                    log(f"[{finished}/{total}] {time.perf_counter() - t0:6.1f}s  last: {key.solver} {key.problem} "
                        f"d={key.dim} instance {key.instance}")
    finally:
        if bar is not None:
            bar.close()
        store.close()
    return {"done": finished, "skipped_solvers": len(skipped), "already": len(done)}
