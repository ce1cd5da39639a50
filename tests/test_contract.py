"""Contract test: every registered method honours the driver's guarantees."""

import numpy as np
import pytest

import cbopt
from cbopt.objectives import rastrigin, sphere

METHODS = sorted(cbopt.methods())


def test_registry_lists_methods_with_metadata():
    reg = cbopt.methods()
    assert "cbo" in reg
    for name, spec in reg.items():
        assert spec.name == name and spec.summary and spec.reference
        assert isinstance(spec.needs_gradient, bool) and isinstance(spec.supports_constraints, bool)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_runs", [1, 3])
def test_runs_and_returns_a_valid_result(method, n_runs, xp):
    seen = []

    def f(x):
        seen.append(x)
        return sphere(x)

    res = cbopt.minimize(f, bounds=[(-3, 3)] * 4, method=method, rng=0, max_evals=2000, n_runs=n_runs, **xp.kw)
    for a in (seen[0], seen[-1], res.x, res.population, res.energies, res.consensus):
        xp.check(a)  # dtype and device preserved: inputs to f, and every array of the result
    x, pop, en = xp.np(res.x), xp.np(res.population), xp.np(res.energies)
    assert x.shape == (4,) and np.isfinite(res.fun) and isinstance(res.fun, float)
    tol = 1e-5 if "float32" in xp.name else 1e-12
    assert res.fun == pytest.approx(float(sphere(x)), rel=tol, abs=tol)
    assert pop.ndim == 2 and pop.shape[1] == 4
    assert en.shape == (pop.shape[0],)
    np.testing.assert_allclose(en, sphere(pop), rtol=tol, atol=tol)
    assert isinstance(res.status, int) and res.reason == cbopt.Status(res.status).name
    assert res.fun < 1.0  # it optimises, not just runs
    if n_runs > 1:
        assert len(res.runs) == n_runs
        assert res.fun == min(r.fun for r in res.runs)
        # the runs' evaluations and the noise check's re-evaluations of the best point (cbopt.noisy)
        assert 0 < res.get("noise_checks", 0) <= 15 and res.nfev == sum(r.nfev for r in res.runs) + res.noise_checks
        for r in res.runs:
            xp.check(r.x)


def population(method, dim):
    return cbopt.get_method(method).make_params(None, dim).n_particles


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("budget", ["n", "n+1", "2n-1", 1000, 1234])
def test_budget_is_exact_and_never_exceeded(method, budget, xp):
    n = population(method, 3)
    budget = {"n": n, "n+1": n + 1, "2n-1": 2 * n - 1}.get(budget, budget)
    calls = []

    def f(x):
        calls.append(x.shape[0] * x.shape[1])
        return sphere(x)

    res = cbopt.minimize(f, bounds=[(-3, 3)] * 3, method=method, rng=1, max_evals=budget, **xp.kw)
    assert res.nfev == sum(calls) <= budget
    if res.reason != "MAX_EVALS":  # only convergence may end it sooner: the method's own criterion, or (float32
        # sphere underflowing to exactly 0) the swarm's spread at 0
        spec = cbopt.get_method(method)
        assert spec.stop is not None and (res.get("criterion") in dict(spec.criteria) or res.spread == 0.0)
        return
    assert budget - res.nfev < res.population.shape[0]  # stopped only when the next step would not fit


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("options", [None, {"batch_size": 10, "batch_mode": "partial"}])
def test_counts_follow_from_the_steps(method, options):
    """A run evaluates ``initial_points`` (default n_particles) first and ``points_per_step`` (default
    n_particles) at every step: checkpoints refuse counts that do not follow from the steps, so every method
    must keep to it."""
    spec = cbopt.get_method(method)
    try:
        params = spec.make_params(options, 3)
    except (TypeError, ValueError):
        pytest.skip(f"{method} takes no random batches")
    sizes = []

    def f(x):
        sizes.append(x.shape[1])
        return sphere(x)

    # noisy=False: the method's own counts, without the noise check's re-evaluations of single points
    res = cbopt.minimize(f, bounds=[(-3, 3)] * 3, method=method, rng=1, max_evals=1500, options=options, noisy=False)
    n = params.n_particles
    first = spec.initial_points if spec.initial_points is not None else n
    assert sizes == [first] + [getattr(params, "points_per_step", n)] * res.nit
    assert res.nfev == sum(sizes)


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_result_on_every_backend(method, xp):
    a, b, c = (cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 5, method=method, rng=s, max_evals=3000, **xp.kw)
               for s in (7, 7, 8))
    np.testing.assert_array_equal(xp.np(a.x), xp.np(b.x))
    np.testing.assert_array_equal(xp.np(a.population), xp.np(b.population))
    assert not np.array_equal(xp.np(a.population), xp.np(c.population))


