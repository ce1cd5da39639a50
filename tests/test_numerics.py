import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cbopt.numerics import alpha_for_ess, consensus, consensus_weights, effective_sample_size, sanitize


def naive_consensus(x, e, alpha):
    """Textbook loop: c = sum_i x_i exp(-alpha f_i) / sum_j exp(-alpha f_j), shifted by min f for stability."""
    m, n, d = x.shape
    out = np.zeros((m, d))
    for r in range(m):
        fmin = min(e[r])
        num, den = np.zeros(d), 0.0
        for i in range(n):
            w = np.exp(-alpha[r] * (e[r, i] - fmin))
            num += w * x[r, i]
            den += w
        out[r] = num / den
    return out


def test_consensus_matches_naive_loop(rng):
    x = rng.normal(size=(3, 17, 4))
    e = rng.uniform(0, 5, size=(3, 17))
    alpha = np.array([0.0, 1.3, 50.0])
    c, w = consensus(x, e, alpha)
    np.testing.assert_allclose(c, naive_consensus(x, e, alpha), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w.sum(-1), 1.0)


finite_e = st.floats(-1e300, 1e300, allow_nan=False)


@given(
    e=arrays(np.float64, (2, 9), elements=finite_e),
    alpha=st.sampled_from([0.0, 1e-3, 1.0, 1e3, 1e15]),
    seed=st.integers(0, 2**16),
)
def test_weights_finite_and_normalised_at_extremes(e, alpha, seed):
    x = np.random.default_rng(seed).normal(size=(2, 9, 3))
    c, w = consensus(x, e, np.full(2, alpha))
    assert np.all(np.isfinite(w)) and np.all(w >= 0)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-12)
    assert np.all(np.isfinite(c))


@given(e=arrays(np.float64, (1, 12), elements=st.floats(-1e6, 1e6)), seed=st.integers(0, 2**16))
def test_permutation_invariance(e, seed):
    g = np.random.default_rng(seed)
    x = g.normal(size=(1, 12, 3))
    p = g.permutation(12)
    c1, _ = consensus(x, e, np.array([2.0]))
    c2, _ = consensus(x[:, p], e[:, p], np.array([2.0]))
    np.testing.assert_allclose(c1, c2, rtol=1e-10, atol=1e-10)


@given(e=arrays(np.float64, (2, 8), elements=st.floats(-1e3, 1e3)), seed=st.integers(0, 2**16))
def test_alpha_zero_is_the_mean(e, seed):
    x = np.random.default_rng(seed).normal(size=(2, 8, 5))
    c, _ = consensus(x, e, np.zeros(2))
    np.testing.assert_allclose(c, x.mean(1), rtol=1e-12, atol=1e-12)


@given(e=arrays(np.float64, (2, 8), elements=st.floats(-1e3, 1e3), unique=True), seed=st.integers(0, 2**16))
def test_large_alpha_is_the_argmin(e, seed):
    gaps = np.diff(np.sort(e, -1)[:, :2], axis=-1)
    assume(np.all(gaps > 1e-9))  # alpha * gap >> 1: the Laplace limit has separated the two best
    x = np.random.default_rng(seed).normal(size=(2, 8, 5))
    c, _ = consensus(x, e, np.full(2, 1e15))
    best = x[np.arange(2), e.argmin(-1)]
    np.testing.assert_allclose(c, best, rtol=0, atol=1e-12)


@given(
    e=arrays(np.float64, (1, 10), elements=st.floats(-10, 10)),
    shift=arrays(np.float64, (3,), elements=st.floats(-1e3, 1e3)),
    seed=st.integers(0, 2**16),
)
def test_translation_equivariance(e, shift, seed):
    x = np.random.default_rng(seed).normal(size=(1, 10, 3))
    c1, _ = consensus(x, e, np.array([3.0]))
    c2, _ = consensus(x + shift, e, np.array([3.0]))
    np.testing.assert_allclose(c2, c1 + shift, rtol=1e-9, atol=1e-9)


