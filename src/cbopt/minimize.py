"""The front door: :func:`minimize`."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ._backend import Sampler, Torch, run_backend, to_numpy
from ._extras import available
from ._names import STOP_ONLY, scipy_hint, spelled
from .checkpoint import as_checkpoint
from .constraints import parse
from .driver import EvaluatorError, Loop, ObjectiveError, Run, drive_loop
from .evaluators import as_evaluator
from .integrality import parse as parse_integrality
from .methods import Problem, get_method
from .noisy import Watch, as_noisy, assess
from .objectives._wrap import WithArgs
from .refine import as_refine, refine
from .restarts import Portfolio, as_policy
from .result import OptimizeResult
from .sequence import Sequence
from .stopping import Status, Stop, as_stop
from .validation import fits_in_memory, flag, number

#: the library's log: INFO for defaults it chose, WARNING for what a user should know (non-finite values)
log = logging.getLogger("cbopt")

def minimize(
    fun: Callable[[Any], Any],
    x0: Any = None,
    *,
    args: tuple = (),
    bounds: Any = None,
    constraints: Any = None,
    integrality: Any = None,
    method: str = "auto",
    options: dict[str, Any] | None = None,
    rng: Any = None,
    max_evals: float | None = None,
    target: float | None = None,
    stop: Stop | None = None,
    restarts: Any = "auto",
    n_runs: int = 1,
    refine: Any = None,
    checkpoint: Any = None,
    evaluator: Any = None,
    backend: Any = None,
    callback: Callable[..., Any] | None = None,
    progress: bool = False,
    history: bool | str = False,
    noisy: Any = "auto",
    **unknown: Any,
) -> OptimizeResult:
    """Minimise ``fun`` with a consensus-based method.

    The arguments come in groups: the problem (``fun`` to ``integrality``), the method (``method``,
    ``options``, ``rng``), when to stop (``max_evals``, ``target``, ``stop``), the runs (``restarts``,
    ``n_runs``, ``refine``), where it runs (``checkpoint``, ``evaluator``, ``backend``) and what it reports
    (``callback``, ``progress``, ``history``). Each group with more than one setting takes a typed policy
    object whose defaults are written once, in its class.

    Parameters
    ----------
    fun : callable
        Batched objective ``f(X[..., d]) -> E[...]`` (evaluate every point of the last axis at once).
        A per-point function ``f(x[d]) -> float`` fails on the first call with a one-line error; wrap it
        with :func:`cbopt.vectorize` (or give an ``evaluator``, which calls it point by point in parallel).
    x0 : array (d,), optional
        Centre of the initial swarm (``x0 + init_scale * N(0, I)``; ``init_scale`` is an option every method
        takes, default a quarter of the box width with bounds, else 1). Give ``x0`` or ``bounds`` or both.
    args : tuple
        Extra arguments of the objective: ``fun(X, *args)`` (scipy's ``args``; a non-tuple is one argument).
    bounds : sequence of (lo, hi) pairs, array (d, 2) or scipy ``Bounds``, optional
        Search box. The search starts in it (when ``x0`` is not given), and by default no evaluated point
        ever leaves it: moves that would leave it are reflected at the faces (the method option
        ``boundary="reflect"``; ``None`` keeps the free dynamics, ``"clip"`` projects onto the faces).
    constraints : Sphere, dict, scipy constraint or list of them, optional
        ``cbopt.Sphere(radius, center)`` (projected dynamics); scipy-style ``{"type": "eq"|"ineq", "fun": g}``
        (``g(X) = 0`` / ``g(X) >= 0``, batched) and scipy's ``LinearConstraint`` / ``NonlinearConstraint``,
        handled by the exact penalty ``f + 10 * violation`` (another weight: ``cbopt.Penalty(constraints,
        weight)``). ``res.constraint_violation`` reports the violation at ``res.x``. See :mod:`cbopt.constraints`.
    integrality : array of bool (d,), optional
        scipy's ``integrality``: the coordinates that take integer values. They are rounded wherever the
        objective is evaluated (within the bounds), and ``res.x`` is integral there.
    method : str
        ``"auto"`` (default): adaptive consensus hopping (``"ach"``) in the restart portfolio
        :class:`cbopt.restarts.Portfolio`, with coordinate-wise CBO as one of its regimes (with
        ``n_runs > 1``: that many batched ACH runs, no restarts); see docs/ach.md. Or any registered
        method name (case-insensitive), run once unless ``restarts`` says otherwise; see :func:`cbopt.methods`.
    options : dict, optional
        Hyper-parameters of the method (its ``Params`` fields), e.g. ``{"n_particles": 100, "sigma": 5}``,
        and ``init_scale`` (a number or ``d`` numbers), which every method takes.
    rng : int, numpy.random.Generator or None
        Seed or generator; every random draw of the call comes from it.
    max_evals, target : the two most used stopping rules, also fields of ``stop``
        Evaluations per run (``nfev <= max_evals`` always; without any budget ``5000 * d``), and a value
        at which a run stops with success.
    stop : cbopt.Stop, optional
        Every stopping rule: budgets (``max_evals``, ``max_iter``, ``max_time``), ``target``, convergence
        (``xtol``), stagnation (``ftol``, ``ctol``, ``patience``) and ``divergence``; ``None`` switches a rule
        off. See :class:`cbopt.Stop`.
    restarts : restart policy
        ``"auto"``: the portfolio for ``method="auto"``, one run otherwise. ``None`` or 0: one run. An integer
        k: IPOP, restart with twice the particles whenever a run stops before the budget, up to k times. Or
        a policy object of :mod:`cbopt.restarts` (``IPOP(k, incpopsize)``, ``BIPOP``, ``Portfolio``) or its
        name. The result is the best point over all runs (``res.restarts``, ``res.restart_log``);
        ``nfev <= max_evals`` over the whole sequence; ``res.reason`` says why the sequence ended and
        ``res.success`` whether its best run converged (or reached ``target``).
    n_runs : int
        ``M`` independent runs computed together (vectorised, no restarts); the result is the best run,
        with all runs in ``result.runs``.
    refine : None, a name or cbopt.Refine
        Polish the best point with a local method and the evaluations held back for it:
        ``cbopt.Refine(method, budget=0.1)``, or just the method's name: ``"auto"`` (scipy's L-BFGS-B when
        scipy is installed, else consensus hopping), ``"l-bfgs-b"``, ``"nelder-mead"``, ``"ch"``.
        ``res.refine`` reports what it gained.
    checkpoint : path or cbopt.Checkpoint, optional
        Write the run's (or the restart sequence's) full state, random stream included, to a file every
        100 iterations, at the end and on Ctrl-C (atomically). ``cbopt.Checkpoint(path, every, resume=True)``
        continues an existing file, bit-identically to the uninterrupted run. The resuming call must use the
        same method, options, dimensions and seed (checked). See :mod:`cbopt.checkpoint`.
    evaluator : None, int, Executor, distributed.Client, address or :class:`cbopt.Pool` / :class:`cbopt.Dask`
        How the points are evaluated: None calls the batched ``fun`` once per step; anything else
        evaluates a *per-point* ``fun(x[d]) -> float`` point by point in parallel (an int: a process pool
        of that many workers; an address ``"tcp://host:8786"``: a Dask cluster), with per-evaluation
        timeouts and failures turned into NaN and listed in ``res.eval_failures``. See
        :mod:`cbopt.evaluators`.
    backend : None, "numpy", "torch", a torch device, cbopt.Numpy or cbopt.Torch
        Where the swarm lives. Default: numpy, or torch when ``x0``/``bounds`` is a tensor (on its device);
        the dtype is that of ``x0``/``bounds`` when they are float arrays, else float64.
        ``backend="cuda"`` is ``cbopt.Torch("cuda")``; ``cbopt.Torch(device, dtype, compile)`` and
        ``cbopt.Numpy(dtype)`` say more. A torch run calls ``fun`` with tensors and expects tensors back
        (wrap a numpy objective with :func:`cbopt.on_host`); ``x``, ``population``, ``energies`` and
        ``consensus`` of the result are tensors on the device.
    callback : callable, optional
        Called after every iteration, chosen by its signature as scipy does: ``callback(intermediate_result)``
        (one parameter of that name) gets an :class:`OptimizeResult`, any other ``callback(xk)`` the best point
        so far. A truthy return, or ``StopIteration``, stops the run (reason ``CALLBACK``).
    progress : bool
        Show progress on stderr: a tqdm bar over the evaluation budget when tqdm is installed and stderr is a
        terminal, else a status line; the last line gives the final state (reason, best f, evaluations).
    history : bool or "particles"
        Record per-iteration best value, consensus, spread, alpha, sigma (and the particles).
    noisy : "auto", bool, float or cbopt.Noisy
        Whether ``fun`` is noisy (returns different values for the same point). ``"auto"``: find out by
        re-evaluating the best point after the first population and whenever the evaluations have doubled
        (at most ``log2(max_evals / n)`` evaluations; on a deterministic ``fun`` nothing else changes).
        ``True`` or the noise's standard deviation: it is. ``False``: it is not (nothing is re-evaluated).
        On a noisy ``fun``, 5% of the budget (at most 1000 evaluations) is held back to re-evaluate the
        candidates for ``res.x`` (the best draw, the consensus points): ``res.x`` is the one with the lowest
        interquartile mean, ``res.fun`` the mean of its re-evaluations, with ``res.fun_sem``, ``res.noise_sd``,
        ``res.luckiest`` (the lowest draw) and ``res.noisy``. See :mod:`cbopt.noisy` and docs/noisy.md.

    Returns
    -------
    OptimizeResult
        ``x, fun, success, status, reason, message, nit, nfev, nfev_nonfinite, population, energies,
        consensus`` (+ ``runs`` when ``n_runs > 1``, ``history`` when asked for).

    Raises
    ------
    cbopt.ObjectiveError
        When ``fun`` raises; chained to the original exception, with the best-so-far result in ``.result``.

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
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")
    callback = scipy_callback(callback)
    flag("progress", progress)
    polish = as_refine(refine)
    ckpt = as_checkpoint(checkpoint)
    noise = as_noisy(noisy)
    st = prepare(x0=x0, bounds=bounds, method=method, options=options, rng=rng, max_evals=max_evals,
                 target=target, stop=stop, n_runs=n_runs, history=history, backend=backend, constraints=constraints,
                 integrality=integrality, restarts=restarts)
    problem, rules, cons = st.problem, st.rules, st.cons
    if ckpt is not None and (polish is not None or history):
        raise ValueError("checkpoint: not available with refine or history (neither is part of a checkpoint)")
    ev = as_evaluator(evaluator)
    if ev is not None and polish is not None:
        raise ValueError("refine calls the objective on single points itself: not available with an evaluator")
    if polish is not None and (n_runs != 1 or history):
        raise ValueError("refine polishes one best point: use n_runs=1 and history=False")
    fun = st.integers.rounded(fun) if st.integers is not None else fun
    fun = cons.penalised(fun)
    budget = rules.max_evals
    reserve = 0
    if polish is not None and budget is not None:  # held back for the polish; the first run gets one population
        n0 = getattr(st.params, "n_particles", 1) or 1
        reserve = max(0, min(int(polish.budget * budget), int(budget) - n0))
    watch = None
    if noise is not None:
        loop_budget = None if budget is None else budget - reserve
        watch = Watch(noise, _evaluator_of(fun, ev), loop_budget, int(getattr(st.params, "n_particles", 1) or 1))
        reserve += watch.reserve
    shown = None
    if progress:
        from .progress import Progress

        shown = Progress(total=None if budget is None else budget * n_runs)
        callback = _both(shown, callback)
    loop = make_loop(st, callback=callback, history=history, reserve=reserve)
    defaulted = not as_stop(stop).with_flat(max_evals=max_evals).has_budget
    forecast = Forecast(budget * n_runs) if defaulted and budget is not None else None
    after_step = _all_of(forecast, watch)
    res = drive_call(loop, fun, ckpt, ev, evaluator, rules.max_time, after_step=after_step, watch=watch,
                     target=rules.target)
    if polish is not None and res.get("noisy"):
        log.warning("refine: skipped, the objective is noisy (a local method would follow the noise)")
    elif polish is not None and res.get("x") is not None and not Status(res.status).ends_the_call:
        how = polish.method
        if problem.project is not None and how in ("l-bfgs-b", "nelder-mead", "auto"):
            how = "ch"  # the scipy polishers would leave the manifold; CH's samples are projected onto it
        elif (cons.eq or cons.ineq or st.integers is not None) and how == "auto":
            how = "nelder-mead"  # the exact penalty has kinks on the constraint, rounding steps: no gradients
        _polish(res, how, fun, st, budget)
    st.settle(res)
    if res.get("nfev_nonfinite") and not res.get("eval_failures"):  # failures were warned about just above
        log.warning("%d of %d evaluations were non-finite (NaN or inf): counted as +inf, weight 0",
                    int(res.nfev_nonfinite), int(res.nfev))
    if shown is not None:
        shown.close(res)
    return res