@pytest.mark.parametrize("method", METHODS)
def test_seed_and_generator_agree(method):
    a = cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 5, method=method, rng=7, max_evals=3000)
    b = cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 5, method=method, rng=np.random.default_rng(7), max_evals=3000)
    c = cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 5, method=method, rng=8, max_evals=3000)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.population, b.population)
    assert not np.array_equal(a.population, c.population)


@pytest.mark.parametrize("method", METHODS)
def test_does_not_touch_the_global_rng(method, xp):
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    if xp.is_torch:
        import torch

        torch_before = torch.random.get_rng_state().clone()
    cbopt.minimize(sphere, bounds=[(-1, 1)] * 2, method=method, rng=3, max_evals=500, **xp.kw)
    assert np.array_equal(np.random.get_state()[1], before)
    if xp.is_torch:
        assert torch.equal(torch.random.get_rng_state(), torch_before)


@pytest.mark.parametrize("method", METHODS)
def test_float32_energies_are_cast_to_the_run_dtype(method):
    seen = []

    def f(x):
        seen.append(x.dtype)
        return (x * x).sum(-1).astype(np.float32)

    res = cbopt.minimize(f, bounds=[(-1, 1)] * 2, method=method, rng=0, max_evals=400)
    assert all(dt == np.float64 for dt in seen) and res.x.dtype == np.float64


@pytest.mark.parametrize("method", METHODS)
def test_energies_of_another_precision_are_cast_to_the_run_dtype(method, xp):
    if not xp.is_torch:
        pytest.skip("numpy: covered by test_float32_energies_are_cast_to_the_run_dtype")
    import torch

    other = torch.float64 if xp.dtype == "float32" else torch.float32
    res = cbopt.minimize(lambda x: (x * x).sum(-1).to(other), bounds=[(-1, 1)] * 2, method=method, rng=0,
                         max_evals=400, **xp.kw)
    xp.check(res.x)
    xp.check(res.energies)


