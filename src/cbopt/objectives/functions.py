"""Test functions with known minimisers, batched over leading axes and backend-neutral (numpy/torch).

Every function maps ``X[..., d] -> E[...]``. Each :class:`TestFunction` carries a default box,
its minimiser(s) and minimum value; :meth:`TestFunction.instance` builds a shifted and/or rotated
copy whose optimum is not at the origin::

    g(x) = f(R (x - s) + x*)        minimiser s (and s + R^T (x*_j - x*) for further minimisers)

so a symmetric initialisation around 0 gives no unfair advantage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._backend import amax, arange_like, as_generator, cast, is_torch, namespace

_E = math.e
_SCHWEFEL_XMIN = 420.968746359982025
_SCHWEFEL_C = 418.982887272433799807913601398
_ST_XMIN = -2.903534027771177776
_ST_FMIN = -39.166165703771414  # per coordinate
_HIMMELBLAU_MINIMA = np.array(
    [
        [3.0, 2.0],
        [-2.805118086952745, 3.131312518250573],
        [-3.779310253377747, -3.283185991286170],
        [3.584428340330492, -1.848126526964404],
    ]
)


@dataclass(frozen=True)
class TestFunction:
    """A benchmark objective with known minima.

    Attributes
    ----------
    name : str
    fn : callable ``X[..., d] -> E[...]``
    box : (lo, hi) default search interval per coordinate
    x_min : callable ``d -> (k, d)`` array of the global minimisers
    f_min : callable ``d -> float`` global minimum value
    dim : fixed dimension, or None for any ``d >= min_dim``
    """

    __test__ = False  # not a pytest class

    name: str
    fn: Callable[[Any], Any] = field(repr=False)
    box: tuple[float, float]
    x_min: Callable[[int], np.ndarray] = field(repr=False)
    f_min: Callable[[int], float] = field(repr=False)
    dim: int | None = None
    min_dim: int = 1
    smooth: bool = True
    multimodal: bool = True

    def __call__(self, x: Any) -> Any:
        return self.fn(x)

    @property
    def formula(self) -> str:
        """The defining formula (the docstring of ``fn``)."""
        return (self.fn.__doc__ or "").strip()

    def check_dim(self, d: int) -> int:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < self.min_dim:
            raise ValueError(f"{self.name}: dimension must be an integer >= {self.min_dim}, got {d!r}")
        if self.dim is not None and d != self.dim:
            raise ValueError(f"{self.name} is defined in d={self.dim} only, got d={d}")
        return int(d)

    def bounds(self, d: int) -> np.ndarray:
        """The default box as a (d, 2) array."""
        d = self.check_dim(d)
        return np.tile(np.array(self.box, dtype=float), (d, 1))

    def minimizers(self, d: int) -> np.ndarray:
        """All global minimisers, (k, d)."""
        return np.atleast_2d(self.x_min(self.check_dim(d))).astype(float)

    def minimum(self, d: int) -> float:
        return float(self.f_min(self.check_dim(d)))

    def instance(
        self,
        d: int | None = None,
        *,
        shift: Any = None,
        rotate: bool | Any = False,
        rng: Any = None,
        shift_range: float = 0.4,
    ) -> Instance:
        """A shifted and/or rotated copy in dimension ``d``.

        Parameters
        ----------
        shift : array (d,), ``True`` or None
            The new minimiser. ``True`` draws it uniformly from the central ``shift_range`` fraction of
            the box (default [-2, 2] for a [-5, 5] box).
        rotate : bool or array (d, d)
            ``True`` draws a uniformly random rotation (QR of a Gaussian matrix); an array is used as is.
        rng : seed or numpy Generator for the random shift/rotation.

        Functions whose global minimum holds only on their box (Schwefel) keep it only where
        ``R (x - s) + x*`` stays inside that box.
        """
        d = self.check_dim(self.dim if d is None and self.dim is not None else d)  # type: ignore[arg-type]
        gen = as_generator(rng)
        x_star = self.minimizers(d)
        ref = x_star[0]
        if shift is True:
            lo, hi = self.box
            mid, half = (lo + hi) / 2, (hi - lo) / 2 * shift_range
            s = gen.uniform(mid - half, mid + half, d)
        elif shift is None or shift is False:
            s = ref.copy()
        else:
            s = np.asarray(shift, dtype=float)
            if s.shape != (d,) or not np.all(np.isfinite(s)):
                raise ValueError(f"shift: expected {d} finite numbers, got shape {s.shape}")
        if rotate is True:
            q, r = np.linalg.qr(gen.standard_normal((d, d)))
            rot = q * np.sign(np.diag(r))
        elif rotate is False or rotate is None:
            rot = None
        else:
            rot = np.asarray(rotate, dtype=float)
            if rot.shape != (d, d) or not np.allclose(rot @ rot.T, np.eye(d), atol=1e-8):
                raise ValueError(f"rotate: expected an orthogonal ({d}, {d}) matrix")
        offsets = x_star - ref
        mins = s + (offsets if rot is None else offsets @ rot)
        shifted = not (shift is None or shift is False)
        tag = ("shifted " if shifted else "") + ("rotated " if rot is not None else "")
        return Instance(
            name=f"{tag}{self.name}".strip(),
            base=self,
            dim=d,
            shift=s,
            ref=ref,
            rotation=rot,
            x_min=mins,
            f_min=self.minimum(d),
            bounds=self.bounds(d),
        )


@dataclass(frozen=True, eq=False)
class Instance:
    """A test function in a fixed dimension, possibly shifted/rotated: ``g(x) = f(R (x - s) + x*)``."""

    name: str
    base: TestFunction = field(repr=False)
    dim: int
    shift: np.ndarray = field(repr=False)
    ref: np.ndarray = field(repr=False)
    rotation: np.ndarray | None = field(repr=False)
    x_min: np.ndarray = field(repr=False)  # (k, d)
    f_min: float
    bounds: np.ndarray = field(repr=False)  # (d, 2)

    def __call__(self, x: Any) -> Any:
        s, ref, rot = self.shift, self.ref, self.rotation
        if is_torch(x):
            xp = namespace(x)
            s, ref = xp.as_tensor(s, dtype=x.dtype, device=x.device), xp.as_tensor(ref, dtype=x.dtype, device=x.device)
            rot = None if rot is None else xp.as_tensor(rot, dtype=x.dtype, device=x.device)
        z = x - s
        if rot is not None:
            z = z @ rot.T
        return self.base.fn(z + ref)

    @property
    def x_best(self) -> np.ndarray:
        """The first global minimiser (d,)."""
        return self.x_min[0]


def _cos(x: Any) -> Any:
    return namespace(x).cos(x)


def sphere_fn(x: Any) -> Any:
    """Sphere ``f(x) = sum_i x_i^2``; minimum 0 at 0."""
    return (x * x).sum(-1)


def rastrigin_fn(x: Any) -> Any:
    """Rastrigin ``f(x) = 10 d + sum_i (x_i^2 - 10 cos(2 pi x_i))``; minimum 0 at 0, ~10^d local minima."""
    return 10.0 * x.shape[-1] + (x * x - 10.0 * _cos(2 * math.pi * x)).sum(-1)


def ackley_fn(x: Any) -> Any:
    """Ackley ``f(x) = -20 exp(-0.2 sqrt(mean x_i^2)) - exp(mean cos(2 pi x_i)) + 20 + e``; minimum 0 at 0."""
    xp = namespace(x)
    return (
        -20.0 * xp.exp(-0.2 * xp.sqrt((x * x).mean(-1)))
        - xp.exp(_cos(2 * math.pi * x).mean(-1))
        + 20.0
        + _E
    )


def griewank_fn(x: Any) -> Any:
    """Griewank ``f(x) = 1 + sum_i x_i^2 / 4000 - prod_i cos(x_i / sqrt(i))``; minimum 0 at 0."""
    xp = namespace(x)
    d = x.shape[-1]
    i = cast(arange_like(d, x), x.dtype) + 1
    return 1.0 + (x * x).sum(-1) / 4000.0 - xp.prod(_cos(x / xp.sqrt(i)), -1)


def rosenbrock_fn(x: Any) -> Any:
    """Rosenbrock ``f(x) = sum_{i<d} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``; minimum 0 at (1, ..., 1)."""
    a, b = x[..., :-1], x[..., 1:]
    return (100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2).sum(-1)


def schwefel_fn(x: Any) -> Any:
    """Schwefel 2.26 ``f(x) = 418.9829 d - sum_i x_i sin(sqrt|x_i|)``; minimum 0 at x_i = 420.9687."""
    xp = namespace(x)
    return _SCHWEFEL_C * x.shape[-1] - (x * xp.sin(xp.sqrt(xp.abs(x)))).sum(-1)


def levy_fn(x: Any) -> Any:
    """Levy ``w = 1 + (x - 1)/4``, ``f = sin^2(pi w_1) + sum_{i<d} (w_i - 1)^2 (1 + 10 sin^2(pi w_i + 1))
    + (w_d - 1)^2 (1 + sin^2(2 pi w_d))``; minimum 0 at (1, ..., 1)."""
    xp = namespace(x)
    w = 1.0 + (x - 1.0) / 4.0
    head = xp.sin(math.pi * w[..., 0]) ** 2
    mid = ((w[..., :-1] - 1.0) ** 2 * (1.0 + 10.0 * xp.sin(math.pi * w[..., :-1] + 1.0) ** 2)).sum(-1)
    wd = w[..., -1]
    tail = (wd - 1.0) ** 2 * (1.0 + xp.sin(2 * math.pi * wd) ** 2)
    return head + mid + tail


def styblinski_tang_fn(x: Any) -> Any:
    """Styblinski--Tang ``f(x) = 1/2 sum_i (x_i^4 - 16 x_i^2 + 5 x_i)``; minimum -39.16617 d at x_i = -2.903534."""
    x2 = x * x
    return 0.5 * (x2 * x2 - 16.0 * x2 + 5.0 * x).sum(-1)


def himmelblau_fn(x: Any) -> Any:
    """Himmelblau (d = 2) ``f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2``; four global minima, value 0."""
    a, b = x[..., 0], x[..., 1]
    return (a * a + b - 11.0) ** 2 + (a + b * b - 7.0) ** 2


def l1_fn(x: Any) -> Any:
    """``f(x) = |x|_1 = sum_i |x_i|``; nonsmooth convex, minimum 0 at 0."""
    return namespace(x).abs(x).sum(-1)


def linf_fn(x: Any) -> Any:
    """``f(x) = |x|_inf = max_i |x_i|``; nonsmooth convex, minimum 0 at 0."""
    return amax(namespace(x).abs(x), -1)


def rastrigin_l1_fn(x: Any) -> Any:
    """Nonsmooth Rastrigin ``f(x) = sum_i |x_i| + 2 (1 - cos(2 pi x_i))``; nonsmooth nonconvex, minimum 0 at 0."""
    return (namespace(x).abs(x) + 2.0 * (1.0 - _cos(2 * math.pi * x))).sum(-1)


def canyon_fn(x: Any) -> Any:
    """Barrier landscape (d = 2), after the paper's "Grand Canyon"::

        f(x, y) = 0.1 (x^2 + y^2)                              bowl, zero only at the origin
                + 0.5 (y - x^2 / 8)^2                          curved valley from (8, 8) down to (0, 0)
                + 4 max(0, 1 - |(x, y) - (4, 2)|^2 / 1.4^2)^2   bump blocking the valley at (4, 2)
                + 0.3 sum_v (1 - cos(0.75 pi v))               ripple: local minima everywhere

    Every term is >= 0 and vanishes at the origin, and the bowl is > 0 elsewhere, so (0, 0) is the unique
    global minimiser, f = 0. Gradient descent from (8, 8) follows the valley and stalls at about (5.0, 2.9),
    in front of the bump (f = 3.5)."""
    xp = namespace(x)
    a, b = x[..., 0], x[..., 1]
    r2 = (a - 4.0) ** 2 + (b - 2.0) ** 2
    bump = 4.0 * xp.clip(1.0 - r2 / 1.96, 0.0, None) ** 2
    ripple = 0.3 * ((1.0 - _cos(0.75 * math.pi * a)) + (1.0 - _cos(0.75 * math.pi * b)))
    return 0.1 * (a * a + b * b) + 0.5 * (b - a * a / 8.0) ** 2 + bump + ripple


def _zeros(d: int) -> np.ndarray:
    return np.zeros((1, d))


def _ones(d: int) -> np.ndarray:
    return np.ones((1, d))


def _zero(d: int) -> float:
    return 0.0


sphere = TestFunction("sphere", sphere_fn, (-5.0, 5.0), _zeros, _zero, multimodal=False)
rastrigin = TestFunction("rastrigin", rastrigin_fn, (-5.12, 5.12), _zeros, _zero)
ackley = TestFunction("ackley", ackley_fn, (-32.768, 32.768), _zeros, _zero)
griewank = TestFunction("griewank", griewank_fn, (-600.0, 600.0), _zeros, _zero)
rosenbrock = TestFunction("rosenbrock", rosenbrock_fn, (-5.0, 10.0), _ones, _zero, min_dim=2, multimodal=False)
schwefel = TestFunction(
    "schwefel", schwefel_fn, (-500.0, 500.0), lambda d: np.full((1, d), _SCHWEFEL_XMIN), _zero
)
levy = TestFunction("levy", levy_fn, (-10.0, 10.0), _ones, _zero)
styblinski_tang = TestFunction(
    "styblinski_tang", styblinski_tang_fn, (-5.0, 5.0), lambda d: np.full((1, d), _ST_XMIN), lambda d: _ST_FMIN * d
)
himmelblau = TestFunction(
    "himmelblau", himmelblau_fn, (-5.0, 5.0), lambda d: _HIMMELBLAU_MINIMA.copy(), _zero, dim=2, min_dim=2
)
l1 = TestFunction("l1", l1_fn, (-5.0, 5.0), _zeros, _zero, smooth=False, multimodal=False)
linf = TestFunction("linf", linf_fn, (-5.0, 5.0), _zeros, _zero, smooth=False, multimodal=False)
rastrigin_l1 = TestFunction("rastrigin_l1", rastrigin_l1_fn, (-5.0, 5.0), _zeros, _zero, smooth=False)
canyon = TestFunction("canyon", canyon_fn, (-2.0, 8.0), _zeros, _zero, dim=2, min_dim=2)

FUNCTIONS: dict[str, TestFunction] = {
    f.name: f
    for f in (
        sphere, rastrigin, ackley, griewank, rosenbrock, schwefel, levy, styblinski_tang, himmelblau, l1, linf,
        rastrigin_l1, canyon,
    )
}


def get_function(name: str) -> TestFunction:
    """Look a test function up by name; the error lists them all."""
    try:
        return FUNCTIONS[name.lower().replace("-", "_")]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown test function {name!r}; available: {sorted(FUNCTIONS)}") from None


@dataclass(frozen=True, eq=False)
class Noisy:
    """``f(x) + scale * N(0, 1)`` per evaluation: a noisy objective whose noise-free minimum is ``f``'s.

    The noise comes from its own seeded generator ``rng`` (never the global RNG).
    """

    fn: Callable[[Any], Any]
    scale: float = 0.1
    rng: Any = None

    def __post_init__(self) -> None:
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and self.scale >= 0):
            raise ValueError(f"Noisy.scale: must be finite and >= 0, got {self.scale!r}")
        object.__setattr__(self, "rng", as_generator(self.rng))

    def __call__(self, x: Any) -> Any:
        e = self.fn(x)
        noise = self.rng.standard_normal(tuple(e.shape))
        if is_torch(e):
            noise = namespace(e).as_tensor(noise, dtype=e.dtype, device=e.device)
        return e + self.scale * noise


@dataclass(frozen=True, eq=False)
class Slow:
    """A per-point objective that takes ``seconds`` per evaluation (a stand-in for a simulation):
    ``Slow(rastrigin, 0.05)(x[d]) -> float``. Picklable, for process pools and Dask workers."""

    fn: Callable[[Any], Any]
    seconds: float = 0.05

    def __call__(self, x: Any) -> float:
        import time

        time.sleep(self.seconds)
        return float(self.fn(np.asarray(x, dtype=float)))


def noisy(fn: Callable[[Any], Any], scale: float = 0.1, rng: Any = None) -> Noisy:
    """Additive Gaussian observation noise on any objective (see :class:`Noisy`)."""
    return Noisy(fn, scale, rng)
