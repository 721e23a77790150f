"""TTS-VAR against the official code and the paper: ties inside pair clusters, and the per-scale reward history
the paper's DIFF / MAX / SUM potentials are defined on."""

import pytest
import torch
from search_fakes import CodedNextScale, FakeNextScale, FakeScorer, TableScorer

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
    # a clustering scale's decode serves the reward too (FakeScorer reads both at one size)
    extra = sum(plan.batch[k] for k in range(last) if k not in plan.resample_at and k not in plan.cluster_at)
    base = _run(potential="max")
    assert res.cost.decode_count - base.cost.decode_count == len(PROMPTS) * extra
    value = _run(potential="value", history="all")  # VALUE needs no history: nothing extra
    assert value.cost.decode_count == _run(potential="value").cost.decode_count


# Rewards by scale and candidate (CodedNextScale images, read by TableScorer). Scales 2 and 3 hold the four rows of
# test_tts_potentials (r_prev, r_now); scales 0 and 1 reward 0. With the whole history (scales 0..3), by hand:
#   VALUE = r3: 4, 3, -8, 2.5 -> 0        DIFF = r3 - r2: 2, 8, -17, -3.5 -> 1
#   MAX = max(0, 0, r2, r3): 4, 3, 9, 6 -> 2      SUM = r2 + r3: 6, -2, 1, 8.5 -> 3
TABLE = {0: [0.0] * 4, 1: [0.0] * 4, 2: [2.0, -5.0, 9.0, 6.0], 3: [4.0, 3.0, -8.0, 2.5]}


@pytest.mark.parametrize("kind, best", [("value", 0), ("diff", 1), ("max", 2), ("sum", 3)])
def test_tts_var_resamples_by_its_potential_over_the_reward_history(kind, best):
    # one resampling (after scale 3, 4 -> 1 rows) at a λ so large that the draw is the potential's argmax
    def run(history):
        cfg = TTSVARConfig(batch=[4, 4, 4, 4, 1, 1, 1], cluster_at=[], resample_at=[3], potential=kind, lam=1e6,
                           history=history, record_previews=False)
        return TTSVAR(cfg, feature_scorer=FakeScorer()).run(CodedNextScale(), PROMPTS, 4, seed=0,
                                                            scorer=TableScorer(TABLE))

    # history="all" records scales 0..2 for the potential; with "resample" (one resampling) a row's history holds
    # only r3, so every potential is VALUE and keeps candidate 0
    for history, winner in (("all", best), ("resample", 0)):
        res = run(history)
        (op,) = res.telemetry["operations"]
        for p in range(len(PROMPTS)):
            rows = [i for i, q in enumerate(op["prompt"]) if q == p]
            assert [rows.index(k) for k in op["kept"] if k in rows] == [winner], history
            (final,) = res.candidates[p]  # its image spells the surviving candidate's index in channel 0
            assert round(float(final.image[..., 0].mean()) / 255 * 10 - 0.5) == winner, history


def test_history_must_be_known():
    with pytest.raises(ArscaleError, match="history must be one of .*got 'some'"):
        TTSVARConfig(history="some")
