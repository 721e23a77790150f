import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from bench_scale_helpers import save_tiny_var


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    return save_tiny_var(tmp_path_factory.mktemp("tiny-var"))
