"""Large dimensions: ACH's covariance models (full, sep, lm), the default's regime rule, the default budget,
memory at d = 1e5, and (on CUDA only) kernel steps without host synchronisation."""

import tracemalloc
import warnings

import numpy as np
import pytest

import cbopt
from cbopt.checkpoint import CheckpointError
from cbopt.methods import ach
from cbopt.methods.covariance import MODELS
from cbopt.minimize import prepare
from cbopt.objectives import rastrigin, sphere
from cbopt.stopping import MAX_DEFAULT_EVALS, default_budget

LINEAR = ("sep", "lm")


def _same(a, b):
    np.testing.assert_array_equal(np.asarray(a.x), np.asarray(b.x))
    np.testing.assert_array_equal(np.asarray(a.population), np.asarray(b.population))
    assert a.nfev == b.nfev and a.fun == b.fun


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("n_runs", [1, 3])
def test_every_model_runs_on_every_backend(model, n_runs, xp):
    seen = []

    def f(x):
        seen.append(x)
        return sphere(x)

    res = cbopt.minimize(f, bounds=[(-3, 3)] * 6, method="ach", options={"model": model}, rng=0, max_evals=3000,
                         n_runs=n_runs, **xp.kw)
    for a in (seen[-1], res.x, res.population, res.consensus):
        xp.check(a)
    assert res.fun < 1e-3 and res.fun == pytest.approx(float(sphere(xp.np(res.x))), rel=1e-4, abs=1e-6)
    if n_runs > 1:
        assert len(res.runs) == n_runs and res.nfev == sum(r.nfev for r in res.runs) + res.get("noise_checks", 0)
    again = cbopt.minimize(sphere, bounds=[(-3, 3)] * 6, method="ach", options={"model": model}, rng=0,
                           max_evals=3000, n_runs=n_runs, **xp.kw)
    np.testing.assert_array_equal(xp.np(again.population), xp.np(res.population))


@pytest.mark.parametrize("model", LINEAR)
def test_ask_tell_and_checkpoint_resume_reproduce_minimize(model, tmp_path):
    kw = dict(bounds=[(-5, 5)] * 12, method="ach", options={"model": model}, rng=3, max_evals=4000, n_runs=2)
    ref = cbopt.minimize(rastrigin, noisy=False, **kw)  # as ask/tell: no re-evaluations
    opt = cbopt.Optimizer(**kw)
    while not opt.stop():
        x = opt.ask()
        opt.tell(x, rastrigin(x))
    _same(opt.result(), ref)

    def ctrl_c(intermediate_result):
        if intermediate_result.nit == 9:
            raise KeyboardInterrupt

    path = tmp_path / "run.ckpt"
    first = cbopt.minimize(rastrigin, callback=ctrl_c, checkpoint=cbopt.Checkpoint(path, every=4), noisy=False, **kw)
    assert first.reason == "INTERRUPTED"
    _same(cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, resume=True), noisy=False, **kw), ref)


def test_a_checkpoint_of_one_model_is_refused_by_another(tmp_path):
    path = tmp_path / "run.ckpt"
    kw = dict(bounds=[(-5, 5)] * 8, method="ach", rng=1, max_evals=600)
    cbopt.minimize(sphere, options={"model": "sep"}, checkpoint=path, **kw)
    with pytest.raises((CheckpointError, ValueError), match="model|option|fingerprint|differ"):
        cbopt.minimize(sphere, options={"model": "lm"}, checkpoint=cbopt.Checkpoint(path, resume=True), **kw)


@pytest.mark.parametrize("model", MODELS)
def test_each_model_solves_a_separable_ellipsoid(model):
    # condition 1e4 in d = 20: full and sep learn the scales exactly, lm its dominant directions
    d = 20
    scales = 10 ** (4 * np.arange(d) / (d - 1))
    shift = np.random.default_rng(0).uniform(-2, 2, d)

    def elli(x):
        return (scales * (x - shift) ** 2).sum(-1)

    solved = sum(cbopt.minimize(elli, bounds=[(-5, 5)] * d, method="ach", options={"model": model}, rng=s,
                                max_evals=60_000, target=1e-8, restarts=None).fun <= 1e-8 for s in range(3))
    assert solved == 3


