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
