"""Tiny random ShapeWorld-VAR configs shared by the next-scale tests."""

from __future__ import annotations

import pytest
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs

TINY_TOKENIZER, TINY_MODEL = tiny_var_configs(sampling={"cfg": 2.0, "top_k": 10, "top_p": 0.9})


def tiny_generator(seed: int = 0, **transformer_overrides):
    config = {k: dict(v) for k, v in TINY_MODEL.items()}
    config["transformer"].update(transformer_overrides)
    return build_tiny_var(TINY_TOKENIZER, config, seed)


@pytest.fixture(scope="module")
def tiny():
    return tiny_generator()


@pytest.fixture
def make_tiny():
    """The factory itself, for tests that need variants (tests import nothing from conftest)."""
    return tiny_generator


@pytest.fixture
def tiny_tokenizer_config():
    return dict(TINY_TOKENIZER)


@pytest.fixture(scope="module")
def tiny_tokenizer_config_module():
    return dict(TINY_TOKENIZER)