def test_the_linear_models_learn_scales_that_isotropic_hopping_cannot():
    # the same budget and steps: sep reaches 1e-8 on a condition-1e6 ellipsoid, adapt=False stays far above
    d = 30
    scales = 10 ** (6 * np.arange(d) / (d - 1))

    def elli(x):
        return (scales * (x - 0.5) ** 2).sum(-1)

    kw = dict(bounds=[(-5, 5)] * d, method="ach", rng=0, max_evals=40_000, restarts=None)
    learned = cbopt.minimize(elli, options={"model": "sep"}, **kw)
    fixed = cbopt.minimize(elli, options={"model": "sep", "adapt": False, "sigma0": 0.1}, **kw)
    assert learned.fun < 1e-8 < 1e-2 < fixed.fun


def test_the_lm_step_size_reads_where_folded_points_landed():
    # a condition-1e6 ellipsoid in d = 60 whose minimiser lies anywhere in [-4, 4]^d: many samples fold back at
    # the faces. The path read from the drawn z grew sigma past the box and the run stalled near its start
    # (4 of these 6 seeds above 1e6 after 5000 evaluations); read from the consensus' actual move, sigma
    # shrinks and every seed descends (all below 2e4 when this was written; the bound leaves 5x)
    d = 60
    scales = 10 ** (6 * np.arange(d) / (d - 1))
    ends = []
    for seed in range(6):
        shift = np.random.default_rng(seed).uniform(-4, 4, d)
        res = cbopt.minimize(lambda x, s=shift: (scales * (x - s) ** 2).sum(-1), bounds=[(-5, 5)] * d,
                             method="ach", options={"model": "lm"}, rng=seed, max_evals=5000, restarts=None)
        ends.append(res.fun)
    assert max(ends) < 1e5, ends


def test_the_lm_path_undoes_the_sampling_product():
    # without a box, A^-1 of the consensus move is the weighted mean of the drawn z (to rounding)
    from cbopt.methods.ach import _run_constants
    from cbopt.methods.covariance import LM

    d = 12
    st = prepare(bounds=[(-5, 5)] * d, method="ach", options={"model": "lm", "boundary": None}, rng=3,
                 restarts=None, stop=cbopt.Stop(max_iter=100))
    spec, params, problem, sampler = st.spec, st.params, st.problem, st.sampler
    x, aux = spec.init_population(params, problem, sampler)
    state = spec.init(params, problem, sampler, x, sphere(x), aux)
    for it in range(1, 30):  # vectors learned over some steps
        xs, z = spec.ask(state, params, problem, sampler, it)
        state = spec.tell(state, params, problem, sampler, it, xs, sphere(xs), z)
    assert np.abs(state.cov).max() > 0.1
    k = _run_constants(params, d, xs.shape[1], params.active)
    xs, z = spec.ask(state, params, problem, sampler, 30)
    w = np.random.default_rng(0).dirichlet(np.ones(xs.shape[1]), 1)
    move = ((w[:, None, :] @ xs)[:, 0, :] - state.consensus) / state.sigma[:, None]
    np.testing.assert_allclose(LM.unmixed(state, k, move / state.scale, 30), (w[:, None, :] @ z)[:, 0, :],
                               rtol=1e-9, atol=1e-12)


def test_the_default_picks_the_model_by_dimension():
    for d, model in ((2, "full"), (ach.FULL_MAX, "full"), (ach.FULL_MAX + 1, "sep"), (10_000, "sep")):
        st = prepare(bounds=[(-1, 1)] * d, max_evals=1000)
        assert st.spec.name == "ach" and st.params.model == model
    with pytest.raises(ValueError, match="model: expected None or one of"):
        prepare(bounds=[(-1, 1)] * 3, method="ach", options={"model": "diag"})


