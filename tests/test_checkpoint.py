"""Checkpoint/resume: bit-identical continuation, atomic writes, and clear errors for bad files."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import cbopt
from cbopt.checkpoint import CheckpointError
from cbopt.objectives import rastrigin
from conftest import sigkill_when

METHODS = sorted(cbopt.methods())


def _same(a, b):
    assert np.array_equal(np.asarray(a.x), np.asarray(b.x))
    assert np.array_equal(np.asarray(a.population), np.asarray(b.population))
    assert a.nfev == b.nfev and a.fun == b.fun


@pytest.mark.parametrize("method", METHODS)
def test_interrupt_then_resume_is_bit_identical(method, tmp_path):
    path = tmp_path / "run.ckpt"
    kw = dict(bounds=[(-5, 5)] * 4, rng=5, max_evals=4000, method=method, n_runs=2)
    ref = cbopt.minimize(rastrigin, **kw)

    def ctrl_c(intermediate_result):
        r = intermediate_result
        if r.nit == 7:
            raise KeyboardInterrupt

    first = cbopt.minimize(rastrigin, callback=ctrl_c, checkpoint=cbopt.Checkpoint(path, every=3), **kw)
    assert first.reason == "INTERRUPTED" and path.exists()  # Ctrl-C: best-so-far result and a checkpoint
    _same(cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, resume=True), **kw), ref)


def test_ctrl_c_inside_the_objective_resumes_by_evaluating_the_asked_points(tmp_path):
    path = tmp_path / "run.ckpt"
    kw = dict(bounds=[(-5, 5)] * 3, rng=1, max_evals=3000, options={"batch_size": 8, "batch_mode": "partial"})
    ref = cbopt.minimize(rastrigin, **kw, method="cbo")
    calls = []

    def f(x):
        calls.append(1)
        if len(calls) == 40:
            raise KeyboardInterrupt
        return rastrigin(x)

    assert cbopt.minimize(f, checkpoint=cbopt.Checkpoint(path, every=1000), **kw, method="cbo").reason == "INTERRUPTED"
    _same(cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, resume=True), **kw, method="cbo"), ref)


def test_resume_without_a_file_starts_afresh_and_mismatches_are_refused(tmp_path):
    path = tmp_path / "run.ckpt"
    kw = dict(bounds=[(-5, 5)] * 3, rng=1, max_evals=1000)
    a = cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, resume=True), **kw, method="cbo")
    _same(a, cbopt.minimize(rastrigin, **kw, method="cbo"))
    with pytest.raises(CheckpointError, match="dim"):
        cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 4, rng=1, checkpoint=cbopt.Checkpoint(path, resume=True),
                       method="cbo")
    with pytest.raises(CheckpointError, match="params"):
        cbopt.minimize(rastrigin, options={"n_particles": 50}, checkpoint=cbopt.Checkpoint(path, resume=True), **kw,
                       method="cbo")
    with pytest.raises(CheckpointError, match="method"):
        cbopt.minimize(rastrigin, method="ch", checkpoint=cbopt.Checkpoint(path, resume=True), **kw)
    with pytest.raises(CheckpointError, match="restarts differ"):  # one run's file, resumed by a restart sequence
        cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, resume=True), restarts=2, **kw, method="cbo")
    with pytest.raises(ValueError, match="checkpoint every"):
        cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, every=0), **kw, method="cbo")


def test_a_crash_while_writing_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from cbopt import checkpoint as ckpt

    path = tmp_path / "run.ckpt"
    kw = dict(bounds=[(-5, 5)] * 3, rng=1, max_evals=2000)
    cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, every=5), **kw, method="cbo")
    good = path.read_bytes()
    real = np.savez
    writes = []

    def dying_savez(fh, **arrays):
        writes.append(1)
        fh.write(b"PK\x03\x04 half a file")
        raise OSError("disk on fire")

    monkeypatch.setattr(ckpt.np, "savez", dying_savez)
    with pytest.warns(RuntimeWarning, match="disk on fire"):  # the run goes on without its checkpoint
        res = cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, every=1), **dict(kw, max_evals=3000),
                             method="cbo")
    assert res.nfev > 2000 and res.checkpoint_error == "disk on fire"
    monkeypatch.setattr(ckpt.np, "savez", real)
    assert writes and path.read_bytes() == good  # untouched, and no temporary file left behind
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]
    cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, resume=True), **kw, method="cbo")  # still loads


def _corruptions(good: bytes, path, run_prefix=""):
    """Damaged versions of a checkpoint: (label, bytes); ``run_prefix="run."`` for a restart sequence's file."""
    yield "empty", b""
    yield "random bytes", np.random.default_rng(0).bytes(len(good))
    for cut in (10, len(good) // 3, len(good) // 2, len(good) - 10):
        yield f"truncated at {cut}", good[:cut]
    flipped = bytearray(good)
    for i in range(50, len(flipped), max(1, len(flipped) // 40)):
        flipped[i] ^= 0xFF
    yield "flipped bytes", bytes(flipped)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(bytes(arrays["header"]).decode())

    def rewrite(label, arrs):
        out = path.with_suffix(".tmp.npz")
        np.savez(out, **arrs)
        return label, out.read_bytes()

    def encode(h):
        return np.frombuffer(json.dumps(h).encode(), np.uint8)

    for key, value in [("format", "pickle"), ("version", 99), ("sampler", {"kind": "mersenne"}),
                       ("kind", "run" if run_prefix else "sequence")]:
        yield rewrite(f"header {key}", dict(arrays, header=encode(dict(header, **{key: value}))))
    for key, value in [("it", "seven"), ("state_fields", ["x"]), ("state_type", "os.system")]:
        if run_prefix:
            h = dict(header, run=dict(header["run"], **{key: value}))
        else:
            h = dict(header, **{key: value})
        yield rewrite(f"header {key}", dict(arrays, header=encode(h)))
    if run_prefix:
        seq = header["sequence"]
        for key, value in [("memo", "none"), ("nfev", -5), ("log", {}), ("child", {"method": "nelder"}),
                           ("status", 99), ("child", None)]:
            header2 = dict(header, sequence=dict(seq, **{key: value}))
            yield rewrite(f"sequence {key}", dict(arrays, header=encode(header2)))
    yield rewrite("header not json", dict(arrays, header=np.frombuffer(b"{nope", np.uint8)))
    for name in [k for k in arrays if k != "header" and not k.startswith("best.")]:
        yield rewrite(f"missing {name}", {k: v for k, v in arrays.items() if k != name})
    r = run_prefix
    yield rewrite("state.x wrong shape", dict(arrays, **{f"{r}state.x": arrays[f"{r}state.x"][..., :2]}))
    yield rewrite("book.nfev as floats", dict(arrays, **{f"{r}book.nfev": arrays[f"{r}book.nfev"] + 0.5}))
    yield rewrite("book.status unknown", dict(arrays, **{f"{r}book.status": arrays[f"{r}book.status"] + 100}))
    yield rewrite("object array", dict(arrays, **{f"{r}book.nit": np.array([None], dtype=object)}))


def test_corrupted_truncated_or_edited_checkpoints_are_clear_errors(tmp_path):
    path = tmp_path / "run.ckpt"
    kw = dict(bounds=[(-5, 5)] * 3, rng=1, max_evals=2000)
    cbopt.minimize(rastrigin, checkpoint=path, **kw, method="cbo")
    good = path.read_bytes()
    bad = tmp_path / "bad.ckpt"
    cases = 0
    for label, data in _corruptions(good, path):
        bad.write_bytes(data)
        try:
            cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(bad, resume=True), **kw, method="cbo")
        except CheckpointError as exc:
            assert str(bad) in str(exc) or "checkpoint" in str(exc), label
        except ValueError as exc:  # object arrays are refused by numpy's allow_pickle=False, also a ValueError
            assert "pickle" in str(exc).lower(), label
        else:
            pytest.fail(f"{label}: loaded without an error")
        cases += 1
    print(f"corrupted checkpoints tried: {cases}")
    assert cases >= 25


def test_sigkill_mid_run_then_resume_matches_an_undisturbed_run(tmp_path):
    """A real `cbopt run --checkpoint` process, SIGKILLed once its first checkpoint exists, then resumed."""
    ck = tmp_path / "run.ckpt"
    args = [sys.executable, "-m", "cbopt", "run", "rastrigin", "--dim", "20", "--max-evals", "400000", "--seed", "3",
            "--method", "cbo", "-o", "n_particles=200", "--json", "-q"]
    ref = json.loads(subprocess.run(args, capture_output=True, text=True, check=True, timeout=300).stdout)
    proc = subprocess.Popen(args + ["--checkpoint", str(ck), "--checkpoint-every", "50"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    killed = sigkill_when(proc, ck.exists, grace=0.2)
    assert killed, "the run finished before it could be killed: make it longer"
    with np.load(ck, allow_pickle=False) as f:
        assert int(f["book.nfev"][0]) < 400_000  # it really stopped mid-run
    out = subprocess.run(args + ["--checkpoint", str(ck), "--resume"], capture_output=True, text=True, check=True,
                         timeout=300)
    res = json.loads(out.stdout)
    assert res["x"] == ref["x"] and res["fun"] == ref["fun"] and res["nfev"] == ref["nfev"]
    assert zipfile.is_zipfile(ck)


def test_hypothesis_fuzzed_checkpoint_bytes(tmp_path_factory):
    """Random truncations and byte edits of a real checkpoint: each load is a CheckpointError, or (an edit that
    missed every byte that matters) a correct resume. Never another exception, never code execution."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    base = tmp_path_factory.mktemp("ck")
    path = base / "run.ckpt"
    kw = dict(bounds=[(-5, 5)] * 3, rng=1, max_evals=1500)
    ref = cbopt.minimize(rastrigin, **kw, method="cbo")
    cbopt.minimize(rastrigin, checkpoint=path, **dict(kw, max_evals=800), method="cbo")
    good = path.read_bytes()
    seen = {"n": 0, "errors": 0}

    @settings(max_examples=200, deadline=None, database=None)
    @given(cut=st.integers(0, len(good)), edits=st.lists(st.tuples(st.integers(0, len(good) - 1),
                                                                   st.integers(0, 255)), max_size=4))
    def one(cut, edits):
        data = bytearray(good[:cut] if cut < len(good) else good)
        for pos, byte in edits:
            if pos < len(data):
                data[pos] = byte
        bad = base / "bad.ckpt"
        bad.write_bytes(bytes(data))
        seen["n"] += 1
        try:
            res = cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(bad, resume=True), **kw, method="cbo")
        except CheckpointError:
            seen["errors"] += 1
            return
        _same(res, ref)

    one()
    print(f"fuzzed checkpoint files: {seen['n']} ({seen['errors']} clear errors, the rest resumed correctly)")
    assert seen["n"] >= 200 and seen["errors"] > 100


@pytest.mark.parametrize("first_budget", [800, 810])
def test_a_finished_run_continues_with_a_larger_budget_exactly(first_budget, tmp_path):
    path = tmp_path / "run.ckpt"
    kw = dict(bounds=[(-5, 5)] * 3, rng=2)
    ref = cbopt.minimize(rastrigin, max_evals=1500, **kw, method="cbo")
    short = cbopt.minimize(rastrigin, max_evals=first_budget, checkpoint=path, **kw, method="cbo")
    assert short.reason == "MAX_EVALS"
    _same(cbopt.minimize(rastrigin, max_evals=1500, checkpoint=cbopt.Checkpoint(path, resume=True), **kw,
                         method="cbo"), ref)
    again = cbopt.minimize(rastrigin, max_evals=1500, checkpoint=cbopt.Checkpoint(path, resume=True), **kw,
                           method="cbo")
    _same(again, ref)  # the file now holds the finished 1500-evaluation run: nothing more to do
    assert again.reason == "MAX_EVALS"


def test_an_interrupted_sequence_resumes_with_a_larger_budget_as_planned(tmp_path):
    """The default plans its runs' options from its budget (ACH's ``budget_options``: orthogonal samples up to
    1000 d evaluations): resumed with a larger budget, the sequence keeps the options it was planned with
    instead of rejecting its own file, and a malformed plan in the file is a clear error."""
    path = tmp_path / "seq.ckpt"
    kw = dict(bounds=[(-5, 5)] * 3, rng=1)
    first = cbopt.minimize(_interrupted_at(100), max_evals=2000, checkpoint=cbopt.Checkpoint(path, every=1), **kw)
    assert first.reason == "INTERRUPTED"
    res = cbopt.minimize(rastrigin, max_evals=5000, checkpoint=cbopt.Checkpoint(path, resume=True), **kw)
    assert res.nfev > 2000 and res.fun <= first.fun
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(bytes(arrays["header"]).decode())
    assert header["sequence"]["for_budget"]["sampling"] == "orthogonal"
    header["sequence"]["for_budget"] = {"no_such_option": 1}
    bad = tmp_path / "bad.npz"
    np.savez(bad, **dict(arrays, header=np.frombuffer(json.dumps(header).encode(), np.uint8)))
    with pytest.raises(CheckpointError, match="budget options"):
        cbopt.minimize(rastrigin, max_evals=5000, checkpoint=cbopt.Checkpoint(bad, resume=True), **kw)


def _interrupted_at(cut):
    """Rastrigin that raises KeyboardInterrupt (Ctrl-C) on its ``cut``-th call."""
    calls = []

    def f(x):
        calls.append(1)
        if len(calls) == cut:
            raise KeyboardInterrupt
        return rastrigin(x)

    return f


def _cut(kw, where):
    """The reference sequence (undisturbed) and the call of its objective at which to interrupt it: the second
    call ("probe": the noise check's first re-evaluation of the best point), the fifth (in the first run), the
    first call after the first run's evaluations ("boundary": the last step of the first run or
    the first of the second), the middle of the second run, or the third-last call (in its last run). Taken
    from the sequence's own runs, so that the places stay what they say whatever the runs' lengths."""
    before, made = [], [0]  # evaluations made before each call, and so far

    def f(x):
        before.append(made[0])
        made[0] += int(np.prod(np.shape(x)[:-1]))
        return rastrigin(x)

    ref = cbopt.minimize(f, **kw)
    assert ref.restarts >= 2, "the cut points need a sequence of several runs"
    first, second = ref.restart_log[0]["nfev"], ref.restart_log[1]["nfev"]
    at = {"probe": 1, "boundary": first, "second": first + second // 2}
    if where in ("first", "last"):
        return ref, 5 if where == "first" else len(before) - 2
    return ref, 1 + int(np.searchsorted(before, at[where]))


# -- restart sequences (the default method) -------------------------------------------------------------------

@pytest.mark.parametrize("where", ["probe", "first", "boundary", "second", "last"])
@pytest.mark.parametrize("restarts", ["auto", 3])
def test_a_restart_sequence_resumes_bit_identically(where, restarts, tmp_path):
    """Interrupted in the noise check's re-evaluation, in its first run, between runs, in a later run (the CBO
    regime under the default) or its last: the same result as undisturbed."""
    path = tmp_path / "seq.ckpt"
    kw = dict(bounds=[(-5, 5)] * 3, rng=1, max_evals=3000, restarts=restarts)
    ref, cut = _cut(kw, where)
    first = cbopt.minimize(_interrupted_at(cut), checkpoint=cbopt.Checkpoint(path, every=3), **kw)
    assert first.reason == "INTERRUPTED"
    res = cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, resume=True), **kw)
    _same(res, ref)
    assert res.restart_log == ref.restart_log


def test_a_sequence_checkpoint_refuses_another_call_and_damage(tmp_path):
    path = tmp_path / "seq.ckpt"
    kw = dict(bounds=[(-5, 5)] * 3, rng=1, max_evals=2000)
    f = _interrupted_at(_cut(kw, "second")[1])  # in its second run: the file holds the sequence and that run
    assert cbopt.minimize(f, checkpoint=path, **kw).reason == "INTERRUPTED"
    with pytest.raises(CheckpointError, match="restarts differ"):
        cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, resume=True), restarts=None, **kw)
    with pytest.raises(CheckpointError, match="policy"):
        cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, resume=True),
                       restarts=cbopt.restarts.Portfolio(cbo=False), **kw)
    with pytest.raises(CheckpointError, match="dim"):
        cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, resume=True), bounds=[(-5, 5)] * 4, rng=1,
                       max_evals=2000)
    good = path.read_bytes()
    bad = tmp_path / "bad.ckpt"
    cases = 0
    for label, data in _corruptions(good, path, run_prefix="run."):
        bad.write_bytes(data)
        with pytest.raises((CheckpointError, ValueError)) as info:
            cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(bad, resume=True), **kw)
        assert info.type is CheckpointError or "pickle" in str(info.value).lower(), label
        cases += 1
    assert cases >= 25


@pytest.mark.parametrize("where", ["first", "second", None])
def test_a_sequence_checkpoint_refuses_another_seed_or_box(where, tmp_path):
    """Under the default method (a restart sequence) a file written with one seed or one box is refused by a
    call with another, in its first run, in a later one, and when a finished sequence is extended with a larger
    budget, as the single-method path refuses it."""
    path = tmp_path / "seq.ckpt"
    kw = dict(bounds=[(-5, 5)] * 3, rng=1, max_evals=2000)
    cut = _cut(kw, where)[1] if where else None
    first = cbopt.minimize(_interrupted_at(cut) if cut else rastrigin, checkpoint=path, **kw)
    assert first.reason == ("INTERRUPTED" if cut else "MAX_EVALS")
    more = {} if cut else {"max_evals": 4000}
    with pytest.raises(CheckpointError, match="random stream"):
        cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, resume=True), **{**kw, **more, "rng": 2})
    with pytest.raises(CheckpointError, match="bounds"):
        cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, resume=True),
                       **{**kw, **more, "bounds": [(-4, 5)] * 3})
    res = cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, resume=True), **{**kw, **more})
    assert first.nfev <= res.nfev <= kw["max_evals"] + more.get("max_evals", 0)  # the same call resumes


@pytest.mark.parametrize("restarts", [None, "auto"])
def test_constraints_are_part_of_a_checkpoints_identity(restarts, tmp_path):
    """An unconstrained file resumed with Sphere(1) fed the objective points far off the sphere: the constraints
    (projection, named functions, penalty) are in the fingerprint, for one method and for the default."""
    path = tmp_path / "run.ckpt"
    kw = dict(bounds=[(-5, 5)] * 3, rng=0, max_evals=600, restarts=restarts)
    method = {"method": "cbo"} if restarts is None else {}
    cbopt.minimize(rastrigin, checkpoint=path, **kw, **method)
    with pytest.raises(CheckpointError, match="constraints is '' there, 'Sphere"):
        cbopt.minimize(rastrigin, constraints=cbopt.Sphere(1), checkpoint=cbopt.Checkpoint(path, resume=True),
                       **{**kw, "max_evals": 1200}, **method)
    res = cbopt.minimize(rastrigin, checkpoint=cbopt.Checkpoint(path, resume=True), **{**kw, "max_evals": 1200},
                         **method)
    assert res.nfev > 600  # the same call resumes
