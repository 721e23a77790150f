"""SearchResult: exactly one chosen candidate per prompt, and joining chunks renumbers candidates."""

import numpy as np
import pytest
from search_fakes import FakeNextScale, FakeScorer

from arscale.search.best_of_n import BestOfN

PROMPTS = ["a photo of a red circle", "a photo of two squares", "a photo of a cross"]


def test_chosen_refuses_a_prompt_with_two_picks():
    # SearchResult.chosen: "expected 1"
    res = BestOfN().run(FakeNextScale(), PROMPTS[:1], 3, seed=0, scorer=FakeScorer())
    for c in res.candidates[0]:
        c.chosen = True
    with pytest.raises(RuntimeError, match="3 chosen candidates"):
        res.chosen(0)
    for c in res.candidates[0]:
        c.chosen = False
    with pytest.raises(RuntimeError, match="0 chosen candidates"):
        res.chosen(0)


def test_extend_renumbers_the_later_chunks_candidates():
    # SearchResult.extend: "its candidates move here, renumbered"; a candidate's node is its id in the joined tree
    whole = BestOfN().run(FakeNextScale(), PROMPTS, 2, seed=1, scorer=FakeScorer())
    joined = BestOfN().run(FakeNextScale(), PROMPTS[:2], 2, seed=1, scorer=FakeScorer())
    later = BestOfN().run(FakeNextScale(), PROMPTS[2:], 2, seed=1, prompt_offset=2, scorer=FakeScorer())
    joined.extend(later)
    assert joined.prompts == PROMPTS
    for p in range(len(PROMPTS)):
        for c, w in zip(joined.candidates[p], whole.candidates[p]):
            assert c.prompt_index == p and joined.tree.prompt[c.node] == p
            assert (c.node, c.score, c.chosen) == (w.node, w.score, w.chosen)
            assert np.array_equal(c.image, w.image)
    nodes = [c.node for per in joined.candidates for c in per]
    assert len(set(nodes)) == len(nodes) == len(joined.tree)
    assert joined.cost.generated_tokens == whole.cost.generated_tokens


def test_the_cost_dict_carries_the_overhead_the_bench_summarises():
    # CostRecord.to_dict adds `overhead`; bench.metrics.summarize reads it from each record (a missing key reads 0)
    from arscale.bench.metrics import summarize
    from arscale.search.result import CostRecord

    c = CostRecord(total_wall=2.0)
    c.wall.update(model=0.5, decode=0.25, reward=0.25)
    d = c.to_dict()
    assert d["overhead"] == 1.0 and d["total_wall"] == 2.0 and d["wall"]["model"] == 0.5
    cost = summarize([{"cost": d, "reward": None}], [])["cost_per_prompt"]
    assert cost["overhead"] == 1.0 and cost["overhead_fraction"] == 0.5
