"""The front door: :func:`minimize`."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import warnings
from typing import Any, NamedTuple
from collections.abc import Callable

import numpy as np

from ._backend import resolve_backend, to_numpy
from ._extras import available
from .driver import Run, run
from .methods import Problem, get_method
from .constraints import parse
from .evaluators import as_evaluator
from .scipy_adapter import scipy_hint
from .restarts import REFINERS, Portfolio, Sequence, as_policy, refine
from .result import OptimizeResult
from .stopping import MESSAGES, Status, StopRules

#: default per-run evaluation budget per dimension when no stopping budget is given
EVALS_PER_DIM = 5000


#: the library's log: INFO for defaults it chose, WARNING for what a user should know (non-finite values)
log = logging.getLogger("cbopt")

def minimize(
    fun: Callable[[Any], Any],
    x0: Any = None,
    *,
    bounds: Any = None,
    method: str = "auto",
    options: dict[str, Any] | None = None,
    rng: Any = None,
    callback: Callable[[OptimizeResult], Any] | None = None,
    max_evals: float | None = None,
    max_iter: int | None = None,
    max_time: float | None = None,
    target: float | None = None,
    xtol: float | None = 1e-12,
    ftol: float | None = 1e-12,
    ctol: float | None = None,
    patience: int = 500,
    divergence: float | None = 1e4,
    n_runs: int = 1,
    init_scale: Any = None,
    history: bool | str = False,
    on_error: str = "raise",
    dtype: Any = None,
    device: Any = None,
    compile: bool = False,
    restarts: Any = "auto",
    incpopsize: float = 2.0,
    refine: str | None = None,
    refine_budget: float = 0.1,
    constraints: Any = None,
    penalty: float = 10.0,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    evaluator: Any = None,
    args: tuple = (),
    progress: bool = False,
    **unknown: Any,
) -> OptimizeResult:
    """Minimise ``fun`` with a consensus-based method.

    Parameters
    ----------
    fun : callable
        Batched objective ``f(X[..., d]) -> E[...]`` (evaluate every point of the last axis at once).
        Wrap a per-point function ``f(x[d]) -> float`` with :func:`cbopt.vectorize`.
    x0 : array (d,), optional
        Centre of the initial swarm (``x0 + init_scale * N(0, I)``). Give ``x0`` or ``bounds`` or both.
    bounds : sequence of (lo, hi) pairs or array (d, 2), optional
        Search box. The search starts in it (when ``x0`` is not given), and by default no evaluated point
        ever leaves it: moves that would leave it are reflected at the faces (the method option
        ``boundary="reflect"``; ``None`` keeps the free dynamics, ``"clip"`` projects onto the faces).
    method : str
        ``"auto"`` (default): adaptive consensus hopping (``"ach"``) in the restart portfolio
        :class:`cbopt.restarts.Portfolio`, with coordinate-wise CBO as one of its regimes (with
        ``n_runs > 1``: that many batched ACH runs, no restarts); see docs/ach.md. Or any registered
        method name (case-insensitive), run once unless ``restarts`` says otherwise; see :func:`cbopt.methods`.
    options : dict, optional
        Hyper-parameters of the method (its ``Params`` fields), e.g. ``{"n_particles": 100, "sigma": 5}``.
    rng : int, numpy.random.Generator or None
        Seed or generator; every random draw of the call comes from it.
    callback : callable, optional
        Called after every iteration, chosen by its signature as scipy does: ``callback(intermediate_result)``
        (one parameter of that name) gets an :class:`OptimizeResult`, any other ``callback(xk)`` the best point
        so far. A truthy return, or ``StopIteration``, stops the run (reason ``CALLBACK``).
    max_evals, max_iter, max_time : budgets per run (evaluations, iterations) and for the call (seconds).
        Without any budget, ``max_evals = 5000 * d``. ``nfev <= max_evals`` always.
    target : stop a run once its best value is ``<= target``.
    xtol, ftol, ctol, patience, divergence : convergence, stagnation and divergence rules
        (see :class:`cbopt.stopping.StopRules`); ``None`` switches a rule off.
    n_runs : int
        ``M`` independent runs computed together (vectorised); the result is the best run, with all
        runs in ``result.runs``.
    init_scale : float or array (d,), optional
        Standard deviation of the initial cloud around ``x0`` (default: a quarter of the box width
        with bounds, else 1).
    history : bool or "particles"
        Record per-iteration best value, consensus, spread, alpha, sigma (and the particles).
    on_error : "raise" or "return"
        When ``fun`` raises: raise :class:`cbopt.ObjectiveError` (chained to the original exception,
        carrying the best-so-far result in ``.result``), or return that result with ``.exception``.
    dtype : "float32", "float64", a numpy or torch dtype, optional
        Floating type of the run. Default: that of ``x0``/``bounds`` when they are float arrays, else float64.
    device : str or torch.device, optional
        Run on torch on this device (``"cpu"``, ``"cuda"``, ``"cuda:1"``). A run is also on torch when
        ``x0`` or ``bounds`` is a tensor (on its device) or ``dtype`` is a torch dtype. A torch run calls
        ``fun`` with tensors and expects tensors back (wrap a numpy objective with :func:`cbopt.on_host`);
        ``x``, ``population``, ``energies`` and ``consensus`` of the result are tensors on the device.
    compile : bool
        Torch runs only: fuse the particle update with ``torch.compile`` (a one-off compilation of
        seconds, then fewer passes over the swarm; worth it for large swarms). Never required.
    restarts, incpopsize : restart policy
        ``"auto"``: the portfolio for ``method="auto"``, one run otherwise. ``None`` or 0: one run. An integer
        k: IPOP, restart with ``incpopsize`` times more particles whenever a run stops before the budget,
        up to k times. Or a policy object of :mod:`cbopt.restarts` (``IPOP``, ``BIPOP``, ``Portfolio``) or its
        name. The result is the best point over all runs (``res.restarts``, ``res.restart_log``);
        ``nfev <= max_evals`` over the whole sequence; ``res.reason`` says why the sequence ended and
        ``res.success`` whether its best run converged (or reached ``target``).
    refine : None, "auto", "l-bfgs-b", "nelder-mead" or "ch"
        Polish the best point with a local method and the evaluations held back for it
        (``refine_budget`` times ``max_evals``): scipy's L-BFGS-B / Nelder--Mead ("auto" when scipy is
        installed) or consensus hopping with a shrinking sigma. ``res.refine`` reports what it gained.
    constraints : Sphere, dict or list of them, optional
        ``cbopt.Sphere(radius, center)`` (projected dynamics) and scipy-style ``{"type": "eq"|"ineq",
        "fun": g}`` (``g(X) = 0`` / ``g(X) >= 0``, batched), handled by the exact penalty
        ``f + penalty * violation``. ``res.constraint_violation`` reports the violation at ``res.x``.
        See :mod:`cbopt.constraints`.
    checkpoint, checkpoint_every, resume
        Write the run's (or the restart sequence's) full state (including the random stream) to the file
        ``checkpoint`` every ``checkpoint_every`` iterations, at the end and on Ctrl-C (atomically: a crash while
        writing keeps the previous file). With ``resume=True`` an existing checkpoint is continued, and the result is
        bit-identical to that of the uninterrupted run; without the file the run starts afresh. The
        resuming call must use the same method, options, dimensions and seed (checked). See
        :mod:`cbopt.checkpoint`.
    progress : bool
        Show progress on stderr: a tqdm bar over the evaluation budget when tqdm is installed and stderr is a
        terminal, else a status line; the last line gives the final state (reason, best f, evaluations).
    args : tuple
        Extra arguments of the objective: ``fun(X, *args)`` (scipy's ``args``; a non-tuple is one argument).
    evaluator : None, int, Executor, distributed.Client, address or :class:`cbopt.Pool` / :class:`cbopt.Dask`
        How the points are evaluated: None calls the batched ``fun`` once per step; anything else
        evaluates a *per-point* ``fun(x[d]) -> float`` point by point in parallel (an int: a process pool
        of that many workers; an address ``"tcp://host:8786"``: a Dask cluster), with per-evaluation
        timeouts and failures turned into NaN and listed in ``res.eval_failures``. See
        :mod:`cbopt.evaluators`.

    Returns
    -------
    OptimizeResult
        ``x, fun, success, status, reason, message, nit, nfev, nfev_nonfinite, population, energies,
        consensus`` (+ ``runs`` when ``n_runs > 1``, ``history`` when asked for).

    Examples
    --------
    >>> import cbopt
    >>> res = cbopt.minimize(lambda X: ((X - 1.5) ** 2).sum(-1), bounds=[(-5, 5)] * 3, rng=0, target=1e-10)
    >>> res.success, bool(abs(res.x - 1.5).max() < 1e-4)
    (True, True)
    """
    if unknown:
        raise TypeError(_unknown_arguments(unknown))
    if not callable(fun):
        raise TypeError(f"fun: expected a callable objective f(X[..., d]) -> E[...], got {type(fun).__name__}")
    fun = _with_args(fun, args)
    if on_error not in ("raise", "return"):
        raise ValueError(f"on_error: expected 'raise' or 'return', got {on_error!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")
    callback = scipy_callback(callback)
    if not isinstance(progress, bool):
        raise TypeError(f"progress: expected True or False, got {progress!r}")
    if isinstance(refine, str):
        refine = refine.lower()
    st = setup(
        x0=x0, bounds=bounds, method=method, options=options, rng=rng, max_evals=max_evals, max_iter=max_iter,
        max_time=max_time, target=target, xtol=xtol, ftol=ftol, ctol=ctol, patience=patience,
        divergence=divergence, n_runs=n_runs, init_scale=init_scale, history=history, dtype=dtype, device=device,
        compile=compile, constraints=constraints, penalty=penalty, restarts=restarts, incpopsize=incpopsize,
    )
    spec, problem, rules, backend, cons = st.spec, st.problem, st.rules, st.backend, st.cons
    if refine is not None and refine not in REFINERS:
        raise ValueError(f"refine: expected None or one of {list(REFINERS)}, got {refine!r}")
    if not isinstance(refine_budget, (int, float)) or isinstance(refine_budget, bool) or not 0 <= refine_budget < 1:
        raise ValueError(f"refine_budget: must be a fraction in [0, 1), got {refine_budget!r}")
    if checkpoint is not None:
        if refine is not None or history:
            raise ValueError("checkpoint: not available with refine or history (neither is part of a checkpoint)")
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, np.integer)) \
                or checkpoint_every < 1:
            raise ValueError(f"checkpoint_every: must be an integer >= 1, got {checkpoint_every!r}")
    ev = as_evaluator(evaluator)
    if ev is not None and refine is not None:
        raise ValueError("refine calls the objective on single points itself: not available with an evaluator")
    if not isinstance(resume, bool):
        raise TypeError(f"resume: expected True or False, got {resume!r}")
    if refine is not None and (n_runs != 1 or history):
        raise ValueError("refine polishes one best point: use n_runs=1 and history=False")
    fun = cons.penalised(fun)
    budget = rules.max_evals
    reserve = 0
    if refine is not None and budget is not None:  # held back for the polish; the first run gets one population
        n0 = getattr(st.params, "n_particles", 1) or 1
        reserve = max(0, min(int(refine_budget * budget), int(budget) - n0))
    shown = None
    if progress:
        from .progress import Progress

        shown = Progress(total=None if budget is None else budget * n_runs)
        callback = _both(shown, callback)
    loop = make_loop(st, callback=callback, history=history, reserve=reserve)
    if checkpoint is not None:
        res = _run_checkpointed(loop, fun, on_error, checkpoint, checkpoint_every, resume, ev)
    else:
        res = run(spec, st.params, problem, fun, st.sampler, rules, on_error=on_error, loop=loop, evaluate=ev)
    if refine is not None and res.get("x") is not None and Status(res.status) not in FINAL_STOPS:
        if problem.project is not None and refine in ("l-bfgs-b", "nelder-mead", "auto"):
            refine = "ch"  # the scipy polishers would leave the manifold; CH's samples are projected onto it
        elif (cons.eq or cons.ineq) and refine == "auto":
            refine = "nelder-mead"  # the exact penalty has kinks on the constraint: no gradients there
        _polish(res, refine, fun, st, budget)
    if ev is not None:
        res.eval_failures = list(ev.failures)
        if ev is not evaluator:  # made here from an int or an address: ours to close
            ev.close()
        if res.eval_failures:  # the cause belongs in the message, not only in the list
            n, first = len(res.eval_failures), res.eval_failures[0]["error"]
            said = f"{n} evaluation{'s' if n > 1 else ''} failed in the evaluator (first: {first})"
            res.message = f"{res.message} {said}." if Status(res.status) is not Status.NONFINITE else (
                f"Every evaluated point failed or was non-finite: {said}; see res.eval_failures.")
            warnings.warn(f"cbopt.minimize: {said}; see res.eval_failures", RuntimeWarning, stacklevel=2)
    if constraints is not None:
        _report_violation(res, cons, backend)
    if res.get("nfev_nonfinite"):
        log.warning("%d of %d evaluations were non-finite (NaN or inf): counted as +inf, weight 0",
                    int(res.nfev_nonfinite), int(res.nfev))
    if shown is not None:
        shown.close(res)
    return res


def _both(progress: Callable[[OptimizeResult], Any], callback: Callable[[OptimizeResult], Any] | None
          ) -> Callable[[OptimizeResult], Any]:
    def both(intermediate_result: OptimizeResult) -> Any:
        progress(intermediate_result)
        return None if callback is None else callback(intermediate_result)

    return both


#: statuses after which no refinement runs: the user, the objective or the clock ended the call
def _unknown_arguments(unknown: dict[str, Any]) -> str:
    said = [f"{k}= is scipy's; cbopt's is {scipy_hint(k)}" for k in unknown if scipy_hint(k)]
    other = [k for k in unknown if not scipy_hint(k)]
    if other:
        said.append(f"unexpected keyword argument(s) {other}; see help(cbopt.minimize)")
    return "minimize: " + "; ".join(said)


def _with_args(fun: Callable[..., Any], args: Any) -> Callable[[Any], Any]:
    if args is None or (isinstance(args, tuple) and not args):
        return fun
    args = args if isinstance(args, tuple) else (args,)

    def with_args(x: Any) -> Any:
        return fun(x, *args)

    if getattr(fun, "per_point", False):
        with_args.per_point = True  # type: ignore[attr-defined]
    return with_args


def scipy_callback(callback: Callable[..., Any] | None) -> Callable[[OptimizeResult], Any] | None:
    """scipy's rule: a callback with one parameter named ``intermediate_result`` gets the
    :class:`OptimizeResult`; any other gets ``xk``, the best point so far. Returns a callback of the result."""
    if callback is None:
        return None
    try:
        names = list(inspect.signature(callback).parameters)
    except (TypeError, ValueError):  # builtins without a signature: scipy's xk
        names = []
    if names == ["intermediate_result"]:
        return callback

    def xk(r: OptimizeResult) -> Any:
        x = r.x
        return callback(x.copy() if isinstance(x, np.ndarray) else x.clone())

    return xk


FINAL_STOPS = frozenset({Status.CALLBACK, Status.INTERRUPTED, Status.OBJECTIVE_ERROR, Status.MAX_TIME})


def make_loop(st: Setup, callback: Any = None, history: Any = False, reserve: int = 0) -> Any:
    """The loop a call drives: one :class:`Run`, or a restart :class:`Sequence` of runs (same interface)."""
    rules = st.rules
    if reserve:
        rules = dataclasses.replace(rules, max_evals=rules.max_evals - reserve)
    if st.policy is None:
        return Run(st.spec, st.params, st.problem, st.sampler, rules, callback, history)
    return Sequence(st.policy, st.spec, st.params, st.problem, st.sampler, rules, callback, options=st.options,
                    history=bool(history))


def _polish(res: OptimizeResult, method: str, fun: Any, st: Setup, budget: float | None) -> None:
    """Refine ``res`` in place with what is left of ``budget``."""
    used = int(res.nfev)
    if budget is not None and used >= budget:
        return
    left = None if budget is None else int(budget) - used
    box = getattr(st.params, "boundary", None)  # the refinement keeps to the box when the method does
    x, f, n = refine(method, fun, res, st.problem, st.sampler, st.rules, left, st.backend.asarray, box)
    res.refine = {"method": "l-bfgs-b" if method == "auto" and available("scipy") else
                  ("ch" if method == "auto" else method), "nfev": n,
                  "improvement": float(res.fun - f) if f < res.fun else 0.0}
    res.nfev = used + n
    if f < res.fun:
        res.x, res.fun = x, f
        if st.rules.target is not None and f <= st.rules.target:
            res.status, res.reason, res.success = int(Status.TARGET), "TARGET", True
            res.message = MESSAGES[Status.TARGET]


class Setup(NamedTuple):
    """Everything a call needs, validated: shared by :func:`minimize` and :class:`cbopt.Optimizer`."""

    spec: Any
    params: Any
    problem: Problem
    sampler: Any
    rules: StopRules
    backend: Any
    cons: Any
    policy: Any = None  # a restart policy (cbopt.restarts), or None for one run
    options: Any = None  # the method options as given (restart runs start from them)


def setup(
    *, x0: Any = None, bounds: Any = None, method: Any = "cbo", options: Any = None, rng: Any = None,
    max_evals: Any = None, max_iter: Any = None, max_time: Any = None, target: Any = None, xtol: Any = 1e-12,
    ftol: Any = 1e-12, ctol: Any = None, patience: Any = 500, divergence: Any = 1e4, n_runs: Any = 1,
    init_scale: Any = None, history: Any = False, dtype: Any = None, device: Any = None, compile: Any = False,
    constraints: Any = None, penalty: Any = 10.0, restarts: Any = "auto", incpopsize: Any = 2.0,
) -> Setup:
    """Validate the arguments of a call (clear errors) and build its parts; the defaults are those of
    :func:`minimize`."""
    auto = isinstance(method, str) and method.lower() == "auto"
    spec = get_method("ach" if auto else method)
    if isinstance(incpopsize, bool) or not isinstance(incpopsize, (int, float)) or not incpopsize >= 1:
        raise ValueError(f"incpopsize: must be a number >= 1, got {incpopsize!r}")
    if isinstance(restarts, str) and restarts == "auto":
        # the default: the portfolio for one run; n_runs > 1 asks for M batched ACH runs instead
        policy = Portfolio(incpopsize=float(incpopsize)) if auto and n_runs == 1 else None
    else:
        policy = as_policy(restarts, float(incpopsize))
    backend = resolve_backend(x0, bounds, dtype=dtype, device=device)
    lo, hi = _check_bounds(bounds)
    x0 = _check_x0(x0)
    if x0 is None and lo is None:
        raise ValueError("give x0 (a start point) or bounds (a search box): cbopt needs to know where to start")
    if x0 is not None and lo is not None:
        if x0.shape[0] != lo.shape[0]:
            raise ValueError(f"x0 has length {x0.shape[0]} but bounds describe {lo.shape[0]} dimensions")
        if np.any(x0 < lo) or np.any(x0 > hi):
            raise ValueError("x0 lies outside bounds")
    dim = int(x0.shape[0] if x0 is not None else lo.shape[0])
    if isinstance(n_runs, bool) or not isinstance(n_runs, (int, np.integer)) or n_runs < 1:
        raise ValueError(f"n_runs: must be an integer >= 1, got {n_runs!r}")
    if history not in (False, True, "particles"):
        raise ValueError(f"history: expected False, True or 'particles', got {history!r}")
    scale = _check_init_scale(init_scale, dim, lo, hi)
    params = spec.make_params(options, dim)
    if max_evals is None and max_iter is None and max_time is None:
        max_evals = EVALS_PER_DIM * dim
        log.info("no budget given: max_evals = %d * d = %d evaluations per run", EVALS_PER_DIM, max_evals)
    rules = StopRules(
        max_evals=max_evals, max_iter=max_iter, max_time=max_time, target=target, xtol=xtol, ftol=ftol,
        ctol=ctol, patience=patience, divergence=divergence,
    )
    n0 = getattr(params, "n_particles", None)
    if max_evals is not None and n0 is not None and max_evals < n0:
        raise ValueError(f"max_evals={max_evals} is smaller than one population (n_particles={n0})")
    if backend.name not in spec.backends:
        raise ValueError(f"method {spec.name!r} runs on {list(spec.backends)}, not on {backend.name}")
    if not isinstance(compile, bool):
        raise TypeError(f"compile: expected True or False, got {compile!r}")
    sampler = backend.sampler(rng, compile=compile)
    cons = parse(constraints, penalty)
    if constraints is not None and not spec.supports_constraints:
        raise ValueError(f"method {spec.name!r} does not support constraints (see cbopt.methods())")
    problem = Problem(
        dim=dim, n_runs=int(n_runs), lo=backend.asarray(lo), hi=backend.asarray(hi), x0=backend.asarray(x0),
        init_scale=scale if isinstance(scale, float) else backend.asarray(scale), dtype=backend.dtype,
        project=None if cons.sphere is None else cons.sphere.projector(backend.asarray),
    )
    if policy is not None:
        if n_runs != 1:
            raise ValueError("restarts run one sequence of runs: use n_runs=1 (or restarts=None for M batched runs)")
        if history == "particles":
            raise ValueError("history='particles' records one run's swarm: not available with restarts (its runs' "
                             "populations differ in size); use history=True or restarts=None")
        if getattr(params, "n_particles", None) is None:
            raise ValueError(f"restarts: method {spec.name!r} has no population size to grow")
    return Setup(spec, params, problem, sampler, rules, backend, cons, policy, options)


def _run_checkpointed(loop: Any, fun: Any, on_error: str, path: Any, every: int, resume: bool,
                      evaluate: Any = None) -> Any:
    from . import checkpoint as ckpt

    if resume and os.path.exists(path):
        ckpt.load(path, loop)

    def after(r: Any) -> None:
        if r.it % every == 0:
            ckpt.save(path, r)

    try:
        return run(None, None, None, fun, None, None, on_error=on_error, loop=loop, after_step=after,
                   evaluate=evaluate)
    finally:  # the end, an error or Ctrl-C: keep the last consistent state (not one torn mid-step)
        if not loop.busy:
            ckpt.save(path, loop)


def _report_violation(res: OptimizeResult, cons: Any, backend: Any) -> None:
    for r in [res] + list(res.get("runs", [])):
        if r.get("x") is None:
            continue
        v = 0.0
        if cons.eq or cons.ineq:
            v += float(to_numpy(cons.violation_of(backend.asarray(r.x)[None])).reshape(-1)[0])
        if cons.sphere is not None:
            v += cons.sphere.violation(r.x)
        r.constraint_violation = v


def _as_float_array(name: str, v: Any) -> np.ndarray:
    if hasattr(v, "detach") and hasattr(v, "cpu"):  # a tensor, wherever it lives
        v = to_numpy(v)
    try:
        a = np.asarray(v, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected numbers, got {v!r}") from exc
    return a


def _check_bounds(bounds: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Accept scipy-style (lo, hi) pairs, a (d, 2) array, or an object with ``lb``/``ub`` (scipy Bounds)."""
    if bounds is None:
        return None, None
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        lo, hi = _as_float_array("bounds.lb", bounds.lb), _as_float_array("bounds.ub", bounds.ub)
        b = np.stack(np.broadcast_arrays(np.atleast_1d(lo), np.atleast_1d(hi)), axis=-1)
    else:
        b = _as_float_array("bounds", bounds)
    if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] < 1:
        raise ValueError(f"bounds: expected a sequence of (lo, hi) pairs or a (d, 2) array, got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError("bounds: every bound must be finite (the box defines where the swarm starts)")
    if np.any(b[:, 0] >= b[:, 1]):
        i = int(np.argmax(b[:, 0] >= b[:, 1]))
        raise ValueError(f"bounds: need lo < hi in every coordinate; coordinate {i} has {tuple(b[i])}")
    return b[:, 0].copy(), b[:, 1].copy()


def _check_x0(x0: Any) -> np.ndarray | None:
    if x0 is None:
        return None
    x = _as_float_array("x0", x0)
    if x.ndim != 1 or x.shape[0] < 1:
        raise ValueError(f"x0: expected a 1-D array of length d, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x0: must be finite")
    return x.copy()


def _check_init_scale(scale: Any, dim: int, lo: np.ndarray | None, hi: np.ndarray | None) -> Any:
    if scale is None:
        return (hi - lo) / 4.0 if lo is not None else 1.0
    s = _as_float_array("init_scale", scale)
    if s.ndim > 1 or (s.ndim == 1 and s.shape[0] != dim):
        raise ValueError(f"init_scale: expected a number or {dim} numbers, got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("init_scale: must be finite and > 0")
    return float(s) if s.ndim == 0 else s
