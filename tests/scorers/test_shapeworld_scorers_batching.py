"""Audit (mutation testing) of the ShapeWorld scorers: resizing, batching and the input-shape check."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from arscale.errors import ArscaleError
from arscale.scorers.shapeworld import RewardConfig, ShapeWorldScorer, load_features, load_reward

PROMPTS = ["a photo of a red circle", "a photo of two squares", "a photo of a blue triangle"]


@pytest.fixture(scope="module")
def weights_dir(tiny_reward_weights):
    return tiny_reward_weights(RewardConfig(shift=0.25, scale=1.5))


def _images(count, size, seed=0):
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("size", [32, 128])
def test_other_sizes_are_resized_bilinear_with_antialiasing(weights_dir, size):
    reward, features = load_reward(weights=weights_dir), load_features(weights=weights_dir)
    imgs = _images(3, size, seed=size)
    at_64 = F.interpolate(imgs, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
    torch.testing.assert_close(reward.reward(imgs, PROMPTS), reward.reward(at_64, PROMPTS))
    torch.testing.assert_close(features.features(imgs), features.features(at_64))


def test_small_batches_give_the_same_scores_and_features(weights_dir):
    full = load_reward(weights=weights_dir)
    one = ShapeWorldScorer(full.model, "shapeworld-reward", batch_size=1)
    two = ShapeWorldScorer(full.model, "shapeworld-features", batch_size=2)
    imgs = _images(3, 64, seed=1)
    want = full.reward(imgs, PROMPTS)
    assert want.std() > 1e-4  # the three prompts score differently, so a prompt mix-up shows
    torch.testing.assert_close(one.reward(imgs, PROMPTS), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(two.reward(imgs, PROMPTS), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(two.features(imgs), full.features(imgs), atol=1e-5, rtol=1e-5)
    assert one.features(imgs).shape == (3, 64, 96)


def test_images_of_the_wrong_shape_are_refused_with_an_arscale_error(weights_dir):
    reward, features = load_reward(weights=weights_dir), load_features(weights=weights_dir)
    with pytest.raises(ArscaleError, match=r"\[B, ?3, ?H, ?W\].*\(2, 1, 64, 64\)"):
        reward.reward(torch.rand(2, 1, 64, 64), PROMPTS[:2])
    with pytest.raises(ArscaleError, match=r"\[B, ?3, ?H, ?W\].*\(3, 64, 64\)"):
        features.features(torch.rand(3, 64, 64))
