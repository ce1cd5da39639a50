import numpy as np
import pytest

import cbopt
from cbopt.objectives import rastrigin, sphere
from cbopt.schedules import EffectiveSampleSize, Geometric, StepDecay

B3 = [(-2, 2)] * 3


# ---------- bad input: a clear error that names the argument ----------

@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(bounds=[(-1, 1, 0)] * 3), ValueError, "bounds"),
        (dict(bounds=[(1, -1)] * 3), ValueError, "bounds: need lo < hi"),
        (dict(bounds=[(-np.inf, 1)] * 3), ValueError, "bounds: every bound must be finite"),
        (dict(bounds=[(-1, np.nan)] * 3), ValueError, "bounds"),
        (dict(bounds="abc"), TypeError, "bounds"),
        (dict(x0=np.zeros((2, 3))), ValueError, "x0"),
        (dict(x0=[0.0, np.nan, 1.0]), ValueError, "x0"),
        (dict(x0=np.zeros(4), bounds=B3), ValueError, "x0 has length 4"),
        (dict(x0=[5.0, 0, 0], bounds=B3), ValueError, "x0 lies outside bounds"),
        (dict(), ValueError, "give x0"),
        (dict(bounds=B3, options={"alpha": -1.0}), ValueError, "alpha"),
        (dict(bounds=B3, options={"alpha": np.nan}), ValueError, "alpha"),
        (dict(bounds=B3, options={"sigma": -2.0}), ValueError, "sigma"),
        (dict(bounds=B3, options={"n_particles": 0}), ValueError, "n_particles"),
        (dict(bounds=B3, options={"n_particles": 2.5}), ValueError, "n_particles"),
        (dict(bounds=B3, options={"dt": 0}), ValueError, "dt"),
        (dict(bounds=B3, options={"noise": "pink"}), ValueError, "noise"),
        (dict(bounds=B3, options={"batch_size": 100}), ValueError, "batch_size"),
        (dict(bounds=B3, options={"boundary": "wrap"}), ValueError, "boundary"),
        (dict(bounds=B3, options={"sigmaa": 1.0}), TypeError, "unknown option"),
        (dict(bounds=B3, method="nelder"), ValueError, "unknown method"),
        (dict(bounds=B3, rng=-1), ValueError, "rng"),
        (dict(bounds=B3, rng="seed"), TypeError, "rng"),
        (dict(bounds=B3, rng=np.random.RandomState(0)), TypeError, "rng"),
        (dict(bounds=B3, max_evals=-5), ValueError, "max_evals"),
        (dict(bounds=B3, max_evals=10), ValueError, "max_evals"),
        (dict(bounds=B3, stop=cbopt.Stop), TypeError, "stop: expected cbopt.Stop"),
        (dict(bounds=B3, stop={"max_iter": 3}), TypeError, r"stop=cbopt.Stop\(\*\*rules\)"),
        (dict(bounds=B3, max_evals=500, stop=cbopt.Stop(max_evals=600)), ValueError, "given both"),
        (dict(bounds=B3, target=np.nan), ValueError, "target"),
        (dict(bounds=B3, n_runs=0), ValueError, "n_runs"),
        (dict(bounds=B3, options={"init_scale": -1.0}), ValueError, "init_scale"),
        (dict(bounds=B3, options={"init_scale": [1.0, 2.0]}), ValueError, "init_scale"),
        (dict(bounds=B3, options=[("alpha", 1)]), TypeError, "options: expected a dict"),
        (dict(bounds=B3, history="all"), ValueError, "history"),
        (dict(bounds=B3, checkpoint=3), TypeError, "checkpoint: expected a file path"),
        (dict(bounds=B3, refine=3), TypeError, "refine: expected"),
        (dict(bounds=B3, integrality=[True, False]), ValueError, "integrality: expected one boolean per coordinate"),
        (dict(bounds=B3, integrality=[0.5, 0, 0]), TypeError, "integrality: expected booleans"),
        (dict(bounds=[(0.2, 0.8)] * 3, integrality=True), ValueError, "hold no integer"),
        (dict(bounds=B3, callback=3), TypeError, "callback"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cbopt.minimize(sphere, **{"method": "cbo", **kwargs})


def test_fun_must_be_callable():
    with pytest.raises(TypeError, match="fun"):
        cbopt.minimize("sphere", bounds=B3)


@pytest.mark.parametrize(
    "f, match",
    [
        (lambda x: float(np.sum(x**2)), "returned one number for the whole batch"),
        (lambda x: (x**2).sum(-1, keepdims=True), "Drop the trailing axis"),
        (lambda x: x**2, r"energies of shape \(1, 40\)"),
        (lambda x: np.full(x.shape[:-1], "a"), "real numbers"),
    ],
)
def test_objective_output_is_validated_before_iterating(f, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cbopt.minimize(f, bounds=B3, rng=0, method="cbo")


def test_objective_changing_shape_later_is_caught():
    calls = {"n": 0}

    def f(x):
        calls["n"] += 1
        return sphere(x) if calls["n"] < 3 else sphere(x)[..., :-1]

    with pytest.raises(cbopt.ObjectiveError) as info:
        cbopt.minimize(f, bounds=B3, rng=0, method="cbo")
    assert isinstance(info.value.__cause__, ValueError)


# ---------- objective failures and non-finite energies ----------

def test_objective_that_raises_stops_with_best_so_far_and_chains():
    calls = {"n": 0, "points": 0}

    def f(x):
        calls["n"] += 1
        if calls["n"] == 30:
            raise RuntimeError("simulation crashed")
        calls["points"] += int(np.prod(x.shape[:-1]))
        return sphere(x)

    with pytest.raises(cbopt.ObjectiveError, match="simulation crashed") as info:
        cbopt.minimize(f, bounds=B3, rng=0, method="cbo")
    err = info.value
    assert isinstance(err.__cause__, RuntimeError)
    res = err.result
    assert res.reason == "OBJECTIVE_ERROR" and not res.success
    # every evaluated point is counted, the re-evaluations of the noise check (cbopt.noisy) included
    assert calls["points"] > 20 * 40 and res.nfev == calls["points"]
    assert np.isfinite(res.fun) and res.fun == pytest.approx(float(sphere(res.x)))

    assert res.exception is err.__cause__


def test_objective_that_raises_on_the_first_call():
    def f(x):
        raise KeyError("boom")

    with pytest.raises(cbopt.ObjectiveError) as info:
        cbopt.minimize(f, bounds=B3, rng=0, method="cbo")
    assert info.value.result.x is None and info.value.result.nfev == 0


def test_nan_energies_are_never_best_and_are_counted():
    def f(x):
        e = sphere(x)
        return np.where(x[..., 0] > 0.5, np.nan, e)  # a NaN region that contains small values

    res = cbopt.minimize(f, bounds=[(-2, 2)] * 2, rng=0, max_evals=4000, method="cbo")
    assert np.isfinite(res.fun) and res.x[0] <= 0.5
    assert res.nfev_nonfinite > 0
    assert np.all(np.isinf(res.energies[res.population[:, 0] > 0.5]))


def test_all_nonfinite_stops_with_status():
    res = cbopt.minimize(lambda x: np.full(x.shape[:-1], np.nan), bounds=B3, rng=0, method="cbo")
    assert res.reason == "NONFINITE" and res.nfev_nonfinite == res.nfev == 40 and res.x is None


# ---------- stopping rules: the result says which fired ----------

def test_target_stops_early():
    res = cbopt.minimize(sphere, bounds=B3, rng=0, target=1e-4, method="cbo")
    assert res.reason == "TARGET" and res.success and res.fun <= 1e-4 and res.nfev < 15000


def test_max_iter():
    res = cbopt.minimize(sphere, bounds=B3, rng=0, stop=cbopt.Stop(max_iter=7), method="cbo", noisy=False)
    assert res.reason == "MAX_ITER" and res.nit == 7 and res.nfev == 8 * 40


def test_max_time():
    res = cbopt.minimize(sphere, bounds=B3, rng=0, stop=cbopt.Stop(max_time=0.05, xtol=None, ftol=None), max_evals=1e9,
                         method="cbo")
    assert res.reason == "MAX_TIME" and res.time < 2.0


def test_converged_by_xtol():
    res = cbopt.minimize(sphere, bounds=B3, rng=0, stop=cbopt.Stop(xtol=1e-6, ftol=None), max_evals=1e6, method="cbo")
    assert res.reason == "CONVERGED" and res.success and res.spread <= 1e-6


def test_energy_stagnation():
    res = cbopt.minimize(lambda x: np.floor(sphere(x)), bounds=B3, rng=0, stop=cbopt.Stop(patience=50), max_evals=1e6,
                         method="cbo")
    assert res.reason == "STAGNATION" and res.fun == 0.0


def test_consensus_stagnation():
    res = cbopt.minimize(sphere, bounds=B3, rng=0, stop=cbopt.Stop(xtol=None, ftol=None, ctol=1e-3, patience=20),
                         max_evals=1e6,
                         method="cbo")
    assert res.reason == "CONSENSUS_STALL"


def test_divergence_is_detected_not_clipped():
    # isotropic noise far beyond 2 lambda > d sigma^2 in d = 50: the bulk of the swarm explodes
    res = cbopt.minimize(sphere, bounds=[(-1, 1)] * 50, rng=0, method="cbo",
                         options={"noise": "isotropic", "sigma": 30.0, "boundary": None})  # free dynamics
    assert res.reason == "DIVERGED" and not res.success
    assert res.spread > 1e4 * 0.1  # reported as it is, not clipped
    assert res.nfev < 5000 * 50


def test_callback_gets_intermediate_results_and_can_stop():
    seen = []

    def cb(intermediate_result):
        r = intermediate_result
        seen.append((r.nit, r.nfev, r.fun))
        if r.nit == 5:
            raise StopIteration

    res = cbopt.minimize(sphere, bounds=B3, rng=0, callback=cb, method="cbo")
    assert res.reason == "CALLBACK" and res.nit == 5 and [s[0] for s in seen] == [1, 2, 3, 4, 5]
    assert all(b <= a for (_, _, a), (_, _, b) in zip(seen, seen[1:], strict=False))  # best-so-far never worsens


def test_keyboard_interrupt_returns_best_so_far():
    def cb(intermediate_result):
        if intermediate_result.nit == 3:
            raise KeyboardInterrupt

    res = cbopt.minimize(sphere, bounds=B3, rng=0, callback=cb, method="cbo")
    assert res.reason == "INTERRUPTED" and res.nit == 3 and np.isfinite(res.fun)


# ---------- features ----------

def test_history_records_every_iteration():
    res = cbopt.minimize(sphere, bounds=B3, rng=0, stop=cbopt.Stop(max_iter=20), history=True, method="cbo")
    h = res.history
    assert h["nfev"].shape == (21,) and h["consensus"].shape == (21, 3)
    assert np.all(np.diff(h["best_f"]) <= 0)
    np.testing.assert_array_equal(h["nfev"], 40 * np.arange(1, 22))
    res = cbopt.minimize(sphere, bounds=B3, rng=0, stop=cbopt.Stop(max_iter=5), history="particles", method="cbo")
    assert res.history["x"].shape == (6, 40, 3)


def test_vectorize_per_point_function():
    calls = []

    def f(x):
        calls.append(x.shape)
        return float(np.sum((x - 0.5) ** 2))

    res = cbopt.minimize(cbopt.vectorize(f), bounds=B3, rng=0, max_evals=2000, method="cbo")
    assert all(s == (3,) for s in calls) and len(calls) == res.nfev
    assert np.abs(res.x - 0.5).max() < 0.05


def test_x0_and_init_scale():
    res = cbopt.minimize(sphere, x0=[3.0, 3.0], options={"init_scale": 0.5}, rng=0, stop=cbopt.Stop(max_iter=1),
                         history="particles", method="cbo")
    x = res.history["x"][0]
    assert abs(x.mean() - 3.0) < 0.3 and 0.3 < x.std() < 0.7


def test_bounds_forms_agree():
    a = cbopt.minimize(sphere, bounds=[(-2, 2), (-1, 3)], rng=0, max_evals=800, method="cbo")
    b = cbopt.minimize(sphere, bounds=np.array([[-2, 2], [-1, 3]]), rng=0, max_evals=800, method="cbo")

    class Bounds:  # scipy.optimize.Bounds-like
        lb, ub = np.array([-2, -1]), np.array([2, 3])

    c = cbopt.minimize(sphere, bounds=Bounds(), rng=0, max_evals=800, method="cbo")
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.x, c.x)


@pytest.mark.parametrize("mode", ["clip", "reflect"])
def test_boundary_keeps_particles_in_the_box(mode):
    res = cbopt.minimize(lambda x: ((x - 3) ** 2).sum(-1), bounds=[(-1, 1)] * 2, rng=0, max_evals=2000,
                         options={"boundary": mode}, history="particles", method="cbo")
    x = res.history["x"]
    assert x.min() >= -1 and x.max() <= 1
    np.testing.assert_allclose(res.x, [1, 1], atol=0.05)


def test_reflection_is_the_periodic_fold_bit_for_bit(monkeypatch):
    """However it is computed (few or many coordinates outside, in place or not), reflect returns the periodic
    fold's value exactly: the default's measured results depend on its rounding of the inside points."""
    import cbopt.methods._base as base
    from cbopt.methods._base import _fold, reflect

    rng = np.random.default_rng(0)
    lo, hi = np.array([-5.0, 0.0, 1.0]), np.array([5.0, 1.0, 1e3])
    x = rng.uniform(-40, 40, (2, 300, 3))
    before = x.copy()
    y = reflect(x, lo, hi)
    np.testing.assert_array_equal(x, before)  # the input is not written to
    np.testing.assert_array_equal(y, _fold(x, lo, hi))
    assert np.all((y >= lo) & (y <= hi))
    inside = (x >= lo) & (x <= hi)
    assert inside.any() and (~inside).any()
    np.testing.assert_allclose(y[inside], x[inside], rtol=0, atol=1e-12)  # inside: x, up to rounding
    w = hi - lo  # period 2w: a point k periods away folds to the same place; one width out mirrors at the face
    np.testing.assert_allclose(reflect(x + 2 * w * 3, lo, hi), y, atol=1e-9)
    np.testing.assert_allclose(reflect(np.broadcast_to(hi + 0.25 * w, (1, 1, 3)), lo, hi)[0, 0], hi - 0.25 * w)
    faces = np.stack([lo, hi])[None]  # (1, 2, 3): points on the faces stay there exactly
    np.testing.assert_array_equal(reflect(faces, lo, hi), faces)
    assert np.isnan(reflect(np.full((1, 1, 3), np.nan), lo, hi)).all()  # NaN is not hidden
    for share in (0.0, 0.01, 0.5):  # none, few or many outside; in place or not: the same values
        mine = np.where(rng.random(x.shape) < share, x, np.clip(x, lo, hi))
        want = _fold(mine, lo, hi)
        np.testing.assert_array_equal(reflect(mine, lo, hi), want)
        got = reflect(mine, lo, hi, inplace=True)
        assert np.array_equal(got, want) and (share > 0.1 or got is mine)
    # many coordinates, a few of them holding points outside (found column by column), a NaN beside a point
    # outside in one column, per-coordinate or scalar bounds, a column slice of a swarm: the same values
    monkeypatch.setattr(base, "OUTSIDE_BY_COLUMNS", 1)  # (the path of large swarms, on small ones)
    wide = rng.uniform(-1, 1, (2, 50, 64))
    for out_cols, bounds in (([], (-1.0, 1.0)), ([3, 40], (-1.0, 1.0)), ([5], (-np.ones(64), np.ones(64))),
                             (list(range(20)), (-1.0, 1.0))):
        mine = wide.copy()
        for j in out_cols:
            mine[1, j, j] = 3.5 if j % 2 else -7.25
        if out_cols:
            mine[0, 7, out_cols[0]] = np.nan
        for part in (mine, mine[..., 8:48]):
            b = tuple(v if np.ndim(v) == 0 else v[: part.shape[-1]] for v in bounds)
            want = _fold(part, *b)
            np.testing.assert_array_equal(reflect(part, *b), want)
            np.testing.assert_array_equal(reflect(part.copy(), *b, inplace=True), want)


def test_random_batch_partial_counts_only_the_batch():
    res = cbopt.minimize(sphere, bounds=B3, rng=0, stop=cbopt.Stop(max_iter=10),
                         options={"batch_size": 10, "batch_mode": "partial"},
                         method="cbo", noisy=False)
    assert res.nfev == 40 + 10 * 10


def test_random_batch_full_and_partial_optimise():
    for mode in ("full", "partial"):
        res = cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 3, rng=0, max_evals=20000,
                             options={"batch_size": 10, "batch_mode": mode}, method="cbo")
        assert res.fun < 1e-3, mode