def drive_call(loop: Loop, fun: Callable[[Any], Any], ckpt: Any, ev: Any, given: Any, max_time: float | None, *,
               after_step: Callable[[Any], Any] | None = None, watch: Any = None, target: float | None = None,
               vector: bool = False, who: str = "cbopt.minimize") -> OptimizeResult:
    """Drive ``loop`` to its end for a front door (:func:`minimize`, :func:`cbopt.minimax`,
    :func:`cbopt.multiobjective`): with checkpoints (``ckpt``), through the evaluator ``ev`` (``given``: what the
    caller passed; an evaluator made here from a number or an address is closed here, also when the run raises)
    bounded by ``max_time``; its failures go into ``res.eval_failures`` and the message. ``watch``: the noise
    check of :mod:`cbopt.noisy`, whose assessment (against ``target``) ends the loop's result. ``vector``: the
    objective returns a vector per point (the evaluator gathers rows)."""
    seen_failures = 0 if ev is None else len(ev.failures)  # a reused evaluator keeps earlier calls' failures
    if ev is not None and max_time is not None:  # a hung point must not hold the run past its max_time
        ev.deadline = time.monotonic() + max_time
    evaluate = ev
    if ev is not None and vector:
        def evaluate(f: Callable[[Any], Any], x: Any) -> Any:
            return ev(f, x, vector=True)
    try:
        if ckpt is not None:
            res = _run_checkpointed(loop, fun, ckpt, evaluate, after_step, watch)
        else:
            res = drive_loop(loop, fun, after_step=after_step, evaluate=evaluate)
        if watch is not None:
            assess(res, watch, target, getattr(loop, "last", None))
    except (ObjectiveError, EvaluatorError) as exc:
        if watch is not None and exc.result is not None and watch.nfev:  # the noise check's evaluations count
            exc.result.nfev = int(exc.result.nfev) + watch.nfev
            exc.result.noise_checks = watch.nfev
        raise
    finally:
        if ev is not None:
            ev.deadline = None
            if ev is not given:
                ev.close()
    if ev is not None:
        res.eval_failures = list(ev.failures[seen_failures:])
        if res.eval_failures:  # the cause belongs in the message, not only in the list
            n, first = len(res.eval_failures), res.eval_failures[0]["error"]
            said = f"{n} evaluation{'s' if n > 1 else ''} failed in the evaluator (first: {first})"
            res.message = f"{res.message} {said}." if Status(res.status) is not Status.NONFINITE else (
                f"Every evaluated point failed or was non-finite: {said}; see res.eval_failures.")
            warnings.warn(f"{who}: {said}; see res.eval_failures", RuntimeWarning, stacklevel=3)
    return res


