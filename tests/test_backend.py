"""The torch backend: inference of backend/dtype/device, the objective policy, samplers, agreement with numpy."""

import numpy as np
import pytest

import cbopt
from cbopt import _backend
from cbopt.objectives import ackley, rastrigin, sphere

torch = pytest.importorskip("torch")

NO_STOP = dict(xtol=None, ftol=None, divergence=None)


def test_tensor_inputs_choose_torch_with_their_dtype():
    x0 = torch.zeros(3, dtype=torch.float32)
    res = cbopt.minimize(sphere, x0, rng=0, max_evals=800, method="cbo")
    assert isinstance(res.x, torch.Tensor) and res.x.dtype == torch.float32
    bounds = torch.tensor([[-1.0, 1.0]] * 3, dtype=torch.float64)
    res = cbopt.minimize(sphere, bounds=bounds, rng=0, max_evals=800, method="cbo")
    assert res.population.dtype == torch.float64 and res.population.shape == (40, 3)


@pytest.mark.parametrize("kw, want", [
    ({"backend": "cpu"}, "torch.float64"),
    ({"backend": cbopt.Torch("cpu", "float32")}, "torch.float32"),
    ({"backend": cbopt.Numpy("float32")}, "float32"),  # numpy in float32
    ({"backend": cbopt.Numpy(np.float64)}, "float64"),
    ({"backend": "torch"}, "torch.float64"),
])
def test_explicit_dtype_and_device(kw, want):
    seen = []

    def f(x):
        seen.append(x.dtype)
        return (x * x).sum(-1)

    res = cbopt.minimize(f, bounds=[(-1, 1)] * 2, rng=0, max_evals=400, **kw, method="cbo")
    assert str(seen[0]) == want and str(res.x.dtype) == want
    assert str(res.energies.dtype) == want


def test_torch_dtype_alone_selects_torch():
    res = cbopt.minimize(sphere, bounds=[(-1, 1)] * 2, rng=0, max_evals=400, backend=cbopt.Torch(dtype=torch.float32),
                         method="cbo")
    assert isinstance(res.x, torch.Tensor) and res.x.dtype == torch.float32


@pytest.mark.parametrize("kw, exc, match", [
    ({"backend": cbopt.Numpy("int32")}, ValueError, "float32 or float64"),
    ({"backend": cbopt.Torch("cpu", "float16")}, ValueError, "float32 or float64"),
    ({"backend": "tpu:banana"}, ValueError, "not a torch device"),
    ({"backend": 3}, TypeError, "backend: expected"),
    ({"backend": "cpu", "rng": np.random.RandomState(0)}, TypeError, "legacy"),
    ({"rng": "seed"}, TypeError, "rng"),
])
def test_bad_backend_arguments_are_clear_errors(kw, exc, match):
    with pytest.raises(exc, match=match):
        cbopt.minimize(sphere, bounds=[(-1, 1)] * 2, max_evals=400, **kw, method="cbo")


def test_cuda_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        cbopt.minimize(sphere, bounds=[(-1, 1)] * 2, backend=cbopt.Torch("cuda"), method="cbo")


def test_torch_generator_drives_a_torch_run_and_is_refused_by_numpy():
    a = cbopt.minimize(sphere, bounds=[(-1, 1)] * 3, rng=torch.Generator().manual_seed(5), max_evals=600,
                       backend=cbopt.Torch("cpu"), method="cbo")
    b = cbopt.minimize(sphere, bounds=[(-1, 1)] * 3, rng=torch.Generator().manual_seed(5), max_evals=600,
                       backend=cbopt.Torch("cpu"), method="cbo")
    assert torch.equal(a.population, b.population)
    with pytest.raises(TypeError, match="torch runs only"):
        cbopt.minimize(sphere, bounds=[(-1, 1)] * 3, rng=torch.Generator(), max_evals=600, method="cbo")


def test_numpy_objective_in_a_torch_run_is_refused_with_the_fix():
    with pytest.raises(TypeError, match="on_host"):
        cbopt.minimize(lambda X: np.cos(X.numpy()).sum(-1), bounds=[(-1, 1)] * 2, backend=cbopt.Torch("cpu"), rng=0,
                       method="cbo")


