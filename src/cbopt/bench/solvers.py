"""Solver adapters for the benchmark harness: thin, each records the best value against evaluations.

Every adapter sees the objective through a :class:`Recorder` that counts evaluations, keeps the
best-so-far trace and stops the solver (by an exception) when the budget is spent or the target is hit,
so every solver gets exactly the same budget and no evaluation past it is credited.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .._extras import available
from .problems import BenchProblem


class Stop(Exception):
    """The budget is spent or the target reached."""


class Recorder:
    """Counts evaluations, records ``(evaluations, best f)`` at every improvement, enforces budget and target."""

    def __init__(self, problem: BenchProblem, budget: int, target: float,
                 mirror: Callable[[np.ndarray], Any] | None = None):
        self.problem, self.budget, self.target = problem, int(budget), float(target)
        self.mirror = mirror  # e.g. a cocoex problem with an Observer: sees every evaluated point
        self.n = 0
        self.best = np.inf
        self.error: BaseException | None = None  # the problem raised: the run is void, whatever the solver did
        self.trace: list[tuple[int, float]] = []
        #: a noisy problem's noise-free record (evaluations, best true f) at every improvement: its score
        self.true_best = np.inf
        self.true_trace: list[tuple[int, float]] = []

    def _call(self, f: Callable[[Any], Any], x: Any) -> Any:
        try:
            return f(x)
        except Exception as e:
            self.error = e  # kept: a solver that catches it must not turn it into a result
            raise

    def _note(self, values: np.ndarray) -> None:
        for v in values:
            self.n += 1
            if v < self.best:
                self.best = float(v)
                self.trace.append((self.n, self.best))
        if self.problem.truth is not None:
            n, t = self.problem.truth()
            if t + self.problem.fopt < self.true_best:
                self.true_best = t + self.problem.fopt
                self.true_trace.append((n, self.true_best))

    @property
    def scored(self) -> tuple[float, list[tuple[int, float]]]:
        """The best value and the trace the run is scored on: the noise-free ones of a noisy problem."""
        return (self.best, self.trace) if self.problem.truth is None else (self.true_best, self.true_trace)

    def _reached(self) -> bool:
        return self.scored[0] - self.problem.fopt <= self.target

    def batched(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        left = self.budget - self.n
        flat = x.reshape(-1, x.shape[-1])
        if left <= 0:
            raise Stop
        e = np.asarray(self._call(self.problem.batched, flat[:left]), dtype=float)
        if self.mirror is not None:
            for p in flat[:left]:
                self.mirror(p)
        self._note(e)
        if len(flat) > left or self._reached():
            raise Stop
        return e.reshape(x.shape[:-1])

    def point(self, x: Any) -> float:
        if self.n >= self.budget:
            raise Stop
        v = float(self._call(self.problem.point, x))
        if self.mirror is not None:
            self.mirror(np.asarray(x, dtype=float))
        self._note(np.array([v]))
        if self._reached():
            raise Stop
        return v


def _cbopt(method: str, restarts: bool) -> Callable[[Recorder, int], None]:
    def solve(rec: Recorder, seed: int) -> None:
        import cbopt

        opts = {"boundary": "reflect"}
        kw: dict[str, Any] = {"restarts": 9, "refine": "auto"} if restarts else {}
        cbopt.minimize(rec.batched, bounds=rec.problem.bounds, method=method, rng=seed, options=opts,
                       max_evals=rec.budget, **kw)

    return solve


def _cbopt_default(method: str | None, restarts: Any = None, **options: Any) -> Callable[[Recorder, int], None]:
    """``minimize(f, bounds=...)`` as a user calls it: the default (``method=None``) or one method with its
    own defaults; only the budget and the seed are set. ``restarts`` (a callable that makes a policy, in the
    worker) and ``options``: the ablations of the default."""

    def solve(rec: Recorder, seed: int) -> None:
        import cbopt

        kw: dict[str, Any] = {} if method is None else {"method": method}
        if restarts is not None:
            kw["restarts"] = restarts()
        if options:
            kw["options"] = options
        cbopt.minimize(rec.batched, bounds=rec.problem.bounds, rng=seed, max_evals=rec.budget, **kw)

    return solve


def _policy(name: str, **kw: Any) -> Callable[[], Any]:
    def make() -> Any:
        from .. import restarts

        return getattr(restarts, name)(**kw)

    return make


def _cma(bipop: bool, bounded: bool = False, diagonal: bool = False, noise: bool = False
         ) -> Callable[[Recorder, int], None]:
    """pycma's ``fmin2`` with 9 restarts of doubling population (IPOP; BIPOP interleaves small ones), set up as
    COCO's experiments usually are: x0 uniform in the box shrunk by a tenth of its width on each side
    ([-4, 4]^d for BBOB's [-5, 5]^d), sigma0 a fifth of the width (2 for BBOB), unbounded; ``bounded``: the
    box as pycma's bounds; ``diagonal``: sep-CMA (pycma's ``CMA_diagonal``, a diagonal covariance);
    ``noise``: uncertainty handling (``cma.NoiseHandler``, UH-CMA-ES: re-evaluations, rank-change statistics,
    step-size increase), a fresh handler per restart. pycma's default is active CMA (aCMA-ES)."""

    def solve(rec: Recorder, seed: int) -> None:
        import cma

        lo, hi = rec.problem.bounds.T
        w = hi - lo
        x0 = np.random.default_rng(seed).uniform(lo + 0.1 * w, hi - 0.1 * w)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cma.fmin2(rec.point, x0, 0.2 * float(np.mean(w)), restarts=9, incpopsize=2, bipop=bipop,
                      noise_handler=cma.NoiseHandler if noise else None,
                      options={"maxfevals": rec.budget, "bounds": [lo.tolist(), hi.tolist()] if bounded else None,
                               "verbose": -9, "seed": seed + 1, "CMA_diagonal": diagonal})

    return solve


