"""Hostile inputs: objectives that write into the swarm, reused buffers, dying and hanging workers, damaged
checkpoints, CLI misuse. Each either works or fails with one clear message; nothing is corrupted or hangs."""

import json
import os
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import cbopt
from cbopt.checkpoint import CheckpointError
from cbopt.objectives import sphere

B2 = [(-3.0, 3.0)] * 2
HERE = os.path.dirname(__file__)


@pytest.mark.parametrize("bad", ["inplace", "zero"])
def test_an_objective_cannot_write_into_the_swarm(bad):
    def inplace(X):
        X -= 1.0
        return (X**2).sum(-1)

    def zero(X):
        E = (X**2).sum(-1)
        X[...] = 0
        return E

    with pytest.raises(cbopt.ObjectiveError, match="must not write into its input X") as info:
        cbopt.minimize(inplace if bad == "inplace" else zero, bounds=B2, rng=0, method="cbo")
    assert "X = X.copy()" in str(info.value)


def test_ask_hands_out_read_only_points_and_tell_compares_with_its_own_copy():
    opt = cbopt.Optimizer(bounds=B2, rng=0, max_evals=400, method="cbo")
    X = opt.ask()
    with pytest.raises(ValueError, match="read-only"):
        X[0, 0] = 1.0
    Y = np.array(X)
    Y[0, 0] += 1.0
    with pytest.raises(ValueError, match="unchanged"):
        opt.tell(Y, (Y**2).sum(-1))
    opt.tell(np.array(X), (X**2).sum(-1))  # an equal copy is fine


def _unlock_and_zero(X):
    """What a careless objective might do to get a writable array: flip the flag, or write through .base."""
    for target in (X, X.base):
        try:
            a = np.asarray(target)
            a.flags.writeable = True
            a[...] = 0.0
        except (ValueError, TypeError, AttributeError):
            pass


def test_no_objective_reaches_the_swarm_at_any_front_door():
    """Setting ``X.flags.writeable = True`` or writing into ``X.base`` overwrote the swarm in minimize; the
    minimax, multiobjective and mean-field objectives got the live arrays. Every front door now hands out
    views on a read-only buffer."""
    def f(X):
        _unlock_and_zero(X)
        return ((X - 1.5) ** 2).sum(-1)

    res = cbopt.minimize(f, bounds=B2, rng=0, method="cbo", max_evals=2000)
    assert np.abs(res.x - 1.5).max() < 1e-2  # the swarm was not moved to 0 behind the method's back

    def g(x, y):
        _unlock_and_zero(x)
        _unlock_and_zero(y)
        return ((x - 1) ** 2).sum(-1) - ((y - 1) ** 2).sum(-1)

    res = cbopt.minimax(g, B2, B2, rng=0, stop=cbopt.Stop(max_iter=200))
    assert np.abs(res.x - 1).max() < 0.1 and np.abs(res.y - 1).max() < 0.1

    def h(X):
        _unlock_and_zero(X)
        return np.stack([((X - 1.5) ** 2).sum(-1), ((X - 1) ** 2).sum(-1)], -1)

    res = cbopt.multiobjective(h, bounds=B2, rng=0, max_evals=2000)
    assert np.abs(res.population).max() > 0.5  # not all collapsed to 0

    from cbopt.meanfield import compare

    def m(X):
        _unlock_and_zero(X)
        return ((X - 0.5) ** 2).sum(-1)

    c = compare.prox_consensus(m, np.array([0.0]), tau=0.1, alpha=50.0)
    assert abs(float(np.asarray(c).reshape(-1)[0]) - 0.5 * 0.1 * 2 / (1 + 0.1 * 2)) < 0.05


