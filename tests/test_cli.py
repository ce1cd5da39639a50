import json
import subprocess
import sys

import pytest

from cbopt.cli import main


def test_run_json(capsys):
    assert main(["run", "rastrigin", "--dim", "3", "--seed", "1", "--shift", "--json", "--max-evals", "8000"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dim"] == 3 and out["nfev"] <= 8000 and out["status"] == "MAX_EVALS"
    assert out["max_coord_error"] < 0.25 and len(out["x"]) == 3


def test_run_summary_and_progress(capsys):
    assert main(["run", "sphere", "--dim", "4", "--max-evals", "2000", "-o", "n_particles=20"]) == 0
    cap = capsys.readouterr()
    assert "best f" in cap.out and "evaluations" in cap.out
    assert "evals" in cap.err  # the progress line


def test_bad_arguments_are_clear_errors(capsys):
    assert main(["run", "nosuch"]) == 2
    assert "unknown test function" in capsys.readouterr().err
    assert main(["run", "sphere", "-o", "sigma=-1"]) == 2
    assert "sigma" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "sphere", "-o", "novalue"])


def test_lists(capsys):
    assert main(["methods"]) == 0 and "cbo" in capsys.readouterr().out
    assert main(["functions"]) == 0 and "himmelblau" in capsys.readouterr().out


def test_demo_writes_figures(tmp_path):
    pytest.importorskip("matplotlib")
    r = subprocess.run([sys.executable, "-m", "cbopt", "demo", "--dim", "10", "--out", str(tmp_path), "-q"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "solved" in r.stdout
    for name in ("convergence.png", "swarm.png"):
        p = tmp_path / name
        assert p.exists() and p.stat().st_size > 10_000
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
