"""Mirror CBO (method="cbo-mirror") against CBXpy's MirrorCBO, plain and projected CBO, in the same run.

1. The sparse recovery problem of CBXpy's mirror notebook: d = 30, A ~ N(0, 1) (30 x 30), a 3-sparse x with
   N(0, 1) entries, noise 0.01, loss 0.5 |Ax - b|^2; N = 100, ElasticNet(delta = 1.9), sigma = 2
   (anisotropic), dt = 0.05, alpha x1.4 per step (capped at 1e5, CBXpy's default), start U[-1, 1]^30.
   Success: loss <= 2.5e-3 within 1.1e4 evaluations; 10 instances (seed s: instance and run). Rows: cbopt's
   mirror CBO at the notebook's settings with and without its dual noise in dead coordinates (dual_noise=0:
   the reference's dynamics), and at N = 50, dt = 0.1 (the same budget in twice the steps).
2. The simplex: min 0.5 |Ax - b|^2 over {x >= 0, sum x = 1} (d = 10, A 20 x 10, b = A x_true + 0.01 noise).
3. The ball: a shifted Rastrigin over |x| <= 1 (d = 10, minimiser at 2 (1, ..., 1) outside the ball).

For 2 and 3: the largest violation over every evaluated point, and the final loss, 2e4 evaluations.

    python benchmarks/mirror.py [--instances 40]   (more than 10: also the count over all of them)

Diagnostics (not the target's protocol): ``--start 40`` takes instances 40, 41, ...; ``--evals 30000`` another
budget; ``--dual-noise 0.6`` another nu for the notebook-settings row.
"""

import numpy as np

import cbopt
from cbopt.mirror import Ball, ElasticNet, EntropySimplex, Simplex
from cbopt.schedules import Geometric


def sparse_problem(seed, dim=30):
    g = np.random.default_rng(seed)
    a = g.standard_normal((dim, dim))
    xt = np.zeros(dim)
    support = g.permutation(dim)[:3]  # drawn in the notebook's order: A, the support, the values, the noise
    xt[support] = g.standard_normal(3)
    b = a @ xt + 0.01 * g.standard_normal(dim)
    return (lambda x: 0.5 * ((x @ a.T - b) ** 2).sum(-1)), xt


NOTEBOOK = dict(n_particles=100, sigma=2.0, dt=0.05, alpha=Geometric(1.0, 1.4, cap=1e5), noise="anisotropic")
LOOSE = cbopt.Stop(xtol=None, ftol=None)


def cbx_mirror(f, seed):
    try:
        from cbx.dynamics.mirrorcbo import ElasticNet as CbxElasticNet
        from cbx.dynamics.mirrorcbo import MirrorCBO
        from cbx.scheduler import multiply
    except ImportError:
        return None
    np.random.seed(seed)  # CBXpy draws its start from numpy's global stream, its noise from seed=
    dyn = MirrorCBO(f, N=100, d=30, mirrormap=CbxElasticNet(1.9), noise="anisotropic", sigma=2.0, dt=0.05,
                    max_it=100, verbosity=0, seed=seed)
    dyn.optimize(sched=multiply(factor=1.4))
    return float(f(dyn.best_particle[0]))


def mirror_rows(dual_noise=None):
    """cbopt's mirror CBO rows: the notebook's settings (with the default or the given nu, and without the
    dual noise), N = 50 with dt = 0.1 (with and without), and CBO's own defaults with the map."""
    notebook = NOTEBOOK if dual_noise is None else dict(NOTEBOOK, dual_noise=dual_noise)
    nu = "" if dual_noise is None else f", dual_noise={dual_noise}"
    return {f"cbopt cbo-mirror, notebook settings{nu}": notebook,
            "cbopt cbo-mirror, notebook settings, dual_noise=0": dict(NOTEBOOK, dual_noise=0.0),
            "cbopt cbo-mirror, N = 50, dt = 0.1": dict(NOTEBOOK, n_particles=50, dt=0.1),
            "cbopt cbo-mirror, N = 50, dt = 0.1, dual_noise=0": dict(NOTEBOOK, n_particles=50, dt=0.1, dual_noise=0.0),
            "cbopt cbo-mirror, CBO's defaults": {}}


