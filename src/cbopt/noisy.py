"""Noisy objectives: find out whether ``f`` is noisy, and report a result that means something if it is.

On a noisy objective the smallest value ever drawn is the luckiest draw, not the best point: its value is
biased low (below the true minimum, for a large enough swarm) and its point is where the noise was kindest.
The consensus, a weighted average over many evaluations, is a much better estimate of the minimiser.

:class:`Watch` re-evaluates the best point so far a few times during a call (after the first population, then
whenever the number of evaluations has doubled: at most ``log2(budget / n)`` extra evaluations; a
deterministic ``f`` returns the same value each time, and nothing else changes). Once a re-evaluation differs
(or ``noisy=`` said so), a share of the budget is held back, and :func:`assess` spends it after the loop:
every candidate for ``res.x`` (the best draw, the best run's consensus, the last run's consensus) is
re-evaluated the same number of times, and the candidate with the lowest interquartile mean (robust to
heavy-tailed noise) is reported, with ``res.fun`` the mean of its re-evaluations, ``res.fun_sem`` its
standard error and ``res.noise_sd`` the estimated noise level.
``success`` is never claimed from a single draw: a run stopped by its ``target`` succeeds only if the mean
at ``res.x`` is below it. Once the noise is *strong* (:data:`STRONG`), a restart sequence is told
(``loop.noisy()``) and plans its runs for noise (the default's: growing populations weighing samples by rank,
see :class:`cbopt.restarts.Portfolio`). Uncertainty
handling by re-evaluation and rank statistics: Hansen, Niederberger, Guzzella, Koumoutsakos, IEEE TEC 13(1),
2009.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._backend import as_like, to_numpy
from .driver import Loop
from .result import OptimizeResult
from .stopping import Status
from .validation import number

log = logging.getLogger("cbopt")

#: two values of one point differ (``f`` is noisy) when they are further apart than ``RTOL`` relative and
#: ``ULPS`` units of the values' precision times the scale of the first population's values: a deterministic
#: objective repeats up to rounding, and rounding changes with the batch's shape (a sum reduced in another
#: order), by a few units of the precision of its largest terms
RTOL, ULPS = 1e-9, 1e4
#: noise is *strong* (the default's runs switch to their noisy settings, see :class:`cbopt.methods.Restarts`)
#: once a re-evaluation moves by more than this share of the interquartile range of the current population's
#: values: below it, ranking the population by its values is hardly disturbed and the deterministic settings
#: converge faster; the check goes on at each doubling of the evaluations, since additive noise grows strong
#: as the values close in
STRONG = 0.05


@dataclass(frozen=True)
class Noisy:
    """``noisy=`` of :func:`cbopt.minimize`: a noisy objective, stated or to be detected.

    Parameters
    ----------
    sd : float, optional
        The noise's standard deviation when it is known (reported as ``res.noise_sd``); None: estimated
        from the re-evaluations.
    declared : bool
        True: ``f`` is noisy (no detection needed; the share for the final assessment is held back from the
        start). False: detect it by re-evaluation.
    share, cap : float, int
        Share of the budget held back, once noise is known, to re-evaluate the candidates for ``res.x``, and
        the most evaluations that may take (the standard error of a mean shrinks as one over the square root of
        the re-evaluations: past a few hundred per candidate, the search makes better use of them).
    """

    sd: float | None = None
    declared: bool = True
    share: float = 0.05
    cap: int = 1000

    def __post_init__(self) -> None:
        if self.sd is not None:
            number("noisy sd", self.sd, above=0)
        number("noisy share", self.share, above=0, below=1)
        number("noisy cap", self.cap, at_least=1, integer=True)

    def held_back(self, budget: float | None, n: int) -> int:
        """Evaluations kept for the final assessment out of ``budget`` (populations of ``n`` points)."""
        if budget is None or not math.isfinite(budget):
            return 0
        return max(0, min(int(self.share * budget), self.cap, int(budget) - 2 * n))

    def per_candidate(self, held: int, candidates: int) -> int:
        """Re-evaluations per candidate: the held-back evaluations shared out, at least 2, and without a budget
        (``held == 0``) 30."""
        return max(2, held // candidates) if held else 30


def as_noisy(noisy: Any) -> Noisy | None:
    """``noisy=``: "auto" (detect), False/None (f is deterministic: nothing is re-evaluated), True (noisy), a
    number (noisy with that standard deviation) or :class:`Noisy`."""
    if isinstance(noisy, Noisy):
        return noisy
    if isinstance(noisy, str):
        if noisy == "auto":
            return Noisy(declared=False)
        raise ValueError(f"noisy: expected 'auto', True, False, a noise level or cbopt.Noisy(...), got {noisy!r}")
    if noisy is None or noisy is False:
        return None
    if noisy is True:
        return Noisy()
    if isinstance(noisy, (int, float)) and not isinstance(noisy, bool):
        number("noisy", noisy, above=0)
        return Noisy(sd=float(noisy))
    raise TypeError(f"noisy: expected 'auto', True, False, a noise level or cbopt.Noisy(...), "
                    f"got {type(noisy).__name__}")


def probes(budget: float | None, n: int) -> int:
    """The most re-evaluations :class:`Watch` makes within ``budget`` (first population ``n``): one after the
    first population and one each time the evaluations have doubled since, and no more than 1% of the budget
    (at least 3: small budgets of expensive objectives); without a budget, no limit a run could reach (64)."""
    if budget is None or not math.isfinite(budget):
        return 64
    if budget < 2 * n:
        return 0  # one population and little more: nothing to spare
    return min(1 + math.ceil(math.log2(budget / max(n, 1))), max(3, int(budget) // 100))


def differ(a: float, b: float, scale: float = 0.0, eps: float = float(np.finfo(np.float64).eps)) -> bool:
    """Two values of one point that a deterministic objective would not give (``scale``: the size of the values
    seen, ``eps``: the precision they are computed in)."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    rtol = max(RTOL, ULPS * eps)
    return abs(a - b) > rtol * max(abs(a), abs(b)) + ULPS * eps * scale


