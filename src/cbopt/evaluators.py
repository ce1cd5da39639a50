"""The evaluator seam: how a batch of points becomes energies.

* default — the batched objective is called once per step: ``f(X[..., d]) -> E[...]``;
* :class:`Pool` — a per-point objective ``f(x[d]) -> float`` evaluated point by point on any
  :class:`concurrent.futures.Executor` (a process pool of ``workers`` processes by default);
* :class:`Dask` — the same on a Dask cluster (``cbopt[dist]``): a ``distributed.Client`` or a scheduler
  address such as ``"tcp://host:8786"``. Tasks of a worker that dies are recomputed by the others (Dask's
  scheduler resubmits them), so a lost worker does not change the result of a deterministic objective.

A failed evaluation — an exception in ``f`` or no result within ``timeout`` — becomes NaN, which the
non-finite policy turns into ``+inf`` (weight 0, counted in ``nfev_nonfinite``); the point and the reason
are listed in ``result.eval_failures``. With ``fail_fast=True`` the first failure stops the run instead
(:class:`cbopt.ObjectiveError`, with the best-so-far result in ``.result``).

Pass one as ``minimize(..., evaluator=...)``; an int means ``Pool(workers=int)``, an Executor
``Pool(executor)``, a ``distributed.Client`` or an address string ``Dask(...)``.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
import pickle
import re
import sys
import time
from collections.abc import Callable
from concurrent.futures import BrokenExecutor
from typing import Any

import numpy as np

from ._backend import is_torch, to_numpy
from ._extras import require
from .driver import EvaluatorError


def exit_with_parent(parent: int) -> None:
    """Process-pool initializer: the worker exits once its parent is gone. A SIGKILLed parent runs no pool
    shutdown, and its idle workers would otherwise wait on their queue forever."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="cbopt-exit-with-parent").start()

