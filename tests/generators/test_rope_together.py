"""The next-token attention rotates q and k in one `apply_rope` call over their stack: every element must come out
exactly as rotating each alone (the rotation is elementwise, so leading dimensions cannot change a bit)."""

import pytest
import torch
import torch.nn.functional as F

from arscale.generators.layers import apply_rope
from arscale.generators.next_token.transformer import Attention, TransformerConfig, rope_2d_table


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rotating_q_and_k_together_equals_rotating_each(dtype):
    """apply_rope over a stack of q and k equals apply_rope over each, bit for bit, in fp32 and bf16."""
    table = rope_2d_table(TransformerConfig(dim=48, n_head=3, grid=3, cls_token_num=2))  # 11 positions, 8 pairs
    qk = (torch.randn(3, 5, 3, 11, 16, generator=torch.Generator().manual_seed(4)) * 3).to(dtype)[:2]
    both = apply_rope(qk, table)
    assert both.dtype == dtype
    assert torch.equal(both, torch.stack([apply_rope(qk[0], table), apply_rope(qk[1], table)]))
    assert not torch.equal(both, qk)  # it did rotate


def test_attention_rotates_q_and_k_as_each_alone():
    """Attention.forward (q and k rotated in one call) gives what rotating q and k one at a time, then attending, gives."""
    config = TransformerConfig(dim=48, n_head=3, grid=3, cls_token_num=2)  # 11 positions, head_dim 16
    torch.manual_seed(0)
    attention, table = Attention(config).eval(), rope_2d_table(config)
    x, mask = torch.randn(2, 11, 48), torch.ones(11, 11, dtype=torch.bool).tril()
    q, k, v = attention.wqkv(x).view(2, 11, 3, 3, 16).permute(2, 0, 3, 1, 4)

    def attend(q, k):
        return attention.wo(F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(2, 11, -1))

    expected = attend(apply_rope(q, table), apply_rope(k, table))
    assert torch.equal(attention(x, table, mask, None, 0), expected)
    assert not torch.allclose(expected, attend(q, k))  # the rotation matters here
