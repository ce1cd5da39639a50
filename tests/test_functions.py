import numpy as np
import pytest

from cbopt.objectives import FUNCTIONS, get_function, himmelblau, noisy, rastrigin, schwefel, sphere

NAMES = sorted(FUNCTIONS)


def dims(f):
    return [f.dim] if f.dim else [f.min_dim, 2, 7]


@pytest.mark.parametrize("name", NAMES)
def test_documented_minimum_is_attained(name):
    f = FUNCTIONS[name]
    for d in dims(f):
        xs = f.minimizers(d)
        np.testing.assert_allclose(f(xs), f.minimum(d), atol=1e-9 * max(1, d))


@pytest.mark.parametrize("name", NAMES)
def test_documented_minimum_is_the_minimum(name):
    """No random point of the box, and no local refinement from the minimiser, does better."""
    scipy_opt = pytest.importorskip("scipy.optimize")
    f = FUNCTIONS[name]
    g = np.random.default_rng(0)
    for d in dims(f):
        lo, hi = f.bounds(d).T
        x = lo + (hi - lo) * g.random((20000, d))
        near = f.minimizers(d)[0] + 0.05 * g.standard_normal((2000, d))
        tol = 1e-9 * max(1, d)
        assert f(x).min() >= f.minimum(d) - tol
        assert f(near).min() >= f.minimum(d) - tol
        for x0 in f.minimizers(d):
            r = scipy_opt.minimize(lambda v: float(f(v)), x0, method="Nelder-Mead",
                                   options={"xatol": 1e-12, "fatol": 1e-14})
            assert r.fun >= f.minimum(d) - 1e-7


@pytest.mark.parametrize("name", NAMES)
def test_batched_over_leading_axes(name):
    f = FUNCTIONS[name]
    d = dims(f)[-1]
    x = np.random.default_rng(1).uniform(-1, 1, (3, 4, d))
    e = f(x)
    assert e.shape == (3, 4)
    np.testing.assert_allclose(e[1, 2], f(x[1, 2]))


def test_himmelblau_has_four_distinct_minima():
    xs = himmelblau.minimizers(2)
    assert xs.shape == (4, 2) and len({tuple(np.round(x, 3)) for x in xs}) == 4


@pytest.mark.parametrize("rotate", [False, True])
@pytest.mark.parametrize("name", ["rastrigin", "rosenbrock", "schwefel", "himmelblau", "styblinski_tang"])
def test_shift_and_rotation_move_the_minimiser(name, rotate):
    f = get_function(name)
    d = f.dim or 5
    inst = f.instance(d, shift=True, rotate=rotate, rng=3)
    assert inst.x_min.shape[1] == d
    np.testing.assert_allclose(inst(inst.x_min), inst.f_min, atol=1e-8)
    assert not np.allclose(inst.x_best, f.minimizers(d)[0])
    lo, hi = f.box
    span = (hi - lo) * 0.2
    assert np.all(np.abs(inst.shift - (lo + hi) / 2) <= span + 1e-12)
    g = np.random.default_rng(0)
    if name == "schwefel":  # defined on its box only: stay where R (x - s) + x* is inside it
        x = inst.x_best + g.uniform(-1, 1, (5000, d)) * (500 - 420.97) / np.sqrt(d)
    else:
        x = g.uniform(lo, hi, (5000, d))
    assert inst(x).min() >= inst.f_min - 1e-9


def test_explicit_shift_and_rotation():
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    inst = rastrigin.instance(3, shift=[1.0, -2.0, 0.5], rotate=q)
    np.testing.assert_allclose(inst.x_best, [1.0, -2.0, 0.5])
    with pytest.raises(ValueError, match="orthogonal"):
        rastrigin.instance(3, rotate=np.ones((3, 3)))
    with pytest.raises(ValueError, match="shift"):
        rastrigin.instance(3, shift=[1.0, 2.0])
    with pytest.raises(ValueError, match="d=2"):
        himmelblau.instance(3)
    with pytest.raises(ValueError, match="unknown test function"):
        get_function("nope")


def test_noisy_variant_is_seeded_and_unbiased():
    f1, f2 = noisy(sphere, 0.5, rng=1), noisy(sphere, 0.5, rng=1)
    x = np.zeros((10000, 3))
    a, b = f1(x), f2(x)
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean()) < 0.05 and abs(a.std() - 0.5) < 0.02


def test_schwefel_minimum_is_at_the_edge_region():
    assert schwefel.minimizers(2)[0, 0] == pytest.approx(420.9687, abs=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_torch_backend_agrees(name):
    torch = pytest.importorskip("torch")
    f = FUNCTIONS[name]
    d = dims(f)[-1]
    x = np.random.default_rng(2).uniform(-2, 2, (6, d))
    e = f(torch.as_tensor(x))
    assert isinstance(e, torch.Tensor)
    np.testing.assert_allclose(e.numpy(), f(x), rtol=1e-12, atol=1e-12)
    inst = f.instance(d, shift=True, rotate=True, rng=0)
    np.testing.assert_allclose(inst(torch.as_tensor(x)).numpy(), inst(x), rtol=1e-10, atol=1e-10)
