"""Array namespace and random samplers.

The kernels are written against a small array namespace ``xp`` (numpy, or torch when the
inputs are torch tensors) and a :class:`Sampler` that draws random numbers on the
arrays' backend. Randomness always flows from one explicit generator: never the global RNG.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


def is_torch(x: Any) -> bool:
    """True when ``x`` is a torch tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def namespace(*arrays: Any) -> Any:
    """The array module of ``arrays``: ``torch`` if any is a tensor, else ``numpy``."""
    for a in arrays:
        if is_torch(a):
            return sys.modules["torch"]
    return np


def amax(x: Any, axis: int) -> Any:
    """Maximum along ``axis`` for numpy arrays and torch tensors alike."""
    return namespace(x).amax(x, axis)


def amin(x: Any, axis: int) -> Any:
    """Minimum along ``axis`` for numpy arrays and torch tensors alike."""
    return namespace(x).amin(x, axis)


def cast(a: Any, dtype: Any) -> Any:
    """``a`` as ``dtype`` (a numpy dtype for arrays, a torch dtype for tensors)."""
    return a.astype(dtype) if isinstance(a, np.ndarray) else a.to(dtype)


def arange_like(n: int, like: Any) -> Any:
    """``0, 1, ..., n-1`` (integers) on ``like``'s backend and device."""
    return np.arange(n) if isinstance(like, np.ndarray) else namespace(like).arange(n, device=like.device)


def full_like_shape(shape: tuple[int, ...], value: float, like: Any, dtype: Any = None) -> Any:
    """An array of ``shape`` filled with ``value``, of ``like``'s backend, device and (unless given) dtype."""
    dtype = like.dtype if dtype is None else dtype
    if isinstance(like, np.ndarray):
        return np.full(shape, value, dtype=dtype)
    return namespace(like).full(shape, value, dtype=dtype, device=like.device)


def eye(d: int, like: Any) -> Any:
    """The identity (d, d) on ``like``'s backend, dtype and device."""
    if isinstance(like, np.ndarray):
        return np.eye(d, dtype=like.dtype)
    return namespace(like).eye(d, dtype=like.dtype, device=like.device)


def diagonal(a: Any) -> Any:
    """The diagonals of the last two axes, (..., d, d) -> (..., d)."""
    return np.diagonal(a, 0, -2, -1) if isinstance(a, np.ndarray) else a.diagonal(0, -2, -1)


def repeat(x: Any, n: int, axis: int) -> Any:
    """``x`` with each entry along ``axis`` (of length 1) repeated ``n`` times, as a new array."""
    if isinstance(x, np.ndarray):
        return x.repeat(n, axis=axis)
    shape = list(x.shape)
    shape[axis] = n
    return x.expand(*shape).clone()


def sort(x: Any) -> Any:
    """``x`` sorted along the last axis (the values, on both backends)."""
    return np.sort(x, -1) if isinstance(x, np.ndarray) else x.sort(-1).values


def ranks(x: Any) -> Any:
    """The rank of each entry along the last axis (0 for the smallest), as ``x``'s dtype; non-finite entries
    stay as they are (+inf, NaN: weight 0 wherever ranks replace values)."""
    if isinstance(x, np.ndarray):
        r = np.argsort(np.argsort(x, -1, kind="stable"), -1, kind="stable").astype(x.dtype)
        return np.where(np.isfinite(x), r, x)
    r = x.argsort(dim=-1, stable=True).argsort(dim=-1, stable=True).to(x.dtype)
    return r.where(x.isfinite(), x)


def take_last(a: Any, idx: Any) -> Any:
    """``a`` gathered along its last axis at the integer indices ``idx`` (same leading shape), both backends."""
    if isinstance(a, np.ndarray):  # (plain indexing: a tenth of take_along_axis's overhead on small arrays)
        return a[tuple(np.arange(n).reshape((n,) + (1,) * (a.ndim - 1 - k)) for k, n in enumerate(a.shape[:-1]))
                 + (idx,)]
    return a.gather(-1, idx)


def on_backend_of(a: Any, like: Any) -> Any:
    """``a`` (numbers, a list, an array or a tensor) as an array of ``like``'s backend and device, keeping its
    own dtype (so that its validation still sees what the caller gave)."""
    if isinstance(like, np.ndarray):
        return np.asarray(a)
    return namespace(like).as_tensor(a, device=like.device)


