"""Finished images reach a scorer at its `input_size`, unless it `resizes_itself` (the real scorers: their own
upstream bicubic / crop / pad): then at the generator's size, in the search's final rewards and in bench's
reward column alike."""

import pytest
import torch
from search_fakes import FakeNextScale, FakeScorer

from arscale.bench.runner import Bench, parse_runs
from arscale.bench.suites import SuitePrompt
from arscale.search.best_of_n import BestOfN
from arscale.search.rollout import sized_for


class SizeSpy(FakeScorer):
    """Records the side of every batch it is given (any side is accepted)."""

    def __init__(self, resizes_itself: bool):
        super().__init__()
        self.resizes_itself = resizes_itself
        self.sides: list[int] = []

    def reward(self, images, prompts):
        self.sides.append(int(images.shape[-1]))
        return images[:, 0].mean((1, 2))

    def reward_flops(self, rows, size):  # stated, so no call is repeated under the FLOP counter
        return 1.0 * rows


def test_sized_for_resizes_only_for_a_scorer_that_does_not_resize_itself():
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    resized = sized_for(SizeSpy(resizes_itself=False), images)
    assert resized.shape[-2:] == (16, 16)
    torch.testing.assert_close(resized.mean(), images.mean(), atol=0.01, rtol=0)  # an average, not a crop
    assert sized_for(SizeSpy(resizes_itself=True), images) is images
    assert sized_for(FakeScorer(), images[..., :16, :16]).shape[-1] == 16  # already at input_size: kept


@pytest.mark.parametrize("resizes_itself", [False, True])
def test_final_rewards_hand_the_finished_image_over_as_the_scorer_takes_it(resizes_itself):
    gen = FakeNextScale()
    gen.image_size = 32
    scorer = SizeSpy(resizes_itself)
    result = BestOfN().run(gen, ["a photo of a red circle"], 2, seed=0, scorer=scorer)
    assert scorer.sides == [32 if resizes_itself else 16]
    assert result.chosen(0).image.shape[:2] == (32, 32)


@pytest.mark.parametrize("resizes_itself", [False, True])
def test_bench_reward_column_hands_the_written_image_over_as_the_scorer_takes_it(resizes_itself, tmp_path):
    gen = FakeNextScale()
    gen.image_size = 32
    scorer = SizeSpy(resizes_itself)
    bench = Bench(gen, scorer, kind="geneval", seed=0, batch_prompts=2, quiet=True)
    bench.run(parse_runs("raw"), [1], [SuitePrompt(0, "a photo of a red circle")], tmp_path)
    assert scorer.sides == [32 if resizes_itself else 16]


def test_the_real_scorers_resize_themselves():
    from arscale.scorers.aesthetic import AestheticScorer
    from arscale.scorers.clip import ClipSimilarityScorer
    from arscale.scorers.dinov2 import Dinov2Features
    from arscale.scorers.hpsv2 import Hpsv2Scorer
    from arscale.scorers.imagereward import ImageRewardScorer
    from arscale.scorers.shapeworld import ShapeWorldScorer

    for cls in (AestheticScorer, ClipSimilarityScorer, Dinov2Features, Hpsv2Scorer, ImageRewardScorer,
                ShapeWorldScorer):
        assert cls.resizes_itself is True, cls.__name__
