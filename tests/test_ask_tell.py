"""Ask/tell: the same kernels and driver as minimize, the same trajectory for the same seed."""

import numpy as np
import pytest

import cbopt
from cbopt.objectives import rastrigin, sphere


@pytest.mark.parametrize("method", sorted(cbopt.methods()))
@pytest.mark.parametrize("n_runs", [1, 3])
def test_ask_tell_reproduces_minimize(method, n_runs):
    kw = dict(bounds=[(-5, 5)] * 4, method=method, rng=7, max_evals=3030, n_runs=n_runs)
    ref = cbopt.minimize(rastrigin, noisy=False, **kw)  # ask/tell re-evaluates nothing: minimize without the check
    opt = cbopt.Optimizer(**kw)
    while not opt.stop():
        x = opt.ask()
        opt.tell(x, rastrigin(x))
    res = opt.result()
    np.testing.assert_array_equal(res.x, ref.x)
    np.testing.assert_array_equal(res.population, ref.population)
    assert res.nfev == ref.nfev and res.reason == ref.reason and res.nit == ref.nit
    assert res.reason in opt.stop()  # the budget, or the method's own criterion (ach) ended both alike


def test_missing_evaluations_follow_the_nonfinite_policy():
    opt = cbopt.Optimizer(bounds=[(-3, 3)] * 2, rng=0, max_evals=2000)
    failed = 0
    while not opt.stop():
        x = opt.ask()
        e = sphere(x)
        e[::4] = np.nan  # a quarter of the evaluations failed
        failed += len(e[::4])
        opt.tell(x, e)
    res = opt.result()
    assert res.nfev_nonfinite == failed and res.fun < 1e-3


def test_ask_tell_misuse_is_a_clear_error():
    opt = cbopt.Optimizer("cbo", bounds=[(-3, 3)] * 2, rng=0, max_evals=200)  # 40 particles
    with pytest.raises(RuntimeError, match="ask for points first"):
        opt.tell(np.zeros((40, 2)), np.zeros(40))
    x = opt.ask()
    with pytest.raises(RuntimeError, match="ask twice"):
        opt.ask()
    with pytest.raises(ValueError, match="points you were asked"):
        opt.tell(x + 1, sphere(x))
    with pytest.raises(ValueError, match="energies of shape"):
        opt.tell(x, sphere(x)[:-1])
    opt.tell(x, sphere(x))  # the failed tells changed nothing
    while not opt.stop():
        x = opt.ask()
        opt.tell(x, sphere(x))
    with pytest.raises(RuntimeError, match="stopped"):
        opt.ask()
    assert opt.result().nfev == 200


def test_optimizer_with_constraints_and_target():
    opt = cbopt.Optimizer(bounds=[(-2, 2)] * 2, rng=0, max_evals=20_000, target=-1.40,
                          constraints=cbopt.Penalty({"type": "eq", "fun": lambda x: (x**2).sum(-1) - 1}, weight=2.0))
    while not opt.stop():
        x = opt.ask()
        opt.tell(x, x[..., 0] + x[..., 1])
    assert "TARGET" in opt.stop() and opt.result().fun <= -1.40  # the penalised value: f + 2 |g|


def test_tell_takes_the_asked_points_as_a_list_of_arrays():
    """Users evaluating point by point often hold a list: it is the same points, and is accepted as such."""
    opt = cbopt.Optimizer("cbo", None, bounds=[(-1, 1)] * 2, rng=0)
    ref = cbopt.Optimizer("cbo", None, bounds=[(-1, 1)] * 2, rng=0)
    for _ in range(3):
        x, y = opt.ask(), ref.ask()
        points = [np.array(p) for p in x]
        opt.tell(points, [float((p**2).sum()) for p in points])
        ref.tell(y, (y**2).sum(-1))
    np.testing.assert_array_equal(opt.result().x, ref.result().x)
    x = opt.ask()
    with pytest.raises(ValueError, match="unchanged"):
        opt.tell([np.array(p) + 1e-3 for p in x], [0.0] * len(x))


def _drive(opt, steps=None):
    k = 0
    while not opt.stop() and (steps is None or k < steps):
        X = opt.ask()
        opt.tell(X, rastrigin(X))
        k += 1
    return opt


@pytest.mark.parametrize("method", ["auto"] + sorted(cbopt.methods()))
def test_an_optimizer_pickles_and_saves_mid_run(method, tmp_path):
    """A pickled copy and a saved-then-loaded optimizer (with points asked, not yet told) continue exactly as
    the original: the same asked points and the same result."""
    import pickle

    kw = dict(method=method, bounds=[(-5, 5)] * 3, rng=1, max_evals=1500)
    ref = _drive(cbopt.Optimizer(**kw))
    a = _drive(cbopt.Optimizer(**kw), steps=3)
    pending = a.ask()
    a.save(tmp_path / "opt.ckpt")
    copy = pickle.loads(pickle.dumps(a))
    loaded = cbopt.Optimizer(**kw).load(tmp_path / "opt.ckpt")
    for opt in (copy, loaded):
        X = opt.ask() if opt is loaded else pending
        np.testing.assert_array_equal(np.asarray(X), np.asarray(pending))
        opt.tell(X, rastrigin(X))
        res = _drive(opt).result()
        assert res.fun == ref.result().fun and res.nfev == ref.result().nfev


def test_an_optimizer_loads_only_its_own_file(tmp_path):
    path = tmp_path / "opt.ckpt"
    kw = dict(method="cbo", bounds=[(-5, 5)] * 3, rng=1, max_evals=1500)
    with pytest.raises(ValueError, match="nothing to save before the first tell"):
        cbopt.Optimizer(**kw).save(path)
    _drive(cbopt.Optimizer(**kw), steps=2).save(path)
    with pytest.raises(cbopt.checkpoint.CheckpointError, match="random stream"):
        cbopt.Optimizer(**{**kw, "rng": 2}).load(path)
    with pytest.raises(RuntimeError, match="fresh Optimizer"):
        _drive(cbopt.Optimizer(**kw), steps=1).load(path)


def test_a_pickled_optimizer_keeps_the_users_options_in_its_later_runs():
    """The runs a restart sequence starts after unpickling take the user's options (and the budget's) as the
    original's do: its method is matched by name, not by the identity of the unpickled spec."""
    import pickle

    kw = dict(bounds=[(-5, 5)] * 3, rng=1, max_evals=30_000, options={"active": False, "tolfun": 1e-6})
    a = _drive(cbopt.Optimizer(**kw), steps=1)
    b = pickle.loads(pickle.dumps(a))
    for opt in (a, b):
        runs = []  # the ACH runs (a CBO run takes its own options)
        while not opt.stop() and len(runs) < 3:
            X = opt.ask()
            run = opt.run.run
            if run.spec.name == "ach" and (not runs or runs[-1] is not run):
                runs.append(run)
            opt.tell(X, rastrigin(X))
        assert len(runs) == 3 and all(not r.params.active and r.params.tolfun == 1e-6 for r in runs)
