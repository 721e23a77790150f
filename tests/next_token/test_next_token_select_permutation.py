"""`Trajectories.select` with the same number of rows (a permutation, duplicates) must still gather the
per-row prefix masks and the KV cache of every CFG half; pruning compacts the cache in place."""

import torch
from tiny_families import sample_to_end

from arscale.generators.next_token.generator import left_pad
from arscale.generators.next_token.shapeworld import random_shapeworld_ar

# different lengths -> different left-padded prefix masks per prompt
PROMPTS = ["a photo of a red circle", "a photo of a blue square left of a circle", "a photo of two crosses"]


def _teacher_forced(gen, traj, prompts):
    t, idx = gen.transformer, traj.prompt_index
    out = []
    for p in (prompts, [None] * len(prompts)):
        features, mask = left_pad(*gen.encode_condition(list(p)))
        with torch.no_grad():
            out.append(t.teacher_forced_logits(t.embed_condition(features[idx]), mask[idx], traj.rows["tokens"]))
    return out


def test_a_permutation_of_rows_carries_their_prefix_masks_and_cache():
    gen = random_shapeworld_ar(0, grid=4, vocab_size=32, cfg=2.0)
    traj = gen.start(PROMPTS, 1, seed=3)
    masks = traj.paired["prefix_mask"].clone()
    assert not torch.equal(masks[0], masks[1])  # the prompts really differ in length
    for _ in range(4):
        gen.advance(traj, gen.sample(traj))
    keep = [2, 0, 1]  # the same number of rows, every one moved
    traj.select(keep, reason="test")
    assert torch.equal(traj.paired["prefix_mask"], masks[torch.tensor(keep + [k + 3 for k in keep])])
    seen = []
    sample_to_end(gen, traj, seen)
    cond_ref, uncond_ref = _teacher_forced(gen, traj, PROMPTS)
    assert torch.allclose(torch.stack([c for c, _ in seen], 1), cond_ref[:, 4:], atol=1e-5)
    assert torch.allclose(torch.stack([u for _, u in seen], 1), uncond_ref[:, 4:], atol=1e-5)


def test_dropping_rows_compacts_the_cache_in_place():
    # Trajectories: "the KV cache is gathered once, or compacted in place when rows are only dropped"
    gen = random_shapeworld_ar(0, grid=4, vocab_size=32, cfg=2.0)
    traj = gen.start(PROMPTS, 2, seed=1)  # 6 rows, 12 cache rows
    gen.advance(traj, gen.sample(traj))
    before = [k.untyped_storage().data_ptr() for k in traj.cache.keys]
    traj.select([0, 1, 3, 4, 5], reason="prune")  # 5 of 6 kept: above the right-sizing threshold
    assert [k.untyped_storage().data_ptr() for k in traj.cache.keys] == before
    seen = []
    sample_to_end(gen, traj, seen)
    cond_ref, _ = _teacher_forced(gen, traj, PROMPTS)
    assert torch.allclose(torch.stack([c for c, _ in seen], 1), cond_ref[:, 1:], atol=1e-5)
