"""CostRecord.overhead / add and SearchTree.extend (docstrings in search/result.py and generators/trajectories.py)."""
import pytest

from arscale.generators.trajectories import SearchTree
from arscale.search.result import PHASES, CostRecord


def test_overhead_is_wall_time_outside_model_decode_and_both_scorers():
    # result.py: overhead = "Wall time outside model forwards, decodes and scorers" (selection is overhead)
    c = CostRecord()
    c.wall.update(model=1.0, decode=0.5, features=0.25, reward=0.125, selection=0.0625)
    c.total_wall = 3.0
    assert c.overhead == pytest.approx(3.0 - 1.875)
    c.total_wall = 1.0  # never negative
    assert c.overhead == 0.0


def test_add_sums_every_count_flops_and_time():
    # SearchResult.extend: "costs add up"; CostRecord.add is how
    def record(x):
        return CostRecord(transformer_flops=1 * x, decode_count=2 * x, decode_flops=3 * x, scorer_calls=4 * x,
                          scorer_flops=5 * x, generated_tokens=6 * x,
                          wall={p: (i + 1) * x for i, p in enumerate(PHASES)}, total_wall=100 * x)

    a = record(1).add(record(10))
    assert (a.transformer_flops, a.decode_count, a.decode_flops, a.scorer_calls, a.scorer_flops,
            a.generated_tokens, a.total_wall) == (11, 22, 33, 44, 55, 66, 1100)
    assert a.wall == {p: (i + 1) * 11 for i, p in enumerate(PHASES)}


def test_tree_extend_appends_born_ended_and_reason_with_the_nodes():
    # SearchTree: "Append-only record of every row that ever lived: its parent and how it ended"
    a, b = SearchTree(), SearchTree()
    a.add([-1], [0], 0)
    roots = b.add([-1, -1], [0, 1], 0)
    kids = b.add([roots[0]], [0], 2)
    b.end([roots[1]], 3, "prune")
    shift = a.extend(b, prompt_shift=1)
    assert shift == 1 and len(a) == 4
    assert a.parent == [-1, -1, -1, 1] and a.prompt == [0, 1, 2, 1]
    assert a.born == [0, 0, 0, 2]
    assert a.ended == [None, None, 3, None] and a.reason == [None, None, "prune", None]
    assert a.to_dict()["ended"][kids[0] + shift] is None
