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

    def _submit(self, fun: Callable[[Any], Any], points: list[np.ndarray]) -> list[Any]:
        raise NotImplementedError

    def _slots(self) -> int:
        raise NotImplementedError

    def _result(self, fut: Any, wait: float | None) -> Any:
        return fut.result(timeout=wait)

    def _cancel(self, fut: Any) -> None:
        fut.cancel()

    def _recover(self) -> bool:
        """After a timeout or a dead worker: make the executor usable again; False when that is not ours to do."""
        return False

    def _gather(self, fun: Callable[[Any], Any], points: list[np.ndarray], out: np.ndarray, which: list[int]
                ) -> tuple[list[int], bool]:
        """Evaluate ``points[i]`` for ``i in which`` into ``out``; returns the points lost with a broken pool
        (not yet failures: they are retried) and whether some evaluation timed out."""
        futures = self._submit(fun, [points[i] for i in which])
        start = time.monotonic()
        # each point gets `timeout` seconds of a worker: the batch may take ceil(n / slots) of those
        budget = None if self.timeout is None else self.timeout * math.ceil(len(which) / max(1, self._slots()))
        lost, late = [], False
        try:
            for i, fut in zip(which, futures, strict=True):
                ends = [t for t in (None if budget is None else start + budget, self.deadline) if t is not None]
                wait = max(0.0, min(ends) - time.monotonic()) if ends else None
                try:
                    out[i] = float(self._result(fut, wait))
                except (cf.TimeoutError, TimeoutError):
                    late = True
                    past = self.deadline is not None and time.monotonic() >= self.deadline
                    self._fail(points[i], "no result before the run's max_time" if past else
                               f"no result within {self.timeout} s", None)
                    self._cancel(fut)
                except BrokenExecutor:
                    lost.append(i)
                except SystemExit as exc:  # in a worker it is the objective's failure, not the caller's exit
                    self._fail(points[i], f"the objective called sys.exit({exc.code!r})",
                               RuntimeError(f"the objective called sys.exit({exc.code!r}) in a worker"))
                except Exception as exc:  # the objective raised, or returned something that is not a number
                    self._fail(points[i], f"{type(exc).__name__}: {exc}", exc)
        except BaseException:
            for fut in futures:
                self._cancel(fut)
            raise
        return lost, late

    def __call__(self, fun: Callable[[Any], Any], x: Any) -> Any:
        host = np.asarray(to_numpy(x))
        flat = host.reshape(-1, host.shape[-1])
        points = [np.array(p) for p in flat]
        out: np.ndarray = np.full(len(points), np.nan)
        lost, late = self._gather(fun, points, out, list(range(len(points))))
        if (lost or late) and self._recover():
            # a dead worker takes the points queued with it: retry them on a fresh pool, then one at a time, so
            # that only the points that kill a worker (or hang) are marked failed
            if lost:
                lost, _ = self._gather(fun, points, out, lost)
            for i in list(lost):
                self._recover()
                again, _ = self._gather(fun, points, out, [i])
                if again:
                    self._fail(points[i], "the worker evaluating this point died", None)
            if lost:
                self._recover()
        else:
            for i in lost:
                self._fail(points[i], "the worker evaluating this point died (the executor is broken)", None)
        out = out.reshape(host.shape[:-1])
        if is_torch(x):  # back to the run's backend
            return sys.modules["torch"].as_tensor(out, dtype=x.dtype, device=x.device)
        return out

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

    def _slots(self) -> int:
        return self.workers or getattr(self.executor, "_max_workers", 1) or 1

    def _submit(self, fun: Callable[[Any], Any], points: list[np.ndarray]) -> list[Any]:
        if self.executor is None:
            self.executor = cf.ProcessPoolExecutor(max_workers=self.workers, initializer=exit_with_parent,
                                                   initargs=(os.getpid(),))
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

    def close(self) -> None:
        if self._own:
            self.client.close()


#: a Dask scheduler address: ``scheme://host:port``, ``scheme://host`` or ``host:port``
_ADDRESS = re.compile(r"[a-z][a-z0-9+.-]*://\S+|[\w.-]+:\d+|\[[0-9a-fA-F:]+\]:\d+")


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
