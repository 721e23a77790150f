"""A sampler setting the shipped loaders take without a check."""

import pytest

from arscale.errors import ArscaleError
from arscale.generators.registry import load_generator


@pytest.mark.parametrize("model", ["shapeworld-var", "shapeworld-ar"])
@pytest.mark.parametrize("top_p", ["0.9", float("nan")])
def test_a_top_p_that_is_not_a_number_is_refused_when_the_generator_is_built(model, top_p):
    """top_p='0.9' or NaN is refused in one line by the loader, as temperature and top_k are (check_sampler)."""
    with pytest.raises(ArscaleError, match="top_p"):
        load_generator(model, top_p=top_p)


def test_the_top_p_message_says_which_values_each_sampler_ignores():
    """arscale's sampler ignores top_p ≤ 0 or ≥ 1; LlamaGen's own (upstream's) filter takes 0 as "the most probable
    token alone", so its refusal names only ≥ 1 as off."""
    from tiny_families import tiny_llamagen

    from arscale.generators.next_token.llamagen import LlamaGenGenerator

    with pytest.raises(ArscaleError, match=r"a number; ≤ 0 or ≥ 1 is off\)"):
        load_generator("shapeworld-ar", top_p=float("nan"))
    tiny = tiny_llamagen()
    with pytest.raises(ArscaleError, match=r"a number; ≥ 1 is off\)"):
        LlamaGenGenerator(tiny.gpt, tiny.tokenizer, top_p=float("nan"))
