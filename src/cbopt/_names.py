"""scipy's (and pycma's) names for cbopt's settings: one leaf module (it imports nothing of cbopt), read by
the front doors that refuse those names with a hint, by the methods' option checks, and by the scipy adapter
that translates them."""

from __future__ import annotations

#: scipy's (and pycma's) names -> cbopt's name of the same setting: an argument of cbopt.minimize, or a field of
#: cbopt.Stop (see spelled). The one home of these names: minimize refuses them with the hint, method options
#: too, and this adapter translates them.
SCIPY_ARGS = {"maxiter": "max_iter", "maxfev": "max_evals", "maxfun": "max_evals", "maxfevals": "max_evals",
              "disp": "progress", "seed": "rng", "random_state": "rng", "ftarget": "target", "xatol": "xtol",
              "fatol": "ftol", "x_tol": "xtol", "f_tol": "ftol"}
_NO_DERIVATIVES = "nothing: cbopt does not use derivatives"
#: scipy's names without one counterpart, and what to use instead
SCIPY_HINTS = {"tol": "stop=cbopt.Stop(xtol=..., ftol=...) (or target=)", "popsize": "options={'n_particles': ...}",
               "jac": _NO_DERIVATIVES + " (method='cbo-memory' takes options={'grad': g})",
               "hess": _NO_DERIVATIVES, "hessp": _NO_DERIVATIVES}
#: stopping rules that are fields of cbopt.Stop only (max_evals and target are also flat arguments)
STOP_ONLY = ("max_iter", "max_time", "xtol", "ftol", "ctol", "patience", "divergence")


def spelled(name: str) -> str:
    """How a call of :func:`cbopt.minimize` spells cbopt's setting ``name``."""
    return f"stop=cbopt.Stop({name}=...)" if name in STOP_ONLY else f"{name}="


def scipy_hint(name: str) -> str | None:
    """What cbopt calls scipy's ``name`` (``"stop=cbopt.Stop(max_iter=...)"``), or None for a name that is
    not scipy's."""
    if name in SCIPY_ARGS:
        return spelled(SCIPY_ARGS[name])
    return SCIPY_HINTS.get(name)
