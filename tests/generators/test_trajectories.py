import pytest
import torch

from arscale.generators.kv_cache import KVCache
from arscale.generators.seeding import row_key
from arscale.generators.trajectories import Trajectories


def make(rows=3):
    t = Trajectories.for_prompts(["a", "b"], [rows, 2], seed=7)
    n = len(t)
    t.rows["latent"] = torch.arange(n).float().view(n, 1)
    t.paired["mask"] = torch.arange(2 * n).view(2 * n, 1)
    t.cache = KVCache(num_layers=2, capacity=8)
    for layer in range(2):
        k = torch.arange(2 * n).float().view(2 * n, 1, 1, 1).expand(2 * n, 1, 3, 2).clone()
        t.cache.append(layer, k, k + 100)
    t.record("reward", 0, torch.arange(n).float())
    return t


def test_select_gathers_everything_with_duplicates():
    t = make()
    n = len(t)
    idx = [4, 0, 0, 2]
    t.step = 1
    t.select(idx, reason="resample")
    assert t.rows["latent"].flatten().tolist() == idx
    assert t.paired["mask"].flatten().tolist() == idx + [i + n for i in idx]
    k, v = t.cache.keys[1][:, 0, :3, 0], t.cache.values[0][:, 0, :3, 0]
    assert k[:, 0].tolist() == idx + [i + n for i in idx]
    assert (v - 100)[:, 0].tolist() == idx + [i + n for i in idx]
    assert t.history["reward"][:, 0].tolist() == idx
    assert t.prompt_index.tolist() == [1, 0, 0, 0]
    # the duplicate of row 0 is a child node with its own seed
    assert t.node[1] != t.node[2] and t.tree.parent[int(t.node[2])] == int(t.node[1])
    assert t.seed_key[1] != t.seed_key[2]
    # rows 1 and 3 were cut, with the reason
    assert t.tree.reason[1] == "resample" and t.tree.reason[3] == "resample"
    assert t.tree.ended[0] is None


def _twin_caches(seed: int, rows: int, layers: int, capacity: int, shape: tuple[int, int, int]):
    """Two caches holding the same random keys/values (`shape` = heads, positions, dim) in separate buffers."""
    torch.manual_seed(seed)
    a, b = KVCache(layers, capacity=capacity), KVCache(layers, capacity=capacity)
    for layer in range(layers):
        k, v = torch.randn(rows, *shape), torch.randn(rows, *shape)
        a.append(layer, k, v)
        b.append(layer, k.clone(), v.clone())
    return a, b


def test_pruning_compacts_the_cache_in_place_like_a_fresh_gather():
    layers = 2
    a, b = _twin_caches(0, rows=6, layers=layers, capacity=5, shape=(2, 3, 4))
    keep = torch.tensor([0, 2, 3, 5])
    gathered = a.select(keep)
    assert b.keep_(keep) is b  # in place: the same buffers, rows 2, 3 and 5 moved up
    new = torch.randn(len(keep), 2, 2, 4)
    for layer in range(layers):
        ka, va = gathered.append(layer, new, -new)
        kb, vb = b.append(layer, new, -new)
        assert torch.equal(ka, kb) and torch.equal(va, vb) and kb.shape == (4, 2, 5, 4)
    with pytest.raises(ValueError, match="strictly increasing"):
        b.keep_(torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="strictly increasing"):
        b.keep_(torch.tensor([1, 1]))


def test_pruned_cache_memory_follows_the_survivors():
    layers = 2
    a, b = _twin_caches(1, rows=8, layers=layers, capacity=6, shape=(2, 4, 3))
    full = b.allocated_bytes()
    assert full == b.nbytes()
    b.keep_(torch.tensor([0, 1, 4, 6, 7]))  # 5 of 8 rows: the buffers are reused
    assert b.allocated_bytes() == full and b.nbytes() == full * 5 // 8
    keep = torch.tensor([1, 3])  # rows 1 and 6 of the original eight
    b.keep_(keep)  # 2 of 5 rows: at most half of the allocation, so they move to a right-sized buffer
    assert b.allocated_bytes() == b.nbytes() == full * 2 // 8
    gathered = a.select(torch.tensor([1, 6]))
    new = torch.randn(2, 2, 2, 3)
    for layer in range(layers):
        ka, va = gathered.append(layer, new, -new)
        kb, vb = b.append(layer, new, -new)
        assert torch.equal(ka, kb) and torch.equal(va, vb)


