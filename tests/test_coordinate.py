"""The coordinate grid search (method="coordinate") and its regime in the default portfolio."""

import numpy as np
import pytest

import cbopt
from cbopt.objectives import rastrigin, rosenbrock, schwefel


@pytest.mark.parametrize("fn, dim, budget", [(schwefel, 10, 20_000), (rastrigin, 20, 40_000)])
def test_it_solves_separable_multimodal_functions(fn, dim, budget):
    """Every coordinate's basins searched at once: Schwefel (d = 10, its optimum in a corner basin) and shifted
    Rastrigin (d = 20) solved to 1e-8 from 6 random starts each (measured: all 12, in 8-18 thousand
    evaluations), converged by the method's own criterion."""
    for seed in range(6):
        inst = fn.instance(dim, shift=True, rng=seed) if fn is rastrigin else fn.instance(dim, rng=seed)
        res = cbopt.minimize(inst, bounds=inst.bounds, method="coordinate", rng=seed, max_evals=budget, noisy=False)
        assert res.fun - inst.f_min < 1e-8 and res.reason == "CONVERGED", (seed, res.fun - inst.f_min)


def test_the_separability_test_stops_at_once_and_draws_nothing():
    """With separable_only, a function whose coordinates interact (Rosenbrock) ends after the test's one batch
    (STAGNATION, criterion 'coupled') without a draw from the random stream; a separable one goes on."""
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    res = cbopt.minimize(rosenbrock, x0=np.zeros(5), method="coordinate", rng=rng, noisy=False,
                         options={"separable_only": True})
    n = 1 + 5 * 3 * 7  # x and B K = 21 points per coordinate
    assert res.reason == "STAGNATION" and res.criterion == "coupled" and res.nfev == 1 + n
    assert rng.bit_generator.state == before
    inst = rastrigin.instance(5, shift=True, rng=0)
    res = cbopt.minimize(inst, bounds=inst.bounds, method="coordinate", rng=0, noisy=False,
                         options={"separable_only": True}, max_evals=20_000)
    assert res.reason == "CONVERGED" and res.fun - inst.f_min < 1e-8


def test_the_default_runs_it_on_problems_it_finds_axis_aligned():
    """The portfolio runs one coordinate search after its first CBO run on an axis-aligned problem: separable
    Schwefel d = 10 solved to 1e-8 in 10 of 10 seeds within 6e4 evaluations (measured: 10; 9 without the
    regime, Portfolio(coordinate=False))."""
    solved, ran = 0, 0
    for seed in range(10):
        inst = schwefel.instance(10, rng=seed)
        res = cbopt.minimize(inst, bounds=inst.bounds, rng=seed, max_evals=60_000, noisy=False,
                             target=inst.f_min + 1e-8)
        solved += res.reason == "TARGET"
        ran += any(e["method"] == "coordinate" for e in res.restart_log)
    assert solved == 10 and ran >= 1


@pytest.mark.parametrize("bad, said", [({"points": 4}, "odd"), ({"basins": 0}, "basins"), ({"grid": 1}, "grid"),
                                       ({"separable_only": 1}, "separable_only"), ({"tolx": 2.0}, "tolx")])
def test_its_options_are_checked(bad, said):
    with pytest.raises((TypeError, ValueError), match=said):
        cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 3, method="coordinate", options=bad)


def test_it_runs_alike_on_torch():
    torch = pytest.importorskip("torch")
    inst = rastrigin.instance(6, shift=True, rng=1)
    a = cbopt.minimize(inst, bounds=inst.bounds, method="coordinate", rng=0, max_evals=10_000, noisy=False)
    b = cbopt.minimize(inst, bounds=inst.bounds, method="coordinate", rng=0, max_evals=10_000, noisy=False,
                       backend="torch")
    assert isinstance(b.x, torch.Tensor) and b.fun - inst.f_min < 1e-8 and a.fun - inst.f_min < 1e-8


def test_a_checkpoint_taken_inside_the_coordinate_run_resumes_bit_for_bit(tmp_path):
    """Ctrl-C while the default's coordinate search runs (its batches of 1 + 21 d points), then resume: the
    same result as the uninterrupted call."""
    inst = schwefel.instance(10, rng=2)
    kw = dict(bounds=inst.bounds, rng=2, max_evals=60_000, noisy=False)
    ref = cbopt.minimize(inst, **kw)
    calls = []

    def f(X):
        calls.append(X.shape[-2])
        if X.shape[-2] == 1 + 10 * 21 and calls.count(X.shape[-2]) == 9:
            raise KeyboardInterrupt
        return inst(X)

    path = tmp_path / "c.npz"
    cut = cbopt.minimize(f, checkpoint=cbopt.Checkpoint(path, every=1), **kw)
    assert cut.reason == "INTERRUPTED" and any(e["method"] == "coordinate" for e in ref.restart_log)
    res = cbopt.minimize(inst, checkpoint=cbopt.Checkpoint(path, resume=True), **kw)
    assert res.fun == ref.fun and res.nfev == ref.nfev and np.array_equal(res.x, ref.x)
    assert [e["method"] for e in res.restart_log] == [e["method"] for e in ref.restart_log]
