"""Resampling weights at extreme λ·φ, and clustering features that are not finite (from an acceptance audit of
issue 4)."""

import math

import pytest
import torch
from tiny_families import BrightnessScorer, tiny_var

from arscale.errors import ArscaleError
from arscale.search.clustering import REDUCTIONS, select_diverse
from arscale.search.potentials import log_weights, resample
from arscale.search.tts_var import TTSVAR, TTSVARConfig

ONE_GROUP = torch.zeros(2, dtype=torch.long)


def test_lambda_times_potential_beyond_double_range_still_draws_the_best_row():
    """λ = 1e308 (finite, so accepted) with rewards of 2 and 1 draws the better row, not a NaN distribution."""
    draws = resample(torch.tensor([2.0, 1.0]), 1e308, 8, torch.Generator().manual_seed(0))
    assert draws.tolist() == [0] * 8


def test_weights_stay_normalised_when_lambda_phi_is_huge():
    """Two equal potentials at λ·φ = 2e300 each get probability 1/2, not 1 each."""
    w = log_weights(torch.tensor([2.0, 2.0]), 1e300, ONE_GROUP).exp()
    assert math.isclose(float(w.sum()), 1.0, rel_tol=1e-12)


def test_a_huge_negative_lambda_favours_the_lowest_potential():
    """log_weights itself takes any λ: at λ = -1e308 the weight goes to the lowest φ, finite and normalised."""
    w = log_weights(torch.tensor([0.0, 2.0, 1.0]), -1e308, torch.zeros(3, dtype=torch.long)).exp()
    assert w.tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_non_finite_clustering_features_are_a_one_line_error(reduction):
    """A NaN in one row's features is refused with an ArscaleError naming the row, under every reduction."""
    x = torch.randn(6, 4, 5, generator=torch.Generator().manual_seed(0))
    x[2, 1, 3] = float("nan")
    with pytest.raises(ArscaleError, match=r"not finite.*\[2\]"):
        select_diverse(x, 4, torch.Generator().manual_seed(0), reduction)


def test_an_infinite_feature_row_does_not_decide_a_clustering_silently():
    """With pool features, 2 -> 1 rows where one row is inf must raise, not quietly keep the finite row."""
    x = torch.zeros(2, 3)
    x[1, 0] = float("inf")
    with pytest.raises(ArscaleError, match="not finite"):
        select_diverse(x, 1, torch.Generator().manual_seed(0), "pool")


class _NaNFeatures(BrightnessScorer):
    name = "nan-features"

    def features(self, images):
        f = super().features(images)
        f[1] = float("nan")
        return f


def test_tts_var_refuses_nan_features_in_one_line():
    """TTS-VAR on a tiny random VAR whose feature scorer returns NaN for a row stops with an ArscaleError."""
    strategy = TTSVAR(TTSVARConfig(record_previews=False, reduction="pool"), feature_scorer=_NaNFeatures())
    with pytest.raises(ArscaleError, match="not finite"):
        strategy.run(tiny_var(), [3], 8, seed=0, scorer=BrightnessScorer())
