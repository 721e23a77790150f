"""The image-only LAION aesthetic score takes any prompts: a class-conditional model's class indices, or one string."""

from __future__ import annotations

import math

import pytest
import torch

transformers = pytest.importorskip("transformers")

from tiny_families import tiny_llamagen

from arscale.scorers.aesthetic import AestheticScorer
from arscale.scorers.imagereward import RewardHead
from arscale.search.best_of_n import BestOfN


def tiny_aesthetic() -> AestheticScorer:
    torch.manual_seed(1)
    vision = transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(
        image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
        num_attention_heads=4, projection_dim=24))
    return AestheticScorer(vision, RewardHead(24))


def test_aesthetic_scores_a_class_conditional_model_given_class_indices():
    """Best-of-N on a class-conditional model with prompts [3, 7] and the aesthetic score picks each prompt's best."""
    scorer = tiny_aesthetic()
    result = BestOfN().run(tiny_llamagen(), [3, 7], 2, seed=0, scorer=scorer)
    for prompt in range(2):
        scores = [c.score for c in result.candidates[prompt]]
        assert len(scores) == 2 and all(math.isfinite(s) for s in scores)
        assert result.chosen(prompt).score == max(scores)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(scorer.reward(images, [3, 7]), scorer.reward(images))  # the indices are ignored


def test_aesthetic_takes_one_prompt_string_for_the_whole_batch_as_the_other_scorers_do():
    """`reward(images, "a photo")` scores the batch (one string serves every image, as check_prompts lets it)."""
    scorer = tiny_aesthetic()
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(scorer.reward(images, "a photo of a red circle"), scorer.reward(images))
