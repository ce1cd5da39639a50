"""Sweeps: suites from ``suites.toml`` or a user's TOML file, every (solver, problem, dim, instance, seed) run
in parallel worker processes or on a Dask cluster, each completed run stored at once by the parent (the only
writer)."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import importlib.resources
import json
import os
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ..evaluators import exit_with_parent
from .problems import BUILTIN_FAMILIES, COCO_FAMILIES, make_problem
from .solvers import applicable, missing, solve
from .store import Key, Store


def _toml() -> Any:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from .._extras import require

        tomllib = require("tomli", "reading the benchmark suites on Python 3.10")
    return tomllib


def load_suites(path: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """The built-in suites, or those of the TOML file ``path``."""
    tomllib = _toml()
    if path is None:
        return tomllib.loads(importlib.resources.files("cbopt.bench").joinpath("suites.toml").read_text())
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as e:
        raise ValueError(f"suite file {str(path)!r}: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"suite file {str(path)!r} is not valid TOML: {e}") from e


_REQUIRED = ("problems", "dims", "instances", "seeds", "budget", "target", "solvers")


def resolve_suite(name: str) -> tuple[str, dict[str, Any], str | None]:
    """``(suite name, its table, folder of its file)`` for a built-in name, ``FILE.toml`` (a file with one
    suite) or ``FILE.toml:NAME``; the table is checked, so a typo fails before any run starts."""
    path, sep, table = name.rpartition(":")
    if not (sep and path.endswith(".toml")):
        path, table = (name, "") if name.endswith(".toml") else ("", name)
    suites = load_suites(path or None)
    where = f"suite file {path!r}" if path else "the built-in suites"
    if path and not table:
        if len(suites) != 1:
            raise ValueError(f"{where} holds {len(suites)} suites {sorted(suites)}: name one, as {path}:NAME")
        table = next(iter(suites))
    if table not in suites:
        raise ValueError(f"unknown suite {table!r} in {where}; available: {sorted(suites)}")
    cfg = dict(suites[table])
    absent = [k for k in _REQUIRED if k not in cfg]
    if path and absent == ["instances"]:
        cfg["instances"], absent = [1], []
    if absent:
        raise ValueError(f"suite {table!r} ({where}) lacks {absent}; a suite gives {list(_REQUIRED)}")
    for k in ("problems", "dims", "instances", "seeds", "solvers"):
        if not isinstance(cfg[k], list) or not cfg[k]:
            raise ValueError(f"suite {table!r}: {k} must be a non-empty list, got {cfg[k]!r}")
    if any(p.partition(":")[0] not in BUILTIN_FAMILIES for p in cfg["problems"]):
        b = cfg.get("bounds")
        if not (isinstance(b, list) and len(b) == 2 and all(isinstance(v, (int, float)) for v in b) and b[0] < b[1]):
            raise ValueError(f"suite {table!r}: module:function problems need bounds = [lo, hi] with lo < hi, "
                             f"got {b!r}")
    return table, cfg, os.path.dirname(os.path.abspath(path)) if path else None


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
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def _coco_mirror(key: Key, folder: str) -> tuple[Any, Any]:
    """A cocoex problem with an Observer writing COCO's .info/.dat files (for ``cocopp``) for this run."""
    from .._extras import require

    cocoex = require("cocoex", "COCO-format output (--coco)")
    family, _, fk = key.problem.partition(":")
    k = int(fk.lstrip("f"))
    suite = cocoex.Suite(family, "", f"function_indices:{k} dimensions:{key.dim} instance_indices:{key.instance}")
    problem = next(iter(suite))
    name = key.solver.replace(":", "-")
    # cocoex writes under ./exdata/<result_folder>: work from DIR (runs execute in worker processes)
    os.makedirs(folder, exist_ok=True)
    os.chdir(folder)
    observer = cocoex.Observer("bbob", f"result_folder: {name}/f{k}-d{key.dim}-i{key.instance}-s{key.seed} "
                                       f"algorithm_name: {name}")
    problem.observe_with(observer)
    return problem, observer  # keep the observer referenced while the problem is used


