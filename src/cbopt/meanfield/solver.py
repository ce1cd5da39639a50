"""The CBO Fokker--Planck equation on a grid: a structure-preserving, semi-implicit finite-volume solver.

The equation (``D_k(v)^2 = v_k^2`` anisotropic, ``|v|^2`` isotropic)::

    d_t rho = lam div((x - c) rho) + sigma^2/2 sum_k d_k^2 (D_k(x - c)^2 rho),   c = c_alpha[rho]

is written per direction as a flux, ``d_t rho = sum_k d_k F_k`` with ``F_k = C_k rho + K_k d_k rho``,
``C_k = (lam + sigma^2)(x_k - c_k)`` (the drift plus the derivative of the diffusion) and
``K_k = sigma^2/2 D_k(x - c)^2``. At the face between cells ``j`` and ``j + 1`` the Chang--Cooper flux is

    F = a+ rho_{j+1} - a- rho_j,   a- = C / (e^z - 1),   a+ = a- + C,   z = h C / K

(the Scharfetter--Gummel form of the weights ``delta = 1/z + 1/(1 - e^z)`` of Pareschi and Zanella,
"Structure preserving schemes for mean-field equations of collective behavior", arXiv:1705.06360, with
the face values of C and K), exact for the local equilibrium and second order where rho is smooth. Both
weights are >= 0 for every z, also where the diffusion degenerates at the consensus (K = 0: upwind).

A step freezes the consensus at the current density (computed as a log-sum-exp quadrature of
``e^{-alpha f} rho``, finite for alpha up to 1e15 and beyond) and takes a backward Euler step of the linear
equation. ``I - dt A`` has columns summing to one and non-positive off-diagonal entries: it conserves mass
exactly and its inverse is non-negative, so the density stays >= 0 for any dt. In 2-D the step is split by
direction (each a batch of tridiagonal solves; for anisotropic noise the two directions commute), or taken
whole with a sparse LU (``solver="sparse"``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._extras import require
from ..driver import read_only
from ..numerics import sanitize
from ..objectives._wrap import real_values
from ..schedules import EffectiveSampleSize, Schedule, as_schedule
from ..validation import choice, fits_in_memory, number

NOISES = ("anisotropic", "isotropic")
SOLVERS = ("split", "sparse")


@dataclass(frozen=True)
class Grid:
    """A box ``[lo, hi]`` in d = 1 or 2 dimensions cut into ``cells`` equal cells per axis."""

    lo: np.ndarray  # (d,)
    hi: np.ndarray  # (d,)
    cells: tuple[int, ...]

    @classmethod
    def make(cls, bounds: Any, cells: Any) -> Grid:
        b = np.asarray(bounds, dtype=float)
        if b.ndim == 1 and b.shape == (2,):
            b = b[None]
        if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] not in (1, 2):
            raise ValueError(f"bounds: expected [(lo, hi)] in 1-D or [(lo, hi), (lo, hi)] in 2-D, got shape {b.shape}")
        if not np.all(np.isfinite(b)) or not np.all(b[:, 0] < b[:, 1]):
            raise ValueError(f"bounds: need finite lo < hi per axis, got {b.tolist()}")
        n = (cells,) * len(b) if np.ndim(cells) == 0 else tuple(cells)
        if len(n) != len(b):
            raise ValueError(f"cells: expected one count per axis ({len(b)}), got {cells!r}")
        n = tuple(int(number("cells", k, at_least=3, integer=True)) for k in n)
        return cls(b[:, 0].copy(), b[:, 1].copy(), n)

    @property
    def dim(self) -> int:
        return len(self.cells)

    @property
    def h(self) -> np.ndarray:
        """Cell widths per axis (d,)."""
        return (self.hi - self.lo) / np.asarray(self.cells)

    @property
    def volume(self) -> float:
        return float(np.prod(self.h))

    def axis(self, k: int) -> np.ndarray:
        """Cell centres along axis ``k``."""
        return self.lo[k] + (np.arange(self.cells[k]) + 0.5) * self.h[k]

    @property
    def points(self) -> np.ndarray:
        """Cell centres, shape ``(*cells, d)``."""
        return np.stack(np.meshgrid(*[self.axis(k) for k in range(self.dim)], indexing="ij"), axis=-1)


@dataclass
class MeanFieldResult:
    """A solve of the mean-field equation. Per step (K + 1 rows, time 0 included): ``t``, ``consensus``
    (K + 1, d), ``variance`` V = int |x - c|^2 rho, ``mass``, ``min_density``, ``alpha``, ``sigma``. At the
    requested times: ``times`` and ``rho`` (S, *cells), densities (mass = sum rho * grid.volume)."""

    grid: Grid
    t: np.ndarray
    consensus: np.ndarray
    variance: np.ndarray
    mass: np.ndarray
    min_density: np.ndarray
    alpha: np.ndarray
    sigma: np.ndarray
    times: np.ndarray
    rho: np.ndarray
    elapsed: float
    info: dict[str, Any] = field(default_factory=dict)

    def at(self, t: float) -> np.ndarray:
        """The saved density closest to time ``t``."""
        return self.rho[int(np.argmin(np.abs(self.times - t)))]


def consensus(energy: np.ndarray, rho: np.ndarray, points: np.ndarray, alpha: float) -> np.ndarray:
    """``c_alpha[rho] = int x e^{-alpha f} rho / int e^{-alpha f} rho`` by the midpoint rule, in log-sum-exp
    form: the weights are ``exp(log rho - alpha f - max)``, so any alpha >= 0 gives a finite point."""
    with np.errstate(divide="ignore"):
        logw = np.log(rho) - alpha * energy
    top = logw.max()
    if not math.isfinite(top):
        raise FloatingPointError("consensus: no cell has positive density and a finite energy")
    w = np.exp(logw - top)
    w /= w.sum()
    return np.tensordot(w, points, axes=w.ndim)


def variance(rho: np.ndarray, points: np.ndarray, c: np.ndarray, volume: float) -> float:
    """``V = int |x - c|^2 rho``."""
    return float((((points - c) ** 2).sum(-1) * rho).sum() * volume)


def face_weights(cc: np.ndarray, kk: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """The Chang--Cooper weights ``(a-, a+)`` of the flux ``a+ rho_{j+1} - a- rho_j`` from the face values
    of the drift ``C`` and the diffusion ``K >= 0``; both are >= 0."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = np.where(cc == 0, 0.0, h * cc / kk)  # K = 0: z = +-inf (upwind)
        small = np.abs(z) < 1e-8
        a_minus = np.where(small, kk / h * (1 - z / 2), cc / np.expm1(z))
    a_minus = np.where(np.isnan(a_minus), 0.0, a_minus)
    return a_minus, a_minus + cc