def test_torch_objective_in_a_numpy_run_is_refused_with_the_fix():
    with pytest.raises(TypeError, match="backend="):
        cbopt.minimize(lambda X: torch.as_tensor(X).pow(2).sum(-1), bounds=[(-1, 1)] * 2, rng=0, method="cbo")


def test_on_host_adapts_a_numpy_objective():
    calls = []

    def f(X):
        calls.append(type(X))
        return ((X - 0.5) ** 2).sum(-1)

    res = cbopt.minimize(cbopt.on_host(f), bounds=[(-1, 1)] * 2, backend=cbopt.Torch("cpu", "float32"), rng=0,
                         max_evals=2000, method="cbo")
    assert set(calls) == {np.ndarray}
    assert res.x.dtype == torch.float32 and float(abs(res.x - 0.5).max()) < 1e-2
    with pytest.raises(TypeError, match="callable"):
        cbopt.on_host(3)


def test_numpy_and_torch_cpu_share_the_random_stream():
    """Same seed: a numpy run and a torch-CPU float64 run draw the same numbers, so their first steps
    agree to rounding (the same kernels, not a second implementation)."""
    kw = dict(bounds=[(-5, 5)] * 6, rng=11, stop=cbopt.Stop(max_iter=5, **NO_STOP), options={"batch_size": 10},
              n_runs=3)
    a = cbopt.minimize(rastrigin, **kw, method="cbo")
    b = cbopt.minimize(rastrigin, backend=cbopt.Torch("cpu"), **kw, method="cbo")
    for ra, rb in zip(a.runs, b.runs, strict=True):
        np.testing.assert_allclose(rb.population.numpy(), ra.population, rtol=1e-9, atol=1e-9)
        assert rb.nfev == ra.nfev


def test_samplers_draw_standard_normals_on_every_path():
    shape = (3, 50_000, 2)  # above the threaded threshold
    for s in (_backend.NumpySampler(np.random.default_rng(0)),
              _backend.resolve_backend(device="cpu").sampler(0),
              _backend.resolve_backend(device="cpu").sampler(torch.Generator().manual_seed(0))):
        z = _backend.to_numpy(s.normal(shape))
        assert z.shape == shape
        assert abs(z.mean()) < 5 / np.sqrt(z.size) and abs(z.var() - 1) < 0.01
        u = _backend.to_numpy(s.uniform((1000,)))
        assert u.min() >= 0 and u.max() < 1
        i = _backend.to_numpy(s.integers(7, (1000,)))
        assert i.min() >= 0 and i.max() <= 6


def test_chunked_draws_do_not_depend_on_the_thread_count(monkeypatch):
    draws = []
    for threads in (1, 2, 4):
        monkeypatch.setattr(_backend, "RNG_THREADS", threads)
        monkeypatch.setattr(_backend, "_POOL", [])
        s = _backend.NumpySampler(np.random.default_rng(3))
        draws.append(np.concatenate([s.normal((70_000,)), s.normal((5, 100_003))], axis=None))
    assert not np.array_equal(draws[0][:70_000], draws[0][70_000:140_000])
    for d in draws[1:]:
        np.testing.assert_array_equal(d, draws[0])


def test_recycled_buffer_is_never_one_a_view_still_uses():
    s = _backend.resolve_backend(device="cpu").sampler(0)
    a = s.normal((4, 5))
    view = a[1:]
    s.recycle(a, refs=1)  # a view shares the memory: not taken
    assert s._spare is None
    keep = view.clone()
    b = s.normal((4, 5))
    assert torch.equal(view, keep) and b.data_ptr() != a.data_ptr()
    del view, a
    c = s.normal((4, 5))
    s.recycle(c, refs=1)  # nothing else refers to it: reused
    assert s._spare is c


def _evals_to_target(fun, dim, device_kw, seeds, target=1e-6, budget=30_000):
    out = []
    for seed in seeds:
        rng = torch.Generator().manual_seed(seed) if device_kw else seed
        # the free dynamics these numbers were measured with (a shifted instance may put its minimiser outside
        # [-5, 5]^d, which reflection at the faces would then never reach)
        res = cbopt.minimize(fun, bounds=[(-5, 5)] * dim, rng=rng, max_evals=budget, target=target,
                             **device_kw, method="cbo", options={"boundary": None})
        out.append(res.nfev if res.reason == "TARGET" else np.inf)
    return np.asarray(out)


