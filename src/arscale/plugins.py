"""Third-party strategies and scorers for the command line.

A plugin is a module that calls `register_strategy` / `register_scorer` when imported. The `arscale`
command imports, before it parses its arguments:
- every module named in `$ARSCALE_PLUGINS` (comma-separated, e.g. `ARSCALE_PLUGINS=my_pkg.tts`);
- every entry point of the group `arscale.plugins` of an installed package, e.g. in its pyproject.toml
  `[project.entry-points."arscale.plugins"] my_tts = "my_pkg.tts"`. An entry point naming a callable
  (`"my_pkg.tts:register"`) has it called.
From Python, calling `register_*` directly is enough. docs/extending.md has a worked example.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from importlib import metadata
from typing import Any

from arscale.errors import ArscaleError

ENV_VAR = "ARSCALE_PLUGINS"
ENTRY_POINT_GROUP = "arscale.plugins"

_loaded: set[str] = set()


def plugin_modules(environ: dict[str, str] | None = None) -> list[str]:
    value = (os.environ if environ is None else environ).get(ENV_VAR, "")
    return [m.strip() for m in value.split(",") if m.strip()]


def load_plugins(environ: dict[str, str] | None = None) -> list[str]:
    """Import the plugins named in $ARSCALE_PLUGINS and by installed entry points (each once); returns
    what was loaded now. A plugin that fails in any way is a one-line error naming it."""
    loaded = []
    for module in plugin_modules(environ):
        if module not in _loaded:
            _run(f"plugin {module!r} from ${ENV_VAR}", lambda module=module: importlib.import_module(module))
            _loaded.add(module)
            loaded.append(module)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = f"{ep.name}={ep.value}"
        if key in _loaded:
            continue
        where = f"plugin entry point {key!r} ({ep.dist.name if ep.dist else '?'})"
        obj = _run(where, ep.load)
        if callable(obj) and not isinstance(obj, type):  # a registration function; a module registered on import
            _run(where, obj)
        _loaded.add(key)
        loaded.append(key)
    return loaded


def _run(where: str, step: Callable[[], Any]) -> Any:
    try:
        return step()
    except ArscaleError as exc:
        raise ArscaleError(f"{where}: {exc}") from exc
    except Exception as exc:  # third-party code: any failure becomes one line naming it
        raise ArscaleError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
