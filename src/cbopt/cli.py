"""The ``cbopt`` command line: ``run``, ``demo``, ``methods``, ``functions``."""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._backend import Numpy, Torch, to_numpy
from ._extras import available, load_function
from .checkpoint import Checkpoint
from .driver import ObjectiveError
from .methods import methods
from .minimize import minimize
from .objectives import FUNCTIONS, get_function
from .progress import Progress
from .stopping import EVALS_PER_DIM, MAX_DEFAULT_EVALS, Stop, default_budget
from .validation import writable_file


def _parse_value(v: str) -> Any:
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def _options(pairs: Sequence[str]) -> dict[str, Any]:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise ValueError(f"--option expects KEY=VALUE, got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip()] = _parse_value(v.strip())
    return out


def _summary(res: Any, inst: Any, label: str) -> dict[str, Any]:
    x = None if res.x is None else to_numpy(res.x).astype(float)
    known = not np.isnan(inst.f_min)  # a user's problem has no known minimum
    err = float(np.abs(x - inst.x_min).max(-1).min()) if x is not None and known else None
    return {
        "problem": label,
        "method": res.method,
        "dim": inst.dim,
        "fun": res.fun,
        "f_min": inst.f_min if known else None,
        "error_f": None if res.fun is None or not known else res.fun - inst.f_min,
        "max_coord_error": err,
        "x": None if x is None else [float(v) for v in x],
        "success": bool(res.success),
        "status": res.reason,
        "message": res.message,
        "nit": res.nit,
        "nfev": res.nfev,
        "nfev_nonfinite": res.nfev_nonfinite,
        "noise_checks": res.get("noise_checks", 0),
        "noisy": bool(res.get("noisy", False)),
        "time_s": round(res.time, 4),
    }


def _json_safe(v: Any) -> Any:
    """``v`` with every non-finite float as None: JSON has no Infinity or NaN, and parsers reject them."""
    if isinstance(v, float):
        return v if np.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _json_safe(u) for k, u in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(u) for u in v]
    return v


def _print_summary(s: dict[str, Any]) -> None:
    known = s["f_min"] is not None
    rows = [
        ("problem", f"{s['problem']} (d={s['dim']})"),
        ("method", s["method"]),
        ("best f", f"{s['fun']:.6g}   (f_min = {s['f_min']:.6g}, gap {s['error_f']:.3g})" if known
         and s["fun"] is not None else f"{s['fun']:.6g}" if s["fun"] is not None else "none"),
        ("max |x - x_min|", f"{s['max_coord_error']:.3g}") if known and s["x"] is not None
        else ("best x", "none (no finite value was found)" if s["x"] is None
              else "[" + ", ".join(f"{v:.6g}" for v in s["x"]) + "]"),
        ("stopped", f"{s['status']}: {s['message']}"),
        ("iterations", s["nit"]),
        ("evaluations", f"{s['nfev']} ({s['nfev_nonfinite']} non-finite)"),
        ("time", f"{s['time_s']:.2f} s"),
    ]
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k.rjust(w)}  {v}")


def _batched_or_wrapped(fun: Any, dim: int) -> tuple[Any, bool]:
    """The CLI's convenience (minimize itself asks for cbopt.vectorize): a function that maps (2, d) points to
    2 values is batched; one that maps a point to a number is wrapped per point."""
    from .objectives import vectorize

    probe = np.zeros((2, dim))
    try:
        out = np.asarray(fun(probe))
        if out.shape == (2,):
            return fun, True
    except Exception:
        pass
    return vectorize(fun), False


class _UserProblem:
    """What the summary needs of a user's problem: no known minimum."""

    def __init__(self, name: str, dim: int, bounds: list[tuple[float, float]]):
        self.name, self.dim = name, dim
        self.bounds = bounds
        self.x_min = np.full(dim, np.nan)
        self.f_min = float("nan")