def where_masked(a: Any, mask: Any, value: float) -> Any:
    """``a`` with ``value`` where ``mask``: on numpy a copy only when some entry is masked; on torch without
    asking first (no host synchronisation; the fill is cheap on the device)."""
    if isinstance(a, np.ndarray):
        return np.where(mask, value, a) if mask.any() else a
    return a.masked_fill(mask, value)


def maybe(mask: Any) -> bool:
    """Whether ``mask`` may hold a True: exact (and cheap) for numpy; always True for torch, so that a kernel
    takes the general path on a device instead of synchronising with the host to ask."""
    return bool(mask.any()) if isinstance(mask, np.ndarray) else True


def eye_like(m: Any) -> Any:
    """Identity matrices (M, d, d) on the backend, dtype and device of ``m`` (M, d)."""
    mr, d = m.shape
    if isinstance(m, np.ndarray):
        return np.broadcast_to(np.eye(d, dtype=m.dtype), (mr, d, d)).copy()
    return namespace(m).eye(d, dtype=m.dtype, device=m.device).expand(mr, d, d).clone()


#: standard normals are drawn in chunks of this many numbers, chunk j from its own child stream j
CHUNK = 1 << 15
#: draws of at least this many numbers are spread over threads (results never depend on the thread count)
PARALLEL_MIN = 1 << 16
#: threads used for large draws; a performance knob only
RNG_THREADS = max(1, min(4, os.cpu_count() or 1))


def in_parallel(k: int, work: Callable[[int, int], None]) -> None:
    """``work(a, b)`` over :data:`RNG_THREADS` contiguous parts ``[a, b)`` of ``range(k)``, one on this
    thread and the rest on the pool; for numpy passes that release the GIL, each writing its own part."""
    t = max(1, min(RNG_THREADS, k))
    cuts = [k * i // t for i in range(t + 1)]
    futures = [_pool().submit(work, cuts[i], cuts[i + 1]) for i in range(1, t)]
    try:
        work(cuts[0], cuts[1])
    finally:
        for f in futures:
            f.result()


_FUSED: dict[Any, Any] = {}


def fused(fn: Any) -> Any:
    """``torch.compile(fn)``, compiled once per function: for the kernels of runs whose sampler says
    ``compiled`` (``cbopt.Torch(compile=True)``); the expression becomes one loop over the swarm."""
    if fn not in _FUSED:
        import torch

        _FUSED[fn] = torch.compile(fn, dynamic=False)
    return _FUSED[fn]


_POOL: list[ThreadPoolExecutor] = []


def _pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=max(1, RNG_THREADS - 1), thread_name_prefix="cbopt-rng"))
    return _POOL[0]


class Sampler(Protocol):
    """The random draws a kernel may make: one stream per call of ``minimize``, on the run's backend
    (:class:`NumpySampler`, :class:`TorchSampler`); every random number of a run comes from here."""

    compiled: bool  # whether kernels may use torch.compile'd fused updates
    origin: str | None  # a digest of the seeded state (checkpoints check it); None when unseeded

    def normal(self, shape: tuple[int, ...]) -> Any: ...

    def uniform(self, shape: tuple[int, ...]) -> Any: ...

    def integers(self, high: int, shape: tuple[int, ...]) -> Any: ...

    def scratch(self, key: str, like: Any) -> Any: ...

    def recycle(self, a: Any, refs: int) -> None: ...

    def snapshot(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]: ...

    def restore(self, meta: dict[str, Any], arrays: Any) -> None: ...


