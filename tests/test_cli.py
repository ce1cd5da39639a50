import json
import pathlib
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
    assert main(["run", "sphere", "-o", "novalue"]) == 2  # a usage error, not "the objective failed" (1)
    assert "KEY=VALUE" in capsys.readouterr().err


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


def _cbopt(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "cbopt", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)


def test_run_a_users_file_and_module(tmp_path):
    import os
    import pathlib

    root = pathlib.Path(__file__).parents[1]
    r = _cbopt("run", "examples/myproblem.py:f", "--dim", "5", "--json", "-q", cwd=root)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["fun"] < 1e-8 and out["f_min"] is None and out["dim"] == 5
    assert max(abs(v - (i + 1) / 5) for i, v in enumerate(out["x"])) < 1e-4
    (tmp_path / "mymod_cli.py").write_text("def g(X):\n    return ((X - 0.5) ** 2).sum(-1)\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    r = _cbopt("run", "mymod_cli:g", "--dim", "3", "--bounds=0,1", "--json", "--max-evals", "3000", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["fun"] < 1e-8 and all(0 <= v <= 1 for v in out["x"])
    r = _cbopt("run", "mymod_cli:g", "--dim", "3", "--max-evals", "3000", env=env)
    assert r.returncode == 0 and "mymod_cli:g: batched, d = 3" in r.stderr  # says how the function is called
    assert "best x" in r.stdout


@pytest.mark.parametrize("args, code, said", [
    (["run", "examples/myproblem.py:nope", "-q"], 2, "has no function 'nope'"),
    (["run", "no/such/file.py:f", "-q"], 2, "no such file"),
    (["run", "sphere", "--bounds=0,1", "-q"], 2, "--bounds is for your own problem"),
    (["run", "json:dumps", "--dim", "2", "-q"], 1, "the objective raised TypeError"),
])
def test_run_a_users_function_fails_in_one_line(args, code, said):
    import pathlib

    r = _cbopt(*args, cwd=pathlib.Path(__file__).parents[1])
    assert r.returncode == code and said in r.stderr and "Traceback" not in r.stderr


def test_animate_writes_a_gif_of_a_2d_run(tmp_path):
    pytest.importorskip("matplotlib")
    PIL = pytest.importorskip("PIL.Image")
    path = tmp_path / "swarm.gif"
    r = _cbopt("run", "rastrigin", "--dim", "2", "--shift", "--max-evals", "2000", "--animate", str(path), "-q")
    assert r.returncode == 0, r.stderr
    with PIL.open(path) as im:
        assert im.format == "GIF" and im.n_frames > 10 and im.size[0] > 200
    r = _cbopt("run", "rastrigin", "--dim", "3", "--animate", str(tmp_path / "x.gif"), "-q")
    assert r.returncode == 2 and "--animate draws 2-D problems" in r.stderr


def test_a_run_from_a_toml_config_and_flags_that_win(tmp_path):
    import pathlib

    root = pathlib.Path(__file__).parents[1]
    cfg = tmp_path / "run.toml"
    cfg.write_text('function = "rastrigin"\ndim = 4\nshift = true\nseed = 3\nmax_evals = 8000\nmethod = "cbo"\n'
                   'options = { n_particles = 60 }\n')
    out = json.loads(_cbopt("run", "--config", str(cfg), "--json", "-q").stdout)
    # the options table was used: populations of 60 (and the noise check's re-evaluations of single points)
    assert out["method"] == "cbo" and out["dim"] == 4 and (out["nfev"] - out["noise_checks"]) % 60 == 0
    assert 0 < out["noise_checks"] <= 15 and not out["noisy"]
    out = json.loads(_cbopt("run", "--config", str(cfg), "--dim", "3", "--method", "ach", "--json", "-q").stdout)
    assert out["method"] == "ach" and out["dim"] == 3  # the command line wins
    r = _cbopt("run", "--config", "examples/run.toml", "--json", "-q", cwd=root)
    assert r.returncode == 0 and json.loads(r.stdout)["fun"] < 1e-8
    (tmp_path / "bad.toml").write_text("colour = 1\n")
    r = _cbopt("run", "--config", str(tmp_path / "bad.toml"), "-q")
    assert r.returncode == 2 and "unknown setting(s) ['colour']" in r.stderr
    r = _cbopt("run", "-q")
    assert r.returncode == 2 and "give a FUNCTION" in r.stderr


def _cli(*args, cwd=None, **kw):
    return subprocess.run([sys.executable, "-m", "cbopt", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, **kw)


@pytest.mark.parametrize("body, said", [
    ("1 / 0\n", "ZeroDivisionError"),
    ("def f(x:\n", "SyntaxError"),
    ("{}['missing']\n", "KeyError"),
    ("import sys\nsys.exit(7)\n", "sys.exit(7)"),
])
def test_a_user_file_that_fails_at_import_is_one_line_and_exit_2(tmp_path, body, said):
    (tmp_path / "prob.py").write_text(body + "\ndef f(x):\n    return float((x ** 2).sum())\n")
    r = _cli("run", f"{tmp_path / 'prob.py'}:f", "--dim", "2", "--max-evals", "100")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and said in r.stderr and "importing" in r.stderr


def test_json_output_is_strict_json(capsys):
    """A run whose every value is non-finite has fun = inf: printed as null, which every JSON parser reads."""
    from cbopt import cli

    s = cli._json_safe({"fun": float("inf"), "x": [1.0, float("nan")], "n": 3, "m": "ok"})
    assert s == {"fun": None, "x": [1.0, None], "n": 3, "m": "ok"}
    assert main(["run", "tests/hostile_objectives.py:all_nan", "--dim", "2", "--max-evals", "200", "--json"]) in (0, 1)
    out = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"non-standard JSON: {c}"))
    assert out["fun"] is None and out["nfev_nonfinite"] == out["nfev"] > 0


