"""Released-model settings refused before any weight file is read (found by an acceptance audit of issue 6).

Each test pins a gap found against the issue's deliverables: settings of the released models that are silently
accepted, or refused only after the multi-gigabyte weights have loaded."""

from __future__ import annotations

import math

import pytest
from tiny_families import fake_t5, tiny_llamagen

from arscale.errors import ArscaleError
from arscale.generators.next_scale.infinity import InfinitySampling
from arscale.generators.next_token.llamagen import LlamaGenGenerator
from arscale.generators.registry import load_generator


@pytest.mark.parametrize("option", [{"top_p": math.nan}, {"top_k": 2.5}, {"top_k": "900"}],
                         ids=["top_p=nan", "top_k=2.5", "top_k='900'"])
def test_infinity_top_k_and_top_p_are_checked_like_the_other_families(option, tmp_path):
    """Infinity refuses a top_k / top_p no sampler can use in one line, built directly or before its loader reads."""
    message = f"Infinity's {next(iter(option))} must be"  # not the name alone: tmp_path's folder name holds it too
    with pytest.raises(ArscaleError, match=message):
        InfinitySampling(**option)
    with pytest.raises(ArscaleError, match=message):  # an empty folder: refused for the option, not for the weights
        load_generator("infinity-2b", weights=str(tmp_path), text_encoder=fake_t5(128), **option)


@pytest.mark.parametrize("what", ["cfg", "tau"])
def test_infinity_per_scale_list_too_short_is_refused_before_any_file(what, tmp_path):
    """A cfg / tau list shorter than the 1M schedule's 13 scales fails on the list, not on the (absent) weights."""
    with pytest.raises(ArscaleError, match=f"{what} list has 7 entries for 13 scales"):
        load_generator("infinity-2b", weights=str(tmp_path), text_encoder=fake_t5(128), **{what: [0.5] * 7})


@pytest.mark.parametrize("value", [None, "10"], ids=["None", "str"])
def test_llamagen_cfg_interval_that_is_no_number_is_one_line(value, tmp_path):
    """cfg_interval=None / '10' is refused naming cfg_interval, by the generator and before the loader reads a file."""
    gen = tiny_llamagen()
    with pytest.raises(ArscaleError, match="cfg_interval must be a number"):
        LlamaGenGenerator(gen.gpt, gen.tokenizer, cfg=2.0, cfg_interval=value).generate([3], 1, seed=0)
    with pytest.raises(ArscaleError, match="cfg_interval must be a number"):  # its message, not tmp_path's name
        load_generator("llamagen-c2i-b", weights=str(tmp_path), cfg_interval=value)
