"""RMSNorm honours its eps; the analytic transformer FLOPs match a count worked by hand, and a cached
generation is billed exactly like one causal pass over the same positions."""

import pytest
import torch

from arscale.generators.layers import RMSNorm
from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.generators.next_token.transformer import Transformer, TransformerConfig


def test_rms_norm_adds_its_own_eps_inside_the_root():
    # x / sqrt(mean(x^2) + eps) * weight; with tiny activations the eps decides the scale
    x = torch.full((2, 4), 0.01)
    x[1] = torch.tensor([0.02, -0.02, 0.02, -0.02])
    norm = RMSNorm(4, eps=1e-3)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    want = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-3) * norm.weight
    assert torch.allclose(norm(x), want, rtol=1e-6, atol=0)
    # eps 1e-4 against 1e-3 changes the output by ~3x for rows of mean square 1e-4: it is not a rounding term
    assert not torch.allclose(RMSNorm(4, eps=1e-4)(x), norm(x) / norm.weight, rtol=1e-2)


def test_transformer_norms_take_the_configured_eps():
    t = Transformer(TransformerConfig(dim=32, n_layer=2, n_head=2, vocab_size=16, grid=4, cls_token_num=3,
                                      caption_dim=8, multiple_of=32, norm_eps=0.25))
    norms = [m for m in t.modules() if isinstance(m, RMSNorm)]
    assert len(norms) == 2 * 2 + 1 and all(m.eps == 0.25 for m in norms)


def test_flops_per_position_worked_by_hand():
    # dim 32, 2 layers, ffn 96, vocab 16: per layer 2*32*96 (wqkv) + 2*32*32 (wo) + 3*2*32*96 (SwiGLU) = 26624
    # dense; attention at context c: QK^T and AV, 2 FLOPs per multiply-add each -> 4*c*32 per layer; the
    # output head 2*32*16 = 1024
    t = Transformer(TransformerConfig(dim=32, n_layer=2, n_head=2, vocab_size=16, grid=4, cls_token_num=3,
                                      caption_dim=8, multiple_of=32))
    assert t.config.ffn_hidden == 96
    assert t.flops_per_position(1) == 2 * 26624 + 2 * 4 * 1 * 32 + 1024
    assert t.flops_per_position(10) - t.flops_per_position(1) == 2 * 4 * 9 * 32


@pytest.mark.parametrize("halves", [1, 2])
def test_cached_generation_costs_one_causal_pass_over_the_same_positions(halves):
    # the prefill runs positions 0..P-1 and feeding token s runs position P+s, attending to every key up to
    # itself; the last token is never fed: P + T - 1 positions, position j attending to j + 1 keys
    gen = random_shapeworld_ar(0, grid=4, vocab_size=32, cfg=2.0 if halves == 2 else 1.0)
    rows = 3
    t, P, T = gen.transformer, gen.prefix_len, gen.num_tokens
    one_pass = t.condition_flops() + sum(t.flops_per_position(j + 1) for j in range(P + T - 1))
    spent = gen.prefill_flops(rows, halves) + sum(gen.step_flops(rows, s, halves) for s in range(T - 1))
    assert spent == pytest.approx(halves * rows * one_pass, rel=1e-12)
    # feeding token s attends to the P prefix keys, tokens 0..s-1 and itself
    assert gen.step_flops(1, 5, 1) == t.flops_per_position(P + 6)
    traj = gen.start(["a photo of a red circle"], rows, seed=0, unconditional=halves == 2)
    assert traj.halves == halves
    while traj.step < T:
        gen.advance(traj, gen.sample(traj))
    assert traj.extra["transformer_flops"] == pytest.approx(halves * rows * one_pass, rel=1e-12)
