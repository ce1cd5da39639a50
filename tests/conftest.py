import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "cbopt", derandomize=True, deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "cbopt"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run the slow statistical tests")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow statistical test: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


class Backend:
    """One place a run can live, for the backend-parametrised tests (the ``xp`` fixture)."""

    def __init__(self, name):
        self.name = name
        self.kw = {}
        self.device = self.dtype = None
        if name != "numpy":
            import cbopt

            self.device, self.dtype = name.split("-")
            self.kw = {"backend": cbopt.Torch(self.device, self.dtype)}

    @property
    def is_torch(self):
        return self.name != "numpy"

    def np(self, a):
        return a if isinstance(a, np.ndarray) else a.detach().cpu().numpy()

    def check(self, a):
        """``a`` lives on this backend with its dtype and device."""
        if not self.is_torch:
            assert isinstance(a, np.ndarray) and a.dtype == np.float64
            return
        import torch

        assert isinstance(a, torch.Tensor)
        assert a.dtype == getattr(torch, self.dtype)
        assert a.device.type == self.device


BACKENDS = ["numpy", "cpu-float64", "cpu-float32", "cuda-float32", "cuda-float64"]


@pytest.fixture(params=BACKENDS)
def xp(request):
    """Every backend of the contract: numpy, torch on the CPU, torch on CUDA (skipped without it)."""
    b = Backend(request.param)
    if b.is_torch:
        torch = pytest.importorskip("torch")
        if b.device == "cuda" and not torch.cuda.is_available():
            pytest.skip("needs CUDA")
    return b


def sigkill_when(proc, ready, timeout=120.0, grace=0.0):
    """SIGKILL ``proc`` once ``ready()`` is true (polled), ``grace`` seconds later; True if it was still running
    then (so the kill really interrupted it). The process is always reaped."""
    import signal
    import time

    try:
        deadline = time.time() + timeout
        while proc.poll() is None and time.time() < deadline and not ready():
            time.sleep(0.01)
        time.sleep(grace)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        return killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
