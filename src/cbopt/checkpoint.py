"""Checkpoints: the full state of a run in one ``.npz`` file (arrays) with a JSON header — never pickle.

Written atomically (a temporary file in the same folder, flushed and fsynced, then renamed over the old
one), so a crash while writing leaves the last good checkpoint. Loading checks the format, the method,
the dimensions and the parameters against the call that resumes, and reports anything else as a
:class:`CheckpointError` — a corrupt, truncated or hand-edited file never executes code and never
crashes deep inside numpy. Resuming continues the exact random stream: the result is bit-identical to
the uninterrupted run's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import zipfile
from typing import Any

import numpy as np

from ._backend import NumpySampler, TorchSampler, to_numpy
from .driver import Run
from .stopping import Status

FORMAT = "cbopt-checkpoint"
VERSION = 1
_BOOK = ("nfev", "nit", "n_nonfinite", "best_x", "best_f", "status", "improved_at", "ref_f", "ref_c", "ref_c_at",
         "spread0")


class CheckpointError(ValueError):
    """The checkpoint file cannot be used: corrupt, truncated, of another run, or edited inconsistently."""


def fingerprint(run: Run) -> dict[str, Any]:
    """What must match between the run that wrote a checkpoint and the one that resumes it."""

    def show(v: Any) -> str:
        if callable(v) and not dataclasses.is_dataclass(v):
            return f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', type(v).__name__)}"
        return repr(v)

    params = {f.name: show(getattr(run.params, f.name)) for f in dataclasses.fields(run.params)}
    p = run.problem
    return {"method": run.spec.name, "dim": p.dim, "n_runs": p.n_runs, "dtype": str(p.dtype), "params": params}


def _sampler_state(sampler: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    host = sampler if isinstance(sampler, NumpySampler) else getattr(sampler, "host", None)
    if host is not None:
        return {"kind": "numpy", "root": host.gen.bit_generator.state,
                "children": [c.bit_generator.state for c in host._children]}, {}
    return {"kind": "torch"}, {"sampler_torch_state": to_numpy(sampler.gen.get_state())}


def _set_sampler_state(sampler: Any, meta: dict[str, Any], arrays: Any) -> None:
    host = sampler if isinstance(sampler, NumpySampler) else getattr(sampler, "host", None)
    if host is not None:
        if meta.get("kind") != "numpy":
            raise CheckpointError("the checkpoint's random state is not a numpy stream")
        host.gen.bit_generator.state = meta["root"]
        host._children = []
        for st in meta["children"]:
            g = np.random.Generator(np.random.PCG64())
            g.bit_generator.state = st
            host._children.append(g)
        return
    import torch

    if meta.get("kind") != "torch" or "sampler_torch_state" not in arrays:
        raise CheckpointError("the checkpoint's random state is not a torch generator state")
    if not isinstance(sampler, TorchSampler):
        raise CheckpointError("the checkpoint holds a torch generator state, this run draws with numpy")
    sampler.gen.set_state(torch.as_tensor(arrays["sampler_torch_state"], dtype=torch.uint8))


def save(path: str | os.PathLike[str], run: Run) -> None:
    """Write ``run``'s state to ``path`` atomically (between steps, or with asked points pending)."""
    if run.state is None:
        return  # nothing evaluated yet: nothing worth resuming
    arrays: dict[str, np.ndarray] = {}
    for name, v in zip(run.state._fields, run.state, strict=True):
        arrays[f"state.{name}"] = np.asarray(to_numpy(v))
    for name in _BOOK:
        arrays[f"book.{name}"] = np.asarray(to_numpy(getattr(run.book, name)))
    pending = None
    if run._pending is not None:
        x, aux, _ = run._pending
        arrays["pending.x"] = np.asarray(to_numpy(x))
        if aux is not None:
            arrays["pending.aux"] = np.asarray(to_numpy(aux))
        pending = {"aux": aux is not None}
    smeta, sarrays = _sampler_state(run.sampler)
    arrays.update(sarrays)
    header = {"format": FORMAT, "version": VERSION, "fingerprint": fingerprint(run), "it": run.it,
              "state_type": type(run.state).__name__, "state_fields": list(run.state._fields),
              "sampler": smeta, "pending": pending}
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # the previous checkpoint, if any, is untouched
        raise
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def load(path: str | os.PathLike[str], run: Run) -> None:
    """Restore ``run`` (freshly built by the resuming call) from ``path``; :class:`CheckpointError` if unusable."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:  # a missing file is not a corrupt one: let the caller see it as such
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    try:
        header = json.loads(bytes(arrays.pop("header")).decode())
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise CheckpointError(f"{path}: not a cbopt checkpoint of version {VERSION}")
        mine = fingerprint(run)
        theirs = header["fingerprint"]
        for key in ("method", "dim", "n_runs", "dtype", "params"):
            if theirs.get(key) != mine[key]:
                raise CheckpointError(f"{path} was written by another run: {key} is {theirs.get(key)!r} there, "
                                      f"{mine[key]!r} here")
        _restore(run, header, arrays)
    except CheckpointError as exc:
        if str(path) in str(exc):
            raise
        raise CheckpointError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, UnicodeDecodeError,
            json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: inconsistent checkpoint ({type(exc).__name__}: {exc})") from None


def _restore(run: Run, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    backend_like = run.problem
    m, d = backend_like.n_runs, backend_like.dim
    to = _converter(run)
    # the state: same type and fields as a fresh init of this method would build
    x0 = to(arrays["state.x"], float_=True)
    if tuple(x0.shape[:1]) != (m,) or x0.shape[-1] != d:
        raise CheckpointError(f"state.x has shape {tuple(x0.shape)}, expected ({m}, N, {d})")
    fields = header["state_fields"]
    state_type = run.spec.state
    if list(state_type._fields) != list(fields) or header["state_type"] != state_type.__name__:
        raise CheckpointError(f"the checkpoint holds a {header['state_type']} state, this method uses "
                              f"{state_type.__name__}")
    values = [to(arrays[f"state.{name}"], float_=arrays[f"state.{name}"].dtype.kind == "f") for name in fields]
    for name, v in zip(fields, values, strict=True):
        if v.shape[:1] != x0.shape[:1]:
            raise CheckpointError(f"state.{name} has shape {tuple(v.shape)}: its first axis must be the {m} runs")
    book = run.book
    for name in _BOOK:
        a = arrays[f"book.{name}"]
        if name in ("nfev", "nit", "status", "improved_at", "ref_c_at"):
            if a.shape != (m,) or a.dtype.kind not in "iu":
                raise CheckpointError(f"book.{name}: expected {m} integers, got {a.dtype} {a.shape}")
            setattr(book, name, a.astype(np.int64))
        elif name in ("ref_f", "spread0"):
            setattr(book, name, a.astype(np.float64))
        else:
            setattr(book, name, to(a, float_=a.dtype.kind == "f"))
    if np.any(book.nfev < 0) or np.any(book.nit < 0) or not np.all(np.isin(book.status, [int(s) for s in Status])):
        raise CheckpointError("book: negative counts or unknown status codes")
    # runs stopped by an interrupt, a failed objective, the user or a budget continue (re-evaluating the points
    # they were asked); the resuming call's budgets apply from here on. Converged, diverged... runs stay stopped.
    resumable = [Status.INTERRUPTED, Status.OBJECTIVE_ERROR, Status.CALLBACK, Status.MAX_EVALS, Status.MAX_ITER,
                 Status.MAX_TIME]
    book.status[np.isin(book.status, resumable)] = Status.RUNNING
    rules = run.rules
    if rules.max_iter is not None:
        book.status[(book.status == Status.RUNNING) & (book.nit >= rules.max_iter)] = Status.MAX_ITER
    if rules.max_evals is not None:
        book.status[(book.status == Status.RUNNING) & (book.nfev >= rules.max_evals)] = Status.MAX_EVALS
    run.state = state_type(*values)
    run.it = int(header["it"])
    pending = header.get("pending")
    if pending:
        x = to(arrays["pending.x"], float_=True)
        aux = to(arrays["pending.aux"], float_=False) if pending.get("aux") else None
        run._pending = (x, aux, run.evaluator.points(x))
    _set_sampler_state(run.sampler, header["sampler"], arrays)


def _converter(run: Run) -> Any:
    p = run.problem
    like = p.lo if p.lo is not None else p.x0

    def to(a: np.ndarray, float_: bool) -> Any:
        if float_:
            a = a.astype(np.dtype(str(p.dtype).replace("torch.", "")))
        if like is None or isinstance(like, np.ndarray):
            return np.array(a)
        import torch

        return torch.as_tensor(a, device=like.device)

    return to
