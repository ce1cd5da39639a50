"""minimax and multiobjective on the one driver loop: checkpoints (resumed bit for bit), evaluators, ask/tell and
exact budgets, as minimize has them."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import cbopt
from cbopt.checkpoint import CheckpointError

BX, BY = [(-2, 2)] * 2, [(-2, 2)] * 2
BOX = [(0, 1)] * 3


def saddle(x, y):
    """A saddle at 0, elementwise only (no reduction): a point's value is the same alone or in a batch."""
    return x[..., 0] ** 2 + 0.5 * x[..., 1] ** 2 + x[..., 0] * y[..., 1] - y[..., 0] ** 2 - y[..., 1] ** 2


def two(x):
    """Two objectives (a ZDT1-like front), elementwise only."""
    g = 1 + 4.5 * (x[..., 1] + x[..., 2])
    return np.stack([x[..., 0], g * (1 - np.sqrt(x[..., 0] / g))], -1)


def saddle_point(x, y):  # per point, for the evaluators
    return float(saddle(x, y))


def two_point(x):
    return two(x)


def _same(a, b, keys):
    for k in keys:
        u, v = a[k], b[k]
        assert np.array_equal(np.asarray(u), np.asarray(v)), k


MM = dict(rng=3, max_evals=12_000, options={"n_particles": 100})
MO = dict(rng=4, max_evals=3_000, options={"n_particles": 50})
MM_KEYS = ("x", "y", "fun", "nfev", "nit", "population_x", "population_y", "reason")
MO_KEYS = ("x", "F", "population", "population_F", "weights", "nfev", "nit", "reason")


class _Interrupt:
    """The objective, interrupted (Ctrl-C) at its ``at``-th call."""

    def __init__(self, f, at):
        self.f, self.at, self.calls = f, at, 0

    def __call__(self, *a):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.f(*a)


@pytest.mark.parametrize("at", [5, 6, 14])  # in an x-half, a y-half, later
def test_minimax_resumes_bit_for_bit_after_an_interrupt(tmp_path, at):
    ref = cbopt.minimax(saddle, BX, BY, **MM)
    path = tmp_path / "mm.npz"
    cut = cbopt.minimax(_Interrupt(saddle, at), BX, BY, checkpoint=cbopt.Checkpoint(path, every=1), **MM)
    assert cut.reason == "INTERRUPTED" and path.exists()
    res = cbopt.minimax(saddle, BX, BY, checkpoint=cbopt.Checkpoint(path, resume=True), **MM)
    _same(res, ref, MM_KEYS)


@pytest.mark.parametrize("at", [2, 9])
def test_multiobjective_resumes_bit_for_bit_after_an_interrupt(tmp_path, at):
    ref = cbopt.multiobjective(two, BOX, **MO)
    path = tmp_path / "mo.npz"
    cut = cbopt.multiobjective(_Interrupt(two, at), BOX, checkpoint=cbopt.Checkpoint(path, every=3), **MO)
    assert cut.reason == "INTERRUPTED"
    res = cbopt.multiobjective(two, BOX, checkpoint=cbopt.Checkpoint(path, resume=True), **MO)
    _same(res, ref, MO_KEYS)


def test_a_finished_wing_run_continues_with_a_larger_budget(tmp_path):
    path = tmp_path / "mo.npz"
    kw = dict(MO, max_evals=1_500)
    short = cbopt.multiobjective(two, BOX, checkpoint=path, **kw)
    longer = cbopt.multiobjective(two, BOX, checkpoint=cbopt.Checkpoint(path, resume=True), **dict(kw, max_evals=3_000))
    ref = cbopt.multiobjective(two, BOX, **dict(kw, max_evals=3_000))
    assert short.reason == "MAX_EVALS" and longer.nit > short.nit
    _same(longer, ref, MO_KEYS)  # the budget, not the file, decides where it ends
    path = tmp_path / "mm.npz"
    short = cbopt.minimax(saddle, BX, BY, checkpoint=path, **dict(MM, max_evals=6_000))
    longer = cbopt.minimax(saddle, BX, BY, checkpoint=cbopt.Checkpoint(path, resume=True), **MM)
    assert short.reason == "MAX_EVALS" and longer.nit > short.nit and longer.nfev <= MM["max_evals"]