def _de(rec: Recorder, seed: int) -> None:
    from scipy.optimize import differential_evolution

    differential_evolution(lambda x: rec.batched(np.asarray(x).T), rec.problem.bounds, tol=0, atol=0,
                           maxiter=10**9, seed=seed, vectorized=True, polish=False, updating="deferred")


def _dual_annealing(rec: Recorder, seed: int) -> None:
    from scipy.optimize import dual_annealing

    dual_annealing(rec.point, rec.problem.bounds, maxfun=rec.budget, seed=seed)


def _cbx(rec: Recorder, seed: int) -> None:
    from cbx.dynamics import CBO

    d = rec.problem.dim
    lo, hi = rec.problem.bounds.T
    x = np.random.default_rng(seed).uniform(lo, hi, (1, 20, d))
    CBO(rec.batched, f_dim="3D", x=x, M=1, N=20, d=d, max_it=rec.budget // 20 + 1, verbosity=0,
        seed=seed).optimize()


def _torch_optim(kind: str) -> Callable[[Recorder, int], None]:
    """A gradient baseline: one point from a uniform start, gradients by torch autograd, learning rate 1e-3 of
    the box width (Lion: 1e-4). Each step costs one evaluation (the gradient comes with it by backpropagation)."""

    def solve(rec: Recorder, seed: int) -> None:
        import torch

        if kind in ("adam", "sgd"):
            make = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[kind]
        else:
            import pytorch_optimizer as po

            make = {"adabelief": po.AdaBelief, "lion": po.Lion, "diffgrad": po.DiffGrad}[kind]
        lo, hi = rec.problem.bounds.T
        x0 = np.random.default_rng(seed).uniform(lo, hi)
        x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        lr = 1e-3 * float(np.mean(hi - lo)) * (0.1 if kind == "lion" else 1.0)
        opt = make([x], lr=lr)
        f = rec.problem.batched
        while True:
            opt.zero_grad()
            e = f(x)  # differentiable: cbopt's test functions run on tensors
            if not isinstance(e, torch.Tensor):
                raise TypeError(f"{rec.problem.name} is not differentiable by torch")
            rec.batched(x.detach().numpy()[None])  # count and record (raises Stop at the budget/target)
            e.backward()
            opt.step()

    return solve


def _nevergrad(kind: str) -> Callable[[Recorder, int], None]:
    def solve(rec: Recorder, seed: int) -> None:
        import nevergrad as ng

        lo, hi = rec.problem.bounds.T
        param = ng.p.Array(shape=(rec.problem.dim,)).set_bounds(lo, hi)
        param.random_state = np.random.RandomState(seed)  # nevergrad's own API for seeding
        opt = ng.optimizers.registry[kind](parametrization=param, budget=rec.budget)
        opt.minimize(rec.point)

    return solve


