"""ACH's model step (cbopt.methods.surrogate): the quadratic fit and its trust-region step, and what the step
buys a run on smooth functions."""

import numpy as np
import pytest

import cbopt
from cbopt.methods import surrogate
from cbopt.methods.surrogate import n_terms, quadratic_step
from cbopt.minimize import prepare


def _quadratics(m, d, k, seed=0):
    """m random convex quadratics in d variables, each sampled at k standard normal points: (u, f, minimisers,
    Hessians)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, d, d))
    hess = a @ a.swapaxes(-1, -2) + 0.1 * np.eye(d)
    opt = 0.5 * rng.standard_normal((m, d))
    u = rng.standard_normal((m, k, d))
    dev = u - opt[:, None, :]
    return u, 0.5 * np.einsum("mki,mij,mkj->mk", dev, hess, dev) + 3.0, opt, hess


def test_the_step_is_the_minimiser_of_a_quadratic_and_stays_in_its_trust_region():
    d = 5
    u, f, opt, hess = _quadratics(3, d, 2 * n_terms(d))
    step, ok = quadratic_step(u, f, radius=10.0)
    assert ok.all()
    np.testing.assert_allclose(step, opt, atol=1e-6)
    step, ok = quadratic_step(u, f, radius=0.1)  # every minimiser lies farther out: the step ends on the sphere
    np.testing.assert_allclose(np.linalg.norm(step, axis=-1), 0.1, rtol=0.02)
    assert (np.linalg.norm(step, axis=-1) <= 0.1 * (1 + 1e-12)).all()
    # downhill: the quadratic's value at the step is below its value at the centre
    value = lambda v: np.einsum("mi,mij,mj->m", v - opt, hess, v - opt)  # noqa: E731
    assert (value(step) < value(0 * step)).all()


def test_a_concave_model_steps_downhill_onto_the_trust_region():
    d = 4
    u = np.random.default_rng(1).standard_normal((1, 2 * n_terms(d), d))
    f = -(u * u).sum(-1) + u[..., 0]  # a maximum at u = e0 / 2: downhill is -e0
    for radius in (0.05, 2.0):
        step, ok = quadratic_step(u, f, radius)
        assert ok[0]
        np.testing.assert_allclose(step[0], [-radius, 0, 0, 0], atol=1e-6 * radius)


def test_runs_without_enough_finite_values_or_with_flat_ones_get_no_step():
    d = 3
    u, f, opt, _ = _quadratics(4, d, 2 * n_terms(d), seed=2)
    f[0] = np.inf  # nothing finite
    f[1, : n_terms(d) + 1] = np.nan  # fewer finite values than parameters
    f[2] = 7.0  # all equal
    with np.errstate(invalid="raise", divide="raise", over="raise"):  # and no warning on the way
        step, ok = quadratic_step(u, f, 5.0)
    assert ok.tolist() == [False, False, False, True]
    assert (step[:3] == 0).all()
    np.testing.assert_allclose(step[3], opt[3], atol=1e-6)


def test_torch_fits_the_same_step():
    torch = pytest.importorskip("torch")
    d = 4
    u, f, opt, _ = _quadratics(2, d, 2 * n_terms(d), seed=3)
    step, ok = quadratic_step(torch.as_tensor(u), torch.as_tensor(f), 10.0)
    assert bool(ok.all())
    np.testing.assert_allclose(step.numpy(), opt, atol=1e-6)


def _evals(f, d, seed, **options):
    res = cbopt.minimize(f, bounds=[(-5, 5)] * d, method="ach", rng=seed, restarts=None, max_evals=50_000,
                         target=1e-8, options=options)
    assert res.fun <= 1e-8, res.message
    return res.nfev


def test_the_model_step_speeds_up_a_run_on_an_ill_conditioned_quadratic():
    """A rotated ellipsoid of condition 1e4 at d = 8, seeds 0-5: with the model step a run reaches 1e-8 in a
    few steps once its ring holds enough samples for the quadratic (mean 73 evaluations against 1998 without
    it when written: the model is exact here); asserted below a fifth."""
    d = 8
    w = 10.0 ** (4 * np.arange(d) / (d - 1))
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))
    f = lambda x: (w * ((x - 1.0) @ q.T) ** 2).sum(-1)  # noqa: E731
    on = np.mean([_evals(f, d, s) for s in range(6)])
    off = np.mean([_evals(f, d, s, surrogate=False) for s in range(6)])
    assert on < 0.2 * off, (on, off)


def test_the_default_fits_up_to_surrogate_max_with_the_full_model_only():
    def resolved(d, **options):
        return prepare(bounds=[(-1, 1)] * d, method="ach", options=options or None).params

    assert resolved(surrogate.SURROGATE_MAX).surrogate
    assert not resolved(surrogate.SURROGATE_MAX + 1).surrogate
    assert resolved(20, surrogate=True).surrogate  # the user's choice, at any d
    assert not resolved(4, adapt=False).surrogate  # consensus hopping learns no frame to fit in
    assert not resolved(4, model="sep").surrogate
    with pytest.raises(ValueError, match="surrogate=True needs model='full'"):
        resolved(4, model="sep", surrogate=True)
    with pytest.raises(TypeError, match="surrogate"):
        resolved(4, surrogate="yes")


def test_a_run_with_the_model_step_resumes_bit_for_bit(tmp_path):
    """Interrupted after 40 steps (the ring full, fits skipped and made), resumed from its checkpoint."""
    path = tmp_path / "run.ckpt"
    f = lambda x: ((x - 0.3) ** 2).sum(-1) + 0.1 * np.cos(5 * x).sum(-1)  # noqa: E731
    kw = dict(bounds=[(-2, 2)] * 5, method="ach", rng=3, restarts=None, max_evals=3000, n_runs=2,
              options={"tolfun": 0, "tolx": 0})
    whole = cbopt.minimize(f, **kw)

    def ctrl_c(intermediate_result):
        if intermediate_result.nit == 40:
            raise KeyboardInterrupt

    first = cbopt.minimize(f, callback=ctrl_c, checkpoint=cbopt.Checkpoint(path, every=7), **kw)
    assert first.reason == "INTERRUPTED"
    resumed = cbopt.minimize(f, checkpoint=cbopt.Checkpoint(path, resume=True), **kw)
    assert resumed.nfev == whole.nfev and np.array_equal(resumed.x, whole.x) and resumed.fun == whole.fun
