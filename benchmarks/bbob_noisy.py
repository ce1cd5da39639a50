"""COCO's bbob-noisy (f101-f130): cells solved to 1e-8 by the default and by pycma's IPOP-aCMA-ES (with and
without its uncertainty handling), measured in the same sweep, against the archived references.

    python benchmarks/bbob_noisy.py [--dims 10] [--db bbob-noisy.sqlite] [--coco DIR] [--jobs 1]

Runs (or resumes) the built-in suite ``bbob-noisy`` of ``cbopt bench`` (instances 1-5, budget 1e4 * d, one
run per cell; each run is scored on the noise-free value that COCO's logger records, as COCO scores it), then
prints the cells solved per noise model and in all, with the references of COCO's archive. ``--coco DIR``
keeps COCO's own data of every run for ``cocopp``.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from cbopt.bench.report import NOISY_GROUPS
from cbopt.bench.runner import run_suite
from cbopt.bench.store import Store

#: expected cells solved (of 150) within 1e4 * d in COCO's archive (cocopp's refalgs and the published tables)
REFERENCE = {10: {"virtual best 2009-2016": 92.1, "IPOP-aCMA-ES (2010)": 80.4, "BIPOP-CMA-ES (2009)": 69.7},
             20: {"virtual best 2009-2016": 74.1, "IPOP-aCMA-ES (2010)": 67.3, "BIPOP-CMA-ES (2009)": 55.3}}
#: the columns of the table: the report's groups of the noisy testbed, by noise model
MODELS = {"moderate": "moderate noise (f101-f106)", "gaussian": "severe Gaussian noise",
          "uniform": "severe uniform noise", "cauchy": "severe Cauchy noise"}


def model_of(k: int) -> str:
    return next(m for m, group in MODELS.items() if k in NOISY_GROUPS[group])


def table(rows: list[dict], dims: list[int]) -> str:
    solved: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    cells: dict[tuple[int, str], int] = defaultdict(int)
    for r in rows:
        k = int(r["problem"].split(":f")[1])
        key = (r["dim"], r["solver"])
        cells[key] += 1
        if r["evals_to_target"] is not None:
            solved[key][model_of(k)] += 1
            solved[key]["all"] += 1
    out = ["| d | solver | moderate (30) | gaussian (40) | uniform (40) | cauchy (40) | solved (150) |",
           "|---|---|---|---|---|---|---|"]
    for d in dims:
        for (dim, solver), n in sorted(cells.items()):
            if dim != d:
                continue
            s = solved[(dim, solver)]
            cols = " | ".join(str(s.get(m, 0)) for m in MODELS)
            out.append(f"| {d} | {solver} | {cols} | **{s.get('all', 0)}** of {n} |")
        for name, v in REFERENCE.get(d, {}).items():
            out.append(f"| {d} | {name} (archive) | | | | | {v} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", default="10")
    ap.add_argument("--db", default="bbob-noisy.sqlite")
    ap.add_argument("--coco", default=None)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--solvers", default=None, help="comma-separated (default: the suite's)")
    ap.add_argument("--report-only", action="store_true", help="print the table of what the store holds")
    args = ap.parse_args(argv)
    dims = [int(d) for d in args.dims.split(",")]
    solvers = args.solvers.split(",") if args.solvers else None
    if not args.report_only:
        run_suite("bbob-noisy", args.db, jobs=args.jobs, dims=dims, solvers=solvers, coco=args.coco)
    store = Store(args.db)
    rows = [r for r in store.rows("bbob-noisy") if r["dim"] in dims]
    store.close()
    print(table(rows, dims))


if __name__ == "__main__":
    main()
