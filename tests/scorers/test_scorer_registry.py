"""Audit (mutation testing) of arscale.scorers.base: the registry's refusals."""

from __future__ import annotations

import pytest

from arscale.errors import ArscaleError
from arscale.scorers.base import SCORERS, load_scorer


def test_an_unknown_scorer_name_lists_the_known_ones():
    with pytest.raises(ArscaleError, match="unknown scorer 'imagerewards'; choose from shapeworld-reward"):
        load_scorer("imagerewards")


class _NoSize:
    name = "no-size"

    def reward(self, images, prompts):
        return images.new_zeros(len(images))


class _NoMethods:
    name = "no-methods"
    input_size = 8


def _no_size(device="cpu"):
    return _NoSize()


def _no_methods(device="cpu"):
    return _NoMethods()


@pytest.mark.parametrize("factory, missing", [(_no_size, r"\['input_size'\]"), (_no_methods, "both methods")])
def test_a_factory_returning_a_non_scorer_is_refused(monkeypatch, factory, missing):
    monkeypatch.setitem(SCORERS, "audit-broken", factory)
    with pytest.raises(ArscaleError, match=f"not a Scorer .*missing {missing}"):
        load_scorer("audit-broken")
