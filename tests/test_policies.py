"""The grouped front door: typed policy objects, each default written once, and integer variables."""

import dataclasses
import inspect
import pickle

import numpy as np
import pytest

import cbopt
from cbopt.objectives import rastrigin, sphere
from cbopt.stopping import EVALS_PER_DIM

B3 = [(-3.0, 3.0)] * 3


def test_the_front_door_is_small():
    """minimize's parameters: 22 (from 36), the settings of a group in one policy object each."""
    names = [n for n, p in inspect.signature(cbopt.minimize).parameters.items() if p.kind is not p.VAR_KEYWORD]
    assert len(names) == 22
    assert {"stop", "restarts", "refine", "checkpoint", "backend"} <= set(names)


def test_every_stopping_default_has_one_home():
    """No front door carries a stopping rule of its own: the defaults are Stop's fields, and the default budget is
    Stop.budgeted's. A call without settings runs under exactly Stop()'s rules."""
    rules = {f.name for f in dataclasses.fields(cbopt.Stop)} - {"max_evals", "target"}
    from cbopt.cli import build_parser
    from cbopt.minimize import prepare

    for front in (cbopt.minimize, cbopt.Optimizer, prepare):
        params = inspect.signature(front).parameters
        assert not rules & set(params), front
        assert params["stop"].default is None and params["max_evals"].default is None
    run = build_parser().parse_args(["run", "sphere"])
    assert run.max_iter is None and run.max_time is None and run.checkpoint_every is None
    st = prepare(bounds=B3, method="cbo")
    assert st.rules == cbopt.Stop(max_evals=EVALS_PER_DIM * 3)
    assert cbopt.Stop().budgeted(3) == st.rules and cbopt.Stop(max_iter=5).budgeted(3).max_evals is None


def test_policies_validate_their_fields():
    for make, exc, match in [
        (lambda: cbopt.Stop(max_iter=2.5), ValueError, "max_iter: must be an integer"),
        (lambda: cbopt.Stop(patience=None), ValueError, "patience"),
        (lambda: cbopt.Stop(xtol=-1), ValueError, "xtol"),
        (lambda: cbopt.Refine("bfgs"), ValueError, "refine"),
        (lambda: cbopt.Refine("auto", budget=1.0), ValueError, "refine budget"),
        (lambda: cbopt.Checkpoint("f.ckpt", every=0), ValueError, "checkpoint every"),
        (lambda: cbopt.Checkpoint("f.ckpt", resume="yes"), TypeError, "resume"),
        (lambda: cbopt.Checkpoint(""), TypeError, "checkpoint"),
        (lambda: cbopt.IPOP(2, incpopsize=0.5), ValueError, "incpopsize"),
        (lambda: cbopt.restarts.Portfolio(trend=0.5), ValueError, "Portfolio.trend"),
        (lambda: cbopt.restarts.Portfolio(plateau=1), TypeError, "Portfolio.plateau"),
        (lambda: cbopt.Torch("cpu", compile=1), TypeError, "compile"),
    ]:
        with pytest.raises(exc, match=match):
            make()
    with pytest.raises(ValueError, match="Penalty weight"):
        cbopt.minimize(sphere, bounds=B3, constraints=cbopt.Penalty({"type": "eq", "fun": sphere}, weight=-1))


def test_shorthands_and_policies_mean_the_same():
    a = cbopt.minimize(sphere, bounds=B3, rng=0, max_evals=3000, target=1e-8, method="cbo")
    b = cbopt.minimize(sphere, bounds=B3, rng=0, stop=cbopt.Stop(max_evals=3000, target=1e-8), method="cbo")
    np.testing.assert_array_equal(a.x, b.x)
    assert a.nfev == b.nfev and a.reason == b.reason
    c = cbopt.minimize(sphere, bounds=B3, rng=0, max_evals=3000, restarts=2, refine="nelder-mead", method="cbo")
    d = cbopt.minimize(sphere, bounds=B3, rng=0, max_evals=3000, restarts=cbopt.IPOP(2, incpopsize=2.0),
                       refine=cbopt.Refine("Nelder-Mead", budget=0.1), method="cbo")
    np.testing.assert_array_equal(c.x, d.x)


