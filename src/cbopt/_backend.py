"""Array namespace and random samplers.

The kernels are written against a small array namespace ``xp`` (numpy, or torch when the
inputs are torch tensors) and a :class:`Sampler` that draws random numbers on the
arrays' backend. Randomness always flows from one explicit generator: never the global RNG.
"""

from __future__ import annotations

import sys
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


class Sampler(Protocol):
    """The random draws a kernel may make; one per run of ``minimize``."""

    def normal(self, shape: tuple[int, ...]) -> Any: ...

    def uniform(self, shape: tuple[int, ...]) -> Any: ...

    def integers(self, high: int, shape: tuple[int, ...]) -> Any: ...

    def scratch(self, key: str, like: Any) -> Any: ...


class NumpySampler:
    """:class:`Sampler` backed by a :class:`numpy.random.Generator`.

    It also lends kernels reusable scratch buffers (:meth:`scratch`) for temporaries of the size of
    the swarm that do not outlive one call: reusing them avoids the allocator returning memory to the
    system and faulting it back in every step, which otherwise dominates a step at ``N d ~ 1e5``.
    """

    __slots__ = ("gen", "dtype", "_scratch", "_spare")

    def __init__(self, gen: np.random.Generator, dtype: Any = np.float64):
        self.gen = gen
        self.dtype = np.dtype(dtype)
        self._scratch: dict[Any, np.ndarray] = {}
        self._spare: np.ndarray | None = None

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
        if spare is not None and spare.shape == tuple(shape):
            return self.gen.standard_normal(dtype=self.dtype, out=spare)
        if self.dtype in (np.float32, np.float64):
            return self.gen.standard_normal(shape, dtype=self.dtype)
        return self.gen.standard_normal(shape).astype(self.dtype)

    def uniform(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.gen.random(shape, dtype=np.float64).astype(self.dtype, copy=False)

    def integers(self, high: int, shape: tuple[int, ...]) -> np.ndarray:
        return self.gen.integers(0, high, size=shape)


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
    xp = namespace(a)
    if a.ndim == 3:
        idx = idx[..., None]
    if xp is np:
        return np.take_along_axis(a, idx, axis=1)
    return xp.take_along_dim(a, idx, dim=1)


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
    """Median over the last axis (numpy: midpoint of the two middle values; torch: the lower one)."""
    if namespace(x) is np:
        return np.median(x, -1)
    return x.median(-1).values


def to_numpy(a: Any) -> np.ndarray:
    """A host numpy view/copy of ``a`` (numpy arrays pass through)."""
    return a if isinstance(a, np.ndarray) else a.detach().cpu().numpy()
