"""TTS-VAR against the official code and the paper: ties inside pair clusters, and the per-scale reward history
the paper's DIFF / MAX / SUM potentials are defined on."""

import pytest
import torch
from search_fakes import FakeNextScale, FakeScorer

from arscale.errors import ArscaleError
from arscale.search.clustering import representatives
from arscale.search.tts_var import TTSVAR, TTSVARConfig

PROMPTS = ["a red circle", "two blue squares"]


def _run(**kw):
    cfg = TTSVARConfig(features="shapeworld-features", record_previews=False, **kw)
    return TTSVAR(cfg, feature_scorer=FakeScorer()).run(FakeNextScale(), PROMPTS, 8, seed=0, scorer=FakeScorer())


def test_pair_clusters_pick_the_lower_index_not_the_rounding_winner():
    for t in range(50):
        g = torch.Generator().manual_seed(t)
        a, b, e = torch.randn(3, 16, generator=g, dtype=torch.float64)
        x = torch.stack([10 * a, 10 * b, 10 * a + e, 10 * b + e])  # pairs {0, 2}, {1, 3}: centres at their midpoints
        picks = sorted(representatives(x, 2, torch.Generator().manual_seed(t)).tolist())
        assert picks == [0, 1]


def test_history_all_scores_every_scale_up_to_the_last_resampling():
    res = _run(potential="max", history="all")
    plan = TTSVAR(TTSVARConfig(potential="max", history="all")).schedule(FakeNextScale.num_scales, 8)
    last = max(plan.resample_at)
    extra = sum(plan.batch[k] for k in range(last) if k not in plan.resample_at)
    base = _run(potential="max")
    assert res.cost.decode_count - base.cost.decode_count == len(PROMPTS) * extra
    value = _run(potential="value", history="all")  # VALUE needs no history: nothing extra
    assert value.cost.decode_count == _run(potential="value").cost.decode_count


def test_history_must_be_known():
    with pytest.raises(ArscaleError, match="history must be one of .*got 'some'"):
        TTSVARConfig(history="some")
