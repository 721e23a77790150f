"""KVCache.keep_ right-sizes once the kept rows fill *at most* half of the allocation (the boundary included),
and a right-sized cache still decodes like a fresh gather."""

import torch

from arscale.generators.kv_cache import RIGHT_SIZE_AT, KVCache


def test_keeping_exactly_half_the_rows_moves_them_to_a_right_sized_buffer():
    assert RIGHT_SIZE_AT == 0.5
    torch.manual_seed(0)
    a, b = KVCache(2, capacity=5), KVCache(2, capacity=5)
    for layer in range(2):
        k, v = torch.randn(8, 2, 3, 4), torch.randn(8, 2, 3, 4)
        a.append(layer, k, v)
        b.append(layer, k.clone(), v.clone())
    full = b.allocated_bytes()
    keep = torch.tensor([1, 2, 5, 7])  # 4 of 8: exactly half
    b.keep_(keep)
    assert b.nbytes() == full // 2 and b.allocated_bytes() == full // 2
    gathered = a.select(keep)
    new = torch.randn(4, 2, 1, 4)
    for layer in range(2):
        ka, va = gathered.append(layer, new, -new)
        kb, vb = b.append(layer, new, -new)
        assert torch.equal(ka, kb) and torch.equal(va, vb)
