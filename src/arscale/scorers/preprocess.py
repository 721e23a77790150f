"""Image preprocessing for the real scorers, in torch (no torchvision): resize, centre crop, normalise.

Every released scorer was trained behind a torchvision/PIL pipeline on uint8 PIL images. Two backends
reproduce it:

- `torch` (default): `F.interpolate(..., antialias=True)`, whose antialiased bilinear/bicubic kernels
  follow PIL's (bicubic a = -0.5, support scaled with the downscale factor); results are clamped to
  [0, 1] like PIL's uint8 output. Runs on the scorer's device, batched, no uint8 round trip.
- `pil`: the images are rounded to uint8 and resized by PIL itself, as the originals do. Bit-faithful to
  the upstream pipelines, at the cost of a CPU round trip; use it for golden-value comparisons.

The two agree to about one uint8 level (see tests/scorers_real/test_real_preprocess.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from arscale.errors import ArscaleError

# OpenAI CLIP's statistics: used by CLIP, PickScore (LAION ViT-H processor), ImageReward (BLIP), LAION aesthetic.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# ImageNet statistics: DINOv2 (TTS-VAR's clustering features).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

RANGE_SLACK = 1e-3  # rounding overshoot of a resize or decode that is still an image in [0, 1]
_PIL_FILTERS = {"bilinear": 2, "bicubic": 3}  # PIL.Image.Resampling.BILINEAR / BICUBIC


def check_images(images: torch.Tensor) -> torch.Tensor:
    """The scorer input contract: float [B, 3, H, W] in [0, 1]."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ArscaleError(f"scorers take images as a float tensor [B, 3, H, W] in [0, 1], got {shape}")
    if not images.is_floating_point():
        raise ArscaleError(f"scorers take float images in [0, 1], got dtype {images.dtype}; divide uint8 by 255")
    if images.numel():
        low, high = (float(v) for v in torch.aminmax(images.detach()))
        if not (low >= -RANGE_SLACK and high <= 1 + RANGE_SLACK):  # also NaN
            hint = "; divide 0..255 values by 255" if high > 2 else "; map [-1, 1] with (x + 1) / 2" if low < -0.5 else ""
            raise ArscaleError(f"scorers take float images in [0, 1], got values in [{low:.4g}, {high:.4g}]{hint}")
    return images


def shorter_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """torchvision `Resize(size)`: the shorter side becomes `size`, the longer one keeps the aspect (truncated)."""
    if height <= width:
        return size, int(size * width / height)
    return int(size * height / width), size


def resize(images: torch.Tensor, height: int, width: int, interpolation: str = "bicubic",
           backend: str = "torch", clamp: bool = True) -> torch.Tensor:
    """Resize [B, 3, H, W] in [0, 1] to (height, width) with antialiasing, PIL-style.

    `clamp=False` keeps bicubic overshoot, as torchvision's resize of a float tensor does (HPSv2)."""
    if interpolation not in _PIL_FILTERS:
        raise ArscaleError(f"unknown interpolation {interpolation!r}; choose from {', '.join(_PIL_FILTERS)}")
    if backend not in ("torch", "pil"):
        raise ArscaleError(f"unknown preprocessing backend {backend!r}; choose torch or pil")
    if backend == "pil":  # the upstream pipelines see uint8 whether or not they resize
        return _resize_pil(images, height, width, interpolation)
    if tuple(images.shape[-2:]) == (height, width):
        return images
    out = F.interpolate(images.float(), size=(height, width), mode=interpolation, align_corners=False,
                        antialias=True)
    # PIL writes uint8, so its bicubic overshoot is clipped; do the same.
    return (out.clamp_(0.0, 1.0) if clamp else out).to(images.dtype)


def _resize_pil(images: torch.Tensor, height: int, width: int, interpolation: str) -> torch.Tensor:
    from PIL import Image

    arrays = to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()
    if arrays.shape[1:3] != (height, width):
        arrays = [np.asarray(Image.fromarray(a).resize((width, height), resample=_PIL_FILTERS[interpolation]))
                  for a in arrays]
    out = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(images.device)
    return out.to(images.dtype) / 255.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats to uint8 the way image savers do (round to nearest)."""
    return (images.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8)


CROP_OFFSETS = ("round", "floor")


def center_crop(images: torch.Tensor, size: int, offsets: str = "round") -> torch.Tensor:
    """Centre crop of images at least `size` large. `offsets="round"`: torchvision `CenterCrop` (the
    offset `(h - size) / 2` rounded half to even); `"floor"`: transformers' image processors
    (`CLIPImageProcessor`: `(h - size) // 2`). They differ by one pixel when `h - size` is odd."""
    h, w = images.shape[-2:]
    if h < size or w < size:
        raise ArscaleError(f"cannot centre-crop {size}x{size} from a {h}x{w} image; resize first")
    if offsets not in CROP_OFFSETS:
        raise ArscaleError(f"unknown crop offsets {offsets!r}; choose from {', '.join(CROP_OFFSETS)}")
    top = round((h - size) / 2.0) if offsets == "round" else (h - size) // 2
    left = round((w - size) / 2.0) if offsets == "round" else (w - size) // 2
    return images[..., top: top + size, left: left + size]


def longer_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """open_clip `ResizeMaxSize(size)`: the longer side becomes `size`, the other is rounded."""
    scale = size / float(max(height, width))
    return round(height * scale), round(width * scale)


def pad_to_square(images: torch.Tensor, size: int, fill: float = 0.0) -> torch.Tensor:
    """Centre the image on a `size`×`size` canvas (extra pixel right/bottom), as open_clip's ResizeMaxSize does."""
    h, w = images.shape[-2:]
    pad_h, pad_w = size - h, size - w
    return F.pad(images, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=fill)


def normalize(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return (images - m) / s


FITS = ("crop", "stretch", "pad")


@dataclass(frozen=True)
class ImageTransform:
    """One scorer's pipeline; `fit` says how a non-`size` image is brought to `size`×`size`:

    - `crop`: shorter side to `size`, then centre crop (CLIP, BLIP / ImageReward, PickScore);
    - `stretch`: straight to `size`×`size`, no crop (TTS-VAR's DINOv2 input);
    - `pad`: longer side to `size`, then zero padding to a square (HPSv2's `ResizeMaxSize`).

    `crop_offsets` (fit `crop` only): `round` as torchvision's `CenterCrop` (BLIP / ImageReward, OpenAI
    CLIP's own preprocess), `floor` as transformers' `CLIPImageProcessor` (CLIPScore, PickScore).
    """

    size: int
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD
    interpolation: str = "bicubic"
    fit: str = "crop"
    backend: str = "torch"
    clamp: bool = True
    crop_offsets: str = "round"

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise ArscaleError(f"unknown fit {self.fit!r}; choose from {', '.join(FITS)}")
        if self.crop_offsets not in CROP_OFFSETS:
            raise ArscaleError(f"unknown crop offsets {self.crop_offsets!r}; choose from {', '.join(CROP_OFFSETS)}")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = check_images(images).float()
        h, w = images.shape[-2:]
        resize_to = {"crop": shorter_side_size(h, w, self.size), "stretch": (self.size, self.size),
                     "pad": longer_side_size(h, w, self.size)}[self.fit]
        images = resize(images, *resize_to, self.interpolation, self.backend, self.clamp)
        if self.fit == "crop":
            images = center_crop(images, self.size, self.crop_offsets)
        elif self.fit == "pad":
            images = pad_to_square(images, self.size)
        return normalize(images, self.mean, self.std)
