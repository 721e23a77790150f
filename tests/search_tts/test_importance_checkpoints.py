"""Importance sampling: where it resamples, by which potential, with which random streams, and what its
selection is billed to."""

import time

import pytest
from search_fakes import FakeNextScale, FakeNextToken, FakeScorer

from arscale.search import importance
from arscale.search.importance import Importance, ImportanceConfig
from arscale.search.rollout import Search

PROMPTS = ["a photo of a red circle", "a photo of two squares", "a photo of a cross"]


def test_a_checkpoint_near_the_end_still_resamples_before_the_last_token():
    # importance.py: checkpoints are fractions in (0, 1) of the raster, "after the token counts": a resampling
    # after the last token could change nothing the final reward does not see, yet would pay a decode and a score
    search = Search(FakeNextToken(), seed=0, prompt_offset=0)  # 16 tokens
    assert Importance(ImportanceConfig(checkpoints=[0.99])).points(search) == [15]
    assert Importance(ImportanceConfig(checkpoints=[0.01])).points(search) == [1]


def test_default_resampling_scale_of_a_short_next_scale_model():
    # importance.py points(): fewer than 5 scales -> resample once, after the second-to-last scale (0-based k - 2)
    class Short(FakeNextScale):
        patch_nums = (1, 2, 4, 8)
        num_scales = 4

    assert Importance().points(Search(Short(), seed=0, prompt_offset=0)) == [3]


def _relative_kept(op, p):
    rows = [i for i, q in enumerate(op["prompt"]) if q == p]
    return [rows.index(k) for k in op["kept"] if k in rows]


@pytest.mark.parametrize("gen, cfg", [(FakeNextScale, ImportanceConfig(lam=0.0, resample_at=[2, 4])),
                                      (FakeNextToken, ImportanceConfig(lam=0.0, checkpoints=[0.25, 0.5]))])
def test_each_resampling_draws_from_its_own_random_stream(gen, cfg):
    # rollout.Search.rng(prompt, purpose): selection randomness per prompt *and purpose*. At λ = 0 the draw ignores
    # the rewards, so two resamplings that shared one stream would keep the same positions every time.
    res = Importance(cfg).run(gen(), PROMPTS, 8, seed=3, scorer=FakeScorer())
    first, second = res.telemetry["operations"]
    assert any(_relative_kept(first, p) != _relative_kept(second, p) for p in range(len(PROMPTS)))


@pytest.mark.parametrize("kind", ["diff", "max", "sum"])
def test_importance_resamples_by_the_configured_potential(kind):
    # importance.py: "multinomial resampling ∝ exp(λ·potential)"; VALUE's potential is the reward itself, the
    # others read the reward history too, so at the second resampling they differ from the reward just scored
    res = Importance(ImportanceConfig(potential=kind, lam=2.0, resample_at=[2, 4])).run(
        FakeNextScale(), PROMPTS, 4, seed=2, scorer=FakeScorer())
    op = res.telemetry["operations"][-1]
    assert op["potential"] != pytest.approx(op["reward"])
    value = Importance(ImportanceConfig(potential="value", lam=2.0, resample_at=[2, 4])).run(
        FakeNextScale(), PROMPTS, 4, seed=2, scorer=FakeScorer())
    assert value.telemetry["operations"][-1]["potential"] == pytest.approx(value.telemetry["operations"][-1]["reward"])


def test_importance_bills_its_resampling_to_selection(monkeypatch):
    # rollout.py: "Strategies time their own selection logic with search.cost.timer('selection')"; the reward
    # phase is the scorer's own time
    pause = 0.1
    real = importance.resample

    def slow(*args, **kwargs):
        time.sleep(pause)
        return real(*args, **kwargs)

    monkeypatch.setattr(importance, "resample", slow)
    res = Importance(ImportanceConfig(resample_at=[2, 4])).run(FakeNextScale(), PROMPTS, 4, seed=0,
                                                                scorer=FakeScorer())
    draws = 2 * len(PROMPTS)
    assert res.cost.wall["selection"] >= draws * pause
    assert res.cost.wall["reward"] < draws * pause / 2
    assert res.cost.overhead >= draws * pause  # selection is overhead
