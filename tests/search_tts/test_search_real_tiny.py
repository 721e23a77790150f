"""End-to-end on a tiny random-weight ShapeWorld-VAR built from the real next-scale engine."""

import numpy as np
import pytest
import torch
from search_fakes import FakeScorer
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs

from arscale.search.best_of_n import BestOfN
from arscale.search.importance import Importance
from arscale.search.tts_var import TTSVAR, TTSVARConfig

PATCH_NUMS = (1, 2, 3, 4, 5, 6)
PROMPTS = ["a photo of a red circle", "a photo of a square left of a cross"]


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_var(*tiny_var_configs(PATCH_NUMS, image_size=24))


def test_tts_var_on_a_real_tiny_generator(tiny):
    strategy = TTSVAR(TTSVARConfig(record_previews=False), feature_scorer=FakeScorer())
    with torch.no_grad():
        a = strategy.run(tiny, PROMPTS, 8, seed=7, scorer=FakeScorer())
        b = strategy.run(tiny, PROMPTS, 8, seed=7, scorer=FakeScorer())
    plan = strategy.schedule(len(PATCH_NUMS), 8)
    expected = sum(tiny.flops_per_scale(r * len(PROMPTS))[k] for k, r in enumerate(plan.batch))
    text = tiny.conditioner.encoder.forward_flops(len(PROMPTS) + 1)  # each prompt and the empty text, once
    assert a.cost.transformer_flops == pytest.approx(expected + text)
    assert a.cost.decode_flops > 0 and a.cost.decode_count > 0
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
    assert a.images[0].shape == (24, 24, 3)
    for p in range(len(PROMPTS)):
        assert len(a.candidates[p]) == plan.batch[-1]
        lineage = a.tree.lineage(a.chosen(p).node)
        assert a.tree.parent[lineage[0]] == -1 and a.tree.prompt[lineage[-1]] == p


def test_baselines_on_a_real_tiny_generator(tiny):
    with torch.no_grad():
        bon = BestOfN().run(tiny, PROMPTS, 3, seed=1, scorer=FakeScorer())
        imp = Importance().run(tiny, PROMPTS, 3, seed=1, scorer=FakeScorer())
    text = tiny.conditioner.encoder.forward_flops(len(PROMPTS) + 1)
    assert bon.cost.transformer_flops == pytest.approx(sum(tiny.flops_per_scale(6)) + text)
    assert imp.cost.transformer_flops == pytest.approx(sum(tiny.flops_per_scale(6)) + text)
    assert len(imp.telemetry["operations"]) == 2


def test_next_token_baselines_on_a_real_tiny_generator():
    from arscale.generators.next_token.shapeworld import random_shapeworld_ar
    from arscale.search.importance import ImportanceConfig
    from arscale.search.raw import Raw

    gen = random_shapeworld_ar(0, grid=4, vocab_size=32)
    scorer = FakeScorer()
    with torch.no_grad():
        raw = Raw().run(gen, PROMPTS, 2, seed=3)
        bon = BestOfN().run(gen, PROMPTS, 2, seed=3, scorer=scorer)
        imp = Importance(ImportanceConfig(checkpoints=[0.5])).run(gen, PROMPTS, 2, seed=3, scorer=scorer)
    for p in range(len(PROMPTS)):
        assert np.array_equal(raw.chosen(p).image, bon.candidates[p][0].image)
    full = 4 * sum(gen.flops_per_token(1, t) for t in range(gen.num_tokens))
    text = gen.encode_condition.model.text_encoder.forward_flops(len(PROMPTS) + 1)
    assert bon.cost.transformer_flops == pytest.approx(full + text)
    assert imp.telemetry["operations"][0]["position"] == gen.num_tokens // 2 - 1  # index of the last token
    assert bon.cost.decode_flops == pytest.approx(gen.decode_flops(4))


def test_latent_features_on_a_real_tiny_generator(tiny):
    strategy = TTSVAR(TTSVARConfig(record_previews=False, features="latent"))  # no feature scorer needed
    with torch.no_grad():
        res = strategy.run(tiny, PROMPTS, 8, seed=3, scorer=FakeScorer())
    plan = strategy.schedule(len(PATCH_NUMS), 8)
    consumed = sum(plan.batch[k] for k in plan.resample_at) + plan.batch[-1]  # no decode for clusterings
    assert res.cost.decode_count == len(PROMPTS) * consumed
    assert [op["op"] for op in res.telemetry["operations"]][:len(plan.cluster_at)] == ["cluster"] * len(plan.cluster_at)