def test_a_wing_checkpoint_is_held_to_its_identity(tmp_path):
    path = tmp_path / "mm.npz"
    cbopt.minimax(saddle, BX, BY, checkpoint=path, **MM)
    for other in (dict(MM, rng=4), dict(MM, options={"n_particles": 100, "dt": 0.1})):
        with pytest.raises(CheckpointError, match="another run"):
            cbopt.minimax(saddle, BX, BY, checkpoint=cbopt.Checkpoint(path, resume=True), **other)
    with pytest.raises(CheckpointError, match="another run"):
        cbopt.minimax(saddle, BX, [(-1, 1)] * 2, checkpoint=cbopt.Checkpoint(path, resume=True), **MM)
    with pytest.raises(CheckpointError, match="'minimax' checkpoint"):
        cbopt.multiobjective(two, BOX, checkpoint=cbopt.Checkpoint(path, resume=True), **MO)
    with pytest.raises(CheckpointError, match="'minimax' checkpoint"):
        cbopt.minimize(lambda X: (X**2).sum(-1), bounds=BX, rng=3, checkpoint=cbopt.Checkpoint(path, resume=True))


def test_a_wing_checkpoint_edited_by_hand_is_refused(tmp_path):
    import json
    import zipfile

    from cbopt.checkpoint import _digest

    path = tmp_path / "mo.npz"
    cbopt.multiobjective(two, BOX, checkpoint=path, **MO)
    with zipfile.ZipFile(path) as z:
        arrays = {n[:-4]: np.load(z.open(n)) for n in z.namelist()}
    header = json.loads(bytes(arrays.pop("header")).decode())
    header["numbers"]["nfev"] = 500  # a rewound count would extend the budget
    header["digest"] = _digest(arrays)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(CheckpointError, match="do not follow"):
        cbopt.multiobjective(two, BOX, checkpoint=cbopt.Checkpoint(path, resume=True), **MO)


def test_minimax_on_an_evaluator_follows_the_batched_trajectory():
    ref = cbopt.minimax(saddle, BX, BY, **dict(MM, max_evals=4_000))
    with ThreadPoolExecutor(2) as ex:
        res = cbopt.minimax(saddle_point, BX, BY, evaluator=ex, **dict(MM, max_evals=4_000))
    _same(res, ref, MM_KEYS)
    assert res.eval_failures == []


def test_minimax_on_a_process_pool():
    """The pairs and f(x, y) travel to worker processes (a picklable objective of the joint points)."""
    ref = cbopt.minimax(saddle, BX, BY, **dict(MM, max_evals=1_000, options={"n_particles": 20}))
    res = cbopt.minimax(saddle_point, BX, BY, evaluator=2, **dict(MM, max_evals=1_000, options={"n_particles": 20}))
    _same(res, ref, MM_KEYS)


def test_multiobjective_on_an_evaluator_gathers_vectors_and_failures():
    ref = cbopt.multiobjective(two, BOX, **MO)
    with ThreadPoolExecutor(2) as ex:
        res = cbopt.multiobjective(two_point, BOX, evaluator=ex, **MO)
    _same(res, ref, MO_KEYS)

    def flaky(x):
        if x[0] > 0.9:
            raise RuntimeError("no value here")
        return two(x)

    with ThreadPoolExecutor(2) as ex, pytest.warns(RuntimeWarning, match="failed in the evaluator"):
        res = cbopt.multiobjective(flaky, BOX, evaluator=ex, **MO)
    assert res.eval_failures and "no value here" in res.message
    assert np.isfinite(res.F).all() and (res.x[:, 0] <= 0.9).all()  # failed points are never on the front


def test_ask_tell_follows_the_front_doors_trajectories():
    ref = cbopt.minimax(saddle, BX, BY, **MM)
    opt = cbopt.MinimaxOptimizer(BX, BY, **MM)
    while not opt.stop():
        X, Y = opt.ask()
        opt.tell((X, Y), saddle(X, Y))
    _same(opt.result(), ref, MM_KEYS)
    ref = cbopt.multiobjective(two, BOX, **MO)
    opt = cbopt.ParetoOptimizer(BOX, **MO)
    while not opt.stop():
        X = opt.ask()
        opt.tell(X, two(X))
    _same(opt.result(), ref, MO_KEYS)