def test_select_rejects_bad_rows():
    t = make()
    with pytest.raises(IndexError, match=r"must lie in \[0, 5\)"):
        t.select([0, 9])
    with pytest.raises(ValueError, match="at least one row"):
        t.select([])


def test_cache_overflow_is_an_error():
    c = KVCache(1, capacity=2)
    x = torch.zeros(1, 1, 3, 4)
    with pytest.raises(RuntimeError, match="overflow"):
        c.append(0, x, x)


def test_seed_keys_depend_on_prompt_and_candidate_only():
    a = Trajectories.for_prompts(["x", "y"], 2, seed=1, prompt_offset=10)
    b = Trajectories.for_prompts(["y"], 2, seed=1, prompt_offset=11)
    assert a.seed_key[2:] == b.seed_key
    # not a constant: every (prompt, candidate) has its own key, and the run's seed changes them all
    assert len(set(a.seed_key)) == 4
    c = Trajectories.for_prompts(["x", "y"], 2, seed=2, prompt_offset=10)
    assert not set(c.seed_key) & set(a.seed_key)


def test_results_of_later_prompt_chunks_join_with_shifted_indices():
    import numpy as np

    from arscale.generators.trajectories import SearchTree
    from arscale.search.result import Candidate, CostRecord, SearchResult

    def chunk(prompts, tokens):
        tree = SearchTree()
        roots = tree.add([-1] * len(prompts), list(range(len(prompts))), 0)
        child = tree.add([roots[0]], [0], 1)
        tree.end(roots[:1], 1, "select")
        cands = [[Candidate(p, child[0] if p == 0 else roots[p], np.zeros((2, 2, 3), np.uint8), None, True)]
                 for p in range(len(prompts))]
        return SearchResult(list(prompts), cands, tree, CostRecord(generated_tokens=tokens), "raw", {})

    joined = chunk(["a", "b"], 5).extend(chunk(["c"], 7))
    assert joined.prompts == ["a", "b", "c"] and joined.cost.generated_tokens == 12
    assert joined.tree.parent == [-1, -1, 0, -1, 3] and joined.tree.prompt == [0, 1, 0, 2, 2]
    last = joined.candidates[2][0]
    assert (last.prompt_index, last.node) == (2, 4) and joined.tree.lineage(last.node) == [3, 4]
    with pytest.raises(ValueError, match="telemetry"):
        chunk(["a"], 1).extend(SearchResult(["b"], [[]], SearchTree(), CostRecord(), "raw", {}, {"x": 1}))
    with pytest.raises(ValueError, match="another config"):
        chunk(["a"], 1).extend(SearchResult(["b"], [[]], SearchTree(), CostRecord(), "best-of-n", {}))


def test_prompt_index_counts_within_the_call_while_seeds_use_the_global_index():
    """`traj.prompt_index[r]` indexes the call's own `prompts` (what `rows_of` and the strategies group by); only the
    seeds read `prompt_offset`, so a later chunk of prompts draws what it would have drawn in one call."""
    traj = Trajectories.for_prompts(["x", "y"], [2, 1], seed=7, prompt_offset=5)
    assert traj.prompt_index.tolist() == [0, 0, 1]
    assert traj.tree.prompt == [0, 0, 1]
    assert traj.rows_of(1).tolist() == [2]
    assert traj.seed_key == [row_key(7, 5, 0), row_key(7, 5, 1), row_key(7, 6, 0)]
