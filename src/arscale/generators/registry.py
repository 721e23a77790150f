"""Model registry: a name -> a loaded Generator. Modules are imported on first use."""

from __future__ import annotations

import importlib
import os
from typing import Any

from arscale.errors import ArscaleError

# name -> "module:factory"; each factory takes keyword options (device, weights path, ...).
MODELS: dict[str, str] = {
    "shapeworld-var": "arscale.generators.next_scale.shapeworld:load_shapeworld_var",
    "shapeworld-ar": "arscale.generators.next_token.shapeworld:load_shapeworld_ar",
    # Released checkpoints (weights=PATH_OR_HUB_ID; see docs/models.md), with the official sampling defaults.
    **{f"var-d{d}": f"arscale.generators.next_scale.var:load_var_d{d}" for d in (16, 20, 24, 30, 36)},
    "infinity-2b": "arscale.generators.next_scale.infinity:load_infinity_2b",
    **{f"llamagen-c2i-{s}": f"arscale.generators.next_token.llamagen:load_llamagen_c2i_{s.replace('-', '_')}"
       for s in ("b", "l", "l-384", "xl", "xxl", "3b")},
    "llamagen-t2i-xl": "arscale.generators.next_token.llamagen:load_llamagen_t2i_xl",
}


# The environment variable each released family's factory reads when it is given no weights.
WEIGHTS_ENV = {"var-d": "ARSCALE_VAR_WEIGHTS", "infinity-": "ARSCALE_INFINITY_WEIGHTS",
               "llamagen-c2i-": "ARSCALE_LLAMAGEN_WEIGHTS", "llamagen-t2i-": "ARSCALE_LLAMAGEN_T2I_WEIGHTS"}


def weights_from_environment(name: str) -> str | None:
    """Where a released model's weights are when only its environment variable names them."""
    for prefix, variable in WEIGHTS_ENV.items():
        if name.startswith(prefix):
            return os.environ.get(variable) or None
    return None


def load_generator(name: str, **options: Any) -> Any:
    if name not in MODELS:
        raise ArscaleError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    module, fn = MODELS[name].split(":")
    return getattr(importlib.import_module(module), fn)(**options)