def test_ask_tell_of_the_wings_saves_loads_and_refuses_other_points(tmp_path):
    ref = cbopt.multiobjective(two, BOX, **MO)
    opt = cbopt.ParetoOptimizer(BOX, **MO)
    for _ in range(7):
        X = opt.ask()
        opt.tell(X, two(X))
    X = opt.ask()
    opt.save(tmp_path / "p.npz")  # with points asked and not told
    again = cbopt.ParetoOptimizer(BOX, **MO).load(tmp_path / "p.npz")
    with pytest.raises(RuntimeError, match="tell before ask"):
        again.tell(X, two(X))
    assert np.array_equal(again.ask(), X)  # the points asked before the save, asked again
    with pytest.raises(ValueError, match="unchanged"):
        again.tell(X + 0.01, two(X))
    again.tell(X, two(X))
    while not again.stop():
        X = again.ask()
        again.tell(X, two(X))
    _same(again.result(), ref, MO_KEYS)
    mm = cbopt.MinimaxOptimizer(BX, BY, **MM)
    X, Y = mm.ask()
    with pytest.raises(ValueError, match=r"\(X, Y\)"):
        mm.tell(X, saddle(X, Y))
    with pytest.raises(ValueError, match="expected values of shape"):
        mm.tell((X, Y), saddle(X, Y)[:3])
    with pytest.raises(RuntimeError, match="ask twice"):
        mm.ask()
    with pytest.raises(ValueError, match="nothing to save"):
        mm.save(tmp_path / "m.npz")


def test_a_wing_objective_that_raises_mid_run_keeps_the_result():
    def late(x, y, calls=[0]):  # noqa: B006 - the count of calls
        calls[0] += 1
        if calls[0] > 6:
            raise RuntimeError("the simulator crashed")
        return saddle(x, y)

    with pytest.raises(cbopt.ObjectiveError, match="simulator crashed") as info:
        cbopt.minimax(late, BX, BY, **MM)
    res = info.value.result
    assert res.reason == "OBJECTIVE_ERROR" and res.nit >= 2 and np.isnan(res.fun)

    def late2(x, calls=[0]):  # noqa: B006
        calls[0] += 1
        if calls[0] > 3:
            raise RuntimeError("the simulator crashed")
        return two(x)

    with pytest.raises(cbopt.ObjectiveError) as info:
        cbopt.multiobjective(late2, BOX, **MO)
    assert info.value.result.nit == 2 and len(info.value.result.F) > 0


@pytest.mark.parametrize("budget", [4_401, 5_000, 7_777])
def test_the_wings_budgets_are_exact(budget):
    seen = []
    res = cbopt.minimax(saddle, BX, BY, rng=0, max_evals=budget, options={"n_particles": 100},
                        callback=lambda r: seen.append(r.nfev))
    assert res.nfev <= budget and budget - res.nfev < 2 * 100 + 3 and seen == sorted(seen)
    res = cbopt.multiobjective(two, BOX, rng=0, max_evals=budget, options={"n_particles": 50})
    assert res.nfev <= budget and budget - res.nfev < 50


def test_the_wings_example_reports_what_it_claims():
    import pathlib
    import re
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "examples" / "wings.py")], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    gap = float(re.search(r"\|x\| \+ \|y\| = (\S+),", out).group(1))
    points = int(re.search(r"on a pool: (\d+) non-dominated", out).group(1))
    assert gap < 1e-3 and points >= 50, out


def test_ask_tell_reports_the_constraint_violation_as_minimize_does():
    """An infeasible constraint (x0 - 5 >= 0 in a box of +-3): no success, and the violation said, at both doors."""
    cons = {"type": "ineq", "fun": lambda x: x[..., 0] - 5}
    kw = dict(bounds=[(-3, 3)] * 2, constraints=cons, rng=0, max_evals=3000, method="cbo")
    res = cbopt.minimize(lambda X: (X**2).sum(-1), noisy=False, **kw)  # ask/tell makes no noise check
    opt = cbopt.Optimizer(**kw)
    while not opt.stop():
        X = opt.ask()
        opt.tell(X, (X**2).sum(-1))
    told = opt.result()
    for r in (res, told):
        assert not r.success and r.constraint_violation > 1.9
    assert told.constraint_violation == res.constraint_violation