#: name -> (adapter, module it needs)
SOLVERS: dict[str, tuple[Callable[[Recorder, int], None], str | None]] = {
    "cbopt:auto": (_cbopt_default(None), None),
    "cbopt:ach": (_cbopt_default("ach"), None),
    # ablations of the default (docs/ach.md): one mechanism taken away at a time
    "cbopt:ach+ipop": (_cbopt_default("ach", _policy("IPOP")), None),
    "cbopt:ach+bipop": (_cbopt_default("ach", _policy("BIPOP")), None),
    "cbopt:auto-cbo": (_cbopt_default(None, _policy("Portfolio", cbo=False)), None),
    "cbopt:auto-coordinate": (_cbopt_default(None, _policy("Portfolio", coordinate=False)), None),
    "cbopt:auto-adaptive": (_cbopt_default(None, _policy("Portfolio", adaptive=False)), None),
    "cbopt:auto-dominated": (_cbopt_default(None, _policy("Portfolio", dominated=0.0)), None),
    "cbopt:auto-plateau": (_cbopt_default(None, _policy("Portfolio", plateau=False)), None),
    "cbopt:auto-trend": (_cbopt_default(None, _policy("Portfolio", trend=1.0)), None),
    "cbopt:auto-active": (_cbopt_default(None, active=False), None),
    "cbopt:auto-reflect": (_cbopt_default(None, boundary="clip"), None),
    "cbopt:auto-orthogonal": (_cbopt_default(None, sampling="gaussian"), None),
    "cbopt:auto+orthogonal": (_cbopt_default(None, sampling="orthogonal"), None),
    # the default with its covariance model forced (docs/scale.md: the rule full for d <= 50, sep above)
    "cbopt:auto-full": (_cbopt_default(None, model="full"), None),
    "cbopt:auto-sep": (_cbopt_default(None, model="sep"), None),
    "cbopt:auto-lm": (_cbopt_default(None, model="lm"), None),
    "cbopt:cbo": (_cbopt("cbo", False), None),
    "cbopt:cbs": (_cbopt("cbs", False), None),
    "cbopt:ch": (_cbopt("ch", False), None),
    "cbopt:polarized": (_cbopt("polarized", False), None),
    "cbopt:cbo-memory": (_cbopt("cbo-memory", False), None),
    "cbopt:cbo+restarts": (_cbopt("cbo", True), None),
    "cbopt:cbs+restarts": (_cbopt("cbs", True), None),
    "cma:ipop": (_cma(False), "cma"),
    "cma:bipop": (_cma(True), "cma"),
    "cma:ipop+bounds": (_cma(False, True), "cma"),
    "cma:bipop+bounds": (_cma(True, True), "cma"),
    "cma:ipop-sep": (_cma(False, diagonal=True), "cma"),
    "cma:ipop-noise": (_cma(False, noise=True), "cma"),
    "cma:ipop-sep+bounds": (_cma(False, True, diagonal=True), "cma"),
    "scipy:de": (_de, "scipy"),
    "scipy:dual_annealing": (_dual_annealing, "scipy"),
    "cbx:cbo": (_cbx, "cbx"),
    "torch:adam": (_torch_optim("adam"), "torch"),
    "torch:sgd": (_torch_optim("sgd"), "torch"),
    "po:adabelief": (_torch_optim("adabelief"), "pytorch_optimizer"),
    "po:lion": (_torch_optim("lion"), "pytorch_optimizer"),
    "po:diffgrad": (_torch_optim("diffgrad"), "pytorch_optimizer"),
    "ng:cma": (_nevergrad("CMA"), "nevergrad"),
    "ng:twopointsde": (_nevergrad("TwoPointsDE"), "nevergrad"),
    "ng:pso": (_nevergrad("PSO"), "nevergrad"),
}
#: solvers that need the gradient of a torch-differentiable problem (cbopt's test functions, not BBOB)
GRADIENT = {"torch:adam", "torch:sgd", "po:adabelief", "po:lion", "po:diffgrad"}


def missing(name: str) -> str | None:
    """Why ``name`` cannot run here (an unknown name or a missing extra), or None."""
    if name not in SOLVERS:
        return f"unknown solver {name!r}; available: {sorted(SOLVERS)}"
    module = SOLVERS[name][1]
    if module is not None and not available(module):
        return f"{name} needs the {module!r} package (pip install 'cbopt[bench]')"
    return None


def applicable(name: str, problem: str) -> bool:
    """Gradient baselines run on differentiable problems only (cbopt's test functions under torch)."""
    return name not in GRADIENT or problem.startswith("cbopt:")


def solve(name: str, problem: BenchProblem, budget: int, target: float, seed: int,
          mirror: Callable[[np.ndarray], Any] | None = None) -> Recorder:
    """Run solver ``name`` on ``problem``; returns the recorder (evaluations, best, trace)."""
    rec = Recorder(problem, budget, target, mirror)
    from ..driver import ObjectiveError

    try:
        SOLVERS[name][0](rec, seed)
    except Stop:
        pass
    except ObjectiveError as e:  # cbopt's own solvers: the recorder's Stop (or the problem's error) inside
        if not isinstance(e.__cause__, Stop) and rec.error is None:
            raise
    if rec.error is not None:
        raise RuntimeError(f"{problem.name} raised {type(rec.error).__name__}: {rec.error}") from rec.error
    return rec
