"""CLIP-similarity rewards on transformers' `CLIPModel`: CLIPScore and PickScore.

Both embed the image and the prompt, L2-normalise, and scale the cosine:

- `clip` — CLIPScore as torchmetrics defines it: `max(100 * cos, 0)`, default weights
  `openai/clip-vit-large-patch14`.
- `pickscore` — PickScore v1 as its model card computes it: `logit_scale.exp() * cos` (≈ 100·cos,
  the logit a softmax over candidates would use; no clamp), weights `yuvalkirstain/PickScore_v1`
  with the tokenizer of `laion/CLIP-ViT-H-14-laion2B-s32B-b79K` (its processor).

Preprocessing is the CLIP processor's: bicubic resize of the shorter side to 224, centre crop with the
offsets floored (`CLIPImageProcessor`, not torchvision's rounding), CLIP mean/std. Prompts are truncated at
the text tower's 77 positions keeping the end-of-text token (`truncation=True`, PickScore's card);
torchmetrics instead cuts the ids at 77, which drops that token, so prompts past 77 tokens score
differently there. Each image's score is clamped at 0 (the CLIPScore paper); torchmetrics clamps the mean.
`features(images)` returns the L2-normalised image embeddings [B, projection_dim].
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch.nn import functional as F

from arscale.scorers.base import scorer_repr
from arscale.scorers.hf import (
    as_dtype,
    check_batching,
    check_prompts,
    from_pretrained,
    in_chunks,
    require_transformers,
)
from arscale.scorers.preprocess import CLIP_MEAN, CLIP_STD, ImageTransform, check_images

CLIP_WEIGHTS = "openai/clip-vit-large-patch14"
PICKSCORE_WEIGHTS = "yuvalkirstain/PickScore_v1"
PICKSCORE_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"


class ClipSimilarityScorer:
    """`scale * cos(image, prompt)`; `scale=None` uses the model's own `logit_scale.exp()`."""

    resizes_itself = True  # any size: its own preprocessing brings it to input_size
    __repr__ = scorer_repr

    def __init__(self, model: Any, tokenizer: Any, *, name: str = "clip", scale: float | None = 100.0,
                 clamp_at_zero: bool = True, device: str | torch.device = "cpu",
                 dtype: str | torch.dtype | None = None, batch_size: int = 32, backend: str = "torch"):
        self.name = name
        self.dtype = as_dtype(dtype)
        self.device = torch.device(device)
        self.model = model.eval().requires_grad_(False).to(self.device, self.dtype)
        self.tokenizer = tokenizer
        self.scale = scale
        self.clamp_at_zero = clamp_at_zero
        self.batch_size = batch_size
        self.input_size = int(model.config.vision_config.image_size)
        self.max_tokens = int(model.config.text_config.max_position_embeddings)
        # transformers' CLIPImageProcessor (torchmetrics' CLIPScore, PickScore's card) floors the crop offsets
        self.transform = ImageTransform(self.input_size, CLIP_MEAN, CLIP_STD, "bicubic", fit="crop", backend=backend,
                                        crop_offsets="floor")

    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        pixels = self.transform(images.to(self.device)).to(self.dtype)
        pooled = self.model.vision_model(pixel_values=pixels).pooler_output
        return F.normalize(self.model.visual_projection(pooled).float(), dim=-1)

    def text_embeddings(self, prompts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(prompts), padding=True, truncation=True, max_length=self.max_tokens,
                                return_tensors="pt")
        pooled = self.model.text_model(input_ids=tokens["input_ids"].to(self.device),
                                       attention_mask=tokens["attention_mask"].to(self.device)).pooler_output
        return F.normalize(self.model.text_projection(pooled).float(), dim=-1)

    def logit_scale(self) -> float:
        return float(self.model.logit_scale.float().exp()) if self.scale is None else float(self.scale)

    @torch.no_grad()
    def reward(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        images = check_images(images)
        prompts = check_prompts(prompts, len(images))

        def run(imgs: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
            cos = (self.image_embeddings(imgs) * self.text_embeddings(texts)).sum(-1)
            score = self.logit_scale() * cos
            return (score.clamp_min(0.0) if self.clamp_at_zero else score).cpu()

        return in_chunks(run, self.batch_size, images, prompts)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        images = check_images(images)
        return in_chunks(lambda imgs: self.image_embeddings(imgs).cpu(), self.batch_size, images)


def _load(weights: str | os.PathLike, tokenizer: str | os.PathLike, what: str) -> tuple[Any, Any]:
    transformers = require_transformers()
    model = from_pretrained(transformers.CLIPModel, weights, what=what)
    tok = from_pretrained(transformers.AutoTokenizer, tokenizer, what=f"{what} tokenizer")
    return model, tok


def load_clip(weights: str | os.PathLike = CLIP_WEIGHTS, *, tokenizer: str | os.PathLike | None = None,
              device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None,
              batch_size: int = 32, backend: str = "torch") -> ClipSimilarityScorer:
    """CLIPScore (torchmetrics definition). `weights`: a CLIPModel directory or hub id."""
    check_batching(batch_size, backend)
    model, tok = _load(weights, tokenizer or weights, "CLIP model")
    return ClipSimilarityScorer(model, tok, name="clip", scale=100.0, clamp_at_zero=True, device=device,
                                dtype=dtype, batch_size=batch_size, backend=backend)


def load_pickscore(weights: str | os.PathLike = PICKSCORE_WEIGHTS, *,
                   tokenizer: str | os.PathLike = PICKSCORE_PROCESSOR, device: str | torch.device = "cpu",
                   dtype: str | torch.dtype | None = None, batch_size: int = 32,
                   backend: str = "torch") -> ClipSimilarityScorer:
    """PickScore v1 (model-card definition, `logit_scale.exp() * cos`)."""
    check_batching(batch_size, backend)
    model, tok = _load(weights, tokenizer, "PickScore model")
    return ClipSimilarityScorer(model, tok, name="pickscore", scale=None, clamp_at_zero=False, device=device,
                                dtype=dtype, batch_size=batch_size, backend=backend)
