"""Next-token engine: cached decoding equals teacher forcing, select keeps KV rows and masks consistent,
determinism, guidance bookkeeping, previews and cost accounting."""

import pytest
import torch
from tiny_families import sample_to_end

from arscale.errors import ArscaleError
from arscale.generators.next_token.generator import left_pad
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.generators.protocol import NextTokenGenerator

PROMPTS = ["a photo of a red circle", "a photo of a blue square left of a circle", "a photo of two crosses"]


@pytest.fixture(scope="module")
def gen():
    return random_shapeworld_ar(0, grid=4, vocab_size=32)




def teacher_forced(gen, traj):
    features, mask = gen.encode_condition(list(traj.prompts))
    features, mask = left_pad(features, mask)
    t = gen.transformer
    idx = traj.prompt_index
    with torch.no_grad():
        return t.teacher_forced_logits(t.embed_condition(features[idx]), mask[idx], traj.rows["tokens"])


def test_protocol(gen):
    assert isinstance(gen, NextTokenGenerator)


def test_cached_logits_equal_teacher_forcing(gen):
    traj = gen.start(PROMPTS, 2, seed=1)
    seen = []
    sample_to_end(gen, traj, seen)
    cached = torch.stack([c for c, _ in seen], 1)
    assert torch.allclose(cached, teacher_forced(gen, traj), atol=1e-5)


def test_unconditional_half_uses_null_prompt(gen):
    traj = gen.start(PROMPTS[:1], 1, seed=0)
    seen = []
    sample_to_end(gen, traj, seen)
    features, mask = left_pad(*gen.encode_condition([None]))
    t = gen.transformer
    with torch.no_grad():
        ref = t.teacher_forced_logits(t.embed_condition(features), mask, traj.rows["tokens"])
    assert torch.allclose(torch.stack([u for _, u in seen], 1), ref, atol=1e-5)


def test_select_midway_equals_recomputation(gen):
    traj = gen.start(PROMPTS, 3, seed=5)
    for _ in range(5):
        gen.advance(traj, gen.sample(traj))
    keep = [7, 0, 0, 4]  # reordered, duplicated, rows of different prompts (different prefix masks)
    before_masks = traj.paired["prefix_mask"].clone()
    R = len(traj)
    traj.select(keep, reason="test")
    expect_mask = before_masks[torch.tensor(keep + [k + R for k in keep])]
    assert torch.equal(traj.paired["prefix_mask"], expect_mask)
    assert traj.cache.keys[0].shape[0] == 2 * len(keep)
    seen = []
    sample_to_end(gen, traj, seen)
    ref = teacher_forced(gen, traj)[:, 5:]
    assert torch.allclose(torch.stack([c for c, _ in seen], 1), ref, atol=1e-5)


def test_same_seed_is_bit_identical_and_independent_of_batch(gen):
    a = sample_to_end(gen, gen.start(PROMPTS, 2, seed=11)).rows["tokens"]
    b = sample_to_end(gen, gen.start(PROMPTS, 2, seed=11)).rows["tokens"]
    assert torch.equal(a, b)
    # the third prompt alone, with its global index, draws the same tokens as inside the batch
    alone = sample_to_end(gen, gen.start(PROMPTS[2:], 2, seed=11, prompt_offset=2)).rows["tokens"]
    assert torch.equal(alone, a[4:])
    c = sample_to_end(gen, gen.start(PROMPTS, 2, seed=12)).rows["tokens"]
    assert not torch.equal(a, c)


def test_guidance_is_per_row_and_kept(gen):
    traj = gen.start(PROMPTS[:1], 3, seed=0, cfg=2.0)
    assert traj.rows["guidance"].tolist() == [2.0, 2.0, 2.0]
    tokens = gen.sample(traj)
    gen.advance(traj, tokens, torch.tensor([1.0, 3.0, 5.0]))
    cond, uncond = gen.next_logits(traj)
    expected = uncond + torch.tensor([1.0, 3.0, 5.0])[:, None] * (cond - uncond)
    assert torch.allclose(gen.guided_logits(traj), expected)
    gen.advance(traj, gen.sample(traj))  # no guidance: rows keep theirs
    assert traj.rows["guidance"].tolist() == [1.0, 3.0, 5.0]


def test_advance_rejects_bad_tokens(gen):
    traj = gen.start(PROMPTS[:1], 2, seed=0)
    with pytest.raises(ArscaleError, match="tokens for 2 rows"):
        gen.advance(traj, torch.tensor([1]))
    with pytest.raises(ArscaleError, match="must lie in"):
        gen.advance(traj, torch.tensor([0, gen.vocab_size]))
    with pytest.raises(ArscaleError, match="only 0 of"):
        gen.finish(traj)


def test_preview_fills_with_background_and_finish_decodes(gen):
    traj = gen.start(PROMPTS[:1], 2, seed=3)
    empty = gen.preview(traj)
    bg = torch.full((1, gen.num_tokens), gen.background_code)
    assert torch.allclose(empty, gen.tokenizer.decode_codes(bg).expand(2, -1, -1, -1), atol=1e-5)
    sample_to_end(gen, traj)
    final = gen.finish(traj)
    assert final.shape == (2, 3, gen.image_size, gen.image_size)
    assert torch.allclose(gen.preview(traj), final)
    small = gen.preview(traj, 16)
    assert small.shape == (2, 3, 16, 16) and small.min() >= 0 and small.max() <= 1


def test_flops_accounting_adds_up(gen):
    traj = sample_to_end(gen, gen.start(PROMPTS[:2], 2, seed=0))
    per_position = sum(gen.flops_per_token(4, p) for p in range(gen.num_tokens))
    assert traj.extra["transformer_flops"] == pytest.approx(per_position)
    assert gen.flops_per_token(4) * gen.num_tokens == pytest.approx(per_position)
    assert gen.flops_per_token(8, 3) == pytest.approx(2 * gen.flops_per_token(4, 3))
    assert gen.decode_flops(3) == pytest.approx(3 * gen.decode_flops(1)) and gen.decode_flops(1) > 0


def test_left_pad_moves_valid_tokens_to_the_end():
    f = torch.arange(12.0).view(2, 3, 2)
    m = torch.tensor([[True, True, False], [True, False, False]])
    out, mask = left_pad(f, m)
    assert mask.tolist() == [[False, True, True], [False, False, True]]
    assert out[0].tolist() == [[0, 0], [0, 1], [2, 3]]
    assert out[1].tolist() == [[0, 0], [0, 0], [6, 7]]
