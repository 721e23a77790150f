"""The ShapeWorld text encoder counts what it computes, and each family's `start` bills it once per batch."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from arscale.generators.text import TextEncoder, TextEncoderConfig

PROMPTS = ["a photo of a red circle", None, "a photo of two crosses"]


@pytest.mark.parametrize("width, depth, max_len", [(32, 2, 12), (48, 1, 16)])
def test_the_text_encoder_counts_its_matmuls(width, depth, max_len):
    encoder = TextEncoder(TextEncoderConfig(width=width, depth=depth, heads=2, max_len=max_len)).train()
    with FlopCounterMode(display=False) as counter:  # training mode: the unfused path torch can count
        encoder(PROMPTS)
    # torch's counter sees the projections and the feed-forward; the two attention matmuls (scores and the
    # weighted sum, 2 * 2 * L^2 * width per row and layer) run inside a kernel it does not count
    attention = len(PROMPTS) * depth * 2 * 2 * max_len ** 2 * width
    assert encoder.flops_spent == encoder.forward_flops(len(PROMPTS)) == counter.get_total_flops() + attention


def test_each_start_bills_its_text_once():
    from arscale.generators.next_token.shapeworld import random_shapeworld_ar

    gen = random_shapeworld_ar(0, grid=4, vocab_size=32)
    text = gen.encode_condition.model.text_encoder
    traj = gen.start(["a photo of a red circle", "a photo of a cross"], 3, seed=0)
    assert traj.extra["text_flops"] == text.forward_flops(3)  # two prompts and the empty text, not per row
    before = text.flops_spent
    with torch.no_grad():
        gen.advance(traj, gen.sample(traj))
    assert text.flops_spent == before  # tokens after the first read no text
