"""Zeroth-order estimators: unbiasedness on quadratics, comparison-only descent, in-place module estimates."""

import functools

import numpy as np
import pytest

import cbopt
from cbopt._backend import NumpySampler
from cbopt.estimators import ESTIMATORS

D = 6
A = np.diag(np.linspace(1.0, 4.0, D)) + 0.1  # symmetric positive definite
B = np.linspace(-1.0, 1.0, D)


def quad(X):
    return 0.5 * np.einsum("...i,ij,...j->...", X, A, X) + X @ B


def grad(x):
    return A @ x + B


X0 = np.linspace(0.5, -0.5, D)


@pytest.mark.parametrize("kind", ["gaussian", "spsa"])
def test_averaged_estimate_converges_to_the_gradient(kind):
    # on a quadratic the smoothed gradient is the gradient; the mean of n independent estimates has an
    # error that shrinks like 1/sqrt(n): check the trend and the size over 3 sample sizes
    errs = []
    for n in (10, 100, 1000):
        g = cbopt.zo.gradient(quad, X0, kind=kind, n=n, rng=n)
        errs.append(np.linalg.norm(g - grad(X0)) / np.linalg.norm(grad(X0)))
    assert errs[0] > errs[1] > errs[2]
    # relative error of a q-direction mean is about sqrt((d + 1) / q) for Gaussian directions; 2x margin
    assert errs[2] < 2 * np.sqrt((D + 1) / 1000)
    assert errs[0] > 0.05  # it is an estimate, not the exact gradient


def test_the_mean_of_gaussian_estimates_is_unbiased():
    # 400 independent single-direction estimates: the mean lies within 4 standard errors of the gradient
    est = np.array([cbopt.zo.gradient(quad, X0, kind="gaussian", n=1, rng=s) for s in range(400)])
    se = est.std(0, ddof=1) / np.sqrt(len(est))
    assert np.all(np.abs(est.mean(0) - grad(X0)) < 4 * se)


def test_smoothed_gradient_of_a_nonquadratic():
    # f = sum cos(x): the Gaussian smoothing of radius mu gives grad f_mu = -sin(x) exp(-mu^2 / 2) exactly
    mu = 0.5
    f = lambda X: np.cos(X).sum(-1)
    g = np.mean([cbopt.zo.gradient(f, X0, mu=mu, n=500, rng=s) for s in range(20)], axis=0)
    smoothed = -np.sin(X0) * np.exp(-mu**2 / 2)
    np.testing.assert_allclose(g, smoothed, atol=0.06)
    assert np.abs(g + np.sin(X0)).max() > np.abs(g - smoothed).max()  # closer to the smoothed gradient


def test_cge_is_the_central_difference_on_its_coordinates():
    g = cbopt.zo.gradient(quad, X0, kind="cge")
    np.testing.assert_allclose(g, grad(X0), rtol=1e-7, atol=1e-9)
    sub = cbopt.zo.gradient(quad, X0, kind="cge", n=2, rng=0)
    nz = np.flatnonzero(sub)
    assert len(nz) == 2
    np.testing.assert_allclose(sub[nz], grad(X0)[nz], rtol=1e-7)


def test_rank_estimate_points_downhill_on_average():
    gs = np.array([cbopt.zo.rank_gradient(lambda P: np.argsort(quad(P)), X0, n=10, rng=s) for s in range(200)])
    mean = gs.mean(0)
    cos = mean @ grad(X0) / np.linalg.norm(mean) / np.linalg.norm(grad(X0))
    assert cos > 0.95


def test_rank_descent_with_comparisons_only():
    # the oracle sees two points at a time and answers which is better; the method never sees a value
    calls = {"n": 0}

    def better(a, b):
        calls["n"] += 1
        return -1 if quad(a) < quad(b) else 1

    def order(P):
        return sorted(range(len(P)), key=functools.cmp_to_key(lambda i, j: better(P[i], P[j])))

    x = np.full(D, 3.0)
    f0 = quad(x)
    for k in range(300):
        x = x - 0.5 / (1 + k) ** 0.5 * cbopt.zo.rank_gradient(order, x, mu=1e-2, n=8, rng=k)
    fmin = quad(-np.linalg.solve(A, B))
    assert quad(x) - fmin < 0.02 * (f0 - fmin)
    assert calls["n"] > 0