def _pair(v: str) -> tuple[float, float]:
    try:
        lo, hi = (float(t) for t in v.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI (two numbers), got {v!r}") from None
    if not lo < hi:
        raise argparse.ArgumentTypeError(f"expected LO < HI, got {v!r}")
    return lo, hi


def _box(pairs: list[tuple[float, float]]) -> str:
    if len(set(pairs)) == 1:
        return f"[{pairs[0][0]:g}, {pairs[0][1]:g}]^d"
    return " x ".join(f"[{lo:g}, {hi:g}]" for lo, hi in pairs)


def cmd_run(a: argparse.Namespace) -> int:
    if a.resume and not a.checkpoint:
        raise ValueError("--resume needs --checkpoint FILE (the file to continue from)")
    if ":" in a.function:  # the user's own problem
        box = a.bounds or (-5.0, 5.0)
        pairs = list(box) if isinstance(box, list) else [box] * a.dim  # per coordinate, or one for all
        if len(pairs) != a.dim:
            raise ValueError(f"--dim {a.dim}, but the bounds give {len(pairs)} coordinates (one [lo, hi] each)")
        user = load_function(a.function)
        wrapped, batched = _batched_or_wrapped(user, a.dim)
        inst: Any = _UserProblem(a.function, a.dim, pairs)
        if a.workers is not None or a.scheduler is not None:
            raise ValueError("--workers/--scheduler run the built-in test functions' simulated cost; for your own "
                             "expensive function use cbopt.minimize(f, evaluator=...) (docs/expensive.md)")
        if not a.quiet and not a.json:
            print(f"{a.function}: {'batched' if batched else 'per point (wrapped with cbopt.vectorize)'}, "
                  f"d = {a.dim}, box {_box(pairs)}", file=sys.stderr)
        return _run_and_report(a, wrapped, inst, None)
    if a.bounds is not None:
        raise ValueError("--bounds is for your own problem (module:function); a test function has its own box")
    fn = get_function(a.function)
    dim = a.dim if fn.dim is None else fn.dim
    inst = fn.instance(dim, shift=True if a.shift else None, rotate=a.rotate, rng=a.problem_seed)
    objective: Any = inst
    evaluator: Any = None
    if a.workers is not None or a.scheduler is not None:  # per-point evaluation, a simulated cost each
        from .evaluators import Dask, Pool
        from .objectives import Slow

        objective = Slow(inst, a.eval_seconds)
        evaluator = Dask(a.scheduler) if a.scheduler is not None else Pool(workers=a.workers)
    try:
        return _run_and_report(a, objective, inst, evaluator)
    finally:  # the pool's workers end with the command, not at interpreter exit
        if evaluator is not None:
            evaluator.close()


def _run_and_report(a: argparse.Namespace, objective: Any, inst: Any, evaluator: Any) -> int:
    stop = Stop(max_iter=a.max_iter, max_time=a.max_time)
    backend = None if a.device is None and a.dtype is None else (
        Numpy(a.dtype) if a.device is None else Torch(a.device, a.dtype))
    checkpoint = None if a.checkpoint is None else Checkpoint(
        a.checkpoint, **({} if a.checkpoint_every is None else {"every": a.checkpoint_every}), resume=a.resume)
    progress = None if (a.quiet or a.json) else Progress()
    callback: Any = progress
    recorder = None
    if a.animate:
        if inst.dim != 2:
            raise ValueError(f"--animate draws 2-D problems: give --dim 2 (this one has d = {inst.dim})")
        writable_file("--animate", a.animate)  # found before the run, not after it
        if os.path.isfile(a.animate) and not os.access(a.animate, os.W_OK):
            raise ValueError(f"--animate {a.animate}: not writable")
        from .plot import SwarmRecorder

        recorder = callback = SwarmRecorder(then=progress)
    try:
        res = minimize(objective, bounds=inst.bounds, method=a.method, options=_options(a.option), rng=a.seed,
                       callback=callback, n_runs=a.runs, backend=backend, checkpoint=checkpoint, evaluator=evaluator,
                       max_evals=a.max_evals, target=a.target, stop=stop)
    finally:
        if progress is not None:
            progress.close()
    s = _summary(res, inst, inst.name)
    if recorder is not None:
        from .plot import animate_2d

        x_min = None if np.isnan(inst.f_min) else inst.x_min
        animate_2d(objective, recorder.frames, inst.bounds, a.animate, x_min=x_min)
        s["animation"] = a.animate
    if a.json:
        json.dump(_json_safe(s), sys.stdout, indent=2, allow_nan=False)
        print()
    else:
        _print_summary(s)
        if recorder is not None:
            print(f"  animation  {a.animate} ({len(recorder.frames)} iterations recorded)")
    return EXIT_CODES.get(res.reason, 0)


def cmd_demo(a: argparse.Namespace) -> int:
    """Shifted Rastrigin in d=20 with default options, then a 2-D run drawn as swarm snapshots."""
    from .objectives import rastrigin

    out = Path(a.out)
    d = a.dim
    inst = rastrigin.instance(d, shift=True, rng=a.seed)
    bounds = [(-5.0, 5.0)] * d
    print(f"cbopt {__version__} demo: the default method on shifted Rastrigin, d={d}, box [-5, 5]^{d}, "
          f"budget {default_budget(d)} evaluations", flush=True)
    progress = None if a.quiet else Progress()
    res = minimize(inst, bounds=bounds, rng=a.seed, callback=progress, history=True)
    if progress is not None:
        progress.close()
    s = _summary(res, inst, inst.name)
    _print_summary(s)
    ok = s["max_coord_error"] < 0.25
    print(f"{'solved' if ok else 'NOT solved'}: every coordinate within 0.25 of the minimiser: {ok}")
    if not available("matplotlib"):
        print("matplotlib is not installed: no figures (pip install 'cbopt[plot]')")
        return 0 if ok else 1
    import matplotlib

    matplotlib.use("Agg")
    from . import plot

    out.mkdir(parents=True, exist_ok=True)
    fig = plot.convergence({f"default (auto), d={d}": res}, f_min=inst.f_min)
    fig.axes[0].set_title(f"shifted Rastrigin, d={d}: best value vs evaluations")
    fig.tight_layout()
    fig.savefig(out / "convergence.png", dpi=120)
    inst2 = rastrigin.instance(2, shift=True, rng=a.seed)
    res2 = minimize(inst2, bounds=[(-5.0, 5.0)] * 2, method="cbo", rng=a.seed, history="particles", max_evals=4000)
    fig2 = plot.swarm_2d(inst2, res2, [(-5, 5)] * 2, x_min=inst2.x_min, snapshots=4)
    fig2.suptitle("CBO swarm on shifted Rastrigin (d=2): particles, consensus, global minimiser", fontsize=10)
    fig2.tight_layout()
    fig2.savefig(out / "swarm.png", dpi=120)
    print(f"figures: {out / 'convergence.png'}, {out / 'swarm.png'}")
    return 0 if ok else 1


def cmd_paper(a: argparse.Namespace) -> int:
    """The paper's illustrations and our additions as PNGs, with the numbers behind each figure."""
    if not available("matplotlib"):
        print("cbopt paper needs matplotlib: pip install 'cbopt[plot]'", file=sys.stderr)
        return 2
    from .thesis.figures import format_table, paper

    table = paper(a.out, quick=a.quick, seed=a.seed)
    print(format_table(table))
    bad = [f"{fig}: {k}" for fig, nums in table.items() for k, v in nums.items() if not np.isfinite(v)]
    if a.json:
        Path(a.out, "numbers.json").write_text(json.dumps(table, indent=2))
    if bad:
        print(f"non-finite numbers: {bad}", file=sys.stderr)
        return 1
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from .bench.report import report
    from .bench.runner import load_suites, resolve_suite, run_suite
    from .bench.solvers import SOLVERS, missing

    if a.action == "run":
        if not a.suite:
            print("cbopt bench run: give --suite NAME, FILE.toml or FILE.toml:NAME (see `cbopt bench suites`)",
                  file=sys.stderr)
            return 2
        try:
            counts = run_suite(a.suite, a.db, jobs=a.jobs, dims=a.dims, solvers=a.solvers, coco=a.coco,
                               scheduler=a.scheduler)
        except ValueError as e:
            print(f"cbopt bench run: {e}", file=sys.stderr)
            return 2
        if counts["failed"]:
            print(f"{counts['failed']} runs failed (not stored: run the same command again to retry them)",
                  file=sys.stderr)
            return 1
    elif a.action == "report":
        if not Path(a.db).is_file():
            raise ValueError(f"cbopt bench report: no results store at {a.db!r} (make one with `cbopt bench run`)")
        suite = resolve_suite(a.suite)[0] if a.suite and ".toml" in a.suite else a.suite
        summary = report(a.db, a.out, suite=suite, command=" ".join(["cbopt", "bench", "report"] + a.argv))
        print(f"{a.out}/report.md: {len(summary)} (problem, dim, solver) rows")
    elif a.action == "suites":
        for name, cfg in load_suites(a.suite if a.suite and a.suite.endswith(".toml") else None).items():
            print(f"{name:<16} {cfg.get('description', '')}")
    else:
        for name in SOLVERS:
            why = missing(name)
            print(f"{name:<22} {'ok' if why is None else why}")
    return 0


def cmd_methods(a: argparse.Namespace) -> int:
    for name, spec in methods().items():
        caps = [k for k, v in (("gradient", spec.needs_gradient), ("constraints", spec.supports_constraints),
                               ("batched", spec.batched)) if v]
        print(f"{name:<10} {spec.summary}  [{', '.join(caps)}; backends: {', '.join(spec.backends)}]")
    return 0


def cmd_functions(a: argparse.Namespace) -> int:
    for name, f in FUNCTIONS.items():
        dim = f"d={f.dim}" if f.dim else f"d>={f.min_dim}"
        formula = f.formula.splitlines()[0].replace("``", "")  # plain text, not reStructuredText
        print(f"{name:<16} {dim:<6} box [{f.box[0]:g}, {f.box[1]:g}]  {formula}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cbopt", description="Consensus-based optimization from the command line.")
    p.add_argument("--version", action="version", version=f"cbopt {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="minimise a test function or your own",
                       description="Minimise a built-in test function or your own (module:function, file.py:function).")
    r.add_argument("function", nargs="?", help="a test function (see `cbopt functions`), or your own: "
                   "module:function or path/to/file.py:function (batched f(X[..., d]) or per point f(x) -> float)")
    r.add_argument("--config", metavar="FILE.toml", help="read the run's settings from a TOML file: the long "
                   "options' names (function, dim, bounds = [lo, hi] or one [lo, hi] per coordinate, method, seed, "
                   "max_evals, target, "
                   "options = {key = value}, ...); flags on the command line win")
    r.add_argument("--bounds", type=_pair, metavar="LO,HI",
                   help="the box of every coordinate of your own problem (default -5,5; write --bounds=-3,3 when LO "
                        "is negative)")
    r.add_argument("--dim", type=int, default=10, help="dimension (default 10)")
    r.add_argument("--method", default="auto", help="method name (see `cbopt methods`); default: auto, the portfolio")
    r.add_argument("--seed", type=int, default=0, help="seed of the optimizer (default 0)")
    r.add_argument("--shift", action="store_true", help="move the minimiser away from its textbook location")
    r.add_argument("--rotate", action="store_true", help="apply a random rotation")
    r.add_argument("--problem-seed", type=int, default=12345, help="seed of the shift/rotation")
    r.add_argument("--max-evals", type=float, help=f"evaluation budget per run (default {EVALS_PER_DIM} d, at most "
                   f"{MAX_DEFAULT_EVALS:.0e})")
    r.add_argument("--max-iter", type=int, help="iteration limit")
    r.add_argument("--max-time", type=float, help="wall-time limit in seconds")
    r.add_argument("--target", type=float, help="stop when the best value reaches this")
    r.add_argument("--runs", type=int, default=1, help="independent runs computed together (default 1)")
    r.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="method option, e.g. -o n_particles=100 -o noise=isotropic (repeatable)")
    r.add_argument("--device", help="run on torch on this device (cpu, cuda, cuda:1); default: numpy")
    r.add_argument("--dtype", choices=["float32", "float64"], help="floating type (default float64)")
    r.add_argument("--workers", type=int, metavar="K", help="evaluate point by point on K processes")
    r.add_argument("--scheduler", metavar="ADDRESS", help="evaluate point by point on a Dask cluster (tcp://host:8786)")
    r.add_argument("--eval-seconds", type=_seconds, default=0.0, metavar="S",
                   help="with --workers/--scheduler: make each evaluation take S seconds (a stand-in for a simulation)")
    r.add_argument("--checkpoint", metavar="FILE", help="save the run's state to FILE (npz) as it goes")
    r.add_argument("--checkpoint-every", type=int, metavar="K",
                   help=f"iterations between saves (default {Checkpoint.every})")
    r.add_argument("--resume", action="store_true", help="continue from --checkpoint FILE if it exists")
    r.add_argument("--animate", metavar="FILE.gif", help="2-D problems: write the swarm's flight as a GIF "
                   "(matplotlib and Pillow: pip install 'cbopt[plot]')")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    r.set_defaults(func=cmd_run)

    dm = sub.add_parser("demo", help="the quick demonstration (writes PNG figures)")
    dm.add_argument("--out", default="cbopt-demo", help="folder for the figures (default ./cbopt-demo)")
    dm.add_argument("--dim", type=int, default=20)
    dm.add_argument("--seed", type=int, default=0)
    dm.add_argument("--quiet", "-q", action="store_true")
    dm.set_defaults(func=cmd_demo)

    pp = sub.add_parser("paper", help="regenerate the paper's figures (PNG) and print their numbers",
                        description="Regenerate the illustrations of 'Gradient is All You Need?' (arXiv:2306.09778) "
                        "and cbopt's additions as PNG files, and print the numbers behind each figure.")
    pp.add_argument("--out", default="cbopt-paper", help="folder for the figures (default ./cbopt-paper)")
    pp.add_argument("--quick", action="store_true", help="fewer runs, steps and dimensions (seconds, for CI)")
    pp.add_argument("--seed", type=int, default=0)
    pp.add_argument("--json", action="store_true", help="also write the numbers to OUT/numbers.json")
    pp.set_defaults(func=cmd_paper)

    bp = sub.add_parser("bench", help="benchmark sweeps into a results store, and reports")
    bp.add_argument("action", choices=["run", "report", "suites", "solvers"])
    bp.add_argument("--suite", default=None,
                    help="a built-in suite (see `cbopt bench suites`), FILE.toml (one suite) or FILE.toml:NAME")
    bp.add_argument("--db", default="cbopt-bench.sqlite", help="results store (default ./cbopt-bench.sqlite)")
    bp.add_argument("--jobs", type=int, default=1, help="parallel worker processes (default 1)")
    bp.add_argument("--out", default="cbopt-report", help="report folder (default ./cbopt-report)")
    bp.add_argument("--dims", type=lambda v: [int(x) for x in v.split(",")],
                    help="run these dimensions instead of the suite's (2,5)")
    bp.add_argument("--solvers", type=lambda v: v.split(","), help="only these solvers (comma-separated)")
    bp.add_argument("--scheduler", metavar="ADDRESS",
                    help="run the sweep on the Dask cluster at ADDRESS (tcp://host:8786); same store and resume")
    bp.add_argument("--coco", metavar="DIR", help="also write COCO-format data of BBOB runs to DIR (for cocopp)")
    bp.set_defaults(func=cmd_bench)

    p.set_defaults(run_parser=r)  # --config sets its defaults
    sub.add_parser("methods", help="list the registered methods").set_defaults(func=cmd_methods)
    sub.add_parser("functions", help="list the test functions").set_defaults(func=cmd_functions)
    return p