def _all_of(*hooks: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """One after-step hook that calls each given one in turn."""
    given = [h for h in hooks if h is not None]
    if len(given) <= 1:
        return given[0] if given else None

    def each(r: Any) -> None:
        for h in given:
            h(r)

    return each


def _evaluator_of(fun: Callable[[Any], Any], ev: Any) -> Callable[[Any], Any]:
    """``X -> values`` through the call's evaluator (if any), on a read-only view, as the loop calls ``fun``."""
    from .driver import read_only

    if ev is None:
        return lambda X: fun(read_only(X))
    return lambda X: ev(fun, read_only(X))


def _both(progress: Callable[[OptimizeResult], Any], callback: Callable[[OptimizeResult], Any] | None
          ) -> Callable[[OptimizeResult], Any]:
    def both(intermediate_result: OptimizeResult) -> Any:
        progress(intermediate_result)
        return None if callback is None else callback(intermediate_result)

    return both


#: statuses after which no refinement runs: the user, the objective or the clock ended the call
#: the settings that were flat arguments of minimize and are now fields of a policy object: where they are
MOVED = {
    **{k: spelled(k) for k in STOP_ONLY},
    "incpopsize": "restarts=cbopt.restarts.IPOP(k, incpopsize=...)",
    "refine_budget": "refine=cbopt.Refine(method, budget=...)",
    "checkpoint_every": "checkpoint=cbopt.Checkpoint(path, every=...)",
    "resume": "checkpoint=cbopt.Checkpoint(path, resume=True)",
    "penalty": "constraints=cbopt.Penalty(constraints, weight=...)",
    "dtype": "backend=cbopt.Numpy(dtype) or cbopt.Torch(device, dtype)",
    "device": "backend='cuda' or backend=cbopt.Torch(device)",
    "compile": "backend=cbopt.Torch(device, compile=True)",
    "init_scale": "options={'init_scale': ...}",
    "on_error": "nothing: catch cbopt.ObjectiveError, whose .result holds the best-so-far result",
}


def _unknown_arguments(unknown: dict[str, Any]) -> str:
    said = [f"{k}= is scipy's; cbopt's is {scipy_hint(k)}" for k in unknown if scipy_hint(k)]
    said += [f"{k}= is now {MOVED[k]}" for k in unknown if k in MOVED]
    other = [k for k in unknown if not scipy_hint(k) and k not in MOVED]
    if other:
        said.append(f"unexpected keyword argument(s) {other}; see help(cbopt.minimize)")
    return "minimize: " + "; ".join(said)


def _with_args(fun: Callable[..., Any], args: Any) -> Callable[[Any], Any]:
    if args is None or (isinstance(args, tuple) and not args):
        return fun
    return WithArgs(fun, args if isinstance(args, tuple) else (args,))


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




def make_loop(st: Setup, callback: Any = None, history: Any = False, reserve: int = 0) -> Loop:
    """The loop a call drives: one :class:`Run`, or a restart :class:`Sequence` of runs (same interface)."""
    rules = st.rules
    if reserve and rules.max_evals is not None:
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
            res.message = Status.TARGET.message


class Setup(NamedTuple):
    """Everything a call needs, validated: shared by :func:`minimize` and :class:`cbopt.Optimizer`."""

    spec: Any
    params: Any
    problem: Problem
    sampler: Sampler
    rules: Stop
    backend: Any
    cons: Any
    policy: Any = None  # a restart policy (cbopt.restarts), or None for one run
    options: Any = None  # the method options as given (restart runs start from them)
    integers: Any = None  # the integer coordinates (cbopt.integrality.Integers), or None
    constrained: bool = False  # constraints were given: results report their violation

    def settle(self, res: OptimizeResult) -> None:
        """What the problem says of a result, at every door over a Setup (:func:`minimize`, the ask/tell
        :class:`cbopt.Optimizer`): integer coordinates rounded; with constraints, the violation at ``x`` measured
        (``res.constraint_violation``; an infeasible point is no success)."""
        if self.integers is not None:
            self.integers.round_result(res)
        if self.constrained:
            _report_violation(res, self.cons, self.backend)


def prepare(
    *, x0: Any = None, bounds: Any = None, method: Any = "auto", options: Any = None, rng: Any = None,
    max_evals: Any = None, target: Any = None, stop: Any = None, n_runs: Any = 1, history: Any = False,
    backend: Any = None, constraints: Any = None, integrality: Any = None, restarts: Any = "auto",
) -> Setup:
    """Validate the arguments of a call (clear errors) and build its parts; the defaults are those of
    :func:`minimize`."""
    auto = isinstance(method, str) and method.lower() == "auto"
    spec = get_method("ach" if auto else method)
    if isinstance(restarts, str) and restarts == "auto":
        # the default: the portfolio for one run; n_runs > 1 asks for M batched ACH runs instead
        policy = Portfolio() if auto and n_runs == 1 else None
    else:
        policy = as_policy(restarts)
    resolved, where = run_backend(backend, x0, bounds)
    lo, hi, x0, dim = start_region(bounds, x0)
    n_runs = number("n_runs", n_runs, at_least=1, integer=True)
    if history not in (False, True, "particles"):
        raise ValueError(f"history: expected False, True or 'particles', got {history!r}")
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options: expected a dict of the method's options, got {type(options).__name__}")
    options = dict(options or {})
    scale = check_init_scale(options.pop("init_scale", None), dim, lo, hi)
    params = spec.make_params(options, dim)
    _fits_in_memory(spec, params, dim, int(n_runs))
    rules = as_stop(stop).with_flat(max_evals=max_evals, target=target).budgeted(dim)
    n0 = getattr(params, "n_particles", None)
    if rules.max_evals is not None and n0 is not None and rules.max_evals < n0:
        raise ValueError(f"max_evals={rules.max_evals} is smaller than one population (n_particles={n0})")
    if resolved.name not in spec.backends:
        raise ValueError(f"method {spec.name!r} runs on {list(spec.backends)}, not on {resolved.name}")
    sampler = resolved.sampler(rng, compile=isinstance(where, Torch) and where.compile)
    cons = parse(constraints)
    if constraints is not None and not spec.supports_constraints:
        raise ValueError(f"method {spec.name!r} does not support constraints (see cbopt.methods())")
    integers = parse_integrality(integrality, dim, lo, hi, resolved.asarray)
    problem = Problem(
        dim=dim, n_runs=int(n_runs), lo=resolved.asarray(lo), hi=resolved.asarray(hi), x0=resolved.asarray(x0),
        init_scale=scale if isinstance(scale, float) else resolved.asarray(scale), dtype=resolved.dtype,
        project=None if cons.projection is None else cons.projection.projector(resolved.asarray),
        integers=None if integers is None else resolved.asarray(integers.mask.astype(float)),
        constraints=cons.describe(),
    )
    if policy is not None:
        if n_runs != 1:
            raise ValueError("restarts run one sequence of runs: use n_runs=1 (or restarts=None for M batched runs)")
        if history == "particles":
            raise ValueError("history='particles' records one run's swarm: not available with restarts (its runs' "
                             "populations differ in size); use history=True or restarts=None")
        if not spec.resizable or getattr(params, "n_particles", None) is None:
            raise ValueError(f"restarts: method {spec.name!r} has no population size to grow (its points per step "
                             "follow from its options); use restarts=None")
    return Setup(spec, params, problem, sampler, rules, resolved, cons, policy, options, integers,
                 constrained=constraints is not None)


def _fits_in_memory(spec: Any, params: Any, dim: int, n_runs: int) -> None:
    """Refuse a run whose state alone exceeds the machine's memory, before allocating any of it."""
    n = getattr(params, "n_particles", None) or 1
    floats = n_runs * (6 * n * dim + (spec.extra_floats(params, dim) if spec.extra_floats is not None else 0))
    fits_in_memory(8 * floats, "the run", f" for its state ({n_runs} run(s), {n} particles, d = {dim})")


class Forecast:
    """After the first second of a call whose budget is the default, say once (a warning on the ``cbopt``
    log) when spending that budget at the pace so far would take more than ``LONG_RUN`` seconds."""

    def __init__(self, budget: float):
        self.budget, self.t0, self.said = budget, time.perf_counter(), False

    def __call__(self, r: Any) -> None:
        if self.said:
            return
        elapsed = time.perf_counter() - self.t0
        if elapsed < 1.0:
            return
        self.said = True
        n = int(to_numpy(r.book.nfev).sum())
        eta = elapsed / max(n, 1) * self.budget
        if eta > LONG_RUN:
            # a warning, not a log line: shown without any logging set up, once per call site
            warnings.warn(f"no budget given: the default of {int(self.budget)} evaluations will take about "
                          f"{_duration(eta)} at {1e3 * elapsed / max(n, 1):.3g} ms per evaluation so far; bound it "
                          "with max_evals= or stop=cbopt.Stop(max_time=...)", RuntimeWarning, stacklevel=2)


#: seconds above which a call with the default budget says how long it expects to take
LONG_RUN = 60.0


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def _run_checkpointed(loop: Any, fun: Any, ckpt: Any, evaluate: Any = None, forecast: Any = None,
                      watch: Any = None) -> Any:
    """Drive ``loop`` with checkpoints; ``watch`` (the noise check, :mod:`cbopt.noisy`) keeps its state in the
    file beside the loop's."""
    from . import checkpoint as store

    if ckpt.resume and os.path.exists(ckpt.path):
        extra = store.load(ckpt.path, loop)
        if watch is not None:
            watch.restore((extra or {}).get("noisy"), loop)
            # a Ctrl-C from the step's callback or from the watch's own re-evaluation came before the watch
            # had its turn after the saved step: it takes it now (one that had it finds nothing due)
            watch(loop)

    failed: list[OSError] = []

    def save(r: Any) -> None:
        """A save that fails (the folder turned read-only, the disk is full) never loses the run: warn once,
        go on, and try again at the next save (the previous checkpoint, if any, is untouched)."""
        try:
            store.save(ckpt.path, r, extra=None if watch is None else {"noisy": watch.snapshot()})
        except OSError as exc:
            if not failed:
                warnings.warn(f"checkpoint: cannot write {os.fspath(ckpt.path)!r} ({exc.strerror or exc}); the run "
                              "goes on, and the file keeps the last state that was written", RuntimeWarning,
                              stacklevel=4)
            failed.append(exc)

    def after(r: Any) -> None:
        if forecast is not None:  # first: what it does (the noise check) is part of the step that is saved
            forecast(r)
        if r.it % ckpt.every == 0:
            save(r)

    try:
        res = drive_loop(loop, fun, after_step=after, evaluate=evaluate)
    finally:  # the end, an error or Ctrl-C: keep the last consistent state (not one torn mid-step)
        if not loop.busy:
            save(loop)
    if failed:
        res["checkpoint_error"] = str(failed[-1])
    return res


#: the constraint violation above which a result is not a success (``res.constraint_violation``)
FEASIBLE_TOL = 1e-6


def _report_violation(res: OptimizeResult, cons: Any, backend: Any) -> None:
    for r in [res] + list(res.get("runs", [])):
        if r.get("x") is None:
            continue
        v = 0.0
        if cons.eq or cons.ineq:
            v += float(to_numpy(cons.violation_of(backend.asarray(r.x)[None])).reshape(-1)[0])
        if cons.projection is not None:
            v += cons.projection.violation(r.x)
        r.constraint_violation = v
        if not v <= FEASIBLE_TOL and r.get("success"):  # a point the constraints exclude is no success
            r.success = False
            r.message = (f"{r.get('message', '')} The constraints are violated at x (by {v:.3g} > "
                         f"{FEASIBLE_TOL:g}): no feasible point was found.").strip()


def _as_float_array(name: str, v: Any) -> np.ndarray:
    if hasattr(v, "detach") and hasattr(v, "cpu"):  # a tensor, wherever it lives
        v = to_numpy(v)
    if np.ma.isMaskedArray(v) and np.ma.getmaskarray(v).any():
        raise ValueError(f"{name}: a masked array with masked entries; fill them first (v.filled(...))")
    if isinstance(v, np.matrix):  # a row or a column of numbers: its entries, not a 2-D matrix
        v = np.asarray(v).ravel() if 1 in v.shape else np.asarray(v)
    try:
        a = np.asarray(v)
        if a.dtype.kind == "c":
            raise TypeError(f"{name}: expected real numbers, got complex values")
        a = np.asarray(a, dtype=float)
    except (TypeError, ValueError) as exc:
        if "complex" in str(exc):
            raise
        raise TypeError(f"{name}: expected numbers, got {v!r}") from exc
    return a


def start_region(bounds: Any, x0: Any, *, x_name: str = "x0", bounds_name: str = "bounds"
                 ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, int]:
    """``(lo, hi, x0, dim)`` of where a swarm starts: a box, a centre or both, checked against each other. The
    one place for it: :func:`minimize`, :func:`cbopt.minimax` (once per player) and
    :func:`cbopt.multiobjective` call it (``x_name``/``bounds_name``: the arguments' names in messages)."""
    lo, hi = _check_bounds(bounds, bounds_name)
    x = _check_x0(x0, x_name)
    where_from = x if x is not None else lo
    if where_from is None:
        raise ValueError(f"give {x_name} (a start point) or {bounds_name} (a search box): cbopt needs to know where "
                         "to start")
    if x is not None and lo is not None:
        if x.shape[0] != lo.shape[0]:
            raise ValueError(f"{x_name} has length {x.shape[0]} but {bounds_name} describe {lo.shape[0]} dimensions")
        if np.any(x < lo) or np.any(x > hi):
            raise ValueError(f"{x_name} lies outside {bounds_name}")
    return lo, hi, x, int(where_from.shape[0])


#: the widest box coordinate: wider, a step (a fraction of the width, times a normal draw) can overflow
MAX_WIDTH = 1e300
#: the narrowest box coordinate, absolute (far from float64's subnormals) and relative to its bounds'
#: magnitude (about 4500 float64 values across)
MIN_WIDTH = 1e-290
MIN_RELATIVE_WIDTH = 1e-12


def _check_bounds(bounds: Any, name: str = "bounds") -> tuple[np.ndarray | None, np.ndarray | None]:
    """Accept scipy-style (lo, hi) pairs, a (d, 2) array, or an object with ``lb``/``ub`` (scipy Bounds)."""
    if bounds is None:
        return None, None
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        lo, hi = _as_float_array(f"{name}.lb", bounds.lb), _as_float_array(f"{name}.ub", bounds.ub)
        b = np.stack(np.broadcast_arrays(np.atleast_1d(lo), np.atleast_1d(hi)), axis=-1)
    else:
        b = _as_float_array(name, bounds)
    if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] < 1:
        raise ValueError(f"{name}: expected a sequence of (lo, hi) pairs or a (d, 2) array, got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"{name}: every bound must be finite (the box defines where the swarm starts)")
    if np.any(b[:, 0] >= b[:, 1]):
        i = int(np.argmax(b[:, 0] >= b[:, 1]))
        raise ValueError(f"{name}: need lo < hi in every coordinate; coordinate {i} has {tuple(b[i])}")
    with np.errstate(over="ignore"):
        width = b[:, 1] - b[:, 0]
    bad = ~(width <= MAX_WIDTH) | (width < MIN_WIDTH) | (width < MIN_RELATIVE_WIDTH * np.abs(b).max(-1))
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"{name}: coordinate {i} spans [{b[i, 0]:.17g}, {b[i, 1]:.17g}], a width of {width[i]:.3g}; "
                         f"float64 searches widths from {MIN_WIDTH:g} to {MAX_WIDTH:g}, and at least "
                         f"{MIN_RELATIVE_WIDTH:g} of the bounds' magnitude: rescale the problem")
    return b[:, 0].copy(), b[:, 1].copy()


