"""cbopt.multiobjective (AM-CBO): a Pareto front from one swarm."""

import numpy as np
import pytest

import cbopt
from cbopt.multiobjective import adapt_weights, morse_forces, non_dominated, simplex_weights


def zdt1(x):
    g = 1 + 9 * x[..., 1:].mean(-1)
    f1 = x[..., 0]
    return np.stack([f1, g * (1 - np.sqrt(f1 / g))], axis=-1)


def test_front_of_zdt1_is_close_and_spread():
    r = cbopt.multiobjective(zdt1, bounds=[(0, 1)] * 10, rng=0, max_evals=30_000)
    assert r.nfev <= 30_000 and r.reason == "MAX_EVALS"
    f1, f2 = r.F[:, 0], r.F[:, 1]
    assert np.all(non_dominated(r.F))
    assert np.abs(f2 - (1 - np.sqrt(f1))).max() < 0.05  # on the true front f2 = 1 - sqrt(f1)
    assert f1.min() < 0.02 and f1.max() > 0.95 and len(r.F) >= 60  # from end to end
    again = cbopt.multiobjective(zdt1, bounds=[(0, 1)] * 10, rng=0, max_evals=30_000)
    np.testing.assert_array_equal(again.F, r.F)


def test_three_objectives_and_the_weight_lattice():
    w = simplex_weights(100, 3)
    assert w.shape == (100, 3) and np.allclose(w.sum(1), 1) and np.all(w >= 0)
    assert len(np.unique(w.round(9), axis=0)) == 100
    assert simplex_weights(5, 2)[:, 0].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]

    def sphere3(x):  # a DTLZ2-like front: the positive octant of the unit sphere
        r = 1 + ((x[..., 2:] - 0.5) ** 2).sum(-1)
        a, b = x[..., 0] * np.pi / 2, x[..., 1] * np.pi / 2
        return np.stack([r * np.cos(a) * np.cos(b), r * np.cos(a) * np.sin(b), r * np.sin(a)], axis=-1)

    res = cbopt.multiobjective(sphere3, bounds=[(0, 1)] * 5, rng=1, max_evals=20_000,
                               options=dict(dt=0.1, sigma=1.0))
    radius = np.linalg.norm(res.F, axis=1)
    assert np.median(radius) < 1.05 and res.F.shape[1] == 3 and len(res.F) >= 30


def test_morse_forces_push_images_apart():
    images = np.array([[0.0, 0.0], [0.01, 0.0], [1.0, 1.0]])
    f = morse_forces(images, 20.0)
    assert f[0, 0] < 0 < f[1, 0]  # the two close images push each other apart along their difference
    assert np.abs(f[2]).max() < 1e-6  # a far image feels (almost) nothing


def test_callback_and_bad_input():
    seen = []

    def cb(intermediate_result):
        seen.append(intermediate_result.nit)
        if intermediate_result.nit == 2:
            raise StopIteration

    r = cbopt.multiobjective(zdt1, bounds=[(0, 1)] * 4, rng=0, callback=cb, options=dict(n_particles=20))
    assert r.reason == "CALLBACK" and seen == [1, 2]
    with pytest.raises(ValueError, match=r"give x0 \(a start point\) or bounds"):
        cbopt.multiobjective(zdt1)
    with pytest.raises(ValueError, match="F"):
        cbopt.multiobjective(lambda x: x.sum(-1), bounds=[(0, 1)] * 3, max_evals=1000)
    with pytest.raises(ValueError, match="scalarization"):
        cbopt.multiobjective(zdt1, bounds=[(0, 1)] * 3, options=dict(scalarization="weighted-sum"))
    with pytest.raises(ValueError, match="max_evals"):
        cbopt.multiobjective(zdt1, bounds=[(0, 1)] * 3, max_evals=10)
    with pytest.raises(ValueError, match="EffectiveSampleSize"):
        cbopt.multiobjective(zdt1, bounds=[(0, 1)] * 3, options=dict(alpha=cbopt.schedules.EffectiveSampleSize(0.5)))


def test_weights_adapt_so_that_images_part():
    # two nearby weights; their images where each scalarisation is solved on the front |F| = 1 (K = 2)
    w = np.array([[0.50, 0.50], [0.52, 0.48], [0.9, 0.1]])
    solved = {"inverse": lambda w: w / np.linalg.norm(w, axis=1, keepdims=True),
              "chebyshev": lambda w: (1 / w) / np.linalg.norm(1 / w, axis=1, keepdims=True)}
    for kind, image in solved.items():
        before = image(w)
        after = image(adapt_weights(w, before, 1e-3, 20.0, kind))
        assert np.linalg.norm(after[0] - after[1]) > np.linalg.norm(before[0] - before[1]) + 1e-6, kind
        assert np.allclose(adapt_weights(w, before, 1e-3, 20.0, kind).sum(1), 1)


