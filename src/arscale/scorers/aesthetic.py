"""The LAION "improved aesthetic predictor": an MLP on CLIP ViT-L/14 image embeddings.

score = mlp(normalize(clip_image_embedding(image))), on roughly a 1-10 scale (higher is prettier). The
prompt is ignored. The MLP is 768->1024->128->64->16->1 with dropouts and no activations, the same
shape as ImageReward's head (keys `layers.{0,2,4,6,7}`), trained by christophschuhmann on
SAC + LOGOS + AVA ratings (`sac+logos+ava1-l14-linearMSE.pth`); the copy re-hosted for TRL's DDPO
example is `trl-lib/ddpo-aesthetic-predictor` / `aesthetic-model.pth` (the default here).

The image tower is `CLIPVisionModelWithProjection` from `openai/clip-vit-large-patch14`, with the
CLIP preprocessing (bicubic shorter side 224, centre crop, CLIP mean/std). `features(images)` returns
the normalised CLIP embeddings [B, 768] the MLP reads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch.nn import functional as F

from arscale.errors import ArscaleError
from arscale.scorers.base import scorer_repr
from arscale.scorers.hf import (
    as_dtype,
    check_batching,
    check_prompts,
    from_pretrained,
    hub_file,
    in_chunks,
    require_transformers,
)
from arscale.scorers.imagereward import RewardHead
from arscale.scorers.preprocess import CLIP_MEAN, CLIP_STD, ImageTransform, check_images

CLIP_WEIGHTS = "openai/clip-vit-large-patch14"
HEAD_REPO = "trl-lib/ddpo-aesthetic-predictor"
HEAD_FILENAME = "aesthetic-model.pth"


def load_head(path: str | os.PathLike, width: int = 768) -> RewardHead:
    """The MLP from its released file (`layers.N.weight` / `layers.N.bias`), strictly."""
    from arscale.generators.loading import load_strict, read_checkpoint, unwrap, upcast

    sd = unwrap(read_checkpoint(path), ("state_dict", "model"))
    stripped = {k.removeprefix("layers."): v for k, v in sd.items()}
    head = RewardHead(width)
    load_strict(head, upcast(stripped), what="aesthetic predictor head")
    return head


class AestheticScorer:
    name = "aesthetic"
    resizes_itself = True  # any size: its own preprocessing brings it to input_size
    __repr__ = scorer_repr
    reads_prompts = False  # an image-only score: a class-conditional model needs no class names for it

    def __init__(self, vision: Any, head: RewardHead, *, device: str | torch.device = "cpu",
                 dtype: str | torch.dtype | None = None, batch_size: int = 32, backend: str = "torch"):
        width = head[0].in_features
        if int(vision.config.projection_dim) != width:
            raise ArscaleError(f"the aesthetic head reads {width}-d embeddings but the CLIP tower projects to "
                               f"{vision.config.projection_dim}; use CLIP ViT-L/14")
        self.dtype = as_dtype(dtype)
        self.device = torch.device(device)
        self.vision = vision.eval().requires_grad_(False).to(self.device, self.dtype)
        self.head = head.eval().requires_grad_(False).to(self.device)  # tiny: kept in fp32
        self.batch_size = batch_size
        self.input_size = int(vision.config.image_size)
        self.transform = ImageTransform(self.input_size, CLIP_MEAN, CLIP_STD, "bicubic", fit="crop", backend=backend)

    def embeddings(self, images: torch.Tensor) -> torch.Tensor:
        pixels = self.transform(images.to(self.device)).to(self.dtype)
        return F.normalize(self.vision(pixel_values=pixels).image_embeds.float(), dim=-1)

    @torch.no_grad()
    def reward(self, images: torch.Tensor, prompts: Sequence[str] | None = None) -> torch.Tensor:
        """Aesthetic scores [B]; `prompts` are accepted for the common interface and ignored."""
        images = check_images(images)
        if prompts is not None:
            check_prompts(prompts, len(images), texts=False)
        return in_chunks(lambda imgs: self.head(self.embeddings(imgs)).squeeze(-1).cpu(), self.batch_size, images)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        images = check_images(images)
        return in_chunks(lambda imgs: self.embeddings(imgs).cpu(), self.batch_size, images)


def load_aesthetic(weights: str | os.PathLike = HEAD_REPO, *, clip: str | os.PathLike = CLIP_WEIGHTS,
                   device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None,
                   batch_size: int = 32, backend: str = "torch") -> AestheticScorer:
    """`weights`: the head file (or a directory / hub repo holding `aesthetic-model.pth`); `clip`: the tower."""
    check_batching(batch_size, backend)
    transformers = require_transformers()
    head = load_head(hub_file(weights, HEAD_FILENAME, what="aesthetic predictor head"))
    vision = from_pretrained(transformers.CLIPVisionModelWithProjection, clip, what="CLIP ViT-L/14 image tower")
    return AestheticScorer(vision, head, device=device, dtype=dtype, batch_size=batch_size, backend=backend)
