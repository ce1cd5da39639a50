"""The numbers behind docs/variants.md that the tests bound but do not print, measured in one run.

    python benchmarks/variants.py

1. Gradient drift (cbo-memory): median evaluations to f < 1e-10 on a d = 5 ellipsoid over 10 seeds, for CBO,
   memory with gamma = 0, gamma = 1 with an analytic gradient (eta = 1, 10) and with central differences.
2. Rotation: a rotated ellipsoid in d = 10 (condition 1e2 and 1e4), evaluations to 1e-8 (budget 1e5) for
   CBS and CBO.
3. Penalty sharpness: min x + y on the unit circle, max |x - x*| over 5 seeds at penalty 2, 10, 100, with and
   without refine="nelder-mead".
"""

from __future__ import annotations

import numpy as np

import cbopt

A5 = np.diag(np.linspace(1, 10, 5))


def ellipsoid5(x):
    return 0.5 * np.einsum("...i,ij,...j->...", x - 1, A5, x - 1)


def evals_to(f, target, budget, seeds, **kw):
    out = []
    for s in seeds:
        r = cbopt.minimize(f, rng=s, max_evals=budget, target=target, **kw)
        out.append(r.nfev if r.reason == "TARGET" else np.inf)
    return np.asarray(out)


def main():
    print("1. gradient drift, d = 5 ellipsoid, median evaluations to 1e-10 (10 seeds)")
    grad = lambda x: (x - 1) @ A5  # noqa: E731
    box = [(-5, 5)] * 5
    rows = {
        "cbo": {},
        "cbo-memory, gamma 0": {"method": "cbo-memory"},
        "gamma 1, eta 1, analytic gradient": {"method": "cbo-memory", "options": {"gamma": 1.0, "grad": grad}},
        "gamma 1, eta 10, analytic gradient": {"method": "cbo-memory",
                                               "options": {"gamma": 1.0, "eta": 10.0, "grad": grad}},
        "gamma 1, eta 10, central differences": {"method": "cbo-memory", "options": {"gamma": 1.0, "eta": 10.0}},
    }
    for label, kw in rows.items():
        e = evals_to(ellipsoid5, 1e-10, 200_000, range(10), bounds=box, **kw)
        print(f"   {label:<40} {np.median(e):>9.0f}   ({np.isfinite(e).sum()}/10 reached)")

    print("2. rotated ellipsoid, d = 10, evaluations to 1e-8 (budget 1e5; inf = not reached; seed 0)")
    d = 10
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))
    for cond in (1e2, 1e4):
        h = q @ np.diag(np.logspace(0, np.log10(cond), d)) @ q.T
        f = lambda x, h=h: 0.5 * np.einsum("...i,ij,...j->...", x - 1, h, x - 1)  # noqa: E731
        for method in ("cbs", "cbo"):
            r = cbopt.minimize(f, bounds=[(-5, 5)] * d, method=method, rng=0, max_evals=100_000, target=1e-8)
            print(f"   condition {cond:.0e}, {method}: {r.nfev if r.reason == 'TARGET' else 'inf':>7} "
                  f"(final f {r.fun:.2g})")

    print("3. min x + y on the unit circle, max |x - x*| over 5 seeds, 2e4 evaluations")
    eq = {"type": "eq", "fun": lambda x: (x**2).sum(-1) - 1}
    best = -np.sqrt(0.5) * np.ones(2)
    for penalty in (2.0, 10.0, 100.0):
        for refine in (None, "nelder-mead"):
            err = max(np.abs(cbopt.minimize(lambda x: x[..., 0] + x[..., 1], bounds=[(-2, 2)] * 2, rng=s,
                                            max_evals=20_000, constraints=cbopt.Penalty(eq, weight=penalty),
                                            refine=refine).x
                             - best).max() for s in range(5))
            print(f"   penalty {penalty:>5g}, refine={str(refine):<12} {err:.2g}")


if __name__ == "__main__":
    main()
