"""Convolutional autoencoder pieces.

- `Encoder` / `Decoder`: the small stack shared by the ShapeWorld tokenizers (next-scale and next-token).
- `LDMResnetBlock` / `Resample`: the LDM (taming) pieces that VAR's VQVAE and LlamaGen's VQGAN both build
  from, with the released key names (`norm1`, `conv1`, `nin_shortcut`, `downsample.conv`). The two stacks
  around them stay in `var.py` and `llamagen.py`: their released checkpoints lay the levels out differently
  (`down`/`up` with `block_1/attn_1/block_2` vs `conv_blocks` with an indexed `mid`) and VAR fuses the
  attention's q/k/v into one conv where LlamaGen keeps three.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


def _norm(ch: int) -> nn.GroupNorm:
    groups = min(32, ch // 4) if ch >= 8 else 1
    while ch % groups:  # a width such as 136: the largest group count below that divides it (shipped widths unchanged)
        groups -= 1
    return nn.GroupNorm(groups, ch, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Encoder(nn.Module):
    """Image [B,3,H,W] in [-1,1] -> latent [B,z,H/2^(n-1),W/2^(n-1)] for n = len(ch_mult)."""

    def __init__(self, z_channels: int, ch: int = 64, ch_mult: Sequence[int] = (1, 2, 2), num_res: int = 1):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, ch * ch_mult[0], 3, padding=1)]
        cin = ch * ch_mult[0]
        for i, m in enumerate(ch_mult):
            for _ in range(num_res):
                layers.append(ResBlock(cin, ch * m))
                cin = ch * m
            if i < len(ch_mult) - 1:
                layers.append(nn.Conv2d(cin, cin, 4, stride=2, padding=1))
        layers += [ResBlock(cin, cin), _norm(cin), nn.SiLU(), nn.Conv2d(cin, z_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Latent -> image [B,3,H,W] in [-1,1] (not clamped: the caller clamps for display)."""

    def __init__(self, z_channels: int, ch: int = 64, ch_mult: Sequence[int] = (1, 2, 2), num_res: int = 1):
        super().__init__()
        cin = ch * ch_mult[-1]
        layers: list[nn.Module] = [nn.Conv2d(z_channels, cin, 3, padding=1), ResBlock(cin, cin)]
        for i, m in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res):
                layers.append(ResBlock(cin, ch * m))
                cin = ch * m
            if i > 0:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cin, 3, padding=1)]
        layers += [_norm(cin), nn.SiLU(), nn.Conv2d(cin, 3, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def group_norm_32(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, ch, eps=1e-6)


class LDMResnetBlock(nn.Module):
    """GroupNorm(32) -> swish -> 3x3 conv, twice, plus a 1x1 `nin_shortcut` when the width changes."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1, self.conv1 = group_norm_32(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = group_norm_32(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return self.nin_shortcut(x) + self.conv2(F.silu(self.norm2(h)))


class Resample(nn.Module):
    """x2 down (pad right/bottom by one, 3x3 stride-2 conv) or x2 up (nearest, 3x3 conv)."""

    def __init__(self, ch: int, down: bool):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)) if self.down else F.interpolate(x, scale_factor=2.0, mode="nearest"))


def downsample_factor(ch_mult: Sequence[int]) -> int:
    return 2 ** (len(ch_mult) - 1)


def conv_flops(module: nn.Module, shape: tuple[int, ...]) -> float:
    """FLOPs of one forward on an input of `shape`: every convolution, and the matmuls of modules that report
    theirs (`matmul_flops(input)`, e.g. a decoder's spatial attention). The forward runs on the meta device (shapes
    only): a real one would be a whole decode at the image size, spent inside the first search's wall time."""
    total = 0.0

    def hook(mod, _inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total += 2.0 * k * out.numel()

    def matmul_hook(mod, inp, _out):
        nonlocal total
        total += float(mod.matmul_flops(inp[0]))

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d)]
    handles += [m.register_forward_hook(matmul_hook) for m in module.modules() if callable(getattr(m, "matmul_flops", None))]
    try:
        with torch.no_grad():
            p = next(module.parameters())
            meta = {name: torch.empty_like(t, device="meta")
                    for name, t in [*module.named_parameters(), *module.named_buffers()]}
            functional_call(module, meta, (torch.empty(shape, dtype=p.dtype, device="meta"),))
    finally:
        for h in handles:
            h.remove()
    return total
