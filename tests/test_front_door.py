"""scipy users' call patterns: each works, or fails on the first call with one line saying how."""

import numpy as np
import pytest

import cbopt
from cbopt.objectives import sphere

scipy_optimize = pytest.importorskip("scipy.optimize")
B3 = [(-2, 2)] * 3


@pytest.mark.parametrize("f", [scipy_optimize.rosen, lambda x: x[0] ** 2 + x[1] ** 2, lambda x: np.dot(x, x),
                               lambda x: float(np.sum(x ** 2))])
def test_a_per_point_objective_fails_at_once_with_the_hint(f):
    with pytest.raises(TypeError, match=r"looks like a per-point function.*cbopt\.vectorize\(f\)") as info:
        cbopt.minimize(f, bounds=B3, rng=0, max_evals=300)
    assert "\n" not in str(info.value)
    res = cbopt.minimize(cbopt.vectorize(f), bounds=B3, rng=0, max_evals=300)  # the hint works
    assert np.isfinite(res.fun)


def test_a_batched_objective_that_raises_is_not_called_per_point():
    calls = []

    def broken(x):
        calls.append(x.shape)
        raise ZeroDivisionError("model failed")

    with pytest.raises(cbopt.ObjectiveError, match="ZeroDivisionError: model failed"):
        cbopt.minimize(broken, bounds=B3, rng=0, max_evals=300)
    assert len(calls) == 2 and len(calls[1]) == 1  # the batch, then one point to diagnose it; no hint


def test_a_per_point_constraint_is_named_as_the_constraint():
    cons = [{"type": "ineq", "fun": lambda x: 1 - x[0] - x[1]}]
    with pytest.raises(TypeError, match=r"constraint ineq #0 \(<lambda>\) raised IndexError.*cbopt\.vectorize\(g\)"):
        cbopt.minimize(sphere, bounds=B3, rng=0, max_evals=300, method="cbo", constraints=cons)
    scalar = [{"type": "eq", "fun": lambda x: float(x[..., 0].sum())}]
    with pytest.raises(TypeError, match=r"constraint eq #0 .* returned shape \(\)"):
        cbopt.minimize(sphere, bounds=B3, rng=0, max_evals=300, method="cbo", constraints=scalar)


def test_args_reach_the_objective():
    def f(x, a, b):
        return ((x - a) ** 2).sum(-1) + b

    res = cbopt.minimize(f, bounds=B3, rng=0, args=(1.0, 5.0), target=5.0 + 1e-10, max_evals=20_000)
    assert res.reason == "TARGET" and np.abs(res.x - 1.0).max() < 1e-4
    one = cbopt.minimize(lambda x, a: ((x - a) ** 2).sum(-1), bounds=B3, rng=0, args=0.5, target=1e-10)
    assert np.abs(one.x - 0.5).max() < 1e-4  # a non-tuple is one argument, as in scipy


def test_callback_by_signature_as_scipy_and_a_truthy_return_stops():
    xs, results = [], []
    res = cbopt.minimize(sphere, bounds=B3, rng=0, method="cbo", callback=lambda xk: xs.append(xk) or len(xs) == 4)
    assert res.reason == "CALLBACK" and res.nit == 4 and len(xs) == 4
    assert all(isinstance(x, np.ndarray) and x.shape == (3,) for x in xs)
    xs[0][:] = 99.0  # a copy: the run's best point is not the callback's to change
    assert np.abs(res.x).max() < 99

    def full(intermediate_result):
        results.append(intermediate_result.nfev)
        return intermediate_result.nit >= 3

    res = cbopt.minimize(sphere, bounds=B3, rng=0, method="cbo", callback=full)
    assert res.reason == "CALLBACK" and res.nit == 3 and results == sorted(results)
    res = cbopt.minimize(sphere, bounds=B3, rng=0, max_evals=2000, callback=lambda xk: None)  # None: go on
    assert res.reason != "CALLBACK"


def test_a_callback_stops_the_default_portfolio():
    seen = []
    res = cbopt.minimize(sphere, bounds=B3, rng=0, callback=lambda xk: seen.append(1) or len(seen) >= 7)
    assert res.reason == "CALLBACK" and len(seen) == 7


@pytest.mark.parametrize("name", ["L-BFGS-B", "Nelder-Mead", "CH", "Auto"])
def test_refiner_and_method_names_are_case_insensitive(name):
    res = cbopt.minimize(sphere, bounds=B3, rng=0, method="CBO", refine=name, max_evals=3000)
    assert res.refine["method"] in ("l-bfgs-b", "nelder-mead", "ch")


