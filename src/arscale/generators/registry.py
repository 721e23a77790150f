"""Model registry: a name -> a loaded Generator. Modules are imported on first use."""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from arscale.devices import pick_device
from arscale.errors import ArscaleError
from arscale.registry import resolve_target

# name -> "module:factory" (a plugin may give the factory itself); each factory takes keyword options (device,
# weights path, ...).
MODELS: dict[str, str | Callable[..., Any]] = {
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


def check_options(model: str, options: Mapping[str, Any], sampling: Iterable[str],
                  others: Iterable[str] = ("device", "weights")) -> None:
    """Refuse a keyword a model's loader does not take, in one line: the option, the nearest known one, and
    the known ones (a loader's own options, then the fields of its sampling config)."""
    sampling, others = list(sampling), list(others)
    known = others + sampling
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            takes = f"{', '.join(others)} and " if others else ""
            raise ArscaleError(f"{model}: unknown option {key!r}{hint}; it takes {takes}the sampling options "
                               f"{', '.join(sampling)}")


def model_kind(name: str) -> str | None:
    """"scale" or "token" for a registered next-scale or next-token model, without loading it; None where its
    module does not say (a plugin's)."""
    entry = MODELS.get(name, "")
    module = entry.split(":")[0] if isinstance(entry, str) else getattr(entry, "__module__", "") or ""
    return "scale" if ".next_scale." in module else "token" if ".next_token." in module else None


def load_generator(name: str, **options: Any) -> Any:
    """The generator registered as `name`, loaded and ready for a strategy's `run`.

    `name`: shapeworld-var (next-scale) and shapeworld-ar (next-token), the small models shipped with the
    package; var-d16 ... var-d36, infinity-2b, llamagen-c2i-* and llamagen-t2i-xl, released checkpoints
    whose files you download (docs/models.md). `options` go to the model's loader: `device=` ("cpu",
    "cuda", ...), `weights=` (a weights folder for the ShapeWorld models, default the shipped one; a file,
    folder or hub id for the released ones, default from their environment variable), and sampling
    overrides of the model's defaults, e.g. `cfg=` (guidance scale), `temperature=`, `top_k=`, `top_p=`.
    An option the ShapeWorld models do not take is refused in one line listing the ones they do."""
    if name not in MODELS:
        raise ArscaleError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    factory = resolve_target(MODELS[name], f"model {name!r}:")
    if options.get("device") is not None:  # a device this machine lacks fails now, not after the model is built
        options["device"] = str(pick_device(str(options["device"]), make_current=False))
    try:  # a plugin's factory that lacks an option the command passes (--cfg, --weights): one line, not a traceback
        inspect.signature(factory).bind(**options)
    except TypeError as exc:
        raise ArscaleError(f"model {name!r}: its loader cannot take what it was given ({', '.join(options)}): "
                           f"{exc}") from None
    except ValueError:  # no signature to read (a builtin): the call says
        pass
    try:
        with torch.random.fork_rng(devices=[]):  # a model's random init leaves the caller's torch stream alone
            return factory(**options)
    except ArscaleError as exc:  # a path the user never typed: say where it came from
        given = {str(v) for v in options.values()}
        named = [f"${var}={os.environ[var]}" for var in (*WEIGHTS_ENV.values(), "ARSCALE_T5_WEIGHTS")
                 if os.environ.get(var) and os.environ[var] not in given and os.environ[var] in str(exc)]
        if named:
            raise ArscaleError(f"{exc} (the path comes from {', '.join(named)})") from exc
        raise
