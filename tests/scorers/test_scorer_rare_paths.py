"""The scorers' rarely run paths (missing optional packages, unknown options, factories without signatures,
checkpoint keys), each held to a specific message or value."""

from __future__ import annotations

import sys

import pytest
import torch

from arscale.errors import ArscaleError


# -- scorers --------------------------------------------------------------------------------------------------------
def test_resize_refuses_an_unknown_interpolation():
    from arscale.scorers.preprocess import resize

    with pytest.raises(ArscaleError, match="unknown interpolation 'nearest'; choose from bilinear, bicubic"):
        resize(torch.rand(1, 3, 8, 8), 4, 4, "nearest")


def test_a_scorer_factory_without_a_signature_is_called_and_its_result_checked(registries):
    from arscale.scorers.base import load_scorer, register_scorer

    register_scorer("builtin", dict)  # no signature to read: the options go to the call itself
    with pytest.raises(ArscaleError, match="scorer 'builtin' returned dict, which is not a Scorer"):
        load_scorer("builtin", device="cpu")


def test_real_scorers_without_transformers_say_how_to_install_it(monkeypatch):
    from arscale.scorers.base import load_scorer

    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    with pytest.raises(ArscaleError, match=r"need `transformers`; install it with `pip install arscale\[real\]`"):
        load_scorer("clip", device="cpu")


def test_recording_a_snapshot_without_huggingface_hub_records_nothing(monkeypatch):
    from arscale.generators.loading import recording_hub_files
    from arscale.scorers.hf import record_snapshot

    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with recording_hub_files() as files:
        record_snapshot("owner/repo")
    assert files == {}


def test_aesthetic_features_are_the_unit_embeddings_its_head_reads():
    transformers = pytest.importorskip("transformers")
    from arscale.scorers.aesthetic import AestheticScorer
    from arscale.scorers.imagereward import RewardHead

    torch.manual_seed(1)
    vision = transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(
        image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
        num_attention_heads=4, projection_dim=24))
    scorer = AestheticScorer(vision, RewardHead(24), batch_size=2)
    images = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    feats = scorer.features(images)
    assert feats.shape == (3, 24)
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(3))
    with torch.no_grad():
        torch.testing.assert_close(scorer.reward(images), scorer.head(feats).squeeze(-1), atol=1e-5, rtol=1e-5)


def test_an_unknown_top_level_imagereward_key_keeps_its_name_for_strict_loading():
    from arscale.scorers import imagereward as ir

    assert ir.released_to_model_key("blip.temp") == "blip.temp"  # BLIP's contrastive temperature, not ImageReward's
    converted = ir.convert_released_state_dict({"module.blip.temp": torch.ones(1), "mlp.layers.0.bias": torch.ones(2)})
    assert sorted(converted) == ["blip.temp", "head.0.bias"]
