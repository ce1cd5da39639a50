"""Checkpoints: the full state of a run in one ``.npz`` file (arrays) with a JSON header — never pickle.

Written atomically (a temporary file in the same folder, flushed and fsynced, then renamed over the old
one), so a crash while writing leaves the last good checkpoint. Loading checks the format, the method,
the dimensions and the parameters against the call that resumes, and reports anything else as a
:class:`CheckpointError` — a corrupt, truncated or hand-edited file never executes code and never
crashes deep inside numpy. Resuming continues the exact random stream: the result is bit-identical to
the uninterrupted run's.
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

from ._backend import Sampler, cast, full_like_shape, namespace, to_numpy
from .driver import Run
from .result import OptimizeResult
from .stopping import Status
from .validation import flag, number, writable_file

FORMAT = "cbopt-checkpoint"
VERSION = 2  # 2: the header holds a digest of the members
_BOOK = ("nfev", "nit", "n_nonfinite", "best_x", "best_f", "status", "improved_at", "ref_f", "ref_c", "ref_c_at",
         "spread0", "recent_f")


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


def fingerprint(run: Run) -> dict[str, Any]:
    """What must match between the run that wrote a checkpoint and the one that resumes it."""
    p = run.problem
    return {"method": run.spec.name, "dim": p.dim, "n_runs": p.n_runs, "dtype": str(p.dtype),
            "params": fingerprint_params(run.params), "bounds": _box(p),
            "seed": getattr(run.sampler, "origin", None), "constraints": p.constraints}


def _box(p: Any) -> list[list[float]] | None:
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


def _aux_arrays(aux: Any, key: str, arrays: dict[str, np.ndarray]) -> int | None:
    """Store ``aux`` (None, an array or a tuple of arrays) under ``key``; returns the count of a tuple, -1 for
    a single array, None for none."""
    if aux is None:
        return None
    if isinstance(aux, tuple):
        for i, a in enumerate(aux):
            arrays[f"{key}.{i}"] = np.asarray(to_numpy(a))
        return len(aux)
    arrays[key] = np.asarray(to_numpy(aux))
    return -1


def _run_arrays(run: Run, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The arrays of one run under ``prefix`` (state, book, asked points); returns its header part."""
    if run.state is not None:
        for name, v in zip(run.state._fields, run.state, strict=True):
            arrays[f"{prefix}state.{name}"] = np.asarray(to_numpy(v))
        for name in _BOOK:
            if getattr(run.book, name) is not None:
                arrays[f"{prefix}book.{name}"] = np.asarray(to_numpy(getattr(run.book, name)))
    pending = None
    if run.pending is not None:
        x, aux = run.pending
        arrays[f"{prefix}pending.x"] = np.asarray(to_numpy(x))
        pending = {"aux": _aux_arrays(aux, f"{prefix}pending.aux", arrays)}
    part: dict[str, Any] = {"fingerprint": fingerprint(run), "it": run.it, "pending": pending,
                            "has_state": run.state is not None}
    if run.state is not None:
        part.update(state_type=type(run.state).__name__, state_fields=list(run.state._fields))
    return part


def save(path: str | os.PathLike[str], run: Any, extra: dict[str, Any] | None = None) -> None:
    """Write the state of ``run`` (a :class:`Run` or a restart :class:`~cbopt.sequence.Sequence`) to ``path``
    atomically (between steps, or with asked points pending); ``extra``: JSON-able state of what drives the loop
    (the noise check), given back by :func:`load`."""
    from .sequence import Sequence

    arrays: dict[str, np.ndarray] = {}
    if isinstance(run, Sequence):
        if run.run is None and not run.log:
            return  # nothing evaluated yet: nothing worth resuming
        header = {"format": FORMAT, "version": VERSION, "kind": "sequence", "sequence": _sequence_header(run, arrays)}
        if run.run is not None:
            header["run"] = _run_arrays(run.run, "run.", arrays)
    else:
        if run.state is None:
            return  # nothing evaluated yet: nothing worth resuming
        header = {"format": FORMAT, "version": VERSION, "kind": "run", **_run_arrays(run, "", arrays)}
    smeta, sarrays = run.sampler.snapshot()
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