def test_nonfinite_policy_never_in_consensus(rng):
    x = rng.normal(size=(1, 5, 2))
    e, bad = sanitize(np.array([[np.nan, 1.0, -np.inf, np.inf, 2.0]]))
    assert bad.tolist() == [[True, False, True, True, False]]
    assert np.all(e[bad] == np.inf)
    for alpha in (0.0, 1.0, 1e15):
        _, w = consensus(x, e, np.array([alpha]))
        assert np.all(w[bad] == 0)
        np.testing.assert_allclose(w.sum(), 1.0)
    _, w = consensus(x, e, np.array([0.0]))  # alpha = 0: mean of the finite ones only
    np.testing.assert_allclose(w[0, [1, 4]], [0.5, 0.5])


def test_all_nonfinite_row_gives_uniform_weights():
    w = consensus_weights(np.full((1, 4), np.inf), np.array([1.0]))
    np.testing.assert_allclose(w, 0.25)


def test_energies_at_float_limits():
    e = np.array([[-1.7e308, 1.7e308, 0.0]])
    for alpha in (0.0, 1.0, 1e15):
        w = consensus_weights(e, np.array([alpha]))
        assert np.all(np.isfinite(w))
        np.testing.assert_allclose(w.sum(), 1.0)


@pytest.mark.parametrize("eta", [0.1, 0.5, 0.9])
def test_alpha_for_ess_hits_the_target(rng, eta):
    e = rng.uniform(0, 10, size=(4, 200))
    a = alpha_for_ess(e, eta)
    ess = effective_sample_size(consensus_weights(e, a)) / 200
    np.testing.assert_allclose(ess, eta, rtol=1e-3)


@pytest.mark.parametrize("threads", [2, 3, 4])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_square_sums_on_threads_are_the_one_thread_sums_bit_for_bit(monkeypatch, threads, dtype):
    """ACH's rank-mu, active and spread sums run on threads (rows or columns apart) above PARALLEL_MIN: each
    value is the one a single thread computes, so no trajectory depends on the thread count."""
    from cbopt import _backend, numerics

    rng = np.random.default_rng(threads)
    a = rng.standard_normal((2, 7, 1001)).astype(dtype)
    w = rng.random((2, 7)).astype(dtype)
    shift = rng.standard_normal((2, 1001)).astype(dtype)
    div = rng.uniform(0.5, 2.0, (2, 1001)).astype(dtype)
    sigma = rng.uniform(0.5, 2.0, 2).astype(dtype)
    calls = {
        "rows": lambda: numerics.row_square_sums(a),
        "rows-shift": lambda: numerics.row_square_sums(a, shift=shift),
        "rows-div": lambda: numerics.row_square_sums(a, div=div),
        "columns": lambda: numerics.weighted_square_sums(a, w),
        "columns-shift-div": lambda: numerics.weighted_square_sums(a, w, shift, sigma),
    }
    one = {k: f() for k, f in calls.items()}  # a.size is below PARALLEL_MIN: one thread
    monkeypatch.setattr(numerics, "PARALLEL_MIN", 1)
    monkeypatch.setattr(_backend, "RNG_THREADS", threads)
    monkeypatch.setattr(_backend, "_POOL", [])
    for k, f in calls.items():
        got = f()
        assert got.dtype == dtype and got.shape == one[k].shape
        np.testing.assert_array_equal(got, one[k])
    v = (a - shift[:, None, :]) / sigma[:, None, None]
    np.testing.assert_allclose(one["columns-shift-div"], (w[..., None] * v * v).sum(-2), rtol=1e-5)
    np.testing.assert_allclose(one["rows-div"], ((a / div[:, None, :]) ** 2).sum(-1), rtol=1e-5)


@pytest.mark.parametrize("threads", [2, 3])
def test_the_spread_on_threads_is_the_one_thread_spread_bit_for_bit(monkeypatch, threads):
    from cbopt import _backend, numerics

    rng = np.random.default_rng(threads)
    x = rng.standard_normal((2, 301, 257))
    c = rng.standard_normal((2, 257))
    one = numerics.spread(x, c, _backend.NumpySampler(np.random.default_rng(0)))
    monkeypatch.setattr(numerics, "PARALLEL_MIN", 1)
    monkeypatch.setattr(_backend, "RNG_THREADS", threads)
    monkeypatch.setattr(_backend, "_POOL", [])
    got = numerics.spread(x, c, _backend.NumpySampler(np.random.default_rng(0)))
    np.testing.assert_array_equal(got, one)
    np.testing.assert_allclose(one, np.median(np.linalg.norm(x - c[:, None, :], axis=-1), axis=-1), rtol=1e-12)
