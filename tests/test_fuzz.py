"""Hypothesis-fuzzed minimize arguments: every case either runs or is a clear TypeError/ValueError."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

import cbopt
from cbopt.objectives import sphere

NUMBERS = st.one_of(st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True, width=32), st.just(0.0))
JUNK = st.one_of(st.none(), st.text(max_size=3), st.booleans(), NUMBERS, st.lists(NUMBERS, max_size=3),
                 st.lists(st.lists(NUMBERS, max_size=3), max_size=3), st.dictionaries(st.text(max_size=2), NUMBERS))

# a valid call, then 0, 1 or 2 of its arguments replaced by junk
VALID = {
    "bounds": st.lists(st.tuples(st.floats(-5, -0.1), st.floats(0.1, 5)), min_size=2, max_size=2),
    "method": st.sampled_from(sorted(cbopt.methods())),
    "options": st.just(None),
    "max_evals": st.integers(100, 300),
    "n_runs": st.integers(1, 2),
    "rng": st.integers(0, 9),
    "target": st.one_of(st.none(), st.floats(-1, 1)),
    "init_scale": st.one_of(st.none(), st.floats(0.1, 2)),
    "x0": st.just(None),
    "max_iter": st.one_of(st.none(), st.integers(1, 20)),
    "xtol": st.one_of(st.none(), st.floats(0, 1e-3)),
    "restarts": st.integers(0, 1),
    "refine": st.sampled_from([None, "ch", "nelder-mead"]),
    "dtype": st.sampled_from([None, "float32", "float64"]),
    "constraints": st.sampled_from([None, cbopt.Sphere(), {"type": "ineq", "fun": lambda x: 1 - x[..., 0]}]),
    "penalty": st.floats(0.5, 100),
    "divergence": st.one_of(st.none(), st.floats(10, 1e4)),
}
EXTRA_JUNK = {
    "options": st.dictionaries(st.sampled_from(["n_particles", "dt", "lam", "sigma", "alpha", "noise", "batch_size",
                                                "batch_mode", "boundary", "kappa", "tau", "mode", "gamma", "bogus"]),
                               JUNK, min_size=1, max_size=2),
    "method": st.one_of(st.text(max_size=4), st.integers()),
    "constraints": st.one_of(JUNK, st.just({"type": "eq"}), st.just([cbopt.Sphere(), cbopt.Sphere()])),
    "divergence": st.just(math.nan),
}
CASES = {"n": 0, "ran": 0}


@st.composite
def calls(draw):
    kw = {k: draw(v) for k, v in VALID.items()}
    for key in draw(st.lists(st.sampled_from(sorted(VALID)), max_size=2, unique=True)):
        kw[key] = draw(st.one_of(JUNK, EXTRA_JUNK.get(key, JUNK)))
    return kw


def grouped(kw):
    """The drawn settings as minimize takes them: stopping rules in Stop, init_scale among the options, the dtype
    in the backend, the penalty weight with the constraints (building a policy is part of the call)."""
    stop = cbopt.Stop(**{k: kw.pop(k) for k in ("max_iter", "xtol", "divergence")})
    scale = kw.pop("init_scale")
    if scale is not None:
        kw["options"] = {**kw["options"], "init_scale": scale} if isinstance(kw["options"], dict) else kw["options"]
    dtype, weight = kw.pop("dtype"), kw.pop("penalty")
    if kw["constraints"] is not None:
        kw["constraints"] = cbopt.Penalty(kw["constraints"], weight=weight)
    return dict(kw, stop=stop, backend=None if dtype is None else cbopt.Numpy(dtype))


@settings(max_examples=400, deadline=None)
@given(kw=calls())
def test_fuzzed_arguments_run_or_fail_clearly(kw):
    CASES["n"] += 1
    x0 = kw.pop("x0")
    try:
        kw = grouped(kw)
        res = cbopt.minimize(sphere, x0, **kw)
    except (TypeError, ValueError) as exc:
        assert str(exc)  # a message, not a bare exception
        return
    CASES["ran"] += 1
    assert isinstance(res, cbopt.OptimizeResult) and isinstance(res.status, int)
    assert not isinstance(kw["max_evals"], int) or \
        res.nfev <= kw["max_evals"] * (kw["n_runs"] if isinstance(kw["n_runs"], int) else 1)


def test_report_fuzz_count():
    print(f"fuzzed minimize calls: {CASES['n']} ({CASES['ran']} ran, the rest were clear errors)")
    assert CASES["n"] >= 400 and CASES["ran"] >= 50