def _corner(d):
    """A linear slope over [-5, 5]^d (weights 1 ... 10) whose minimum 0 is a corner of the box."""
    w = 10 ** (np.arange(d) / (d - 1))
    sign = np.where(np.arange(d) % 2, 1.0, -1.0)
    return lambda x: (w * (5 - sign * np.asarray(x))).sum(-1)


def test_clipping_holds_an_optimum_on_the_faces_where_reflection_crawls(monkeypatch):
    # an optimum at a corner of the box (BBOB's f5 is one): the sep model's default box handling clips the
    # samples onto the faces and its step size reads only the coordinates still free (ach._free); reflection
    # converges to the faces by a shrinking fold, and clipping without the held coordinates' rule lets CSA
    # shrink sigma for every coordinate already at its face
    d = 80
    f = _corner(d)
    kw = dict(bounds=[(-5, 5)] * d, method="ach", max_evals=40_000, restarts=None)
    auto = [cbopt.minimize(f, options={"model": "sep"}, rng=k, **kw).fun for k in range(3)]
    reflect = [cbopt.minimize(f, options={"model": "sep", "boundary": "reflect"}, rng=k, **kw).fun for k in range(3)]
    monkeypatch.setattr(ach, "_free", lambda *a: None)
    unheld = [cbopt.minimize(f, options={"model": "sep"}, rng=k, **kw).fun for k in range(3)]
    assert max(auto) < 1e-6 and min(reflect) > 1e-3 and min(unheld) > 1e-3, (auto, reflect, unheld)


def test_the_box_handling_follows_the_model_unless_given():
    def boundary(d, **options):
        return prepare(bounds=[(-1, 1)] * d, method="ach", options=options, max_evals=1000).params.boundary

    assert boundary(ach.FULL_MAX) == "reflect" and boundary(ach.FULL_MAX + 1) == "clip"
    assert boundary(5, model="sep") == "clip" and boundary(5, model="lm") == "reflect"
    assert boundary(ach.FULL_MAX + 1, boundary="reflect") == "reflect" and boundary(5, boundary=None) is None
    with pytest.raises(ValueError, match="boundary: expected"):
        boundary(5, boundary="fold")