def test_checkpoints_compose_with_restarts(tmp_path):
    path = tmp_path / "seq.ckpt"
    kw = dict(bounds=B3, rng=4, max_evals=6000, restarts=cbopt.IPOP(3), method="cbo")

    def ctrl_c(intermediate_result):
        if intermediate_result.nit == 40:
            raise KeyboardInterrupt

    first = cbopt.minimize(sphere, checkpoint=cbopt.Checkpoint(path, every=10), callback=ctrl_c, **kw)
    assert first.reason == "INTERRUPTED"
    resumed = cbopt.minimize(sphere, checkpoint=cbopt.Checkpoint(path, every=10, resume=True), **kw)
    plain = cbopt.minimize(sphere, **kw)
    np.testing.assert_array_equal(resumed.x, plain.x)
    assert resumed.nfev == plain.nfev


def test_old_flat_names_point_to_their_policy():
    for kw, hint in [({"xtol": 1e-3}, r"stop=cbopt.Stop\(xtol=...\)"),
                     ({"incpopsize": 3}, r"IPOP\(k, incpopsize=...\)"),
                     ({"refine_budget": 0.2}, r"cbopt.Refine\(method, budget=...\)"),
                     ({"resume": True}, r"cbopt.Checkpoint\(path, resume=True\)"),
                     ({"penalty": 5}, r"cbopt.Penalty\(constraints, weight=...\)"),
                     ({"init_scale": 2}, r"options=\{'init_scale': ...\}")]:
        with pytest.raises(TypeError, match=hint):
            cbopt.minimize(sphere, bounds=B3, **kw)


def mixed(X):
    """x0, x2 integer (optimum 2 and -1), x1 continuous (optimum 0.3): f* = 0 at an integral point only."""
    x, y, z = X[..., 0], X[..., 1], X[..., 2]
    return (x - 2) ** 2 + (y - 0.3) ** 2 + (z + 1) ** 2 + 0.5 * np.abs(np.sin(np.pi * x))


def test_integer_coordinates_are_rounded_where_evaluated():
    seen = []

    def f(X):
        seen.append(np.array(X[..., [0, 2]]))
        return mixed(X)

    res = cbopt.minimize(f, bounds=[(-4.7, 4.7)] * 3, integrality=[True, False, True], rng=0, max_evals=4000)
    every = np.concatenate([s.reshape(-1, 2) for s in seen])
    assert np.all(every == np.round(every)) and every.min() >= -4 and every.max() <= 4  # integral, in the box
    assert res.x[0] == 2 and res.x[2] == -1 and abs(res.x[1] - 0.3) < 1e-5
    assert res.fun == pytest.approx(float(mixed(res.x)), abs=0)  # res.x is the point whose value is res.fun


def test_integrality_in_ask_tell_and_torch():
    opt = cbopt.Optimizer(bounds=B3, integrality=[False, True, True], rng=0, max_evals=2000)
    while not opt.stop():
        X = opt.ask()
        assert np.all(X[..., 1:] == np.round(X[..., 1:]))
        opt.tell(X, mixed(X))
    assert np.all(opt.result().x[1:] == np.round(opt.result().x[1:]))
    torch = pytest.importorskip("torch")
    res = cbopt.minimize(cbopt.on_host(mixed), bounds=B3, integrality=np.array([1, 0, 1]), backend="cpu", rng=0,
                         max_evals=3000)
    assert isinstance(res.x, torch.Tensor) and res.x[0].item() == 2 and res.x[2].item() == -1


def test_torch_backend_without_a_device_follows_the_tensors():
    torch = pytest.importorskip("torch")
    bounds = torch.tensor([[-1.0, 1.0]] * 2, dtype=torch.float64)
    res = cbopt.minimize(sphere, bounds=bounds, backend=cbopt.Torch(dtype="float32"), rng=0, max_evals=200,
                         method="cbo")
    assert res.x.dtype == torch.float32 and res.x.device == bounds.device
    res = cbopt.minimize(sphere, bounds=B3, backend=cbopt.Torch(), rng=0, max_evals=200, method="cbo")
    assert isinstance(res.x, torch.Tensor) and res.x.dtype == torch.float64
    with pytest.raises(ValueError, match="numpy arrays"):
        cbopt.minimize(sphere, bounds=bounds, backend=cbopt.Numpy(), max_evals=200)


def test_every_status_has_its_sentence_in_one_place():
    from cbopt.stopping import MESSAGES

    assert set(MESSAGES) == set(cbopt.Status)
    for s in cbopt.Status:
        assert s.message == MESSAGES[s] and s.message.endswith(".")


