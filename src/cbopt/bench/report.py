"""Reports from the results store: Markdown tables and PNG plots (runtime ECDF as COCO draws it, convergence).

Per (problem, dimension, solver): the success rate (runs reaching f - f_opt <= target within the budget),
ERT (expected running time: all evaluations spent, by successful and failed runs, divided by the
successes; inf without success) and the median final f - f_opt.
"""

from __future__ import annotations

import math
import pathlib
from collections import defaultdict
from typing import Any

import numpy as np

from .store import Store

#: the targets of the runtime ECDF: f - f_opt <= 10^k, k = 2, 1.8, ..., -8 (COCO's 51 targets)
ECDF_TARGETS = 10.0 ** np.linspace(2, -8, 51)
#: COCO's five groups of the BBOB functions
BBOB_GROUPS = {
    "separable (f1-f5)": range(1, 6),
    "moderate (f6-f9)": range(6, 10),
    "ill-conditioned (f10-f14)": range(10, 15),
    "multimodal, global structure (f15-f19)": range(15, 20),
    "multimodal, weak structure (f20-f24)": range(20, 25),
}
#: COCO's noisy testbed by noise model: moderate noise (f101-f106), then severe Gaussian, uniform and Cauchy
#: noise on every third function from f107
NOISY_GROUPS = {
    "moderate noise (f101-f106)": range(101, 107),
    "severe Gaussian noise": range(107, 131, 3),
    "severe uniform noise": range(108, 131, 3),
    "severe Cauchy noise": range(109, 131, 3),
}


#: problem prefix -> the reference algorithm that ships inside ``cocopp`` for that suite
REFERENCES = {"bbob:f": "best09-16-bbob", "bbob-largescale:f": "best2019-bbob-largescale",
              "bbob-noisy:f": "best09-16-bbob-noisy"}


def _bbob_id(problem: str) -> int | None:
    """k of ``bbob:f<k>``, ``bbob-largescale:f<k>`` or ``bbob-noisy:f<k>``, else None."""
    for prefix in REFERENCES:
        if problem.startswith(prefix):
            return int(problem[len(prefix):])
    return None


def _reference_of(rows: list[dict[str, Any]]) -> str:
    prefix = next((p for p in REFERENCES if any(r["problem"].startswith(p) for r in rows)), "bbob:f")
    return REFERENCES[prefix]


def targets_reached(rows: list[dict[str, Any]]) -> float:
    """Fraction of (run, target) pairs of :data:`ECDF_TARGETS` reached within each run's budget."""
    if not rows:
        return math.nan
    hit = sum(int(np.sum(min((f for _, f in r["trace"]), default=np.inf) - r["fopt"] <= ECDF_TARGETS))
              for r in rows)
    return hit / (len(rows) * len(ECDF_TARGETS))


#: budgets (evaluations / d) at which :func:`budget_markdown` reads the runtime ECDF
ECDF_BUDGETS = (1e2, 1e3, 1e4)