@pytest.mark.parametrize("method", METHODS)
def test_inactive_runs_are_frozen_and_not_counted(method, xp):
    # some runs hit the target early; the others keep going; counts are per run and exact. The target is the
    # median of a pilot's best values after 2000 evaluations: the runs are independent, so the better half of
    # the pilot reaches it within 2000 evaluations again, whatever the method's speed
    kw = dict(bounds=[(-3, 3)] * 2, method=method, rng=0, n_runs=4, noisy=False, **xp.kw)
    pilot = cbopt.minimize(sphere, max_evals=2000, **kw)
    target = float(np.median([r.fun for r in pilot.runs]))
    res = cbopt.minimize(sphere, target=target, max_evals=6000, **kw)
    early = [res.runs[i] for i, r in enumerate(pilot.runs) if r.fun <= target]
    assert len(early) >= 2 and all(r.reason == "TARGET" and r.fun <= target and r.nfev <= 2000 for r in early)
    late = [res.runs[i] for i, r in enumerate(pilot.runs) if r.fun > target]
    assert all(r.nfev > 2000 or r.get("criterion") or r.reason == "CONVERGED" for r in late)  # the others kept going
    # (or converged)
    done = [r for r in res.runs if r.reason == "TARGET"]
    assert sum(r.nfev for r in res.runs) + res.get("noise_checks", 0) == res.nfev
    for r in done:  # frozen after stopping: its population still matches its own energies
        np.testing.assert_allclose(xp.np(r.energies), sphere(xp.np(r.population)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_constraints_reach_every_method_that_declares_them(method, xp):
    if not cbopt.get_method(method).supports_constraints:
        with pytest.raises(ValueError, match="constraints"):
            cbopt.minimize(sphere, bounds=[(-2, 2)] * 3, method=method, constraints=cbopt.Sphere(), **xp.kw)
        return
    res = cbopt.minimize(lambda x: ((x - 2.0) ** 2).sum(-1), bounds=[(-2, 2)] * 3, method=method, rng=0,
                         max_evals=2000, constraints=cbopt.Sphere(), **xp.kw)
    np.testing.assert_allclose(np.linalg.norm(xp.np(res.population), axis=1), 1.0, atol=1e-5)
    assert res.constraint_violation < 1e-5


WRAPPERS = ["restarts", "refine", "checkpoint", "ask/tell", "evaluator", "constraints", "integrality"]


def _with(wrapper, method, tmp_path):
    """One call of ``method`` inside ``wrapper``; returns its result."""
    import concurrent.futures as cf

    base = dict(bounds=[(-3, 3)] * 3, method=method, rng=2, max_evals=1200)
    if wrapper == "restarts":
        return cbopt.minimize(sphere, restarts=2, **base)
    if wrapper == "refine":
        return cbopt.minimize(sphere, refine="nelder-mead", **base)
    if wrapper == "checkpoint":
        path = tmp_path / f"{method}.ckpt"
        cbopt.minimize(sphere, checkpoint=path, **dict(base, max_evals=600))
        return cbopt.minimize(sphere, checkpoint=cbopt.Checkpoint(path, resume=True), **base)
    if wrapper == "ask/tell":
        opt = cbopt.Optimizer(**base)
        while not opt.stop():
            X = opt.ask()
            opt.tell(X, sphere(X))
        return opt.result()
    if wrapper == "evaluator":
        with cf.ThreadPoolExecutor(2) as ex:
            return cbopt.minimize(lambda x: float(sphere(x)), evaluator=cbopt.Pool(ex), **base)
    if wrapper == "constraints":
        return cbopt.minimize(sphere, constraints={"type": "ineq", "fun": lambda X: X[..., 0] - 0.5}, **base)
    return cbopt.minimize(sphere, integrality=[True, False, True], **base)


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_in_every_wrapper(method, wrapper, tmp_path):
    """Every method composes with every wrapper, or the registry's capability refuses the combination up front
    with a clear error (a fixed-stencil method cannot grow its population for restarts)."""
    spec = cbopt.methods()[method]
    refused = wrapper == "restarts" and not spec.resizable
    if refused:
        with pytest.raises(ValueError, match="no population size to grow"):
            _with(wrapper, method, tmp_path)
        return
    res = _with(wrapper, method, tmp_path)
    assert np.isfinite(res.fun) and res.nfev <= 1200
    if wrapper == "integrality":
        assert res.x[0] == np.round(res.x[0]) and res.x[2] == np.round(res.x[2])
    if wrapper == "constraints":
        assert res.constraint_violation < 0.5


@pytest.mark.parametrize("method", METHODS)
def test_kernels_take_their_arguments_in_the_one_order(method):
    import inspect

    from cbopt.methods._base import KERNEL_ORDER

    spec = cbopt.methods()[method]
    for kernel, order in KERNEL_ORDER.items():
        names = list(inspect.signature(getattr(spec, kernel)).parameters)
        assert tuple(names[: len(order)]) == order, (kernel, names)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("boundary", ["reflect", "clip"])
def test_a_float32_run_evaluates_float32_points_under_either_box_handling(method, boundary):
    """No float64 constant or count may promote a float32 run's state (on numpy a float64 sigma made every
    asked point float64 under clipping: twice the memory and time of the run asked for)."""
    import dataclasses

    options = {"boundary": boundary}
    if "boundary" not in {f.name for f in dataclasses.fields(cbopt.get_method(method).params)}:
        if boundary == "clip":
            pytest.skip("no box handling option: run once, with its own")
        options = {}
    seen = set()

    def f(x):
        seen.add(x.dtype)
        return (x * x).sum(-1)

    res = cbopt.minimize(f, bounds=[(-3, 3)] * 6, method=method, options=options,
                         backend=cbopt.Numpy("float32"), rng=0, max_evals=1500, restarts=None)
    assert seen == {np.dtype(np.float32)}
    assert res.x.dtype == np.float32 and res.population.dtype == np.float32


@pytest.mark.parametrize("dim", [4, 12, 60])
def test_the_default_float32_run_evaluates_float32_points(dim):
    """The default's every regime (large and small ACH runs, CBO and its polish, the coordinate search; the
    sep model above d = 50) keeps a float32 run in float32."""
    seen = set()

    def f(x):
        seen.add(x.dtype)
        return rastrigin(x)

    res = cbopt.minimize(f, bounds=[(-5, 5)] * dim, backend=cbopt.Numpy("float32"), rng=0, max_evals=2000 * dim)
    assert seen == {np.dtype(np.float32)}
    assert res.x.dtype == np.float32 and len(res.restart_log) > 1
