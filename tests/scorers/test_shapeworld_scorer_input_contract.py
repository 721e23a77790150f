"""The ShapeWorld scorers keep the real scorers' input contract; the `pil` backend always sees uint8."""

from __future__ import annotations

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.scorers import preprocess as pp
from arscale.scorers.shapeworld import RewardConfig, load_features, load_reward


@pytest.fixture(scope="module")
def weights_dir(tiny_reward_weights):
    return tiny_reward_weights(RewardConfig())


def test_shapeworld_scorers_refuse_uint8_images_like_the_real_ones(weights_dir):
    uint8 = (torch.rand(2, 3, 64, 64) * 255).round().to(torch.uint8)
    with pytest.raises(ArscaleError, match="uint8"):
        pp.check_images(uint8)  # the shared contract
    with pytest.raises(ArscaleError, match="uint8"):
        load_reward(weights=weights_dir).reward(uint8, ["a photo of a red circle"] * 2)
    with pytest.raises(ArscaleError, match="uint8"):
        load_features(weights=weights_dir).features(uint8)


def test_pil_backend_rounds_to_uint8_even_without_a_resize():
    img = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    quantised = pp.to_uint8(img).float() / 255
    # resized: the input goes through uint8, as the upstream PIL pipelines see it
    out = pp.resize(img, 4, 4, "bicubic", backend="pil")
    assert torch.equal(out, (out * 255).round() / 255)
    # not resized (the search hands the scorer images at its input size): the same uint8 view is expected
    torch.testing.assert_close(pp.resize(img, 8, 8, "bicubic", backend="pil"), quantised, atol=0, rtol=0)