def test_callbacks_of_the_wings_see_read_only_arrays_and_stop_on_a_truthy_return():
    seen = []

    def cb(r):
        seen.append(r)
        return True

    def two(x):
        return np.stack([(x**2).sum(-1), ((x - 1) ** 2).sum(-1)], -1)

    res = cbopt.multiobjective(two, bounds=B2, rng=0, max_evals=2000, callback=cb)
    assert res.reason == "CALLBACK" and res.nit == 1
    res = cbopt.minimax(lambda x, y: (x**2).sum(-1) - (y**2).sum(-1), B2, B2, rng=0, callback=cb)
    assert res.reason == "CALLBACK" and res.nit == 1
    for r in seen:
        for v in r.values():
            if isinstance(v, np.ndarray):
                with pytest.raises(ValueError):
                    v.flags.writeable = True


def test_energies_are_copied_when_kept():
    """Refilling one preallocated buffer gives the trajectory of fresh arrays (cbo-memory keeps energies)."""
    def drive(reuse):
        opt = cbopt.Optimizer(method="cbo-memory", bounds=B2, rng=0, max_evals=2000)
        buf = np.empty(40)
        while not opt.stop():
            X = opt.ask()
            if reuse:
                buf[: len(X)] = (X**2).sum(-1)
                opt.tell(X, buf[: len(X)])
            else:
                opt.tell(X, (X**2).sum(-1))
        return opt.result()

    a, b = drive(True), drive(False)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.fun == b.fun


def test_a_torch_objective_that_tracks_gradients():
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear(2, 1).double()
    with torch.no_grad():  # fixed weights (not torch's global stream): f = (x1 + x2 - 0.5)^2, minimum 0 in the box
        lin.weight.fill_(1.0)
        lin.bias.fill_(-0.5)
    res = cbopt.minimize(lambda X: lin(X).squeeze(-1) ** 2, bounds=torch.tensor(B2, dtype=torch.float64), rng=0,
                         max_evals=600, method="cbo")
    assert not res.energies.requires_grad and res.fun < 1e-4


def _no_children():
    import psutil

    return [p for p in psutil.Process().children(recursive=True) if p.is_running()]


def _run_pool(objective, **pool):
    sys.path.insert(0, HERE)
    try:
        import hostile_objectives as h

        ev = cbopt.Pool(workers=2, **pool)
        try:
            res = cbopt.minimize(getattr(h, objective), bounds=B2, rng=0, max_evals=160, method="cbo", evaluator=ev)
        finally:
            ev.close()
        return res
    finally:
        sys.path.remove(HERE)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_dead_worker_costs_only_its_own_points():
    """A point that kills its worker is marked failed; the others queued with it are retried on a fresh pool."""
    res = _run_pool("killer")
    bad = np.array([f["x"] for f in res.eval_failures])
    assert len(bad) >= 1 and np.all(bad[:, 0] > 2.5)  # only the killing points
    assert all("died" in f["error"] for f in res.eval_failures)
    assert res.reason == "MAX_EVALS" and res.fun < 1e-2


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_hung_worker_is_killed_and_the_pool_rebuilt():
    t0 = time.perf_counter()
    res = _run_pool("hang", timeout=0.5)
    bad = np.array([f["x"] for f in res.eval_failures])
    assert len(bad) >= 1 and np.all(bad[:, 0] > 2.8) and res.fun < 1e-2
    assert time.perf_counter() - t0 < 120  # never the 600 s of the hung call
    pytest.importorskip("psutil")
    assert not _no_children()  # close() killed the stragglers


def test_pool_timeouts_are_validated_and_inf_means_none():
    for bad in (0, -1, float("nan"), "1"):
        with pytest.raises(ValueError, match="timeout"):
            cbopt.Pool(workers=1, timeout=bad)
    assert cbopt.Pool(workers=1, timeout=float("inf")).timeout is None
    res = _run_pool("square", timeout=float("inf"))
    assert res.eval_failures == [] and np.isfinite(res.fun)


def _checkpoint(tmp_path, **kw):
    path = tmp_path / "run.ckpt"
    cbopt.minimize(sphere, bounds=B2, rng=1, max_evals=400, method="cbo", checkpoint=path, **kw)
    return path


