"""Puts this folder on the import path, so every test folder can use `tiny_shapeworld_var` and `tiny_families`;
the `registries` fixture for tests that register strategies, scorers or plugins."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def registries(monkeypatch):
    """Registrations made by a test (strategies, scorers, loaded plugins) are undone after it."""
    from arscale import plugins
    from arscale.scorers.base import SCORERS
    from arscale.search.base import STRATEGIES

    saved = dict(STRATEGIES), dict(SCORERS), set(plugins._loaded)
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    yield
    for registry, before in zip((STRATEGIES, SCORERS), saved[:2]):
        registry.clear()
        registry.update(before)
    plugins._loaded.clear()
    plugins._loaded.update(saved[2])