def test_rank_method_reads_only_the_order():
    # a strictly increasing transform of f leaves the zo-rank trajectory unchanged, bit for bit
    kw = dict(x0=X0, method="zo-rank", rng=3, max_evals=2000)
    a = cbopt.minimize(quad, **kw)
    b = cbopt.minimize(lambda X: np.exp(quad(X) / 5) + 7, **kw)
    np.testing.assert_array_equal(a.consensus, b.consensus)
    assert quad(a.consensus) < quad(X0)


def test_rank_oracle_must_return_a_permutation():
    with pytest.raises(ValueError, match="permutation"):
        cbopt.zo.rank_gradient(lambda P: [0] * len(P), X0, n=4, rng=0)


@pytest.mark.parametrize("method", ["zo-gaussian", "zo-spsa", "zo-cge", "zo-rank"])
def test_zo_methods_converge_on_a_quadratic(method):
    # the rank estimate has no gradient scale: a fixed step hovers at O(lr), a decaying one converges
    options = {"lr": cbopt.schedules.Geometric(0.05, 0.998, floor=1e-5)} if method == "zo-rank" else None
    res = cbopt.minimize(quad, x0=X0, method=method, rng=0, max_evals=20_000, options=options)
    xstar = -np.linalg.solve(A, B)
    assert np.linalg.norm(res.consensus - xstar) < (1e-2 if method == "zo-rank" else 1e-3)


def test_zo_parameters_are_validated():
    with pytest.raises(ValueError, match="mu"):
        cbopt.minimize(quad, x0=X0, method="zo-gaussian", options={"mu": 0})
    with pytest.raises(ValueError, match="n_directions"):
        cbopt.minimize(quad, x0=X0, method="zo-cge", options={"n_directions": D + 1})
    with pytest.raises(ValueError, match="n_directions"):
        cbopt.minimize(quad, x0=X0, method="zo-rank", options={"n_directions": 1})
    with pytest.raises(ValueError, match="kind"):
        cbopt.zo.gradient(quad, X0, kind="nope")
    with pytest.raises(ValueError, match="energies of shape"):
        cbopt.zo.gradient(lambda X: X, X0)


def test_stencil_and_combine_agree_with_a_direct_formula():
    s = NumpySampler(np.random.default_rng(0))
    x = X0[None]
    est = ESTIMATORS["gaussian"]
    u = est.directions(s, 1, 3, D, x)
    pts = est.stencil(x, u, 1e-3)
    e = quad(pts)
    direct = sum((quad(x[0] + 1e-3 * u[0, i]) - quad(x[0] - 1e-3 * u[0, i])) / 2e-3 * u[0, i] for i in range(3)) / 3
    np.testing.assert_allclose(est.combine(u, e, 1e-3)[0], direct, rtol=1e-9)


# -- torch modules ------------------------------------------------------------------------------------


torch = pytest.importorskip("torch")


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _data():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(64, 4, generator=g)
    return X, (X[:, 0] > 0).long() + (X[:, 1] > 0).long()


def _flat_grad(model):
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def _module_error(kind, n, seed=0):
    model, (X, y) = _mlp(), _data()
    model.double()
    X = X.double()
    loss = lambda: torch.nn.functional.cross_entropy(model(X), y)
    loss().backward()
    exact = _flat_grad(model).clone()
    model.zero_grad(set_to_none=True)
    est = cbopt.zo.ModuleEstimator(model.parameters(), kind=kind, n_directions=n, rng=seed)
    est.backward(loss)
    assert est.nfev == (2 * n if n else 2 * est.dim)
    return float((_flat_grad(model) - exact).norm() / exact.norm()), est.dim


@pytest.mark.parametrize("kind", ["gaussian", "spsa"])
def test_module_estimate_converges_to_backprop(kind):
    # relative error of a mean over q directions ~ sqrt((d + 1) / q): within 2x of that, and shrinking
    small, d = _module_error(kind, 40)
    large, _ = _module_error(kind, 4000)
    assert large < 2 * np.sqrt((d + 1) / 4000)
    assert small > 3 * large


def test_module_cge_is_backprop_up_to_differencing():
    err, _ = _module_error("cge", None)
    assert err < 1e-6


