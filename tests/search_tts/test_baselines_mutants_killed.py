"""The baselines (importance, best-of-n, raw) where mutants of them outlived the suite: documented defaults, the
open checkpoint interval, decodes and scorer calls per prompt, no unconditional half; values from
docs/strategies.md and the docstrings."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from search_fakes import FakeNextScale, FakeNextToken, FakeScorer

from arscale.errors import ArscaleError
from arscale.search.best_of_n import BestOfN, BestOfNConfig
from arscale.search.importance import Importance, ImportanceConfig
from arscale.search.raw import Raw

PROMPTS = ["a photo of a red circle", "a photo of two squares"]
def test_importance_defaults_are_the_documented_ones():
    # docs/strategies.md's table: lam 10.0, checkpoints [0.5, 0.75], potential "value", resample_at null
    c = ImportanceConfig()
    assert (c.lam, c.checkpoints, c.potential, c.resample_at) == (10.0, [0.5, 0.75], "value", None)


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5])
def test_importance_refuses_a_checkpoint_outside_the_open_interval_zero_one(bad):
    # checkpoints are "fractions in (0, 1)": both ends and anything past 1 refused, when the config is made and (a
    # config changed after that) when the points are asked for
    with pytest.raises(ArscaleError, match=r"checkpoints must be fractions in \(0, 1\) of the raster"):
        ImportanceConfig(checkpoints=[0.5, bad])
    config = ImportanceConfig()
    config.checkpoints = [bad]
    with pytest.raises(ArscaleError, match=r"checkpoints must be fractions in \(0, 1\) of the 10 tokens"):
        Importance(config).points(SimpleNamespace(kind="token", length=10))


def test_importance_refuses_an_infinite_lambda():
    # "lam (λ) must be a finite number ≥ 0": 0 and a large finite λ are taken, +inf is not
    assert ImportanceConfig(lam=0.0).lam == 0.0 and ImportanceConfig(lam=1e300).lam == 1e300
    with pytest.raises(ArscaleError, match="finite"):
        ImportanceConfig(lam=math.inf)


def test_importance_resamples_at_two_particles_per_prompt():
    # resampling is skipped only at N = 1; at N = 2 each of the two points resamples. Cost per prompt (docs):
    # N·(points + 1) = 2·3 = 6 decodes and scorer calls, 12 over the two prompts
    res = Importance(ImportanceConfig(resample_at=[2, 4])).run(FakeNextScale(), PROMPTS, 2, seed=0,
                                                                scorer=FakeScorer())
    assert [len(op["kept"]) for op in res.telemetry["operations"]] == [4, 4]
    assert res.cost.decode_count == 12 and res.cost.scorer_calls == 12


class _AsksForHalves(FakeNextToken):
    """Records the `unconditional` keyword `start` gets (a model whose guidance needs none may skip that half)."""

    def __init__(self):
        super().__init__()
        self.asked = []

    def start(self, prompts, rows_per_prompt, seed, *, prompt_offset=0, unconditional=True):
        self.asked.append(unconditional)
        return super().start(prompts, rows_per_prompt, seed, prompt_offset=prompt_offset)


@pytest.mark.parametrize("strategy", [Importance(), BestOfN(), Raw()], ids=lambda s: s.name)
def test_the_baselines_start_without_the_unconditional_half(strategy):
    # rollout.py: raw, Best-of-N and importance sample with `advance` and read no unconditional logits, so they start
    # with unconditional=False
    gen = _AsksForHalves()
    strategy.run(gen, PROMPTS[:1], 2, seed=0, scorer=FakeScorer())
    assert gen.asked == [False]


@pytest.mark.parametrize("strategy", [Importance(ImportanceConfig(resample_at=[2])), BestOfN()],
                         ids=lambda s: s.name)
def test_the_baselines_default_to_seed_zero_and_prompt_offset_zero(strategy):
    # run(..., seed=0, prompt_offset=0) (docs/extending.md): the defaults give the same particles as those values
    default = strategy.run(FakeNextScale(), PROMPTS, 2, scorer=FakeScorer())
    given = strategy.run(FakeNextScale(), PROMPTS, 2, seed=0, prompt_offset=0, scorer=FakeScorer())
    shifted = strategy.run(FakeNextScale(), PROMPTS, 2, seed=0, prompt_offset=1, scorer=FakeScorer())
    images = [[c.image for per in r.candidates for c in per] for r in (default, given, shifted)]
    assert all(np.array_equal(a, b) for a, b in zip(images[0], images[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(images[0], images[2]))


def test_best_of_n_keeps_the_config_it_is_given():
    config = BestOfNConfig(reward="another-reward")
    assert BestOfN(config).config is config
    assert BestOfN().config == BestOfNConfig()


def test_raw_ignores_the_reward_and_defaults_to_one_sample_at_seed_zero():
    # docs/extending.md: a strategy that ignores the scorer sets `uses_reward = False`; raw's run(n=1, seed=0): with
    # neither given it draws candidate 0 at seed 0, unscored; seed 1 draws another one
    assert Raw.uses_reward is False
    default = Raw().run(FakeNextScale(), PROMPTS)
    given = Raw().run(FakeNextScale(), PROMPTS, 1, seed=0)
    other = Raw().run(FakeNextScale(), PROMPTS, 1, seed=1)
    assert [len(per) for per in default.candidates] == [1, 1] and default.candidates[0][0].score is None
    assert all(np.array_equal(a, b) for a, b in zip(default.images, given.images))
    assert not all(np.array_equal(a, b) for a, b in zip(default.images, other.images))
