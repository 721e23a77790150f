"""Image preprocessing against hand-computed values (no transformers needed)."""

from __future__ import annotations

import pytest
import torch

from arscale.errors import ArscaleError
from arscale.scorers.preprocess import (
    CLIP_MEAN,
    CLIP_STD,
    ImageTransform,
    center_crop,
    normalize,
    resize,
    shorter_side_size,
)


def test_shorter_side_keeps_aspect_and_truncates_like_torchvision():
    assert shorter_side_size(40, 60, 224) == (224, 336)
    assert shorter_side_size(60, 40, 224) == (336, 224)
    assert shorter_side_size(30, 47, 20) == (20, 31)  # 20 * 47 / 30 = 31.33 -> 31


def test_center_crop_offsets():
    img = torch.arange(6 * 9, dtype=torch.float32).view(1, 1, 6, 9)
    out = center_crop(img, 4)
    # top = round((6 - 4) / 2) = 1, left = round((9 - 4) / 2) = round(2.5) = 2
    assert torch.equal(out, img[..., 1:5, 2:6])
    with pytest.raises(ArscaleError, match="cannot centre-crop"):
        center_crop(img, 7)


def test_center_crop_floor_offsets_like_clip_image_processor():
    img = torch.arange(6 * 9, dtype=torch.float32).view(1, 1, 6, 9)
    # transformers' CLIPImageProcessor: top = (6 - 4) // 2 = 1, left = (9 - 4) // 2 = 2; (7 - 4) // 2 = 1 vs round(1.5) = 2
    assert torch.equal(center_crop(img, 4, "floor"), img[..., 1:5, 2:6])
    img = torch.arange(7 * 7, dtype=torch.float32).view(1, 1, 7, 7)
    assert torch.equal(center_crop(img, 4, "floor"), img[..., 1:5, 1:5])
    assert torch.equal(center_crop(img, 4), img[..., 2:6, 2:6])
    with pytest.raises(ArscaleError, match="unknown crop offsets"):
        ImageTransform(4, crop_offsets="ceil")


def test_normalisation_values():
    grey = torch.full((1, 3, 2, 2), 0.5)
    out = normalize(grey, CLIP_MEAN, CLIP_STD)[0, :, 0, 0]
    # (0.5 - 0.48145466) / 0.26862954, (0.5 - 0.4578275) / 0.26130258, (0.5 - 0.40821073) / 0.27577711
    torch.testing.assert_close(out, torch.tensor([0.0690369, 0.1613934, 0.3328386]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("backend", ["torch", "pil"])
def test_antialiased_bilinear_halving_of_a_ramp(backend):
    # a horizontal ramp 0, 1/7, ..., 1; halving with PIL's antialiased triangle filter (support 2 input px):
    # interior outputs weigh 4 inputs 1/8, 3/8, 3/8, 1/8; edge outputs renormalise the clipped weights
    # (3/7, 3/7, 1/7), giving [5/49, 2.5/7, 4.5/7, 44/49].
    ramp = (torch.arange(8, dtype=torch.float32) / 7).view(1, 1, 1, 8).expand(1, 3, 8, 8).contiguous()
    out = resize(ramp, 4, 4, "bilinear", backend)[0, 0, 0]
    want = torch.tensor([5 / 49, 2.5 / 7, 4.5 / 7, 44 / 49])
    tol = 1e-6 if backend == "torch" else 0.5 / 255 + 1e-6  # PIL rounds input and output to uint8
    torch.testing.assert_close(out, want, atol=tol, rtol=0)


def test_bicubic_resize_is_clamped_like_pil_output():
    step = torch.zeros(1, 3, 16, 16)
    step[..., 8:] = 1.0
    out = resize(step, 6, 6, "bicubic")
    assert out.min() >= 0.0 and out.max() <= 1.0
    unclamped = torch.nn.functional.interpolate(step, size=(6, 6), mode="bicubic", antialias=True)
    assert unclamped.min() < 0.0 or unclamped.max() > 1.0  # so the clamp really did something


def test_torch_and_pil_backends_agree_to_about_one_level():
    g = torch.Generator().manual_seed(0)
    low = torch.rand(2, 3, 8, 8, generator=g)
    img = torch.nn.functional.interpolate(low, size=(64, 48), mode="bilinear", align_corners=False)
    img = (img * 255).round() / 255  # what a decoded uint8 image holds
    for mode in ("bicubic", "bilinear"):
        a = ImageTransform(24, interpolation=mode, backend="torch")(img)
        b = ImageTransform(24, interpolation=mode, backend="pil")(img)
        assert a.shape == b.shape == (2, 3, 24, 24)
        # one uint8 level after normalisation is at most 1 / (255 * min std)
        assert (a - b).abs().max() < 1.5 / (255 * min(CLIP_STD))


def test_transform_without_crop_stretches():
    # a horizontal ramp 0 .. 1 over 50 columns: stretched, the whole width survives; a centre crop of the
    # 14x23 shorter-side resize would keep only about columns 4-17 of 23, i.e. values ~0.19 .. ~0.81
    img = (torch.arange(50, dtype=torch.float32) / 49).view(1, 1, 1, 50).expand(1, 3, 30, 50).contiguous()
    out = ImageTransform(14, fit="stretch", interpolation="bilinear")(img)
    assert out.shape == (1, 3, 14, 14)
    pixels = out * torch.tensor(CLIP_STD).view(1, 3, 1, 1) + torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    assert torch.allclose(pixels, pixels[:, :1, :1].expand_as(pixels), atol=1e-5)  # same ramp in every row, channel
    row = pixels[0, 0, 0]
    assert row[0] < 0.1 and row[-1] > 0.9 and (row.diff() > 0).all()
    # away from the edges a symmetric triangle filter over a linear ramp returns about the ramp at the
    # output pixel's centre, input coordinate (j + 0.5) * 50 / 14 - 0.5
    centres = ((torch.arange(14) + 0.5) * 50 / 14 - 0.5) / 49
    torch.testing.assert_close(row[1:-1], centres[1:-1], atol=0.01, rtol=0)


def test_input_contract_errors():
    with pytest.raises(ArscaleError, match=r"\[B, 3, H, W\]"):
        ImageTransform(8)(torch.rand(3, 8, 8))
    with pytest.raises(ArscaleError, match="uint8"):
        ImageTransform(8)(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_longer_side_and_padding():
    from arscale.scorers.preprocess import longer_side_size, pad_to_square

    assert longer_side_size(30, 47, 20) == (13, 20)  # 30 * 20 / 47 = 12.77 -> 13
    assert longer_side_size(47, 30, 20) == (20, 13)
    img = torch.ones(1, 3, 3, 6)
    out = pad_to_square(img, 6)
    # pad_h = 3: one row on top, two at the bottom (open_clip ResizeMaxSize puts the extra row last)
    assert out.shape == (1, 3, 6, 6)
    assert out[0, 0, :, 0].tolist() == [0, 1, 1, 1, 0, 0]
    with pytest.raises(ArscaleError, match="unknown fit"):
        ImageTransform(8, fit="squash")
