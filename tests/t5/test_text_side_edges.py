"""The text side of the released text-to-image models at the edges — caption features in
another reduced dtype than the GPT, and one bare prompt string given where a list of prompts belongs."""

from __future__ import annotations

import pytest
import torch
from tiny_families import fake_t5, randomised, tiny_infinity, tiny_llamagen_vq

from arscale.errors import ArscaleError
from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.t5_text import left_pad

PROMPTS = ["", "a red cube left of two green balls"]


def _t2i(gpt_dtype: torch.dtype, text_dtype: torch.dtype) -> LlamaGenGenerator:
    """The tiny t2i model cast as `load_llamagen_t2i(dtype=...)` casts it, with a text encoder that returns what
    `T5TextEncoder.llamagen` returns from a T5 loaded in `text_dtype` (left-padded [B, 120, D] features, mask)."""
    gpt = LlamaGenGPT(LlamaGenConfig("t2i", dim=64, n_layer=2, n_head=2, vocab_size=32, block_size=16,
                                     caption_dim=8, multiple_of=8))
    per_prompt = fake_t5(8)

    def llamagen_t5(prompts):
        rows = per_prompt(prompts)
        padded = torch.zeros(len(rows), 120, 8, dtype=text_dtype)
        mask = torch.zeros(len(rows), 120, dtype=torch.bool)
        for i, r in enumerate(rows):
            padded[i, : len(r)], mask[i, : len(r)] = r.to(text_dtype), True
        return left_pad(padded, mask)

    return LlamaGenGenerator(randomised(gpt, 4).to("cpu", gpt_dtype), tiny_llamagen_vq(), cfg=3.0, top_k=16,
                             top_p=1.0, text_encoder=llamagen_t5)


@pytest.mark.parametrize("gpt_dtype, text_dtype", [(torch.bfloat16, torch.float16), (torch.float16, torch.bfloat16)])
def test_llamagen_t2i_starts_with_text_in_the_other_reduced_dtype(gpt_dtype, text_dtype):
    """`--dtype bfloat16 --text-dtype float16` (or the reverse) prefills like the same-dtype run, to rounding."""
    with torch.no_grad():
        mixed = _t2i(gpt_dtype, text_dtype).start(PROMPTS, 2, seed=0).paired["next_logits"]
        same = _t2i(gpt_dtype, gpt_dtype).start(PROMPTS, 2, seed=0).paired["next_logits"]
    assert mixed.shape == same.shape == (8, 32) and bool(torch.isfinite(mixed).all())
    assert (mixed - same).abs().max() < 0.05 * same.abs().max()


@pytest.mark.parametrize("family", ["infinity", "llamagen-t2i"])
def test_a_bare_prompt_string_is_refused_by_a_text_to_image_start(family):
    """A generator's `start` given one string, not a list, stops in one line instead of running its characters."""
    gen = tiny_infinity() if family == "infinity" else _t2i(torch.float32, torch.float32)
    with torch.no_grad(), pytest.raises(ArscaleError, match="list"):
        traj = gen.start("a red cube", 1, seed=0)
        assert len(traj) == 1, f"{len(traj)} rows for one prompt: {traj.prompts[:3]}"
