"""Reduced precision: Infinity with its transformer cast to bf16 / fp16, as `load_infinity_2b(dtype=...)` casts it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_families import BrightnessScorer, tiny_infinity

from arscale.search.base import make_strategy


def _cast_like_the_loader(dtype: torch.dtype):
    """tiny_infinity with `model.to(device, dtype)` and the VAE left in fp32, as load_infinity_2b builds it."""
    gen = tiny_infinity()
    gen.transformer.to("cpu", dtype)
    return gen


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_infinity_low_precision_logits_are_fp32_and_close(dtype):
    """The first scale's logits with bf16/fp16 weights are fp32, finite and near the fp32 model's."""
    ref_gen, gen = tiny_infinity(), _cast_like_the_loader(dtype)
    ref = ref_gen.forward_scale(ref_gen.start(["a red cube", "two green balls"], 2, seed=0))
    logits = gen.forward_scale(gen.start(["a red cube", "two green balls"], 2, seed=0))
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    assert (logits - ref).abs().max() < 0.05 * ref.abs().max()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("strategy", ["best-of-n", "tts-var"])
def test_infinity_low_precision_runs_strategies(strategy, dtype):
    """Best-of-N and TTS-VAR on bf16/fp16 Infinity weights give uint8 images and finite rewards."""
    s = make_strategy(strategy, {"record_previews": False} if strategy == "tts-var" else {})
    if strategy == "tts-var":
        s.feature_scorer = BrightnessScorer()
    gen = _cast_like_the_loader(dtype)
    result = s.run(gen, ["a red cube"], 4, seed=0, scorer=BrightnessScorer())
    cands = result.candidates[0]
    assert cands and all(c.image.dtype == np.uint8 and c.image.shape == (gen.image_size,) * 2 + (3,) for c in cands)
    assert all(np.isfinite(c.score) for c in cands)