def _resume(path, **kw):
    kw = {"bounds": B2, "rng": 1, "noisy": False, **kw}  # exact counts: no noise check
    return cbopt.minimize(sphere, max_evals=800, method="cbo", checkpoint=cbopt.Checkpoint(path, resume=True), **kw)


def _rewrite(path, edit):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: np.array(f[k]) for k in f.files}
    header = json.loads(bytes(arrays["header"]).decode())
    edit(header, arrays)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize("case", ["best_f=-inf", "nfev=2**62", "alpha=NaN", "extra member", "huge shape",
                                  "nested json", "negative sampler state"])
def test_damaged_checkpoints_are_checkpoint_errors(tmp_path, case):
    path = _checkpoint(tmp_path)

    def edit(header, arrays):
        if case == "best_f=-inf":
            arrays["book.best_f"][:] = -np.inf
        elif case == "nfev=2**62":
            arrays["book.nfev"][:] = 2**62
        elif case == "alpha=NaN":
            arrays["state.alpha"] = np.full_like(arrays["state.alpha"], np.nan)
        elif case == "extra member":
            arrays["payload"] = np.zeros(3)
        elif case == "negative sampler state":
            header["sampler"]["root"]["state"]["state"] = -5

    _rewrite(path, edit)
    if case == "nested json":  # a header nested deeper than the JSON parser's recursion limit
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: np.array(f[k]) for k in f.files}
        arrays["header"] = np.frombuffer(("[" * 100_000 + "]" * 100_000).encode(), dtype=np.uint8)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    if case == "huge shape":  # a member that declares 1e12 elements in a tiny file
        with zipfile.ZipFile(path, "a") as z:
            head = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
            head = head + " " * (117 - len(head)) + "\n"
            z.writestr("state.spare.npy", b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head.encode())
    with pytest.raises(CheckpointError):
        _resume(path)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.ckpt"
    os.mkfifo(fifo)
    with pytest.raises((CheckpointError, ValueError), match="regular file"):
        _resume(fifo)


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    path = _checkpoint(tmp_path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("state.bomb.npy", b"\x00" * (256 * 2**20))  # 256 MiB of zeros: a few hundred kB on disk
    assert path.stat().st_size < 2**21
    with pytest.raises(CheckpointError, match="declares"):
        _resume(path)


def test_many_members_each_within_bounds_are_refused_together(tmp_path):
    """Each member is bounded by the run's size; their number and their sum are bounded too: a small file of
    many zero-filled members (compressed) is refused before they are inflated, and a member the header does not
    name is refused even when small."""
    from cbopt.checkpoint import TOTAL_MEMBERS

    path = _checkpoint(tmp_path)
    size = 2**20  # within one member's limit for this run, but 8 of them exceed TOTAL_MEMBERS limits in all
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
        for i in range(8 * TOTAL_MEMBERS):
            head = "{'descr': '<f8', 'fortran_order': False, 'shape': (" + str(size // 8) + ",), }"
            head = head + " " * (117 - len(head)) + "\n"
            z.writestr(f"state.junk{i}.npy", b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head.encode()
                       + b"\x00" * size)
    assert path.stat().st_size < 2**21
    with pytest.raises(CheckpointError, match="in all"):
        _resume(path)
    (tmp_path / "b").mkdir()
    small = _checkpoint(tmp_path / "b")

    def extra(header, arrays):
        arrays["state.junk"] = np.zeros(3)

    _rewrite(small, extra)
    with pytest.raises(CheckpointError, match="does not name"):
        _resume(small)


def test_the_fingerprint_holds_the_seed_and_the_bounds(tmp_path):
    path = _checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="random stream"):
        _resume(path, rng=0)
    with pytest.raises(CheckpointError, match="bounds"):
        _resume(path, bounds=[(-4, 4)] * 2)
    assert _resume(path).nfev == 800


def test_a_checkpoint_folder_that_is_not_there_is_refused_up_front(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        cbopt.minimize(sphere, bounds=B2, checkpoint=tmp_path / "missing" / "run.ckpt")


@pytest.mark.parametrize("options, match", [
    ({"n_particles": np.int64(30)}, None), ({"dt": np.float32(0.02)}, None),
    ({"n_particles": 1}, "n_particles: must be an integer >= 2"),
])
def test_numpy_scalars_are_numbers_and_one_particle_is_refused(options, match):
    if match is None:
        res = cbopt.minimize(sphere, bounds=B2, rng=0, max_evals=600, method="cbo", options=options)
        assert np.isfinite(res.fun)
    else:
        with pytest.raises(ValueError, match=match):
            cbopt.minimize(sphere, bounds=B2, method="cbo", options=options)


def test_complex_inputs_are_refused():
    with pytest.raises(TypeError, match="complex"):
        cbopt.minimize(sphere, x0=np.array([1 + 1j, 2.0]))


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "cbopt", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, match", [
    (["run", "sphere", "--checkpoint", "/nonexistent/folder/x.ckpt"], "does not exist"),
    (["run", "sphere", "--eval-seconds", "-1"], "eval-seconds"),
    (["run", "sphere", "--dim", "10000000", "--max-evals", "1e9"], "GiB for its state"),
    (["run", "sphere", "--runs", "1000000000"], "GiB for its state"),
    (["run", "sphere", "-o", "n_particles=10000000000"], "cbopt: error:"),
])
def test_the_cli_fails_in_one_line(args, match):
    p = _cli(*args, "-q")
    assert p.returncode == 2 and "Traceback" not in p.stderr and match in p.stderr