class _PerPoint:
    """Shared logic: submit every point, gather with a deadline, turn failures into NaN and keep a record."""

    def __init__(self, timeout: float | None, fail_fast: bool):
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float, np.number))
                                    or not timeout > 0):
            raise ValueError(f"timeout: must be a number of seconds > 0 (inf: none), got {timeout!r}")
        self.timeout = None if timeout is None or math.isinf(timeout) else float(timeout)
        self.fail_fast = bool(fail_fast)
        self.failures: list[dict[str, Any]] = []
        #: ``time.monotonic()`` past which no result is awaited (``minimize`` sets it from ``max_time``)
        self.deadline: float | None = None
        self._hung: list[Any] = []  # points that timed out, perhaps still holding their workers

    def _submit(self, fun: Callable[[Any], Any], points: list[np.ndarray]) -> list[Any]:
        raise NotImplementedError

    def _slots(self) -> int:
        raise NotImplementedError

    def _wait_any(self, futures: list[Any], wait: float | None) -> list[int]:
        """Positions in ``futures`` that are done, waiting at most ``wait`` seconds for the first."""
        done, _ = cf.wait(futures, timeout=wait, return_when=cf.FIRST_COMPLETED)
        return [k for k, fut in enumerate(futures) if fut in done]

    def _executing(self, futures: list[Any]) -> list[int] | None:
        """Positions in ``futures`` running on a worker now, or None where that cannot be asked (then points
        are taken to get workers in the order they were submitted)."""
        return None

    def _abandon(self, fut: Any) -> None:
        """A point that timed out: cancel it (a running one goes on, holding its worker: see :meth:`_held`)."""
        fut.cancel()
        self._hung.append(fut)

    def _held(self) -> int:
        """Workers still held by points that timed out (they may never finish)."""
        self._hung = [f for f in self._hung if not f.done()]
        return len(self._hung)

    def _recover(self) -> bool:
        """After a timeout or a dead worker: make the executor usable again; False when that is not ours to do."""
        return False

    def _gather(self, fun: Callable[[Any], Any], points: list[np.ndarray], out: list[Any], which: list[int],
                convert: Callable[[Any], Any]) -> tuple[list[int], list[int], bool]:
        """Evaluate ``points[i]`` for ``i in which`` into ``out``. Returns the points lost with a broken pool and
        those that never got a worker (not yet failures: both are retried where the pool can be renewed), and
        whether some evaluation timed out.

        ``timeout`` is each point's own: counted from when it gets a worker. Points get workers in the order
        they were submitted, as workers free up; a point that times out keeps its worker (a running task
        cannot be stopped), so the batch goes on with one worker fewer."""
        futures = self._submit(fun, [points[i] for i in which])
        todo = list(range(len(futures)))  # positions still awaited, in submission order
        running: dict[int, float] = {}  # position -> when it got a worker (as far as can be told)
        slots = max(0, self._slots() - self._held())
        lost: list[int] = []
        starved: list[int] = []
        late = False
        try:
            while todo:
                if slots <= 0:  # every worker is held by a point that timed out: the rest never starts
                    starved = [which[k] for k in todo]
                    for k in todo:
                        futures[k].cancel()
                    break
                now = time.monotonic()
                ends = [self.deadline] if self.deadline is not None else []
                if self.timeout is not None:
                    seen = self._executing([futures[k] for k in todo])
                    for k in todo[:slots] if seen is None else [todo[j] for j in seen]:
                        running.setdefault(k, now)
                    ends += [t + self.timeout for t in running.values()]
                    if seen is not None:  # look again soon: a point's clock starts when it is seen running
                        ends.append(now + min(self.timeout / 4, 1.0))
                wait = max(0.0, min(ends) - now) if ends else None
                done = set(self._wait_any([futures[k] for k in todo], wait))
                for j, k in enumerate(todo):
                    if j in done:
                        running.pop(k, None)
                        self._collect(futures[k], points[which[k]], which[k], out, lost, convert)
                todo = [k for j, k in enumerate(todo) if j not in done]
                now = time.monotonic()
                if todo and self.deadline is not None and now >= self.deadline:  # the run's max_time
                    late = True
                    for k in todo:
                        self._fail(points[which[k]], "no result before the run's max_time", None)
                        self._abandon(futures[k])
                    break
                for k, t in list(running.items()):
                    if self.timeout is not None and now >= t + self.timeout:
                        late = True
                        self._fail(points[which[k]], f"no result within {self.timeout} s", None)
                        self._abandon(futures[k])
                        del running[k]
                        todo.remove(k)
                        slots -= 1  # its worker stays busy with it
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        return lost, starved, late

    def _collect(self, fut: Any, point: np.ndarray, i: int, out: list[Any], lost: list[int],
                 convert: Callable[[Any], Any]) -> None:
        """The result of a finished ``fut`` into ``out[i]``, or a failure on record."""
        try:
            out[i] = convert(fut.result())
        except BrokenExecutor:
            lost.append(i)
        except SystemExit as exc:  # in a worker it is the objective's failure, not the caller's exit
            self._fail(point, f"the objective called sys.exit({exc.code!r})",
                       RuntimeError(f"the objective called sys.exit({exc.code!r}) in a worker"))
        except Exception as exc:  # the objective raised, or returned something that is not a number
            self._fail(point, f"{type(exc).__name__}: {exc}", exc)

    def __call__(self, fun: Callable[[Any], Any], x: Any, vector: bool = False) -> Any:
        """``fun`` of every point of ``x`` (..., d): values (...), or with ``vector`` rows (..., K) of the K values
        each point returns (a failed point, or one of another length than the first: NaN)."""
        host = np.asarray(to_numpy(x))
        flat = host.reshape(-1, host.shape[-1])
        points = [np.array(p) for p in flat]
        out: list[Any] = [None] * len(points)
        convert = _row if vector else float
        lost, starved, late = self._gather(fun, points, out, list(range(len(points))), convert)
        if (lost or starved or late) and self._recover():
            # a dead worker takes the points queued with it, and hung ones the points behind them: retry those
            # on a fresh pool, then one at a time, so that only the points that kill a worker are marked failed
            lost = self._gather(fun, points, out, lost + starved, convert)[0] if lost or starved else []
            for i in list(lost):
                self._recover()
                if self._gather(fun, points, out, [i], convert)[0]:
                    self._fail(points[i], "the worker evaluating this point died", None)
            if lost:
                self._recover()
        else:
            for i in lost:
                self._fail(points[i], "the worker evaluating this point died (the executor is broken)", None)
            for i in starved:
                self._fail(points[i], "never started: every worker was held by a point that timed out", None)
        values = self._assemble(out, points) if vector else np.array([np.nan if v is None else v for v in out])
        values = values.reshape(host.shape[:-1] + values.shape[1:])
        if is_torch(x):  # back to the run's backend
            return sys.modules["torch"].as_tensor(values, dtype=x.dtype, device=x.device)
        return values

    def _assemble(self, out: list[Any], points: list[np.ndarray]) -> np.ndarray:
        """The rows of a vector objective, (n, K): K from the first point that returned one; a failed point, or
        one of another length (a failure on record), is a row of NaN."""
        k = next((len(v) for v in out if v is not None), 1)
        rows = np.full((len(out), k), np.nan)
        for i, v in enumerate(out):
            if v is None:
                continue
            if len(v) != k:
                self._fail(points[i], f"returned {len(v)} values, the other points {k}", None)
                continue
            rows[i] = v
        return rows

    def _fail(self, point: np.ndarray, reason: str, exc: BaseException | None) -> None:
        self.failures.append({"x": point, "error": reason})
        if self.fail_fast:
            raise exc if exc is not None else TimeoutError(reason)