@pytest.mark.parametrize(
    "alpha", [10.0, Geometric(1.0, 1.05, cap=1e15), EffectiveSampleSize(0.5)]
)
def test_alpha_schedules(alpha):
    res = cbopt.minimize(sphere, bounds=B3, rng=0, max_evals=6000, options={"alpha": alpha},
                         history=True, method="cbo")
    assert res.fun < 1e-4
    a = res.history["alpha"]
    assert np.all(np.diff(a) >= 0)


def test_sigma_step_decay_schedule():
    res = cbopt.minimize(sphere, bounds=B3, rng=0, stop=cbopt.Stop(max_iter=250), history=True,
                         options={"sigma": StepDecay(5.0, 0.5, every=100)}, method="cbo")
    s = res.history["sigma"]
    assert s[0] == 5.0 and s[100] == 2.5 and s[200] == 1.25


def test_isotropic_default_sigma_is_dimension_aware():
    p = cbopt.get_method("cbo").make_params({"noise": "isotropic"}, 25)
    assert p.sigma.value**2 * 25 == pytest.approx(p.lam)  # 2 lam > d sigma^2 with a factor 2 margin
    res = cbopt.minimize(sphere, bounds=[(-2, 2)] * 25, rng=0, options={"noise": "isotropic"}, max_evals=40000,
                         history=True, method="cbo")
    # contracts steadily (slower than the anisotropic default), never diverges
    assert res.reason == "MAX_EVALS" and res.fun < 1.0
    assert res.history["spread"][-1] < res.history["spread"][0] / 10


def test_result_repr_and_attribute_access():
    res = cbopt.minimize(sphere, bounds=B3, rng=0, stop=cbopt.Stop(max_iter=3), method="cbo")
    text = repr(res)
    assert "message" in text and "fun" in text
    assert res["x"] is res.x
    with pytest.raises(AttributeError):
        _ = res.nonexistent
