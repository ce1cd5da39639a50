"""The benchmark harness: sweeps into the SQLite store, resume after SIGKILL, reports that match the store."""

import math
import os
import sqlite3
import subprocess
import sys
import time

import numpy as np
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


def _children(pid):
    """PIDs whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                out.append(int(entry))
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process table from /proc")
def test_sigkill_mid_sweep_then_rerun_loses_and_duplicates_nothing(tmp_path):
    db = tmp_path / "b.sqlite"
    cmd = [sys.executable, "-m", "cbopt", "bench", "run", "--suite", "smoke", "--db", str(db), "--jobs", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def five_stored():
        try:
            return db.exists() and sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0] >= 5
        except sqlite3.Error:
            return False

    workers = []

    def five_stored_and_workers():
        workers[:] = _children(proc.pid)
        return five_stored()

    assert sigkill_when(proc, five_stored_and_workers), "the sweep finished before it could be killed: make it longer"
    assert workers, "the sweep ran no worker process"
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers), "a worker outlived the SIGKILLed sweep"
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
    assert len(info) == 1 and "funcId = 15" in info[0].read_text() and 200 < row["nfev"] <= 400
    assert list(info[0].parent.glob("data_f15/*.dat"))


USER_MODULE = '''
import numpy as np

def shifted_sphere(x, instance=1):
    return float(np.sum((x - 0.5 * instance) ** 2)) + 3.0

def batch_sphere(x):
    return np.sum(x ** 2, axis=-1)

def broken(x):
    raise ArithmeticError("model diverged")
'''


def _user_suite(tmp_path, problems, **extra):
    (tmp_path / "userprobs_bench.py").write_text(USER_MODULE)
    lines = ["[mine]", f"problems = {problems!r}".replace("'", '"'), "dims = [2]", "instances = [1, 2]",
             "seeds = [0]", 'budget = "300*d"', "target = 1e-6", 'solvers = ["cbopt:auto"]', "bounds = [-3, 3]"]
    lines += [f"{k} = {v}" for k, v in extra.items()]
    path = tmp_path / "suite.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_dimensions_asked_for_are_run_whether_the_suite_lists_them_or_not(tmp_path):
    path = _user_suite(tmp_path, ["userprobs_bench:shifted_sphere"], fopt=3.0)
    db = str(tmp_path / "d.sqlite")
    assert run_suite(str(path), db, dims=[2, 3], log=lambda *a, **k: None)["done"] == 4
    assert sorted({r["dim"] for r in Store(db).rows("mine")}) == [2, 3]


def test_a_users_suite_file_with_module_problems(tmp_path):
    path = _user_suite(tmp_path, ["userprobs_bench:shifted_sphere", "userprobs_bench:batch_sphere"],
                       fopt=3.0)
    db = str(tmp_path / "u.sqlite")
    counts = run_suite(str(path), db, log=lambda *a, **k: None)
    rows = Store(db).rows("mine")
    assert counts == {"done": 4, "failed": 0, "skipped_solvers": 0, "already": 0} and len(rows) == 4
    by = {(r["problem"], r["instance"]): r for r in rows}
    for inst in (1, 2):
        r = by[("userprobs_bench:shifted_sphere", inst)]
        assert r["fopt"] == 3.0 and r["best"] - 3.0 < 1e-6  # the instance keyword moved the minimiser: solved
    # batch_sphere's minimum is 0, not the suite's fopt = 3: the first point with f <= 3 counts as solved
    for i in (1, 2):
        r = by[("userprobs_bench:batch_sphere", i)]
        assert r["evals_to_target"] <= r["nfev"] < 100 and r["best"] <= 3.0 + 1e-6
    assert run_suite(f"{path}:mine", db, log=lambda *a, **k: None)["done"] == 0  # resume: nothing left
    out = subprocess.run([sys.executable, "-m", "cbopt", "bench", "report", "--suite", str(path), "--db", db,
                          "--out", str(tmp_path / "rep")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "| userprobs_bench:shifted_sphere | 2 | cbopt:auto | 2/2 |" in (tmp_path / "rep" / "report.md").read_text()


def test_an_edited_suite_is_not_answered_from_the_old_runs(tmp_path):
    """Runs stored under one definition of a suite (its target, or its problem's code) are neither skipped as
    done nor reported for another: the run says so and stops."""
    path = _user_suite(tmp_path, ["userprobs_bench:shifted_sphere"])
    db = str(tmp_path / "u.sqlite")
    assert run_suite(str(path), db, log=lambda *a, **k: None)["done"] == 2
    assert run_suite(str(path), db, log=lambda *a, **k: None)["done"] == 0  # unchanged: resumes, nothing left
    path.write_text(path.read_text().replace("target = 1e-6", "target = 1e-3"))
    with pytest.raises(ValueError, match="another definition"):
        run_suite(str(path), db, log=lambda *a, **k: None)
    path.write_text(path.read_text().replace("target = 1e-3", "target = 1e-6"))
    (tmp_path / "userprobs_bench.py").write_text(USER_MODULE + "\n# an edit of the problem's code\n")
    with pytest.raises(ValueError, match="another definition"):
        run_suite(str(path), db, log=lambda *a, **k: None)


def test_vectorized_user_problems_must_return_one_value_per_point(tmp_path):
    from cbopt.bench.problems import make_problem

    (tmp_path / "userprobs_vec.py").write_text(USER_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        p = make_problem("userprobs_vec:batch_sphere", 3, 1, {"bounds": [-1, 1], "vectorized": True})
        assert p.batched(np.ones((4, 3))).tolist() == [3.0] * 4 and p.bounds.shape == (3, 2)
        q = make_problem("userprobs_vec:shifted_sphere", 3, 1, {"bounds": [-1, 1], "vectorized": True})
        with pytest.raises(ValueError, match="must return 4 values"):
            q.batched(np.ones((4, 3)))
        with pytest.raises(ValueError, match="userprobs_vec has no function 'nope'"):
            make_problem("userprobs_vec:nope", 3, 1, {"bounds": [-1, 1]})
        with pytest.raises(ValueError, match="needs the suite's bounds"):
            make_problem("userprobs_vec:batch_sphere", 3, 1)
    finally:
        sys.path.remove(str(tmp_path))


def test_a_run_whose_problem_raises_is_reported_and_not_stored(tmp_path):
    path = _user_suite(tmp_path, ["userprobs_bench:broken", "userprobs_bench:batch_sphere"])
    db = str(tmp_path / "u.sqlite")
    said = []
    counts = run_suite(str(path), db, log=said.append)
    assert counts["failed"] == 2 and counts["done"] == 2  # the other problem's runs went on
    assert sum("ArithmeticError: model diverged" in s for s in said) == 2
    assert {r["problem"] for r in Store(db).rows("mine")} == {"userprobs_bench:batch_sphere"}
    out = subprocess.run([sys.executable, "-m", "cbopt", "bench", "run", "--suite", str(path), "--db", db],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "2 runs failed" in out.stderr  # retried (and failed again), said so


@pytest.mark.parametrize("text, match", [
    ("[a]\nproblems = []", "lacks"),
    ("[a]\nproblems = ['m:f']\ndims=[2]\nseeds=[0]\nbudget=10\ntarget=0.1\nsolvers=['cbopt:cbo']", "bounds"),
    ("[a]\nproblems = 'cbopt:sphere'\ndims=[2]\nseeds=[0]\nbudget=10\ntarget=0.1\nsolvers=['cbopt:cbo']",
     "non-empty list"),
    ("[a]\n[b]", "holds 2 suites"),
    ("[a\n", "not valid TOML"),
])
def test_bad_suite_files_fail_before_any_run(tmp_path, text, match):
    from cbopt.bench.runner import resolve_suite

    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        resolve_suite(str(path))
    with pytest.raises(ValueError, match="unknown suite 'zzz'"):
        resolve_suite("zzz")
    with pytest.raises(ValueError, match="No such file"):
        resolve_suite(str(tmp_path / "absent.toml"))


def test_a_sweep_on_a_dask_cluster_stores_what_a_local_sweep_does(tmp_path):
    """A scheduler and one worker on 127.0.0.1, stopped by their PIDs; the cluster's runs equal the local ones."""
    pytest.importorskip("distributed")
    from test_distributed import _free_port

    path = tmp_path / "s.toml"
    path.write_text('[c]\nproblems = ["cbopt:sphere", "cbopt:rastrigin"]\ndims = [2]\ninstances = [1, 2]\n'
                    'seeds = [0]\nbudget = "200*d"\ntarget = 1e-8\nsolvers = ["cbopt:cbo"]\n')
    local = str(tmp_path / "local.sqlite")
    run_suite(str(path), local, log=lambda *a, **k: None)
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen(dask + ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen(dask + ["worker", addr, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                                              "--host", "127.0.0.1"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        remote = str(tmp_path / "remote.sqlite")
        counts = run_suite(str(path), remote, log=lambda *a, **k: None, scheduler=addr)
        assert counts["done"] == 4 and counts["failed"] == 0
        key = ("solver", "problem", "dim", "instance", "seed", "best", "nfev", "evals_to_target")
        a, b = ([tuple(r[k] for k in key) for r in Store(db).rows("c")] for db in (local, remote))
        assert a == b
        assert run_suite(str(path), remote, log=lambda *a, **k: None, scheduler=addr)["done"] == 0  # resume
    finally:
        for p in procs[::-1]:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)


def test_bbob_report_counts_solved_runs_per_function(tmp_path):
    pytest.importorskip("ioh")
    pytest.importorskip("cma")
    from cbopt.bench.report import bbob_counts

    path = tmp_path / "s.toml"
    path.write_text('[b]\nproblems = ["bbob:f1", "bbob:f8", "bbob:f15"]\ndims = [2]\ninstances = [1, 2]\n'
                    'seeds = [0]\nbudget = "500*d"\ntarget = 1e-8\nsolvers = ["cbopt:auto", "cma:bipop"]\n')
    db = str(tmp_path / "b.sqlite")
    run_suite(str(path), db, jobs=2, log=lambda *a, **k: None)
    rows = Store(db).rows("b")
    counts = bbob_counts(rows)
    for (dim, solver), fs in counts.items():
        for k, (solved, runs) in fs.items():
            mine = [r for r in rows if (r["dim"], r["solver"], r["problem"]) == (dim, solver, f"bbob:f{k}")]
            assert runs == len(mine) == 2 and solved == sum(r["evals_to_target"] is not None for r in mine)
    assert counts[(2, "cbopt:auto")][1] == (2, 2)  # the sphere, solved by the default in 1000 evaluations
    report(db, tmp_path / "rep", suite="b")
    text = (tmp_path / "rep" / "report.md").read_text()
    for (dim, solver), fs in counts.items():
        total = f"{sum(s for s, _ in fs.values())} / {sum(n for _, n in fs.values())}"
        assert f"| {dim} | {solver} | {total} |" in text
    assert (tmp_path / "rep" / "ecdf_groups_d2.png").exists()


def test_the_2009_2016_best_algorithm_reference_of_cocopp():
    pytest.importorskip("cocopp")
    from cbopt.bench.report import ECDF_TARGETS, reference

    ref = reference(10, [1, 8])
    assert ref.shape == (2 * len(ECDF_TARGETS),)
    f8 = ref[len(ECDF_TARGETS):]
    assert np.all(np.isfinite(f8)) and np.all(np.diff(f8) >= 0)  # harder targets take longer
    assert 500 < f8[-1] < 1e5  # Rosenbrock to 1e-8 in d = 10: thousands of evaluations


def test_the_2019_largescale_reference_of_cocopp():
    pytest.importorskip("cocopp")
    from cbopt.bench.report import ECDF_TARGETS, reference

    n = len(ECDF_TARGETS)
    ref = reference(640, [1, 10], "best2019-bbob-largescale")
    assert ref.shape == (2 * n,)
    sphere, ellipsoid = ref[:n], ref[n:]
    assert np.all(np.isfinite(sphere)) and np.all(np.diff(sphere) >= 0)
    assert np.nanmin(ellipsoid) > sphere[0]  # the ill-conditioned ellipsoid is harder than the sphere


def test_largescale_problems_have_cocos_optimum():
    """f1 of bbob-largescale is a sphere: its minimiser follows from d + 1 evaluations, and the value there is
    the f_opt the harness reports (cocoex itself confirms the final target is hit)."""
    pytest.importorskip("cocoex")
    pytest.importorskip("ioh")
    from cbopt.bench.problems import make_problem

    d = 20
    p = make_problem("bbob-largescale:f1", d, 3)
    assert p.bounds.shape == (d, 2) and np.all(p.bounds == [-5.0, 5.0])
    f0 = p.point(np.zeros(d))
    xopt = (1.0 - (p.batched(np.eye(d)) - f0)) / 2.0  # f(e_i) - f(0) = 1 - 2 xopt_i
    assert abs(p.point(xopt) - p.fopt) < 1e-9
    x = np.random.default_rng(0).uniform(-5, 5, (3, 4, d))
    assert p.batched(x).shape == (3, 4) and np.all(p.batched(x) > p.fopt)
    with pytest.raises(ValueError, match="bbob-largescale suite has d in"):
        make_problem("bbob-largescale:f1", 30, 1)
    with pytest.raises(ValueError, match="k = 1 ... 24"):
        make_problem("bbob-largescale:f25", 20, 1)


def test_targets_reached_counts_cocos_51_targets():
    from cbopt.bench.report import targets_reached

    rows = [{"trace": [(1, 100.0), (5, 1.0 + 1e-3)], "fopt": 1.0},  # 1e-3 reached: targets 1e2 ... 1e-3
            {"trace": [], "fopt": 0.0}]  # nothing evaluated: no target
    assert targets_reached(rows) == pytest.approx(26 / 102)


def test_the_report_publishes_every_run_as_csv(tmp_path):
    import csv

    db = str(tmp_path / "b.sqlite")
    path = tmp_path / "s.toml"
    path.write_text('[c]\nproblems = ["cbopt:sphere"]\ndims = [2]\ninstances = [1, 2]\nseeds = [0]\n'
                    'budget = "100*d"\ntarget = 1e-8\nsolvers = ["cbopt:cbo"]\n')
    run_suite(str(path), db, log=lambda *a, **k: None)
    report(db, tmp_path / "rep", suite="c")
    with open(tmp_path / "rep" / "runs.csv") as fh:
        got = list(csv.DictReader(fh))
    rows = Store(db).rows("c")
    assert len(got) == len(rows) == 2
    for g, r in zip(got, rows, strict=True):
        assert float(g["best"]) == r["best"] and int(g["nfev"]) == r["nfev"] and g["solver"] == "cbopt:cbo"
        assert g["evals_to_target"] == ("" if r["evals_to_target"] is None else str(r["evals_to_target"]))


def test_bbob_noisy_runs_are_scored_on_their_noise_free_values(tmp_path):
    """A noisy problem's run is scored as COCO scores it: on the noise-free values its logger records, never on
    the (lucky) noisy values the solver saw; the report counts it per function f101-f130."""
    pytest.importorskip("cocoex")
    from concurrent.futures import ProcessPoolExecutor

    from cbopt.bench.problems import make_problem
    from cbopt.bench.report import bbob_markdown
    from cbopt.bench.runner import run_one
    from cbopt.bench.store import Key

    p = make_problem("bbob-noisy:f108", 2, 1, {"coco": str(tmp_path / "direct")})  # sphere, severe uniform noise
    x = np.zeros(2)
    drawn = [p.point(x) for _ in range(20)]
    n, true = p.truth()
    p.close()
    assert n >= 1 and np.isfinite(true) and len(set(drawn)) > 1  # the same point, many values; one truth
    with ProcessPoolExecutor(1) as ex:  # cocoex resolves its output folder from the working directory
        row = ex.submit(run_one, Key("n", "cbopt:auto", "bbob-noisy:f108", 2, 1, 0, 2000), 1e-8,
                        str(tmp_path)).result()
    assert row["nfev"] <= 2000 and row["best"] >= 0 and row["trace"] and all(f >= 0 for _, f in row["trace"])
    assert [f for _, f in row["trace"]] == sorted((f for _, f in row["trace"]), reverse=True)
    assert list(tmp_path.glob("cbopt-auto/*/data_f108/*.dat"))  # COCO's own files, for cocopp
    text = bbob_markdown({(2, "cbopt:auto"): {108: (0, 1), 125: (1, 1)}})
    assert "f101–f130" in text and "| 2 | cbopt:auto | 1 / 2 | 1 / 1 |" in text


def test_the_bbob_noisy_reference_of_cocopp():
    pytest.importorskip("cocopp")
    from cbopt.bench.report import ECDF_TARGETS, reference

    ref = reference(10, [101, 125], "best09-16-bbob-noisy")
    assert ref.shape == (2 * len(ECDF_TARGETS),) and np.isfinite(ref[:len(ECDF_TARGETS)]).all()


def test_a_noisy_problem_without_a_coco_folder_leaves_no_files(tmp_path, monkeypatch):
    pytest.importorskip("cocoex")
    import tempfile

    from cbopt.bench.problems import make_problem

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.chdir(tmp_path)  # cocoex also makes ./exdata
    p = make_problem("bbob-noisy:f101", 2, 1)
    p.point(np.zeros(2))
    assert p.truth()[0] == 1 and any((tmp_path / "tmp").iterdir())  # COCO's logger wrote its record
    p.close()
    assert not any((tmp_path / "tmp").iterdir()) and not (tmp_path / "exdata").exists()


def test_the_report_reads_the_runtime_ecdf_at_fixed_budgets(monkeypatch):
    """The ECDF over COCO's 51 targets at 1e2·d, 1e3·d, 1e4·d; a budget beyond a solver's own reads '–', and
    the wall time per evaluation sits beside it."""
    from cbopt.bench import report as rp

    monkeypatch.setattr(rp, "reference", lambda *a, **k: None)  # cocopp or not: the same rows
    run = {"problem": "bbob:f1", "dim": 2, "solver": "s", "budget": 2000, "fopt": 0.0, "nfev": 2000, "wall": 0.5}
    rows = [dict(run, trace=[(100, 1.0), (1500, 1e-8)]),  # 1e0 at 100 evaluations: 11 of 51 targets; 1e-8: all
            dict(run, trace=[(300, 0.5)])]  # past 1e2·d = 200; 12 targets by 1e3·d
    text = rp.budget_markdown(rows)
    assert f"| 2 | s | {11 / 102:.3f} | {(51 + 12) / 102:.3f} | – | 250.0 |" in text
    assert rp.budget_markdown([dict(rows[0], problem="cbopt:sphere")]) == ""  # not a COCO suite: no table
