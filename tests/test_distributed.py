"""Parallel and distributed evaluation: a process pool, and a real Dask cluster that loses a worker."""

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import cbopt
from cbopt.objectives import Slow, rastrigin


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_process_pool_gives_the_vectorized_result():
    ref = cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 2, rng=0, max_evals=60, options={"n_particles": 6})
    res = cbopt.minimize(Slow(rastrigin, 0.0), bounds=[(-5, 5)] * 2, rng=0, max_evals=60,
                         options={"n_particles": 6}, evaluator=2)
    np.testing.assert_array_equal(res.x, ref.x)
    np.testing.assert_array_equal(res.population, ref.population)
    assert res.eval_failures == []


def _shifted(x, a):
    return float(((x - a) ** 2).sum())


def test_a_process_pool_takes_args_and_vectorized_functions():
    """args= and cbopt.vectorize pickle to the workers: the pool gives what the in-process call gives."""
    kw = dict(bounds=[(-5, 5)] * 2, rng=0, max_evals=60, options={"n_particles": 6}, method="cbo", args=(0.5,))
    ref = cbopt.minimize(cbopt.vectorize(_shifted), **kw)
    res = cbopt.minimize(cbopt.vectorize(_shifted), evaluator=2, **kw)
    assert np.isfinite(res.fun) and res.eval_failures == []
    np.testing.assert_array_equal(res.x, ref.x)
    assert ref.fun == pytest.approx(_shifted(ref.x, 0.5))


def _flaky(x):
    if x[0] > 2:
        raise RuntimeError("solver did not converge")
    if x[0] < -4:
        time.sleep(2.0)
    return float((x**2).sum())


def test_failures_and_timeouts_become_nan_and_are_reported():


    with ThreadPoolExecutor(4) as ex, pytest.warns(RuntimeWarning, match="evaluations failed in the evaluator"):
        res = cbopt.minimize(_flaky, bounds=[(-5, 5)] * 2, rng=0, max_evals=200, options={"n_particles": 20},
                             evaluator=cbopt.Pool(ex, timeout=0.2))
    assert res.eval_failures and res.nfev_nonfinite == len(res.eval_failures)
    assert f"{len(res.eval_failures)} evaluations failed" in res.message
    reasons = {f["error"].split(":")[0] for f in res.eval_failures}
    assert reasons <= {"RuntimeError", "no result within 0.2 s"} and "RuntimeError" in reasons
    assert all(f["x"][0] > 2 or f["x"][0] < -4 for f in res.eval_failures)  # the failing points are listed
    assert res.fun < 1.0  # the run went on
    with ThreadPoolExecutor(2) as ex, pytest.raises(cbopt.ObjectiveError, match="solver did not converge"):
        cbopt.minimize(_flaky, bounds=[(3, 5)] * 2, rng=0, max_evals=100,
                       evaluator=cbopt.Pool(ex, fail_fast=True))


@pytest.mark.parametrize("bad, exc", [(True, TypeError), (0, ValueError), (object(), TypeError)])
def test_bad_evaluators(bad, exc):
    with pytest.raises(exc):
        cbopt.minimize(rastrigin, bounds=[(-1, 1)] * 2, evaluator=bad)
    with pytest.raises(ValueError, match="timeout"):
        cbopt.Pool(timeout=-1)