def _apply_config(parser: argparse.ArgumentParser, argv: list[str], a: argparse.Namespace) -> argparse.Namespace:
    """``cbopt run --config FILE.toml``: the file's settings become defaults, the command line's flags win."""
    from .bench.runner import _toml

    tomllib = _toml()
    try:
        st = os.stat(a.config)
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block, /dev/zero never ends
            parser.error(f"--config {a.config}: not a regular file")
        if st.st_size > CONFIG_MAX_BYTES:
            parser.error(f"--config {a.config}: {st.st_size} bytes; a configuration is at most "
                         f"{CONFIG_MAX_BYTES} bytes")
        with open(a.config, "rb") as fh:
            cfg = tomllib.loads(fh.read(CONFIG_MAX_BYTES + 1).decode("utf-8"))
    except UnicodeDecodeError:
        parser.error(f"--config {a.config} is not UTF-8 text")
    except OSError as e:
        parser.error(f"--config {a.config}: {e.strerror or e}")
    except tomllib.TOMLDecodeError as e:
        parser.error(f"--config {a.config} is not valid TOML: {e}")
    run = parser.get_default("run_parser")
    known = {act.dest for act in run._actions} - {"help", "config", "func"}
    cfg = {k.replace("-", "_"): v for k, v in cfg.items()}
    if "options" in cfg:  # a table, as -o KEY=VALUE pairs
        if not isinstance(cfg["options"], dict):
            parser.error(f"--config {a.config}: options must be a table, got {cfg['options']!r}")
        cfg["option"] = [f"{k}={json.dumps(v)}" for k, v in cfg.pop("options").items()]
    unknown = sorted(set(cfg) - known)
    if unknown:
        parser.error(f"--config {a.config}: unknown setting(s) {unknown}; known: {sorted(known)}")
    if "bounds" in cfg:
        b = cfg["bounds"]

        def pair(v: Any) -> bool:
            return isinstance(v, list) and len(v) == 2 and all(
                isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in v) and v[0] < v[1]

        if pair(b):
            cfg["bounds"] = (float(b[0]), float(b[1]))
        elif isinstance(b, list) and b and all(pair(p) for p in b):  # one [lo, hi] per coordinate
            if "dim" in cfg and cfg["dim"] != len(b):
                parser.error(f"--config {a.config}: dim = {cfg['dim']!r}, but bounds give {len(b)} coordinates")
            cfg["bounds"] = [(float(p[0]), float(p[1])) for p in b]
            cfg.setdefault("dim", len(b))
        else:
            parser.error(f"--config {a.config}: bounds = [lo, hi] (every coordinate) or [[lo, hi], ...] (one pair "
                         f"per coordinate), finite numbers with lo < hi, got {b!r}")
    run.set_defaults(**cfg)
    return parser.parse_args(argv)