def test_torch_run_matches_numpy():
    torch = pytest.importorskip("torch")

    def zdt1_torch(x):
        g = 1 + 9 * x[..., 1:].mean(-1)
        return torch.stack([x[..., 0], g * (1 - (x[..., 0] / g) ** 0.5)], dim=-1)

    opts = dict(n_particles=20, tau=1e-3)
    ref = cbopt.multiobjective(zdt1, bounds=[(0, 1)] * 4, rng=3, max_evals=2000, options=opts)
    box = torch.tensor([[0.0, 1.0]] * 4, dtype=torch.float64)
    r = cbopt.multiobjective(zdt1_torch, bounds=box, rng=3, max_evals=2000, options=opts)
    assert isinstance(r.F, torch.Tensor) and isinstance(r.x, torch.Tensor) and r.nfev == ref.nfev
    np.testing.assert_allclose(r.population_F.numpy(), ref.population_F, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(r.F.numpy(), ref.F, rtol=1e-9, atol=1e-12)
    again = cbopt.multiobjective(zdt1_torch, bounds=[(0, 1)] * 4, rng=3, max_evals=2000, options=opts, backend="torch")
    assert isinstance(again.F, torch.Tensor)  # numpy bounds, torch asked for: f gets tensors


def test_many_objectives_get_their_weights_at_once():
    """30 objectives: the simplex lattice is built from its own points (stars and bars), not by filtering the
    2^30-point grid, which hung; it equals the grid's lattice where both can be built."""
    import itertools

    from cbopt.multiobjective import _lattice, simplex_weights

    for h, k in ((3, 3), (4, 5), (2, 4)):
        grid = np.array([np.array(c) / h for c in itertools.product(range(h + 1), repeat=k) if sum(c) == h])
        np.testing.assert_array_equal(_lattice(h, k), grid)
    import subprocess
    import sys

    # in a child with a deadline: the grid it replaces took hours, and a hang must fail, not stall the suite
    code = "from cbopt.multiobjective import simplex_weights; print(simplex_weights(100, 30).shape)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.strip() \
        == "(100, 30)"
    w = simplex_weights(100, 30)
    assert w.shape == (100, 30) and np.allclose(w.sum(1), 1) and (w >= 0).all() and len(np.unique(w, axis=0)) == 100


def test_a_call_without_a_budget_says_what_it_will_run(caplog):
    import logging

    from cbopt.multiobjective import DEFAULT_STEPS

    def f(x):
        return np.stack([(x**2).sum(-1), ((x - 1) ** 2).sum(-1)], -1)

    with caplog.at_level(logging.INFO, logger="cbopt"):
        cbopt.multiobjective(f, bounds=[(-2, 2)] * 2, options={"n_particles": 8}, rng=0, max_evals=200)
    assert "no budget given" not in caplog.text  # a budget given: nothing to say
    with caplog.at_level(logging.INFO, logger="cbopt"):
        res = cbopt.multiobjective(f, bounds=[(-2, 2)] * 2, options={"n_particles": 8}, rng=0)
    assert f"multiobjective runs {DEFAULT_STEPS} steps, about {DEFAULT_STEPS * 8} evaluations" in caplog.text
    assert res.nit == DEFAULT_STEPS


def test_the_house_rules_hold_for_multiobjective():
    """Unknown options and scipy's names in the house's message, a Stop rule it lacks refused (not ignored),
    zero objectives named, and every point failing ends NONFINITE instead of spending the budget."""
    box = [(-2, 2)] * 2

    def two(x):
        return np.stack([(x**2).sum(-1), ((x - 1) ** 2).sum(-1)], -1)

    with pytest.raises(TypeError, match=r"unknown option\(s\) \['foo'\] for multiobjective; valid options"):
        cbopt.multiobjective(two, bounds=box, options={"foo": 1}, max_evals=500)
    with pytest.raises(ValueError, match=r"Stop\(target=0.1\) is not a rule it has; it stops on max_evals"):
        cbopt.multiobjective(two, bounds=box, stop=cbopt.Stop(target=0.1, max_evals=3000))
    with pytest.raises(ValueError, match=r"K >= 1.*got \(\d+, 0\)"):
        cbopt.multiobjective(lambda x: np.zeros(x.shape[:-1] + (0,)), bounds=box, max_evals=500)
    res = cbopt.multiobjective(lambda x: np.full(x.shape[:-1] + (2,), np.nan), bounds=box, rng=0, max_evals=10_000)
    assert res.reason == "NONFINITE" and res.nfev < 1000 and not res.success


def test_args_reach_f_as_in_minimize():
    def f(x, a):
        return np.stack([((x - a) ** 2).sum(-1), ((x + a) ** 2).sum(-1)], -1)

    res = cbopt.multiobjective(f, bounds=[(-2, 2)] * 2, rng=0, max_evals=3000, args=(1.0,))
    # the front runs from x = a (f1 = 0, f2 = 8) to x = -a (f1 = 8, f2 = 0): a = 1 reached f
    assert len(res.F) > 5 and res.F[:, 0].min() < 0.1 and res.F[:, 1].min() < 0.1 and res.F.max() > 4
