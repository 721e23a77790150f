"""A VAR-style multi-scale tokenizer: conv encoder → quant_conv → multi-scale residual VQ → post_quant_conv → decoder.

Images enter in [0, 1] and leave in [0, 1]; internally the autoencoder works in [-1, 1] like VAR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from arscale.errors import ArscaleError
from arscale.generators.conv_autoencoder import Decoder, Encoder, downsample_factor
from arscale.generators.next_scale.quantizer import MultiScaleResidualQuantizer


@dataclass
class MultiScaleTokenizerConfig:
    image_size: int = 64
    patch_nums: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8)
    vocab_size: int = 512
    code_dim: int = 16
    ch: int = 16
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res: int = 1
    num_phi: int = 4
    phi_ratio: float = 0.5
    down_mode: str = "area"
    up_mode: str = "bicubic"
    beta: float = 0.25

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> MultiScaleTokenizerConfig:
        d = dict(data)
        for k in ("patch_nums", "ch_mult"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


class MultiScaleTokenizer(nn.Module):
    def __init__(self, config: MultiScaleTokenizerConfig):
        super().__init__()
        c = self.config = config
        factor = downsample_factor(c.ch_mult)
        if c.image_size % factor or c.image_size // factor != c.patch_nums[-1]:
            raise ArscaleError(f"image size {c.image_size} with downsampling {factor} gives a "
                               f"{c.image_size // factor}×{c.image_size // factor} latent, but the last scale of "
                               f"patch_nums {tuple(c.patch_nums)} is {c.patch_nums[-1]}")
        self.encoder = Encoder(c.code_dim, c.ch, c.ch_mult, c.num_res)
        self.decoder = Decoder(c.code_dim, c.ch, c.ch_mult, c.num_res)
        self.quant_conv = nn.Conv2d(c.code_dim, c.code_dim, 3, padding=1)
        self.post_quant_conv = nn.Conv2d(c.code_dim, c.code_dim, 3, padding=1)
        self.quantizer = MultiScaleResidualQuantizer(
            c.vocab_size, c.code_dim, c.patch_nums, num_phi=c.num_phi, phi_ratio=c.phi_ratio,
            down_mode=c.down_mode, up_mode=c.up_mode, beta=c.beta)

    @property
    def patch_nums(self) -> tuple[int, ...]:
        return self.quantizer.patch_nums

    def latent(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B,3,H,W] in [0,1] -> continuous latent f [B,C,h,w]."""
        if images.shape[-1] != self.config.image_size or images.shape[-2] != self.config.image_size:
            raise ArscaleError(f"the tokenizer takes {self.config.image_size}×{self.config.image_size} images, "
                               f"got {tuple(images.shape[-2:])}")
        return self.quant_conv(self.encoder(images * 2 - 1))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Training pass: reconstruction in [-1,1]-space scaled back to [0,1] (unclamped), VQ loss, indices."""
        f_hat, indices, vq_loss = self.quantizer(self.latent(images))
        recon = (self.decoder(self.post_quant_conv(f_hat)) + 1) / 2
        return recon, vq_loss, indices

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Per-scale indices [B,pn,pn]."""
        return self.quantizer.encode(self.latent(images))

    def decode_fhat(self, f_hat: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """Accumulated latent -> images [B,3,size,size] in [0,1] (full size when `size` is None)."""
        img = ((self.decoder(self.post_quant_conv(f_hat)) + 1) / 2).clamp(0, 1)
        return resize_images(img, size)

    def decode_indices(self, indices: Sequence[torch.Tensor], size: int | None = None) -> torch.Tensor:
        return self.decode_fhat(self.quantizer.indices_to_fhat(indices), size)


def resize_images(img: torch.Tensor, size: int | None) -> torch.Tensor:
    """Area-downsample (or bicubic-upsample) images to size×size; decoding happens at the native size."""
    if size is None or size == img.shape[-1]:
        return img
    if size <= 0:
        raise ArscaleError(f"preview size must be positive, got {size}")
    if size < img.shape[-1]:
        return F.interpolate(img, size=(size, size), mode="area")
    return F.interpolate(img, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
