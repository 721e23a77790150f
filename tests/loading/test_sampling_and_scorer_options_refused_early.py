"""Sampling options of the released models and options of the
real scorers that no run can use are refused in one line, not met as a traceback at the first draw or batch."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_families import fake_t5, randomised, tiny_llamagen_vq

from arscale.errors import ArscaleError
from arscale.generators.next_scale.bsq import BSQAutoEncoder
from arscale.generators.next_scale.infinity import (
    InfinityConfig,
    InfinityGenerator,
    InfinitySampling,
    InfinityTransformer,
)
from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.registry import load_generator

INFINITY_BAD = [{"tau": 0.0}, {"tau": [0.5] * 6 + [0.0]}, {"tau": math.nan}, {"cfg": math.inf},
                {"cfg": math.nan}, {"h_div_w": "1:2"}, {"h_div_w": 0.0}]


def _tiny_infinity(**sampling) -> InfinityGenerator:
    model = randomised(InfinityTransformer(InfinityConfig(embed_dim=64, depth=2, num_heads=2, text_channels=128,
                                                          text_maxlen=16, codebook_dim=4)), 0)
    vae = randomised(BSQAutoEncoder(codebook_dim=4, base_ch=32, ch_mult=(1, 2), num_res_blocks=1, patch_size=2), 1)
    options = {"cfg": 3.0, "tau": 1.0, "top_p": 0.97, "pixels": "0.06M", **sampling}
    return InfinityGenerator(model, vae, InfinitySampling(**options), text_encoder=fake_t5(128))


@pytest.mark.parametrize("option", INFINITY_BAD, ids=lambda o: f"{next(iter(o))}={next(iter(o.values()))!r}")
def test_infinity_sampling_no_draw_can_use_is_one_line(option):
    """An Infinity tau ≤ 0 or NaN, a non-finite cfg or an h_div_w that is no positive number fails as an ArscaleError."""
    torch.manual_seed(0)
    with pytest.raises(ArscaleError, match=next(iter(option))) as err:
        _tiny_infinity(**option).generate(["a red cube"], 1, seed=0)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("option", INFINITY_BAD[:1] + INFINITY_BAD[5:6], ids=["tau", "h_div_w"])
def test_infinity_loader_checks_its_sampling_before_any_file(option, tmp_path):
    """`load_generator("infinity-2b", tau=0)` is refused for tau, not for the weights an empty folder lacks."""
    with pytest.raises(ArscaleError, match=next(iter(option))):
        load_generator("infinity-2b", weights=str(tmp_path), text_encoder=fake_t5(128), **option)


@pytest.mark.parametrize("option", [{"temperature": math.nan}, {"top_k": 16.0}], ids=["temperature", "top_k"])
def test_llamagen_sampling_no_draw_can_use_is_one_line(option, tmp_path):
    """LlamaGen refuses a NaN temperature and a fractional top_k in one line, built directly or through its loader."""
    gpt = randomised(LlamaGenGPT(LlamaGenConfig("c2i", dim=64, n_layer=2, n_head=2, vocab_size=32, block_size=16,
                                                num_classes=10)), 4)
    with pytest.raises(ArscaleError, match=next(iter(option))):
        LlamaGenGenerator(gpt, tiny_llamagen_vq(), cfg=2.0, **{"top_k": 16, **option}).generate([3], 1, seed=0)
    with pytest.raises(ArscaleError, match=next(iter(option))):  # before the (empty) folder is looked at
        load_generator("llamagen-c2i-b", weights=str(tmp_path), **option)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_a_scorer_batch_size_below_one_is_one_line(batch_size, tmp_path, monkeypatch):
    """docs/scorers.md's `batch_size=`: one below 1 is an ArscaleError naming it, not a traceback from the first call."""
    transformers = pytest.importorskip("transformers")
    from arscale.scorers.base import load_scorer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(3)
    config = transformers.Dinov2WithRegistersConfig(image_size=28, patch_size=7, hidden_size=32, num_hidden_layers=1,
                                                     num_attention_heads=4, mlp_ratio=2, num_register_tokens=4)
    transformers.Dinov2WithRegistersModel(config).save_pretrained(tmp_path / "dino")
    with pytest.raises(ArscaleError, match="batch_size"):
        load_scorer("dinov2", weights=tmp_path / "dino", input_size=28, batch_size=batch_size).features(
            torch.rand(2, 3, 28, 28))


@pytest.mark.parametrize("name", ["imagereward", "clip", "dinov2", "aesthetic"])
def test_a_misspelt_scorer_backend_is_refused_before_the_weights(name, tmp_path, monkeypatch):
    """`backend="PIL"` is refused in one line before any weights are looked for (here: a folder that is not there)."""
    pytest.importorskip("transformers")
    from arscale.scorers.base import load_scorer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ArscaleError, match="backend 'PIL'"):
        load_scorer(name, weights=tmp_path / "missing", backend="PIL")
