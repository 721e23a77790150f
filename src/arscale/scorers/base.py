"""The scorer interface and registry. Real scorers and the ShapeWorld ones share it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from arscale.errors import ArscaleError
from arscale.registry import check_registration, resolve_target


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


# name -> "module:factory" or a factory; each factory takes keyword options (`device` always, weights
# path, ...) and returns a `Scorer`.
SCORERS: dict[str, Any] = {
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


def register_scorer(name: str, target: Any, *, replace: bool = False) -> None:
    """Make a scorer available by name (`load_scorer`, `--scorer`, strategy configs' `reward` / `features`).

    `target` is a factory (or "module:factory") called as `factory(device=..., **options)` that returns a
    `Scorer`: `name`, `input_size`, and `reward` and/or `features` (docs/extending.md)."""
    check_registration(SCORERS, name, target, "scorer", replace)
    SCORERS[name] = target


def load_scorer(name: str, **options: Any) -> Scorer:
    if name not in SCORERS:
        raise ArscaleError(f"unknown scorer {name!r}; choose from {', '.join(SCORERS)}")
    scorer = resolve_target(SCORERS[name], f"scorer {name!r}:")(**options)
    missing = [a for a in ("name", "input_size") if not hasattr(scorer, a)]
    if missing or not (callable(getattr(scorer, "reward", None)) or callable(getattr(scorer, "features", None))):
        raise ArscaleError(f"scorer {name!r} returned {type(scorer).__name__}, which is not a Scorer (it needs "
                           f"`name`, `input_size` and `reward` or `features`; missing {missing or 'both methods'})")
    return scorer