def sparse_table(seeds, start=0, evals=11_000, dual_noise=None):
    rows = mirror_rows(dual_noise)
    cols = {name: [] for name in rows}
    cols.update({"CBXpy MirrorCBO (notebook settings)": [], "cbopt cbo (no mirror, notebook settings)": [],
                 "cbopt default (auto)": []})
    support, reasons = [], []
    for s in range(start, start + seeds):
        f, xt = sparse_problem(s)
        for i, (name, opts) in enumerate(rows.items()):
            r = cbopt.minimize(f, bounds=[(-1, 1)] * 30, method="cbo-mirror", rng=s, max_evals=evals, stop=LOOSE,
                               options=dict(mirror=ElasticNet(delta=1.9), **opts))
            cols[name].append(r.fun)
            if i == 0:
                support.append(int(np.count_nonzero(r.x)))
            if not opts:
                reasons.append(r.reason)
        cols["CBXpy MirrorCBO (notebook settings)"].append(cbx_mirror(f, s) if evals == 11_000 else None)
        r = cbopt.minimize(f, bounds=[(-1, 1)] * 30, method="cbo", rng=s, max_evals=evals, stop=LOOSE,
                           options=dict(boundary=None, **NOTEBOOK))
        cols["cbopt cbo (no mirror, notebook settings)"].append(r.fun)
        r = cbopt.minimize(f, bounds=[(-1, 1)] * 30, rng=s, max_evals=evals)
        cols["cbopt default (auto)"].append(r.fun)
    first = min(seeds, 10)
    print(f"\n## Sparse recovery (CBXpy's mirror notebook), instances {start}-{start + seeds - 1}, "
          f"{evals:,} evaluations\n")
    print(f"| solver | loss <= 2.5e-3, instances {start}-{start + first - 1} |"
          + (f" all {seeds} |" if seeds > 10 else "") + " median loss |")
    print("|---|---|" + ("---|" if seeds > 10 else "") + "---|")
    for name, v in cols.items():
        if any(x is None for x in v):
            print(f"| {name} | (not installed) |" + (" |" if seeds > 10 else "") + " |")
            continue
        v = np.array(v)
        ok = v <= 2.5e-3
        print(f"| {name} | {int(ok[:first].sum())}/{first} |" + (f" {int(ok.sum())}/{seeds} |" if seeds > 10 else "")
              + f" {np.median(v):.2e} |")
    print(f"\nnon-zero coordinates of cbo-mirror's x at the notebook settings (the truth has 3): {support}")
    print("CBO's defaults with the map stop as: "
          + ", ".join(f"{k} {reasons.count(k)}" for k in sorted(set(reasons))))


class Recorder:
    """Wraps an objective; keeps the largest violation of ``feasible`` over every evaluated point."""

    def __init__(self, f, violation):
        self.f, self.violation, self.worst = f, violation, 0.0

    def __call__(self, x):
        self.worst = max(self.worst, float(self.violation(np.asarray(x)).max()))
        return self.f(x)


def simplex_violation(x):
    return np.abs(x.sum(-1) - 1) + np.clip(-x, 0, None).sum(-1)


def ball_violation(x):
    return np.clip(np.linalg.norm(x, axis=-1) - 1, 0, None)


def constrained_table(seeds):
    rows = []
    for s in range(seeds):
        g = np.random.default_rng(100 + s)
        a = g.standard_normal((20, 10))
        xt = g.dirichlet(np.full(10, 0.5))
        b = a @ xt + 0.01 * g.standard_normal(20)
        rows.append(("simplex", s, lambda x, a=a, b=b: 0.5 * ((x @ a.T - b) ** 2).sum(-1)))
    shift = 2.0 * np.ones(10)
    for s in range(seeds):
        rows.append(("ball", s, lambda x: (((x - shift) ** 2) - 10 * np.cos(2 * np.pi * (x - shift))).sum(-1) + 100))
    out = {}
    for kind, s, f in rows:
        viol = simplex_violation if kind == "simplex" else ball_violation
        mirror_map = EntropySimplex() if kind == "simplex" else Ball(1.0)
        projection = Simplex() if kind == "simplex" else Ball(1.0)
        for label, method, kw in (
            ("mirror CBO", "cbo-mirror", dict(options=dict(mirror=mirror_map))),
            ("projected CBO", "cbo", dict(constraints=projection, options=dict(boundary=None))),
        ):
            rec = Recorder(f, viol)
            r = cbopt.minimize(rec, bounds=[(-1, 1)] * 10, method=method, rng=s, max_evals=20_000, **kw)
            out.setdefault((kind, label), []).append((r.fun, rec.worst))
    print(f"\n## Feasible sets ({seeds} seeds, 2e4 evaluations; violation: the worst over every evaluated point)\n")
    print("| set | solver | median final loss | worst violation |")
    print("|---|---|---|---|")
    for (kind, label), v in out.items():
        v = np.array(v)
        print(f"| {kind} | {label} | {np.median(v[:, 0]):.4e} | {v[:, 1].max():.1e} |")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=10, help="sparse-recovery instances (default 10)")
    ap.add_argument("--start", type=int, default=0, help="the first instance (default 0)")
    ap.add_argument("--evals", type=int, default=11_000, help="a diagnostic budget (the target's: 11000)")
    ap.add_argument("--dual-noise", type=float, default=None, help="nu of the notebook-settings row")
    a = ap.parse_args()
    sparse_table(a.instances, a.start, a.evals, a.dual_noise)
    constrained_table(10)
