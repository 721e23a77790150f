"""Infinity's level embedding: added once before block 0 (released models), or — with
`add_lvl_embeding_only_first_block=0` — again before the first block of every chunk (blocks 0, d/c, 2d/c, ...)."""

import pytest
import torch

from arscale.generators.kv_cache import KVCache
from arscale.generators.next_scale.infinity import InfinityConfig, InfinityTransformer
from arscale.generators.next_scale.infinity_schedule import rope_table, scale_schedule


def _model(**options) -> InfinityTransformer:
    g = torch.Generator().manual_seed(0)
    model = InfinityTransformer(InfinityConfig(embed_dim=64, depth=4, num_heads=2, text_channels=128,
                                               text_maxlen=16, codebook_dim=4, **options))
    for p in model.parameters():
        p.data = torch.randn(p.shape, generator=g) * (0.5 if p.dim() < 2 else 1 / p.shape[-1] ** 0.5)
    return model.eval()


def _reference(model, si, cond, x, mem, mask, rope, add_before):
    """Blocks run by hand, the level embedding added before the blocks in `add_before`."""
    h = cond.unsqueeze(1) + model.pos_start if x is None else model.word_embed(x)
    gss = model.shared_ada_lin(cond).view(-1, 1, 6, model.cfg.embed_dim)
    cache = KVCache(len(model.blocks), rope.shape[0])
    for i, block in enumerate(model.blocks):
        if i in add_before:
            h = h + model.lvl_embed.weight[si]
        h = block(h, gss, None, cache, i, mem, mask, rope)
    return model.head(model.head_nm(h, cond))


@pytest.mark.parametrize("options, add_before", [
    ({}, {0}),
    ({"block_chunks": 2}, {0}),
    ({"block_chunks": 2, "lvl_embed_only_first_block": False}, {0, 2}),
    ({"block_chunks": 4, "lvl_embed_only_first_block": False}, {0, 1, 2, 3}),
])
def test_level_embedding_enters_where_upstream_adds_it(options, add_before):
    model = _model(**options)
    g = torch.Generator().manual_seed(1)
    cond, mem = torch.randn(2, 64, generator=g), torch.randn(2, 5, 64, generator=g)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    rope = rope_table(model.head_dim, scale_schedule(1.0, "0.06M"))[:1]
    with torch.no_grad():
        got = model.forward_scale(0, cond, None, KVCache(len(model.blocks), 1), mem, mask, rope)
        want = _reference(model, 0, cond, None, mem, mask, rope, add_before)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