def _faces(grid: Grid, k: int, c: np.ndarray, lam: float, sigma: float, iso: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(a-, a+)`` on the interior faces along axis ``k``: shape ``(*cells)`` with ``cells[k] - 1`` there."""
    d = grid.dim
    xf = grid.lo[k] + (np.arange(1, grid.cells[k])) * grid.h[k] - c[k]  # face positions minus c_k
    shape = [1] * d
    shape[k] = len(xf)
    xf = xf.reshape(shape)
    cc = (lam + sigma * sigma) * xf
    sq = xf * xf
    if iso:  # |x - c|^2 at the face: the other coordinates at their cell centres
        for j in range(d):
            if j != k:
                yj = (grid.axis(j) - c[j]).reshape([-1 if i == j else 1 for i in range(d)])
                sq = sq + yj * yj
    kk = 0.5 * sigma * sigma * sq
    full = list(grid.cells)
    full[k] -= 1
    cc, kk = np.broadcast_arrays(cc, kk)  # anisotropic: one line of faces, shared by every line
    am, ap = face_weights(cc, kk, float(grid.h[k]))
    return np.broadcast_to(am, full), np.broadcast_to(ap, full)


def _banded(a_minus: np.ndarray, a_plus: np.ndarray, h: float, dt: float) -> np.ndarray:
    """The (3, L n) band of ``I - dt A`` for L independent lines of n cells (faces along the last axis)."""
    lines = a_minus.reshape(-1, a_minus.shape[-1])
    plus = a_plus.reshape(lines.shape)
    m, nf = lines.shape
    r = dt / h
    band = np.zeros((3, m, nf + 1))  # filled in place: the rows of solve_banded's (1, 1) layout
    upper, diag, lower = band
    diag += 1.0
    diag[:, :-1] += r * lines  # outflow to the right: a- rho_j
    diag[:, 1:] += r * plus  # outflow to the left: a+ rho_j
    upper[:, 1:] = -r * plus  # row j, column j + 1 (stored at column j + 1)
    lower[:, :-1] = -r * lines  # row j + 1, column j (stored at column j)
    return band.reshape(3, -1)


def _split_step(rho: np.ndarray, weights: list[tuple[np.ndarray, np.ndarray]], grid: Grid, dt: float,
                linalg: Any) -> np.ndarray:
    for k, (am, ap) in enumerate(weights):
        moved = np.moveaxis(rho, k, -1)
        band = _banded(np.moveaxis(am, k, -1), np.moveaxis(ap, k, -1), float(grid.h[k]), dt)
        out = linalg.solve_banded((1, 1), band, moved.reshape(-1), overwrite_ab=True, check_finite=False)
        rho = np.moveaxis(out.reshape(moved.shape), -1, k)
    return rho


def _sparse_step(rho: np.ndarray, weights: list[tuple[np.ndarray, np.ndarray]], grid: Grid, dt: float,
                 sparse: Any, spla: Any) -> np.ndarray:
    n = rho.size
    idx = np.arange(n).reshape(rho.shape)
    rows, cols, vals = [np.arange(n)], [np.arange(n)], [np.ones(n)]
    for k, (am, ap) in enumerate(weights):
        r = dt / grid.h[k]
        left = idx.take(np.arange(grid.cells[k] - 1), axis=k).reshape(-1)
        right = idx.take(np.arange(1, grid.cells[k]), axis=k).reshape(-1)
        am, ap = am.reshape(-1) * r, ap.reshape(-1) * r
        # flux a+ rho_right - a- rho_left leaves `right` and enters `left`
        rows += [left, left, right, right]
        cols += [left, right, right, left]
        vals += [am, -ap, ap, -am]
    mat = sparse.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return spla.spsolve(mat, rho.reshape(-1)).reshape(rho.shape)


def _density(rho0: Any, grid: Grid) -> np.ndarray:
    if callable(rho0):
        rho = np.asarray(rho0(grid.points), dtype=float)
    else:
        rho = np.array(rho0, dtype=float)
    if rho.shape != grid.cells:
        raise ValueError(f"rho0: expected a density of the grid's shape {grid.cells}, got {rho.shape}")
    if not np.all(np.isfinite(rho)) or np.any(rho < 0) or rho.sum() <= 0:
        raise ValueError("rho0: the initial density must be finite, >= 0 and not all zero")
    return rho / (rho.sum() * grid.volume)


def _schedule(name: str, v: Any) -> Schedule:
    s = as_schedule(name, v)
    if isinstance(s, EffectiveSampleSize):
        raise ValueError(f"{name}: EffectiveSampleSize chooses alpha from particle energies; the mean-field "
                         "solver takes a number or a step schedule (Constant, Geometric, StepDecay)")
    return s


#: the most time steps :func:`solve` takes (T / dt); each is a banded or sparse solve over the whole grid
MAX_STEPS = 1e8
#: floats :func:`solve` keeps per grid cell (density, energy, face weights, bands, the sparse matrix's entries)
FLOATS_PER_CELL = 40


def solve(
    f: Callable[[Any], Any],
    bounds: Any,
    rho0: Any,
    *,
    cells: Any = 200,
    T: float = 1.0,
    dt: float = 0.01,
    lam: float = 1.0,
    sigma: Any = 1.0,
    alpha: Any = 30.0,
    noise: str = "anisotropic",
    save: Any = None,
    frozen: Any = None,
    solver: str = "split",
) -> MeanFieldResult:
    """Solve the CBO mean-field equation from ``rho0`` up to time ``T``.

    Parameters
    ----------
    f : batched objective ``f(X[..., d]) -> E[...]``, evaluated once on the cell centres.
    bounds : ``[(lo, hi)]`` (1-D) or ``[(lo, hi), (lo, hi)]`` (2-D): the domain, with no flux through its
        faces (choose it so the density stays well inside).
    rho0 : a density on the grid (array of shape ``cells``) or a function of the points ``(*cells, d)``;
        normalised to mass one.
    cells : cells per axis (an int, or one per axis).
    T, dt : final time and time step (``ceil(T / dt)`` steps; the last may be shorter).
    lam, sigma, alpha : as in CBO (``cbopt.methods.cbo``); ``sigma`` and ``alpha`` may be schedules, updated
        once per step as in the particle method (energy-adaptive schedules are refused).
    noise : ``"anisotropic"`` (``D(v) = diag(v)``) or ``"isotropic"`` (``|v| I``).
    save : times at which to keep the density (default: 0 and ``T``); each is rounded to the nearest step.
    frozen : a point ``c`` to use as the consensus for the whole run (the linear equation), instead of
        ``c_alpha[rho]``.
    solver : ``"split"`` (one tridiagonal solve per direction, default) or ``"sparse"`` (the whole 2-D
        backward Euler step with a sparse LU; the same as ``"split"`` in 1-D).

    Examples
    --------
    >>> import numpy as np
    >>> from cbopt import meanfield
    >>> res = meanfield.solve(lambda x: (x[..., 0] - 1) ** 2, [(-4, 4)], lambda x: np.exp(-x[..., 0] ** 2 / 2),
    ...                       cells=400, T=5.0, dt=0.01, alpha=1e15)
    >>> round(float(res.consensus[-1, 0]), 2), bool(abs(res.mass - 1).max() < 1e-12 and res.min_density.min() >= 0)
    (0.99, True)
    """
    linalg = require("scipy.linalg", "cbopt.meanfield")
    grid = Grid.make(bounds, cells)
    T = number("T", T, above=0)
    dt = number("dt", dt, above=0)
    lam = number("lam", lam, above=0)
    choice("noise", noise, NOISES)
    choice("solver", solver, SOLVERS)
    alpha_s, sigma_s = _schedule("alpha", alpha), _schedule("sigma", sigma)
    steps_wanted = T / dt
    if steps_wanted > MAX_STEPS:
        raise ValueError(f"T / dt = {steps_wanted:.3g} steps: at most {MAX_STEPS:g}; raise dt (the implicit step "
                         "is stable for any dt) or lower T")
    cells_n = math.prod(grid.cells)
    fits_in_memory(8 * (FLOATS_PER_CELL + grid.dim) * cells_n + 8 * steps_wanted, "meanfield.solve",
                   f" for a grid of {cells_n} cells and {steps_wanted:.3g} steps")
    pts = grid.points
    energy = np.asarray(real_values(f(read_only(pts)), "f"), dtype=float)  # f sees the grid, cannot move it
    if energy.shape != grid.cells:
        raise ValueError(f"f: expected values of shape {grid.cells} on the grid points {pts.shape}, got "
                         f"{energy.shape}")
    energy, _ = sanitize(energy)  # NaN or inf: no value, weight zero, as for the particles
    rho = _density(rho0, grid)
    if frozen is not None:
        frozen = np.asarray(frozen, dtype=float).reshape(-1)
        if frozen.shape != (grid.dim,) or not np.all(np.isfinite(frozen)):
            raise ValueError(f"frozen: expected a finite point of dimension {grid.dim}, got {frozen!r}")
    steps = max(1, math.ceil(T / dt - 1e-9))
    t_at = np.minimum(np.arange(steps + 1) * dt, T)
    save_t = np.array([0.0, T] if save is None else sorted(np.atleast_1d(np.asarray(save, dtype=float))))
    if np.any(save_t < 0) or np.any(save_t > T + 1e-12):
        raise ValueError(f"save: times must lie in [0, T] = [0, {T}], got {save_t.tolist()}")
    save_k = {int(np.argmin(np.abs(t_at - s))) for s in save_t}
    like = np.zeros(1)
    e_row = energy.reshape(1, -1)
    a_val = alpha_s.update(alpha_s.init(1, like), 0, e_row)
    s_val = sigma_s.init(1, like)
    iso = noise == "isotropic"
    if solver == "sparse":
        sparse, spla = require("scipy.sparse", "cbopt.meanfield"), require("scipy.sparse.linalg", "cbopt.meanfield")
    rec: dict[str, list[Any]] = {k: [] for k in ("c", "v", "mass", "min", "alpha", "sigma")}
    kept_t, kept = [], []
    t0 = time.perf_counter()
    for k in range(steps + 1):
        a, s = float(np.asarray(a_val).reshape(-1)[0]), float(np.asarray(s_val).reshape(-1)[0])
        c = frozen if frozen is not None else consensus(energy, rho, pts, a)
        rec["c"].append(c)
        rec["v"].append(variance(rho, pts, c, grid.volume))
        rec["mass"].append(float(rho.sum() * grid.volume))
        rec["min"].append(float(rho.min()))
        rec["alpha"].append(a)
        rec["sigma"].append(s)
        if k in save_k:
            kept_t.append(t_at[k])
            kept.append(rho.copy())
        if k == steps:
            break
        h_t = float(t_at[k + 1] - t_at[k])
        weights = [_faces(grid, j, c, lam, s, iso) for j in range(grid.dim)]
        if solver == "sparse" and grid.dim > 1:
            rho = _sparse_step(rho, weights, grid, h_t, sparse, spla)
        else:
            rho = _split_step(rho, weights, grid, h_t, linalg)
        a_val = alpha_s.update(a_val, k + 1, e_row)
        s_val = sigma_s.update(s_val, k + 1, e_row)
    return MeanFieldResult(
        grid=grid, t=t_at, consensus=np.array(rec["c"]), variance=np.array(rec["v"]), mass=np.array(rec["mass"]),
        min_density=np.array(rec["min"]), alpha=np.array(rec["alpha"]), sigma=np.array(rec["sigma"]),
        times=np.array(kept_t), rho=np.array(kept), elapsed=time.perf_counter() - t0,
        info={"steps": steps, "dt": dt, "lam": lam, "noise": noise, "solver": solver},
    )
