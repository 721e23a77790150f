"""VAR's attention without l2-norm (`attn_l2_norm=False`) scales the scores by 0.25/sqrt(head_dim), as upstream's
`SelfAttention` does; with l2-norm the scale is the learned per-head exp(scale_mul) clamped at ln 100."""

import math

import torch

from arscale.generators.next_scale.transformer import SelfAttention


def _reference(att: SelfAttention, x: torch.Tensor, l2: bool) -> torch.Tensor:
    B, L, C = x.shape
    H, d = att.heads, att.head_dim
    bias = torch.cat([att.q_bias, torch.zeros_like(att.q_bias), att.v_bias])
    q, k, v = (x @ att.mat_qkv.weight.t() + bias).view(B, L, 3, H, d).permute(2, 0, 3, 1, 4)
    if l2:
        q = torch.nn.functional.normalize(q, dim=-1) * att.scale_mul_1H11.clamp(max=math.log(100)).exp()
        k = torch.nn.functional.normalize(k, dim=-1)
        scores = q @ k.transpose(-1, -2)
    else:
        scores = q @ k.transpose(-1, -2) * (0.25 / math.sqrt(d))
    out = scores.softmax(-1) @ v
    return att.proj(out.transpose(1, 2).reshape(B, L, C))


def test_attention_scores_use_vars_scale():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 32)
    for l2 in (False, True):
        att = SelfAttention(32, 4, l2_norm=l2)
        with torch.no_grad():
            att.mat_qkv.weight.normal_(0, 1.0)  # large scores: a wrong scale shows in the softmax
            att.q_bias.normal_(), att.v_bias.normal_()
            if l2:
                att.scale_mul_1H11.fill_(6.0)  # above ln 100: the clamp must apply
        with torch.no_grad():
            got = att(x, None, None, 0)
        torch.testing.assert_close(got, _reference(att, x, l2), rtol=1e-4, atol=1e-5)
