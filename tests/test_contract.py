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
def test_runs_and_returns_a_valid_result(method, n_runs):
    res = cbopt.minimize(sphere, bounds=[(-3, 3)] * 4, method=method, rng=0, max_evals=2000, n_runs=n_runs)
    assert res.x.shape == (4,) and np.isfinite(res.fun)
    assert res.fun == pytest.approx(float(sphere(res.x)))
    assert res.population.ndim == 2 and res.population.shape[1] == 4
    assert res.energies.shape == (res.population.shape[0],)
    np.testing.assert_allclose(res.energies, sphere(res.population))
    assert isinstance(res.status, int) and res.reason == cbopt.Status(res.status).name
    assert res.fun < 1.0  # it optimises, not just runs
    if n_runs > 1:
        assert len(res.runs) == n_runs
        assert res.fun == min(r.fun for r in res.runs)
        assert res.nfev == sum(r.nfev for r in res.runs)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("budget", [40, 41, 79, 1000, 1234])
def test_budget_is_exact_and_never_exceeded(method, budget):
    calls = []

    def f(x):
        calls.append(x.shape[0] * x.shape[1])
        return sphere(x)

    res = cbopt.minimize(f, bounds=[(-3, 3)] * 3, method=method, rng=1, max_evals=budget)
    assert res.nfev == sum(calls) <= budget
    assert res.reason == "MAX_EVALS"
    assert budget - res.nfev < res.population.shape[0]  # stopped only when the next step would not fit


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_result(method):
    a = cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 5, method=method, rng=7, max_evals=3000)
    b = cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 5, method=method, rng=np.random.default_rng(7), max_evals=3000)
    c = cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 5, method=method, rng=8, max_evals=3000)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.population, b.population)
    assert not np.array_equal(a.population, c.population)


@pytest.mark.parametrize("method", METHODS)
def test_does_not_touch_the_global_rng(method):
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    cbopt.minimize(sphere, bounds=[(-1, 1)] * 2, method=method, rng=3, max_evals=500)
    assert np.array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("method", METHODS)
def test_float32_energies_are_cast_to_the_run_dtype(method):
    seen = []

    def f(x):
        seen.append(x.dtype)
        return (x * x).sum(-1).astype(np.float32)

    res = cbopt.minimize(f, bounds=[(-1, 1)] * 2, method=method, rng=0, max_evals=400)
    assert all(dt == np.float64 for dt in seen) and res.x.dtype == np.float64


@pytest.mark.parametrize("method", METHODS)
def test_inactive_runs_are_frozen_and_not_counted(method):
    # run 0's target is hit early; the others keep going; counts are per run and exact
    res = cbopt.minimize(sphere, bounds=[(-3, 3)] * 2, method=method, rng=0, n_runs=4, target=1e-3, max_evals=4000)
    done = [r for r in res.runs if r.reason == "TARGET"]
    assert done and all(r.fun <= 1e-3 and r.nfev < 4000 for r in done)
    assert sum(r.nfev for r in res.runs) == res.nfev
    for r in done:  # frozen after stopping: its population still matches its own energies
        np.testing.assert_allclose(r.energies, sphere(r.population))