def test_the_cli_exit_status_says_how_the_run_ended(tmp_path):
    nan = tmp_path / "nan.py"
    nan.write_text("import numpy as np\ndef f(X):\n    return np.full(X.shape[:-1], np.nan)\n")
    p = _cli("run", f"{nan}:f", "--dim", "2", "--max-evals", "200", "-q")
    assert p.returncode == 1 and "NONFINITE" in p.stdout
    p = _cli("run", "sphere", "--dim", "2", "--max-evals", "400", "-q")
    assert p.returncode == 0


@pytest.mark.parametrize("model, exc, match", [
    (lambda dev, xi: xi[..., :1], ValueError, r"of shape \(1, 40, 2\) \(that of dev\)"),
    (lambda dev: dev, TypeError, r"called as noise\(dev, xi\)"),
])
def test_a_user_noise_model_of_the_wrong_shape_is_named(model, exc, match):
    with pytest.raises(exc, match=match):
        cbopt.minimize(sphere, bounds=B2, rng=0, method="cbo", options={"noise": model})


@pytest.mark.parametrize("word", ["processes", "threads", "4", ""])
def test_an_evaluator_string_that_is_no_address_is_refused_at_once(word):
    """A word is not read as a Dask scheduler address (which would wait for a connection that never comes)."""
    with pytest.raises(ValueError, match="not a scheduler address"):
        cbopt.minimize(lambda x: (x**2).sum(-1), bounds=[(-1, 1)] * 2, max_evals=100, rng=0, evaluator=word)


def test_infeasible_constraints_are_no_success():
    """x0 - 5 >= 0 cannot hold in a box of +-3: the result says so instead of success=True."""
    kw = dict(bounds=[(-3, 3)] * 2, max_evals=2000, rng=0)
    bad = cbopt.minimize(lambda x: (x**2).sum(-1), constraints=[{"type": "ineq", "fun": lambda x: x[..., 0] - 5}], **kw)
    assert bad.constraint_violation > 1.0 and not bad.success and "violated" in bad.message
    half = [{"type": "ineq", "fun": lambda x: 1 - x.sum(-1)}]
    ok = cbopt.minimize(lambda x: ((x - 2) ** 2).sum(-1), constraints=half, **kw)
    assert ok.constraint_violation <= 1e-6 and ok.success


