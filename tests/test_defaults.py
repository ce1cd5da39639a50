"""Defaults that work without tuning: success rates over seeds with stated tolerances.

Success (the protocol of the foundation issue): every coordinate of ``result.x`` within 0.25 of the
minimiser; minimiser drawn from [-2, 2]^d; box [-5, 5]^d; default options (``method="auto"``: the portfolio,
whose CBO regime solves these separable problems).
"""

import numpy as np
import pytest

import cbopt
from cbopt.objectives import ackley, rastrigin


def successes(base, d, seeds, budget):
    ok = 0
    for seed in seeds:
        inst = base.instance(d, shift=np.random.default_rng(10_000 + seed).uniform(-2, 2, d))
        res = cbopt.minimize(inst, bounds=[(-5, 5)] * d, rng=seed, max_evals=budget)
        ok += bool(np.abs(res.x - inst.x_best).max() < 0.25)
    return ok


@pytest.mark.parametrize("base", [rastrigin, ackley])
def test_defaults_solve_shifted_d10_fast_subset(base):
    # CI subset: d = 10, 8 seeds, 5e4 evaluations (measured: Rastrigin 18/20 and Ackley 20/20 seeds); one miss
    assert successes(base, 10, range(8), 5e4) >= 7


@pytest.mark.slow
@pytest.mark.parametrize("base", [rastrigin, ackley])
def test_defaults_solve_shifted_d20_in_19_of_20_seeds(base):
    # the bar: >= 19/20 at 1e5 evaluations in d = 20 (measured: Rastrigin 19/20, Ackley 20/20)
    assert successes(base, 20, range(20), 1e5) >= 19


def successes_f32(base, d, seeds, budget, on_torch=False, **kw):
    backend = cbopt.Torch("cpu", "float32") if on_torch else cbopt.Numpy("float32")
    ok = 0
    for seed in seeds:
        inst = base.instance(d, shift=np.random.default_rng(10_000 + seed).uniform(-2, 2, d))
        res = cbopt.minimize(inst, bounds=[(-5, 5)] * d, rng=seed, max_evals=budget, backend=backend, **kw)
        x = res.x if isinstance(res.x, np.ndarray) else res.x.cpu().numpy()
        assert x.dtype == np.float32
        ok += bool(np.abs(x - inst.x_best).max() < 0.25)
    return ok


def test_float32_runs_solve_like_float64():
    # the default in float32 reaches what it reaches in float64 (7/8 of these seeds); allow one miss of 8
    assert successes_f32(rastrigin, 10, range(8), 5e4) >= 7


@pytest.mark.slow
@pytest.mark.parametrize("kw", [{}, {"on_torch": True}])
def test_float32_noise_floor_keeps_d30_searching(kw):
    # without the float32 noise floor, 0/10 (coordinates froze at the consensus); with it 10/10 (as float64)
    if kw:
        pytest.importorskip("torch")
    # CBO's floor (the first release's default), so method="cbo"
    assert successes_f32(rastrigin, 30, range(10), 3e5, method="cbo", options={"n_particles": 100}, **kw) >= 9


def test_float32_coordinate_at_the_consensus_still_gets_noise():
    from cbopt._backend import NumpySampler
    from cbopt.methods import cbo

    params = cbo.CBOParams().resolved(3)
    x = np.array([[[1.0, 2.0, 3.0], [1.0, 5.0, 3.0]]], dtype=np.float32)  # particle 1 shares two coordinates
    c = x[:, :1].copy()
    y = cbo.move(x, c, np.full(1, 11.0, np.float32), params, NumpySampler(np.random.default_rng(0), np.float32))
    assert np.all(y[0, 0] != x[0, 0])  # at the consensus, yet every coordinate moves (by ~eps)
    assert np.abs(y[0, 0] - x[0, 0]).max() < 1e-5
    x64 = x.astype(np.float64)
    y64 = cbo.move(x64, x64[:, :1].copy(), np.full(1, 11.0), params, NumpySampler(np.random.default_rng(0)))
    assert np.array_equal(y64[0, 0], x64[0, 0])  # float64 keeps the exact absorbing state (see cbo.move)