class Watch:
    """Called after every step of a loop (a run or a restart sequence): re-evaluates the best point so far at
    geometrically spaced evaluation counts until ``f`` is found to be noisy, then holds back the assessment's
    share of the budget (``loop.hold_back``). ``evaluate(X) -> values`` calls the objective (through the
    call's evaluator, if any); ``budget`` is what the loop and the watch may spend together."""

    def __init__(self, policy: Noisy, evaluate: Callable[[Any], Any], budget: float | None, n: int):
        self.policy, self.evaluate, self.budget, self.n = policy, evaluate, budget, n
        self.noisy = policy.declared
        self.strong = policy.declared  # strong enough for the loop's noisy settings (declared: from the start)
        self.nfev = 0  # evaluations made here (not counted by the loop)
        self.limit = 0 if policy.declared else probes(budget, n)
        self.next_at = 0
        self.held = policy.held_back(budget, n) if policy.declared else 0
        self.failed = False
        self.told = False  # whether the loop has been told (once) that the objective is noisy
        self.scale: float | None = None  # the size of the first values seen
        self.eps = float(np.finfo(np.float64).eps)  # the precision of the values (float32 objectives: coarser)

    @property
    def reserve(self) -> int:
        """Evaluations the loop must leave to this watch from the start (a re-evaluation takes its one
        evaluation off the loop's budget when it is made)."""
        return self.held

    def __call__(self, loop: Loop) -> None:
        if self.strong and not self.told:  # noisy=True: a sequence plans for it from the start
            self._tell(loop)
        if self.strong or self.failed or self.nfev >= self.limit:
            return
        done = int(loop.book.nfev.sum())
        if done < self.next_at or (self.budget is not None and done + self.nfev + 1 > self.budget):
            return
        res = loop.result(intermediate=True)
        x, f = res.get("x"), res.get("fun")
        if x is None or f is None or not math.isfinite(f):
            return
        if self.scale is None:  # the size of the values of the first population
            e = to_numpy(res.get("energies", np.zeros(0)))
            e = np.abs(e[np.isfinite(e)])
            self.scale = float(e.max()) if e.size else abs(float(f))
        try:
            out = to_numpy(self.evaluate(x[None, None]))  # (1, 1, d), as the loop's (M, n, d)
            v = float(out.reshape(-1)[0])
            for dt in (out.dtype, to_numpy(x).dtype):  # the objective's precision and the run's (which stores f)
                if np.issubdtype(dt, np.floating):
                    self.eps = max(self.eps, float(np.finfo(dt).eps))
        except Exception as exc:  # the loop's own call will meet (and report) the same failure
            self.failed = True
            log.info("noise detection stopped: re-evaluating the best point raised %s: %s", type(exc).__name__, exc)
            return
        self.nfev += 1
        loop.hold_back(1)
        self.next_at = 2 * max(done, 1)  # (only now: a probe cut short by Ctrl-C is made again on resume)
        moved = abs(v - float(f))
        if not self.noisy and differ(v, float(f), self.scale, self.eps):
            self.found(loop, done, moved)
        if self.noisy and moved > STRONG * _iqr(loop):
            self.strong = True
            self._tell(loop)

    def _tell(self, loop: Loop) -> None:
        """Tell a restart sequence (once) that the noise is strong: it plans its runs for it."""
        self.told = True
        if hasattr(loop, "noisy"):
            loop.noisy()

    def snapshot(self) -> dict[str, Any]:
        """The watch's state, JSON-able (a checkpoint stores it beside the loop's)."""
        return {"noisy": self.noisy, "strong": self.strong, "nfev": self.nfev, "next_at": self.next_at,
                "held": self.held, "failed": self.failed, "scale": self.scale, "eps": self.eps}

    def restore(self, state: Any, loop: Loop) -> None:
        """Continue from :meth:`snapshot` (``None``: a checkpoint written without it, i.e. by a call with
        ``noisy=False``: the watch starts afresh); the loop, freshly built, is held back again."""
        if state is None:
            return
        from .checkpoint import CheckpointError

        try:
            noisy, nfev, next_at, held = (bool(state["noisy"]), int(state["nfev"]), int(state["next_at"]),
                                          int(state["held"]))
            failed = bool(state["failed"])
            scale = None if state.get("scale") is None else float(state["scale"])
            eps = float(state.get("eps", self.eps))
            strong = bool(state.get("strong", noisy))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"its noise-check state is malformed ({type(exc).__name__}: {exc})") from None
        if min(nfev, next_at, held) < 0:
            raise CheckpointError("its noise-check state has negative counts")
        self.noisy, self.nfev, self.next_at, self.failed = noisy, nfev, next_at, failed
        self.scale, self.eps, self.strong = scale, eps, strong
        self.told = False
        back = nfev  # the loop, built afresh, gives up again what it gave up for the re-evaluations made
        if noisy and not self.policy.declared:  # ... and what was held back when the noise was found
            self.held = held
            back += held
        if back:
            loop.hold_back(back)

    def found(self, loop: Loop, done: int, moved: float) -> None:
        """``f`` is noisy: hold back the assessment's share of what is left of the budget."""
        self.noisy = True
        left = None if self.budget is None else self.budget - done - self.nfev
        self.held = self.policy.held_back(left, self.n)
        if self.held:
            loop.hold_back(self.held)
        log.info("the objective is noisy (a re-evaluation of the best point differed by %.3g after %d "
                 "evaluations): %d evaluations are held back to choose and assess res.x",
                 moved, done, self.held)


