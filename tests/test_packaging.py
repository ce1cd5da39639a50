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