def _seconds(v: str) -> float:
    try:
        s = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {v!r}") from None
    if not s >= 0 or s == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds >= 0, got {v!r}")
    return s


#: the exit status of `cbopt run` by the run's final state: 0 for a result (converged or a budget spent), 1 when
#: the objective failed everywhere, 130 (as for SIGINT) when interrupted
EXIT_CODES = {"NONFINITE": 1, "OBJECTIVE_ERROR": 1, "INTERRUPTED": 130}
#: the largest --config file read (a configuration is a few lines)
CONFIG_MAX_BYTES = 1 << 20


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parser.parse_args(argv)
    if getattr(a, "config", None):
        a = _apply_config(parser, argv, a)
    if a.command == "run" and not a.function:
        parser.error("cbopt run: give a FUNCTION (or function = ... in --config)")
    a.argv = argv[2:]
    try:
        return int(a.func(a) or 0)
    except BrokenPipeError:  # e.g. `cbopt run ... --json | head -1`: the reader left, nothing more to say
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:  # Ctrl-C outside the objective (its own Ctrl-C is the INTERRUPTED status)
        print("cbopt: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, ImportError) as exc:  # includes CheckpointError; a missing extra names its install
        print(f"cbopt: error: {exc}", file=sys.stderr)
        return 2
    except ObjectiveError as exc:  # the user's function raised: one line, with what was found before
        print(f"cbopt: error: {exc}", file=sys.stderr)
        return 1
    except (RuntimeError, OSError) as exc:  # no CUDA, an unreachable scheduler, a checkpoint folder that is not there
        print(f"cbopt: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print("cbopt: error: out of memory: the problem (--dim, --runs, -o n_particles) is too large for this machine",
              file=sys.stderr)
        return 2
    except sqlite3.Error as exc:  # a results store that is not one
        print(f"cbopt: error: the results store: {exc}", file=sys.stderr)
        return 2


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
