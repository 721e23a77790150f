"""Named registries (strategies, scorers): entries are "module:attribute" strings, imported on first use so
a registry costs nothing, or the objects themselves (what third-party code registers)."""

from __future__ import annotations

import importlib
from typing import Any

from arscale.errors import ArscaleError


def resolve_target(target: Any, what: str) -> Any:
    """A registry entry: "module:attr" imported now, or the object itself."""
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ArscaleError(f"{what} {target!r} cannot be imported: {exc}") from exc


def check_registration(registry: dict[str, Any], name: str, target: Any, what: str, replace: bool) -> None:
    if not isinstance(name, str) or not name or any(ch.isspace() or ch in ",@" for ch in name):
        # bench run lists are comma-separated and `name@label` names a variant
        raise ArscaleError(f"a {what} name must be a non-empty string without spaces, commas or @, got {name!r}")
    if isinstance(target, str) and target.count(":") != 1:
        raise ArscaleError(f"a {what} target must be 'module:attribute' or the object itself, got {target!r}")
    if name in registry and registry[name] != target and not replace:
        raise ArscaleError(f"{what} {name!r} is already registered ({registry[name]!r}); pass replace=True to "
                           "override it")