def _check_x0(x0: Any, name: str = "x0") -> np.ndarray | None:
    if x0 is None:
        return None
    x = _as_float_array(name, x0)
    if x.ndim != 1 or x.shape[0] < 1:
        raise ValueError(f"{name}: expected a 1-D array of length d, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: must be finite")
    return x.copy()


def wing_inputs(args: Any, progress: Any) -> None:
    """The checks ``minimax`` and ``multiobjective`` make as ``minimize`` does: ``args`` a tuple, ``progress`` a
    bool (their loop builders read ``init_scale`` with :func:`scale_option`)."""
    if not isinstance(args, tuple):
        raise TypeError(f"args: expected a tuple, got {type(args).__name__}")
    flag("progress", progress)


def scale_option(options: Any, init_scale: Any) -> tuple[Any, Any]:
    """``options={"init_scale": ...}`` as ``minimize`` spells it, for the front doors that also take an
    ``init_scale=`` keyword: the options without it, and the scale (given once)."""
    if isinstance(options, dict) and "init_scale" in options:
        if init_scale is not None:
            raise ValueError("init_scale: given both as an argument and in options=; give it once")
        options = dict(options)
        init_scale = options.pop("init_scale")
    return options, init_scale


def check_init_scale(scale: Any, dim: int, lo: np.ndarray | None, hi: np.ndarray | None) -> Any:
    if scale is None:
        return (hi - lo) / 4.0 if lo is not None else 1.0
    s = _as_float_array("init_scale", scale)
    if s.ndim > 1 or (s.ndim == 1 and s.shape[0] != dim):
        raise ValueError(f"init_scale: expected a number or {dim} numbers, got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError("init_scale: must be finite and > 0")
    return float(s) if s.ndim == 0 else s
