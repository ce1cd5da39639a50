"""The one home of argument checks (cbopt.validation) and that the methods use it."""

import pathlib
import re

import numpy as np
import pytest

from cbopt.validation import choice, flag, number


@pytest.mark.parametrize("v, kw, ok", [
    (3, dict(at_least=2, integer=True), 3), (np.int64(3), dict(at_least=2, integer=True), 3),
    (np.float32(0.5), dict(above=0), 0.5), (None, dict(none=True), None), (float("inf"), dict(finite=False), np.inf),
    (0.0, dict(at_least=0, below=1), 0.0),
])
def test_numbers_that_pass(v, kw, ok):
    assert number("x", v, **kw) == ok


@pytest.mark.parametrize("v, kw, said", [
    (True, {}, "must be a finite number"), (2.5, dict(integer=True), "must be an integer"),
    (1, dict(at_least=2, integer=True), "an integer >= 2, got 1"), (float("nan"), {}, "got nan"),
    (float("inf"), {}, "a finite number"), ("1", {}, "got '1'"), (None, {}, "got None"),
    (1.0, dict(above=0, below=1), "> 0 and < 1"), (None, dict(none=False, above=0), "a finite number > 0"),
])
def test_numbers_that_fail_say_what_was_expected(v, kw, said):
    with pytest.raises(ValueError, match=re.escape(said)):
        number("x", v, **kw)


def test_flags_and_choices():
    assert flag("f", np.bool_(True)) is True
    with pytest.raises(TypeError, match="expected True or False, got 1"):
        flag("f", 1)
    assert choice("mode", "full", ("full", "partial")) == "full"
    with pytest.raises(ValueError, match="expected 'full' or 'partial', got 'half'"):
        choice("mode", "half", ("full", "partial"))


def test_methods_validate_through_the_helpers():
    """No method re-implements a number check: the bool/int/float isinstance one-liners live in validation.py."""
    src = pathlib.Path(__file__).parents[1] / "src" / "cbopt" / "methods"
    inline = [f"{p.name}:{i}" for p in sorted(src.glob("*.py"))
              for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"isinstance\([^)]*, bool\)", line)]
    assert inline == []


def test_backend_branches_live_in_the_backend_module():
    """numpy-versus-torch decisions (``xp is np``) are made by the helpers of _backend.py, nowhere else."""
    src = pathlib.Path(__file__).parents[1] / "src" / "cbopt"
    branches = [f"{p.relative_to(src)}:{i}" for p in sorted(src.rglob("*.py")) if p.name != "_backend.py"
                for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\bis (not )?np\b", line)]
    assert branches == []
