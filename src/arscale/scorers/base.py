"""The scorer interface and registry. Real scorers and the ShapeWorld ones share it."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from arscale.errors import ArscaleError


@runtime_checkable
class Scorer(Protocol):
    name: str
    input_size: int  # images are decoded at this size for this scorer

    def reward(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        """images [B,3,H,W] float in [0,1] (H = W = input_size), one prompt per image -> [B] scores."""
        ...

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,3,H,W] float in [0,1] -> [B, ...] feature vectors or maps."""
        ...


# name -> "module:factory"; each factory takes keyword options (device, weights path, ...).
SCORERS: dict[str, str] = {
    "shapeworld-reward": "arscale.scorers.shapeworld:load_reward",
    "shapeworld-features": "arscale.scorers.shapeworld:load_features",
    # released models on transformers (pip install arscale[real]); see docs/scorers.md
    "imagereward": "arscale.scorers.imagereward:load_imagereward",
    "clip": "arscale.scorers.clip:load_clip",
    "pickscore": "arscale.scorers.clip:load_pickscore",
    "aesthetic": "arscale.scorers.aesthetic:load_aesthetic",
    "dinov2": "arscale.scorers.dinov2:load_dinov2",
    "hpsv2": "arscale.scorers.hpsv2:load_hpsv2",
}


def load_scorer(name: str, **options: Any) -> Scorer:
    if name not in SCORERS:
        raise ArscaleError(f"unknown scorer {name!r}; choose from {', '.join(SCORERS)}")
    module, fn = SCORERS[name].split(":")
    return getattr(importlib.import_module(module), fn)(**options)
