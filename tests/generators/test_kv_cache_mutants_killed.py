"""The KV cache (kv_cache.py) where mutants of it outlived the suite: growth and reallocation (doubling up to the
capacity, an append that ends exactly at the allocation), `keep`'s index checks, `select` of an empty layer,
right-sizing and the per-device copies, each worked out by hand."""

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


def test_a_growing_cache_allocates_what_the_appends_need_at_least_doubling_up_to_its_capacity():
    # grow: "what is needed, at least twice the old allocation, up to the capacity", the filled positions moved
    # over. Appends of 1, 1, 1, 3, 3 positions at capacity 10: ends 1 2 3 6 9 -> allocations 1, max(2, 2) = 2,
    # max(3, 4) = 4, max(6, 8) = 8, min(10, max(9, 16)) = 10
    cache = KVCache(1, capacity=10, grow=True)
    parts, sizes = [], []
    for i, n in enumerate([1, 1, 1, 3, 3]):
        k, v = _kv(2, n, i)
        keys, values = cache.append(0, k, v)
        parts.append((k, v))
        sizes.append(cache.keys[0].shape[2])
        assert torch.equal(keys, torch.cat([p[0] for p in parts], 2))
        assert torch.equal(values, torch.cat([p[1] for p in parts], 2))
    assert sizes == [1, 2, 4, 8, 10]
    assert cache.length == 9


def test_a_cache_allocates_its_whole_capacity_by_default_and_fills_it_to_the_last_position():
    cache = KVCache(2, capacity=4)
    k, v = _kv(3, 1, 0)
    cache.append(0, k, v)
    assert cache.keys[0].shape == (3, 2, 4, 3) and cache.keys[1] is None
    assert cache.length == 1  # the length is layer 0's: the first layer a step appends to
    k2, v2 = _kv(3, 3, 1)
    keys, values = cache.append(0, k2, v2)  # 1 + 3 = 4 positions: exactly the capacity is no overflow
    assert torch.equal(keys, torch.cat([k, k2], 2)) and torch.equal(values, torch.cat([v, v2], 2))
    with pytest.raises(RuntimeError, match="overflow"):
        cache.append(0, *_kv(3, 1, 2))
    with pytest.raises(RuntimeError, match="holds 3 rows but got 2"):
        cache.append(0, *_kv(2, 0, 3))
    assert KVCache(1, capacity=1).capacity == 1
    with pytest.raises(ValueError, match="capacity"):
        KVCache(1, capacity=0)


def test_select_of_a_cache_with_an_empty_layer_keeps_it_empty_and_its_lengths():
    cache = KVCache(2, capacity=6, grow=True)
    k, v = _kv(3, 2, 0)
    cache.append(0, k, v)
    out = cache.select(torch.tensor([2, 0, 2]))
    assert out.lengths == [2, 0] and out.keys[1] is None and out.values[1] is None
    assert out.grow and out.capacity == 6
    assert torch.equal(out.keys[0][:, :, :2], k[[2, 0, 2]]) and torch.equal(out.values[0][:, :, :2], v[[2, 0, 2]])
    assert out.keys[0].shape[2] == cache.keys[0].shape[2]  # as many positions as allocated
    # bytes of the live rows: 3 rows x 2 heads x 2 allocated positions x 3 dims x 4 bytes, keys and values
    assert out.nbytes() == 2 * 3 * 2 * 2 * 3 * 4 == out.allocated_bytes()