def test_a_closed_pipe_ends_quietly():
    r = subprocess.run(f"{sys.executable} -m cbopt run sphere --dim 2 --max-evals 300 --json | head -1", shell=True,
                       capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "{" and "Error" not in r.stderr and "Traceback" not in r.stderr


def test_config_files_that_are_not_configurations_are_refused(tmp_path):
    import os

    for cfg, said in [("/dev/zero", "not a regular file"), (str(tmp_path), "not a regular file")]:
        r = _cli("run", "--config", cfg)
        assert r.returncode == 2 and said in r.stderr, r.stderr
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = _cli("run", "--config", str(fifo))  # would block for ever on open()
    assert r.returncode == 2 and "not a regular file" in r.stderr
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (1 << 21) + "\n")
    r = _cli("run", "--config", str(big))
    assert r.returncode == 2 and "at most" in r.stderr
    for bounds in ('["a", "b"]', "[1, true]", '[[0, 1], [2, 3]]'):
        (tmp_path / "b.toml").write_text(f'function = "sphere"\nbounds = {bounds}\n')
        r = _cli("run", "--config", str(tmp_path / "b.toml"))
        assert r.returncode == 2 and "bounds" in r.stderr and "Traceback" not in r.stderr, (bounds, r.stderr)


def test_a_config_gives_bounds_per_coordinate(tmp_path):
    """bounds = [[lo, hi], ...] in a configuration: one box per coordinate (their count is the dimension)."""
    root = pathlib.Path(__file__).resolve().parents[1]
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'function = "{root / "examples" / "myproblem.py"}:f_batched"\nbounds = [[-1, 0.2], [2, 3]]\n'
                   "max_evals = 3000\nseed = 0\n")
    r = _cli("run", "--config", str(cfg), "--json", "-q")
    assert r.returncode == 0, r.stderr
    x = json.loads(r.stdout)["x"]
    assert len(x) == 2 and -1 <= x[0] <= 0.2 and 2 <= x[1] <= 3
    r = _cli("run", "--config", str(cfg), "--dim", "3", "-q")
    assert r.returncode == 2 and "2 coordinates" in r.stderr and "Traceback" not in r.stderr


def test_an_unwritable_animation_path_is_found_before_the_run(tmp_path, capsys):
    assert main(["run", "sphere", "--dim", "2", "--max-evals", "200", "--animate",
                 str(tmp_path / "no" / "such" / "swarm.gif")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["run", "sphere", "--dim", "2", "--max-evals", "200", "--animate", str(tmp_path)]) == 2
    assert "exists and is not a regular file" in capsys.readouterr().err


def test_bench_report_without_a_store_is_one_line(tmp_path, capsys):
    assert main(["bench", "report", "--db", str(tmp_path / "nosuch" / "x.sqlite"), "--out", str(tmp_path)]) == 2
    assert "no results store" in capsys.readouterr().err
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database at all" * 100)
    assert main(["bench", "report", "--db", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "results store" in capsys.readouterr().err


def test_ctrl_c_while_the_command_imports_exits_130():
    """Ctrl-C while the installed `cbopt` command is still importing the package and numpy: one line and 130,
    no traceback (its entry point lives outside the package for that). The interrupt is raised at the import
    of numpy, as a Ctrl-C in that window would."""
    code = (
        "import sys\n"
        "from importlib.metadata import entry_points\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'numpy':\n"
        "            raise KeyboardInterrupt\n"
        "(ep,) = entry_points(group='console_scripts', name='cbopt')\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "sys.argv = ['cbopt', 'run', 'sphere', '--dim', '2']\n"
        "sys.exit(ep.load()())\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 130 and r.stderr == "cbopt: interrupted\n", r.stderr


def test_ctrl_c_outside_the_objective_exits_130(monkeypatch, capsys):
    from cbopt import cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "minimize", interrupted)
    assert main(["run", "sphere", "--dim", "2", "--max-evals", "100"]) == 130
    assert "interrupted" in capsys.readouterr().err
