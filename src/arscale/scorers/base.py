"""The scorer interface and registry. Real scorers and the ShapeWorld ones share it."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.nn import functional as F

from arscale.devices import pick_device
from arscale.errors import ArscaleError
from arscale.registry import check_registration, resolve_target


@runtime_checkable
class Scorer(Protocol):
    name: str
    input_size: int  # images are decoded at this size for this scorer
    # Optional `resizes_itself = True`: the scorer brings any size to `input_size` with its own (upstream)
    # preprocessing, so finished images reach it at their own size rather than resized by arscale.

    def reward(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        """images [B,3,H,W] float in [0,1] (H = W = input_size, unless it resizes itself), one prompt per image
        -> [B] scores."""
        ...

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,3,H,W] float in [0,1] -> [B, ...] feature vectors or maps."""
        ...


def sized_for(scorer: Any, images: torch.Tensor) -> torch.Tensor:
    """Finished images as `scorer` takes them: at its `input_size` (antialiased bilinear), unless it
    `resizes_itself` with the preprocessing it was trained behind (the real scorers' bicubic and crop)."""
    size = int(scorer.input_size)
    if getattr(scorer, "resizes_itself", False) or tuple(images.shape[-2:]) == (size, size):
        return images
    return F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < images.shape[-1])


def images_for(scorer: Any, images: Any) -> torch.Tensor:
    """A result's uint8 images (`result.images`, a candidate's `.image`: one [H, W, 3] array, a list of them, or
    [B, H, W, 3]) as `scorer` takes them: float [B, 3, S, S] in [0, 1] at its `input_size`, resized as the
    strategies resize finished images (`sized_for`)."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images_for needs at least one image")
        images = np.stack([np.asarray(im) for im in images])
    pixels = torch.as_tensor(np.asarray(images))
    if pixels.dim() == 3:
        pixels = pixels[None]
    if pixels.dim() != 4 or pixels.shape[-1] != 3 or pixels.dtype != torch.uint8:
        raise TypeError(f"images_for takes uint8 [H, W, 3] images (one, a list, or [B, H, W, 3]), got "
                        f"{pixels.dtype} {list(pixels.shape)}")
    return sized_for(scorer, pixels.permute(0, 3, 1, 2).float() / 255)


def scorer_repr(scorer: Any) -> str:
    """A scorer as a notebook cell shows it: its name, input size, device and dtype (not the model's weights)."""
    parts = [f"name={getattr(scorer, 'name', type(scorer).__name__)!r}",
             f"input_size={getattr(scorer, 'input_size', None)}"]
    parts += [f"{k}={getattr(scorer, k)}" for k in ("device", "dtype") if hasattr(scorer, k)]
    return f"{type(scorer).__name__}({', '.join(parts)})"


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


def _check_options(name: str, factory: Callable[..., Any], options: dict[str, Any]) -> None:
    """Refuse a keyword the factory does not take, in one line (a factory taking **options checks its own)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins): the call itself will tell
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ArscaleError(f"scorer {name!r} takes no option {key!r}{hint}; it takes "
                               f"{', '.join(accepted) or 'no options'}")


def load_scorer(name: str, **options: Any) -> Scorer:
    """The scorer registered as `name`, loaded.

    `name`: shapeworld-reward and shapeworld-features (shipped, offline); imagereward, clip, pickscore,
    aesthetic, hpsv2 (rewards) and dinov2 (features), released models on transformers (docs/scorers.md),
    or one added with `register_scorer`. `options` go to its factory: `device=` ("cpu", "cuda", ...) always,
    `weights=` (a folder for the ShapeWorld ones, default the shipped weights; a file, folder or hub id for
    the released ones), and each factory's own (dtype, batch_size, ...). An option the factory does not
    take is refused in one line listing the ones it does."""
    if name not in SCORERS:
        raise ArscaleError(f"unknown scorer {name!r}; choose from {', '.join(SCORERS)}")
    factory = resolve_target(SCORERS[name], f"scorer {name!r}:")
    _check_options(name, factory, options)
    if options.get("device") is not None:  # a device this machine lacks fails now, not inside torch
        options["device"] = str(pick_device(str(options["device"]), make_current=False))
    with torch.random.fork_rng(devices=[]):  # a model's random init leaves the caller's torch stream alone
        scorer = factory(**options)
    missing = [a for a in ("name", "input_size") if not hasattr(scorer, a)]
    if missing or not (callable(getattr(scorer, "reward", None)) or callable(getattr(scorer, "features", None))):
        raise ArscaleError(f"scorer {name!r} returned {type(scorer).__name__}, which is not a Scorer (it needs "
                           f"`name`, `input_size` and `reward` or `features`; missing {missing or 'both methods'})")
    return scorer