@pytest.mark.parametrize("kw, hint", [
    ({"tol": 1e-8}, r"tol= is scipy's; cbopt's is stop=cbopt.Stop\(xtol=..., ftol=...\)"),
    ({"maxiter": 10}, r"maxiter= is scipy's; cbopt's is stop=cbopt.Stop\(max_iter=...\)"),
    ({"maxfev": 10}, "maxfev= is scipy's; cbopt's is max_evals="),
    ({"disp": True}, "disp= is scipy's"),
    ({"options": {"maxiter": 10}}, r"'maxiter' is scipy's option; cbopt takes stop=cbopt.Stop\(max_iter=...\)"),
    ({"max_iter": 10}, r"max_iter= is now stop=cbopt.Stop\(max_iter=...\)"),
    ({"device": "cpu"}, r"device= is now backend='cuda' or backend=cbopt.Torch\(device\)"),
    ({"on_error": "return"}, r"on_error= is now nothing: catch cbopt.ObjectiveError"),
    ({"options": {"disp": True}}, "'disp' is scipy's option"),
    ({"colour": 1}, r"unexpected keyword argument\(s\) \['colour'\]"),
])
def test_scipy_spellings_are_refused_with_cbopts(kw, hint):
    with pytest.raises(TypeError, match=hint):
        cbopt.minimize(sphere, bounds=B3, **kw)


def test_scipys_linear_and_nonlinear_constraints():
    lin, nonlin = scipy_optimize.LinearConstraint, scipy_optimize.NonlinearConstraint
    f = lambda X: ((X - 1) ** 2).sum(-1)  # noqa: E731
    kw = dict(bounds=[(-2, 2)] * 2, rng=0, max_evals=20_000)
    res = cbopt.minimize(f, constraints=lin([[1, 1]], -np.inf, 1), **kw)  # x + y <= 1
    assert np.abs(res.x - 0.5).max() < 1e-3 and res.constraint_violation < 1e-6
    res = cbopt.minimize(f, constraints=nonlin(lambda x: x @ x, 1, 1), **kw)  # on the unit circle (lb == ub)
    assert abs(np.linalg.norm(res.x) - 1) < 1e-3 and np.abs(res.x - 0.5 ** 0.5).max() < 1e-3
    two_rows = lin([[1, 0], [0, 1]], [-np.inf, 1.5], [0.25, np.inf])  # x <= 0.25, y >= 1.5, with a dict too
    res = cbopt.minimize(f, constraints=[two_rows, {"type": "ineq", "fun": lambda X: 1.75 - X[..., 1]}], **kw)
    np.testing.assert_allclose(res.x, [0.25, 1.5], atol=1e-3)
    with pytest.raises(ValueError, match="lb > ub"):
        cbopt.minimize(f, constraints=lin([[1, 1]], 2, 1), **kw)


def test_a_linear_constraint_on_a_torch_run():
    torch = pytest.importorskip("torch")
    f = lambda X: ((X - 1) ** 2).sum(-1)  # noqa: E731
    res = cbopt.minimize(f, bounds=[(-2, 2)] * 2, rng=0, max_evals=20_000, method="cbo", backend=cbopt.Torch("cpu"),
                         constraints=scipy_optimize.LinearConstraint([[1, 1]], -np.inf, 1))
    assert isinstance(res.x, torch.Tensor) and abs(float(res.x.sum()) - 1) < 1e-2


def test_progress_shows_the_final_state_and_keeps_the_callback(capsys):
    seen = []
    res = cbopt.minimize(sphere, bounds=B3, rng=0, method="cbo", max_evals=3000, progress=True,
                         callback=lambda xk: seen.append(1) or len(seen) == 20)
    err = capsys.readouterr().err.strip().splitlines()
    assert res.reason == "CALLBACK" and len(seen) == 20  # the user's callback still decides
    assert err[0].startswith("it ") and "/3000" in err[0]
    assert err[-1] == f"CALLBACK: best f {res.fun:.6g}, {res.nfev}/3000 evaluations, " + err[-1].split(", ")[-1]
    with pytest.raises(TypeError, match="progress"):
        cbopt.minimize(sphere, bounds=B3, progress="yes")


def test_scipy_minimize_with_cbopt_as_its_method():
    """A scipy-style script: per-point fun with args, bounds, a dict constraint, scipy's options and callback."""
    seen = []

    def fun(x, a):
        return float(np.sum((x - a) ** 2))

    res = scipy_optimize.minimize(
        fun, np.zeros(3), args=(0.5,), method=cbopt.scipy_method, bounds=[(-2, 2)] * 3,
        constraints=[{"type": "ineq", "fun": lambda x: 1.0 - x.sum()}],  # x0 + x1 + x2 <= 1
        callback=lambda xk: seen.append(xk.copy()), options={"maxfev": 20_000, "seed": 0, "disp": False},
    )
    assert isinstance(res, scipy_optimize.OptimizeResult) and res.nfev <= 20_000
    np.testing.assert_allclose(res.x, [1 / 3] * 3, atol=2e-3)  # the constrained optimum
    assert seen and all(s.shape == (3,) for s in seen)
    r = scipy_optimize.minimize(scipy_optimize.rosen, np.zeros(2), method=cbopt.scipy_method,
                                options={"maxiter": 5, "seed": 1, "method": "cbo"})
    assert r.nit == 5 and r.message
    with pytest.raises(ValueError, match="derivative-free"):
        scipy_optimize.minimize(scipy_optimize.rosen, np.zeros(2), method=cbopt.scipy_method,
                                jac=scipy_optimize.rosen_der)


