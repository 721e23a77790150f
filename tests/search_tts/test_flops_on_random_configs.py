"""Compute accounting on random configurations: the analytic FLOP counts of the next-scale and next-token
transformers, Infinity's scales and decodes, and the search's bill, against torch's FLOP counter
(`rollout.flop_counter`, which also sees the fused attention a CPU runs). Softmax, norms and other elementwise
work count in neither; where the formula bills an elementwise product (the head's AdaLN modulation) or the
counter sees work the formula leaves out on purpose (a masked prefill's full score square, Infinity's text
padding), the test adds it by hand and says so."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tiny_families import fake_t5, randomised

from arscale.generators.kv_cache import KVCache
from arscale.generators.next_scale.bsq import BSQAutoEncoder
from arscale.generators.next_scale.infinity import (
    InfinityConfig,
    InfinityGenerator,
    InfinitySampling,
    InfinityTransformer,
)
from arscale.generators.next_scale.infinity_schedule import RATIO_TEMPLATES
from arscale.generators.next_scale.transformer import ScaleTransformer, ScaleTransformerConfig
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.generators.next_token.transformer import Transformer, TransformerConfig
from arscale.search.rollout import flop_counter, make_search

SETTINGS = settings(max_examples=6, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _counted(fn, *args, **kwargs) -> tuple[object, float]:
    with torch.no_grad(), flop_counter() as counter:
        out = fn(*args, **kwargs)
    return out, float(counter.get_total_flops())


@SETTINGS
@given(heads=st.integers(1, 3), head_dim=st.sampled_from([4, 8]), depth=st.integers(1, 2), vocab=st.integers(2, 40),
       grid=st.integers(1, 3), prefix=st.integers(1, 5), multiple_of=st.sampled_from([1, 8, 32]),
       ffn_multiplier=st.sampled_from([None, 0.5, 1.3]), rows=st.integers(1, 3))
def test_next_token_position_flops_follow_the_counter_on_random_configs(heads, head_dim, depth, vocab, grid, prefix,
                                                                        multiple_of, ffn_multiplier, rows):
    """`flops_per_position` is torch's count of a cached forward, prefill and every image token, on any shape."""
    torch.manual_seed(0)
    dim = heads * head_dim
    t = Transformer(TransformerConfig(dim=dim, n_layer=depth, n_head=heads, vocab_size=vocab, grid=grid,
                                      cls_token_num=prefix, caption_dim=8, multiple_of=multiple_of,
                                      ffn_dim_multiplier=ffn_multiplier)).eval()
    cache, keys = KVCache(depth, prefix + grid * grid), torch.ones(rows, prefix, dtype=torch.bool)
    _, counted = _counted(t, torch.randn(rows, prefix, dim), keys, start=0, cache=cache)
    # the masked prefill computes every score of its P x P square; the formula bills the causal triangle
    square = rows * depth * 4 * dim * (prefix * prefix - prefix * (prefix + 1) // 2)
    assert counted - square == pytest.approx(rows * sum(t.flops_per_position(i + 1) for i in range(prefix)), rel=1e-12)
    for s in range(grid * grid - 1):
        x = t.tok_embeddings(torch.randint(0, vocab, (rows,)))[:, None]
        _, counted = _counted(t, x, keys, start=prefix + s, cache=cache)
        assert counted == pytest.approx(rows * t.flops_per_position(prefix + s + 1), rel=1e-12), s


@settings(max_examples=4, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(heads=st.sampled_from([2, 4]), depth=st.integers(1, 2), bits=st.sampled_from([2, 4]),
       ratio=st.sampled_from(sorted(RATIO_TEMPLATES)), scales=st.integers(2, 4), cfg=st.sampled_from([1.0, 3.0]),
       rows=st.integers(1, 2), prompts=st.sampled_from([["a red cube"], ["ab", "abc", "abcdefg"]]),
       size=st.sampled_from([None, 8, 24]))
def test_infinity_scale_and_decode_flops_follow_the_counter_on_random_schedules(heads, depth, bits, ratio, scales, cfg,
                                                                                rows, prompts, size):
    """Infinity's `scale_flops` (non-square schedules, one CFG half at cfg 1) and `decode_flops` match the counter."""
    model = randomised(InfinityTransformer(InfinityConfig(embed_dim=64, depth=depth, num_heads=heads,
                                                          text_channels=128, text_maxlen=16, codebook_dim=bits)), 0)
    vae = randomised(BSQAutoEncoder(codebook_dim=bits, base_ch=32, ch_mult=(1, 2), num_res_blocks=1, patch_size=2), 1)
    schedule = [(1, h, w) for h, w in RATIO_TEMPLATES[ratio][:scales]]
    gen = InfinityGenerator(model, vae, InfinitySampling(cfg=cfg, tau=1.0, top_p=0.97, schedule=schedule),
                            text_encoder=fake_t5(128))
    traj = gen.start(prompts, rows, seed=0, unconditional=False)
    assert traj.halves == (1 if cfg == 1.0 else 2)
    forward_scale, counted = gen.transformer.forward_scale, []

    def counting(*args, **kwargs):
        out, flops = _counted(forward_scale, *args, **kwargs)
        counted.append(flops)
        return out

    gen.transformer.forward_scale = counting
    for k in range(gen.num_scales):
        billed = gen.scale_flops(traj, k)
        gen.step(traj)
        # the cross-attention runs over each batch's longest text; the bill is each row's own length (by design)
        mask = traj.paired["context_mask"]
        padding = int(mask.numel() - mask.sum())
        assert counted[k] - depth * padding * (4 * 64 * 64 + 4 * gen.sizes[k] * 64) == pytest.approx(billed, rel=1e-12)
    gen.transformer.forward_scale = forward_scale
    _, counted = _counted(gen.preview, traj, size)
    assert counted == gen.decode_flops(len(traj), size)


@SETTINGS
@example(heads=3, head_dim=8, depth=1, mlp=3.3, patch_nums=[1, 2], shared=False, context=0, rows=1)
@given(heads=st.integers(1, 3), head_dim=st.sampled_from([4, 8]), depth=st.integers(1, 2),
       mlp=st.sampled_from([1.0, 2.5, 3.3, 4.0]), patch_nums=st.lists(st.integers(1, 4), min_size=1, max_size=3,
                                                                     unique=True).map(sorted),
       shared=st.booleans(), context=st.sampled_from([0, 8]), rows=st.integers(1, 3))
def test_scale_flops_count_the_ffn_as_built(heads, head_dim, depth, mlp, patch_nums, shared, context, rows):
    """`flops_per_scale` equals the counter (plus the head's elementwise modulation) for any mlp_ratio."""
    torch.manual_seed(0)
    width = heads * head_dim
    t = ScaleTransformer(ScaleTransformerConfig(patch_nums=tuple(patch_nums), vocab_size=11, code_dim=3, width=width,
                                                depth=depth, heads=heads, mlp_ratio=mlp, shared_aln=shared,
                                                cond_dim=width, context_dim=context)).eval()
    cache, cond = KVCache(depth, t.seq_len), torch.randn(rows, width)
    text = (torch.randn(rows, 5, context), torch.ones(rows, 5, dtype=torch.bool)) if context else (None, None)
    billed = t.flops_per_scale(rows, 5 if context else 0)
    for k, pn in enumerate(patch_nums):
        x = torch.randn(rows, pn * pn, 3) if k else None
        _, counted = _counted(t.forward_scale, k, cond, x, cache, *text)
        assert counted + rows * 2 * pn * pn * width == pytest.approx(billed[k], rel=1e-12), k


@SETTINGS
@example(grid=2, vocab=16, dim=32, layers=1)
@given(grid=st.integers(1, 3), vocab=st.integers(4, 40), dim=st.sampled_from([16, 32, 48]), layers=st.integers(1, 2))
def test_next_token_prefill_flops_bill_the_caption_embedder(grid, vocab, dim, layers):
    """What ShapeWorld-AR's `start` computes, less its text encoder, is what it bills as the prefill."""
    gen = random_shapeworld_ar(0, grid=grid, vocab_size=vocab, dim=dim, n_layer=layers)
    traj, counted = _counted(gen.start, ["a photo of a red circle", "a photo of two crosses"], 2, seed=0)
    rows, P = traj.halves * len(traj), gen.prefix_len
    square = rows * layers * 4 * dim * (P * P - P * (P + 1) // 2)  # the masked prefill's full score square
    assert counted - traj.extra["text_flops"] - square == pytest.approx(traj.extra["transformer_flops"], rel=1e-12)


@pytest.mark.parametrize("cut", [0, 2])
def test_search_bills_each_token_forward_with_the_rows_that_ran_it(cut):
    """A next-token search that prunes 4 rows to 1 after `cut` tokens bills what the generator ran."""
    gen = random_shapeworld_ar(0, grid=2, vocab_size=16)
    search = make_search(gen, seed=0, prompt_offset=0, scorer=None)
    traj = search.start(["a photo of a red circle"], 4)
    search.run_to(traj, cut)
    traj.select([0], "prune")
    search.run_to(traj, search.length)
    ran = traj.extra["transformer_flops"] + traj.extra["text_flops"]  # what start / advance computed, as they ran
    assert search.cost.transformer_flops == pytest.approx(ran, rel=1e-12)
