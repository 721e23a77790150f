"""Tiny random ShapeWorld-VAR configs shared by the next-scale tests."""

from __future__ import annotations

import pytest
import torch

from arscale.generators.next_scale.shapeworld import build_shapeworld_var

TINY_TOKENIZER = {"image_size": 16, "patch_nums": (1, 2, 3, 4), "vocab_size": 24, "code_dim": 8, "ch": 8,
                  "ch_mult": (1, 2, 2)}
TINY_MODEL = {
    "transformer": {"patch_nums": (1, 2, 3, 4), "vocab_size": 24, "code_dim": 8, "width": 32, "depth": 2, "heads": 2},
    "text_encoder": {"width": 16, "depth": 1, "heads": 2, "max_len": 12},
    "sampling": {"cfg": 2.0, "top_k": 10, "top_p": 0.9},
}


def tiny_generator(seed: int = 0, **transformer_overrides):
    torch.manual_seed(seed)
    config = {k: dict(v) for k, v in TINY_MODEL.items()}
    config["transformer"].update(transformer_overrides)
    gen = build_shapeworld_var(TINY_TOKENIZER, config)
    # random weights are far from a trained model's: make the logits spread so sampling varies
    gen.transformer.head.weight.data.mul_(50)
    return gen.eval()


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
