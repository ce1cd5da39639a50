"""Zeroth-order gradient estimators: for batched objectives, for ranking oracles, and for torch modules.

The same estimators drive the registered methods ``zo-gaussian``, ``zo-spsa``, ``zo-cge`` and ``zo-rank``
(:mod:`cbopt.methods.zo`, with the formulas); here they are available one estimate at a time:

* :func:`gradient` -- one estimate of ``grad f(x)`` for a batched ``f(X[..., d]) -> E[...]``;
* :func:`rank_gradient` -- the ZO-RankSGD estimate from an oracle that only *orders* points;
* :class:`ModuleEstimator` -- gradients of a torch module's loss written to ``.grad`` without a copy of
  the model: the weights are perturbed in place and every perturbation is regenerated from its seed, so
  any ``torch.optim`` optimizer can take the step.

>>> import numpy as np, cbopt
>>> f = lambda X: (X ** 2).sum(-1)                    # gradient 2x
>>> g = cbopt.zo.gradient(f, np.array([1.0, -2.0]), kind="cge")
>>> np.round(g, 6).tolist()
[2.0, -4.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ._backend import as_generator, resolve_backend, to_numpy
from ._extras import require
from .estimators import ESTIMATORS
from .methods.zo import SPECS
from .objectives._wrap import validate_energy
from .validation import fits_in_memory

KINDS = tuple(SPECS)


def _check_kind(kind: str) -> str:
    if kind not in SPECS:
        raise ValueError(f"kind: expected one of {list(KINDS)}, got {kind!r}")
    return kind


def _check_x(x: Any) -> Any:
    x = x if hasattr(x, "detach") else np.asarray(x, dtype=float)
    if x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(f"x: expected a point of shape (d,) with d >= 1, got shape {tuple(x.shape)}")
    if not np.all(np.isfinite(to_numpy(x))):
        raise ValueError("x: must be finite (NaN or inf in the point)")
    return x


def _stencil(est: Any, xb: Any, u: Any, mu: float) -> Any:
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, as the error it is
        pts = est.stencil(xb, u, mu)
    if not np.all(np.isfinite(to_numpy(pts))):
        raise ValueError(f"mu = {mu!r}: the points x + mu u leave the floating-point range; take a smaller mu")
    return pts


def _finite_values(e: Any) -> Any:
    """An estimate from non-finite values is undefined: say so, rather than return zeros or NaN."""
    bad = int((~np.isfinite(to_numpy(e))).sum())
    if bad:
        raise ValueError(f"f returned {bad} non-finite value(s) of {int(np.size(to_numpy(e)))} at the estimate's "
                         "points: the estimate is undefined there")
    return e


def gradient(f: Callable[[Any], Any], x: Any, *, kind: str = "gaussian", mu: float = 1e-3, n: int | None = None,
             rng: Any = None) -> Any:
    """One zeroth-order estimate of ``grad f(x)``.

    ``f`` is batched (``f(X[..., d]) -> E[...]``, as for :func:`cbopt.minimize`); it is called once, with
    all the points of the estimate. ``kind`` is ``"gaussian"`` (``n`` = q directions, default 4), ``"spsa"``
    (Rademacher directions), ``"cge"`` (central differences on ``n`` random coordinates, default all) or
    ``"rank"`` (``n`` = m points, only their order is used). Average many estimates (or raise ``n``) to
    approach the gradient of the smoothed objective; see :mod:`cbopt.methods.zo` for the formulas.
    """
    _check_kind(kind)
    x = _check_x(x)
    backend = resolve_backend(x, None, dtype=None, device=None)
    xb = backend.asarray(x)[None]
    d = xb.shape[-1]
    params = SPECS[kind].make_params({"mu": mu, "n_directions": n}, d)
    # the directions (n, d) and the stencil of up to 2 n points (2 n, d), before any is drawn
    fits_in_memory(8 * 3 * int(params.n_directions) * d, "zo.gradient",
                   f" for {params.n_directions} directions in d = {d}")
    sampler = backend.sampler(rng)
    est = ESTIMATORS[kind]
    u = est.directions(sampler, 1, params.n_directions, d, xb)
    pts = _stencil(est, xb, u, params.mu)
    return est.combine(u, _finite_values(validate_energy(f(pts), pts)), params.mu)[0]


def rank_gradient(order: Callable[[Any], Sequence[int]], x: Any, *, mu: float = 1e-3, n: int = 10,
                  rng: Any = None) -> Any:
    """The ZO-RankSGD estimate at ``x`` from a ranking oracle (arXiv:2303.03751).

    ``order(points)`` receives ``n`` points ``x + mu u_i`` (shape (n, d)) and returns their indices from
    best to worst -- no values. The estimate is ``1/P sum over pairs (i better than j) (u_j - u_i)``,
    ``P = n (n - 1) / 2``: a descent direction (its mean is a positive multiple of the smoothed gradient
    direction), with no gradient scale, so take steps ``x <- x - lr g`` with a decaying ``lr``.
    """
    x = _check_x(x)
    backend = resolve_backend(x, None, dtype=None, device=None)
    xb = backend.asarray(x)[None]
    d = xb.shape[-1]
    params = SPECS["rank"].make_params({"mu": mu, "n_directions": n}, d)
    est = ESTIMATORS["rank"]
    u = est.directions(backend.sampler(rng), 1, params.n_directions, d, xb)
    idx = [int(i) for i in order(_stencil(est, xb, u, params.mu)[0])]
    if sorted(idx) != list(range(params.n_directions)):
        raise ValueError(f"order must return a permutation of range({params.n_directions}) (best first), got {idx}")
    position = np.empty(params.n_directions)
    position[idx] = np.arange(params.n_directions)  # a stand-in energy: the position in the order
    return est.combine(u, backend.asarray(position)[None], params.mu)[0]


class ModuleEstimator:
    """Zeroth-order gradients of a torch loss, accumulated into the parameters' ``.grad``.

    ``backward(closure)`` calls ``closure()`` (a forward pass returning the scalar loss; it runs under
    ``torch.no_grad``) at perturbed weights ``w +- mu z`` and writes the estimate of
    :mod:`cbopt.methods.zo` to ``.grad``, as ``loss.backward()`` would; then any ``torch.optim`` optimizer
    takes the step. The model is never copied: each perturbation ``z`` is added to the weights in place and
    regenerated from its seed (one :class:`torch.Generator` per seed and tensor) to undo it and to form
    the gradient. Extra memory: the ``.grad`` buffers (one copy of the parameters, as for backprop) plus
    one temporary of the largest tensor; no activations are kept. Undoing ``+mu z`` in floating point
    restores the weights up to rounding (a few ulps per step).

    ``kind``: ``"gaussian"``, ``"spsa"``, ``"rank"`` (``n_directions`` perturbations per call, default 1
    for the two-point kinds and 10 for rank) or ``"cge"`` (``n_directions`` random coordinates, default
    all: two forward passes each). ``rng`` seeds the perturbations.

    >>> import torch, cbopt
    >>> model = torch.nn.Linear(3, 1)
    >>> X, y = torch.randn(32, 3, generator=torch.Generator().manual_seed(0)), torch.zeros(32, 1)
    >>> est = cbopt.zo.ModuleEstimator(model.parameters(), kind="spsa", n_directions=4, rng=0)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.05)
    >>> first = est.backward(lambda: ((model(X) - y) ** 2).mean()); opt.step()
    >>> for _ in range(200):
    ...     opt.zero_grad(); loss = est.backward(lambda: ((model(X) - y) ** 2).mean()); opt.step()
    >>> bool(loss < 0.1 * first), est.nfev
    (True, 1608)
    """

    def __init__(self, params: Iterable[Any], kind: str = "gaussian", mu: float = 1e-3,
                 n_directions: int | None = None, rng: Any = None):
        self._torch = require("torch", "zeroth-order gradients of torch modules")
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("params: no tensor that requires grad")
        self.kind = _check_kind(kind)
        self.estimator = ESTIMATORS[kind]
        self.dim = sum(p.numel() for p in self.params)
        # one direction per call for the two-point kinds (a step is a call), the table's default otherwise
        default = None if self.estimator.every_coordinate else (
            1 if self.estimator.two_point else self.estimator.default_directions)
        spec = SPECS[kind].make_params({"mu": mu, "n_directions": n_directions or default}, self.dim)
        self.mu, self.n_directions = spec.mu, spec.n_directions
        self.gen = as_generator(rng)
        self.nfev = 0  # closure calls (forward passes)

    def _z(self, seed: int, j: int, p: Any) -> Any:
        torch = self._torch
        g = torch.Generator(device=p.device).manual_seed((seed + 1_000_003 * j) % (2**63 - 1))
        if self.estimator.signs:
            z = torch.randint(0, 2, p.shape, generator=g, device=p.device).to(p.dtype)
            return z.mul_(2).sub_(1)
        return torch.randn(p.shape, generator=g, dtype=p.dtype, device=p.device)

    def _shift(self, seed: int, scale: float) -> None:
        for j, p in enumerate(self.params):
            p.add_(self._z(seed, j, p), alpha=scale)

    def _loss(self, closure: Callable[[], Any]) -> float:
        self.nfev += 1
        return float(closure())

    def backward(self, closure: Callable[[], Any]) -> float:
        """Estimate the gradient of ``closure()`` and add it to ``.grad``; returns the mean loss evaluated."""
        torch = self._torch
        with torch.no_grad():
            if self.estimator.every_coordinate:  # one coordinate at a time, in place
                return self._coordinates(closure)
            q, mu = self.n_directions, self.mu
            seeds = [int(s) for s in self.gen.integers(0, 2**62, size=q)]
            plus, minus = [], []
            at: tuple[int, float] | None = None  # the shift the weights carry now, undone if the closure raises
            try:
                for s in seeds:
                    self._shift(s, mu)
                    at = (s, mu)
                    plus.append(self._loss(closure))
                    if not self.estimator.two_point:
                        self._shift(s, -mu)
                        at = None
                        continue
                    self._shift(s, -2 * mu)
                    at = (s, -mu)
                    minus.append(self._loss(closure))
                    self._shift(s, mu)
                    at = None
            except BaseException:
                if at is not None:
                    self._shift(at[0], -at[1])
                raise
            values = np.array([plus + minus])  # the stencil's layout in cbopt.methods.zo
            coefs = self.estimator.coefficients(np.where(np.isnan(values), np.inf, values), mu)[0].tolist()
            for j, p in enumerate(self.params):
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                for s, c in zip(seeds, coefs, strict=True):
                    if c != 0.0:
                        p.grad.add_(self._z(s, j, p), alpha=float(c))
            return float(np.mean(values))

    def _coordinates(self, closure: Callable[[], Any]) -> float:
        torch = self._torch
        k, mu = self.n_directions, self.mu
        flat = np.sort(self.gen.choice(self.dim, size=k, replace=False)) if k < self.dim else np.arange(self.dim)
        ends = np.cumsum([p.numel() for p in self.params])
        values = []
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for i in flat:
            j = int(np.searchsorted(ends, i, side="right"))
            p = self.params[j]
            off = int(i - (ends[j] - p.numel()))
            w, g = p.view(-1), p.grad.view(-1)
            old = w[off].clone()
            try:
                w[off] = old + mu
                plus = self._loss(closure)
                w[off] = old - mu
                minus = self._loss(closure)
            finally:
                w[off] = old  # exact restore, also when the closure raises: one coordinate, one saved scalar
            values += [plus, minus]
            diff = (plus - minus) / (2 * mu)
            if math.isfinite(diff):
                g[off] += diff
        return float(np.mean(values))


__all__ = ["KINDS", "ModuleEstimator", "gradient", "rank_gradient"]