def test_a_coordinate_held_at_a_face_leaves_the_step_size_alone():
    from cbopt.methods.covariance import cma_paths, csa

    d, lam = 40, 12
    k = ach.constants(d, lam, lam / 3, True, "sep", 0.0)
    rng = np.random.default_rng(0)
    state = ach.ACHState(*([None] * len(ach.ACHState._fields)))._replace(
        ps=rng.standard_normal((1, d)), pc=np.zeros((1, d)))
    dm = rng.standard_normal((1, d))
    sigma = np.ones(1)
    everything = cma_paths(state, k, dm, dm, np.ones(1) * 3, 5)
    assert np.array_equal(cma_paths(state, k, dm, dm, np.ones(1) * 3, 5, np.ones((1, d), bool)).psn, everything.psn)
    none = cma_paths(state, k, dm, dm, np.ones(1) * 3, 5, np.zeros((1, d), bool))
    assert csa(sigma, k, none.psn) == pytest.approx(sigma, rel=1e-12) and not none.ps.any()
    half = np.arange(d) < d // 2  # the held half counts at its expectation, the free half as it is
    some = cma_paths(state, k, dm, dm, np.ones(1) * 3, 5, half[None])
    assert some.psn[0] ** 2 == pytest.approx((everything.ps[0, half] ** 2).sum() + (d // 2) * k.chin**2 / d)


def test_the_default_sets_the_step_size_pace_by_the_budget():
    from cbopt.minimize import make_loop

    def pace(d, max_evals, **options):
        seq = make_loop(prepare(bounds=[(-1, 1)] * d, max_evals=max_evals, options=options or None))
        return seq.run.params.sigma_pace

    d = ach.FULL_MAX + 10
    assert pace(d, ach.LONG_BUDGET * d) == 0.0 and pace(d, ach.LONG_BUDGET * d - 1) == 2.0
    assert pace(d, ach.LONG_BUDGET * d, sigma_pace=1.0) == 1.0  # the user's option wins
    with pytest.raises(ValueError, match="sigma_pace"):
        prepare(bounds=[(-1, 1)] * 3, method="ach", options={"sigma_pace": -1})


def test_the_default_budget_is_capped_and_documented_in_one_place():
    assert default_budget(10) == 50_000 and default_budget(10_000) == MAX_DEFAULT_EVALS
    assert prepare(bounds=[(-1, 1)] * 1000).rules.max_evals == MAX_DEFAULT_EVALS
    assert prepare(bounds=[(-1, 1)] * 20).rules.max_evals == 100_000


def test_a_long_default_run_says_how_long_it_will_take():
    import time

    def slow(x):
        time.sleep(0.25)
        return sphere(x)

    def enough(intermediate_result):
        return intermediate_result.nit >= 6

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = cbopt.minimize(slow, bounds=[(-1, 1)] * 2, rng=0, callback=enough)
    assert res.reason == "CALLBACK"
    said = [str(w.message) for w in seen if "will take about" in str(w.message)]
    assert len(said) == 1 and "10000 evaluations" in said[0] and "max_evals=" in said[0]
    with warnings.catch_warnings(record=True) as seen:  # a budget the user chose is not second-guessed
        warnings.simplefilter("always")
        cbopt.minimize(slow, bounds=[(-1, 1)] * 2, rng=0, max_evals=10_000, callback=enough)
    assert not [w for w in seen if "will take about" in str(w.message)]


def test_the_default_at_d_1e5_never_allocates_a_d_by_d_array():
    d = 100_000
    tracemalloc.start()
    try:
        res = cbopt.minimize(sphere, bounds=[(-5, 5)] * d, rng=0, max_evals=200)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    lam = ach.ACHParams().resolved(d).n_particles
    assert res.nfev <= 200 and np.isfinite(res.fun)
    # the swarm's few (lambda, d) arrays and O(d) vectors; a d x d float64 array alone would be 80 GB
    assert peak < 40 * lam * d * 8
    assert cbopt.get_method("ach").extra_floats(ach.ACHParams().resolved(d), d) < 10 * d


def test_a_full_model_that_cannot_fit_is_refused_before_allocating():
    with pytest.raises(ValueError, match="the run needs at least"):
        cbopt.minimize(sphere, bounds=[(-1, 1)] * 200_000, method="ach", options={"model": "full"}, max_evals=100)


@pytest.mark.parametrize("model", LINEAR)
def test_the_portfolio_takes_no_separability_vote_from_a_model_without_correlations(model):
    spec = cbopt.get_method("ach")
    params = spec.make_params({"model": model}, 5)
    st = prepare(bounds=[(-1, 1)] * 5, method="ach", options={"model": model}, max_evals=500, restarts=None)
    from cbopt.driver import Run

    run = Run(st.spec, st.params, st.problem, st.sampler, st.rules)
    while (x := run.ask()) is not None:
        run.tell(run.check(sphere(x)))
    assert spec.axis_correlation(params, run.state) is None
    full = spec.make_params({"model": "full"}, 5)
    st = prepare(bounds=[(-1, 1)] * 5, method="ach", max_evals=500, restarts=None)
    run = Run(st.spec, st.params, st.problem, st.sampler, st.rules)
    while (x := run.ask()) is not None:
        run.tell(run.check(sphere(x)))
    assert 0 <= spec.axis_correlation(full, run.state) <= 1


def _cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    return torch


@pytest.mark.parametrize("method,options", [("cbo", {}), ("ach", {"model": "sep"}), ("ach", {"model": "lm"})])
def test_a_kernel_step_on_cuda_makes_no_host_synchronisation(method, options):
    torch = _cuda()
    st = prepare(bounds=[(-3, 3)] * 64, method=method, options={**options, "n_particles": 256}, rng=0,
                 backend=cbopt.Torch("cuda", dtype="float32"), restarts=None, max_evals=10**6)
    spec, params, problem, sampler = st.spec, st.params, st.problem, st.sampler
    x, aux = spec.init_population(params, problem, sampler)
    state = spec.init(params, problem, sampler, x, sphere(x), aux)
    for it in range(1, 3):  # warm-up: tables and kernels are built once
        x, aux = spec.ask(state, params, problem, sampler, it)
        state = spec.tell(state, params, problem, sampler, it, x, sphere(x), aux)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for it in range(3, 45):  # past the termination checks (every 5 steps) and a stagnation block (20)
            x, aux = spec.ask(state, params, problem, sampler, it)
            state = spec.tell(state, params, problem, sampler, it, x, sphere(x), aux)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert state.x.device.type == "cuda"


def test_reflection_pushes_past_the_faces_when_most_coordinates_sit_at_one():
    """One ACH run (full model, reflection) on the corner slope, d = 10: with most coordinates at their faces
    the rule samples them past the face and clips them onto it, and the corner is hit exactly within 1500
    evaluations; reflection alone ends more than 1e-3 above it (without the model step, which alone gets to
    about 1e-4 here). Two coordinates at a face (a ball's centre there) leave reflection in charge: the same run,
    bit for bit."""
    d = 10
    f = _corner(d)
    kw = dict(bounds=[(-5, 5)] * d, method="ach", max_evals=1500)
    for seed in range(3):
        assert cbopt.minimize(f, rng=seed, **kw).fun == 0.0
        assert cbopt.minimize(f, rng=seed, options={"face_push": 0, "surrogate": False}, **kw).fun > 1e-3
    centre = np.r_[5.0, -5.0, np.zeros(d - 2)]
    ball = lambda x: np.sum((np.asarray(x) - centre) ** 2, -1)  # noqa: E731
    a = cbopt.minimize(ball, rng=0, **kw)
    b = cbopt.minimize(ball, rng=0, options={"face_push": 0}, **kw)
    assert a.fun == b.fun and np.array_equal(a.x, b.x) and a.fun < 1e-6
    with pytest.raises(ValueError, match="face_push"):
        cbopt.minimize(ball, rng=0, options={"face_push": -1}, **kw)


def test_clipping_pushes_past_the_faces_too():
    """The sep model clips: half of a held coordinate's samples land on its face, pushed one sd past it 84 %.
    On the corner slope at d = 40 and 100·d evaluations the push ends below 1e-2 where clipping alone stays
    above 1 (1.4-2 in these seeds)."""
    d = 40
    f = _corner(d)
    kw = dict(bounds=[(-5, 5)] * d, method="ach", max_evals=100 * d)
    for seed in range(3):
        assert cbopt.minimize(f, rng=seed, options={"model": "sep"}, **kw).fun < 1e-2
        assert cbopt.minimize(f, rng=seed, options={"model": "sep", "face_push": 0}, **kw).fun > 1.0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape,threads", [((2, 300, 300), 2), ((1, 3, 40_000), 4), ((2, 2, 50_000), 3)])
def test_a_large_numpy_move_on_threads_is_the_one_thread_move_bit_for_bit(monkeypatch, dtype, shape, threads):
    """Above PARALLEL_MIN numpy moves parts of the swarm on threads (rows, or columns when there are fewer
    rows than threads): every coordinate as one thread computes it, the fold into a box with per-coordinate
    bounds included, whether few or many points land outside."""
    from cbopt import _backend
    from cbopt.methods import cbo

    m, n, d = shape
    params = cbo.CBOParams(n_particles=n).resolved(d)
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, shape).astype(dtype)
    c = rng.uniform(-1, 1, (m, 1, d)).astype(dtype)
    lo = -np.linspace(1, 2, d).astype(dtype)
    moves = {}
    for label, (pmin, nthreads) in {"one": (10**12, 1), "threads": (1, threads)}.items():
        monkeypatch.setattr(cbo, "PARALLEL_MIN", pmin)
        monkeypatch.setattr(cbo, "RNG_THREADS", nthreads)
        monkeypatch.setattr(_backend, "RNG_THREADS", nthreads)
        monkeypatch.setattr(_backend, "_POOL", [])
        for width in (0.3, 30.0):  # most points outside a narrow box (the one-expression fold), few in a wide
            sampler = _backend.NumpySampler(np.random.default_rng(7), dtype)
            sigma = np.full(m, 1.0 / np.sqrt(params.dt))
            moves[label, width] = cbo.move(x, c, sigma, params, sampler, box=(lo * width, -lo * width))
    for width in (0.3, 30.0):
        a, b = moves["one", width], moves["threads", width]
        assert a.dtype == np.dtype(dtype) and np.all(np.abs(a) <= -lo * width)
        np.testing.assert_array_equal(b, a)
    assert not np.array_equal(moves["one", 0.3], moves["one", 30.0])


def test_the_fold_written_for_compilation_is_the_reflection():
    """fold_expr (the fold inside compiled CBO steps) returns an inside point bit for bit as reflect does, an
    outside one (up to five widths away) where reflect puts it up to rounding."""
    torch = pytest.importorskip("torch")
    from cbopt.methods._base import fold_expr, reflect

    rng = np.random.default_rng(11)
    lo = -rng.uniform(0.5, 3.0, 50)
    hi = rng.uniform(0.5, 3.0, 50)
    w = hi - lo
    x = lo + w * rng.uniform(-5.0, 6.0, (400, 50))
    x[:100] = lo + w * rng.uniform(0.0, 1.0, (100, 50))  # inside
    x[100, :] = lo  # on the faces
    x[101, :] = hi
    want = reflect(x, lo, hi)
    t = torch.as_tensor
    got = fold_expr(t(x), t(lo), t(hi)).numpy()
    inside = (x >= lo) & (x <= hi)
    assert inside.mean() > 0.25 and (~inside).mean() > 0.5
    np.testing.assert_array_equal(got[inside], want[inside])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert np.all(got >= lo - 1e-12) and np.all(got <= hi + 1e-12)


@pytest.mark.parametrize("mode", ["clip", "reflect", None])
@pytest.mark.parametrize("threads", [2, 3])
def test_placing_samples_on_threads_is_the_one_thread_placement_bit_for_bit(monkeypatch, mode, threads):
    """ACH's m + sigma y and the box handling run on threads, columns apart, above PARALLEL_MIN: the same
    values as one thread, per-coordinate bounds included, with few and with many samples outside."""
    from cbopt import _backend
    from cbopt.methods import _base

    rng = np.random.default_rng(threads)
    d = 3001
    lo = -rng.uniform(1, 3, d)
    problem = _base.Problem(dim=d, n_runs=2, lo=lo, hi=-lo)
    m = rng.uniform(-1, 1, (2, d))
    y = rng.standard_normal((2, 11, d))
    placed = {}
    for label, (pmin, n) in {"one": (10**12, 1), "threads": (1, threads)}.items():
        monkeypatch.setattr(_base, "PARALLEL_MIN", pmin)
        monkeypatch.setattr(_backend, "RNG_THREADS", n)
        monkeypatch.setattr(_backend, "_POOL", [])
        for s in (0.3, 5.0):  # few outside, most outside
            placed[label, s] = _base.placed(m, np.array([s, 2 * s]), y, problem, mode)
    for s in (0.3, 5.0):
        np.testing.assert_array_equal(placed["threads", s], placed["one", s])
        if mode is not None:
            assert np.all(np.abs(placed["one", s]) <= -lo + 1e-12)
