"""Single-scale VQ tokenizer for next-token (raster-order) models: image -> a grid of codebook ids.

The shape follows LlamaGen's VQGAN at toy size: a conv encoder (`conv_autoencoder.Encoder`), a
1x1 `quant_conv` down to a small code dimension, an l2-normalised codebook (lookup by cosine
similarity, which keeps codes in use without EMA tricks), a 1x1 `post_quant_conv` and the conv
decoder. ShapeWorld-AR uses a 64x64 image and downsample 4 (`ch_mult` (1, 2, 4)), i.e. a 16x16 grid of
256 tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from arscale.errors import ArscaleError
from arscale.generators.conv_autoencoder import Decoder, Encoder, conv_flops, downsample_factor


@dataclass
class VQConfig:
    image_size: int = 64
    codebook_size: int = 512
    code_dim: int = 8
    z_channels: int = 64
    ch: int = 16
    ch_mult: Sequence[int] = (1, 2, 4, 4)
    num_res: int = 1

    def __post_init__(self):
        self.ch_mult = tuple(self.ch_mult)
        factor = downsample_factor(self.ch_mult)
        if self.image_size % factor:  # also a ch_mult that downsamples past the image (a grid below one token)
            raise ValueError(f"image_size {self.image_size} is not a multiple of ch_mult {list(self.ch_mult)}'s "
                             f"downsampling {factor}: no whole token grid")

    @property
    def grid(self) -> int:
        return self.image_size // downsample_factor(self.ch_mult)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ch_mult"] = list(self.ch_mult)
        return d


class VQTokenizer(nn.Module):
    def __init__(self, config: VQConfig | None = None):
        super().__init__()
        self.config = c = config or VQConfig()
        self.encoder = Encoder(c.z_channels, c.ch, c.ch_mult, c.num_res)
        self.decoder = Decoder(c.z_channels, c.ch, c.ch_mult, c.num_res)
        self.quant_conv = nn.Conv2d(c.z_channels, c.code_dim, 1)
        self.post_quant_conv = nn.Conv2d(c.code_dim, c.z_channels, 1)
        self.codebook = nn.Embedding(c.codebook_size, c.code_dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / c.codebook_size, 1.0 / c.codebook_size)

    @property
    def grid(self) -> int:
        return self.config.grid

    @property
    def num_tokens(self) -> int:
        return self.grid * self.grid

    def normalized_codebook(self) -> torch.Tensor:
        return F.normalize(self.codebook.weight, dim=-1)

    def encode_latent(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B,3,H,W] in [0,1] -> l2-normalised pre-quantisation latents [B,D,g,g]."""
        if images.shape[-1] != self.config.image_size or images.shape[-2] != self.config.image_size:
            raise ArscaleError(f"the tokenizer takes {self.config.image_size}×{self.config.image_size} images, "
                               f"got {tuple(images.shape[-2:])}")
        return F.normalize(self.quant_conv(self.encoder(images * 2 - 1)), dim=1)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest code by cosine similarity; returns (codes [B,g,g], quantised latent [B,D,g,g])."""
        book = self.normalized_codebook()
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        codes = (flat @ book.t()).argmax(-1)
        zq = book[codes].view(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
        return codes.view(z.shape[0], z.shape[2], z.shape[3]), zq

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B,3,H,W] in [0,1] -> codes [B, g*g] in raster order."""
        codes, _ = self.quantize(self.encode_latent(images))
        return codes.flatten(1)

    def decode_latent(self, zq: torch.Tensor) -> torch.Tensor:
        """Quantised latent -> images in [0,1], clamped."""
        return ((self.decoder(self.post_quant_conv(zq)) + 1) / 2).clamp(0, 1)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, g*g] (raster order) -> images [B,3,H,W] in [0,1]."""
        g = self.grid
        zq = self.normalized_codebook()[codes.reshape(-1, g, g)].permute(0, 3, 1, 2)
        return self.decode_latent(zq)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: (reconstruction in [-1,1] unclamped, commitment loss, codes)."""
        z = self.encode_latent(images)
        codes, zq = self.quantize(z)
        commit = F.mse_loss(z, zq.detach()) * 0.25 + F.mse_loss(zq, z.detach())
        zq = z + (zq - z).detach()  # straight-through estimator
        recon = self.decoder(self.post_quant_conv(zq))
        return recon, commit, codes

    def decode_flops(self, rows: int = 1) -> float:
        """Analytic FLOPs (2 x multiply-adds of convs) of decoding `rows` images from codes."""
        return rows * conv_flops(nn.Sequential(self.post_quant_conv, self.decoder),
                                  (1, self.config.code_dim, self.grid, self.grid))
