"""Bench summary statistics: standard errors that say something at any number of prompts."""

import math

import pytest

from arscale.bench.metrics import binomial_se, standard_error_of_overall


def test_binomial_se_is_agresti_coull():
    # worked by hand: 3 of 5 right -> p~ = 5/9, SE = sqrt(5/9 * 4/9 / 9) = sqrt(20) / 27
    assert binomial_se(0.6, 5) == pytest.approx(math.sqrt(20) / 27)
    # a tag all right or all wrong is not certain: Wald would say 0
    assert binomial_se(1.0, 3) == binomial_se(0.0, 3) == pytest.approx(math.sqrt(5 / 7 * 2 / 7 / 7))
    assert binomial_se(0.0, 0) == pytest.approx(0.5 / 2)  # no images: p~ = 1/2 over 4 pseudo-observations
    # hundreds of images: within a few percent of Wald
    wald = math.sqrt(0.45 * 0.55 / 240)
    assert binomial_se(0.45, 240) == pytest.approx(wald, rel=0.02)


def test_overall_se_combines_the_tags():
    tags = {"a": {"accuracy": 1.0, "total": 1}, "b": {"accuracy": 0.0, "total": 1}}
    expected = math.sqrt(2 * binomial_se(1.0, 1) ** 2) / 2
    assert standard_error_of_overall(tags) == pytest.approx(expected) and expected > 0.1
    assert standard_error_of_overall({}) == 0.0
