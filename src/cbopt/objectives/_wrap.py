"""The objective contract ``f(X[..., d]) -> E[...]`` and the adapter for per-point functions."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .._backend import is_torch


class Vectorized:
    """A per-point function ``f(x[d], *args) -> float`` under the batched contract ``f(X[..., d], *args) ->
    E[...]`` (see :func:`vectorize`). A class, not a closure, so it pickles (process pools) when ``f`` does."""

    per_point = True

    def __init__(self, fun: Callable[..., float]):
        if not callable(fun):
            raise TypeError(f"vectorize: expected a callable, got {type(fun).__name__}")
        self.fun = fun
        functools.update_wrapper(self, fun)

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        x = np.asarray(x)
        flat = x.reshape(-1, x.shape[-1])
        out = np.empty(flat.shape[0], dtype=np.float64)
        for i, p in enumerate(flat):
            v = self.fun(p, *args, **kwargs)
            if v is None or isinstance(v, (str, bytes)):  # numpy would read None as NaN and "1.0" as 1.0
                raise TypeError(f"the per-point objective must return a number, got {v!r}"
                                + (" (a missing return statement?)" if v is None else ""))
            try:
                out[i] = v
            except (TypeError, ValueError):
                raise TypeError(
                    f"the per-point objective must return one number per point, got {type(v).__name__} "
                    f"{getattr(v, 'shape', '')} for a point of shape {p.shape}"
                ) from None
        return out.reshape(x.shape[:-1])


def vectorize(fun: Callable[..., float]) -> Callable[..., np.ndarray]:
    """Adapt a per-point function ``f(x[d]) -> float`` to the batched contract ``f(X[..., d]) -> E[...]``.

    The function is called once per point, in order; use it for simulations and other code that
    cannot take a batch. Batched objectives (numpy expressions over the last axis) are much faster.
    Extra arguments (``minimize``'s ``args=``) reach ``f`` after the point; the result pickles when ``f``
    does, so it runs on process pools.

    >>> import numpy as np, cbopt
    >>> f = cbopt.vectorize(lambda x: float(np.sum(x ** 2)))
    >>> f(np.ones((2, 3, 4))).shape
    (2, 3)
    """
    return Vectorized(fun)


class WithArgs:
    """``fun(X, *args)`` as a function of ``X`` alone (``minimize``'s ``args=``); pickles when ``fun`` and
    ``args`` do."""

    def __init__(self, fun: Callable[..., Any], args: tuple):
        self.fun, self.args = fun, args
        if getattr(fun, "per_point", False):
            self.per_point = True

    def __call__(self, x: Any) -> Any:
        return self.fun(x, *self.args)


def like_fun(wrapper: Callable[[Any], Any], fun: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``wrapper`` (a function of ``fun``) keeps ``fun``'s mark of a per-point objective, so that the first
    call's hint and the evaluators still see what the user gave."""
    if getattr(fun, "per_point", False):
        wrapper.per_point = True  # type: ignore[attr-defined]
    return wrapper


def real_values(e: Any, what: str = "the objective") -> Any:
    """``e`` as an array of real numbers (a tensor stays one), or a TypeError that says what it returned:
    complex values (whose imaginary part a cast would drop), strings, None. A masked value is no value: NaN,
    which the non-finite policy handles. Every front door reads its objective's values through this."""
    if is_torch(e):
        if e.is_complex():
            raise TypeError(f"{what} must return real numbers, got a tensor of dtype {e.dtype}")
        return e
    if np.ma.isMaskedArray(e):
        e = np.ma.filled(np.ma.asarray(e).astype(float), np.nan)
    try:
        a = np.asarray(e)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{what}'s output could not be read as an array: {exc}") from exc
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{what} must return real numbers, got an array of dtype {a.dtype} (shape {a.shape})")
    return a


def validate_energy(e: Any, x: Any) -> Any:
    """Check the objective's output on the first batch; return it as a float array of shape ``x.shape[:-1]``."""
    want = tuple(x.shape[:-1])
    if is_torch(x):
        if not is_torch(e):
            raise TypeError(
                f"the run is on torch ({x.dtype} on {x.device}) but the objective returned {type(e).__name__}: "
                f"return a tensor of shape {want} on {x.device}, or wrap a numpy objective with cbopt.on_host(f) "
                "(one host copy per step)"
            )
        if e.device != x.device:
            raise TypeError(
                f"the objective returned energies on {e.device} for particles on {x.device}; "
                "evaluate on the particles' device (or pass backend=cbopt.Torch(device) to run where the objective "
                "computes)"
            )
        e = real_values(e)
        if e.dtype != x.dtype:
            e = e.to(x.dtype)
    else:
        if is_torch(e):
            raise TypeError(
                "the run is on numpy but the objective returned a torch tensor: to run on torch pass x0/bounds "
                "as tensors or backend='cpu'/'cuda' to minimize; or return a numpy array"
            )
        e = real_values(e)
        e = e.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)
    got = tuple(e.shape)
    if got != want:
        hint = ""
        if got == ():
            hint = (
                " It returned one number for the whole batch: write f over the last axis "
                "(e.g. (X**2).sum(-1)) or wrap a per-point function with cbopt.vectorize(f)."
            )
        elif got == want + (1,):
            hint = " Drop the trailing axis of length 1 (e.g. return E[..., 0])."
        raise ValueError(
            f"the objective must map X of shape {tuple(x.shape)} (..., d) to energies of shape {want}, "
            f"got shape {got}.{hint}"
        )
    return e


def check_energy(e: Any, x: Any) -> Any:
    """Cheap per-step check of the output shape (the full validation ran on the first batch)."""
    if not (isinstance(e, np.ndarray) or is_torch(e)) or np.ma.isMaskedArray(e) or e.shape != x.shape[:-1]:
        return validate_energy(e, x)
    if e.dtype != x.dtype:
        e = e.astype(x.dtype) if isinstance(e, np.ndarray) else validate_energy(e, x)
    return e


def on_host(fun: Callable[[np.ndarray], Any]) -> Callable[[Any], Any]:
    """Adapt a numpy objective to torch runs: each batch is copied to the host, evaluated, copied back.

    Use it when ``fun`` cannot take tensors; the copies cost a device round trip per step, so an
    objective written with torch operations is faster on a GPU. numpy inputs pass straight through.

    >>> import numpy as np, cbopt
    >>> f = cbopt.on_host(lambda X: np.cos(X).sum(-1))
    >>> f(np.zeros((2, 3))).tolist()
    [3.0, 3.0]
    """
    if not callable(fun):
        raise TypeError(f"on_host: expected a callable, got {type(fun).__name__}")

    @functools.wraps(fun)
    def wrapped(x: Any) -> Any:
        if not is_torch(x):
            return fun(x)
        e = fun(x.detach().cpu().numpy())
        if is_torch(e):
            return e.to(device=x.device, dtype=x.dtype)
        return sys.modules["torch"].as_tensor(np.asarray(e, dtype=np.float64), dtype=x.dtype, device=x.device)

    return wrapped
