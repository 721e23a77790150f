"""Model registry: a name -> a loaded Generator. Modules are imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

from arscale.errors import ArscaleError

# name -> "module:factory"; each factory takes keyword options (device, weights path, ...).
MODELS: dict[str, str] = {
    "shapeworld-var": "arscale.generators.next_scale.shapeworld:load_shapeworld_var",
    "shapeworld-ar": "arscale.generators.next_token.shapeworld:load_shapeworld_ar",
}


def load_generator(name: str, **options: Any) -> Any:
    if name not in MODELS:
        raise ArscaleError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    module, fn = MODELS[name].split(":")
    return getattr(importlib.import_module(module), fn)(**options)