def test_the_default_searches_on_when_its_first_population_is_all_non_finite():
    """f is defined on a tenth of the box only: a first population that misses it is no reason to stop; the
    sequence draws fresh starts until it finds it (every seed), and gives up on an objective that is NaN
    everywhere after a tenth of the budget, not the whole of it."""
    def f(x):
        x = np.asarray(x)
        return np.where(x[..., 0] > 0.6, (x**2).sum(-1), np.nan)

    for seed in range(4):
        res = cbopt.minimize(f, bounds=[(-1, 1)] * 2, max_evals=1500, rng=seed)
        assert res.fun == pytest.approx(0.36, abs=1e-6) and res.reason == "MAX_EVALS", seed
    nan = cbopt.minimize(lambda x: np.full(np.shape(x)[:-1], np.nan), bounds=[(-1, 1)] * 2, max_evals=1500, rng=0)
    assert nan.reason == "NONFINITE" and not nan.success and 150 <= nan.nfev <= 300


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_values_that_are_not_numbers_are_named():
    """A per-point function returning a string or None (a forgotten return), a callback returning an array,
    a masked start point, Dask(retries=-1) and a gradient in d = 0: each a clear error, not a silent number."""
    from cbopt.driver import ObjectiveError

    box = [(-1, 1)] * 2
    with pytest.raises(ObjectiveError, match="must return a number, got '1.0'"):
        cbopt.minimize(cbopt.vectorize(lambda x: "1.0"), bounds=box, max_evals=100, rng=0)
    with pytest.raises(ObjectiveError, match="missing return"):
        cbopt.minimize(cbopt.vectorize(lambda x: None), bounds=box, max_evals=100, rng=0)
    with pytest.raises(TypeError, match="callback returned an array of shape"):
        cbopt.minimize(sphere, bounds=box, max_evals=300, rng=0, callback=lambda r: np.array([True, False]))
    with pytest.raises(ValueError, match="masked entries"):
        cbopt.minimize(sphere, x0=np.ma.masked_array([0.5, 0.5], mask=[0, 1]), max_evals=100, rng=0)
    row = cbopt.minimize(sphere, x0=np.matrix([[0.5, 0.5]]), max_evals=300, rng=0, method="cbo")
    assert row.x.shape == (2,)  # a 1 x d matrix is a point
    with pytest.raises(ValueError, match="retries"):
        cbopt.Dask("tcp://127.0.0.1:1", retries=-1)  # refused before any connection is tried
    with pytest.raises(ValueError, match="d >= 1"):
        cbopt.zo.gradient(sphere, np.zeros(0))


def test_masked_energies_count_as_non_finite():
    """A masked energy has no value: it is NaN under the non-finite policy, never its hidden data."""
    seen = []

    def f(x):
        e = np.ma.masked_less((x**2).sum(-1), 0.01)  # the masked points hide the best values
        seen.append(np.ma.getmaskarray(e).sum())
        return e

    res = cbopt.minimize(f, bounds=[(-1, 1)] * 2, max_evals=600, rng=0, method="cbo")
    assert sum(seen) > 0 and res.nfev_nonfinite == sum(seen)
    assert res.fun >= 0.01 - 1e-12  # no masked value was taken for the result


def _pair(x, y):
    return (x**2).sum(-1) - (y**2).sum(-1)


def _two(x):
    return np.stack([(x**2).sum(-1), ((x - 1) ** 2).sum(-1)], -1)


@pytest.mark.parametrize("call", [
    lambda: cbopt.minimize(lambda x: sphere(x) + 1j, bounds=B2, rng=0, max_evals=300),
    lambda: cbopt.minimax(lambda x, y: _pair(x, y) + 0j, B2, B2, rng=0, stop=cbopt.Stop(max_iter=5)),
    lambda: cbopt.minimax(lambda x, y: _pair(x, y).astype(str), B2, B2, rng=0, stop=cbopt.Stop(max_iter=5)),
    lambda: cbopt.multiobjective(lambda x: _two(x) + 1j, bounds=B2, rng=0, max_evals=500),
    lambda: cbopt.multiobjective(lambda x: _two(x).astype(str), bounds=B2, rng=0, max_evals=500),
], ids=["minimize complex", "minimax complex", "minimax strings", "multiobjective complex",
        "multiobjective strings"])
