"""The benchmark harness: sweeps into the SQLite store, resume after SIGKILL, reports that match the store."""

import math
import sqlite3
import subprocess
import sys

import pytest

from cbopt.bench.report import report, summarize
from cbopt.bench.runner import load_suites, run_suite, tasks
from cbopt.bench.store import Store
from conftest import sigkill_when


def test_smoke_suite_runs_and_the_report_equals_the_store(tmp_path):
    db = str(tmp_path / "b.sqlite")
    counts = run_suite("smoke", db, jobs=2, log=lambda *a, **k: None)
    rows = Store(db).rows("smoke")
    expected = [t for t in tasks("smoke", load_suites()["smoke"])]
    assert counts["done"] == len(rows) > 0 and len(rows) <= len(expected)
    for r in rows:
        assert r["nfev"] <= r["budget"] and math.isfinite(r["best"])
        ns = [n for n, _ in r["trace"]]
        fs = [f for _, f in r["trace"]]
        assert ns == sorted(ns) and fs == sorted(fs, reverse=True)  # best-so-far only improves
        assert (r["evals_to_target"] is not None) == (r["best"] - r["fopt"] <= r["target"])
    summary = report(db, tmp_path / "rep", suite="smoke")
    text = (tmp_path / "rep" / "report.md").read_text()
    assert summary == summarize(rows)
    for (problem, dim, solver), s in summary.items():  # every number of the page is the store's
        succ = sum(1 for r in rows if (r["problem"], r["dim"], r["solver"]) == (problem, dim, solver)
                   and r["evals_to_target"] is not None)
        assert s["successes"] == succ
        line = next(ln for ln in text.splitlines() if ln.startswith(f"| {problem} | {dim} | {solver} |"))
        assert f"| {s['successes']}/{s['runs']} |" in line
        ert = "∞" if math.isinf(s["ert"]) else f"{s['ert']:.4g}"
        assert f"| {ert} |" in line and f"| {s['median_error']:.4g} |" in line
    assert (tmp_path / "rep" / "ecdf.png").exists()
    page = (tmp_path / "rep" / "report.html").read_text()
    for (problem, dim, solver), s in summary.items():
        assert f"<td>{problem}</td><td>{dim}</td><td>{solver}</td><td>{s['successes']}/{s['runs']}</td>" in page
    again = run_suite("smoke", db, jobs=1, log=lambda *a, **k: None)  # nothing left to do
    assert again["done"] == 0 and len(Store(db).rows("smoke")) == len(rows)


def test_sigkill_mid_sweep_then_rerun_loses_and_duplicates_nothing(tmp_path):
    db = tmp_path / "b.sqlite"
    cmd = [sys.executable, "-m", "cbopt", "bench", "run", "--suite", "smoke", "--db", str(db), "--jobs", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def five_stored():
        try:
            return db.exists() and sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0] >= 5
        except sqlite3.Error:
            return False

    assert sigkill_when(proc, five_stored), "the sweep finished before it could be killed: make it longer"
    before = {tuple(r[k] for k in ("solver", "problem", "dim", "instance", "seed")): r["best"]
              for r in Store(str(db)).rows("smoke")}
    assert 5 <= len(before) < len(tasks("smoke", load_suites()["smoke"]))
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout
    assert f"{len(before)} already stored" in out
    after = {tuple(r[k] for k in ("solver", "problem", "dim", "instance", "seed")): r["best"]
             for r in Store(str(db)).rows("smoke")}
    assert all(after[k] == v for k, v in before.items())  # completed runs kept as they were
    rows = sqlite3.connect(db).execute("SELECT COUNT(*), COUNT(DISTINCT solver||problem||dim||instance||seed) "
                                       "FROM runs").fetchone()
    assert rows[0] == rows[1] == len(after)  # no duplicates
    from cbopt.bench.solvers import missing

    runnable = [k for k, _ in tasks("smoke", load_suites()["smoke"]) if missing(k.solver) is None]
    assert len(after) == len(runnable)  # and the rerun completed the sweep


def test_bbob_problems_are_cocos_instances():
    ioh = pytest.importorskip("ioh")  # noqa: F841
    cocoex = pytest.importorskip("cocoex")
    import numpy as np

    from cbopt.bench.problems import make_problem

    x = np.random.default_rng(0).uniform(-5, 5, (20, 3))
    for f, inst in ((15, 1), (20, 3), (24, 5)):
        p = make_problem(f"bbob:f{f}", 3, inst)
        suite = cocoex.Suite("bbob", "", f"function_indices:{f} dimensions:3 instance_indices:{inst}")
        q = next(iter(suite))
        np.testing.assert_allclose(p.batched(x), [q(v) for v in x], rtol=1e-12)
        assert np.all(p.batched(x) >= p.fopt)


def test_gradient_adapters():
    pytest.importorskip("torch")
    from cbopt.bench.problems import make_problem
    from cbopt.bench.solvers import applicable, solve

    p = make_problem("cbopt:sphere", 5, 1)
    rec = solve("torch:sgd", p, 2000, 1e-8, 0)
    assert rec.best - p.fopt <= 1e-8 and rec.n < 2000  # stopped at the target, every step counted
    assert applicable("torch:adam", "cbopt:rastrigin") and not applicable("torch:adam", "bbob:f15")
    assert applicable("cma:ipop", "bbob:f15")


def test_nevergrad_adapter():
    pytest.importorskip("nevergrad")
    from cbopt.bench.problems import make_problem
    from cbopt.bench.solvers import solve

    p = make_problem("cbopt:sphere", 5, 1)
    rec = solve("ng:twopointsde", p, 500, 1e-8, 0)
    assert rec.n == 500 and rec.best < p.batched(p.bounds[:, 0][None])[0]


def test_coco_format_output_for_cocopp(tmp_path):
    pytest.importorskip("ioh")
    pytest.importorskip("cocoex")
    from concurrent.futures import ProcessPoolExecutor

    from cbopt.bench.runner import run_one
    from cbopt.bench.store import Key

    with ProcessPoolExecutor(1) as ex:  # cocoex writes relative to the working directory: a worker's own
        row = ex.submit(run_one, Key("t", "cbopt:cbo", "bbob:f15", 2, 1, 0, 400), 1e-8, str(tmp_path)).result()
    info = list(tmp_path.glob("exdata/cbopt-cbo/*/bbobexp_f15.info"))
    assert len(info) == 1 and "funcId = 15" in info[0].read_text() and row["nfev"] == 400
    assert list(info[0].parent.glob("data_f15/*.dat"))
