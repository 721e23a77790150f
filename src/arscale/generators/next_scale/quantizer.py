"""Multi-scale residual vector quantisation (VAR's algorithm).

Starting from the encoder latent f (full latent resolution H×W), for each scale pn in `patch_nums`:
  1. z = down(f_rest → pn×pn) (identity at the last scale when pn equals the latent size);
  2. idx = nearest codebook entry (Euclidean);
  3. h = up(codebook[idx] → H×W);
  4. h = φ(h), with φ chosen by the tick nearest to si/(K-1);
  5. f̂ += h, f_rest -= h.
The transformer's input for scale si+1 is down(f̂ → pn_{si+1}), both in teacher forcing and at inference.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from arscale.errors import ArscaleError


def resize(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Resize a [B,C,h,w] map to size×size; a no-op when it already has that size."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if mode == "area":
        return F.interpolate(x, size=(size, size), mode="area")
    if mode in ("bicubic", "bilinear"):
        return F.interpolate(x, size=(size, size), mode=mode, align_corners=False)
    if mode == "nearest":
        return F.interpolate(x, size=(size, size), mode="nearest")
    raise ArscaleError(f"unknown interpolation mode {mode!r}; use area, bicubic, bilinear or nearest")


class Phi(nn.Conv2d):
    """φ: a residual 3×3 conv mix, h·(1-r) + conv(h)·r."""

    def __init__(self, dim: int, ratio: float = 0.5):
        super().__init__(dim, dim, 3, padding=1)
        self.ratio = ratio

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return h.mul(1 - self.ratio) + super().forward(h).mul_(self.ratio)


def phi_ticks(num_phi: int) -> list[float]:
    """Positions in [0,1] of the shared φ convs (VAR: linspace(1/12, 11/12, 4) for four of them)."""
    if num_phi == 4:
        return torch.linspace(1 / 12, 11 / 12, 4).tolist()
    return torch.linspace(1 / (2 * num_phi), 1 - 1 / (2 * num_phi), num_phi).tolist()


class MultiScaleResidualQuantizer(nn.Module):
    def __init__(self, vocab_size: int, dim: int, patch_nums: Sequence[int], *, num_phi: int = 4,
                 phi_ratio: float = 0.5, down_mode: str = "area", up_mode: str = "bicubic", beta: float = 0.25,
                 using_znorm: bool = False):
        super().__init__()
        self.using_znorm = using_znorm  # VAR's option: nearest code by cosine similarity instead of L2
        self.vocab_size, self.dim = vocab_size, dim
        self.patch_nums = tuple(int(p) for p in patch_nums)
        if list(self.patch_nums) != sorted(set(self.patch_nums)) or self.patch_nums[0] < 1:
            raise ArscaleError(f"patch_nums must be strictly increasing positive sizes, got {self.patch_nums}")
        self.down_mode, self.up_mode, self.beta = down_mode, up_mode, beta
        self.embedding = nn.Embedding(vocab_size, dim)
        nn.init.uniform_(self.embedding.weight, -1 / vocab_size, 1 / vocab_size)
        self.last_residuals: torch.Tensor | None = None
        self.phis = nn.ModuleList([Phi(dim, phi_ratio) for _ in range(num_phi)])
        K = len(self.patch_nums)
        ticks = phi_ticks(num_phi) if num_phi else []
        # si -> index of the φ whose tick is nearest si/(K-1)
        self.phi_for_scale = [
            min(range(num_phi), key=lambda j: abs(ticks[j] - (si / (K - 1) if K > 1 else 1.0))) if num_phi else -1
            for si in range(K)
        ]

    @property
    def num_scales(self) -> int:
        return len(self.patch_nums)

    @property
    def latent_size(self) -> int:
        return self.patch_nums[-1]

    def phi(self, si: int, h: torch.Tensor) -> torch.Tensor:
        j = self.phi_for_scale[si]
        return h if j < 0 else self.phis[j](h)

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """Squared Euclidean distance of every vector of z [B,C,h,w] to every code -> [B·h·w, V]."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        e = self.embedding.weight
        return flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)[None]

    def lookup(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest code index for each vector of z [B,C,h,w] -> [B,h,w]."""
        B, C, h, w = z.shape
        if self.using_znorm:
            flat = F.normalize(z.permute(0, 2, 3, 1).reshape(-1, C), dim=-1)
            return (flat @ F.normalize(self.embedding.weight, dim=-1).t()).argmax(1).view(B, h, w)
        return self.distances(z).argmin(1).view(B, h, w)

    def embed_scale(self, si: int, idx: torch.Tensor) -> torch.Tensor:
        """The latent contribution of scale si's indices [B,pn,pn]: φ(up(codebook[idx]))."""
        h = self.embedding(idx).permute(0, 3, 1, 2)
        return self.phi(si, resize(h, self.latent_size, self.up_mode))

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """Quantise f [B,C,H,W]: straight-through f̂, per-scale indices, VQ loss (codebook + β·commitment)."""
        self._check_latent(f)
        f_no_grad = f.detach()
        f_rest = f_no_grad.clone()
        f_hat = torch.zeros_like(f_no_grad)
        indices, loss = [], f.new_zeros(())
        residuals = []
        for si, pn in enumerate(self.patch_nums):
            z = resize(f_rest, pn, self.down_mode)
            residuals.append(z.permute(0, 2, 3, 1).reshape(-1, self.dim))
            idx = self.lookup(z)
            h = self.embed_scale(si, idx)
            f_hat = f_hat + h
            f_rest = f_rest - h.detach()
            indices.append(idx)
            loss = loss + F.mse_loss(f_hat, f_no_grad) + self.beta * F.mse_loss(f_hat.detach(), f)
        self.last_residuals = torch.cat(residuals)  # the vectors a trainer may re-seed dead codes from
        f_st = f_hat.detach() - f.detach() + f  # straight-through gradient to the encoder
        # f̂'s own graph (codebook and φ) is kept through the loss; the decoder sees f_st.
        return f_st + (f_hat - f_hat.detach()), indices, loss / self.num_scales

    @torch.no_grad()
    def encode(self, f: torch.Tensor) -> list[torch.Tensor]:
        """Per-scale indices [B,pn,pn] of the latent f."""
        self._check_latent(f)
        f_rest, indices = f.clone(), []
        for si, pn in enumerate(self.patch_nums):
            idx = self.lookup(resize(f_rest, pn, self.down_mode))
            f_rest -= self.embed_scale(si, idx)
            indices.append(idx)
        return indices

    def indices_to_fhat(self, indices: Sequence[torch.Tensor]) -> torch.Tensor:
        """Accumulated latent Σ φ(up(e[idx_si])) over the given (possibly partial) list of scales."""
        f_hat = None
        for si, idx in enumerate(indices):
            h = self.embed_scale(si, idx)
            f_hat = h if f_hat is None else f_hat + h
        return f_hat

    def teacher_inputs(self, indices: Sequence[torch.Tensor]) -> torch.Tensor:
        """Transformer inputs for scales 1..K-1 from ground-truth indices: [B, L - 1, C]."""
        f_hat, out = None, []
        for si in range(self.num_scales - 1):
            h = self.embed_scale(si, indices[si])
            f_hat = h if f_hat is None else f_hat + h
            out.append(self.next_input(si, f_hat))
        return torch.cat(out, 1)

    def next_input(self, si: int, f_hat: torch.Tensor) -> torch.Tensor:
        """Input tokens for scale si+1 from the accumulated latent after scale si: [B, pn², C]."""
        pn = self.patch_nums[si + 1]
        return resize(f_hat, pn, self.down_mode).flatten(2).transpose(1, 2)

    def _check_latent(self, f: torch.Tensor) -> None:
        if f.shape[1] != self.dim or f.shape[-1] != self.latent_size or f.shape[-2] != self.latent_size:
            raise ArscaleError(f"latent of shape {tuple(f.shape[1:])} does not fit the quantizer "
                               f"(dim {self.dim}, last scale {self.latent_size}×{self.latent_size})")
