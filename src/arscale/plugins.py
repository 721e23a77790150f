"""Third-party strategies and scorers for the command line.

A plugin is a module that calls `register_strategy` / `register_scorer` when imported. The `arscale`
command imports, before it parses its arguments:
- every module named in `$ARSCALE_PLUGINS` (comma-separated, e.g. `ARSCALE_PLUGINS=my_pkg.tts`);
- every entry point of the group `arscale.plugins` of an installed package, e.g. in its pyproject.toml
  `[project.entry-points."arscale.plugins"] my_tts = "my_pkg.tts"`. An entry point naming a function
  (`"my_pkg.tts:register"`) has that function called.
From Python, calling `register_*` directly is enough. docs/extending.md has a worked example.
"""

from __future__ import annotations

import importlib
import inspect
import os
from importlib import metadata

from arscale.errors import ArscaleError

ENV_VAR = "ARSCALE_PLUGINS"
ENTRY_POINT_GROUP = "arscale.plugins"

_loaded: set[str] = set()


def plugin_modules(environ: dict[str, str] | None = None) -> list[str]:
    value = (os.environ if environ is None else environ).get(ENV_VAR, "")
    return [m.strip() for m in value.split(",") if m.strip()]


def load_plugins(environ: dict[str, str] | None = None) -> list[str]:
    """Import the plugins named in $ARSCALE_PLUGINS and by installed entry points (each once); returns
    what was loaded now. A plugin that fails to import is a one-line error naming it."""
    loaded = []
    for module in plugin_modules(environ):
        if module in _loaded:
            continue
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ArscaleError(f"plugin {module!r} from ${ENV_VAR} cannot be imported: {exc}") from exc
        _loaded.add(module)
        loaded.append(module)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = f"{ep.name}={ep.value}"
        if key in _loaded:
            continue
        try:
            obj = ep.load()
        except ImportError as exc:
            raise ArscaleError(f"plugin entry point {key!r} ({ep.dist.name if ep.dist else '?'}) cannot be "
                               f"imported: {exc}") from exc
        if inspect.isfunction(obj):  # a registration function; a module registered itself on import
            obj()
        _loaded.add(key)
        loaded.append(key)
    return loaded