class Pool(_PerPoint):
    """Evaluate a per-point objective on a :class:`concurrent.futures.Executor`.

    ``Pool(workers=4)`` starts a process pool (the objective must be picklable: a module-level function);
    ``Pool(executor)`` uses yours (threads, processes, MPI, ...). ``timeout``: seconds per evaluation.
    """

    def __init__(self, executor: cf.Executor | None = None, *, workers: int | None = None,
                 timeout: float | None = None, fail_fast: bool = False):
        super().__init__(timeout, fail_fast)
        if executor is not None and not isinstance(executor, cf.Executor):
            raise TypeError(f"Pool: expected a concurrent.futures.Executor, got {type(executor).__name__}")
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers: must be an integer >= 1, got {workers!r}")
        self._own = executor is None
        self.workers = workers
        self.executor = executor
        self._sendable: Any = None  # the last objective found to pickle

    def _slots(self) -> int:
        return self.workers or getattr(self.executor, "_max_workers", 1) or 1

    def _submit(self, fun: Callable[[Any], Any], points: list[np.ndarray]) -> list[Any]:
        if self.executor is None:
            self.executor = cf.ProcessPoolExecutor(max_workers=self.workers, initializer=exit_with_parent,
                                                   initargs=(os.getpid(),))
        if isinstance(self.executor, cf.ProcessPoolExecutor) and fun is not self._sendable:
            self._check_sendable(fun)
        futures = []
        for p in points:
            try:
                futures.append(self.executor.submit(fun, p))
            except BrokenExecutor as exc:  # a worker died while the batch was being queued: the rest is lost too
                lost: cf.Future = cf.Future()
                lost.set_exception(exc)
                futures.append(lost)
            except RuntimeError as exc:  # "cannot schedule new futures after shutdown"
                raise EvaluatorError(f"the executor cannot take points ({exc}): it was shut down; pass a running "
                                     "one, or a number of workers") from exc
        return futures

    def _check_sendable(self, fun: Callable[[Any], Any]) -> None:
        """An objective that cannot be pickled would fail at every point, in the workers: say so at once."""
        try:
            pickle.dumps(fun)
        except Exception as exc:
            raise EvaluatorError(
                f"the objective cannot be sent to worker processes ({type(exc).__name__}: {exc}); define it at "
                "module level (a lambda or a local function does not pickle), or evaluate in threads: "
                "evaluator=cbopt.Pool(concurrent.futures.ThreadPoolExecutor(n))") from exc
        self._sendable = fun

    def _recover(self) -> bool:
        if not self._own:  # the user's executor: theirs to manage
            return False
        self.close()  # the next batch starts a fresh pool
        return True

    def close(self) -> None:
        """Stop the pool this evaluator started, killing workers that are still busy (hung or slow)."""
        if self._own and self.executor is not None:
            procs = list(getattr(self.executor, "_processes", {}).values())
            self.executor.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                if p.is_alive():
                    p.kill()
            for p in procs:
                p.join(timeout=5)
            self.executor = None
            self._hung = []  # their workers are gone with the pool


