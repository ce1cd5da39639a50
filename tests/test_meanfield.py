"""The mean-field solver: structure preservation, accuracy, agreement with theory and with the particles."""

import numpy as np
import pytest

pytest.importorskip("scipy")

import cbopt  # noqa: E402
from cbopt import meanfield  # noqa: E402
from cbopt.objectives import rastrigin  # noqa: E402


def quad(x):
    return (x * x).sum(-1)


@pytest.mark.parametrize("alpha", [30.0, 1e15])
def test_mass_and_positivity_over_a_long_run(alpha):
    r = meanfield.solve(rastrigin, [(-6, 6)], meanfield.gaussian([1.0], 2.0), cells=400, T=30.0, dt=0.01, alpha=alpha)
    assert np.abs(r.mass - 1).max() <= 1e-12
    assert r.min_density.min() >= 0
    assert np.all(np.isfinite(r.consensus))
    assert abs(r.consensus[-1, 0]) < 0.1  # the global minimiser, from a start centred on another basin


@pytest.mark.parametrize("noise", ["anisotropic", "isotropic"])
@pytest.mark.parametrize("solver", ["split", "sparse"])
def test_two_dimensions_preserve_structure(noise, solver):
    r = meanfield.solve(rastrigin, [(-5, 5)] * 2, meanfield.gaussian([1.0, 1.0], 1.0), cells=48, T=0.3, dt=0.05,
                        alpha=1e15, noise=noise, solver=solver)
    assert np.abs(r.mass - 1).max() <= 1e-12 and r.min_density.min() >= 0
    assert r.variance[-1] < r.variance[0]


def test_split_and_sparse_agree_to_the_splitting_error():
    kw = dict(cells=40, T=0.2, alpha=5.0, noise="isotropic")
    rho0 = meanfield.gaussian([1.0, 0.5], 1.0)
    ref = meanfield.solve(rastrigin, [(-4, 4)] * 2, rho0, dt=0.002, solver="sparse", **kw)
    gaps = []
    for dt in (0.02, 0.01):
        split = meanfield.solve(rastrigin, [(-4, 4)] * 2, meanfield.gaussian([1.0, 0.5], 1.0), dt=dt, **kw)
        gaps.append(np.abs(split.rho[-1] - ref.rho[-1]).sum() * ref.grid.volume)
    assert gaps[1] < 0.7 * gaps[0]  # first order in dt: halving dt shrinks the gap


def test_second_order_in_space_on_a_smooth_case():
    f = lambda x: (x[..., 0] - 1) ** 2 + 0.5 * np.sin(3 * x[..., 0])  # noqa: E731
    kw = dict(T=0.25, dt=5e-3, alpha=5.0, sigma=0.8)
    ref = meanfield.solve(f, [(-6, 6)], meanfield.gaussian([-0.5], 1.0), cells=3200, **kw).rho[-1]
    errs = []
    for n in (200, 400, 800):
        r = meanfield.solve(f, [(-6, 6)], meanfield.gaussian([-0.5], 1.0), cells=n, **kw)
        errs.append(np.abs(r.rho[-1] - ref.reshape(n, -1).mean(1)).sum() * 12 / n)
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 1.8), orders


def test_face_weights_are_nonnegative_and_exact_at_equilibrium():
    c = np.array([-3.0, -1e-9, 0.0, 1e-9, 2.0, 5.0, -5.0])
    k = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 1e-300, 0.0])
    am, ap = meanfield.face_weights(c, k, 0.1)
    assert np.all(am >= 0) and np.all(ap >= 0) and np.all(np.isfinite(am + ap))
    # zero flux when rho_{j+1} / rho_j = exp(-h C / K), the discrete local equilibrium
    cc, kk, h = 2.0, 0.5, 0.1
    am, ap = meanfield.face_weights(np.array([cc]), np.array([kk]), h)
    assert abs(ap[0] * np.exp(-h * cc / kk) - am[0]) < 1e-14


def test_consensus_is_a_stable_log_sum_exp():
    g = meanfield.Grid.make([(-1, 1)], 101)
    e = (g.points[..., 0] - 0.3) ** 2
    rho = np.ones(101)
    c = meanfield.consensus(e, rho, g.points, 1e300)
    assert np.all(np.isfinite(c)) and abs(c[0] - 0.3) <= g.h[0]
    with pytest.raises(FloatingPointError, match="no cell"):
        meanfield.consensus(e, np.zeros(101), g.points, 1.0)


def test_frozen_contraction_rate_matches_theory():
    # V(t) = V(0) exp(-(2 lam - sigma^2) t) (anisotropic, d = 1) and exp(-(2 lam - d sigma^2) t) (isotropic)
    cases = ((1, "anisotropic", 0.7, 2 - 0.49, [(-6, 7)], 1600),
             (2, "isotropic", 0.5, 2 - 2 * 0.25, [(-2.5, 3.5)] * 2, 192))
    for d, noise, sigma, theory, box, cells in cases:
        x0 = np.full(d, 0.5)
        r = meanfield.solve(quad, box, meanfield.gaussian(x0, 0.5), cells=cells, T=1.0, dt=1e-3, sigma=sigma,
                            noise=noise, frozen=x0)
        rate = -np.polyfit(r.t, np.log(r.variance), 1)[0]
        assert abs(rate - theory) < 0.02 * theory, (d, rate, theory)


