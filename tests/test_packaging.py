import subprocess
import sys

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