def test_the_log_says_what_was_chosen_and_what_went_non_finite(caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="cbopt"):
        cbopt.minimize(sphere, bounds=B3, rng=0, method="cbo", stop=cbopt.Stop(max_iter=3))
        assert not caplog.records  # a budget was given, nothing non-finite: silent
        cbopt.minimize(lambda X: np.where(X[..., 0] > 1, np.nan, (X ** 2).sum(-1)), bounds=B3, rng=0, method="cbo")
    msgs = [r.getMessage() for r in caplog.records]
    assert any("no budget given: max_evals = min(5000 * d, 1000000) = 15000" in m for m in msgs)
    assert any("evaluations were non-finite (NaN or inf)" in m for m in msgs)
    assert [r.levelname for r in caplog.records if "non-finite" in r.getMessage()] == ["WARNING"]


def test_the_library_prints_nothing_unasked_and_reports_each_fact_once(caplog):
    """The cbopt logger has a NullHandler (no output until the application configures logging), and an
    evaluator's failures are one RuntimeWarning, not also a log line."""
    import logging
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    code = ("import numpy as np, cbopt\n"
            "cbopt.minimize(lambda X: np.where(X[..., 0] > 1, np.nan, (X**2).sum(-1)), bounds=[(-2, 2)] * 3,"
            " rng=0, method='cbo')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == ""
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("cbopt").handlers)

    def fails(x):
        if x[0] > 1:
            raise RuntimeError("no result here")
        return float((x**2).sum())

    with caplog.at_level(logging.INFO, logger="cbopt"), ThreadPoolExecutor(2) as ex, \
            pytest.warns(RuntimeWarning, match="evaluations failed in the evaluator"):
        res = cbopt.minimize(fails, bounds=B3, rng=0, method="cbo", max_evals=400, evaluator=cbopt.Pool(ex))
    assert res.nfev_nonfinite > 0 and not [r for r in caplog.records if "non-finite" in r.getMessage()]


@pytest.mark.parametrize("con", [{"type": "ineq"}, {"type": "ineq", "fun": 3.0}, {"fun": lambda x: x[0]},
                                 {"type": "ineq", "fun": lambda x: x[0], "tol": 1}])
def test_scipy_constraint_dicts_are_checked(con):
    """A scipy constraint dict without a callable `fun` or `type`, or with a key scipy does not have: one
    TypeError that shows the expected form (a KeyError before)."""
    with pytest.raises(TypeError, match="expected scipy's"):
        scipy_optimize.minimize(scipy_optimize.rosen, np.zeros(2), method=cbopt.scipy_method, bounds=B3[:2],
                                constraints=con, options={"maxfev": 500})


def test_the_wings_show_progress_as_minimize_does(capsys):
    """progress=True on minimax and multiobjective: lines on stderr and a last line with the final state (a
    front's size where there is no single best value); a non-bool is refused."""
    res = cbopt.minimax(lambda x, y: (x**2).sum(-1) - (y**2).sum(-1), [(-1, 1)] * 2, [(-1, 1)] * 2, rng=0,
                        max_evals=3000, progress=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("it ") and err[-1].startswith(f"MAX_EVALS: best f {res.fun:.6g}, {res.nfev}/3000")
    two = lambda x: np.stack([(x**2).sum(-1), ((x - 1) ** 2).sum(-1)], -1)  # noqa: E731
    res = cbopt.multiobjective(two, bounds=[(-2, 2)] * 2, rng=0, max_evals=1000, progress=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"MAX_EVALS: front of {len(res.F)}, {res.nfev}/1000")
    with pytest.raises(TypeError, match="progress"):
        cbopt.multiobjective(two, bounds=[(-2, 2)] * 2, max_evals=1000, progress="yes")


@pytest.mark.parametrize("how", ["ch", "nelder-mead", "l-bfgs-b"])
def test_the_polish_keeps_to_the_budget_when_little_is_left(how):
    """A refiner whose first batch does not fit in what the run left (consensus hopping's 2 d + 2 samples)
    is skipped, never run past max_evals."""
    pytest.importorskip("scipy")
    for budget in range(100, 112):
        res = cbopt.minimize(lambda X: (X**2).sum(-1), bounds=[(-1, 1)] * 2, method="cbs", max_evals=budget, rng=0,
                             restarts=0, refine=how)
        assert res.nfev <= budget, (budget, res.nfev, res.refine)
