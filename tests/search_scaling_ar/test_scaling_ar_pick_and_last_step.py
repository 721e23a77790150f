"""The final pick is the survivor with the highest final C among several survivors (SCALINGAR.md §3.3), and the
policy takes no decision at the last token (TerminationPolicy: warm-up <= t < T - 1)."""

import math

import pytest

from arscale.generators.next_token.shapeworld import random_shapeworld_ar
from arscale.search.scaling_ar import ScalingAR, ScalingARConfig

PROMPTS = ["a photo of a red circle", "a photo of three squares"]


@pytest.fixture(scope="module")
def gen():
    return random_shapeworld_ar(1, grid=8, vocab_size=32, cfg=2.0)


def test_pick_among_several_survivors_is_the_highest_final_confidence(gen):
    res = ScalingAR(ScalingARConfig(terminate=False)).run(gen, PROMPTS, 4, seed=3)
    for p, per in enumerate(res.candidates):
        assert len(per) == 4  # nobody terminated: a real choice among four
        scores = [c.score for c in per]
        assert len(set(scores)) == 4
        traces = {tr["node"]: tr for tr in res.telemetry["prompts"][p]}
        assert all(c.score == pytest.approx(traces[c.node]["C"][-1], abs=1e-6) for c in per)
        assert sum(c.chosen for c in per) == 1
        assert res.chosen(p).score == max(scores) and res.chosen(p).score > min(scores)


def test_no_threshold_and_no_decision_at_the_last_token(gen):
    # eager settings that flag and terminate until the end; the last step must still be left alone
    cfg = ScalingARConfig(prune_quantile=0.9, recovery_window_steps=0, delta_rec=10.0, protect_best=False,
                          threshold_pool="active")
    res = ScalingAR(cfg).run(gen, PROMPTS, 8, seed=0)
    T = gen.num_tokens
    for p in range(len(PROMPTS)):
        theta = res.telemetry["threshold"][p]
        assert not math.isnan(theta[T - 2]) and math.isnan(theta[T - 1])
    assert max(e["step"] for e in res.telemetry["events"]) <= T - 2
