"""Checkpoints: the full state of a run in one ``.npz`` file (arrays) with a JSON header — never pickle.

Written atomically (a temporary file in the same folder, flushed and fsynced, then renamed over the old
one), so a crash while writing leaves the last good checkpoint. Loading checks the format, the method,
the dimensions and the parameters against the call that resumes, and reports anything else as a
:class:`CheckpointError` — a corrupt, truncated or hand-edited file never executes code and never
crashes deep inside numpy. Resuming continues the exact random stream: the result is bit-identical to
the uninterrupted run's.

This module is the format (the atomic write, the bounded reader, the digest) and the one identity a file
is held to (:func:`identity`); it knows no loop. What a loop's state is, each loop says itself: ``KIND``,
``snapshot(arrays) -> header part``, ``members(header)`` (the names a file may hold) and
``restore(header, arrays)`` on :class:`~cbopt.driver.Run`, :class:`~cbopt.sequence.Sequence` and the loops
of :func:`cbopt.minimax` and :func:`cbopt.multiobjective`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import pathlib
import re
import threading
import zipfile
from typing import Any

import numpy as np

from ._backend import Sampler, to_numpy
from .validation import flag, number, writable_file

FORMAT = "cbopt-checkpoint"
VERSION = 2  # 2: the header holds a digest of the members


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """``checkpoint=`` of :func:`cbopt.minimize`: write the full state of the run (or of the restart
    sequence) to ``path`` every ``every`` iterations, at the end and on Ctrl-C; with ``resume=True`` an
    existing file is continued (bit-identical to the uninterrupted run); without the file the run starts
    afresh."""

    path: str | os.PathLike[str]
    every: int = 100
    resume: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)) or not os.fspath(self.path):
            raise TypeError(f"checkpoint: expected a file path, got {self.path!r}")
        number("checkpoint every", self.every, at_least=1, integer=True)
        flag("checkpoint resume", self.resume)


def as_checkpoint(checkpoint: Any) -> Checkpoint | None:
    """``checkpoint=``: None, a path (written, never resumed), or :class:`Checkpoint`; its folder must exist and
    be writable (checked before the run starts, not at its first save)."""
    if checkpoint is None:
        return None
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint(checkpoint)
    writable_file("checkpoint", ckpt.path)
    return ckpt


class CheckpointError(ValueError):
    """The checkpoint file cannot be used: corrupt, truncated, of another run, or edited inconsistently."""


#: the keys of a file written before a key was part of the identity, and what they meant then
_BEFORE = {"constraints": "", "n_runs": 1}


def identity(method: str, problem: Any, params: Any, sampler: Any, **more: Any) -> dict[str, Any]:
    """The one fingerprint: what must match between the loop that wrote a checkpoint and the one that resumes it
    (method, dimension, runs, dtype, options, box, random stream, constraints, and ``more`` of the loop's own)."""
    p = problem
    return {"method": method, "dim": p.dim, "n_runs": p.n_runs, "dtype": str(p.dtype),
            "params": fingerprint_params(params), "bounds": box(p), "seed": getattr(sampler, "origin", None),
            "constraints": p.constraints, **more}


def check_identity(theirs: Any, mine: dict[str, Any]) -> None:
    """Refuse a file whose identity (:func:`identity`) differs from the resuming loop's in any key."""
    if not isinstance(theirs, dict):
        raise CheckpointError("malformed identity")
    for key in mine:
        if key == "seed" and (mine[key] is None or theirs.get(key) is None):
            continue  # a run seeded from fresh entropy (rng=None) continues the stream in the file
        if theirs.get(key, _BEFORE.get(key)) != mine[key]:
            what = "the random stream (rng/--seed)" if key == "seed" else key
            raise CheckpointError(f"written by another run: {what} is {theirs.get(key)!r} there, {mine[key]!r} "
                                  "here")


def box(p: Any) -> list[list[float]] | None:
    """A problem's box as the identity holds it (lists of floats; None without one)."""
    return None if p.lo is None else [to_numpy(p.lo).tolist(), to_numpy(p.hi).tolist()]


def fingerprint_params(params: Any) -> dict[str, str]:
    """A method's parameters as strings that compare equal exactly when the parameters do (a composed part,
    such as the CBO move inside cbo-memory's parameters, contributes its fields)."""

    def show(v: Any) -> str:
        if callable(v) and not dataclasses.is_dataclass(v):
            return f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', type(v).__name__)}"
        return repr(v)

    out: dict[str, str] = {}
    for f in dataclasses.fields(params):
        v = getattr(params, f.name)
        if f.metadata.get("part"):
            out.update(fingerprint_params(v))
        elif f.metadata.get("fingerprint", True):
            out[f.name] = show(v)
    return out


def _set_sampler_state(sampler: Sampler, meta: dict[str, Any], arrays: Any) -> None:
    try:
        sampler.restore(meta, arrays)
    except ValueError as exc:
        raise CheckpointError(f"{exc} (this run draws with {type(sampler).__name__})") from None


def put(arrays: dict[str, np.ndarray], key: str, a: Any) -> None:
    """Store ``a`` (numpy or torch) as the member ``key``."""
    arrays[key] = np.asarray(to_numpy(a))


def put_aux(aux: Any, key: str, arrays: dict[str, np.ndarray]) -> int | None:
    """Store ``aux`` (None, an array or a tuple of arrays) under ``key``; returns the count of a tuple, -1 for
    a single array, None for none (what :func:`get_aux` reads back)."""
    if aux is None:
        return None
    if isinstance(aux, tuple):
        for i, a in enumerate(aux):
            put(arrays, f"{key}.{i}", a)
        return len(aux)
    put(arrays, key, aux)
    return -1


def get_aux(count: Any, key: str, arrays: dict[str, np.ndarray], to: Any) -> Any:
    """What :func:`put_aux` stored under ``key`` (``count``: what it returned), on the loop's backend."""
    if count is None or count is False:
        return None
    if count == -1 or count is True:
        return to(arrays[key], float_=arrays[key].dtype.kind == "f")
    return tuple(to(arrays[f"{key}.{i}"], float_=arrays[f"{key}.{i}"].dtype.kind == "f") for i in range(int(count)))


def aux_names(count: Any, key: str) -> set[str]:
    """The members :func:`put_aux` may have written under ``key``."""
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        return {f"{key}.{i}" for i in range(min(count, 64))}
    return {key}


def save(path: str | os.PathLike[str], loop: Any, extra: dict[str, Any] | None = None) -> None:
    """Write the state of ``loop`` (a :class:`~cbopt.driver.Run`, a restart :class:`~cbopt.sequence.Sequence`,
    a wing's loop: whatever has ``KIND``, ``snapshot``, ``restore`` and ``members``) to ``path`` atomically
    (between steps, or with asked points pending); ``extra``: JSON-able state of what drives the loop (the noise
    check), given back by :func:`load`."""
    arrays: dict[str, np.ndarray] = {}
    part = loop.snapshot(arrays)
    if part is None:
        return  # nothing evaluated yet: nothing worth resuming
    header = {"format": FORMAT, "version": VERSION, "kind": loop.KIND, **part}
    smeta, sarrays = loop.sampler.snapshot()
    arrays.update(sarrays)
    header["sampler"] = smeta
    if extra:
        header["extra"] = extra
    header["digest"] = _digest(arrays)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    _write(pathlib.Path(os.path.realpath(path)), arrays)  # through a symlink: the link stays, its target changes


def _digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every member but the header (name, dtype, shape, bytes): it binds the members to the header
    that holds it, so members swapped in from another file, or edited one by one with fresh CRCs, are refused."""
    h = hashlib.sha256()
    for name in sorted(k for k in arrays if k != "header"):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _remove_stale(path: pathlib.Path) -> None:
    """Temporary files of ``path`` left by a writer that was killed mid-save (its process is gone)."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        return True
    return True


def _write(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    _remove_stale(path)
    # one temporary name per process and thread: two writers of one path never share it
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub reads **kwds as allow_pickle
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


def load(path: str | os.PathLike[str], loop: Any) -> dict[str, Any] | None:
    """Restore ``loop`` (freshly built by the resuming call) from ``path``; :class:`CheckpointError` if unusable.
    Returns the ``extra`` state saved with it (None if there was none)."""
    if not os.path.exists(path):  # a missing file is not a corrupt one: let the caller see it as such
        raise FileNotFoundError(f"no checkpoint at {os.fspath(path)!r}")
    if not os.path.isfile(path):  # a FIFO, a device or a folder: never opened (reading a FIFO would block)
        raise CheckpointError(f"{path}: not a regular file")
    try:
        arrays = _read_members(path, _member_limit(loop))
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, NotImplementedError, OverflowError,
            MemoryError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    try:
        if "header" not in arrays:
            raise CheckpointError("no header")
        header = json.loads(bytes(arrays.pop("header")).decode())
        if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("version") != VERSION:
            raise CheckpointError(f"{path}: not a cbopt checkpoint of version {VERSION}")
        if header.get("kind") != loop.KIND:
            raise CheckpointError(f"{path} holds a {header.get('kind')!r} checkpoint, this call runs a "
                                  f"{loop.KIND} (restarts differ)")
        named = loop.members(header) | SAMPLER_MEMBERS
        extra = sorted(k for k in arrays if k not in named)
        if extra:
            raise CheckpointError(f"members the header does not name: {extra[:5]}")
        if header.get("digest") != _digest(arrays):
            raise CheckpointError("its members do not match its header's digest (edited, or members of "
                                  "another file)")
        loop.restore(header, arrays)
        _set_sampler_state(loop.sampler, header["sampler"], arrays)
        saved = header.get("extra")
        if saved is not None and not isinstance(saved, dict):
            raise CheckpointError("its extra state is not a mapping")
        return saved
    except CheckpointError as exc:
        if str(path) in str(exc):
            raise
        raise CheckpointError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, UnicodeDecodeError, json.JSONDecodeError,
            RecursionError, OverflowError, MemoryError) as exc:
        raise CheckpointError(f"{path}: inconsistent checkpoint ({type(exc).__name__}: {exc})") from None


#: the names a member may have (checked before anything is read; which of them a file may hold is the loop's
#: to say, :meth:`members`, checked against the header before anything is restored)
_MEMBER = re.compile(r"(header|sampler_torch_state|[a-z_]+(\.[A-Za-z0-9_]+){1,3})\.npy")
#: the members a sampler's state may take
SAMPLER_MEMBERS = frozenset({"sampler_torch_state"})


#: the bytes all members together may declare, in units of the one-member limit (a run's largest arrays, its
#: covariance or its swarm, are each far below that limit; their sum is well below this many)
TOTAL_MEMBERS = 4


def _member_limit(run: Any) -> int:
    """Bytes one member may declare: bounded by the run's own size (its swarm, its covariances, a restart
    sequence's largest population), so a damaged or hostile file cannot make the loader allocate more."""
    p = run.problem
    n0 = getattr(run.params, "n_particles", None) or 1
    return 8 * p.n_runs * (p.dim + 2) * max(p.dim + 2, 1024 * int(n0)) + 2**20


def _read_members(path: Any, limit: int) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as z:
        members = z.infolist()
        if len(members) > 512:
            raise CheckpointError(f"{len(members)} members: not a checkpoint")
        names = [m.filename for m in members]
        if len(set(names)) != len(names):
            raise CheckpointError("a member appears twice")
        for m in members:  # names and declared sizes, before anything is inflated
            if not _MEMBER.fullmatch(m.filename):
                raise CheckpointError(f"unexpected member {m.filename!r}")
            if m.file_size > limit:
                raise CheckpointError(f"member {m.filename!r} declares {m.file_size} bytes, more than this run "
                                      f"can hold ({limit})")
        total = sum(m.file_size for m in members)
        if total > TOTAL_MEMBERS * limit:
            raise CheckpointError(f"its members declare {total} bytes in all, more than this run can hold "
                                  f"({TOTAL_MEMBERS * limit})")
        for info in members:
            with z.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise CheckpointError(f"member {info.filename!r}: unsupported array format {version}")
                if dtype.kind not in "biuf" or dtype.hasobject:
                    raise CheckpointError(f"member {info.filename!r}: dtype {dtype} is not numeric")
                if any(n < 0 for n in shape) or int(np.prod(shape, dtype=object)) * dtype.itemsize > limit:
                    raise CheckpointError(f"member {info.filename!r} declares shape {shape}, more than this run "
                                          "can hold")
                count = int(np.prod(shape, dtype=object))
                data = fh.read(count * dtype.itemsize)
                if len(data) != count * dtype.itemsize:
                    raise CheckpointError(f"member {info.filename!r} is truncated")
                a = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
                arrays[info.filename[:-4]] = a.copy()
    return arrays


def converter(problem: Any) -> Any:
    """``to(a, float_)``: a member read back as an array of ``problem``'s backend (floats in its dtype)."""
    p = problem
    like = p.lo if p.lo is not None else p.x0

    def to(a: np.ndarray, float_: bool) -> Any:
        if float_:
            a = a.astype(np.dtype(str(p.dtype).replace("torch.", "")))
        if like is None or isinstance(like, np.ndarray):
            return np.array(a)
        import torch

        return torch.as_tensor(a, device=like.device)

    return to
