"""The features scorer's edge cases."""

from __future__ import annotations

import torch

from arscale.scorers.base import load_scorer


def test_shapeworld_features_of_an_empty_batch_are_empty_like_its_rewards():
    """features() of zero images is an empty [0, ...] tensor shaped like a batch's, as reward() gives [0]."""
    torch.manual_seed(0)
    scorer = load_scorer("shapeworld-features")
    one = scorer.features(torch.rand(1, 3, 64, 64))
    assert scorer.reward(torch.rand(0, 3, 64, 64), []).shape == (0,)
    none = scorer.features(torch.rand(0, 3, 64, 64))
    assert none.shape == (0, *one.shape[1:]) and none.dtype == one.dtype