def test_module_estimator_leaves_the_weights_in_place():
    model, (X, y) = _mlp(), _data()
    before = [p.detach().clone() for p in model.parameters()]
    ptrs = [p.data_ptr() for p in model.parameters()]
    est = cbopt.zo.ModuleEstimator(model.parameters(), kind="gaussian", n_directions=8, rng=0)
    est.backward(lambda: torch.nn.functional.cross_entropy(model(X), y))
    assert [p.data_ptr() for p in model.parameters()] == ptrs  # the same storage: perturbed in place
    for p, b in zip(model.parameters(), before, strict=True):  # and restored (up to rounding of +mu z - 2 mu z + mu z)
        torch.testing.assert_close(p.detach(), b, rtol=0, atol=1e-6)


def test_module_estimator_accumulates_like_backward_and_is_seeded():
    model, (X, y) = _mlp(), _data()
    loss = lambda: torch.nn.functional.cross_entropy(model(X), y)
    grads = []
    for _ in range(2):
        model.zero_grad(set_to_none=True)
        cbopt.zo.ModuleEstimator(model.parameters(), kind="spsa", n_directions=2, rng=5).backward(loss)
        grads.append(_flat_grad(model).clone())
    torch.testing.assert_close(grads[0], grads[1])
    cbopt.zo.ModuleEstimator(model.parameters(), kind="spsa", n_directions=2, rng=5).backward(loss)
    # (the weights moved by rounding when the first estimate undid its perturbations: not bit-equal)
    torch.testing.assert_close(_flat_grad(model), 2 * grads[0], rtol=1e-3, atol=1e-6)


def test_module_rank_estimator_descends_with_an_optimizer():
    model, (X, y) = _mlp(), _data()
    loss = lambda: torch.nn.functional.cross_entropy(model(X), y)
    first = float(loss().detach())
    est = cbopt.zo.ModuleEstimator(model.parameters(), kind="rank", n_directions=10, rng=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        est.backward(loss)
        opt.step()
    assert float(loss().detach()) < 0.8 * first


def test_module_estimator_errors():
    with pytest.raises(ValueError, match="requires grad"):
        cbopt.zo.ModuleEstimator([torch.zeros(3)])
    with pytest.raises(ValueError, match="kind"):
        cbopt.zo.ModuleEstimator(_mlp().parameters(), kind="adam")


@pytest.mark.parametrize("kind, fail_at", [("gaussian", 1), ("gaussian", 2), ("spsa", 3), ("cge", 2)])
def test_a_closure_that_raises_leaves_the_weights_as_they_were(kind, fail_at):
    """The weights are perturbed in place while the closure runs: an exception from it (here on its
    fail_at-th call) must not leave them shifted by mu."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    before = [p.detach().clone() for p in model.parameters()]
    calls = []

    def loss():
        calls.append(1)
        if len(calls) == fail_at:
            raise RuntimeError("the data loader failed")
        return model(torch.ones(3, 4)).pow(2).mean()

    est = cbopt.zo.ModuleEstimator(model.parameters(), kind=kind, n_directions=4, mu=1e-2, rng=0)
    with pytest.raises(RuntimeError, match="data loader"):
        est.backward(loss)
    for p, b in zip(model.parameters(), before, strict=True):
        torch.testing.assert_close(p.detach(), b, atol=1e-6, rtol=0)  # shifted by mu = 1e-2 before the fix


@pytest.mark.parametrize("case, match", [
    ("f all NaN", "non-finite value"),
    ("x holds NaN", "x: must be finite"),
    ("mu overflows f", "non-finite value"),
    ("mu overflows the stencil", "leave the floating-point range"),
])
def test_an_undefined_estimate_is_an_error_not_zeros(case, match):
    """Before, each of these returned a gradient of zeros without a word."""
    def square(X):
        with np.errstate(over="ignore"):
            return (X**2).sum(-1)

    f = {"f all NaN": lambda X: np.full(X.shape[:-1], np.nan)}.get(case, square)
    x = {"x holds NaN": np.array([np.nan, 0.0, 0.0]), "mu overflows the stencil": np.full(3, 1e308)}.get(
        case, np.zeros(3))
    mu = {"mu overflows f": 1e300, "mu overflows the stencil": 1e308}.get(case, 1e-3)
    with pytest.raises(ValueError, match=match):
        cbopt.zo.gradient(f, x, kind="cge", mu=mu, rng=0)