def test_every_front_door_refuses_values_that_are_not_real(call):
    """Complex values (a cast would drop the imaginary part) and strings are named, at every front door; a
    complex batch is not taken for a per-point function."""
    with pytest.raises(TypeError, match="must return real numbers") as info:
        call()
    assert "per-point" not in str(info.value)


def test_failed_points_leave_the_multiobjective_weights_finite():
    """NaN or masked values (failed points) are the worst values and push no weight: before, one of them
    made every weight NaN and the front garbage."""
    def f(x):
        v = _two(x)
        v[x[..., 0] > 1.5] = np.nan
        return np.ma.masked_greater(v, 12.0)

    res = cbopt.multiobjective(f, bounds=[(-2, 2)] * 2, rng=0, max_evals=3000)
    assert np.isfinite(res.weights).all() and len(res.F) >= 10 and np.isfinite(res.F).all()
    assert (res.x[:, 0] <= 1.5).all()


@pytest.mark.parametrize("box, said", [
    ((-1e308, 1e308), "a width of inf"),
    ((0.0, 5e-324), "a width of 4.94e-324"),
    ((1e6, 1e6 + 1e-8), "of the bounds' magnitude"),
])
def test_boxes_float64_cannot_search_are_refused_by_name(box, said):
    """Not 'sigma0: must be ... got inf' for an option the user never set, nor NaN particles blamed on f."""
    with pytest.raises(ValueError, match="bounds: coordinate 0 spans") as info:
        cbopt.minimize(sphere, bounds=[box] * 2, max_evals=300, rng=0)
    assert said in str(info.value)
    small = cbopt.minimize(lambda x: ((x - 3e-14) ** 2).sum(-1) * 1e26, bounds=[(0, 1e-13)] * 2, max_evals=2000,
                           rng=0)  # a small problem in its own units is fine
    assert abs(small.x - 3e-14).max() < 1e-15


@pytest.mark.parametrize("options, said", [({"lam": 1e300}, "lam \\* dt"), ({"sigma": 1e150}, "sigma \\* sqrt")])
def test_cbo_steps_that_scatter_the_swarm_are_refused(options, said):
    """They used to end CONVERGED with success=True at f far from the minimum (reflection folds huge
    coordinates onto a lattice of a few points)."""
    with pytest.raises(ValueError, match=said):
        cbopt.minimize(sphere, bounds=[(-3, 3)] * 2, max_evals=3000, rng=0, method="cbo", options=options)


def _pending_checkpoint(tmp_path, name, rng=1):
    """A checkpoint written with points asked but not evaluated (the objective was interrupted)."""
    path = tmp_path / name
    calls = []

    def f(x):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return sphere(x)

    assert cbopt.minimize(f, bounds=B2, rng=rng, max_evals=800, method="cbo", checkpoint=path).reason == "INTERRUPTED"
    return path


def _arrays(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: np.array(f[k]) for k in f.files}


def test_members_swapped_in_from_another_file_are_refused(tmp_path):
    a, b = _pending_checkpoint(tmp_path, "a.ckpt"), _pending_checkpoint(tmp_path, "b.ckpt", rng=1)
    other = _arrays(b)
    other_x = other["pending.x"] + 0.25  # another call's asked points (same shapes, valid CRCs)
    mine = _arrays(a)
    mine["pending.x"] = np.clip(other_x, -2, 2)
    with open(a, "wb") as fh:
        np.savez(fh, **mine)
    with pytest.raises(CheckpointError, match="digest"):
        _resume(a)


def _rewrite_with_digest(path, edit):
    """Edit a checkpoint's arrays and header as an adversary who knows the format would: digest recomputed."""
    from cbopt.checkpoint import _digest

    arrays = _arrays(path)
    header = json.loads(bytes(arrays.pop("header")).decode())
    edit(arrays, header)
    header["digest"] = _digest(arrays)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _best_above_an_energy(a, h):
    a["book.best_f"][0] = a["state.energy"][0].min() + 1.0


