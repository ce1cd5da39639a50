"""CBO-SP (cbopt.minimax) against simultaneous gradient descent-ascent (torch autograd), same starts.

* saddle Rastrigin, d = 10 + 10: E = |x|^2 + 1.5 sum(1 - cos 2 pi x) - (the same in y); N = 1000, T = 10,
  dt = 0.01, sigma = 2, alpha = beta = 1e15, start N(1, 2^2); success |x| + |y| < 0.25;
* a random strongly monotone quadratic game, d = 40 + 20; success: max-norm error < 1e-3.

    python benchmarks/minimax.py [--seeds 10]
"""

import argparse
import time

import numpy as np

import cbopt


def saddle_rastrigin(x, y):
    xp = np if isinstance(x, np.ndarray) else __import__("torch")
    rx = (x * x).sum(-1) + 1.5 * (1 - xp.cos(2 * np.pi * x)).sum(-1)
    ry = (y * y).sum(-1) + 1.5 * (1 - xp.cos(2 * np.pi * y)).sum(-1)
    return rx - ry


def quadratic_game(seed, dx=40, dy=20):
    """E = x^T A x / 2 + x^T B y - y^T C y / 2 + a.x + c.y with A, C having eigenvalues in [1, 3]."""
    g = np.random.default_rng(1000 + seed)

    def spd(d):
        q, _ = np.linalg.qr(g.standard_normal((d, d)))
        return q @ np.diag(g.uniform(1, 3, d)) @ q.T

    a_mat, c_mat = spd(dx), spd(dy)
    b_mat = g.standard_normal((dx, dy)) / np.sqrt(dx)
    a, c = g.standard_normal(dx), g.standard_normal(dy)

    def f(x, y):
        mats = [a_mat, b_mat, c_mat, a, c]
        if not isinstance(x, np.ndarray):
            import torch

            mats = [torch.as_tensor(m, dtype=x.dtype) for m in mats]
        am, bm, cm, av, cv = mats
        return 0.5 * ((x @ am) * x).sum(-1) + ((x @ bm) * y).sum(-1) - 0.5 * ((y @ cm) * y).sum(-1) + x @ av + y @ cv

    ci = np.linalg.inv(c_mat)
    xs = np.linalg.solve(a_mat + b_mat @ ci @ b_mat.T, -a - b_mat @ ci @ c)
    f.rho = float(np.abs(np.linalg.eigvals(ci @ b_mat.T @ np.linalg.inv(a_mat) @ b_mat)).max())  # best-response factor
    return f, xs, ci @ (b_mat.T @ xs + c)


def gda(f, x0, y0, lr, steps):
    """Simultaneous gradient descent-ascent with torch autograd: x -= lr dE/dx, y += lr dE/dy."""
    import torch

    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(y0, dtype=torch.float64, requires_grad=True)
    for _ in range(steps):
        gx, gy = torch.autograd.grad(f(x, y), (x, y))
        with torch.no_grad():
            x -= lr * gx
            y += lr * gy
    return x.detach().numpy(), y.detach().numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    a = ap.parse_args()
    rows = []
    stop = cbopt.Stop(max_iter=1000)
    # saddle Rastrigin, the paper's setting
    ok_cbo = ok_gda = 0
    errs_cbo, errs_gda, t_cbo = [], [], 0.0
    for s in range(a.seeds):
        t0 = time.perf_counter()
        r = cbopt.minimax(saddle_rastrigin, x0=np.ones(10), y0=np.ones(10), init_scale=2.0, rng=s, stop=stop,
                          options=dict(n_particles=1000, dt=0.01, sigma=2.0, alpha=1e15, beta=1e15))
        t_cbo += time.perf_counter() - t0
        e = np.linalg.norm(r.x) + np.linalg.norm(r.y)
        errs_cbo.append(e)
        ok_cbo += e < 0.25
        start = np.random.default_rng(s).normal(1.0, 2.0, 20)  # one draw of the same start law
        gx, gy = gda(saddle_rastrigin, start[:10], start[10:], lr=0.01, steps=10_000)
        e = np.linalg.norm(gx) + np.linalg.norm(gy)
        errs_gda.append(e)
        ok_gda += e < 0.25
    rows.append(("saddle Rastrigin 10 + 10", f"{ok_cbo}/{a.seeds}", f"{np.median(errs_cbo):.1e}",
                 f"{r.nfev:,}", f"{ok_gda}/{a.seeds}", f"{np.median(errs_gda):.2f}", f"{t_cbo / a.seeds:.1f}"))
    # quadratic game: CBO-SP at N = 1000 (and the defaults), GDA with a step it converges with
    for label, opts in (("N = 1000", dict(n_particles=1000)), ("defaults (N = 500)", {})):
        ok_cbo = ok_gda = 0
        errs_cbo, errs_gda, t_cbo = [], [], 0.0
        for s in range(a.seeds):
            f, xs, ys = quadratic_game(s)
            t0 = time.perf_counter()
            r = cbopt.minimax(f, x0=np.ones(40), y0=np.ones(20), init_scale=2.0, rng=s, stop=stop, options=opts)
            t_cbo += time.perf_counter() - t0
            e = max(np.abs(r.x - xs).max(), np.abs(r.y - ys).max())
            errs_cbo.append(e)
            ok_cbo += e < 1e-3
            start = np.random.default_rng(s).normal(1.0, 2.0, 60)
            gx, gy = gda(f, start[:40], start[40:], lr=0.05, steps=2000)
            e = max(np.abs(gx - xs).max(), np.abs(gy - ys).max())
            errs_gda.append(e)
            ok_gda += e < 1e-3
        rows.append((f"quadratic game 40 + 20, {label}", f"{ok_cbo}/{a.seeds}", f"{np.median(errs_cbo):.1e}",
                     f"{r.nfev:,}", f"{ok_gda}/{a.seeds}", f"{np.median(errs_gda):.1e}", f"{t_cbo / a.seeds:.1f}"))
    print("| problem | CBO-SP success | CBO-SP median error | evaluations | GDA success | GDA median error | "
          "CBO-SP s/run |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    rhos = [quadratic_game(s)[0].rho for s in range(a.seeds)]
    print(f"\nthe games' best-response factor rho(C^-1 B^T A^-1 B): {min(rhos):.2f} to {max(rhos):.2f}")
    print("GDA: simultaneous steps with torch autograd (10 000 steps of 0.01 on Rastrigin, 2000 of 0.05 on the "
          "game), from one draw of the start law N(1, 2^2).")


if __name__ == "__main__":
    main()
