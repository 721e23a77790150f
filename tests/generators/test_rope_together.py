"""The next-token attention rotates q and k in one `apply_rope` call over their stack: every element must come out
exactly as rotating each alone (the rotation is elementwise, so leading dimensions cannot change a bit)."""

import pytest
import torch

from arscale.generators.layers import apply_rope
from arscale.generators.next_token.transformer import TransformerConfig, rope_2d_table


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rotating_q_and_k_together_equals_rotating_each(dtype):
    table = rope_2d_table(TransformerConfig(dim=48, n_head=3, grid=3, cls_token_num=2))  # 11 positions, 8 pairs
    qk = (torch.randn(3, 5, 3, 11, 16, generator=torch.Generator().manual_seed(4)) * 3).to(dtype)[:2]
    both = apply_rope(qk, table)
    assert both.dtype == dtype
    assert torch.equal(both, torch.stack([apply_rope(qk[0], table), apply_rope(qk[1], table)]))
    assert not torch.equal(both, qk)  # it did rotate
