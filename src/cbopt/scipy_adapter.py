"""``scipy.optimize.minimize(fun, x0, method=cbopt.scipy_method, ...)``: cbopt behind scipy's front door.

scipy calls a custom ``method`` with its own arguments and the entries of ``options=``; this adapter is the one
place where scipy's names are taken as they are (``maxiter``, ``maxfev``, ``disp``, ``seed``) and turned into
cbopt's. ``fun`` and dict constraints are scipy's per-point functions, evaluated point by point; the result is
a ``scipy.optimize.OptimizeResult``.

>>> import numpy as np, cbopt
>>> from scipy.optimize import minimize, rosen
>>> res = minimize(rosen, np.zeros(3), method=cbopt.scipy_method, bounds=[(-2, 2)] * 3,
...                options={"maxfev": 20_000, "seed": 0})
>>> bool(res.fun < 1e-8), res.success
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._names import SCIPY_ARGS, STOP_ONLY


def scipy_method(fun: Callable[..., float], x0: Any, args: tuple = (), jac: Any = None, hess: Any = None,
                 hessp: Any = None, bounds: Any = None, constraints: Any = (), callback: Any = None,
                 **options: Any) -> Any:
    """A custom minimizer for ``scipy.optimize.minimize(method=...)``; ``options`` may be scipy's names
    (``maxiter``, ``maxfev``, ``disp``, ``seed``) or any argument of :func:`cbopt.minimize` (``method``,
    ``options``, ``target``, ...)."""
    from scipy.optimize import OptimizeResult

    from .minimize import minimize
    from .objectives import vectorize

    for name, v in (("jac", jac), ("hess", hess), ("hessp", hessp)):
        if v is not None and v is not False:
            raise ValueError(f"cbopt.scipy_method: {name}= is not used (cbopt is derivative-free); leave it out")
    from .stopping import Stop

    kw: dict[str, Any] = {}
    rules: dict[str, Any] = {}
    for k, v in options.items():
        if k == "tol":
            if v is not None:
                rules.setdefault("ftol", v)
            continue
        k = SCIPY_ARGS.get(k, k)
        (rules if k in STOP_ONLY else kw)[k] = v
    if rules:
        if kw.get("stop") is not None:
            raise ValueError(f"cbopt.scipy_method: give {sorted(rules)} in stop=cbopt.Stop(...) or as options, "
                             "not both")
        kw["stop"] = Stop(**rules)
    if "progress" in kw:
        kw["progress"] = bool(kw["progress"])
    cons = []
    for c in constraints if isinstance(constraints, (list, tuple)) else [constraints]:
        if isinstance(c, dict):  # scipy's dict constraints are per point, and may take args
            if set(c) - {"type", "fun", "args", "jac"} or not callable(c.get("fun")) or "type" not in c:
                raise TypeError(f"constraints: expected scipy's {{'type': 'eq'|'ineq', 'fun': callable, 'args': "
                                f"(...)}}, got {c!r}")
            extra = tuple(c.get("args", ()))
            g = c["fun"]
            def per_point(x: Any, g: Any = g, extra: tuple[Any, ...] = extra) -> Any:
                return g(x, *extra)

            cons.append({"type": c["type"], "fun": vectorize(per_point)})
        else:
            cons.append(c)
    # vectorize(fun) with args= (not a closure): it pickles when fun does, so options={"evaluator": 2} works
    res = minimize(vectorize(fun), x0, args=args, bounds=bounds, constraints=cons or None, callback=callback, **kw)
    return OptimizeResult(dict(res))