def _sequence_header(seq: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    best = None
    if seq.best is not None:
        b = seq.best
        best = {k: b.get(k) for k in ("fun", "success", "status", "reason", "message", "nit", "nfev",
                                       "nfev_nonfinite", "spread", "criterion")}
        for k in ("x", "population", "energies", "consensus"):
            if b.get(k) is not None:
                arrays[f"best.{k}"] = np.asarray(to_numpy(b[k]))
    last = seq.last.get("consensus") if seq.last is not None else None
    if last is not None:  # the last finished run's consensus: a candidate for res.x on a noisy objective
        arrays["last.consensus"] = np.asarray(to_numpy(last))
    child = dataclasses.asdict(seq.child) if seq.child is not None else None
    return {**_sequence_identity(seq), "memo": seq.planner.memo,
            "nfev": seq.nfev, "nit": seq.nit, "nonfinite": seq.nonfinite, "log": seq.log, "best": best, "child": child,
            "status": None if seq.status is None else int(seq.status)}


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


def load(path: str | os.PathLike[str], run: Any) -> dict[str, Any] | None:
    """Restore ``run`` (freshly built by the resuming call) from ``path``; :class:`CheckpointError` if unusable.
    Returns the ``extra`` state saved with it (None if there was none)."""
    from .sequence import Sequence

    if not os.path.exists(path):  # a missing file is not a corrupt one: let the caller see it as such
        raise FileNotFoundError(f"no checkpoint at {os.fspath(path)!r}")
    if not os.path.isfile(path):  # a FIFO, a device or a folder: never opened (reading a FIFO would block)
        raise CheckpointError(f"{path}: not a regular file")
    try:
        arrays = _read_members(path, _member_limit(run))
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
        extra = sorted(k for k in arrays if ".state." in f".{k}" or ".book." in f".{k}"
                       if k not in _expected_names(header))
        if extra:
            raise CheckpointError(f"members the header does not name: {extra[:5]}")
        if header.get("digest") != _digest(arrays):
            raise CheckpointError("its members do not match its header's digest (edited, or members of "
                                  "another file)")
        kind = "sequence" if isinstance(run, Sequence) else "run"
        if header.get("kind") != kind:
            raise CheckpointError(f"{path} holds a {header.get('kind')!r} checkpoint, this call runs a {kind} "
                                  "(restarts differ)")
        if kind == "sequence":
            _restore_sequence(run, header, arrays)
        else:
            _check_fingerprint(header["fingerprint"], fingerprint(run))
            _restore(run, header, arrays, "")
        _set_sampler_state(run.sampler, header["sampler"], arrays)
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


#: the members a checkpoint may hold; anything else is refused before it is read
_MEMBER = re.compile(r"(header|sampler_torch_state|(run\.)?(state|book)\.\w+|(run\.)?pending\.(x|aux(\.\d+)?)"
                     r"|best\.(x|population|energies|consensus)|last\.consensus)\.npy")


#: the bytes all members together may declare, in units of the one-member limit (a run's largest arrays, its
#: covariance or its swarm, are each far below that limit; their sum is well below this many)
TOTAL_MEMBERS = 4


def _expected_names(header: dict[str, Any]) -> set[str]:
    """The state and book members the header says the file holds (run and sequence files alike)."""
    parts = [("", header)] if header.get("kind") == "run" else [("run.", header.get("run") or {})]
    out = set()
    for prefix, part in parts:
        out |= {f"{prefix}state.{f}" for f in part.get("state_fields") or []}
        out |= {f"{prefix}book.{f}" for f in _BOOK}
    return out


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


def _sequence_identity(seq: Any) -> dict[str, Any]:
    """What must match between the restart sequence that wrote a checkpoint and the one that resumes it: the
    same as a run's (:func:`fingerprint`) plus the policy. Checked before anything else, so a finished sequence
    extended with a larger budget is held to it as well as one interrupted mid-run."""
    return {"policy": repr(seq.policy), "method": seq.spec.name, "dim": seq.problem.dim,
            "dtype": str(seq.problem.dtype), "params": fingerprint_params(seq.params), "bounds": _box(seq.problem),
            "seed": getattr(seq.sampler, "origin", None), "constraints": seq.problem.constraints}


RUN_KEYS = ("method", "dim", "n_runs", "dtype", "params", "bounds", "seed", "constraints")


def _check_fingerprint(theirs: dict[str, Any], mine: dict[str, Any], keys: tuple[str, ...] = RUN_KEYS) -> None:
    for key in keys:
        if key == "seed" and (mine[key] is None or theirs.get(key) is None):
            continue  # a run seeded from fresh entropy (rng=None) continues the stream in the file
        if theirs.get(key, "" if key == "constraints" else None) != mine[key]:  # files before it: none
            what = "the random stream (rng/--seed)" if key == "seed" else key
            raise CheckpointError(f"written by another run: {what} is {theirs.get(key)!r} there, {mine[key]!r} "
                                  "here")


def _sequence_agrees(h: dict[str, Any]) -> None:
    """A sequence's count of evaluations is the sum of its finished runs' and its best is the least of their
    results: a count rewound (which would extend the budget) or a best put in by hand contradicts its log."""
    try:
        logged = sum(int(e["nfev"]) for e in h["log"])
        funs = [float(e["fun"]) for e in h["log"] if e.get("fun") is not None]
    except (TypeError, KeyError, ValueError):
        raise CheckpointError("sequence: malformed log of finished runs") from None
    if logged != int(h["nfev"]):
        raise CheckpointError(f"sequence: {int(h['nfev'])} evaluations, but its finished runs made {logged}: "
                              "counts edited")
    best = h["best"]
    if best is not None and best.get("fun") is not None and funs and float(best["fun"]) != min(funs):
        raise CheckpointError(f"sequence: best f = {best['fun']!r}, but its finished runs' least is {min(funs)!r}")


def _restore_sequence(seq: Any, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    from .sequence import Child

    h = header["sequence"]
    mine = _sequence_identity(seq)
    _check_fingerprint(h, mine, keys=tuple(mine))
    if not isinstance(h["memo"], dict) or not isinstance(h["log"], list):
        raise CheckpointError("sequence: malformed planner state")
    seq.planner.memo = h["memo"]
    seq.nfev, seq.nit, seq.nonfinite, seq.log = int(h["nfev"]), int(h["nit"]), int(h["nonfinite"]), list(h["log"])
    if seq.nfev < 0 or seq.nit < 0:
        raise CheckpointError("sequence: negative counts")
    _sequence_agrees(h)
    seq.status = None if h["status"] is None else Status(int(h["status"]))
    if seq.status is not None and seq.status.resumable:
        seq.status = None  # the resuming call's budgets apply from here on
    seq.best = None
    if h["best"] is not None:
        best = OptimizeResult(h["best"])
        to = _converter_for(seq.problem)
        for k in ("x", "population", "energies", "consensus"):
            if f"best.{k}" in arrays:
                best[k] = to(arrays[f"best.{k}"], float_=True)
        seq.best = best
    seq.last = None
    if "last.consensus" in arrays:
        seq.last = OptimizeResult(consensus=_converter_for(seq.problem)(arrays["last.consensus"], float_=True))
    seq.run, seq.child = None, None
    if h["child"] is not None:
        seq.start(Child(**h["child"]))
        part = header.get("run")
        if part is None:
            raise CheckpointError("sequence: the current run's state is missing")
        _check_fingerprint(part["fingerprint"], fingerprint(seq.run))
        _restore(seq.run, part, arrays, "run.")
    elif header.get("run") is not None:
        raise CheckpointError("sequence: a run's state without the run it belongs to")
    elif seq.status is None:
        seq.plan()  # it had ended for lack of budget: a larger budget may continue it


def _restore(run: Run, header: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str) -> None:
    to = _converter(run)
    pending = header.get("pending")
    if header.get("has_state", True):
        _restore_state(run, header, arrays, prefix, to)
    run.it = int(header["it"])
    if pending:
        x = to(arrays[f"{prefix}pending.x"], float_=True)
        count = pending.get("aux")
        key = f"{prefix}pending.aux"
        if count is None or count is False:
            aux = None
        elif count == -1 or count is True:
            aux = to(arrays[key], float_=arrays[key].dtype.kind == "f")
        else:
            aux = tuple(to(arrays[f"{key}.{i}"], float_=arrays[f"{key}.{i}"].dtype.kind == "f")
                        for i in range(int(count)))
        if run.state is None:
            m, d = run.problem.n_runs, run.problem.dim
            run.book.best_x = full_like_shape((m, d), 0.0, x)
            run.book.best_f = full_like_shape((m,), float("inf"), x)
            run.book.n_nonfinite = cast(full_like_shape((m,), 0.0, x), namespace(x).int64)
        _in_box(run, "pending.x", x)
        run.restore_pending(x, aux)


def _boxed(run: Run) -> bool:
    """The method keeps every point it evaluates in the problem's box (reflection or clipping)."""
    params = run.params
    mode = getattr(params, "boundary", getattr(getattr(params, "move", None), "boundary", None))
    return run.problem.lo is not None and run.problem.project is None and mode in ("reflect", "clip")


def _in_box(run: Run, name: str, x: Any) -> None:
    """A method that keeps its points in the box never checkpoints one outside it: such a file was edited."""
    if not _boxed(run):
        return
    a = np.asarray(to_numpy(x), dtype=float)
    lo, hi = (np.asarray(to_numpy(v), dtype=float) for v in (run.problem.lo, run.problem.hi))
    slack = 1e-9 * np.maximum(hi - lo, 1.0)
    if np.any(a < lo - slack) or np.any(a > hi + slack):
        raise CheckpointError(f"{name}: points outside the box, which this method never evaluates")


def _counts_agree(run: Run, book: Any) -> None:
    """A method's first population is ``initial_points`` (default ``n_particles``) and every step evaluates
    ``points_per_step`` (default ``n_particles``): a count of evaluations that does not follow from the count of
    steps was edited (a rewound ``nfev`` would silently extend the budget)."""
    size: Any = getattr(run.params, "n_particles", None)
    n: Any = getattr(run.params, "points_per_step", size)
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (size, n)):
        return  # a method of unknown batch: nothing to hold the counts to
    first = run.spec.initial_points if run.spec.initial_points is not None else int(size)
    expected = first + book.nit * int(n)
    if np.any(book.nfev != expected):
        r = int(np.argmax(book.nfev != expected))
        raise CheckpointError(f"book: {int(book.nfev[r])} evaluations do not follow from {int(book.nit[r])} steps of "
                              f"{int(n)} points ({int(expected[r])}): counts edited")


def _restore_state(run: Run, header: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str, to: Any) -> None:
    m, d = run.problem.n_runs, run.problem.dim
    # the state: same type and fields as a fresh init of this method would build
    x0 = to(arrays[f"{prefix}state.x"], float_=True)
    if tuple(x0.shape[:1]) != (m,) or x0.shape[-1] != d:
        raise CheckpointError(f"state.x has shape {tuple(x0.shape)}, expected ({m}, N, {d})")
    fields = header["state_fields"]
    state_type: Any = run.spec.state
    if list(state_type._fields) != list(fields) or header["state_type"] != state_type.__name__:
        raise CheckpointError(f"the checkpoint holds a {header['state_type']} state, this method uses "
                              f"{state_type.__name__}")
    values = [to(arrays[f"{prefix}state.{name}"], float_=arrays[f"{prefix}state.{name}"].dtype.kind == "f")
              for name in fields]
    for name, v in zip(fields, values, strict=True):
        if v.shape[:1] != x0.shape[:1]:
            raise CheckpointError(f"state.{name} has shape {tuple(v.shape)}: its first axis must be the {m} runs")
    book = run.book
    for name in _BOOK:
        if name == "recent_f" and run.rules.beaten_by is None:
            continue  # kept only by runs with that rule
        a = arrays[f"{prefix}book.{name}"]
        if name == "recent_f":
            if a.ndim != 2 or a.shape[0] != m or a.dtype.kind != "f":
                raise CheckpointError(f"book.recent_f: expected ({m}, W) floats, got {a.dtype} {a.shape}")
            book.recent_f = a.astype(np.float64)
            continue
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
    if np.any(book.nfev >= 2**53) or np.any(book.nit > book.nfev):
        raise CheckpointError("book: implausible counts (nfev beyond 2**53, or more iterations than evaluations)")
    _counts_agree(run, book)
    best = np.asarray(to_numpy(book.best_f), dtype=float)
    if best.shape != (m,) or np.any(np.isnan(best)) or np.any(best == -np.inf):
        raise CheckpointError("book.best_f: must hold one value per run, none NaN or -inf")
    if "energy" in fields:  # the best-so-far is the least of every evaluated energy, the current ones included
        energy = np.asarray(to_numpy(values[fields.index("energy")]), dtype=float).reshape(m, -1)
        if energy.shape[1] and np.any(best > energy.min(axis=1)):
            raise CheckpointError("book.best_f: above an energy the state holds, which it never is")
    _in_box(run, "state.x", x0)
    if book.best_x is not None:
        found = np.isfinite(best)  # a run with nothing finite yet keeps a placeholder best_x
        _in_box(run, "book.best_x", np.asarray(to_numpy(book.best_x))[found])
    for name, v in zip(fields, values, strict=True):
        a = np.asarray(to_numpy(v))
        if a.dtype.kind == "f" and np.isnan(a).any():
            raise CheckpointError(f"state.{name}: NaN in a checkpointed state")
    # runs stopped by an interrupt, a failed objective, the user or a budget continue (re-evaluating the points
    # they were asked); the resuming call's budgets apply from here on. Converged, diverged... runs stay stopped.
    book.status[np.isin(book.status, [int(s) for s in Status if s.resumable])] = Status.RUNNING
    rules = run.rules
    if rules.max_iter is not None:
        book.status[(book.status == Status.RUNNING) & (book.nit >= rules.max_iter)] = Status.MAX_ITER
    if rules.max_evals is not None:
        book.status[(book.status == Status.RUNNING) & (book.nfev >= rules.max_evals)] = Status.MAX_EVALS
    run.state = state_type(*values)


def _converter(run: Run) -> Any:
    return _converter_for(run.problem)


def _converter_for(p: Any) -> Any:
    like = p.lo if p.lo is not None else p.x0

    def to(a: np.ndarray, float_: bool) -> Any:
        if float_:
            a = a.astype(np.dtype(str(p.dtype).replace("torch.", "")))
        if like is None or isinstance(like, np.ndarray):
            return np.array(a)
        import torch

        return torch.as_tensor(a, device=like.device)

    return to
