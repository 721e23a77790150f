"""The notebook experience: what a researcher sees when a cell shows an arscale object, compares two
candidates, or runs a next-token generator whose parts were cast to bf16."""

import numpy as np
import pytest
import torch
from tiny_families import randomised

from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.next_token.llamagen_vq import VQGAN, VQGANConfig
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.generators.registry import load_generator
from arscale.registry import resolve_target
from arscale.scorers.base import load_scorer
from arscale.search.base import STRATEGIES, make_strategy

PROMPTS = ["a photo of a red circle", "a photo of two squares"]


@pytest.fixture(scope="module")
def tts_result():
    return make_strategy("tts-var", {"lam": 5.0}).run(load_generator("shapeworld-var"), PROMPTS, 4, seed=0)


def test_a_search_result_shows_as_a_short_summary(tts_result):
    text = repr(tts_result)
    assert len(text) < 600 and "array(" not in text
    assert "'tts-var'" in text and "2 prompt(s)" in text and "'lam': 5.0" in text
    candidate = repr(tts_result.chosen(0))
    assert "image=uint8[64, 64, 3]" in candidate and "chosen=True" in candidate and len(candidate) < 150
    tree = repr(tts_result.tree)
    assert tree.startswith(f"SearchTree({len(tts_result.tree)} nodes, 2 prompt(s), ended: ") and len(tree) < 150


def test_candidates_compare_by_value(tts_result):
    pick = tts_result.chosen(0)
    assert tts_result.candidates[0].index(pick) == [c.chosen for c in tts_result.candidates[0]].index(True)
    again = make_strategy("tts-var", {"lam": 5.0}).run(load_generator("shapeworld-var"), PROMPTS, 4, seed=0)
    assert again.chosen(0) == pick and pick in again.candidates[0]  # the same seed and batch: the same candidate
    other = make_strategy("tts-var", {"lam": 5.0}).run(load_generator("shapeworld-var"), PROMPTS, 4, seed=1)
    assert other.chosen(0) != pick


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_a_strategy_shows_its_settings(name):
    strategy = make_strategy(name)
    assert repr(strategy) == f"{type(strategy).__name__}({strategy.config!r})"
    if name == "tts-var":
        assert "lam=5.0" in repr(make_strategy(name, {"lam": 5.0}))


def test_a_scorer_shows_its_name_size_and_device():
    assert repr(load_scorer("shapeworld-reward")) == \
        "ShapeWorldScorer(name='shapeworld-reward', input_size=64, device=cpu)"


def test_a_generator_shows_its_model_and_sampling():
    ar = repr(load_generator("shapeworld-ar", temperature=0.5))
    assert ar.startswith("TokenGenerator(name='shapeworld-ar', num_tokens=256, image_size=64, ") and \
        "temperature=0.5" in ar and "object at" not in ar
    head = repr(load_generator("shapeworld-var", temperature=0.5)).splitlines()[1]
    assert head.startswith("  name='shapeworld-var', scales=7, image_size=64, sampling=SamplingConfig(") and \
        "temperature=0.5" in head


def test_every_strategy_class_has_a_docstring():
    missing = [name for name, target in STRATEGIES.items() if not resolve_target(target, name).__doc__]
    assert missing == []


@pytest.mark.parametrize("strategy", ["importance", "scaling-ar"])
def test_a_next_token_generator_cast_to_bfloat16_previews(strategy):
    generator = random_shapeworld_ar(seed=0)
    generator.transformer.to(torch.bfloat16)
    generator.tokenizer.to(torch.bfloat16)  # a TokenGenerator is no nn.Module: its parts are cast one by one
    config = {"checkpoints": [0.5]} if strategy == "importance" else {}
    result = make_strategy(strategy, config).run(generator, PROMPTS, 2, seed=0, scorer="shapeworld-reward")
    image = result.chosen(1).image
    assert image.dtype == np.uint8 and image.shape == (32, 32, 3)


def test_a_llamagen_vqgan_cast_to_bfloat16_finds_its_background_code():
    gpt = LlamaGenGPT(LlamaGenConfig("c2i", dim=64, n_layer=2, n_head=2, vocab_size=32, block_size=16, num_classes=10))
    vq = VQGAN(VQGANConfig(codebook_size=32, codebook_embed_dim=4, z_channels=32, ch=32, ch_mult=(1, 2),
                           num_res_blocks=1, image_size=8))  # tests/api/test_input_checks.py's tiny c2i model
    generator = LlamaGenGenerator(randomised(gpt, 4), randomised(vq, 5), cfg=2.0, top_k=16, top_p=1.0)
    generator.tokenizer.to(torch.bfloat16)
    assert 0 <= generator.background_code < 32


def test_a_real_scorer_shows_its_name_size_device_and_dtype():
    transformers = pytest.importorskip("transformers")
    from arscale.scorers.aesthetic import AestheticScorer
    from arscale.scorers.imagereward import RewardHead

    vision = transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(
        image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
        num_attention_heads=4, projection_dim=24))  # tests/scorers_real's tiny tower; its weights are not read
    assert repr(AestheticScorer(vision, RewardHead(24))) == \
        "AestheticScorer(name='aesthetic', input_size=32, device=cpu, dtype=torch.float32)"