def _iqr(loop: Loop) -> float:
    """The interquartile range of the current population's finite values (0 when there are too few)."""
    state = getattr(loop, "state", None)
    if state is None:
        return 0.0
    e = to_numpy(state.energy).reshape(-1)
    e = e[np.isfinite(e)]
    if e.size < 4:
        return 0.0
    q1, q3 = np.percentile(e, [25, 75])
    return float(q3 - q1)


def candidates(res: OptimizeResult, last: OptimizeResult | None = None) -> list[tuple[str, Any]]:
    """The points ``res.x`` may be: the best draw, the best run's consensus, the last run's consensus."""
    out: list[tuple[str, Any]] = []
    for name, x in (("best draw", res.get("x")), ("consensus", res.get("consensus")),
                    ("last consensus", None if last is None else last.get("consensus"))):
        if x is not None and not any(_same(x, y) for _, y in out):
            out.append((name, x))
    return out


def _iqm(v: np.ndarray) -> float:
    """The interquartile mean (the mean of the middle half): how candidates are compared. Heavy-tailed noise
    (a Cauchy draw) moves a mean arbitrarily far; the middle half of the draws it leaves alone, and for
    symmetric noise it estimates the same value as the mean."""
    if not v.size:
        return float("inf")
    v = np.sort(v)
    q = v.size // 4
    return float(v[q:v.size - q].mean())


