"""cbopt.minimax (CBO-SP): saddle points of min-max problems."""

import numpy as np
import pytest

import cbopt


def saddle_rastrigin(x, y):
    xp = np if isinstance(x, np.ndarray) else __import__("torch")
    rx = (x * x).sum(-1) + 1.5 * (1 - xp.cos(2 * np.pi * x)).sum(-1)
    ry = (y * y).sum(-1) + 1.5 * (1 - xp.cos(2 * np.pi * y)).sum(-1)
    return rx - ry


def test_saddle_rastrigin_success_rate():
    # the paper's setting, smaller: d = 4 + 4, N = 300, T = 10, dt = 0.01, sigma = 2, alpha = beta = 1e15
    hits = 0
    for s in range(8):
        r = cbopt.minimax(saddle_rastrigin, x0=np.ones(4), y0=np.ones(4), init_scale=2.0, rng=s,
                          options=dict(n_particles=300, dt=0.01, sigma=2.0), stop=cbopt.Stop(max_iter=1000))
        hits += np.linalg.norm(r.x) + np.linalg.norm(r.y) < 0.25
    assert hits >= 7


def _game(coupling):
    g = np.random.default_rng(3)
    dx, dy = 6, 4
    a_mat = np.eye(dx) * 2 + 0.1 * np.ones((dx, dx))
    c_mat = np.eye(dy) * 1.5
    b_mat = coupling * g.standard_normal((dx, dy)) / np.sqrt(dx)
    a, c = g.standard_normal(dx), g.standard_normal(dy)

    def f(x, y):
        return 0.5 * ((x @ a_mat) * x).sum(-1) + ((x @ b_mat) * y).sum(-1) - 0.5 * ((y @ c_mat) * y).sum(-1) \
            + x @ a + y @ c

    ci = np.linalg.inv(c_mat)
    xs = np.linalg.solve(a_mat + b_mat @ ci @ b_mat.T, -a - b_mat @ ci @ c)
    f.rho = np.abs(np.linalg.eigvals(ci @ b_mat.T @ np.linalg.inv(a_mat) @ b_mat)).max()  # best-response factor
    return f, xs, ci @ (b_mat.T @ xs + c)


def test_quadratic_game_to_high_accuracy():
    f, xs, ys = _game(0.5)
    assert f.rho == pytest.approx(0.33, abs=0.01)  # the best-response map contracts
    r = cbopt.minimax(f, x_bounds=[(-5, 5)] * 6, y_bounds=[(-5, 5)] * 4, rng=0, options=dict(n_particles=200),
                      stop=cbopt.Stop(max_iter=600))
    assert max(np.abs(r.x - xs).max(), np.abs(r.y - ys).max()) < 1e-4
    assert r.fun == pytest.approx(float(f(r.x, r.y)))


def test_a_game_it_cannot_follow_is_reported_diverged():
    f, _, _ = _game(1.0)
    assert f.rho == pytest.approx(1.33, abs=0.01)  # the consensus points chase each other outwards
    r = cbopt.minimax(f, x0=np.zeros(6), y0=np.zeros(4), init_scale=2.0, rng=0, stop=cbopt.Stop(max_iter=600))
    assert r.reason == "DIVERGED" and not r.success


def test_budget_history_callback_and_reproducibility():
    f = lambda x, y: (x * x).sum(-1) - (y * y).sum(-1)  # noqa: E731
    r = cbopt.minimax(f, x0=[1.0], y0=[1.0, 2.0], rng=1, options=dict(n_particles=20), max_evals=1000, history=True)
    assert r.nfev <= 1000 and r.reason == "MAX_EVALS" and r.history["x"].shape == (r.nit, 1)
    again = cbopt.minimax(f, x0=[1.0], y0=[1.0, 2.0], rng=1, options=dict(n_particles=20), max_evals=1000)
    assert np.array_equal(again.x, r.x) and np.array_equal(again.y, r.y)
    seen = []

    def cb(intermediate_result):
        seen.append(intermediate_result.nit)
        if intermediate_result.nit == 3:
            raise StopIteration

    r = cbopt.minimax(f, x0=[1.0], y0=[1.0], rng=0, callback=cb, options=dict(n_particles=10))
    assert r.reason == "CALLBACK" and seen == [1, 2, 3]
    r = cbopt.minimax(f, x0=[1.0], y0=[1.0], rng=0, options=dict(n_particles=50), stop=cbopt.Stop(xtol=1e-6))
    assert r.reason == "CONVERGED" and abs(r.x[0]) < 1e-5


def test_torch_backend():
    torch = pytest.importorskip("torch")
    r = cbopt.minimax(saddle_rastrigin, x0=torch.ones(2, dtype=torch.float64), y0=torch.ones(2, dtype=torch.float64),
                      init_scale=1.0, rng=0, options=dict(n_particles=200), stop=cbopt.Stop(max_iter=300))
    assert isinstance(r.x, torch.Tensor) and float(r.x.abs().max()) < 1e-3 and float(r.y.abs().max()) < 1e-3