@pytest.mark.parametrize("edit, match", [
    (lambda a, h: a["pending.x"].__setitem__((0, 0, 0), 7.5), "outside the box"),
    (lambda a, h: (a["book.best_x"].__setitem__((0, slice(None)), 99.0),
                   a["book.best_f"].__setitem__(0, -1e300)), "outside the box"),
    (lambda a, h: a["book.nfev"].__setitem__(0, a["book.nfev"][0] - 5), "counts edited"),  # a budget extended
    (_best_above_an_energy, "above an energy"),
], ids=["pending outside the box", "best_x outside the box", "nfev rewound", "best_f above an energy"])
def test_consistent_edits_that_break_the_states_invariants_are_refused(tmp_path, edit, match):
    """Even with the digest recomputed, a state no run could reach is refused: a pending point outside the box
    would be evaluated, a best point outside it returned as the result, a rewound count extend the budget."""
    path = _pending_checkpoint(tmp_path, "a.ckpt")
    assert _resume(path).nfev == 800  # the file as written loads
    path = _pending_checkpoint(tmp_path, "b.ckpt")
    _rewrite_with_digest(path, edit)
    with pytest.raises(CheckpointError, match=match):
        _resume(path)


def _set_best(h, fun):
    h["sequence"]["best"]["fun"] = fun


@pytest.mark.parametrize("edit, match", [
    (lambda a, h: h["sequence"].__setitem__("nfev", h["sequence"]["nfev"] - 1000), "counts edited"),
    (lambda a, h: _set_best(h, -1e300), "finished runs' least"),
], ids=["nfev rewound", "best put in by hand"])
def test_a_restart_sequence_holds_its_counts_and_best_to_its_log(tmp_path, edit, match):
    """The default's file (a restart sequence): its count is its finished runs' sum and its best their least;
    a rewound count (a budget silently extended) or a best put in by hand contradict the log."""
    kw = dict(bounds=B2, rng=3)
    path = tmp_path / "seq.ckpt"
    cbopt.minimize(sphere, max_evals=3000, checkpoint=path, **kw)
    ok = tmp_path / "ok.ckpt"
    ok.write_bytes(path.read_bytes())
    assert cbopt.minimize(sphere, max_evals=5000, checkpoint=cbopt.Checkpoint(ok, resume=True), **kw).nfev > 3000
    _rewrite_with_digest(path, edit)
    with pytest.raises(CheckpointError, match=match):
        cbopt.minimize(sphere, max_evals=5000, checkpoint=cbopt.Checkpoint(path, resume=True), **kw)


def test_checkpoint_writes_from_two_threads_and_after_a_kill(tmp_path):
    """Two threads saving to one path never share a temporary file; a temporary file left by a writer that was
    killed (its process is gone) is removed by the next save; a symlinked path stays a symlink."""
    import threading

    path = tmp_path / "run.ckpt"
    results, errors = [], []

    def one(seed):
        try:
            results.append(cbopt.minimize(sphere, bounds=B2, rng=seed, max_evals=3000, method="cbo",
                                          checkpoint=cbopt.Checkpoint(path, every=1)))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 2 and all(np.isfinite(r.fun) for r in results)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".run.ckpt.{dead}.1.tmp"
    stale.write_bytes(b"half a checkpoint")
    target = tmp_path / "real.ckpt"
    link = tmp_path / "link.ckpt"
    link.symlink_to(target)
    cbopt.minimize(sphere, bounds=B2, rng=1, max_evals=400, method="cbo", checkpoint=path)
    cbopt.minimize(sphere, bounds=B2, rng=1, max_evals=400, method="cbo", checkpoint=link)
    assert not stale.exists() and not list(tmp_path.glob(".*.tmp"))
    assert link.is_symlink() and target.is_file()
    assert _resume(link).nfev == 800  # the 400 evaluations in the file, continued to the budget of 800


