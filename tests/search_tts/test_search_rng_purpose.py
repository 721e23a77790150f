"""Search.rng takes an int purpose, and says so in one line otherwise."""

from __future__ import annotations

import pytest
import torch
from tiny_families import BrightnessScorer, tiny_var

from arscale.errors import ArscaleError
from arscale.search.rollout import make_search


def test_search_rng_refuses_a_non_integer_purpose_in_one_line():
    """A plugin's `search.rng(p, "rerank")` is a one-line ArscaleError naming `purpose`, not a ValueError."""
    torch.manual_seed(0)
    search = make_search(tiny_var(), seed=0, prompt_offset=0, scorer=BrightnessScorer())
    assert isinstance(search.rng(0, 7), torch.Generator)  # the documented use with an int still works
    with pytest.raises(ArscaleError, match="purpose"):
        search.rng(0, "rerank")