def budget_markdown(rows: list[dict[str, Any]], budgets: tuple[float, ...] = ECDF_BUDGETS) -> str:
    """The runtime ECDF over all functions read at ``budgets`` (evaluations / d), one row per (dimension,
    solver), the suite's reference algorithm beside them where ``cocopp`` is installed, and each solver's wall
    time per evaluation (the objective's included, the same for every solver of a sweep). A budget above a
    row's own budget reads "–"."""
    rows = [r for r in rows if _bbob_id(r["problem"]) is not None]
    if not rows:
        return ""
    refname = _reference_of(rows)
    cols = " | ".join(f"{b:.0e}·d".replace("e+0", "e") for b in budgets)
    lines = ["## Runtime ECDF at fixed budgets", "",
             "The fraction of (run, target) pairs reached within each budget (COCO's 51 targets 1e2 … 1e-8, all "
             f"functions); the reference algorithm {refname} by its ERT per (function, target), as COCO draws it; "
             "µs per evaluation: wall time over evaluations, the objective included.", "",
             f"| d | solver | {cols} | µs / evaluation |", "|---|---|" + "---|" * len(budgets) + "---|"]
    for dim in sorted({r["dim"] for r in rows}):
        at = [r for r in rows if r["dim"] == dim]
        for solver in sorted({r["solver"] for r in at}):
            mine = [r for r in at if r["solver"] == solver]
            top = min(r["budget"] for r in mine) / dim
            got = _ecdf(mine, np.asarray(budgets, dtype=float))
            cells = " | ".join(f"{v:.3f}" if b <= top else "–" for b, v in zip(budgets, got, strict=True))
            us = 1e6 * sum(r["wall"] for r in mine) / max(1, sum(r["nfev"] for r in mine))
            lines.append(f"| {dim} | {solver} | {cells} | {us:.1f} |")
        ref = reference(dim, sorted({k for r in at if (k := _bbob_id(r["problem"])) is not None}), refname)
        if ref is not None and len(ref):
            ert = np.nan_to_num(ref, nan=np.inf) / dim
            cells = " | ".join(f"{(ert <= b).mean():.3f}" for b in budgets)
            lines.append(f"| {dim} | {refname} | {cells} | |")
    return "\n".join(lines) + "\n"


