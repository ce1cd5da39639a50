"""The default on COCO's BBOB (through ioh, COCO's instances): the fast CI check on Rosenbrock and the rotated
ellipsoid, and (slow) the solved counts of the published d = 10 and d = 20 sweeps with a stated margin.

Protocol (the bbob suite of the harness): instances 1-5, one run each (seed 0), budget 1e4 d evaluations,
success when f - f_opt <= 1e-8, bounds [-5, 5]^d, ``minimize(f, bounds=..., max_evals=...)`` and nothing else.
"""

import pytest


def _solved(fid, dim, instances, budget):
    from cbopt.bench.problems import make_problem
    from cbopt.bench.solvers import solve

    out = []
    for inst in instances:
        p = make_problem(f"bbob:f{fid}", dim, inst)
        rec = solve("cbopt:auto", p, budget, 1e-8, 0)
        out.append(rec.best - p.fopt <= 1e-8)
    return out


@pytest.mark.parametrize("fid", [8, 10])
def test_default_solves_rosenbrock_and_the_rotated_ellipsoid_d5(fid):
    # f8 (Rosenbrock) and f10 (ellipsoid, condition 1e6, rotated), d = 5, 5e4 evaluations: measured 5/5 each;
    # the default CBO of the first release solved 0/5 of f8 and f10 at d = 10
    pytest.importorskip("ioh")
    assert all(_solved(fid, 5, range(1, 6), 50_000))


def _sweep(tmp_path, dim):
    from cbopt.bench.report import bbob_counts
    from cbopt.bench.runner import run_suite
    from cbopt.bench.store import Store

    db = str(tmp_path / "bbob.sqlite")
    counts = run_suite("bbob", db, jobs=2, dims=[dim], solvers=["cbopt:auto"], log=lambda *a, **k: None)
    assert counts["failed"] == 0
    fs = bbob_counts(Store(db).rows("bbob"))[(dim, "cbopt:auto")]
    return sum(fs[k][0] for k in range(1, 25)), sum(fs[k][0] for k in range(15, 25))


@pytest.mark.slow
def test_bbob_d10_solved_counts(tmp_path):
    pytest.importorskip("ioh")
    # published: 100/120 and 30/50 (benchmarks/results/bbob-d10.md); BIPOP-CMA-ES 84/120 and 24/50 in the
    # issue's measurement. Margin: 5 runs on all functions, 3 on f15-f24 (a seed-to-seed change of a few runs)
    total, multimodal = _sweep(tmp_path, 10)
    assert total >= 95 and multimodal >= 27, (total, multimodal)
