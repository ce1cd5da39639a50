"""Per-step time of cbopt's CBO against the swarm size N*d, on a log-log plot with the fitted slope.

    python benchmarks/scaling.py [--out benchmarks/results/scaling.png] [--device numpy --device cpu] [--dtype float64]

d = 100, N from 10 to 100,000 (N*d from 1e3 to 1e7), sphere objective, M = 1. The slope of
log(time) against log(N*d) is fitted over N*d >= 1e5, where the per-step Python overhead (~0.1 ms) no
longer matters; 1 means linear cost. By default the numpy path and torch on the CPU are measured.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np

import cbopt
from cbopt.objectives import sphere

NO_STOP = dict(xtol=None, ftol=None, divergence=None)


def per_step(n, d, steps, **kw):
    opts = {"n_particles": n, "sigma": 1.0, "alpha": 30.0}
    res = []
    for _ in range(3):
        t0 = time.perf_counter()
        cbopt.minimize(sphere, bounds=[(-3, 3)] * d, method="cbo", options=opts, rng=0,
                       stop=cbopt.Stop(max_iter=1, **NO_STOP), **kw)
        t1 = time.perf_counter()
        cbopt.minimize(sphere, bounds=[(-3, 3)] * d, method="cbo", options=opts, rng=0,
                       stop=cbopt.Stop(max_iter=steps + 1, **NO_STOP), **kw)
        t2 = time.perf_counter()
        res.append(((t2 - t1) - (t1 - t0)) / steps)
    return min(res)


def measure(d, kw):
    ns = [10, 30, 100, 300, 1000, 3000, 10_000, 30_000, 100_000]
    sizes, times = [], []
    print(f"{'N':>7} {'N*d':>9} {'ms/step':>9} {'ns per N*d':>10}")
    for n in ns:
        steps = int(min(300, max(5, 3e7 // (n * d))))
        t = per_step(n, d, steps, **kw)
        sizes.append(n * d)
        times.append(t)
        print(f"{n:>7} {n * d:>9.0e} {t * 1e3:9.3f} {t / (n * d) * 1e9:10.2f}")
    x, y = np.log10(sizes), np.log10(times)
    big = np.asarray(sizes) >= 1e5
    slope, icpt = np.polyfit(x[big], y[big], 1)
    print(f"fitted slope of log(time) vs log(N*d): {slope:.3f} for N*d >= 1e5 (1 = linear); "
          f"{np.polyfit(x, y, 1)[0]:.3f} overall")
    return np.asarray(sizes), np.asarray(times), slope, icpt


def main(argv=None):
    ap = argparse.ArgumentParser(description="cbopt: per-step time vs N*d")
    ap.add_argument("--out", default="benchmarks/results/scaling.png")
    ap.add_argument("--device", action="append", default=None,
                    help="torch device(s) to measure, repeatable; 'numpy' for the numpy path "
                         "(default: numpy, and torch on the CPU when installed)")
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--d", type=int, default=100)
    args = ap.parse_args(argv)
    from cbopt._extras import available

    devices = args.device or (["numpy", "cpu"] if available("torch") else ["numpy"])
    curves = []
    for dev in devices:
        kw = {"backend": cbopt.Numpy(args.dtype) if dev == "numpy" else cbopt.Torch(dev, args.dtype)}
        label = "numpy" if dev == "numpy" else f"torch on {dev}"
        print(f"cbopt {cbopt.__version__}, {label}, {args.dtype}, d = {args.d}")
        curves.append((label, *measure(args.d, kw)))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install 'cbopt[plot]')")
        return
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, sizes, times, slope, icpt in curves:
        (line,) = ax.loglog(sizes, times, "o-", label=f"cbopt, {label} ({args.dtype})")
        big = sizes >= 1e5
        ax.loglog(sizes[big], 10 ** (icpt + slope * np.log10(sizes[big])), "--", color=line.get_color(),
                  label=f"fit on N d >= 1e5: slope {slope:.2f}")
    ax.set_xlabel(f"N d (particles x dimension), d = {args.d}")
    ax.set_ylabel("seconds per CBO step")
    ax.set_title("Per-step cost of CBO (sphere, M = 1)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
