"""Audit (mutation testing) of arscale.scorers.preprocess: behaviours the suite did not pin down."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from arscale.errors import ArscaleError
from arscale.scorers import preprocess as pp


def test_shorter_side_truncates_fractions_above_one_half():
    # torchvision Resize(size) truncates the longer side: 4 * 5 / 3 = 6.67 -> 6 (rounding would give 7)
    assert pp.shorter_side_size(3, 5, 4) == (4, 6)
    assert pp.shorter_side_size(5, 3, 4) == (6, 4)


def test_check_images_refuses_five_dimensional_input():
    with pytest.raises(ArscaleError, match=r"\[B, 3, H, W\]"):
        pp.check_images(torch.rand(2, 3, 3, 8, 8))


def test_center_crop_refuses_an_image_too_narrow():
    img = torch.rand(1, 3, 8, 5)  # tall enough, too narrow
    with pytest.raises(ArscaleError, match="cannot centre-crop 6x6 from a 8x5"):
        pp.center_crop(img, 6)


def test_center_crop_refuses_unknown_offsets():
    with pytest.raises(ArscaleError, match="unknown crop offsets 'ceil'"):
        pp.center_crop(torch.rand(1, 3, 8, 8), 4, "ceil")


def test_pad_to_square_puts_the_extra_column_on_the_right():
    out = pp.pad_to_square(torch.ones(1, 3, 6, 3), 6)  # pad_w = 3: one column left, two right
    assert out[0, 0, 0].tolist() == [0, 1, 1, 1, 0, 0]


def test_imagenet_statistics_are_the_standard_ones():
    assert pp.IMAGENET_MEAN == (0.485, 0.456, 0.406)
    assert pp.IMAGENET_STD == (0.229, 0.224, 0.225)
    assert pp.CLIP_MEAN == (0.48145466, 0.4578275, 0.40821073)
    assert pp.CLIP_STD == (0.26862954, 0.26130258, 0.27577711)


def test_to_uint8_rounds_to_nearest_and_clamps_instead_of_wrapping():
    x = torch.tensor([-0.2, 0.0, 0.5, 1.0, 1.3])
    assert pp.to_uint8(x).tolist() == [0, 0, 128, 255, 255]


def test_pil_backend_bicubic_is_pil_bicubic():
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, 12, 12, generator=g)
    got = pp.resize(img, 5, 5, "bicubic", backend="pil")
    array = pp.to_uint8(img)[0].permute(1, 2, 0).numpy()
    want = np.array(Image.fromarray(array).resize((5, 5), resample=Image.Resampling.BICUBIC))
    assert torch.equal((got[0].permute(1, 2, 0) * 255).round().to(torch.uint8), torch.from_numpy(want))


def test_unknown_backend_is_refused():
    with pytest.raises(ArscaleError, match="unknown preprocessing backend 'cv2'"):
        pp.resize(torch.rand(1, 3, 8, 8), 4, 4, backend="cv2")


def test_unclamped_bicubic_keeps_the_overshoot():
    step = torch.zeros(1, 3, 16, 16)
    step[..., 8:] = 1.0
    want = F.interpolate(step, size=(6, 6), mode="bicubic", antialias=True, align_corners=False)
    assert want.min() < 0 or want.max() > 1
    torch.testing.assert_close(pp.resize(step, 6, 6, "bicubic", clamp=False), want)