class Dask(_PerPoint):
    """Evaluate a per-point objective on a Dask cluster: ``Dask("tcp://host:8786")`` or ``Dask(client)``."""

    def __init__(self, client: Any, *, timeout: float | None = None, fail_fast: bool = False, retries: int = 2):
        super().__init__(timeout, fail_fast)
        if isinstance(retries, bool) or not isinstance(retries, (int, np.integer)) or retries < 0:
            raise ValueError(f"Dask: retries must be an integer >= 0, got {retries!r}")
        distributed = require("distributed", "Dask evaluation")
        self._own = isinstance(client, str)
        self.client = distributed.Client(client) if self._own else client
        if not isinstance(self.client, distributed.Client):
            raise TypeError(f"Dask: expected a distributed.Client or a scheduler address, got {client!r}")
        self.retries = int(retries)

    def _slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def _submit(self, fun: Callable[[Any], Any], points: list[np.ndarray]) -> list[Any]:
        if getattr(self.client, "status", "running") in ("closing", "closed"):
            raise EvaluatorError("the Dask client is closed: pass a connected one, or a scheduler address")
        return self.client.map(fun, points, pure=False, retries=self.retries)

    def _wait_any(self, futures: list[Any], wait: float | None) -> list[int]:
        # Dask futures have no wait-for-first of their own client: poll, from 1 ms up to 50 ms apart
        end = None if wait is None else time.monotonic() + wait
        pause = 0.001
        while True:
            done = [k for k, fut in enumerate(futures) if fut.done()]
            left = None if end is None else end - time.monotonic()
            if done or (left is not None and left <= 0):
                return done
            time.sleep(pause if left is None else min(pause, left))
            pause = min(2 * pause, 0.05)

    def _executing(self, futures: list[Any]) -> list[int] | None:
        # the scheduler may queue a task behind a hung one on the same worker: ask the workers what runs
        try:
            busy = self.client.run(_executing_keys)
        except Exception:  # noqa: BLE001 - a worker going away: fall back to the submission order
            return None
        keys = {key for found in busy.values() for key in found}
        return [k for k, fut in enumerate(futures) if fut.key in keys]

    def _abandon(self, fut: Any) -> None:
        # not cancelled: a running task goes on in its worker's thread all the same, and while the future lives
        # it shows when that thread is free again (a cancelled one would read as done at once)
        self._hung.append(fut)

    def close(self) -> None:
        for fut in self._hung:
            fut.cancel()
        self._hung = []
        if self._own:
            self.client.close()


def _executing_keys(dask_worker: Any) -> list[Any]:
    """Run on each Dask worker: the keys of the tasks its threads are running now."""
    state = dask_worker.state
    return [ts.key for ts in (*state.executing, *state.long_running)]


#: a Dask scheduler address: ``scheme://host:port``, ``scheme://host`` or ``host:port``
_ADDRESS = re.compile(r"[a-z][a-z0-9+.-]*://\S+|[\w.-]+:\d+|\[[0-9a-fA-F:]+\]:\d+")


def _row(v: Any) -> np.ndarray:
    """The K values one point of a vector objective returned, as floats (a scalar is one value)."""
    a = np.asarray(to_numpy(v) if is_torch(v) else v)
    if a.ndim > 1 or a.dtype.kind not in "biuf":
        raise TypeError(f"expected the point's values as a vector of real numbers, got {a.dtype} of shape {a.shape}")
    return a.astype(float).reshape(-1)


def as_evaluator(spec: Any) -> Any:
    """Normalise ``minimize``'s ``evaluator`` argument (None: the batched call)."""
    if spec is None or isinstance(spec, _PerPoint):
        return spec
    if isinstance(spec, bool):
        raise TypeError("evaluator: expected None, a number of workers, an Executor, a Dask client or address")
    if isinstance(spec, int):
        return Pool(workers=spec)
    if isinstance(spec, cf.Executor):
        return Pool(spec)
    if isinstance(spec, str):
        if not _ADDRESS.fullmatch(spec.strip()):
            raise ValueError(f"evaluator: {spec!r} is not a scheduler address such as 'tcp://host:8786'; for a "
                             "process pool pass a number of workers (evaluator=4) or cbopt.Pool(...)")
        return Dask(spec.strip())
    distributed = sys.modules.get("distributed")
    if distributed is not None and isinstance(spec, distributed.Client):
        return Dask(spec)
    raise TypeError(f"evaluator: expected None, a number of workers, an Executor, a Dask client or address, "
                    f"got {type(spec).__name__}")
