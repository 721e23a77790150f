"""TTS-VAR's telemetry preview size is checked with the config, and the
paper's per-scale reward history does not decode a clustering scale twice ("decode only what a consumer needs")."""

import pytest
import torch
from tiny_families import BrightnessScorer, tiny_var

from arscale.errors import ArscaleError
from arscale.search.base import make_strategy
from arscale.search.tts_var import TTSVAR, TTSVARConfig

SCHEDULE = {"batch": [4, 4, 2, 2, 1], "cluster_at": [1], "resample_at": [3]}  # tiny VAR's 5 scales


@pytest.mark.parametrize("size", [0, -3])
def test_tts_var_refuses_a_preview_size_below_one_in_one_line(size):
    """A telemetry preview side below 1 is refused when the config is made, as ScalingAR's preview_size is."""
    with pytest.raises(ArscaleError, match="preview_size"):
        make_strategy("tts-var", {**SCHEDULE, "preview_size": size})


def test_tts_var_history_all_decodes_a_clustering_scale_once():
    """With history="all", a clustering scale's decode serves both the reward and the features (same input size)."""
    torch.manual_seed(0)
    gen = tiny_var()

    def run(history):
        cfg = TTSVARConfig(**SCHEDULE, potential="max", history=history, record_previews=False)
        return TTSVAR(cfg, feature_scorer=BrightnessScorer()).run(gen, [1, 2], 4, seed=0, scorer=BrightnessScorer())

    full, ours = run("all"), run("resample")
    # "all" scores scales 0, 1 and 2 (k < the last resampling, 3); scale 1 is the clustering's, decoded anyway, so
    # only scales 0 and 2 (4 and 2 rows per prompt) cost a decode of their own
    assert full.cost.decode_count - ours.cost.decode_count == 2 * (4 + 2)
    assert full.cost.scorer_calls - ours.cost.scorer_calls == 2 * (4 + 4 + 2)  # every scored row is still scored
