"""The method protocol and the registry that drives ``minimize``, the CLI and the contract tests.

A method is a handful of pure functions over an immutable state (``M`` independent runs of ``N``
particles in ``d`` dimensions)::

    X0, aux0      = spec.init_population(params, problem, sampler)      # (M, N, d) and what init needs
    state         = spec.init(params, problem, sampler, X0, E0, aux0)    # E0 = f(X0), (M, N)
    X, aux        = spec.ask(state, params, problem, sampler, it)        # points to evaluate (M, n, d)
    state         = spec.tell(state, params, problem, sampler, it, X, E, aux)  # E = f(X), (M, n)
    codes         = spec.stop(state, params)                             # optional: (M,) method criteria

The sampler draws every random number and lends scratch buffers for temporaries. ``aux`` carries what a
step needs from its ask to its tell (e.g. the drawn deviations before the boundary moved them).

Splitting a step at the evaluation lets one driver own counting, the non-finite policy, best-so-far,
termination and callbacks, and lets ask/tell interfaces reuse the same kernels. Every state is a
``NamedTuple`` whose array fields carry the run axis ``M`` first and provides ``x``, ``energy``,
``consensus`` (M, d) and ``spread`` (M,) (median distance of the particles to the consensus point).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from .._backend import PARALLEL_MIN, Sampler, in_parallel, is_torch
from ..validation import build_options


@dataclass(frozen=True)
class Problem:
    """What a method needs to know of the problem: dimension, runs, initial region, bounds.

    ``lo``/``hi`` are the search box (finite arrays (d,)) or None; ``x0`` is a centre (d,) or None;
    ``init_scale`` is the standard deviation of the initial Gaussian cloud around ``x0``.
    """

    dim: int
    n_runs: int
    lo: Any = None
    hi: Any = None
    x0: Any = None
    init_scale: Any = 1.0
    dtype: Any = np.float64
    project: Callable[[Any], Any] | None = None  # post-map onto a constraint manifold (e.g. the sphere)
    population: Any = None  # an explicit initial swarm (M, N, d), e.g. freshly initialised networks
    integers: Any = None  # (d,) 1.0 at integer coordinates (rounded where evaluated), else 0.0; None: none
    constraints: str = ""  # the constraints, described for a checkpoint's fingerprint ("" for none)


class InitPopulation(Protocol):
    """``(X0 (M, N, d), aux0) = init_population(params, problem, sampler)``."""

    def __call__(self, params: Any, problem: Problem, sampler: Sampler, /) -> tuple[Any, Any]: ...


class Init(Protocol):
    """``state = init(params, problem, sampler, X0, E0, aux0)``."""

    def __call__(self, params: Any, problem: Problem, sampler: Sampler, x: Any, energy: Any, aux: Any, /) -> Any: ...


class Ask(Protocol):
    """``(X (M, n, d), aux) = ask(state, params, problem, sampler, it)``."""

    def __call__(self, state: Any, params: Any, problem: Problem, sampler: Sampler, it: int, /) -> tuple[Any, Any]: ...


class Tell(Protocol):
    """``state = tell(state, params, problem, sampler, it, X, E, aux)``."""

    def __call__(self, state: Any, params: Any, problem: Problem, sampler: Sampler, it: int, x: Any, energy: Any,
                 aux: Any, /) -> Any: ...


#: the kernels' leading parameters, in the one order every kernel takes them (the contract test checks it)
KERNEL_ORDER = {
    "init_population": ("params", "problem", "sampler"),
    "init": ("params", "problem", "sampler", "x", "energy"),
    "ask": ("state", "params", "problem", "sampler", "it"),
    "tell": ("state", "params", "problem", "sampler", "it", "x", "energy"),
}


@dataclass(frozen=True)
class Restarts:
    """What a method with its own termination criteria tells the restart policies (:mod:`cbopt.restarts`), so
    that it takes part in BIPOP and the default portfolio without the policies knowing it.

    ``sigma0(params, problem) -> float``: its default initial step size (BIPOP's small runs scale it down);
    ``converged``: its criteria after which a run counts as converged (independent runs agreeing on a value,
    the portfolio's vote on an axis-aligned problem); ``step``, ``reference``, ``max_steps``: the names of its
    options for the initial step size, a value reached elsewhere (a run clearly beaten by it stops) and a cap
    on its steps; ``noisy``: the options of its runs once the objective is found to be noisy
    (:mod:`cbopt.noisy`), applied to the run under way too; ``budget``: the options its runs take for the
    sequence's evaluation budget (a restart sequence applies them to every run of the method, under the
    user's options); ``plateau``: the options of the default portfolio's runs once one run ended on a
    plateau, as ``on_plateau(params, state) -> bool`` tells.
    """

    sigma0: Callable[[Any, Problem], float]
    converged: tuple[str, ...]
    step: str = "sigma0"
    reference: str = "f_ref"
    max_steps: str = "max_gen"
    noisy: dict[str, Any] = field(default_factory=dict)
    #: ``budget(max_evals, dim) -> options``: what its runs should set for a sequence of that budget
    budget: Callable[[float | None, int], dict[str, Any]] | None = None
    plateau: dict[str, Any] = field(default_factory=dict)
    on_plateau: Callable[[Any, Any], bool] | None = None


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its kernels, its parameter type and what it can do."""

    name: str
    params: type
    state: type  # the NamedTuple its kernels carry (checkpoints rebuild it)
    init_population: InitPopulation
    init: Init
    ask: Ask
    tell: Tell
    summary: str
    reference: str = ""
    needs_gradient: bool = False
    supports_constraints: bool = False
    batched: bool = True
    backends: tuple[str, ...] = ("numpy", "torch")
    extra: dict[str, Any] = field(default_factory=dict)
    post: Callable[..., dict[str, Any]] | None = None  # post(x (N, d), energy (N,), params) -> extra result fields
    # the method's own termination criteria: stop(state, params) -> (M,) integer codes, 0 while running, else
    # k for criteria[k - 1] = (name, status name); the driver ends those runs with that status
    stop: Callable[..., Any] | None = None
    criteria: tuple[tuple[str, str], ...] = ()
    # the population can be resized through options={"n_particles": n} (restart policies grow it); False for
    # methods whose number of points per step follows from other options (a zeroth-order stencil)
    resizable: bool = True
    # an evolution strategy that draws its first population around x0 itself (an explicit population is refused):
    # cbopt.nn starts it at the network's weights with init_scale as its step size
    samples_population: bool = False
    # points of the first population when not n_particles (a zeroth-order method starts from one point); every
    # later step evaluates params.points_per_step (default n_particles): checkpoints hold a run's counts to that
    initial_points: int | None = None
    # floats a run's state holds per dimension beyond the swarm's few (N, d) arrays, e.g. a covariance's d x d:
    # extra_floats(params, d); setup refuses, before allocating, a run that cannot fit in this machine's memory
    extra_floats: Callable[[Any, int], int] | None = None
    # how far from axis-aligned the search distribution a finished run learned is, as the root-mean-square
    # off-diagonal correlation in [0, 1]: axis_correlation(params, state) -> float, or None when the method
    # (or its model) does not learn correlations; the restart portfolio reads it to decide on its CBO regime
    axis_correlation: Callable[[Any, Any], float | None] | None = None
    # how the method takes part in BIPOP and the default portfolio (None: only in IPOP, which resizes it)
    restarts: Restarts | None = None

    def make_params(self, options: dict[str, Any] | None, dim: int) -> Any:
        """Build this method's typed params from an options dict, with clear errors on unknown keys."""
        params = build_options(self.params, options, f"method {self.name!r}")
        resolve = getattr(self.params, "resolved", None)
        return resolve(params, dim) if resolve is not None else params


_REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` to the registry (names are unique)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"method {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_method(name: str | MethodSpec) -> MethodSpec:
    """Look a method up by name; the error lists the registered ones."""
    if isinstance(name, MethodSpec):
        return name
    if not isinstance(name, str):
        raise TypeError(f"method: expected a method name (str), got {type(name).__name__}")
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise ValueError(f"method: unknown method {name!r}; available: {sorted(_REGISTRY)}") from None


def methods() -> dict[str, MethodSpec]:
    """All registered methods by name, with their capability metadata (``cbopt.methods()``)."""
    return dict(_REGISTRY)


def initial_population(problem: Problem, n: int, sampler: Sampler) -> Any:
    """Shared initialisation: ``problem.population`` when given, else uniform in the box, or
    ``x0 + init_scale * N(0, I)`` (reflected into the box)."""
    shape = (problem.n_runs, n, problem.dim)
    if problem.population is not None:
        if tuple(problem.population.shape) != shape:
            raise ValueError(f"initial population: expected shape {shape}, got {tuple(problem.population.shape)}")
        x = problem.population
    elif problem.x0 is not None:
        x = problem.x0 + problem.init_scale * sampler.normal(shape)
        if problem.lo is not None:
            x = reflect(x, problem.lo, problem.hi)
    elif problem.lo is None:
        raise ValueError("give x0 or bounds to define where the particles start")
    else:
        x = problem.lo + (problem.hi - problem.lo) * sampler.uniform(shape)
    return x if problem.project is None else problem.project(x)


#: box handling after a move: reflect at the walls, clip onto them, or none (see :func:`apply_boundary`)
Boundary = Literal["reflect", "clip"] | None
BOUNDARIES = ("reflect", "clip", None)


def check_boundary(mode: Any) -> None:
    """Validate a method's ``boundary`` option (one message for every method)."""
    if mode not in BOUNDARIES:
        raise ValueError(f"boundary: expected 'reflect' (default), 'clip' or None (free dynamics), got {mode!r}")


def _fold(x: Any, lo: Any, hi: Any) -> Any:
    width = hi - lo
    y = (x - lo) % (2 * width)
    return lo + (width - abs(y - width))


def fold_expr(x: Any, lo: Any, hi: Any) -> Any:
    """The fold of :func:`reflect` written for ``torch.compile`` (torch tensors): the remainder as
    ``u - 2w floor(u / 2w)``, which vectorises where the float ``%`` does not. A point inside comes back as
    ``lo + (w - |(x - lo) - w|)``, bit for bit as :func:`reflect` returns it; a point outside lands where
    :func:`reflect` puts it up to rounding."""
    width = hi - lo
    u = x - lo
    r = u - (2 * width) * (u / (2 * width)).floor()
    return lo + (width - (r - width).abs())


def reflect(x: Any, lo: Any, hi: Any, inplace: bool = False) -> Any:
    """Fold ``x`` into ``[lo, hi]`` by reflection at the faces, with period ``2 (hi - lo)``: a point any
    distance outside lands inside, and nothing sticks to a face.

    The value is the fold ``lo + (w - |((x - lo) mod 2w) - w|)`` everywhere, bit for bit, so a point inside
    comes back as ``lo + (x - lo)`` in float arithmetic: rounded to the grid of the box's width. That rounding
    is part of the default's measured behaviour (BBOB f23, Katsuura, d = 10: 5/5 instances solved with it, 0/5
    with the inside returned untouched). numpy skips the float ``%`` (ten simple passes, once most of a CBO
    step) for the coordinates inside, and computes it only for those outside when they are few; ``inplace``:
    the caller owns ``x`` (a freshly moved swarm) and numpy may write the result into it. torch folds every
    coordinate with no data-dependent branch, so a CUDA step never waits for the host."""
    if is_torch(x):
        return _fold(x, lo, hi)
    x = np.asarray(x)
    k, at = _outside(x, lo, hi)
    if 16 * k > x.size:  # many outside (the first steps): the fold as one expression
        return _fold(x, lo, hi)
    if at is not None:
        folded = _fold(x[at], np.broadcast_to(lo, x.shape)[at], np.broadcast_to(hi, x.shape)[at])
    width = hi - lo
    own = inplace and isinstance(x, np.ndarray) and x.flags.writeable
    y = np.subtract(x, lo, out=x if own else None)  # inside, (x - lo) mod 2w is x - lo itself
    y -= width
    np.abs(y, out=y)
    np.subtract(width, y, out=y)
    y += lo
    if at is not None:
        y[at] = folded
    return y


#: from this many coordinates on, :func:`_outside` looks for the columns holding points outside first (below it
#: the masks over everything are as fast: a (1000, 100) swarm took 1.2 times as long, a (1000, 1000) one 0.75)
OUTSIDE_BY_COLUMNS = 1 << 18


def _outside(x: np.ndarray, lo: Any, hi: Any) -> tuple[int, Any]:
    """``(k, at)``: how many coordinates of ``x`` lie outside ``[lo, hi]`` (NaN counts as inside) and, unless
    more than a sixteenth do, where (an index tuple; None when none do). On a large swarm and bounds that are
    scalars or (d,), a minimum and a maximum over the points name the columns that hold any, and the masks
    cover those columns only (a swarm that has converged inside needs no mask)."""
    if x.ndim and x.size >= OUTSIDE_BY_COLUMNS and np.ndim(lo) <= 1 and np.ndim(hi) <= 1:
        points = tuple(range(x.ndim - 1))
        cols = np.flatnonzero((np.fmin.reduce(x, axis=points) < lo) | (np.fmax.reduce(x, axis=points) > hi))
        if 4 * cols.size <= x.shape[-1]:
            if cols.size == 0:
                return 0, None
            d = x.shape[-1:]
            sub = x[..., cols]
            mask = np.less(sub, np.broadcast_to(lo, d)[cols])
            mask |= np.greater(sub, np.broadcast_to(hi, d)[cols])
            where = np.nonzero(mask)
            return len(where[0]), (*where[:-1], cols[where[-1]])
    outside = np.less(x, lo)
    outside |= np.greater(x, hi, out=np.empty_like(outside))
    k = int(np.count_nonzero(outside))
    if not k or 16 * k > x.size:
        return k, None
    return k, np.unravel_index(np.flatnonzero(outside), x.shape)  # one scan of the mask


def clip_into(x: np.ndarray, lo: Any, hi: Any) -> np.ndarray:
    """``np.clip(x, lo, hi, out=x)``, the same values, as a maximum and a minimum: with per-coordinate bounds
    numpy's clip takes about 2.5 times as long."""
    np.maximum(x, lo, out=x)
    return np.minimum(x, hi, out=x)


def placed(m: Any, s: Any, y: Any, problem: Problem, mode: str | None) -> Any:
    """``m + s y`` for centres ``m`` (M, d), step sizes ``s`` (M,) and deviations ``y`` (M, n, d), in a fresh
    array, then :func:`apply_boundary`'s box handling. A large numpy array without a projection is computed on
    threads, columns apart: each value as one thread computes it (the same operations in the same order)."""
    if not isinstance(y, np.ndarray) or y.size < PARALLEL_MIN or problem.project is not None:
        x = s[:, None, None] * y
        x += m[:, None, :]
        return apply_boundary(x, problem, mode, inplace=True)
    x = np.empty(y.shape, np.result_type(m, s, y))
    lo, hi = problem.lo, problem.hi

    def part(a: int, b: int) -> None:
        c = slice(a, b)
        xc = x[..., c]
        np.multiply(s[:, None, None], y[..., c], out=xc)
        xc += m[:, None, c]
        if mode == "clip" and lo is not None:
            clip_into(xc, lo[c], hi[c])
        elif mode == "reflect" and lo is not None:
            out = reflect(xc, lo[c], hi[c], inplace=True)
            if out is not xc:  # the fold of many points outside is a new array
                xc[...] = out

    in_parallel(y.shape[-1], part)
    return x


def apply_boundary(x: Any, problem: Problem, mode: str | None, inplace: bool = False) -> Any:
    """The post-map after a move: the problem's projection onto a constraint manifold, if any, then the
    box handling ``"reflect"`` (default: fold back in), ``"clip"`` (onto the face) or ``None`` (free).
    ``inplace``: ``x`` is the caller's own fresh array, which the reflection or clipping may overwrite."""
    if problem.project is not None:
        x = problem.project(x)
    if mode is None or problem.lo is None:
        return x
    own = inplace and problem.project is None
    if mode == "clip":
        if own and isinstance(x, np.ndarray) and x.flags.writeable:
            return clip_into(x, problem.lo, problem.hi)
        return x.clip(problem.lo, problem.hi)
    return reflect(x, problem.lo, problem.hi, inplace=own)
