"""Cross-attention to text (ShapeWorld-VAR) must ignore padded text positions: what sits in a masked position
of the context changes no logit."""

import torch
from tiny_shapeworld_var import build_tiny_var, tiny_var_configs

from arscale.generators.next_scale.transformer import CrossAttention


def test_cross_attention_ignores_masked_positions():
    torch.manual_seed(0)
    att = CrossAttention(32, 16, 2)
    x, ctx = torch.randn(2, 5, 32), torch.randn(2, 7, 16)
    mask = torch.tensor([[True] * 3 + [False] * 4, [True] * 7])
    junk = ctx.clone()
    junk[0, 3:] = torch.randn(4, 16) * 10
    with torch.no_grad():
        a, b = att(x, ctx, mask), att(x, junk, mask)
        short = att(x[:1], ctx[:1, :3], mask[:1, :3])
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a[:1], short)


def test_generator_logits_ignore_padded_text():
    gen = build_tiny_var(*tiny_var_configs())
    prompts = ["a photo of a red circle", "a photo of a blue square left of a circle"]
    traj = gen.start(prompts, 2, seed=0)
    mask = traj.paired["context_mask"]
    assert not bool(mask.all())  # the short prompt is padded
    ref = gen.forward_scale(traj)
    traj.extra.pop("pending")
    traj.cache = type(traj.cache)(traj.cache.num_layers, traj.cache.capacity)
    ctx = traj.paired["context"].clone()
    ctx[~mask] = torch.randn(int((~mask).sum()), ctx.shape[-1], generator=torch.Generator().manual_seed(1)) * 10
    traj.paired["context"] = ctx
    torch.testing.assert_close(gen.forward_scale(traj), ref)
