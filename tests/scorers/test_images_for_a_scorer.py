"""`images_for(scorer, images)`: a result's uint8 images as a scorer takes them, as the strategies hand them over."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arscale.scorers.base import images_for, sized_for


class Sized:
    name = "sized"

    def __init__(self, input_size: int, resizes_itself: bool = False):
        self.input_size, self.resizes_itself = input_size, resizes_itself


def _images(count: int = 2, side: int = 32) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, side, side, 3), dtype=np.uint8)


def test_one_image_a_list_and_a_batch_give_the_same_floats_in_0_1():
    batch = _images()
    floats = images_for(Sized(32), batch)
    assert floats.shape == (2, 3, 32, 32) and floats.dtype == torch.float32
    assert torch.equal(floats[1], torch.from_numpy(batch[1]).permute(2, 0, 1).float() / 255)
    assert torch.equal(images_for(Sized(32), list(batch)), floats)
    assert torch.equal(images_for(Sized(32), batch[0]), floats[:1])


def test_images_reach_the_scorer_at_its_size_as_a_strategy_resizes_them():
    batch = _images()
    floats = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(images_for(Sized(16), batch), sized_for(Sized(16), floats))
    assert images_for(Sized(16), batch).shape[-1] == 16
    assert images_for(Sized(16, resizes_itself=True), batch).shape[-1] == 32  # its own preprocessing resizes


def test_a_shipped_scorer_scores_a_results_images(tmp_path):
    from arscale.generators.registry import load_generator
    from arscale.scorers.base import load_scorer
    from arscale.search.base import make_strategy

    scorer = load_scorer("shapeworld-reward")
    prompts = ["a photo of a red circle", "a photo of two squares"]
    result = make_strategy("best-of-n").run(load_generator("shapeworld-var"), prompts, n=2, seed=0, scorer=scorer)
    scores = scorer.reward(images_for(scorer, result.images), prompts)
    assert torch.allclose(scores, torch.tensor([result.chosen(p).score for p in range(2)]), atol=0.05)


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 3), np.float32), np.zeros((2, 3, 8, 8), np.uint8), [],
                                 np.zeros((8, 8), np.uint8)])
def test_what_is_no_uint8_hwc_image_is_refused_in_one_line(bad):
    with pytest.raises((TypeError, ValueError), match="images_for"):
        images_for(Sized(8), bad)
