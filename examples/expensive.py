"""Expensive objectives: ask/tell, a process pool with a failing solver, checkpoint/resume, and a short budget.

    python examples/expensive.py
"""

import os
import tempfile
import time

import numpy as np

import cbopt
from cbopt.objectives import rastrigin


def simulation(x):
    """A per-point 'simulation': 20 ms, and it fails in a corner of the domain."""
    time.sleep(0.02)
    if x[0] > 4.5:
        raise RuntimeError("mesh did not converge")
    return float(rastrigin(np.asarray(x)))


if __name__ == "__main__":  # process pools re-import this file
    # 1. ask/tell: you evaluate, cbopt decides where
    opt = cbopt.Optimizer(bounds=[(-5, 5)] * 3, rng=0, max_evals=3000)
    while not opt.stop():
        X = opt.ask()
        opt.tell(X, rastrigin(X))
    print("ask/tell:", opt.result().fun, opt.stop())

    # 2. a process pool of 4: per-point evaluations, failures become NaN and are reported
    t0 = time.time()
    res = cbopt.minimize(simulation, bounds=[(-5, 5)] * 3, rng=0, max_evals=800, options={"n_particles": 16},
                         evaluator=cbopt.Pool(workers=4, timeout=5))
    print(f"pool: f = {res.fun:.3g} in {time.time() - t0:.1f} s; {len(res.eval_failures)} failed evaluations, "
          f"e.g. {res.eval_failures[0]['error'] if res.eval_failures else '-'}")

    # 3. checkpoint, interrupt (here: a callback that raises KeyboardInterrupt), resume: identical result
    path = os.path.join(tempfile.mkdtemp(), "run.ckpt")
    kw = dict(bounds=[(-5, 5)] * 10, rng=1, max_evals=50_000)

    def ctrl_c(intermediate_result):
        r = intermediate_result
        if r.nit == 500:
            raise KeyboardInterrupt

    first = cbopt.minimize(rastrigin, callback=ctrl_c, checkpoint=cbopt.Checkpoint(path, every=100), **kw)
    resumed = cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, every=100, resume=True), **kw)
    plain = cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 10, rng=1, max_evals=50_000)
    print(f"interrupted at {first.nfev} evaluations ({first.reason}); resumed to {resumed.nfev}: "
          f"identical to an uninterrupted run: {np.array_equal(resumed.x, plain.x)}")

    # 4. a short budget (here 100 evaluations per dimension): the default's runs sample orthogonal directions
    shifted = lambda x: np.sum((np.asarray(x) - 1.5) ** 2, -1)  # noqa: E731
    for options in (None, {"sampling": "gaussian"}):
        fs = [cbopt.minimize(shifted, bounds=[(-5, 5)] * 10, rng=s, max_evals=1000, options=options).fun
              for s in range(10)]
        print(f"1000 evaluations, {(options or {}).get('sampling', 'orthogonal (default)')}: median f = "
              f"{np.median(fs):.2g} over 10 seeds")