def _same(a: Any, b: Any) -> bool:
    return bool(np.array_equal(to_numpy(a), to_numpy(b)))


def assess(res: OptimizeResult, watch: Watch, target: float | None, last: OptimizeResult | None = None) -> None:
    """Turn ``res`` (a loop's result) into a result under noise, in place; see the module's docstring. On a
    noiseless objective only the watch's evaluations are added to ``res.nfev``."""
    res.nfev = int(res.nfev) + watch.nfev
    if watch.nfev:
        res.noise_checks = watch.nfev
    if not watch.noisy or res.get("x") is None:
        return
    res.noisy = True
    if Status(res.status) in (Status.CALLBACK, Status.INTERRUPTED, Status.OBJECTIVE_ERROR):
        return  # the user or the objective ended the call: no further evaluation
    cands = candidates(res, last)
    X = points(cands, watch.policy.per_candidate(watch.held, len(cands)))
    try:
        values = watch.evaluate(X)
    except Exception as exc:
        log.warning("noisy objective: re-evaluating the candidates for res.x raised %s: %s; res.x is the best "
                    "draw", type(exc).__name__, exc)
        return
    report(res, cands, values, watch.policy.sd, target)
    res.nfev += int(res.reevaluations)


def points(cands: list[tuple[str, Any]], k: int) -> Any:
    """``(c, k, d)``: each of the ``c`` candidates ``k`` times, on the run's backend."""
    stack = np.stack([to_numpy(x) for _, x in cands])
    return as_like(np.repeat(stack[:, None, :], k, axis=1), cands[0][1])


def report(res: OptimizeResult, cands: list[tuple[str, Any]], values: Any, sd: float | None,
           target: float | None) -> None:
    """``res`` in place, from the ``values (c, k)`` of the candidates re-evaluated ``k`` times each: the
    lowest interquartile mean is ``res.x``, ``res.fun`` its mean; see the module's docstring. ``sd``: the noise
    level if known."""
    values = np.asarray(to_numpy(values), dtype=float).reshape(len(cands), -1)
    res.noisy = True
    res.reevaluations = int(values.size)
    finite = np.isfinite(values)
    means = np.array([v[ok].mean() if ok.any() else np.inf for v, ok in zip(values, finite, strict=True)])
    scores = np.array([_iqm(v[ok]) for v, ok in zip(values, finite, strict=True)])
    i = int(np.argmin(scores))
    spread = [v[ok].std(ddof=1) for v, ok in zip(values, finite, strict=True) if ok.sum() > 1]
    if sd is None:
        sd = float(np.sqrt(np.mean(np.square(spread)))) if spread else float("nan")
    n_i = int(finite[i].sum())
    res.luckiest = {"x": res.x, "fun": float(res.fun)}
    res.x = cands[i][1]
    res.fun = float(means[i])
    res.fun_sem = float(values[i][finite[i]].std(ddof=1) / math.sqrt(n_i)) if n_i > 1 else float("nan")
    res.noise_sd = sd
    res.chosen = cands[i][0]
    res.candidates = {name: float(m) for (name, _), m in zip(cands, scores, strict=True)}
    said = (f"Noisy objective (noise sd about {sd:.3g}): x is the {cands[i][0]} and fun the mean of {n_i} "
            f"re-evaluations there (standard error {res.fun_sem:.2g}).")
    if Status(res.status) is Status.TARGET and target is not None and not res.fun <= target:
        res.success = False
        said += f" One draw reached the target {target:g}, the mean at x did not."
    res.message = f"{res.message} {said}"
