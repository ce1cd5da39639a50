"""Coordinate grid search (``method="coordinate"``): a one-dimensional global search on every coordinate at
once, in one batch per step, for separable functions.

Each step evaluates ``x_k`` and, for every coordinate i, ``B K`` points that differ from ``x_k`` in
coordinate i alone (``s_i``: the coordinate's span, the box's width or 4 init_scale)::

    strata steps s < S:  coordinate i at lo_i + s_i (s + S q + u_is) / T,  q < B K,  T = S B K   (stratified)
                         then c_ib: the B lowest local minima of the T strata, w_ib = s_i / T   (candidate basins)
    later steps:         coordinate i at c_ib + w_ib o_l,  o = linspace(-1, 1, K)   (o_l = 0: c_ib itself)
                         c_ib <- its grid's best point; w_ib <- 2 w_ib / (K - 1) when that is c_ib (pattern search)
                         x_{k+1},i = coordinate i's best candidate where f there is below f(x_k), all i at once

On an additively separable ``f`` the best point of coordinate i's points is that coordinate's own best
whatever the other coordinates are, so taking all of them at once is a step of ``d`` one-dimensional
global searches (B basins per coordinate refined side by side, so that a basin sampled far from its
bottom is not lost to a shallower one sampled near its own). If ``f`` is not separable the combined
point can be worse than the best single change: then the search goes on from that single change.

With ``separable_only`` the first step tests separability instead: the mixed differences
``f(x + a e_i + b e_j) - f(x + a e_i) - f(x + b e_j) + f(x)`` of pairs of coordinates are 0 on a separable
``f``; if one is not (beyond rounding), the run stops at once (``coupled``, STAGNATION). The test draws
nothing from the random stream. The default's restart portfolio runs it so on problems its runs found
axis-aligned (:mod:`cbopt.restarts`). Reference: Wright (2015), Coordinate descent algorithms,
Mathematical Programming 151, doi:10.1007/s10107-015-0892-3 (the batched grids over all coordinates and
basins, and the test, are cbopt's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._backend import Sampler, amax, amin, arange_like, cast, namespace, repeat, take_last
from ..validation import flag, number
from ._base import Boundary, MethodSpec, Problem, apply_boundary, check_boundary, register
from .ach import start_points


@dataclass(frozen=True)
class CoordinateParams:
    """Options of the coordinate grid search."""

    grid: int = 256  # strata per coordinate in all (spread over S = ceil(grid / (B K)) steps)
    basins: int = 3  # B, candidate basins kept per coordinate
    points: int = 7  # K, points of each candidate's grid (odd: its centre included)
    tolx: float = 1e-9  # stop (CONVERGED) once every coordinate's best candidate grid is this narrow (of s_i)
    separable_only: bool = False  # first test separability; stop (STAGNATION) if f is not separable
    boundary: Boundary = "reflect"

    def resolved(self, dim: int) -> CoordinateConfig:
        number("grid", self.grid, at_least=2, integer=True)
        number("basins", self.basins, at_least=1, integer=True)
        number("points", self.points, at_least=3, integer=True)
        if self.points % 2 == 0:
            raise ValueError(f"points: must be odd (each grid holds its centre), got {self.points}")
        number("tolx", self.tolx, above=0, below=1)
        flag("separable_only", self.separable_only)
        check_boundary(self.boundary)
        per = self.basins * self.points
        return CoordinateConfig(int(self.basins), int(self.points), math.ceil(self.grid / per), float(self.tolx),
                                bool(self.separable_only), self.boundary, 1 + dim * per)


@dataclass(frozen=True)
class CoordinateConfig:
    """The resolved options; ``n_particles``: the points of every step, ``1 + d B K``."""

    basins: int
    points: int
    strata_steps: int  # S
    tolx: float
    separable_only: bool
    boundary: Boundary
    n_particles: int


class CoordinateState(NamedTuple):
    x: Any  # (M, n, d) the points evaluated last
    energy: Any  # (M, n)
    consensus: Any  # (M, d) the current point x_k
    spread: Any  # (M,) the widest best-candidate grid, in the span's units
    cand: Any  # (M, d, B) candidate values of each coordinate (their basins)
    cval: Any  # (M, d, B) f there (inf: none yet)
    width: Any  # (M, d, B) their grids' half-widths
    single: Any  # (M, d) the best point one coordinate away from x_k, of the last step (or x_k)
    fsingle: Any  # (M,) its value
    rel: Any  # (M,) the widest best-candidate grid as a share of its coordinate's span
    coupled: Any  # (M,) bool: the separability test failed
    strata: Any  # (M, d, T) the strata's values of each coordinate, in order (filled over the strata steps)
    fstrata: Any  # (M, d, T) f there


def _span(problem: Problem, like: Any) -> Any:
    """Each coordinate's span (d,): the box's width, or 4 init_scale around x0 without a box."""
    if problem.lo is not None:
        return problem.hi - problem.lo
    return 4.0 * problem.init_scale + 0 * like[0]


def _phase(params: CoordinateConfig, it: int) -> tuple[str, int]:
    """What step ``it`` (1, 2, ...) does: ``("test", 0)``, ``("strata", s)`` or ``("refine", 0)``."""
    k = it - 1 - params.separable_only
    if k < 0:
        return "test", 0
    return ("strata", k) if k < params.strata_steps else ("refine", 0)


def init_population(params: CoordinateConfig, problem: Problem, sampler: Sampler) -> tuple[Any, Any]:
    if problem.population is not None:
        raise ValueError("method 'coordinate' searches from one point: pass x0 (a start point), not population")
    x = start_points(problem, sampler)[:, None, :]  # x0, or uniform in the box's central 80 %
    return apply_boundary(x, problem, params.boundary), None


def init(params: CoordinateConfig, problem: Problem, sampler: Sampler, x: Any, energy: Any,
         aux: Any) -> CoordinateState:
    c, f = x[:, 0], energy[:, 0]
    xp = namespace(c)
    cand = repeat(c[:, :, None], params.basins, 2)
    one = xp.full_like(f, 1.0)
    span = amax(_span(problem, c)[None, :], -1)
    total = params.strata_steps * params.basins * params.points
    strata = repeat(c[:, :, None], total, 2)
    n = params.n_particles  # the swarm a step evaluates: x_0 for now (a result's population has its size)
    return CoordinateState(repeat(x, n, 1), repeat(energy, n, 1), c, one * span, cand,
                           xp.full_like(cand, float("inf")), 0 * cand, c, f, one, f != f, strata,
                           xp.full_like(strata, float("inf")))


def _test_points(c: Any, problem: Problem, n: int) -> Any:
    """``x``, then for pairs (i, j), i != j: ``x + a e_i``, ``x + b e_j``, ``x + a e_i + b e_j`` (a a fifth, b a
    seventh of the span, towards the box's middle), ``n`` points in all (the rest ``x`` again)."""
    m, d = c.shape
    xp = namespace(c)
    q = (n - 1) // 3
    p = arange_like(q, c)
    i = p % d
    j = (i + 1 + (p // d) % max(d - 1, 1)) % d  # i + 1, i + 2, ... (mod d): never i when d > 1
    own = arange_like(d, c)
    oh_i, oh_j = cast(i[:, None] == own[None, :], c.dtype), cast(j[:, None] == own[None, :], c.dtype)  # (q, d)
    span = _span(problem, c)
    middle = problem.lo + 0.5 * span if problem.lo is not None else c
    toward = xp.where(c < middle, 0 * c + 1.0, 0 * c - 1.0) * span  # (M, d): a span towards the middle
    a = (toward / 5)[:, None, :] * oh_i[None]  # (M, q, d)
    b = (toward / 7)[:, None, :] * oh_j[None]
    x = c[:, None, :]
    rest = repeat(x, n - 1 - 3 * q, 1)
    return xp.concatenate([x, x + a, x + b, x + a + b, rest], 1)


def _strata(c: Any, params: CoordinateConfig, problem: Problem, sampler: Sampler, s: int) -> Any:
    """Strata step ``s``: (M, d, B K) values of each coordinate, every S-th stratum from the s-th."""
    m, d = c.shape
    per = params.basins * params.points
    total = params.strata_steps * per
    span = _span(problem, c)[None, :, None]
    start = problem.lo[None, :, None] if problem.lo is not None else c[:, :, None] - 0.5 * span
    q = cast(s + params.strata_steps * arange_like(per, c)[None, None, :], c.dtype)
    return start + span * (q + sampler.uniform((m, d, 1))) / total


def ask(state: CoordinateState, params: CoordinateConfig, problem: Problem, sampler: Sampler,
        it: int) -> tuple[Any, Any]:
    xp = namespace(state.consensus)
    c = state.consensus
    m, d = c.shape
    phase, s = _phase(params, it)
    if phase == "test":
        return apply_boundary(_test_points(c, problem, params.n_particles), problem, params.boundary), None
    if phase == "strata":
        g = _strata(c, params, problem, sampler, s)
    else:
        o = 2.0 * cast(arange_like(params.points, c), c.dtype) / (params.points - 1) - 1.0  # linspace(-1, 1, K)
        g = (state.cand[..., None] + state.width[..., None] * o).reshape(m, d, -1)  # (M, d, B K)
    own = arange_like(d, c)
    mask = own[:, None] == own[None, :]  # block i of the points changes coordinate i
    y = xp.where(mask[None, :, None, :], g[:, :, :, None], c[:, None, None, :])  # (M, d, B K, d)
    pts = xp.concatenate([c[:, None, :], y.reshape(m, -1, d)], 1)
    return apply_boundary(pts, problem, params.boundary), None


def _basins(g: Any, v: Any, b: int) -> tuple[Any, Any]:
    """The ``b`` lowest local minima of each coordinate's ordered strata ``g`` with values ``v`` (M, d, T), then
    its lowest other points: one point per basin, its lowest sample."""
    xp = namespace(v)
    inf = xp.full_like(v[..., :1], float("inf"))
    left, right = xp.concatenate([inf, v[..., :-1]], -1), xp.concatenate([v[..., 1:], inf], -1)
    minimum = (v <= left) & (v <= right)
    finite = xp.where(xp.isinf(v), 0 * v, v)
    gap = (amax(finite, -1) - amin(finite, -1) + 1.0)[..., None]
    order = (v + xp.where(minimum, 0 * v, gap)).argsort(-1)[..., :b]  # minima first
    return take_last(g, order), take_last(v, order)


def tell(state: CoordinateState, params: CoordinateConfig, problem: Problem, sampler: Sampler, it: int, x: Any,
         energy: Any, aux: Any) -> CoordinateState:
    xp = namespace(energy)
    m, _, d = x.shape
    f0 = energy[:, 0]
    phase, s = _phase(params, it)
    if phase == "test":  # the mixed differences of the pairs: all 0 (to rounding) when f is separable
        q = (params.n_particles - 1) // 3
        e = energy[:, 1: 1 + 3 * q].reshape(m, 3, q)
        mixed = abs(e[:, 2] - e[:, 0] - e[:, 1] + f0[:, None])
        scale = abs(e).sum(1) + abs(f0)[:, None]
        coupled = ~(mixed <= 1e-9 * scale + 1e-12).all(-1)  # (a NaN difference is no proof of separability)
        return state._replace(x=x, energy=energy, coupled=state.coupled | (coupled & (d > 1)))
    v = energy[:, 1:].reshape(m, d, -1)  # (M, d, B K): block i changed coordinate i
    own = arange_like(d, energy)
    g = (x[:, 1:].reshape(m, d, -1, d) * cast(own[:, None] == own[None, :], x.dtype)[None, :, None, :]).sum(-1)
    span = _span(problem, state.consensus)
    if phase == "strata":  # the same x_k all along: the values compare across the strata steps
        total = state.strata.shape[-1]
        at = s + params.strata_steps * arange_like(v.shape[-1], energy)  # this step's strata in the order
        here = cast(arange_like(total, energy)[:, None] == at[None, :], x.dtype)  # (T, B K)
        strata = xp.where(here.sum(-1) > 0, (g[..., None, :] * here).sum(-1), state.strata)
        fstrata = xp.where(here.sum(-1) > 0, (v[..., None, :] * here).sum(-1), state.fstrata)
        if s < params.strata_steps - 1:
            return state._replace(x=x, energy=energy, strata=strata, fstrata=fstrata)
        cand, cval = _basins(strata, fstrata, params.basins)
        width = 0 * cand + (span / total)[None, :, None]
        return state._replace(x=x, energy=energy, cand=cand, cval=cval, width=width, strata=strata, fstrata=fstrata)
    # x_k was told first: if the last combined step came out worse than that step's best single change, the
    # function is not separable there: go on from the single change (this step's values are then not used)
    worse = f0 > state.fsingle
    base = xp.where(worse[:, None], state.single, x[:, 0])
    fbase = xp.where(worse, state.fsingle, f0)
    k = params.points
    vv, gg = v.reshape(m, d, params.basins, k), g.reshape(m, d, params.basins, k)
    j = vv.argmin(-1)[..., None]  # (M, d, B, 1)
    cand, cval = take_last(gg, j)[..., 0], take_last(vv, j)[..., 0]
    width = xp.where(j[..., 0] == k // 2, state.width * (2.0 / (k - 1)), state.width)  # centre best: narrower
    keep = worse[:, None, None]
    cand, width = xp.where(keep, state.cand, cand), xp.where(keep, state.width, width)
    cval = xp.where(keep, xp.full_like(cval, float("inf")), cval)
    best = cval.argmin(-1)[..., None]  # (M, d, 1): each coordinate's best candidate
    fbest, values = take_last(cval, best)[..., 0], take_last(cand, best)[..., 0]
    combined = xp.where(fbest < fbase[:, None], values, base)
    i1 = fbest.argmin(-1)  # the best single change of this step
    fsingle = take_last(fbest, i1[:, None])[:, 0]
    gain = fsingle < fbase
    single = xp.where((own[None, :] == i1[:, None]) & gain[:, None], values, base)
    fsingle = xp.where(gain, fsingle, fbase)
    c = apply_boundary(combined[:, None, :], problem, params.boundary)[:, 0]
    rel = amax(take_last(width, best)[..., 0] / span, -1)
    return CoordinateState(x, energy, c, rel * amax(span[None, :], -1), cand, cval, width, single, fsingle, rel,
                           state.coupled, state.strata, state.fstrata)


def stop(state: CoordinateState, params: CoordinateConfig) -> Any:
    """1 (``tolx``: CONVERGED) once every coordinate's best candidate grid is narrower than ``tolx`` of its span
    (or than 16 ulps of the run's precision); 2 (``coupled``: STAGNATION) once the separability test failed."""
    xp = namespace(state.rel)
    tol = max(params.tolx, 16 * float(xp.finfo(state.rel.dtype).eps))  # no finer than the run's precision
    codes = xp.where(state.rel < tol, 0 * state.rel + 1, 0 * state.rel)
    codes = xp.where(state.coupled, 0 * state.rel + 2, codes)
    return cast(codes, xp.int64)


SPEC = register(
    MethodSpec(
        name="coordinate",
        params=CoordinateParams,
        state=CoordinateState,
        init_population=init_population,
        init=init,
        ask=ask,
        tell=tell,
        summary="Coordinate grid search: a stratified grid on every coordinate in one batch, B basins each "
                "refined, the best of each coordinate kept at once (separable functions)",
        reference="doi:10.1007/s10107-015-0892-3",
        supports_constraints=True,  # points end in apply_boundary: the projection and the penalty apply
        stop=stop,
        criteria=(("tolx", "CONVERGED"), ("coupled", "STAGNATION")),
        resizable=False,  # its points per step follow from basins and points
        initial_points=1,
    )
)
