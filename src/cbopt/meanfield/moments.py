"""Consensus-based sampling on a quadratic: a Gaussian law stays Gaussian, and its moments solve ODEs.

For ``f(x) = (x - a)^T A (x - a) / 2`` and ``rho = N(m, C)``, the weighted law ``e^{-alpha f} rho`` is
Gaussian with::

    C_alpha = (C^{-1} + alpha A)^{-1},   m_alpha = C_alpha (C^{-1} m + alpha A a)

and the CBS mean-field dynamics ``dX = -(X - m_alpha) dt + sqrt(2 C_alpha / lam) dW`` move the moments by::

    dm/dt = -(m - m_alpha),   dC/dt = -2 C + 2 C_alpha / lam

(``lam = 1`` to optimise, ``1 / (1 + alpha)`` to sample). The particle method's exponential integrator is the
exact flow of these equations over a step with the weighted moments frozen; ``step=`` gives that map.
Reference: Carrillo, Hoffmann, Stuart, Vaes (2022), arXiv:2106.02519, Section 3.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._extras import require
from ..validation import choice, number


def gaussian_consensus(a_mat: Any, a: Any, m: Any, cov: Any, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``(m_alpha, C_alpha)``: the mean and covariance of ``e^{-alpha f} N(m, C)`` for the quadratic ``f``."""
    prec = np.linalg.inv(cov)
    c_alpha = np.linalg.inv(prec + alpha * a_mat)
    c_alpha = (c_alpha + c_alpha.T) / 2
    return c_alpha @ (prec @ m + alpha * a_mat @ a), c_alpha


def cbs_moments(a_mat: Any, a: Any, m0: Any, cov0: Any, *, alpha: float, T: float, times: Any = None,
                mode: str = "optimize", step: float | None = None) -> dict[str, np.ndarray]:
    """The mean ``m(t)`` and covariance ``C(t)`` of mean-field CBS from ``N(m0, C0)`` on the quadratic
    ``f(x) = (x - a)^T A (x - a) / 2`` (A symmetric positive semidefinite).

    ``step=None``: the ODEs, by scipy's ``solve_ivp`` (rtol 1e-10), at ``times`` (default 101 points in
    [0, T]). ``step=dt``: the exponential-integrator map of the particle method, at ``0, dt, 2 dt, ...``.
    Returns ``{"t", "mean" (K, d), "cov" (K, d, d)}``.
    """
    a_mat = np.atleast_2d(np.asarray(a_mat, dtype=float))
    d = a_mat.shape[0]
    a = np.asarray(a, dtype=float).reshape(d)
    m0 = np.asarray(m0, dtype=float).reshape(d)
    cov0 = np.asarray(cov0, dtype=float).reshape(d, d)
    if a_mat.shape != (d, d) or not np.allclose(a_mat, a_mat.T) or np.linalg.eigvalsh(a_mat).min() < -1e-12:
        raise ValueError("A: expected a symmetric positive semidefinite (d, d) matrix")
    if not np.allclose(cov0, cov0.T) or np.linalg.eigvalsh(cov0).min() <= 0:
        raise ValueError("C0: expected a symmetric positive definite (d, d) matrix")
    alpha = number("alpha", alpha, at_least=0)
    T = number("T", T, above=0)
    lam = 1.0 if choice("mode", mode, ("optimize", "sample")) == "optimize" else 1.0 / (1.0 + alpha)
    if step is not None:
        dt = number("step", step, above=0)
        k = int(np.floor(T / dt + 1e-9))
        decay = np.exp(-dt)
        m, c = m0.copy(), cov0.copy()
        ms, cs = [m], [c]
        for _ in range(k):
            mb, cb = gaussian_consensus(a_mat, a, m, c, alpha)
            m = mb + decay * (m - mb)
            c = decay**2 * c + (1 - decay**2) / lam * cb
            ms.append(m)
            cs.append(c)
        return {"t": dt * np.arange(k + 1), "mean": np.array(ms), "cov": np.array(cs)}
    integrate = require("scipy.integrate", "cbopt.meanfield.cbs_moments")
    t_eval = np.linspace(0.0, T, 101) if times is None else np.asarray(times, dtype=float)

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        m, c = y[:d], y[d:].reshape(d, d)
        mb, cb = gaussian_consensus(a_mat, a, m, c, alpha)
        return np.concatenate([-(m - mb), (-2 * c + 2 * cb / lam).reshape(-1)])

    sol = integrate.solve_ivp(rhs, (0.0, T), np.concatenate([m0, cov0.reshape(-1)]), t_eval=t_eval,
                              rtol=1e-10, atol=1e-12, method="LSODA")
    if not sol.success:
        raise RuntimeError(f"cbs_moments: the ODE solver failed: {sol.message}")
    return {"t": sol.t, "mean": sol.y[:d].T, "cov": sol.y[d:].T.reshape(-1, d, d)}
