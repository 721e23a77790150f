"""DINOv2-with-registers patch features for TTS-VAR's clustering step.

TTS-VAR (`extract_k_ids`) runs `dinov2_vitl14_reg` from torch.hub on the intermediate decodes: PIL
bilinear (antialiased) resize to 224×224 with **no crop**, ImageNet mean/std, and takes
`x_norm_patchtokens`. Here the same network comes from transformers
(`Dinov2WithRegistersModel`, `facebook/dinov2-with-registers-large`), whose `last_hidden_state` is
already final-LayerNormed and ordered [CLS, 4 registers, patches], so the patch tokens are
`last_hidden_state[:, 1 + num_registers:]`.

`features(images)` returns those patch tokens, **[B, (224/14)² = 256, 1024]** for ViT-L/14. The
reductions (per-image first principal component, joint PCA, mean pooling) belong to the clustering
code, not here. There is no reward: `reward()` raises.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from arscale.errors import ArscaleError
from arscale.scorers.base import scorer_repr
from arscale.scorers.hf import as_dtype, check_batching, from_pretrained, in_chunks, require_transformers
from arscale.scorers.preprocess import IMAGENET_MEAN, IMAGENET_STD, ImageTransform, check_images

WEIGHTS = "facebook/dinov2-with-registers-large"
INPUT_SIZE = 224  # TTS-VAR: patch_size(16) * 14, i.e. a 16×16 grid of 14-px patches


class Dinov2Features:
    name = "dinov2"
    resizes_itself = True  # any size: its own preprocessing brings it to input_size
    __repr__ = scorer_repr

    def __init__(self, model: Any, *, input_size: int = INPUT_SIZE, device: str | torch.device = "cpu",
                 dtype: str | torch.dtype | None = None, batch_size: int = 32, backend: str = "torch"):
        patch = int(model.config.patch_size)
        if input_size % patch:
            raise ArscaleError(f"input_size {input_size} is not a multiple of the DINOv2 patch size {patch}")
        self.dtype = as_dtype(dtype)
        self.device = torch.device(device)
        self.model = model.eval().requires_grad_(False).to(self.device, self.dtype)
        self.num_registers = int(getattr(model.config, "num_register_tokens", 0))
        self.batch_size = batch_size
        self.input_size = input_size
        self.grid = input_size // patch
        self.transform = ImageTransform(input_size, IMAGENET_MEAN, IMAGENET_STD, "bilinear", fit="stretch",
                                        backend=backend)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Patch tokens [B, grid², hidden] (grid = input_size / patch_size), float32 on the CPU."""
        images = check_images(images)

        def run(imgs: torch.Tensor) -> torch.Tensor:
            pixels = self.transform(imgs.to(self.device)).to(self.dtype)
            # the model's position embeddings are interpolated when input_size differs from its config
            tokens = self.model(pixel_values=pixels).last_hidden_state
            return tokens[:, 1 + self.num_registers:].float().cpu()

        return in_chunks(run, self.batch_size, images)

    def reward(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        raise ArscaleError("dinov2 is a feature extractor for clustering; pick a reward scorer such as imagereward")


def load_dinov2(weights: str | os.PathLike = WEIGHTS, *, input_size: int = INPUT_SIZE,
                device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None,
                batch_size: int = 32, backend: str = "torch") -> Dinov2Features:
    """`weights`: a `Dinov2WithRegistersModel` directory or hub id (plain `Dinov2Model` ids work too)."""
    check_batching(batch_size, backend)
    transformers = require_transformers()
    model = from_pretrained(transformers.AutoModel, weights, what="DINOv2 model")
    if not str(getattr(model.config, "model_type", "")).startswith("dinov2"):
        raise ArscaleError(f"{weights} holds a {model.config.model_type} model, not DINOv2 (e.g. "
                           f"{WEIGHTS})")
    return Dinov2Features(model, input_size=input_size, device=device, dtype=dtype, batch_size=batch_size,
                          backend=backend)