def test_a_checkpoint_that_cannot_be_written_never_loses_the_result(tmp_path, monkeypatch):
    """The folder turns read-only mid-run (or the disk fills): one warning, the run goes on to the result it
    would have given without a checkpoint, and the file keeps the last state that was written."""
    from cbopt import checkpoint as store

    write, calls = store._write, []

    def failing(path, arrays):
        calls.append(path)
        if len(calls) > 3:
            raise PermissionError(13, "Permission denied", str(path))
        write(path, arrays)

    monkeypatch.setattr(store, "_write", failing)
    path = tmp_path / "run.ckpt"
    with pytest.warns(RuntimeWarning, match="checkpoint: cannot write .*Permission denied.*goes on") as seen:
        res = cbopt.minimize(sphere, bounds=B2, rng=4, max_evals=2000, method="cbo",
                             checkpoint=cbopt.Checkpoint(path, every=2))
    assert sum("checkpoint" in str(w.message) for w in seen) == 1  # warned once, not at every save
    plain = cbopt.minimize(sphere, bounds=B2, rng=4, max_evals=2000, method="cbo")
    assert res.fun == plain.fun and res.nfev == plain.nfev and "Permission denied" in res.checkpoint_error
    assert len(calls) > 4 and "checkpoint_error" not in plain
    monkeypatch.setattr(store, "_write", write)
    kept = cbopt.minimize(sphere, bounds=B2, rng=4, max_evals=10**6, method="cbo",
                          checkpoint=cbopt.Checkpoint(path, resume=True), stop=cbopt.Stop(max_iter=6))
    assert kept.nit == 6 and kept.nfev < plain.nfev  # resumed from iteration 6, the third save


def test_memory_is_checked_for_what_each_method_allocates():
    """polarized keeps (N, N) kernel arrays and cbs (d, d) covariances: both are counted before allocating,
    against the physical memory or an address-space limit, whichever is smaller."""
    script = (
        "import resource, cbopt\n"
        "resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, resource.RLIM_INFINITY))\n"
        "for kw in (dict(method='polarized', options={'n_particles': 100_000}, bounds=[(-1, 1)] * 2),\n"
        "           dict(method='cbs', options={'n_particles': 100}, bounds=[(-1, 1)] * 20_000)):\n"
        "    try:\n"
        "        cbopt.minimize(lambda x: (x ** 2).sum(-1), max_evals=1000, rng=0, **kw)\n"
        "        print('ran')\n"
        "    except ValueError as e:\n"
        "        print('refused:', e)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("refused: the run needs at least") for line in lines), r
    assert "GiB" in lines[1] and "d = 20000" in lines[1]


def test_every_front_door_checks_memory_before_allocating():
    """minimax with N = 1e9, meanfield.solve on 1e10 cells or with 1e10 steps, zo.gradient with 1e5
    coordinates or 1e9 directions: refused with the one message, before anything is allocated."""
    from cbopt import meanfield

    with pytest.raises(ValueError, match="minimax needs at least .* GiB"):
        cbopt.minimax(lambda x, y: (x**2).sum(-1) - (y**2).sum(-1), x_bounds=[(-1, 1)] * 2, y_bounds=[(-1, 1)] * 2,
                      options={"n_particles": 10**9}, max_evals=10**11)
    rho0 = meanfield.gaussian([1.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="meanfield.solve needs at least .* GiB"):
        meanfield.solve(lambda x: (x**2).sum(-1), [(-4, 4)] * 2, rho0, cells=100_000, T=1.0, dt=0.1)
    with pytest.raises(ValueError, match="steps: at most"):
        meanfield.solve(lambda x: (x**2).sum(-1), [(-4, 4)], meanfield.gaussian([1.0], 1.0), cells=50, T=1.0,
                        dt=1e-10)
    with pytest.raises(ValueError, match="zo.gradient needs at least .* GiB"):
        cbopt.zo.gradient(sphere, np.zeros(100_000), kind="cge")
    with pytest.raises(ValueError, match="zo.gradient needs at least .* GiB"):
        cbopt.zo.gradient(sphere, np.zeros(10), n=10**9)