def _assert_listening_on_loopback_only(procs):
    psutil = pytest.importorskip("psutil")
    for p in procs:
        listening = [c.laddr for c in psutil.Process(p.pid).net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert listening and all(a.ip == "127.0.0.1" for a in listening), listening


@contextlib.contextmanager
def _dask_cluster(workers, nthreads=1):
    """A scheduler and ``workers`` workers as separate processes, every listener on 127.0.0.1 (the HTTP ones
    included); no nanny, so each PID is the process that listens, and each is killed by its PID at the end.
    Yields the client and the processes (scheduler first)."""
    distributed = pytest.importorskip("distributed")
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    local = ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pathlib.Path(__file__).parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    procs = []
    client = None
    try:
        procs.append(subprocess.Popen(dask + ["scheduler", "--port", str(port), *local], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, env=env))  # the scheduler unpickles tasks too
        for _ in range(workers):
            procs.append(subprocess.Popen(dask + ["worker", addr, "--nthreads", str(nthreads), "--no-nanny", *local],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        client = distributed.Client(addr, timeout=60)
        client.wait_for_workers(workers, timeout=60)
        _assert_listening_on_loopback_only(procs)
        yield client, procs
    finally:
        if client is not None:
            client.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)


def test_dask_cluster_survives_a_killed_worker():
    """One worker is SIGKILLed mid-run; the run completes with exactly the result of an undisturbed run with the
    same seed (the lost tasks are recomputed)."""
    with _dask_cluster(2) as (client, procs):
        kw = dict(bounds=[(-5, 5)] * 2, rng=4, max_evals=240, options={"n_particles": 12})
        ref = cbopt.minimize(rastrigin, **kw)
        killer = threading.Timer(1.5, lambda: procs[1].send_signal(signal.SIGKILL))
        killer.start()
        t0 = time.time()
        res = cbopt.minimize(Slow(rastrigin, 0.05), evaluator=cbopt.Dask(client, timeout=30), **kw)
        killer.join()
        assert procs[1].poll() is not None and time.time() - t0 > 1.5  # the worker died mid-run
        np.testing.assert_array_equal(res.x, ref.x)
        np.testing.assert_array_equal(res.population, ref.population)
        assert res.nfev == ref.nfev and res.eval_failures == []


def test_dask_timeouts_fail_the_hung_points_only():
    """A hung task holds its worker's thread for ever, and the scheduler may queue other points behind it: the
    timeout of a point counts from when a worker runs it, so only the hung points fail, not the fine ones
    that waited (73 of 77 fine points were reported failed when the batch shared one clock)."""
    from hostile_objectives import slow_or_hung

    with _dask_cluster(2, nthreads=2) as (client, _), pytest.warns(RuntimeWarning, match="evaluations failed"):
        res = cbopt.minimize(slow_or_hung, bounds=[(-5, 5)] * 2, rng=0, max_evals=120, method="cbo", noisy=False,
                             options={"n_particles": 40}, evaluator=cbopt.Dask(client, timeout=1.0))
    hung = [f["x"][0] > 4.6 for f in res.eval_failures]
    assert res.nfev == 120 and 1 <= len(hung) <= 3 and all(hung), res.eval_failures
    assert {f["error"] for f in res.eval_failures} == {"no result within 1.0 s"}


def test_pool_and_ask_tell_on_a_torch_run():
    torch = pytest.importorskip("torch")
    kw = dict(bounds=[(-5, 5)] * 2, backend="cpu", rng=0, max_evals=200)
    ref = cbopt.minimize(rastrigin, noisy=False, **kw)  # as ask/tell below: no re-evaluations
    res = cbopt.minimize(Slow(rastrigin, 0.0), evaluator=2, noisy=False, **kw)
    assert isinstance(res.x, torch.Tensor) and torch.equal(res.x, ref.x)
    opt = cbopt.Optimizer(**kw)
    while not opt.stop():
        x = opt.ask()
        opt.tell(x, rastrigin(x))
    assert torch.equal(opt.result().x, ref.x)


def test_pool_workers_exit_with_a_sigkilled_parent(tmp_path):
    """`cbopt run --workers 2` on a slow objective, SIGKILLed mid-run: its worker processes exit too."""
    import os

    if not os.path.isdir("/proc"):
        pytest.skip("reads the process table from /proc")
    from test_bench import _alive, _children

    proc = subprocess.Popen([sys.executable, "-m", "cbopt", "run", "sphere", "--dim", "2", "--workers", "2",
                             "--eval-seconds", "0.05", "--max-evals", "100000", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        workers = []
        while time.time() < deadline and len(workers) < 2:
            workers = [p for p in _children(proc.pid) if _alive(p)]
            time.sleep(0.1)
        assert len(workers) >= 2, "the pool did not start"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), "a pool worker outlived its SIGKILLed parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def _always_fails(x):
    raise RuntimeError("no value anywhere")


def test_an_evaluator_failure_is_named_in_the_message_and_warned():
    """Every evaluation fails in the workers: the message says why, not only that every energy is non-finite, and a
    RuntimeWarning says it too."""
    with pytest.warns(RuntimeWarning, match="40 evaluations failed in the evaluator"):
        res = cbopt.minimize(_always_fails, bounds=[(-1, 1)] * 2, rng=0, max_evals=100, evaluator=2, method="cbo")
    assert res.reason == "NONFINITE" and "no value anywhere" in res.message and len(res.eval_failures) == 40


def _fails_on_positive(x):
    if x[0] > 0:
        raise RuntimeError("no result here")
    return float((x**2).sum())


def test_a_reused_pool_reports_each_calls_own_failures():
    pool = cbopt.Pool(ThreadPoolExecutor(2))
    kw = dict(bounds=[(-5, 5)] * 2, max_evals=60, options={"n_particles": 6}, method="cbo", evaluator=pool)
    first = cbopt.minimize(_fails_on_positive, rng=0, **kw)
    second = cbopt.minimize(lambda x: float((x**2).sum()), rng=1, **kw)  # fails nowhere
    assert first.eval_failures and second.eval_failures == []
    assert len(pool.failures) == len(first.eval_failures)  # the pool's own record keeps everything


def test_the_pool_minimize_made_is_stopped_when_the_call_raises():
    """An exception escaping minimize (here the callback's) stops the workers of the pool it started."""
    import multiprocessing

    before = {p.pid for p in multiprocessing.active_children()}

    def boom(res):
        raise ValueError("callback failed")

    with pytest.raises(ValueError, match="callback failed") as info:
        cbopt.minimize(Slow(rastrigin, 0.0), bounds=[(-5, 5)] * 2, rng=0, max_evals=60,
                       options={"n_particles": 6}, evaluator=2, callback=boom)
    # the exception is still held (its traceback keeps minimize's frame, and the pool, alive): the garbage
    # collector cannot be what stops the workers, minimize must have
    assert info.value.__traceback__ is not None
    deadline = time.time() + 10
    while time.time() < deadline and {p.pid for p in multiprocessing.active_children()} - before:
        time.sleep(0.1)
    assert not {p.pid for p in multiprocessing.active_children()} - before


def test_sys_exit_in_a_worker_is_a_failed_point_not_the_callers_exit():
    from hostile_objectives import exits

    with pytest.warns(RuntimeWarning, match="sys.exit"):
        res = cbopt.minimize(exits, bounds=[(-5, 5)] * 2, rng=0, max_evals=60, options={"n_particles": 6},
                             method="cbo", evaluator=2)
    assert res.eval_failures and all("the objective called sys.exit" in f["error"] for f in res.eval_failures)
    assert np.isfinite(res.fun)


def test_a_shut_down_executor_is_the_evaluators_failure_not_the_objectives():
    ex = ThreadPoolExecutor(2)
    ex.shutdown()
    with pytest.raises(cbopt.EvaluatorError, match="shut down") as info:
        cbopt.minimize(lambda x: float((x**2).sum()), bounds=[(-5, 5)] * 2, rng=0, max_evals=60,
                       options={"n_particles": 6}, method="cbo", evaluator=cbopt.Pool(ex))
    assert not isinstance(info.value, cbopt.ObjectiveError)


def test_scipy_method_runs_on_a_process_pool():
    """scipy's front door with options={"evaluator": 2}: its wrapper of the objective pickles, so the points are
    evaluated (every one failed before)."""
    scipy_optimize = pytest.importorskip("scipy.optimize")
    res = scipy_optimize.minimize(_shifted, np.zeros(2), args=(0.5,), method=cbopt.scipy_method,
                                  bounds=[(-5, 5)] * 2, options={"evaluator": 2, "maxfev": 120, "seed": 0,
                                                                 "method": "cbo", "options": {"n_particles": 6}})
    assert np.isfinite(res.fun) and res.fun == pytest.approx(_shifted(res.x, 0.5))


def test_max_time_is_honoured_with_a_hung_point_and_no_pool_timeout():
    """A point that never returns must not hold the run past its max_time (it held it for the whole hang):
    the point fails, the run ends MAX_TIME with its best so far. The bound is loose (the hang is 600 s)."""
    from hostile_objectives import hang

    t0 = time.perf_counter()
    with pytest.warns(RuntimeWarning, match="max_time"):
        res = cbopt.minimize(hang, bounds=[(-3, 3)] * 2, rng=0, max_evals=10**6, options={"n_particles": 8},
                             method="cbo", evaluator=2, stop=cbopt.Stop(max_time=2.0))
    assert time.perf_counter() - t0 < 60
    assert res.reason == "MAX_TIME" and np.isfinite(res.fun)
    assert any("max_time" in f["error"] for f in res.eval_failures)


def test_an_objective_that_does_not_pickle_is_named_before_any_point_fails():
    """A lambda (or a local function) on a process pool would fail at every point in the workers: refused at once,
    with the way out; the same lambda on threads runs."""
    from concurrent.futures import ThreadPoolExecutor

    kw = dict(bounds=[(-2, 2)] * 2, rng=0, max_evals=200, method="cbo", options={"n_particles": 10})
    with pytest.raises(cbopt.EvaluatorError, match="cannot be sent to worker processes.*module level"):
        cbopt.minimize(lambda X: (X**2).sum(-1), evaluator=2, **kw)
    with pytest.raises(cbopt.EvaluatorError, match="cannot be sent"):
        cbopt.minimax(lambda x, y: x[0] - y[0], [(-1, 1)], [(-1, 1)], evaluator=2, rng=0, max_evals=1000,
                      options={"n_particles": 10})
    with ThreadPoolExecutor(2) as ex:
        res = cbopt.minimize(lambda x: float((x**2).sum()), evaluator=ex, **kw)
    assert res.eval_failures == [] and np.isfinite(res.fun)