def bbob_counts(rows: list[dict[str, Any]]) -> dict[tuple[int, str], dict[int, tuple[int, int]]]:
    """``{(dim, solver): {function id: (solved, runs)}}`` over the BBOB rows."""
    out: dict[tuple[int, str], dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for r in rows:
        k = _bbob_id(r["problem"])
        if k is not None:
            c = out[(r["dim"], r["solver"])][k]
            c[0] += r["evals_to_target"] is not None
            c[1] += 1
    return {key: {k: (v[0], v[1]) for k, v in sorted(fs.items())} for key, fs in sorted(out.items())}


def bbob_markdown(counts: dict[tuple[int, str], dict[int, tuple[int, int]]],
                  reached: dict[tuple[int, str], float] | None = None) -> str:
    """Solved runs per function, their sums over all functions and the multimodal ones (f1-f24 and f15-f24;
    on the noisy testbed f101-f130 and f122-f130), and (``reached``) the fraction of targets reached, one row
    per (dimension, solver)."""
    if not counts:
        return ""
    noisy = any(k > 100 for fs in counts.values() for k in fs)
    first, multi, last = (101, 122, 131) if noisy else (1, 15, 25)
    lines = [f"## {'bbob-noisy' if noisy else 'BBOB'}: solved runs per function", "",
             "Solved: f − f_opt ≤ the suite's target within the budget"
             + (" (the noise-free value, as COCO scores it)" if noisy else "")
             + "; targets: the fraction of (run, target) pairs reached, COCO's 51 targets 1e2 … 1e-8.", "",
             f"| d | solver | f{first}–f{last - 1} | f{multi}–f{last - 1} | targets | per function f{first} … "
             f"f{last - 1} |", "|---|---|---|---|---|---|"]

    def total(fs: dict[int, tuple[int, int]], ks: range) -> str:
        got = [fs[k] for k in ks if k in fs]
        return f"{sum(g[0] for g in got)} / {sum(g[1] for g in got)}" if got else "–"

    for (dim, solver), fs in counts.items():
        per = " ".join(str(fs[k][0]) if k in fs else "·" for k in range(first, last))
        share = "–" if reached is None else f"{reached[(dim, solver)]:.3f}"
        lines.append(f"| {dim} | {solver} | {total(fs, range(first, last))} | {total(fs, range(multi, last))} | "
                     f"{share} | {per} |")
    return "\n".join(lines) + "\n"


_REFERENCE: dict[str, Any] = {}


def reference(dim: int, functions: list[int], name: str = REFERENCES["bbob:f"]) -> np.ndarray | None:
    """Runtimes (evaluations) of a reference algorithm that ships inside ``cocopp`` (``refalgs/NAME.tar.gz``:
    the 2009-2016 best for BBOB, the 2019 best for bbob-largescale) for every (function, target) pair of
    :data:`ECDF_TARGETS` (its ERT, the way COCO draws that reference; NaN where it did not reach the target),
    or None when ``cocopp`` is not installed."""
    import contextlib
    import importlib.util
    import io
    import os

    if importlib.util.find_spec("cocopp") is None:
        return None
    if name not in _REFERENCE:
        import warnings

        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            import cocopp  # it looks for its online archive on import: offline, that is a warning

            path = os.path.join(os.path.dirname(cocopp.__file__), "refalgs", f"{name}.tar.gz")
            _REFERENCE[name] = {(ds.dim, ds.funcId): ds for ds in cocopp.load(path)}
    table = _REFERENCE[name]
    out = [np.asarray(table[(dim, k)].detEvals(list(ECDF_TARGETS)), dtype=float).reshape(len(ECDF_TARGETS), -1)[:, 0]
           for k in functions if (dim, k) in table]
    return np.concatenate(out) if out else None


def summarize(rows: list[dict[str, Any]]) -> dict[tuple[str, int, str], dict[str, float]]:
    """``{(problem, dim, solver): {runs, successes, success_rate, ert, median_error}}``."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["problem"], r["dim"], r["solver"])].append(r)
    out = {}
    for key, rs in sorted(groups.items()):
        succ = [r for r in rs if r["evals_to_target"] is not None]
        spent = sum(r["evals_to_target"] if r["evals_to_target"] is not None else r["nfev"] for r in rs)
        out[key] = {
            "runs": len(rs),
            "successes": len(succ),
            "success_rate": len(succ) / len(rs),
            "ert": spent / len(succ) if succ else math.inf,
            "median_error": float(np.median([max(r["best"] - r["fopt"], 0.0) for r in rs])),
        }
    return out


def _fmt(v: float) -> str:
    return "∞" if math.isinf(v) else f"{v:.4g}"


def markdown(summary: dict[tuple[str, int, str], dict[str, float]], title: str, command: str) -> str:
    lines = [f"# {title}", "", f"Generated by `{command}`.", "",
             "| problem | d | solver | success | ERT (evals) | median f − f_opt |", "|---|---|---|---|---|---|"]
    for (problem, dim, solver), s in summary.items():
        lines.append(f"| {problem} | {dim} | {solver} | {s['successes']}/{s['runs']} | {_fmt(s['ert'])} | "
                     f"{_fmt(s['median_error'])} |")
    return "\n".join(lines) + "\n"


def html(summary: dict[tuple[str, int, str], dict[str, float]], title: str, command: str, images: list[str]) -> str:
    """The same table as :func:`markdown`, as a self-contained HTML page with the plots."""
    from html import escape

    head = ("<tr><th>problem</th><th>d</th><th>solver</th><th>success</th><th>ERT (evals)</th>"
            "<th>median f − f_opt</th></tr>")
    body = "".join(
        f"<tr><td>{escape(p)}</td><td>{d}</td><td>{escape(sv)}</td><td>{s['successes']}/{s['runs']}</td>"
        f"<td>{_fmt(s['ert'])}</td><td>{_fmt(s['median_error'])}</td></tr>"
        for (p, d, sv), s in summary.items()
    )
    imgs = "".join(f'<figure><img src="{escape(f)}" alt="{escape(f)}"></figure>' for f in images)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:2px 8px;text-align:right}td:nth-child(-n+3){text-align:left}img{max-width:640px}</style>"
            f"</head><body><h1>{escape(title)}</h1><p>Generated by <code>{escape(command)}</code>.</p>"
            f"<table>{head}{body}</table>{imgs}</body></html>\n")


def _ecdf(rows: list[dict[str, Any]], grid: np.ndarray) -> np.ndarray:
    """Fraction of (run, target) pairs reached within ``grid * d`` evaluations."""
    hits = np.zeros(len(grid))
    for r in rows:
        trace = r["trace"]
        for t in ECDF_TARGETS:
            n = next((n for n, f in trace if f - r["fopt"] <= t), None)
            if n is not None:
                hits += (n / r["dim"]) <= grid
    return hits / max(1, len(rows) * len(ECDF_TARGETS))


def _group_ecdfs(rows: list[dict[str, Any]], out: pathlib.Path, plt: Any) -> list[str]:
    """One figure per dimension: the runtime ECDF of each COCO function group, the suite's reference algorithm
    (the 2009-2016 best for BBOB, the 2019 best for bbob-largescale, the 2009-2016 best for bbob-noisy) drawn as a
    black line where ``cocopp`` is installed."""
    files = []
    refname = _reference_of(rows)
    dims = sorted({r["dim"] for r in rows if _bbob_id(r["problem"]) is not None})
    for dim in dims:
        at = [r for r in rows if r["dim"] == dim and _bbob_id(r["problem"]) is not None]
        top = max(r["budget"] / dim for r in at)
        grid = np.logspace(0, math.log10(top), 200)
        fig, grid_axes = plt.subplots(2, 3, figsize=(13, 7.5), sharey=True)
        axes = grid_axes.ravel()
        groups = NOISY_GROUPS if refname.endswith("noisy") else BBOB_GROUPS
        for ax in axes[len(groups):5]:
            ax.axis("off")
        for ax, (group, ks) in zip(axes[:len(groups)], groups.items(), strict=True):
            mine = [r for r in at if _bbob_id(r["problem"]) in ks]
            for solver in sorted({r["solver"] for r in mine}):
                ax.semilogx(grid, _ecdf([r for r in mine if r["solver"] == solver], grid), label=solver)
            ref = reference(dim, [k for k in ks if any(_bbob_id(r["problem"]) == k for r in mine)], refname)
            if ref is not None and len(ref):
                ax.semilogx(grid, [(np.nan_to_num(ref, nan=np.inf) / dim <= g).mean() for g in grid], "k-",
                            lw=2, alpha=0.6, label=refname.rsplit("-bbob", 1)[0])
            ax.set_title(group, fontsize=9)
            ax.set_xlabel("evaluations / dimension")
            ax.set_ylim(0, 1)
            ax.grid(True, which="both", alpha=0.3)
        for ax in grid_axes[:, 0]:
            ax.set_ylabel("fraction of (run, target) pairs")
        handles, labels = axes[0].get_legend_handles_labels()
        axes[5].axis("off")
        axes[5].legend(handles, labels, loc="center", fontsize=10)
        suite = ("bbob-largescale" if refname.endswith("largescale") else
                 "bbob-noisy (noise-free values)" if refname.endswith("noisy") else "BBOB")
        fig.suptitle(f"{suite} runtime ECDF by function group, d = {dim}, 51 targets 1e2 … 1e-8", fontsize=10)
        files.append(_save(fig, out, f"ecdf_groups_d{dim}.png", plt, dpi=100))
    return files


def _save(fig: Any, out: pathlib.Path, name: str, plt: Any, dpi: int = 110) -> str:
    """Lay out, write ``out/name`` and close the figure; returns the file name."""
    fig.tight_layout()
    fig.savefig(out / name, dpi=dpi)
    plt.close(fig)
    return name


#: convergence plots are drawn for at most this many (problem, dimension) pairs
MAX_CONVERGENCE_PLOTS = 24


def plots(rows: list[dict[str, Any]], out: pathlib.Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = _group_ecdfs(rows, out, plt)
    by_solver: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_solver[r["solver"]].append(r)
    top = max(r["budget"] / r["dim"] for r in rows)
    grid = np.logspace(0, math.log10(top), 200)
    fig, ax = plt.subplots(figsize=(6, 4))
    for solver, rs in sorted(by_solver.items()):
        ax.semilogx(grid, _ecdf(rs, grid), label=solver)
    ax.set_xlabel("evaluations / dimension")
    ax.set_ylabel("fraction of (run, target) pairs")
    ax.set_title("runtime ECDF, 51 targets 1e2 … 1e-8 (all problems)", fontsize=10)
    ax.set_ylim(0, 1)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    files.append(_save(fig, out, "ecdf.png", plt))
    by_problem: dict[tuple[str, int], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_problem[(r["problem"], r["dim"])][r["solver"]].append(r)
    if len(by_problem) > MAX_CONVERGENCE_PLOTS:
        return files
    for (problem, dim), solvers in sorted(by_problem.items()):
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for solver, rs in sorted(solvers.items()):
            budget = max(r["budget"] for r in rs)
            ev = np.unique(np.linspace(1, budget, 200).astype(int))
            curves = []
            for r in rs:
                n, f = (np.array(v) for v in zip(*r["trace"], strict=True)) if r["trace"] else ([budget], [np.inf])
                idx = np.searchsorted(n, ev, side="right") - 1
                curves.append(np.where(idx >= 0, np.asarray(f)[np.maximum(idx, 0)] - r["fopt"], np.nan))
            ax.loglog(ev, np.maximum(np.nanmedian(np.array(curves), 0), 1e-12), label=solver)
        ax.set_xlabel("evaluations")
        ax.set_ylabel("median best f − f_opt")
        ax.set_title(f"{problem}, d = {dim}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        files.append(_save(fig, out, f"conv_{problem.replace(':', '_')}_d{dim}.png", plt))
    return files


RUN_FIELDS = ("suite", "solver", "problem", "dim", "instance", "seed", "budget", "target", "fopt", "best", "nfev",
              "evals_to_target", "wall")


def _runs_csv(rows: list[dict[str, Any]], path: pathlib.Path) -> None:
    """One line per run: what the tables are computed from, small enough to publish next to them."""
    import csv

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(RUN_FIELDS)
        for r in rows:
            w.writerow(["" if r[k] is None else (repr(r[k]) if isinstance(r[k], float) else r[k])
                        for k in RUN_FIELDS])


def report(db: str, out: str | pathlib.Path, suite: str | None = None, command: str = "cbopt bench report") -> dict:
    """Write ``out/report.md``, ``report.html``, ``runs.csv`` (+ PNGs) from the store; returns the summary it
    was written from."""
    store = Store(db)
    try:
        rows = store.rows(suite)
    finally:
        store.close()
    if not rows:
        raise ValueError(f"no runs in {db}" + (f" for suite {suite!r}" if suite else ""))
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    title = f"cbopt benchmark: {suite or 'all suites'}"
    text = markdown(summary, title, command)
    counts = bbob_counts(rows)
    if counts:
        every = "\n## Every (problem, dimension, solver)\n\n| problem |"
        reached = {key: targets_reached([r for r in rows if (r["dim"], r["solver"]) == key
                                         and _bbob_id(r["problem"]) is not None]) for key in counts}
        text = text.replace("\n| problem |", "\n" + bbob_markdown(counts, reached) + "\n" + budget_markdown(rows)
                            + every, 1)
    try:
        files = plots(rows, out)
        text += "\n" + "\n".join(f"![{f}]({f})" for f in files) + "\n"
    except ImportError:
        files = []
        text += "\n(matplotlib not installed: no plots; pip install 'cbopt[plot]')\n"
    _runs_csv(rows, out / "runs.csv")
    text += "\nEvery run's outcome (without its trace): [runs.csv](runs.csv).\n"
    (out / "report.md").write_text(text)
    (out / "report.html").write_text(html(summary, title, command, files))
    return summary
