"""LlamaGen constructor and sampler options that the released models leave at their defaults but upstream
accepts: each must behave as upstream's, or be refused in one line."""

from __future__ import annotations

import pytest
import torch
from tiny_families import randomised, tiny_llamagen_vq

from arscale.errors import ArscaleError
from arscale.generators import loading
from arscale.generators.next_token.llamagen import LlamaGenConfig, LlamaGenGenerator, LlamaGenGPT
from arscale.generators.next_token.llamagen_vq import VQGAN

UPSTREAM_ARGS = {"model_type": "c2i", "dim": 64, "n_layer": 1, "n_head": 2, "n_kv_head": None, "vocab_size": 32,
                 "block_size": 16, "num_classes": 10, "caption_dim": 2048, "multiple_of": 64, "norm_eps": 1e-5,
                 "rope_base": 10000, "ffn_dim_multiplier": None, "class_dropout_prob": 0.1}


def _generator(cfg: float = 2.0, **upstream) -> LlamaGenGenerator:
    gpt = randomised(LlamaGenGPT(LlamaGenConfig.from_upstream({**UPSTREAM_ARGS, **upstream})), 4)
    return LlamaGenGenerator(gpt, tiny_llamagen_vq(), cfg=cfg, top_k=16, top_p=1.0)


def test_ffn_width_follows_llama_with_a_multiplier():
    # Llama: int(8 dim / 3) = 170, times 1.3 -> 221, rounded up to a multiple of 64 -> 256
    plain = LlamaGenGPT(LlamaGenConfig.from_upstream(UPSTREAM_ARGS))
    scaled = LlamaGenGPT(LlamaGenConfig.from_upstream({**UPSTREAM_ARGS, "ffn_dim_multiplier": 1.3}))
    assert plain.config.ffn_hidden == 192 and scaled.config.ffn_hidden == 256
    with pytest.raises(ArscaleError, match="grouped-query attention"):
        LlamaGenConfig.from_upstream({**UPSTREAM_ARGS, "n_kv_head": 1})


def test_rows_guided_at_or_below_one_sample_from_the_conditional_logits():
    gen = _generator()
    traj = gen.start([1, 1, 4], 1, seed=0)
    cond, uncond = gen.next_logits(traj)
    traj.rows["guidance"] = torch.tensor([0.5, 1.0, 3.0])
    guided = gen.guided_logits(traj)
    assert torch.equal(guided[:2], cond[:2])  # upstream mixes only when cfg_scale > 1
    assert torch.allclose(guided[2], uncond[2] + 3.0 * (cond[2] - uncond[2]))
    assert not torch.allclose(guided[2], cond[2])


def test_greedy_sampling_takes_the_most_probable_token():
    gen = _generator()  # cfg 2, temperature 1, top-k 16: none of these moves the argmax of the guided logits
    gen.sample_logits = False
    traj = gen.start([2, 7, 0, 6], 1, seed=0)
    cond, uncond = gen.next_logits(traj)
    expected = (uncond + 2.0 * (cond - uncond)).argmax(-1)  # guidance mixed here, not by the generator
    assert not torch.equal(expected, cond.argmax(-1))  # so the check below also sees whether guidance is applied
    # greedy draws nothing from the global RNG: any seed gives the same tokens
    torch.manual_seed(0)
    first, probs = gen.sample_upstream(traj)
    torch.manual_seed(12345)
    second, _ = gen.sample_upstream(traj)
    assert torch.equal(first, expected) and torch.equal(second, expected)
    assert torch.equal(probs.argmax(-1), expected)
    # multinomial sampling, by contrast, does depend on the seed (so the check above could fail)
    gen.sample_logits = True
    draws = set()
    for seed in range(20):
        torch.manual_seed(seed)
        draws.add(tuple(gen.sample_upstream(traj)[0].tolist()))
    assert len(draws) > 1


def test_a_c2i_model_without_class_dropout_has_no_null_class_and_refuses_guidance():
    gen = _generator(cfg=1.0, class_dropout_prob=0.0)
    assert gen.gpt.cls_embedding.embedding_table.num_embeddings == 10
    traj = gen.start([3], 1, seed=0)
    cond, uncond = gen.next_logits(traj)
    assert torch.allclose(cond, uncond)  # the unconditional half repeats the label
    with pytest.raises(ArscaleError, match="null class"):
        _generator(cfg=2.0, class_dropout_prob=0.0).start([3], 1, seed=0)


def test_vq_without_l2_norm_uses_the_raw_codebook():
    vq = tiny_llamagen_vq(codebook_l2_norm=False)
    z = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(0)) * 3
    codes, zq = vq.quantize_latent(z)
    flat, book = z.permute(0, 2, 3, 1).reshape(-1, 4), vq.quantize.embedding.weight
    assert torch.equal(codes, torch.cdist(flat, book).argmin(1))
    assert torch.allclose(zq.permute(0, 2, 3, 1).reshape(-1, 4), book[codes], atol=1e-6)
    assert not torch.allclose(vq.codebook().norm(dim=-1), torch.ones(32))
    assert torch.allclose(tiny_llamagen_vq().codebook().norm(dim=-1), torch.ones(32))


@pytest.mark.parametrize("usage_log", [False, True])
def test_vq_loads_with_or_without_its_usage_log(usage_log):
    vq = tiny_llamagen_vq()
    sd = dict(vq.state_dict())
    if usage_log:
        sd["quantize.codebook_used"] = torch.zeros(65536)
    fresh = VQGAN(vq.config)
    loading.load_strict(fresh, sd, ignore=loading.LLAMAGEN_VQ_IGNORED, what="VQ")
    assert torch.equal(fresh.codebook(), vq.codebook())


def test_c2i_cls_token_num_keeps_one_label_token_and_shifts_rope_rows():
    # upstream: the label gives one prefix token, but the RoPE table starts with cls_token_num zero rows
    plain = LlamaGenGPT(LlamaGenConfig.from_upstream({**UPSTREAM_ARGS, "cls_token_num": 1}))
    shifted = LlamaGenGPT(LlamaGenConfig.from_upstream({**UPSTREAM_ARGS, "cls_token_num": 3}))
    assert plain.prefix_len == shifted.prefix_len == 1
    assert torch.equal(shifted.rope[:3], torch.zeros_like(shifted.rope[:3]))
    assert torch.equal(shifted.rope[3:], plain.rope[1:])


def test_decode_flops_count_the_decoder_attention_too():
    # torch's counter sees the convolutions and the spatial attention's batched matmuls (aten.bmm); the
    # analytic count must see both (its attention part was missing before)
    from torch.utils.flop_counter import FlopCounterMode

    gen = _generator()
    codes = torch.zeros(2, gen.num_tokens, dtype=torch.long)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        gen.tokenizer.decode_codes(codes)
    ops = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    assert ops.get("aten.bmm", 0) > 0  # the decoder has spatial attention
    assert gen.decode_flops(2) == pytest.approx(counter.get_total_flops(), rel=1e-9)
