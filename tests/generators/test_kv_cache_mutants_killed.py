"""The KV cache (kv_cache.py) where mutants of it outlived the suite: reallocation at an append that ends exactly
at the allocation, `keep`'s index checks, right-sizing and the per-device copies, each worked out by hand."""

import pytest
import torch

from arscale.generators.kv_cache import KVCache, _keep_rows


def _kv(rows, n, seed, heads=2, dim=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, heads, n, dim, generator=g), torch.randn(rows, heads, n, dim, generator=g)


def _filled(cache, rows, seed=0):
    cache.append(0, *_kv(rows, 2, seed))
    return cache.keys[0][:, :, :2].clone(), cache.values[0][:, :, :2].clone()


def test_a_growing_cache_keeps_its_buffer_while_an_append_ends_exactly_at_its_allocation():
    # grow allocates "only as many positions as the appends so far needed": appends of 2, 1, 1 at capacity 8 end at
    # 2, 3, 4 -> allocations 2, max(3, 2·2) = 4, and 4 again (4 positions fit a 4-position buffer: no new one)
    cache = KVCache(1, capacity=8, grow=True)
    cache.append(0, *_kv(2, 2, 0))
    assert cache.keys[0].shape[2] == 2
    cache.append(0, *_kv(2, 1, 1))
    buffer = cache.keys[0]
    assert buffer.shape[2] == 4
    cache.append(0, *_kv(2, 1, 2))
    assert cache.keys[0] is buffer and cache.keys[0].shape[2] == 4 and cache.length == 4


def test_keep_takes_a_single_row_even_of_a_one_row_cache_and_refuses_an_empty_index():
    cache = KVCache(1, capacity=4)
    k, v = _filled(cache, 1)
    assert cache.keep_(torch.tensor([0])) is cache
    assert torch.equal(cache.keys[0][:, :, :2], k) and torch.equal(cache.values[0][:, :, :2], v)
    cache = KVCache(1, capacity=4)
    k, v = _filled(cache, 3)
    cache.keep_(torch.tensor([2]))  # one row of three: the last one
    assert torch.equal(cache.keys[0][:, :, :2], k[[2]]) and torch.equal(cache.values[0][:, :, :2], v[[2]])
    with pytest.raises(ValueError, match="non-empty, strictly increasing"):
        cache.keep_(torch.tensor([], dtype=torch.long))


def test_keep_refuses_an_index_that_decreases_after_its_second_entry():
    # "strictly increasing": [0, 2, 1] rises from its first entry to both later ones but falls from 2 to 1
    cache = KVCache(1, capacity=4)
    _filled(cache, 3)
    for bad in ([0, 2, 1], [0, 1, 1], [1, 0]):
        with pytest.raises(ValueError, match="strictly increasing"):
            cache.keep_(torch.tensor(bad))


def test_keep_right_sizes_half_the_rows_keeping_a_row_that_stays_in_place():
    # rows 0 and 3 of 4: 2 rows are exactly half of the allocation ("at most half": right-sized); row 0 does not
    # move, row 3 moves to position 1: both must come over, each from its own row
    cache = KVCache(1, capacity=4)
    k, v = _filled(cache, 4)
    before = cache.allocated_bytes()
    cache.keep_(torch.tensor([0, 3]))
    assert torch.equal(cache.keys[0][:, :, :2], k[[0, 3]]) and torch.equal(cache.values[0][:, :, :2], v[[0, 3]])
    assert cache.allocated_bytes() == before // 2


def test_keep_rows_without_the_per_device_copies_makes_them_itself():
    # `on` is optional: without it _keep_rows copies the index and the moves itself. Rows [0, 1, 3] of 4 (3 > half:
    # moved up in place, row 3 to position 2) and rows [1, 3] (half: gathered into a right-sized buffer)
    buf = torch.arange(4 * 2 * 3 * 1, dtype=torch.float32).reshape(4, 2, 3, 1)
    want = buf.clone()
    for rows, moves in (([0, 1, 3], ([3], [2])), ([1, 3], ([1, 3], [0, 1]))):
        b = want.clone()
        index = torch.tensor(rows)
        out = _keep_rows(b, index, (torch.tensor(moves[0]), torch.tensor(moves[1])), 3)
        assert torch.equal(out, want[rows])


