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