def test_prox_consensus_tends_to_the_prox_map():
    from cbopt.thesis.figures import wavy
    from cbopt.thesis.prox import prox

    x, tau = np.array([1.4, -0.7]), 0.5
    p = prox(wavy, x, tau, method="grid")
    errs = [np.linalg.norm(meanfield.prox_consensus(wavy, x, tau, a) - p) for a in (10.0, 1e3, 1e6)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-4


def test_cbs_moments_ode_and_step_map_agree_as_dt_shrinks():
    a_mat, a = np.diag([1.0, 4.0]), np.array([0.5, -0.3])
    m0, c0 = np.array([2.0, 1.0]), np.eye(2)
    ode = meanfield.cbs_moments(a_mat, a, m0, c0, alpha=1.0, T=1.0, times=[1.0])
    gaps = []
    for dt in (0.1, 0.05):
        step = meanfield.cbs_moments(a_mat, a, m0, c0, alpha=1.0, T=1.0, step=dt)
        gaps.append(np.abs(step["mean"][-1] - ode["mean"][-1]).max())
    assert gaps[1] < 0.6 * gaps[0]
    # a Gaussian fixed point: in sample mode with alpha = 1 the stationary law is exp(-f), N(a, A^-1)
    long = meanfield.cbs_moments(a_mat, a, m0, c0, alpha=1.0, T=40.0, times=[40.0], mode="sample")
    assert np.allclose(long["mean"][-1], a, atol=1e-6) and np.allclose(long["cov"][-1], np.linalg.inv(a_mat), atol=1e-6)


def test_particle_cbs_tracks_the_moment_map():
    a_mat, a = np.diag([1.0, 4.0]), np.array([0.5, -0.3])
    m0 = np.array([2.0, 1.0])
    exact = meanfield.cbs_moments(a_mat, a, m0, np.eye(2), alpha=1.0, T=1.0, step=0.05)
    f = lambda x: 0.5 * (((x - a) @ a_mat) * (x - a)).sum(-1)  # noqa: E731
    means = []

    def record(intermediate_result):
        means.append(np.asarray(intermediate_result.population).mean(0))

    cbopt.minimize(f, x0=m0, method="cbs", rng=0, callback=record,
                   options=dict(n_particles=20_000, dt=0.05, alpha=1.0, boundary=None, init_scale=1.0),
                   stop=cbopt.Stop(max_iter=20, xtol=None, ftol=None, divergence=None))
    err = np.abs(np.array(means) - exact["mean"][1:]).max()
    assert err < 5 / np.sqrt(20_000), err  # O(N^-1/2), with room for the max over 20 steps


def test_w1_of_samples_of_the_density_shrinks_like_root_n():
    g = meanfield.Grid.make([(-8, 8)], 1600)
    rho = np.exp(-g.axis(0) ** 2 / 2)
    gen = np.random.default_rng(0)
    small = np.mean([meanfield.w1(gen.standard_normal(100), rho, g) for _ in range(20)])
    large = np.mean([meanfield.w1(gen.standard_normal(10_000), rho, g) for _ in range(20)])
    assert 6 < small / large < 16  # sqrt(100) = 10
    g2 = meanfield.Grid.make([(-5, 5)] * 2, 96)
    rho2 = np.exp(-(g2.points**2).sum(-1) / 2)
    small = np.mean([meanfield.sliced_w1(gen.standard_normal((100, 2)), rho2, g2) for _ in range(10)])
    large = np.mean([meanfield.sliced_w1(gen.standard_normal((10_000, 2)), rho2, g2) for _ in range(10)])
    assert 6 < small / large < 16


def test_propagation_of_chaos_slope():
    r = meanfield.chaos(rastrigin, [(-8, 8)], [1.0], 1.0, [100, 1000, 10_000], [0.5], seeds=6, cells=1600, dt=2e-3,
                        alpha=10.0, sigma=0.5, rng=0)
    assert -0.65 < r["slope"][0] < -0.35, r["slope"]


def test_bad_input_is_refused_with_a_message():
    g = meanfield.gaussian([0.0], 1.0)
    with pytest.raises(ValueError, match="bounds"):
        meanfield.solve(quad, [(1, -1)], g)
    with pytest.raises(ValueError, match="bounds"):
        meanfield.solve(quad, [(-1, 1)] * 3, g)
    with pytest.raises(ValueError, match="cells"):
        meanfield.solve(quad, [(-1, 1)], g, cells=2)
    with pytest.raises(ValueError, match="rho0"):
        meanfield.solve(quad, [(-1, 1)], np.ones(7), cells=8)
    with pytest.raises(ValueError, match="rho0"):
        meanfield.solve(quad, [(-1, 1)], lambda x: -np.ones(x.shape[:-1]), cells=8)
    with pytest.raises(ValueError, match="EffectiveSampleSize"):
        meanfield.solve(quad, [(-1, 1)], g, alpha=cbopt.schedules.EffectiveSampleSize(0.5))
    with pytest.raises(ValueError, match="noise"):
        meanfield.solve(quad, [(-1, 1)], g, noise="gaussian")
    with pytest.raises(ValueError, match="frozen"):
        meanfield.solve(quad, [(-1, 1)], g, frozen=[0.0, 1.0])
    with pytest.raises(ValueError, match="save"):
        meanfield.solve(quad, [(-1, 1)], g, T=1.0, save=[2.0])
    with pytest.raises(ValueError, match="f: expected values"):
        meanfield.solve(lambda x: x, [(-1, 1)], g)
    with pytest.raises(ValueError, match="particles"):
        meanfield.w1(np.ones((5, 2)), np.ones(8), meanfield.Grid.make([(-1, 1)], 8))


def test_schedules_are_the_particle_methods():
    sched = cbopt.schedules.Geometric(1.0, 2.0, cap=8.0)
    r = meanfield.solve(quad, [(-3, 3)], meanfield.gaussian([0.5], 1.0), cells=60, T=0.05, dt=0.01, alpha=sched)
    assert r.alpha.tolist() == [2.0, 4.0, 8.0, 8.0, 8.0, 8.0]  # as CBO: updated once at the start, then per step
