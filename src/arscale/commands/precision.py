"""`--dtype` and `--text-dtype` (generate and bench): the released models' `dtype=` / `text_dtype=` from the shell.

Given, an option goes to the loader as is; left out, the loader's default (fp32) holds and nothing about the run
changes, so a run without the options loads and records exactly what it did before they existed."""

from __future__ import annotations

import argparse
from typing import Any

from arscale.errors import ArscaleError

DTYPES = ("float32", "bfloat16", "float16")

# Which registered names each loader option belongs to, by name prefix: every released family sets its image
# transformer's dtype, only the text-to-image ones (those with a Flan-T5) their text encoder's. The shipped
# ShapeWorld models and plugin models are not listed: their loaders take neither.
TAKEN_BY = {"dtype": ("var-d", "infinity-", "llamagen-c2i-", "llamagen-t2i-"),
            "text_dtype": ("infinity-", "llamagen-t2i-")}


def add_precision_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dtype", default=None, choices=DTYPES,
                        help="the image transformer's precision (var-d*, infinity-2b, llamagen-*; default: float32). "
                             "Upstream Infinity and LlamaGen sample in bfloat16; the VAE / VQ decodes in float32")
    parser.add_argument("--text-dtype", default=None, choices=DTYPES,
                        help="the Flan-T5 text encoder's precision (infinity-2b, llamagen-t2i-xl; default: float32)")


def precision_options(model: str, dtype: str | None, text_dtype: str | None) -> dict[str, Any]:
    """The loader keywords for the options given (none: {}), refused in one line for a model whose loader does not
    take one, before anything is loaded or written."""
    options = {key: value for key, value in (("dtype", dtype), ("text_dtype", text_dtype)) if value is not None}
    for key in options:
        if not model.startswith(TAKEN_BY[key]):
            flag = "--" + key.replace("_", "-")
            raise ArscaleError(f"{flag} is for {_models_taking(key)}; {model} takes no {key}")
    return options


def _models_taking(key: str) -> str:
    """The registered models an option is for, a family of several names as its prefix and a star."""
    from arscale.generators.registry import MODELS

    named = []
    for prefix in TAKEN_BY[key]:
        family = [name for name in MODELS if name.startswith(prefix)]
        named.append(family[0] if len(family) == 1 else f"{prefix}*")
    return ", ".join(named)
