"""Infinity's tokenizer: a Flux-style conv autoencoder with multi-scale binary spherical quantisation (BSQ).

Facts this module reproduces (see shared/methods/MODELS.md §2.2):
- every conv and norm sits inside a wrapper (`conv1.conv.weight`, `norm1.norm.weight`), which is why the
  released key names have those extra segments; GroupNorm(32 or 24, eps 1e-6), swish, no attention;
- the encoder downsamples (pad right/bottom by one, 3x3 stride-2 conv) at levels i < log2(patch_size);
  the decoder upsamples (nearest x2, conv) at levels 1 <= i <= log2(patch_size), and has one more
  res block per level than the encoder;
- there is no quant_conv: the decoder consumes the summed codes directly;
- BSQ: a latent vector is l2-normalised and each channel becomes sign/sqrt(d); the bit is 1 where the
  channel is positive. A bit tensor [..., d] decodes to codes +-1/sqrt(d);
- multi-scale encoding works on a [B, d, 1, H, W] latent: per scale, `area`-downsample the residual,
  quantise, `trilinear`-upsample back and subtract. Generation accumulates the same way (trilinear).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from arscale.errors import ArscaleError


class WrappedConv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class WrappedGroupNorm(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        if channels % 32 == 0:
            groups = 32
        elif channels % 24 == 0:
            groups = 24
        else:
            raise ArscaleError(f"BSQ-VAE channel counts must be multiples of 32 or 24, got {channels}")
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1, self.conv1 = WrappedGroupNorm(cin), WrappedConv(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = WrappedGroupNorm(cout), WrappedConv(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = WrappedConv(cin, cout, 1)
        self.shortcut = cin != cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if self.shortcut else x) + h


class Downsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = WrappedConv(ch, ch, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = WrappedConv(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class _Level(nn.Module):
    """One resolution level; attribute names follow the released keys (`down.i.block.j`, `up.i.upsample`)."""

    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.block = nn.ModuleList(blocks)


class _Mid(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.block_1, self.block_2 = ResBlock(ch, ch), ResBlock(ch, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.block_1(x))


class BSQEncoder(nn.Module):
    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, z_channels: int, patch_size: int):
        super().__init__()
        max_down = math.log2(patch_size)
        self.conv_in = WrappedConv(3, ch, 3, padding=1)
        self.down = nn.ModuleList()
        cin = ch
        for i, mult in enumerate(ch_mult):
            blocks = []
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(cin, ch * mult))
                cin = ch * mult
            level = _Level(blocks)
            if i < max_down:
                level.downsample = Downsample(cin)
            self.down.append(level)
        self.mid = _Mid(cin)
        self.norm_out = WrappedGroupNorm(cin)
        self.conv_out = WrappedConv(cin, z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            for block in level.block:
                h = block(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class BSQDecoder(nn.Module):
    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, z_channels: int, patch_size: int):
        super().__init__()
        max_up = math.log2(patch_size)
        cin = ch * ch_mult[-1]
        self.conv_in = WrappedConv(z_channels, cin, 3, padding=1)
        self.mid = _Mid(cin)
        levels: list[_Level] = []
        for i in reversed(range(len(ch_mult))):
            blocks = []
            for _ in range(num_res_blocks + 1):
                blocks.append(ResBlock(cin, ch * ch_mult[i]))
                cin = ch * ch_mult[i]
            level = _Level(blocks)
            if 1 <= i <= max_up:
                level.upsample = Upsample(cin)
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.norm_out = WrappedGroupNorm(cin)
        self.conv_out = WrappedConv(cin, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            for block in level.block:
                h = block(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def bits_to_codes(bits: torch.Tensor) -> torch.Tensor:
    """Bit labels [B, 1, h, w, d] (or [B, h, w, d]) -> codes [B, d, 1, h, w] with values +-1/sqrt(d)."""
    if bits.dim() == 4:
        bits = bits.unsqueeze(1)
    d = bits.shape[-1]
    scale = 1 / math.sqrt(d)
    codes = bits.float() * scale * 2 - scale
    codes = F.normalize(codes, dim=-1)  # upstream normalises again; a no-op up to rounding, kept for parity
    return codes.permute(0, 4, 1, 2, 3)


def quantize(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BSQ of a [B, d, 1, h, w] latent: (codes of the same shape, bits [B, 1, h, w, d])."""
    x = F.normalize(z.permute(0, 2, 3, 4, 1), dim=-1)
    zhat = torch.where(x > 0, 1.0, -1.0) / math.sqrt(x.shape[-1])
    # Upstream's straight-through form x + (zhat - x); same value up to one rounding, kept for parity.
    q = x + (zhat - x)
    return q.permute(0, 4, 1, 2, 3), (q > 0).to(torch.int64)