# measured over 20 seeds (two seed ranges): ackley d=5 median 13,000-13,200 evaluations, IQR ~1,100;
# rastrigin d=4 median 7,900-8,100, IQR ~1,500-2,800. The standard error of a median of 20 is ~1.25 sigma/sqrt(20),
# so the tolerances below are ~3-4 standard errors of the difference of two medians.
AGREEMENT = [(ackley, 5, 0.15), (rastrigin, 4, 0.25)]


@pytest.mark.parametrize("fun, dim, rel", AGREEMENT)
def test_numpy_and_torch_float64_agree_statistically(fun, dim, rel):
    """Independent streams (torch.Generator vs numpy PCG64), 20 seeds each: at least 17 runs of 20 reach f < 1e-6
    within 30,000 evaluations on both backends (measured: 18-20 on Rastrigin, 20 on Ackley), and the median
    evaluations to get there agree within ``rel``."""
    a = _evals_to_target(fun, dim, {}, range(20))
    b = _evals_to_target(fun, dim, {"backend": "cpu"}, range(20))
    assert np.isfinite(a).sum() >= 17 and np.isfinite(b).sum() >= 17
    ma, mb = np.median(a), np.median(b)
    assert abs(ma - mb) <= rel * (ma + mb) / 2


@pytest.mark.slow
@pytest.mark.parametrize("fun, dim, rel", AGREEMENT)
def test_numpy_and_torch_float64_agree_statistically_more_seeds(fun, dim, rel):
    """The same over 60 seeds and shifted optima (a few runs now end in a local minimum): success counts
    (~95 %) within 6 of each other (2.5 standard deviations of the difference), medians within ``rel``/2."""
    inst = fun.instance(dim, shift=True, rng=1)
    a = _evals_to_target(inst, dim, {}, range(100, 160), target=inst.f_min + 1e-6)
    b = _evals_to_target(inst, dim, {"backend": "cpu"}, range(100, 160), target=inst.f_min + 1e-6)
    na, nb = np.isfinite(a).sum(), np.isfinite(b).sum()
    assert na >= 50 and nb >= 50 and abs(na - nb) <= 6
    ma, mb = np.median(a), np.median(b)
    assert abs(ma - mb) <= rel / 2 * (ma + mb) / 2


def test_compile_is_a_flag_of_torch_runs():
    with pytest.raises(TypeError, match="compile"):
        cbopt.minimize(sphere, bounds=[(-1, 1)] * 2, backend=cbopt.Torch("cpu", compile="yes"), method="cbo")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_update_matches_the_eager_one(dtype):
    """torch.compile fuses the same update: same draws, same trajectory up to rounding (first compile ~20 s).
    In float32 the fused rounding differs by ~1e-7 per step and the swarm amplifies it (1e-5 after 5 steps,
    2e-4 after 20), so float32 is compared after 10 steps."""
    kw = dict(bounds=[(-5, 5)] * 6, rng=3, stop=cbopt.Stop(max_iter=30 if dtype == "float64" else 10, **NO_STOP))
    a = cbopt.minimize(rastrigin, **kw, backend=cbopt.Torch("cpu", dtype), method="cbo")
    b = cbopt.minimize(rastrigin, **kw, backend=cbopt.Torch("cpu", dtype, compile=True), method="cbo")
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(b.population.numpy(), a.population.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 41])
def test_one_median_on_both_backends(n):
    """spread and the xtol rule use one median: the midpoint of the two middle values, numpy's, on torch too."""
    from cbopt._backend import median

    x = np.random.default_rng(n).standard_normal((3, n))
    np.testing.assert_allclose(median(x), np.median(x, -1))
    np.testing.assert_allclose(median(torch.tensor(x)).numpy(), np.median(x, -1))


def test_meta_device_is_refused():
    """A meta tensor holds no values: a named error, not torch's "not an accelerator" from deep inside."""
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="meta tensors hold no values"):
        cbopt.minimize(lambda X: (X**2).sum(-1), bounds=[(-1, 1)] * 2, backend=cbopt.Torch("meta"), max_evals=100)
