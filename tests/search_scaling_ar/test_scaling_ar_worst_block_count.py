"""Worst-block stability takes ceil(q * active blocks) blocks (SCALINGAR.md §2.1b: |W_t| = max(1, ceil(q * #active)))."""

import torch

from arscale.search import confidence as sig


def test_worst_block_count_rounds_up_on_a_16_block_grid():
    # 16x16 grid with 4x4 blocks: 16 active blocks; q = 0.1 -> ceil(1.6) = 2 worst blocks, not floor(1.6) = 1
    means = torch.arange(16, dtype=torch.float32) / 20  # block k has mean k / 20: worst two are 0.75 and 0.70
    grid = means.view(4, 4).repeat_interleave(4, 0).repeat_interleave(4, 1).reshape(1, 256)
    assert torch.allclose(sig.worst_block_entropy(grid, 16, 4, 0.1), torch.tensor([(0.75 + 0.70) / 2]))
    # q = 0.2 -> ceil(3.2) = 4 blocks: 0.75, 0.70, 0.65, 0.60
    assert torch.allclose(sig.worst_block_entropy(grid, 16, 4, 0.2), torch.tensor([0.675]))
