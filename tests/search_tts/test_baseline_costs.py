"""Raw sampling and Best-of-N: one row per prompt for raw whatever N is, and Best-of-N's scores are the rewards."""

import numpy as np
import pytest
import torch
from search_fakes import FakeNextScale, FakeNextToken, FakeScorer

from arscale.search.best_of_n import BestOfN
from arscale.search.raw import Raw

PROMPTS = ["a photo of a red circle", "a photo of two squares", "a photo of a cross"]


@pytest.mark.parametrize("gen", [FakeNextScale, FakeNextToken])
def test_raw_generates_one_sample_per_prompt_whatever_n(gen):
    # raw.py: "One sample per prompt ...; `n` is accepted for the one interface and changes nothing"
    one = Raw().run(gen(), PROMPTS, 1, seed=5)
    many = Raw().run(gen(), PROMPTS, 6, seed=5)
    assert all(len(c) == 1 for c in many.candidates)
    for key in ("transformer_flops", "generated_tokens", "decode_count", "decode_flops", "scorer_calls"):
        assert getattr(many.cost, key) == getattr(one.cost, key), key
    g = gen()
    per_image = sum(p * p for p in g.patch_nums) if hasattr(g, "patch_nums") else g.num_tokens
    assert many.cost.generated_tokens == len(PROMPTS) * per_image  # a CFG pair counts once
    assert many.cost.decode_count == len(PROMPTS) and many.cost.scorer_calls == 0


@pytest.mark.parametrize("gen", [FakeNextScale, FakeNextToken])
def test_best_of_n_scores_are_the_rewards_of_its_candidates(gen):
    # best_of_n.py: "Every sample is a candidate, its score the reward of its float decode (a uint8 image rescored
    # can differ in the last digits)"; the pick is the best of them
    res = BestOfN().run(gen(), PROMPTS, 4, seed=1, scorer=FakeScorer())
    scorer = FakeScorer()
    for p, prompt in enumerate(PROMPTS):
        images = torch.from_numpy(np.stack([c.image for c in res.candidates[p]])).permute(0, 3, 1, 2).float() / 255
        rescored = scorer.reward(images, [prompt] * len(images))
        assert [c.score for c in res.candidates[p]] == pytest.approx(rescored.tolist(), abs=1e-2)
        best = max(range(4), key=lambda i: rescored[i])
        assert res.candidates[p][best].chosen
    assert res.cost.generated_tokens == 4 * Raw().run(gen(), PROMPTS, 1, seed=1).cost.generated_tokens


def test_a_next_scale_model_that_cannot_say_its_token_count_is_refused():
    from arscale.errors import ArscaleError
    from arscale.search.rollout import Search

    search = Search(FakeNextScale(), seed=0, prompt_offset=0)
    assert search._scale_tokens(2) == 9  # patch_nums (1, 2, 3, ...): scale 2 is 3×3
    search.generator = object()  # neither patch_nums nor tokens_in_scale: its tokens would go uncounted
    with pytest.raises(ArscaleError, match="neither `patch_nums` nor `tokens_in_scale"):
        search._scale_tokens(0)