def test_bad_input():
    f = lambda x, y: (x * x).sum(-1) - (y * y).sum(-1)  # noqa: E731
    with pytest.raises(ValueError, match=r"give x0 \(a start point\) or x_bounds"):
        cbopt.minimax(f, y0=[1.0])
    with pytest.raises(ValueError, match="y_bounds"):
        cbopt.minimax(f, x0=[1.0], y_bounds=[(1, -1)])
    with pytest.raises(ValueError, match="n_particles"):
        cbopt.minimax(f, x0=[1.0], y0=[1.0], options=dict(n_particles=1))
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['gamma'\] for minimax; valid options: \['alpha'"):
        cbopt.minimax(f, x0=[1.0], y0=[1.0], options=dict(gamma=1.0))
    with pytest.raises(TypeError, match="'maxiter' is scipy's option"):
        cbopt.minimax(f, x0=[1.0], y0=[1.0], options=dict(maxiter=10))
    with pytest.raises(ValueError, match=r"init_scale: expected a number or a pair \(sx, sy\)"):
        cbopt.minimax(f, x0=[1.0], y0=[1.0], init_scale=(1, 2, 3))
    with pytest.raises(ValueError, match=r"minimax: stop=cbopt.Stop\(target=0.5\) is not a rule it has"):
        cbopt.minimax(f, x0=[1.0], y0=[1.0], stop=cbopt.Stop(target=0.5))
    with pytest.raises(ValueError, match="expected values of shape"):
        cbopt.minimax(lambda x, y: x, x0=[1.0, 2.0], y0=[1.0])
    with pytest.raises(ValueError, match="max_evals"):
        cbopt.minimax(f, x0=[1.0], y0=[1.0], max_evals=10)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_game_without_one_finite_value_ends_nonfinite(value):
    """Every value NaN (or inf): NONFINITE after the start, not the whole budget spent and MAX_EVALS."""
    def f(x, y):
        return np.full(np.broadcast_shapes(x.shape[:-1], y.shape[:-1]), value)

    res = cbopt.minimax(f, [(-2, 2)] * 2, [(-2, 2)] * 2, rng=0, max_evals=20_000)
    assert res.reason == "NONFINITE" and not res.success and res.nit == 0  # its start only


@pytest.mark.parametrize("with_callback", [False, True])
def test_nfev_counts_every_evaluation_and_keeps_to_the_budget(with_callback):
    """The result's f(x_bar, y_bar), and each callback's, are evaluations: nfev counts them (they were not
    counted) and the run never exceeds max_evals."""
    seen = [0]

    def f(x, y):
        shape = np.broadcast_shapes(x.shape[:-1], y.shape[:-1])
        seen[0] += int(np.prod(shape))
        return (x**2).sum(-1) - (y**2).sum(-1)

    cb = (lambda r: None) if with_callback else None
    res = cbopt.minimax(f, [(-2, 2)] * 2, [(-2, 2)] * 2, rng=0, max_evals=5000, callback=cb)
    assert res.nfev == seen[0] <= 5000 and res.reason == "MAX_EVALS"


def test_args_reach_f_as_in_minimize():
    def f(x, y, a, b):
        return ((x - a) ** 2).sum(-1) - ((y - b) ** 2).sum(-1)

    res = cbopt.minimax(f, [(-2, 2)] * 2, [(-2, 2)] * 2, rng=0, stop=cbopt.Stop(max_iter=300), args=(0.5, -0.5))
    assert np.abs(res.x - 0.5).max() < 0.1 and np.abs(res.y + 0.5).max() < 0.1
    with pytest.raises(TypeError, match="args: expected a tuple"):
        cbopt.minimax(f, [(-2, 2)] * 2, [(-2, 2)] * 2, args=[0.5, -0.5])


def test_init_scale_as_an_option_as_in_minimize():
    """options={"init_scale": ...} (minimize's spelling) equals the keyword; both at once is refused."""
    kw = dict(x0=np.zeros(2), y0=np.zeros(2), rng=0, stop=cbopt.Stop(max_iter=20))
    a = cbopt.minimax(lambda x, y: (x**2).sum(-1) - (y**2).sum(-1), init_scale=2.0, **kw)
    b = cbopt.minimax(lambda x, y: (x**2).sum(-1) - (y**2).sum(-1), options={"init_scale": 2.0}, **kw)
    np.testing.assert_array_equal(a.x, b.x)
    with pytest.raises(ValueError, match="give it once"):
        cbopt.minimax(lambda x, y: (x**2).sum(-1) - (y**2).sum(-1), init_scale=2.0, options={"init_scale": 1.0},
                      **kw)
    two = lambda x: np.stack([(x**2).sum(-1), ((x - 1) ** 2).sum(-1)], -1)  # noqa: E731
    c = cbopt.multiobjective(two, x0=np.zeros(2), init_scale=0.5, rng=0, max_evals=1000)
    d = cbopt.multiobjective(two, x0=np.zeros(2), options={"init_scale": 0.5}, rng=0, max_evals=1000)
    np.testing.assert_array_equal(c.population, d.population)
