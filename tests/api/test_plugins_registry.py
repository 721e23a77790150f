"""Plugin discovery and registry checks that a mutation audit found untested."""

from __future__ import annotations

import importlib
from importlib import metadata

import pytest

from arscale import plugins
from arscale.errors import ArscaleError
from arscale.search.base import STRATEGIES, register_strategy

MODULE = '''
calls = []


def register():
    calls.append("register")


class Thing:
    def __init__(self, required):
        calls.append("Thing called")
'''


@pytest.fixture
def module(tmp_path, monkeypatch):
    name = f"audit_plugin_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module(name)


def _entry_points(monkeypatch, *eps):
    # only the documented group, spelt out: `[project.entry-points."arscale.plugins"]`
    monkeypatch.setattr(plugins.metadata, "entry_points",
                        lambda group: list(eps) if group == "arscale.plugins" else [])


def test_entry_points_are_read_from_the_documented_group_and_run_once(registries, module, monkeypatch):
    ep = metadata.EntryPoint("mine", f"{module.__name__}:register", "arscale.plugins")
    _entry_points(monkeypatch, ep)
    assert plugins.load_plugins() == [f"mine={module.__name__}:register"]
    assert plugins.load_plugins() == []  # loaded once per process
    assert module.calls == ["register"]


def test_an_entry_point_naming_a_class_is_not_called(registries, module, monkeypatch):
    ep = metadata.EntryPoint("cls", f"{module.__name__}:Thing", "arscale.plugins")
    _entry_points(monkeypatch, ep)
    assert plugins.load_plugins() == [f"cls={module.__name__}:Thing"]
    assert module.calls == []


def test_a_target_with_two_colons_is_refused_at_registration(registries):
    with pytest.raises(ArscaleError, match="'module:attribute'"):
        register_strategy("two-colons", "arscale.search.raw:Raw:extra")
    assert "two-colons" not in STRATEGIES


def test_plugin_modules_read_the_environment_given(monkeypatch):
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    assert plugins.plugin_modules({"ARSCALE_PLUGINS": " pkg.a ,, pkg.b "}) == ["pkg.a", "pkg.b"]
    monkeypatch.setenv(plugins.ENV_VAR, "pkg.c")
    assert plugins.plugin_modules({}) == [] and plugins.plugin_modules() == ["pkg.c"]