class BSQAutoEncoder(nn.Module):
    """Encoder + decoder of Infinity's BSQ-VAE with the multi-scale bit (de)quantiser."""

    def __init__(self, *, codebook_dim: int = 32, base_ch: int = 128, ch_mult: Sequence[int] = (1, 2, 4, 4, 4),
                 decoder_ch_mult: Sequence[int] | None = None, num_res_blocks: int = 2, patch_size: int = 16):
        super().__init__()
        self.codebook_dim, self.patch_size = codebook_dim, patch_size
        self.arch = {"codebook_dim": codebook_dim, "base_ch": base_ch, "ch_mult": tuple(ch_mult),
                     "decoder_ch_mult": tuple(decoder_ch_mult or ch_mult), "num_res_blocks": num_res_blocks,
                     "patch_size": patch_size}
        self._decode_flops: dict[tuple[int, int], float] = {}
        self.encoder = BSQEncoder(base_ch, ch_mult, num_res_blocks, codebook_dim, patch_size)
        self.decoder = BSQDecoder(base_ch, decoder_ch_mult or ch_mult, num_res_blocks, codebook_dim, patch_size)

    # -- multi-scale bits ----------------------------------------------------------------------------
    def encode(self, img: torch.Tensor, schedule: Sequence[Sequence[int]]):
        """img [B,3,H,W] in [-1,1] -> (h features [B,d,h,w], z quantised [B,d,h,w], bits per scale [B,1,h,w,d])."""
        h = self.encoder(img).float()
        residual = h.unsqueeze(2)
        full = tuple(residual.shape[2:])
        z = torch.zeros_like(residual)
        bits = []
        for t, ph, pw in schedule:
            size = (t, ph, pw)
            r = residual if size == full else F.interpolate(residual, size=size, mode="area")
            q, b = quantize(r)
            if size != full:
                q = F.interpolate(q, size=full, mode="trilinear")
            residual = residual - q
            z = z + q
            bits.append(b)
        return h, z.squeeze(2), bits

    @staticmethod
    def accumulate(summed: torch.Tensor | None, codes: torch.Tensor, final: Sequence[int], last: bool) -> torch.Tensor:
        """Add one scale's codes [B,d,1,h,w] into the running sum at the final size (the last scale as is)."""
        up = codes if last else F.interpolate(codes, size=tuple(final), mode="trilinear")
        return up if summed is None else summed + up

    def summed_codes(self, bits: Sequence[torch.Tensor], schedule: Sequence[Sequence[int]]) -> torch.Tensor:
        summed = None
        for b in bits:
            # decode_from_indices interpolates every scale, the last one too (a no-op resize)
            summed = self.accumulate(summed, bits_to_codes(b), schedule[-1], last=False)
        return summed

    def decode(self, summed: torch.Tensor) -> torch.Tensor:
        """Summed codes [B,d,1,h,w] or [B,d,h,w] -> image [B,3,H,W] clamped to [-1,1]."""
        if summed.dim() == 5:
            summed = summed.squeeze(2)
        # Upstream's summed codes are channels-last (trilinear resize of permuted codes) and its CPU convs follow
        # that layout. Early-scale latents are nearly constant, so the decoder's GroupNorms divide by a tiny
        # spread and amplify the layout's rounding differences to ~1e-4..1e-3: decode in the same layout.
        return self.decoder(summed.contiguous(memory_format=torch.channels_last)).clamp(-1, 1)


    def decode_flops(self, h: int, w: int) -> float:
        """2 x multiply-adds of the decoder's convolutions for one [d, h, w] latent (counted on the meta device)."""
        if (h, w) not in self._decode_flops:
            a = self.arch
            with torch.device("meta"):
                dec = BSQDecoder(a["base_ch"], a["decoder_ch_mult"], a["num_res_blocks"], a["codebook_dim"],
                                 a["patch_size"])
            total = 0.0

            def hook(mod, _inp, out):
                nonlocal total
                total += 2.0 * mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups * out.numel()

            handles = [m.register_forward_hook(hook) for m in dec.modules() if isinstance(m, nn.Conv2d)]
            with torch.no_grad():
                dec(torch.empty(1, a["codebook_dim"], h, w, device="meta"))
            for handle in handles:
                handle.remove()
            self._decode_flops[(h, w)] = total
        return self._decode_flops[(h, w)]


def autoencoder_from_config(cfg: dict) -> BSQAutoEncoder:
    """Build from the fixture/upstream argument namespace (base_ch, encoder_ch_mult, ...)."""
    return BSQAutoEncoder(
        codebook_dim=int(cfg["codebook_dim"]), base_ch=int(cfg["base_ch"]),
        ch_mult=list(cfg["encoder_ch_mult"]), decoder_ch_mult=list(cfg["decoder_ch_mult"]),
        num_res_blocks=int(cfg["num_res_blocks"]), patch_size=int(cfg["patch_size"]),
    )
