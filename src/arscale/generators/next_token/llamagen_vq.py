"""LlamaGen's image tokenizer (`VQGAN`, FoundationVision/LlamaGen's VQ-16): an LDM-style convolutional encoder and
decoder around an l2-normalised codebook, in the released checkpoints' key layout. Decode is not clamped, as
upstream; single-head spatial attention keeps separate q, k, v convs (VAR's VQVAE fuses them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from arscale.generators.conv_autoencoder import LDMResnetBlock, Resample, conv_flops, group_norm_32


class AttnBlock(nn.Module):
    """Single-head spatial attention with separate q, k, v 1x1 convs (unlike VAR's fused qkv)."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm = group_norm_32(ch)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(ch, ch, 1) for _ in range(4))

    @staticmethod
    def matmul_flops(x: torch.Tensor) -> float:
        """q·k and weights·v over the H·W positions (the 1x1 convs are counted as convolutions)."""
        B, C, H, W = x.shape
        return 2.0 * 2 * B * (H * W) ** 2 * C

    def forward(self, x):
        B, C, H, W = x.shape
        h = self.norm(x)
        q, k, v = (m(h).reshape(B, C, H * W) for m in (self.q, self.k, self.v))
        w = torch.bmm(q.transpose(1, 2), k).mul(C ** -0.5).softmax(dim=2)
        return x + self.proj_out(torch.bmm(v, w.transpose(1, 2)).reshape(B, C, H, W))


class _Level(nn.Module):
    def __init__(self, blocks, attns):
        super().__init__()
        self.res, self.attn = nn.ModuleList(blocks), nn.ModuleList(attns)

    def forward(self, h):
        for i, b in enumerate(self.res):
            h = b(h)
            if len(self.attn):
                h = self.attn[i](h)
        return h


class VQEncoder(nn.Module):
    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, z_channels: int):
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        self.conv_blocks = nn.ModuleList()
        cin, last = ch, len(ch_mult) - 1
        for i, mult in enumerate(ch_mult):
            blocks, attns = [], []
            for _ in range(num_res_blocks):
                blocks.append(LDMResnetBlock(cin, ch * mult))
                cin = ch * mult
                if i == last:
                    attns.append(AttnBlock(cin))
            level = _Level(blocks, attns)
            if i != last:
                level.downsample = Resample(cin, down=True)
            self.conv_blocks.append(level)
        self.mid = nn.ModuleList([LDMResnetBlock(cin, cin), AttnBlock(cin), LDMResnetBlock(cin, cin)])
        self.norm_out, self.conv_out = group_norm_32(cin), nn.Conv2d(cin, z_channels, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for level in self.conv_blocks:
            h = level(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        for m in self.mid:
            h = m(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VQDecoder(nn.Module):
    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, z_channels: int):
        super().__init__()
        last = len(ch_mult) - 1
        cin = ch * ch_mult[last]
        self.conv_in = nn.Conv2d(z_channels, cin, 3, padding=1)
        self.mid = nn.ModuleList([LDMResnetBlock(cin, cin), AttnBlock(cin), LDMResnetBlock(cin, cin)])
        self.conv_blocks = nn.ModuleList()  # lowest resolution first (appended, not prepended)
        for i in reversed(range(len(ch_mult))):
            blocks, attns = [], []
            for _ in range(num_res_blocks + 1):
                blocks.append(LDMResnetBlock(cin, ch * ch_mult[i]))
                cin = ch * ch_mult[i]
                if i == last:
                    attns.append(AttnBlock(cin))
            level = _Level(blocks, attns)
            if i != 0:
                level.upsample = Resample(cin, down=False)
            self.conv_blocks.append(level)
        self.norm_out, self.conv_out = group_norm_32(cin), nn.Conv2d(cin, 3, 3, padding=1)

    def forward(self, z):
        h = self.conv_in(z)
        for m in self.mid:
            h = m(h)
        for level in self.conv_blocks:
            h = level(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


@dataclass
class VQGANConfig:
    codebook_size: int = 16384
    codebook_embed_dim: int = 8
    z_channels: int = 256
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    decoder_ch_mult: tuple[int, ...] | None = None
    num_res_blocks: int = 2
    image_size: int = 256
    codebook_l2_norm: bool = True  # every released tokenizer; off: nearest raw code vector

    @property
    def grid(self) -> int:
        return self.image_size // 2 ** (len(self.ch_mult) - 1)


class _Codebook(nn.Module):
    def __init__(self, n: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(n, dim)  # the files' `codebook_used` usage log is not needed to sample


class VQGAN(nn.Module):
    """LlamaGen's VQ tokenizer; duck-types the shared `VQTokenizer` (images in [0, 1] at the edges)."""

    def __init__(self, config: VQGANConfig):
        super().__init__()
        c = self.config = config
        self.encoder = VQEncoder(c.ch, c.ch_mult, c.num_res_blocks, c.z_channels)
        self.decoder = VQDecoder(c.ch, c.decoder_ch_mult or c.ch_mult, c.num_res_blocks, c.z_channels)
        self.quantize = _Codebook(c.codebook_size, c.codebook_embed_dim)
        self.quant_conv = nn.Conv2d(c.z_channels, c.codebook_embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(c.codebook_embed_dim, c.z_channels, 1)

    @property
    def grid(self) -> int:
        return self.config.grid

    @property
    def num_tokens(self) -> int:
        return self.grid * self.grid

    def codebook(self) -> torch.Tensor:
        book = self.quantize.embedding.weight
        return F.normalize(book, p=2, dim=-1) if self.config.codebook_l2_norm else book

    def latent_signed(self, x: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.encoder(x))

    def quantize_latent(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [B,E,g,g] -> (codes [B*g*g] raster order per image, quantised latent z + (z_q - z))."""
        zn = z.permute(0, 2, 3, 1)
        if self.config.codebook_l2_norm:
            zn = F.normalize(zn, p=2, dim=-1)
        flat = zn.reshape(-1, zn.shape[-1])
        book = self.codebook()
        d = flat.pow(2).sum(1, keepdim=True) + book.pow(2).sum(1) - 2 * flat @ book.t()
        codes = d.argmin(1)
        zq = book[codes].view(zn.shape)
        return codes, (zn + (zq - zn)).permute(0, 3, 1, 2)

    def decode_signed(self, quant: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quant))  # not clamped, as upstream

    def decode_code_signed(self, codes: torch.Tensor) -> torch.Tensor:
        g = self.grid
        zq = self.codebook()[codes.reshape(-1, g, g).long()].permute(0, 3, 1, 2)
        return self.decode_signed(zq)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        codes, _ = self.quantize_latent(self.latent_signed(images * 2 - 1))
        return codes.view(images.shape[0], -1)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return ((self.decode_code_signed(codes) + 1) / 2).clamp(0, 1)

    def decode_flops(self, rows: int = 1) -> float:
        return rows * conv_flops(nn.Sequential(self.post_quant_conv, self.decoder),
                                  (1, self.config.codebook_embed_dim, self.grid, self.grid))