class NumpySampler:
    """:class:`Sampler` backed by a :class:`numpy.random.Generator`.

    Large normal draws are split into chunks of :data:`CHUNK` numbers, chunk ``j`` drawn from child
    stream ``j`` (seeded once from the generator), and the chunks are filled on :data:`RNG_THREADS`
    threads: the numbers depend on the seed and the shapes only, never on the thread count.

    It also lends kernels reusable scratch buffers (:meth:`scratch`) for temporaries of the size of
    the swarm that do not outlive one call: reusing them avoids the allocator returning memory to the
    system and faulting it back in every step, which otherwise dominates a step at ``N d ~ 1e5``.
    """

    __slots__ = ("gen", "dtype", "_scratch", "_spare", "_children", "origin")
    compiled = False  # kernels run eagerly on numpy

    def __init__(self, gen: np.random.Generator, dtype: Any = np.float64):
        self.gen = gen
        self.dtype = np.dtype(dtype)
        #: where the stream started (a digest of the seeded state): a checkpoint resumes only the same stream
        self.origin = hashlib.sha256(repr(gen.bit_generator.state).encode()).hexdigest()[:16]
        self._scratch: dict[Any, np.ndarray] = {}
        self._spare: np.ndarray | None = None
        self._children: list[np.random.Generator] = []

    def snapshot(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The stream's position as JSON-able metadata and arrays (a checkpoint stores both)."""
        return {"kind": "numpy", "root": self.gen.bit_generator.state,
                "children": [c.bit_generator.state for c in self._children]}, {}

    def restore(self, meta: dict[str, Any], arrays: Any) -> None:
        """Continue the stream from a :meth:`snapshot` (ValueError if it is not a numpy stream's)."""
        if meta.get("kind") != "numpy":
            raise ValueError("the random state is not a numpy stream")
        self.gen.bit_generator.state = meta["root"]
        self._children = []
        for st in meta["children"]:
            g = np.random.Generator(np.random.PCG64())
            g.bit_generator.state = st
            self._children.append(g)

    def recycle(self, a: Any, refs: int) -> None:
        """Offer array ``a`` for reuse as the output of the next :meth:`normal` draw of its shape.

        Taken only when nothing but the caller refers to it (``refs``: the caller's own references
        as seen by ``sys.getrefcount``), so no live state or user object can see it change.
        """
        if (
            isinstance(a, np.ndarray)
            and a.dtype == self.dtype
            and a.flags.owndata
            and a.flags.c_contiguous
            and sys.getrefcount(a) <= refs + 2  # + the argument and getrefcount's own
        ):
            self._spare = a

    def scratch(self, key: str, like: np.ndarray) -> np.ndarray:
        """An uninitialised buffer shaped like ``like``, reused across calls with the same ``key``."""
        buf = self._scratch.get(key)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = self._scratch[key] = np.empty_like(like)
        return buf

    def normal(self, shape: tuple[int, ...]) -> np.ndarray:
        spare, self._spare = self._spare, None
        out = spare if spare is not None and spare.shape == tuple(shape) else np.empty(shape, self.dtype)
        self.fill_normal(out)
        return out

    def fill_normal(self, out: np.ndarray) -> None:
        """Fill the C-contiguous float array ``out`` with standard normals, in place."""
        flat = out.reshape(-1)
        n = flat.size
        if n < PARALLEL_MIN:
            self.gen.standard_normal(dtype=out.dtype, out=flat)
            return
        k = -(-n // CHUNK)
        if len(self._children) < k:  # child streams, seeded from the generator on first need
            seeds = self.gen.integers(0, 2**63 - 1, size=k - len(self._children))
            self._children += [np.random.Generator(np.random.PCG64(int(sd))) for sd in seeds]
        gens = self._children

        def work(a: int, b: int) -> None:
            for j in range(a, b):
                gens[j].standard_normal(dtype=out.dtype, out=flat[j * CHUNK : (j + 1) * CHUNK])

        in_parallel(k, work)

    def uniform(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.gen.random(shape, dtype=np.float64).astype(self.dtype, copy=False)

    def integers(self, high: int, shape: tuple[int, ...]) -> np.ndarray:
        return self.gen.integers(0, high, size=shape)


class TorchSampler:
    """:class:`Sampler` for torch runs: every draw is made where the run lives, with its dtype.

    On a GPU the draws come from a :class:`torch.Generator` on the device. On the CPU, by default, they
    come from the same chunked PCG64 streams as numpy runs (:class:`NumpySampler`), written straight
    into the tensor's memory: several times faster than torch's CPU normal generator in float64
    (``benchmarks/step_time.py`` prints the ratio), and a numpy
    and a torch-CPU run with the same seed see the same random numbers. Pass a ``torch.Generator``
    as ``rng`` to draw with torch on the CPU too.
    """

    __slots__ = ("gen", "dtype", "device", "host", "compiled", "_scratch", "_spare", "origin")

    def __init__(self, gen: Any, dtype: Any, device: Any, host: NumpySampler | None = None, compiled: bool = False):
        self.compiled = compiled  # kernels may use torch.compile'd fused updates
        self.gen = gen
        self.origin = host.origin if host is not None else hashlib.sha256(
            gen.get_state().cpu().numpy().tobytes()).hexdigest()[:16]
        self.dtype = dtype
        self.device = device
        self.host = host
        self._scratch: dict[Any, Any] = {}
        self._spare: Any = None

    def snapshot(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The stream's position: the host stream's (torch-CPU runs draw from numpy) or the generator's bytes."""
        if self.host is not None:
            return self.host.snapshot()
        return {"kind": "torch"}, {"sampler_torch_state": to_numpy(self.gen.get_state())}

    def restore(self, meta: dict[str, Any], arrays: Any) -> None:
        """Continue the stream from a :meth:`snapshot` (ValueError if it is of another kind)."""
        if self.host is not None:
            self.host.restore(meta, arrays)
            return
        if meta.get("kind") != "torch" or "sampler_torch_state" not in arrays:
            raise ValueError("the random state is not a torch generator state")
        torch = sys.modules["torch"]
        self.gen.set_state(torch.as_tensor(arrays["sampler_torch_state"], dtype=torch.uint8))

    def recycle(self, a: Any, refs: int) -> None:
        """On the CPU, offer tensor ``a`` for reuse by the next :meth:`normal` draw of its shape.

        Taken only when neither another Python reference nor another tensor/array view shares its
        memory (CUDA needs none of this: its caching allocator reuses freed blocks).
        """
        use_count = getattr(sys.modules["torch"]._C, "_storage_Use_Count", None)
        if (
            self.host is not None
            and use_count is not None
            and is_torch(a)
            and a.dtype == self.dtype
            and a.device.type == "cpu"
            and a._base is None
            and a.is_contiguous()
            and a.storage_offset() == 0
            and sys.getrefcount(a) <= refs + 2
            and use_count(a.untyped_storage()._cdata) <= 2  # the tensor + the storage handle asked for here
        ):
            self._spare = a

    def scratch(self, key: str, like: Any) -> Any:
        buf = self._scratch.get(key)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype or buf.device != like.device:
            buf = self._scratch[key] = sys.modules["torch"].empty_like(like)
        return buf

    def normal(self, shape: tuple[int, ...]) -> Any:
        torch = sys.modules["torch"]
        if self.host is not None:
            spare, self._spare = self._spare, None
            shape = tuple(shape)
            out = spare if spare is not None and tuple(spare.shape) == shape else torch.empty(shape, dtype=self.dtype)
            self.host.fill_normal(out.numpy())
            return out
        return torch.randn(tuple(shape), generator=self.gen, dtype=self.dtype, device=self.device)

    def uniform(self, shape: tuple[int, ...]) -> Any:
        torch = sys.modules["torch"]
        if self.host is not None:
            return torch.from_numpy(self.host.uniform(shape))
        return torch.rand(tuple(shape), generator=self.gen, dtype=self.dtype, device=self.device)

    def integers(self, high: int, shape: tuple[int, ...]) -> Any:
        torch = sys.modules["torch"]
        if self.host is not None:
            return torch.from_numpy(self.host.integers(high, shape))
        return torch.randint(0, high, tuple(shape), generator=self.gen, device=self.device)


_DTYPES = {"float32": "float32", "float64": "float64", "single": "float32", "double": "float64"}


def _dtype_name(dtype: Any) -> str:
    """``"float32"`` or ``"float64"`` from a numpy dtype, a torch dtype or a string."""
    if is_torch_dtype(dtype):
        name = str(dtype).removeprefix("torch.")
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype)
    name = _DTYPES.get(name, name)
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}")
    return name


def is_torch_dtype(dtype: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(dtype, torch.dtype)


@dataclass(frozen=True)
class Backend:
    """Where a run lives: ``numpy`` (device None) or ``torch`` on ``device``, with one floating ``dtype``."""

    name: str  # "numpy" | "torch"
    dtype: Any  # numpy dtype or torch dtype
    device: Any = None  # torch.device for torch runs

    @property
    def xp(self) -> Any:
        return np if self.name == "numpy" else sys.modules["torch"]

    def asarray(self, a: Any) -> Any:
        """``a`` (numbers, numpy array or tensor) as an array of this backend, dtype and device."""
        if a is None:
            return None
        if self.name == "numpy":
            return np.asarray(to_numpy(a) if is_torch(a) else a, dtype=self.dtype)
        return self.xp.as_tensor(a, dtype=self.dtype, device=self.device)

    def sampler(self, rng: Any, compile: bool = False) -> Any:
        """The sampler of this backend, seeded from ``rng`` (see :func:`resolve_backend`). Its ``origin`` names the
        stream it starts (None for fresh entropy, ``rng=None``: a checkpoint continues the stream it holds)."""
        s = self._sampler(rng, compile)
        if rng is None:
            s.origin = None
        return s

    def _sampler(self, rng: Any, compile: bool = False) -> Any:
        if self.name == "numpy":
            if is_torch_generator(rng):
                raise TypeError("rng: a torch.Generator drives torch runs only; pass an int seed for a numpy run")
            return NumpySampler(as_generator(rng), self.dtype)
        torch = self.xp
        if is_torch_generator(rng):
            if rng.device.type != self.device.type:
                raise ValueError(f"rng: the torch.Generator lives on {rng.device}, the run on {self.device}")
            return TorchSampler(rng, self.dtype, self.device, compiled=compile)
        if self.device.type == "cpu":  # the host streams, written into the tensors (see TorchSampler)
            np_dtype = np.float32 if self.dtype == torch.float32 else np.float64
            host = NumpySampler(as_generator(rng), np_dtype)
            return TorchSampler(None, self.dtype, self.device, host=host, compiled=compile)
        # an int seed seeds the device generator; a numpy Generator (or None) hands it one draw
        seed = int(rng) if _is_seed(rng) else int(as_generator(rng).integers(0, 2**63 - 1))
        gen = torch.Generator(device=self.device).manual_seed(seed)
        return TorchSampler(gen, self.dtype, self.device, compiled=compile)


def _is_seed(rng: Any) -> bool:
    return isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and bool(rng >= 0)


def is_torch_generator(rng: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(rng, torch.Generator)


@dataclass(frozen=True)
class Numpy:
    """``backend=`` of :func:`cbopt.minimize`: a numpy run of floating type ``dtype`` (default: that of
    ``x0``/``bounds`` when they are float arrays, else float64)."""

    dtype: Any = None


@dataclass(frozen=True)
class Torch:
    """``backend=`` of :func:`cbopt.minimize`: a torch run on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``;
    default: that of tensor inputs, else the CPU) of floating type ``dtype``; ``compile=True`` fuses the
    particle update with ``torch.compile`` (seconds of compilation, then fewer passes over the swarm)."""

    device: Any = None
    dtype: Any = None
    compile: bool = False

    def __post_init__(self) -> None:
        from .validation import flag

        flag("compile", self.compile)


def as_backend(backend: Any) -> Numpy | Torch | None:
    """``backend=``: None (from the inputs), ``"numpy"``, ``"torch"``, a torch device name or device
    (``"cuda"``), or :class:`Numpy` / :class:`Torch`."""
    if backend is None or isinstance(backend, (Numpy, Torch)):
        return backend
    if isinstance(backend, str):
        name = backend.lower()
        return Numpy() if name == "numpy" else Torch() if name == "torch" else Torch(device=backend)
    if type(backend).__name__ == "device" and type(backend).__module__ == "torch":
        return Torch(device=backend)
    raise TypeError(f"backend: expected None, 'numpy', 'torch', a torch device ('cuda'), cbopt.Numpy(...) or "
                    f"cbopt.Torch(...), got {backend!r}")


def run_backend(backend: Any, *inputs: Any) -> tuple[Backend, Numpy | Torch | None]:
    """The backend of a run from ``backend=`` (see :func:`as_backend`) and its inputs (None entries skipped):
    ``(resolved, asked)``, ``asked`` being what ``backend=`` named (None: from the inputs)."""
    where = as_backend(backend)
    device = where.device if isinstance(where, Torch) else None
    resolved = resolve_backend(*[a for a in inputs if a is not None], dtype=None if where is None else where.dtype,
                               device=device, torch=isinstance(where, Torch))
    if isinstance(where, Numpy) and resolved.name != "numpy":
        raise ValueError("backend=cbopt.Numpy(...): x0 and bounds must be numpy arrays or numbers, not tensors")
    return resolved, where


def resolve_backend(*inputs: Any, dtype: Any = None, device: Any = None, torch: bool = False) -> Backend:
    """The backend of a run from its inputs (x0, bounds) and the explicit ``dtype``/``device``.

    * torch when asked (``torch=True``), any input is a tensor, ``device`` is given, or ``dtype`` is a torch
      dtype; numpy otherwise;
    * the device: ``device``, else that of the first tensor input, else the CPU;
    * the dtype: ``dtype``, else that of the first floating input array/tensor, else float64.
    """
    tensors = [a for a in inputs if is_torch(a)]
    use_torch = torch or bool(tensors) or device is not None or is_torch_dtype(dtype)
    if dtype is not None:
        name = _dtype_name(dtype)
    else:
        floats = [a for a in inputs if is_torch(a) and a.is_floating_point()]
        floats += [a for a in inputs if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
        name = _dtype_name(floats[0].dtype) if floats and _dtype_name_ok(floats[0].dtype) else "float64"
    if not use_torch:
        return Backend("numpy", np.dtype(name))
    from ._extras import require

    tmod = require("torch", "torch runs (tensor inputs or backend=)")
    if device is None:
        device = tensors[0].device if tensors else "cpu"
    return Backend("torch", getattr(tmod, name), torch_device(device))


def torch_device(device: Any) -> Any:
    """``device`` as a ``torch.device`` this machine has: a ValueError for a name torch does not know, a
    RuntimeError when CUDA is absent or the index is beyond the devices present (not torch's AssertionError)."""
    import torch as tmod

    try:
        dev = tmod.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: not a torch device: {device!r}") from exc
    if dev.type == "cuda":
        if not tmod.cuda.is_available():
            raise RuntimeError(f"backend device {str(device)!r}: CUDA is not available in this torch build/machine")
        if dev.index is None:
            dev = tmod.device("cuda", tmod.cuda.current_device())
        elif dev.index >= tmod.cuda.device_count():
            raise RuntimeError(f"device {str(device)!r}: this machine has {tmod.cuda.device_count()} CUDA device(s)")
    elif dev.type == "meta":
        raise ValueError(f"device {str(device)!r}: meta tensors hold no values to optimize; use 'cpu' or 'cuda'")
    return dev


def _dtype_name_ok(dtype: Any) -> bool:
    try:
        _dtype_name(dtype)
    except ValueError:
        return False
    return True


def as_generator(rng: Any) -> np.random.Generator:
    """Normalise ``rng`` (None, int, SeedSequence or Generator) to a numpy Generator (SPEC 7)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.RandomState):
        raise TypeError("rng: numpy.random.RandomState is legacy; pass an int seed or a numpy.random.Generator")
    if rng is None or isinstance(rng, (int, np.integer, np.random.SeedSequence)):
        if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng < 0:
            raise ValueError(f"rng: a seed must be non-negative, got {rng}")
        if isinstance(rng, bool):
            raise TypeError("rng: expected an int seed, a numpy Generator or None, got a bool")
        return np.random.default_rng(rng)
    raise TypeError(f"rng: expected an int seed, a numpy.random.Generator or None, got {type(rng).__name__}")


def take_along(a: Any, idx: Any) -> Any:
    """``a[m, idx[m]]`` for every run m: ``a`` (M, N) or (M, N, d), ``idx`` (M, B) integer indices."""
    if isinstance(a, np.ndarray):  # (plain indexing: a tenth of take_along_axis's overhead on small arrays)
        return a[np.arange(len(a))[:, None], idx]
    return namespace(a).take_along_dim(a, idx[..., None] if a.ndim == 3 else idx, dim=1)


def put_along(a: Any, idx: Any, values: Any) -> Any:
    """A copy of ``a`` with ``a[m, idx[m]] = values[m]`` for every run m (the inverse of :func:`take_along`)."""
    xp = namespace(a)
    if a.ndim == 3:
        idx = idx[..., None]
    if xp is np:
        out = a.copy()
        np.put_along_axis(out, idx, values, axis=1)
        return out
    return a.scatter(1, idx.expand_as(values), values)


def median(x: Any) -> Any:
    """Median over the last axis, the midpoint of the two middle values for an even count, on both backends (so
    that ``spread`` and the ``xtol`` rule mean the same on numpy and torch)."""
    n = x.shape[-1]
    if n < 3:
        return x.mean(-1)
    if namespace(x) is not np:
        if n % 2:
            return x.median(-1).values
        return 0.5 * (x.kthvalue(n // 2, -1).values + x.kthvalue(n // 2 + 1, -1).values)
    k = n // 2  # np.median without its per-call overhead (~40 us, a noticeable share of a small step)
    if n % 2:
        return np.partition(x, k, axis=-1)[..., k]
    p = np.partition(x, (k - 1, k), axis=-1)
    return 0.5 * (p[..., k - 1] + p[..., k])


def as_like(a: np.ndarray, like: Any) -> Any:
    """The host array ``a`` on ``like``'s backend, dtype and device."""
    if isinstance(like, np.ndarray):
        return np.asarray(a, dtype=like.dtype)
    import torch

    return torch.as_tensor(a, dtype=like.dtype, device=like.device)


def to_numpy(a: Any) -> np.ndarray:
    """A host numpy view/copy of ``a`` (numpy arrays pass through)."""
    return a if isinstance(a, np.ndarray) else a.detach().cpu().numpy()