def run_one(key: Key, target: float, coco: str | None = None, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one task (in a worker process); returns the row to store. ``spec``: the suite's ``bounds``,
    ``fopt``, ``vectorized`` and the folder of its file, for ``module:function`` problems."""
    if spec and spec.get("folder") and spec["folder"] not in sys.path:
        sys.path.insert(0, spec["folder"])
    family = key.problem.partition(":")[0]
    if family == "bbob-noisy":  # observed by COCO's logger itself: its .dat records the noise-free values
        name = key.solver.replace(":", "-")
        spec = {"algorithm": name, "coco": os.path.join(os.path.abspath(coco), name) if coco else None}
    problem = make_problem(key.problem, key.dim, key.instance, spec)
    mirror = keep = None
    if coco and family in COCO_FAMILIES and family != "bbob-noisy":
        mirror, keep = _coco_mirror(key, os.path.abspath(coco))
    t0 = time.perf_counter()
    rec = solve(key.solver, problem, key.budget, target, key.seed, mirror)
    if mirror is not None:
        mirror.free()
        del keep
    best, trace = rec.scored
    if problem.close is not None:
        problem.close()
    hit = next((n for n, f in trace if f - problem.fopt <= target), None)
    return {"target": target, "fopt": problem.fopt, "best": best, "nfev": rec.n, "evals_to_target": hit,
            "trace": trace, "wall": time.perf_counter() - t0, "versions": _versions()}


def definition(cfg: dict[str, Any], folder: str | None) -> str:
    """A digest of what a suite's stored runs depend on beyond their key: the target, the bounds, f_opt and
    vectorized settings of user problems, and the source of the modules those problems come from."""
    import hashlib
    import importlib.util

    h = hashlib.sha256(json.dumps({k: cfg.get(k) for k in ("target", "bounds", "fopt", "vectorized")},
                                  sort_keys=True, default=str).encode())
    for problem in sorted(cfg["problems"]):
        module, _, fn = problem.rpartition(":")
        if module in BUILTIN_FAMILIES or not module:
            continue
        path = module if module.endswith(".py") else None
        if path is None:
            added = folder if folder is not None and folder not in sys.path else None
            if added is not None:
                sys.path.insert(0, added)
            try:
                spec = importlib.util.find_spec(module)
            except (ImportError, ValueError):
                spec = None
            finally:
                if added is not None:
                    sys.path.remove(added)
            path = spec.origin if spec is not None else None
        elif folder is not None and not os.path.isabs(path):
            path = os.path.join(folder, path)
        if path and os.path.isfile(path):
            with open(path, "rb") as fh:
                h.update(problem.encode() + fh.read())
    return h.hexdigest()[:16]


def _same_definition(store: Store, name: str, digest: str, db: str) -> None:
    """Refuse to add to, or skip on the strength of, runs of suite ``name`` made from another definition."""
    seen = {(json.loads(v) or {}).get("suite definition") for (v,) in
            store.db.execute("SELECT DISTINCT versions FROM runs WHERE suite=?", (name,))}
    seen.discard(None)  # runs stored before definitions were recorded
    if seen - {digest}:
        raise ValueError(f"{db} holds runs of suite {name!r} made from another definition of it (its target, "
                         "bounds or problem code changed): they would be skipped as done and reported as if "
                         "current; use another --db, or a new suite name")


def run_suite(name: str, db: str, jobs: int = 1, log: Any = print, dims: list[int] | None = None,
              solvers: list[str] | None = None, coco: str | None = None,
              scheduler: str | None = None) -> dict[str, int]:
    """Run suite ``name`` (built-in, ``FILE.toml`` or ``FILE.toml:NAME``) into the store ``db``, skipping
    completed runs; ``dims``/``solvers`` replace the suite's. The runs execute on ``jobs`` worker processes, or on the
    Dask cluster at ``scheduler`` (its workers must import cbopt and the suite's modules). A run that raises is
    reported and left out of the store, so the next call retries it; the others go on."""
    name, cfg, folder = resolve_suite(name)
    if dims:  # the dimensions asked for, in the suite or not (as solvers=)
        cfg["dims"] = list(dims)
    if solvers:
        cfg["solvers"] = solvers
    spec: dict[str, Any] = {k: cfg[k] for k in ("bounds", "fopt", "vectorized") if k in cfg}
    spec["folder"] = folder
    store = Store(db)
    digest = definition(cfg, folder)
    try:
        _same_definition(store, name, digest, db)
    except ValueError:
        store.close()
        raise
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
    log(f"suite {name}: {total} runs to do, {len(done)} already stored in {db}"
        + (f", on the cluster at {scheduler}" if scheduler else ""))
    finished = failed = 0
    t0 = time.perf_counter()
    bar = None
    if log is print and sys.stderr.isatty() and total:
        try:  # a progress bar when tqdm is installed and someone watches
            from tqdm import tqdm

            bar = tqdm(total=total, unit="run", desc=name)
        except ImportError:
            bar = None

    def stored(key: Key, fut: Any) -> None:
        nonlocal finished, failed
        try:
            row = fut.result()
        except Exception as e:  # one bad run does not end the sweep: it is not stored, a rerun retries it
            failed += 1
            log(f"failed: {key.solver} {key.problem} d={key.dim} instance {key.instance} seed {key.seed}: "
                f"{type(e).__name__}: {e}")
            return
        row["versions"] = {**row["versions"], "suite definition": digest}
        store.add(key, **row)
        finished += 1
        if bar is not None:
            bar.set_postfix_str(f"{key.solver} {key.problem} d={key.dim}", refresh=False)
            bar.update()
        elif finished == total or finished % max(1, total // 10) == 0:
            log(f"[{finished}/{total}] {time.perf_counter() - t0:6.1f}s  last: {key.solver} {key.problem} "
                f"d={key.dim} instance {key.instance}")

    try:
        if scheduler:
            from .._extras import require

            distributed = require("distributed", "cbopt bench run --scheduler (pip install 'cbopt[dist]')")
            with distributed.Client(scheduler, timeout=30) as client:
                futures = {client.submit(run_one, key, target, coco, spec, pure=False): key for key, target in todo}
                for fut in distributed.as_completed(futures):
                    stored(futures[fut], fut)
        else:
            with cf.ProcessPoolExecutor(max_workers=max(1, jobs), initializer=exit_with_parent,
                                        initargs=(os.getpid(),)) as pool:
                futures = {pool.submit(run_one, key, target, coco, spec): key for key, target in todo}
                for fut in cf.as_completed(futures):
                    stored(futures[fut], fut)
    finally:
        if bar is not None:
            bar.close()
        store.close()
    return {"done": finished, "failed": failed, "skipped_solvers": len(skipped), "already": len(done)}