def test_every_restart_contract_names_options_its_method_has():
    """A method takes part in BIPOP and the portfolio through its MethodSpec.restarts: the options it names
    exist, its default step size is a positive number, and its 'converged' criteria are its own."""
    from cbopt.methods import Problem

    problem = Problem(dim=3, n_runs=1, lo=np.full(3, -2.0), hi=np.full(3, 2.0), init_scale=1.0)
    with_contract = [s for s in cbopt.methods().values() if s.restarts is not None]
    assert with_contract and "ach" in {s.name for s in with_contract}
    for spec in with_contract:
        c = spec.restarts
        fields = {f.name for f in dataclasses.fields(spec.params)}
        assert {c.step, c.reference, c.max_steps, *c.noisy, *c.plateau} <= fields, spec.name
        assert spec.stop is not None and set(c.converged) <= {name for name, _ in spec.criteria}, spec.name
        sigma0 = c.sigma0(spec.make_params(None, 3), problem)
        assert isinstance(sigma0, float) and sigma0 > 0
        spec.make_params({**c.noisy, **c.plateau, c.step: 0.5, c.reference: 1.0, c.max_steps: 3}, 3)  # all accepted
        assert pickle.loads(pickle.dumps(spec)).restarts == c  # an Optimizer holding it pickles


def test_a_new_method_joins_the_portfolio_through_its_contract_alone():
    """The restart engine knows no method by name: a method registered with a restart contract runs in the
    default portfolio and BIPOP; one without is refused with the reason."""
    from cbopt.methods import _base

    twin = dataclasses.replace(cbopt.get_method("ach"), name="ach-twin")
    _base.register(twin)
    try:
        for policy in (cbopt.Portfolio(), cbopt.BIPOP()):
            res = cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 3, method="ach-twin", restarts=policy, rng=0,
                                 max_evals=20_000)
            assert res.fun < 1e-8 and {r["method"] for r in res.restart_log} <= {"ach-twin", "cbo", "coordinate"}
    finally:
        del _base._REGISTRY["ach-twin"]
    with pytest.raises(ValueError, match="MethodSpec.restarts"):
        cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 3, method="cbo", restarts=cbopt.Portfolio(), rng=0,
                       max_evals=2000)


def _doors():
    """Every front door that runs a loop, as a call taking the keywords under test."""
    sphere = lambda X: ((X - 0.5) ** 2).sum(-1)  # noqa: E731
    saddle = lambda x, y: (x * x).sum(-1) - (y * y).sum(-1)  # noqa: E731
    two = lambda x: x[..., :2] ** 2  # noqa: E731
    doors = {
        "minimize": lambda **kw: cbopt.minimize(sphere, bounds=[(-2, 2)] * 2, rng=0, max_evals=4000, **kw),
        "minimax": lambda **kw: cbopt.minimax(saddle, [(-2, 2)] * 2, [(-2, 2)] * 2, rng=0, max_evals=4000,
                                              options={"n_particles": 50}, **kw),
        "multiobjective": lambda **kw: cbopt.multiobjective(two, [(0, 1)] * 2, rng=0, max_evals=4000,
                                                            options={"n_particles": 20}, **kw),
    }
    try:
        import torch

        import cbopt.nn
    except ImportError:
        return doors
    gen = torch.Generator().manual_seed(0)
    X, y = torch.randn(40, 2, generator=gen), torch.randn(40, 1, generator=gen)
    doors["nn.train"] = lambda **kw: cbopt.nn.train(torch.nn.Linear(2, 1), (X, y), epochs=6, batch_size=20, rng=0,
                                                    loss=torch.nn.functional.mse_loss, **kw)
    return doors


@pytest.mark.parametrize("door", list(_doors()))
def test_every_front_door_stops_alike_on_its_callback(door):
    """A truthy return and StopIteration both stop with CALLBACK, at every front door."""
    call, seen = _doors()[door], []
    res = call(callback=lambda r: seen.append(r) or len(seen) >= 3)
    assert res.reason == "CALLBACK" and len(seen) == 3

    def stop(r):
        raise StopIteration

    assert call(callback=stop).reason == "CALLBACK"


@pytest.mark.parametrize("door, rule", [("minimax", "target"), ("multiobjective", "xtol"), ("nn.train", "xtol")])
def test_every_front_door_refuses_a_stopping_rule_it_lacks(door, rule):
    doors = _doors()
    if door not in doors:
        pytest.skip("needs torch")
    with pytest.raises(ValueError, match=f"{rule}=.*not a rule it has"):
        doors[door](stop=cbopt.Stop(**{rule: 1e-3}))


@pytest.mark.parametrize("door", ["minimize", "minimax", "multiobjective"])
def test_every_front_door_shows_progress_and_runs_on_torch(door, capsys):
    pytest.importorskip("torch")
    import torch

    res = _doors()[door](progress=True, backend="torch")
    assert isinstance(res.x, torch.Tensor)
    assert res.reason in capsys.readouterr().err  # the last line says why it ended
